/*
 * Upstream configuration: `upstream` blocks and their directives, `server`
 * lines (host names resolved at load; each line keeps its addresses, and
 * the runtime state turns every address into a server), and `proxy_pass`,
 * whose group names are resolved once the whole config has been read (a
 * group may be defined after its first use, as in nginx). Also the module
 * descriptor with its worker and control-thread hooks.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/upstream_int.h"

static ups_conf_t *conf_of(pt_conf_build_t *b)
{
    pt_snapshot_t *snap = b->user;
    ups_conf_t *uc = snap->mod[PT_MOD_UPSTREAM];
    if (uc) return uc;
    uc = pt_pool_calloc(b->pool, 1, sizeof(*uc));
    if (!uc || pt_array_init(&uc->groups, b->pool, sizeof(ups_group_t *), 4) < 0 ||
        pt_array_init(&uc->passes, b->pool, sizeof(ups_pass_t), 4) < 0)
        return NULL;
    uc->resolver_timeout_ms = 5000;
    snap->mod[PT_MOD_UPSTREAM] = uc;
    return uc;
}

static ups_group_t *group_find(ups_conf_t *uc, const char *name)
{
    for (size_t i = 0; i < uc->groups.n; i++) {
        ups_group_t *g = *pt_array_at(&uc->groups, ups_group_t *, i);
        if (strcmp(g->name, name) == 0) return g;
    }
    return NULL;
}

static ups_group_t *group_new(pt_conf_build_t *b, ups_conf_t *uc, const char *name)
{
    ups_group_t *g = pt_pool_calloc(b->pool, 1, sizeof(*g));
    ups_group_t **slot = pt_array_push(&uc->groups);
    if (!g || !slot) return NULL;
    g->name = name;
    g->index = uc->groups.n - 1;
    g->lb = UPS_LB_P2C_EWMA;
    g->keepalive = 32;
    g->keepalive_timeout = 60000;
    g->keepalive_requests = 1000;
    g->max_pending = 1024;
    g->pending_timeout_ms = 5000;
    g->retry_budget_pct = 20;
    g->retry_min_concurrency = 3;
    g->hc = (ups_hc_conf_t){UPS_HC_OFF, 5000, 2000, 2, 3, 0, "GET", "/", NULL, 200, 399, NULL};
    g->outlier = (ups_outlier_conf_t){true, 5, 0, 20, 10000, 30000, 300000, 50};
    *slot = g;
    return g;
}

/* ---- key=value parameters ---- */

/* The value of "key=value" in arg a, or NULL when a is another key. */
static const char *kv(const char *a, const char *key)
{
    size_t kl = strlen(key);
    return strncmp(a, key, kl) == 0 && a[kl] == '=' ? a + kl + 1 : NULL;
}

static int kv_int(pt_conf_build_t *b, const pt_conf_node_t *n, size_t i, const char *v, long min,
                  long max, int *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < min || x > max)
        return pt_conf_err_arg(b, n, i, "invalid value \"%s\", expected %ld..%ld", v, min, max);
    *out = (int)x;
    return 0;
}

/* "50%" or "50". */
static int kv_pct(pt_conf_build_t *b, const pt_conf_node_t *n, size_t i, const char *v, int *out)
{
    char tmp[16];
    size_t l = strlen(v);
    if (l && v[l - 1] == '%') l--;
    if (l == 0 || l >= sizeof(tmp))
        return pt_conf_err_arg(b, n, i, "invalid percentage \"%s\", expected 0..100%%", v);
    memcpy(tmp, v, l);
    tmp[l] = '\0';
    return kv_int(b, n, i, tmp, 0, 100, out);
}

static int kv_msec(pt_conf_build_t *b, const pt_conf_node_t *n, size_t i, const char *v,
                   uint64_t min, uint64_t *out)
{
    uint64_t ms;
    if (pt_parse_msec(v, strlen(v), &ms) < 0 || ms < min || ms > 86400000ull)
        return pt_conf_err_arg(b, n, i, "invalid time \"%s\" (e.g. 500ms, 5s, 1m)", v);
    *out = ms;
    return 0;
}

/* ---- server lines ---- */

