/*
 * The proxy's configuration: main, events, http, server and location
 * directives, and building a snapshot from a config file.
 *
 * Inheritance follows nginx: settings flow http -> server -> location
 * whatever the order of directives in the file. To get that, server and
 * location blocks are not walked when met: they are queued and walked after
 * the enclosing block's own directives.
 */
#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "proxy/proxy_int.h"

static const pt_proxy_module_t *modules[PT_MOD_MAX];
static size_t nmodules;

int pt_proxy_module_register(const pt_proxy_module_t *m)
{
    if (nmodules == PT_MOD_MAX) return -ENOSPC;
    modules[nmodules++] = m;
    if (m->cmds) return pt_conf_register(m->cmds);
    return 0;
}

size_t pt_proxy_modules(const pt_proxy_module_t *const **out)
{
    *out = modules;
    return nmodules;
}

/* Blocks queued while walking their parent (see the file comment). */
typedef struct pending {
    pt_array_t nodes; /* const pt_conf_node_t * */
} pending_t;

/* The obj passed to handlers in http/server/location starts with a tag. */
typedef struct obj_tag {
    uint32_t ctx;
    pt_http_settings_t *s;
} obj_tag_t;

typedef struct http_obj {
    obj_tag_t tag;
    pending_t servers;
} http_obj_t;

typedef struct server_obj {
    obj_tag_t tag;
    pt_vhost_t *vh;
    pending_t locations;
    int nlisten;
} server_obj_t;

typedef struct loc_obj {
    obj_tag_t tag;
    pt_location_t *loc;
} loc_obj_t;

pt_location_t *pt_conf_location(void *obj)
{
    obj_tag_t *tag = obj;
    return tag->ctx == PT_CONF_LOCATION ? ((loc_obj_t *)obj)->loc : NULL;
}

static pt_snapshot_t *snap_of(pt_conf_build_t *b) { return b->user; }

static int pending_push(pt_conf_build_t *b, pending_t *p, const pt_conf_node_t *n)
{
    if (!p->nodes.pool && pt_array_init(&p->nodes, b->pool, sizeof(n), 8) < 0) return -ENOMEM;
    const pt_conf_node_t **slot = pt_array_push(&p->nodes);
    if (!slot) return -ENOMEM;
    *slot = n;
    return 0;
}

static const char *arg(const pt_conf_node_t *n, size_t i) { return n->args[i].val; }

/* Resolves a path relative to the config file's directory. */
static const char *conf_path(pt_conf_build_t *b, const char *p)
{
    if (p[0] == '/' || strcmp(p, "stderr") == 0) return pt_pool_strdup(b->pool, p);
    return pt_pool_printf(b->pool, "%s/%s", snap_of(b)->conf_dir, p);
}

/* ------------------------------------------------------------------ */
/* main and events                                                     */
/* ------------------------------------------------------------------ */

static int set_workers(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    pt_main_conf_t *m = &snap_of(b)->main;
    if (strcmp(arg(n, 0), "auto") == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        m->workers = c > 0 ? (int)c : 1;
        return 0;
    }
    long long v;
    int rc = pt_conf_get_int(b, n, 0, 1, 256, &v);
    if (rc < 0) return rc;
    m->workers = (int)v;
    return 0;
}

static int set_worker_connections(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    long long v;
    int rc = pt_conf_get_int(b, n, 0, 1, 1000000, &v);
    if (rc < 0) return rc;
    snap_of(b)->main.worker_connections = (int)v;
    return 0;
}

static int set_pid(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    snap_of(b)->main.pid_path = strcmp(arg(n, 0), "off") == 0 ? NULL : conf_path(b, arg(n, 0));
    return 0;
}

static int set_user(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    pt_main_conf_t *m = &snap_of(b)->main;
    if (!getpwnam(arg(n, 0))) return pt_conf_err_arg(b, n, 0, "unknown user \"%s\"", arg(n, 0));
    if (n->nargs > 1 && !getgrnam(arg(n, 1)))
        return pt_conf_err_arg(b, n, 1, "unknown group \"%s\"", arg(n, 1));
    m->user = pt_pool_strdup(b->pool, arg(n, 0));
    m->group = n->nargs > 1 ? pt_pool_strdup(b->pool, arg(n, 1)) : NULL;
    return 0;
}

static int set_error_log(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    pt_main_conf_t *m = &snap_of(b)->main;
    m->error_log = conf_path(b, arg(n, 0));
    if (n->nargs > 1 && pt_log_level_parse(arg(n, 1), &m->error_log_level) < 0)
        return pt_conf_err_arg(b, n, 1,
                               "invalid log level \"%s\", expected "
                               "debug|info|notice|warn|error|crit",
                               arg(n, 1));
    return 0;
}

static int set_admin_listen(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    pt_main_conf_t *m = &snap_of(b)->main;
    if (strcmp(arg(n, 0), "off") == 0) {
        m->admin_listen = NULL;
        return 0;
    }
    pt_addr_t a;
    if (pt_addr_parse(arg(n, 0), n->args[0].len, 9901, &a) < 0)
        return pt_conf_err_arg(b, n, 0, "invalid address \"%s\"", arg(n, 0));
    m->admin_listen = pt_pool_strdup(b->pool, arg(n, 0));
    return 0;
}

