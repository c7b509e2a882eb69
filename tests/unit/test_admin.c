/* Unit tests for src/admin/admin.c: a real listener on 127.0.0.1, real sockets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin.h"
#include "admin_fixture.h"
#include "test_util.h"

#define BIG_BODY (4u * 1024 * 1024)

typedef struct fixture {
    admin_server_t srv;
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

/* "METHOD|len|nul=0/1|body": what the handler saw of the body. */
static int body_handler(const pt_admin_request_t *req, pt_admin_response_t *resp, void *arg)
{
    pt_unused(arg);
    bool nul = req->body != NULL && req->body[req->body_len] == '\0';
    char *out = NULL;
    int n = asprintf(&out, "%s|%zu|nul=%d|", req->method, req->body_len, nul);
    if (n < 0) return -ENOMEM;
    char *all = malloc((size_t)n + req->body_len);
    if (all == NULL) {
        free(out);
        return -ENOMEM;
    }
    memcpy(all, out, (size_t)n);
    memcpy(all + n, req->body, req->body_len);
    free(out);
    int rc = pt_admin_body(resp, all, (size_t)n + req->body_len, "text/x-body");
    free(all);
    return rc;
}

/* "<tag>:<path>" where the tag is the registration's arg. */
static int tag_handler(const pt_admin_request_t *req, pt_admin_response_t *resp, void *arg)
{
    char buf[256];
    int n = snprintf(buf, sizeof(buf), "%s:%s", (const char *)arg, req->path);
    if (n < 0 || (size_t)n >= sizeof(buf)) return -EOVERFLOW;
    return pt_admin_body(resp, buf, (size_t)n, NULL);
}

/* 400 with a JSON error that needs escaping. */
static int json_error_handler(const pt_admin_request_t *req, pt_admin_response_t *resp,
                              void *arg)
{
    pt_unused(req);
    pt_unused(arg);
    resp->status = 400;
    return pt_admin_json_error(resp, "bad \"weight\"\n\x01");
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

static int setup_with_token(void **state, const char *token)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    pt_metrics_reset();
    f->counter = pt_metric_counter("test_admin_requests_total", "Requests.", "");
    assert_true(f->counter >= 0);
    pt_metrics_thread_attach(0);
    pt_metric_add(f->counter, 42);

    admin_server_init(&f->srv);
    /* The token is copied: scribbling on ours afterwards must not matter. */
    char token_copy[64] = "";
    if (token != NULL) snprintf(token_copy, sizeof(token_copy), "%s", token);
    pt_admin_status_t st = {
        .start_wall_ms = pt_time_wall_ms() - 3500,
        .workers = 4,
        .generation = generation,
        .arg = &gen_value,
        .token = token != NULL ? token_copy : NULL,
    };
    pt_admin_t *a = f->srv.admin = pt_admin_create(&st);
    assert_non_null(a);
    memset(token_copy, 'x', sizeof(token_copy) - 1);
    assert_int_equal(pt_admin_register(a, "/echo", echo_handler, NULL), 0);
    assert_int_equal(pt_admin_register(a, "/fail", fail_handler, NULL), 0);
    assert_int_equal(pt_admin_register(a, "/big", big_handler, NULL), 0);
    assert_int_equal(pt_admin_register(a, "/body", body_handler, NULL), 0);
    assert_int_equal(pt_admin_register(a, "/json-error", json_error_handler, NULL), 0);
    assert_int_equal(pt_admin_register(a, "/status", echo_handler, NULL), -EEXIST);
    assert_int_equal(pt_admin_register(a, "/echo", echo_handler, NULL), -EEXIST);

    /* Prefixes: the longest wins, exact paths win over any prefix. */
    assert_int_equal(pt_admin_register_prefix(a, "/p/q/", tag_handler, "long"), 0);
    assert_int_equal(pt_admin_register_prefix(a, "/p/", tag_handler, "short"), 0);
    assert_int_equal(pt_admin_register_prefix(a, "/p/q/r/", tag_handler, "longest"), 0);
    assert_int_equal(pt_admin_register(a, "/p/exact", tag_handler, "exact"), 0);
    assert_int_equal(pt_admin_register(a, "/p/q/", tag_handler, "exact-slash"), 0);
    assert_int_equal(pt_admin_register_prefix(a, "/p/", tag_handler, "again"), -EEXIST);
    assert_int_equal(pt_admin_register_prefix(a, "/p", tag_handler, "no-slash"), -EINVAL);
    assert_int_equal(pt_admin_register_prefix(a, "p/", tag_handler, "relative"), -EINVAL);

    admin_server_start(&f->srv);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with_token(state, NULL);
}

