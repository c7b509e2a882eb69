/*
 * Downstream HTTP/1.1 connections: accept, read and parse request heads,
 * keep-alive and pipelining, timeouts, and handing each request to its
 * location's action. The response writer and body reader live in
 * request.c; this file owns the connection's life.
 *
 * Buffers: a connection holds its read buffer only while it has bytes in
 * it or a request is active; an idle keep-alive connection holds nothing
 * but this struct, which keeps memory per idle connection small.
 */
#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/proxy_int.h"
#include "proxy/request_int.h"

static void conn_on_io(pt_io_t *io, unsigned events);
static void conn_on_timer(pt_timer_t *t);
static void conn_read_head(pt_conn_t *c);

static const pt_http_settings_t *conn_settings(const pt_conn_t *c)
{
    if (c->lc && c->lc->default_server) return &c->lc->default_server->s;
    return &c->snap->http;
}

static void conn_free(void *arg) { free(arg); }

static void conn_release_buf(pt_conn_t *c)
{
    if (!c->rbuf) return;
    pt_worker_buf_put(c->w, c->rbuf, c->rsize);
    c->rbuf = NULL;
    c->rsize = c->rlen = c->rpos = c->last_len = 0;
}

static void conn_unlink(pt_conn_t *c)
{
    struct pt_worker_priv *p = c->w->priv;
    if (c->prev)
        c->prev->next = c->next;
    else
        p->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* Keeps portico_connections_idle right across state changes. */
static void conn_set_state(pt_conn_t *c, conn_state_t st)
{
    bool idle = st == CONN_IDLE || st == CONN_PROXY_HEADER;
    if (idle != c->counted_idle) {
        pt_metric_gauge_add(c->w->priv->m->conns_idle, idle ? 1 : -1);
        c->counted_idle = idle;
    }
    c->state = st;
}

void pt_conn_close(pt_conn_t *c) { pt_conn_close_why(c, PT_CLOSE_ERROR); }

void pt_conn_close_why(pt_conn_t *c, pt_close_reason_t reason)
{
    if (c->state == CONN_CLOSED) return;
    pt_metric_inc(c->w->priv->m->conns_closed[reason]);
    if (c->req) pt_request_abort_internal(c->req);
    pt_timer_stop(c->w->loop, &c->timer);
    pt_io_stop(c->w->loop, &c->io);
    close(c->io.fd);
    conn_set_state(c, CONN_CLOSED);
    conn_unlink(c);
    c->w->nconns--;
    pt_metric_gauge_add(c->w->priv->m->conns_active, -1);
    conn_release_buf(c);
    pt_snapshot_unref(c->snap);
    c->snap = NULL;
    /* The io may still be in this iteration's event batch. */
    if (pt_loop_defer(c->w->loop, conn_free, c) < 0) {
        /* Leaking one struct beats a use-after-free. */
        pt_log_error("out of memory deferring a connection free");
    }
}

/* Refreshes the config a new request head is parsed with. */
static int conn_take_snapshot(pt_conn_t *c)
{
    if (c->snap != c->w->snap) {
        pt_snapshot_unref(c->snap);
        c->snap = pt_snapshot_ref(c->w->snap);
        c->lc = pt_listen_lookup(c->snap, &c->local);
    }
    if (!c->lc) {
        /* The listener was removed by a reload after we accepted. */
        return -ENOENT;
    }
    return 0;
}

static void conn_arm_idle(pt_conn_t *c)
{
    const pt_http_settings_t *s = conn_settings(c);
    uint64_t ms = c->rlen > c->rpos || c->nreq == 0 ? s->client_header_timeout : s->keepalive_timeout;
    pt_timer_start(c->w->loop, &c->timer, ms);
}

void pt_conn_accept_all(pt_worker_t *w, int lfd, const pt_addr_t *local, bool proxy_protocol)
{
    for (;;) {
        pt_addr_t peer;
        peer.len = sizeof(peer.ss);
        int fd = accept4(lfd, (struct sockaddr *)&peer.ss, &peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN)
                pt_log_error("accept: %s", strerror(errno));
            return;
        }
        if (w->draining || w->nconns >= (uint64_t)w->snap->main.worker_connections) {
            if (!w->draining) pt_log_warn("worker_connections (%d) reached, closing a new connection",
                                          w->snap->main.worker_connections);
            close(fd);
            continue;
        }
        pt_conn_t *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->w = w;
        c->peer = peer;
        c->local = *local;
        c->io.fd = fd;
        c->io.cb = conn_on_io;
        c->io.data = c;
        c->state = CONN_CLOSED; /* not counted anywhere yet */
        pt_timer_init(&c->timer, conn_on_timer, c);
        c->snap = pt_snapshot_ref(w->snap);
        c->lc = pt_listen_lookup(c->snap, &c->local);
        if (pt_io_start(w->loop, &c->io) < 0) {
            pt_snapshot_unref(c->snap);
            close(fd);
            free(c);
            continue;
        }
        struct pt_worker_priv *p = w->priv;
        c->next = p->conns;
        if (p->conns) p->conns->prev = c;
        p->conns = c;
        w->nconns++;
        pt_metric_inc(p->m->conns_total);
        pt_metric_gauge_add(p->m->conns_active, 1);
        conn_set_state(c, proxy_protocol ? CONN_PROXY_HEADER : CONN_IDLE);
        conn_arm_idle(c);
        /* Data often arrives with the accept (TCP_DEFER_ACCEPT-like): try now. */
        c->io.readable = true;
        conn_read_head(c);
    }
}

