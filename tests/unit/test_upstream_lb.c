/*
 * Unit tests: server selection (src/upstream/balance.c) and availability,
 * slow start, outlier detection and EWMA (src/upstream/outlier.c).
 *
 * Sets, members and peers are built by hand (no config, no threads); the
 * clock is a fixed NOW passed explicitly, so nothing depends on timing.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "upstream/upstream_int.h"

#define NOW 1000000000 /* monotonic ms, far from 0 */
#define MAXN 16

/* ------------------------------------------------------------------ */
/* Fixture: one group with n members (the last nbackup are backups)    */
/* ------------------------------------------------------------------ */

typedef struct fx {
    ups_peer_t peers[MAXN];
    ups_member_t m[MAXN];
    ups_set_t set;
    ups_group_t g;
    ups_gstate_t gs;
    ups_lbw_t lbw;
    uint64_t rng;
    ups_peer_t *avoid[MAXN];
    size_t navoid;
} fx_t;

static void peer_init(ups_peer_t *p, size_t i)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "10.0.%zu.%zu:8080", i / 7, i * 13 % 251);
    atomic_init(&p->hc_status, -1);
}

/* weights: n ints, or NULL for all 1. */
static fx_t *fx_new(size_t n, size_t nbackup, const int *weights, ups_lb_t lb)
{
    assert_true(n <= MAXN && nbackup <= n);
    fx_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    for (size_t i = 0; i < n; i++) {
        peer_init(&f->peers[i], i);
        f->m[i].peer = &f->peers[i];
        f->m[i].weight = weights ? weights[i] : 1;
        f->m[i].backup = i >= n - nbackup;
        f->m[i].spec = (uint16_t)i;
    }
    f->set.version = 1;
    f->set.n = n;
    f->set.nprimary = n - nbackup;
    f->set.m = f->m;
    f->g.name = "app";
    f->g.lb = lb;
    f->g.outlier = (ups_outlier_conf_t){
        .enabled = true,
        .consecutive_failures = 5,
        .failure_ratio_pct = 0,
        .min_requests = 20,
        .window_ms = 10000,
        .base_ejection_ms = 30000,
        .max_ejection_ms = 300000,
        .max_ejected_pct = 50,
    };
    f->gs.name = "app";
    atomic_init(&f->gs.set, &f->set);
    f->rng = 42;
    assert_int_equal(ups_lbw_reset(&f->lbw, &f->set), 0);
    return f;
}

/* After changing the member list or the algorithm. */
static void fx_rebuild(fx_t *f)
{
    free(f->set.maglev);
    free(f->set.bmaglev);
    assert_int_equal(ups_maglev_build(f->m, f->set.nprimary, &f->set.maglev, &f->set.maglev_size), 0);
    assert_int_equal(ups_maglev_build(f->m + f->set.nprimary, f->set.n - f->set.nprimary,
                                      &f->set.bmaglev, &f->set.bmaglev_size),
                     0);
    f->set.version++;
    assert_int_equal(ups_lbw_reset(&f->lbw, &f->set), 0);
}

static void fx_free(fx_t *f)
{
    free(f->set.maglev);
    free(f->set.bmaglev);
    free(f->lbw.cw);
    free(f);
}

static ups_pick_t fx_pick_ctx(fx_t *f, uint64_t hash, int64_t now_ms)
{
    return (ups_pick_t){
        .g = &f->g,
        .set = &f->set,
        .lbw = &f->lbw,
        .rng = &f->rng,
        .hash = hash,
        .avoid = f->avoid,
        .navoid = f->navoid,
        .now_ms = now_ms,
        .now_us = now_ms * 1000,
    };
}

/* Index of the picked member, -1 for none. */
static int pick_at(fx_t *f, uint64_t hash, int64_t now_ms)
{
    ups_pick_t pk = fx_pick_ctx(f, hash, now_ms);
    const ups_member_t *m = ups_lb_pick(&pk);
    return m ? (int)(m - f->m) : -1;
}

static int pick(fx_t *f) { return pick_at(f, 0, NOW); }

/* Doubles equal to 1e-9 relative (cmocka's assert_float_equal is float). */
#define assert_near(a, b)                                                               \
    do {                                                                                \
        double a_ = (a), b_ = (b);                                                      \
        if (fabs(a_ - b_) > 1e-9 * fabs(b_) + 1e-9) fail_msg("%.9g != %.9g", a_, b_); \
    } while (0)

static void set_active(fx_t *f, size_t i, int a) { atomic_store(&f->peers[i].active, a); }

static void set_ewma_ms(fx_t *f, size_t i, double ms)
{
    ups_ewma_observe(&f->peers[i], (uint64_t)(ms * 1e6), (int64_t)NOW * 1000);
}

static const ups_lb_t all_lbs[] = {UPS_LB_P2C_EWMA, UPS_LB_ROUND_ROBIN, UPS_LB_LEAST_REQUEST,
                                   UPS_LB_RANDOM, UPS_LB_HASH};
#define NLBS (sizeof(all_lbs) / sizeof(all_lbs[0]))

/* ------------------------------------------------------------------ */
/* Maglev                                                              */
/* ------------------------------------------------------------------ */

