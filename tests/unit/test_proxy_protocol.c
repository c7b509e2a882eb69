/* Unit tests for src/proxy/proxy_protocol.c: PROXY protocol v1 and v2. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "core/core.h"
#include "proxy/proxy.h"

/* A byte string with its length (v2 headers contain NULs). */
typedef struct blob {
    const char *p;
    size_t len;
} blob_t;

#define BLOB(lit) ((blob_t){(lit), sizeof(lit) - 1})

#define V2_SIG "\r\n\r\n\0\r\nQUIT\n"

/* v2 TCP4 192.0.2.1:56324 -> 198.51.100.2:443 */
#define V2_TCP4                                                                \
    V2_SIG "\x21\x11\x00\x0c"                                                  \
           "\xc0\x00\x02\x01"                                                  \
           "\xc6\x33\x64\x02"                                                  \
           "\xdc\x04\x01\xbb"

/* v2 TCP6 2001:db8::1:8080 -> ::1:80 */
#define V2_TCP6                                                                \
    V2_SIG "\x21\x21\x00\x24"                                                  \
           "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"  \
           "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"  \
           "\x1f\x90\x00\x50"

/* TCP4 with two TLVs (ALPN "h2", AUTHORITY "example.com"): 12 + 5 + 14. */
#define V2_TCP4_TLV                                                            \
    V2_SIG "\x21\x11\x00\x1f"                                                  \
           "\x0a\x00\x00\x01"                                                  \
           "\x0a\x00\x00\x02"                                                  \
           "\x30\x39\x00\x50"                                                  \
           "\x01\x00\x02h2"                                                    \
           "\x02\x00\x0b"                                                      \
           "example.com"

#define V2_LOCAL V2_SIG "\x20\x00\x00\x00"

/* Asserts a is family/ip/port. */
static void check_addr(const pt_addr_t *a, int family, const char *ip, uint16_t port)
{
    char text[INET6_ADDRSTRLEN];
    assert_int_equal(a->ss.ss_family, family);
    if (family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
        assert_int_equal(a->len, sizeof(*sin));
        assert_non_null(inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text)));
        assert_int_equal(ntohs(sin->sin_port), port);
    } else {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;
        assert_int_equal(a->len, sizeof(*sin6));
        assert_non_null(inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text)));
        assert_int_equal(ntohs(sin6->sin6_port), port);
    }
    assert_string_equal(text, ip);
}

static void check_unset(const pt_addr_t *a)
{
    assert_int_equal(a->len, 0);
    assert_int_equal(a->ss.ss_family, AF_UNSPEC);
}

static pt_addr_t mk(int family, const char *ip, uint16_t port)
{
    pt_addr_t a;
    memset(&a, 0, sizeof(a));
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
        a.len = sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
        a.len = sizeof(*sin6);
    }
    return a;
}

static int parse_str(const char *s, pt_addr_t *src, pt_addr_t *dst)
{
    return pt_pp_parse(s, strlen(s), src, dst);
}

/* ---- v1 ---- */

static void test_v1_tcp4(void **state)
{
    pt_unused(state);
    const char *in = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n";
    pt_addr_t src, dst;
    assert_int_equal(parse_str(in, &src, &dst), 47);
    check_addr(&src, AF_INET, "192.168.0.1", 56324);
    check_addr(&dst, AF_INET, "192.168.0.11", 443);
}

static void test_v1_tcp6(void **state)
{
    pt_unused(state);
    const char *in = "PROXY TCP6 2001:db8::1 ::1 8080 80\r\n";
    pt_addr_t src, dst;
    assert_int_equal(parse_str(in, &src, &dst), (int)strlen(in));
    check_addr(&src, AF_INET6, "2001:db8::1", 8080);
    check_addr(&dst, AF_INET6, "::1", 80);

    /* Upper-case hex and an embedded IPv4 tail are valid IPv6 text. */
    in = "PROXY TCP6 FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF ::ffff:10.0.0.1 1 2\r\n";
    assert_int_equal(parse_str(in, &src, &dst), (int)strlen(in));
    check_addr(&src, AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1);
    check_addr(&dst, AF_INET6, "::ffff:10.0.0.1", 2);
}

