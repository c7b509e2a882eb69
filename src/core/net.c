/*
 * Numeric socket addresses and TCP socket set-up. No name resolution here:
 * listen and connect addresses are numeric so start-up never blocks on DNS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

/* Longest accepted text: "[" + 45-char IPv6 text + "]:" + 5 digits. */
#define ADDR_TEXT_MAX 64

/* Port text: 1..5 digits, value 1..65535. */
static int parse_port(const char *s, size_t len, uint16_t *out)
{
    if (len == 0 || len > 5) return -EINVAL;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -EINVAL;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535) return -EINVAL;
    *out = (uint16_t)v;
    return 0;
}

static void set_v4(pt_addr_t *out, const struct in_addr *ip, uint16_t port)
{
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr = *ip;
    out->len = sizeof(*sin);
}

static void set_v6(pt_addr_t *out, const struct in6_addr *ip, uint16_t port)
{
    memset(out, 0, sizeof(*out));
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    sin6->sin6_addr = *ip;
    out->len = sizeof(*sin6);
}

/* "[v6]" or "[v6]:port" (s starts with '['). */
static int parse_bracketed(const char *s, size_t len, uint16_t port, pt_addr_t *out)
{
    const char *close = memchr(s, ']', len);
    if (close == NULL) return -EINVAL;
    size_t hlen = (size_t)(close - s - 1);
    char host[ADDR_TEXT_MAX];
    memcpy(host, s + 1, hlen);
    host[hlen] = '\0';

    size_t rest = len - (size_t)(close - s) - 1;
    if (rest > 0) {
        if (close[1] != ':' || parse_port(close + 2, rest - 1, &port) < 0) return -EINVAL;
    }
    struct in6_addr ip6;
    if (port == 0 || inet_pton(AF_INET6, host, &ip6) != 1) return -EINVAL;
    set_v6(out, &ip6, port);
    return 0;
}

/* "v4", "v4:port", "*", "*:port" or "port". */
static int parse_plain(const char *s, size_t len, uint16_t port, pt_addr_t *out)
{
    const char *colon = memchr(s, ':', len);
    size_t hlen = colon ? (size_t)(colon - s) : len;
    if (colon != NULL) {
        if (parse_port(colon + 1, len - hlen - 1, &port) < 0) return -EINVAL;
    } else if (parse_port(s, len, &port) == 0) {
        /* Port only: any IPv4 address. */
        struct in_addr any = {.s_addr = htonl(INADDR_ANY)};
        set_v4(out, &any, port);
        return 0;
    }
    if (hlen == 0 || port == 0) return -EINVAL;

    struct in_addr ip;
    if (hlen == 1 && s[0] == '*') {
        ip.s_addr = htonl(INADDR_ANY);
    } else {
        char host[ADDR_TEXT_MAX];
        memcpy(host, s, hlen);
        host[hlen] = '\0';
        if (inet_pton(AF_INET, host, &ip) != 1) return -EINVAL;
    }
    set_v4(out, &ip, port);
    return 0;
}

/*
 * Parses "1.2.3.4:80", "[::1]:80", "*:80", "[::]:80", "80", "1.2.3.4",
 * "[::1]" (the last two take default_port; 0 means a port is required).
 * Bare IPv6 without brackets, host names, scope ids: -EINVAL.
 */
int pt_addr_parse(const char *s, size_t len, uint16_t default_port, pt_addr_t *out)
{
    if (s == NULL || len == 0 || len >= ADDR_TEXT_MAX || memchr(s, '\0', len) != NULL)
        return -EINVAL;
    if (s[0] == '[') return parse_bracketed(s, len, default_port, out);
    return parse_plain(s, len, default_port, out);
}

/* Address only into buf ("1.2.3.4", "::1"). Length, -ENOSPC, -EAFNOSUPPORT. */
/* Dotted quad without inet_ntop (which goes through sprintf): this runs
 * for every proxied request. Returns the length, tmp >= 16 bytes. */
static size_t format_ipv4(const struct in_addr *in, char *tmp)
{
    const uint8_t *b = (const uint8_t *)&in->s_addr;
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        n += pt_fmt_u64(tmp + n, b[i]);
        tmp[n++] = '.';
    }
    tmp[--n] = '\0';
    return n;
}

int pt_addr_format_ip(const pt_addr_t *a, char *buf, size_t size)
{
    char tmp[INET6_ADDRSTRLEN];
    if (a->ss.ss_family == AF_INET) {
        size_t n = format_ipv4(&a->ss.in4.sin_addr, tmp);
        if (n >= size) return -ENOSPC;
        memcpy(buf, tmp, n + 1);
        return (int)n;
    }
    const void *src;
    int family = a->ss.ss_family;
    if (family == AF_INET)
        src = &((const struct sockaddr_in *)&a->ss)->sin_addr;
    else if (family == AF_INET6)
        src = &((const struct sockaddr_in6 *)&a->ss)->sin6_addr;
    else
        return -EAFNOSUPPORT;
    if (inet_ntop(family, src, tmp, sizeof(tmp)) == NULL) return -errno;
    size_t n = strlen(tmp);
    if (n >= size) return -ENOSPC;
    memcpy(buf, tmp, n + 1);
    return (int)n;
}

/* "1.2.3.4:80" or "[::1]:80" into buf. Length, -ENOSPC, -EAFNOSUPPORT. */
int pt_addr_format(const pt_addr_t *a, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN];
    int rc = pt_addr_format_ip(a, ip, sizeof(ip));
    if (rc < 0) return rc;
    bool v6 = a->ss.ss_family == AF_INET6;
    int n = snprintf(buf, size, v6 ? "[%s]:%u" : "%s:%u", ip, (unsigned)pt_addr_port(a));
    if (n < 0) return -EINVAL;
    if ((size_t)n >= size) return -ENOSPC;
    return n;
}

/* Port in host order; 0 for non-IP families. */
uint16_t pt_addr_port(const pt_addr_t *a)
{
    if (a->ss.ss_family == AF_INET) return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
    if (a->ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
    return 0;
}

/* Same family, address, port (and IPv6 scope). */
bool pt_addr_equal(const pt_addr_t *a, const pt_addr_t *b)
{
    if (a->ss.ss_family != b->ss.ss_family) return false;
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)&a->ss, *y = (const void *)&b->ss;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)&a->ss, *y = (const void *)&b->ss;
        return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

static int set_int_opt(int fd, int level, int name, int val)
{
    return setsockopt(fd, level, name, &val, sizeof(val)) < 0 ? -errno : 0;
}

static int listen_opts(int fd, const pt_addr_t *a, bool reuseport)
{
    int rc = set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (rc == 0 && reuseport) rc = set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    /* v6 sockets see only v6: "[::]:80" and "*:80" can then coexist. */
    if (rc == 0 && a->ss.ss_family == AF_INET6) rc = set_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    return rc;
}

/*
 * Non-blocking, close-on-exec listening TCP socket bound to a.
 * backlog <= 0 means 511. Returns the fd or -errno.
 */
int pt_socket_listen(const pt_addr_t *a, int backlog, bool reuseport)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int rc = listen_opts(fd, a, reuseport);
    if (rc == 0 && bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0) rc = -errno;
    if (rc == 0 && listen(fd, backlog > 0 ? backlog : 511) < 0) rc = -errno;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

/*
 * Non-blocking connect with TCP_NODELAY. Returns the fd (connected or in
 * progress: wait for writability, then check SO_ERROR) or -errno.
 */
int pt_socket_connect(const pt_addr_t *a)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int rc = set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    if (rc == 0 && connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0 &&
        errno != EINPROGRESS)
        rc = -errno;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}