static void check_table_shares(const int *weights, size_t n)
{
    fx_t *f = fx_new(n, 0, weights, UPS_LB_HASH);
    fx_rebuild(f);
    assert_int_equal(f->set.maglev_size, 65537);
    size_t count[MAXN] = {0};
    for (size_t s = 0; s < f->set.maglev_size; s++) {
        assert_true(f->set.maglev[s] < n);
        count[f->set.maglev[s]]++;
    }
    double wsum = 0;
    for (size_t i = 0; i < n; i++) wsum += f->m[i].weight;
    for (size_t i = 0; i < n; i++) {
        double share = (double)count[i] / (double)f->set.maglev_size;
        double want = f->m[i].weight / wsum;
        /* within 3% of the expected share (relative) */
        if (fabs(share - want) > 0.03 * want)
            fail_msg("n=%zu member %zu: share %.4f, weight share %.4f", n, i, share, want);
    }
    fx_free(f);
}

static void test_maglev_balance_equal(void **state)
{
    (void)state;
    check_table_shares(NULL, 3);
    check_table_shares(NULL, 5);
    check_table_shares(NULL, 10);
}

static void test_maglev_balance_weighted(void **state)
{
    (void)state;
    static const int w3[] = {1, 2, 3};
    static const int w5[] = {10, 20, 30, 40, 50};
    static const int w10[] = {1, 1, 2, 2, 3, 3, 4, 4, 5, 5};
    check_table_shares(w3, 3);
    check_table_shares(w5, 5);
    check_table_shares(w10, 10);
}

/* The table maps to the same names whatever the member order. */
static void test_maglev_order_independent(void **state)
{
    (void)state;
    static const int w[] = {1, 2, 3, 1, 2};
    fx_t *a = fx_new(5, 0, w, UPS_LB_HASH);
    fx_rebuild(a);
    /* The same members in reverse order. */
    ups_member_t rev[5];
    for (size_t i = 0; i < 5; i++) rev[i] = a->m[4 - i];
    uint32_t *t = NULL;
    size_t size = 0;
    assert_int_equal(ups_maglev_build(rev, 5, &t, &size), 0);
    assert_int_equal(size, a->set.maglev_size);
    for (size_t s = 0; s < size; s++)
        assert_ptr_equal(rev[t[s]].peer, a->m[a->set.maglev[s]].peer);
    free(t);

    assert_int_equal(ups_maglev_build(rev, 0, &t, &size), 0);
    assert_null(t);
    assert_int_equal(size, 0);
    fx_free(a);
}

#define NKEYS 10000

static uint64_t key_hash(int k)
{
    char key[32];
    int len = snprintf(key, sizeof(key), "user-%d", k);
    return ups_hash_key(key, (size_t)len);
}

/* Removing one of n members from the table: ~1/n of the keys move, and
 * almost every key of another member stays (Maglev is near-minimal). */
static void check_disruption(size_t n, size_t removed)
{
    fx_t *f = fx_new(n, 0, NULL, UPS_LB_HASH);
    fx_rebuild(f);
    const ups_peer_t *before[NKEYS];
    for (int k = 0; k < NKEYS; k++) before[k] = f->m[pick_at(f, key_hash(k), NOW)].peer;

    memmove(&f->m[removed], &f->m[removed + 1], (n - removed - 1) * sizeof(f->m[0]));
    f->set.n = f->set.nprimary = n - 1;
    fx_rebuild(f);
    int moved = 0, on_removed = 0, others_moved = 0;
    for (int k = 0; k < NKEYS; k++) {
        const ups_peer_t *now = f->m[pick_at(f, key_hash(k), NOW)].peer;
        assert_ptr_not_equal(now, &f->peers[removed]);
        if (before[k] == &f->peers[removed]) on_removed++;
        if (now != before[k]) {
            moved++;
            if (before[k] != &f->peers[removed]) others_moved++;
        }
    }
    double frac = (double)moved / NKEYS, ideal = 1.0 / (double)n;
    if (fabs(frac - ideal) > 0.25 * ideal)
        fail_msg("n=%zu: %.3f of keys moved, ideal %.3f", n, frac, ideal);
    /* Keys of the other members: at most 1% of them move (0.4% seen). */
    if (others_moved > (NKEYS - on_removed) / 100)
        fail_msg("n=%zu: %d of %d keys of other members moved", n, others_moved,
                 NKEYS - on_removed);
    fx_free(f);
}

static void test_maglev_disruption_remove(void **state)
{
    (void)state;
    check_disruption(3, 1);
    check_disruption(5, 0);
    check_disruption(10, 7);
}

/* A member that is down (still in the table): exactly its keys move, and
 * they spread over the others instead of landing on one neighbour. */
static void test_hash_member_down_keeps_others(void **state)
{
    (void)state;
    fx_t *f = fx_new(5, 0, NULL, UPS_LB_HASH);
    fx_rebuild(f);
    int before[NKEYS];
    for (int k = 0; k < NKEYS; k++) before[k] = pick_at(f, key_hash(k), NOW);
    atomic_store(&f->peers[2].hc_down, true);
    int moved_to[5] = {0}, moved = 0;
    for (int k = 0; k < NKEYS; k++) {
        int now = pick_at(f, key_hash(k), NOW);
        assert_int_not_equal(now, 2);
        if (before[k] != 2) {
            assert_int_equal(now, before[k]);
        } else {
            moved_to[now]++;
            moved++;
        }
    }
    assert_true(moved > NKEYS / 8);
    for (int i = 0; i < 5; i++)
        if (i != 2) assert_true(moved_to[i] > moved / 8);
    /* Back up: the keys return. */
    atomic_store(&f->peers[2].hc_down, false);
    for (int k = 0; k < NKEYS; k++) assert_int_equal(pick_at(f, key_hash(k), NOW), before[k]);
    fx_free(f);
}

