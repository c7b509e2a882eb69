/*
 * Unit tests: active health checks (src/upstream/health.c).
 *
 * Each test runs a real loop with a tiny responder on the same loop: a
 * loopback listener that answers each connection with the next entry of a
 * script (or holds it, never answering). The runtime structures (ups_rt_t,
 * ups_gstate_t, ups_set_t, ups_peer_t) are built by hand.
 *
 * Timing-proof assertions: a prober runs one probe at a time, so when the
 * responder accepts connection k of a watched peer, exactly the probes
 * before it are over. The responder takes a snapshot of the peer's health
 * state at each accept, and tests assert on those snapshots, never on how
 * many probes happened to run before the loop was stopped (on a loaded
 * machine a stalled loop can run two probes in one go). A held connection
 * freezes the prober at a known point, e.g. before a settings change.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_util.h"
#include "upstream/upstream_int.h"

#define INTERVAL_MS 40
#define WAIT_MS 5000
#define MAX_PEERS 4
#define MAX_SNAPS 32
#define HOLD NULL /* script entry: accept, read, never answer */

#define OK_200 "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

/* ------------------------------------------------------------------ */
/* The responder: a loopback server on the test loop                   */
/* ------------------------------------------------------------------ */

/* A watched peer's state when connection k was accepted = after the
 * probes before it. */
typedef struct snap {
    uint64_t checks, failures;
    bool down;
    int status;
    int64_t up_since;
} snap_t;

typedef struct rconn rconn_t;
typedef struct responder {
    pt_loop_t *loop;
    pt_io_t lio;
    pt_addr_t addr;
    const char *const *script; /* response of connection k (last one repeats) */
    size_t nscript;
    const char *resp;          /* without a script: every connection */
    int accepted, closed;
    char last_req[1024];       /* the last request head received */
    const ups_peer_t *watch;
    snap_t snaps[MAX_SNAPS];
    rconn_t *conns;
} responder_t;

struct rconn {
    pt_io_t io;
    responder_t *r;
    const char *resp; /* NULL = hold */
    size_t resp_len, sent;
    char req[2048];
    size_t len;
    bool answering;
    rconn_t *next;
};

static void rconn_close(rconn_t *c)
{
    if (c->io.fd < 0) return;
    pt_io_stop(c->r->loop, &c->io);
    close(c->io.fd);
    c->io.fd = -1;
    c->r->closed++;
}

/* Sends the response, then closes (the prober may close first: fine). */
static void rconn_write(rconn_t *c)
{
    while (c->sent < c->resp_len) {
        if (!c->io.writable) return;
        ssize_t n = send(c->io.fd, c->resp + c->sent, c->resp_len - c->sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN) {
            c->io.writable = false;
            return;
        }
        if (n <= 0) break;
        c->sent += (size_t)n;
    }
    rconn_close(c);
}

static void rconn_read(rconn_t *c)
{
    while (c->io.readable) {
        size_t room = sizeof(c->req) - 1 - c->len;
        ssize_t n = room ? recv(c->io.fd, c->req + c->len, room, 0) : 0;
        if (n < 0 && errno == EAGAIN) {
            c->io.readable = false;
            return;
        }
        if (n <= 0) {
            rconn_close(c); /* the prober closed (TCP check, time-out, abort) */
            return;
        }
        c->len += (size_t)n;
        c->req[c->len] = '\0';
        if (!c->answering && strstr(c->req, "\r\n\r\n")) {
            /* Keep the head, cut to fit (probe heads are far shorter). */
            size_t keep = pt_min(c->len, sizeof(c->r->last_req) - 1);
            memcpy(c->r->last_req, c->req, keep);
            c->r->last_req[keep] = '\0';
            if (c->resp) {
                c->answering = true;
                rconn_write(c);
                return;
            }
        }
    }
}

static void on_rconn(pt_io_t *io, unsigned events)
{
    rconn_t *c = io->data;
    if (c->answering)
        rconn_write(c);
    else
        rconn_read(c);
}

static void take_snapshot(responder_t *r, int k)
{
    if (!r->watch || k >= MAX_SNAPS) return;
    const ups_peer_t *p = r->watch;
    r->snaps[k] = (snap_t){
        .checks = atomic_load(&p->hc_checks),
        .failures = atomic_load(&p->hc_failures),
        .down = atomic_load(&p->hc_down),
        .status = atomic_load(&p->hc_status),
        .up_since = atomic_load(&p->up_since),
    };
}