/* Resolves host:port at load time into s->addrs. */
static int resolve_now(pt_conf_build_t *b, const pt_conf_node_t *n, size_t argi, ups_server_t *s)
{
    pt_addr_t addrs[64];
    size_t naddrs = 0;
    char port[8];
    snprintf(port, sizeof(port), "%u", s->port);
    struct addrinfo hints = {0}, *res = NULL, *ai;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(s->host, port, &hints, &res);
    if (rc != 0) {
        if (s->resolve) {
            /* The resolver may know it later; the server stays empty till then. */
            pt_log_warn("%s:%u: host not found in \"%s\": %s; waiting for the resolver", n->file,
                        n->line, s->spec, gai_strerror(rc));
            return 0;
        }
        return pt_conf_err_arg(b, n, argi, "host not found in \"%s\": %s", s->spec,
                               gai_strerror(rc));
    }
    for (ai = res; ai && naddrs < pt_countof(addrs); ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof(addrs[naddrs].ss)) continue; /* not IPv4/IPv6 */
        memcpy(&addrs[naddrs].ss, ai->ai_addr, ai->ai_addrlen);
        addrs[naddrs].len = ai->ai_addrlen;
        bool dup = false;
        for (size_t k = 0; k < naddrs; k++) dup |= pt_addr_equal(&addrs[k], &addrs[naddrs]);
        if (!dup) naddrs++;
    }
    freeaddrinfo(res);
    s->addrs = pt_pool_alloc(b->pool, (naddrs ? naddrs : 1) * sizeof(*s->addrs));
    if (!s->addrs) return -ENOMEM;
    memcpy(s->addrs, addrs, naddrs * sizeof(*addrs));
    s->naddrs = naddrs;
    return 0;
}

/* True when one of the characters in set occurs in s[0..len). */
static bool strpbrk_n(const char *s, size_t len, const char *set)
{
    for (; *set; set++)
        if (memchr(s, *set, len)) return true;
    return false;
}

/* Fills s from "addr:port" (a literal address or a host name). */
static int parse_server_addr(pt_conf_build_t *b, const pt_conf_node_t *n, size_t argi,
                             ups_server_t *s)
{
    const char *spec = n->args[argi].val;
    s->spec = spec;
    /* pt_addr_parse() also takes listen forms: a bare port and "*:port"
     * would become 0.0.0.0, never meant as an origin. */
    if (spec[0] == '*' || (spec[0] && strspn(spec, "0123456789") == strlen(spec)))
        return pt_conf_err_arg(b, n, argi, "invalid server address \"%s\": no host", spec);
    pt_addr_t a;
    if (pt_addr_parse(spec, strlen(spec), 80, &a) == 0) {
        s->addrs = pt_pool_alloc(b->pool, sizeof(a));
        if (!s->addrs) return -ENOMEM;
        s->addrs[0] = a;
        s->naddrs = 1;
        s->port = pt_addr_port(&a);
        s->resolve = false; /* nothing to re-resolve */
        return 0;
    }
    const char *colon = strrchr(spec, ':');
    const char *port = colon ? colon + 1 : "80";
    size_t hl = colon ? (size_t)(colon - spec) : strlen(spec);
    /* A colon or bracket in the host part is a bare or broken IPv6 address
     * ("::1", "::1:8080"), which splitting at the last colon would misread. */
    if (hl == 0 || hl > 253 || strpbrk_n(spec, hl, "[]:"))
        return pt_conf_err_arg(b, n, argi, "invalid server address \"%s\"", spec);
    /* getaddrinfo takes "0", "" and 70000 (mod 65536): check it ourselves. */
    char *pend;
    long pv = strtol(port, &pend, 10);
    if (port[0] < '0' || port[0] > '9' || *pend || pv < 1 || pv > 65535)
        return pt_conf_err_arg(b, n, argi, "invalid port in \"%s\", expected 1..65535", spec);
    s->port = (uint16_t)pv;
    char *host = pt_pool_alloc(b->pool, hl + 1);
    if (!host) return -ENOMEM;
    memcpy(host, spec, hl);
    host[hl] = '\0';
    s->host = host;
    return resolve_now(b, n, argi, s);
}

