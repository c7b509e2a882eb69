/*
 * Chunked decoder. Input: [limits selector][split byte][body...].
 * Decodes in one shot, one byte at a time, and in two pieces; the result
 * code, the decoded data and the bytes after the message must agree.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

static void check(int ok)
{
    if (!ok) abort();
}

typedef struct out {
    ssize_t rc;
    char *data; /* decoded bytes, then the bytes after the message */
    size_t data_len;
    size_t rest_len;
} out_t;

static void init_dec(pt_http_chunked_t *d, uint8_t sel)
{
    static const size_t lines[4] = {0, 8, 20, 64};
    static const size_t trailers[4] = {0, 4, 30, 100};
    memset(d, 0, sizeof(*d));
    d->max_line = lines[sel & 3];
    d->max_trailers = trailers[(sel >> 2) & 3];
    pt_http_chunked_init(d);
}

/* Feeds pieces of at most step bytes (0: all), each in an exact heap buffer. */
static void run(const uint8_t *in, size_t len, uint8_t sel, size_t step, out_t *o)
{
    pt_http_chunked_t d;
    size_t off = 0;

    init_dec(&d, sel);
    o->data = malloc(len ? len : 1);
    check(o->data != NULL);
    o->data_len = 0;
    o->rest_len = 0;
    o->rc = PT_AGAIN;
    do {
        size_t n = step == 0 ? len - off : (len - off < step ? len - off : step);
        char *buf = malloc(n ? n : 1);
        check(buf != NULL);
        memcpy(buf, in + off, n);
        size_t dlen = n;
        ssize_t rc = pt_http_chunked_decode(&d, buf, &dlen);
        check(dlen <= n);
        check(rc == PT_AGAIN || rc == -400 || (rc >= 0 && (size_t)rc <= n - dlen));
        off += n;
        o->rc = rc;
        if (rc != -400) {
            memcpy(o->data + o->data_len, buf, dlen);
            o->data_len += dlen;
        }
        if (rc >= 0) {
            memcpy(o->data + o->data_len, buf + dlen, (size_t)rc);
            memcpy(o->data + o->data_len + (size_t)rc, in + off, len - off);
            o->rest_len = (size_t)rc + len - off;
            o->rc = (ssize_t)o->rest_len;
        }
        free(buf);
        if (rc != PT_AGAIN) break;
    } while (off < len);
    check(o->data_len == d.body_bytes || o->rc == -400);
}

static void check_same(const out_t *a, const out_t *b)
{
    check(a->rc == b->rc);
    if (a->rc == -400) return;
    check(a->data_len == b->data_len && a->rest_len == b->rest_len);
    check(memcmp(a->data, b->data, a->data_len + a->rest_len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    uint8_t sel = data[0];
    size_t split_sel = data[1];
    data += 2;
    size -= 2;

    out_t one, bytes, two;
    run(data, size, sel, 0, &one);
    run(data, size, sel, 1, &bytes);
    size_t split = size ? split_sel * size / 255 : 0;
    run(data, size, sel, split ? split : 1, &two);
    check_same(&one, &bytes);
    check_same(&one, &two);
    free(one.data);
    free(bytes.data);
    free(two.data);
    return 0;
}
