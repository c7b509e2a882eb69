/*
 * Shared harness for unit tests that talk to a real admin listener
 * (src/admin/admin.c) over loopback sockets: the server runs its loop on
 * a thread of its own, the test is the client, one request per
 * connection (the admin server closes after each answer).
 *
 * Include after cmocka.h.
 */
#ifndef PT_TEST_ADMIN_FIXTURE_H
#define PT_TEST_ADMIN_FIXTURE_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "admin/admin.h"

/* An admin server on its own loop thread. */
typedef struct admin_server {
    pt_loop_t *loop;
    pt_admin_t *admin;
    pthread_t thread;
    uint16_t port;
} admin_server_t;

/* A port that was free a moment ago: bind to 0, read it, close. */
static inline uint16_t free_port(void)
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

static inline void *admin_run_loop(void *arg)
{
    pt_loop_run(arg);
    return NULL;
}

static inline void admin_stop_task(void *arg)
{
    pt_loop_stop(arg);
}

/* Makes s->loop; create s->admin with it in hand, then admin_server_start. */
static inline void admin_server_init(admin_server_t *s)
{
    s->loop = pt_loop_create();
    assert_non_null(s->loop);
}

/* Starts s->admin on 127.0.0.1 (a free port, in s->port) and the loop thread. */
static inline void admin_server_start(admin_server_t *s)
{
    char addr[32];
    s->port = free_port();
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", s->port);
    assert_int_equal(pt_admin_start(s->admin, s->loop, addr), 0);
    assert_int_equal(pthread_create(&s->thread, NULL, admin_run_loop, s->loop), 0);
}

/* Stops the loop thread, then frees the admin server and the loop. */
static inline void admin_server_stop(admin_server_t *s)
{
    assert_int_equal(pt_loop_post(s->loop, admin_stop_task, s->loop), 0);
    assert_int_equal(pthread_join(s->thread, NULL), 0);
    pt_admin_destroy(s->admin);
    pt_loop_destroy(s->loop);
}

/* ---- client ---- */

/* A connected socket with a 5 s receive time-out. */
static inline int admin_connect(const admin_server_t *s)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons(s->port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    return fd;
}

static inline void send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

typedef struct admin_reply {
    char *raw; /* malloc'd, NUL-terminated */
    size_t len;
    int status;
    const char *body;
    size_t body_len;
} admin_reply_t;

/* Reads until EOF (the server must close after one response), then
 * splits off the status and the body. */
static inline void read_reply(int fd, admin_reply_t *r)
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

/* Sends req[0..len) on a new connection and reads the answer. */
static inline void request_n(const admin_server_t *s, const char *req, size_t len,
                             admin_reply_t *r)
{
    int fd = admin_connect(s);
    send_all(fd, req, len);
    read_reply(fd, r);
    close(fd);
}

static inline void request(const admin_server_t *s, const char *req, admin_reply_t *r)
{
    request_n(s, req, strlen(req), r);
}

#endif
