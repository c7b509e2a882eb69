/*
 * Prometheus families per upstream group and server. Their label sets
 * change with the config (and with DNS), so they are not registered series:
 * a metrics collector renders them at scrape time from the shared atomics
 * of ups_gstate_t and ups_peer_t (control thread, where groups change).
 */
#include <inttypes.h>
#include <string.h>

#include "upstream/upstream_int.h"

/* Upper bounds in seconds, as portico_request_duration_seconds. */
static const double lat_bounds[UPS_LAT_BUCKETS] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                   0.25,  0.5,   1,    2.5,   5,    10};

void ups_stats_latency(ups_gstate_t *gs, uint64_t us)
{
    size_t i = 0;
    double s = (double)us / 1e6;
    while (i < UPS_LAT_BUCKETS && s > lat_bounds[i]) i++;
    atomic_fetch_add_explicit(&gs->lat_buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&gs->lat_sum_us, us, memory_order_relaxed);
    atomic_fetch_add_explicit(&gs->lat_count, 1, memory_order_relaxed);
}

static void group_labels(pt_sbuf_t *o, const char *name, const ups_gstate_t *gs)
{
    pt_sbuf_str(o, name);
    pt_sbuf_str(o, "{upstream=\"");
    pt_metrics_label_value(o, gs->name);
    pt_sbuf_str(o, "\"");
}

static void group_value(pt_sbuf_t *o, const char *name, const ups_gstate_t *gs, uint64_t v)
{
    group_labels(o, name, gs);
    pt_sbuf_printf(o, "} %" PRIu64 "\n", v);
}

static bool live(const ups_gstate_t *gs) { return gs->conf != NULL; }

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

/* One family with a value per live group. */
static void per_group(pt_sbuf_t *o, const ups_rt_t *rt, const char *name, const char *type,
                      const char *help, uint64_t (*get)(const ups_gstate_t *gs))
{
    pt_metrics_family_head(o, name, type, help);
    for (size_t i = 0; i < rt->ngroups; i++)
        if (live(rt->groups[i])) group_value(o, name, rt->groups[i], get(rt->groups[i]));
}

static uint64_t g_retries(const ups_gstate_t *gs) { return LOAD(gs->retries); }
static uint64_t g_budget(const ups_gstate_t *gs) { return LOAD(gs->budget_exhausted); }
static uint64_t g_overflow(const ups_gstate_t *gs) { return LOAD(gs->overflow); }
static uint64_t g_no_server(const ups_gstate_t *gs) { return LOAD(gs->no_server); }
static uint64_t g_active(const ups_gstate_t *gs) { return (uint64_t)pt_max(0, LOAD(gs->active)); }
static uint64_t g_pending(const ups_gstate_t *gs) { return (uint64_t)pt_max(0, LOAD(gs->pending)); }
static uint64_t g_conns(const ups_gstate_t *gs) { return (uint64_t)pt_max(0, LOAD(gs->conns)); }

static void responses(pt_sbuf_t *o, const ups_rt_t *rt)
{
    static const char *const classes[6] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
    const char *name = "portico_upstream_responses_total";
    pt_metrics_family_head(o, name, "counter",
           "Responses per upstream group by status class (none: no response from an origin).");
    for (size_t i = 0; i < rt->ngroups; i++) {
        const ups_gstate_t *gs = rt->groups[i];
        if (!live(gs)) continue;
        for (int c = 0; c < 6; c++) {
            group_labels(o, name, gs);
            pt_sbuf_printf(o, ",class=\"%s\"} %" PRIu64 "\n", classes[c], LOAD(gs->responses[c]));
        }
    }
}

static void latency(pt_sbuf_t *o, const ups_rt_t *rt)
{
    const char *name = "portico_upstream_response_seconds";
    pt_metrics_family_head(o, name, "histogram", "Time from the start of an attempt to the origin's response head.");
    for (size_t i = 0; i < rt->ngroups; i++) {
        const ups_gstate_t *gs = rt->groups[i];
        if (!live(gs)) continue;
        uint64_t cum = 0;
        for (int b = 0; b <= UPS_LAT_BUCKETS; b++) {
            cum += LOAD(gs->lat_buckets[b]);
            pt_sbuf_str(o, name);
            pt_sbuf_str(o, "_bucket{upstream=\"");
            pt_metrics_label_value(o, gs->name);
            if (b < UPS_LAT_BUCKETS)
                pt_sbuf_printf(o, "\",le=\"%g\"} %" PRIu64 "\n", lat_bounds[b], cum);
            else
                pt_sbuf_printf(o, "\",le=\"+Inf\"} %" PRIu64 "\n", cum);
        }
        group_labels(o, "portico_upstream_response_seconds_sum", gs);
        pt_sbuf_printf(o, "} %.6f\n", (double)LOAD(gs->lat_sum_us) / 1e6);
        group_value(o, "portico_upstream_response_seconds_count", gs, LOAD(gs->lat_count));
    }
}

