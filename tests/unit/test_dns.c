/*
 * Unit tests for src/dns: query building, the response parser on hand-built
 * packets, resolv.conf, and the resolver end to end against a tiny UDP
 * responder that runs on the same loop as the resolver.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/core.h"
#include "dns/dns.h"

/* ------------------------------------------------------------------ */
/* Packet builder                                                      */
/* ------------------------------------------------------------------ */

typedef struct pkt {
    uint8_t b[2048];
    size_t n;
} pkt_t;

enum { F_QR = 0x8000, F_TC = 0x0200, F_RD = 0x0100, F_RA = 0x0080 };
enum { T_A = PT_DNS_TYPE_A, T_AAAA = PT_DNS_TYPE_AAAA, T_CNAME = PT_DNS_TYPE_CNAME };

static void p8(pkt_t *p, unsigned v) { p->b[p->n++] = (uint8_t)v; }

static void p16(pkt_t *p, unsigned v)
{
    p8(p, v >> 8);
    p8(p, v & 0xff);
}

static void p32(pkt_t *p, uint32_t v)
{
    p16(p, v >> 16);
    p16(p, v & 0xffff);
}

static void pmem(pkt_t *p, const void *m, size_t n)
{
    memcpy(p->b + p->n, m, n);
    p->n += n;
}

/* "a.b" as labels; a trailing "@OFF" is not supported: use pptr after
 * pname_open for compressed names. */
static void pname_open(pkt_t *p, const char *dotted)
{
    while (*dotted) {
        const char *dot = strchr(dotted, '.');
        size_t l = dot ? (size_t)(dot - dotted) : strlen(dotted);
        p8(p, (unsigned)l);
        pmem(p, dotted, l);
        dotted += l + (dot ? 1 : 0);
    }
}

static void pname(pkt_t *p, const char *dotted)
{
    pname_open(p, dotted);
    p8(p, 0);
}

static void pptr(pkt_t *p, unsigned off) { p16(p, 0xc000 | off); }

static void hdr(pkt_t *p, unsigned id, unsigned flags, unsigned qd, unsigned an, unsigned ns,
                unsigned ar)
{
    p->n = 0;
    p16(p, id);
    p16(p, flags);
    p16(p, qd);
    p16(p, an);
    p16(p, ns);
    p16(p, ar);
}

static void question(pkt_t *p, const char *name, unsigned qtype)
{
    pname(p, name);
    p16(p, qtype);
    p16(p, 1);
}

/* Type, class IN, ttl, then rdata. */
static void rr_fixed(pkt_t *p, unsigned type, uint32_t ttl, unsigned rdlen)
{
    p16(p, type);
    p16(p, 1);
    p32(p, ttl);
    p16(p, rdlen);
}

static void rdata_a(pkt_t *p, const char *ip)
{
    uint8_t a[4];
    assert_int_equal(inet_pton(AF_INET, ip, a), 1);
    pmem(p, a, 4);
}

static void rdata_aaaa(pkt_t *p, const char *ip)
{
    uint8_t a[16];
    assert_int_equal(inet_pton(AF_INET6, ip, a), 1);
    pmem(p, a, 16);
}

/* A record owned by the question name (pointer to offset 12). */
static void ans_a(pkt_t *p, uint32_t ttl, const char *ip)
{
    pptr(p, 12);
    rr_fixed(p, T_A, ttl, 4);
    rdata_a(p, ip);
}

static void check_ip(const pt_addr_t *a, const char *ip)
{
    char text[INET6_ADDRSTRLEN];
    assert_true(pt_addr_format_ip(a, text, sizeof(text)) > 0);
    assert_string_equal(text, ip);
    assert_int_equal(pt_addr_port(a), 0);
}

static int parse(const pkt_t *p, unsigned id, const char *name, unsigned qtype,
                 pt_dns_answer_t *ans)
{
    return pt_dns_parse_response(p->b, p->n, (uint16_t)id, name, (uint16_t)qtype, ans);
}

/* ------------------------------------------------------------------ */
/* Queries and names                                                   */
/* ------------------------------------------------------------------ */

static void test_build_query_bytes(void **state)
{
    (void)state;
    uint8_t buf[512];
    int n = pt_dns_build_query(buf, sizeof(buf), 0x1234, "App.Example.", PT_DNS_TYPE_AAAA);
    static const uint8_t want[] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
                                   3, 'a', 'p', 'p', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0,
                                   0, 28, 0, 1};
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
    assert_int_equal(pt_dns_build_query(buf, 20, 1, "app.example", 1), -ENOSPC);
    assert_int_equal(pt_dns_build_query(buf, sizeof(buf), 1, "a b", 1), -EINVAL);
}

static void test_name_encode(void **state)
{
    (void)state;
    uint8_t out[300];
    assert_int_equal(pt_dns_name_encode("a", out, sizeof(out)), 3);
    assert_int_equal(pt_dns_name_encode("a_b-c.d1.", out, sizeof(out)), 10);
    const char *bad[] = {"", ".", "a..b", ".a", "a b", "a/b", "é.com", "a..", "a\\.b"};
    for (size_t i = 0; i < pt_countof(bad); i++)
        assert_int_equal(pt_dns_name_encode(bad[i], out, sizeof(out)), -EINVAL);
    char label[70];
    memset(label, 'x', 63);
    label[63] = '\0';
    assert_int_equal(pt_dns_name_encode(label, out, sizeof(out)), 65);
    label[63] = 'x';
    label[64] = '\0';
    assert_int_equal(pt_dns_name_encode(label, out, sizeof(out)), -EINVAL);
    /* 255 bytes on the wire at most: 4 x 63-byte labels is 257. */
    char longname[300];
    size_t o = 0;
    for (int i = 0; i < 4; i++) {
        memset(longname + o, 'a' + i, 63);
        o += 63;
        longname[o++] = '.';
    }
    longname[o - 1] = '\0';
    assert_int_equal(pt_dns_name_encode(longname, out, sizeof(out)), -EINVAL);
    longname[o - 3] = '\0'; /* last label 61 bytes: 255 exactly */
    assert_int_equal(pt_dns_name_encode(longname, out, sizeof(out)), 255);
}