static int set_admin_token(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    pt_unused(obj);
    const char *t = arg(n, 0);
    if (n->args[0].len < 16)
        return pt_conf_err_arg(b, n, 0, "admin_token is too short: use 16 characters or more");
    for (const char *p = t; *p; p++)
        if (*p <= ' ' || *p > '~')
            return pt_conf_err_arg(b, n, 0, "admin_token must be printable ASCII without spaces");
    snap_of(b)->main.admin_token = pt_pool_strdup(b->pool, t);
    return snap_of(b)->main.admin_token ? 0 : -ENOMEM;
}

static int set_shutdown_timeout(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    return pt_conf_get_msec(b, n, 0, 0, 86400000ull, &snap_of(b)->main.shutdown_timeout);
}

static int set_events(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    return pt_conf_walk(b, n, PT_CONF_EVENTS, obj);
}

static int set_http(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj);

/* ------------------------------------------------------------------ */
/* settings shared by http, server and location                        */
/* ------------------------------------------------------------------ */

#define SETTINGS(b, obj) (((obj_tag_t *)(obj))->s)

static int set_msec_field(pt_conf_build_t *b, const pt_conf_node_t *n, uint64_t *field)
{
    return pt_conf_get_msec(b, n, 0, 1, 86400000ull * 7, field);
}

#define MSEC_SETTER(fn, field)                                                     \
    static int fn(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)          \
    {                                                                              \
        return set_msec_field(b, n, &SETTINGS(b, obj)->field);                     \
    }

MSEC_SETTER(set_client_header_timeout, client_header_timeout)
MSEC_SETTER(set_client_body_timeout, client_body_timeout)
MSEC_SETTER(set_send_timeout, send_timeout)
MSEC_SETTER(set_proxy_connect_timeout, proxy_connect_timeout)
MSEC_SETTER(set_proxy_read_timeout, proxy_read_timeout)
MSEC_SETTER(set_proxy_send_timeout, proxy_send_timeout)

static int set_proxy_try_timeout(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    return pt_conf_get_msec(b, n, 0, 0, 86400000ull, &SETTINGS(b, obj)->proxy_try_timeout);
}

static int set_next_upstream_timeout(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    return pt_conf_get_msec(b, n, 0, 0, 86400000ull, &SETTINGS(b, obj)->next_upstream_timeout);
}

static int set_next_upstream_tries(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    long long v;
    int rc = pt_conf_get_int(b, n, 0, 0, 100, &v);
    if (rc == 0) SETTINGS(b, obj)->next_upstream_tries = (int)v;
    return rc;
}

static int set_next_upstream(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    static const struct {
        const char *name;
        unsigned flag;
    } words[] = {
        {"error", PT_NEXT_ERROR},   {"timeout", PT_NEXT_TIMEOUT},
        {"http_500", PT_NEXT_500},  {"http_502", PT_NEXT_502},
        {"http_503", PT_NEXT_503},  {"http_504", PT_NEXT_504},
        {"http_429", PT_NEXT_429},  {"non_idempotent", PT_NEXT_NON_IDEMPOTENT},
    };
    unsigned mask = 0;
    if (n->nargs == 1 && strcmp(arg(n, 0), "off") == 0) {
        SETTINGS(b, obj)->next_upstream = 0;
        return 0;
    }
    for (size_t i = 0; i < n->nargs; i++) {
        size_t k = 0;
        while (k < pt_countof(words) && strcmp(words[k].name, arg(n, i)) != 0) k++;
        if (k == pt_countof(words))
            return pt_conf_err_arg(b, n, i,
                                   "invalid value \"%s\", expected off, error, timeout, "
                                   "http_500, http_502, http_503, http_504, http_429 or "
                                   "non_idempotent",
                                   arg(n, i));
        mask |= words[k].flag;
    }
    SETTINGS(b, obj)->next_upstream = mask;
    return 0;
}

static int set_keepalive_timeout(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    /* 0 disables keep-alive, as in nginx */
    return pt_conf_get_msec(b, n, 0, 0, 86400000ull, &SETTINGS(b, obj)->keepalive_timeout);
}

static int set_keepalive_requests(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    long long v;
    int rc = pt_conf_get_int(b, n, 0, 1, 1000000000LL, &v);
    if (rc == 0) SETTINGS(b, obj)->keepalive_requests = (uint64_t)v;
    return rc;
}

static int set_client_max_body_size(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    return pt_conf_get_size(b, n, 0, 0, UINT64_MAX / 2, &SETTINGS(b, obj)->client_max_body_size);
}

static int set_proxy_buffer_size(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    return pt_conf_get_size(b, n, 0, 4096, 16u << 20, &SETTINGS(b, obj)->proxy_buffer_size);
}

static int set_large_client_header_buffers(pt_conf_build_t *b, const pt_conf_node_t *n,
                                           void *obj)
{
    long long num;
    uint64_t size;
    int rc = pt_conf_get_int(b, n, 0, 1, 64, &num);
    if (rc == 0) rc = pt_conf_get_size(b, n, 1, 1024, 1u << 20, &size);
    if (rc < 0) return rc;
    pt_http_settings_t *s = SETTINGS(b, obj);
    s->limits.max_line = size;
    s->limits.max_head = size * (uint64_t)num;
    if (s->limits.max_head > PT_MAX_HEAD)
        return pt_conf_err_node(b, n, "total header buffer size %llu is over the limit of %u",
                                (unsigned long long)s->limits.max_head, PT_MAX_HEAD);
    return 0;
}

