/*
 * Response head parser. Input: [limits selector][split byte][response...].
 * Checks the two-call result equals the one-shot result and that every
 * returned pointer lies inside the head.
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
    {4096, 20, 16},
};

static void check(int ok)
{
    if (!ok) abort();
}

static int in_head(const char *p, size_t n, const char *buf, size_t head_len)
{
    return p >= buf && n <= head_len && p + n <= buf + head_len;
}

static void check_resp(const pt_http_resp_t *r, const char *buf, size_t head_len)
{
    check(r->version == 10 || r->version == 11);
    check(r->status >= 100 && r->status <= 599);
    check(in_head(r->reason, r->reason_len, buf, head_len));
    for (size_t i = 0; i < r->nheaders; i++) {
        check(r->headers[i].name_len > 0);
        check(in_head(r->headers[i].name, r->headers[i].name_len, buf, head_len));
        check(in_head(r->headers[i].value, r->headers[i].value_len, buf, head_len));
    }
    if (r->flags & PT_HTTP_F_CHUNKED) check(r->content_length == -1);
    check(((r->flags & PT_HTTP_F_HAS_CL) != 0) == (r->content_length >= 0));
}

static void check_same(const pt_http_resp_t *a, const char *abuf, const pt_http_resp_t *b,
                       const char *bbuf)
{
    check(a->version == b->version && a->status == b->status);
    check(a->reason - abuf == b->reason - bbuf && a->reason_len == b->reason_len);
    check(a->nheaders == b->nheaders && a->flags == b->flags);
    check(a->content_length == b->content_length && a->head_len == b->head_len);
    for (size_t i = 0; i < a->nheaders; i++) {
        check(a->headers[i].name - abuf == b->headers[i].name - bbuf);
        check(a->headers[i].value - abuf == b->headers[i].value - bbuf);
        check(a->headers[i].name_len == b->headers[i].name_len);
        check(a->headers[i].value_len == b->headers[i].value_len);
    }
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
    pt_http_resp_t r1 = {.headers = h1}, r2 = {.headers = h2};

    int rc1 = pt_http_parse_response(buf, size, 0, &r1, lim);
    check(rc1 == PT_AGAIN || rc1 == -502 || (rc1 > 0 && (size_t)rc1 <= size));
    if (rc1 > 0) {
        check(r1.head_len == (size_t)rc1 && (size_t)rc1 <= lim->max_head);
        check(r1.nheaders <= lim->max_headers);
        check_resp(&r1, buf, (size_t)rc1);
    }

    size_t split = size ? split_sel * size / 255 : 0;
    char *pre = malloc(split ? split : 1);
    check(pre != NULL);
    memcpy(pre, data, split);
    int rc2 = pt_http_parse_response(pre, split, 0, &r2, lim);
    const char *base2 = pre;
    if (rc2 == PT_AGAIN) {
        rc2 = pt_http_parse_response(buf, size, split, &r2, lim);
        base2 = buf;
    }
    check(rc2 == rc1);
    if (rc1 > 0) check_same(&r1, buf, &r2, base2);

    free(pre);
    free(buf);
    return 0;
}
