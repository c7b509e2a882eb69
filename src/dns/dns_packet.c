/*
 * DNS messages (RFC 1035 section 4): building queries and parsing answers.
 *
 * The parser reads untrusted bytes from the network, so it checks every
 * length against the end of the message before reading, walks every record
 * of every section (a message whose counts do not match its bytes is
 * rejected, and so are bytes after the last record), and decodes names
 * into a bounded buffer. Compression pointers must point before the label
 * sequence they appear in, so each jump goes strictly backwards and a name
 * cannot loop; the 255-byte limit on a decoded name bounds the work too.
 */
#include <errno.h>
#include <string.h>

#include "dns/dns.h"

#define HDR_LEN 12
#define RR_FIXED 10 /* type, class, ttl, rdlength */

#define FLAG_QR 0x8000u
#define FLAG_OPCODE 0x7800u
#define FLAG_TC 0x0200u
#define FLAG_RD 0x0100u
#define RCODE_MASK 0x000fu
#define RCODE_NXDOMAIN 3

static uint16_t get16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

static uint32_t get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint8_t ascii_lower(uint8_t c) { return c >= 'A' && c <= 'Z' ? (uint8_t)(c | 0x20) : c; }

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

const char *pt_dns_strerror(int status)
{
    switch (status) {
    case PT_DNS_OK: return "ok";
    case PT_DNS_NXDOMAIN: return "no such name (NXDOMAIN)";
    case PT_DNS_NODATA: return "no address records";
    case PT_DNS_SERVFAIL: return "server failure";
    case PT_DNS_TRUNCATED: return "answer truncated";
    case PT_DNS_MALFORMED: return "malformed answer";
    case PT_DNS_MISMATCH: return "answer does not match the query";
    case PT_DNS_TIMEOUT: return "timed out";
    default: return status < 0 && status > -4096 ? strerror(-status) : "unknown error";
    }
}

int pt_dns_name_encode(const char *name, uint8_t *out, size_t size)
{
    size_t nlen = strlen(name);
    if (nlen > 0 && name[nlen - 1] == '.') nlen--; /* fully qualified form */
    if (nlen == 0) return -EINVAL;
    size_t o = 0;
    for (size_t i = 0; i <= nlen;) {
        size_t start = i;
        while (i < nlen && name[i] != '.') {
            if (!host_char(name[i])) return -EINVAL;
            i++;
        }
        size_t lab = i - start;
        if (lab == 0 || lab > 63) return -EINVAL;
        if (o + 1 + lab + 1 > PT_DNS_MAX_NAME || o + 1 + lab + 1 > size) return -EINVAL;
        out[o++] = (uint8_t)lab;
        for (size_t k = 0; k < lab; k++) out[o++] = ascii_lower((uint8_t)name[start + k]);
        i++; /* past the dot (or the end) */
    }
    out[o++] = 0;
    return (int)o;
}

int pt_dns_build_query(uint8_t *buf, size_t size, uint16_t id, const char *name, uint16_t qtype)
{
    uint8_t qname[PT_DNS_MAX_NAME];
    int nl = pt_dns_name_encode(name, qname, sizeof(qname));
    if (nl < 0) return nl;
    size_t len = HDR_LEN + (size_t)nl + 4;
    if (len > size) return -ENOSPC;
    memset(buf, 0, HDR_LEN);
    put16(buf, id);
    put16(buf + 2, FLAG_RD);
    put16(buf + 4, 1); /* QDCOUNT */
    memcpy(buf + HDR_LEN, qname, (size_t)nl);
    put16(buf + HDR_LEN + nl, qtype);
    put16(buf + HDR_LEN + nl + 2, PT_DNS_CLASS_IN);
    return (int)len;
}

/* ---- parsing ---- */

typedef struct msg {
    const uint8_t *p;
    size_t len;
} msg_t;

/*
 * Decodes the name at *off into out (wire form, lower case, at most 255
 * bytes) and moves *off past it (past the first pointer when compressed).
 * Returns the decoded length, or PT_DNS_MALFORMED.
 */