static int server_param(pt_conf_build_t *b, const pt_conf_node_t *n, size_t i, ups_server_t *s)
{
    const char *a = n->args[i].val, *v;
    if ((v = kv(a, "weight"))) return kv_int(b, n, i, v, 1, 1000, &s->weight);
    if ((v = kv(a, "max_conns"))) return kv_int(b, n, i, v, 0, 1000000, &s->max_conns);
    if ((v = kv(a, "slow_start"))) return kv_msec(b, n, i, v, 0, &s->slow_start_ms);
    if (strcmp(a, "backup") == 0) s->backup = true;
    else if (strcmp(a, "resolve") == 0) s->resolve = true;
    else if (strcmp(a, "send_proxy") == 0) s->pp = PP_V1;
    else if (strcmp(a, "send_proxy_v2") == 0) s->pp = PP_V2;
    else return pt_conf_err_arg(b, n, i, "invalid parameter \"%s\"", a);
    return 0;
}

/* Appends one server line to g (the config keeps the lines, not addresses).
 * The pool never frees, so the array doubles when nservers reaches a power
 * of two (its capacity): growing by one line at a time kept every old copy,
 * O(n^2) memory for the life of the snapshot. */
static int group_add_server(pt_conf_build_t *b, ups_group_t *g, const ups_server_t *s)
{
    size_t n = g->nservers;
    if ((n & (n - 1)) == 0) { /* 0, 1, 2, 4...: full */
        ups_server_t *ns = pt_pool_alloc(b->pool, (n ? 2 * n : 1) * sizeof(*ns));
        if (!ns) return -ENOMEM;
        if (n) memcpy(ns, g->servers, n * sizeof(*ns));
        g->servers = ns;
    }
    g->servers[n] = *s;
    g->nservers = n + 1;
    return 0;
}

static int set_server(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    ups_group_t *g = obj;
    ups_server_t s = {.weight = 1, .file = n->file, .line = n->line};
    for (size_t i = 1; i < n->nargs; i++) {
        int rc = server_param(b, n, i, &s);
        if (rc < 0) return rc;
    }
    if (g->nservers >= 4096) return pt_conf_err_node(b, n, "too many servers (4096 at most)");
    int rc = parse_server_addr(b, n, 0, &s);
    if (rc < 0) return rc;
    return group_add_server(b, g, &s);
}

static int set_upstream(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    ups_conf_t *uc = conf_of(b);
    if (!uc) return -ENOMEM;
    ups_group_t *old = group_find(uc, n->args[0].val);
    if (old)
        return pt_conf_err_arg(b, n, 0, "duplicate upstream \"%s\" (first at %s:%u)",
                               n->args[0].val, old->file, old->line);
    ups_group_t *g = group_new(b, uc, n->args[0].val);
    if (!g) return -ENOMEM;
    g->file = n->file;
    g->line = n->line;
    int rc = pt_conf_walk(b, n, PT_CONF_UPSTREAM, g);
    if (rc < 0) return rc;
    if (g->nservers == 0) return pt_conf_err_node(b, n, "no servers in upstream \"%s\"", g->name);
    bool primary = false;
    for (size_t i = 0; i < g->nservers; i++) primary |= !g->servers[i].backup;
    if (!primary) return pt_conf_err_node(b, n, "upstream \"%s\" has only backup servers", g->name);
    return 0;
}

/* ---- algorithms ---- */

static int set_lb(pt_conf_build_t *b, const pt_conf_node_t *n, ups_group_t *g, ups_lb_t lb)
{
    if (g->lb_set) return pt_conf_err_node(b, n, "load balancing method is already set");
    g->lb_set = true;
    g->lb = lb;
    return 0;
}

static int set_round_robin(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    return set_lb(b, n, obj, UPS_LB_ROUND_ROBIN);
}

static int set_least_request(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    return set_lb(b, n, obj, UPS_LB_LEAST_REQUEST);
}

static int set_p2c_ewma(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    return set_lb(b, n, obj, UPS_LB_P2C_EWMA);
}

static int set_random(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    return set_lb(b, n, obj, UPS_LB_RANDOM);
}

static int set_hash(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    ups_group_t *g = obj;
    if (n->nargs == 2 && strcmp(n->args[1].val, "consistent") != 0)
        return pt_conf_err_arg(b, n, 1, "invalid parameter \"%s\", expected \"consistent\"",
                               n->args[1].val);
    int rc = set_lb(b, n, g, UPS_LB_HASH);
    if (rc < 0) return rc;
    if (n->args[0].len == 0) return pt_conf_err_arg(b, n, 0, "empty hash key");
    rc = pt_tpl_compile(b, n, 0, &g->hash_key);
    if (rc < 0) return rc;
    bool has_var = false;
    for (size_t i = 0; i < g->hash_key.nparts; i++)
        has_var |= g->hash_key.parts[i].kind != PT_VAR_LITERAL;
    if (!has_var)
        return pt_conf_err_arg(b, n, 0,
                               "hash key \"%s\" has no variable: every request would go to one "
                               "server",
                               n->args[0].val);
    return 0;
}

