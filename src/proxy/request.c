/*
 * The request context: start (route, client address, request id), the
 * response writer (an output queue of referenced segments flushed with
 * writev/sendfile), the request body reader, finish and abort, and the
 * built-in actions (return, static files).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <unistd.h>

#include "proxy/request_int.h"

/* ------------------------------------------------------------------ */
/* helpers                                                             */
/* ------------------------------------------------------------------ */

static const char *cached_date(pt_worker_t *w)
{
    struct pt_worker_scratch *sc = pt_worker_scratch(w);
    time_t now = (time_t)(pt_time_wall_ms() / 1000);
    if (now != sc->date_sec) {
        pt_http_date_format(now, sc->date);
        sc->date_sec = now;
    }
    return sc->date;
}

const pt_addr_t *pt_req_peer(const pt_request_t *r) { return &r->conn->peer; }
const char *pt_req_scheme(const pt_request_t *r)
{
    pt_unused(r);
    return "http";
}
uint16_t pt_req_local_port(const pt_request_t *r) { return pt_addr_port(&r->conn->local); }
const pt_addr_t *pt_req_proxy_src(const pt_request_t *r)
{
    return r->conn->has_pp ? &r->conn->pp_src : NULL;
}

/* The address of the immediate client: the PROXY source, else the socket peer. */
static const pt_addr_t *conn_client_addr(const pt_conn_t *c)
{
    return c->has_pp ? &c->pp_src : &c->peer;
}

static void set_client_ip(pt_request_t *r, const pt_addr_t *a)
{
    if (pt_addr_format_ip(a, r->client_ip, sizeof(r->client_ip)) < 0) strcpy(r->client_ip, "-");
    r->client_port = pt_addr_port(a);
}

/* set_real_ip_from / real_ip_header, as nginx's realip module does. */
static void apply_real_ip(pt_request_t *r)
{
    const pt_http_settings_t *s = &r->vhost->s;
    const pt_addr_t *peer = conn_client_addr(r->conn);
    set_client_ip(r, peer);
    if (!s->real_ip_header || s->real_ip_from.n == 0) return;
    if (!pt_cidr_list_match(&s->real_ip_from, &r->conn->peer)) return;
    if (strcmp(s->real_ip_header, "proxy_protocol") == 0) {
        if (r->conn->has_pp) set_client_ip(r, &r->conn->pp_src);
        return;
    }
    const pt_http_hdr_t *h =
        pt_http_find(r->h.headers, r->h.nheaders, s->real_ip_header, strlen(s->real_ip_header));
    if (!h) return;
    /* Walk the list from the right: the last untrusted hop is the client. */
    const char *v = h->value;
    size_t end = h->value_len;
    while (end > 0) {
        size_t start = end;
        while (start > 0 && v[start - 1] != ',') start--;
        size_t a = start, b = end;
        while (a < b && (v[a] == ' ' || v[a] == '\t')) a++;
        while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t')) b--;
        pt_addr_t addr;
        char tmp[64];
        if (b - a == 0 || b - a >= sizeof(tmp)) return;
        memcpy(tmp, v + a, b - a);
        tmp[b - a] = '\0';
        pt_cidr_t c;
        if (pt_cidr_parse(tmp, &c) < 0 || (c.family == AF_INET ? c.bits != 32 : c.bits != 128))
            return;
        memset(&addr, 0, sizeof(addr));
        if (c.family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&addr.ss;
            sin->sin_family = AF_INET;
            memcpy(&sin->sin_addr, c.addr, 4);
            addr.len = sizeof(*sin);
        } else {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&addr.ss;
            sin6->sin6_family = AF_INET6;
            memcpy(&sin6->sin6_addr, c.addr, 16);
            addr.len = sizeof(*sin6);
        }
        set_client_ip(r, &addr);
        r->client_port = 0;
        if (!s->real_ip_recursive || !pt_cidr_list_match(&s->real_ip_from, &addr)) return;
        end = start > 0 ? start - 1 : 0;
    }
}

