/*
 * Peer availability, slow start, passive health checks (outlier
 * detection), the peak-EWMA latency estimate and the retry budget.
 *
 * Everything here runs on any thread without locks: peer fields are
 * atomics read and written with relaxed ordering. The two places where
 * threads must agree use compare-and-swap:
 *
 *  - ejected_until: 0 -> until claims an ejection, until -> 0 ends it.
 *    Only the thread whose CAS succeeds touches gs->ejected, so the count
 *    of ejected peers goes up once per ejection and down once per expiry.
 *    Expiry is noticed lazily, by the next ups_passive_record() on that
 *    peer or by ups_outlier_tick() on the control thread.
 *  - gs->ejected: reserved (incremented) only while below the cap, so
 *    concurrent ejections of different peers never exceed max_ejected.
 *
 * A peer is available from its ejected_until on, whether or not the
 * expiry has been noticed; ups_member_weight16() therefore takes the
 * later of up_since and ejected_until as the start of slow start, and
 * whoever notices the expiry copies ejected_until into up_since.
 */
#include <math.h>
#include <string.h>

#include "upstream/upstream_int.h"

#define EWMA_TAU_US 10e6 /* peak EWMA time constant: 10 s */

#define RELAXED memory_order_relaxed

int64_t ups_now_ms(void)
{
    return (int64_t)pt_time_mono_ms();
}

bool ups_peer_available(const ups_peer_t *p, int64_t now_ms)
{
    return atomic_load_explicit(&p->admin, RELAXED) == UPS_ADMIN_ENABLED &&
           !atomic_load_explicit(&p->hc_down, RELAXED) &&
           atomic_load_explicit(&p->ejected_until, RELAXED) <= now_ms;
}

/*
 * Slow start: from 10% of the weight at the moment the peer became
 * available to 100% slow_start_ms later, linearly. x16 fixed point so a
 * weight of 1 still ramps in steps; never below 1.
 */
int ups_member_weight16(const ups_member_t *m, int64_t now_ms)
{
    int64_t w16 = (int64_t)(m->weight > 0 ? m->weight : 1) * 16;
    int64_t ramp = (int64_t)m->slow_start_ms;
    if (ramp <= 0) return (int)w16;

    const ups_peer_t *p = m->peer;
    int64_t since = atomic_load_explicit(&p->up_since, RELAXED);
    int64_t until = atomic_load_explicit(&p->ejected_until, RELAXED);
    if (until > since) since = until; /* an expiry not yet noticed */
    int64_t elapsed = now_ms - since;
    if (elapsed >= ramp) return (int)w16;
    if (elapsed < 0) elapsed = 0;
    int64_t w = w16 * (ramp + 9 * elapsed) / (10 * ramp);
    return w > 0 ? (int)w : 1;
}

/* Decrements *v unless it is already 0 (a count healed by the tick). */
static void dec_floor0(_Atomic int *v)
{
    int cur = atomic_load_explicit(v, RELAXED);
    while (cur > 0 &&
           !atomic_compare_exchange_weak_explicit(v, &cur, cur - 1, RELAXED, RELAXED)) {
    }
}

/* Increments *v if it stays <= cap. True when reserved. */
static bool inc_capped(_Atomic int *v, int cap)
{
    int cur = atomic_load_explicit(v, RELAXED);
    while (cur < cap) {
        if (atomic_compare_exchange_weak_explicit(v, &cur, cur + 1, RELAXED, RELAXED))
            return true;
    }
    return false;
}

/*
 * Ends p's ejection if it is due and nobody else did. The winner of the
 * CAS uncounts it and starts slow start at the instant it became
 * available. True when this call ended it.
 */
static bool expire_if_due(ups_gstate_t *gs, ups_peer_t *p, int64_t now_ms)
{
    int64_t until = atomic_load_explicit(&p->ejected_until, RELAXED);
    if (until == 0 || until > now_ms) return false;
    if (!atomic_compare_exchange_strong_explicit(&p->ejected_until, &until, 0, RELAXED, RELAXED))
        return false;
    dec_floor0(&gs->ejected);
    atomic_store_explicit(&p->up_since, until, RELAXED);
    pt_log_info("upstream %s: server %s back from ejection", gs->name, p->name);
    return true;
}

/* base * 2^k, capped at max (or at base when max is lower). */
static uint64_t ejection_ms(const ups_outlier_conf_t *oc, int k)
{
    uint64_t cap = oc->max_ejection_ms > oc->base_ejection_ms ? oc->max_ejection_ms
                                                              : oc->base_ejection_ms;
    uint64_t d = oc->base_ejection_ms;
    for (int i = 0; i < k && d < cap; i++) d *= 2;
    return d < cap ? d : cap;
}

