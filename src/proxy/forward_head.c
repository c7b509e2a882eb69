/*
 * Header rewriting between client and origin: the request head forwarded
 * upstream and the hop-by-hop filter for responses (RFC 9110 7.6.1).
 */
#include <string.h>

#include "proxy/request_int.h"

/* What a header field means to a proxy. */
typedef enum {
    H_OTHER = 0,
    H_HOP,        /* hop-by-hop: never forwarded (RFC 9110 7.6.1) */
    H_CONNECTION, /* hop-by-hop, and lists more hop-by-hop fields */
    H_UPGRADE,    /* hop-by-hop unless the exchange upgrades */
    H_HOST,
    H_XFF,
    H_FORWARDED,
    H_VIA,
    H_XFP,
    H_EXPECT,
} hclass_t;

#define IS(lit) pt_strcaseeq_lit(n, len, lit)

/* Classifies a field name: a switch on the length first, so a typical
 * field costs one or two comparisons. */
static hclass_t classify(const char *n, size_t len)
{
    switch (len) {
    case 2:
        return IS("te") ? H_HOP : H_OTHER;
    case 3:
        return IS("via") ? H_VIA : H_OTHER;
    case 4:
        return IS("host") ? H_HOST : H_OTHER;
    case 6:
        return IS("expect") ? H_EXPECT : H_OTHER;
    case 7:
        return IS("upgrade") ? H_UPGRADE : IS("trailer") ? H_HOP : H_OTHER;
    case 9:
        return IS("forwarded") ? H_FORWARDED : H_OTHER;
    case 10:
        return IS("connection") ? H_CONNECTION : IS("keep-alive") ? H_HOP : H_OTHER;
    case 14:
        return IS("content-length") ? H_HOP : H_OTHER;
    case 15:
        return IS("x-forwarded-for") ? H_XFF : H_OTHER;
    case 16:
        return IS("proxy-connection") ? H_HOP : H_OTHER;
    case 17:
        return IS("transfer-encoding") ? H_HOP : IS("x-forwarded-proto") ? H_XFP : H_OTHER;
    default:
        return H_OTHER;
    }
}

#undef IS

#define MAX_CONN_TOKENS 16

/* Field names listed in the Connection header(s), parsed once per message. */
typedef struct conn_tokens {
    const char *t[MAX_CONN_TOKENS];
    size_t len[MAX_CONN_TOKENS];
    size_t n;
    bool overflow; /* more tokens than we keep: fall back to scanning */
    const pt_http_hdr_t *h;
    size_t nh;
} conn_tokens_t;

static void conn_tokens_collect(conn_tokens_t *ct, const pt_http_hdr_t *h, size_t n)
{
    ct->n = 0;
    ct->overflow = false;
    ct->h = h;
    ct->nh = n;
    for (size_t i = 0; i < n; i++) {
        if (classify(h[i].name, h[i].name_len) != H_CONNECTION) continue;
        size_t pos = 0;
        const char *t;
        size_t tl;
        while (pt_http_next_token(h[i].value, h[i].value_len, &pos, &t, &tl)) {
            if (ct->n == MAX_CONN_TOKENS) {
                ct->overflow = true;
                return;
            }
            ct->t[ct->n] = t;
            ct->len[ct->n++] = tl;
        }
    }
}

static bool conn_tokens_has(const conn_tokens_t *ct, const char *name, size_t len)
{
    if (ct->overflow) {
        for (size_t i = 0; i < ct->nh; i++)
            if (classify(ct->h[i].name, ct->h[i].name_len) == H_CONNECTION &&
                pt_http_list_has(ct->h[i].value, ct->h[i].value_len, name, len))
                return true;
        return false;
    }
    for (size_t i = 0; i < ct->n; i++)
        if (ct->len[i] == len && pt_strcaseeq(ct->t[i], len, name, len)) return true;
    return false;
}