static int set_max_headers(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    long long v;
    int rc = pt_conf_get_int(b, n, 0, 1, PT_MAX_HEADERS, &v);
    if (rc == 0) SETTINGS(b, obj)->limits.max_headers = (size_t)v;
    return rc;
}

static int set_server_tokens(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    return pt_conf_get_flag(b, n, 0, &SETTINGS(b, obj)->server_tokens);
}

static bool valid_header_name(const char *s, size_t len)
{
    if (len == 0) return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 32 || c >= 127 || strchr("()<>@,;:\\\"/[]?={}", c)) return false;
    }
    return true;
}

/* nginx inheritance for list directives: a level that defines any entry
 * replaces the inherited list instead of extending it. */
static int header_op_add(pt_conf_build_t *b, const pt_conf_node_t *n, pt_array_t *list,
                         bool *own, bool allow_always)
{
    if (!valid_header_name(arg(n, 0), n->args[0].len))
        return pt_conf_err_arg(b, n, 0, "invalid header name \"%s\"", arg(n, 0));
    if (!*own) {
        pt_array_t fresh;
        if (pt_array_init(&fresh, b->pool, sizeof(pt_header_op_t), 4) < 0) return -ENOMEM;
        *list = fresh;
        *own = true;
    }
    pt_header_op_t *op = pt_array_push(list);
    if (!op) return -ENOMEM;
    op->name = arg(n, 0);
    op->name_len = n->args[0].len;
    int rc = pt_tpl_compile(b, n, 1, &op->value);
    if (rc < 0) return rc;
    if (n->nargs == 3) {
        if (!allow_always || strcmp(arg(n, 2), "always") != 0)
            return pt_conf_err_arg(b, n, 2, "invalid parameter \"%s\"", arg(n, 2));
        op->always = true;
    }
    return 0;
}

static int set_add_header(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    pt_http_settings_t *s = SETTINGS(b, obj);
    return header_op_add(b, n, &s->add_headers, &s->add_headers_own, true);
}

static int set_proxy_set_header(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    pt_http_settings_t *s = SETTINGS(b, obj);
    return header_op_add(b, n, &s->proxy_set_headers, &s->proxy_set_headers_own, false);
}

int pt_cidr_parse(const char *s, pt_cidr_t *out)
{
    char buf[64];
    size_t len = strlen(s);
    if (len >= sizeof(buf)) return -EINVAL;
    memcpy(buf, s, len + 1);
    char *slash = strchr(buf, '/');
    long bits = -1;
    if (slash) {
        char *end;
        *slash = '\0';
        if (slash[1] < '0' || slash[1] > '9') return -EINVAL; /* no sign, no space */
        bits = strtol(slash + 1, &end, 10);
        if (*end || end == slash + 1) return -EINVAL;
    }
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        if (bits < 0) bits = 32;
        if (bits > 32) return -EINVAL;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        if (bits < 0) bits = 128;
        if (bits > 128) return -EINVAL;
    } else {
        return -EINVAL;
    }
    out->bits = (uint8_t)bits;
    return 0;
}

static int set_real_ip_from(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    pt_http_settings_t *s = SETTINGS(b, obj);
    pt_cidr_t c;
    if (pt_cidr_parse(arg(n, 0), &c) < 0)
        return pt_conf_err_arg(b, n, 0, "invalid address or CIDR \"%s\"", arg(n, 0));
    pt_cidr_t *slot = pt_array_push(&s->real_ip_from);
    if (!slot) return -ENOMEM;
    *slot = c;
    return 0;
}

static int set_real_ip_header(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    if (strcmp(arg(n, 0), "proxy_protocol") != 0 && !valid_header_name(arg(n, 0), n->args[0].len))
        return pt_conf_err_arg(b, n, 0, "invalid header name \"%s\"", arg(n, 0));
    SETTINGS(b, obj)->real_ip_header = arg(n, 0);
    return 0;
}

static int set_real_ip_recursive(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    return pt_conf_get_flag(b, n, 0, &SETTINGS(b, obj)->real_ip_recursive);
}

static int set_request_id_header(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    if (!valid_header_name(arg(n, 0), n->args[0].len))
        return pt_conf_err_arg(b, n, 0, "invalid header name \"%s\"", arg(n, 0));
    SETTINGS(b, obj)->request_id_header = arg(n, 0);
    return 0;
}

static int set_root(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    pt_http_settings_t *s = SETTINGS(b, obj);
    const char *root = conf_path(b, arg(n, 0));
    if (!root) return -ENOMEM;
    size_t len = strlen(root);
    while (len > 1 && root[len - 1] == '/') len--;
    /* root is a setting, as in nginx: it may sit beside proxy_pass or return. */
    s->static_conf.root = pt_pool_strndup(b->pool, root, len);
    return s->static_conf.root ? 0 : -ENOMEM;
}