static int read_name(const msg_t *m, size_t *off, uint8_t *out)
{
    size_t pos = *off;
    size_t floor = pos; /* start of the current label sequence */
    size_t o = 0;
    bool jumped = false;
    for (;;) {
        if (pos >= m->len) return PT_DNS_MALFORMED;
        uint8_t c = m->p[pos];
        if ((c & 0xc0) == 0xc0) {
            if (pos + 1 >= m->len) return PT_DNS_MALFORMED;
            size_t target = ((size_t)(c & 0x3f) << 8) | m->p[pos + 1];
            /* Strictly backwards and not into the header: no loops. */
            if (target >= floor || target < HDR_LEN) return PT_DNS_MALFORMED;
            if (!jumped) *off = pos + 2;
            jumped = true;
            pos = floor = target;
            continue;
        }
        if (c & 0xc0) return PT_DNS_MALFORMED; /* 0x40, 0x80: obsolete label types */
        if (o + 1 + c > PT_DNS_MAX_NAME) return PT_DNS_MALFORMED;
        if (pos + 1 + c > m->len) return PT_DNS_MALFORMED;
        out[o++] = c;
        if (c == 0) break;
        for (size_t k = 0; k < c; k++) out[o++] = ascii_lower(m->p[pos + 1 + k]);
        pos += 1 + (size_t)c;
    }
    if (!jumped) *off = pos + 1;
    return (int)o;
}

typedef struct rr {
    uint8_t owner[PT_DNS_MAX_NAME];
    size_t owner_len;
    uint16_t type, klass;
    uint32_t ttl;
    size_t rdoff, rdlen;
} rr_t;

/* Reads one resource record at *off (and checks the rdata of the types we
 * use). Returns 0 or PT_DNS_MALFORMED. */
static int read_rr(const msg_t *m, size_t *off, rr_t *rr)
{
    int nl = read_name(m, off, rr->owner);
    if (nl < 0) return nl;
    rr->owner_len = (size_t)nl;
    if (*off + RR_FIXED > m->len) return PT_DNS_MALFORMED;
    const uint8_t *f = m->p + *off;
    rr->type = get16(f);
    rr->klass = get16(f + 2);
    rr->ttl = get32(f + 4);
    if (rr->ttl > INT32_MAX) rr->ttl = 0; /* RFC 2181 section 8 */
    rr->rdlen = get16(f + 8);
    rr->rdoff = *off + RR_FIXED;
    if (rr->rdoff + rr->rdlen > m->len) return PT_DNS_MALFORMED;
    *off = rr->rdoff + rr->rdlen;
    if (rr->klass != PT_DNS_CLASS_IN) return 0;
    if (rr->type == PT_DNS_TYPE_A && rr->rdlen != 4) return PT_DNS_MALFORMED;
    if (rr->type == PT_DNS_TYPE_AAAA && rr->rdlen != 16) return PT_DNS_MALFORMED;
    if (rr->type == PT_DNS_TYPE_CNAME) {
        uint8_t target[PT_DNS_MAX_NAME];
        size_t t = rr->rdoff;
        if (read_name(m, &t, target) < 0 || t != rr->rdoff + rr->rdlen) return PT_DNS_MALFORMED;
    }
    return 0;
}

static bool name_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

static void addr_from_rdata(const uint8_t *rd, uint16_t type, pt_addr_t *a)
{
    memset(a, 0, sizeof(*a));
    if (type == PT_DNS_TYPE_A) {
        a->ss.in4.sin_family = AF_INET;
        memcpy(&a->ss.in4.sin_addr, rd, 4);
        a->len = sizeof(struct sockaddr_in);
    } else {
        a->ss.in6.sin6_family = AF_INET6;
        memcpy(&a->ss.in6.sin6_addr, rd, 16);
        a->len = sizeof(struct sockaddr_in6);
    }
}

static void answer_add(pt_dns_answer_t *out, const pt_addr_t *a)
{
    for (size_t i = 0; i < out->n; i++)
        if (pt_addr_equal(&out->addrs[i], a)) return;
    if (out->n < PT_DNS_MAX_ADDRS) out->addrs[out->n++] = *a;
}

/*
 * One step of the CNAME chain: collects the qtype records owned by
 * name[0..*nlen) into out, or else follows its CNAME (rewriting name).
 * Returns 1 when addresses were found, 0 when a CNAME was followed,
 * PT_DNS_NODATA when the chain ends here, PT_DNS_MALFORMED on two CNAMEs.
 */
