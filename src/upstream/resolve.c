/*
 * Re-resolution of `server NAME:PORT resolve;` lines, on the control loop.
 *
 * One job per (group, server line): it asks the resolver (src/dns) for the
 * name's A and AAAA records, and when the address set (with the line's
 * port) differs from the one in use, hands it to ups_rt_set_dynamic(),
 * which publishes a new member set; requests in flight keep their peers.
 * The next query runs when the answer expires: its TTL clamped to
 * [1 s, 1 h], or the `resolver ... valid=` time when configured.
 *
 * A failed lookup (timeout, SERVFAIL, NXDOMAIN, no records) never removes
 * servers: the last addresses stay and the job retries after
 * min(last TTL, 5 s). Failures are logged at warn when they start and then
 * once a minute, and the recovery at notice.
 *
 * Jobs and the resolver outlive reloads: ups_resolve_sync() (after every
 * adopt) keeps the jobs whose line is still there, starts new ones, stops
 * the others, and rebuilds the resolver when `resolver` or
 * `resolver_timeout` changed. Everything here runs on the control thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"
#include "upstream/upstream_int.h"

#define TTL_MIN_MS 1000ull
#define TTL_MAX_MS 3600000ull
#define RETRY_MAX_MS 5000ull
#define FAIL_LOG_EVERY_MS 60000ull
#define MAX_ANSWER (2 * PT_DNS_MAX_ADDRS) /* A + AAAA */

typedef struct rjob {
    ups_resolve_t *rs;
    ups_gstate_t *gs;  /* lives as long as the process */
    char *spec;        /* copies: the snapshot they came from may go */
    char *host;
    uint16_t port;
    uint64_t valid_ms; /* the group's resolve_valid_ms: 0 = follow TTLs */
    pt_timer_t timer;
    pt_dns_query_t *q; /* in flight, or NULL */
    uint64_t ttl_ms;   /* of the last good answer, clamped: paces retries */
    unsigned failures; /* consecutive */
    uint64_t fail_logged_at;
    bool seen;         /* still configured (sync bookkeeping) */
    struct rjob *next;
} rjob_t;

struct ups_resolve {
    ups_rt_t *rt;
    pt_loop_t *loop;
    pt_dns_resolver_t *dns; /* NULL while no job needs it */
    /* the configuration dns was built from */
    pt_addr_t servers[PT_DNS_MAX_SERVERS];
    size_t nservers;
    uint64_t timeout_ms;
    rjob_t *jobs;
};

static void job_start_query(rjob_t *j);

static uint64_t clamp_ms(uint64_t ms) { return pt_min(pt_max(ms, TTL_MIN_MS), TTL_MAX_MS); }

/* ---- address sets ---- */

static void addr_set_port(pt_addr_t *a, uint16_t port)
{
    if (a->ss.ss_family == AF_INET) a->ss.in4.sin_port = htons(port);
    else if (a->ss.ss_family == AF_INET6) a->ss.in6.sin6_port = htons(port);
}

/* Order: IPv4 before IPv6, then by address bytes (a stable member order). */
static int addr_cmp(const void *x, const void *y)
{
    const pt_addr_t *a = x, *b = y;
    if (a->ss.ss_family != b->ss.ss_family) return a->ss.ss_family == AF_INET ? -1 : 1;
    if (a->ss.ss_family == AF_INET)
        return memcmp(&a->ss.in4.sin_addr, &b->ss.in4.sin_addr, sizeof(a->ss.in4.sin_addr));
    return memcmp(&a->ss.in6.sin6_addr, &b->ss.in6.sin6_addr, sizeof(a->ss.in6.sin6_addr));
}

static bool addr_in(const pt_addr_t *a, const pt_addr_t *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (pt_addr_equal(a, &set[i])) return true;
    return false;
}

static bool same_set(const pt_addr_t *a, size_t na, const pt_addr_t *b, size_t nb)
{
    for (size_t i = 0; i < na; i++)
        if (!addr_in(&a[i], b, nb)) return false;
    for (size_t i = 0; i < nb; i++)
        if (!addr_in(&b[i], a, na)) return false;
    return true;
}

/* The addresses the group uses now for j's line: the last dynamic ones,
 * else the ones resolved at load. */
static size_t current_addrs(const rjob_t *j, const pt_addr_t **out)
{
    const ups_gstate_t *gs = j->gs;
    for (size_t i = 0; i < gs->ndyn; i++) {
        if (strcmp(gs->dyn[i].spec, j->spec) == 0 && gs->dyn[i].addrs) {
            *out = gs->dyn[i].addrs;
            return gs->dyn[i].naddrs;
        }
    }
    const ups_group_t *g = gs->conf;
    for (size_t i = 0; g && i < g->nservers; i++) {
        if (g->servers[i].resolve && strcmp(g->servers[i].spec, j->spec) == 0) {
            *out = g->servers[i].addrs;
            return g->servers[i].naddrs;
        }
    }
    *out = NULL;
    return 0;
}