static void on_accept(pt_io_t *io, unsigned events)
{
    responder_t *r = io->data;
    for (;;) {
        int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        rconn_t *c = calloc(1, sizeof(*c));
        assert_non_null(c);
        int k = r->accepted++;
        take_snapshot(r, k);
        c->r = r;
        c->resp = r->script ? r->script[(size_t)k < r->nscript ? (size_t)k : r->nscript - 1]
                            : r->resp;
        c->resp_len = c->resp ? strlen(c->resp) : 0;
        c->io = (pt_io_t){.fd = fd, .cb = on_rconn, .data = c};
        c->next = r->conns;
        r->conns = c;
        assert_int_equal(pt_io_start(r->loop, &c->io), 0);
    }
    io->readable = false;
}

static void responder_listen(responder_t *r)
{
    int fd = pt_socket_listen(&r->addr, 256, false);
    assert_true(fd >= 0);
    if (pt_addr_port(&r->addr) == 0) {
        r->addr.len = sizeof(r->addr.ss);
        assert_int_equal(getsockname(fd, &r->addr.ss.sa, &r->addr.len), 0);
    }
    r->lio = (pt_io_t){.fd = fd, .cb = on_accept, .data = r};
    assert_int_equal(pt_io_start_read(r->loop, &r->lio), 0);
}

static void responder_stop(responder_t *r)
{
    if (r->lio.fd < 0) return;
    pt_io_stop(r->loop, &r->lio);
    close(r->lio.fd);
    r->lio.fd = -1;
}

static void responder_free(responder_t *r)
{
    responder_stop(r);
    while (r->conns) {
        rconn_t *c = r->conns;
        r->conns = c->next;
        rconn_close(c);
        free(c);
    }
}

#define SCRIPT(r, ...)                                                        \
    do {                                                                      \
        static const char *const script_[] = {__VA_ARGS__};                   \
        (r)->script = script_;                                                \
        (r)->nscript = pt_countof(script_);                                   \
    } while (0)

/* ------------------------------------------------------------------ */
/* Fixture: one group "app", hand-built runtime state                  */
/* ------------------------------------------------------------------ */

typedef struct fx {
    int fds_before;
    pt_loop_t *loop;
    pt_control_t ctl;
    ups_rt_t rt;
    ups_gstate_t gs;
    ups_gstate_t *groups[1];
    ups_group_t conf;
    ups_peer_t *peers[MAX_PEERS];
    size_t npeers;
    ups_health_t *h;
    responder_t srv;
    char log_path[64];
} fx_t;

static ups_peer_t *peer_new(const pt_addr_t *a)
{
    ups_peer_t *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    atomic_init(&p->refs, 1); /* the test's own reference */
    p->addr = *a;
    assert_true(pt_addr_format(a, p->name, sizeof(p->name)) > 0);
    atomic_init(&p->hc_status, -1);
    return p;
}

static void set_free(ups_set_t *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) ups_peer_unref(s->m[i].peer);
    free(s->m);
    free(s);
}

static ups_set_t *set_new(ups_peer_t *const *peers, size_t n, unsigned mask)
{
    ups_set_t *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->m = calloc(n ? n : 1, sizeof(*s->m));
    assert_non_null(s->m);
    for (size_t i = 0; i < n; i++) {
        if (!(mask & (1u << i))) continue;
        ups_peer_ref(peers[i]); /* the set's reference */
        s->m[s->n++] = (ups_member_t){.peer = peers[i], .weight = 1};
    }
    s->nprimary = s->n;
    return s;
}

/* Publishes a set of the fixture's peers (bit i = peers[i]). */
static void publish(fx_t *fx, unsigned mask)
{
    ups_set_t *s = set_new(fx->peers, fx->npeers, mask);
    s->version = ++fx->rt.next_version;
    set_free(atomic_exchange(&fx->gs.set, s));
}