/* ------------------------------------------------------------------ */
/* Parser                                                              */
/* ------------------------------------------------------------------ */

static void test_parse_a_ttl_min(void **state)
{
    (void)state;
    pkt_t p;
    hdr(&p, 7, F_QR | F_RD | F_RA, 1, 3, 0, 0);
    question(&p, "app.test", T_A);
    ans_a(&p, 300, "10.0.0.1");
    ans_a(&p, 60, "10.0.0.2");
    ans_a(&p, 90, "10.0.0.1"); /* duplicate: listed once, its TTL still counts */
    pt_dns_answer_t a;
    assert_int_equal(parse(&p, 7, "app.test", T_A, &a), PT_DNS_OK);
    assert_int_equal(a.n, 2);
    check_ip(&a.addrs[0], "10.0.0.1");
    check_ip(&a.addrs[1], "10.0.0.2");
    assert_int_equal(a.ttl, 60);
    assert_int_equal(a.ncname, 0);
    /* The question matches case-insensitively (0x20 randomisation). */
    assert_int_equal(parse(&p, 7, "APP.Test.", T_A, &a), PT_DNS_OK);
}

static void test_parse_aaaa_and_ttl_high_bit(void **state)
{
    (void)state;
    pkt_t p;
    hdr(&p, 9, F_QR, 1, 2, 0, 0);
    question(&p, "v6.test", T_AAAA);
    pptr(&p, 12);
    rr_fixed(&p, T_AAAA, 0x80000000u, 16); /* over 2^31-1: means 0 */
    rdata_aaaa(&p, "2001:db8::1");
    pptr(&p, 12);
    rr_fixed(&p, T_A, 100, 4); /* another type: ignored */
    rdata_a(&p, "10.1.1.1");
    pt_dns_answer_t a;
    assert_int_equal(parse(&p, 9, "v6.test", T_AAAA, &a), PT_DNS_OK);
    assert_int_equal(a.n, 1);
    check_ip(&a.addrs[0], "2001:db8::1");
    assert_int_equal(a.ttl, 0);
}

static void test_parse_compression(void **state)
{
    (void)state;
    pkt_t p;
    hdr(&p, 1, F_QR, 1, 2, 0, 0);
    question(&p, "www.app.test", T_A); /* "app.test" starts at 16 */
    /* www.app.test CNAME edge.app.test, the target compressed into the question */
    pptr(&p, 12);
    rr_fixed(&p, T_CNAME, 120, 7);
    size_t edge = p.n;
    pname_open(&p, "edge");
    pptr(&p, 16);
    /* edge.app.test A, owner a pointer to the CNAME's rdata */
    pptr(&p, (unsigned)edge);
    rr_fixed(&p, T_A, 40, 4);
    rdata_a(&p, "192.0.2.9");
    pt_dns_answer_t a;
    assert_int_equal(parse(&p, 1, "www.app.test", T_A, &a), PT_DNS_OK);
    assert_int_equal(a.n, 1);
    check_ip(&a.addrs[0], "192.0.2.9");
    assert_int_equal(a.ttl, 40);
    assert_int_equal(a.ncname, 1);
}

static void test_parse_cname_chain(void **state)
{
    (void)state;
    pkt_t p;
    hdr(&p, 2, F_QR, 1, 5, 0, 0);
    question(&p, "a.test", T_A);
    /* Records out of order; an unrelated A for another name is ignored. */
    pname(&p, "c.test");
    rr_fixed(&p, T_A, 300, 4);
    rdata_a(&p, "10.9.9.9");
    pname(&p, "b.test");
    rr_fixed(&p, T_CNAME, 50, 8);
    pname(&p, "c.test");
    pname(&p, "other.test");
    rr_fixed(&p, T_A, 1, 4);
    rdata_a(&p, "10.6.6.6");
    pptr(&p, 12);
    rr_fixed(&p, T_CNAME, 100, 8);
    pname(&p, "b.test");
    pname(&p, "c.test");
    rr_fixed(&p, T_A, 200, 4);
    rdata_a(&p, "10.9.9.8");
    pt_dns_answer_t a;
    assert_int_equal(parse(&p, 2, "a.test", T_A, &a), PT_DNS_OK);
    assert_int_equal(a.n, 2);
    check_ip(&a.addrs[0], "10.9.9.9");
    check_ip(&a.addrs[1], "10.9.9.8");
    assert_int_equal(a.ttl, 50);
    assert_int_equal(a.ncname, 2);
}

