/*
 * Request head parser. Input: [limits selector][split byte][request...].
 * Checks, besides the sanitizers:
 *   - parsing in two calls (prefix, then all with last_len) gives exactly
 *     the one-shot result, fields included;
 *   - every returned pointer lies inside the parsed head;
 *   - a head that parsed, written back canonically, parses the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

#define NHDR 64

static const pt_http_limits_t limit_sets[4] = {
    {8192, 1024, 64},
    {256, 64, 8},
    {64, 32, 2},
    {4096, 40, 16},
};

static void check(int ok)
{
    if (!ok) abort();
}

static int in_head(const char *p, size_t n, const char *buf, size_t head_len)
{
    return p >= buf && n <= head_len && p + n <= buf + head_len;
}

static void check_pointers(const pt_http_req_t *r, const char *buf, size_t head_len)
{
    check(in_head(r->method, r->method_len, buf, head_len) && r->method_len > 0);
    check(in_head(r->target, r->target_len, buf, head_len) && r->target_len > 0);
    /* The only path outside the buffer: "*" for OPTIONS http://host. */
    if (!(r->form == PT_HTTP_FORM_ABSOLUTE && r->path_len == 1 && r->path[0] == '*'))
        check(in_head(r->path, r->path_len, buf, head_len));
    if (r->host != NULL) check(in_head(r->host, r->host_len, buf, head_len));
    check(r->nheaders <= NHDR);
    for (size_t i = 0; i < r->nheaders; i++) {
        const pt_http_hdr_t *h = &r->headers[i];
        check(h->name_len > 0 && in_head(h->name, h->name_len, buf, head_len));
        check(in_head(h->value, h->value_len, buf, head_len));
        for (size_t j = 0; j < h->value_len; j++) {
            unsigned char c = (unsigned char)h->value[j];
            check(c >= 0x20 || c == '\t');
            check(c != 0x7f);
        }
        if (h->value_len > 0) {
            check(h->value[0] != ' ' && h->value[0] != '\t');
            check(h->value[h->value_len - 1] != ' ' && h->value[h->value_len - 1] != '\t');
        }
    }
    check(r->version == 10 || r->version == 11);
    if (r->flags & PT_HTTP_F_CHUNKED) check(r->content_length == -1 && !(r->flags & PT_HTTP_F_HAS_CL));
    check(((r->flags & PT_HTTP_F_HAS_CL) != 0) == (r->content_length >= 0));
}

#define OFF(p, base) ((p) == NULL ? (ptrdiff_t)-1 : (p) - (base))

static void check_same(const pt_http_req_t *a, const char *abuf, const pt_http_req_t *b,
                       const char *bbuf)
{
    check(OFF(a->method, abuf) == OFF(b->method, bbuf) && a->method_len == b->method_len);
    check(a->method_id == b->method_id && a->form == b->form);
    check(OFF(a->target, abuf) == OFF(b->target, bbuf) && a->target_len == b->target_len);
    check(a->path_len == b->path_len && memcmp(a->path, b->path, a->path_len) == 0);
    check(OFF(a->host, abuf) == OFF(b->host, bbuf) && a->host_len == b->host_len);
    check(a->version == b->version && a->nheaders == b->nheaders);
    check(a->content_length == b->content_length && a->flags == b->flags);
    check(a->head_len == b->head_len);
    for (size_t i = 0; i < a->nheaders; i++) {
        check(OFF(a->headers[i].name, abuf) == OFF(b->headers[i].name, bbuf));
        check(a->headers[i].name_len == b->headers[i].name_len);
        check(OFF(a->headers[i].value, abuf) == OFF(b->headers[i].value, bbuf));
        check(a->headers[i].value_len == b->headers[i].value_len);
    }
}

/* Writes the parsed head back as "m t HTTP/1.x CRLF (name: value CRLF)* CRLF". */
static size_t serialize(const pt_http_req_t *r, char *out)
{
    size_t n = 0;
    memcpy(out + n, r->method, r->method_len);
    n += r->method_len;
    out[n++] = ' ';
    memcpy(out + n, r->target, r->target_len);
    n += r->target_len;
    memcpy(out + n, r->version == 11 ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n", 11);
    n += 11;
    for (size_t i = 0; i < r->nheaders; i++) {
        memcpy(out + n, r->headers[i].name, r->headers[i].name_len);
        n += r->headers[i].name_len;
        out[n++] = ':';
        out[n++] = ' ';
        memcpy(out + n, r->headers[i].value, r->headers[i].value_len);
        n += r->headers[i].value_len;
        out[n++] = '\r';
        out[n++] = '\n';
    }
    out[n++] = '\r';
    out[n++] = '\n';
    return n;
}

static void check_roundtrip(const pt_http_req_t *r)
{
    size_t cap = r->head_len * 2 + 64;
    char *out = malloc(cap);
    check(out != NULL);
    size_t n = serialize(r, out);
    check(n <= cap);
    pt_http_limits_t big = {1 << 20, 1 << 20, NHDR};
    pt_http_hdr_t hdrs[NHDR];
    pt_http_req_t r2 = {.headers = hdrs};
    int rc = pt_http_parse_request(out, n, 0, &r2, &big);
    check(rc == (int)n);
    check(r2.method_id == r->method_id && r2.form == r->form && r2.version == r->version);
    check(r2.nheaders == r->nheaders && r2.flags == r->flags);
    check(r2.content_length == r->content_length);
    check(r2.path_len == r->path_len && memcmp(r2.path, r->path, r->path_len) == 0);
    check((r2.host == NULL) == (r->host == NULL));
    if (r->host != NULL) check(r2.host_len == r->host_len && memcmp(r2.host, r->host, r->host_len) == 0);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    const pt_http_limits_t *lim = &limit_sets[data[0] & 3];
    size_t split_sel = data[1];
    data += 2;
    size -= 2;

    char *buf = malloc(size ? size : 1);
    check(buf != NULL);
    memcpy(buf, data, size);
    pt_http_hdr_t h1[NHDR], h2[NHDR];
    pt_http_req_t r1 = {.headers = h1}, r2 = {.headers = h2};

    int rc1 = pt_http_parse_request(buf, size, 0, &r1, lim);
    check(rc1 == PT_AGAIN || rc1 == -400 || rc1 == -414 || rc1 == -431 || rc1 == -501 ||
          rc1 == -505 || (rc1 > 0 && (size_t)rc1 <= size));
    if (rc1 > 0) {
        check(r1.head_len == (size_t)rc1 && (size_t)rc1 <= lim->max_head);
        check(r1.nheaders <= lim->max_headers);
        check_pointers(&r1, buf, (size_t)rc1);
        check_roundtrip(&r1);
    }

    /* The same bytes in two calls, the prefix in its own exact buffer. */
    size_t split = size ? split_sel * size / 255 : 0;
    char *pre = malloc(split ? split : 1);
    check(pre != NULL);
    memcpy(pre, data, split);
    int rc2 = pt_http_parse_request(pre, split, 0, &r2, lim);
    const char *base2 = pre;
    if (rc2 == PT_AGAIN) {
        rc2 = pt_http_parse_request(buf, size, split, &r2, lim);
        base2 = buf;
    }
    check(rc2 == rc1);
    if (rc1 > 0) check_same(&r1, buf, &r2, base2);

    free(pre);
    free(buf);
    return 0;
}