static void hc_defaults(ups_hc_conf_t *hc, ups_hc_type_t type)
{
    *hc = (ups_hc_conf_t){
        .type = type,
        .interval_ms = INTERVAL_MS,
        .timeout_ms = 2000,
        .rise = 1,
        .fall = 1,
        .method = "GET",
        .uri = "/health",
        .status_lo = 200,
        .status_hi = 399,
    };
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    fx->fds_before = count_fds();
    fx->loop = pt_loop_create();
    assert_non_null(fx->loop);
    fx->ctl.loop = fx->loop;
    fx->srv.loop = fx->loop;
    assert_int_equal(pt_addr_parse("127.0.0.1", 9, 1, &fx->srv.addr), 0);
    fx->srv.addr.ss.in4.sin_port = 0; /* any free port */
    responder_listen(&fx->srv);
    fx->srv.resp = OK_200;

    fx->gs.name = "app";
    fx->gs.conf = &fx->conf;
    fx->conf.name = "app";
    hc_defaults(&fx->conf.hc, UPS_HC_HTTP);
    fx->groups[0] = &fx->gs;
    fx->rt = (ups_rt_t){.ctl = &fx->ctl, .groups = fx->groups, .ngroups = 1, .cap = 1};
    fx->peers[fx->npeers++] = peer_new(&fx->srv.addr);
    fx->srv.watch = fx->peers[0];
    publish(fx, 1);
    fx->h = ups_health_create(&fx->rt);
    assert_non_null(fx->h);
    fx->rt.health = fx->h;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    ups_health_destroy(fx->h);
    set_free(atomic_exchange(&fx->gs.set, NULL));
    responder_free(&fx->srv);
    pt_loop_destroy(fx->loop); /* runs the deferred frees */
    for (size_t i = 0; i < fx->npeers; i++) {
        /* Every prober dropped its reference: only the test's is left. */
        assert_int_equal(atomic_load(&fx->peers[i]->refs), 1);
        ups_peer_unref(fx->peers[i]);
    }
    if (fx->log_path[0]) unlink(fx->log_path);
    assert_int_equal(count_fds(), fx->fds_before); /* no socket left open */
    free(fx);
    return 0;
}

/* ---- error log capture ---- */

static void log_capture(fx_t *fx)
{
    snprintf(fx->log_path, sizeof(fx->log_path), "/tmp/pt_hc_logXXXXXX");
    int fd = mkstemp(fx->log_path);
    assert_true(fd >= 0);
    close(fd);
    /* The error log keeps a descriptor of its own once it opened a file. */
    int fds = count_fds();
    assert_int_equal(pt_log_open(fx->log_path, PT_LOG_NOTICE), 0);
    fx->fds_before += count_fds() - fds;
}

/* Asserts the captured log has a line ending in "] " + text. */
static void assert_logged(fx_t *fx, const char *text)
{
    FILE *f = fopen(fx->log_path, "r");
    assert_non_null(f);
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        char *msg = strstr(line, "] ");
        found = msg && strcmp(msg + 2, text) == 0;
    }
    fclose(f);
    if (!found) fail_msg("not in the log: %s", text);
}

/* ---- running the loop until something happened ---- */

typedef struct waiter waiter_t;
struct waiter {
    pt_timer_t t;
    pt_loop_t *loop;
    bool (*done)(const waiter_t *w);
    const ups_peer_t *peer;
    uint64_t n;
    const responder_t *srv;
    int accepted, closed;
    uint64_t deadline;
};

static void on_poll(pt_timer_t *t)
{
    waiter_t *w = t->data;
    if (w->done(w) || pt_loop_now(w->loop) >= w->deadline)
        pt_loop_stop(w->loop);
    else
        pt_timer_start(w->loop, t, 1);
}

/* Runs the loop until w->done(w) or max_ms; returns w->done(w). */
static bool run_until(pt_loop_t *loop, waiter_t *w, uint64_t max_ms)
{
    w->loop = loop;
    w->deadline = pt_loop_update_time(loop) + max_ms;
    pt_timer_init(&w->t, on_poll, w);
    pt_timer_start(loop, &w->t, 0);
    assert_int_equal(pt_loop_run(loop), 0);
    pt_timer_stop(loop, &w->t);
    return w->done(w);
}

static bool checks_reached(const waiter_t *w) { return atomic_load(&w->peer->hc_checks) >= w->n; }
static bool is_down(const waiter_t *w) { return atomic_load(&w->peer->hc_down); }
static bool is_up(const waiter_t *w) { return !atomic_load(&w->peer->hc_down); }
static bool conns_reached(const waiter_t *w)
{
    return w->srv->accepted >= w->accepted && w->srv->closed >= w->closed;
}
static bool never(const waiter_t *w) { return false; }

/* Runs until peer has done at least n checks. */
static void wait_checks(fx_t *fx, const ups_peer_t *peer, uint64_t n)
{
    waiter_t w = {.done = checks_reached, .peer = peer, .n = n};
    assert_true(run_until(fx->loop, &w, WAIT_MS));
}

static void wait_state(fx_t *fx, const ups_peer_t *peer, bool down)
{
    waiter_t w = {.done = down ? is_down : is_up, .peer = peer};
    assert_true(run_until(fx->loop, &w, WAIT_MS));
}

/* Runs until the responder accepted and closed at least so many. */
static void wait_conns(fx_t *fx, int accepted, int closed)
{
    waiter_t w = {.done = conns_reached, .srv = &fx->srv, .accepted = accepted, .closed = closed};
    assert_true(run_until(fx->loop, &w, WAIT_MS));
}

