/* Unit tests for src/admin/admin.c: a real listener on 127.0.0.1, real sockets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin.h"

#define BIG_BODY (4u * 1024 * 1024)

typedef struct fixture {
    pt_loop_t *loop;
    pt_admin_t *admin;
    pthread_t thread;
    uint16_t port;
    pt_metric_id_t counter;
} fixture_t;

static uint64_t generation(void *arg)
{
    return *(uint64_t *)arg;
}

static uint64_t gen_value = 7;

static int echo_handler(const pt_admin_request_t *req, pt_admin_response_t *resp, void *arg)
{
    pt_unused(arg);
    resp->status = 202;
    resp->content_type = "text/x-echo";
    if (asprintf(&resp->body, "%s|%s|%s", req->method, req->path, req->query) < 0) return -ENOMEM;
    resp->body_len = strlen(resp->body);
    return 0;
}

static int fail_handler(const pt_admin_request_t *req, pt_admin_response_t *resp, void *arg)
{
    pt_unused(req);
    pt_unused(arg);
    resp->body = strdup("half-built"); /* the admin module must free it */
    return -EIO;
}

static int big_handler(const pt_admin_request_t *req, pt_admin_response_t *resp, void *arg)
{
    pt_unused(req);
    pt_unused(arg);
    resp->body = malloc(BIG_BODY);
    if (resp->body == NULL) return -ENOMEM;
    for (size_t i = 0; i < BIG_BODY; i++) resp->body[i] = (char)('a' + i % 26);
    resp->body_len = BIG_BODY;
    return 0;
}

/* A port that was free a moment ago: bind to 0, read it, close. */
static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    socklen_t len = sizeof(sin);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

static void *run_loop(void *arg)
{
    pt_loop_run(arg);
    return NULL;
}

static void stop_task(void *arg)
{
    pt_loop_stop(arg);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    pt_metrics_reset();
    f->counter = pt_metric_counter("test_admin_requests_total", "Requests.", "");
    assert_true(f->counter >= 0);
    pt_metrics_thread_attach(0);
    pt_metric_add(f->counter, 42);

    f->loop = pt_loop_create();
    assert_non_null(f->loop);
    pt_admin_status_t st = {
        .start_wall_ms = pt_time_wall_ms() - 3500,
        .workers = 4,
        .generation = generation,
        .arg = &gen_value,
    };
    f->admin = pt_admin_create(&st);
    assert_non_null(f->admin);
    assert_int_equal(pt_admin_register(f->admin, "/echo", echo_handler, NULL), 0);
    assert_int_equal(pt_admin_register(f->admin, "/fail", fail_handler, NULL), 0);
    assert_int_equal(pt_admin_register(f->admin, "/big", big_handler, NULL), 0);
    assert_int_equal(pt_admin_register(f->admin, "/status", echo_handler, NULL), -EEXIST);
    assert_int_equal(pt_admin_register(f->admin, "/echo", echo_handler, NULL), -EEXIST);

    char addr[32];
    f->port = free_port();
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", f->port);
    assert_int_equal(pt_admin_start(f->admin, f->loop, addr), 0);
    assert_int_equal(pthread_create(&f->thread, NULL, run_loop, f->loop), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(pt_loop_post(f->loop, stop_task, f->loop), 0);
    assert_int_equal(pthread_join(f->thread, NULL), 0);
    pt_admin_destroy(f->admin);
    pt_loop_destroy(f->loop);
    free(f);
    return 0;
}

static int connect_admin(const fixture_t *f)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons(f->port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    return fd;
}

static void send_all(int fd, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        s += n;
        len -= (size_t)n;
    }
}

typedef struct reply {
    char *raw; /* malloc'd, NUL-terminated */
    size_t len;
    int status;
    const char *body;
    size_t body_len;
} reply_t;

/* Reads until EOF: the server must close after one response. */
static void read_reply(int fd, reply_t *r)
{
    size_t cap = 1 << 16;
    r->raw = malloc(cap + 1);
    r->len = 0;
    assert_non_null(r->raw);
    for (;;) {
        if (r->len == cap) {
            cap *= 2;
            r->raw = realloc(r->raw, cap + 1);
            assert_non_null(r->raw);
        }
        ssize_t n = read(fd, r->raw + r->len, cap - r->len);
        assert_true(n >= 0); /* a timeout here means the server did not close */
        if (n == 0) break;
        r->len += (size_t)n;
    }
    r->raw[r->len] = '\0';
    assert_int_equal(sscanf(r->raw, "HTTP/1.1 %d ", &r->status), 1);
    char *end = strstr(r->raw, "\r\n\r\n");
    assert_non_null(end);
    r->body = end + 4;
    r->body_len = r->len - (size_t)(r->body - r->raw);
}

