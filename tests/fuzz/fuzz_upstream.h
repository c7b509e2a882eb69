/*
 * Hand-built upstream groups for fuzz targets of src/upstream: the
 * configuration a snapshot would hold (servers with literal addresses),
 * bound to a runtime made with the real state.c. Include after
 * fuzz_util.h.
 */
#ifndef PT_FUZZ_UPSTREAM_H
#define PT_FUZZ_UPSTREAM_H

#include <string.h>

#include "upstream/upstream_int.h"

#define FUZZ_MAX_SERVERS 4

typedef struct fuzz_server {
    const char *spec; /* a literal address */
    int weight, max_conns;
    bool backup;
} fuzz_server_t;

/* "app": two primaries (one IPv6) and a backup. */
static const fuzz_server_t fuzz_app_servers[] = {
    {"127.0.0.1:8081", 5, 10, false},
    {"[::1]:8082", 1, 0, false},
    {"127.0.0.1:8083", 2, 0, true},
};

/* A group's configuration and the storage it points into. */
typedef struct fuzz_group {
    pt_addr_t addrs[FUZZ_MAX_SERVERS];
    ups_server_t servers[FUZZ_MAX_SERVERS];
    ups_group_t g;
} fuzz_group_t;

/*
 * Fills fg with group name (algorithm lb, health checks hc) of the n
 * servers sv, binds it to its state in rt and publishes its first member
 * set. Returns the state. fg must stay put while rt uses it.
 */
static inline ups_gstate_t *fuzz_group_bind(ups_rt_t *rt, fuzz_group_t *fg, const char *name,
                                            const fuzz_server_t *sv, size_t n, ups_lb_t lb,
                                            ups_hc_type_t hc)
{
    check(n <= FUZZ_MAX_SERVERS);
    for (size_t i = 0; i < n; i++) {
        check(pt_addr_parse(sv[i].spec, strlen(sv[i].spec), 0, &fg->addrs[i]) == 0);
        fg->servers[i] = (ups_server_t){.spec = sv[i].spec, .addrs = &fg->addrs[i], .naddrs = 1,
                                        .weight = sv[i].weight, .max_conns = sv[i].max_conns,
                                        .backup = sv[i].backup};
    }
    fg->g = (ups_group_t){.name = name, .index = rt->ngroups, .servers = fg->servers,
                          .nservers = n, .lb = lb, .hc = {.type = hc}};
    ups_gstate_t *gs = ups_rt_group(rt, name);
    check(gs != NULL);
    gs->conf = &fg->g;
    fg->g.state = gs;
    check(ups_rt_republish(rt, gs) == 0);
    return gs;
}

#endif