static int set_hash_balance_factor(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    ups_group_t *g = obj;
    int v;
    int rc = kv_int(b, n, 0, n->args[0].val, 0, 10000, &v);
    if (rc == 0 && v > 0 && v < 100)
        return pt_conf_err_arg(b, n, 0, "hash_balance_factor must be 0 (off) or >= 100");
    if (rc == 0) g->hash_balance_pct = v;
    return rc;
}

static int set_slow_start(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    return pt_conf_get_msec(b, n, 0, 0, 3600000ull, &((ups_group_t *)obj)->slow_start_ms);
}

/* ---- keep-alive pool ---- */

static int set_keepalive(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    long long v;
    int rc = pt_conf_get_int(b, n, 0, 0, 100000, &v);
    if (rc == 0) ((ups_group_t *)obj)->keepalive = (int)v;
    return rc;
}

static int set_keepalive_timeout(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    return pt_conf_get_msec(b, n, 0, 1, 86400000ull, &((ups_group_t *)obj)->keepalive_timeout);
}

static int set_keepalive_requests(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    long long v;
    int rc = pt_conf_get_int(b, n, 0, 1, 1000000000LL, &v);
    if (rc == 0) ((ups_group_t *)obj)->keepalive_requests = (uint64_t)v;
    return rc;
}

/* ---- circuit breaking and retry budget ---- */

static int set_limit(pt_conf_build_t *b, const pt_conf_node_t *n, int *out)
{
    return kv_int(b, n, 0, n->args[0].val, 0, 10000000, out);
}

static int set_max_connections(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    return set_limit(b, n, &((ups_group_t *)obj)->max_connections);
}

static int set_max_requests(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    return set_limit(b, n, &((ups_group_t *)obj)->max_requests);
}

static int set_max_pending(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    return set_limit(b, n, &((ups_group_t *)obj)->max_pending);
}

static int set_pending_timeout(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    return pt_conf_get_msec(b, n, 0, 1, 3600000ull, &((ups_group_t *)obj)->pending_timeout_ms);
}

static int set_retry_budget(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    ups_group_t *g = obj;
    if (strcmp(n->args[0].val, "off") == 0) {
        if (n->nargs > 1) return pt_conf_err_arg(b, n, 1, "unexpected parameter after \"off\"");
        g->retry_budget_pct = -1;
        return 0;
    }
    int rc = kv_pct(b, n, 0, n->args[0].val, &g->retry_budget_pct);
    for (size_t i = 1; rc == 0 && i < n->nargs; i++) {
        const char *v = kv(n->args[i].val, "min_concurrency");
        if (!v) return pt_conf_err_arg(b, n, i, "invalid parameter \"%s\"", n->args[i].val);
        rc = kv_int(b, n, i, v, 0, 100000, &g->retry_min_concurrency);
    }
    return rc;
}

/* ---- health ---- */

/* Three digits at *p, advancing *p; -1 when there are not exactly three. */
static int status_code(const char **p)
{
    const char *s = *p;
    int v = 0, k = 0;
    for (; k < 3 && s[k] >= '0' && s[k] <= '9'; k++) v = v * 10 + (s[k] - '0');
    if (k != 3 || (s[k] >= '0' && s[k] <= '9')) return -1;
    *p = s + 3;
    return v;
}

/* "200-399" or "204" (whole string: sscanf would ignore trailing bytes). */
static int hc_status_range(pt_conf_build_t *b, const pt_conf_node_t *n, size_t i, const char *v,
                           ups_hc_conf_t *hc)
{
    const char *p = v;
    int lo = status_code(&p), hi = lo;
    if (lo >= 0 && *p == '-') {
        p++;
        hi = status_code(&p);
    }
    if (lo < 100 || hi < 0 || *p || hi > 599 || lo > hi)
        return pt_conf_err_arg(b, n, i, "invalid status range \"%s\" (e.g. 200-399 or 204)", v);
    hc->status_lo = lo;
    hc->status_hi = hi;
    return 0;
}