static void test_parse_cname_loops_and_dead_ends(void **state)
{
    (void)state;
    pt_dns_answer_t a;
    pkt_t p;
    /* a -> b -> a */
    hdr(&p, 3, F_QR, 1, 2, 0, 0);
    question(&p, "a.test", T_A);
    pptr(&p, 12);
    rr_fixed(&p, T_CNAME, 10, 8);
    pname(&p, "b.test");
    pname(&p, "b.test");
    rr_fixed(&p, T_CNAME, 10, 2);
    pptr(&p, 12);
    assert_int_equal(parse(&p, 3, "a.test", T_A, &a), PT_DNS_MALFORMED);
    assert_int_equal(a.n, 0);

    /* A chain of PT_DNS_MAX_CNAMES + 1 links is too long. */
    hdr(&p, 4, F_QR, 1, PT_DNS_MAX_CNAMES + 2, 0, 0);
    question(&p, "n0.test", T_A);
    char from[16], to[16];
    for (int i = 0; i <= PT_DNS_MAX_CNAMES; i++) {
        snprintf(from, sizeof(from), "n%d.test", i);
        snprintf(to, sizeof(to), "n%d.test", i + 1);
        pname(&p, from);
        rr_fixed(&p, T_CNAME, 10, (unsigned)strlen(to) + 2);
        pname(&p, to);
    }
    pname(&p, to);
    rr_fixed(&p, T_A, 10, 4);
    rdata_a(&p, "10.0.0.1");
    assert_int_equal(parse(&p, 4, "n0.test", T_A, &a), PT_DNS_MALFORMED);
    /* ... and PT_DNS_MAX_CNAMES links are fine: ask from n1. */
    size_t qend = 12 + 9 + 4;
    pkt_t p2;
    hdr(&p2, 4, F_QR, 1, PT_DNS_MAX_CNAMES + 1, 0, 0);
    question(&p2, "n1.test", T_A);
    size_t first_rr_len = 9 + 10 + 9; /* n0.test CNAME n1.test */
    pmem(&p2, p.b + qend + first_rr_len, p.n - qend - first_rr_len);
    assert_int_equal(parse(&p2, 4, "n1.test", T_A, &a), PT_DNS_OK);
    assert_int_equal(a.ncname, PT_DNS_MAX_CNAMES);

    /* CNAME to a name with no A in the answer: NODATA; empty answer: NODATA. */
    hdr(&p, 5, F_QR, 1, 1, 0, 0);
    question(&p, "a.test", T_A);
    pptr(&p, 12);
    rr_fixed(&p, T_CNAME, 10, 8);
    pname(&p, "z.test");
    assert_int_equal(parse(&p, 5, "a.test", T_A, &a), PT_DNS_NODATA);
    hdr(&p, 5, F_QR, 1, 0, 0, 0);
    question(&p, "a.test", T_A);
    assert_int_equal(parse(&p, 5, "a.test", T_A, &a), PT_DNS_NODATA);

    /* Two CNAMEs for one owner break RFC 2181. */
    hdr(&p, 6, F_QR, 1, 2, 0, 0);
    question(&p, "a.test", T_A);
    pptr(&p, 12);
    rr_fixed(&p, T_CNAME, 10, 8);
    pname(&p, "b.test");
    pptr(&p, 12);
    rr_fixed(&p, T_CNAME, 10, 8);
    pname(&p, "c.test");
    assert_int_equal(parse(&p, 6, "a.test", T_A, &a), PT_DNS_MALFORMED);
}

static void test_parse_rcodes(void **state)
{
    (void)state;
    pt_dns_answer_t a;
    pkt_t p;
    struct {
        unsigned rcode;
        int want;
    } cases[] = {{3, PT_DNS_NXDOMAIN}, {2, PT_DNS_SERVFAIL}, {5, PT_DNS_SERVFAIL},
                 {1, PT_DNS_SERVFAIL}, {4, PT_DNS_SERVFAIL}};
    for (size_t i = 0; i < pt_countof(cases); i++) {
        hdr(&p, 8, F_QR | cases[i].rcode, 1, 0, 1, 0);
        question(&p, "gone.test", T_A);
        /* an SOA-like record in the authority section: walked, not used */
        pname(&p, "test");
        rr_fixed(&p, PT_DNS_TYPE_SOA, 60, 3);
        pmem(&p, "xyz", 3);
        assert_int_equal(parse(&p, 8, "gone.test", T_A, &a), cases[i].want);
        assert_int_equal(a.rcode, cases[i].rcode);
        assert_int_equal(a.n, 0);
    }
}

static void test_parse_truncated_flag(void **state)
{
    (void)state;
    pt_dns_answer_t a;
    pkt_t p;
    hdr(&p, 10, F_QR | F_TC, 1, 5, 0, 0);
    question(&p, "big.test", T_A);
    ans_a(&p, 30, "10.0.0.1");
    p.n -= 3; /* cut inside the record: TC explains it */
    assert_int_equal(parse(&p, 10, "big.test", T_A, &a), PT_DNS_TRUNCATED);
    assert_int_equal(a.n, 0);
}

static void test_parse_mismatch(void **state)
{
    (void)state;
    pt_dns_answer_t a;
    pkt_t p;
    hdr(&p, 11, F_QR, 1, 1, 0, 0);
    question(&p, "app.test", T_A);
    ans_a(&p, 30, "10.0.0.1");
    assert_int_equal(parse(&p, 11, "app.test", T_A, &a), PT_DNS_OK);
    assert_int_equal(parse(&p, 12, "app.test", T_A, &a), PT_DNS_MISMATCH);     /* id */
    assert_int_equal(parse(&p, 11, "app2.test", T_A, &a), PT_DNS_MISMATCH);    /* name */
    assert_int_equal(parse(&p, 11, "app.test", T_AAAA, &a), PT_DNS_MISMATCH);  /* type */
    assert_int_equal(parse(&p, 11, "app.test.x", T_A, &a), PT_DNS_MISMATCH);
    pkt_t q = p;
    q.b[2] &= 0x7f; /* QR = 0: a query, not an answer */
    assert_int_equal(parse(&q, 11, "app.test", T_A, &a), PT_DNS_MISMATCH);
    q = p;
    q.b[2] |= 0x10; /* opcode 2 */
    assert_int_equal(parse(&q, 11, "app.test", T_A, &a), PT_DNS_MISMATCH);
    q = p;
    q.b[12 + 10 + 3] = 3; /* class CH in the question */
    assert_int_equal(parse(&q, 11, "app.test", T_A, &a), PT_DNS_MISMATCH);
    /* Too short to hold an id: not ours; an id but no header: broken. */
    assert_int_equal(pt_dns_parse_response(p.b, 1, 11, "app.test", T_A, &a), PT_DNS_MISMATCH);
    assert_int_equal(pt_dns_parse_response(p.b, 11, 11, "app.test", T_A, &a), PT_DNS_MALFORMED);
    assert_int_equal(parse(&p, 11, "bad name", T_A, &a), -EINVAL);
    assert_int_equal(parse(&p, 11, "app.test", T_CNAME, &a), -EINVAL);
}

