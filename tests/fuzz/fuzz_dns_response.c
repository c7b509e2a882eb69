/*
 * Fuzz target for the DNS response parser (src/dns/dns_packet.c).
 *
 * The input is a response to a query for "app.test" whose id is the
 * input's own first two bytes (so the id check passes and the fuzzer
 * explores the rest). Checks, for both A and AAAA:
 *   - the result is one of the documented values and the answer agrees
 *     with it (addresses only on success, unique, of the asked family,
 *     port 0; TTL <= 2^31 - 1; the CNAME count within the limit);
 *   - parsing is deterministic, and any other id gives PT_DNS_MISMATCH;
 *   - a success survives re-encoding: a plain response listing the same
 *     addresses with the same TTL parses to the same answer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "dns/dns.h"

#define QNAME "app.test"

static void check(bool ok)
{
    if (!ok) abort();
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* A response to (id, QNAME, qtype) with one record per address of a. */
static size_t encode(uint8_t *buf, uint16_t id, uint16_t qtype, const pt_dns_answer_t *a)
{
    int qlen = pt_dns_build_query(buf, 512, id, QNAME, qtype);
    check(qlen > 0);
    size_t n = (size_t)qlen;
    put16(buf + 2, 0x8180); /* QR RD RA */
    put16(buf + 6, (unsigned)a->n);
    for (size_t i = 0; i < a->n; i++) {
        bool v4 = qtype == PT_DNS_TYPE_A;
        size_t rdlen = v4 ? 4 : 16;
        put16(buf + n, 0xc00c);
        put16(buf + n + 2, qtype);
        put16(buf + n + 4, PT_DNS_CLASS_IN);
        put16(buf + n + 6, a->ttl >> 16);
        put16(buf + n + 8, a->ttl & 0xffff);
        put16(buf + n + 10, (unsigned)rdlen);
        const void *ip = v4 ? (const void *)&a->addrs[i].ss.in4.sin_addr
                            : (const void *)&a->addrs[i].ss.in6.sin6_addr;
        memcpy(buf + n + 12, ip, rdlen);
        n += 12 + rdlen;
    }
    return n;
}

static void check_answer(int rc, const pt_dns_answer_t *a, uint16_t qtype)
{
    check(rc == PT_DNS_OK || rc == PT_DNS_NODATA || rc == PT_DNS_NXDOMAIN ||
          rc == PT_DNS_SERVFAIL || rc == PT_DNS_TRUNCATED || rc == PT_DNS_MALFORMED ||
          rc == PT_DNS_MISMATCH);
    if (rc != PT_DNS_OK) {
        check(a->n == 0);
        return;
    }
    check(a->n >= 1 && a->n <= PT_DNS_MAX_ADDRS);
    check(a->ttl <= INT32_MAX);
    check(a->ncname <= PT_DNS_MAX_CNAMES);
    int family = qtype == PT_DNS_TYPE_A ? AF_INET : AF_INET6;
    for (size_t i = 0; i < a->n; i++) {
        check(a->addrs[i].ss.ss_family == family);
        check(pt_addr_port(&a->addrs[i]) == 0);
        for (size_t k = 0; k < i; k++) check(!pt_addr_equal(&a->addrs[i], &a->addrs[k]));
    }
}

static void one_type(const uint8_t *data, size_t size, uint16_t qtype)
{
    uint16_t id = size >= 2 ? (uint16_t)((data[0] << 8) | data[1]) : 0;
    pt_dns_answer_t a, b;
    int rc = pt_dns_parse_response(data, size, id, QNAME, qtype, &a);
    check_answer(rc, &a, qtype);
    check(pt_dns_parse_response(data, size, id, QNAME, qtype, &b) == rc);
    check(b.n == a.n && b.ttl == a.ttl && memcmp(b.addrs, a.addrs, a.n * sizeof(a.addrs[0])) == 0);
    if (size >= 2) {
        check(pt_dns_parse_response(data, size, (uint16_t)(id + 1), QNAME, qtype, &b) ==
              PT_DNS_MISMATCH);
        check(b.n == 0);
    }
    if (rc == PT_DNS_OK) {
        uint8_t buf[512 + PT_DNS_MAX_ADDRS * 28];
        size_t n = encode(buf, id, qtype, &a);
        check(pt_dns_parse_response(buf, n, id, QNAME, qtype, &b) == PT_DNS_OK);
        check(b.n == a.n && b.ttl == a.ttl && b.ncname == 0);
        for (size_t i = 0; i < a.n; i++) check(pt_addr_equal(&a.addrs[i], &b.addrs[i]));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one_type(data, size, PT_DNS_TYPE_A);
    one_type(data, size, PT_DNS_TYPE_AAAA);
    return 0;
}