/* hash_balance_factor: a member at the bound passes the key on. */
static void test_hash_bounded_load(void **state)
{
    (void)state;
    fx_t *f = fx_new(4, 0, NULL, UPS_LB_HASH);
    fx_rebuild(f);
    uint64_t h = key_hash(7);
    int home = pick_at(f, h, NOW);
    set_active(f, (size_t)home, 10);
    /* No bound: stays home whatever its load. */
    assert_int_equal(pick_at(f, h, NOW), home);
    /* 150%: mean with the new request is 11/4, bound ceil(4.125) = 5. */
    f->g.hash_balance_pct = 150;
    int other = pick_at(f, h, NOW);
    assert_int_not_equal(other, home);
    assert_int_equal(pick_at(f, h, NOW), other); /* sticky to the next entry */
    /* Under the bound again (ceil(1.5 x 1 / 4) = 1): home. */
    set_active(f, (size_t)home, 0);
    assert_int_equal(pick_at(f, h, NOW), home);

    /* Closed loop, every request with the same key, pct 100: no member
     * ever goes above ceil(total / n). */
    for (size_t i = 0; i < 4; i++) set_active(f, i, 0);
    f->g.hash_balance_pct = 100;
    for (int r = 1; r <= 40; r++) {
        int i = pick_at(f, h, NOW);
        assert_true(i >= 0);
        atomic_fetch_add(&f->peers[i].active, 1);
        for (size_t j = 0; j < 4; j++)
            assert_true(atomic_load(&f->peers[j].active) <= (r + 3) / 4);
    }
    fx_free(f);
}

/* ------------------------------------------------------------------ */
/* EWMA                                                                */
/* ------------------------------------------------------------------ */

static void test_ewma_peak_and_decay(void **state)
{
    (void)state;
    ups_peer_t p;
    peer_init(&p, 0);
    int64_t t0 = (int64_t)NOW * 1000;
    assert_true(ups_ewma_get(&p, t0) == 0.0); /* never observed */

    ups_ewma_observe(&p, 10000000, t0); /* 10 ms */
    assert_near(ups_ewma_get(&p, t0), 10e6);
    /* Peak: a higher sample replaces the estimate at once. */
    ups_ewma_observe(&p, 100000000, t0 + 1000);
    assert_near(ups_ewma_get(&p, t0 + 1000), 100e6);
    /* A lower one tau (10 s) later: weight e^-1 on the old value. */
    ups_ewma_observe(&p, 10000000, t0 + 1000 + 10000000);
    double want = 100e6 * exp(-1.0) + 10e6 * (1 - exp(-1.0));
    assert_near(ups_ewma_get(&p, t0 + 1000 + 10000000), want);
    /* A lower sample right away barely moves it. */
    ups_ewma_observe(&p, 1000000, t0 + 1000 + 10000000);
    assert_near(ups_ewma_get(&p, t0 + 1000 + 10000000), want);
    /* Decay on read: 20 s later without samples, x e^-2. */
    assert_near(ups_ewma_get(&p, t0 + 1000 + 30000000), want * exp(-2.0));
    /* Reading does not change the stored value. */
    assert_near(ups_ewma_get(&p, t0 + 1000 + 10000000), want);
    /* A clock slightly behind the stamp (another thread): no growth. */
    assert_near(ups_ewma_get(&p, t0), want);
}

/* ------------------------------------------------------------------ */
/* Availability and slow start                                         */
/* ------------------------------------------------------------------ */

static void test_peer_available(void **state)
{
    (void)state;
    ups_peer_t p;
    peer_init(&p, 0);
    assert_true(ups_peer_available(&p, NOW));
    atomic_store(&p.admin, UPS_ADMIN_DRAIN);
    assert_false(ups_peer_available(&p, NOW));
    atomic_store(&p.admin, UPS_ADMIN_ENABLED);
    atomic_store(&p.hc_down, true);
    assert_false(ups_peer_available(&p, NOW));
    atomic_store(&p.hc_down, false);
    atomic_store(&p.ejected_until, NOW + 1);
    assert_false(ups_peer_available(&p, NOW));
    assert_true(ups_peer_available(&p, NOW + 1));
    assert_true(ups_now_ms() > 0);
}

static void test_slow_start_ramp(void **state)
{
    (void)state;
    ups_peer_t p;
    peer_init(&p, 0);
    ups_member_t m = {.peer = &p, .weight = 10, .slow_start_ms = 10000};
    atomic_store(&p.up_since, NOW);
    assert_int_equal(ups_member_weight16(&m, NOW), 16);          /* 10% of 160 */
    assert_int_equal(ups_member_weight16(&m, NOW + 5000), 88);   /* 55% */
    assert_int_equal(ups_member_weight16(&m, NOW + 9999), 159);
    assert_int_equal(ups_member_weight16(&m, NOW + 10000), 160); /* full */
    assert_int_equal(ups_member_weight16(&m, NOW - 5), 16);      /* clock skew */
    /* Monotonic over the ramp. */
    int prev = 0;
    for (int64_t t = 0; t <= 10000; t += 250) {
        int w = ups_member_weight16(&m, NOW + t);
        assert_true(w >= prev);
        prev = w;
    }
    /* Never below 1, even for weight 1 (10% of 16 is 1.6). */
    m.weight = 1;
    assert_int_equal(ups_member_weight16(&m, NOW), 1);
    /* Off: full weight at once. */
    m.weight = 10;
    m.slow_start_ms = 0;
    assert_int_equal(ups_member_weight16(&m, NOW), 160);
    /* An ejection that ended but nobody noticed yet counts as the start. */
    m.slow_start_ms = 10000;
    atomic_store(&p.up_since, 0);
    atomic_store(&p.ejected_until, NOW);
    assert_int_equal(ups_member_weight16(&m, NOW), 16);
}

