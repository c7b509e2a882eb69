/*
 * Chunked decoder: every case is decoded in one shot, one byte at a time,
 * and split at every point into two calls; all must agree.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "http/http.h"

typedef struct chunk_case {
    const char *in;
    ssize_t rc;       /* >= 0: bytes after the message; PT_AGAIN; -400 */
    const char *out;  /* decoded data when rc >= 0 or PT_AGAIN */
    size_t max_line;  /* 0: default */
    size_t max_trailers;
} chunk_case_t;

#define TAIL "GET / HTTP/1.1\r\n"

static const chunk_case_t valid_cases[] = {
    {"5\r\nhello\r\n0\r\n\r\n", 0, "hello", 0, 0},
    {"3\r\nabc\r\n2\r\nde\r\n1\r\nf\r\n0\r\n\r\n", 0, "abcdef", 0, 0},
    {"A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n", 0, "0123456789abcdefghij", 0, 0},
    {"0005\r\nhello\r\n000\r\n\r\n", 0, "hello", 0, 0},
    {"0\r\n\r\n", 0, "", 0, 0},
    {"0000000000000000\r\n\r\n", 0, "", 0, 0},
    {"0000000000000002\r\nhi\r\n0\r\n\r\n", 0, "hi", 0, 0},
    {"2\r\n\r\n\r\n0\r\n\r\n", 0, "\r\n", 0, 0},
    {"5;foo=bar\r\nhello\r\n0\r\n\r\n", 0, "hello", 0, 0},
    {"5 ; foo = bar\r\nhello\r\n0\r\n\r\n", 0, "hello", 0, 0},
    {"5\t;\tfoo\t=\tbar ;x\r\nhello\r\n0\r\n\r\n", 0, "hello", 0, 0},
    {"5;foo\r\nhello\r\n0\r\n\r\n", 0, "hello", 0, 0},
    {"5;a;b=c;d\r\nhello\r\n0;last=1\r\n\r\n", 0, "hello", 0, 0},
    {"5;a=\"q \\\"x\\\\ y\"\r\nhello\r\n0\r\n\r\n", 0, "hello", 0, 0},
    {"5;a=\"\" ;b=\"\t\x80\"\r\nhello\r\n0\r\n\r\n", 0, "hello", 0, 0},
    {"5;a=\"x\";b=y\r\nhello\r\n0\r\n\r\n", 0, "hello", 0, 0},
    {"5;!#$%&'*+-.^_`|~=!#$%&'*+-.^_`|~\r\nhello\r\n0\r\n\r\n", 0, "hello", 0, 0},
    {"0\r\nX-Trailer: value\r\nY:\r\nZ: a\tb \x80\r\n\r\n", 0, "", 0, 0},
    {"3\r\nabc\r\n0\r\nChecksum: 1234\r\n\r\n", 0, "abc", 0, 0},
    {"5\r\nhello\r\n0\r\n\r\n" TAIL, 16, "hello", 0, 0},
    {"5\r\nhello\r\n0\r\nT: v\r\n\r\n" TAIL, 16, "hello", 0, 0},
    {"1\r\nx\r\n0\r\n\r\n\r\n", 2, "x", 0, 0},
    /* incomplete */
    {"5\r\nhel", PT_AGAIN, "hel", 0, 0},
    {"5\r\nhello\r\n", PT_AGAIN, "hello", 0, 0},
    {"5\r\nhello\r\n0\r\n", PT_AGAIN, "hello", 0, 0},
    {"5\r\nhello\r\n0\r\nX: y\r\n", PT_AGAIN, "hello", 0, 0},
    {"4000000000000000\r\nabc", PT_AGAIN, "abc", 0, 0}, /* 2^62: the largest chunk */
    {"", PT_AGAIN, "", 0, 0},
};

