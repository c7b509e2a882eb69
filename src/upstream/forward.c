/*
 * The HTTP/1.1 exchange with an origin for one request: connect (or reuse
 * a pooled connection), send the head and stream the request body, read
 * and relay the response with back-pressure (one buffer: the origin is not
 * read again until the client took what we have), then return the
 * connection to the pool. 101 responses turn into a byte tunnel.
 *
 * Errors before the response head reached the client become 502/504;
 * after that the client connection is closed (the body is incomplete).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "upstream/upstream_int.h"

typedef enum { F_CONNECT, F_SEND, F_WAIT_HEAD, F_BODY, F_TUNNEL, F_PENDING, F_DONE } fstate_t;

#define MAX_RESP_HEADERS 256

#define MAX_TRIED 16

typedef enum { FAIL_ERROR, FAIL_TIMEOUT, FAIL_STATUS } fail_kind_t;

struct ups_pending {
    struct fwd *f;
    ups_gstate_t *gs;
    ups_pending_t *prev, *next;
    pt_timer_t timer;
    uint64_t deadline_us;
    bool queued;
};

typedef struct fwd {
    pt_request_t *r;
    const ups_group_t *g;
    ups_gstate_t *gs;
    ups_member_t mem; /* the member of this attempt; mem.peer holds a reference */
    ups_conn_t *uc;
    fstate_t state;
    pt_timer_t timer;
    int tries;              /* attempts made */
    uint64_t t0;            /* request start */
    uint64_t attempt_t0;    /* this attempt's start */
    uint64_t ready_us;      /* this attempt's connection was ready (connected or reused) */
    uint64_t hash;
    ups_peer_t *tried[MAX_TRIED];
    size_t ntried;
    int resp_status;        /* for statistics: what the client gets */
    bool counted;           /* in gs->active */
    bool is_retry;          /* this attempt is in gs->active_retries */
    bool recorded;          /* this attempt's outcome went to passive checks */
    bool ever_sent;         /* some attempt wrote request bytes */
    bool stale_retry_used;
    ups_pending_t pend;
    /* request */
    char *head;
    size_t head_len, head_sent;
    char pp[256];
    size_t pp_len;
    const char *body_p;
    size_t body_len, body_sent;
    char chunk_hdr[24];
    size_t chunk_hdr_len, chunk_hdr_sent;
    size_t trailer_sent; /* "\r\n" after a chunk or the final "0\r\n\r\n" */
    const char *trailer;
    size_t trailer_len;
    bool req_body_done;
    bool req_body_started;
    /* response */
    char *buf;
    size_t bufsize, len, pos, last_len;
    pt_http_resp_t resp;
    pt_http_hdr_t *hdrs; /* MAX_RESP_HEADERS, not zeroed: 8 KiB of memset per request otherwise */
    int64_t cl_left;
    bool chunked;
    bool until_close;
    bool reusable;
    bool got_bytes;
    pt_http_chunked_t dec;
    /* tunnel */
    char *cbuf;
    size_t clen, cpos;
    bool c_eof, u_eof;
} fwd_t;

static void on_upstream_io(pt_io_t *io, unsigned events);
static void fwd_step(fwd_t *f);
static void fwd_read_response(fwd_t *f);
static void pending_wake(ups_worker_t *uw, const ups_gstate_t *gs);
static void pending_remove(fwd_t *f);

static uint64_t settings_timeout(const fwd_t *f, fstate_t st)
{
    const pt_http_settings_t *s = &f->r->loc->s;
    if (st == F_CONNECT) return s->proxy_connect_timeout;
    if (st == F_SEND) return s->proxy_send_timeout;
    return s->proxy_read_timeout;
}

/* The state's timeout, cut to what is left of proxy_try_timeout before the
 * response head. */
static void arm(fwd_t *f)
{
    uint64_t ms = settings_timeout(f, f->state);
    uint64_t try_ms = f->r->loc->s.proxy_try_timeout;
    if (try_ms && f->state <= F_WAIT_HEAD) {
        /* Timers count from the loop's cached clock, so the deadline must too. */
        uint64_t deadline = f->attempt_t0 / 1000 + try_ms;
        uint64_t now = pt_loop_now(f->r->worker->loop);
        uint64_t left = deadline > now ? deadline - now : 1;
        if (left < ms) ms = left;
    }
    pt_timer_start(f->r->worker->loop, &f->timer, ms);
}

/* ---- attempts: accounting shared with the balancer ---- */

static int status_class(int st) { return st >= 100 && st < 600 ? st / 100 : 0; }

/* The outcome of this attempt for passive health checks (once). */
static void attempt_result(fwd_t *f, bool failure)
{
    ups_peer_t *p = f->mem.peer;
    if (!p || f->recorded) return;
    f->recorded = true;
    if (failure) atomic_fetch_add_explicit(&p->failures, 1, memory_order_relaxed);
    ups_passive_record(f->gs, f->g, p, failure, ups_now_ms());
}

/* Ends this attempt's claim on its peer (in-flight count, reference). */
static void attempt_release(fwd_t *f)
{
    ups_peer_t *p = f->mem.peer;
    if (!p) return;
    f->mem.peer = NULL;
    atomic_fetch_sub_explicit(&p->active, 1, memory_order_relaxed);
    if (f->is_retry) {
        atomic_fetch_sub_explicit(&f->gs->active_retries, 1, memory_order_relaxed);
        f->is_retry = false;
    }
    ups_peer_unref(p);
    pending_wake(ups_worker(f->r->worker), f->gs);
}