/* Every strict prefix of a valid answer (past the id) is rejected. */
static void test_parse_every_prefix_rejected(void **state)
{
    (void)state;
    pt_dns_answer_t a;
    pkt_t p;
    hdr(&p, 13, F_QR, 1, 2, 0, 1);
    question(&p, "www.app.test", T_A);
    pptr(&p, 12);
    rr_fixed(&p, T_CNAME, 10, 7);
    pname_open(&p, "edge");
    pptr(&p, 16);
    pname(&p, "edge.app.test");
    rr_fixed(&p, T_A, 10, 4);
    rdata_a(&p, "10.0.0.1");
    p8(&p, 0); /* OPT pseudo-record in the additional section */
    p16(&p, 41);
    p16(&p, 4096);
    p32(&p, 0);
    p16(&p, 0);
    assert_int_equal(parse(&p, 13, "www.app.test", T_A, &a), PT_DNS_OK);
    for (size_t len = 2; len < p.n; len++) {
        int rc = pt_dns_parse_response(p.b, len, 13, "www.app.test", T_A, &a);
        assert_true(rc == PT_DNS_MALFORMED || rc == PT_DNS_MISMATCH);
        assert_int_equal(a.n, 0);
    }
    /* ... and so is a byte after the last record. */
    p8(&p, 0);
    assert_int_equal(parse(&p, 13, "www.app.test", T_A, &a), PT_DNS_MALFORMED);
}

static void test_parse_malformed(void **state)
{
    (void)state;
    pt_dns_answer_t a;
    pkt_t p;
    /* A record with 5 bytes of rdata */
    hdr(&p, 14, F_QR, 1, 1, 0, 0);
    question(&p, "x.test", T_A);
    pptr(&p, 12);
    rr_fixed(&p, T_A, 10, 5);
    pmem(&p, "\x0a\0\0\x01\x02", 5);
    assert_int_equal(parse(&p, 14, "x.test", T_A, &a), PT_DNS_MALFORMED);

    /* AAAA record with 4 bytes */
    hdr(&p, 14, F_QR, 1, 1, 0, 0);
    question(&p, "x.test", T_AAAA);
    pptr(&p, 12);
    rr_fixed(&p, T_AAAA, 10, 4);
    rdata_a(&p, "10.0.0.1");
    assert_int_equal(parse(&p, 14, "x.test", T_AAAA, &a), PT_DNS_MALFORMED);

    /* A pointer to itself, forward, into the header, and two pointing at each other */
    unsigned targets[] = {0, 2, 5, 12 + 12 + 4 + 100};
    for (size_t i = 0; i < pt_countof(targets); i++) {
        hdr(&p, 15, F_QR, 1, 1, 0, 0);
        question(&p, "x.test", T_A);
        size_t here = p.n;
        pptr(&p, targets[i] == 0 ? (unsigned)here : targets[i]);
        rr_fixed(&p, T_A, 10, 4);
        rdata_a(&p, "10.0.0.1");
        assert_int_equal(parse(&p, 15, "x.test", T_A, &a), PT_DNS_MALFORMED);
    }
    /* "y" then a pointer back to "y" (offset inside the current sequence) */
    hdr(&p, 16, F_QR, 1, 1, 0, 0);
    question(&p, "x.test", T_A);
    size_t loop_at = p.n;
    pname_open(&p, "y");
    pptr(&p, (unsigned)loop_at);
    rr_fixed(&p, T_A, 10, 4);
    rdata_a(&p, "10.0.0.1");
    assert_int_equal(parse(&p, 16, "x.test", T_A, &a), PT_DNS_MALFORMED);

    /* Obsolete label types 0x40 and 0x80 */
    for (unsigned t = 0x40; t <= 0x80; t += 0x40) {
        hdr(&p, 17, F_QR, 1, 1, 0, 0);
        question(&p, "x.test", T_A);
        p8(&p, t | 1);
        p8(&p, 'a');
        p8(&p, 0);
        rr_fixed(&p, T_A, 10, 4);
        rdata_a(&p, "10.0.0.1");
        assert_int_equal(parse(&p, 17, "x.test", T_A, &a), PT_DNS_MALFORMED);
    }

    /* Two questions */
    hdr(&p, 18, F_QR, 2, 0, 0, 0);
    question(&p, "x.test", T_A);
    question(&p, "x.test", T_A);
    assert_int_equal(parse(&p, 18, "x.test", T_A, &a), PT_DNS_MALFORMED);

    /* More records announced than present */
    hdr(&p, 19, F_QR, 1, 2, 0, 0);
    question(&p, "x.test", T_A);
    ans_a(&p, 10, "10.0.0.1");
    assert_int_equal(parse(&p, 19, "x.test", T_A, &a), PT_DNS_MALFORMED);

    /* rdlength past the end */
    hdr(&p, 20, F_QR, 1, 1, 0, 0);
    question(&p, "x.test", T_A);
    pptr(&p, 12);
    rr_fixed(&p, 16, 10, 200); /* TXT */
    pmem(&p, "abc", 3);
    assert_int_equal(parse(&p, 20, "x.test", T_A, &a), PT_DNS_MALFORMED);

    /* CNAME rdata longer than its name */
    hdr(&p, 21, F_QR, 1, 1, 0, 0);
    question(&p, "x.test", T_A);
    pptr(&p, 12);
    rr_fixed(&p, T_CNAME, 10, 9);
    pname(&p, "b.test");
    p8(&p, 0);
    assert_int_equal(parse(&p, 21, "x.test", T_A, &a), PT_DNS_MALFORMED);
}