static void test_v1_ports(void **state)
{
    pt_unused(state);
    pt_addr_t src, dst;
    assert_int_equal(parse_str("PROXY TCP4 1.2.3.4 5.6.7.8 0 65535\r\n", &src, &dst), 36);
    check_addr(&src, AF_INET, "1.2.3.4", 0);
    check_addr(&dst, AF_INET, "5.6.7.8", 65535);
    /* Leading zeros are tolerated, up to 5 digits. */
    assert_int_equal(parse_str("PROXY TCP4 1.2.3.4 5.6.7.8 00080 08\r\n", &src, &dst), 37);
    check_addr(&src, AF_INET, "1.2.3.4", 80);
    check_addr(&dst, AF_INET, "5.6.7.8", 8);
}

static void test_v1_unknown(void **state)
{
    pt_unused(state);
    pt_addr_t src = mk(AF_INET, "9.9.9.9", 9), dst = mk(AF_INET, "9.9.9.9", 9);
    assert_int_equal(parse_str("PROXY UNKNOWN\r\nGET", &src, &dst), 15);
    check_unset(&src);
    check_unset(&dst);

    /* Whatever follows UNKNOWN up to the CRLF is ignored. */
    const char *in = "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n";
    src = mk(AF_INET, "9.9.9.9", 9);
    assert_int_equal(parse_str(in, &src, &dst), (int)strlen(in));
    check_unset(&src);
    check_unset(&dst);
}

/* Builds "PROXY UNKNOWN " padded with 'x' to total bytes, CRLF included. */
static size_t unknown_line(char *buf, size_t total)
{
    memset(buf, 'x', total);
    memcpy(buf, "PROXY UNKNOWN ", 14);
    memcpy(buf + total - 2, "\r\n", 2);
    return total;
}

