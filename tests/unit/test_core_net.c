/* Unit tests for src/core/net.c: address parsing/formatting, sockets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

/* Parses s, formats it back, and compares with want. */
static void check(const char *s, uint16_t def, const char *want, int family)
{
    pt_addr_t a;
    char buf[80];
    int rc = pt_addr_parse(s, strlen(s), def, &a);
    assert_int_equal(rc, 0);
    assert_int_equal(a.ss.ss_family, family);
    assert_int_equal(a.len, family == AF_INET ? sizeof(struct sockaddr_in)
                                              : sizeof(struct sockaddr_in6));
    int n = pt_addr_format(&a, buf, sizeof(buf));
    assert_int_equal(n, (int)strlen(want));
    assert_string_equal(buf, want);
}

static void test_parse_forms(void **state)
{
    pt_unused(state);
    check("1.2.3.4:80", 0, "1.2.3.4:80", AF_INET);
    check("127.0.0.1:65535", 0, "127.0.0.1:65535", AF_INET);
    check("[::1]:80", 0, "[::1]:80", AF_INET6);
    check("[::]:8443", 0, "[::]:8443", AF_INET6);
    check("[2001:db8::1]:1", 0, "[2001:db8::1]:1", AF_INET6);
    check("*:80", 0, "0.0.0.0:80", AF_INET);
    check("80", 0, "0.0.0.0:80", AF_INET);
    check("08080", 0, "0.0.0.0:8080", AF_INET);
    check("1.2.3.4", 443, "1.2.3.4:443", AF_INET);
    check("[::1]", 9901, "[::1]:9901", AF_INET6);
    check("*", 8080, "0.0.0.0:8080", AF_INET);
    /* An explicit port beats the default. */
    check("10.0.0.1:81", 443, "10.0.0.1:81", AF_INET);
    /* The length bounds the text: trailing bytes are not read. */
    pt_addr_t a;
    assert_int_equal(pt_addr_parse("1.2.3.4:80xyz", 10, 0, &a), 0);
    assert_int_equal(pt_addr_port(&a), 80);
}

static void test_parse_invalid(void **state)
{
    pt_unused(state);
    static const char *const bad[] = {
        "1.2.3.4:0", ":80", "[::1", "1.2.3.4:99999", "abc:80", "", "1.2.3.4:", "1.2.3.4:-1",
        "1.2.3.4:+80", "1.2.3.4: 80", "1.2.3:80", "1.2.3.4.5:80", "256.1.1.1:80", "::1",
        "::1:80", "[::1]80", "[::1]:", "[1.2.3.4]:80", "[]:80", "[::1]:0", "[::1]:65536",
        "localhost:80", "0", "65536", "1.2.3.4:80:81", "*:", "**:80", " 1.2.3.4:80",
        "1.2.3.4:800000", "[fe80::1%eth0]:80", "1.2.3.4 :80",
    };
    for (size_t i = 0; i < pt_countof(bad); i++) {
        pt_addr_t a;
        int rc = pt_addr_parse(bad[i], strlen(bad[i]), 0, &a);
        if (rc != -EINVAL) print_error("accepted \"%s\"\n", bad[i]);
        assert_int_equal(rc, -EINVAL);
    }
    /* No port and no default. */
    pt_addr_t a;
    assert_int_equal(pt_addr_parse("1.2.3.4", 7, 0, &a), -EINVAL);
    assert_int_equal(pt_addr_parse("[::1]", 5, 0, &a), -EINVAL);
    /* Embedded NUL and over-long text. */
    assert_int_equal(pt_addr_parse("1.2.3.4\0:80", 11, 0, &a), -EINVAL);
    char longer[200];
    memset(longer, '1', sizeof(longer));
    assert_int_equal(pt_addr_parse(longer, sizeof(longer), 0, &a), -EINVAL);
}

static void test_format(void **state)
{
    pt_unused(state);
    pt_addr_t a, b;
    char buf[64];
    assert_int_equal(pt_addr_parse("[2001:db8::7]:443", 17, 0, &a), 0);
    assert_int_equal(pt_addr_format_ip(&a, buf, sizeof(buf)), 11);
    assert_string_equal(buf, "2001:db8::7");
    assert_int_equal(pt_addr_port(&a), 443);
    /* Too small: -ENOSPC for exact-fit-without-NUL too. */
    assert_int_equal(pt_addr_format(&a, buf, 17), -ENOSPC);
    assert_int_equal(pt_addr_format(&a, buf, 18), 17);
    assert_string_equal(buf, "[2001:db8::7]:443");
    assert_int_equal(pt_addr_format_ip(&a, buf, 11), -ENOSPC);

    /* Round trip: format, parse again, equal. */
    assert_int_equal(pt_addr_parse("192.168.1.20:8080", 17, 0, &a), 0);
    int n = pt_addr_format(&a, buf, sizeof(buf));
    assert_int_equal(pt_addr_parse(buf, (size_t)n, 0, &b), 0);
    assert_true(pt_addr_equal(&a, &b));
    assert_int_equal(pt_addr_parse("192.168.1.20:8081", 17, 0, &b), 0);
    assert_false(pt_addr_equal(&a, &b));
    assert_int_equal(pt_addr_parse("[::ffff:192.168.1.20]:8080", 26, 0, &b), 0);
    assert_false(pt_addr_equal(&a, &b));
    n = pt_addr_format(&b, buf, sizeof(buf));
    assert_int_equal(n, 26);
    assert_string_equal(buf, "[::ffff:192.168.1.20]:8080");
}