static int chain_step(const msg_t *m, size_t an_off, unsigned ancount, uint16_t qtype,
                      uint8_t *name, size_t *nlen, uint32_t *ttl, pt_dns_answer_t *out)
{
    size_t off = an_off;
    bool found = false, have_cname = false;
    size_t cname_off = 0;
    uint32_t cname_ttl = 0;
    rr_t rr;
    for (unsigned i = 0; i < ancount; i++) {
        if (read_rr(m, &off, &rr) < 0) return PT_DNS_MALFORMED;
        if (rr.klass != PT_DNS_CLASS_IN || !name_eq(rr.owner, rr.owner_len, name, *nlen))
            continue;
        if (rr.type == qtype) {
            pt_addr_t a;
            addr_from_rdata(m->p + rr.rdoff, qtype, &a);
            answer_add(out, &a);
            *ttl = pt_min(*ttl, rr.ttl);
            found = true;
        } else if (rr.type == PT_DNS_TYPE_CNAME) {
            if (have_cname) return PT_DNS_MALFORMED; /* RFC 2181 section 10.1 */
            have_cname = true;
            cname_off = rr.rdoff;
            cname_ttl = rr.ttl;
        }
    }
    if (found) return 1;
    if (!have_cname) return PT_DNS_NODATA;
    int tl = read_name(m, &cname_off, name);
    if (tl < 0) return PT_DNS_MALFORMED;
    *nlen = (size_t)tl;
    *ttl = pt_min(*ttl, cname_ttl);
    return 0;
}

/* Checks the header and the question against ours; on success *off is past
 * the question. Returns 0, PT_DNS_MISMATCH or PT_DNS_MALFORMED. */
static int check_question(const msg_t *m, uint16_t id, const uint8_t *qname, size_t qlen,
                          uint16_t qtype, size_t *off)
{
    if (m->len < 2 || get16(m->p) != id) return PT_DNS_MISMATCH;
    if (m->len < HDR_LEN) return PT_DNS_MALFORMED;
    uint16_t flags = get16(m->p + 2);
    if (!(flags & FLAG_QR) || (flags & FLAG_OPCODE)) return PT_DNS_MISMATCH;
    if (get16(m->p + 4) != 1) return PT_DNS_MALFORMED;
    uint8_t name[PT_DNS_MAX_NAME];
    *off = HDR_LEN;
    int nl = read_name(m, off, name);
    if (nl < 0) return PT_DNS_MALFORMED;
    if (*off + 4 > m->len) return PT_DNS_MALFORMED;
    if (!name_eq(name, (size_t)nl, qname, qlen) || get16(m->p + *off) != qtype ||
        get16(m->p + *off + 2) != PT_DNS_CLASS_IN)
        return PT_DNS_MISMATCH;
    *off += 4;
    return 0;
}

/* Walks every record after the question; the last must end the message. */
static int check_records(const msg_t *m, size_t off)
{
    unsigned total = (unsigned)get16(m->p + 6) + get16(m->p + 8) + get16(m->p + 10);
    rr_t rr;
    for (unsigned i = 0; i < total; i++)
        if (read_rr(m, &off, &rr) < 0) return PT_DNS_MALFORMED;
    return off == m->len ? 0 : PT_DNS_MALFORMED;
}

int pt_dns_parse_response(const uint8_t *p, size_t len, uint16_t id, const char *qname,
                          uint16_t qtype, pt_dns_answer_t *out)
{
    memset(out, 0, offsetof(pt_dns_answer_t, addrs));
    out->ttl = 0;
    out->ncname = 0;
    uint8_t name[PT_DNS_MAX_NAME];
    int nl = pt_dns_name_encode(qname, name, sizeof(name));
    if (nl < 0) return -EINVAL;
    if (qtype != PT_DNS_TYPE_A && qtype != PT_DNS_TYPE_AAAA) return -EINVAL;
    msg_t m = {p, len};
    size_t off;
    int rc = check_question(&m, id, name, (size_t)nl, qtype, &off);
    if (rc < 0) return rc;
    uint16_t flags = get16(p + 2);
    out->rcode = flags & RCODE_MASK;
    /* A truncated message may stop anywhere after the question. */
    if (flags & FLAG_TC) return PT_DNS_TRUNCATED;
    if (check_records(&m, off) < 0) return PT_DNS_MALFORMED;
    if (out->rcode == RCODE_NXDOMAIN) return PT_DNS_NXDOMAIN;
    if (out->rcode != 0) return PT_DNS_SERVFAIL;

    size_t nlen = (size_t)nl;
    uint32_t ttl = UINT32_MAX;
    unsigned ancount = get16(p + 6);
    for (size_t step = 0; step <= PT_DNS_MAX_CNAMES; step++) {
        rc = chain_step(&m, off, ancount, qtype, name, &nlen, &ttl, out);
        if (rc == 1) {
            out->ttl = ttl;
            return PT_DNS_OK;
        }
        if (rc < 0) {
            out->n = 0;
            return rc;
        }
        out->ncname++;
    }
    out->n = 0;
    return PT_DNS_MALFORMED; /* too long a chain, or a loop */
}