static void attempt_claim(fwd_t *f, const ups_member_t *m)
{
    f->mem = *m;
    f->attempt_t0 = pt_time_mono_us();
    ups_peer_ref(m->peer);
    ups_peer_busy(m->peer, (int64_t)f->attempt_t0);
    atomic_fetch_add_explicit(&m->peer->requests, 1, memory_order_relaxed);
    f->recorded = false;
    f->ready_us = 0;
    if (f->ntried < MAX_TRIED) f->tried[f->ntried++] = m->peer;
}

/* Releases everything the exchange holds (not the request). */
static void fwd_cleanup(fwd_t *f, bool reusable)
{
    pt_worker_t *w = f->r->worker;
    pt_timer_stop(w->loop, &f->timer);
    if (f->uc) {
        ups_conn_t *uc = f->uc;
        f->uc = NULL;
        ups_pool_release(ups_worker(w), uc, f->g, reusable);
    }
    if (f->buf) {
        pt_worker_buf_put(w, f->buf, f->bufsize);
        f->buf = NULL;
    }
    free(f->cbuf);
    f->cbuf = NULL;
    pending_remove(f);
    attempt_release(f);
    if (f->counted) {
        f->counted = false;
        atomic_fetch_sub_explicit(&f->gs->active, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&f->gs->responses[status_class(f->resp_status)], 1,
                                  memory_order_relaxed);
    }
    f->state = F_DONE;
}

static void on_abort(pt_request_t *r)
{
    fwd_t *f = r->handler_data;
    fwd_cleanup(f, false);
}

static void fail(fwd_t *f, int status, const char *why)
{
    pt_request_t *r = f->r;
    pt_metric_inc(ups_worker(r->worker)->m->errors);
    attempt_result(f, true);
    if (r->state == PT_REQ_HEAD) f->resp_status = status;
    pt_log_error("upstream %s: %s while %s (request %.*s, %.*s %.*s)",
                 f->mem.peer ? f->mem.peer->name : "-",
                 why,
                 f->state == F_CONNECT   ? "connecting"
                 : f->state == F_SEND    ? "sending the request"
                 : f->state == F_BODY    ? "reading the response body"
                                         : "reading the response head",
                 (int)r->request_id_len, r->request_id, (int)r->h.method_len, r->h.method,
                 (int)r->h.path_len, r->h.path);
    pt_req_unsend_head(r); /* a head queued but not written can still become an error */
    bool head_sent = r->state != PT_REQ_HEAD;
    fwd_cleanup(f, false);
    r->on_abort = NULL;
    r->on_body = NULL;
    r->on_drain = NULL;
    if (head_sent) {
        pt_req_abort(r);
        return;
    }
    /* The request body may be half read: the client connection can't go on. */
    pt_req_error(r, status, !r->body_done);
}

static bool idempotent(const pt_request_t *r)
{
    switch (r->h.method_id) {
    case PT_HTTP_GET:
    case PT_HTTP_HEAD:
    case PT_HTTP_OPTIONS:
    case PT_HTTP_TRACE:
    case PT_HTTP_PUT:
    case PT_HTTP_DELETE:
        return true;
    default:
        return false;
    }
}

static unsigned status_flag(int st)
{
    switch (st) {
    case 500: return PT_NEXT_500;
    case 502: return PT_NEXT_502;
    case 503: return PT_NEXT_503;
    case 504: return PT_NEXT_504;
    case 429: return PT_NEXT_429;
    default: return 0;
    }
}

static bool budget_allows(fwd_t *f) { return ups_retry_budget_allows(f->gs, f->g); }

/* A connection from the pool that the origin had closed: the one failure
 * that is not the origin's fault; tried again once on a fresh connection. */
static bool stale_pooled(const fwd_t *f, fail_kind_t kind)
{
    return kind == FAIL_ERROR && f->uc && f->uc->reused && !f->got_bytes && !f->stale_retry_used;
}

static bool may_retry(fwd_t *f, fail_kind_t kind, int status)
{
    pt_request_t *r = f->r;
    const pt_http_settings_t *s = &r->loc->s;
    if (f->req_body_started) return false; /* streamed body bytes cannot be sent again */
    if (kind != FAIL_STATUS && f->got_bytes) return false;
    bool sent = f->ever_sent || f->head_sent > 0;
    if (sent && !idempotent(r) && !(s->next_upstream & PT_NEXT_NON_IDEMPOTENT)) return false;
    if (stale_pooled(f, kind)) return true;
    unsigned need = kind == FAIL_ERROR     ? PT_NEXT_ERROR
                    : kind == FAIL_TIMEOUT ? PT_NEXT_TIMEOUT
                                           : status_flag(status);
    if (!need || !(s->next_upstream & need)) return false;
    int max = s->next_upstream_tries;
    if (max == 0) {
        const ups_set_t *set = ups_set_load(f->gs);
        max = set ? (int)set->n : 1;
    }
    if (f->tries >= max || f->ntried >= MAX_TRIED) return false;
    if (s->next_upstream_timeout && (pt_time_mono_us() - f->t0) / 1000 >= s->next_upstream_timeout)
        return false;
    return budget_allows(f);
}

