/*
 * Header rewriting between client and origin: the request head forwarded
 * upstream and the hop-by-hop filter for responses (RFC 9110 7.6.1).
 */
#include <string.h>

#include "proxy/request_int.h"

static bool is_hop_by_hop(const char *n, size_t len)
{
    /* The names are 2 to 17 bytes long; most fields fail this cheap test. */
    if (len < 2 || len > 17) return false;
    char c = (char)(n[0] | 0x20);
    if (c != 'c' && c != 'k' && c != 'p' && c != 't' && c != 'u') return false;
    return pt_strcaseeq_lit(n, len, "connection") || pt_strcaseeq_lit(n, len, "keep-alive") ||
           pt_strcaseeq_lit(n, len, "proxy-connection") || pt_strcaseeq_lit(n, len, "te") ||
           pt_strcaseeq_lit(n, len, "trailer") || pt_strcaseeq_lit(n, len, "transfer-encoding") ||
           pt_strcaseeq_lit(n, len, "upgrade") || pt_strcaseeq_lit(n, len, "content-length");
}

/* True if the field is listed in any Connection header of h. */
static bool listed_in_connection(const pt_http_hdr_t *h, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (pt_strcaseeq_lit(h[i].name, h[i].name_len, "connection") &&
            pt_http_list_has(h[i].value, h[i].value_len, name, len))
            return true;
    return false;
}

size_t pt_resp_strip_hop(pt_http_hdr_t *h, size_t n, bool keep_upgrade)
{
    size_t out = 0;
    bool has_conn = pt_http_find(h, n, "connection", 10) != NULL;
    for (size_t i = 0; i < n; i++) {
        bool drop = is_hop_by_hop(h[i].name, h[i].name_len) ||
                    (has_conn && listed_in_connection(h, n, h[i].name, h[i].name_len));
        if (keep_upgrade && pt_strcaseeq_lit(h[i].name, h[i].name_len, "upgrade")) drop = false;
        if (!drop) h[out++] = h[i];
    }
    /* Connection headers were read above while still in place; now compact. */
    return out;
}

static const pt_header_op_t *find_op(const pt_array_t *ops, const char *name, size_t len)
{
    for (size_t i = 0; i < ops->n; i++) {
        const pt_header_op_t *op = pt_array_at(ops, pt_header_op_t, i);
        if (pt_strcaseeq(op->name, op->name_len, name, len)) return op;
    }
    return NULL;
}

typedef struct buf {
    char *p;
    size_t len, cap;
} buf_t;

static bool buf_add(buf_t *b, const char *s, size_t len)
{
    if (b->len + len > b->cap) return false;
    memcpy(b->p + b->len, s, len);
    b->len += len;
    return true;
}

static bool buf_header(buf_t *b, const char *n, size_t nl, const char *v, size_t vl)
{
    return buf_add(b, n, nl) && buf_add(b, ": ", 2) && buf_add(b, v, vl) && buf_add(b, "\r\n", 2);
}

#define buf_lit(b, lit) buf_add((b), (lit), sizeof(lit) - 1)

static bool is_added_by_us(const char *n, size_t len, const char *rid, size_t rid_len)
{
    return pt_strcaseeq_lit(n, len, "via") == false &&
           (pt_strcaseeq_lit(n, len, "x-forwarded-proto") || pt_strcaseeq(n, len, rid, rid_len));
}

