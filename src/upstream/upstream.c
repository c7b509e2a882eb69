/*
 * Upstream configuration: `upstream` blocks, `server` lines (hostnames
 * resolved at load, every address becomes a server), `keepalive`, and
 * `proxy_pass`, whose group names are resolved once the whole config has
 * been read (a group may be defined after its first use, as in nginx).
 */
#include <errno.h>
#include <netdb.h>
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
    g->keepalive = 32;
    g->keepalive_timeout = 60000;
    g->keepalive_requests = 1000;
    *slot = g;
    return g;
}

/* Adds every address host:port resolves to. Returns 0, or -EINVAL with err. */
static int add_servers(pt_conf_build_t *b, const pt_conf_node_t *n, size_t argi, ups_group_t *g,
                       int weight, pp_mode_t pp)
{
    const char *spec = n->args[argi].val;
    pt_addr_t addrs[64];
    size_t naddrs = 0;
    if (pt_addr_parse(spec, strlen(spec), 80, &addrs[0]) == 0) {
        naddrs = 1;
    } else {
        char host[256];
        const char *colon = strrchr(spec, ':');
        const char *port = colon ? colon + 1 : "80";
        size_t hl = colon ? (size_t)(colon - spec) : strlen(spec);
        if (hl == 0 || hl >= sizeof(host))
            return pt_conf_err_arg(b, n, argi, "invalid server address \"%s\"", spec);
        /* getaddrinfo takes "0", "" and 70000 (mod 65536): check it ourselves. */
        char *pend;
        long pv = strtol(port, &pend, 10);
        if (port[0] < '0' || port[0] > '9' || *pend || pv < 1 || pv > 65535)
            return pt_conf_err_arg(b, n, argi, "invalid port in \"%s\", expected 1..65535", spec);
        memcpy(host, spec, hl);
        host[hl] = '\0';
        struct addrinfo hints = {0}, *res = NULL, *ai;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICSERV;
        int rc = getaddrinfo(host, port, &hints, &res);
        if (rc != 0)
            return pt_conf_err_arg(b, n, argi, "host not found in \"%s\": %s", spec,
                                   gai_strerror(rc));
        for (ai = res; ai && naddrs < pt_countof(addrs); ai = ai->ai_next) {
            if (ai->ai_addrlen > sizeof(addrs[naddrs].ss)) continue; /* not IPv4/IPv6 */
            memcpy(&addrs[naddrs].ss, ai->ai_addr, ai->ai_addrlen);
            addrs[naddrs].len = ai->ai_addrlen;
            bool dup = false;
            for (size_t k = 0; k < naddrs; k++) dup |= pt_addr_equal(&addrs[k], &addrs[naddrs]);
            if (!dup) naddrs++;
        }
        freeaddrinfo(res);
    }
    ups_server_t *ns = pt_pool_alloc(b->pool, (g->nservers + naddrs) * sizeof(*ns));
    if (!ns) return -ENOMEM;
    if (g->nservers) memcpy(ns, g->servers, g->nservers * sizeof(*ns));
    for (size_t i = 0; i < naddrs; i++) {
        ups_server_t *s = &ns[g->nservers + i];
        memset(s, 0, sizeof(*s));
        s->addr = addrs[i];
        pt_addr_format(&s->addr, s->name, sizeof(s->name));
        s->weight = weight;
        s->pp = pp;
        s->index = g->nservers + i;
        g->total_weight += weight;
    }
    g->servers = ns;
    g->nservers += naddrs;
    return 0;
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
    return 0;
}

static int set_server(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    ups_group_t *g = obj;
    int weight = 1;
    pp_mode_t pp = PP_NONE;
    for (size_t i = 1; i < n->nargs; i++) {
        const char *a = n->args[i].val;
        if (strncmp(a, "weight=", 7) == 0) {
            char *end;
            long v = strtol(a + 7, &end, 10);
            if (*end || end == a + 7 || v < 1 || v > 1000)
                return pt_conf_err_arg(b, n, i, "invalid weight \"%s\", expected 1..1000", a + 7);
            weight = (int)v;
        } else if (strcmp(a, "send_proxy") == 0) {
            pp = PP_V1;
        } else if (strcmp(a, "send_proxy_v2") == 0) {
            pp = PP_V2;
        } else {
            return pt_conf_err_arg(b, n, i, "invalid parameter \"%s\"", a);
        }
    }
    return add_servers(b, n, 0, g, weight, pp);
}

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
            g = group_new(b, uc, p->name);
            if (!g) return -ENOMEM;
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
            int rc = add_servers(b, &fake, 0, g, 1, PP_NONE);
            if (rc < 0) return rc;
        }
        p->loc->handler_conf = g;
    }
    return 0;
}

static int worker_init(pt_worker_t *w);
static void worker_exit(pt_worker_t *w);
static void worker_drain(pt_worker_t *w) { ups_pool_close_all(ups_worker(w)); }

static ups_metrics_t metrics_ids;

static const pt_conf_cmd_t cmds[] = {
    {"upstream", PT_CONF_HTTP, 1, 1, true, set_upstream},
    {"server", PT_CONF_UPSTREAM, 1, 4, false, set_server},
    {"keepalive", PT_CONF_UPSTREAM, 1, 1, false, set_keepalive},
    {"keepalive_timeout", PT_CONF_UPSTREAM, 1, 1, false, set_keepalive_timeout},
    {"keepalive_requests", PT_CONF_UPSTREAM, 1, 1, false, set_keepalive_requests},
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
};

static int worker_init(pt_worker_t *w)
{
    ups_worker_t *uw = calloc(1, sizeof(*uw));
    if (!uw) return -ENOMEM;
    uw->w = w;
    uw->m = &metrics_ids;
    w->mod[PT_MOD_UPSTREAM] = uw;
    return 0;
}

static void worker_exit(pt_worker_t *w)
{
    ups_worker_t *uw = ups_worker(w);
    if (!uw) return;
    ups_pool_close_all(uw);
    free(uw->rr_cw);
    free(uw->rr_base);
    free(uw);
    w->mod[PT_MOD_UPSTREAM] = NULL;
}

ups_worker_t *ups_worker(pt_worker_t *w) { return w->mod[PT_MOD_UPSTREAM]; }

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
    return pt_proxy_module_register(&module);
}