static void request(const fixture_t *f, const char *req, reply_t *r)
{
    int fd = connect_admin(f);
    send_all(fd, req, strlen(req));
    read_reply(fd, r);
    close(fd);
}

/* True if the head (before the blank line) holds the exact header line. */
static bool has_header(const reply_t *r, const char *line)
{
    size_t head_len = (size_t)(r->body - r->raw);
    size_t n = strlen(line);
    for (const char *p = strstr(r->raw, "\r\n"); p && (size_t)(p - r->raw) < head_len;
         p = strstr(p + 2, "\r\n")) {
        if (strncmp(p + 2, line, n) == 0 && p[2 + n] == '\r') return true;
    }
    return false;
}

static void check_length(const reply_t *r)
{
    char want[64];
    snprintf(want, sizeof(want), "Content-Length: %zu", r->body_len);
    assert_true(has_header(r, want));
    assert_true(has_header(r, "Connection: close"));
}

static void test_status(void **state)
{
    fixture_t *f = *state;
    reply_t r;
    request(f, "GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "Content-Type: application/json"));
    check_length(&r);
    char want[256];
    snprintf(want, sizeof(want),
             "{\"version\":\"0.1.0\",\"uptime_seconds\":3,\"workers\":4,"
             "\"config_generation\":7,\"pid\":%ld}\n",
             (long)getpid());
    assert_string_equal(r.body, want);
    free(r.raw);

    /* The query is not part of the path; HTTP/1.0 works too. */
    request(f, "GET /status?pretty=1 HTTP/1.0\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"workers\":4,"));
    free(r.raw);
}

