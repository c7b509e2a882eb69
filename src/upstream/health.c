/*
 * Active health checks, on the control thread's loop.
 *
 * One prober per peer of every group with `health_check`. A prober is a
 * small state machine driven by one timer and one socket:
 *
 *   IDLE --timer--> CONNECTING --writable--> SENDING --> READING --> IDLE
 *                   (TCP checks end at "connected")
 *
 * The same timer is the next-probe alarm while idle and the deadline of the
 * probe in flight, so hc.timeout_ms covers connect, send and read together.
 * A probe never blocks: every socket call is non-blocking and a partial
 * result waits for the next edge.
 *
 * Results reach the workers through the peer's atomics only (hc_down,
 * up_since, counters); workers never see a prober. Settings are copied
 * from the group config at each sync, because the config strings belong to
 * a snapshot that a reload frees.
 *
 * Probers are kept in a hash table keyed by peer. A removed prober is
 * closed and unlinked at once, but its memory is freed at the loop's
 * deferred safe point: the loop may hold an already-fetched event for its
 * io in the current batch.
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/http.h"
#include "upstream/upstream_int.h"

#define HC_RESP_MAX (64 * 1024) /* bytes of response a probe reads at most */
#define HC_RBUF_MIN 4096
#define HC_MAX_HEADERS 128
#define HC_REASON_MAX 160
#define HC_DEFAULT_INTERVAL_MS 5000
#define HC_DEFAULT_TIMEOUT_MS 2000
#define HC_BUCKETS_MIN 64

typedef enum { PROBE_IDLE = 0, PROBE_CONNECTING, PROBE_SENDING, PROBE_READING } probe_phase_t;

/* What a prober does, built from the group config (everything copied). */
typedef struct hc_settings {
    ups_hc_type_t type;
    uint64_t interval_ms, timeout_ms;
    int rise, fall;
    int status_lo, status_hi;
    pt_addr_t addr;  /* the peer's address, port replaced by hc.port */
    char *req;       /* HTTP: the whole request; NULL for TCP */
    size_t req_len;
    bool head_only;  /* HEAD: the response has no body */
    char *body;      /* substring the body must contain; NULL = any */
    size_t body_len;
} hc_settings_t;

/* State of the probe in flight; reset after each probe. */
typedef struct probe {
    probe_phase_t phase;
    uint64_t started_ms;
    size_t sent;
    char *buf;        /* response bytes; chunked bodies are decoded in place */
    size_t len, cap;
    size_t last_len;  /* for the incremental head parser */
    size_t head_len;  /* 0 until the head is parsed */
    int status;       /* -1 until the head is parsed */
    int64_t clen;     /* Content-Length, -1 when absent */
    bool chunked;
    bool has_body;
    pt_http_chunked_t chunk;
    size_t body_end;  /* end of the (decoded) body in buf */
    size_t search_from;
} probe_t;

typedef struct prober prober_t;
struct prober {
    ups_health_t *h;
    ups_gstate_t *gs;      /* for its name in logs; lives until exit */
    ups_peer_t *peer;      /* reference held */
    hc_settings_t set;
    prober_t *hnext;       /* hash chain; also the dead list */
    bool seen;             /* mark of the current sync */
    int consec_ok, consec_fail;
    pt_io_t io;            /* io.fd = -1 when idle */
    pt_timer_t timer;      /* next probe when idle, deadline while probing */
    probe_t pr;
};

struct ups_health {
    ups_rt_t *rt;
    pt_loop_t *loop;
    prober_t **buckets;    /* by peer pointer */
    size_t nbuckets, n;
    uint64_t rng;          /* xorshift64, for interval jitter */
};

static void on_timer(pt_timer_t *t);
static void on_io(pt_io_t *io, unsigned events);

/* ------------------------------------------------------------------ */
/* Settings                                                            */
/* ------------------------------------------------------------------ */

static void settings_free(hc_settings_t *s)
{
    free(s->req);
    free(s->body);
    s->req = s->body = NULL;
}

