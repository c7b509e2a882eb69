/* Unit tests: the event loop (src/core/loop.c): timers, deferred tasks,
 * cross-thread posts and edge-triggered I/O. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/core.h"

typedef struct rec {
    pt_loop_t *loop;
    int order[16];
    int n;
    int stop_after;
} rec_t;

typedef struct tmr {
    pt_timer_t t;
    rec_t *rec;
    int id;
} tmr_t;

static void on_timer(pt_timer_t *t)
{
    tmr_t *x = t->data;
    x->rec->order[x->rec->n++] = x->id;
    if (x->rec->n == x->rec->stop_after) pt_loop_stop(x->rec->loop);
}

static void test_timers_fire_in_order(void **state)
{
    (void)state;
    /* Deadlines count from the loop's clock, read when it was created. */
    uint64_t t0 = pt_time_mono_ms();
    rec_t rec = {.loop = pt_loop_create(), .stop_after = 4};
    assert_non_null(rec.loop);
    tmr_t t[5];
    int delays[5] = {40, 10, 30, 20, 5};
    for (int i = 0; i < 5; i++) {
        t[i] = (tmr_t){.rec = &rec, .id = i};
        pt_timer_init(&t[i].t, on_timer, &t[i]);
        pt_timer_start(rec.loop, &t[i].t, (uint64_t)delays[i]);
    }
    pt_timer_stop(rec.loop, &t[0].t); /* never fires */
    assert_false(pt_timer_armed(&t[0].t));
    assert_int_equal(pt_loop_run(rec.loop), 0);
    assert_true(pt_time_mono_ms() - t0 >= 30);
    int want[4] = {4, 1, 3, 2};
    assert_int_equal(rec.n, 4);
    assert_memory_equal(rec.order, want, sizeof(want));
    pt_loop_destroy(rec.loop);
}

static void test_timer_rearm_moves_it(void **state)
{
    (void)state;
    rec_t rec = {.loop = pt_loop_create(), .stop_after = 2};
    tmr_t a = {.rec = &rec, .id = 1}, b = {.rec = &rec, .id = 2};
    pt_timer_init(&a.t, on_timer, &a);
    pt_timer_init(&b.t, on_timer, &b);
    pt_timer_start(rec.loop, &a.t, 5);
    pt_timer_start(rec.loop, &b.t, 20);
    pt_timer_start(rec.loop, &a.t, 40); /* later than b now */
    pt_timer_start(rec.loop, &b.t, 10); /* earlier */
    assert_int_equal(pt_loop_run(rec.loop), 0);
    assert_int_equal(rec.order[0], 2);
    assert_int_equal(rec.order[1], 1);
    pt_loop_destroy(rec.loop);
}

/* Many timers in random order come out sorted (heap invariants). */
static void test_timer_heap_many(void **state)
{
    (void)state;
    enum { N = 500 };
    pt_loop_t *loop = pt_loop_create();
    pt_timer_t *t = calloc(N, sizeof(*t));
    assert_non_null(t);
    unsigned seed = 12345;
    for (int i = 0; i < N; i++) {
        pt_timer_init(&t[i], NULL, NULL);
        seed = seed * 1103515245u + 12345u;
        pt_timer_start(loop, &t[i], 1000 + (seed >> 16) % 5000);
    }
    for (int i = 0; i < N; i += 3) pt_timer_stop(loop, &t[i]);
    /* Re-arm a third to new places. */
    for (int i = 1; i < N; i += 3) pt_timer_start(loop, &t[i], 500 + (uint64_t)i);
    uint64_t last = 0;
    int armed = 0;
    for (int i = 0; i < N; i++) armed += pt_timer_armed(&t[i]);
    /* The heap root always holds the earliest deadline; stop it and repeat
     * (ties: any timer with the minimal deadline may be the root). */
    for (int k = 0; k < armed; k++) {
        pt_timer_t *min = NULL, *root = NULL;
        for (int i = 0; i < N; i++) {
            if (!pt_timer_armed(&t[i])) continue;
            if (!min || t[i].when_ms < min->when_ms) min = &t[i];
            if (t[i].heap_idx == 0) root = &t[i];
        }
        assert_non_null(root);
        assert_int_equal(root->when_ms, min->when_ms);
        assert_true(root->when_ms >= last);
        last = root->when_ms;
        pt_timer_stop(loop, root);
    }
    for (int i = 0; i < N; i++) assert_false(pt_timer_armed(&t[i]));
    free(t);
    pt_loop_destroy(loop);
}