/* The most peers of gs that may be ejected at once. */
static int ejection_cap(ups_gstate_t *gs, const ups_outlier_conf_t *oc)
{
    const ups_set_t *set = ups_set_load(gs);
    size_t n = set ? set->n : 0;
    int pct = oc->max_ejected_pct < 0 ? 0 : oc->max_ejected_pct;
    return (int)(n * (size_t)pct / 100);
}

static void reset_counters(ups_peer_t *p, int64_t now_ms)
{
    atomic_store_explicit(&p->consec_fail, 0, RELAXED);
    atomic_store_explicit(&p->win_start, now_ms, RELAXED);
    atomic_store_explicit(&p->win_total, 0, RELAXED);
    atomic_store_explicit(&p->win_fail, 0, RELAXED);
}

/*
 * Ejects p unless it is already ejected or the group is at its cap.
 * The peer is claimed first, then a slot in the count: a control-thread
 * recount between the two then sees one ejection too many (safe side:
 * fewer ejections), never one too few.
 */
static void try_eject(ups_gstate_t *gs, const ups_outlier_conf_t *oc, ups_peer_t *p,
                      int64_t now_ms, const char *why)
{
    int k = atomic_load_explicit(&p->ejections, RELAXED);
    uint64_t ms = ejection_ms(oc, k);
    if (ms == 0) return;
    int64_t until = now_ms + (int64_t)ms, none = 0;
    if (!atomic_compare_exchange_strong_explicit(&p->ejected_until, &none, until, RELAXED, RELAXED))
        return;
    if (!inc_capped(&gs->ejected, ejection_cap(gs, oc))) {
        /* At the cap: give the claim back; the next failure tries again. */
        atomic_compare_exchange_strong_explicit(&p->ejected_until, &until, 0, RELAXED, RELAXED);
        return;
    }
    atomic_fetch_add_explicit(&p->ejections, 1, RELAXED);
    atomic_fetch_add_explicit(&p->ejections_total, 1, RELAXED);
    reset_counters(p, now_ms);
    pt_log_warn("upstream %s: server %s ejected for %llu ms (%s, ejection %d)", gs->name,
                p->name, (unsigned long long)ms, why, k + 1);
}

/*
 * Counts one result in p's failure-ratio window (a tumbling window of
 * window_ms). True when it is a failure that takes the ratio over the
 * threshold with at least min_requests in the window.
 */
static bool window_record(ups_peer_t *p, const ups_outlier_conf_t *oc, bool failure,
                          int64_t now_ms)
{
    if (oc->failure_ratio_pct <= 0 || oc->window_ms == 0) return false;
    int64_t start = atomic_load_explicit(&p->win_start, RELAXED);
    if (now_ms - start >= (int64_t)oc->window_ms &&
        atomic_compare_exchange_strong_explicit(&p->win_start, &start, now_ms, RELAXED, RELAXED)) {
        /* Races with concurrent increments lose a few counts: benign. */
        atomic_store_explicit(&p->win_total, 0, RELAXED);
        atomic_store_explicit(&p->win_fail, 0, RELAXED);
    }
    uint64_t total = atomic_fetch_add_explicit(&p->win_total, 1, RELAXED) + 1u;
    if (!failure) return false;
    uint64_t fails = atomic_fetch_add_explicit(&p->win_fail, 1, RELAXED) + 1u;
    return total >= (uint64_t)(oc->min_requests > 0 ? oc->min_requests : 1) &&
           fails * 100u >= (uint64_t)oc->failure_ratio_pct * total;
}

static void record_success(ups_peer_t *p)
{
    /* Load first: no cache-line write on the common path. */
    if (atomic_load_explicit(&p->consec_fail, RELAXED) != 0)
        atomic_store_explicit(&p->consec_fail, 0, RELAXED);
    /* A success after the ejection ended: the back-off starts over. */
    if (atomic_load_explicit(&p->ejections, RELAXED) != 0 &&
        atomic_load_explicit(&p->ejected_until, RELAXED) == 0)
        atomic_store_explicit(&p->ejections, 0, RELAXED);
}

/*
 * Call once per finished attempt to p (any thread), whether or not
 * outlier detection is on. Does not count p->requests / p->failures (the
 * caller does). Results of requests that finish while p is ejected do not
 * count towards a new ejection.
 */