static int set_index(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    pt_http_settings_t *s = SETTINGS(b, obj);
    pt_array_t names;
    if (pt_array_init(&names, b->pool, sizeof(char *), n->nargs) < 0) return -ENOMEM;
    for (size_t i = 0; i < n->nargs; i++) {
        if (strchr(arg(n, i), '/'))
            return pt_conf_err_arg(b, n, i, "index file name \"%s\" may not contain '/'",
                                   arg(n, i));
        const char **slot = pt_array_push(&names);
        if (!slot) return -ENOMEM;
        *slot = arg(n, i);
    }
    s->index_names = names;
    s->static_conf.index = names.items;
    s->static_conf.nindex = names.n;
    return 0;
}

static int set_default_type(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    SETTINGS(b, obj)->static_conf.default_type = arg(n, 0);
    return 0;
}

static int set_etag(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    return pt_conf_get_flag(b, n, 0, &SETTINGS(b, obj)->static_conf.etag);
}

/* types { text/html html htm; } : each entry is "type ext...". */
static int set_types(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    pt_http_settings_t *s = SETTINGS(b, obj);
    pt_array_t types;
    if (pt_array_init(&types, b->pool, sizeof(pt_mime_type_t), 64) < 0) return -ENOMEM;
    for (size_t i = 0; i < n->nchildren; i++) {
        const pt_conf_node_t *c = &n->children[i];
        if (c->block || c->nargs == 0)
            return pt_conf_err_node(b, c, "invalid types entry, expected \"type ext ...;\"");
        for (size_t j = 0; j < c->nargs; j++) {
            pt_mime_type_t *t = pt_array_push(&types);
            if (!t) return -ENOMEM;
            char *ext = pt_pool_strdup(b->pool, arg(c, j));
            if (!ext) return -ENOMEM;
            for (char *p = ext; *p; p++) *p = (char)tolower((unsigned char)*p);
            t->ext = ext;
            t->type = c->name;
        }
    }
    s->mime_types = types;
    s->static_conf.types = types.items;
    s->static_conf.ntypes = types.n;
    return 0;
}

/* ------------------------------------------------------------------ */
/* http                                                                */
/* ------------------------------------------------------------------ */

static int set_access_log(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    pt_main_conf_t *m = &snap_of(b)->main;
    if (strcmp(arg(n, 0), "off") == 0) {
        m->access_log = NULL;
        return 0;
    }
    if (n->nargs > 1 && strcmp(arg(n, 1), "json") != 0)
        return pt_conf_err_arg(b, n, 1, "unknown log format \"%s\", only \"json\" is supported",
                               arg(n, 1));
    m->access_log = conf_path(b, arg(n, 0));
    return 0;
}

static int set_server(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    return pending_push(b, &((http_obj_t *)obj)->servers, n);
}

/* ------------------------------------------------------------------ */
/* server                                                              */
/* ------------------------------------------------------------------ */

static int parse_listen_addr(pt_conf_build_t *b, const pt_conf_node_t *n, pt_addr_t *a)
{
    if (pt_addr_parse(arg(n, 0), n->args[0].len, 80, a) < 0)
        return pt_conf_err_arg(b, n, 0, "invalid listen address \"%s\"", arg(n, 0));
    return 0;
}

static pt_listen_conf_t *listen_find(pt_snapshot_t *snap, const pt_addr_t *a)
{
    for (size_t i = 0; i < snap->listens.n; i++) {
        pt_listen_conf_t *l = pt_array_at(&snap->listens, pt_listen_conf_t, i);
        if (pt_addr_equal(&l->addr, a)) return l;
    }
    return NULL;
}

static int set_listen(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    server_obj_t *so = obj;
    pt_snapshot_t *snap = snap_of(b);
    pt_addr_t a;
    int rc = parse_listen_addr(b, n, &a);
    if (rc < 0) return rc;
    bool def = false, reuseport = false, pp = false, has_opts = false;
    int backlog = 511;
    for (size_t i = 1; i < n->nargs; i++) {
        const char *o = arg(n, i);
        if (strcmp(o, "default_server") == 0 || strcmp(o, "default") == 0) {
            def = true;
        } else if (strcmp(o, "reuseport") == 0) {
            reuseport = has_opts = true;
        } else if (strcmp(o, "proxy_protocol") == 0) {
            pp = has_opts = true;
        } else if (strncmp(o, "backlog=", 8) == 0) {
            char *end;
            long v = strtol(o + 8, &end, 10);
            if (*end || end == o + 8 || v < 1 || v > 65535)
                return pt_conf_err_arg(b, n, i, "invalid backlog \"%s\", expected 1..65535", o + 8);
            backlog = (int)v;
            has_opts = true;
        } else {
            return pt_conf_err_arg(b, n, i, "invalid parameter \"%s\"", o);
        }
    }
    pt_listen_conf_t *l = listen_find(snap, &a);
    if (l) {
        for (size_t i = 0; i < l->vhosts.n; i++)
            if (*pt_array_at(&l->vhosts, pt_vhost_t *, i) == so->vh)
                return pt_conf_err_arg(b, n, 0, "duplicate listen %s in this server", arg(n, 0));
        if (has_opts && l->line)
            return pt_conf_err_arg(b, n, 0, "duplicate listen options for %s (first set at %s:%u)",
                                   arg(n, 0), l->file, l->line);
    } else {
        l = pt_array_push(&snap->listens);
        if (!l) return -ENOMEM;
        l->addr = a;
        l->backlog = 511;
        if (pt_array_init(&l->vhosts, b->pool, sizeof(pt_vhost_t *), 4) < 0) return -ENOMEM;
    }
    if (has_opts) {
        l->reuseport = reuseport;
        l->proxy_protocol = pp;
        l->backlog = backlog;
        l->file = n->file;
        l->line = n->line;
        l->col = n->col;
    }
    if (def) {
        if (l->default_server && l->default_server_explicit)
            return pt_conf_err_arg(b, n, 0, "a duplicate default server for %s", arg(n, 0));
        l->default_server = so->vh;
        l->default_server_explicit = true;
    } else if (!l->default_server) {
        l->default_server = so->vh;
    }
    pt_vhost_t **slot = pt_array_push(&l->vhosts);
    if (!slot) return -ENOMEM;
    *slot = so->vh;
    so->nlisten++;
    return 0;
}