/* A name that grows past 255 bytes through pointers is rejected. */
static void test_parse_name_too_long_via_pointers(void **state)
{
    (void)state;
    pt_dns_answer_t a;
    pkt_t p;
    hdr(&p, 22, F_QR, 1, 1, 0, 2);
    question(&p, "x.test", T_A);
    ans_a(&p, 10, "10.0.0.1");
    /* Additional 1: owner root, TXT rdata holding 5 names of one 63-byte
     * label each, every one ending with a pointer to the previous:
     * name i decodes to (i + 1) * 64 + 1 bytes. */
    p8(&p, 0);
    rr_fixed(&p, 16, 10, 65 + 4 * 66);
    size_t offs[5];
    for (int i = 0; i < 5; i++) {
        offs[i] = p.n;
        p8(&p, 63);
        for (int k = 0; k < 63; k++) p8(&p, 'q');
        if (i == 0) p8(&p, 0);
        else pptr(&p, (unsigned)offs[i - 1]);
    }
    /* Additional 2: owner = name 3 (257 bytes), empty TXT. */
    size_t owner = p.n;
    pptr(&p, (unsigned)offs[3]);
    rr_fixed(&p, 16, 10, 0);
    assert_int_equal(parse(&p, 22, "x.test", T_A, &a), PT_DNS_MALFORMED);
    /* name 2 (193 bytes) is fine */
    p.n = owner;
    pptr(&p, (unsigned)offs[2]);
    rr_fixed(&p, 16, 10, 0);
    assert_int_equal(parse(&p, 22, "x.test", T_A, &a), PT_DNS_OK);
}

static void test_parse_many_addresses_capped(void **state)
{
    (void)state;
    pt_dns_answer_t a;
    pkt_t p;
    unsigned n = PT_DNS_MAX_ADDRS + 8;
    hdr(&p, 23, F_QR, 1, n, 0, 0);
    question(&p, "many.test", T_A);
    for (unsigned i = 0; i < n; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.0.%u.%u", i / 250, i % 250 + 1);
        ans_a(&p, 100 + i, ip);
    }
    assert_int_equal(parse(&p, 23, "many.test", T_A, &a), PT_DNS_OK);
    assert_int_equal(a.n, PT_DNS_MAX_ADDRS);
    check_ip(&a.addrs[0], "10.0.0.1");
    assert_int_equal(a.ttl, 100);
}

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(pt_dns_strerror(PT_DNS_NXDOMAIN), "no such name (NXDOMAIN)");
    assert_string_equal(pt_dns_strerror(PT_DNS_TIMEOUT), "timed out");
    assert_string_equal(pt_dns_strerror(-ECONNREFUSED), strerror(ECONNREFUSED));
}

static void test_resolv_conf(void **state)
{
    (void)state;
    char path[] = "/tmp/pt_dns_resolv_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "# comment\n"
                       "search example.com\n"
                       "nameserver 192.0.2.53\n"
                       "nameserver   fe80::1%eth0\n"
                       "nameserver nonsense\n"
                       "; nameserver 10.0.0.1\n"
                       "nameserver 2001:db8::53\n"
                       "options timeout:1\n"
                       "nameserver 10.0.0.3\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    pt_addr_t out[4];
    assert_int_equal(pt_dns_read_resolv_conf(path, out, 4), 3);
    char buf[64];
    pt_addr_format(&out[0], buf, sizeof(buf));
    assert_string_equal(buf, "192.0.2.53:53");
    pt_addr_format(&out[1], buf, sizeof(buf));
    assert_string_equal(buf, "[2001:db8::53]:53");
    pt_addr_format(&out[2], buf, sizeof(buf));
    assert_string_equal(buf, "10.0.0.3:53");
    assert_int_equal(pt_dns_read_resolv_conf(path, out, 1), 1);
    unlink(path);
    assert_int_equal(pt_dns_read_resolv_conf("/nonexistent/resolv.conf", out, 4), 0);
}

/* ------------------------------------------------------------------ */
/* End to end: a responder on the same loop                            */
/* ------------------------------------------------------------------ */

typedef enum {
    R_ANSWER,   /* A: a_ip (ttl), AAAA: aaaa_ip or NODATA */
    R_NXDOMAIN,
    R_SERVFAIL,
    R_SILENT,   /* never answers */
    R_SPOOF,    /* first a wrong id, then a wrong question, then the answer */
    R_TRUNC,
} behaviour_t;

typedef struct responder {
    pt_io_t io;
    pt_addr_t addr;
    behaviour_t how;
    const char *a_ip, *aaaa_ip;
    uint32_t ttl;
    int queries;          /* received */
    uint16_t ids[64];
    uint16_t ports[64];   /* client source ports */
} responder_t;

static void respond(responder_t *rs, const uint8_t *q, size_t qlen, const struct sockaddr *to,
                    socklen_t tolen)
{
    pkt_t p;
    unsigned id = (q[0] << 8) | q[1];
    unsigned qtype = (q[qlen - 4] << 8) | q[qlen - 3];
    const uint8_t *quest = q + 12;
    size_t questlen = qlen - 12;
    if (rs->how == R_SILENT) return;
    if (rs->how == R_SPOOF) {
        hdr(&p, id ^ 0x5555, F_QR | F_RA, 1, 1, 0, 0);
        pmem(&p, quest, questlen);
        ans_a(&p, 5, "203.0.113.66");
        assert_true(sendto(rs->io.fd, p.b, p.n, 0, to, tolen) > 0);
        hdr(&p, id, F_QR | F_RA, 1, 1, 0, 0);
        question(&p, "evil.test", qtype);
        ans_a(&p, 5, "203.0.113.67");
        assert_true(sendto(rs->io.fd, p.b, p.n, 0, to, tolen) > 0);
    }
    unsigned rcode = rs->how == R_NXDOMAIN ? 3 : rs->how == R_SERVFAIL ? 2 : 0;
    unsigned tc = rs->how == R_TRUNC ? F_TC : 0;
    bool have = rcode == 0 && !tc && (qtype == T_A ? rs->a_ip != NULL : rs->aaaa_ip != NULL);
    hdr(&p, id, F_QR | F_RA | rcode | tc, 1, have ? 1 : 0, 0, 0);
    pmem(&p, quest, questlen);
    if (have) {
        pptr(&p, 12);
        if (qtype == T_A) {
            rr_fixed(&p, T_A, rs->ttl, 4);
            rdata_a(&p, rs->a_ip);
        } else {
            rr_fixed(&p, T_AAAA, rs->ttl + 1, 16);
            rdata_aaaa(&p, rs->aaaa_ip);
        }
    }
    assert_true(sendto(rs->io.fd, p.b, p.n, 0, to, tolen) > 0);
}

