/*
 * The request body reader. Body bytes live in the connection's read
 * buffer after the head; chunked bodies are decoded in place. Once the
 * handler has consumed everything buffered, the space after the head is
 * reused, so a body of any size streams through one buffer.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "proxy/request_int.h"

static size_t head_end(const pt_request_t *r) { return r->conn->rpos + r->h.head_len; }

/* RFC 9110 10.1.1: answer 100 Continue when we start waiting for the body. */
static int send_continue(pt_request_t *r)
{
    static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
    r->sent_continue = true;
    ssize_t n = write(r->conn->io.fd, msg, sizeof(msg) - 1);
    if (n == (ssize_t)sizeof(msg) - 1) return 0;
    return n < 0 && errno != EAGAIN ? -errno : -EIO;
}

static int body_too_large(pt_request_t *r, size_t more)
{
    uint64_t max = r->loc->s.client_max_body_size;
    return max > 0 && r->body_received + more > max;
}

/* Decodes buffered chunked bytes. Returns 0 with data, 1 done, PT_AGAIN, -status. */
static int decode_chunked(pt_request_t *r, const char **p, size_t *len)
{
    pt_conn_t *c = r->conn;
    size_t n = c->rlen - c->body_pos;
    ssize_t rc = pt_http_chunked_decode(&r->chunked, c->rbuf + c->body_pos, &n);
    if (rc < 0 && rc != PT_AGAIN) return -400;
    if (rc == PT_AGAIN) {
        c->rlen = c->body_pos + n;
    } else {
        /* Complete: rc bytes of the next request follow the data. */
        r->chunked_done = true;
        c->next_pos = c->body_pos + n;
        c->rlen = c->next_pos + (size_t)rc;
    }
    if (n == 0) {
        if (r->chunked_done) {
            r->body_done = true;
            return 1;
        }
        return PT_AGAIN;
    }
    if (body_too_large(r, n)) return -413;
    *p = c->rbuf + c->body_pos;
    *len = n;
    r->body_pending = n;
    return 0;
}

static int buffered_body(pt_request_t *r, const char **p, size_t *len)
{
    pt_conn_t *c = r->conn;
    if (r->req_chunked) {
        if (r->chunked_done) {
            /* Decoded data before the terminator is already out; done. */
            r->body_done = true;
            return 1;
        }
        return decode_chunked(r, p, len);
    }
    size_t avail = c->rlen - c->body_pos;
    size_t n = avail < (uint64_t)r->body_left ? avail : (size_t)r->body_left;
    *p = c->rbuf + c->body_pos;
    *len = n;
    r->body_pending = n;
    return 0;
}

int pt_req_read_body(pt_request_t *r, const char **p, size_t *len)
{
    pt_conn_t *c = r->conn;
    if (r->body_done) return 1;
    for (;;) {
        if (c->rlen > c->body_pos) {
            int rc = buffered_body(r, p, len);
            if (rc != PT_AGAIN) return rc;
        }
        if ((r->h.flags & PT_HTTP_F_EXPECT_100) && !r->sent_continue && r->h.version >= 11) {
            if (send_continue(r) < 0) return -ECONNRESET;
        }
        if (!c->io.readable) {
            c->want_body = true;
            pt_timer_start(c->w->loop, &c->timer, r->loc->s.client_body_timeout);
            return PT_AGAIN;
        }
        if (c->rlen == c->rsize) {
            /* Only undecodable bytes (a partial chunk-size line) fill it. */
            return -400;
        }
        ssize_t n = read(c->io.fd, c->rbuf + c->rlen, c->rsize - c->rlen);
        if (n > 0) {
            if ((size_t)n < c->rsize - c->rlen) c->io.readable = false;
            c->rlen += (size_t)n;
            continue;
        }
        if (n == 0) return -ECONNRESET; /* client closed before the body ended */
        if (errno == EAGAIN || errno == EINTR) {
            c->io.readable = false;
            continue;
        }
        return -errno;
    }
}

void pt_req_body_consumed(pt_request_t *r)
{
    pt_conn_t *c = r->conn;
    size_t n = r->body_pending;
    r->body_pending = 0;
    c->body_pos += n;
    r->body_received += n;
    if (!r->req_chunked) {
        r->body_left -= (int64_t)n;
        if (r->body_left == 0) {
            r->body_done = true;
            c->next_pos = c->body_pos;
            return;
        }
    } else if (r->chunked_done && c->body_pos == c->next_pos) {
        r->body_done = true;
        return;
    }
    if (c->body_pos == c->rlen) {
        /* All buffered body bytes are gone: reuse the space after the head. */
        c->body_pos = c->rlen = head_end(r);
    }
}

/* Sets up body framing for a new request. Returns 0 or -status. */
int pt_request_body_init(pt_request_t *r)
{
    pt_conn_t *c = r->conn;
    c->body_pos = c->next_pos = head_end(r);
    if (r->h.flags & PT_HTTP_F_CHUNKED) {
        r->req_chunked = true;
        pt_http_chunked_init(&r->chunked);
        return 0;
    }
    if (r->h.content_length > 0) {
        uint64_t max = r->loc->s.client_max_body_size;
        if (max > 0 && (uint64_t)r->h.content_length > max) return -413;
        r->body_left = r->h.content_length;
        return 0;
    }
    r->body_done = true;
    return 0;
}