typedef uint64_t (*peer_get_fn)(const ups_peer_t *p, int64_t now_ms);

static uint64_t p_requests(const ups_peer_t *p, int64_t now) { return LOAD(p->requests); }
static uint64_t p_failures(const ups_peer_t *p, int64_t now) { return LOAD(p->failures); }
static uint64_t p_ejections(const ups_peer_t *p, int64_t now) { return LOAD(p->ejections_total); }
static uint64_t p_hc_failures(const ups_peer_t *p, int64_t now) { return LOAD(p->hc_failures); }
static uint64_t p_active(const ups_peer_t *p, int64_t now) { return (uint64_t)pt_max(0, LOAD(p->active)); }
static uint64_t p_conns(const ups_peer_t *p, int64_t now) { return (uint64_t)pt_max(0, LOAD(p->conns)); }
static uint64_t p_up(const ups_peer_t *p, int64_t now) { return ups_peer_available(p, now); }

/* One family with a value per server of every live group. */
static void per_server(pt_sbuf_t *o, const ups_rt_t *rt, const char *name, const char *type,
                       const char *help, peer_get_fn get)
{
    int64_t now = ups_now_ms();
    pt_metrics_family_head(o, name, type, help);
    for (size_t i = 0; i < rt->ngroups; i++) {
        ups_gstate_t *gs = rt->groups[i];
        const ups_set_t *set = live(gs) ? ups_set_load(gs) : NULL;
        for (size_t k = 0; set && k < set->n; k++) {
            const ups_peer_t *p = set->m[k].peer;
            group_labels(o, name, gs);
            pt_sbuf_str(o, ",server=\"");
            pt_metrics_label_value(o, p->name);
            pt_sbuf_printf(o, "\"} %" PRIu64 "\n", get(p, now));
        }
    }
}

typedef struct group_family {
    const char *name, *type, *help;
    uint64_t (*get)(const ups_gstate_t *gs);
} group_family_t;

typedef struct server_family {
    const char *name, *type, *help;
    peer_get_fn get;
} server_family_t;

static const group_family_t group_families[] = {
    {"portico_upstream_retries_total", "counter",
     "Retries sent to another server (or again on a fresh connection).", g_retries},
    {"portico_upstream_retry_budget_exhausted_total", "counter",
     "Retries refused because the group's retry budget was spent.", g_budget},
    {"portico_upstream_overflow_total", "counter",
     "Requests answered 503 by circuit breaking (max_requests, max_pending, pending_timeout).",
     g_overflow},
    {"portico_upstream_no_server_total", "counter",
     "Requests answered 503 because no server was available.", g_no_server},
    {"portico_upstream_active_requests", "gauge", "Requests in flight per upstream group.",
     g_active},
    {"portico_upstream_pending_requests", "gauge", "Requests waiting for a connection slot.",
     g_pending},
    {"portico_upstream_connections", "gauge",
     "Open origin connections (busy and idle) per upstream group.", g_conns},
};

static const server_family_t server_families[] = {
    {"portico_upstream_server_up", "gauge",
     "1 when the server takes new requests (enabled, healthy, not ejected).", p_up},
    {"portico_upstream_server_requests_total", "counter", "Attempts sent to the server.",
     p_requests},
    {"portico_upstream_server_failures_total", "counter",
     "Failed attempts: connect errors, resets, timeouts, 5xx.", p_failures},
    {"portico_upstream_server_ejections_total", "counter",
     "Times passive checks ejected the server.", p_ejections},
    {"portico_upstream_server_health_check_failures_total", "counter",
     "Failed active health checks.", p_hc_failures},
    {"portico_upstream_server_active_requests", "gauge", "Requests in flight to the server.",
     p_active},
    {"portico_upstream_server_connections", "gauge",
     "Open connections to the server (busy and idle).", p_conns},
};

void ups_metrics_collect(pt_sbuf_t *o, void *arg)
{
    const ups_rt_t *rt = arg;
    responses(o, rt);
    latency(o, rt);
    for (size_t i = 0; i < pt_countof(group_families); i++) {
        const group_family_t *f = &group_families[i];
        per_group(o, rt, f->name, f->type, f->help, f->get);
    }
    for (size_t i = 0; i < pt_countof(server_families); i++) {
        const server_family_t *f = &server_families[i];
        per_server(o, rt, f->name, f->type, f->help, f->get);
    }
}