static const chunk_case_t bad_cases[] = {
    /* chunk size */
    {"0x5\r\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"+5\r\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"-5\r\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {" 5\r\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"\t5\r\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"5 \r\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"5\t\r\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"5 5\r\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"5_0\r\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"_5\r\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"g\r\n", -400, NULL, 0, 0},
    {"\r\n", -400, NULL, 0, 0},
    {";a=b\r\n", -400, NULL, 0, 0},
    {"5\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"5\rhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"5\rxhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"5;a=b\rxhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"4000000000000001\r\n", -400, NULL, 0, 0},
    {"FFFFFFFFFFFFFFFF\r\n", -400, NULL, 0, 0},
    {"10000000000000000\r\n", -400, NULL, 0, 0},
    {"00000000000000001\r\n", -400, NULL, 0, 0},
    {"5\0\r\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    /* extensions */
    {"5;\r\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"5; \r\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"5;=x\r\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"5;a=\r\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"5;a =\r\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"5;a \r\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"5;a b\r\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"5;a=b c\r\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"5;a=b \r\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"5;a=\"x\"y\r\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"5;a=\"x\r\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"5;a=\"x\x01\"\r\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"5;a=\"x\\\x01\"\r\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"5;a=b=c\r\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"5;a(b\r\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"5;a=b\n\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"5;a=\x80\r\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    /* chunk data framing */
    {"5\r\nhello0\r\n\r\n", -400, NULL, 0, 0},
    {"5\r\nhelloX\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"5\r\nhello\n0\r\n\r\n", -400, NULL, 0, 0},
    {"5\r\nhello\r0\r\n\r\n", -400, NULL, 0, 0},
    {"5\r\nhello\r\r\n0\r\n\r\n", -400, NULL, 0, 0},
    {"3\r\nhello\r\n0\r\n\r\n", -400, NULL, 0, 0},
    /* last chunk, trailers */
    {"0\r\n\n", -400, NULL, 0, 0},
    {"0\r\n\rX", -400, NULL, 0, 0},
    {"0\rx\r\n", -400, NULL, 0, 0},
    {"0\r\nX: a\rx\r\n", -400, NULL, 0, 0},
    {"0\n\r\n", -400, NULL, 0, 0},
    {"0\r\nX: a\n\r\n", -400, NULL, 0, 0},
    {"0\r\nX: a\rb\r\n\r\n", -400, NULL, 0, 0},
    {"0\r\n: v\r\n\r\n", -400, NULL, 0, 0},
    {"0\r\n v\r\n\r\n", -400, NULL, 0, 0},
    {"0\r\nX: a\r\n b\r\n\r\n", -400, NULL, 0, 0},
    {"0\r\nX : v\r\n\r\n", -400, NULL, 0, 0},
    {"0\r\nX\r\n\r\n", -400, NULL, 0, 0},
    {"0\r\nX: a\0\r\n\r\n", -400, NULL, 0, 0},
    {"0\r\nX: a\x7f\r\n\r\n", -400, NULL, 0, 0},
    {"0\r\nX\xc3\xa9: a\r\n\r\n", -400, NULL, 0, 0},
    /* limits */
    {"5;a=bbbbbbbbbbb\r\nhello\r\n0\r\n\r\n", -400, NULL, 14, 0},
    {"5;a=bbbbbbbbbb\r\nhello\r\n0\r\n\r\n", 0, "hello", 14, 0},
    {"0\r\nX: 1234567890\r\n\r\n", -400, NULL, 0, 15},
    {"0\r\nX: 123456789\r\n\r\n", 0, "", 0, 16},
    {"0\r\nX: 1234567\r\nY: 1\r\n\r\n", -400, NULL, 0, 16},
};

/* A NUL inside the input string: take the length from the literal. */
static size_t case_len(const chunk_case_t *c)
{
    if (strcmp(c->in, "5\0") == 0) return sizeof("5\0\r\nhello\r\n0\r\n\r\n") - 1;
    if (strcmp(c->in, "0\r\nX: a") == 0 && c->in[7] == '\0') return sizeof("0\r\nX: a\0\r\n\r\n") - 1;
    return strlen(c->in);
}

typedef struct result {
    ssize_t rc;
    char out[256];
    size_t out_len;
    char rest[64]; /* bytes after the message */
    size_t rest_len;
} result_t;

static void init_dec(pt_http_chunked_t *d, const chunk_case_t *c)
{
    d->max_line = c->max_line;
    d->max_trailers = c->max_trailers;
    pt_http_chunked_init(d);
}

/*
 * Feeds in[0..len) in pieces of at most step bytes (0: all at once), each
 * piece in its own exactly-sized heap buffer.
 */
static void decode_in_steps(const chunk_case_t *c, const char *in, size_t len, size_t step,
                            result_t *res)
{
    pt_http_chunked_t d;
    size_t off = 0;

    memset(res, 0, sizeof(*res));
    init_dec(&d, c);
    res->rc = PT_AGAIN;
    do {
        size_t n = step == 0 ? len - off : pt_min(step, len - off);
        char *buf = malloc(n ? n : 1);
        assert_non_null(buf);
        memcpy(buf, in + off, n);
        size_t dlen = n;
        ssize_t rc = pt_http_chunked_decode(&d, buf, &dlen);
        assert_true(dlen <= n);
        if (rc != -400) {
            assert_true(res->out_len + dlen <= sizeof(res->out));
            memcpy(res->out + res->out_len, buf, dlen);
            res->out_len += dlen;
        }
        off += n;
        if (rc >= 0) {
            /* Pipelined bytes: those left in this piece, then the unread input. */
            assert_true((size_t)rc <= n - dlen);
            memcpy(res->rest, buf + dlen, (size_t)rc);
            memcpy(res->rest + rc, in + off, len - off);
            res->rest_len = (size_t)rc + len - off;
            res->rc = (ssize_t)res->rest_len;
            free(buf);
            return;
        }
        free(buf);
        res->rc = rc;
        if (rc == -400) return;
    } while (off < len);
}

static void check_case(const chunk_case_t *c, size_t idx)
{
    size_t len = case_len(c);
    result_t one, step;

    decode_in_steps(c, c->in, len, 0, &one);
    if (one.rc != c->rc) print_error("chunk case %zu: got %zd, want %zd\n", idx, one.rc, c->rc);
    assert_int_equal(one.rc, c->rc);
    if (c->rc != -400) {
        assert_int_equal(one.out_len, strlen(c->out));
        assert_memory_equal(one.out, c->out, one.out_len);
    }
    if (c->rc >= 0) assert_memory_equal(one.rest, c->in + len - c->rc, (size_t)c->rc);

    for (size_t s = 1; s <= len; s++) {
        decode_in_steps(c, c->in, len, s, &step);
        if (step.rc != c->rc)
            print_error("chunk case %zu step %zu: got %zd, want %zd\n", idx, s, step.rc, c->rc);
        assert_int_equal(step.rc, one.rc);
        if (c->rc != -400) {
            assert_int_equal(step.out_len, one.out_len);
            assert_memory_equal(step.out, one.out, one.out_len);
        }
        if (c->rc >= 0) assert_memory_equal(step.rest, one.rest, (size_t)c->rc);
    }
}

static void test_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < pt_countof(valid_cases); i++) check_case(&valid_cases[i], i);
}

static void test_malformed(void **state)
{
    (void)state;
    for (size_t i = 0; i < pt_countof(bad_cases); i++) check_case(&bad_cases[i], i);
}

/* Two-piece splits at every point: data keeps flowing across calls. */
static void test_split_everywhere(void **state)
{
    (void)state;
    const char *in = "4;x=\"y\"\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n"
                     "0\r\nExpires: never\r\n\r\nNEXT";
    size_t len = strlen(in);

    for (size_t k = 0; k <= len; k++) {
        pt_http_chunked_t d = {0};
        char buf[128];
        char out[128];
        size_t out_len = 0;

        pt_http_chunked_init(&d);
        memcpy(buf, in, k);
        size_t n = k;
        ssize_t rc = pt_http_chunked_decode(&d, buf, &n);
        memcpy(out, buf, n);
        out_len = n;
        if (rc == PT_AGAIN) {
            memcpy(buf, in + k, len - k);
            n = len - k;
            rc = pt_http_chunked_decode(&d, buf, &n);
            memcpy(out + out_len, buf, n);
            out_len += n;
            assert_int_equal(rc, 4);
            assert_memory_equal(buf + n, "NEXT", 4);
        } else {
            assert_true(rc >= 0);
            assert_int_equal((size_t)rc + (len - k), 4);
        }
        assert_int_equal(out_len, 23);
        assert_memory_equal(out, "Wikipedia in\r\n\r\nchunks.", 23);
        assert_int_equal(d.body_bytes, 23);
    }
}

static void test_state_after_end(void **state)
{
    (void)state;
    pt_http_chunked_t d = {.max_line = 100};
    char buf[] = "0\r\n\r\nxy";
    size_t n = sizeof(buf) - 1;

    pt_http_chunked_init(&d);
    assert_int_equal(d.max_line, 100);
    assert_int_equal(pt_http_chunked_decode(&d, buf, &n), 2);
    assert_int_equal(n, 0);
    assert_memory_equal(buf, "xy", 2);
    /* Once done, everything is "after the message". */
    char more[] = "abc";
    n = 3;
    assert_int_equal(pt_http_chunked_decode(&d, more, &n), 3);
    assert_int_equal(n, 0);
    /* An error sticks. */
    char bad[] = "x\r\n";
    pt_http_chunked_init(&d);
    n = 3;
    assert_int_equal(pt_http_chunked_decode(&d, bad, &n), -400);
    char good[] = "0\r\n\r\n";
    n = 5;
    assert_int_equal(pt_http_chunked_decode(&d, good, &n), -400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_split_everywhere),
        cmocka_unit_test(test_state_after_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