void ups_passive_record(ups_gstate_t *gs, const ups_group_t *g, ups_peer_t *p, bool failure,
                        int64_t now_ms)
{
    if (!gs || !g || !p) return;
    expire_if_due(gs, p, now_ms);
    const ups_outlier_conf_t *oc = &g->outlier;
    if (!oc->enabled) return;
    if (!failure) record_success(p);
    if (atomic_load_explicit(&p->ejected_until, RELAXED) > now_ms) return;
    bool ratio_over = window_record(p, oc, failure, now_ms);
    if (!failure) return;

    int consec = atomic_fetch_add_explicit(&p->consec_fail, 1, RELAXED) + 1;
    if (oc->consecutive_failures > 0 && consec >= oc->consecutive_failures)
        try_eject(gs, oc, p, now_ms, "consecutive failures");
    else if (ratio_over)
        try_eject(gs, oc, p, now_ms, "failure ratio");
}

/*
 * Control thread, about once a second: ends due ejections of the members
 * of gs's current set and recounts gs->ejected from them, which also drops
 * peers that left the set while ejected.
 */
void ups_outlier_tick(ups_gstate_t *gs, int64_t now_ms)
{
    const ups_set_t *set = ups_set_load(gs);
    if (!set) return;
    int count = 0;
    for (size_t i = 0; i < set->n; i++) {
        ups_peer_t *p = set->m[i].peer;
        expire_if_due(gs, p, now_ms);
        if (atomic_load_explicit(&p->ejected_until, RELAXED) != 0) count++;
    }
    int cur = atomic_load_explicit(&gs->ejected, RELAXED);
    if (cur != count)
        atomic_compare_exchange_strong_explicit(&gs->ejected, &cur, count, RELAXED, RELAXED);
}

/* ------------------------------------------------------------------ */
/* Peak EWMA                                                           */
/* ------------------------------------------------------------------ */

static double bits_to_double(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof(d));
    return d;
}

static uint64_t double_to_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof(b));
    return b;
}

/* exp(-dt/tau) for the time since the last observation (never > 1). */
static double decay(const ups_peer_t *p, int64_t now_us)
{
    int64_t dt = now_us - atomic_load_explicit(&p->ewma_stamp_us, RELAXED);
    return dt > 0 ? exp(-(double)dt / EWMA_TAU_US) : 1.0;
}

/*
 * Peak EWMA (Finagle): a sample above the estimate replaces it at once,
 * so a server that turns slow is noticed on its first slow response; a
 * lower sample is blended in with a weight that grows with the time since
 * the previous one. Concurrent observers may lose a sample: benign.
 */
void ups_ewma_observe(ups_peer_t *p, uint64_t rtt_ns, int64_t now_us)
{
    double cost = bits_to_double(atomic_load_explicit(&p->ewma_ns, RELAXED));
    double rtt = (double)rtt_ns, next;
    if (cost <= 0 || rtt >= cost) {
        next = rtt;
    } else {
        double w = decay(p, now_us);
        next = cost * w + rtt * (1.0 - w);
    }
    atomic_store_explicit(&p->ewma_ns, double_to_bits(next), RELAXED);
    atomic_store_explicit(&p->ewma_stamp_us, now_us, RELAXED);
    atomic_store_explicit(&p->last_done_us, now_us, RELAXED);
}

void ups_peer_busy(ups_peer_t *p, int64_t now_us)
{
    if (atomic_fetch_add_explicit(&p->active, 1, RELAXED) <= 0)
        atomic_store_explicit(&p->busy_since_us, now_us, RELAXED);
}

double ups_peer_stall_ns(const ups_peer_t *p, int64_t now_us)
{
    if (atomic_load_explicit(&p->active, RELAXED) <= 0) return 0;
    int64_t done = atomic_load_explicit(&p->last_done_us, RELAXED);
    int64_t busy = atomic_load_explicit(&p->busy_since_us, RELAXED);
    int64_t since = done > busy ? done : busy;
    return now_us > since ? (double)(now_us - since) * 1000.0 : 0;
}

/* In nanoseconds, decayed towards 0 since the last sample. */
double ups_ewma_get(const ups_peer_t *p, int64_t now_us)
{
    double cost = bits_to_double(atomic_load_explicit(&p->ewma_ns, RELAXED));
    if (cost <= 0) return 0;
    return cost * decay(p, now_us);
}

/* ---- retry budget ---- */

bool ups_retry_budget_allows(ups_gstate_t *gs, const ups_group_t *g)
{
    if (g->retry_budget_pct < 0) return true;
    int active = atomic_load_explicit(&gs->active, memory_order_relaxed);
    int retries = atomic_load_explicit(&gs->active_retries, memory_order_relaxed);
    int cap = active * g->retry_budget_pct / 100;
    if (cap < g->retry_min_concurrency) cap = g->retry_min_concurrency;
    if (retries < cap) return true;
    atomic_fetch_add_explicit(&gs->budget_exhausted, 1, memory_order_relaxed);
    return false;
}