static ups_lbw_t *worker_lbw(ups_worker_t *uw, const ups_gstate_t *gs, const ups_set_t *set)
{
    if ((size_t)gs->id >= uw->nlbw) {
        size_t n = (size_t)gs->id + 8;
        ups_lbw_t *l = realloc(uw->lbw, n * sizeof(*l));
        if (!l) return NULL;
        memset(l + uw->nlbw, 0, (n - uw->nlbw) * sizeof(*l));
        uw->lbw = l;
        uw->nlbw = n;
    }
    ups_lbw_t *l = &uw->lbw[gs->id];
    if (l->version != set->version && ups_lbw_reset(l, set) < 0) return NULL;
    return l;
}

typedef enum { PICK_OK, PICK_NONE, PICK_FULL } pick_rc_t;

/* Chooses the next member (never one already tried) into *out. */
static pick_rc_t pick(fwd_t *f, ups_member_t *out)
{
    ups_worker_t *uw = ups_worker(f->r->worker);
    const ups_set_t *set = ups_set_load(f->gs);
    if (!set || set->n == 0) return PICK_NONE;
    ups_lbw_t *lbw = worker_lbw(uw, f->gs, set);
    if (!lbw) return PICK_NONE;
    uint64_t now_us = pt_time_mono_us(); /* one clock read serves both units */
    ups_pick_t pk = {f->g,      set,          lbw,          &uw->rng, f->hash, f->tried,
                     f->ntried, (int64_t)(now_us / 1000), (int64_t)now_us, false};
    const ups_member_t *m = ups_lb_pick(&pk);
    if (!m) return pk.saw_full ? PICK_FULL : PICK_NONE;
    *out = *m; /* the set may go once this callback returns: keep a copy */
    return PICK_OK;
}

static int connect_member(fwd_t *f, const ups_member_t *m, bool fresh);
static void pending_enqueue(fwd_t *f);

/* The request cannot be placed: 503 at once (or the previous error). */
static void overflow(fwd_t *f, const char *why)
{
    pt_request_t *r = f->r;
    atomic_fetch_add_explicit(&f->gs->overflow, 1, memory_order_relaxed);
    pt_log_warn("upstream %s: %s, answering 503 (request %.*s)", f->g->name, why,
                (int)r->request_id_len, r->request_id);
    f->resp_status = 503;
    fwd_cleanup(f, false);
    r->on_abort = NULL;
    pt_req_error_retry_after(r, 503, 1);
}

static bool try_next(fwd_t *f, fail_kind_t kind, int status, const char *why);

/* Connects to m; a connect that fails at once is a failed attempt. */
static void launch(fwd_t *f, const ups_member_t *m, bool fresh)
{
    int rc = connect_member(f, m, fresh);
    if (rc == 0) return;
    if (rc == -EBUSY) {
        pending_enqueue(f);
        return;
    }
    if (!try_next(f, FAIL_ERROR, 502, strerror(-rc))) fail(f, 502, strerror(-rc));
}

/* Starts an attempt on a picked member; false when nothing could be picked. */
static bool start_attempt(fwd_t *f)
{
    ups_member_t m;
    pick_rc_t rc = pick(f, &m);
    if (rc == PICK_FULL) {
        pending_enqueue(f);
        return true;
    }
    if (rc == PICK_NONE) return false;
    launch(f, &m, false);
    return true;
}

/* After a failed attempt: another one, if the policy, the budget and the
 * servers allow. Returns true when a new attempt took over. */
static bool try_next(fwd_t *f, fail_kind_t kind, int status, const char *why)
{
    if (!f->mem.peer || !may_retry(f, kind, status)) return false;
    bool stale = stale_pooled(f, kind);
    ups_member_t m;
    if (stale) {
        m = f->mem; /* the same server, on a fresh connection */
    } else if (pick(f, &m) != PICK_OK) {
        return false;
    }
    pt_log_info("upstream %s: %s, retrying on %s", f->mem.peer->name, why, m.peer->name);
    ups_peer_ref(m.peer); /* m may be the attempt's own member, released below */
    if (!stale) attempt_result(f, kind != FAIL_STATUS || status >= 500);
    if (f->uc) {
        ups_conn_t *uc = f->uc;
        f->uc = NULL;
        ups_pool_release(ups_worker(f->r->worker), uc, f->g, false);
    }
    bool was_retry = f->is_retry;
    attempt_release(f);
    if (stale) {
        f->stale_retry_used = true;
        f->ntried--; /* the same peer is listed again by the new attempt */
    } else {
        atomic_fetch_add_explicit(&f->gs->retries, 1, memory_order_relaxed);
    }
    if (was_retry || !stale) {
        f->is_retry = true;
        atomic_fetch_add_explicit(&f->gs->active_retries, 1, memory_order_relaxed);
    }
    f->ever_sent |= f->head_sent > 0;
    f->head_sent = 0;
    f->len = f->pos = f->last_len = 0;
    f->got_bytes = false;
    launch(f, &m, stale);
    ups_peer_unref(m.peer);
    return true;
}

static void retry_or_fail(fwd_t *f, fail_kind_t kind, int status, const char *why)
{
    if (try_next(f, kind, status, why)) return;
    fail(f, status, why);
}

/* Opens (or takes from the pool) a connection to m and starts sending.
 * Returns 0, -EBUSY when max_connections is reached, or -errno. */
