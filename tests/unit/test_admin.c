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

static int setup_with_token(void **state, const char *token)
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
    f->admin = pt_admin_create(&st);
    assert_non_null(f->admin);
    memset(token_copy, 'x', sizeof(token_copy) - 1);
    assert_int_equal(pt_admin_register(f->admin, "/echo", echo_handler, NULL), 0);
    assert_int_equal(pt_admin_register(f->admin, "/fail", fail_handler, NULL), 0);
    assert_int_equal(pt_admin_register(f->admin, "/big", big_handler, NULL), 0);
    assert_int_equal(pt_admin_register(f->admin, "/body", body_handler, NULL), 0);
    assert_int_equal(pt_admin_register(f->admin, "/json-error", json_error_handler, NULL), 0);
    assert_int_equal(pt_admin_register(f->admin, "/status", echo_handler, NULL), -EEXIST);
    assert_int_equal(pt_admin_register(f->admin, "/echo", echo_handler, NULL), -EEXIST);

    /* Prefixes: the longest wins, exact paths win over any prefix. */
    assert_int_equal(pt_admin_register_prefix(f->admin, "/p/q/", tag_handler, "long"), 0);
    assert_int_equal(pt_admin_register_prefix(f->admin, "/p/", tag_handler, "short"), 0);
    assert_int_equal(pt_admin_register_prefix(f->admin, "/p/q/r/", tag_handler, "longest"), 0);
    assert_int_equal(pt_admin_register(f->admin, "/p/exact", tag_handler, "exact"), 0);
    assert_int_equal(pt_admin_register(f->admin, "/p/q/", tag_handler, "exact-slash"), 0);
    assert_int_equal(pt_admin_register_prefix(f->admin, "/p/", tag_handler, "again"), -EEXIST);
    assert_int_equal(pt_admin_register_prefix(f->admin, "/p", tag_handler, "no-slash"), -EINVAL);
    assert_int_equal(pt_admin_register_prefix(f->admin, "p/", tag_handler, "relative"), -EINVAL);

    char addr[32];
    f->port = free_port();
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", f->port);
    assert_int_equal(pt_admin_start(f->admin, f->loop, addr), 0);
    assert_int_equal(pthread_create(&f->thread, NULL, run_loop, f->loop), 0);
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
        "GET /statu HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /p HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /P/x HTTP/1.1\r\nHost: a\r\n\r\n",
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

/* ---- request bodies ---- */

static void expect_body_reply(const fixture_t *f, const char *req, int status, const char *body)
{
    reply_t r;
    request(f, req, &r);
    assert_int_equal(r.status, status);
    check_length(&r);
    assert_string_equal(r.body, body);
    free(r.raw);
}

static void test_body(void **state)
{
    fixture_t *f = *state;
    expect_body_reply(f, "POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", 200,
                      "POST|5|nul=1|hello");
    /* No body: "" and 0, still NUL-terminated. */
    expect_body_reply(f, "GET /body HTTP/1.1\r\nHost: a\r\n\r\n", 200, "GET|0|nul=1|");
    expect_body_reply(f, "PUT /body HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 200,
                      "PUT|0|nul=1|");
    /* Bytes after the body are not part of it (one request per connection). */
    expect_body_reply(f, "POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcdef", 200,
                      "POST|3|nul=1|abc");
    expect_body_reply(f, "POST /body HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}", 200,
                      "POST|2|nul=1|{}");

    reply_t r;
    request(f, "POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok", &r);
    assert_true(has_header(&r, "Content-Type: text/x-body"));
    free(r.raw);
}