static bool valid_request_id(const char *v, size_t len)
{
    if (len == 0 || len > 128) return false;
    for (size_t i = 0; i < len; i++)
        if (v[i] <= 32 || v[i] >= 127 || v[i] == '"' || v[i] == '\\') return false;
    return true;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void set_request_id(pt_request_t *r)
{
    const pt_http_settings_t *s = &r->vhost->s;
    if (s->request_id_header && s->real_ip_from.n > 0 &&
        pt_cidr_list_match(&s->real_ip_from, &r->conn->peer)) {
        const pt_http_hdr_t *h = pt_http_find(r->h.headers, r->h.nheaders, s->request_id_header,
                                              strlen(s->request_id_header));
        if (h && valid_request_id(h->value, h->value_len)) {
            r->request_id = h->value;
            r->request_id_len = h->value_len;
            return;
        }
    }
    char *id = pt_pool_alloc(r->pool, 33);
    if (!id) {
        r->request_id = "-";
        r->request_id_len = 1;
        return;
    }
    static const char hex[] = "0123456789abcdef";
    uint64_t a = xorshift(&r->worker->rng), b = xorshift(&r->worker->rng);
    for (int i = 0; i < 16; i++) {
        id[i] = hex[(a >> (i * 4)) & 15];
        id[16 + i] = hex[(b >> (i * 4)) & 15];
    }
    id[32] = '\0';
    r->request_id = id;
    r->request_id_len = 32;
}

void pt_request_identify(pt_request_t *r)
{
    apply_real_ip(r);
    set_request_id(r);
}

/* ------------------------------------------------------------------ */
/* output queue                                                        */
/* ------------------------------------------------------------------ */

static int out_push(pt_request_t *r, const char *p, size_t len, int fd, off_t off)
{
    if (len == 0) return 0;
    if (r->nout == PT_OUT_MAX_SEGS) return -ENOBUFS;
    r->out[r->nout++] = (pt_out_seg_t){p, len, fd, off};
    return 0;
}

static void out_consume(pt_request_t *r, size_t n)
{
    int i = 0;
    while (i < r->nout && n > 0) {
        pt_out_seg_t *s = &r->out[i];
        size_t k = n < s->len ? n : s->len;
        s->len -= k;
        n -= k;
        if (s->fd >= 0)
            s->off += (off_t)k;
        else
            s->p += k;
        if (s->len == 0) i++;
    }
    if (i > 0) {
        memmove(r->out, r->out + i, (size_t)(r->nout - i) * sizeof(r->out[0]));
        r->nout -= i;
    }
}

static int flush_once(pt_request_t *r, int fd)
{
    ssize_t n;
    if (r->out[0].fd >= 0) {
        off_t off = r->out[0].off;
        size_t len = r->out[0].len > (1u << 20) ? (1u << 20) : r->out[0].len;
        n = sendfile(fd, r->out[0].fd, &off, len);
        if (n == 0) return -EIO; /* file shrank under us */
    } else {
        struct iovec iov[PT_OUT_MAX_SEGS];
        int k = 0;
        while (k < r->nout && r->out[k].fd < 0) {
            iov[k].iov_base = (void *)r->out[k].p;
            iov[k].iov_len = r->out[k].len;
            k++;
        }
        n = writev(fd, iov, k);
    }
    if (n < 0) {
        if (errno == EAGAIN) return PT_AGAIN;
        if (errno == EINTR) return 0;
        return -errno;
    }
    r->bytes_sent += (uint64_t)n;
    out_consume(r, (size_t)n);
    return 0;
}

int pt_req_flush(pt_request_t *r)
{
    pt_conn_t *c = r->conn;
    while (r->nout > 0) {
        int rc = flush_once(r, c->io.fd);
        if (rc == PT_AGAIN) {
            c->io.writable = false;
            pt_timer_start(c->w->loop, &c->timer, r->loc ? r->loc->s.send_timeout : 60000);
            return PT_AGAIN;
        }
        if (rc < 0) return rc;
    }
    return 0;
}

static bool status_gets_add_header(int st)
{
    return st == 200 || st == 201 || st == 204 || st == 206 || st == 301 || st == 302 ||
           st == 303 || st == 304 || st == 307 || st == 308;
}

typedef struct head_writer {
    char *p;
    size_t len, cap;
    bool oom;
} head_writer_t;

static void hw_add(head_writer_t *hw, const char *s, size_t len)
{
    if (hw->len + len > hw->cap) {
        hw->oom = true;
        return;
    }
    memcpy(hw->p + hw->len, s, len);
    hw->len += len;
}

#define hw_lit(hw, lit) hw_add((hw), (lit), sizeof(lit) - 1)

static void hw_header(head_writer_t *hw, const char *n, size_t nl, const char *v, size_t vl)
{
    hw_add(hw, n, nl);
    hw_lit(hw, ": ");
    hw_add(hw, v, vl);
    hw_lit(hw, "\r\n");
}


/* Decides keep-alive for the response. */
static bool response_keeps_alive(pt_request_t *r)
{
    const pt_conn_t *c = r->conn;
    if (r->resp_close || c->close_after || c->w->draining) return false;
    if (r->h.flags & PT_HTTP_F_CLOSE) return false;
    if (r->loc && (r->loc->s.keepalive_timeout == 0 || c->nreq + 1 >= r->loc->s.keepalive_requests))
        return false;
    return true;
}

int pt_req_send_head(pt_request_t *r, const pt_response_t *resp)
{
    size_t cap = 512 + 64;
    for (size_t i = 0; i < resp->nheaders; i++)
        cap += resp->headers[i].name_len + resp->headers[i].value_len + 4;
    pt_array_t *adds = r->loc ? &r->loc->s.add_headers : NULL;
    size_t nadd = adds ? adds->n : 0;
    char **vals = NULL;
    size_t *vlens = NULL;
    if (nadd > 0) {
        vals = pt_pool_alloc(r->pool, nadd * sizeof(*vals));
        vlens = pt_pool_alloc(r->pool, nadd * sizeof(*vlens));
        if (!vals || !vlens) return -ENOMEM;
    }
    for (size_t i = 0; i < nadd; i++) {
        pt_header_op_t *op = pt_array_at(adds, pt_header_op_t, i);
        vals[i] = NULL;
        if (!op->always && !status_gets_add_header(resp->status)) continue;
        vals[i] = pt_tpl_expand(r, &op->value, &vlens[i]);
        if (!vals[i]) return -ENOMEM;
        cap += op->name_len + vlens[i] + 4;
    }
    head_writer_t hw = {pt_pool_alloc(r->pool, cap), 0, cap, false};
    if (!hw.p) return -ENOMEM;

    bool head_only = resp->no_body || r->h.method_id == PT_HTTP_HEAD;
    r->status = resp->status;
    char line[64];
    int ll;
    const char *reason = pt_http_reason(resp->status);
    char st[5] = {(char)('0' + resp->status / 100 % 10), (char)('0' + resp->status / 10 % 10),
                  (char)('0' + resp->status % 10), ' ', 0};
    hw_lit(&hw, "HTTP/1.1 ");
    hw_add(&hw, st, 4);
    hw_add(&hw, reason, strlen(reason));
    hw_lit(&hw, "\r\n");
    /* One pass: copy the fields and note the ones we would otherwise add. */
    const char *rid = r->loc ? r->loc->s.request_id_header : NULL;
    size_t rid_len = rid ? strlen(rid) : 0;
    bool have_date = false, have_server = false, have_rid = false;
    for (size_t i = 0; i < resp->nheaders; i++) {
        const pt_http_hdr_t *f = &resp->headers[i];
        hw_header(&hw, f->name, f->name_len, f->value, f->value_len);
        if (f->name_len == 4)
            have_date |= pt_strcaseeq_lit(f->name, 4, "date");
        else if (f->name_len == 6)
            have_server |= pt_strcaseeq_lit(f->name, 6, "server");
        if (f->name_len == rid_len) have_rid |= pt_strcaseeq(f->name, rid_len, rid, rid_len);
    }
    if (!have_date) hw_header(&hw, "Date", 4, cached_date(r->worker), 29);
    if (!have_server && (!r->loc || r->loc->s.server_tokens))
        hw_lit(&hw, "Server: portico/" PT_VERSION "\r\n");
    if (resp->upgrade) {
        hw_lit(&hw, "Connection: upgrade\r\n");
    } else {
        r->resp_chunked = false;
        if (resp->content_length >= 0 && !(resp->status == 304 || resp->status == 204 ||
                                           resp->status < 200)) {
            ll = (int)pt_fmt_u64(line, (uint64_t)resp->content_length);
            hw_lit(&hw, "Content-Length: ");
            hw_add(&hw, line, (size_t)ll);
            hw_lit(&hw, "\r\n");
        } else if (!head_only && resp->content_length < 0) {
            if (r->h.version >= 11)
                r->resp_chunked = true;
            else
                r->resp_close = true; /* HTTP/1.0: the close delimits the body */
        }
        if (r->resp_chunked) hw_lit(&hw, "Transfer-Encoding: chunked\r\n");
        bool keep = response_keeps_alive(r);
        if (!keep) {
            r->resp_close = true;
            hw_lit(&hw, "Connection: close\r\n");
        } else if (r->h.version < 11) {
            hw_lit(&hw, "Connection: keep-alive\r\n");
        }
    }
    if (r->request_id && rid && !have_rid)
        hw_header(&hw, rid, rid_len, r->request_id, r->request_id_len);
    for (size_t i = 0; i < nadd; i++) {
        if (!vals[i]) continue;
        pt_header_op_t *op = pt_array_at(adds, pt_header_op_t, i);
        if (vlens[i] == 0) continue; /* empty value: nginx sends nothing */
        hw_header(&hw, op->name, op->name_len, vals[i], vlens[i]);
    }
    hw_lit(&hw, "\r\n");
    if (hw.oom) return -ENOMEM;
    r->head_buf = hw.p;
    r->state = PT_REQ_BODY;
    r->head_only = head_only;
    r->bytes_sent = 0;
    r->head_len = hw.len;
    return out_push(r, hw.p, hw.len, -1, 0);
}

void pt_req_unsend_head(pt_request_t *r)
{
    if (r->state != PT_REQ_BODY || r->bytes_sent > 0) return;
    r->nout = 0;
    r->state = PT_REQ_HEAD;
    r->status = 0;
    r->resp_chunked = false;
    r->head_only = false;
}

/*
 * Queues one piece of body (memory when fd < 0, else a file range) with the
 * chunked framing the response needs, then writes. HEAD and bodiless
 * statuses queue nothing but still flush the head.
 */
static int send_piece(pt_request_t *r, const char *p, int fd, off_t off, size_t len, bool last)
{
    if (r->head_only) return pt_req_flush(r);
    bool chunked = r->resp_chunked;
    int rc = 0;
    if (chunked && len > 0) {
        int n = snprintf(r->chunk_hdr, sizeof(r->chunk_hdr), "%zx\r\n", len);
        rc = out_push(r, r->chunk_hdr, (size_t)n, -1, 0);
    }
    if (rc == 0) rc = out_push(r, p, len, fd, off);
    if (rc == 0 && chunked && len > 0) rc = out_push(r, "\r\n", 2, -1, 0);
    if (rc == 0 && chunked && last) rc = out_push(r, "0\r\n\r\n", 5, -1, 0);
    if (rc < 0) return rc;
    return pt_req_flush(r);
}

int pt_req_send_body(pt_request_t *r, const char *p, size_t len, bool last)
{
    return send_piece(r, p, -1, 0, len, last);
}

int pt_req_send_file(pt_request_t *r, int fd, off_t off, size_t len, bool last)
{
    return send_piece(r, NULL, fd, off, len, last);
}

/* ------------------------------------------------------------------ */
/* finish, abort, log                                                  */
/* ------------------------------------------------------------------ */

static void request_free(void *arg)
{
    pt_request_t *r = arg;
    pt_snapshot_t *snap = r->snap;
    pt_worker_pool_put(r->worker, r->pool);
    pt_snapshot_unref(snap);
}

static void request_account(pt_request_t *r)
{
    const pt_proxy_metrics_t *m = r->worker->priv->m;
    int cls = r->status / 100;
    if (cls < 1 || cls > 5 || r->aborted) cls = 0;
    pt_metric_inc(m->requests_by_class[cls]);
    if (r->loc) pt_route_stats_count(r->loc->stats, cls);
    pt_metric_observe(m->request_duration, (double)(pt_time_mono_us() - r->start_us) / 1e6);
    pt_metric_add(m->bytes_sent, r->bytes_sent);
    struct pt_worker_priv *p = r->worker->priv;
    if (p->alog && pt_alog_request(p->alog, r) && !pt_timer_armed(&p->alog_timer))
        pt_timer_start(r->worker->loop, &p->alog_timer, 200);
    r->worker->nrequests--;
}

static void request_end(pt_request_t *r)
{
    pt_conn_t *c = r->conn;
    request_account(r);
    if (pt_loop_defer(c->w->loop, request_free, r) < 0) request_free(r);
}

/* Discards an unread request body that is already buffered, so the
 * connection can be reused; false when the body is not all here. */
static bool discard_body(pt_request_t *r)
{
    while (!r->body_done) {
        const char *p;
        size_t len;
        pt_conn_t *c = r->conn;
        size_t avail = c->rlen - c->body_pos;
        if (avail == 0 && !r->req_chunked) return false;
        int rc = pt_req_read_body(r, &p, &len);
        if (rc == 1) return true;
        if (rc != 0) return false;
        pt_req_body_consumed(r);
    }
    return true;
}

void pt_req_finish(pt_request_t *r)
{
    pt_conn_t *c = r->conn;
    if (r->state == PT_REQ_DONE) return;
    r->state = PT_REQ_DONE;
    r->on_abort = NULL;
    pt_timer_stop(c->w->loop, &c->timer);
    bool keep = !r->resp_close && !r->tunnel;
    if (keep && !r->body_done) {
        /* Don't wait for a body nobody wants; read what's here or close. */
        c->want_body = false;
        keep = discard_body(r);
    }
    if (keep) c->next_pos = r->body_done ? c->next_pos : c->rlen;
    request_end(r);
    pt_conn_request_done(c, keep);
}

void pt_request_abort_internal(pt_request_t *r)
{
    if (r->state == PT_REQ_DONE) return;
    void (*cb)(pt_request_t *) = r->on_abort;
    r->on_abort = NULL;
    r->state = PT_REQ_DONE;
    if (cb) cb(r);
    if (r->status == 0) r->status = 499; /* client went away first (nginx's code) */
    r->aborted = true;
    request_end(r);
    r->conn->req = NULL;
}

void pt_req_abort(pt_request_t *r)
{
    r->on_abort = NULL;
    r->resp_close = true;
    pt_conn_close(r->conn);
}

void pt_req_finish_after(pt_request_t *r, int rc)
{
    if (rc == 0)
        pt_req_finish(r);
    else if (rc == PT_AGAIN)
        r->on_drain = pt_req_finish;
    else
        pt_req_abort(r);
}

/* Sends a complete small response whose body is copied into the pool. */
static void respond_with(pt_request_t *r, int status, pt_http_hdr_t *hdrs, size_t nh,
                         const char *body, size_t len, bool close)
{
    char *copy = NULL;
    if (len > 0) {
        copy = pt_pool_strndup(r->pool, body, len);
        if (!copy) {
            pt_req_abort(r);
            return;
        }
    }
    if (close) r->resp_close = true;
    pt_response_t resp = {status, hdrs, nh, (int64_t)len, false, false};
    if (pt_req_send_head(r, &resp) < 0) {
        pt_req_abort(r);
        return;
    }
    pt_req_finish_after(r, pt_req_send_body(r, copy, len, true));
}

void pt_req_respond(pt_request_t *r, int status, const char *ctype, const char *body,
                    size_t len, bool close)
{
    pt_http_hdr_t hdrs[1];
    size_t nh = 0;
    if (ctype) hdrs[nh++] = (pt_http_hdr_t){"Content-Type", 12, ctype, strlen(ctype)};
    respond_with(r, status, hdrs, nh, body, len, close);
}

/* The short HTML page of error and redirect responses (nginx's shape). */
static int status_page(char *buf, size_t size, int status)
{
    const char *reason = pt_http_reason(status);
    return snprintf(buf, size,
                    "<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n<center><h1>%d "
                    "%s</h1></center>\r\n<hr><center>portico</center>\r\n</body>\r\n</html>\r\n",
                    status, reason, status, reason);
}

void pt_req_error(pt_request_t *r, int status, bool close)
{
    char body[256];
    int n = status_page(body, sizeof(body), status);
    pt_req_respond(r, status, "text/html; charset=utf-8", body, (size_t)n, close);
}

void pt_req_error_retry_after(pt_request_t *r, int status, unsigned seconds)
{
    char body[256], ra[16];
    int n = status_page(body, sizeof(body), status);
    int rl = snprintf(ra, sizeof(ra), "%u", seconds);
    pt_http_hdr_t hdrs[2] = {{"Retry-After", 11, ra, (size_t)rl},
                             {"Content-Type", 12, "text/html; charset=utf-8", 24}};
    /* A request body not read yet cannot be skipped safely: close after. */
    respond_with(r, status, hdrs, 2, body, (size_t)n, !r->body_done);
}

void pt_req_redirect(pt_request_t *r, int status, const char *location, size_t len)
{
    char body[256];
    int n = status_page(body, sizeof(body), status);
    pt_http_hdr_t hdrs[2] = {{"Location", 8, location, len},
                             {"Content-Type", 12, "text/html; charset=utf-8", 24}};
    respond_with(r, status, hdrs, 2, body, (size_t)n, false);
}

/* ------------------------------------------------------------------ */
/* tunnels                                                             */
/* ------------------------------------------------------------------ */

int pt_req_tunnel_fd(pt_request_t *r) { return r->conn->io.fd; }

pt_io_t *pt_req_client_io(pt_request_t *r) { return &r->conn->io; }

void pt_req_set_tunnel_cb(pt_request_t *r, void (*cb)(pt_request_t *r, unsigned events))
{
    r->conn->tunnel_cb = cb;
    pt_timer_stop(r->conn->w->loop, &r->conn->timer);
}

size_t pt_req_take_pending(pt_request_t *r, char *dst, size_t cap)
{
    pt_conn_t *c = r->conn;
    size_t start = c->rpos + r->h.head_len;
    size_t n = c->rlen > start ? c->rlen - start : 0;
    if (n > cap) n = cap;
    memcpy(dst, c->rbuf + start, n);
    c->rlen = start;
    return n;
}