#define TEST_TOKEN "s3cret-Token_42"

static int setup_token(void **state)
{
    return setup_with_token(state, TEST_TOKEN);
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    admin_server_stop(&f->srv);
    free(f);
    return 0;
}

/* True if the head (before the blank line) holds the exact header line. */
static bool has_header(const admin_reply_t *r, const char *line)
{
    size_t head_len = (size_t)(r->body - r->raw);
    size_t n = strlen(line);
    for (const char *p = strstr(r->raw, "\r\n"); p && (size_t)(p - r->raw) < head_len;
         p = strstr(p + 2, "\r\n")) {
        if (strncmp(p + 2, line, n) == 0 && p[2 + n] == '\r') return true;
    }
    return false;
}

static void check_length(const admin_reply_t *r)
{
    char want[64];
    snprintf(want, sizeof(want), "Content-Length: %zu", r->body_len);
    assert_true(has_header(r, want));
    assert_true(has_header(r, "Connection: close"));
}

/* Sends req and expects that status, a matching Content-Length, that body
 * and, unless it is NULL, that header line. */
static void expect_reply(const fixture_t *f, const char *req, int status, const char *header,
                         const char *body)
{
    admin_reply_t r;
    request(&f->srv, req, &r);
    assert_int_equal(r.status, status);
    if (header != NULL) assert_true(has_header(&r, header));
    check_length(&r);
    assert_string_equal(r.body, body);
    free(r.raw);
}

/* Sends req and expects that status (the reply is shown when it differs). */
static void expect_status(const fixture_t *f, const char *req, int status)
{
    admin_reply_t r;
    request(&f->srv, req, &r);
    if (r.status != status) fprintf(stderr, "request:\n%s\nreply:\n%s\n", req, r.raw);
    assert_int_equal(r.status, status);
    free(r.raw);
}

static void test_status(void **state)
{
    fixture_t *f = *state;
    char want[256];
    snprintf(want, sizeof(want),
             "{\"version\":\"0.1.0\",\"uptime_seconds\":3,\"workers\":4,"
             "\"config_generation\":7,\"pid\":%ld}\n",
             (long)getpid());
    expect_reply(f, "GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n", 200,
                 "Content-Type: application/json", want);

    /* The query is not part of the path; HTTP/1.0 works too. */
    admin_reply_t r;
    request(&f->srv, "GET /status?pretty=1 HTTP/1.0\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"workers\":4,"));
    free(r.raw);
}

static void test_metrics(void **state)
{
    fixture_t *f = *state;
    expect_reply(f, "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", 200,
                 "Content-Type: text/plain; version=0.0.4; charset=utf-8",
                 "# HELP test_admin_requests_total Requests.\n"
                 "# TYPE test_admin_requests_total counter\n"
                 "test_admin_requests_total 42\n");

    pt_metric_inc(f->counter);
    admin_reply_t r;
    request(&f->srv, "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", &r);
    assert_non_null(strstr(r.body, "\ntest_admin_requests_total 43\n"));
    free(r.raw);
}