static void addr_set_port(pt_addr_t *a, uint16_t port)
{
    if (a->ss.ss_family == AF_INET)
        a->ss.in4.sin_port = htons(port);
    else if (a->ss.ss_family == AF_INET6)
        a->ss.in6.sin6_port = htons(port);
}

/* The request bytes and body needle of an HTTP check. 0 or -ENOMEM/-EINVAL. */
static int settings_build_http(const ups_hc_conf_t *c, hc_settings_t *s)
{
    char host[80];
    const char *hv = c->host;
    if (!hv) {
        /* The address actually probed (the peer's, or with hc.port). */
        if (pt_addr_format(&s->addr, host, sizeof(host)) < 0) return -EINVAL;
        hv = host;
    }
    const char *method = c->method && c->method[0] ? c->method : "GET";
    const char *uri = c->uri && c->uri[0] ? c->uri : "/";
    int n = asprintf(&s->req,
                     "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: portico-health\r\n"
                     "Connection: close\r\n\r\n",
                     method, uri, hv);
    if (n < 0) {
        s->req = NULL;
        return -ENOMEM;
    }
    s->req_len = (size_t)n;
    s->head_only = strcmp(method, "HEAD") == 0;
    if (c->body && c->body[0]) {
        s->body = strdup(c->body);
        if (!s->body) return -ENOMEM;
        s->body_len = strlen(s->body);
    }
    return 0;
}

/* Fills s from the group config (defaults for unset fields). */
static int settings_build(const ups_hc_conf_t *c, const ups_peer_t *peer, hc_settings_t *s)
{
    *s = (hc_settings_t){
        .type = c->type,
        .interval_ms = c->interval_ms ? c->interval_ms : HC_DEFAULT_INTERVAL_MS,
        .timeout_ms = c->timeout_ms ? c->timeout_ms : HC_DEFAULT_TIMEOUT_MS,
        .rise = c->rise > 0 ? c->rise : 2,
        .fall = c->fall > 0 ? c->fall : 3,
        .status_lo = c->status_lo,
        .status_hi = c->status_hi,
        .addr = peer->addr,
    };
    if (s->status_lo == 0 && s->status_hi == 0) {
        s->status_lo = 200;
        s->status_hi = 399;
    }
    if (c->port) addr_set_port(&s->addr, c->port);
    if (s->type != UPS_HC_HTTP) return 0;
    int rc = settings_build_http(c, s);
    if (rc < 0) settings_free(s);
    return rc;
}

static bool bytes_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen || !a != !b) return false;
    return alen == 0 || (a && b && memcmp(a, b, alen) == 0);
}

static bool settings_equal(const hc_settings_t *a, const hc_settings_t *b)
{
    return a->type == b->type && a->interval_ms == b->interval_ms &&
           a->timeout_ms == b->timeout_ms && a->rise == b->rise && a->fall == b->fall &&
           a->status_lo == b->status_lo && a->status_hi == b->status_hi &&
           pt_addr_equal(&a->addr, &b->addr) && a->head_only == b->head_only &&
           bytes_equal(a->req, a->req_len, b->req, b->req_len) &&
           bytes_equal(a->body, a->body_len, b->body, b->body_len);
}

/* ------------------------------------------------------------------ */
/* Scheduling                                                          */
/* ------------------------------------------------------------------ */

static uint64_t rng_next(ups_health_t *h)
{
    uint64_t x = h->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    h->rng = x;
    return x;
}

/* Up to 10% of the interval, so probes of many servers spread out. */
static uint64_t jitter(ups_health_t *h, uint64_t interval_ms)
{
    return rng_next(h) % (interval_ms / 10 + 1);
}

/* Arms the next probe one interval (plus jitter) after the last one started. */
static void schedule_next(prober_t *p)
{
    ups_health_t *h = p->h;
    uint64_t at = p->pr.started_ms + p->set.interval_ms + jitter(h, p->set.interval_ms);
    uint64_t now = pt_loop_now(h->loop);
    pt_timer_start(h->loop, &p->timer, at > now ? at - now : 0);
}

