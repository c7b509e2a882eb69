/*
 * The /upstreams admin endpoints (JSON), on the control thread:
 *
 *   GET  /upstreams                                   {"upstreams":[GROUP...]}
 *   GET  /upstreams/NAME                              GROUP
 *   GET  /upstreams/NAME/servers/ADDR                 SERVER
 *   POST /upstreams/NAME/servers/ADDR/drain|enable    SERVER
 *   POST /upstreams/NAME/servers/ADDR/weight          SERVER; body {"weight":N|null}
 *
 * NAME and ADDR are percent-decoded after the path is split on '/', so
 * "%5B%3A%3A1%5D%3A80" names [::1]:80. ADDR is a server address as the
 * listing shows it (one per resolved address, not the `server` line); a
 * string that is no IP:PORT is 400, an address not in the group 404.
 *
 * Only groups of the live configuration exist here (gs->conf set). State is
 * read through the runtime contract: the group's current set and the
 * peers' atomics; changes go through ups_rt_set_admin/ups_rt_set_weight,
 * which also persist them in the upstream_state_file. Input is validated
 * before anything changes: bad input is 400, unknown group, server or
 * action 404, a wrong method 405, each with {"error":"..."}.
 */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "upstream/upstream_int.h"

#define JSON_TYPE "application/json"
#define LIST_PATH "/upstreams"
#define ITEM_PREFIX "/upstreams/"
#define WEIGHT_MAX 1000
/* NAME, "servers", ADDR, ACTION: one more means the path is not ours. */
#define MAX_SEGMENTS 5

/* ------------------------------------------------------------------ */
/* Rendering                                                           */
/* ------------------------------------------------------------------ */

static const char *lb_name(ups_lb_t lb)
{
    switch (lb) {
    case UPS_LB_P2C_EWMA: return "p2c_ewma";
    case UPS_LB_ROUND_ROBIN: return "round_robin";
    case UPS_LB_LEAST_REQUEST: return "least_request";
    case UPS_LB_RANDOM: return "random";
    case UPS_LB_HASH: return "hash";
    }
    return "unknown";
}

static const char *hc_name(ups_hc_type_t t)
{
    switch (t) {
    case UPS_HC_OFF: return "off";
    case UPS_HC_TCP: return "tcp";
    case UPS_HC_HTTP: return "http";
    }
    return "unknown";
}

/* Why a server takes no new requests, the admin's choice first. */
static const char *server_state(const ups_peer_t *p, int64_t now_ms)
{
    if (atomic_load_explicit(&p->admin, memory_order_relaxed) == UPS_ADMIN_DRAIN) return "drain";
    if (atomic_load_explicit(&p->hc_down, memory_order_relaxed)) return "down";
    if (atomic_load_explicit(&p->ejected_until, memory_order_relaxed) > now_ms) return "ejected";
    return "up";
}

static unsigned long long load_u64(const _Atomic uint64_t *v)
{
    return (unsigned long long)atomic_load_explicit(v, memory_order_relaxed);
}

