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

typedef enum { F_CONNECT, F_SEND, F_WAIT_HEAD, F_BODY, F_TUNNEL, F_DONE } fstate_t;

#define MAX_RESP_HEADERS 256

typedef struct fwd {
    pt_request_t *r;
    const ups_group_t *g;
    const ups_server_t *srv;
    ups_conn_t *uc;
    fstate_t state;
    pt_timer_t timer;
    int tries;
    uint64_t t0;
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

static uint64_t settings_timeout(const fwd_t *f, fstate_t st)
{
    const pt_http_settings_t *s = &f->r->loc->s;
    if (st == F_CONNECT) return s->proxy_connect_timeout;
    if (st == F_SEND) return s->proxy_send_timeout;
    return s->proxy_read_timeout;
}

static void arm(fwd_t *f) { pt_timer_start(f->r->worker->loop, &f->timer, settings_timeout(f, f->state)); }

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
    pt_log_error("upstream %s: %s while %s (request %.*s, %.*s %.*s)", f->srv ? f->srv->name : "-",
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

static bool can_retry(const fwd_t *f)
{
    /* Nothing of the request body consumed, and a spare server or a fresh
     * connection to try (a reused one may have been closed by the origin). */
    return !f->got_bytes && !f->req_body_started && f->tries < 2 &&
           (f->uc->reused || f->g->nservers > 1);
}

static int connect_server(fwd_t *f, const ups_server_t *s);

static void retry_or_fail(fwd_t *f, int status, const char *why)
{
    if (f->uc && can_retry(f)) {
        bool was_reused = f->uc->reused;
        const ups_server_t *prev = f->srv;
        ups_conn_t *uc = f->uc;
        f->uc = NULL;
        ups_pool_release(ups_worker(f->r->worker), uc, f->g, false);
        const ups_server_t *next = was_reused ? prev : ups_select(f->r, f->g, prev);
        if (next) {
            pt_log_info("upstream %s: %s, retrying on %s", prev->name, why, next->name);
            f->head_sent = 0;
            f->len = f->pos = f->last_len = 0;
            if (connect_server(f, next) == 0) return;
        }
    }
    fail(f, status, why);
}

static int connect_server(fwd_t *f, const ups_server_t *s)
{
    pt_request_t *r = f->r;
    ups_worker_t *uw = ups_worker(r->worker);
    f->tries++;
    f->srv = s;
    /* both are 64-byte buffers; a plain copy (snprintf showed in profiles) */
    _Static_assert(sizeof(r->upstream_addr) == sizeof(s->name), "address buffer sizes");
    memcpy(r->upstream_addr, s->name, sizeof(s->name));
    ups_conn_t *uc = ups_pool_take(uw, s);
    f->pp_len = 0;
    if (uc) {
        pt_metric_inc(uw->m->reqs_reused);
        f->state = F_SEND;
    } else {
        int fd = pt_socket_connect(&s->addr);
        if (fd < 0) return fd;
        uc = calloc(1, sizeof(*uc));
        if (!uc) {
            close(fd);
            return -ENOMEM;
        }
        uc->uw = uw;
        uc->addr = s->addr;
        uc->pp = s->pp;
        uc->io.fd = fd;
        pt_timer_init(&uc->idle_timer, NULL, uc);
        uc->io.cb = on_upstream_io;
        uc->io.data = f;
        if (pt_io_start(r->worker->loop, &uc->io) < 0) {
            close(fd);
            free(uc);
            return -errno;
        }
        pt_metric_inc(uw->m->reqs_new);
        f->state = F_CONNECT;
        if (s->pp != PP_NONE) {
            const pt_addr_t *src = pt_req_proxy_src(r) ? pt_req_proxy_src(r) : pt_req_peer(r);
            pt_addr_t dst;
            dst.len = sizeof(dst.ss);
            if (getsockname(pt_req_tunnel_fd(r), (struct sockaddr *)&dst.ss, &dst.len) < 0) dst = *src;
            int n = s->pp == PP_V1 ? pt_pp_build_v1(f->pp, sizeof(f->pp), src, &dst)
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
            r->upstream_connect_us = pt_time_mono_us() - f->t0;
        }
        if (rc == PT_AGAIN) {
            arm(f);
            return;
        }
        if (rc < 0) {
            retry_or_fail(f, 502, strerror(-rc));
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
    r->upstream_header_us = pt_time_mono_us() - f->t0;
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
                retry_or_fail(f, 502, strerror(errno));
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
                retry_or_fail(f, 502, "connection closed before the response");
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
            retry_or_fail(f, 502, strerror(err));
            return;
        }
        f->r->upstream_connect_us = pt_time_mono_us() - f->t0;
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
    if (f->state == F_CONNECT) {
        retry_or_fail(f, 504, "connect timed out");
        return;
    }
    if (f->state == F_TUNNEL) {
        tunnel_close(f);
        return;
    }
    fail(f, 504, "timed out");
}

void ups_forward(pt_request_t *r)
{
    const ups_group_t *g = r->loc->handler_conf;
    fwd_t *f = pt_pool_calloc(r->pool, 1, sizeof(*f));
    if (!f) {
        pt_req_error(r, 500, true);
        return;
    }
    f->r = r;
    f->g = g;
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
    const ups_server_t *s = ups_select(r, g, NULL);
    int rc = connect_server(f, s);
    if (rc < 0) {
        f->srv = s;
        fail(f, 502, strerror(-rc));
    }
}