/* A slow-starting member gets a small share under round robin. */
static void test_slow_start_share_rr(void **state)
{
    (void)state;
    static const int w[] = {10, 10};
    fx_t *f = fx_new(2, 0, w, UPS_LB_ROUND_ROBIN);
    f->m[1].slow_start_ms = 10000;
    atomic_store(&f->peers[1].up_since, NOW);
    int count[2] = {0};
    for (int i = 0; i < 1100; i++) count[pick(f)]++; /* 160 : 16 */
    assert_int_equal(count[1], 100);
    /* Half way (55%): 160 : 88. */
    count[0] = count[1] = 0;
    for (int i = 0; i < 248; i++) count[pick_at(f, 0, NOW + 5000)]++;
    assert_int_equal(count[1], 88);
    fx_free(f);
}

/* ------------------------------------------------------------------ */
/* Algorithms                                                          */
/* ------------------------------------------------------------------ */

static void test_rr_follows_weights(void **state)
{
    (void)state;
    static const int w[] = {5, 1, 1};
    fx_t *f = fx_new(3, 0, w, UPS_LB_ROUND_ROBIN);
    /* The nginx sequence for {5, 1, 1}: interleaved, not bursts. */
    static const int seq[] = {0, 0, 1, 0, 2, 0, 0};
    for (int cycle = 0; cycle < 10; cycle++)
        for (int i = 0; i < 7; i++) assert_int_equal(pick(f), seq[i]);

    static const int w2[] = {3, 2, 1, 4};
    fx_t *g = fx_new(4, 0, w2, UPS_LB_ROUND_ROBIN);
    for (int cycle = 0; cycle < 5; cycle++) {
        int count[4] = {0};
        for (int i = 0; i < 10; i++) count[pick(g)]++;
        for (int i = 0; i < 4; i++) assert_int_equal(count[i], w2[i]);
    }
    /* A drained member is skipped; the rest keep their ratio. */
    atomic_store(&g->peers[3].admin, UPS_ADMIN_DRAIN);
    int count[4] = {0};
    for (int i = 0; i < 60; i++) count[pick(g)]++;
    assert_int_equal(count[3], 0);
    assert_int_equal(count[0], 30);
    assert_int_equal(count[1], 20);
    assert_int_equal(count[2], 10);
    fx_free(f);
    fx_free(g);
}

static void test_lbw_reset(void **state)
{
    (void)state;
    fx_t *f = fx_new(3, 0, NULL, UPS_LB_ROUND_ROBIN);
    pick(f);
    f->set.version = 7;
    f->set.n = f->set.nprimary = 5;
    for (size_t i = 3; i < 5; i++) {
        peer_init(&f->peers[i], i);
        f->m[i] = (ups_member_t){.peer = &f->peers[i], .weight = 1};
    }
    assert_int_equal(ups_lbw_reset(&f->lbw, &f->set), 0);
    assert_int_equal(f->lbw.version, 7);
    assert_int_equal(f->lbw.n, 5);
    for (size_t i = 0; i < 5; i++) assert_int_equal(f->lbw.cw[i], 0);
    int count[5] = {0};
    for (int i = 0; i < 50; i++) count[pick(f)]++;
    for (int i = 0; i < 5; i++) assert_int_equal(count[i], 10);
    /* Stale state (version mismatch) never reads out of bounds. */
    f->lbw.version = 1;
    for (int i = 0; i < 50; i++) assert_true(pick(f) >= 0);
    fx_free(f);
}

/* Closed loop with concurrency 8: the slow member gets few requests. */
static void test_p2c_avoids_slow(void **state)
{
    (void)state;
    fx_t *f = fx_new(4, 0, NULL, UPS_LB_P2C_EWMA);
    for (size_t i = 0; i < 3; i++) set_ewma_ms(f, i, 1);
    set_ewma_ms(f, 3, 100);
    int inflight[8], count[4] = {0}, head = 0;
    for (int i = 0; i < 8; i++) {
        inflight[i] = pick(f);
        atomic_fetch_add(&f->peers[inflight[i]].active, 1);
    }
    for (int r = 0; r < 1000; r++) {
        atomic_fetch_sub(&f->peers[inflight[head]].active, 1);
        int i = pick(f);
        count[i]++;
        atomic_fetch_add(&f->peers[i].active, 1);
        inflight[head] = i;
        head = (head + 1) % 8;
    }
    assert_true(count[3] < 100);
    /* The fast ones share the load. */
    for (int i = 0; i < 3; i++) assert_true(count[i] > 200);
    fx_free(f);
}

/* Weight divides the cost: with equal latency and load, the heavier
 * member wins every comparison it is part of. */