static int load_int(const _Atomic int *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

typedef struct render_clock {
    int64_t now_ms; /* ups_now_ms(): ejection deadlines */
    int64_t now_us; /* EWMA decay */
} render_clock_t;

static void render_server(pt_sbuf_t *b, const ups_group_t *g, const ups_member_t *m,
                          const render_clock_t *clk)
{
    const ups_peer_t *p = m->peer;
    int config_weight = m->spec < g->nservers ? g->servers[m->spec].weight : m->weight;
    bool drain = load_int(&p->admin) == UPS_ADMIN_DRAIN;
    bool down = atomic_load_explicit(&p->hc_down, memory_order_relaxed);
    pt_sbuf_str(b, "{\"address\":");
    pt_sbuf_json_str(b, p->name, strlen(p->name));
    pt_sbuf_printf(b,
                   ",\"weight\":%d,\"config_weight\":%d,\"backup\":%s,\"state\":\"%s\","
                   "\"admin\":\"%s\",\"health\":\"%s\",\"active\":%d,\"connections\":%d,"
                   "\"ewma_ms\":%.3f,",
                   m->weight, config_weight, m->backup ? "true" : "false",
                   server_state(p, clk->now_ms), drain ? "drain" : "enabled",
                   down ? "down" : "up", load_int(&p->active), load_int(&p->conns),
                   ups_ewma_get(p, clk->now_us) / 1e6);
    pt_sbuf_printf(b, "\"requests\":%llu,\"failures\":%llu,\"ejections\":%llu,\"max_conns\":%d}",
                   load_u64(&p->requests), load_u64(&p->failures),
                   load_u64(&p->ejections_total), m->max_conns);
}

static void render_group(pt_sbuf_t *b, ups_gstate_t *gs, const render_clock_t *clk)
{
    const ups_group_t *g = gs->conf;
    pt_sbuf_str(b, "{\"name\":");
    pt_sbuf_json_str(b, gs->name, strlen(gs->name));
    pt_sbuf_printf(b, ",\"algorithm\":\"%s\",\"health_check\":\"%s\",", lb_name(g->lb),
                   hc_name(g->hc.type));
    pt_sbuf_printf(b,
                   "\"active\":%d,\"connections\":%d,\"pending\":%d,\"ejected\":%d,"
                   "\"requests\":%llu,\"retries\":%llu,\"budget_exhausted\":%llu,"
                   "\"overflow\":%llu,\"no_server\":%llu,",
                   load_int(&gs->active), load_int(&gs->conns), load_int(&gs->pending),
                   load_int(&gs->ejected), load_u64(&gs->requests), load_u64(&gs->retries),
                   load_u64(&gs->budget_exhausted), load_u64(&gs->overflow),
                   load_u64(&gs->no_server));
    pt_sbuf_printf(b,
                   "\"responses\":{\"1xx\":%llu,\"2xx\":%llu,\"3xx\":%llu,\"4xx\":%llu,"
                   "\"5xx\":%llu,\"none\":%llu},",
                   load_u64(&gs->responses[1]), load_u64(&gs->responses[2]),
                   load_u64(&gs->responses[3]), load_u64(&gs->responses[4]),
                   load_u64(&gs->responses[5]), load_u64(&gs->responses[0]));
    pt_sbuf_str(b, "\"servers\":[");
    const ups_set_t *s = ups_set_load(gs);
    for (size_t i = 0; s != NULL && i < s->n; i++) {
        if (i > 0) pt_sbuf_str(b, ",");
        render_server(b, g, &s->m[i], clk);
    }
    pt_sbuf_str(b, "]}");
}

static render_clock_t clock_now(void)
{
    return (render_clock_t){.now_ms = ups_now_ms(), .now_us = (int64_t)pt_time_mono_us()};
}

/* Hands b (with a final newline) to resp as JSON. Returns 0 or -ENOMEM. */
static int reply_json(pt_admin_response_t *resp, int status, pt_sbuf_t *b)
{
    pt_sbuf_str(b, "\n");
    if (b->oom) {
        free(b->p);
        return -ENOMEM;
    }
    resp->status = status;
    resp->content_type = JSON_TYPE;
    resp->body = b->p;
    resp->body_len = b->len;
    return 0;
}

static int reply_error(pt_admin_response_t *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int reply_error(pt_admin_response_t *resp, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap); /* a truncated message is still a message */
    va_end(ap);
    resp->status = status;
    return pt_admin_json_error(resp, msg);
}

static int reply_group(pt_admin_response_t *resp, ups_gstate_t *gs)
{
    render_clock_t clk = clock_now();
    pt_sbuf_t b = {0};
    render_group(&b, gs, &clk);
    return reply_json(resp, 200, &b);
}

static int reply_server(pt_admin_response_t *resp, ups_gstate_t *gs, const char *addr)
{
    const ups_member_t *m = ups_rt_member(gs, addr);
    if (m == NULL)
        return reply_error(resp, 404, "no server \"%s\" in upstream \"%s\"", addr, gs->name);
    render_clock_t clk = clock_now();
    pt_sbuf_t b = {0};
    render_server(&b, gs->conf, m, &clk);
    return reply_json(resp, 200, &b);
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

/* The group of the live configuration with that name, or NULL. */
static ups_gstate_t *find_group(const ups_rt_t *rt, const char *name)
{
    for (size_t i = 0; i < rt->ngroups; i++) {
        ups_gstate_t *gs = rt->groups[i];
        if (gs->conf != NULL && strcmp(gs->name, name) == 0) return gs;
    }
    return NULL;
}

static bool is_get(const pt_admin_request_t *req)
{
    return strcmp(req->method, "GET") == 0;
}

/* GET /upstreams */
static int list_handler(const ups_rt_t *rt, const pt_admin_request_t *req,
                        pt_admin_response_t *resp)
{
    if (!is_get(req)) return reply_error(resp, 405, "%s is not allowed here: use GET", req->method);
    render_clock_t clk = clock_now();
    pt_sbuf_t b = {0};
    pt_sbuf_str(&b, "{\"upstreams\":[");
    bool first = true;
    for (size_t i = 0; i < rt->ngroups; i++) {
        ups_gstate_t *gs = rt->groups[i];
        if (gs->conf == NULL) continue; /* no longer configured */
        if (!first) pt_sbuf_str(&b, ",");
        first = false;
        render_group(&b, gs, &clk);
    }
    pt_sbuf_str(&b, "]}");
    return reply_json(resp, 200, &b);
}

/*
 * The body of a weight change: {"weight":N} with N in 1..1000, or
 * {"weight":null} to go back to the configured weight (*weight = -1).
 * Returns 0, or -EINVAL with the reason in why.
 */
static int parse_weight(const char *body, size_t len, int *weight, char *why, size_t why_size)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(why, why_size, "invalid JSON body: %s", jerr.text);
        return -EINVAL;
    }
    int rc = -EINVAL;
    json_t *v = json_is_object(root) ? json_object_get(root, "weight") : NULL;
    if (v == NULL || json_object_size(root) != 1) {
        snprintf(why, why_size, "the body must be {\"weight\":N} or {\"weight\":null}");
    } else if (json_is_null(v)) {
        *weight = -1;
        rc = 0;
    } else if (!json_is_integer(v) || json_integer_value(v) < 1 ||
               json_integer_value(v) > WEIGHT_MAX) {
        snprintf(why, why_size, "weight must be an integer from 1 to %d, or null", WEIGHT_MAX);
    } else {
        *weight = (int)json_integer_value(v);
        rc = 0;
    }
    json_decref(root);
    return rc;
}