static void run_for(fx_t *fx, uint64_t ms)
{
    waiter_t w = {.done = never};
    run_until(fx->loop, &w, ms);
}

/* A loopback address nothing listens on (bound, not listening: refused). */
static int refused_addr(pt_addr_t *a)
{
    assert_int_equal(pt_addr_parse("127.0.0.1", 9, 1, a), 0);
    a->ss.in4.sin_port = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, &a->ss.sa, a->len), 0);
    assert_int_equal(getsockname(fd, &a->ss.sa, &a->len), 0);
    return fd;
}

/* Checks the snapshots of connections 0..n-1: probes done, failures so
 * far, down or not, last status. */
static void assert_snaps(const responder_t *r, size_t n, const uint64_t *failures,
                         const char *down, const int *status)
{
    for (size_t k = 0; k < n; k++) {
        const snap_t *s = &r->snaps[k];
        if (s->checks != k || s->failures != failures[k] || s->down != (down[k] == 'D') ||
            s->status != status[k])
            fail_msg("connection %zu: checks %llu failures %llu (want %llu) %s (want %c) "
                     "status %d (want %d)",
                     k, (unsigned long long)s->checks, (unsigned long long)s->failures,
                     (unsigned long long)failures[k], s->down ? "down" : "up", down[k], s->status,
                     status[k]);
    }
}

/* Starts the probers, waits for the n = strlen(down) connections of the
 * script and checks their snapshots (see assert_snaps). */
