/*
 * Starting a request: build the context from the parsed head, route it,
 * and run the location's action (return, static file, or a module's
 * handler such as proxy_pass). Also the client-socket events of an active
 * request and its timeouts.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/request_int.h"

int pt_request_body_init(pt_request_t *r);

static void run_return(pt_request_t *r)
{
    pt_location_t *loc = r->loc;
    size_t len = 0;
    char *text = loc->has_return_text ? pt_tpl_expand(r, &loc->return_text, &len) : NULL;
    if (loc->has_return_text && !text) {
        pt_req_error(r, 500, true);
        return;
    }
    int st = loc->return_status;
    bool redirect = st == 301 || st == 302 || st == 303 || st == 307 || st == 308;
    if (redirect) {
        pt_req_redirect(r, st, text, len);
        return;
    }
    if (!text && st >= 400) {
        pt_req_error(r, st, false);
        return;
    }
    pt_req_respond(r, st, text ? "text/plain; charset=utf-8" : NULL, text, len, false);
}

static void close_fd(void *arg) { close((int)(intptr_t)arg); }

/* Splits "Name: value\r\n" lines from the static file module into fields. */
static size_t split_header_lines(char *text, size_t len, pt_http_hdr_t *out, size_t cap)
{
    size_t n = 0, i = 0;
    while (i < len && n < cap) {
        char *line = text + i;
        char *eol = memchr(line, '\r', len - i);
        if (!eol) break;
        char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon) {
            const char *v = colon + 1;
            while (*v == ' ') v++;
            out[n++] = (pt_http_hdr_t){line, (size_t)(colon - line), v, (size_t)(eol - v)};
        }
        i = (size_t)(eol - text) + 2;
    }
    return n;
}

static void run_static(pt_request_t *r)
{
    pt_static_result_t res;
    if (pt_http_static_serve(r->pool, &r->loc->s.static_conf, &r->h, r->h.path, r->h.path_len,
                             &res) < 0) {
        pt_req_error(r, 500, true);
        return;
    }
    if (res.fd >= 0 &&
        pt_pool_cleanup_add(r->pool, close_fd, (void *)(intptr_t)res.fd) < 0) {
        close(res.fd);
        pt_req_error(r, 500, true);
        return;
    }
    if (res.status >= 400 && res.status != 416 && res.status != 412 && res.status != 405) {
        pt_req_error(r, res.status, false);
        return;
    }
    pt_http_hdr_t hdrs[16];
    size_t nh = split_header_lines(res.headers, res.headers_len, hdrs, 16);
    bool has_body_file = res.fd >= 0 && res.length > 0;
    pt_response_t resp = {res.status, hdrs, nh, res.status == 304 ? -1 : (int64_t)res.length,
                          res.status == 304, false};
    if (res.status == 301 || res.status >= 400) resp.content_length = 0;
    if (pt_req_send_head(r, &resp) < 0) {
        pt_req_abort(r);
        return;
    }
    pt_req_finish_after(r, has_body_file ? pt_req_send_file(r, res.fd, res.offset,
                                                            (size_t)res.length, true)
                                          : pt_req_flush(r));
}

static int copy_headers(pt_request_t *r, const pt_http_req_t *parsed)
{
    r->h = *parsed;
    size_t bytes = parsed->nheaders * sizeof(pt_http_hdr_t);
    r->h.headers = pt_pool_alloc(r->pool, bytes ? bytes : sizeof(pt_http_hdr_t));
    if (!r->h.headers) return -ENOMEM;
    memcpy(r->h.headers, parsed->headers, bytes);
    return 0;
}

static pt_request_t *request_create(pt_conn_t *c)
{
    pt_pool_t *pool = pt_worker_pool_get(c->w);
    if (!pool) return NULL;
    pt_request_t *r = pt_pool_calloc(pool, 1, sizeof(*r));
    if (!r) {
        pt_worker_pool_put(c->w, pool);
        return NULL;
    }
    r->pool = pool;
    r->conn = c;
    r->worker = c->w;
    r->snap = pt_snapshot_ref(c->snap);
    r->start_us = pt_time_mono_us();
    c->req = r;
    c->w->nrequests++;
    return r;
}