static void test_not_found(void **state)
{
    fixture_t *f = *state;
    static const char *const reqs[] = {
        "GET /nope HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /status/ HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /statu HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /p HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /P/x HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /STATUS HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    };
    for (size_t i = 0; i < pt_countof(reqs); i++)
        expect_reply(f, reqs[i], 404, NULL, "404 Not Found\n");
}

static void test_method_not_allowed(void **state)
{
    fixture_t *f = *state;
    expect_reply(f, "POST /status HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", 405,
                 "Allow: GET", "405 Method Not Allowed\n");
    expect_status(f, "HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\n", 405);
    expect_status(f, "DELETE /metrics HTTP/1.1\r\nHost: a\r\n\r\n", 405);
}

static void test_registered(void **state)
{
    fixture_t *f = *state;
    expect_reply(f, "PUT /echo?a=1&b=2 HTTP/1.1\r\nHost: a\r\n\r\n", 202,
                 "Content-Type: text/x-echo", "PUT|/echo|a=1&b=2");

    admin_reply_t r;
    request(&f->srv, "GET /echo HTTP/1.1\r\nHost: a\r\n\r\n", &r);
    assert_string_equal(r.body, "GET|/echo|");
    free(r.raw);

    /* Absolute-form targets reach the same endpoint. */
    request(&f->srv, "GET http://a/echo?x HTTP/1.1\r\nHost: a\r\n\r\n", &r);
    assert_string_equal(r.body, "GET|/echo|x");
    free(r.raw);

    request(&f->srv, "GET /fail HTTP/1.1\r\nHost: a\r\n\r\n", &r);
    assert_int_equal(r.status, 500);
    assert_string_equal(r.body, "500 Internal Server Error\n");
    free(r.raw);
}

static void test_bad_requests(void **state)
{
    fixture_t *f = *state;
    admin_reply_t r;
    request(&f->srv, "GARBAGE\r\n\r\n", &r);
    assert_int_equal(r.status, 400);
    check_length(&r);
    free(r.raw);
    /* HTTP/1.1 without Host. */
    expect_status(f, "GET /status HTTP/1.1\r\n\r\n", 400);
    expect_status(f, "GET /status HTTP/2.0\r\nHost: a\r\n\r\n", 505);
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
    admin_reply_t r;
    request(&f->srv, req, &r);
    assert_int_equal(r.status, 431);
    check_length(&r);
    free(r.raw);
    free(req);
}

/* Sends a request in n parts, 20 ms apart, and reads the answer. */
static void request_in_parts(const fixture_t *f, const char *const *parts, size_t n,
                             admin_reply_t *r)
{
    int fd = admin_connect(&f->srv);
    for (size_t i = 0; i < n; i++) {
        send_all(fd, parts[i], strlen(parts[i]));
        usleep(20000);
    }
    read_reply(fd, r);
    close(fd);
}

static void test_split_request(void **state)
{
    fixture_t *f = *state;
    static const char *const parts[] = {"GET /sta", "tus HTTP/1.1\r\nHo", "st: a\r\n", "\r\n"};
    admin_reply_t r;
    request_in_parts(f, parts, pt_countof(parts), &r);
    assert_int_equal(r.status, 200);
    free(r.raw);
}

static void test_big_body_partial_writes(void **state)
{
    fixture_t *f = *state;
    int fd = admin_connect(&f->srv);
    const char *req = "GET /big HTTP/1.1\r\nHost: a\r\n\r\n";
    send_all(fd, req, strlen(req));
    /* Let the server fill the socket buffers and hit EAGAIN. */
    usleep(100000);
    admin_reply_t r;
    read_reply(fd, &r);
    close(fd);
    assert_int_equal(r.status, 200);
    check_length(&r);
    assert_int_equal(r.body_len, BIG_BODY);
    for (size_t i = 0; i < BIG_BODY; i += 4099) assert_int_equal(r.body[i], 'a' + i % 26);
    assert_int_equal(r.body[BIG_BODY - 1], 'a' + (BIG_BODY - 1) % 26);
    free(r.raw);
}

/* Sends req on a new connection, waits pause_us and goes away: a close,
 * or a reset (RST) when reset is set. */
static void send_and_leave(const fixture_t *f, const char *req, bool reset, useconds_t pause_us)
{
    int fd = admin_connect(&f->srv);
    if (reset) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    send_all(fd, req, strlen(req));
    if (pause_us > 0) usleep(pause_us);
    close(fd);
}

static void test_client_gone(void **state)
{
    fixture_t *f = *state;
    /* Half a head and a close, then a reset: the server must shrug. */
    send_and_leave(f, "GET /stat", false, 0);
    send_and_leave(f, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n", true, 0);
    /* Still serving. */
    expect_status(f, "GET /status HTTP/1.1\r\nHost: a\r\n\r\n", 200);
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
    int fd = admin_connect(&f->srv);
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
    snprintf(addr, sizeof(addr), "%u", f->srv.port); /* port only: 127.0.0.1 */
    assert_int_equal(pt_admin_start(a, loop, addr), -EADDRINUSE);
    pt_admin_destroy(a);
    pt_loop_destroy(loop);
}

/* ---- request bodies ---- */

static void test_body(void **state)
{
    fixture_t *f = *state;
    expect_reply(f, "POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", 200, NULL,
                 "POST|5|nul=1|hello");
    /* No body: "" and 0, still NUL-terminated. */
    expect_reply(f, "GET /body HTTP/1.1\r\nHost: a\r\n\r\n", 200, NULL, "GET|0|nul=1|");
    expect_reply(f, "PUT /body HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 200, NULL,
                 "PUT|0|nul=1|");
    /* Bytes after the body are not part of it (one request per connection). */
    expect_reply(f, "POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcdef", 200, NULL,
                 "POST|3|nul=1|abc");
    expect_reply(f, "POST /body HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}", 200, NULL,
                 "POST|2|nul=1|{}");

    admin_reply_t r;
    request(&f->srv, "POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok", &r);
    assert_true(has_header(&r, "Content-Type: text/x-body"));
    free(r.raw);
}

static void test_body_split(void **state)
{
    fixture_t *f = *state;
    static const char *const parts[] = {
        "POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhel", "lo ", "wor", "ld"};
    admin_reply_t r;
    request_in_parts(f, parts, pt_countof(parts), &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "POST|11|nul=1|hello world");
    free(r.raw);
}

/* A request for /body with a body of n bytes of a known pattern. */
static char *body_request(size_t n, size_t *len)
{
    char head[128];
    int hn = snprintf(head, sizeof(head),
                      "POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: %zu\r\n\r\n", n);
    char *req = malloc((size_t)hn + n + 1);
    assert_non_null(req);
    memcpy(req, head, (size_t)hn);
    for (size_t i = 0; i < n; i++) req[hn + i] = (char)('a' + i % 26);
    req[hn + n] = '\0';
    *len = (size_t)hn + n;
    return req;
}

static void test_body_limit(void **state)
{
    fixture_t *f = *state;
    const size_t max = 64 * 1024;
    size_t len;
    char *req = body_request(max, &len);
    admin_reply_t r;
    request_n(&f->srv, req, len, &r);
    assert_int_equal(r.status, 200);
    const char *prefix = "POST|65536|nul=1|";
    assert_int_equal(r.body_len, strlen(prefix) + max);
    assert_memory_equal(r.body, prefix, strlen(prefix));
    assert_memory_equal(r.body + strlen(prefix), req + len - max, max);
    free(r.raw);
    free(req);

    /* One byte over: 413, even though the client sends it all. */
    req = body_request(max + 1, &len);
    request_n(&f->srv, req, len, &r);
    assert_int_equal(r.status, 413);
    check_length(&r);
    assert_string_equal(r.body, "413 Content Too Large\n");
    free(r.raw);
    free(req);

    /* Announced but never sent: answered at once. */
    expect_reply(f, "POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000000\r\n\r\n",
                 413, NULL, "413 Content Too Large\n");
}

static void test_body_framing(void **state)
{
    fixture_t *f = *state;
    expect_reply(f,
                 "POST /body HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n0\r\n\r\n",
                 411, NULL, "411 Length Required\n");
    expect_status(f, "POST /body HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                  501);
    expect_status(f,
                  "POST /body HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                  "Content-Length: 3\r\n\r\nabc",
                  400);
}

static void read_exact(int fd, char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, buf + got, n - got);
        assert_true(k > 0);
        got += (size_t)k;
    }
    buf[n] = '\0';
}

static void test_expect_continue(void **state)
{
    fixture_t *f = *state;
    int fd = admin_connect(&f->srv);
    const char *head = "POST /body HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                       "Content-Length: 4\r\n\r\n";
    send_all(fd, head, strlen(head));
    char interim[64];
    const char *want = "HTTP/1.1 100 Continue\r\n\r\n";
    read_exact(fd, interim, strlen(want));
    assert_string_equal(interim, want);
    send_all(fd, "data", 4);
    admin_reply_t r;
    read_reply(fd, &r);
    close(fd);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "POST|4|nul=1|data");
    free(r.raw);

    /* The body came with the head: no interim response. */
    expect_reply(f,
                 "POST /body HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                 "Content-Length: 2\r\n\r\nhi",
                 200, NULL, "POST|2|nul=1|hi");
}