/* ------------------------------------------------------------------ */
/* Probe life cycle                                                    */
/* ------------------------------------------------------------------ */

/* Closes the socket and forgets the probe in flight (no result). */
static void probe_abort(prober_t *p)
{
    ups_health_t *h = p->h;
    pt_timer_stop(h->loop, &p->timer);
    if (p->io.fd >= 0) {
        pt_io_stop(h->loop, &p->io);
        close(p->io.fd);
        p->io.fd = -1;
    }
    free(p->pr.buf);
    uint64_t started = p->pr.started_ms;
    p->pr = (probe_t){.phase = PROBE_IDLE, .status = -1, .clen = -1, .started_ms = started};
}

static void mark_down(prober_t *p, const char *reason)
{
    atomic_store_explicit(&p->peer->hc_down, true, memory_order_relaxed);
    pt_log_warn("upstream %s server %s is down: %s (%d consecutive failures)", p->gs->name,
                p->peer->name, reason, p->consec_fail);
}

static void mark_up(prober_t *p)
{
    /* up_since first, so a worker that sees the peer up already sees the
     * start of its slow-start ramp (release here; readers are relaxed,
     * and a stale read only costs one full-weight pick). */
    atomic_store_explicit(&p->peer->up_since, ups_now_ms(), memory_order_relaxed);
    atomic_store_explicit(&p->peer->hc_down, false, memory_order_release);
    pt_log_notice("upstream %s server %s is up (%d consecutive passes)", p->gs->name,
                  p->peer->name, p->consec_ok);
}

/* Counts one result against rise/fall and updates the peer. status: the
 * HTTP status received, -1 for none. */
static void record(prober_t *p, bool ok, int status, const char *reason)
{
    ups_peer_t *peer = p->peer;
    atomic_fetch_add_explicit(&peer->hc_checks, 1, memory_order_relaxed);
    atomic_store_explicit(&peer->hc_status, status, memory_order_relaxed);
    bool down = atomic_load_explicit(&peer->hc_down, memory_order_relaxed);
    if (ok) {
        p->consec_fail = 0;
        if (p->consec_ok < INT32_MAX) p->consec_ok++;
        if (down && p->consec_ok >= p->set.rise) mark_up(p);
        return;
    }
    atomic_fetch_add_explicit(&peer->hc_failures, 1, memory_order_relaxed);
    p->consec_ok = 0;
    if (p->consec_fail < INT32_MAX) p->consec_fail++;
    if (!down && p->consec_fail >= p->set.fall)
        mark_down(p, reason);
    else
        pt_log_debug("upstream %s server %s: health check failed: %s", p->gs->name,
                     p->peer->name, reason);
}

/* The probe is over: close, count, and arm the next one. */
static void probe_end(prober_t *p, bool ok, const char *reason)
{
    int status = p->pr.status;
    probe_abort(p);
    record(p, ok, status, reason);
    schedule_next(p);
}