static void on_responder(pt_io_t *io, unsigned events)
{
    responder_t *rs = io->data;
    (void)events;
    for (;;) {
        uint8_t q[512];
        struct sockaddr_in from;
        socklen_t fl = sizeof(from);
        ssize_t n = recvfrom(io->fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
        if (n < 0) {
            io->readable = false;
            return;
        }
        assert_true(n > 16);
        if (rs->queries < 64) {
            rs->ids[rs->queries] = (uint16_t)((q[0] << 8) | q[1]);
            rs->ports[rs->queries] = ntohs(from.sin_port);
        }
        rs->queries++;
        respond(rs, q, (size_t)n, (struct sockaddr *)&from, fl);
    }
}

static void responder_start(pt_loop_t *loop, responder_t *rs, behaviour_t how)
{
    memset(rs, 0, sizeof(*rs));
    rs->how = how;
    rs->a_ip = "10.20.30.40";
    rs->ttl = 30;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    socklen_t sl = sizeof(sin);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    memcpy(&rs->addr.ss, &sin, sizeof(sin));
    rs->addr.len = sizeof(sin);
    rs->io = (pt_io_t){.fd = fd, .cb = on_responder, .data = rs};
    assert_int_equal(pt_io_start_read(loop, &rs->io), 0);
}

static void responder_stop(pt_loop_t *loop, responder_t *rs)
{
    pt_io_stop(loop, &rs->io);
    close(rs->io.fd);
}

/* A loopback port where nothing listens (ICMP port unreachable). */
static pt_addr_t closed_port(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    socklen_t sl = sizeof(sin);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    close(fd);
    pt_addr_t a = {.len = sizeof(sin)};
    memcpy(&a.ss, &sin, sizeof(sin));
    return a;
}

typedef struct result {
    pt_loop_t *loop;
    int calls;
    int status;
    size_t n;
    pt_addr_t addrs[8];
    uint32_t ttl;
    int expect; /* callbacks before stopping the loop */
    pt_dns_resolver_t *destroy; /* destroy this resolver in the callback */
} result_t;

static void on_result(void *arg, int status, const pt_addr_t *addrs, size_t n, uint32_t ttl)
{
    result_t *r = arg;
    r->calls++;
    r->status = status;
    r->n = n;
    r->ttl = ttl;
    if (n) memcpy(r->addrs, addrs, pt_min(n, pt_countof(r->addrs)) * sizeof(*addrs));
    if (r->destroy) {
        pt_dns_resolver_destroy(r->destroy);
        r->destroy = NULL;
    }
    if (r->calls >= r->expect) pt_loop_stop(r->loop);
}

static void on_guard(pt_timer_t *t) { pt_loop_stop(t->data); }

/* Runs the loop until the expected callbacks came or 5 s passed. */
static void run(pt_loop_t *loop)
{
    pt_timer_t guard;
    pt_timer_init(&guard, on_guard, loop);
    pt_timer_start(loop, &guard, 5000);
    assert_int_equal(pt_loop_run(loop), 0);
    pt_timer_stop(loop, &guard);
}

/* Runs the loop for ms milliseconds. */
static void run_for(pt_loop_t *loop, uint64_t ms)
{
    pt_timer_t stop;
    pt_timer_init(&stop, on_guard, loop);
    pt_timer_start(loop, &stop, ms);
    assert_int_equal(pt_loop_run(loop), 0);
}

static void test_resolve_end_to_end(void **state)
{
    (void)state;
    pt_loop_t *loop = pt_loop_create();
    responder_t rs;
    responder_start(loop, &rs, R_ANSWER);
    rs.aaaa_ip = "2001:db8::7";
    pt_dns_resolver_t *r = pt_dns_resolver_create(loop, &rs.addr, 1, 4000);
    assert_non_null(r);
    result_t res = {.loop = loop, .expect = 1};
    pt_dns_query_t *q;
    assert_int_equal(pt_dns_resolve(r, "App.Test", on_result, &res, &q), 0);
    assert_non_null(q);
    assert_int_equal(res.calls, 0); /* never from inside pt_dns_resolve */
    run(loop);
    assert_int_equal(res.calls, 1);
    assert_int_equal(res.status, PT_DNS_OK);
    assert_int_equal(res.n, 2);
    check_ip(&res.addrs[0], "10.20.30.40");
    check_ip(&res.addrs[1], "2001:db8::7");
    assert_int_equal(res.ttl, 30);
    assert_int_equal(rs.queries, 2);
    /* A and AAAA on two sockets with two ids */
    assert_int_not_equal(rs.ports[0], rs.ports[1]);

    /* Only an A record: the AAAA NODATA does not spoil it. */
    rs.aaaa_ip = NULL;
    rs.ttl = 7;
    res = (result_t){.loop = loop, .expect = 1};
    assert_int_equal(pt_dns_resolve(r, "app.test", on_result, &res, NULL), 0);
    run(loop);
    assert_int_equal(res.status, PT_DNS_OK);
    assert_int_equal(res.n, 1);
    assert_int_equal(res.ttl, 7);

    /* Neither: NODATA. */
    rs.a_ip = NULL;
    res = (result_t){.loop = loop, .expect = 1};
    assert_int_equal(pt_dns_resolve(r, "app.test", on_result, &res, NULL), 0);
    run(loop);
    assert_int_equal(res.status, PT_DNS_NODATA);
    assert_int_equal(res.n, 0);

    /* Ids differ from query to query (random, 16 bits: a repeat among 6
     * is possible but rare enough). */
    int distinct = 0;
    for (int i = 0; i < rs.queries; i++) {
        bool seen = false;
        for (int k = 0; k < i; k++) seen |= rs.ids[k] == rs.ids[i];
        distinct += !seen;
    }
    assert_true(distinct >= rs.queries - 1);
    pt_dns_resolver_destroy(r);
    responder_stop(loop, &rs);
    pt_loop_destroy(loop);
}

static void test_resolve_nxdomain(void **state)
{
    (void)state;
    pt_loop_t *loop = pt_loop_create();
    responder_t rs;
    responder_start(loop, &rs, R_NXDOMAIN);
    pt_dns_resolver_t *r = pt_dns_resolver_create(loop, &rs.addr, 1, 4000);
    result_t res = {.loop = loop, .expect = 1};
    assert_int_equal(pt_dns_resolve(r, "gone.test", on_result, &res, NULL), 0);
    run(loop);
    assert_int_equal(res.status, PT_DNS_NXDOMAIN);
    assert_int_equal(rs.queries, 2); /* authoritative: no retry */
    pt_dns_resolver_destroy(r);
    responder_stop(loop, &rs);
    pt_loop_destroy(loop);
}

static void test_resolve_timeout(void **state)
{
    (void)state;
    pt_loop_t *loop = pt_loop_create();
    responder_t rs;
    responder_start(loop, &rs, R_SILENT);
    /* 1 s: two attempts of 500 ms, so a loaded machine stalling for a
     * while does not eat the second one. */
    pt_dns_resolver_t *r = pt_dns_resolver_create(loop, &rs.addr, 1, 1000);
    result_t res = {.loop = loop, .expect = 1};
    uint64_t t0 = pt_time_mono_ms();
    assert_int_equal(pt_dns_resolve(r, "slow.test", on_result, &res, NULL), 0);
    run(loop);
    uint64_t took = pt_time_mono_ms() - t0;
    assert_int_equal(res.calls, 1);
    assert_int_equal(res.status, PT_DNS_TIMEOUT);
    assert_true(took >= 990 && took < 3000);
    assert_int_equal(rs.queries, 4); /* two attempts each for A and AAAA */
    pt_dns_resolver_destroy(r);
    responder_stop(loop, &rs);
    pt_loop_destroy(loop);
}

/* A silent, a refusing, a failing and a truncating server before a good one. */
static void test_resolve_failover(void **state)
{
    (void)state;
    pt_loop_t *loop = pt_loop_create();
    responder_t silent, failing, good;
    responder_start(loop, &silent, R_SILENT);
    responder_start(loop, &failing, R_SERVFAIL);
    responder_start(loop, &good, R_ANSWER);
    pt_addr_t servers[4] = {failing.addr, closed_port(), silent.addr, good.addr};
    /* 1.5 s attempts: the responders share the loop, so a machine that
     * stalls the loop for an attempt's time would turn answers into
     * timeouts. */
    pt_dns_resolver_t *r = pt_dns_resolver_create(loop, servers, 4, 12000);
    result_t res = {.loop = loop, .expect = 1};
    assert_int_equal(pt_dns_resolve(r, "app.test", on_result, &res, NULL), 0);
    run(loop);
    assert_int_equal(res.status, PT_DNS_OK);
    check_ip(&res.addrs[0], "10.20.30.40");
    assert_int_equal(failing.queries, 2);
    assert_int_equal(silent.queries, 2);
    assert_int_equal(good.queries, 2);
    pt_dns_resolver_destroy(r);

    /* Truncated answers from everyone: the error says so. */
    failing.how = R_TRUNC;
    r = pt_dns_resolver_create(loop, &failing.addr, 1, 4000);
    res = (result_t){.loop = loop, .expect = 1};
    assert_int_equal(pt_dns_resolve(r, "app.test", on_result, &res, NULL), 0);
    run(loop);
    assert_int_equal(res.status, PT_DNS_TRUNCATED);
    pt_dns_resolver_destroy(r);

    /* Nobody listening: the socket error, quickly, after two attempts. */
    pt_addr_t closed = closed_port();
    r = pt_dns_resolver_create(loop, &closed, 1, 3000);
    res = (result_t){.loop = loop, .expect = 1};
    uint64_t t0 = pt_time_mono_ms();
    assert_int_equal(pt_dns_resolve(r, "app.test", on_result, &res, NULL), 0);
    run(loop);
    assert_int_equal(res.status, -ECONNREFUSED);
    assert_true(pt_time_mono_ms() - t0 < 1000);
    pt_dns_resolver_destroy(r);

    responder_stop(loop, &silent);
    responder_stop(loop, &failing);
    responder_stop(loop, &good);
    pt_loop_destroy(loop);
}

/* Answers with a wrong id or question are ignored; the real one is taken. */
static void test_resolve_ignores_spoofs(void **state)
{
    (void)state;
    pt_loop_t *loop = pt_loop_create();
    responder_t rs;
    responder_start(loop, &rs, R_SPOOF);
    pt_dns_resolver_t *r = pt_dns_resolver_create(loop, &rs.addr, 1, 4000);
    result_t res = {.loop = loop, .expect = 1};
    assert_int_equal(pt_dns_resolve(r, "app.test", on_result, &res, NULL), 0);
    run(loop);
    assert_int_equal(res.status, PT_DNS_OK);
    assert_int_equal(res.n, 1);
    check_ip(&res.addrs[0], "10.20.30.40");
    assert_int_equal(rs.queries, 2);
    pt_dns_resolver_destroy(r);
    responder_stop(loop, &rs);
    pt_loop_destroy(loop);
}

static void test_resolve_literals(void **state)
{
    (void)state;
    pt_loop_t *loop = pt_loop_create();
    responder_t rs;
    responder_start(loop, &rs, R_ANSWER);
    pt_dns_resolver_t *r = pt_dns_resolver_create(loop, &rs.addr, 1, 4000);
    result_t a = {.loop = loop, .expect = 1}, b = a, c = a;
    assert_int_equal(pt_dns_resolve(r, "192.0.2.1", on_result, &a, NULL), 0);
    assert_int_equal(pt_dns_resolve(r, "[2001:db8::1]", on_result, &b, NULL), 0);
    assert_int_equal(pt_dns_resolve(r, "LocalHost", on_result, &c, NULL), 0);
    assert_int_equal(a.calls + b.calls + c.calls, 0);
    run(loop); /* all three fire in one timer pass */
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.n, 1);
    check_ip(&a.addrs[0], "192.0.2.1");
    assert_int_equal(b.n, 1);
    check_ip(&b.addrs[0], "2001:db8::1");
    assert_int_equal(c.n, 2);
    check_ip(&c.addrs[0], "127.0.0.1");
    check_ip(&c.addrs[1], "::1");
    assert_int_equal(c.ttl, 3600);
    assert_int_equal(rs.queries, 0);
    assert_int_equal(pt_dns_resolve(r, "not a name", on_result, &a, NULL), -EINVAL);
    assert_int_equal(pt_dns_resolve(r, "", on_result, &a, NULL), -EINVAL);
    pt_dns_resolver_destroy(r);
    responder_stop(loop, &rs);
    pt_loop_destroy(loop);
}