static int hc_param(pt_conf_build_t *b, const pt_conf_node_t *n, size_t i, ups_hc_conf_t *hc)
{
    const char *a = n->args[i].val, *v;
    int port = 0;
    if ((v = kv(a, "type"))) {
        if (strcmp(v, "http") == 0) hc->type = UPS_HC_HTTP;
        else if (strcmp(v, "tcp") == 0) hc->type = UPS_HC_TCP;
        else return pt_conf_err_arg(b, n, i, "invalid type \"%s\", expected http or tcp", v);
        return 0;
    }
    if ((v = kv(a, "interval"))) return kv_msec(b, n, i, v, 10, &hc->interval_ms);
    if ((v = kv(a, "timeout"))) return kv_msec(b, n, i, v, 10, &hc->timeout_ms);
    if ((v = kv(a, "rise"))) return kv_int(b, n, i, v, 1, 100, &hc->rise);
    if ((v = kv(a, "fall"))) return kv_int(b, n, i, v, 1, 100, &hc->fall);
    if ((v = kv(a, "port"))) {
        int rc = kv_int(b, n, i, v, 1, 65535, &port);
        hc->port = (uint16_t)port;
        return rc;
    }
    if ((v = kv(a, "status"))) return hc_status_range(b, n, i, v, hc);
    if ((v = kv(a, "method"))) {
        if (!*v) return pt_conf_err_arg(b, n, i, "empty method");
        for (const char *p = v; *p; p++)
            if (*p < 'A' || *p > 'Z') return pt_conf_err_arg(b, n, i, "invalid method \"%s\"", v);
        hc->method = v;
        return 0;
    }
    if ((v = kv(a, "uri"))) {
        if (v[0] != '/' || strpbrk(v, " \r\n\t"))
            return pt_conf_err_arg(b, n, i, "invalid uri \"%s\": must start with / and have no spaces", v);
        hc->uri = v;
        return 0;
    }
    if ((v = kv(a, "host"))) {
        if (!*v || strpbrk(v, " \r\n\t/"))
            return pt_conf_err_arg(b, n, i, "invalid host \"%s\"", v);
        hc->host = v;
        return 0;
    }
    if ((v = kv(a, "body"))) {
        if (!*v || strpbrk(v, "\r\n")) return pt_conf_err_arg(b, n, i, "invalid body \"%s\"", v);
        hc->body = v;
        return 0;
    }
    return pt_conf_err_arg(b, n, i, "invalid parameter \"%s\"", a);
}

static int set_health_check(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    ups_group_t *g = obj;
    if (g->hc.type != UPS_HC_OFF) return pt_conf_err_node(b, n, "duplicate health_check");
    g->hc.type = UPS_HC_HTTP;
    size_t timeout_arg = n->nargs; /* none */
    for (size_t i = 0; i < n->nargs; i++) {
        int rc = hc_param(b, n, i, &g->hc);
        if (rc < 0) return rc;
        if (kv(n->args[i].val, "timeout")) timeout_arg = i;
    }
    if (g->hc.timeout_ms <= g->hc.interval_ms) return 0;
    /* Only a timeout written out is wrong: the default one (2 s) shrinks to
     * a shorter interval. */
    if (timeout_arg == n->nargs) {
        g->hc.timeout_ms = g->hc.interval_ms;
        return 0;
    }
    return pt_conf_err_arg(b, n, timeout_arg, "health_check timeout must not exceed its interval");
}

static int outlier_param(pt_conf_build_t *b, const pt_conf_node_t *n, size_t i,
                         ups_outlier_conf_t *o)
{
    const char *a = n->args[i].val, *v;
    if ((v = kv(a, "consecutive_failures"))) return kv_int(b, n, i, v, 0, 100000, &o->consecutive_failures);
    if ((v = kv(a, "failure_ratio"))) return kv_pct(b, n, i, v, &o->failure_ratio_pct);
    if ((v = kv(a, "min_requests"))) return kv_int(b, n, i, v, 1, 1000000, &o->min_requests);
    if ((v = kv(a, "window"))) return kv_msec(b, n, i, v, 100, &o->window_ms);
    if ((v = kv(a, "ejection_time"))) return kv_msec(b, n, i, v, 10, &o->base_ejection_ms);
    if ((v = kv(a, "max_ejection_time"))) return kv_msec(b, n, i, v, 10, &o->max_ejection_ms);
    if ((v = kv(a, "max_ejected"))) return kv_pct(b, n, i, v, &o->max_ejected_pct);
    return pt_conf_err_arg(b, n, i, "invalid parameter \"%s\"", a);
}