static int set_server_name(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    server_obj_t *so = obj;
    for (size_t i = 0; i < n->nargs; i++) {
        const char *name = arg(n, i);
        if (name[0] == '\0') continue;
        if (strchr(name + 1, '*') || (name[0] == '*' && name[1] != '.'))
            return pt_conf_err_arg(b, n, i,
                                   "invalid server name \"%s\", only a leading \"*.\" wildcard "
                                   "is supported",
                                   name);
        char *lc = pt_pool_strdup(b->pool, name);
        if (!lc) return -ENOMEM;
        for (char *p = lc; *p; p++) *p = (char)tolower((unsigned char)*p);
        const char **slot = pt_array_push(&so->vh->names);
        if (!slot) return -ENOMEM;
        *slot = lc;
    }
    return 0;
}

static int set_location(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    server_obj_t *so = obj;
    return pending_push(b, &so->locations, n);
}

/* ------------------------------------------------------------------ */
/* location                                                            */
/* ------------------------------------------------------------------ */

static int set_return(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    obj_tag_t *tag = obj;
    pt_location_t *loc = tag->ctx == PT_CONF_LOCATION ? ((loc_obj_t *)obj)->loc
                                                       : ((server_obj_t *)obj)->vh->root_loc;
    if (loc->action != PT_ACT_NONE && loc->action != PT_ACT_STATIC)
        return pt_conf_err_node(b, n, "duplicate action in this block");
    const char *a0 = arg(n, 0);
    size_t textarg = 1;
    if (n->nargs == 1 && (strncmp(a0, "http://", 7) == 0 || strncmp(a0, "https://", 8) == 0 ||
                          a0[0] == '$')) {
        loc->return_status = 302;
        textarg = 0;
    } else {
        long long st;
        int rc = pt_conf_get_int(b, n, 0, 200, 599, &st);
        if (rc < 0) return rc;
        loc->return_status = (int)st;
        if (st >= 300 && st < 400 && st != 304 && n->nargs < 2)
            return pt_conf_err_node(b, n, "redirect status %lld requires a URL", st);
    }
    loc->action = PT_ACT_RETURN;
    if (tag->ctx == PT_CONF_SERVER) ((server_obj_t *)obj)->vh->server_return = true;
    if (n->nargs > textarg) {
        loc->has_return_text = true;
        return pt_tpl_compile(b, n, textarg, &loc->return_text);
    }
    return 0;
}

static int set_match_header(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    pt_location_t *loc = ((loc_obj_t *)obj)->loc;
    if (!valid_header_name(arg(n, 0), n->args[0].len))
        return pt_conf_err_arg(b, n, 0, "invalid header name \"%s\"", arg(n, 0));
    pt_header_match_t *m = pt_array_push(&loc->header_matches);
    if (!m) return -ENOMEM;
    m->name = arg(n, 0);
    m->name_len = n->args[0].len;
    if (n->nargs == 2) {
        m->re = pt_regex_compile(b, n, 1, false);
        if (!m->re) return -EINVAL;
    }
    return 0;
}