static void probe_fail(prober_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void probe_fail(prober_t *p, const char *fmt, ...)
{
    char reason[HC_REASON_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    probe_end(p, false, reason);
}

static void probe_start(prober_t *p)
{
    ups_health_t *h = p->h;
    p->pr.started_ms = pt_loop_now(h->loop);
    int fd = pt_socket_connect(&p->set.addr);
    if (fd < 0) {
        probe_fail(p, "connect: %s", strerror(-fd));
        return;
    }
    p->io.fd = fd;
    int rc = pt_io_start(h->loop, &p->io);
    if (rc < 0) {
        probe_fail(p, "cannot watch the socket: %s", strerror(-rc));
        return;
    }
    p->pr.phase = PROBE_CONNECTING;
    pt_timer_start(h->loop, &p->timer, p->set.timeout_ms);
}

static void on_timer(pt_timer_t *t)
{
    prober_t *p = t->data;
    if (p->pr.phase == PROBE_IDLE)
        probe_start(p);
    else
        probe_fail(p, "timed out after %llu ms", (unsigned long long)p->set.timeout_ms);
}

/* ------------------------------------------------------------------ */
/* Socket I/O                                                          */
/* ------------------------------------------------------------------ */

/* The outcome of a non-blocking connect: 0 or -errno. */
static int connect_result(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return -errno;
    return -err;
}

/* Writes the rest of the request: 0 when all sent, PT_AGAIN, or -errno. */
static int send_request(prober_t *p)
{
    while (p->pr.sent < p->set.req_len) {
        ssize_t n = send(p->io.fd, p->set.req + p->pr.sent, p->set.req_len - p->pr.sent,
                         MSG_NOSIGNAL);
        if (n > 0) {
            p->pr.sent += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            p->io.writable = false;
            return PT_AGAIN;
        } else {
            return n < 0 ? -errno : -EPIPE;
        }
    }
    return 0;
}

/* Makes room for more response bytes, up to HC_RESP_MAX: 0, -ENOBUFS, -ENOMEM. */
static int buf_reserve(probe_t *pr)
{
    if (pr->len < pr->cap) return 0;
    if (pr->cap >= HC_RESP_MAX) return -ENOBUFS;
    size_t cap = pr->cap ? pr->cap * 2 : HC_RBUF_MIN;
    if (cap > HC_RESP_MAX) cap = HC_RESP_MAX;
    char *b = realloc(pr->buf, cap);
    if (!b) return -ENOMEM;
    pr->buf = b;
    pr->cap = cap;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Response evaluation                                                 */
/* ------------------------------------------------------------------ */

enum { EVAL_MORE = 0, EVAL_PASS, EVAL_FAIL };

/* Parses the head, skipping interim 1xx responses. >0, PT_AGAIN or <0. */
static int parse_head(probe_t *pr)
{
    pt_http_hdr_t hdrs[HC_MAX_HEADERS];
    const pt_http_limits_t lim = {
        .max_head = HC_RESP_MAX, .max_line = HC_RESP_MAX, .max_headers = HC_MAX_HEADERS};
    for (;;) {
        pt_http_resp_t resp = {.headers = hdrs};
        int rc = pt_http_parse_response(pr->buf, pr->len, pr->last_len, &resp, &lim);
        if (rc == PT_AGAIN) pr->last_len = pr->len;
        if (rc <= 0) return rc;
        if (resp.status >= 200) {
            pr->head_len = (size_t)rc;
            pr->status = resp.status;
            pr->clen = resp.content_length;
            pr->chunked = (resp.flags & PT_HTTP_F_CHUNKED) != 0;
            return rc;
        }
        memmove(pr->buf, pr->buf + rc, pr->len - (size_t)rc);
        pr->len -= (size_t)rc;
        pr->last_len = 0;
    }
}

/* Advances body_end over the body bytes received so far; true when the
 * body is complete. -1 on a malformed chunked body. */
static int body_advance(probe_t *pr, bool eof)
{
    if (!pr->has_body) {
        pr->body_end = pr->head_len;
        return 1;
    }
    if (pr->chunked) {
        size_t n = pr->len - pr->body_end;
        ssize_t rc = pt_http_chunked_decode(&pr->chunk, pr->buf + pr->body_end, &n);
        if (rc != PT_AGAIN && rc < 0) return -1;
        /* Decoded in place: the data now ends n bytes after body_end. */
        pr->body_end += n;
        pr->len = pr->body_end;
        return rc >= 0 || eof;
    }
    if (pr->clen >= 0) {
        size_t want = pr->head_len + (size_t)pr->clen;
        pr->body_end = pr->len < want ? pr->len : want;
        return pr->body_end == want || eof;
    }
    pr->body_end = pr->len;
    return eof;
}

static int eval_body(prober_t *p, bool eof, char *reason, size_t rsize)
{
    probe_t *pr = &p->pr;
    int done = body_advance(pr, eof);
    if (done < 0) {
        snprintf(reason, rsize, "invalid chunked body");
        return EVAL_FAIL;
    }
    size_t from = pr->search_from, end = pr->body_end;
    if (end > from && memmem(pr->buf + from, end - from, p->set.body, p->set.body_len))
        return EVAL_PASS;
    /* A match may straddle what arrives next: keep the last needle-1 bytes. */
    size_t keep = p->set.body_len - 1;
    if (end - pr->head_len > keep) pr->search_from = end - keep;
    if (done) {
        snprintf(reason, rsize, "status %d, body does not contain the expected text",
                 pr->status);
        return EVAL_FAIL;
    }
    if (pr->len >= HC_RESP_MAX) {
        snprintf(reason, rsize, "status %d, expected text not in the first %d KiB", pr->status,
                 HC_RESP_MAX / 1024);
        return EVAL_FAIL;
    }
    return EVAL_MORE;
}

/* Judges what was received so far. */
static int evaluate(prober_t *p, bool eof, char *reason, size_t rsize)
{
    probe_t *pr = &p->pr;
    if (pr->head_len == 0) {
        int rc = parse_head(pr);
        if (rc == PT_AGAIN) {
            if (!eof && pr->len < HC_RESP_MAX) return EVAL_MORE;
            snprintf(reason, rsize, eof ? "connection closed before the response head"
                                        : "response head over 64 KiB");
            return EVAL_FAIL;
        }
        if (rc < 0) {
            snprintf(reason, rsize, "invalid response head");
            return EVAL_FAIL;
        }
        if (pr->status < p->set.status_lo || pr->status > p->set.status_hi) {
            snprintf(reason, rsize, "status %d", pr->status);
            return EVAL_FAIL;
        }
        if (!p->set.body) return EVAL_PASS;
        pr->has_body = !p->set.head_only && pr->status != 204 && pr->status != 304;
        pr->body_end = pr->search_from = pr->head_len;
        pt_http_chunked_init(&pr->chunk);
    }
    return eval_body(p, eof, reason, rsize);
}

/* Reads and judges until a verdict or EAGAIN. */
static void read_response(prober_t *p)
{
    probe_t *pr = &p->pr;
    char reason[HC_REASON_MAX] = "";
    while (p->io.readable) {
        int rc = buf_reserve(pr);
        if (rc < 0) {
            probe_fail(p, rc == -ENOBUFS ? "response over 64 KiB" : "out of memory");
            return;
        }
        ssize_t n = recv(p->io.fd, pr->buf + pr->len, pr->cap - pr->len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            p->io.readable = false;
            return;
        }
        if (n < 0) {
            probe_fail(p, "read: %s", strerror(errno));
            return;
        }
        pr->len += (size_t)n;
        int v = evaluate(p, n == 0, reason, sizeof(reason));
        assert(v != EVAL_MORE || n > 0); /* the end of the stream always decides */
        if (v == EVAL_PASS) {
            probe_end(p, true, "");
            return;
        }
        if (v == EVAL_FAIL) {
            probe_end(p, false, reason);
            return;
        }
    }
}

static void on_io(pt_io_t *io, unsigned events)
{
    prober_t *p = io->data;
    pt_unused(events);
    if (p->pr.phase == PROBE_CONNECTING) {
        if (!io->writable) return;
        int rc = connect_result(io->fd);
        if (rc < 0) {
            probe_fail(p, "connect: %s", strerror(-rc));
            return;
        }
        if (p->set.type != UPS_HC_HTTP) {
            probe_end(p, true, "");
            return;
        }
        p->pr.phase = PROBE_SENDING;
    }
    if (p->pr.phase == PROBE_SENDING) {
        if (!io->writable) return;
        int rc = send_request(p);
        if (rc == PT_AGAIN) return;
        if (rc < 0) {
            probe_fail(p, "send: %s", strerror(-rc));
            return;
        }
        p->pr.phase = PROBE_READING;
    }
    if (p->pr.phase == PROBE_READING) read_response(p);
}

/* ------------------------------------------------------------------ */
/* Probers and the table                                               */
/* ------------------------------------------------------------------ */

static size_t bucket_of(const ups_health_t *h, const ups_peer_t *peer)
{
    uint64_t x = (uint64_t)(uintptr_t)peer * 0x9E3779B97F4A7C15ull;
    return (size_t)(x >> 32) & (h->nbuckets - 1);
}

static prober_t *prober_find(const ups_health_t *h, const ups_peer_t *peer)
{
    for (prober_t *p = h->buckets[bucket_of(h, peer)]; p; p = p->hnext)
        if (p->peer == peer) return p;
    return NULL;
}

static void table_insert(ups_health_t *h, prober_t *p)
{
    size_t b = bucket_of(h, p->peer);
    p->hnext = h->buckets[b];
    h->buckets[b] = p;
    h->n++;
}

/* Doubles the table when it is fuller than one per bucket; on OOM the
 * chains just get longer. */
static void table_grow(ups_health_t *h)
{
    if (h->n <= h->nbuckets) return;
    size_t nb = h->nbuckets;
    while (nb < h->n) nb *= 2;
    prober_t **nbk = calloc(nb, sizeof(*nbk));
    if (!nbk) return;
    prober_t **old = h->buckets;
    size_t onb = h->nbuckets;
    h->buckets = nbk;
    h->nbuckets = nb;
    h->n = 0;
    for (size_t i = 0; i < onb; i++) {
        for (prober_t *p = old[i], *next; p; p = next) {
            next = p->hnext;
            table_insert(h, p);
        }
    }
    free(old);
}

static prober_t *prober_new(ups_health_t *h, ups_gstate_t *gs, ups_peer_t *peer,
                            hc_settings_t *set)
{
    prober_t *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->h = h;
    p->gs = gs;
    p->peer = peer;
    ups_peer_ref(peer);
    p->set = *set;
    p->io = (pt_io_t){.fd = -1, .cb = on_io, .data = p};
    p->pr = (probe_t){.status = -1, .clen = -1};
    pt_timer_init(&p->timer, on_timer, p);
    /* Servers start up; the first probe runs at once so a dead one is
     * found within `fall` intervals. */
    pt_timer_start(h->loop, &p->timer, 0);
    return p;
}

/* Stops everything the prober does and drops its peer reference. The
 * memory itself is freed later (see bury). */
static void prober_stop(prober_t *p, bool clear_down)
{
    probe_abort(p);
    /* Nothing will bring it back up: a peer that stays (its group turned
     * checks off) must not stay down forever. */
    if (clear_down && atomic_exchange_explicit(&p->peer->hc_down, false, memory_order_relaxed))
        pt_log_info("upstream %s server %s: health checks stopped, considered up", p->gs->name,
                    p->peer->name);
    settings_free(&p->set);
    ups_peer_unref(p->peer);
    p->peer = NULL;
}

static void free_chain(void *arg)
{
    for (prober_t *p = arg, *next; p; p = next) {
        next = p->hnext;
        free(p);
    }
}

/* Frees stopped probers at the loop's safe point. */
static void bury(pt_loop_t *loop, prober_t *dead)
{
    if (!dead) return;
    /* Without memory for the task, free now: an event of this batch for
     * one of them is unlikely (the caller is rarely an io callback). */
    if (pt_loop_defer(loop, free_chain, dead) < 0) free_chain(dead);
}

/* New settings for an existing prober: counters stay; a probe in flight
 * with the old settings is dropped and a new one runs soon. */
static void prober_update(prober_t *p, ups_gstate_t *gs, hc_settings_t *set)
{
    p->gs = gs;
    if (settings_equal(&p->set, set)) {
        settings_free(set);
        return;
    }
    probe_abort(p);
    settings_free(&p->set);
    p->set = *set;
    pt_timer_start(p->h->loop, &p->timer, jitter(p->h, p->set.interval_ms));
}

static void sync_peer(ups_health_t *h, ups_gstate_t *gs, ups_peer_t *peer)
{
    prober_t *p = prober_find(h, peer);
    if (p && p->seen) return; /* listed twice: the first group's settings win */
    hc_settings_t set;
    if (settings_build(&gs->conf->hc, peer, &set) < 0) {
        pt_log_error("upstream %s server %s: cannot set up health checks (out of memory)",
                     gs->name, peer->name);
        if (p) p->seen = true; /* keep probing with the old settings */
        return;
    }
    if (p) {
        prober_update(p, gs, &set);
        p->seen = true;
        return;
    }
    p = prober_new(h, gs, peer, &set);
    if (!p) {
        settings_free(&set);
        pt_log_error("upstream %s server %s: cannot start health checks (out of memory)",
                     gs->name, peer->name);
        return;
    }
    p->seen = true;
    table_insert(h, p);
}

/* Unlinks every prober not marked by this sync; returns them chained. */
static prober_t *sweep_unseen(ups_health_t *h)
{
    prober_t *dead = NULL;
    for (size_t i = 0; i < h->nbuckets; i++) {
        prober_t **pp = &h->buckets[i];
        while (*pp) {
            prober_t *p = *pp;
            if (p->seen) {
                p->seen = false;
                pp = &p->hnext;
                continue;
            }
            *pp = p->hnext;
            h->n--;
            prober_stop(p, true);
            p->hnext = dead;
            dead = p;
        }
    }
    return dead;
}

/* ------------------------------------------------------------------ */
/* API                                                                 */
/* ------------------------------------------------------------------ */

/*
 * Creates the (empty) health checker of rt; probers start at the first
 * ups_health_sync(). Control thread. NULL on OOM.
 */
ups_health_t *ups_health_create(ups_rt_t *rt)
{
    ups_health_t *h = calloc(1, sizeof(*h));
    if (!h) return NULL;
    h->buckets = calloc(HC_BUCKETS_MIN, sizeof(*h->buckets));
    if (!h->buckets) {
        free(h);
        return NULL;
    }
    h->nbuckets = HC_BUCKETS_MIN;
    h->rt = rt;
    h->loop = rt->ctl->loop;
    h->rng = (pt_time_mono_us() ^ (uint64_t)(uintptr_t)h) | 1;
    return h;
}

/*
 * Makes the probers match the current sets: one per peer of every group
 * whose config has health_check on. New peers are probed at once; peers
 * gone from every set lose their prober (and their reference); existing
 * probers take the new settings and keep their rise/fall counters.
 * Control thread; may be called from any control-loop callback.
 */
void ups_health_sync(ups_health_t *h)
{
    ups_rt_t *rt = h->rt;
    for (size_t g = 0; g < rt->ngroups; g++) {
        ups_gstate_t *gs = rt->groups[g];
        if (!gs->conf || gs->conf->hc.type == UPS_HC_OFF) continue;
        const ups_set_t *s = ups_set_load(gs);
        for (size_t i = 0; s && i < s->n; i++) sync_peer(h, gs, s->m[i].peer);
    }
    bury(h->loop, sweep_unseen(h));
    table_grow(h);
}

/*
 * Stops every probe (sockets closed, timers cancelled, peer references
 * dropped) and frees h. Control thread, while the loop still exists; the
 * last bytes are freed at the loop's next safe point or its destruction.
 */
void ups_health_destroy(ups_health_t *h)
{
    if (!h) return;
    prober_t *dead = NULL;
    for (size_t i = 0; i < h->nbuckets; i++) {
        for (prober_t *p = h->buckets[i], *next; p; p = next) {
            next = p->hnext;
            prober_stop(p, false); /* exit: the peers' state no longer matters */
            p->hnext = dead;
            dead = p;
        }
    }
    pt_loop_t *loop = h->loop;
    free(h->buckets);
    free(h);
    bury(loop, dead);
}