static int set_outlier_detection(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    ups_group_t *g = obj;
    if (n->nargs == 1 && strcmp(n->args[0].val, "off") == 0) {
        g->outlier.enabled = false;
        return 0;
    }
    g->outlier.enabled = true;
    size_t max_arg = n->nargs; /* none */
    for (size_t i = 0; i < n->nargs; i++) {
        int rc = outlier_param(b, n, i, &g->outlier);
        if (rc < 0) return rc;
        if (kv(n->args[i].val, "max_ejection_time")) max_arg = i;
    }
    if (g->outlier.max_ejection_ms >= g->outlier.base_ejection_ms) return 0;
    /* Only a max written out is wrong: the default one (300 s) rises to a
     * longer ejection_time, as in Envoy. */
    if (max_arg == n->nargs) {
        g->outlier.max_ejection_ms = g->outlier.base_ejection_ms;
        return 0;
    }
    return pt_conf_err_arg(b, n, max_arg, "max_ejection_time must be at least ejection_time");
}

/* ---- http level: state file and resolver ---- */

static int set_state_file(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    ups_conf_t *uc = conf_of(b);
    if (!uc) return -ENOMEM;
    const char *v = n->args[0].val;
    if (strcmp(v, "off") == 0) {
        uc->state_file = NULL;
        return 0;
    }
    const pt_snapshot_t *snap = b->user;
    if (v[0] != '/' && snap->conf_dir) {
        size_t l = strlen(snap->conf_dir) + strlen(v) + 2;
        char *p = pt_pool_alloc(b->pool, l);
        if (!p) return -ENOMEM;
        snprintf(p, l, "%s/%s", snap->conf_dir, v);
        v = p;
    }
    uc->state_file = v;
    return 0;
}

static int set_resolver(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    ups_conf_t *uc = conf_of(b);
    if (!uc) return -ENOMEM;
    uc->nresolvers = 0;
    for (size_t i = 0; i < n->nargs; i++) {
        const char *a = n->args[i].val, *v;
        if ((v = kv(a, "valid"))) {
            int rc = kv_msec(b, n, i, v, 1000, &uc->resolver_valid_ms);
            if (rc < 0) return rc;
            continue;
        }
        if (uc->nresolvers == pt_countof(uc->resolver))
            return pt_conf_err_arg(b, n, i, "too many resolvers (%zu at most)",
                                   pt_countof(uc->resolver));
        if (pt_addr_parse(a, strlen(a), 53, &uc->resolver[uc->nresolvers]) < 0)
            return pt_conf_err_arg(b, n, i, "invalid resolver address \"%s\"", a);
        uc->nresolvers++;
    }
    if (uc->nresolvers == 0) return pt_conf_err_node(b, n, "no resolver address");
    return 0;
}

static int set_resolver_timeout(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    ups_conf_t *uc = conf_of(b);
    if (!uc) return -ENOMEM;
    return pt_conf_get_msec(b, n, 0, 10, 60000, &uc->resolver_timeout_ms);
}

static int set_proxy_pass(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    pt_location_t *loc = pt_conf_location(obj);
    if (!loc) return pt_conf_err_node(b, n, "\"proxy_pass\" is only allowed in a location");
    if (loc->action != PT_ACT_NONE)
        return pt_conf_err_node(b, n, "duplicate action in this location");
    const char *url = n->args[0].val;
    if (strncmp(url, "http://", 7) != 0)
        return pt_conf_err_arg(b, n, 0, "invalid URL \"%s\": only http:// is supported", url);
    const char *name = url + 7;
    if (strchr(name, '/'))
        return pt_conf_err_arg(b, n, 0,
                               "a URI part in proxy_pass (\"%s\") is not supported: the request "
                               "URI is passed unchanged",
                               url);
    if (*name == '\0') return pt_conf_err_arg(b, n, 0, "invalid URL \"%s\": no host", url);
    ups_conf_t *uc = conf_of(b);
    if (!uc) return -ENOMEM;
    ups_pass_t *p = pt_array_push(&uc->passes);
    if (!p) return -ENOMEM;
    *p = (ups_pass_t){loc, name, n};
    loc->action = PT_ACT_HANDLER;
    loc->handler = ups_forward;
    return 0;
}