/* Answers what ups_rt_set_* returned: the server as it is now, or an error. */
static int reply_change(pt_admin_response_t *resp, ups_gstate_t *gs, const char *addr, int rc)
{
    if (rc == 0) return reply_server(resp, gs, addr);
    if (rc == -ENOENT)
        return reply_error(resp, 404, "no server \"%s\" in upstream \"%s\"", addr, gs->name);
    if (rc == -EINVAL) return reply_error(resp, 400, "invalid change for server \"%s\"", addr);
    return rc; /* -ENOMEM and friends: 500 */
}

/* POST /upstreams/NAME/servers/ADDR/ACTION, group and server known. */
static int server_action(ups_rt_t *rt, const pt_admin_request_t *req, pt_admin_response_t *resp,
                         ups_gstate_t *gs, const char *addr, const char *action)
{
    bool drain = strcmp(action, "drain") == 0, enable = strcmp(action, "enable") == 0;
    bool weight = strcmp(action, "weight") == 0;
    if (!drain && !enable && !weight)
        return reply_error(resp, 404, "unknown action \"%s\": use drain, enable or weight",
                           action);
    if (strcmp(req->method, "POST") != 0)
        return reply_error(resp, 405, "%s is not allowed here: use POST", req->method);
    if (!weight) {
        int admin = drain ? UPS_ADMIN_DRAIN : UPS_ADMIN_ENABLED;
        return reply_change(resp, gs, addr, ups_rt_set_admin(rt, gs, addr, admin));
    }
    char why[256];
    int w;
    if (parse_weight(req->body, req->body_len, &w, why, sizeof(why)) < 0)
        return reply_error(resp, 400, "%s", why);
    return reply_change(resp, gs, addr, ups_rt_set_weight(rt, gs, addr, w));
}

/*
 * Splits s (modified) on '/' into at most max segments and decodes each.
 * Returns the count, 0 when there are too many or an empty one (not our
 * path: 404), or -EINVAL on a bad percent escape (400).
 */