static void test_body_client_gone(void **state)
{
    fixture_t *f = *state;
    const char *req = "POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly-some";
    send_and_leave(f, req, false, 20000);
    send_and_leave(f, req, true, 20000);
    expect_status(f, "GET /status HTTP/1.1\r\nHost: a\r\n\r\n", 200);
}

/* ---- prefixes and helpers ---- */

static void test_prefix(void **state)
{
    fixture_t *f = *state;
    static const struct {
        const char *target, *body;
    } cases[] = {
        {"/p/x", "short:/p/x"},
        {"/p/", "short:/p/"},
        {"/p/q", "short:/p/q"},
        {"/p/q/", "exact-slash:/p/q/"},
        {"/p/q/x/y", "long:/p/q/x/y"},
        {"/p/q/r/x", "longest:/p/q/r/x"},
        {"/p/q/r", "long:/p/q/r"},
        {"/p/exact", "exact:/p/exact"},
        {"/p/exact/more", "short:/p/exact/more"},
        {"/p/a%2Fb%20c?x=1", "short:/p/a%2Fb%20c"}, /* still encoded, no query */
    };
    for (size_t i = 0; i < pt_countof(cases); i++) {
        char req[256];
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", cases[i].target);
        expect_reply(f, req, 200, "Content-Type: text/plain; charset=utf-8", cases[i].body);
    }
}

