/*
 * Server selection (worker threads): which member of a group's current set
 * gets the next request.
 *
 * A member is usable when its peer is available (enabled, not down, not
 * ejected), not in the request's avoid list and, with max_conns, not full.
 * Primaries are tried first, backups only when no primary is usable.
 *
 * Algorithms:
 *  - p2c_ewma (default): two distinct random usable members, the one with
 *    the lower cost = latency x (in flight + 1) / weight wins, latency being
 *    the peak EWMA or, when longer, how long the member has been busy
 *    without answering
 *    (near-equal loads are a tie, settled at random by weight);
 *  - round_robin: smooth weighted round robin (nginx), per-worker weights;
 *  - least_request: fewest (in flight + 1) / weight, ties rotated;
 *  - random: weighted random;
 *  - hash: Maglev lookup (table built by the control thread with the set),
 *    walking forward through the table past unusable or overloaded members.
 *
 * No allocation and no lock on this path; peer counters are relaxed atomic
 * reads, so a choice may use a value a few nanoseconds old.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <xxhash.h>

#include "upstream/upstream_int.h"

#define MAGLEV_SIZE 65537u /* prime, as the Maglev paper requires */
#define MAGLEV_EMPTY UINT32_MAX
#define MAGLEV_SEED_ORDER 0x6d61676c65763031ull
#define MAGLEV_SEED_OFFSET 0x9e3779b97f4a7c15ull
#define MAGLEV_SEED_SKIP 0xc2b2ae3d27d4eb4full

/* Hash lookup: table slots walked before falling back to a scan. */
#define HASH_WALK_MAX 256
/* P2C: random draws per candidate before a scan from a random start. */
#define P2C_DRAWS 4
/*
 * P2C cost of a peer with no latency estimate and requests in flight
 * (Finagle's penalty): so a new server gets one request, not a flood,
 * before its first answer. An estimate below EWMA_UNKNOWN_NS (decayed
 * after long silence) counts as none.
 */
#define EWMA_PENALTY_NS 1e15
#define EWMA_UNKNOWN_NS 1000.0

#define RELAXED memory_order_relaxed

/* A range of members picked from: the primaries or the backups. */
typedef struct tier {
    size_t lo, hi;        /* m[lo..hi) */
    const uint32_t *table;/* Maglev table of indexes relative to lo, or NULL */
    size_t table_size;
} tier_t;