/* proxy_pass http://host:port without an upstream block: a group of one line. */
static ups_group_t *implicit_group(pt_conf_build_t *b, ups_conf_t *uc, const ups_pass_t *p)
{
    ups_group_t *g = group_new(b, uc, p->name);
    if (!g) return NULL;
    g->implicit = true;
    g->file = p->node->file;
    g->line = p->node->line;
    pt_conf_node_t fake = *p->node;
    pt_conf_arg_t a = p->node->args[0];
    a.val = (char *)p->name;
    a.col += 7 + (a.quoted ? 1 : 0);
    a.quoted = false;
    fake.args = &a;
    fake.nargs = 1;
    ups_server_t s = {.weight = 1, .file = fake.file, .line = fake.line};
    if (parse_server_addr(b, &fake, 0, &s) < 0 || group_add_server(b, g, &s) < 0) return NULL;
    return g;
}

/* Resolves proxy_pass names: a group, else an address (an implicit group). */
static int finalize(pt_conf_build_t *b, pt_snapshot_t *snap)
{
    ups_conf_t *uc = snap->mod[PT_MOD_UPSTREAM];
    if (!uc) return 0;
    for (size_t i = 0; i < uc->passes.n; i++) {
        ups_pass_t *p = pt_array_at(&uc->passes, ups_pass_t, i);
        ups_group_t *g = group_find(uc, p->name);
        if (!g) {
            if (!strchr(p->name, ':'))
                return pt_conf_err_arg(b, p->node, 0,
                                       "upstream \"%s\" is not defined (no upstream block and no "
                                       "port given)",
                                       p->name);
            g = implicit_group(b, uc, p);
            if (!g) return b->err->msg[0] ? -EINVAL : -ENOMEM;
        }
        p->loc->handler_conf = g;
    }
    for (size_t i = 0; i < uc->groups.n; i++)
        (*pt_array_at(&uc->groups, ups_group_t *, i))->resolve_valid_ms = uc->resolver_valid_ms;
    return 0;
}

static ups_metrics_t metrics_ids;

static int worker_init(pt_worker_t *w)
{
    ups_worker_t *uw = calloc(1, sizeof(*uw));
    if (!uw) return -ENOMEM;
    uw->w = w;
    uw->rt = w->ctl ? w->ctl->mod[PT_MOD_UPSTREAM] : NULL;
    uw->m = &metrics_ids;
    uw->rng = w->rng ^ 0x9e3779b97f4a7c15ull;
    if (uw->rng == 0) uw->rng = 1;
    w->mod[PT_MOD_UPSTREAM] = uw;
    return 0;
}

static void worker_exit(pt_worker_t *w)
{
    ups_worker_t *uw = ups_worker(w);
    if (!uw) return;
    ups_pool_close_all(uw);
    ups_pending_fail_all(uw);
    for (size_t i = 0; i < uw->nlbw; i++) free(uw->lbw[i].cw);
    free(uw->lbw);
    free(uw);
    w->mod[PT_MOD_UPSTREAM] = NULL;
}

static void worker_drain(pt_worker_t *w) { ups_pool_close_all(ups_worker(w)); }

ups_worker_t *ups_worker(pt_worker_t *w) { return w->mod[PT_MOD_UPSTREAM]; }

/* ---- control thread ---- */

static int control_init(pt_control_t *ctl)
{
    ups_rt_t *rt = ups_rt_create(ctl);
    if (!rt) return -ENOMEM;
    ctl->mod[PT_MOD_UPSTREAM] = rt;
    rt->health = ups_health_create(rt);
    rt->resolve = ups_resolve_create(rt);
    if (!rt->health || !rt->resolve) return -ENOMEM;
    int rc = ups_admin_register(rt);
    if (rc < 0) return rc;
    return pt_metrics_collector_add(ups_metrics_collect, rt);
}

static int control_adopt(pt_control_t *ctl, pt_snapshot_t *snap)
{
    return ups_rt_adopt(ctl->mod[PT_MOD_UPSTREAM], snap);
}

