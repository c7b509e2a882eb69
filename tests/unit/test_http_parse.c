/*
 * HTTP/1 head parser: tables of valid and malformed requests and
 * responses. Every case is parsed in one shot and fed byte by byte (each
 * prefix in an exactly-sized copy, so ASan sees any read past the end);
 * both must give the same result.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

#define NHDR 64
#define ALL 0 /* expected rc: the whole input is the head */

static const pt_http_limits_t default_limits = {.max_head = 8192, .max_line = 1024, .max_headers = 32};

/* ------------------------------------------------------------------ */
/* requests                                                            */
/* ------------------------------------------------------------------ */

typedef struct req_case {
    const char *in;
    size_t in_len; /* 0: strlen(in) */
    int rc;        /* ALL, a head length, or -status */
    /* Checked only when rc > 0 / ALL: */
    const char *method;
    pt_http_method_t method_id;
    const char *target;
    pt_http_target_form_t form;
    const char *path;
    const char *host; /* NULL: expect no host */
    int version;
    size_t nheaders;
    int64_t cl;
    unsigned flags;
} req_case_t;

#define F_CH PT_HTTP_F_CHUNKED
#define F_CL PT_HTTP_F_CLOSE
#define F_KA PT_HTTP_F_KEEPALIVE
#define F_UP PT_HTTP_F_UPGRADE
#define F_EX PT_HTTP_F_EXPECT_100
#define F_HC PT_HTTP_F_HAS_CL

#define ORIGIN PT_HTTP_FORM_ORIGIN
#define ABS PT_HTTP_FORM_ABSOLUTE
#define AUTH PT_HTTP_FORM_AUTHORITY
#define STAR PT_HTTP_FORM_ASTERISK

/* A valid GET for host h with extra header lines x. */
#define GET11(x) "GET / HTTP/1.1\r\nHost: h\r\n" x "\r\n"