static void test_v1_max_length(void **state)
{
    pt_unused(state);
    char buf[200];
    pt_addr_t src, dst;
    size_t n = unknown_line(buf, 107);
    assert_int_equal(pt_pp_parse(buf, n, &src, &dst), 107);
    n = unknown_line(buf, 108);
    assert_int_equal(pt_pp_parse(buf, n, &src, &dst), -EINVAL);
    /* 107 bytes without a CRLF can never complete. */
    assert_int_equal(pt_pp_parse(buf, 107, &src, &dst), -EINVAL);
    assert_int_equal(pt_pp_parse(buf, 106, &src, &dst), PT_AGAIN);

    /* A TCP6 line over 107 bytes (45-char addresses) is rejected too. */
    const char *in = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 "
                     "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 65535 65535\r\n";
    assert_int_equal(strlen(in), 116);
    assert_int_equal(parse_str(in, &src, &dst), -EINVAL);
    /* The same addresses with short ports fit: 5+1+4+1+45+1+45+1+1+1+1+2 = 108, still
     * one over; with a shorter destination it parses. */
    in = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 "
         "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.25 1 2\r\n";
    assert_int_equal(strlen(in), 107);
    assert_int_equal(parse_str(in, &src, &dst), 107);
    check_addr(&dst, AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff19", 2);
}

/* ---- v2 ---- */

static void test_v2_tcp4(void **state)
{
    pt_unused(state);
    blob_t b = BLOB(V2_TCP4 "GET / HTTP/1.1\r\n");
    pt_addr_t src, dst;
    assert_int_equal(pt_pp_parse(b.p, b.len, &src, &dst), 28);
    check_addr(&src, AF_INET, "192.0.2.1", 56324);
    check_addr(&dst, AF_INET, "198.51.100.2", 443);
}

static void test_v2_tcp6(void **state)
{
    pt_unused(state);
    blob_t b = BLOB(V2_TCP6);
    pt_addr_t src, dst;
    assert_int_equal(pt_pp_parse(b.p, b.len, &src, &dst), 52);
    check_addr(&src, AF_INET6, "2001:db8::1", 8080);
    check_addr(&dst, AF_INET6, "::1", 80);
}

static void test_v2_tlvs(void **state)
{
    pt_unused(state);
    blob_t b = BLOB(V2_TCP4_TLV "\x16\x03\x01");
    pt_addr_t src, dst;
    assert_int_equal(pt_pp_parse(b.p, b.len, &src, &dst), 16 + 31);
    check_addr(&src, AF_INET, "10.0.0.1", 12345);
    check_addr(&dst, AF_INET, "10.0.0.2", 80);
}

static void test_v2_local_and_others(void **state)
{
    pt_unused(state);
    pt_addr_t src, dst;
    blob_t local = BLOB(V2_LOCAL);
    src = mk(AF_INET, "9.9.9.9", 9);
    assert_int_equal(pt_pp_parse(local.p, local.len, &src, &dst), 16);
    check_unset(&src);
    check_unset(&dst);

    /* LOCAL with a TCP4 block: the block is skipped, addresses ignored. */
    blob_t local4 = BLOB(V2_SIG "\x20\x11\x00\x0c"
                                "\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01\x00\x02");
    src = mk(AF_INET, "9.9.9.9", 9);
    assert_int_equal(pt_pp_parse(local4.p, local4.len, &src, &dst), 28);
    check_unset(&src);

    /* LOCAL may even carry less than its family needs: it is all discarded. */
    blob_t local_short = BLOB(V2_SIG "\x20\x21\x00\x02" "ab");
    assert_int_equal(pt_pp_parse(local_short.p, local_short.len, &src, &dst), 18);

    /* PROXY over UNSPEC, UDP4, UDP6, unix: header skipped, no addresses. */
    blob_t unspec = BLOB(V2_SIG "\x21\x00\x00\x03" "xyz");
    assert_int_equal(pt_pp_parse(unspec.p, unspec.len, &src, &dst), 19);
    check_unset(&src);
    blob_t udp4 = BLOB(V2_SIG "\x21\x12\x00\x0c"
                              "\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01\x00\x02");
    src = mk(AF_INET, "9.9.9.9", 9);
    assert_int_equal(pt_pp_parse(udp4.p, udp4.len, &src, &dst), 28);
    check_unset(&src);
    check_unset(&dst);

    char buf[16 + 216];
    memcpy(buf, V2_SIG "\x21\x31\x00\xd8", 16);
    memset(buf + 16, 0, 216);
    memcpy(buf + 16, "/tmp/a.sock", 11);
    assert_int_equal(pt_pp_parse(buf, sizeof(buf), &src, &dst), 232);
    check_unset(&src);
    buf[13] = 0x32; /* unix datagram */
    assert_int_equal(pt_pp_parse(buf, sizeof(buf), &src, &dst), 232);
    buf[13] = 0x22; /* UDP6, longer than needed: the rest is TLV space */
    assert_int_equal(pt_pp_parse(buf, sizeof(buf), &src, &dst), 232);
}

static void test_v2_max_length(void **state)
{
    pt_unused(state);
    char buf[16 + 513];
    memset(buf, 0, sizeof(buf));
    memcpy(buf, V2_SIG "\x21\x11\x02\x00", 16); /* 512 */
    pt_addr_t src, dst;
    assert_int_equal(pt_pp_parse(buf, 16 + 512, &src, &dst), 528);
    check_addr(&src, AF_INET, "0.0.0.0", 0);
    assert_int_equal(pt_pp_parse(buf, 16 + 511, &src, &dst), PT_AGAIN);
    buf[15] = 0x01; /* 513: rejected from the fixed header alone */
    assert_int_equal(pt_pp_parse(buf, 16, &src, &dst), -EINVAL);
    assert_int_equal(pt_pp_parse(buf, sizeof(buf), &src, &dst), -EINVAL);
}

/* ---- incremental input ---- */

/* Every strict prefix is PT_AGAIN; the whole (plus trailing bytes) parses. */
static void check_incremental(blob_t b, int want)
{
    char buf[700];
    assert_true(b.len + 4 <= sizeof(buf));
    memcpy(buf, b.p, b.len);
    memcpy(buf + b.len, "GET ", 4);
    pt_addr_t src, dst;
    for (size_t i = 0; i < (size_t)want; i++) {
        src = mk(AF_INET, "9.9.9.9", 9);
        assert_int_equal(pt_pp_parse(buf, i, &src, &dst), PT_AGAIN);
        /* Untouched until success. */
        check_addr(&src, AF_INET, "9.9.9.9", 9);
    }
    for (size_t i = (size_t)want; i <= b.len + 4; i++)
        assert_int_equal(pt_pp_parse(buf, i, &src, &dst), want);
}

static void test_incremental(void **state)
{
    pt_unused(state);
    check_incremental(BLOB("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"), 47);
    check_incremental(BLOB("PROXY TCP6 2001:db8::1 ::1 8080 80\r\n"), 36);
    check_incremental(BLOB("PROXY UNKNOWN\r\n"), 15);
    check_incremental(BLOB("PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n"), 35);
    check_incremental(BLOB(V2_TCP4), 28);
    check_incremental(BLOB(V2_TCP6), 52);
    check_incremental(BLOB(V2_TCP4_TLV), 47);
    check_incremental(BLOB(V2_LOCAL), 16);

    char big[16 + 512];
    memset(big, 'T', sizeof(big));
    memcpy(big, V2_SIG "\x21\x21\x02\x00", 16);
    check_incremental((blob_t){big, sizeof(big)}, 528);
}

/* ---- malformed input ---- */

static void test_malformed(void **state)
{
    pt_unused(state);
    static const blob_t bad[] = {
        /* not the protocol at all: rejected from the first bytes */
        BLOB("G"),
        BLOB("GET / HTTP/1.1\r\n"),
        BLOB("\x16\x03\x01"),
        BLOB("PROXX"),
        BLOB("proxy "),
        BLOB("PROXY\r\n"),
        BLOB("\r\n\r\n\0\r\nQUIX"),
        BLOB("\r\n\r\n\r\n"),
        BLOB("\r\r"),
        /* v1 */
        BLOB("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
        BLOB("PROXY TCP5"),
        BLOB("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n"),
        BLOB("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"),
        BLOB("PROXY UNKNOWNX\r\n"),
        BLOB("PROXY UNKNOWN\n"),
        BLOB("PROXY UNKNOWN\r "),
        BLOB("PROXY UNKNOWN foo\nbar\r\n"),
        BLOB("PROXY UNKNOWN foo\rbar\r\n"),
        BLOB("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n"),
        BLOB("PROXY TCP4 1.2.3.4 5.6.7.8  1 2\r\n"),
        BLOB("PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n"),
        BLOB("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"),
        BLOB("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"),
        BLOB("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r"),
        BLOB("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"),
        BLOB("PROXY TCP4 1.2.3.4 5.6.7.8\r\n"),
        BLOB("PROXY TCP4 1.2.3.4\r\n"),
        BLOB("PROXY TCP4\r\n"),
        BLOB("PROXY TCP4 \r\n"),
        BLOB("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n"),
        BLOB("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"),
        BLOB("PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n"),
        BLOB("PROXY TCP4 111.222.111.2221"),
        BLOB("PROXY TCP4 ::1 5.6.7.8 1 2\r\n"),
        BLOB("PROXY TCP4 1.2.3.4:80"),
        BLOB("PROXY TCP4 localhost 5.6.7.8 1 2\r\n"),
        BLOB("PROXY TCP6 1.2.3.4 ::1 1 2\r\n"),
        BLOB("PROXY TCP6 ::1 ::g"),
        BLOB("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"),
        BLOB("PROXY TCP6 :::1 ::1 1 2\r\n"),
        BLOB("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"),
        BLOB("PROXY TCP4 1.2.3.4 5.6.7.8 1 99999"),
        BLOB("PROXY TCP4 1.2.3.4 5.6.7.8 000080"),
        BLOB("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n"),
        BLOB("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n"),
        BLOB("PROXY TCP4 1.2.3.4 5.6.7.8 0x1 2\r\n"),
        BLOB("PROXY TCP4 1.2.3.4 5.6.7.8 1 2x"),
        BLOB("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n"),
        /* v2 */
        BLOB(V2_SIG "\x11"),                  /* version 1 */
        BLOB(V2_SIG "\x31"),                  /* version 3 */
        BLOB(V2_SIG "\x22"),                  /* command 2 */
        BLOB(V2_SIG "\x2f"),                  /* command 15 */
        BLOB(V2_SIG "\x21\x13"),              /* transport 3 */
        BLOB(V2_SIG "\x21\x41"),              /* family 4 */
        BLOB(V2_SIG "\x21\x01"),              /* UNSPEC family, stream */
        BLOB(V2_SIG "\x21\x10"),              /* INET, UNSPEC transport */
        BLOB(V2_SIG "\x21\x11\x02\x01"),      /* length 513 */
        BLOB(V2_SIG "\x21\x11\xff\xff"),      /* length 65535 */
        BLOB(V2_SIG "\x21\x11\x00\x0b"),      /* TCP4 needs 12 */
        BLOB(V2_SIG "\x21\x11\x00\x00"),
        BLOB(V2_SIG "\x21\x21\x00\x0c"),      /* TCP6 needs 36 */
        BLOB(V2_SIG "\x21\x22\x00\x23"),      /* UDP6 needs 36 */
        BLOB(V2_SIG "\x21\x31\x00\xd7"),      /* unix needs 216 */
    };
    for (size_t i = 0; i < pt_countof(bad); i++) {
        pt_addr_t src = mk(AF_INET, "9.9.9.9", 9), dst = src;
        int rc = pt_pp_parse(bad[i].p, bad[i].len, &src, &dst);
        if (rc != -EINVAL) print_error("case %zu: got %d\n", i, rc);
        assert_int_equal(rc, -EINVAL);
        check_addr(&src, AF_INET, "9.9.9.9", 9);
    }
}

/* Rejection comes as soon as the bytes cannot start a header. */
static void test_early_reject(void **state)
{
    pt_unused(state);
    pt_addr_t src, dst;
    assert_int_equal(pt_pp_parse("P", 1, &src, &dst), PT_AGAIN);
    assert_int_equal(pt_pp_parse("PROX", 4, &src, &dst), PT_AGAIN);
    assert_int_equal(pt_pp_parse("POST", 4, &src, &dst), -EINVAL);
    assert_int_equal(pt_pp_parse("\r", 1, &src, &dst), PT_AGAIN);
    assert_int_equal(pt_pp_parse("\r\n\r\n", 4, &src, &dst), PT_AGAIN);
    assert_int_equal(pt_pp_parse("\r\n\r\nG", 5, &src, &dst), -EINVAL);
    assert_int_equal(pt_pp_parse("PROXY T", 7, &src, &dst), PT_AGAIN);
    assert_int_equal(pt_pp_parse("PROXY U", 7, &src, &dst), PT_AGAIN);
    assert_int_equal(pt_pp_parse("PROXY X", 7, &src, &dst), -EINVAL);
    assert_int_equal(pt_pp_parse("PROXY TCP4 1.2.3.4 5.6.7.8 1", 28, &src, &dst), PT_AGAIN);
    assert_int_equal(pt_pp_parse("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", 31, &src, &dst), PT_AGAIN);
    assert_int_equal(pt_pp_parse("PROXY TCP4 1.2.3.4x", 19, &src, &dst), -EINVAL);
    /* Sixteen digits cannot be an IPv4 address, whatever follows. */
    assert_int_equal(pt_pp_parse("PROXY TCP4 1111111111111111", 27, &src, &dst), -EINVAL);
    assert_int_equal(pt_pp_parse("PROXY TCP4 111111111111111", 26, &src, &dst), PT_AGAIN);
}

/* ---- builders ---- */

static void test_build_v1_bytes(void **state)
{
    pt_unused(state);
    char out[128];
    pt_addr_t s4 = mk(AF_INET, "192.0.2.1", 12345), d4 = mk(AF_INET, "198.51.100.2", 80);
    const char *want = "PROXY TCP4 192.0.2.1 198.51.100.2 12345 80\r\n";
    assert_int_equal(pt_pp_build_v1(out, sizeof(out), &s4, &d4), 44);
    assert_memory_equal(out, want, 45); /* NUL added when there is room */

    pt_addr_t s6 = mk(AF_INET6, "2001:db8::1", 0), d6 = mk(AF_INET6, "::1", 65535);
    want = "PROXY TCP6 2001:db8::1 ::1 0 65535\r\n";
    assert_int_equal(pt_pp_build_v1(out, sizeof(out), &s6, &d6), (int)strlen(want));
    assert_string_equal(out, want);

    /* Mixed families, or not IP at all. */
    assert_int_equal(pt_pp_build_v1(out, sizeof(out), &s4, &d6), 15);
    assert_string_equal(out, "PROXY UNKNOWN\r\n");
    pt_addr_t none;
    memset(&none, 0, sizeof(none));
    assert_int_equal(pt_pp_build_v1(out, sizeof(out), &none, &none), 15);
    assert_string_equal(out, "PROXY UNKNOWN\r\n");

    /* Exactly the line length fits (no NUL); one less does not. */
    memset(out, '#', sizeof(out));
    assert_int_equal(pt_pp_build_v1(out, 44, &s4, &d4), 44);
    assert_memory_equal(out, "PROXY TCP4 192.0.2.1 198.51.100.2 12345 80\r\n#", 45);
    assert_int_equal(pt_pp_build_v1(out, 43, &s4, &d4), -ENOSPC);
    assert_int_equal(pt_pp_build_v1(out, 14, &s4, &d6), -ENOSPC);
    assert_int_equal(pt_pp_build_v1(out, 0, &s4, &d4), -ENOSPC);
}

static void test_build_v2_bytes(void **state)
{
    pt_unused(state);
    char out[128];
    pt_addr_t s4 = mk(AF_INET, "192.0.2.1", 56324), d4 = mk(AF_INET, "198.51.100.2", 443);
    blob_t want = BLOB(V2_TCP4);
    assert_int_equal(pt_pp_build_v2(out, sizeof(out), &s4, &d4), 28);
    assert_memory_equal(out, want.p, want.len);

    pt_addr_t s6 = mk(AF_INET6, "2001:db8::1", 8080), d6 = mk(AF_INET6, "::1", 80);
    want = BLOB(V2_TCP6);
    assert_int_equal(pt_pp_build_v2(out, sizeof(out), &s6, &d6), 52);
    assert_memory_equal(out, want.p, want.len);

    pt_addr_t none;
    memset(&none, 0, sizeof(none));
    want = BLOB(V2_SIG "\x21\x00\x00\x00");
    assert_int_equal(pt_pp_build_v2(out, sizeof(out), &none, &s4), 16);
    assert_memory_equal(out, want.p, want.len);

    assert_int_equal(pt_pp_build_v2(out, 28, &s4, &d4), 28);
    assert_int_equal(pt_pp_build_v2(out, 27, &s4, &d4), -ENOSPC);
    assert_int_equal(pt_pp_build_v2(out, 51, &s6, &d6), -ENOSPC);
    assert_int_equal(pt_pp_build_v2(out, 15, &none, &none), -ENOSPC);
}

typedef int (*build_fn)(char *out, size_t size, const pt_addr_t *src, const pt_addr_t *dst);

static void roundtrip(build_fn build, const pt_addr_t *s, const pt_addr_t *d)
{
    char out[128];
    pt_addr_t src, dst;
    int n = build(out, sizeof(out), s, d);
    assert_true(n > 0);
    assert_int_equal(pt_pp_parse(out, (size_t)n, &src, &dst), n);
    assert_int_equal(src.len, s->len);
    assert_int_equal(dst.len, d->len);
    assert_memory_equal(&src.ss, &s->ss, s->len);
    assert_memory_equal(&dst.ss, &d->ss, d->len);
}

static void test_roundtrip(void **state)
{
    pt_unused(state);
    static const struct {
        int family;
        const char *src, *dst;
        uint16_t sport, dport;
    } cases[] = {
        {AF_INET, "0.0.0.0", "255.255.255.255", 0, 65535},
        {AF_INET, "127.0.0.1", "10.1.2.3", 40000, 8080},
        {AF_INET6, "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, 0},
        {AF_INET6, "2001:db8:0:1:2:3:4:5", "::ffff:1.2.3.4", 1, 443},
        {AF_INET6, "fe80::1", "::1", 12345, 80},
    };
    for (size_t i = 0; i < pt_countof(cases); i++) {
        pt_addr_t s = mk(cases[i].family, cases[i].src, cases[i].sport);
        pt_addr_t d = mk(cases[i].family, cases[i].dst, cases[i].dport);
        roundtrip(pt_pp_build_v1, &s, &d);
        roundtrip(pt_pp_build_v2, &s, &d);
    }
}

/* v1 cannot say mixed families; v2 maps the IPv4 side into IPv6. */
static void test_roundtrip_mixed(void **state)
{
    pt_unused(state);
    char out[128];
    pt_addr_t s = mk(AF_INET, "192.0.2.7", 5000), d = mk(AF_INET6, "2001:db8::2", 443);
    pt_addr_t src, dst;
    int n = pt_pp_build_v1(out, sizeof(out), &s, &d);
    assert_int_equal(pt_pp_parse(out, (size_t)n, &src, &dst), 15);
    check_unset(&src);
    check_unset(&dst);

    n = pt_pp_build_v2(out, sizeof(out), &s, &d);
    assert_int_equal(n, 52);
    assert_int_equal(pt_pp_parse(out, (size_t)n, &src, &dst), 52);
    check_addr(&src, AF_INET6, "::ffff:192.0.2.7", 5000);
    check_addr(&dst, AF_INET6, "2001:db8::2", 443);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_tcp4),
        cmocka_unit_test(test_v1_tcp6),
        cmocka_unit_test(test_v1_ports),
        cmocka_unit_test(test_v1_unknown),
        cmocka_unit_test(test_v1_max_length),
        cmocka_unit_test(test_v2_tcp4),
        cmocka_unit_test(test_v2_tcp6),
        cmocka_unit_test(test_v2_tlvs),
        cmocka_unit_test(test_v2_local_and_others),
        cmocka_unit_test(test_v2_max_length),
        cmocka_unit_test(test_incremental),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_early_reject),
        cmocka_unit_test(test_build_v1_bytes),
        cmocka_unit_test(test_build_v2_bytes),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_roundtrip_mixed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