static int connect_member(fwd_t *f, const ups_member_t *m, bool fresh)
{
    pt_request_t *r = f->r;
    ups_worker_t *uw = ups_worker(r->worker);
    ups_conn_t *uc = fresh ? NULL : ups_pool_take(uw, m);
    if (!uc && f->g->max_connections &&
        atomic_load_explicit(&f->gs->conns, memory_order_relaxed) >= f->g->max_connections &&
        !ups_pool_evict_one(uw, f->gs))
        return -EBUSY;
    f->tries++;
    attempt_claim(f, m);
    /* both are 64-byte buffers; a plain copy (snprintf showed in profiles) */
    _Static_assert(sizeof(r->upstream_addr) == sizeof(m->peer->name), "address buffer sizes");
    memcpy(r->upstream_addr, m->peer->name, sizeof(m->peer->name));
    f->pp_len = 0;
    if (uc) {
        pt_metric_inc(uw->m->reqs_reused);
        f->state = F_SEND;
        f->ready_us = f->attempt_t0;
    } else {
        int fd = pt_socket_connect(&m->peer->addr);
        if (fd < 0) return fd;
        uc = calloc(1, sizeof(*uc));
        if (!uc) {
            close(fd);
            return -ENOMEM;
        }
        uc->uw = uw;
        uc->addr = m->peer->addr;
        uc->pp = m->pp;
        uc->io.fd = fd;
        pt_timer_init(&uc->idle_timer, NULL, uc);
        uc->io.cb = on_upstream_io;
        uc->io.data = f;
        if (pt_io_start(r->worker->loop, &uc->io) < 0) {
            int err = errno;
            close(fd);
            free(uc);
            return -err;
        }
        uc->peer = m->peer;
        ups_peer_ref(uc->peer);
        atomic_fetch_add_explicit(&uc->peer->conns, 1, memory_order_relaxed);
        uc->gs = f->gs;
        atomic_fetch_add_explicit(&uc->gs->conns, 1, memory_order_relaxed);
        pt_metric_inc(uw->m->reqs_new);
        f->state = F_CONNECT;
        if (m->pp != PP_NONE) {
            const pt_addr_t *src = pt_req_proxy_src(r) ? pt_req_proxy_src(r) : pt_req_peer(r);
            pt_addr_t dst;
            dst.len = sizeof(dst.ss);
            if (getsockname(pt_req_tunnel_fd(r), (struct sockaddr *)&dst.ss, &dst.len) < 0) dst = *src;
            int n = m->pp == PP_V1 ? pt_pp_build_v1(f->pp, sizeof(f->pp), src, &dst)
                                   : pt_pp_build_v2(f->pp, sizeof(f->pp), src, &dst);
            f->pp_len = n > 0 ? (size_t)n : 0;
        }
    }
    uc->io.cb = on_upstream_io;
    uc->io.data = f;
    uc->fwd = f;
    f->uc = uc;
    uc->nreq++;
    arm(f);
    fwd_step(f);
    return 0;
}

/* ---- waiting for a slot (max_conns, max_connections) ---- */

#define PENDING_POLL_MS 10

static void pending_unlink(ups_worker_t *uw, ups_pending_t *p)
{
    if (p->prev) p->prev->next = p->next;
    else uw->pending_head = p->next;
    if (p->next) p->next->prev = p->prev;
    else uw->pending_tail = p->prev;
    p->prev = p->next = NULL;
    p->queued = false;
    atomic_fetch_sub_explicit(&p->gs->pending, 1, memory_order_relaxed);
}

static void pending_remove(fwd_t *f)
{
    ups_pending_t *p = &f->pend;
    if (!p->queued) return;
    pt_timer_stop(f->r->worker->loop, &p->timer);
    pending_unlink(ups_worker(f->r->worker), p);
}

/* A slot may be free: try again; stay queued while still full. */
static void pending_retry(fwd_t *f)
{
    pending_remove(f);
    f->state = F_CONNECT;
    if (!start_attempt(f)) {
        overflow(f, "no server available");
    }
}

static void on_pending_timer(pt_timer_t *t)
{
    fwd_t *f = t->data;
    if (pt_time_mono_us() >= f->pend.deadline_us) {
        pending_remove(f);
        overflow(f, "timed out waiting for a free connection slot");
        return;
    }
    pending_retry(f);
}

static void pending_enqueue(fwd_t *f)
{
    ups_worker_t *uw = ups_worker(f->r->worker);
    ups_pending_t *p = &f->pend;
    if (!p->deadline_us) {
        if (atomic_load_explicit(&f->gs->pending, memory_order_relaxed) >= f->g->max_pending) {
            overflow(f, "every server is at its connection limit");
            return;
        }
        p->deadline_us = pt_time_mono_us() + f->g->pending_timeout_ms * 1000;
    }
    p->f = f;
    p->gs = f->gs;
    p->queued = true;
    p->next = NULL;
    p->prev = uw->pending_tail;
    if (uw->pending_tail) uw->pending_tail->next = p;
    else uw->pending_head = p;
    uw->pending_tail = p;
    atomic_fetch_add_explicit(&f->gs->pending, 1, memory_order_relaxed);
    f->state = F_PENDING;
    pt_timer_stop(f->r->worker->loop, &f->timer);
    pt_timer_init(&p->timer, on_pending_timer, f);
    uint64_t now = pt_time_mono_us();
    uint64_t left_ms = p->deadline_us > now ? (p->deadline_us - now) / 1000 : 0;
    /* Slots freed by other workers are not announced: poll. */
    pt_timer_start(f->r->worker->loop, &p->timer, pt_min(left_ms, (uint64_t)PENDING_POLL_MS));
}