static int split_path(char *s, char **seg, int max)
{
    int n = 0;
    for (char *p = s; p != NULL; n++) {
        if (n == max) return 0;
        seg[n] = p;
        p = strchr(p, '/');
        if (p != NULL) *p++ = '\0';
        if (seg[n][0] == '\0') return 0;
    }
    for (int i = 0; i < n; i++) {
        if (pt_admin_pct_decode(seg[i]) < 0) return -EINVAL;
    }
    return n;
}

/* A numeric address as the listing shows them ("1.2.3.4:80", "[::1]:80"). */
static bool is_address(const char *s)
{
    pt_addr_t a;
    return strchr(s, ':') != NULL && pt_addr_parse(s, strlen(s), 0, &a) == 0;
}

static int route_item(ups_rt_t *rt, const pt_admin_request_t *req, pt_admin_response_t *resp,
                      char **seg, int n)
{
    bool server_path = (n == 3 || n == 4) && strcmp(seg[1], "servers") == 0;
    if (n != 1 && !server_path) return reply_error(resp, 404, "no such endpoint: %s", req->path);
    ups_gstate_t *gs = find_group(rt, seg[0]);
    if (gs == NULL) return reply_error(resp, 404, "no upstream \"%s\"", seg[0]);
    /* Malformed input is 400; only a well-formed address can be unknown. */
    if (server_path && !is_address(seg[2]))
        return reply_error(resp, 400,
                           "invalid server address \"%s\": expected IP:PORT or [IPv6]:PORT",
                           seg[2]);
    if (n == 4) {
        if (ups_rt_member(gs, seg[2]) == NULL)
            return reply_error(resp, 404, "no server \"%s\" in upstream \"%s\"", seg[2], gs->name);
        return server_action(rt, req, resp, gs, seg[2], seg[3]);
    }
    if (!is_get(req)) return reply_error(resp, 405, "%s is not allowed here: use GET", req->method);
    return n == 1 ? reply_group(resp, gs) : reply_server(resp, gs, seg[2]);
}

/* Everything under /upstreams/ */
static int item_handler(ups_rt_t *rt, const pt_admin_request_t *req, pt_admin_response_t *resp)
{
    char *rest = strdup(req->path + strlen(ITEM_PREFIX));
    if (rest == NULL) return -ENOMEM;
    char *seg[MAX_SEGMENTS];
    int n = split_path(rest, seg, MAX_SEGMENTS);
    int rc;
    if (n < 0)
        rc = reply_error(resp, 400, "bad percent-encoding in %s", req->path);
    else if (n == 0)
        rc = reply_error(resp, 404, "no such endpoint: %s", req->path);
    else
        rc = route_item(rt, req, resp, seg, n);
    free(rest);
    return rc;
}

/*
 * Answers one request for /upstreams or anything under /upstreams/ (any
 * other path is 404), exactly as the registered endpoints do; the fuzz
 * target calls it without a socket. Control thread. Returns 0 (resp
 * filled, its body malloc'd for the caller) or a negative errno (500).
 */
int ups_admin_handle(ups_rt_t *rt, const pt_admin_request_t *req, pt_admin_response_t *resp)
{
    if (strcmp(req->path, LIST_PATH) == 0) return list_handler(rt, req, resp);
    if (strncmp(req->path, ITEM_PREFIX, strlen(ITEM_PREFIX)) == 0)
        return item_handler(rt, req, resp);
    return reply_error(resp, 404, "no such endpoint: %s", req->path);
}

static int admin_handler(const pt_admin_request_t *req, pt_admin_response_t *resp, void *arg)
{
    return ups_admin_handle(arg, req, resp);
}

/*
 * Registers /upstreams and /upstreams/ on the control's admin server (a
 * no-op without one). Control thread, before the admin server starts.
 * Returns 0 or the negative errno of pt_admin_register*.
 */
int ups_admin_register(ups_rt_t *rt)
{
    pt_admin_t *admin = rt->ctl != NULL ? rt->ctl->admin : NULL;
    if (admin == NULL) return 0;
    int rc = pt_admin_register(admin, LIST_PATH, admin_handler, rt);
    if (rc < 0) return rc;
    return pt_admin_register_prefix(admin, ITEM_PREFIX, admin_handler, rt);
}