char *pt_req_forward_head(pt_request_t *r, size_t *len)
{
    const pt_http_req_t *h = &r->h;
    const pt_array_t *ops = &r->loc->s.proxy_set_headers;
    const char *rid = r->loc->s.request_id_header;
    size_t rid_len = rid ? strlen(rid) : 0;
    bool upgrade = (h->flags & PT_HTTP_F_UPGRADE) != 0;

    /* Expand proxy_set_header values first to size the buffer. */
    size_t extra = 512 + r->request_id_len + 2 * sizeof(r->client_ip) + (h->host ? h->host_len : 0);
    char **vals = pt_pool_alloc(r->pool, (ops->n + 1) * sizeof(char *));
    size_t *vlens = pt_pool_alloc(r->pool, (ops->n + 1) * sizeof(size_t));
    if (!vals || !vlens) return NULL;
    for (size_t i = 0; i < ops->n; i++) {
        const pt_header_op_t *op = pt_array_at(ops, pt_header_op_t, i);
        vals[i] = pt_tpl_expand(r, &op->value, &vlens[i]);
        if (!vals[i]) return NULL;
        extra += op->name_len + vlens[i] + 4;
    }
    const pt_http_hdr_t *xff = pt_http_find(h->headers, h->nheaders, "x-forwarded-for", 15);
    const pt_http_hdr_t *fwd = pt_http_find(h->headers, h->nheaders, "forwarded", 9);
    const pt_http_hdr_t *via = pt_http_find(h->headers, h->nheaders, "via", 3);
    buf_t b = {NULL, 0, h->head_len + extra};
    b.p = pt_pool_alloc(r->pool, b.cap);
    if (!b.p) return NULL;

    bool ok = buf_add(&b, h->method, h->method_len) && buf_lit(&b, " ") &&
              buf_add(&b, h->path, h->path_len) && buf_lit(&b, " HTTP/1.1\r\n");
    bool host_sent = false;
    /* Most requests carry no Connection header: skip the per-field list scan. */
    bool has_conn = pt_http_find(h->headers, h->nheaders, "connection", 10) != NULL;
    for (size_t i = 0; ok && i < h->nheaders; i++) {
        const pt_http_hdr_t *f = &h->headers[i];
        if (is_hop_by_hop(f->name, f->name_len) ||
            (has_conn && listed_in_connection(h->headers, h->nheaders, f->name, f->name_len)))
            continue;
        if (pt_strcaseeq_lit(f->name, f->name_len, "x-forwarded-for") ||
            pt_strcaseeq_lit(f->name, f->name_len, "forwarded") ||
            pt_strcaseeq_lit(f->name, f->name_len, "via") ||
            pt_strcaseeq_lit(f->name, f->name_len, "expect") ||
            is_added_by_us(f->name, f->name_len, rid, rid_len) ||
            find_op(ops, f->name, f->name_len))
            continue;
        if (pt_strcaseeq_lit(f->name, f->name_len, "host")) {
            /* absolute-form: the target's authority replaces Host (RFC 9112 3.2.2) */
            ok = buf_header(&b, "Host", 4, h->host, h->host_len);
            host_sent = true;
            continue;
        }
        ok = buf_header(&b, f->name, f->name_len, f->value, f->value_len);
    }
    for (size_t i = 0; ok && i < ops->n; i++) {
        const pt_header_op_t *op = pt_array_at(ops, pt_header_op_t, i);
        if (vlens[i] == 0) continue; /* "" removes the field */
        if (pt_strcaseeq_lit(op->name, op->name_len, "host")) host_sent = true;
        ok = buf_header(&b, op->name, op->name_len, vals[i], vlens[i]);
    }
    if (ok && !host_sent && h->host) ok = buf_header(&b, "Host", 4, h->host, h->host_len);
    /* The immediate client (socket peer or PROXY source), appended. */
    char peer[64];
    if (pt_addr_format_ip(r->conn->has_pp ? &r->conn->pp_src : &r->conn->peer, peer,
                          sizeof(peer)) < 0)
        strcpy(peer, "unknown");
    size_t pl = strlen(peer);
    if (ok && !find_op(ops, "x-forwarded-for", 15)) {
        ok = buf_lit(&b, "X-Forwarded-For: ");
        if (ok && xff) ok = buf_add(&b, xff->value, xff->value_len) && buf_lit(&b, ", ");
        ok = ok && buf_add(&b, peer, pl) && buf_lit(&b, "\r\n");
    }
    if (ok && !find_op(ops, "x-forwarded-proto", 17))
        ok = buf_lit(&b, "X-Forwarded-Proto: http\r\n");
    if (ok && !find_op(ops, "forwarded", 9)) {
        ok = buf_lit(&b, "Forwarded: ");
        if (ok && fwd) ok = buf_add(&b, fwd->value, fwd->value_len) && buf_lit(&b, ", ");
        bool v6 = strchr(peer, ':') != NULL;
        ok = ok && buf_lit(&b, "for=") && (!v6 || buf_lit(&b, "\"[")) && buf_add(&b, peer, pl) &&
             (!v6 || buf_lit(&b, "]\"")) && buf_lit(&b, ";proto=http");
        if (ok && h->host && h->host_len > 0)
            ok = buf_lit(&b, ";host=\"") && buf_add(&b, h->host, h->host_len) && buf_lit(&b, "\"");
        ok = ok && buf_lit(&b, "\r\n");
    }
    if (ok && !find_op(ops, "via", 3)) {
        ok = buf_lit(&b, "Via: ");
        if (ok && via) ok = buf_add(&b, via->value, via->value_len) && buf_lit(&b, ", ");
        ok = ok && buf_lit(&b, "1.1 portico\r\n");
    }
    if (ok && rid && !find_op(ops, rid, rid_len))
        ok = buf_header(&b, rid, rid_len, r->request_id, r->request_id_len);
    if (ok && upgrade) {
        const pt_http_hdr_t *up = pt_http_find(h->headers, h->nheaders, "upgrade", 7);
        ok = buf_lit(&b, "Connection: upgrade\r\n") &&
             buf_header(&b, "Upgrade", 7, up->value, up->value_len);
    }
    if (ok && r->req_chunked)
        ok = buf_lit(&b, "Transfer-Encoding: chunked\r\n");
    else if (ok && h->content_length >= 0) {
        char cl[40];
        int n = snprintf(cl, sizeof(cl), "Content-Length: %lld\r\n", (long long)h->content_length);
        ok = buf_add(&b, cl, (size_t)n);
    }
    ok = ok && buf_lit(&b, "\r\n");
    if (!ok) return NULL;
    *len = b.len;
    return b.p;
}