size_t pt_resp_strip_hop(pt_http_hdr_t *h, size_t n, bool keep_upgrade)
{
    conn_tokens_t ct;
    conn_tokens_collect(&ct, h, n);
    /* Decide every field before compacting: the overflow fallback of
     * conn_tokens_has() scans h itself. */
    uint64_t drop[(PT_MAX_HEADERS + 63) / 64] = {0};
    if (n > PT_MAX_HEADERS) n = PT_MAX_HEADERS; /* parsers never return more */
    bool any_listed = ct.n > 0 || ct.overflow;
    for (size_t i = 0; i < n; i++) {
        hclass_t c = classify(h[i].name, h[i].name_len);
        bool upgrade_kept = c == H_UPGRADE && keep_upgrade;
        bool d = c == H_HOP || c == H_CONNECTION || (c == H_UPGRADE && !keep_upgrade) ||
                 (any_listed && !upgrade_kept && conn_tokens_has(&ct, h[i].name, h[i].name_len));
        if (d) drop[i / 64] |= 1ull << (i % 64);
    }
    size_t out = 0;
    for (size_t i = 0; i < n; i++)
        if (!(drop[i / 64] & (1ull << (i % 64)))) h[out++] = h[i];
    return out;
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

/* proxy_set_header names, compared by length first (most fields differ). */
static bool op_named(const pt_array_t *ops, const char *name, size_t len)
{
    for (size_t i = 0; i < ops->n; i++) {
        const pt_header_op_t *op = pt_array_at(ops, pt_header_op_t, i);
        if (op->name_len == len && pt_strcaseeq(op->name, op->name_len, name, len)) return true;
    }
    return false;
}

/* The fields of the client's head the forwarded head is built from. */
typedef struct req_fields {
    const pt_http_hdr_t *xff, *fwd, *via, *upgrade;
} req_fields_t;

/* Copies the client's end-to-end fields; collects the ones we rewrite. */
static bool copy_fields(pt_request_t *r, buf_t *b, req_fields_t *rf, bool *host_sent)
{
    const pt_http_req_t *h = &r->h;
    const pt_array_t *ops = &r->loc->s.proxy_set_headers;
    const char *rid = r->loc->s.request_id_header;
    size_t rid_len = rid ? strlen(rid) : 0;
    conn_tokens_t ct;
    conn_tokens_collect(&ct, h->headers, h->nheaders);
    bool any_listed = ct.n > 0 || ct.overflow;
    for (size_t i = 0; i < h->nheaders; i++) {
        const pt_http_hdr_t *f = &h->headers[i];
        switch (classify(f->name, f->name_len)) {
        case H_HOP:
        case H_CONNECTION:
        case H_EXPECT: /* we answered 100 Continue ourselves */
        case H_XFP:    /* set by us */
            continue;
        case H_UPGRADE:
            rf->upgrade = f;
            continue;
        case H_XFF:
            rf->xff = f;
            continue;
        case H_FORWARDED:
            rf->fwd = f;
            continue;
        case H_VIA:
            rf->via = f;
            continue;
        case H_HOST:
            if (op_named(ops, f->name, f->name_len)) continue;
            /* absolute-form: the target's authority replaces Host (RFC 9112 3.2.2) */
            if (!buf_header(b, "Host", 4, h->host, h->host_len)) return false;
            *host_sent = true;
            continue;
        case H_OTHER:
            break;
        }
        if (any_listed && conn_tokens_has(&ct, f->name, f->name_len)) continue;
        if (rid && f->name_len == rid_len && pt_strcaseeq(f->name, f->name_len, rid, rid_len))
            continue; /* the id we decided on is sent below */
        if (ops->n && op_named(ops, f->name, f->name_len)) continue;
        if (!buf_header(b, f->name, f->name_len, f->value, f->value_len)) return false;
    }
    return true;
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
    char **vals = NULL;
    size_t *vlens = NULL;
    if (ops->n) {
        vals = pt_pool_alloc(r->pool, ops->n * sizeof(char *));
        vlens = pt_pool_alloc(r->pool, ops->n * sizeof(size_t));
        if (!vals || !vlens) return NULL;
    }
    for (size_t i = 0; i < ops->n; i++) {
        const pt_header_op_t *op = pt_array_at(ops, pt_header_op_t, i);
        vals[i] = pt_tpl_expand(r, &op->value, &vlens[i]);
        if (!vals[i]) return NULL;
        extra += op->name_len + vlens[i] + 4;
    }
    buf_t b = {NULL, 0, h->head_len + extra};
    b.p = pt_pool_alloc(r->pool, b.cap);
    if (!b.p) return NULL;

    req_fields_t rf = {0};
    bool host_sent = false;
    bool ok = buf_add(&b, h->method, h->method_len) && buf_lit(&b, " ") &&
              buf_add(&b, h->path, h->path_len) && buf_lit(&b, " HTTP/1.1\r\n") &&
              copy_fields(r, &b, &rf, &host_sent);
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
    bool no_ops = ops->n == 0;
    if (ok && (no_ops || !op_named(ops, "x-forwarded-for", 15))) {
        ok = buf_lit(&b, "X-Forwarded-For: ");
        if (ok && rf.xff) ok = buf_add(&b, rf.xff->value, rf.xff->value_len) && buf_lit(&b, ", ");
        ok = ok && buf_add(&b, peer, pl) && buf_lit(&b, "\r\n");
    }
    if (ok && (no_ops || !op_named(ops, "x-forwarded-proto", 17)))
        ok = buf_lit(&b, "X-Forwarded-Proto: http\r\n");
    if (ok && (no_ops || !op_named(ops, "forwarded", 9))) {
        ok = buf_lit(&b, "Forwarded: ");
        if (ok && rf.fwd) ok = buf_add(&b, rf.fwd->value, rf.fwd->value_len) && buf_lit(&b, ", ");
        bool v6 = memchr(peer, ':', pl) != NULL;
        ok = ok && buf_lit(&b, "for=") && (!v6 || buf_lit(&b, "\"[")) && buf_add(&b, peer, pl) &&
             (!v6 || buf_lit(&b, "]\"")) && buf_lit(&b, ";proto=http");
        if (ok && h->host && h->host_len > 0)
            ok = buf_lit(&b, ";host=\"") && buf_add(&b, h->host, h->host_len) && buf_lit(&b, "\"");
        ok = ok && buf_lit(&b, "\r\n");
    }
    if (ok && (no_ops || !op_named(ops, "via", 3))) {
        ok = buf_lit(&b, "Via: ");
        if (ok && rf.via) ok = buf_add(&b, rf.via->value, rf.via->value_len) && buf_lit(&b, ", ");
        ok = ok && buf_lit(&b, "1.1 portico\r\n");
    }
    if (ok && rid && (no_ops || !op_named(ops, rid, rid_len)))
        ok = buf_header(&b, rid, rid_len, r->request_id, r->request_id_len);
    if (ok && upgrade && rf.upgrade)
        ok = buf_lit(&b, "Connection: upgrade\r\n") &&
             buf_header(&b, "Upgrade", 7, rf.upgrade->value, rf.upgrade->value_len);
    if (ok && r->req_chunked) {
        ok = buf_lit(&b, "Transfer-Encoding: chunked\r\n");
    } else if (ok && h->content_length >= 0) {
        char cl[24];
        size_t n = pt_fmt_u64(cl, (uint64_t)h->content_length);
        ok = buf_lit(&b, "Content-Length: ") && buf_add(&b, cl, n) && buf_lit(&b, "\r\n");
    }
    ok = ok && buf_lit(&b, "\r\n");
    if (!ok) return NULL;
    *len = b.len;
    return b.p;
}
