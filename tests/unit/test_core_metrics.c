/* Unit tests for src/core/metrics.c: registry, shards, rendering. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static int reset(void **state)
{
    pt_unused(state);
    pt_metrics_reset();
    pt_metrics_thread_attach(0);
    return 0;
}

typedef struct worker_arg {
    int shard;
    pt_metric_id_t counter;
    pt_metric_id_t gauge;
    int n;
} worker_arg_t;

static void *worker(void *p)
{
    worker_arg_t *a = p;
    pt_metrics_thread_attach(a->shard);
    for (int i = 0; i < a->n; i++) {
        pt_metric_inc(a->counter);
        pt_metric_gauge_add(a->gauge, 1);
    }
    pt_metric_add(a->counter, 1000);
    pt_metric_gauge_add(a->gauge, -(int64_t)a->n / 2);
    return NULL;
}

static void test_counters_threads(void **state)
{
    pt_unused(state);
    pt_metric_id_t c = pt_metric_counter("req_total", "Requests.", "");
    pt_metric_id_t g = pt_metric_gauge("conns", "Open connections.", NULL);
    assert_true(c >= 0);
    assert_true(g >= 0);
    pthread_t th[3];
    worker_arg_t args[3];
    for (int i = 0; i < 3; i++) {
        args[i] = (worker_arg_t){.shard = i + 1, .counter = c, .gauge = g, .n = 100000 * (i + 1)};
        assert_int_equal(pthread_create(&th[i], NULL, worker, &args[i]), 0);
    }
    for (int i = 0; i < 3; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
    /* 100k + 200k + 300k increments, plus 1000 per thread. */
    assert_true(pt_metric_value(c) == 603000.0);
    /* Each thread leaves n - n/2 = n/2 on the gauge. */
    assert_true(pt_metric_value(g) == 300000.0);
}

static void test_gauge_down(void **state)
{
    pt_unused(state);
    pt_metric_id_t g = pt_metric_gauge("inflight", "In flight.", "");
    assert_true(g >= 0);
    pt_metric_gauge_add(g, 5);
    pt_metric_gauge_add(g, -8);
    assert_true(pt_metric_value(g) == -3.0);
    /* Another shard can bring it back up; the sum is signed. */
    pt_metrics_thread_attach(7);
    pt_metric_gauge_add(g, 10);
    assert_true(pt_metric_value(g) == 7.0);
    pt_metrics_thread_attach(0);
}

static void test_unattached_noop(void **state)
{
    pt_unused(state);
    pt_metric_id_t c = pt_metric_counter("x_total", "X.", "");
    pt_metrics_thread_attach(-1); /* out of range: detached */
    pt_metric_inc(c);
    assert_true(pt_metric_value(c) == 0.0);
    pt_metrics_thread_attach(0);
    pt_metric_inc(c);
    assert_true(pt_metric_value(c) == 1.0);
    /* Bad ids are ignored. */
    pt_metric_inc(-1);
    pt_metric_inc(99999);
    assert_true(isnan(pt_metric_value(12345)));
}

static void test_registration_errors(void **state)
{
    pt_unused(state);
    double b[] = {1, 2};
    double bad[] = {2, 1};
    assert_int_equal(pt_metric_counter("", "h", ""), -EINVAL);
    assert_int_equal(pt_metric_counter("9abc", "h", ""), -EINVAL);
    assert_int_equal(pt_metric_counter("a-b", "h", ""), -EINVAL);
    assert_int_equal(pt_metric_counter(NULL, "h", ""), -EINVAL);
    assert_int_equal(pt_metric_histogram("h", "h", "", bad, 2), -EINVAL);
    assert_int_equal(pt_metric_histogram("h", "h", "", b, 0), -EINVAL);
    assert_int_equal(pt_metric_gauge_fn("f", "h", "", NULL, NULL), -EINVAL);
    assert_int_equal(pt_metric_counter("fam_total", "h", "a=\"1\""), 0);
    assert_int_equal(pt_metric_counter("fam_total", "h", "a=\"2\""), 1);
    /* Same series twice, and a kind change inside a family. */
    assert_int_equal(pt_metric_counter("fam_total", "h", "a=\"2\""), -EINVAL);
    assert_int_equal(pt_metric_gauge("fam_total", "h", "a=\"3\""), -EINVAL);
    assert_int_equal(pt_metric_counter("other", "h", ""), 2);
    /* A family must be registered in one run. */
    assert_int_equal(pt_metric_counter("fam_total", "h", "a=\"4\""), -EINVAL);
}

static void test_capacity(void **state)
{
    pt_unused(state);
    double b[32];
    for (int i = 0; i < 32; i++) b[i] = i + 1;
    int n = 0;
    pt_metric_id_t id;
    char labels[32];
    /* 34 slots each: 120 fit in 4096, the 121st does not. */
    for (;;) {
        snprintf(labels, sizeof(labels), "i=\"%d\"", n);
        id = pt_metric_histogram("big", "h", labels, b, 32);
        if (id < 0) break;
        n++;
    }
    assert_int_equal(id, -ENOSPC);
    assert_int_equal(n, PT_METRICS_MAX_SLOTS / 34);
}