static void probe_and_check(fx_t *fx, const uint64_t *failures, const char *down,
                            const int *status)
{
    size_t n = strlen(down);
    ups_health_sync(fx->h);
    wait_conns(fx, (int)n, 0);
    assert_snaps(&fx->srv, n, failures, down, status);
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static void test_first_probe_runs_at_once(void **state)
{
    fx_t *fx = *state;
    fx->conf.hc.interval_ms = 60000;
    ups_health_sync(fx->h);
    uint64_t t0 = pt_time_mono_ms();
    wait_checks(fx, fx->peers[0], 1);
    assert_true(pt_time_mono_ms() - t0 < 2000);
    run_for(fx, 20);
    assert_int_equal(atomic_load(&fx->peers[0]->hc_checks), 1); /* next one in a minute */
    assert_false(atomic_load(&fx->peers[0]->hc_down));
    assert_int_equal(atomic_load(&fx->peers[0]->hc_status), 200);
    assert_int_equal(atomic_load(&fx->peers[0]->hc_failures), 0);
    /* The prober holds a reference while it runs (+ the test's + the set's). */
    assert_int_equal(atomic_load(&fx->peers[0]->refs), 3);
    /* The exact request; Host = the peer's address. */
    char want[256];
    snprintf(want, sizeof(want),
             "GET /health HTTP/1.1\r\nHost: %s\r\nUser-Agent: portico-health\r\n"
             "Connection: close\r\n\r\n",
             fx->peers[0]->name);
    assert_string_equal(fx->srv.last_req, want);
}

static void test_fall_then_rise(void **state)
{
    fx_t *fx = *state;
    ups_peer_t *p = fx->peers[0];
    log_capture(fx);
    fx->conf.hc.rise = 2;
    fx->conf.hc.fall = 3;
#define E503 "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
    SCRIPT(&fx->srv, OK_200, OK_200, E503, E503, E503, E503, OK_200, OK_200, OK_200, HOLD);
#undef E503
    /* After k probes:                     0  1  2  3  4  5  6  7  8  9 */
    probe_and_check(fx, (const uint64_t[]){0, 0, 0, 1, 2, 3, 4, 4, 4, 4}, "uuuuuDDDuu",
                    (const int[]){-1, 200, 200, 503, 503, 503, 503, 200, 200, 200});
    /* Slow start begins when it comes back up (probe 8), not before. */
    assert_int_equal(fx->srv.snaps[7].up_since, 0);
    assert_true(fx->srv.snaps[8].up_since > 0);
    char want[256];
    snprintf(want, sizeof(want),
             "upstream app server %s is down: status 503 (3 consecutive failures)\n", p->name);
    assert_logged(fx, want);
    snprintf(want, sizeof(want), "upstream app server %s is up (2 consecutive passes)\n", p->name);
    assert_logged(fx, want);
    assert_int_equal(pt_log_open("stderr", PT_LOG_ERROR), 0);
}

static void test_tcp_connect_and_refused(void **state)
{
    fx_t *fx = *state;
    ups_peer_t *p = fx->peers[0];
    log_capture(fx);
    hc_defaults(&fx->conf.hc, UPS_HC_TCP);
    fx->conf.hc.rise = 2;
    fx->conf.hc.fall = 3;
    ups_health_sync(fx->h);
    wait_checks(fx, p, 2);
    assert_false(atomic_load(&p->hc_down));
    assert_int_equal(atomic_load(&p->hc_failures), 0);
    assert_int_equal(atomic_load(&p->hc_status), -1); /* TCP: no status */
    assert_int_equal(fx->srv.last_req[0], '\0');      /* nothing was sent */

    responder_stop(&fx->srv); /* connections refused from now on */
    wait_state(fx, p, true);
    assert_true(atomic_load(&p->hc_failures) >= 3);
    char want[256];
    snprintf(want, sizeof(want),
             "upstream app server %s is down: connect: Connection refused "
             "(3 consecutive failures)\n",
             p->name);
    assert_logged(fx, want);

    atomic_store(&p->up_since, 0);
    responder_listen(&fx->srv);
    wait_state(fx, p, false);
    assert_true(atomic_load(&p->up_since) > 0);
    snprintf(want, sizeof(want), "upstream app server %s is up (2 consecutive passes)\n", p->name);
    assert_logged(fx, want);
    assert_int_equal(pt_log_open("stderr", PT_LOG_ERROR), 0);
}

static void test_http_status_range(void **state)
{
    fx_t *fx = *state;
    SCRIPT(&fx->srv, OK_200,                                                /* 0 pass */
           "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", /* 1 fail */
           "HTTP/1.1 399 Odd\r\nContent-Length: 0\r\n\r\n",                 /* 2 pass: bound */
           "HTTP/1.0 404 Not Found\r\n\r\n",                                /* 3 fail */
           "HTTP/1.1 199 Odd\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", /* 4 pass */
           "SSH-2.0-OpenSSH_9.2\r\n\r\n",                                   /* 5 fail, no status */
           "HTTP/1.1 200 O",                                                /* 6 fail: cut */
           "HTTP/1.1 200 OK\r\nX: \x01\r\n\r\n",                            /* 7 fail: bad head */
           OK_200,                                                          /* 8 pass */
           HOLD);
    /* After k probes:                     0  1  2  3  4  5  6  7  8  9 */
    probe_and_check(fx, (const uint64_t[]){0, 0, 1, 1, 2, 2, 3, 4, 5, 5}, "uuDuDuDDDu",
                    (const int[]){-1, 200, 503, 399, 404, 200, -1, -1, -1, 200});
}

static void test_status_range_update(void **state)
{
    fx_t *fx = *state;
    ups_peer_t *p = fx->peers[0];
#define E404 "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    SCRIPT(&fx->srv, E404, HOLD, E404, OK_200,
           "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" E404, HOLD);
#undef E404
    ups_health_sync(fx->h);
    wait_conns(fx, 2, 0); /* probe 1 held */
    assert_true(atomic_load(&p->hc_down));
    /* A new range applies at the next sync; the held probe is dropped. */
    fx->conf.hc.status_lo = 404;
    fx->conf.hc.status_hi = 404;
    ups_health_sync(fx->h);
    wait_conns(fx, 6, 2);
    /* Connection:                 0  1  2  3  4  5 */
    const uint64_t failures[] = {0, 1, 1, 1, 2};
    const char *down = "uDDuD";
    const int status[] = {-1, 404, 404, 404, 200};
    for (size_t k = 0; k < 5; k++) {
        const snap_t *s = &fx->srv.snaps[k];
        /* The dropped probe was not counted: connection k>=2 follows k-1 probes. */
        assert_int_equal(s->checks, k < 2 ? k : k - 1);
        assert_int_equal(s->failures, failures[k]);
        assert_int_equal(s->down, down[k] == 'D');
        assert_int_equal(s->status, status[k]);
    }
    /* Interim 1xx skipped: 404 passes. */
    assert_int_equal(fx->srv.snaps[5].checks, 4);
    assert_int_equal(fx->srv.snaps[5].failures, 2);
    assert_false(fx->srv.snaps[5].down);
    assert_int_equal(fx->srv.snaps[5].status, 404);
}