static const req_case_t valid_requests[] = {
    {"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", 0, ALL, "GET", PT_HTTP_GET, "/", ORIGIN, "/",
     "example.com", 11, 1, -1, 0},
    {"GET /a?b=c HTTP/1.1\nHost: h\n\n", 0, ALL, "GET", PT_HTTP_GET, "/a?b=c", ORIGIN, "/a?b=c",
     "h", 11, 1, -1, 0},
    {"GET / HTTP/1.1\nHost: h\r\n\n", 0, ALL, "GET", PT_HTTP_GET, "/", ORIGIN, "/", "h", 11, 1, -1, 0},
    {"\r\n\r\n\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 0, ALL, "GET", PT_HTTP_GET, "/", ORIGIN, "/",
     "h", 11, 1, -1, 0},
    {"GET / HTTP/1.0\r\n\r\n", 0, ALL, "GET", PT_HTTP_GET, "/", ORIGIN, "/", NULL, 10, 0, -1, F_CL},
    {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0, ALL, "GET", PT_HTTP_GET, "/", ORIGIN,
     "/", NULL, 10, 1, -1, F_KA},
    {"GET / HTTP/1.0\r\nConnection: Keep-Alive, close\r\n\r\n", 0, ALL, "GET", PT_HTTP_GET, "/",
     ORIGIN, "/", NULL, 10, 1, -1, F_KA | F_CL},
    {GET11("Connection: close\r\n"), 0, ALL, "GET", PT_HTTP_GET, "/", ORIGIN, "/", "h", 11, 2, -1,
     F_CL},
    {GET11("Connection: CLOSE\r\n"), 0, ALL, "GET", PT_HTTP_GET, "/", ORIGIN, "/", "h", 11, 2, -1,
     F_CL},
    {GET11("Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"), 0, ALL, "GET",
     PT_HTTP_GET, "/", ORIGIN, "/", "h", 11, 3, -1, F_KA | F_UP},
    {GET11("Connection: foo\r\nConnection: ,upgrade ,\r\nUpgrade: h2c\r\n"), 0, ALL, "GET",
     PT_HTTP_GET, "/", ORIGIN, "/", "h", 11, 4, -1, F_UP},
    {GET11("Connection: upgrade\r\n"), 0, ALL, "GET", PT_HTTP_GET, "/", ORIGIN, "/", "h", 11, 2,
     -1, 0},
    {GET11("Upgrade: websocket\r\n"), 0, ALL, "GET", PT_HTTP_GET, "/", ORIGIN, "/", "h", 11, 2, -1,
     0},
    {GET11("Connection: upgraded, closed\r\n"), 0, ALL, "GET", PT_HTTP_GET, "/", ORIGIN, "/", "h",
     11, 2, -1, 0},
    {"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n", 0, ALL, "POST", PT_HTTP_POST,
     "/p", ORIGIN, "/p", "h", 11, 2, 5, F_HC},
    {"POST /p HTTP/1.1\r\nHost: h\r\ncontent-length:5\r\nCONTENT-LENGTH: \t5 \r\n\r\n", 0, ALL,
     "POST", PT_HTTP_POST, "/p", ORIGIN, "/p", "h", 11, 3, 5, F_HC},
    {GET11("Content-Length: 0\r\n"), 0, ALL, "GET", PT_HTTP_GET, "/", ORIGIN, "/", "h", 11, 2, 0,
     F_HC},
    {GET11("Content-Length: 007\r\n"), 0, ALL, "GET", PT_HTTP_GET, "/", ORIGIN, "/", "h", 11, 2, 7,
     F_HC},
    {GET11("Content-Length: 4611686018427387904\r\n"), 0, ALL, "GET", PT_HTTP_GET, "/", ORIGIN,
     "/", "h", 11, 2, INT64_C(4611686018427387904), F_HC},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", 0, ALL, "POST",
     PT_HTTP_POST, "/", ORIGIN, "/", "h", 11, 2, -1, F_CH},
    {GET11("Transfer-Encoding: Chunked\r\n"), 0, ALL, "GET", PT_HTTP_GET, "/", ORIGIN, "/", "h", 11,
     2, -1, F_CH},
    {GET11("transfer-encoding: CHUNKED\r\n"), 0, ALL, "GET", PT_HTTP_GET, "/", ORIGIN, "/", "h", 11,
     2, -1, F_CH},
    {GET11("Transfer-Encoding:\tchunked\t\r\n"), 0, ALL, "GET", PT_HTTP_GET, "/", ORIGIN, "/", "h",
     11, 2, -1, F_CH},
    {GET11("Transfer-Encoding: , chunked ,\r\n"), 0, ALL, "GET", PT_HTTP_GET, "/", ORIGIN, "/", "h",
     11, 2, -1, F_CH},
    {GET11("Expect: 100-continue\r\n"), 0, ALL, "GET", PT_HTTP_GET, "/", ORIGIN, "/", "h", 11, 2, -1,
     F_EX},
    {GET11("Expect: 100-Continue\r\n"), 0, ALL, "GET", PT_HTTP_GET, "/", ORIGIN, "/", "h", 11, 2, -1,
     F_EX},
    {GET11("Expect: 200-ok\r\n"), 0, ALL, "GET", PT_HTTP_GET, "/", ORIGIN, "/", "h", 11, 2, -1, 0},
    {"GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", 0, ALL, "GET", PT_HTTP_GET, "/", ORIGIN, "/",
     NULL, 10, 1, -1, F_CL},
    /* absolute-form: the authority wins over Host (RFC 9112 3.2.2) */
    {"GET http://example.com/p?q HTTP/1.1\r\nHost: other\r\n\r\n", 0, ALL, "GET", PT_HTTP_GET,
     "http://example.com/p?q", ABS, "/p?q", "example.com", 11, 1, -1, 0},
    {"GET HTTPS://Example.COM:8443/x HTTP/1.1\r\nHost: e\r\n\r\n", 0, ALL, "GET", PT_HTTP_GET,
     "HTTPS://Example.COM:8443/x", ABS, "/x", "Example.COM:8443", 11, 1, -1, 0},
    {"GET http://h HTTP/1.1\r\nHost: h\r\n\r\n", 0, ALL, "GET", PT_HTTP_GET, "http://h", ABS, "/",
     "h", 11, 1, -1, 0},
    {"GET http://[::1]:80/ HTTP/1.0\r\n\r\n", 0, ALL, "GET", PT_HTTP_GET, "http://[::1]:80/", ABS,
     "/", "[::1]:80", 10, 0, -1, F_CL},
    {"OPTIONS http://h:81 HTTP/1.1\r\nHost: h\r\n\r\n", 0, ALL, "OPTIONS", PT_HTTP_OPTIONS,
     "http://h:81", ABS, "*", "h:81", 11, 1, -1, 0},
    {"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", 0, ALL, "OPTIONS", PT_HTTP_OPTIONS, "*", STAR, "*",
     "h", 11, 1, -1, 0},
    {"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 0, ALL, "CONNECT",
     PT_HTTP_CONNECT, "example.com:443", AUTH, "example.com:443", "example.com:443", 11, 1, -1, 0},
    {"CONNECT [2001:db8::1]:8443 HTTP/1.1\r\nHost: x\r\n\r\n", 0, ALL, "CONNECT", PT_HTTP_CONNECT,
     "[2001:db8::1]:8443", AUTH, "[2001:db8::1]:8443", "x", 11, 1, -1, 0},
    {"GET / HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\n\r\n", 0, ALL, "GET", PT_HTTP_GET, "/", ORIGIN,
     "/", "[2001:db8::1]:8080", 11, 1, -1, 0},
    {"GET / HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n", 0, ALL, "GET", PT_HTTP_GET, "/", ORIGIN, "/",
     "127.0.0.1:80", 11, 1, -1, 0},
    {"GET / HTTP/1.1\r\nHost: ex%41mple.com\r\n\r\n", 0, ALL, "GET", PT_HTTP_GET, "/", ORIGIN, "/",
     "ex%41mple.com", 11, 1, -1, 0},
    {"GET / HTTP/1.1\r\nHost: a-b_c~d!$&'()*+,;=.e:65535\r\n\r\n", 0, ALL, "GET", PT_HTTP_GET, "/",
     ORIGIN, "/", "a-b_c~d!$&'()*+,;=.e:65535", 11, 1, -1, 0},
    {"GET / HTTP/1.1\r\nHost:\r\n\r\n", 0, ALL, "GET", PT_HTTP_GET, "/", ORIGIN, "/", "", 11, 1, -1,
     0},
    {GET11("X-Obs: \x80\xff caf\xc3\xa9\r\nX-Tab: a\tb\r\nX-Empty:\r\nX-Sp:   \r\n"), 0, ALL,
     "GET", PT_HTTP_GET, "/", ORIGIN, "/", "h", 11, 5, -1, 0},
    {GET11("X-Long: \x80\xff\xfe\x81 0123456789abcdef~!@#$%^&*()_+{}|:\"<>?\t \t0123456789 \xff \r\n"),
     0, ALL, "GET", PT_HTTP_GET, "/", ORIGIN, "/", "h", 11, 2, -1, 0},
    {"GET /0123456789abcdef~!@#$%^&*()_+{}|:\"<>?\x80\xff\xfe/0123456789abcdef HTTP/1.1\r\nHost: h\r\n\r\n",
     0, ALL, "GET", PT_HTTP_GET, "/0123456789abcdef~!@#$%^&*()_+{}|:\"<>?\x80\xff\xfe/0123456789abcdef",
     ORIGIN, "/0123456789abcdef~!@#$%^&*()_+{}|:\"<>?\x80\xff\xfe/0123456789abcdef", "h", 11, 1, -1, 0},
    {GET11("!#$%&'*+-.^_`|~09azAZ: v\r\n"), 0, ALL, "GET", PT_HTTP_GET, "/", ORIGIN, "/", "h", 11,
     2, -1, 0},
    {"get /x HTTP/1.1\r\nHost: h\r\n\r\n", 0, ALL, "get", PT_HTTP_OTHER, "/x", ORIGIN, "/x", "h",
     11, 1, -1, 0},
    {"PROPFIND /d/ HTTP/1.1\r\nHost: h\r\n\r\n", 0, ALL, "PROPFIND", PT_HTTP_OTHER, "/d/", ORIGIN,
     "/d/", "h", 11, 1, -1, 0},
    {"M-SEARCH-WITH-A-LONG-NAME /x HTTP/1.1\r\nHost: h\r\n\r\n", 0, ALL,
     "M-SEARCH-WITH-A-LONG-NAME", PT_HTTP_OTHER, "/x", ORIGIN, "/x", "h", 11, 1, -1, 0},
    {"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", 0, ALL, "HEAD", PT_HTTP_HEAD, "/", ORIGIN, "/", "h", 11,
     1, -1, 0},
    {"PUT / HTTP/1.1\r\nHost: h\r\n\r\n", 0, ALL, "PUT", PT_HTTP_PUT, "/", ORIGIN, "/", "h", 11, 1,
     -1, 0},
    {"DELETE / HTTP/1.1\r\nHost: h\r\n\r\n", 0, ALL, "DELETE", PT_HTTP_DELETE, "/", ORIGIN, "/", "h",
     11, 1, -1, 0},
    {"TRACE / HTTP/1.1\r\nHost: h\r\n\r\n", 0, ALL, "TRACE", PT_HTTP_TRACE, "/", ORIGIN, "/", "h", 11,
     1, -1, 0},
    {"PATCH / HTTP/1.1\r\nHost: h\r\n\r\n", 0, ALL, "PATCH", PT_HTTP_PATCH, "/", ORIGIN, "/", "h", 11,
     1, -1, 0},
    {"GET /%7Efoo/\xc3\xa9?a=[1]&b=\"x\"#f HTTP/1.1\r\nHost: h\r\n\r\n", 0, ALL, "GET", PT_HTTP_GET,
     "/%7Efoo/\xc3\xa9?a=[1]&b=\"x\"#f", ORIGIN, "/%7Efoo/\xc3\xa9?a=[1]&b=\"x\"#f", "h", 11, 1,
     -1, 0},
    /* pipelined: only the first head counts */
    {"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n", 0, 28, "GET",
     PT_HTTP_GET, "/1", ORIGIN, "/1", "h", 11, 1, -1, 0},
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", 0, 47, "POST", PT_HTTP_POST, "/",
     ORIGIN, "/", "h", 11, 2, 3, F_HC},
};