static void test_histogram(void **state)
{
    pt_unused(state);
    double b[] = {0.1, 0.5, 1};
    pt_metric_id_t h = pt_metric_histogram("lat_seconds", "Latency.", "", b, 3);
    assert_true(h >= 0);
    pt_metric_observe(h, 0.05);
    pt_metric_observe(h, 0.1); /* le is inclusive */
    pt_metric_observe(h, 0.3);
    pt_metric_observe(h, 2.0);
    pt_metrics_thread_attach(3);
    pt_metric_observe(h, 0.75);
    pt_metrics_thread_attach(0);
    assert_true(pt_metric_value(h) == 5.0);

    char *out;
    size_t len;
    assert_int_equal(pt_metrics_render(&out, &len), 0);
    assert_string_equal(out, "# HELP lat_seconds Latency.\n"
                             "# TYPE lat_seconds histogram\n"
                             "lat_seconds_bucket{le=\"0.1\"} 2\n"
                             "lat_seconds_bucket{le=\"0.5\"} 3\n"
                             "lat_seconds_bucket{le=\"1\"} 4\n"
                             "lat_seconds_bucket{le=\"+Inf\"} 5\n"
                             "lat_seconds_sum 3.2\n"
                             "lat_seconds_count 5\n");
    assert_int_equal(len, strlen(out));
    free(out);
}

static double fixed_fn(void *arg)
{
    return *(double *)arg;
}

static void test_render_exact(void **state)
{
    pt_unused(state);
    double b[] = {0.005, 2.5};
    double uptime = 12.5;
    pt_metric_id_t c2 = pt_metric_counter("http_responses_total", "Responses by class.",
                                          "class=\"2xx\"");
    pt_metric_id_t c5 = pt_metric_counter("http_responses_total", "Responses by class.",
                                          "class=\"5xx\"");
    pt_metric_id_t g = pt_metric_gauge("open_conns", "Open\\connections\nnow.", "");
    pt_metric_id_t h = pt_metric_histogram("req_seconds", "Request time.", "class=\"2xx\"", b, 2);
    pt_metric_id_t h5 = pt_metric_histogram("req_seconds", "Request time.", "class=\"5xx\"", b, 2);
    pt_metric_id_t f = pt_metric_gauge_fn("uptime_seconds", "Uptime.", "", fixed_fn, &uptime);
    assert_true(c2 >= 0 && c5 >= 0 && g >= 0 && h >= 0 && h5 >= 0 && f >= 0);
    pt_metric_add(c2, 41);
    pt_metric_inc(c2);
    pt_metric_add(c5, 3);
    pt_metric_gauge_add(g, -2);
    pt_metric_observe(h, 0.001);
    pt_metric_observe(h, 1.0);
    pt_metric_observe(h5, 10);

    char *out;
    size_t len;
    assert_int_equal(pt_metrics_render(&out, &len), 0);
    assert_string_equal(out,
                        "# HELP http_responses_total Responses by class.\n"
                        "# TYPE http_responses_total counter\n"
                        "http_responses_total{class=\"2xx\"} 42\n"
                        "http_responses_total{class=\"5xx\"} 3\n"
                        "# HELP open_conns Open\\\\connections\\nnow.\n"
                        "# TYPE open_conns gauge\n"
                        "open_conns -2\n"
                        "# HELP req_seconds Request time.\n"
                        "# TYPE req_seconds histogram\n"
                        "req_seconds_bucket{class=\"2xx\",le=\"0.005\"} 1\n"
                        "req_seconds_bucket{class=\"2xx\",le=\"2.5\"} 2\n"
                        "req_seconds_bucket{class=\"2xx\",le=\"+Inf\"} 2\n"
                        "req_seconds_sum{class=\"2xx\"} 1.001\n"
                        "req_seconds_count{class=\"2xx\"} 2\n"
                        "req_seconds_bucket{class=\"5xx\",le=\"0.005\"} 0\n"
                        "req_seconds_bucket{class=\"5xx\",le=\"2.5\"} 0\n"
                        "req_seconds_bucket{class=\"5xx\",le=\"+Inf\"} 1\n"
                        "req_seconds_sum{class=\"5xx\"} 10\n"
                        "req_seconds_count{class=\"5xx\"} 1\n"
                        "# HELP uptime_seconds Uptime.\n"
                        "# TYPE uptime_seconds gauge\n"
                        "uptime_seconds 12.5\n");
    assert_int_equal(len, strlen(out));
    free(out);
    assert_true(pt_metric_value(f) == 12.5);
}

static void test_render_empty(void **state)
{
    pt_unused(state);
    char *out = NULL;
    size_t len = 99;
    assert_int_equal(pt_metrics_render(&out, &len), 0);
    assert_non_null(out);
    assert_int_equal(len, 0);
    assert_string_equal(out, "");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_counters_threads, reset),
        cmocka_unit_test_setup(test_gauge_down, reset),
        cmocka_unit_test_setup(test_unattached_noop, reset),
        cmocka_unit_test_setup(test_registration_errors, reset),
        cmocka_unit_test_setup(test_capacity, reset),
        cmocka_unit_test_setup(test_histogram, reset),
        cmocka_unit_test_setup(test_render_exact, reset),
        cmocka_unit_test_setup(test_render_empty, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