/* Ensures a read buffer with free space. Returns 0 or -ENOMEM. */
static int conn_ensure_buf(pt_conn_t *c)
{
    if (c->rbuf) return 0;
    size_t size = conn_settings(c)->limits.max_head;
    if (size < 16384) size = 16384;
    c->rbuf = pt_worker_buf_get(c->w, size);
    if (!c->rbuf) return -ENOMEM;
    c->rsize = size;
    return 0;
}

/* Reads what the socket has. Returns bytes read, 0 on EOF, PT_AGAIN, -errno. */
static ssize_t conn_read(pt_conn_t *c)
{
    size_t space = c->rsize - c->rlen;
    if (space == 0) return -ENOBUFS;
    ssize_t n = read(c->io.fd, c->rbuf + c->rlen, space);
    if (n > 0) {
        c->rlen += (size_t)n;
        /* A short read drained the socket: wait for the next edge. */
        if ((size_t)n < space) c->io.readable = false;
        return n;
    }
    if (n == 0) return 0;
    if (errno == EAGAIN || errno == EINTR) {
        c->io.readable = false;
        return PT_AGAIN;
    }
    return -errno;
}

static int conn_parse_proxy_header(pt_conn_t *c)
{
    int rc = pt_pp_parse(c->rbuf + c->rpos, c->rlen - c->rpos, &c->pp_src, &c->pp_dst);
    if (rc == PT_AGAIN) return PT_AGAIN;
    if (rc < 0) {
        char ip[64];
        pt_addr_format(&c->peer, ip, sizeof(ip));
        pt_log_warn("invalid PROXY protocol header from %s", ip);
        return rc;
    }
    c->has_pp = c->pp_src.len > 0;
    c->rpos += (size_t)rc;
    conn_set_state(c, CONN_IDLE);
    return 0;
}

/* Tries to parse a head from the buffer; starts the request when complete. */
static bool conn_try_parse(pt_conn_t *c)
{
    pt_worker_t *w = c->w;
    struct pt_worker_scratch *sc = pt_worker_scratch(w);
    const pt_http_settings_t *s = conn_settings(c);
    sc->req.headers = sc->headers;
    size_t avail = c->rlen - c->rpos;
    int rc = pt_http_parse_request(c->rbuf + c->rpos, avail, c->last_len, &sc->req, &s->limits);
    c->last_len = avail;
    if (rc == PT_AGAIN) {
        if (c->rlen == c->rsize) {
            /* Buffer full without a complete head: the limits said so. */
            rc = c->rpos == 0 ? -431 : PT_AGAIN;
            if (rc == PT_AGAIN) {
                memmove(c->rbuf, c->rbuf + c->rpos, avail);
                c->rlen = avail;
                c->rpos = 0;
                return false;
            }
        } else {
            return false;
        }
    }
    pt_timer_stop(w->loop, &c->timer);
    conn_set_state(c, CONN_ACTIVE);
    c->last_len = 0;
    pt_request_start(c, rc);
    return true;
}