static void test_json_error(void **state)
{
    fixture_t *f = *state;
    expect_reply(f, "GET /json-error HTTP/1.1\r\nHost: a\r\n\r\n", 400,
                 "Content-Type: application/json",
                 "{\"error\":\"bad \\\"weight\\\"\\n\\u0001\"}\n");

    /* Direct: the status is kept, an earlier body replaced (ASan: no leak). */
    pt_admin_response_t resp = {.status = 404};
    assert_int_equal(pt_admin_body(&resp, "first", 5, "text/x-a"), 0);
    assert_int_equal(resp.body_len, 5);
    assert_string_equal(resp.body, "first"); /* NUL-terminated copy */
    assert_string_equal(resp.content_type, "text/x-a");
    assert_int_equal(pt_admin_json_error(&resp, "no group \"g\\x\""), 0);
    assert_int_equal(resp.status, 404);
    assert_string_equal(resp.content_type, "application/json");
    assert_string_equal(resp.body, "{\"error\":\"no group \\\"g\\\\x\\\"\"}\n");
    assert_int_equal(resp.body_len, strlen(resp.body));
    free(resp.body);
    resp.body = NULL;

    assert_int_equal(pt_admin_body(&resp, NULL, 0, NULL), 0);
    assert_int_equal(resp.body_len, 0);
    assert_string_equal(resp.body, "");
    free(resp.body);
}

static void test_pct_decode(void **state)
{
    pt_unused(state);
    static const struct {
        const char *in, *out;
    } ok[] = {
        {"%5B%3A%3A1%5D%3A80", "[::1]:80"},
        {"%5b%3a%3a1%5d%3a80", "[::1]:80"},
        {"127.0.0.1:8080", "127.0.0.1:8080"},
        {"a%2Fb", "a/b"},
        {"+%20+", "+ +"},
        {"%25%32%35", "%25"}, /* decoded once only */
        {"%C3%A9", "\xc3\xa9"},
        {"", ""},
    };
    for (size_t i = 0; i < pt_countof(ok); i++) {
        char buf[64];
        snprintf(buf, sizeof(buf), "%s", ok[i].in);
        assert_int_equal(pt_admin_pct_decode(buf), 0);
        assert_string_equal(buf, ok[i].out);
    }
    static const char *const bad[] = {"%", "a%", "%4", "%4g", "%g4", "%zz", "%00", "ok%2Fthen%0",
                                      "%%41", "x%00y"};
    for (size_t i = 0; i < pt_countof(bad); i++) {
        char buf[64];
        snprintf(buf, sizeof(buf), "%s", bad[i]);
        assert_int_equal(pt_admin_pct_decode(buf), -EINVAL);
        assert_string_equal(buf, bad[i]); /* unchanged */
    }
}

/* ---- bearer token ---- */

static void test_token_required(void **state)
{
    fixture_t *f = *state;
    static const char *const reqs[] = {
        "GET /status HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /nope HTTP/1.1\r\nHost: a\r\n\r\n", /* 401 before 404: reveals nothing */
        "POST /status HTTP/1.1\r\nHost: a\r\n\r\n",
        "POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
        "GET /p/x HTTP/1.1\r\nHost: a\r\n\r\n",
    };
    for (size_t i = 0; i < pt_countof(reqs); i++) {
        admin_reply_t r;
        request(&f->srv, reqs[i], &r);
        assert_int_equal(r.status, 401);
        assert_true(has_header(&r, "WWW-Authenticate: Bearer realm=\"portico\""));
        assert_true(has_header(&r, "Content-Type: application/json"));
        check_length(&r);
        assert_non_null(strstr(r.body, "{\"error\":\"unauthorized"));
        assert_string_equal(r.body + r.body_len - 2, "}\n");
        free(r.raw);
    }
}