static void control_exit(pt_control_t *ctl)
{
    ups_rt_t *rt = ctl->mod[PT_MOD_UPSTREAM];
    if (!rt) return;
    pt_metrics_collector_remove(ups_metrics_collect, rt);
    ups_rt_destroy(rt);
    ctl->mod[PT_MOD_UPSTREAM] = NULL;
}

static const pt_conf_cmd_t cmds[] = {
    {"upstream", PT_CONF_HTTP, 1, 1, true, set_upstream},
    {"upstream_state_file", PT_CONF_HTTP, 1, 1, false, set_state_file},
    {"resolver", PT_CONF_HTTP, 1, 5, false, set_resolver},
    {"resolver_timeout", PT_CONF_HTTP, 1, 1, false, set_resolver_timeout},
    {"server", PT_CONF_UPSTREAM, 1, 8, false, set_server},
    {"round_robin", PT_CONF_UPSTREAM, 0, 0, false, set_round_robin},
    {"least_request", PT_CONF_UPSTREAM, 0, 0, false, set_least_request},
    {"least_conn", PT_CONF_UPSTREAM, 0, 0, false, set_least_request},
    {"p2c_ewma", PT_CONF_UPSTREAM, 0, 0, false, set_p2c_ewma},
    {"random", PT_CONF_UPSTREAM, 0, 0, false, set_random},
    {"hash", PT_CONF_UPSTREAM, 1, 2, false, set_hash},
    {"hash_balance_factor", PT_CONF_UPSTREAM, 1, 1, false, set_hash_balance_factor},
    {"slow_start", PT_CONF_UPSTREAM, 1, 1, false, set_slow_start},
    {"keepalive", PT_CONF_UPSTREAM, 1, 1, false, set_keepalive},
    {"keepalive_timeout", PT_CONF_UPSTREAM, 1, 1, false, set_keepalive_timeout},
    {"keepalive_requests", PT_CONF_UPSTREAM, 1, 1, false, set_keepalive_requests},
    {"max_connections", PT_CONF_UPSTREAM, 1, 1, false, set_max_connections},
    {"max_requests", PT_CONF_UPSTREAM, 1, 1, false, set_max_requests},
    {"max_pending", PT_CONF_UPSTREAM, 1, 1, false, set_max_pending},
    {"pending_timeout", PT_CONF_UPSTREAM, 1, 1, false, set_pending_timeout},
    {"retry_budget", PT_CONF_UPSTREAM, 1, 2, false, set_retry_budget},
    {"health_check", PT_CONF_UPSTREAM, 0, 11, false, set_health_check},
    {"outlier_detection", PT_CONF_UPSTREAM, 1, 7, false, set_outlier_detection},
    {"proxy_pass", PT_CONF_LOCATION, 1, 1, false, set_proxy_pass},
    {NULL, 0, 0, 0, false, NULL},
};

static const pt_proxy_module_t module = {
    .name = "upstream",
    .slot = PT_MOD_UPSTREAM,
    .cmds = cmds,
    .finalize = finalize,
    .worker_init = worker_init,
    .worker_exit = worker_exit,
    .worker_drain = worker_drain,
    .control_init = control_init,
    .control_adopt = control_adopt,
    .control_exit = control_exit,
};

/* Share of origin requests that went on a pooled connection. */
static double reuse_ratio(void *arg)
{
    const ups_metrics_t *m = arg;
    double fresh = pt_metric_value(m->reqs_new), reused = pt_metric_value(m->reqs_reused);
    return fresh + reused > 0 ? reused / (fresh + reused) : 0;
}

int pt_upstream_init(void)
{
    metrics_ids.reqs_new = pt_metric_counter("portico_upstream_requests_total",
                                             "Requests sent to origins, by connection reuse.",
                                             "connection=\"new\"");
    metrics_ids.reqs_reused = pt_metric_counter("portico_upstream_requests_total",
                                                "Requests sent to origins, by connection reuse.",
                                                "connection=\"reused\"");
    metrics_ids.errors = pt_metric_counter("portico_upstream_errors_total",
                                           "Origin failures: connect, reset, timeout, bad response.",
                                           "");
    pt_metric_gauge_fn("portico_upstream_pool_reuse_ratio",
                       "Share of origin requests sent on a reused keep-alive connection.", "",
                       reuse_ratio, &metrics_ids);
    return pt_proxy_module_register(&module);
}