static void test_p2c_weight(void **state)
{
    (void)state;
    static const int w[] = {1, 4};
    fx_t *f = fx_new(2, 0, w, UPS_LB_P2C_EWMA);
    set_ewma_ms(f, 0, 5);
    set_ewma_ms(f, 1, 5);
    /* Equal loads are a tie, shared in proportion to weight (1:4). */
    int to1 = 0;
    for (int i = 0; i < 2000; i++) to1 += pick(f) == 1;
    assert_in_range(to1, 1480, 1720);
    /* Near-equal (within 25%) still ties. */
    set_ewma_ms(f, 1, 6);
    to1 = 0;
    for (int i = 0; i < 2000; i++) to1 += pick(f) == 1;
    assert_in_range(to1, 1480, 1720);
    /* Beyond that, load / weight decides: 6 x 5 / 4 = 7.5 > 5 / 1. */
    set_active(f, 1, 4);
    for (int i = 0; i < 20; i++) assert_int_equal(pick(f), 0);
    /* And a 4x heavier server with a 2x load wins: 10 / 4 < 5 / 1. */
    set_active(f, 1, 0);
    set_ewma_ms(f, 1, 10);
    for (int i = 0; i < 20; i++) assert_int_equal(pick(f), 1);
    fx_free(f);

    /* A difference of at most 1 ms ties whatever the ratio (1 ms vs 2 ms). */
    f = fx_new(2, 0, w, UPS_LB_P2C_EWMA);
    set_ewma_ms(f, 0, 1);
    set_ewma_ms(f, 1, 2);
    assert_true(ups_ewma_get(&f->peers[1], (int64_t)NOW * 1000) >
                1.9 * ups_ewma_get(&f->peers[0], (int64_t)NOW * 1000));
    to1 = 0;
    for (int i = 0; i < 2000; i++) to1 += pick(f) == 1;
    assert_in_range(to1, 1480, 1720);
    fx_free(f);
}

/* A new server (no estimate) is tried, but not flooded before its first
 * answer. */
static void test_p2c_new_server(void **state)
{
    (void)state;
    fx_t *f = fx_new(2, 0, NULL, UPS_LB_P2C_EWMA);
    set_ewma_ms(f, 0, 5);
    set_active(f, 0, 3);
    assert_int_equal(pick(f), 1); /* unknown and idle: cost 0 */
    set_active(f, 1, 1);
    for (int i = 0; i < 20; i++) assert_int_equal(pick(f), 0);
    /* Its first answer gives it a real cost. */
    ups_ewma_observe(&f->peers[1], 1000000, (int64_t)NOW * 1000);
    assert_int_equal(pick(f), 1); /* 1 ms x 2 < 5 ms x 4 */
    fx_free(f);
}

/* With one usable member P2C picks it; with two, both get picked. */
static void test_p2c_few_members(void **state)
{
    (void)state;
    fx_t *f = fx_new(3, 0, NULL, UPS_LB_P2C_EWMA);
    atomic_store(&f->peers[0].hc_down, true);
    atomic_store(&f->peers[2].hc_down, true);
    for (int i = 0; i < 20; i++) assert_int_equal(pick(f), 1);
    atomic_store(&f->peers[2].hc_down, false);
    int count[3] = {0};
    for (int i = 0; i < 200; i++) count[pick(f)]++;
    assert_int_equal(count[0], 0);
    assert_true(count[1] > 50 && count[2] > 50);
    fx_free(f);
}

static void test_least_request(void **state)
{
    (void)state;
    fx_t *f = fx_new(3, 0, NULL, UPS_LB_LEAST_REQUEST);
    set_active(f, 0, 5);
    set_active(f, 1, 2);
    set_active(f, 2, 7);
    for (int i = 0; i < 5; i++) assert_int_equal(pick(f), 1);
    /* Ties rotate. */
    for (size_t i = 0; i < 3; i++) set_active(f, i, 4);
    int count[3] = {0};
    for (int i = 0; i < 30; i++) count[pick(f)]++;
    for (int i = 0; i < 3; i++) assert_int_equal(count[i], 10);
    /* Weight: (3+1)/2 < (2+1)/1. */
    f->m[2].weight = 2;
    set_active(f, 0, 2);
    set_active(f, 1, 9);
    set_active(f, 2, 3);
    assert_int_equal(pick(f), 2);
    fx_free(f);
}

static void test_random_weighted(void **state)
{
    (void)state;
    static const int w[] = {1, 3};
    fx_t *f = fx_new(2, 0, w, UPS_LB_RANDOM);
    int count[2] = {0};
    for (int i = 0; i < 8000; i++) count[pick(f)]++;
    assert_true(count[1] > 5600 && count[1] < 6400); /* 6000 expected */
    fx_free(f);
}

/* ------------------------------------------------------------------ */
/* Backups, avoid list, max_conns (every algorithm)                    */
/* ------------------------------------------------------------------ */

static void test_backups_only_when_primaries_down(void **state)
{
    (void)state;
    for (size_t a = 0; a < NLBS; a++) {
        fx_t *f = fx_new(4, 2, NULL, all_lbs[a]);
        fx_rebuild(f);
        for (int i = 0; i < 50; i++) assert_true(pick_at(f, key_hash(i), NOW) < 2);
        /* One primary left: it takes everything. */
        atomic_store(&f->peers[0].admin, UPS_ADMIN_DRAIN);
        for (int i = 0; i < 50; i++) assert_int_equal(pick_at(f, key_hash(i), NOW), 1);
        /* None: backups, both used. */
        atomic_store(&f->peers[1].ejected_until, NOW + 1000);
        int count[4] = {0};
        for (int i = 0; i < 200; i++) count[pick_at(f, key_hash(i), NOW)]++;
        assert_int_equal(count[0] + count[1], 0);
        if (count[2] <= 20 || count[3] <= 20)
            fail_msg("lb %d: backups got %d and %d", (int)all_lbs[a], count[2], count[3]);
        /* Everything down: nothing. */
        atomic_store(&f->peers[2].hc_down, true);
        atomic_store(&f->peers[3].hc_down, true);
        assert_int_equal(pick_at(f, 1, NOW), -1);
        /* The ejection ends: the primary is back. */
        assert_int_equal(pick_at(f, 1, NOW + 1000), 1);
        fx_free(f);
    }
}