static void test_body_split(void **state)
{
    fixture_t *f = *state;
    int fd = connect_admin(f);
    const char *parts[] = {"POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhel", "lo ",
                           "wor", "ld"};
    for (size_t i = 0; i < pt_countof(parts); i++) {
        send_all(fd, parts[i], strlen(parts[i]));
        usleep(20000);
    }
    reply_t r;
    read_reply(fd, &r);
    close(fd);
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
    int fd = connect_admin(f);
    send_all(fd, req, len);
    reply_t r;
    read_reply(fd, &r);
    close(fd);
    assert_int_equal(r.status, 200);
    const char *prefix = "POST|65536|nul=1|";
    assert_int_equal(r.body_len, strlen(prefix) + max);
    assert_memory_equal(r.body, prefix, strlen(prefix));
    assert_memory_equal(r.body + strlen(prefix), req + len - max, max);
    free(r.raw);
    free(req);

    /* One byte over: 413, even though the client sends it all. */
    req = body_request(max + 1, &len);
    fd = connect_admin(f);
    send_all(fd, req, len);
    read_reply(fd, &r);
    close(fd);
    assert_int_equal(r.status, 413);
    check_length(&r);
    assert_string_equal(r.body, "413 Content Too Large\n");
    free(r.raw);
    free(req);

    /* Announced but never sent: answered at once. */
    expect_body_reply(f, "POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000000\r\n\r\n",
                      413, "413 Content Too Large\n");
}

static void test_body_framing(void **state)
{
    fixture_t *f = *state;
    expect_body_reply(f,
                      "POST /body HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5\r\nhello\r\n0\r\n\r\n",
                      411, "411 Length Required\n");
    reply_t r;
    request(f, "POST /body HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", &r);
    assert_int_equal(r.status, 501);
    free(r.raw);
    request(f,
            "POST /body HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
            "Content-Length: 3\r\n\r\nabc",
            &r);
    assert_int_equal(r.status, 400);
    free(r.raw);
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
    int fd = connect_admin(f);
    const char *head = "POST /body HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                       "Content-Length: 4\r\n\r\n";
    send_all(fd, head, strlen(head));
    char interim[64];
    const char *want = "HTTP/1.1 100 Continue\r\n\r\n";
    read_exact(fd, interim, strlen(want));
    assert_string_equal(interim, want);
    send_all(fd, "data", 4);
    reply_t r;
    read_reply(fd, &r);
    close(fd);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "POST|4|nul=1|data");
    free(r.raw);

    /* The body came with the head: no interim response. */
    expect_body_reply(f,
                      "POST /body HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                      "Content-Length: 2\r\n\r\nhi",
                      200, "POST|2|nul=1|hi");
}

static void test_body_client_gone(void **state)
{
    fixture_t *f = *state;
    int fd = connect_admin(f);
    const char *req = "POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly-some";
    send_all(fd, req, strlen(req));
    usleep(20000);
    close(fd);
    fd = connect_admin(f);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    send_all(fd, req, strlen(req));
    usleep(20000);
    close(fd);
    reply_t r;
    request(f, "GET /status HTTP/1.1\r\nHost: a\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    free(r.raw);
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
        reply_t r;
        request(f, req, &r);
        assert_int_equal(r.status, 200);
        assert_true(has_header(&r, "Content-Type: text/plain; charset=utf-8"));
        check_length(&r);
        assert_string_equal(r.body, cases[i].body);
        free(r.raw);
    }
}

static void test_json_error(void **state)
{
    fixture_t *f = *state;
    reply_t r;
    request(f, "GET /json-error HTTP/1.1\r\nHost: a\r\n\r\n", &r);
    assert_int_equal(r.status, 400);
    assert_true(has_header(&r, "Content-Type: application/json"));
    check_length(&r);
    assert_string_equal(r.body, "{\"error\":\"bad \\\"weight\\\"\\n\\u0001\"}\n");
    free(r.raw);

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

static void expect_status(const fixture_t *f, const char *req, int status)
{
    reply_t r;
    request(f, req, &r);
    if (r.status != status) fprintf(stderr, "request:\n%s\nreply:\n%s\n", req, r.raw);
    assert_int_equal(r.status, status);
    free(r.raw);
}

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
        reply_t r;
        request(f, reqs[i], &r);
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
    expect_body_reply(f,
                      "POST /body HTTP/1.1\r\nHost: a\r\n" AUTH
                      "Content-Length: 5\r\n\r\nhello",
                      200, "POST|5|nul=1|hello");
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
        cmocka_unit_test_setup_teardown(test_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_framing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expect_continue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_client_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_error, setup, teardown),
        cmocka_unit_test(test_pct_decode),
        cmocka_unit_test_setup_teardown(test_token_required, setup_token, teardown),
        cmocka_unit_test_setup_teardown(test_token_accepted, setup_token, teardown),
        cmocka_unit_test_setup_teardown(test_token_rejected, setup_token, teardown),
        cmocka_unit_test_setup_teardown(test_start_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