/* Cancel, destroy with queries pending, destroy from a callback: no
 * callback after cancel, nothing leaked (ASan). */
static void test_resolve_cancel_and_destroy(void **state)
{
    (void)state;
    pt_loop_t *loop = pt_loop_create();
    responder_t rs;
    responder_start(loop, &rs, R_ANSWER);
    pt_dns_resolver_t *r = pt_dns_resolver_create(loop, &rs.addr, 1, 4000);
    result_t cancelled = {.loop = loop, .expect = 1}, kept = cancelled;
    pt_dns_query_t *q1, *q2;
    assert_int_equal(pt_dns_resolve(r, "one.test", on_result, &cancelled, &q1), 0);
    assert_int_equal(pt_dns_resolve(r, "two.test", on_result, &kept, &q2), 0);
    pt_dns_cancel(q1);
    run(loop);
    assert_int_equal(cancelled.calls, 0);
    assert_int_equal(kept.calls, 1);

    /* Destroyed from the callback of one query while another is pending. */
    result_t first = {.loop = loop, .expect = 1, .destroy = r};
    result_t never = {.loop = loop, .expect = 1};
    assert_int_equal(pt_dns_resolve(r, "localhost", on_result, &first, NULL), 0);
    assert_int_equal(pt_dns_resolve(r, "three.test", on_result, &never, NULL), 0);
    run(loop);
    assert_int_equal(first.calls, 1);
    assert_int_equal(never.calls, 0);

    /* Destroyed with queries in flight. */
    r = pt_dns_resolver_create(loop, &rs.addr, 1, 4000);
    rs.how = R_SILENT;
    int before = rs.queries;
    assert_int_equal(pt_dns_resolve(r, "four.test", on_result, &never, NULL), 0);
    result_t lit = {.loop = loop, .expect = 9};
    assert_int_equal(pt_dns_resolve(r, "127.0.0.1", on_result, &lit, NULL), 0);
    run_for(loop, 100); /* the literal answers; four.test is in flight */
    assert_int_equal(lit.calls, 1);
    assert_int_equal(rs.queries, before + 2);
    pt_dns_resolver_destroy(r);
    assert_int_equal(never.calls, 0);
    responder_stop(loop, &rs);
    pt_loop_destroy(loop); /* runs the deferred frees */
}

