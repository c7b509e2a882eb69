/*
 * Requests per route for Prometheus: portico_route_requests_total with a
 * `route` label ("<server name> <location>"). Routes come and go with
 * reloads, so their counters live in a process-wide registry keyed by
 * that name (kept across reloads), each location of a live snapshot points
 * at its entry, and workers bump shared relaxed atomics at request end. A
 * collector renders the registry at scrape time.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proxy_int.h"

struct pt_route_stats {
    char *name;
    bool live; /* used by the live snapshot */
    _Atomic uint64_t by_class[6]; /* index status/100, 0 = aborted */
    struct pt_route_stats *next;
};

struct pt_route_registry {
    pt_route_stats_t *head;
};

pt_route_registry_t *pt_route_registry_create(void) { return calloc(1, sizeof(pt_route_registry_t)); }

void pt_route_registry_destroy(pt_route_registry_t *reg)
{
    if (!reg) return;
    while (reg->head) {
        pt_route_stats_t *s = reg->head;
        reg->head = s->next;
        free(s->name);
        free(s);
    }
    free(reg);
}

static pt_route_stats_t *stats_get(pt_route_registry_t *reg, const char *name)
{
    for (pt_route_stats_t *s = reg->head; s; s = s->next)
        if (strcmp(s->name, name) == 0) return s;
    pt_route_stats_t *s = calloc(1, sizeof(*s));
    if (!s || !(s->name = strdup(name))) {
        free(s);
        return NULL;
    }
    s->next = reg->head;
    reg->head = s;
    return s;
}

static const char *match_op(pt_loc_match_t m)
{
    switch (m) {
    case PT_LOC_EXACT: return "= ";
    case PT_LOC_PREFIX_NOREGEX: return "^~ ";
    case PT_LOC_REGEX: return "~ ";
    case PT_LOC_REGEX_CASELESS: return "~* ";
    case PT_LOC_PREFIX: break;
    }
    return "";
}

static void bind_location(pt_route_registry_t *reg, const pt_vhost_t *vh, pt_location_t *loc)
{
    char name[512];
    const char *server = vh->names.n ? *pt_array_at(&vh->names, const char *, 0) : "_";
    snprintf(name, sizeof(name), "%s %s%.*s", server, match_op(loc->match), (int)loc->path_len,
             loc->path);
    pt_route_stats_t *s = stats_get(reg, name);
    if (!s) pt_log_error("out of memory: route %s is not counted", name);
    else s->live = true;
    loc->stats = s;
}

void pt_route_registry_bind(pt_route_registry_t *reg, pt_snapshot_t *snap)
{
    for (pt_route_stats_t *s = reg->head; s; s = s->next) s->live = false;
    for (size_t i = 0; i < snap->listens.n; i++) {
        const pt_listen_conf_t *l = pt_array_at(&snap->listens, pt_listen_conf_t, i);
        for (size_t v = 0; v < l->vhosts.n; v++) {
            const pt_vhost_t *vh = *pt_array_at(&l->vhosts, pt_vhost_t *, v);
            for (size_t k = 0; k < vh->locations.n; k++)
                bind_location(reg, vh, *pt_array_at(&vh->locations, pt_location_t *, k));
            if (vh->root_loc) bind_location(reg, vh, vh->root_loc);
        }
    }
}

void pt_route_stats_count(pt_route_stats_t *s, int cls)
{
    if (s) atomic_fetch_add_explicit(&s->by_class[cls], 1, memory_order_relaxed);
}

void pt_route_registry_collect(pt_sbuf_t *o, void *arg)
{
    static const char *const classes[6] = {"aborted", "1xx", "2xx", "3xx", "4xx", "5xx"};
    const pt_route_registry_t *reg = arg;
    pt_metrics_family_head(o, "portico_route_requests_total", "counter",
                           "Requests by route (server name and location) and status class.");
    for (const pt_route_stats_t *s = reg->head; s; s = s->next) {
        if (!s->live) continue;
        for (int c = 0; c < 6; c++) {
            pt_sbuf_str(o, "portico_route_requests_total{route=\"");
            pt_metrics_label_value(o, s->name);
            pt_sbuf_printf(o, "\",class=\"%s\"} %" PRIu64 "\n", classes[c],
                           atomic_load_explicit(&s->by_class[c], memory_order_relaxed));
        }
    }
}