static void run_action(pt_request_t *r)
{
    switch (r->loc->action) {
    case PT_ACT_RETURN:
        run_return(r);
        return;
    case PT_ACT_STATIC:
        run_static(r);
        return;
    case PT_ACT_HANDLER:
        r->loc->handler(r);
        return;
    case PT_ACT_NONE:
        break;
    }
    pt_req_error(r, 404, false);
}

void pt_request_start(pt_conn_t *c, int rc)
{
    pt_request_t *r = request_create(c);
    if (!r) {
        pt_conn_close(c);
        return;
    }
    const pt_listen_conf_t *lc = c->lc;
    struct pt_worker_scratch *sc = pt_worker_scratch(c->w);
    if (rc > 0) {
        if (copy_headers(r, &sc->req) < 0) {
            pt_req_error(r, 500, true);
            return;
        }
        pt_route(r, lc);
    } else {
        /* Malformed head: answer with the default server's settings. */
        r->h.method = "-";
        r->h.method_len = 1;
        r->h.path = "-";
        r->h.path_len = 1;
        r->h.version = 11;
        r->vhost = lc->default_server;
        r->loc = r->vhost->root_loc;
        c->next_pos = c->rlen;
        r->body_done = true;
    }
    /* set_client_ip also runs for malformed requests, so logs show the peer. */
    pt_request_identify(r);
    if (rc < 0) {
        pt_req_error(r, -rc, true);
        return;
    }
    int brc = pt_request_body_init(r);
    if (brc < 0) {
        r->body_done = true;
        c->next_pos = c->rlen;
        pt_req_error(r, -brc, true);
        return;
    }
    if (r->h.method_id == PT_HTTP_CONNECT || r->h.method_id == PT_HTTP_TRACE) {
        pt_req_error(r, 405, !r->body_done);
        return;
    }
    run_action(r);
}

void pt_request_on_io(pt_request_t *r, unsigned events)
{
    pt_conn_t *c = r->conn;
    if (c->tunnel_cb) {
        c->tunnel_cb(r, events);
        return;
    }
    if (r->nout > 0 && c->io.writable) {
        int rc = pt_req_flush(r);
        if (rc < 0 && rc != PT_AGAIN) {
            pt_conn_close_why(c, PT_CLOSE_CLIENT);
            return;
        }
        if (rc == 0) {
            pt_timer_stop(c->w->loop, &c->timer);
            if (r->on_drain) {
                void (*cb)(pt_request_t *) = r->on_drain;
                r->on_drain = NULL;
                cb(r);
                return; /* r may be finished now */
            }
        }
    }
    if (c->req != r) return;
    if ((events & PT_EV_READ) && c->want_body && r->on_body) {
        c->want_body = false;
        pt_timer_stop(c->w->loop, &c->timer);
        r->on_body(r);
        return;
    }
    if ((events & PT_EV_ERROR) && r->nout == 0 && !c->want_body) {
        /* The client is gone while the handler works: stop it now. */
        char probe;
        ssize_t n = recv(c->io.fd, &probe, 1, MSG_PEEK);
        if (n == 0 || (n < 0 && errno != EAGAIN)) pt_conn_close_why(c, PT_CLOSE_CLIENT);
    }
}

void pt_request_on_timeout(pt_request_t *r)
{
    pt_conn_t *c = r->conn;
    if (c->want_body && r->state == PT_REQ_HEAD) {
        /* client_body_timeout: nginx answers 408 if it still can. */
        pt_log_info("client body timeout, request %.*s", (int)r->request_id_len, r->request_id);
        void (*cb)(pt_request_t *) = r->on_abort;
        r->on_abort = NULL;
        if (cb) cb(r);
        c->want_body = false;
        pt_req_error(r, 408, true);
        return;
    }
    pt_log_info("client send/body timeout, closing (request %.*s)", (int)r->request_id_len,
                r->request_id);
    pt_conn_close_why(c, PT_CLOSE_TIMEOUT);
}