static void test_avoid_list(void **state)
{
    (void)state;
    for (size_t a = 0; a < NLBS; a++) {
        fx_t *f = fx_new(3, 1, NULL, all_lbs[a]);
        fx_rebuild(f);
        f->avoid[0] = &f->peers[0];
        f->navoid = 1;
        for (int i = 0; i < 50; i++) assert_int_equal(pick_at(f, key_hash(i), NOW), 1);
        /* Both primaries tried: the backup, then nothing. */
        f->avoid[1] = &f->peers[1];
        f->navoid = 2;
        assert_int_equal(pick_at(f, key_hash(1), NOW), 2);
        f->avoid[2] = &f->peers[2];
        f->navoid = 3;
        ups_pick_t pk = fx_pick_ctx(f, 5, NOW);
        assert_null(ups_lb_pick(&pk));
        assert_false(pk.saw_full);
        fx_free(f);
    }
}

static void test_max_conns(void **state)
{
    (void)state;
    for (size_t a = 0; a < NLBS; a++) {
        fx_t *f = fx_new(2, 0, NULL, all_lbs[a]);
        fx_rebuild(f);
        f->m[0].max_conns = 2;
        f->m[1].max_conns = 3;
        set_active(f, 0, 2);
        set_active(f, 1, 1);
        for (int i = 0; i < 30; i++) assert_int_equal(pick_at(f, key_hash(i), NOW), 1);
        set_active(f, 1, 3);
        ups_pick_t pk = fx_pick_ctx(f, 9, NOW);
        assert_null(ups_lb_pick(&pk));
        assert_true(pk.saw_full);
        /* Down rather than full: no saw_full. */
        set_active(f, 0, 0);
        set_active(f, 1, 0);
        atomic_store(&f->peers[0].hc_down, true);
        atomic_store(&f->peers[1].hc_down, true);
        pk = fx_pick_ctx(f, 9, NOW);
        assert_null(ups_lb_pick(&pk));
        assert_false(pk.saw_full);
        fx_free(f);
    }
}

static void test_empty_set(void **state)
{
    (void)state;
    fx_t *f = fx_new(1, 0, NULL, UPS_LB_P2C_EWMA);
    f->set.n = f->set.nprimary = 0;
    for (size_t a = 0; a < NLBS; a++) {
        f->g.lb = all_lbs[a];
        assert_int_equal(pick(f), -1);
    }
    /* No rng given: still works. */
    f->set.n = f->set.nprimary = 1;
    ups_pick_t pk = fx_pick_ctx(f, 0, NOW);
    pk.rng = NULL;
    f->g.lb = UPS_LB_P2C_EWMA;
    assert_ptr_equal(ups_lb_pick(&pk), &f->m[0]);
    assert_null(pk.rng);
    fx_free(f);
}

/* ------------------------------------------------------------------ */
/* Outlier detection                                                   */
/* ------------------------------------------------------------------ */

static void fail_n(fx_t *f, size_t i, int n, int64_t now)
{
    for (int k = 0; k < n; k++) ups_passive_record(&f->gs, &f->g, &f->peers[i], true, now);
}

static void test_eject_after_consecutive_failures(void **state)
{
    (void)state;
    fx_t *f = fx_new(4, 0, NULL, UPS_LB_ROUND_ROBIN);
    ups_peer_t *p = &f->peers[0];
    fail_n(f, 0, 4, NOW);
    ups_passive_record(&f->gs, &f->g, p, false, NOW); /* a success resets the run */
    fail_n(f, 0, 4, NOW);
    assert_int_equal(atomic_load(&p->ejected_until), 0);
    assert_true(ups_peer_available(p, NOW));
    fail_n(f, 0, 1, NOW);
    assert_int_equal(atomic_load(&p->ejected_until), NOW + 30000);
    assert_false(ups_peer_available(p, NOW));
    assert_int_equal(atomic_load(&f->gs.ejected), 1);
    assert_int_equal(atomic_load(&p->ejections), 1);
    assert_int_equal(atomic_load(&p->ejections_total), 1);
    assert_int_equal(atomic_load(&p->consec_fail), 0);
    for (int i = 0; i < 30; i++) assert_int_not_equal(pick(f), 0);
    /* Failures of requests still in flight do not extend it. */
    fail_n(f, 0, 10, NOW + 10);
    assert_int_equal(atomic_load(&p->ejected_until), NOW + 30000);
    assert_int_equal(atomic_load(&p->ejections_total), 1);

    /* Off: never ejected. */
    f->g.outlier.enabled = false;
    fail_n(f, 1, 50, NOW);
    assert_int_equal(atomic_load(&f->peers[1].ejected_until), 0);
    fx_free(f);
}