static void test_http_method_uri_host(void **state)
{
    fx_t *fx = *state;
    fx->conf.hc.method = "HEAD";
    fx->conf.hc.uri = "/ready?full=1";
    fx->conf.hc.host = "app.example";
    SCRIPT(&fx->srv, "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", HOLD);
    ups_health_sync(fx->h);
    wait_conns(fx, 2, 1);
    assert_string_equal(fx->srv.last_req,
                        "HEAD /ready?full=1 HTTP/1.1\r\nHost: app.example\r\n"
                        "User-Agent: portico-health\r\nConnection: close\r\n\r\n");
    assert_int_equal(fx->srv.snaps[1].failures, 0);
    assert_int_equal(fx->srv.snaps[1].checks, 1);

    /* hc.port replaces the server's port; Host is then that address. */
    ups_peer_t *p = fx->peers[fx->npeers++] = peer_new(&fx->srv.addr);
    ((struct sockaddr_in *)&p->addr.ss)->sin_port = htons(1); /* nothing there */
    fx->conf.hc.method = NULL; /* defaults: GET / */
    fx->conf.hc.uri = NULL;
    fx->conf.hc.host = NULL;
    fx->conf.hc.port = pt_addr_port(&fx->srv.addr);
    fx->srv.script = NULL;
    publish(fx, 2);
    ups_health_sync(fx->h);
    wait_checks(fx, p, 1);
    assert_int_equal(atomic_load(&p->hc_failures), 0);
    char want[256];
    snprintf(want, sizeof(want),
             "GET / HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nUser-Agent: portico-health\r\n"
             "Connection: close\r\n\r\n",
             (unsigned)pt_addr_port(&fx->srv.addr));
    assert_string_equal(fx->srv.last_req, want);
}

static void test_http_body_match(void **state)
{
    fx_t *fx = *state;
    fx->conf.hc.body = "hello";
    SCRIPT(&fx->srv,
           "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nsay hello!!", /* 0 pass */
           /* 1 fail: the body ends at Content-Length */
           "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nsay hello",
           /* 2 pass: chunked, the text spans two chunks */
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           "3\r\nhel\r\n8\r\nlo world\r\n0\r\n\r\n",
           /* 3 fail: chunk framing is not body text */
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           "3\r\nhel\r\n1\r\nL\r\n2\r\nlo\r\n0\r\n\r\n",
           /* 4 pass: no framing, read until close */
           "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall is well, hello",
           /* 5 fail: a status out of range fails whatever the body */
           "HTTP/1.1 500 Oops\r\nContent-Length: 5\r\n\r\nhello",
           /* 6 fail: 204 has no body */
           "HTTP/1.1 204 No Content\r\n\r\n",
           /* 7 fail: malformed chunked body */
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
           /* 8 pass: 302 with the text is fine (status in 200-399) */
           "HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 5\r\n\r\nhello",
           HOLD);
    /* After k probes:                     0  1  2  3  4  5  6  7  8  9 */
    probe_and_check(fx, (const uint64_t[]){0, 0, 1, 1, 2, 2, 3, 4, 5, 5}, "uuDuDuDDDu",
                    (const int[]){-1, 200, 200, 200, 200, 200, 500, 204, 200, 302});
}