static const pt_conf_cmd_t proxy_cmds[] = {
    {"workers", PT_CONF_MAIN, 1, 1, false, set_workers},
    {"pid", PT_CONF_MAIN, 1, 1, false, set_pid},
    {"user", PT_CONF_MAIN, 1, 2, false, set_user},
    {"error_log", PT_CONF_MAIN, 1, 2, false, set_error_log},
    {"admin_listen", PT_CONF_MAIN, 1, 1, false, set_admin_listen},
    {"admin_token", PT_CONF_MAIN, 1, 1, false, set_admin_token},
    {"worker_shutdown_timeout", PT_CONF_MAIN, 1, 1, false, set_shutdown_timeout},
    {"events", PT_CONF_MAIN, 0, 0, true, set_events},
    {"worker_connections", PT_CONF_EVENTS, 1, 1, false, set_worker_connections},
    {"http", PT_CONF_MAIN, 0, 0, true, set_http},
    {"access_log", PT_CONF_HTTP, 1, 2, false, set_access_log},
    {"server", PT_CONF_HTTP, 0, 0, true, set_server},
    {"listen", PT_CONF_SERVER, 1, 6, false, set_listen},
    {"server_name", PT_CONF_SERVER, 1, PT_CONF_ANY_ARGS, false, set_server_name},
    {"location", PT_CONF_SERVER, 1, 2, true, set_location},
    {"return", PT_CONF_SERVER | PT_CONF_LOCATION, 1, 2, false, set_return},
    {"match_header", PT_CONF_LOCATION, 1, 2, false, set_match_header},
#define HSL (PT_CONF_HTTP | PT_CONF_SERVER | PT_CONF_LOCATION)
#define HS (PT_CONF_HTTP | PT_CONF_SERVER)
    {"client_header_timeout", HS, 1, 1, false, set_client_header_timeout},
    {"client_body_timeout", HSL, 1, 1, false, set_client_body_timeout},
    {"keepalive_timeout", HSL, 1, 1, false, set_keepalive_timeout},
    {"keepalive_requests", HSL, 1, 1, false, set_keepalive_requests},
    {"send_timeout", HSL, 1, 1, false, set_send_timeout},
    {"proxy_connect_timeout", HSL, 1, 1, false, set_proxy_connect_timeout},
    {"proxy_next_upstream", HSL, 1, 8, false, set_next_upstream},
    {"proxy_next_upstream_tries", HSL, 1, 1, false, set_next_upstream_tries},
    {"proxy_next_upstream_timeout", HSL, 1, 1, false, set_next_upstream_timeout},
    {"proxy_try_timeout", HSL, 1, 1, false, set_proxy_try_timeout},
    {"proxy_read_timeout", HSL, 1, 1, false, set_proxy_read_timeout},
    {"proxy_send_timeout", HSL, 1, 1, false, set_proxy_send_timeout},
    {"client_max_body_size", HSL, 1, 1, false, set_client_max_body_size},
    {"proxy_buffer_size", HSL, 1, 1, false, set_proxy_buffer_size},
    {"large_client_header_buffers", HS, 2, 2, false, set_large_client_header_buffers},
    {"max_headers", HS, 1, 1, false, set_max_headers},
    {"server_tokens", HSL, 1, 1, false, set_server_tokens},
    {"add_header", HSL, 2, 3, false, set_add_header},
    {"proxy_set_header", HSL, 2, 2, false, set_proxy_set_header},
    {"set_real_ip_from", HS, 1, 1, false, set_real_ip_from},
    {"real_ip_header", HS, 1, 1, false, set_real_ip_header},
    {"real_ip_recursive", HS, 1, 1, false, set_real_ip_recursive},
    {"request_id_header", HS, 1, 1, false, set_request_id_header},
    {"root", HSL, 1, 1, false, set_root},
    {"index", HSL, 1, PT_CONF_ANY_ARGS, false, set_index},
    {"default_type", HSL, 1, 1, false, set_default_type},
    {"etag", HSL, 1, 1, false, set_etag},
    {"types", HSL, 0, 0, true, set_types},
#undef HSL
#undef HS
    {NULL, 0, 0, 0, false, NULL},
};

/* ------------------------------------------------------------------ */
/* building blocks                                                     */
/* ------------------------------------------------------------------ */

void *pt_regex_compile(pt_conf_build_t *b, const pt_conf_node_t *n, size_t argi, bool caseless)
{
    int errcode;
    PCRE2_SIZE erroff;
    uint32_t opts = caseless ? PCRE2_CASELESS : 0;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)arg(n, argi), n->args[argi].len, opts, &errcode,
                                   &erroff, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(errcode, msg, sizeof(msg));
        const pt_conf_arg_t *a = &n->args[argi];
        pt_conf_error_at(b->doc, b->err, n->file, a->line, pt_conf_arg_col(b->doc, n->file, a, erroff),
                         "invalid regular expression \"%s\": %s", a->val, (char *)msg);
        return NULL;
    }
    /* JIT is an optimisation: without it matching still works. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    if (pt_pool_cleanup_add(b->pool, (pt_cleanup_fn)pcre2_code_free, re) < 0) {
        pcre2_code_free(re);
        return NULL;
    }
    return re;
}

static int settings_copy(pt_pool_t *pool, pt_http_settings_t *dst, const pt_http_settings_t *src)
{
    *dst = *src;
    dst->add_headers_own = false;
    dst->proxy_set_headers_own = false;
    /* real_ip_from is additive per level in nginx too; copy so a child's
     * additions do not leak into its parent. */
    pt_array_t from;
    if (pt_array_init(&from, pool, sizeof(pt_cidr_t), src->real_ip_from.n + 2) < 0) return -ENOMEM;
    for (size_t i = 0; i < src->real_ip_from.n; i++) {
        pt_cidr_t *c = pt_array_push(&from);
        if (!c) return -ENOMEM;
        *c = *pt_array_at(&src->real_ip_from, pt_cidr_t, i);
    }
    dst->real_ip_from = from;
    return 0;
}

static int settings_defaults(pt_pool_t *pool, pt_http_settings_t *s)
{
    memset(s, 0, sizeof(*s));
    s->client_header_timeout = 60000;
    s->client_body_timeout = 60000;
    s->keepalive_timeout = 75000;
    s->keepalive_requests = 1000;
    s->send_timeout = 60000;
    s->proxy_connect_timeout = 60000;
    s->proxy_read_timeout = 60000;
    s->proxy_send_timeout = 60000;
    s->client_max_body_size = 1024 * 1024;
    s->proxy_buffer_size = 64 * 1024;
    s->next_upstream = PT_NEXT_ERROR | PT_NEXT_TIMEOUT;
    s->next_upstream_tries = 3;
    s->limits.max_line = 8192;
    s->limits.max_head = 4 * 8192;
    s->limits.max_headers = 100;
    s->server_tokens = true;
    s->request_id_header = "X-Request-ID";
    s->static_conf.default_type = "application/octet-stream";
    s->static_conf.etag = true;
    static const char *const default_index[] = {"index.html"};
    s->static_conf.index = default_index;
    s->static_conf.nindex = 1;
    if (pt_array_init(&s->add_headers, pool, sizeof(pt_header_op_t), 1) < 0) return -ENOMEM;
    if (pt_array_init(&s->proxy_set_headers, pool, sizeof(pt_header_op_t), 1) < 0) return -ENOMEM;
    if (pt_array_init(&s->real_ip_from, pool, sizeof(pt_cidr_t), 2) < 0) return -ENOMEM;
    return 0;
}