/* An attempt of gs ended in this worker: the oldest waiter of gs tries again. */
static void pending_wake(ups_worker_t *uw, const ups_gstate_t *gs)
{
    for (ups_pending_t *p = uw->pending_head; p; p = p->next) {
        if (p->gs != gs) continue;
        /* Not from inside the releasing exchange: on the next timer tick. */
        pt_timer_start(uw->w->loop, &p->timer, 0);
        return;
    }
}

void ups_pending_fail_all(ups_worker_t *uw)
{
    while (uw->pending_head) {
        fwd_t *f = uw->pending_head->f;
        pending_remove(f);
        overflow(f, "worker exiting");
    }
}

/* ---- sending ---- */

/* Writes pending request bytes. Returns 0 when all written, PT_AGAIN, or -errno. */
static int send_pending(fwd_t *f)
{
    for (;;) {
        struct iovec iov[5];
        int n = 0;
        size_t pp_left = f->head_sent < f->pp_len ? f->pp_len - f->head_sent : 0;
        size_t total_head = f->pp_len + f->head_len;
        if (pp_left) iov[n++] = (struct iovec){f->pp + f->head_sent, pp_left};
        if (f->head_sent < total_head) {
            size_t off = f->head_sent > f->pp_len ? f->head_sent - f->pp_len : 0;
            iov[n++] = (struct iovec){f->head + off, f->head_len - off};
        }
        if (f->chunk_hdr_sent < f->chunk_hdr_len)
            iov[n++] = (struct iovec){f->chunk_hdr + f->chunk_hdr_sent,
                                      f->chunk_hdr_len - f->chunk_hdr_sent};
        if (f->body_sent < f->body_len)
            iov[n++] = (struct iovec){(void *)(f->body_p + f->body_sent), f->body_len - f->body_sent};
        if (f->trailer_sent < f->trailer_len)
            iov[n++] = (struct iovec){(void *)(f->trailer + f->trailer_sent),
                                      f->trailer_len - f->trailer_sent};
        if (n == 0) return 0;
        ssize_t w = writev(f->uc->io.fd, iov, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                f->uc->io.writable = false;
                return PT_AGAIN;
            }
            return -errno;
        }
        size_t k = (size_t)w, step;
        step = pt_min(k, total_head - pt_min(f->head_sent, total_head));
        f->head_sent += step;
        k -= step;
        step = pt_min(k, f->chunk_hdr_len - f->chunk_hdr_sent);
        f->chunk_hdr_sent += step;
        k -= step;
        step = pt_min(k, f->body_len - f->body_sent);
        f->body_sent += step;
        k -= step;
        f->trailer_sent += pt_min(k, f->trailer_len - f->trailer_sent);
    }
}

static void on_client_body(pt_request_t *r);

/* Pulls the next piece of request body into the send slots. Returns 1 when
 * the body is complete, 0 when a piece was staged, PT_AGAIN, or -status. */
static int stage_body(fwd_t *f)
{
    pt_request_t *r = f->r;
    if (f->body_len) pt_req_body_consumed(r);
    f->body_p = NULL;
    f->body_len = f->body_sent = f->chunk_hdr_len = f->chunk_hdr_sent = 0;
    f->trailer_len = f->trailer_sent = 0;
    const char *p;
    size_t len;
    int rc = pt_req_read_body(r, &p, &len);
    if (rc == PT_AGAIN) {
        r->on_body = on_client_body;
        return PT_AGAIN;
    }
    if (rc < 0) return rc;
    if (rc == 1) {
        if (r->req_chunked) {
            f->trailer = "0\r\n\r\n";
            f->trailer_len = 5;
        }
        f->req_body_done = true;
        return 1;
    }
    f->req_body_started = true;
    f->body_p = p;
    f->body_len = len;
    if (r->req_chunked) {
        f->chunk_hdr_len = (size_t)snprintf(f->chunk_hdr, sizeof(f->chunk_hdr), "%zx\r\n", len);
        f->trailer = "\r\n";
        f->trailer_len = 2;
    }
    return 0;
}

static void send_request(fwd_t *f)
{
    pt_request_t *r = f->r;
    for (;;) {
        int rc = send_pending(f);
        if (f->state == F_CONNECT && f->head_sent > 0) {
            /* Loopback connects complete at once: the first write tells. */
            f->state = F_SEND;
            f->ready_us = pt_time_mono_us();
            r->upstream_connect_us = f->ready_us - f->t0;
        }
        if (rc == PT_AGAIN) {
            arm(f);
            return;
        }
        if (rc < 0) {
            retry_or_fail(f, FAIL_ERROR, 502, strerror(-rc));
            return;
        }
        if (f->req_body_done) break;
        rc = stage_body(f);
        if (rc == PT_AGAIN) {
            /* Waiting on the client: the client body timeout covers it. */
            pt_timer_stop(r->worker->loop, &f->timer);
            return;
        }
        if (rc < 0) {
            if (rc == -ECONNRESET) {
                fwd_cleanup(f, false);
                pt_req_abort(r);
                return;
            }
            int st = -rc >= 400 && -rc < 600 ? -rc : 400;
            fwd_cleanup(f, false);
            r->on_abort = NULL;
            pt_req_error(r, st, true);
            return;
        }
    }
    f->state = F_WAIT_HEAD;
    arm(f);
    fwd_read_response(f);
}