static void test_listen_connect(void **state)
{
    pt_unused(state);
    pt_addr_t a;
    assert_int_equal(pt_addr_parse("127.0.0.1", 9, 1, &a), 0);
    /* Port 0 cannot be parsed; ask the kernel for one through the struct. */
    ((struct sockaddr_in *)&a.ss)->sin_port = 0;
    int lfd = pt_socket_listen(&a, 16, true);
    assert_true(lfd >= 0);
    assert_true(fcntl(lfd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
    int one = 0;
    socklen_t ol = sizeof(one);
    assert_int_equal(getsockopt(lfd, SOL_SOCKET, SO_REUSEPORT, &one, &ol), 0);
    assert_int_equal(one, 1);

    pt_addr_t bound = {.len = sizeof(bound.ss)};
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&bound.ss, &bound.len), 0);
    assert_true(pt_addr_port(&bound) > 0);

    int cfd = pt_socket_connect(&bound);
    assert_true(cfd >= 0);
    assert_true(fcntl(cfd, F_GETFL) & O_NONBLOCK);
    int nd = 0;
    ol = sizeof(nd);
    assert_int_equal(getsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &nd, &ol), 0);
    assert_true(nd != 0);

    struct pollfd p = {.fd = cfd, .events = POLLOUT};
    assert_int_equal(poll(&p, 1, 2000), 1);
    int err = -1;
    ol = sizeof(err);
    assert_int_equal(getsockopt(cfd, SOL_SOCKET, SO_ERROR, &err, &ol), 0);
    assert_int_equal(err, 0);

    struct pollfd lp = {.fd = lfd, .events = POLLIN};
    assert_int_equal(poll(&lp, 1, 2000), 1);
    int sfd = accept(lfd, NULL, NULL);
    assert_true(sfd >= 0);
    assert_int_equal(write(cfd, "ping", 4), 4);
    char buf[8];
    p = (struct pollfd){.fd = sfd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 2000), 1);
    assert_int_equal(read(sfd, buf, sizeof(buf)), 4);
    assert_memory_equal(buf, "ping", 4);
    close(sfd);
    close(cfd);

    /* The same address again without reuseport: in use. */
    int again = pt_socket_listen(&bound, 16, false);
    assert_int_equal(again, -EADDRINUSE);
    close(lfd);
}

static void test_listen_v6only(void **state)
{
    pt_unused(state);
    pt_addr_t a;
    assert_int_equal(pt_addr_parse("[::1]:1", 7, 0, &a), 0);
    ((struct sockaddr_in6 *)&a.ss)->sin6_port = 0;
    int fd = pt_socket_listen(&a, 0, false);
    if (fd == -EADDRNOTAVAIL || fd == -EAFNOSUPPORT) skip(); /* no IPv6 loopback */
    assert_true(fd >= 0);
    int v = 0;
    socklen_t ol = sizeof(v);
    assert_int_equal(getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, &ol), 0);
    assert_int_equal(v, 1);
    close(fd);
}

static void test_connect_refused(void **state)
{
    pt_unused(state);
    /* Find a free port, close it, connect: refused (immediately or on poll). */
    pt_addr_t a;
    assert_int_equal(pt_addr_parse("127.0.0.1:1", 11, 0, &a), 0);
    ((struct sockaddr_in *)&a.ss)->sin_port = 0;
    int lfd = pt_socket_listen(&a, 1, false);
    assert_true(lfd >= 0);
    pt_addr_t bound = {.len = sizeof(bound.ss)};
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&bound.ss, &bound.len), 0);
    close(lfd);
    int fd = pt_socket_connect(&bound);
    if (fd < 0) {
        assert_int_equal(fd, -ECONNREFUSED);
        return;
    }
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    assert_int_equal(poll(&p, 1, 2000), 1);
    int err = 0;
    socklen_t ol = sizeof(err);
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &ol), 0);
    assert_int_equal(err, ECONNREFUSED);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_forms),    cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_format),         cmocka_unit_test(test_listen_connect),
        cmocka_unit_test(test_listen_v6only),  cmocka_unit_test(test_connect_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