static void test_token_accepted(void **state)
{
    fixture_t *f = *state;
    static const char *const creds[] = {
        "Bearer " TEST_TOKEN,
        "bearer " TEST_TOKEN,
        "BEARER   " TEST_TOKEN,
        "bEaReR \t " TEST_TOKEN " ",
    };
    for (size_t i = 0; i < pt_countof(creds); i++) {
        char req[256];
        snprintf(req, sizeof(req), "GET /status HTTP/1.1\r\nHost: a\r\nAuthorization: %s\r\n\r\n",
                 creds[i]);
        expect_status(f, req, 200);
    }
#define AUTH "Authorization: Bearer " TEST_TOKEN "\r\n"
    /* The header name is case-insensitive too. */
    expect_status(f, "GET /metrics HTTP/1.1\r\nHost: a\r\nauthorization: Bearer " TEST_TOKEN
                     "\r\n\r\n",
                  200);
    expect_status(f, "GET /nope HTTP/1.1\r\nHost: a\r\n" AUTH "\r\n", 404);
    expect_status(f, "POST /status HTTP/1.1\r\nHost: a\r\n" AUTH "\r\n", 405);
    expect_reply(f,
                 "POST /body HTTP/1.1\r\nHost: a\r\n" AUTH
                 "Content-Length: 5\r\n\r\nhello",
                 200, NULL, "POST|5|nul=1|hello");
#undef AUTH
}

static void test_token_rejected(void **state)
{
    fixture_t *f = *state;
    static const char *const auth[] = {
        "Authorization: Bearer s3cret-token_42",   /* the token is case-sensitive */
        "Authorization: Bearer s3cret-Token_4",    /* a prefix */
        "Authorization: Bearer s3cret-Token_42x",  /* longer */
        "Authorization: Bearer xs3cret-Token_42",
        "Authorization: Bearer xxxxxxxxxxxxxxx",   /* what we scribbled on our copy */
        "Authorization: Bearer",
        "Authorization: Bearer ",
        "Authorization: Bearers3cret-Token_42",
        "Authorization: Basic czNjcmV0LVRva2VuXzQyOg==",
        "Authorization: Token s3cret-Token_42",
        "Authorization: s3cret-Token_42",
        "Authorization:",
        "X-Authorization: Bearer s3cret-Token_42",
        /* Two credentials, even if one is right, are refused. */
        "Authorization: Bearer s3cret-Token_42\r\nAuthorization: Bearer s3cret-Token_42",
        "Authorization: Bearer wrong\r\nAuthorization: Bearer s3cret-Token_42",
    };
    for (size_t i = 0; i < pt_countof(auth); i++) {
        char req[256];
        snprintf(req, sizeof(req), "GET /status HTTP/1.1\r\nHost: a\r\n%s\r\n\r\n", auth[i]);
        expect_status(f, req, 401);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FIXTURE_TEST(test_status),
        FIXTURE_TEST(test_metrics),
        FIXTURE_TEST(test_not_found),
        FIXTURE_TEST(test_method_not_allowed),
        FIXTURE_TEST(test_registered),
        FIXTURE_TEST(test_bad_requests),
        FIXTURE_TEST(test_head_too_large),
        FIXTURE_TEST(test_split_request),
        FIXTURE_TEST(test_big_body_partial_writes),
        FIXTURE_TEST(test_client_gone),
        FIXTURE_TEST(test_body),
        FIXTURE_TEST(test_body_split),
        FIXTURE_TEST(test_body_limit),
        FIXTURE_TEST(test_body_framing),
        FIXTURE_TEST(test_expect_continue),
        FIXTURE_TEST(test_body_client_gone),
        FIXTURE_TEST(test_prefix),
        FIXTURE_TEST(test_json_error),
        cmocka_unit_test(test_pct_decode),
        cmocka_unit_test_setup_teardown(test_token_required, setup_token, teardown),
        cmocka_unit_test_setup_teardown(test_token_accepted, setup_token, teardown),
        cmocka_unit_test_setup_teardown(test_token_rejected, setup_token, teardown),
        FIXTURE_TEST(test_start_errors),
        FIXTURE_TEST(test_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