static void deferred(void *arg)
{
    rec_t *rec = arg;
    rec->order[rec->n] = 100 + rec->n;
    rec->n++;
    if (rec->n == 2) pt_loop_stop(rec->loop);
}

static void defer_twice(void *arg)
{
    rec_t *rec = arg;
    assert_int_equal(pt_loop_defer(rec->loop, deferred, rec), 0);
    assert_int_equal(pt_loop_defer(rec->loop, deferred, rec), 0);
}

static void test_defer_runs_at_end_of_iteration(void **state)
{
    (void)state;
    rec_t rec = {.loop = pt_loop_create()};
    assert_int_equal(pt_loop_defer(rec.loop, defer_twice, &rec), 0);
    assert_int_equal(pt_loop_run(rec.loop), 0);
    assert_int_equal(rec.n, 2);
    pt_loop_destroy(rec.loop);
}

static void posted(void *arg)
{
    rec_t *rec = arg;
    rec->order[rec->n++] = 7;
    pt_loop_stop(rec->loop);
}

static void *poster(void *arg)
{
    rec_t *rec = arg;
    usleep(20000);
    pt_loop_post(rec->loop, posted, rec);
    return NULL;
}

static void test_post_from_another_thread_wakes_the_loop(void **state)
{
    (void)state;
    rec_t rec = {.loop = pt_loop_create()};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, poster, &rec), 0);
    uint64_t t0 = pt_time_mono_ms();
    assert_int_equal(pt_loop_run(rec.loop), 0);
    /* woken by the eventfd, not by the 1 s idle timeout */
    assert_true(pt_time_mono_ms() - t0 < 900);
    pthread_join(th, NULL);
    assert_int_equal(rec.n, 1);
    assert_int_equal(rec.order[0], 7);
    pt_loop_destroy(rec.loop);
}

typedef struct iorec {
    pt_loop_t *loop;
    pt_io_t io;
    unsigned events;
    int calls;
    char got[16];
} iorec_t;

static void on_io(pt_io_t *io, unsigned events)
{
    iorec_t *r = io->data;
    r->events |= events;
    r->calls++;
    if (events & PT_EV_READ) {
        ssize_t n = read(io->fd, r->got, sizeof(r->got) - 1);
        if (n >= 0) r->got[n] = '\0';
        pt_loop_stop(r->loop);
    }
}

static void test_io_edges(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    iorec_t r = {.loop = pt_loop_create()};
    r.io.fd = sv[0];
    r.io.cb = on_io;
    r.io.data = &r;
    assert_int_equal(pt_io_start(r.loop, &r.io), 0);
    assert_true(r.io.registered);
    assert_int_equal(write(sv[1], "ping", 4), 4);
    assert_int_equal(pt_loop_run(r.loop), 0);
    assert_true(r.events & PT_EV_READ);
    assert_true(r.io.readable);
    assert_string_equal(r.got, "ping");
    pt_io_stop(r.loop, &r.io);
    assert_false(r.io.registered);
    pt_io_stop(r.loop, &r.io); /* idempotent */
    close(sv[0]);
    close(sv[1]);
    pt_loop_destroy(r.loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timers_fire_in_order),
        cmocka_unit_test(test_timer_rearm_moves_it),
        cmocka_unit_test(test_timer_heap_many),
        cmocka_unit_test(test_defer_runs_at_end_of_iteration),
        cmocka_unit_test(test_post_from_another_thread_wakes_the_loop),
        cmocka_unit_test(test_io_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