static void test_max_ejected_cap(void **state)
{
    (void)state;
    fx_t *f = fx_new(5, 0, NULL, UPS_LB_P2C_EWMA); /* 50% of 5: 2 */
    fail_n(f, 0, 5, NOW);
    fail_n(f, 1, 5, NOW + 1000);
    fail_n(f, 2, 5, NOW + 2000);
    fail_n(f, 3, 20, NOW + 2000);
    assert_int_equal(atomic_load(&f->gs.ejected), 2);
    assert_false(ups_peer_available(&f->peers[0], NOW + 2000));
    assert_false(ups_peer_available(&f->peers[1], NOW + 2000));
    assert_true(ups_peer_available(&f->peers[2], NOW + 2000));
    assert_true(ups_peer_available(&f->peers[3], NOW + 2000));
    assert_int_equal(atomic_load(&f->peers[2].ejections_total), 0);

    /* The first ejection ends; the tick notices and uncounts it. */
    ups_outlier_tick(&f->gs, NOW + 30000);
    assert_int_equal(atomic_load(&f->gs.ejected), 1);
    assert_int_equal(atomic_load(&f->peers[0].ejected_until), 0);
    assert_int_equal(atomic_load(&f->peers[0].up_since), NOW + 30000);
    /* Room again: the next failure of peer 2 ejects it. */
    fail_n(f, 2, 1, NOW + 30001);
    assert_int_equal(atomic_load(&f->gs.ejected), 2);
    assert_false(ups_peer_available(&f->peers[2], NOW + 30001));

    /* A worker notices an expiry too (once: the tick then changes nothing). */
    ups_passive_record(&f->gs, &f->g, &f->peers[1], false, NOW + 31000);
    assert_int_equal(atomic_load(&f->gs.ejected), 1);
    assert_int_equal(atomic_load(&f->peers[1].up_since), NOW + 31000);
    ups_outlier_tick(&f->gs, NOW + 31000);
    assert_int_equal(atomic_load(&f->gs.ejected), 1);

    /* A single-member group is never ejected (50% of 1 is 0). */
    fx_t *one = fx_new(1, 0, NULL, UPS_LB_P2C_EWMA);
    fail_n(one, 0, 50, NOW);
    assert_int_equal(atomic_load(&one->gs.ejected), 0);
    assert_true(ups_peer_available(&one->peers[0], NOW));
    fx_free(one);
    fx_free(f);
}

/* A peer that leaves the set while ejected stops counting at the tick. */
static void test_tick_recounts(void **state)
{
    (void)state;
    fx_t *f = fx_new(4, 0, NULL, UPS_LB_P2C_EWMA);
    fail_n(f, 3, 5, NOW);
    assert_int_equal(atomic_load(&f->gs.ejected), 1);
    f->set.n = f->set.nprimary = 3;
    ups_outlier_tick(&f->gs, NOW + 1);
    assert_int_equal(atomic_load(&f->gs.ejected), 0);
    fx_free(f);
}

static void test_ejection_backoff(void **state)
{
    (void)state;
    fx_t *f = fx_new(2, 0, NULL, UPS_LB_P2C_EWMA);
    ups_peer_t *p = &f->peers[0];
    static const int64_t want[] = {30000, 60000, 120000, 240000, 300000, 300000};
    int64_t now = NOW;
    for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
        fail_n(f, 0, 5, now);
        assert_int_equal(atomic_load(&p->ejected_until), now + want[k]);
        assert_int_equal(atomic_load(&p->ejections), (int)k + 1);
        now += want[k];
        /* Fails again right after the ejection: no success in between. */
    }
    assert_int_equal(atomic_load(&p->ejections_total), 6);
    /* Ejection over, then a success: the back-off starts over. */
    ups_passive_record(&f->gs, &f->g, p, false, now);
    assert_int_equal(atomic_load(&p->ejections), 0);
    assert_int_equal(atomic_load(&p->up_since), now);
    assert_int_equal(atomic_load(&f->gs.ejected), 0);
    fail_n(f, 0, 5, now + 10);
    assert_int_equal(atomic_load(&p->ejected_until), now + 10 + 30000);
    fx_free(f);
}

/* After an ejection the member comes back through slow start. */
static void test_ejection_then_slow_start(void **state)
{
    (void)state;
    fx_t *f = fx_new(2, 0, NULL, UPS_LB_ROUND_ROBIN);
    f->m[0].weight = 10;
    f->m[0].slow_start_ms = 10000;
    fail_n(f, 0, 5, NOW);
    int64_t back = NOW + 30000;
    /* Before anyone notices the expiry, the weight already ramps. */
    assert_int_equal(ups_member_weight16(&f->m[0], back), 16);
    assert_int_equal(ups_member_weight16(&f->m[0], back + 5000), 88);
    ups_outlier_tick(&f->gs, back + 5000);
    assert_int_equal(ups_member_weight16(&f->m[0], back + 5000), 88);
    assert_int_equal(ups_member_weight16(&f->m[0], back + 10000), 160);
    fx_free(f);
}

static void test_failure_ratio(void **state)
{
    (void)state;
    fx_t *f = fx_new(4, 0, NULL, UPS_LB_P2C_EWMA);
    f->g.outlier.consecutive_failures = 0;
    f->g.outlier.failure_ratio_pct = 50;
    ups_peer_t *p = &f->peers[0];
    /* F S F S ...: 50% failures, but not before min_requests (20). */
    for (int i = 0; i < 20; i++)
        ups_passive_record(&f->gs, &f->g, p, i % 2 == 0, NOW + i);
    assert_int_equal(atomic_load(&p->ejected_until), 0);
    ups_passive_record(&f->gs, &f->g, p, true, NOW + 20); /* 11 of 21 */
    assert_int_equal(atomic_load(&p->ejected_until), NOW + 20 + 30000);

    /* 40% failures stay in. */
    ups_peer_t *q = &f->peers[1];
    for (int i = 0; i < 100; i++)
        ups_passive_record(&f->gs, &f->g, q, i % 5 < 2, NOW + i);
    assert_int_equal(atomic_load(&q->ejected_until), 0);

    /* Failures spread over windows never reach min_requests in one. */
    ups_peer_t *r = &f->peers[2];
    for (int i = 0; i < 60; i++)
        ups_passive_record(&f->gs, &f->g, r, true, NOW + (int64_t)i * 1000);
    assert_int_equal(atomic_load(&r->ejected_until), 0);
    fx_free(f);
}

