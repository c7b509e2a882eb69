/*
 * PROXY protocol, versions 1 (text) and 2 (binary), as specified by
 * HAProxy's doc/proxy-protocol.txt.
 *
 * The parser is incremental in the cheap way: it is handed everything
 * received so far and either finds a complete header, asks for more
 * (PT_AGAIN) or rejects. It rejects as soon as the bytes seen cannot be
 * the start of any valid header, so a client that is not speaking the
 * protocol is turned away at once instead of waiting for a timeout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "proxy/proxy.h"

/* Longest v1 line, CRLF included (the spec's worst case). */
#define V1_MAX 107
/* Longest address texts we accept: "255.255.255.255" and the IPv6 form with
 * an embedded IPv4 tail, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255". */
#define V1_ADDR4_MAX 15
#define V1_ADDR6_MAX 45
#define V1_PORT_MAX 5

#define V2_SIG_LEN 12
#define V2_HDR_LEN 16
/* Longest v2 address+TLV block we accept (the length field). */
#define V2_MAX_BODY 512

#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1

/* Family (high nibble) and transport (low nibble) byte values. */
#define V2_UNSPEC 0x00
#define V2_TCP4 0x11
#define V2_UDP4 0x12
#define V2_TCP6 0x21
#define V2_UDP6 0x22
#define V2_UNIX_STREAM 0x31
#define V2_UNIX_DGRAM 0x32

#define V2_ADDR4_LEN 12  /* 2 x 4 address bytes + 2 x 2 port bytes */
#define V2_ADDR6_LEN 36  /* 2 x 16 + 2 x 2 */
#define V2_ADDRUN_LEN 216 /* 2 x 108 path bytes */

static const char v2_sig[V2_SIG_LEN] = "\r\n\r\n\0\r\nQUIT\n";

/* ------------------------------------------------------------------ */
/* Addresses                                                           */
/* ------------------------------------------------------------------ */

static void addr_clear(pt_addr_t *a)
{
    memset(a, 0, sizeof(*a));
}

static void addr_set4(pt_addr_t *a, const void *ip, uint16_t port_be)
{
    addr_clear(a);
    struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
    sin->sin_family = AF_INET;
    memcpy(&sin->sin_addr, ip, 4);
    sin->sin_port = port_be;
    a->len = sizeof(*sin);
}

static void addr_set6(pt_addr_t *a, const void *ip, uint16_t port_be)
{
    addr_clear(a);
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
    sin6->sin6_family = AF_INET6;
    memcpy(&sin6->sin6_addr, ip, 16);
    sin6->sin6_port = port_be;
    a->len = sizeof(*sin6);
}

/* ------------------------------------------------------------------ */
/* Version 1                                                           */
/* ------------------------------------------------------------------ */

/* A read position in the bytes received so far. */
typedef struct cursor {
    const char *p;
    size_t pos, len;
} cursor_t;

/*
 * Consumes the literal lit. PT_AGAIN when the input ends inside it (but
 * matches so far), -EINVAL when a byte differs.
 */
static int expect_lit(cursor_t *c, const char *lit)
{
    size_t n = strlen(lit);
    size_t avail = c->len - c->pos;
    size_t cmp = pt_min(n, avail);
    if (memcmp(c->p + c->pos, lit, cmp) != 0) return -EINVAL;
    if (cmp < n) return PT_AGAIN;
    c->pos += n;
    return 0;
}

typedef enum { V1_TCP4, V1_TCP6, V1_UNKNOWN } v1_proto_t;

/* "TCP4 ", "TCP6 " or "UNKNOWN" (none is a prefix of another). */
static int v1_proto(cursor_t *c, v1_proto_t *out)
{
    static const char *const names[] = {"TCP4 ", "TCP6 ", "UNKNOWN"};
    bool partial = false;
    for (size_t i = 0; i < pt_countof(names); i++) {
        cursor_t t = *c;
        int rc = expect_lit(&t, names[i]);
        if (rc == 0) {
            *c = t;
            *out = (v1_proto_t)i;
            return 0;
        }
        if (rc == PT_AGAIN) partial = true;
    }
    return partial ? PT_AGAIN : -EINVAL;
}

/*
 * The rest of an UNKNOWN line: nothing, or a space and anything up to the
 * CRLF (the spec says to ignore it). A lone CR or LF is still an error.
 */