static int parse_location_args(pt_conf_build_t *b, const pt_conf_node_t *n, pt_location_t *loc)
{
    size_t pi = 0;
    loc->match = PT_LOC_PREFIX;
    if (n->nargs == 2) {
        const char *m = arg(n, 0);
        if (strcmp(m, "=") == 0)
            loc->match = PT_LOC_EXACT;
        else if (strcmp(m, "^~") == 0)
            loc->match = PT_LOC_PREFIX_NOREGEX;
        else if (strcmp(m, "~") == 0)
            loc->match = PT_LOC_REGEX;
        else if (strcmp(m, "~*") == 0)
            loc->match = PT_LOC_REGEX_CASELESS;
        else
            return pt_conf_err_arg(b, n, 0, "invalid location modifier \"%s\"", m);
        pi = 1;
    }
    loc->path = arg(n, pi);
    loc->path_len = n->args[pi].len;
    if (loc->match == PT_LOC_REGEX || loc->match == PT_LOC_REGEX_CASELESS) {
        loc->re = pt_regex_compile(b, n, pi, loc->match == PT_LOC_REGEX_CASELESS);
        return loc->re ? 0 : -EINVAL;
    }
    if (loc->path[0] != '/')
        return pt_conf_err_arg(b, n, pi, "location path \"%s\" must start with '/'", loc->path);
    return 0;
}

static int build_location(pt_conf_build_t *b, server_obj_t *so, const pt_conf_node_t *n)
{
    pt_location_t *loc = pt_pool_calloc(b->pool, 1, sizeof(*loc));
    if (!loc) return -ENOMEM;
    loc->file = n->file;
    loc->line = n->line;
    if (pt_array_init(&loc->header_matches, b->pool, sizeof(pt_header_match_t), 1) < 0)
        return -ENOMEM;
    int rc = parse_location_args(b, n, loc);
    if (rc < 0) return rc;
    for (size_t i = 0; i < so->vh->locations.n; i++) {
        pt_location_t *o = *pt_array_at(&so->vh->locations, pt_location_t *, i);
        bool same_kind = (o->match == PT_LOC_EXACT) == (loc->match == PT_LOC_EXACT) &&
                         (o->re != NULL) == (loc->re != NULL);
        if (same_kind && o->path_len == loc->path_len &&
            memcmp(o->path, loc->path, loc->path_len) == 0 && loc->re == NULL)
            loc->dup_of = o; /* allowed only when header matches differ; checked below */
    }
    rc = settings_copy(b->pool, &loc->s, &so->vh->s);
    if (rc < 0) return rc;
    loc_obj_t lo = {{PT_CONF_LOCATION, &loc->s}, loc};
    rc = pt_conf_walk(b, n, PT_CONF_LOCATION, &lo);
    if (rc < 0) return rc;
    if (loc->dup_of && loc->header_matches.n == 0 && loc->dup_of->header_matches.n == 0)
        return pt_conf_err_node(b, n, "duplicate location \"%s\" (first at %s:%u)", loc->path,
                                loc->dup_of->file, loc->dup_of->line);
    if (loc->action == PT_ACT_NONE) loc->action = PT_ACT_STATIC;
    if (loc->action == PT_ACT_STATIC && !loc->s.static_conf.root)
        return pt_conf_err_node(b, n,
                                "location \"%s\" has nothing to do: add proxy_pass, return or root",
                                loc->path);
    pt_location_t **slot = pt_array_push(&so->vh->locations);
    if (!slot) return -ENOMEM;
    *slot = loc;
    return 0;
}