uint64_t ups_hash_key(const void *p, size_t len)
{
    return XXH3_64bits(p, len);
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    if (x == 0) x = 0x853c49e6748fea9bull; /* xorshift must not start at 0 */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

/* Uniform in [0, n), n < 2^32 (Lemire's multiply, no division). */
static size_t rand_below(ups_pick_t *pk, size_t n)
{
    return (size_t)(((rng_next(pk->rng) >> 32) * (uint64_t)n) >> 32);
}

static int active_of(const ups_member_t *m)
{
    int a = atomic_load_explicit(&m->peer->active, RELAXED);
    return a > 0 ? a : 0;
}

/* ups_member_weight16() without the call when there is no slow start
 * (the common case; this runs per member per pick). */
static int weight16(const ups_member_t *m, int64_t now_ms)
{
    if (m->slow_start_ms == 0 && m->weight > 0) return m->weight * 16;
    return ups_member_weight16(m, now_ms);
}

static bool avoided(const ups_pick_t *pk, const ups_peer_t *p)
{
    for (size_t i = 0; i < pk->navoid; i++)
        if (pk->avoid[i] == p) return true;
    return false;
}

/* May take a request now. Notes in pk->saw_full a member skipped only
 * because it is at max_conns. */
static bool usable(ups_pick_t *pk, const ups_member_t *m)
{
    if (!ups_peer_available(m->peer, pk->now_ms) || avoided(pk, m->peer)) return false;
    if (m->max_conns > 0 && active_of(m) >= m->max_conns) {
        pk->saw_full = true;
        return false;
    }
    return true;
}

/* The first usable member of t scanning from t->lo + start, or -1. */
static ssize_t scan_from(ups_pick_t *pk, const tier_t *t, size_t start)
{
    size_t cnt = t->hi - t->lo, i = t->lo + start % cnt;
    for (size_t k = 0; k < cnt; k++) {
        if (usable(pk, &pk->set->m[i])) return (ssize_t)i;
        if (++i == t->hi) i = t->lo;
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* Algorithms: each returns an index in t, or -1 when none is usable    */
/* ------------------------------------------------------------------ */

/* Weighted random: one pass for the total, one to find the draw. */
static ssize_t pick_random(ups_pick_t *pk, const tier_t *t)
{
    const ups_member_t *m = pk->set->m;
    uint64_t total = 0;
    for (size_t i = t->lo; i < t->hi; i++)
        if (usable(pk, &m[i])) total += (uint64_t)weight16(&m[i], pk->now_ms);
    if (total == 0) return -1;
    uint64_t r = rng_next(pk->rng) % total;
    ssize_t last = -1;
    for (size_t i = t->lo; i < t->hi; i++) {
        if (!usable(pk, &m[i])) continue;
        uint64_t w = (uint64_t)weight16(&m[i], pk->now_ms);
        if (r < w) return (ssize_t)i;
        r -= w;
        last = (ssize_t)i;
    }
    return last; /* a member turned unusable between the passes */
}

static bool lbw_valid(const ups_pick_t *pk)
{
    return pk->lbw && pk->lbw->version == pk->set->version && pk->lbw->n >= pk->set->n &&
           (pk->lbw->cw || pk->set->n == 0);
}

/*
 * Smooth weighted round robin (nginx): every usable member gains its
 * weight, the largest wins and pays back the total. Over a cycle each
 * member is picked exactly in proportion to its weight, interleaved.
 */
static ssize_t pick_round_robin(ups_pick_t *pk, const tier_t *t)
{
    if (!lbw_valid(pk)) return pick_random(pk, t); /* no state (ENOMEM) */
    const ups_member_t *m = pk->set->m;
    int *cw = pk->lbw->cw, total = 0;
    ssize_t best = -1;
    for (size_t i = t->lo; i < t->hi; i++) {
        if (!usable(pk, &m[i])) continue;
        int w = weight16(&m[i], pk->now_ms);
        cw[i] += w;
        total += w;
        if (best < 0 || cw[i] > cw[best]) best = (ssize_t)i;
    }
    if (best >= 0) cw[best] -= total;
    return best;
}

/*
 * Fewest (in flight + 1) / weight, compared by cross-multiplying. The
 * scan starts at a rotating offset so ties do not always go to the first.
 */
static ssize_t pick_least_request(ups_pick_t *pk, const tier_t *t)
{
    const ups_member_t *m = pk->set->m;
    size_t cnt = t->hi - t->lo;
    size_t start = pk->lbw ? pk->lbw->rr_next % cnt : rand_below(pk, cnt);
    size_t i = t->lo + start;
    ssize_t best = -1;
    int64_t best_load = 0, best_w = 1;
    for (size_t k = 0; k < cnt; k++, i = (i + 1 == t->hi) ? t->lo : i + 1) {
        if (!usable(pk, &m[i])) continue;
        int64_t load = (int64_t)active_of(&m[i]) + 1;
        int64_t w = weight16(&m[i], pk->now_ms);
        if (best < 0 || load * best_w < best_load * w) {
            best = (ssize_t)i;
            best_load = load;
            best_w = w;
        }
    }
    /* Rotate only on a pick: an empty primary tier must not skew backups. */
    if (best >= 0 && pk->lbw) pk->lbw->rr_next++;
    return best;
}

/* A uniformly random usable member of t other than `except`, or -1. */
static ssize_t random_usable(ups_pick_t *pk, const tier_t *t, ssize_t except)
{
    size_t cnt = t->hi - t->lo;
    for (int d = 0; d < P2C_DRAWS; d++) {
        ssize_t i = (ssize_t)(t->lo + rand_below(pk, cnt));
        if (i != except && usable(pk, &pk->set->m[i])) return i;
    }
    /* Mostly unusable: scan from a random start (slightly biased). */
    size_t i = t->lo + rand_below(pk, cnt);
    for (size_t k = 0; k < cnt; k++) {
        if ((ssize_t)i != except && usable(pk, &pk->set->m[i])) return (ssize_t)i;
        if (++i == t->hi) i = t->lo;
    }
    return -1;
}

/* Expected wait on m: peak-EWMA latency x (in flight + 1), weight aside. */
static double p2c_load(const ups_pick_t *pk, const ups_member_t *m)
{
    double rtt = ups_ewma_get(m->peer, pk->now_us);
    int active = active_of(m);
    if (rtt < EWMA_UNKNOWN_NS) {
        rtt = active > 0 ? EWMA_PENALTY_NS : 0;
    } else if (active > 0) {
        /* Busy without answering for longer than its EWMA: it is at least
         * that slow now (peak EWMA learns it only from the first slow answer). */
        double stall = ups_peer_stall_ns(m->peer, pk->now_us);
        if (stall > rtt) rtt = stall;
    }
    return rtt * (double)(active + 1);
}

/*
 * Power of two choices on peak-EWMA cost. Loads within 25% or 1 ms of each
 * other are a tie, settled at random in proportion to weight: jitter of a
 * fraction of a millisecond (or one slower first connect, which peak EWMA
 * remembers for seconds) must not send every request of a quiet group to
 * one server, and weights must still share the traffic. Otherwise the lower
 * load / weight wins, so a slow or backed-up server is avoided.
 */
#define P2C_TIE_REL 0.25
#define P2C_TIE_ABS_NS 1e6

static ssize_t pick_p2c(ups_pick_t *pk, const tier_t *t)
{
    ssize_t a = random_usable(pk, t, -1);
    if (a < 0) return -1;
    ssize_t b = random_usable(pk, t, a);
    if (b < 0) return a;
    const ups_member_t *ma = &pk->set->m[a], *mb = &pk->set->m[b];
    double la = p2c_load(pk, ma), lb = p2c_load(pk, mb);
    int wa = weight16(ma, pk->now_ms), wb = weight16(mb, pk->now_ms);
    double diff = la > lb ? la - lb : lb - la;
    if (diff <= P2C_TIE_ABS_NS || diff <= P2C_TIE_REL * (la > lb ? la : lb))
        return rand_below(pk, (size_t)(wa + wb)) < (size_t)wa ? a : b;
    return lb / wb < la / wa ? b : a;
}

/*
 * Bounded load (consistent hashing with bounded loads, Mirrokni et al.):
 * with the new request, a member may hold at most
 * ceil(pct/100 x (in flight over available members + 1) / available),
 * so one whose in-flight count has reached that is skipped. 0 = no bound.
 */
static int64_t hash_bound(const ups_pick_t *pk, const tier_t *t)
{
    int pct = pk->g ? pk->g->hash_balance_pct : 0;
    if (pct <= 0) return 0;
    int64_t total = 0, navail = 0;
    for (size_t i = t->lo; i < t->hi; i++) {
        const ups_member_t *m = &pk->set->m[i];
        if (!ups_peer_available(m->peer, pk->now_ms)) continue;
        total += active_of(m);
        navail++;
    }
    if (navail == 0) return 0;
    int64_t num = (int64_t)pct * (total + 1), den = 100 * navail;
    return (num + den - 1) / den;
}

/*
 * Maglev: the key's slot, else the next slots of the table (which spread
 * an unusable member's keys over the others, and leave every other key
 * where it was), else any usable member.
 */
static ssize_t pick_hash(ups_pick_t *pk, const tier_t *t)
{
    size_t cnt = t->hi - t->lo;
    if (!t->table || t->table_size == 0) return scan_from(pk, t, (size_t)(pk->hash % cnt));
    int64_t bound = hash_bound(pk, t);
    size_t slot = (size_t)(pk->hash % t->table_size);
    uint32_t last = MAGLEV_EMPTY;
    for (int k = 0; k < HASH_WALK_MAX; k++) {
        uint32_t e = t->table[slot];
        if (e != last && e < cnt) {
            last = e;
            const ups_member_t *m = &pk->set->m[t->lo + e];
            if (usable(pk, m) && (bound == 0 || active_of(m) < bound))
                return (ssize_t)(t->lo + e);
        }
        if (++slot == t->table_size) slot = 0;
    }
    return scan_from(pk, t, (size_t)(pk->hash % cnt));
}

static ssize_t pick_in(ups_pick_t *pk, const tier_t *t)
{
    if (t->hi <= t->lo) return -1;
    switch (pk->g ? pk->g->lb : UPS_LB_P2C_EWMA) {
    case UPS_LB_ROUND_ROBIN: return pick_round_robin(pk, t);
    case UPS_LB_LEAST_REQUEST: return pick_least_request(pk, t);
    case UPS_LB_RANDOM: return pick_random(pk, t);
    case UPS_LB_HASH: return pick_hash(pk, t);
    case UPS_LB_P2C_EWMA:
    default: return pick_p2c(pk, t);
    }
}

const ups_member_t *ups_lb_pick(ups_pick_t *pk)
{
    const ups_set_t *set = pk->set;
    if (!set || set->n == 0) return NULL;
    if (!pk->rng) {
        /* No caller state: a private generator for this call. */
        uint64_t seed = (uint64_t)pk->now_us ^ pk->hash;
        ups_pick_t copy = *pk;
        copy.rng = &seed;
        const ups_member_t *m = ups_lb_pick(&copy);
        pk->saw_full = copy.saw_full;
        return m;
    }
    size_t np = set->nprimary <= set->n ? set->nprimary : set->n;

    tier_t primaries = {0, np, set->maglev, set->maglev_size};
    ssize_t i = pick_in(pk, &primaries);
    if (i < 0) {
        tier_t backups = {np, set->n, set->bmaglev, set->bmaglev_size};
        i = pick_in(pk, &backups);
    }
    return i < 0 ? NULL : &set->m[i];
}

int ups_lbw_reset(ups_lbw_t *lbw, const ups_set_t *set)
{
    size_t n = set->n > 0 ? set->n : 1;
    if (n > lbw->n || !lbw->cw) {
        int *cw = realloc(lbw->cw, n * sizeof(*cw));
        if (!cw) return -ENOMEM;
        lbw->cw = cw;
    }
    /* Fresh weights: every member starts level, as nginx does on reload. */
    memset(lbw->cw, 0, n * sizeof(*lbw->cw));
    lbw->n = set->n;
    lbw->version = set->version;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Maglev table (control thread)                                       */
/* ------------------------------------------------------------------ */

typedef struct mag_entry {
    uint64_t order;   /* hash of the name: the fill order */
    uint32_t idx;     /* in m[] */
    uint32_t pos;     /* current slot of its permutation */
    uint32_t skip;
    uint64_t weight, target;
} mag_entry_t;

static int mag_cmp(const void *a, const void *b)
{
    const mag_entry_t *x = a, *y = b;
    if (x->order != y->order) return x->order < y->order ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static void mag_init(mag_entry_t *e, const ups_member_t *m, uint32_t idx)
{
    const char *name = m->peer->name;
    size_t len = strnlen(name, sizeof(m->peer->name));
    e->order = XXH64(name, len, MAGLEV_SEED_ORDER);
    e->idx = idx;
    e->pos = (uint32_t)(XXH64(name, len, MAGLEV_SEED_OFFSET) % MAGLEV_SIZE);
    e->skip = (uint32_t)(XXH64(name, len, MAGLEV_SEED_SKIP) % (MAGLEV_SIZE - 1) + 1);
    e->weight = (uint64_t)(m->weight > 0 ? m->weight : 1);
    e->target = 0;
}

/* Takes e's next free slot in its permutation. */
static void mag_fill_one(mag_entry_t *e, uint32_t *table)
{
    while (table[e->pos] != MAGLEV_EMPTY) {
        e->pos += e->skip;
        if (e->pos >= MAGLEV_SIZE) e->pos -= MAGLEV_SIZE;
    }
    table[e->pos] = e->idx;
    e->pos += e->skip;
    if (e->pos >= MAGLEV_SIZE) e->pos -= MAGLEV_SIZE;
}

/*
 * Maglev (Eisenbud et al. 2016) with weights as Envoy does it: members
 * take turns filling the next free slot of their own permutation
 * (offset + j x skip mod M, both from the name), and a member of weight w
 * takes a turn only in w / max-weight of the rounds. Members are visited
 * in the order of their name hash, so the table depends on the names and
 * weights only, not on the order of the server lines.
 * Returns 0 (a NULL table when n == 0) or -ENOMEM. Any thread.
 */
int ups_maglev_build(const ups_member_t *m, size_t n, uint32_t **table, size_t *size)
{
    *table = NULL;
    *size = 0;
    if (n == 0) return 0;
    if (n >= MAGLEV_EMPTY) return -EINVAL;
    mag_entry_t *e = calloc(n, sizeof(*e));
    uint32_t *t = malloc(MAGLEV_SIZE * sizeof(*t));
    if (!e || !t) {
        free(e);
        free(t);
        return -ENOMEM;
    }
    uint64_t wmax = 1;
    for (size_t i = 0; i < n; i++) {
        mag_init(&e[i], &m[i], (uint32_t)i);
        if (e[i].weight > wmax) wmax = e[i].weight;
    }
    qsort(e, n, sizeof(*e), mag_cmp);
    memset(t, 0xff, MAGLEV_SIZE * sizeof(*t)); /* MAGLEV_EMPTY */

    size_t filled = 0;
    for (uint64_t round = 0; filled < MAGLEV_SIZE; round++) {
        for (size_t j = 0; j < n && filled < MAGLEV_SIZE; j++) {
            if (round * e[j].weight < e[j].target) continue;
            e[j].target += wmax;
            mag_fill_one(&e[j], t);
            filled++;
        }
    }
    free(e);
    *table = t;
    *size = MAGLEV_SIZE;
    return 0;
}