static void test_http_body_cap(void **state)
{
    fx_t *fx = *state;
    fx->conf.hc.body = "NEEDLE";
    /* Text within the first 64 KiB is found; after it, never read. */
    size_t body = 70000;
    char *found = malloc(body + 128), *missed = malloc(body + 128);
    assert_true(found && missed);
    int head = snprintf(found, 128, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", body);
    memset(found + head, 'x', body);
    found[head + body] = '\0';
    memcpy(missed, found, (size_t)head + body + 1);
    memcpy(found + head + 60000, "NEEDLE", 6);
    memcpy(missed + head + body - 6, "NEEDLE", 6);
    const char *script[] = {found, missed, HOLD};
    fx->srv.script = script;
    fx->srv.nscript = 3;
    ups_health_sync(fx->h);
    wait_conns(fx, 3, 2);
    assert_int_equal(fx->srv.snaps[1].checks, 1);
    assert_int_equal(fx->srv.snaps[1].failures, 0);
    assert_int_equal(fx->srv.snaps[2].checks, 2);
    assert_int_equal(fx->srv.snaps[2].failures, 1);
    ups_health_destroy(fx->h); /* before the script goes out of scope */
    fx->h = NULL;
    fx->srv.script = NULL;
    free(found);
    free(missed);
}

static void test_timeout_when_never_answered(void **state)
{
    fx_t *fx = *state;
    ups_peer_t *p = fx->peers[0];
    SCRIPT(&fx->srv, HOLD);
    fx->conf.hc.timeout_ms = 80;
    uint64_t t0 = pt_time_mono_ms();
    ups_health_sync(fx->h);
    wait_checks(fx, p, 1);
    uint64_t took = pt_time_mono_ms() - t0;
    assert_true(took >= 75);
    assert_true(atomic_load(&p->hc_down));
    assert_int_equal(atomic_load(&p->hc_failures), atomic_load(&p->hc_checks));
    assert_int_equal(atomic_load(&p->hc_status), -1);
    /* The probe closed its socket: the responder saw the end. */
    wait_conns(fx, 1, 1);
}

static void test_connect_refused(void **state)
{
    fx_t *fx = *state;
    log_capture(fx);
    pt_addr_t a;
    int hold = refused_addr(&a);
    ups_peer_t *p = fx->peers[fx->npeers++] = peer_new(&a);
    fx->conf.hc.fall = 2;
    publish(fx, 2);
    ups_health_sync(fx->h);
    wait_state(fx, p, true);
    assert_true(atomic_load(&p->hc_failures) >= 2);
    assert_int_equal(atomic_load(&p->hc_failures), atomic_load(&p->hc_checks));
    assert_int_equal(atomic_load(&fx->peers[0]->hc_checks), 0); /* not in the set */
    assert_int_equal(fx->srv.accepted, 0);
    close(hold);
    char want[256];
    snprintf(want, sizeof(want),
             "upstream app server %s is down: connect: Connection refused "
             "(2 consecutive failures)\n",
             p->name);
    assert_logged(fx, want);
    assert_int_equal(pt_log_open("stderr", PT_LOG_ERROR), 0);
}

static void test_settings_update_keeps_counters(void **state)
{
    fx_t *fx = *state;
    ups_peer_t *p = fx->peers[0];
    fx->conf.hc.rise = 2;
    SCRIPT(&fx->srv, "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n", OK_200, HOLD, OK_200,
           HOLD);
    ups_health_sync(fx->h);
    wait_conns(fx, 3, 2); /* fail (down), pass (1 of 2), probe 2 held */
    assert_true(atomic_load(&p->hc_down));
    assert_int_equal(atomic_load(&p->hc_checks), 2);

    /* A sync with the same settings changes nothing: the probe stays. */
    ups_health_sync(fx->h);
    run_for(fx, 2 * INTERVAL_MS);
    assert_int_equal(fx->srv.accepted, 3);
    assert_int_equal(fx->srv.closed, 2);

    /* New settings keep the count: one more pass is enough to rise. */
    fx->conf.hc.uri = "/other";
    ups_health_sync(fx->h);
    wait_conns(fx, 5, 4);
    assert_int_equal(fx->srv.snaps[3].checks, 2); /* the held probe was not counted */
    assert_true(fx->srv.snaps[3].down);
    assert_int_equal(fx->srv.snaps[4].checks, 3);
    assert_false(fx->srv.snaps[4].down);
    assert_non_null(strstr(fx->srv.last_req, "GET /other HTTP/1.1\r\n"));
}

static void test_sync_adds_and_removes(void **state)
{
    fx_t *fx = *state;
    SCRIPT(&fx->srv, HOLD); /* probes stay in flight: removal must close them */
    fx->conf.hc.timeout_ms = 60000;
    fx->peers[fx->npeers++] = peer_new(&fx->srv.addr);
    fx->peers[fx->npeers++] = peer_new(&fx->srv.addr);
    publish(fx, 7);
    ups_health_sync(fx->h);
    wait_conns(fx, 3, 0);
    for (size_t i = 0; i < 3; i++) assert_int_equal(atomic_load(&fx->peers[i]->refs), 3);

    /* Peers 1 and 2 leave the set: their probers go at once. */
    publish(fx, 1);
    ups_health_sync(fx->h);
    assert_int_equal(atomic_load(&fx->peers[0]->refs), 3);
    for (size_t i = 1; i < 3; i++) {
        assert_int_equal(atomic_load(&fx->peers[i]->refs), 1);
        assert_int_equal(atomic_load(&fx->peers[i]->hc_checks), 0); /* dropped, not counted */
    }
    wait_conns(fx, 3, 2); /* their sockets were closed */

    /* Peer 1 comes back: a new prober, probed at once. */
    publish(fx, 3);
    ups_health_sync(fx->h);
    wait_conns(fx, 4, 2);
    assert_int_equal(atomic_load(&fx->peers[1]->refs), 3);

    /* Checks turned off for the group: every prober goes. */
    fx->conf.hc.type = UPS_HC_OFF;
    ups_health_sync(fx->h);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(atomic_load(&fx->peers[i]->refs), i < 2 ? 2 : 1);
    wait_conns(fx, 4, 4);
    run_for(fx, 3 * INTERVAL_MS);
    assert_int_equal(fx->srv.accepted, 4);
}

static void test_checks_off_clears_down(void **state)
{
    fx_t *fx = *state;
    ups_peer_t *p = fx->peers[0];
    fx->srv.resp = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n";
    ups_health_sync(fx->h);
    wait_state(fx, p, true);
    /* Nothing would ever bring it back: the group left the config. */
    fx->gs.conf = NULL;
    ups_health_sync(fx->h);
    assert_false(atomic_load(&p->hc_down));
    assert_int_equal(atomic_load(&p->refs), 2);
}

static void test_destroy_with_probes_in_flight(void **state)
{
    fx_t *fx = *state;
    SCRIPT(&fx->srv, HOLD);
    fx->conf.hc.timeout_ms = 60000;
    ups_health_sync(fx->h);
    wait_conns(fx, 1, 0);
    ups_health_destroy(fx->h);
    fx->h = NULL;
    assert_int_equal(atomic_load(&fx->peers[0]->refs), 2);
    wait_conns(fx, 1, 1);
    /* teardown: no fd or timer left behind, no leak under ASan */
}

static void test_many_groups_and_peers(void **state)
{
    fx_t *fx = *state;
    /* More probers than the initial hash table holds. */
    enum { NG = 40, NP = 4 };
    ups_gstate_t *gs = calloc(NG, sizeof(*gs));
    ups_gstate_t **groups = calloc(NG, sizeof(*groups));
    ups_peer_t **peers = calloc(NG * NP, sizeof(*peers));
    assert_true(gs && groups && peers);
    pt_addr_t refused;
    int hold = refused_addr(&refused);
    ups_group_t conf = {.name = "many"};
    hc_defaults(&conf.hc, UPS_HC_TCP);
    conf.hc.interval_ms = 60000;
    for (size_t g = 0; g < NG; g++) {
        gs[g].name = "many";
        gs[g].conf = &conf;
        groups[g] = &gs[g];
        for (size_t i = 0; i < NP; i++) peers[g * NP + i] = peer_new(&refused);
        atomic_store(&gs[g].set, set_new(peers + g * NP, NP, (1u << NP) - 1));
    }
    fx->rt.groups = groups;
    fx->rt.ngroups = NG;
    ups_health_sync(fx->h);
    ups_health_sync(fx->h); /* idempotent */
    for (size_t i = 0; i < NG * NP; i++) wait_checks(fx, peers[i], 1);
    for (size_t i = 0; i < NG * NP; i++) {
        assert_int_equal(atomic_load(&peers[i]->hc_checks), 1);
        assert_true(atomic_load(&peers[i]->hc_down));
        assert_int_equal(atomic_load(&peers[i]->refs), 3);
    }
    /* Half the groups leave the config. */
    for (size_t g = 0; g < NG; g += 2) gs[g].conf = NULL;
    ups_health_sync(fx->h);
    for (size_t i = 0; i < NG * NP; i++) {
        bool kept = (i / NP) % 2;
        assert_int_equal(atomic_load(&peers[i]->refs), kept ? 3 : 2);
        assert_int_equal(atomic_load(&peers[i]->hc_down), kept);
    }

    ups_health_destroy(fx->h);
    fx->h = NULL;
    for (size_t g = 0; g < NG; g++) set_free(atomic_exchange(&gs[g].set, NULL));
    for (size_t i = 0; i < NG * NP; i++) {
        assert_int_equal(atomic_load(&peers[i]->refs), 1);
        ups_peer_unref(peers[i]);
    }
    fx->rt.groups = fx->groups;
    fx->rt.ngroups = 1;
    close(hold);
    free(peers);
    free(groups);
    free(gs);
}

int main(void)
{
    pt_log_open("stderr", PT_LOG_ERROR); /* transitions are logged at warn: quiet */
    const struct CMUnitTest tests[] = {
        FIXTURE_TEST(test_first_probe_runs_at_once),
        FIXTURE_TEST(test_fall_then_rise),
        FIXTURE_TEST(test_tcp_connect_and_refused),
        FIXTURE_TEST(test_http_status_range),
        FIXTURE_TEST(test_status_range_update),
        FIXTURE_TEST(test_http_method_uri_host),
        FIXTURE_TEST(test_http_body_match),
        FIXTURE_TEST(test_http_body_cap),
        FIXTURE_TEST(test_timeout_when_never_answered),
        FIXTURE_TEST(test_connect_refused),
        FIXTURE_TEST(test_settings_update_keeps_counters),
        FIXTURE_TEST(test_sync_adds_and_removes),
        FIXTURE_TEST(test_checks_off_clears_down),
        FIXTURE_TEST(test_destroy_with_probes_in_flight),
        FIXTURE_TEST(test_many_groups_and_peers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