typedef struct bad_case {
    const char *in;
    size_t in_len; /* 0: strlen(in) */
    int rc;
} bad_case_t;

static const bad_case_t bad_requests[] = {
    /* framing: CL.TE, TE in 1.0, TE lists */
    {GET11("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"), 0, -400},
    {GET11("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"), 0, -400},
    {GET11("Transfer-Encoding: chunked\r\nContent-Length: x\r\n"), 0, -400},
    {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 0, -400},
    {GET11("Transfer-Encoding: chunked, chunked\r\n"), 0, -400},
    {GET11("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), 0, -400},
    {GET11("Transfer-Encoding: gzip, chunked\r\n"), 0, -501},
    {GET11("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"), 0, -501},
    {GET11("Transfer-Encoding: deflate;q=1 , chunked\r\n"), 0, -501},
    {GET11("Transfer-Encoding: chunked, gzip\r\n"), 0, -400},
    {GET11("Transfer-Encoding: gzip\r\n"), 0, -400},
    {GET11("Transfer-Encoding: identity\r\n"), 0, -400},
    {GET11("Transfer-Encoding: chunked;ext=1\r\n"), 0, -400},
    {GET11("Transfer-Encoding: chunk ed\r\n"), 0, -400},
    {GET11("Transfer-Encoding: \"chunked\"\r\n"), 0, -400},
    {GET11("Transfer-Encoding: x y, chunked\r\n"), 0, -400},
    {GET11("Transfer-Encoding: \r\n"), 0, -400},
    {GET11("Transfer-Encoding: ,\r\n"), 0, -400},
    {GET11("Transfer-Encoding:\r\nTransfer-Encoding: chunked\r\n"), 0, -400},
    {GET11("Transfer-Encoding: chunked\r\nTransfer-Encoding: ,\r\n"), 0, -400},
    {GET11("Transfer-Encoding: \x0b" "chunked\r\n"), 0, -400},
    {GET11("Transfer-Encoding : chunked\r\n"), 0, -400},
    {GET11("Transfer-Encoding\t: chunked\r\n"), 0, -400},
    {GET11(" Transfer-Encoding: chunked\r\n"), 0, -400},
    {GET11("X: y\r\n Transfer-Encoding: chunked\r\n"), 0, -400},
    {GET11("Transfer-Encoding:\r\n chunked\r\n"), 0, -400},
    /* Content-Length */
    {GET11("Content-Length: 5\r\nContent-Length: 6\r\n"), 0, -400},
    {GET11("Content-Length: 5, 5\r\n"), 0, -400},
    {GET11("Content-Length: 5,\r\n"), 0, -400},
    {GET11("Content-Length: +5\r\n"), 0, -400},
    {GET11("Content-Length: -5\r\n"), 0, -400},
    {GET11("Content-Length: 5 5\r\n"), 0, -400},
    {GET11("Content-Length: 0x5\r\n"), 0, -400},
    {GET11("Content-Length: 1e3\r\n"), 0, -400},
    {GET11("Content-Length: \r\n"), 0, -400},
    {GET11("Content-Length: 4611686018427387905\r\n"), 0, -400},
    {GET11("Content-Length: 99999999999999999999999999\r\n"), 0, -400},
    {GET11("Content-Length : 5\r\n"), 0, -400},
    /* line and field syntax */
    {GET11("X: a\r\n b\r\n"), 0, -400},
    {GET11("X: a\r\n\tb\r\n"), 0, -400},
    {"GET / HTTP/1.1\r\n Host: h\r\n\r\n", 0, -400},
    {GET11("X: a\rb\r\n"), 0, -400},
    {GET11("X: a\r\r\n"), 0, -400},
    {"GET / HTTP/1.1\rHost: h\r\n\r\n", 0, -400},
    {"GET / HTTP/1.1\r\nHost: h\r\n\r\r\n\r\n", 0, -400},
    {"GET / HTTP/1.1\r\nHost: h\r\n\rX\n\n", 0, -400},
    {GET11("X: a\0b\r\n"), sizeof(GET11("X: a\0b\r\n")) - 1, -400},
    {GET11("X\0: b\r\n"), sizeof(GET11("X\0: b\r\n")) - 1, -400},
    {GET11("X: a\x7f\r\n"), 0, -400},
    {GET11("X: a\x01\r\n"), 0, -400},
    /* CTLs far into long values and targets (the word-at-a-time path) */
    {GET11("X: 0123456789abcdef0123456789\x7f" "abcdef\r\n"), 0, -400},
    {GET11("X: 0123456789abcdef0123456\x7f\r\n"), 0, -400},
    {GET11("X: 0123456789abcdef012345678\x1f" "abcdef\r\n"), 0, -400},
    {GET11("X: 0123456789abcdef01234567\x0b" "0123456789abcdef\r\n"), 0, -400},
    {GET11("X: 0123456789abcdef0123456789abcdef012345\r0123456789abcdef\r\n"), 0, -400},
    {"GET /0123456789abcdef0123456789\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"GET /0123456789abcdef01234567\x01/ HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"GET /0123456789abcdef012345678\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {GET11("X : a\r\n"), 0, -400},
    {GET11("X\t: a\r\n"), 0, -400},
    {GET11(": a\r\n"), 0, -400},
    {GET11("X a\r\n"), 0, -400},
    {GET11("X(y): a\r\n"), 0, -400},
    {GET11("X\xc3\xa9: a\r\n"), 0, -400},
    /* Host */
    {"GET / HTTP/1.1\r\n\r\n", 0, -400},
    {"GET / HTTP/1.1\r\nX-Host: h\r\n\r\n", 0, -400},
    {GET11("Host: h\r\n"), 0, -400},
    {GET11("HOST: other\r\n"), 0, -400},
    {"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 0, -400},
    {"GET http://h/ HTTP/1.1\r\n\r\n", 0, -400},
    {"GET / HTTP/1.1\r\nHost: exa mple.com\r\n\r\n", 0, -400},
    {"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 0, -400},
    {"GET / HTTP/1.1\r\nHost: user@h\r\n\r\n", 0, -400},
    {"GET / HTTP/1.1\r\nHost: h:x\r\n\r\n", 0, -400},
    {"GET / HTTP/1.1\r\nHost: h:\r\n\r\n", 0, -400},
    {"GET / HTTP/1.1\r\nHost: h:123456\r\n\r\n", 0, -400},
    {"GET / HTTP/1.1\r\nHost: h:65536\r\n\r\n", 0, -400},
    {"GET / HTTP/1.1\r\nHost: h:80:80\r\n\r\n", 0, -400},
    {"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 0, -400},
    {"GET / HTTP/1.1\r\nHost: []\r\n\r\n", 0, -400},
    {"GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", 0, -400},
    {"GET / HTTP/1.1\r\nHost: ::1\r\n\r\n", 0, -400},
    {"GET / HTTP/1.1\r\nHost: h%4\r\n\r\n", 0, -400},
    {"GET / HTTP/1.1\r\nHost: h%zz\r\n\r\n", 0, -400},
    {"GET / HTTP/1.1\r\nHost: h\xc3\xa9\r\n\r\n", 0, -400},
    {"GET / HTTP/1.0\r\nHost: a b\r\n\r\n", 0, -400},
    {"GET http://h/ HTTP/1.1\r\nHost: a b\r\n\r\n", 0, -400},
    /* request line */
    {"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"GET /  HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"GET /\tHTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 0, -400},
    {"GET / HTTP/1.1\t\r\nHost: h\r\n\r\n", 0, -400},
    {" GET / HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"\tGET / HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"\rGET / HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {" / HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"G(ET / HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"G\xc3\xa9T / HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"GET /\r\nHost: h\r\n\r\n", 0, -400},
    {"GET / \r\nHost: h\r\n\r\n", 0, -400},
    {"GET\r\n\r\n", 0, -400},
    {"GET / HTTP/1.1", 0, PT_AGAIN},
    {"GET / http/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"GET / HTTP/1.1x\r\nHost: h\r\n\r\n", 0, -400},
    {"GET / HTTP/1.\r\nHost: h\r\n\r\n", 0, -400},
    {"GET / HTTP/10.1\r\nHost: h\r\n\r\n", 0, -400},
    {"GET / HTTP/1\r\nHost: h\r\n\r\n", 0, -400},
    {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 0, -505},
    {"GET / HTTP/1.2\r\nHost: h\r\n\r\n", 0, -505},
    {"GET / HTTP/0.9\r\nHost: h\r\n\r\n", 0, -505},
    {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0, -505},
    {"GET /a\x01" "b HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 0, -400}, /* TLS on a plain port */
    /* target forms */
    {"GET * HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"OPTIONS *x HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"OPTIONS ** HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"GET example.com:80 HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"GET example.com/ HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"CONNECT example.com HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"CONNECT example.com: HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"CONNECT :443 HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"CONNECT http://example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"CONNECT * HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"GET http:/h/ HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"GET http:// HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"GET http://:80/x HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"GET http://user@h/ HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"GET http://h?q HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"GET http://h#f HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
    {"GET http://h:x/ HTTP/1.1\r\nHost: h\r\n\r\n", 0, -400},
};

static void check_req_fields(const req_case_t *c, const pt_http_req_t *r, const char *in,
                             size_t in_len)
{
    assert_int_equal(r->method_len, strlen(c->method));
    assert_memory_equal(r->method, c->method, r->method_len);
    assert_int_equal(r->method_id, c->method_id);
    assert_int_equal(r->target_len, strlen(c->target));
    assert_memory_equal(r->target, c->target, r->target_len);
    assert_int_equal(r->form, c->form);
    assert_int_equal(r->path_len, strlen(c->path));
    assert_memory_equal(r->path, c->path, r->path_len);
    if (c->host == NULL) {
        assert_null(r->host);
    } else {
        assert_non_null(r->host);
        assert_int_equal(r->host_len, strlen(c->host));
        assert_memory_equal(r->host, c->host, r->host_len);
        assert_true(r->host >= in && r->host + r->host_len <= in + in_len);
    }
    assert_int_equal(r->version, c->version);
    assert_int_equal(r->nheaders, c->nheaders);
    assert_int_equal(r->content_length, c->cl);
    assert_int_equal(r->flags, c->flags);
    assert_true(r->method >= in && r->target + r->target_len <= in + in_len);
}

static size_t case_len(const char *in, size_t in_len)
{
    return in_len != 0 ? in_len : strlen(in);
}

/* Parses in[0..len) from an exactly-sized heap copy. */
static int parse_req_copy(const char *in, size_t len, size_t last_len, pt_http_req_t *r,
                          const pt_http_limits_t *lim, char **copy)
{
    *copy = malloc(len ? len : 1);
    assert_non_null(*copy);
    memcpy(*copy, in, len);
    return pt_http_parse_request(*copy, len, last_len, r, lim);
}

/*
 * Feeds in one byte more per call. Returns the first result that is not
 * PT_AGAIN (or PT_AGAIN), leaving the buffer it was parsed from in *copy.
 */
static int feed_req_bytewise(const char *in, size_t len, pt_http_req_t *r,
                             const pt_http_limits_t *lim, char **copy)
{
    int rc = PT_AGAIN;
    size_t last = 0;

    *copy = NULL;
    for (size_t i = 1; i <= len; i++) {
        free(*copy);
        rc = parse_req_copy(in, i, last, r, lim, copy);
        if (rc != PT_AGAIN) return rc;
        last = i;
    }
    return rc;
}

static void run_req_case(const req_case_t *c, size_t idx, const pt_http_limits_t *lim)
{
    size_t len = case_len(c->in, c->in_len);
    pt_http_hdr_t hdrs[NHDR];
    pt_http_req_t r = {.headers = hdrs};
    char *copy;
    int expect = c->rc == ALL ? (int)len : c->rc;

    int rc = parse_req_copy(c->in, len, 0, &r, lim, &copy);
    if (rc != expect) print_error("request case %zu: got %d, want %d\n", idx, rc, expect);
    assert_int_equal(rc, expect);
    if (rc > 0) {
        assert_int_equal(r.head_len, (size_t)rc);
        check_req_fields(c, &r, copy, len);
    }
    free(copy);

    pt_http_req_t r2 = {.headers = hdrs};
    int rc2 = feed_req_bytewise(c->in, len, &r2, lim, &copy);
    if (rc2 != expect) print_error("request case %zu bytewise: got %d, want %d\n", idx, rc2, expect);
    assert_int_equal(rc2, expect);
    if (rc2 > 0) check_req_fields(c, &r2, copy, (size_t)rc2);
    free(copy);
}

static void test_valid_requests(void **state)
{
    (void)state;
    for (size_t i = 0; i < pt_countof(valid_requests); i++)
        run_req_case(&valid_requests[i], i, &default_limits);
}

static void test_bad_requests(void **state)
{
    (void)state;
    for (size_t i = 0; i < pt_countof(bad_requests); i++) {
        req_case_t c = {.in = bad_requests[i].in, .in_len = bad_requests[i].in_len,
                        .rc = bad_requests[i].rc};
        run_req_case(&c, i, &default_limits);
    }
}

static void test_request_headers(void **state)
{
    (void)state;
    const char *in = "GET / HTTP/1.1\r\nHost:  h \r\nX-A:\tone two\t\r\nx-b:\r\n\r\n";
    pt_http_hdr_t hdrs[NHDR];
    pt_http_req_t r = {.headers = hdrs};

    assert_int_equal(pt_http_parse_request(in, strlen(in), 0, &r, &default_limits), (int)strlen(in));
    assert_int_equal(r.nheaders, 3);
    assert_int_equal(hdrs[0].name_len, 4);
    assert_memory_equal(hdrs[0].name, "Host", 4);
    assert_int_equal(hdrs[0].value_len, 1);
    assert_memory_equal(hdrs[0].value, "h", 1);
    assert_int_equal(hdrs[1].value_len, 7);
    assert_memory_equal(hdrs[1].value, "one two", 7);
    assert_int_equal(hdrs[2].name_len, 3);
    assert_int_equal(hdrs[2].value_len, 0);
    assert_ptr_equal(pt_http_find(hdrs, r.nheaders, "X-B", 3), &hdrs[2]);
    assert_ptr_equal(pt_http_find(hdrs, r.nheaders, "HOST", 4), &hdrs[0]);
    assert_null(pt_http_find(hdrs, r.nheaders, "X-C", 3));
    assert_null(pt_http_find(hdrs, r.nheaders, "X-", 2));
}

/* Two pipelined requests: parse the first, then the rest from its end. */
static void test_pipelined(void **state)
{
    (void)state;
    const char *in = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
                     "POST /2 HTTP/1.1\r\nHost: b\r\nContent-Length: 2\r\n\r\nhi"
                     "GET /3 HTTP/1.0\r\n\r\n";
    size_t len = strlen(in);
    pt_http_hdr_t hdrs[NHDR];
    pt_http_req_t r = {.headers = hdrs};

    int rc = pt_http_parse_request(in, len, 0, &r, &default_limits);
    assert_int_equal(rc, 28);
    assert_memory_equal(r.path, "/1", 2);
    const char *p = in + rc;
    rc = pt_http_parse_request(p, len - (size_t)(p - in), 0, &r, &default_limits);
    assert_int_equal(rc, 48);
    assert_memory_equal(r.path, "/2", 2);
    assert_int_equal(r.content_length, 2);
    p += rc + 2;
    rc = pt_http_parse_request(p, len - (size_t)(p - in), 0, &r, &default_limits);
    assert_int_equal(rc, 19);
    assert_int_equal(r.version, 10);
    assert_int_equal(p + rc, in + len);
}

/* Every split point of a request gives PT_AGAIN then the one-shot result. */
static void test_split_points(void **state)
{
    (void)state;
    const char *in = "\r\nPOST /upload?x=1 HTTP/1.1\r\nHost: example.com\r\n"
                     "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n5\r\nhello";
    size_t len = strlen(in);
    size_t head = len - strlen("5\r\nhello");
    pt_http_hdr_t hdrs[NHDR];

    for (size_t k = 0; k <= len; k++) {
        pt_http_req_t r = {.headers = hdrs};
        int rc = pt_http_parse_request(in, k, 0, &r, &default_limits);
        assert_int_equal(rc, k < head ? PT_AGAIN : (int)head);
        if (rc != PT_AGAIN) continue;
        rc = pt_http_parse_request(in, len, k, &r, &default_limits);
        assert_int_equal(rc, (int)head);
        assert_int_equal(r.flags, PT_HTTP_F_CHUNKED | PT_HTTP_F_KEEPALIVE);
        assert_int_equal(r.nheaders, 3);
    }
}

/* ---- limits ---- */

typedef struct limit_case {
    pt_http_limits_t lim;
    const char *in;
    int rc;
} limit_case_t;

static const limit_case_t limit_cases[] = {
    /* request line: 14 bytes without CRLF */
    {{8192, 14, 32}, "GET /abc HTTP/1.1\r\nHost: h\r\n\r\n", -414},
    {{8192, 17, 32}, "GET /abc HTTP/1.1\r\nHost: h\r\n\r\n", ALL},
    {{8192, 16, 32}, "GET /abc HTTP/1.1\r\nHost: h\r\n\r\n", -414},
    {{8192, 17, 32}, "GET /abcd HTTP/1.1\r\nHost: h\r\n\r\n", -414},
    {{8192, 16, 32}, "GET /abcdefghijklmnop", -414},      /* incomplete, already too long */
    {{8192, 16, 32}, "GET /abcdefghijklmnopqrs\r", -414}, /* incomplete, CR is not counted */
    {{8192, 16, 32}, "GET /abcdefg", PT_AGAIN},
    {{8192, 16, 32}, "GET /abcdefgh HT", PT_AGAIN},
    {{8192, 16, 32}, "GET /abcdefgh HTT", -414},
    /* max_head: total head bytes including the final CRLF */
    {{32, 1024, 32}, "GET / HTTP/1.1\r\nHost: h\r\nX: y\r\n\r\n", -431},
    {{33, 1024, 32}, "GET / HTTP/1.1\r\nHost: h\r\nX: y\r\n\r\n", ALL},
    {{32, 1024, 32}, "GET / HTTP/1.1\r\nHost: h\r\nX: yy\r\n", -431}, /* incomplete */
    {{32, 1024, 32}, "GET / HTTP/1.1\r\nHost: h\r\nX: y", PT_AGAIN},
    {{32, 1024, 32}, "GET / HTTP/1.1\r\nHost: h\r\nX: yyyy", -431},
    {{20, 1024, 32}, "GET /aaaaaaaaaaaaaaaa", -414}, /* still in the request line */
    {{20, 1024, 32}, "GET /aaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n", -414},
    {{16, 1024, 32}, "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n", -414},
    /* max_headers */
    {{8192, 1024, 2}, "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\n\r\n", ALL},
    {{8192, 1024, 2}, "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n", -431},
    {{8192, 1024, 0}, "GET / HTTP/1.0\r\n\r\n", ALL},
    {{8192, 1024, 0}, "GET / HTTP/1.0\r\nA: 1\r\n\r\n", -431},
};

static void test_limits(void **state)
{
    (void)state;
    for (size_t i = 0; i < pt_countof(limit_cases); i++) {
        const limit_case_t *c = &limit_cases[i];
        size_t len = strlen(c->in);
        int expect = c->rc == ALL ? (int)len : c->rc;
        pt_http_hdr_t hdrs[NHDR];
        pt_http_req_t r = {.headers = hdrs};
        char *copy;

        int rc = parse_req_copy(c->in, len, 0, &r, &c->lim, &copy);
        if (rc != expect) print_error("limit case %zu: got %d, want %d\n", i, rc, expect);
        assert_int_equal(rc, expect);
        free(copy);
        rc = feed_req_bytewise(c->in, len, &r, &c->lim, &copy);
        if (rc != expect) print_error("limit case %zu bytewise: got %d, want %d\n", i, rc, expect);
        assert_int_equal(rc, expect);
        free(copy);
    }
}

/* An oversized head fed slowly ends in an error, never PT_AGAIN forever. */
static void test_oversized_incomplete(void **state)
{
    (void)state;
    static char buf[20000];
    pt_http_limits_t lim = {.max_head = 4096, .max_line = 1024, .max_headers = 32};
    pt_http_hdr_t hdrs[NHDR];
    pt_http_req_t r = {.headers = hdrs};
    size_t n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: h\r\n");
    size_t last = 0;
    int rc = PT_AGAIN;

    while (n < sizeof(buf) - 16 && rc == PT_AGAIN) {
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-Pad: 0123456789\r\n");
        rc = pt_http_parse_request(buf, n, last, &r, &lim);
        last = n;
    }
    assert_int_equal(rc, -431);
    assert_true(n >= 4096 && n < 4096 + 64);

    /* The same with an endless request line. */
    memset(buf, 'a', sizeof(buf));
    memcpy(buf, "GET /", 5);
    rc = PT_AGAIN;
    last = 0;
    for (n = 100; n < sizeof(buf) && rc == PT_AGAIN; n += 100) {
        rc = pt_http_parse_request(buf, n, last, &r, &lim);
        last = n;
    }
    assert_int_equal(rc, -414);
    assert_int_equal(n, 1200);
}

/* ------------------------------------------------------------------ */
/* responses                                                           */
/* ------------------------------------------------------------------ */

typedef struct resp_case {
    const char *in;
    int rc;
    int version;
    int status;
    const char *reason;
    size_t nheaders;
    int64_t cl;
    unsigned flags;
} resp_case_t;

static const resp_case_t valid_responses[] = {
    {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", ALL, 11, 200, "OK", 1, 5, F_HC},
    {"HTTP/1.1 200 \r\n\r\n", ALL, 11, 200, "", 0, -1, 0},
    {"HTTP/1.1 200\r\n\r\n", ALL, 11, 200, "", 0, -1, 0},
    {"HTTP/1.1 200\n\n", ALL, 11, 200, "", 0, -1, 0},
    {"HTTP/1.1 404 Not\tFound \xe9\r\n\r\n", ALL, 11, 404, "Not\tFound \xe9", 0, -1, 0},
    {"HTTP/1.0 200 OK\r\n\r\n", ALL, 10, 200, "OK", 0, -1, F_CL},
    {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", ALL, 10, 200, "OK", 1, -1, F_KA},
    {"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", ALL, 11, 200, "OK", 1, -1, F_CL},
    {"HTTP/1.1 204 No Content\r\n\r\n", ALL, 11, 204, "No Content", 0, -1, 0},
    {"HTTP/1.1 599 Whatever\r\n\r\n", ALL, 11, 599, "Whatever", 0, -1, 0},
    {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", 25, 11, 100, "Continue", 0, -1, 0},
    {"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", ALL,
     11, 101, "Switching Protocols", 2, -1, F_UP},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", ALL, 11, 200, "OK", 1, -1, F_CH},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\n\r\n", ALL, 11, 200, "OK", 1, -1, F_CH},
    {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", ALL, 11, 200,
     "OK", 2, -1, F_CH | F_CL},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: x\r\n\r\n", ALL, 11, 200,
     "OK", 2, -1, F_CH | F_CL},
    {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", ALL, 11, 200, "OK", 2, 5,
     F_HC},
    {"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", ALL, 11, 304, "Not Modified", 1,
     100, F_HC},
    {"\r\nHTTP/1.1 200 OK\r\nHost: not checked\r\nHost: twice\r\n\r\n", ALL, 11, 200, "OK", 2, -1,
     0},
    {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", 38, 11, 200, "OK", 1, 2, F_HC},
};

static const bad_case_t bad_responses[] = {
    {"HTTP/1.1 200OK\r\n\r\n", 0, -502},
    {"HTTP/1.1 20 OK\r\n\r\n", 0, -502},
    {"HTTP/1.1 2000 OK\r\n\r\n", 0, -502},
    {"HTTP/1.1 099 OK\r\n\r\n", 0, -502},
    {"HTTP/1.1 600 OK\r\n\r\n", 0, -502},
    {"HTTP/1.1 20x OK\r\n\r\n", 0, -502},
    {"HTTP/1.1  200 OK\r\n\r\n", 0, -502},
    {"HTTP/1.1\t200 OK\r\n\r\n", 0, -502},
    {"HTTP/2.0 200 OK\r\n\r\n", 0, -502},
    {"HTTP/1.2 200 OK\r\n\r\n", 0, -502},
    {"http/1.1 200 OK\r\n\r\n", 0, -502},
    {"ICY 200 OK\r\n\r\n", 0, -502},
    {"HTTP/1.1 200 OK\x01\r\n\r\n", 0, -502},
    {"HTTP/1.1 200 OK\rX\r\n\r\n", 0, -502},
    {"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", 0, -502},
    {"HTTP/1.1 200 OK\r\nX : a\r\n\r\n", 0, -502},
    {"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", 0, -502},
    {"HTTP/1.1 200 OK\r\n: a\r\n\r\n", 0, -502},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 0, -502},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 0, -502},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 0, -502},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 0, -502},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\n\r\n", 0, -502},
    {"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0, -502},
    {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 0, -502},
    {"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", 0, -502},
    {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, -502},
    {"HTTP/1.1 200 OK\r\nContent-Length: 4611686018427387905\r\n\r\n", 0, -502},
    {"HTTP/1.1 200 OK\r\n\r\r\n\r\n", 0, -502},
    {"HTTP/1.1 200", 0, PT_AGAIN},
    {"HTTP/1.1 200 OK\r\nX: y\r\n", 0, PT_AGAIN},
};

static void run_resp_case(const resp_case_t *c, size_t idx, const pt_http_limits_t *lim)
{
    size_t len = strlen(c->in);
    int expect = c->rc == ALL ? (int)len : c->rc;
    pt_http_hdr_t hdrs[NHDR];
    int rc = PT_AGAIN;
    size_t last = 0;

    /* i == len + 1 stands for the one-shot parse. */
    for (size_t i = 1; i <= len + 1; i++) {
        size_t n = i <= len ? i : len;
        pt_http_resp_t r = {.headers = hdrs};
        char *copy = malloc(n);
        assert_non_null(copy);
        memcpy(copy, c->in, n);
        rc = pt_http_parse_response(copy, n, i <= len ? last : 0, &r, lim);
        last = n;
        if (rc != PT_AGAIN || i > len) {
            if (rc != expect) print_error("response case %zu (%zu bytes): got %d, want %d\n", idx, n, rc, expect);
            assert_int_equal(rc, expect);
            if (rc > 0) {
                assert_int_equal(r.version, c->version);
                assert_int_equal(r.status, c->status);
                assert_int_equal(r.reason_len, strlen(c->reason));
                assert_memory_equal(r.reason, c->reason, r.reason_len);
                assert_int_equal(r.nheaders, c->nheaders);
                assert_int_equal(r.content_length, c->cl);
                assert_int_equal(r.flags, c->flags);
                assert_int_equal(r.head_len, (size_t)rc);
            }
            if (i <= len) i = len; /* jump to the one-shot parse */
        }
        free(copy);
    }
}

static void test_valid_responses(void **state)
{
    (void)state;
    for (size_t i = 0; i < pt_countof(valid_responses); i++)
        run_resp_case(&valid_responses[i], i, &default_limits);
}

static void test_bad_responses(void **state)
{
    (void)state;
    for (size_t i = 0; i < pt_countof(bad_responses); i++) {
        resp_case_t c = {.in = bad_responses[i].in, .rc = bad_responses[i].rc};
        run_resp_case(&c, i, &default_limits);
    }
}

static void test_response_limits(void **state)
{
    (void)state;
    pt_http_hdr_t hdrs[NHDR];
    pt_http_resp_t r = {.headers = hdrs};
    const char *in = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n";
    pt_http_limits_t lim = {.max_head = 8192, .max_line = 1024, .max_headers = 1};

    assert_int_equal(pt_http_parse_response(in, strlen(in), 0, &r, &lim), -502);
    lim.max_headers = 2;
    assert_int_equal(pt_http_parse_response(in, strlen(in), 0, &r, &lim), (int)strlen(in));
    lim.max_head = 20;
    assert_int_equal(pt_http_parse_response(in, strlen(in), 0, &r, &lim), -502);
    assert_int_equal(pt_http_parse_response(in, 20, 0, &r, &lim), -502); /* incomplete */
    lim.max_head = 8192;
    lim.max_line = 10;
    assert_int_equal(pt_http_parse_response(in, 14, 0, &r, &lim), -502);
}

/* ------------------------------------------------------------------ */
/* lists, methods                                                      */
/* ------------------------------------------------------------------ */

static void test_tokens(void **state)
{
    (void)state;
    const char *v = " ,a , Keep-Alive\t,,  b c ,\t";
    size_t pos = 0;
    const char *t;
    size_t tl;

    assert_true(pt_http_next_token(v, strlen(v), &pos, &t, &tl));
    assert_int_equal(tl, 1);
    assert_memory_equal(t, "a", 1);
    assert_true(pt_http_next_token(v, strlen(v), &pos, &t, &tl));
    assert_int_equal(tl, 10);
    assert_memory_equal(t, "Keep-Alive", 10);
    assert_true(pt_http_next_token(v, strlen(v), &pos, &t, &tl));
    assert_int_equal(tl, 3);
    assert_memory_equal(t, "b c", 3);
    assert_false(pt_http_next_token(v, strlen(v), &pos, &t, &tl));
    assert_false(pt_http_next_token(v, strlen(v), &pos, &t, &tl));
    pos = 0;
    assert_false(pt_http_next_token("", 0, &pos, &t, &tl));
    pos = 0;
    assert_false(pt_http_next_token(" , ,\t", 5, &pos, &t, &tl));

    assert_true(pt_http_list_has(v, strlen(v), "keep-alive", 10));
    assert_true(pt_http_list_has(v, strlen(v), "A", 1));
    assert_true(pt_http_list_has(v, strlen(v), "B C", 3));
    assert_false(pt_http_list_has(v, strlen(v), "b", 1));
    assert_false(pt_http_list_has(v, strlen(v), "keep", 4));
    assert_false(pt_http_list_has("", 0, "a", 1));
}

static void test_method_ids(void **state)
{
    (void)state;
    static const struct {
        const char *m;
        pt_http_method_t id;
    } t[] = {
        {"GET", PT_HTTP_GET},         {"HEAD", PT_HTTP_HEAD},     {"POST", PT_HTTP_POST},
        {"PUT", PT_HTTP_PUT},         {"DELETE", PT_HTTP_DELETE}, {"CONNECT", PT_HTTP_CONNECT},
        {"OPTIONS", PT_HTTP_OPTIONS}, {"TRACE", PT_HTTP_TRACE},   {"PATCH", PT_HTTP_PATCH},
        {"get", PT_HTTP_OTHER},       {"GETS", PT_HTTP_OTHER},    {"GE", PT_HTTP_OTHER},
        {"", PT_HTTP_OTHER},          {"PROPFIND", PT_HTTP_OTHER}, {"Post", PT_HTTP_OTHER},
    };
    for (size_t i = 0; i < pt_countof(t); i++)
        assert_int_equal(pt_http_method_id(t[i].m, strlen(t[i].m)), t[i].id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_requests),  cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_request_headers), cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_split_points),    cmocka_unit_test(test_limits),
        cmocka_unit_test(test_oversized_incomplete), cmocka_unit_test(test_valid_responses),
        cmocka_unit_test(test_bad_responses),   cmocka_unit_test(test_response_limits),
        cmocka_unit_test(test_tokens),          cmocka_unit_test(test_method_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