static int v1_unknown_tail(cursor_t *c)
{
    if (c->pos == c->len) return PT_AGAIN;
    if (c->p[c->pos] != ' ' && c->p[c->pos] != '\r') return -EINVAL;
    for (; c->pos < c->len; c->pos++) {
        char ch = c->p[c->pos];
        if (ch == '\n') return -EINVAL;
        if (ch == '\r') return expect_lit(c, "\r\n");
    }
    return PT_AGAIN;
}

static bool addr_char(v1_proto_t proto, char ch)
{
    if (ch >= '0' && ch <= '9') return true;
    if (ch == '.') return true;
    if (proto == V1_TCP4) return false;
    return ch == ':' || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/*
 * An address followed by a space; fills ip (struct in_addr or in6_addr).
 * Characters and length are checked as they arrive so that garbage is
 * rejected before the space; inet_pton has the last word.
 */
static int v1_addr(cursor_t *c, v1_proto_t proto, void *ip)
{
    size_t max = proto == V1_TCP4 ? V1_ADDR4_MAX : V1_ADDR6_MAX;
    char text[V1_ADDR6_MAX + 1];
    size_t n = 0;
    for (;;) {
        if (c->pos == c->len) return PT_AGAIN;
        char ch = c->p[c->pos];
        if (ch == ' ') break;
        if (!addr_char(proto, ch) || n == max) return -EINVAL;
        text[n++] = ch;
        c->pos++;
    }
    text[n] = '\0';
    int family = proto == V1_TCP4 ? AF_INET : AF_INET6;
    if (n == 0 || inet_pton(family, text, ip) != 1) return -EINVAL;
    c->pos++; /* the space */
    return 0;
}

/*
 * A decimal port 0..65535 followed by term (" " or "\r\n"). Leading zeros
 * are tolerated (some senders pad), at most 5 digits.
 */
static int v1_port(cursor_t *c, const char *term, uint16_t *port_be)
{
    unsigned v = 0;
    size_t n = 0;
    for (;;) {
        if (c->pos == c->len) return PT_AGAIN;
        char ch = c->p[c->pos];
        if (ch < '0' || ch > '9') break;
        v = v * 10 + (unsigned)(ch - '0');
        if (++n > V1_PORT_MAX || v > 65535) return -EINVAL;
        c->pos++;
    }
    if (n == 0) return -EINVAL;
    int rc = expect_lit(c, term);
    if (rc < 0) return rc;
    *port_be = htons((uint16_t)v);
    return 0;
}

/* "<src> <dst> <sport> <dport>\r\n" after "PROXY TCPx ". */
static int v1_tcp(cursor_t *c, v1_proto_t proto, pt_addr_t *src, pt_addr_t *dst)
{
    unsigned char sip[16], dip[16];
    uint16_t sport, dport;
    int rc;
    if ((rc = v1_addr(c, proto, sip)) < 0) return rc;
    if ((rc = v1_addr(c, proto, dip)) < 0) return rc;
    if ((rc = v1_port(c, " ", &sport)) < 0) return rc;
    if ((rc = v1_port(c, "\r\n", &dport)) < 0) return rc;
    if (proto == V1_TCP4) {
        addr_set4(src, sip, sport);
        addr_set4(dst, dip, dport);
    } else {
        addr_set6(src, sip, sport);
        addr_set6(dst, dip, dport);
    }
    return 0;
}

/* Parses a v1 line within buf[0..len), len <= V1_MAX. */
static int v1_parse_line(const char *buf, size_t len, pt_addr_t *src, pt_addr_t *dst)
{
    cursor_t c = {.p = buf, .pos = 0, .len = len};
    v1_proto_t proto;
    int rc;
    if ((rc = expect_lit(&c, "PROXY ")) < 0) return rc;
    if ((rc = v1_proto(&c, &proto)) < 0) return rc;
    if (proto == V1_UNKNOWN) {
        if ((rc = v1_unknown_tail(&c)) < 0) return rc;
        addr_clear(src);
        addr_clear(dst);
    } else if ((rc = v1_tcp(&c, proto, src, dst)) < 0) {
        return rc;
    }
    return (int)c.pos;
}

static int v1_parse(const char *buf, size_t len, pt_addr_t *src, pt_addr_t *dst)
{
    /* Looking at no more than V1_MAX bytes caps the line length: a line
     * still incomplete there would be too long once complete. */
    int rc = v1_parse_line(buf, pt_min(len, (size_t)V1_MAX), src, dst);
    if (rc == PT_AGAIN && len >= V1_MAX) return -EINVAL;
    return rc;
}

/* ------------------------------------------------------------------ */
/* Version 2                                                           */
/* ------------------------------------------------------------------ */

static bool v2_fam_valid(uint8_t fam)
{
    switch (fam) {
    case V2_UNSPEC:
    case V2_TCP4:
    case V2_UDP4:
    case V2_TCP6:
    case V2_UDP6:
    case V2_UNIX_STREAM:
    case V2_UNIX_DGRAM:
        return true;
    default:
        return false;
    }
}

/* Address block size the family needs (before any TLV). */
static size_t v2_addr_len(uint8_t fam)
{
    switch (fam >> 4) {
    case 0x1:
        return V2_ADDR4_LEN;
    case 0x2:
        return V2_ADDR6_LEN;
    case 0x3:
        return V2_ADDRUN_LEN;
    default:
        return 0;
    }
}

/* Checks the 16 fixed bytes as far as they arrived; PT_AGAIN if short. */
static int v2_check_fixed(const unsigned char *b, size_t len)
{
    if (memcmp(b, v2_sig, pt_min(len, (size_t)V2_SIG_LEN)) != 0) return -EINVAL;
    if (len <= V2_SIG_LEN) return PT_AGAIN;
    uint8_t ver = b[12] >> 4, cmd = b[12] & 0x0f;
    if (ver != 2 || (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY)) return -EINVAL;
    if (len <= 13) return PT_AGAIN;
    if (!v2_fam_valid(b[13])) return -EINVAL;
    if (len < V2_HDR_LEN) return PT_AGAIN;
    size_t body = ((size_t)b[14] << 8) | b[15];
    if (body > V2_MAX_BODY) return -EINVAL;
    /* LOCAL discards the whole block, family included (spec 2.2). */
    if (cmd == V2_CMD_PROXY && body < v2_addr_len(b[13])) return -EINVAL;
    return 0;
}

static int v2_parse(const char *buf, size_t len, pt_addr_t *src, pt_addr_t *dst)
{
    const unsigned char *b = (const unsigned char *)buf;
    int rc = v2_check_fixed(b, len);
    if (rc < 0) return rc;
    size_t total = V2_HDR_LEN + (((size_t)b[14] << 8) | b[15]);
    if (len < total) return PT_AGAIN;

    uint16_t sport, dport;
    bool proxy = (b[12] & 0x0f) == V2_CMD_PROXY;
    if (proxy && b[13] == V2_TCP4) {
        memcpy(&sport, b + 24, 2); /* already network order */
        memcpy(&dport, b + 26, 2);
        addr_set4(src, b + 16, sport);
        addr_set4(dst, b + 20, dport);
    } else if (proxy && b[13] == V2_TCP6) {
        memcpy(&sport, b + 48, 2);
        memcpy(&dport, b + 50, 2);
        addr_set6(src, b + 16, sport);
        addr_set6(dst, b + 32, dport);
    } else {
        /* LOCAL, UNSPEC, datagrams, unix sockets: use the socket's own. */
        addr_clear(src);
        addr_clear(dst);
    }
    return (int)total;
}

/* ------------------------------------------------------------------ */
/* Public API                                                          */
/* ------------------------------------------------------------------ */

/*
 * Parses a v1 or v2 header at the start of buf[0..len). Returns the header
 * length and fills src/dst (zeroed, len 0, for UNKNOWN, LOCAL and non-TCP
 * families); PT_AGAIN when buf is a valid but incomplete prefix; -EINVAL
 * as soon as buf cannot start a valid header. src/dst are only written on
 * success. Pure function, any thread.
 */
int pt_pp_parse(const char *buf, size_t len, pt_addr_t *src, pt_addr_t *dst)
{
    if (len == 0) return PT_AGAIN;
    /* Write into locals so a failed parse leaves the caller's untouched. */
    pt_addr_t s, d;
    int rc;
    if (buf[0] == 'P')
        rc = v1_parse(buf, len, &s, &d);
    else if (buf[0] == '\r')
        rc = v2_parse(buf, len, &s, &d);
    else
        return -EINVAL;
    if (rc > 0) {
        *src = s;
        *dst = d;
    }
    return rc;
}

/* AF_INET or AF_INET6 when both are of that family, else AF_UNSPEC. */
static int common_family(const pt_addr_t *a, const pt_addr_t *b)
{
    int fa = a->ss.ss_family, fb = b->ss.ss_family;
    if (fa != fb || (fa != AF_INET && fa != AF_INET6)) return AF_UNSPEC;
    return fa;
}

static const void *ip_bytes(const pt_addr_t *a)
{
    if (a->ss.ss_family == AF_INET) return &((const struct sockaddr_in *)&a->ss)->sin_addr;
    return &((const struct sockaddr_in6 *)&a->ss)->sin6_addr;
}

/* Port in network order (AF_INET or AF_INET6 only). */
static uint16_t port_be(const pt_addr_t *a)
{
    if (a->ss.ss_family == AF_INET) return ((const struct sockaddr_in *)&a->ss)->sin_port;
    return ((const struct sockaddr_in6 *)&a->ss)->sin6_port;
}

/* Formats the TCP4/TCP6 line into line[size]. Length or -EINVAL. */
static int v1_format(char *line, size_t size, int family, const pt_addr_t *src,
                     const pt_addr_t *dst)
{
    char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
    if (inet_ntop(family, ip_bytes(src), s, sizeof(s)) == NULL) return -EINVAL;
    if (inet_ntop(family, ip_bytes(dst), d, sizeof(d)) == NULL) return -EINVAL;
    int n = snprintf(line, size, "PROXY %s %s %s %u %u\r\n", family == AF_INET ? "TCP4" : "TCP6",
                     s, d, (unsigned)ntohs(port_be(src)), (unsigned)ntohs(port_be(dst)));
    if (n < 0 || (size_t)n >= size) return -EINVAL;
    return n;
}

/*
 * Writes "PROXY TCP4|TCP6 src dst sport dport\r\n" into out, or
 * "PROXY UNKNOWN\r\n" when the families differ or are not IP. Needs
 * size >= the line length; adds a NUL after it when there is room.
 * Returns the length (without NUL) or -ENOSPC.
 */
int pt_pp_build_v1(char *out, size_t size, const pt_addr_t *src, const pt_addr_t *dst)
{
    char line[V1_MAX + 1];
    int family = common_family(src, dst);
    int n;
    if (family == AF_UNSPEC) {
        n = snprintf(line, sizeof(line), "PROXY UNKNOWN\r\n");
    } else {
        n = v1_format(line, sizeof(line), family, src, dst);
        if (n < 0) return n;
    }
    if ((size_t)n > size) return -ENOSPC;
    memcpy(out, line, (size_t)n);
    if ((size_t)n < size) out[n] = '\0';
    return n;
}

static bool is_ip(const pt_addr_t *a)
{
    return a->ss.ss_family == AF_INET || a->ss.ss_family == AF_INET6;
}

/* The address as 16 IPv6 bytes (IPv4 becomes ::ffff:a.b.c.d). */
static void ip_as_v6(const pt_addr_t *a, unsigned char out[16])
{
    if (a->ss.ss_family == AF_INET6) {
        memcpy(out, ip_bytes(a), 16);
        return;
    }
    memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    memcpy(out + 12, ip_bytes(a), 4);
}

/*
 * Writes a v2 header, command PROXY, without TLVs: TCP over IPv4 when both
 * addresses are IPv4, TCP over IPv6 when both are IP and one is IPv6 (an
 * IPv4 one is mapped, ::ffff:a.b.c.d, as HAProxy does), and the UNSPEC
 * family with no address block otherwise (the receiver then uses the
 * socket's addresses). Returns the length (16, 28 or 52) or -ENOSPC.
 */
int pt_pp_build_v2(char *out, size_t size, const pt_addr_t *src, const pt_addr_t *dst)
{
    unsigned char h[V2_HDR_LEN + V2_ADDR6_LEN];
    size_t body;
    memcpy(h, v2_sig, V2_SIG_LEN);
    h[12] = 0x20 | V2_CMD_PROXY;
    if (common_family(src, dst) == AF_INET) {
        h[13] = V2_TCP4;
        body = V2_ADDR4_LEN;
        memcpy(h + 16, ip_bytes(src), 4);
        memcpy(h + 20, ip_bytes(dst), 4);
    } else if (is_ip(src) && is_ip(dst)) {
        h[13] = V2_TCP6;
        body = V2_ADDR6_LEN;
        ip_as_v6(src, h + 16);
        ip_as_v6(dst, h + 32);
    } else {
        h[13] = V2_UNSPEC;
        body = 0;
    }
    if (body > 0) {
        uint16_t sp = port_be(src), dp = port_be(dst);
        memcpy(h + V2_HDR_LEN + body - 4, &sp, 2);
        memcpy(h + V2_HDR_LEN + body - 2, &dp, 2);
    }
    h[14] = (unsigned char)(body >> 8);
    h[15] = (unsigned char)(body & 0xff);

    size_t total = V2_HDR_LEN + body;
    if (total > size) return -ENOSPC;
    memcpy(out, h, total);
    return (int)total;
}