static void conn_read_head(pt_conn_t *c)
{
    while (c->state == CONN_IDLE || c->state == CONN_PROXY_HEADER) {
        if (conn_take_snapshot(c) < 0) {
            pt_conn_close(c);
            return;
        }
        if (c->rlen > c->rpos) {
            if (c->state == CONN_PROXY_HEADER) {
                int rc = conn_parse_proxy_header(c);
                if (rc < 0 && rc != PT_AGAIN) {
                    pt_conn_close(c);
                    return;
                }
                if (rc == 0) continue;
            } else if (conn_try_parse(c)) {
                return;
            }
        }
        if (!c->io.readable) {
            /* The timer keeps running from the first byte of the head:
             * client_header_timeout bounds the whole head (slowloris). */
            if (!pt_timer_armed(&c->timer)) conn_arm_idle(c);
            /* Nothing buffered: give the buffer back while idle. */
            if (c->rlen == c->rpos) conn_release_buf(c);
            return;
        }
        if (conn_ensure_buf(c) < 0) {
            pt_conn_close(c);
            return;
        }
        if (c->rlen == c->rpos) c->rlen = c->rpos = 0;
        ssize_t n = conn_read(c);
        if (n == PT_AGAIN) continue;
        if (n <= 0) {
            /* EOF or error between requests: a normal keep-alive close. */
            pt_conn_close_why(c, n == 0 || n == -ECONNRESET ? PT_CLOSE_CLIENT : PT_CLOSE_ERROR);
            return;
        }
        /* First bytes of a new head: switch from the idle to the header timeout. */
        if ((size_t)n == c->rlen - c->rpos) conn_arm_idle(c);
    }
}

static void conn_continue(void *arg)
{
    pt_conn_t *c = arg;
    if (c->state != CONN_IDLE) return;
    conn_read_head(c);
}

void pt_conn_request_done(pt_conn_t *c, bool keep)
{
    c->req = NULL;
    c->tunnel_cb = NULL;
    c->want_body = false;
    c->nreq++;
    if (!keep || c->close_after || c->w->draining) {
        pt_conn_close_why(c, c->w->draining ? PT_CLOSE_SHUTDOWN : PT_CLOSE_DONE);
        return;
    }
    /* Move pipelined bytes to the front; the old head is no longer used. */
    size_t left = c->rlen > c->next_pos ? c->rlen - c->next_pos : 0;
    if (left > 0) memmove(c->rbuf, c->rbuf + c->next_pos, left);
    c->rlen = left;
    c->rpos = 0;
    c->last_len = 0;
    conn_set_state(c, CONN_IDLE);
    conn_arm_idle(c);
    if (left > 0 || c->io.readable) {
        /* Parse at a safe point: we may be deep in an upstream callback. */
        if (pt_loop_defer(c->w->loop, conn_continue, c) < 0) pt_conn_close(c);
    } else {
        conn_release_buf(c);
    }
}

static void conn_on_io(pt_io_t *io, unsigned events)
{
    pt_conn_t *c = io->data;
    if (c->state == CONN_CLOSED) return;
    if (c->state != CONN_ACTIVE) {
        if (events & PT_EV_READ) conn_read_head(c);
        return;
    }
    pt_request_on_io(c->req, events);
}

static void conn_on_timer(pt_timer_t *t)
{
    pt_conn_t *c = t->data;
    if (c->state == CONN_ACTIVE && c->req) {
        pt_request_on_timeout(c->req);
        return;
    }
    bool started = c->rlen > c->rpos && c->rbuf;
    if (c->state == CONN_IDLE && started) {
        /* A head started but did not finish in time: 408, as nginx logs it. */
        static const char resp[] = "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                                   "Content-Length: 0\r\n\r\n";
        ssize_t n = write(c->io.fd, resp, sizeof(resp) - 1);
        pt_unused(n);
    }
    pt_conn_close_why(c, started || c->state == CONN_PROXY_HEADER ? PT_CLOSE_TIMEOUT
                                                                  : PT_CLOSE_IDLE_TIMEOUT);
}

void pt_conn_drain_all(pt_worker_t *w)
{
    pt_conn_t *c = w->priv->conns;
    while (c) {
        pt_conn_t *next = c->next;
        if (c->state != CONN_ACTIVE) pt_conn_close_why(c, PT_CLOSE_SHUTDOWN);
        c = next;
    }
}

void pt_conn_close_all(pt_worker_t *w)
{
    while (w->priv->conns) pt_conn_close_why(w->priv->conns, PT_CLOSE_SHUTDOWN);
}