static void on_client_body(pt_request_t *r)
{
    fwd_t *f = r->handler_data;
    if (f->state == F_SEND) send_request(f);
}

/* ---- response ---- */

static bool no_body_status(int st) { return st < 200 || st == 204 || st == 304; }

static void finish_response(fwd_t *f)
{
    pt_request_t *r = f->r;
    bool reusable = f->reusable && f->req_body_done && f->pos == f->len && !f->until_close;
    fwd_cleanup(f, reusable);
    r->on_abort = NULL;
    pt_req_finish(r);
}

static void on_client_drain(pt_request_t *r)
{
    fwd_t *f = r->handler_data;
    if (f->state != F_BODY) return;
    if (f->cl_left == 0 && !f->chunked && !f->until_close) {
        finish_response(f);
        return;
    }
    if (f->chunked && f->dec.state == -1) {
        finish_response(f);
        return;
    }
    f->pos = f->len = 0;
    arm(f);
    fwd_read_response(f);
}

/* Relays buffered body bytes. Returns true if the caller may read more. */
static bool relay_body(fwd_t *f)
{
    pt_request_t *r = f->r;
    size_t avail = f->len - f->pos;
    const char *p = f->buf + f->pos;
    size_t n;
    bool last;
    if (f->chunked) {
        n = avail;
        ssize_t rc = pt_http_chunked_decode(&f->dec, f->buf + f->pos, &n);
        if (rc < 0 && rc != PT_AGAIN) {
            fail(f, 502, "invalid chunked encoding");
            return false;
        }
        last = rc >= 0;
        if (last) {
            if (rc > 0) f->reusable = false; /* junk after the body */
            f->dec.state = -1;
        }
        f->len = f->pos + n + (last ? (size_t)rc : 0);
        f->pos = f->len; /* everything decoded is handed over below */
    } else if (f->until_close) {
        n = avail;
        last = false;
        f->pos = f->len;
    } else {
        n = (size_t)pt_min((int64_t)avail, f->cl_left);
        f->cl_left -= (int64_t)n;
        last = f->cl_left == 0;
        f->pos += n;
        if (f->pos < f->len) f->reusable = false; /* the origin sent more than it said */
    }
    if (n == 0 && !last) return true;
    int rc = pt_req_send_body(r, p, n, last);
    if (rc == PT_AGAIN) {
        r->on_drain = on_client_drain;
        pt_timer_stop(r->worker->loop, &f->timer); /* the client's send timeout runs now */
        return false;
    }
    if (rc < 0) {
        fwd_cleanup(f, false);
        r->on_abort = NULL;
        pt_req_abort(r);
        return false;
    }
    if (last) {
        finish_response(f);
        return false;
    }
    f->pos = f->len = 0;
    return true;
}

static void start_tunnel(fwd_t *f);

static int send_response_head(fwd_t *f)
{
    pt_request_t *r = f->r;
    pt_http_resp_t *h = &f->resp;
    bool upgrade = h->status == 101;
    size_t nh = pt_resp_strip_hop(h->headers, h->nheaders, upgrade);
    bool head_req = r->h.method_id == PT_HTTP_HEAD;
    bool nobody = head_req || no_body_status(h->status);
    f->chunked = !nobody && (h->flags & PT_HTTP_F_CHUNKED);
    f->cl_left = nobody ? 0 : h->content_length;
    f->until_close = !nobody && !f->chunked && h->content_length < 0;
    f->reusable = !(h->flags & PT_HTTP_F_CLOSE) && !f->until_close && h->version >= 11;
    if (f->chunked) pt_http_chunked_init(&f->dec);
    pt_response_t resp = {h->status, h->headers, nh,
                          f->chunked || f->until_close ? -1 : h->content_length, nobody, upgrade};
    if (head_req && h->content_length >= 0) resp.content_length = h->content_length;
    if (nobody && !head_req) resp.content_length = h->status == 204 || h->status == 304 ? -1 : 0;
    return pt_req_send_head(r, &resp);
}

static void handle_head(fwd_t *f)
{
    pt_request_t *r = f->r;
    int rc = pt_http_parse_response(f->buf + f->pos, f->len - f->pos, f->last_len, &f->resp,
                                    &(pt_http_limits_t){f->bufsize, f->bufsize, MAX_RESP_HEADERS});
    f->last_len = f->len - f->pos;
    if (rc == PT_AGAIN) {
        if (f->len == f->bufsize) fail(f, 502, "response head too large");
        return;
    }
    if (rc < 0) {
        fail(f, 502, "invalid response head");
        return;
    }
    if (f->resp.status >= 100 && f->resp.status < 200 && f->resp.status != 101) {
        /* Interim responses: we answered 100 Continue ourselves. */
        f->pos += (size_t)rc;
        f->last_len = 0;
        if (f->pos == f->len) f->pos = f->len = 0;
        return;
    }
    if (f->resp.status == 101 && !(r->h.flags & PT_HTTP_F_UPGRADE)) {
        fail(f, 502, "101 Switching Protocols without an upgrade request");
        return;
    }
    uint64_t now = pt_time_mono_us();
    r->upstream_header_us = now - f->t0;
    /* The balancer judges the origin's answer time, not one connect (peak
     * EWMA would remember a slow first connect for seconds). */
    ups_ewma_observe(f->mem.peer, (now - (f->ready_us ? f->ready_us : f->attempt_t0)) * 1000,
                     (int64_t)now);
    ups_stats_latency(f->gs, now - f->attempt_t0);
    int st = f->resp.status;
    if (status_flag(st)) {
        char why[32];
        snprintf(why, sizeof(why), "status %d", st);
        if (try_next(f, FAIL_STATUS, st, why)) return;
    }
    attempt_result(f, st >= 500);
    f->resp_status = st;
    f->pos += (size_t)rc;
    f->last_len = 0;
    if (send_response_head(f) < 0) {
        fail(f, 502, "out of memory");
        return;
    }
    if (f->resp.status == 101) {
        start_tunnel(f);
        return;
    }
    f->state = F_BODY;
    if (f->cl_left == 0 && !f->chunked && !f->until_close) {
        int wr = pt_req_flush(r);
        if (f->pos < f->len) f->reusable = false;
        if (wr == PT_AGAIN) {
            r->on_drain = on_client_drain;
            return;
        }
        if (wr < 0) {
            fwd_cleanup(f, false);
            r->on_abort = NULL;
            pt_req_abort(r);
            return;
        }
        finish_response(f);
        return;
    }
    if (f->pos < f->len) relay_body(f);
    else if (pt_req_flush(r) == PT_AGAIN) {
        r->on_drain = on_client_drain;
        return;
    }
}