static void test_metrics(void **state)
{
    fixture_t *f = *state;
    reply_t r;
    request(f, "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "Content-Type: text/plain; version=0.0.4; charset=utf-8"));
    check_length(&r);
    assert_string_equal(r.body, "# HELP test_admin_requests_total Requests.\n"
                                "# TYPE test_admin_requests_total counter\n"
                                "test_admin_requests_total 42\n");
    free(r.raw);

    pt_metric_inc(f->counter);
    request(f, "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", &r);
    assert_non_null(strstr(r.body, "\ntest_admin_requests_total 43\n"));
    free(r.raw);
}

static void test_not_found(void **state)
{
    fixture_t *f = *state;
    reply_t r;
    static const char *const reqs[] = {
        "GET /nope HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /status/ HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /STATUS HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    };
    for (size_t i = 0; i < pt_countof(reqs); i++) {
        request(f, reqs[i], &r);
        assert_int_equal(r.status, 404);
        check_length(&r);
        assert_string_equal(r.body, "404 Not Found\n");
        free(r.raw);
    }
}

static void test_method_not_allowed(void **state)
{
    fixture_t *f = *state;
    reply_t r;
    request(f, "POST /status HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", &r);
    assert_int_equal(r.status, 405);
    assert_true(has_header(&r, "Allow: GET"));
    check_length(&r);
    assert_string_equal(r.body, "405 Method Not Allowed\n");
    free(r.raw);
    request(f, "HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\n", &r);
    assert_int_equal(r.status, 405);
    free(r.raw);
    request(f, "DELETE /metrics HTTP/1.1\r\nHost: a\r\n\r\n", &r);
    assert_int_equal(r.status, 405);
    free(r.raw);
}

static void test_registered(void **state)
{
    fixture_t *f = *state;
    reply_t r;
    request(f, "PUT /echo?a=1&b=2 HTTP/1.1\r\nHost: a\r\n\r\n", &r);
    assert_int_equal(r.status, 202);
    assert_true(has_header(&r, "Content-Type: text/x-echo"));
    check_length(&r);
    assert_string_equal(r.body, "PUT|/echo|a=1&b=2");
    free(r.raw);

    request(f, "GET /echo HTTP/1.1\r\nHost: a\r\n\r\n", &r);
    assert_string_equal(r.body, "GET|/echo|");
    free(r.raw);

    /* Absolute-form targets reach the same endpoint. */
    request(f, "GET http://a/echo?x HTTP/1.1\r\nHost: a\r\n\r\n", &r);
    assert_string_equal(r.body, "GET|/echo|x");
    free(r.raw);

    request(f, "GET /fail HTTP/1.1\r\nHost: a\r\n\r\n", &r);
    assert_int_equal(r.status, 500);
    assert_string_equal(r.body, "500 Internal Server Error\n");
    free(r.raw);
}

static void test_bad_requests(void **state)
{
    fixture_t *f = *state;
    reply_t r;
    request(f, "GARBAGE\r\n\r\n", &r);
    assert_int_equal(r.status, 400);
    check_length(&r);
    free(r.raw);
    /* HTTP/1.1 without Host. */
    request(f, "GET /status HTTP/1.1\r\n\r\n", &r);
    assert_int_equal(r.status, 400);
    free(r.raw);
    request(f, "GET /status HTTP/2.0\r\nHost: a\r\n\r\n", &r);
    assert_int_equal(r.status, 505);
    free(r.raw);
}

static void test_head_too_large(void **state)
{
    fixture_t *f = *state;
    size_t n = 20000, cap = n + 256;
    char *req = malloc(cap);
    assert_non_null(req);
    int off = snprintf(req, cap, "GET /status HTTP/1.1\r\nHost: a\r\n");
    while ((size_t)off < n) off += snprintf(req + off, cap - (size_t)off, "X-Pad: %0100d\r\n", 0);
    snprintf(req + off, cap - (size_t)off, "\r\n");
    reply_t r;
    request(f, req, &r);
    assert_int_equal(r.status, 431);
    check_length(&r);
    free(r.raw);
    free(req);
}

static void test_split_request(void **state)
{
    fixture_t *f = *state;
    int fd = connect_admin(f);
    const char *parts[] = {"GET /sta", "tus HTTP/1.1\r\nHo", "st: a\r\n", "\r\n"};
    for (size_t i = 0; i < pt_countof(parts); i++) {
        send_all(fd, parts[i], strlen(parts[i]));
        usleep(20000);
    }
    reply_t r;
    read_reply(fd, &r);
    close(fd);
    assert_int_equal(r.status, 200);
    free(r.raw);
}

static void test_big_body_partial_writes(void **state)
{
    fixture_t *f = *state;
    int fd = connect_admin(f);
    const char *req = "GET /big HTTP/1.1\r\nHost: a\r\n\r\n";
    send_all(fd, req, strlen(req));
    /* Let the server fill the socket buffers and hit EAGAIN. */
    usleep(100000);
    reply_t r;
    read_reply(fd, &r);
    close(fd);
    assert_int_equal(r.status, 200);
    check_length(&r);
    assert_int_equal(r.body_len, BIG_BODY);
    for (size_t i = 0; i < BIG_BODY; i += 4099) assert_int_equal(r.body[i], 'a' + i % 26);
    assert_int_equal(r.body[BIG_BODY - 1], 'a' + (BIG_BODY - 1) % 26);
    free(r.raw);
}

static void test_client_gone(void **state)
{
    fixture_t *f = *state;
    /* Half a head and a close, then a reset: the server must shrug. */
    int fd = connect_admin(f);
    send_all(fd, "GET /stat", 9);
    close(fd);
    fd = connect_admin(f);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    send_all(fd, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n", 30);
    close(fd);
    /* Still serving. */
    reply_t r;
    request(f, "GET /status HTTP/1.1\r\nHost: a\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    free(r.raw);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void test_timeout(void **state)
{
    fixture_t *f = *state;
    /* A client that never finishes its head is closed after 10 s. */
    int fd = connect_admin(f);
    struct timeval tv = {.tv_sec = 15};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    send_all(fd, "GET /status HTTP/1.1\r\n", 23);
    uint64_t start = mono_ms();
    char buf[64];
    ssize_t n = read(fd, buf, sizeof(buf));
    uint64_t took = mono_ms() - start;
    close(fd);
    assert_int_equal(n, 0);
    assert_true(took >= 9500 && took < 12000);
}

static void test_start_errors(void **state)
{
    fixture_t *f = *state;
    pt_loop_t *loop = pt_loop_create();
    assert_non_null(loop);
    pt_admin_t *a = pt_admin_create(NULL);
    assert_non_null(a);
    assert_int_equal(pt_admin_start(a, loop, "not-an-address"), -EINVAL);
    assert_int_equal(pt_admin_start(a, loop, "127.0.0.1:0"), -EINVAL);
    char addr[32];
    snprintf(addr, sizeof(addr), "%u", f->port); /* port only: 127.0.0.1 */
    assert_int_equal(pt_admin_start(a, loop, addr), -EADDRINUSE);
    pt_admin_destroy(a);
    pt_loop_destroy(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_method_not_allowed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_body_partial_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