/* "1.2.3.4:80, [::1]:80" (cut with "..." when long). */
static void format_addrs(const pt_addr_t *a, size_t n, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    if (n == 0) snprintf(buf, size, "nothing");
    for (size_t i = 0; i < n; i++) {
        char one[64];
        if (pt_addr_format(&a[i], one, sizeof(one)) < 0) continue;
        int w = snprintf(buf + len, size - len, "%s%s", i ? ", " : "", one);
        if (w < 0 || (size_t)w >= size - len) {
            if (size > 4) snprintf(buf + size - 4, 4, "...");
            return;
        }
        len += (size_t)w;
    }
}

/* ---- answers ---- */

static void job_schedule(rjob_t *j, uint64_t ms) { pt_timer_start(j->rs->loop, &j->timer, ms); }

static void job_failed(rjob_t *j, int status)
{
    uint64_t now = pt_loop_now(j->rs->loop);
    j->failures++;
    if (j->failures == 1 || now - j->fail_logged_at >= FAIL_LOG_EVERY_MS) {
        const pt_addr_t *cur;
        size_t ncur = current_addrs(j, &cur);
        char list[1024];
        format_addrs(cur, ncur, list, sizeof(list));
        pt_log_warn("upstream %s: cannot resolve %s (%s, %u time%s in a row); keeping %s",
                    j->gs->name, j->spec, pt_dns_strerror(status), j->failures,
                    j->failures == 1 ? "" : "s", list);
        j->fail_logged_at = now;
    }
    job_schedule(j, pt_max(pt_min(j->ttl_ms, RETRY_MAX_MS), TTL_MIN_MS));
}

/* Publishes addrs if they differ from the set in use. Returns 0 or -errno. */
static int job_apply(rjob_t *j, pt_addr_t *addrs, size_t n)
{
    const pt_addr_t *cur;
    size_t ncur = current_addrs(j, &cur);
    if (same_set(addrs, n, cur, ncur)) return 0;
    int rc = ups_rt_set_dynamic(j->rs->rt, j->gs, j->spec, addrs, n);
    if (rc < 0) return rc;
    char list[2048];
    format_addrs(addrs, n, list, sizeof(list));
    pt_log_notice("upstream %s: %s now resolves to %s", j->gs->name, j->spec, list);
    return 0;
}

static void on_answer(void *arg, int status, const pt_addr_t *addrs, size_t n, uint32_t ttl_s)
{
    rjob_t *j = arg;
    j->q = NULL;
    if (status != PT_DNS_OK) {
        job_failed(j, status);
        return;
    }
    pt_addr_t set[MAX_ANSWER];
    if (n > MAX_ANSWER) n = MAX_ANSWER; /* cannot happen: A + AAAA at most */
    memcpy(set, addrs, n * sizeof(*set));
    for (size_t i = 0; i < n; i++) addr_set_port(&set[i], j->port);
    qsort(set, n, sizeof(*set), addr_cmp);
    int rc = job_apply(j, set, n);
    if (rc < 0) {
        job_failed(j, rc);
        return;
    }
    if (j->failures)
        pt_log_notice("upstream %s: %s resolves again after %u failure%s", j->gs->name, j->spec,
                      j->failures, j->failures == 1 ? "" : "s");
    j->failures = 0;
    j->ttl_ms = clamp_ms((uint64_t)ttl_s * 1000);
    job_schedule(j, j->valid_ms ? pt_max(j->valid_ms, TTL_MIN_MS) : j->ttl_ms);
}

static void job_start_query(rjob_t *j)
{
    if (!j->rs->dns) return; /* no resolver (out of memory): the next sync retries */
    int rc = pt_dns_resolve(j->rs->dns, j->host, on_answer, j, &j->q);
    if (rc == -EINVAL) {
        pt_log_error("upstream %s: \"%s\" is not a host name the resolver can ask for; it is "
                     "not re-resolved",
                     j->gs->name, j->host);
        return;
    }
    if (rc < 0) job_failed(j, rc);
}

static void on_job_timer(pt_timer_t *t) { job_start_query(t->data); }

/* ---- jobs ---- */

static void job_free(rjob_t *j)
{
    if (j->q) pt_dns_cancel(j->q);
    pt_timer_stop(j->rs->loop, &j->timer);
    free(j->spec);
    free(j->host);
    free(j);
}

static rjob_t *job_find(ups_resolve_t *rs, const ups_gstate_t *gs, const char *spec)
{
    for (rjob_t *j = rs->jobs; j; j = j->next)
        if (j->gs == gs && strcmp(j->spec, spec) == 0) return j;
    return NULL;
}

/* A job for line sv of gs, first query at once. NULL on OOM. */
static rjob_t *job_new(ups_resolve_t *rs, ups_gstate_t *gs, const ups_server_t *sv)
{
    rjob_t *j = calloc(1, sizeof(*j));
    if (!j || !(j->spec = strdup(sv->spec)) || !(j->host = strdup(sv->host))) {
        if (j) free(j->spec);
        free(j);
        return NULL;
    }
    j->rs = rs;
    j->gs = gs;
    j->port = sv->port;
    j->ttl_ms = RETRY_MAX_MS;
    pt_timer_init(&j->timer, on_job_timer, j);
    j->next = rs->jobs;
    rs->jobs = j;
    job_schedule(j, 0);
    return j;
}