static void test_resolver_defaults(void **state)
{
    (void)state;
    pt_loop_t *loop = pt_loop_create();
    pt_dns_resolver_t *r = pt_dns_resolver_create(loop, NULL, 0, 0);
    assert_non_null(r);
    const pt_addr_t *servers;
    size_t n = pt_dns_resolver_servers(r, &servers);
    pt_addr_t want[PT_DNS_MAX_SERVERS];
    size_t nw = pt_dns_read_resolv_conf("/etc/resolv.conf", want, PT_DNS_MAX_SERVERS);
    if (nw == 0) {
        assert_int_equal(n, 1);
        char buf[64];
        pt_addr_format(&servers[0], buf, sizeof(buf));
        assert_string_equal(buf, "127.0.0.1:53");
    } else {
        assert_int_equal(n, nw);
        for (size_t i = 0; i < n; i++) assert_true(pt_addr_equal(&servers[i], &want[i]));
    }
    pt_dns_resolver_destroy(r);
    pt_loop_destroy(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_query_bytes),
        cmocka_unit_test(test_name_encode),
        cmocka_unit_test(test_parse_a_ttl_min),
        cmocka_unit_test(test_parse_aaaa_and_ttl_high_bit),
        cmocka_unit_test(test_parse_compression),
        cmocka_unit_test(test_parse_cname_chain),
        cmocka_unit_test(test_parse_cname_loops_and_dead_ends),
        cmocka_unit_test(test_parse_rcodes),
        cmocka_unit_test(test_parse_truncated_flag),
        cmocka_unit_test(test_parse_mismatch),
        cmocka_unit_test(test_parse_every_prefix_rejected),
        cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_parse_name_too_long_via_pointers),
        cmocka_unit_test(test_parse_many_addresses_capped),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_resolv_conf),
        cmocka_unit_test(test_resolve_end_to_end),
        cmocka_unit_test(test_resolve_nxdomain),
        cmocka_unit_test(test_resolve_timeout),
        cmocka_unit_test(test_resolve_failover),
        cmocka_unit_test(test_resolve_ignores_spoofs),
        cmocka_unit_test(test_resolve_literals),
        cmocka_unit_test(test_resolve_cancel_and_destroy),
        cmocka_unit_test(test_resolver_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