static void fwd_read_response(fwd_t *f)
{
    pt_request_t *r = f->r;
    while (f->state == F_WAIT_HEAD || f->state == F_BODY) {
        if (f->state == F_BODY && r->nout > 0) return; /* back-pressure */
        if (!f->uc->io.readable) return;
        if (!f->buf) {
            f->bufsize = r->loc->s.proxy_buffer_size;
            f->buf = pt_worker_buf_get(r->worker, f->bufsize);
            if (!f->buf) {
                fail(f, 502, "out of memory");
                return;
            }
        }
        if (f->len == f->bufsize && f->pos > 0) {
            memmove(f->buf, f->buf + f->pos, f->len - f->pos);
            f->len -= f->pos;
            f->pos = 0;
        }
        size_t space = f->bufsize - f->len;
        ssize_t n = read(f->uc->io.fd, f->buf + f->len, space);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                f->uc->io.readable = false;
                return;
            }
            if (f->state == F_WAIT_HEAD && f->len == 0)
                retry_or_fail(f, FAIL_ERROR, 502, strerror(errno));
            else
                fail(f, 502, strerror(errno));
            return;
        }
        if (n == 0) {
            if (f->state == F_BODY && f->until_close) {
                f->until_close = false;
                f->cl_left = 0;
                int rc = pt_req_send_body(r, NULL, 0, true);
                if (rc == PT_AGAIN) {
                    r->on_drain = on_client_drain;
                    return;
                }
                fwd_cleanup(f, false);
                r->on_abort = NULL;
                if (rc < 0)
                    pt_req_abort(r);
                else
                    pt_req_finish(r);
                return;
            }
            if (f->state == F_WAIT_HEAD && f->len == 0)
                retry_or_fail(f, FAIL_ERROR, 502, "connection closed before the response");
            else
                fail(f, 502, "connection closed prematurely");
            return;
        }
        if ((size_t)n < space) f->uc->io.readable = false;
        f->got_bytes = true;
        f->len += (size_t)n;
        arm(f);
        if (f->state == F_WAIT_HEAD) {
            handle_head(f);
            continue;
        }
        if (!relay_body(f)) return;
    }
}

/* ---- tunnel (after 101) ---- */

#define TUNNEL_BUF 16384

static void tunnel_close(fwd_t *f)
{
    pt_request_t *r = f->r;
    fwd_cleanup(f, false);
    r->on_abort = NULL;
    r->resp_close = true;
    pt_req_finish(r);
}

static bool pump(int from, int to, char *buf, size_t cap, size_t *len, size_t *pos, bool *eof,
                 pt_io_t *fio, pt_io_t *tio)
{
    for (;;) {
        if (*pos < *len) {
            ssize_t w = write(to, buf + *pos, *len - *pos);
            if (w < 0) {
                if (errno == EAGAIN) {
                    tio->writable = false;
                    return true;
                }
                if (errno == EINTR) continue;
                return false;
            }
            *pos += (size_t)w;
            continue;
        }
        *pos = *len = 0;
        if (*eof) return true;
        if (!fio->readable) return true;
        ssize_t n = read(from, buf, cap);
        if (n < 0) {
            if (errno == EAGAIN) {
                fio->readable = false;
                return true;
            }
            if (errno == EINTR) continue;
            return false;
        }
        if (n == 0) {
            *eof = true;
            shutdown(to, SHUT_WR);
            return true;
        }
        *len = (size_t)n;
    }
}

static void tunnel_step(fwd_t *f)
{
    pt_request_t *r = f->r;
    int cfd = pt_req_tunnel_fd(r);
    pt_io_t *cio = pt_req_client_io(r);
    pt_io_t *uio = &f->uc->io;
    if (!pump(cfd, uio->fd, f->cbuf, TUNNEL_BUF, &f->clen, &f->cpos, &f->c_eof, cio, uio) ||
        !pump(uio->fd, cfd, f->buf, f->bufsize, &f->len, &f->pos, &f->u_eof, uio, cio) ||
        (f->c_eof && f->u_eof)) {
        tunnel_close(f);
        return;
    }
    arm(f);
}