/* Marks the jobs of gs's resolvable lines seen, creating missing ones. */
static void jobs_for_group(ups_resolve_t *rs, ups_gstate_t *gs)
{
    const ups_group_t *g = gs->conf;
    for (size_t i = 0; i < g->nservers; i++) {
        const ups_server_t *sv = &g->servers[i];
        if (!sv->resolve || !sv->host) continue;
        rjob_t *j = job_find(rs, gs, sv->spec);
        if (!j && !(j = job_new(rs, gs, sv))) {
            pt_log_error("upstream %s: out of memory; %s is not re-resolved", gs->name, sv->spec);
            continue;
        }
        j->seen = true;
        j->valid_ms = g->resolve_valid_ms;
    }
}

static void jobs_drop_unseen(ups_resolve_t *rs)
{
    rjob_t **pp = &rs->jobs;
    while (*pp) {
        rjob_t *j = *pp;
        if (j->seen) {
            pp = &j->next;
            continue;
        }
        *pp = j->next;
        job_free(j);
    }
}

/* ---- the resolver ---- */

static bool resolver_matches(const ups_resolve_t *rs, const ups_conf_t *uc)
{
    size_t n = uc ? pt_min(uc->nresolvers, (size_t)PT_DNS_MAX_SERVERS) : 0;
    uint64_t timeout = uc ? uc->resolver_timeout_ms : 0;
    if (!rs->dns || rs->nservers != n || rs->timeout_ms != timeout) return false;
    for (size_t i = 0; i < n; i++)
        if (!pt_addr_equal(&rs->servers[i], &uc->resolver[i])) return false;
    return true;
}

/* Drops the resolver; queries in flight are cancelled and asked again at
 * once (by the new one, if any). */
static void resolver_drop(ups_resolve_t *rs)
{
    for (rjob_t *j = rs->jobs; j; j = j->next) {
        if (!j->q) continue;
        j->q = NULL;
        job_schedule(j, 0);
    }
    pt_dns_resolver_destroy(rs->dns); /* cancels the queries */
    rs->dns = NULL;
}

static void resolver_sync(ups_resolve_t *rs, const ups_conf_t *uc)
{
    if (!rs->jobs) {
        if (rs->dns) resolver_drop(rs);
        return;
    }
    if (resolver_matches(rs, uc)) return;
    bool had = rs->dns != NULL;
    if (had) resolver_drop(rs);
    rs->nservers = uc ? pt_min(uc->nresolvers, (size_t)PT_DNS_MAX_SERVERS) : 0;
    if (rs->nservers) memcpy(rs->servers, uc->resolver, rs->nservers * sizeof(*rs->servers));
    rs->timeout_ms = uc ? uc->resolver_timeout_ms : 0;
    rs->dns = pt_dns_resolver_create(rs->loop, rs->servers, rs->nservers, rs->timeout_ms);
    if (!rs->dns) {
        pt_log_error("upstream: out of memory creating the resolver; names are not re-resolved");
        return;
    }
    const pt_addr_t *servers;
    size_t n = pt_dns_resolver_servers(rs->dns, &servers);
    char list[512];
    format_addrs(servers, n, list, sizeof(list));
    pt_log_info("upstream: resolver %s%s", list, rs->nservers ? "" : " (from /etc/resolv.conf)");
    /* A changed resolver may know better: ask again now. Jobs that found
     * no resolver before (out of memory) start too. */
    for (rjob_t *j = rs->jobs; j; j = j->next)
        if (had || (!j->q && !pt_timer_armed(&j->timer))) job_schedule(j, 0);
}

/* ---- contract ---- */

ups_resolve_t *ups_resolve_create(ups_rt_t *rt)
{
    ups_resolve_t *rs = calloc(1, sizeof(*rs));
    if (!rs) return NULL;
    rs->rt = rt;
    rs->loop = rt->ctl ? rt->ctl->loop : NULL;
    return rs;
}

void ups_resolve_sync(ups_resolve_t *rs)
{
    if (!rs || !rs->loop) return;
    ups_rt_t *rt = rs->rt;
    const ups_conf_t *uc = rt->live ? rt->live->mod[PT_MOD_UPSTREAM] : NULL;
    for (rjob_t *j = rs->jobs; j; j = j->next) j->seen = false;
    for (size_t i = 0; i < rt->ngroups; i++)
        if (rt->groups[i]->conf) jobs_for_group(rs, rt->groups[i]);
    jobs_drop_unseen(rs);
    resolver_sync(rs, uc);
}

void ups_resolve_destroy(ups_resolve_t *rs)
{
    if (!rs) return;
    while (rs->jobs) {
        rjob_t *j = rs->jobs;
        rs->jobs = j->next;
        job_free(j);
    }
    pt_dns_resolver_destroy(rs->dns);
    free(rs);
}