/* Retry budget: max(min_concurrency, pct% of in flight), refusals counted. */
static void test_retry_budget(void **state)
{
    (void)state;
    ups_group_t g = {0};
    ups_gstate_t gs = {0};
    g.retry_budget_pct = 20;
    g.retry_min_concurrency = 3;
    /* Few requests: the minimum concurrency rules. */
    atomic_store(&gs.active, 5);
    atomic_store(&gs.active_retries, 2);
    assert_true(ups_retry_budget_allows(&gs, &g));
    atomic_store(&gs.active_retries, 3);
    assert_false(ups_retry_budget_allows(&gs, &g));
    assert_int_equal(atomic_load(&gs.budget_exhausted), 1);
    /* Many requests: 20% of 100 in flight = 20 retries. */
    atomic_store(&gs.active, 100);
    atomic_store(&gs.active_retries, 19);
    assert_true(ups_retry_budget_allows(&gs, &g));
    atomic_store(&gs.active_retries, 20);
    assert_false(ups_retry_budget_allows(&gs, &g));
    assert_int_equal(atomic_load(&gs.budget_exhausted), 2);
    /* Off: always allowed, nothing counted. */
    g.retry_budget_pct = -1;
    atomic_store(&gs.active_retries, 1000);
    assert_true(ups_retry_budget_allows(&gs, &g));
    assert_int_equal(atomic_load(&gs.budget_exhausted), 2);
    /* Zero minimum: no retry while nothing is in flight. */
    g.retry_budget_pct = 20;
    g.retry_min_concurrency = 0;
    atomic_store(&gs.active, 4);
    atomic_store(&gs.active_retries, 0);
    assert_false(ups_retry_budget_allows(&gs, &g));
}

/* A member busy without answering for longer than its EWMA counts as that
 * slow: P2C leaves it before its first slow answer comes back. */
static void test_p2c_stalled_member(void **state)
{
    (void)state;
    fx_t *f = fx_new(2, 0, NULL, UPS_LB_P2C_EWMA);
    int64_t now_us = (int64_t)NOW * 1000;
    set_ewma_ms(f, 0, 1); /* both answered in 1 ms just now */
    set_ewma_ms(f, 1, 1);
    set_active(f, 0, 2);
    set_active(f, 1, 2);
    /* Both busy since 0.5 ms: a tie, both picked. */
    for (int i = 0; i < 2; i++) {
        atomic_store(&f->peers[i].busy_since_us, now_us - 500);
        atomic_store(&f->peers[i].last_done_us, now_us - 500);
    }
    int to0 = 0;
    for (int i = 0; i < 400; i++) to0 += pick(f) == 0;
    assert_in_range(to0, 120, 280);
    /* Member 0 has said nothing for 100 ms while busy: 100 ms x 3 vs 1 ms x 3. */
    atomic_store(&f->peers[0].last_done_us, now_us - 100000);
    atomic_store(&f->peers[0].busy_since_us, now_us - 100000);
    assert_near(ups_peer_stall_ns(&f->peers[0], now_us), 100e6);
    for (int i = 0; i < 50; i++) assert_int_equal(pick(f), 1);
    /* It became busy just now (idle before): no stall, a tie again. */
    atomic_store(&f->peers[0].busy_since_us, now_us - 200);
    to0 = 0;
    for (int i = 0; i < 400; i++) to0 += pick(f) == 0;
    assert_in_range(to0, 120, 280);
    /* Idle members have no stall. */
    set_active(f, 0, 0);
    assert_near(ups_peer_stall_ns(&f->peers[0], now_us), 0);
    /* ups_peer_busy stamps the start only when it leaves 0. */
    ups_peer_busy(&f->peers[0], now_us);
    ups_peer_busy(&f->peers[0], now_us + 5000);
    assert_int_equal(atomic_load(&f->peers[0].active), 2);
    assert_int_equal(atomic_load(&f->peers[0].busy_since_us), now_us);
    fx_free(f);
}

int main(void)
{
    (void)pt_log_open(NULL, PT_LOG_CRIT); /* ejection warnings are expected */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_maglev_balance_equal),
        cmocka_unit_test(test_maglev_balance_weighted),
        cmocka_unit_test(test_maglev_order_independent),
        cmocka_unit_test(test_maglev_disruption_remove),
        cmocka_unit_test(test_hash_member_down_keeps_others),
        cmocka_unit_test(test_hash_bounded_load),
        cmocka_unit_test(test_ewma_peak_and_decay),
        cmocka_unit_test(test_peer_available),
        cmocka_unit_test(test_slow_start_ramp),
        cmocka_unit_test(test_slow_start_share_rr),
        cmocka_unit_test(test_rr_follows_weights),
        cmocka_unit_test(test_lbw_reset),
        cmocka_unit_test(test_p2c_avoids_slow),
        cmocka_unit_test(test_p2c_weight),
        cmocka_unit_test(test_p2c_new_server),
        cmocka_unit_test(test_p2c_few_members),
        cmocka_unit_test(test_least_request),
        cmocka_unit_test(test_random_weighted),
        cmocka_unit_test(test_backups_only_when_primaries_down),
        cmocka_unit_test(test_avoid_list),
        cmocka_unit_test(test_max_conns),
        cmocka_unit_test(test_empty_set),
        cmocka_unit_test(test_eject_after_consecutive_failures),
        cmocka_unit_test(test_max_ejected_cap),
        cmocka_unit_test(test_tick_recounts),
        cmocka_unit_test(test_ejection_backoff),
        cmocka_unit_test(test_ejection_then_slow_start),
        cmocka_unit_test(test_failure_ratio),
        cmocka_unit_test(test_retry_budget),
        cmocka_unit_test(test_p2c_stalled_member),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