static void on_tunnel_client(pt_request_t *r, unsigned events)
{
    pt_unused(events);
    tunnel_step(r->handler_data);
}

static void start_tunnel(fwd_t *f)
{
    pt_request_t *r = f->r;
    f->state = F_TUNNEL;
    r->tunnel = true;
    f->cbuf = malloc(TUNNEL_BUF);
    if (!f->cbuf || pt_req_flush(r) < 0) {
        tunnel_close(f);
        return;
    }
    /* Client bytes that came after the request head go first. */
    f->clen = pt_req_take_pending(r, f->cbuf, TUNNEL_BUF);
    f->cpos = 0;
    pt_req_set_tunnel_cb(r, on_tunnel_client);
    /* Origin bytes after the 101 head are still in f->buf[pos..len). */
    pt_req_client_io(r)->readable = true;
    tunnel_step(f);
}

/* ---- events ---- */

static void fwd_step(fwd_t *f)
{
    switch (f->state) {
    case F_CONNECT:
    case F_SEND:
        send_request(f);
        break;
    case F_WAIT_HEAD:
    case F_BODY:
        fwd_read_response(f);
        break;
    case F_TUNNEL:
        tunnel_step(f);
        break;
    case F_PENDING:
    case F_DONE:
        break;
    }
}

static void on_upstream_io(pt_io_t *io, unsigned events)
{
    fwd_t *f = io->data;
    if (f->state == F_DONE) return;
    if (f->state == F_CONNECT) {
        if (!(events & (PT_EV_WRITE | PT_EV_ERROR))) return;
        int err = 0;
        socklen_t el = sizeof(err);
        getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            retry_or_fail(f, FAIL_ERROR, 502, strerror(err));
            return;
        }
        f->ready_us = pt_time_mono_us();
        f->r->upstream_connect_us = f->ready_us - f->t0;
        f->state = F_SEND;
    }
    if (f->state == F_SEND && f->req_body_done == false && !(events & PT_EV_WRITE) &&
        (events & PT_EV_READ)) {
        /* An early response while we still send the body: read it. */
        f->state = F_WAIT_HEAD;
        f->r->on_body = NULL;
        fwd_read_response(f);
        return;
    }
    fwd_step(f);
}

static void on_timeout(pt_timer_t *t)
{
    fwd_t *f = t->data;
    if (f->state == F_TUNNEL) {
        tunnel_close(f);
        return;
    }
    if (f->state == F_PENDING || f->state == F_DONE) return;
    uint64_t try_ms = f->r->loc->s.proxy_try_timeout;
    bool try_expired = try_ms && f->state <= F_WAIT_HEAD &&
                       (pt_time_mono_us() - f->attempt_t0) / 1000 >= try_ms;
    const char *why = try_expired              ? "try timed out"
                      : f->state == F_CONNECT ? "connect timed out"
                                               : "timed out";
    if (f->state <= F_WAIT_HEAD && !f->got_bytes) {
        uint64_t now = pt_time_mono_us();
        if (f->mem.peer) ups_ewma_observe(f->mem.peer, (now - f->attempt_t0) * 1000, (int64_t)now);
        retry_or_fail(f, FAIL_TIMEOUT, 504, why);
        return;
    }
    fail(f, 504, why);
}

/* Maglev key: the group's template expanded for r. */
static uint64_t request_hash(pt_request_t *r, const ups_group_t *g)
{
    size_t len = 0;
    const char *k = pt_tpl_expand(r, &g->hash_key, &len);
    return k ? ups_hash_key(k, len) : 0;
}

void ups_forward(pt_request_t *r)
{
    const ups_group_t *g = r->loc->handler_conf;
    fwd_t *f = pt_pool_calloc(r->pool, 1, sizeof(*f));
    if (!f || !g->state) {
        pt_req_error(r, 500, true);
        return;
    }
    f->r = r;
    f->g = g;
    f->gs = g->state;
    f->t0 = pt_time_mono_us();
    f->hdrs = pt_pool_alloc(r->pool, MAX_RESP_HEADERS * sizeof(pt_http_hdr_t));
    if (!f->hdrs) {
        pt_req_error(r, 500, true);
        return;
    }
    f->resp.headers = f->hdrs;
    pt_timer_init(&f->timer, on_timeout, f);
    r->handler_data = f;
    r->on_abort = on_abort;
    f->head = pt_req_forward_head(r, &f->head_len);
    if (!f->head) {
        pt_req_error(r, 500, true);
        return;
    }
    atomic_fetch_add_explicit(&f->gs->requests, 1, memory_order_relaxed);
    if (g->max_requests &&
        atomic_load_explicit(&f->gs->active, memory_order_relaxed) >= g->max_requests) {
        overflow(f, "max_requests reached");
        return;
    }
    atomic_fetch_add_explicit(&f->gs->active, 1, memory_order_relaxed);
    f->counted = true;
    if (g->lb == UPS_LB_HASH) f->hash = request_hash(r, g);
    if (start_attempt(f)) return;
    atomic_fetch_add_explicit(&f->gs->no_server, 1, memory_order_relaxed);
    pt_log_error("upstream %s: no server available (all down, ejected or drained), answering "
                 "503 (request %.*s)",
                 g->name, (int)r->request_id_len, r->request_id);
    f->resp_status = 503;
    fwd_cleanup(f, false);
    r->on_abort = NULL;
    pt_req_error_retry_after(r, 503, 1);
}