static int build_server(pt_conf_build_t *b, http_obj_t *ho, const pt_conf_node_t *n)
{
    pt_snapshot_t *snap = snap_of(b);
    pt_vhost_t *vh = pt_pool_calloc(b->pool, 1, sizeof(*vh));
    if (!vh) return -ENOMEM;
    if (pt_array_init(&vh->names, b->pool, sizeof(char *), 2) < 0 ||
        pt_array_init(&vh->locations, b->pool, sizeof(pt_location_t *), 8) < 0)
        return -ENOMEM;
    int rc = settings_copy(b->pool, &vh->s, &snap->http);
    if (rc < 0) return rc;
    vh->root_loc = pt_pool_calloc(b->pool, 1, sizeof(*vh->root_loc));
    if (!vh->root_loc) return -ENOMEM;
    server_obj_t so = {{PT_CONF_SERVER, &vh->s}, vh, {{0}}, 0};
    rc = pt_conf_walk(b, n, PT_CONF_SERVER, &so);
    if (rc < 0) return rc;
    if (so.nlisten == 0) {
        /* nginx: a server without listen listens on *:80 */
        pt_conf_node_t fake = *n;
        pt_conf_arg_t a80 = {"80", 2, n->line, n->col, false};
        fake.args = &a80;
        fake.nargs = 1;
        rc = set_listen(b, &fake, &so);
        if (rc < 0) return rc;
    }
    /* The server's own settings are final now: locations inherit them. */
    pt_location_t *rl = vh->root_loc;
    pt_http_settings_t base = rl->s;
    rc = settings_copy(b->pool, &rl->s, &vh->s);
    if (rc < 0) return rc;
    pt_unused(base);
    rl->path = "/";
    rl->path_len = 1;
    rl->file = n->file;
    rl->line = n->line;
    if (pt_array_init(&rl->header_matches, b->pool, sizeof(pt_header_match_t), 1) < 0)
        return -ENOMEM;
    if (rl->action == PT_ACT_NONE && vh->s.static_conf.root) rl->action = PT_ACT_STATIC;
    for (size_t i = 0; i < so.locations.nodes.n; i++) {
        rc = build_location(b, &so, *pt_array_at(&so.locations.nodes, pt_conf_node_t *, i));
        if (rc < 0) return rc;
    }
    pt_unused(ho);
    return 0;
}

static int set_http(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    pt_snapshot_t *snap = snap_of(b);
    if (snap->http_seen) return pt_conf_err_node(b, n, "\"http\" directive is duplicate");
    snap->http_seen = true;
    http_obj_t ho = {{PT_CONF_HTTP, &snap->http}, {{0}}};
    int rc = pt_conf_walk(b, n, PT_CONF_HTTP, &ho);
    if (rc < 0) return rc;
    for (size_t i = 0; i < ho.servers.nodes.n; i++) {
        rc = build_server(b, &ho, *pt_array_at(&ho.servers.nodes, pt_conf_node_t *, i));
        if (rc < 0) return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* snapshots                                                           */
/* ------------------------------------------------------------------ */

int pt_proxy_init(void) { return pt_conf_register(proxy_cmds); }

static int main_defaults(pt_snapshot_t *snap)
{
    pt_main_conf_t *m = &snap->main;
    m->workers = 1;
    m->worker_connections = 10240;
    m->error_log = "stderr";
    m->error_log_level = PT_LOG_NOTICE;
    m->admin_listen = "127.0.0.1:9901";
    m->shutdown_timeout = 30000;
    m->access_log = NULL;
    return 0;
}

static int snapshot_finalize(pt_conf_build_t *b, pt_snapshot_t *snap, const pt_conf_node_t *root)
{
    if (!snap->http_seen)
        return pt_conf_error_at(b->doc, b->err, root->file ? root->file : snap->conf_path, 1, 1,
                                "no \"http\" block: nothing to serve");
    for (size_t i = 0; i < nmodules; i++) {
        if (modules[i]->finalize) {
            int rc = modules[i]->finalize(b, snap);
            if (rc < 0) return rc;
        }
    }
    return 0;
}

pt_snapshot_t *pt_snapshot_load(const char *path, uint64_t generation, pt_conf_err_t *err)
{
    pt_pool_t *pool = pt_pool_create(16384);
    if (!pool) goto oom;
    pt_snapshot_t *snap = pt_pool_calloc(pool, 1, sizeof(*snap));
    if (!snap) goto oom_pool;
    atomic_init(&snap->refs, 1);
    snap->pool = pool;
    snap->generation = generation;
    snap->conf_path = pt_pool_strdup(pool, path);
    char *tmp = pt_pool_strdup(pool, path);
    if (!snap->conf_path || !tmp) goto oom_pool;
    snap->conf_dir = pt_pool_strdup(pool, dirname(tmp));
    if (!snap->conf_dir || main_defaults(snap) < 0 || settings_defaults(pool, &snap->http) < 0 ||
        pt_array_init(&snap->listens, pool, sizeof(pt_listen_conf_t), 4) < 0)
        goto oom_pool;

    pt_conf_doc_t *doc;
    if (pt_conf_parse_file(pool, path, &doc, err) < 0) goto fail;
    pt_conf_build_t b = {doc, err, pool, snap};
    const pt_conf_node_t *root = pt_conf_root(doc);
    if (pt_conf_walk(&b, root, PT_CONF_MAIN, snap) < 0) goto fail;
    if (snapshot_finalize(&b, snap, root) < 0) goto fail;
    return snap;

oom_pool:
    snprintf(err->msg, sizeof(err->msg), "%s: out of memory", path);
fail:
    if (err->msg[0] == '\0') snprintf(err->msg, sizeof(err->msg), "%s: out of memory", path);
    for (size_t i = 0; snap && i < nmodules; i++)
        if (modules[i]->snapshot_free) modules[i]->snapshot_free(snap);
    pt_pool_destroy(pool);
    return NULL;
oom:
    snprintf(err->msg, sizeof(err->msg), "%s: out of memory", path);
    return NULL;
}

pt_snapshot_t *pt_snapshot_ref(pt_snapshot_t *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void pt_snapshot_unref(pt_snapshot_t *s)
{
    if (!s) return;
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1) return;
    for (size_t i = 0; i < nmodules; i++)
        if (modules[i]->snapshot_free) modules[i]->snapshot_free(s);
    pt_pool_destroy(s->pool);
}
