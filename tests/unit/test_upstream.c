/*
 * Unit tests: upstream configuration (src/upstream/upstream.c) and the
 * location, main and template settings that upstreams use
 * (proxy_next_upstream*, proxy_try_timeout, admin_token, $cookie_NAME in
 * src/proxy/conf.c and tpl.c). Server selection is tested in
 * test_upstream_lb.c, health checks in test_upstream_health.c.
 *
 * Configs are written to a mkdtemp directory and loaded with
 * pt_snapshot_load(). Error messages are compared exactly with their
 * "file:line:col:" prefix. Name resolution only uses "localhost" (from
 * /etc/hosts) and names under the reserved .invalid TLD.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "proxy/proxy_int.h"
#include "upstream/upstream_int.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

#define CONF_FIXTURE_TAG "upstream"
#include "conf_fixture.h"

/* A group with one server, then the directive under test on line 4, col 3. */
#define UPS1(directive) UPS("  server 127.0.0.1:1;\n  " directive "\n")

static ups_conf_t *ups_conf(pt_snapshot_t *s)
{
    ups_conf_t *uc = s->mod[PT_MOD_UPSTREAM];
    assert_non_null(uc);
    return uc;
}

static ups_group_t *group_at(pt_snapshot_t *s, size_t i)
{
    ups_conf_t *uc = ups_conf(s);
    assert_true(i < uc->groups.n);
    ups_group_t *g = *pt_array_at(&uc->groups, ups_group_t *, i);
    assert_int_equal(g->index, i);
    return g;
}

static pt_vhost_t *first_vhost(pt_snapshot_t *s)
{
    assert_true(s->listens.n > 0);
    const pt_listen_conf_t *lc = pt_array_at(&s->listens, pt_listen_conf_t, 0);
    assert_true(lc->vhosts.n > 0);
    return *pt_array_at(&lc->vhosts, pt_vhost_t *, 0);
}

static pt_location_t *loc_at(pt_vhost_t *vh, size_t i)
{
    assert_true(i < vh->locations.n);
    return *pt_array_at(&vh->locations, pt_location_t *, i);
}

/* Checks a is a loopback address (127.0.0.1 or ::1) with the given port. */
static void assert_loopback(const pt_addr_t *a, uint16_t port)
{
    assert_int_equal(pt_addr_port(a), port);
    char ip[64];
    assert_true(pt_addr_format_ip(a, ip, sizeof(ip)) > 0);
    if (a->ss.ss_family == AF_INET) {
        assert_string_equal(ip, "127.0.0.1");
        assert_int_equal(a->len, sizeof(struct sockaddr_in));
    } else {
        assert_int_equal(a->ss.ss_family, AF_INET6);
        assert_string_equal(ip, "::1");
        assert_int_equal(a->len, sizeof(struct sockaddr_in6));
    }
}

/* Checks a server line made of one literal address, formatted as want. */
static void assert_literal(const ups_server_t *sv, const char *spec, const char *want)
{
    assert_string_equal(sv->spec, spec);
    assert_null(sv->host);
    assert_int_equal(sv->naddrs, 1);
    assert_non_null(sv->addrs);
    char buf[64];
    assert_true(pt_addr_format(&sv->addrs[0], buf, sizeof(buf)) > 0);
    assert_string_equal(buf, want);
    assert_int_equal(sv->port, pt_addr_port(&sv->addrs[0]));
}

/* The only group of a config made with UPS()/UPS1(). */
static const ups_group_t *only_group(pt_snapshot_t *s)
{
    assert_int_equal(ups_conf(s)->groups.n, 1);
    return group_at(s, 0);
}

static void assert_str_or_null(const char *got, const char *want)
{
    if (want == NULL)
        assert_null(got);
    else
        assert_string_equal(got, want);
}

static void assert_keepalive(const ups_group_t *g, int n, uint64_t timeout_ms, uint64_t requests)
{
    assert_int_equal(g->keepalive, n);
    assert_int_equal(g->keepalive_timeout, timeout_ms);
    assert_int_equal(g->keepalive_requests, requests);
}

/* Health check settings of type t that nothing overrides. */
static ups_hc_conf_t hc_defaults(ups_hc_type_t t)
{
    return (ups_hc_conf_t){.type = t, .interval_ms = 5000, .timeout_ms = 2000, .rise = 2,
                           .fall = 3, .port = 0, .method = "GET", .uri = "/", .host = NULL,
                           .status_lo = 200, .status_hi = 399, .body = NULL};
}

/* Every health check setting, field by field. */
static void assert_hc(const ups_hc_conf_t *got, const ups_hc_conf_t want)
{
    assert_int_equal(got->type, want.type);
    assert_int_equal(got->interval_ms, want.interval_ms);
    assert_int_equal(got->timeout_ms, want.timeout_ms);
    assert_int_equal(got->rise, want.rise);
    assert_int_equal(got->fall, want.fall);
    assert_int_equal(got->port, want.port);
    assert_str_or_null(got->method, want.method);
    assert_str_or_null(got->uri, want.uri);
    assert_str_or_null(got->host, want.host);
    assert_int_equal(got->status_lo, want.status_lo);
    assert_int_equal(got->status_hi, want.status_hi);
    assert_str_or_null(got->body, want.body);
}

/* Outlier detection as configured by default: on, 5 / off / 20 / 10s / 30s / 300s / 50%. */
static ups_outlier_conf_t outlier_defaults(void)
{
    return (ups_outlier_conf_t){.enabled = true, .consecutive_failures = 5,
                                .failure_ratio_pct = 0, .min_requests = 20, .window_ms = 10000,
                                .base_ejection_ms = 30000, .max_ejection_ms = 300000,
                                .max_ejected_pct = 50};
}

/* Every outlier detection setting, field by field. */
static void assert_outlier(const ups_outlier_conf_t *got, const ups_outlier_conf_t want)
{
    assert_int_equal(got->enabled, want.enabled);
    assert_int_equal(got->consecutive_failures, want.consecutive_failures);
    assert_int_equal(got->failure_ratio_pct, want.failure_ratio_pct);
    assert_int_equal(got->min_requests, want.min_requests);
    assert_int_equal(got->window_ms, want.window_ms);
    assert_int_equal(got->base_ejection_ms, want.base_ejection_ms);
    assert_int_equal(got->max_ejection_ms, want.max_ejection_ms);
    assert_int_equal(got->max_ejected_pct, want.max_ejected_pct);
}

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

static void test_err_upstream_block(void **state)
{
    (void)state;
    static const conf_err_case_t cases[] = {
        {HTTP("upstream b {\n}\n"), "2:1: no servers in upstream \"b\""},
        {HTTP("upstream b {\n  keepalive 4;\n}\n"), "2:1: no servers in upstream \"b\""},
        {HTTP("upstream b {\n  server 127.0.0.1:1;\n}\n"
              "upstream b {\n  server 127.0.0.1:2;\n}\n"),
         "5:10: duplicate upstream \"b\" (first at {F}:2)"},
        {HTTP("upstream b;\n"), "2:1: directive \"upstream\" has no opening \"{\""},
        {HTTP("upstream {\n}\n"), "2:1: invalid number of arguments in \"upstream\" directive"},
        {HTTP("upstream a b {\n}\n"), "2:1: invalid number of arguments in \"upstream\" directive"},
        {"upstream b {\n}\n", "1:1: \"upstream\" directive is not allowed here"},
        {SRV("upstream b {\n}\n"), "4:1: \"upstream\" directive is not allowed here"},
        {HTTP("keepalive 4;\n"), "2:1: \"keepalive\" directive is not allowed here"},
        {SRV("keepalive 4;\n"), "4:1: \"keepalive\" directive is not allowed here"},
        /* "server" in http is the server block. */
        {HTTP("server 127.0.0.1:1;\n"), "2:1: directive \"server\" has no opening \"{\""},
        {UPS("  server 127.0.0.1:1;\n  listen 80;\n"),
         "4:3: \"listen\" directive is not allowed here"},
        {UPS("  server 127.0.0.1:1;\n  location / {\n  }\n"),
         "4:3: \"location\" directive is not allowed here"},
        {UPS("  server 127.0.0.1:1;\n  upstream v {\n  }\n"),
         "4:3: \"upstream\" directive is not allowed here"},
        {UPS("  server 127.0.0.1:1;\n  nonsense;\n"), "4:3: unknown directive \"nonsense\""},
    };
    EXPECT_ERRS(cases);
}

static void test_err_backup_only(void **state)
{
    (void)state;
    /* Reported at the block: no line is wrong on its own. */
    static const conf_err_case_t cases[] = {
        {UPS("  server 127.0.0.1:1 backup;\n"), "2:1: upstream \"u\" has only backup servers"},
        {UPS("  server 127.0.0.1:1 backup;\n  server 127.0.0.1:2 weight=3 backup;\n"
             "  round_robin;\n"),
         "2:1: upstream \"u\" has only backup servers"},
        {HTTP("upstream a {\n  server 127.0.0.1:1;\n}\n"
              "upstream b {\n  server 127.0.0.1:1 backup;\n}\n"),
         "5:1: upstream \"b\" has only backup servers"},
    };
    EXPECT_ERRS(cases);
}

static void test_err_server_line(void **state)
{
    (void)state;
    static const conf_err_case_t cases[] = {
        {UPS("  server 127.0.0.1:1 weight=0;\n"), "3:22: invalid value \"0\", expected 1..1000"},
        {UPS("  server 127.0.0.1:1 weight=1001;\n"),
         "3:22: invalid value \"1001\", expected 1..1000"},
        {UPS("  server 127.0.0.1:1 weight=;\n"), "3:22: invalid value \"\", expected 1..1000"},
        {UPS("  server 127.0.0.1:1 weight=2x;\n"), "3:22: invalid value \"2x\", expected 1..1000"},
        {UPS("  server 127.0.0.1:1 weight=-1;\n"), "3:22: invalid value \"-1\", expected 1..1000"},
        {UPS("  server 127.0.0.1:1 weight=99999999999999999999;\n"),
         "3:22: invalid value \"99999999999999999999\", expected 1..1000"},
        {UPS("  server 127.0.0.1:1 max_fails=3;\n"), "3:22: invalid parameter \"max_fails=3\""},
        {UPS("  server 127.0.0.1:1 weight=2 max_fails=3;\n"),
         "3:31: invalid parameter \"max_fails=3\""},
        {UPS("  server 127.0.0.1:1 Send_Proxy;\n"), "3:22: invalid parameter \"Send_Proxy\""},
        {UPS("  server 127.0.0.1:1 backup=1;\n"), "3:22: invalid parameter \"backup=1\""},
        {UPS("  server 127.0.0.1:1 weight;\n"), "3:22: invalid parameter \"weight\""},
        /* max_conns= */
        {UPS("  server 127.0.0.1:1 max_conns=-1;\n"),
         "3:22: invalid value \"-1\", expected 0..1000000"},
        {UPS("  server 127.0.0.1:1 max_conns=1000001;\n"),
         "3:22: invalid value \"1000001\", expected 0..1000000"},
        {UPS("  server 127.0.0.1:1 backup max_conns=x;\n"),
         "3:29: invalid value \"x\", expected 0..1000000"},
        /* slow_start= */
        {UPS("  server 127.0.0.1:1 slow_start=abc;\n"),
         "3:22: invalid time \"abc\" (e.g. 500ms, 5s, 1m)"},
        {UPS("  server 127.0.0.1:1 slow_start=;\n"),
         "3:22: invalid time \"\" (e.g. 500ms, 5s, 1m)"},
        {UPS("  server 127.0.0.1:1 slow_start=2d;\n"),
         "3:22: invalid time \"2d\" (e.g. 500ms, 5s, 1m)"},
        {UPS("  server 127.0.0.1:1 slow_start=5s5s;\n"),
         "3:22: invalid time \"5s5s\" (e.g. 500ms, 5s, 1m)"},
        /* Parameters are checked before the address. */
        {UPS("  server nohost.invalid:80 weight=0;\n"),
         "3:28: invalid value \"0\", expected 1..1000"},
        {UPS("  server;\n"), "3:3: invalid number of arguments in \"server\" directive"},
        {UPS("  server a b c d e f g h i;\n"),
         "3:3: invalid number of arguments in \"server\" directive"},
        {UPS("  server 127.0.0.1:1 {\n  }\n"),
         "3:3: directive \"server\" is not terminated by \";\""},
        {UPS("  server :80;\n"), "3:10: invalid server address \":80\""},
        {UPS("  server :;\n"), "3:10: invalid server address \":\""},
        {UPS("  server [::1:80;\n"), "3:10: invalid server address \"[::1:80\""},
        {UPS("  server a:b;\n"), "3:10: invalid port in \"a:b\", expected 1..65535"},
        {UPS("  server localhost:65536;\n"),
         "3:10: invalid port in \"localhost:65536\", expected 1..65535"},
    };
    EXPECT_ERRS(cases);
    /* Too many lines. */
    size_t cap = 64 + 4097 * 24;
    char *big = malloc(cap);
    assert_non_null(big);
    size_t o = (size_t)snprintf(big, cap, "http {\nupstream u {\n");
    for (int i = 0; i < 4097; i++)
        o += (size_t)snprintf(big + o, cap - o, "server 127.0.0.1:%d;\n", 1 + i % 60000);
    snprintf(big + o, cap - o, "}\n}\n");
    EXPECT_ERR(big, "4099:1: too many servers (4096 at most)");
    free(big);
}

/*
 * Regression (fixed): a bare IPv6 address is not a host name. "::1" was
 * split at its last colon into host "::" and port 1, and loaded as
 * [::]:1 without a word.
 */
static void test_regress_bare_ipv6_server(void **state)
{
    (void)state;
    static const conf_err_case_t cases[] = {
        {UPS("  server ::1;\n"), "3:10: invalid server address \"::1\""},
        {UPS("  server ::1:8080;\n"), "3:10: invalid server address \"::1:8080\""},
        {UPS("  server [::1]]:80;\n"), "3:10: invalid server address \"[::1]]:80\""},
        {LOC("proxy_pass http://::1:8080;\n"), "5:19: invalid server address \"::1:8080\""},
    };
    EXPECT_ERRS(cases);
    pt_snapshot_t *s = LOAD_OK(UPS("  server [::1];\n  server [::1]:8080;\n"));
    assert_literal(&only_group(s)->servers[0], "[::1]", "[::1]:80");
    assert_literal(&only_group(s)->servers[1], "[::1]:8080", "[::1]:8080");
    pt_snapshot_unref(s);
}

/*
 * Regression (fixed): the listen forms of an address, a bare port and
 * "*:port", loaded as an origin at 0.0.0.0 ("server 8080;").
 */
static void test_regress_wildcard_server(void **state)
{
    (void)state;
    static const conf_err_case_t cases[] = {
        {UPS("  server 8080;\n"), "3:10: invalid server address \"8080\": no host"},
        {UPS("  server *:8080;\n"), "3:10: invalid server address \"*:8080\": no host"},
        {UPS("  server *;\n"), "3:10: invalid server address \"*\": no host"},
        {UPS("  server 127.0.0.1:1;\n  server 80 backup;\n"),
         "4:10: invalid server address \"80\": no host"},
        {LOC("proxy_pass http://*:80;\n"), "5:19: invalid server address \"*:80\": no host"},
    };
    EXPECT_ERRS(cases);
    /* An address that only looks numeric is still one. */
    pt_snapshot_t *s = LOAD_OK(UPS("  server 10.1.2.3;\n"));
    assert_literal(&only_group(s)->servers[0], "10.1.2.3", "10.1.2.3:80");
    pt_snapshot_unref(s);
}

static void test_err_host_not_found(void **state)
{
    (void)state;
    pt_conf_err_t full;
    EXPECT_ERR_PREFIX(UPS("  server nohost.invalid:80;\n"),
                      "3:10: host not found in \"nohost.invalid:80\": ");
    EXPECT_ERR_PREFIX(UPS("  server 127.0.0.1:1;\n  server portico-test.invalid weight=2;\n"),
                      "4:10: host not found in \"portico-test.invalid\": ");
    /* backup does not excuse a name that does not resolve. */
    EXPECT_ERR_PREFIX(UPS("  server 127.0.0.1:1;\n  server nohost.invalid backup;\n"),
                      "4:10: host not found in \"nohost.invalid\": ");
    /* Implicit groups: the column points at the host, inside the URL. */
    EXPECT_ERR_PREFIX(LOC("proxy_pass http://nohost.invalid:80;\n"),
                      "5:19: host not found in \"nohost.invalid:80\": ");
    EXPECT_ERR_PREFIX(LOC("proxy_pass \"http://nohost.invalid:80\";\n"),
                      "5:20: host not found in \"nohost.invalid:80\": ");
    /* The message ends with the resolver's reason. */
    pt_conf_err_t err = {{0}};
    assert_null(load_text(LOC("proxy_pass http://nohost.invalid:80;\n"), &err));
    full = err;
    const char *colon = strstr(full.msg, "\": ");
    assert_non_null(colon);
    assert_true(colon[3] != '\0' && colon[3] != '\n');
    assert_string_equal(caret_line(&full), "                  ^");
}

static void test_err_keepalive(void **state)
{
    (void)state;
    static const conf_err_case_t cases[] = {
        {UPS("  server 127.0.0.1:1;\n  keepalive -1;\n"),
         "4:13: value \"-1\" in \"keepalive\" directive is out of range [0, 100000]"},
        {UPS("  server 127.0.0.1:1;\n  keepalive 100001;\n"),
         "4:13: value \"100001\" in \"keepalive\" directive is out of range [0, 100000]"},
        {UPS("  server 127.0.0.1:1;\n  keepalive many;\n"),
         "4:13: invalid value \"many\" in \"keepalive\" directive, expected an integer"},
        {UPS("  server 127.0.0.1:1;\n  keepalive_timeout 0;\n"),
         "4:21: value \"0\" in \"keepalive_timeout\" directive is out of range [1ms, 1d]"},
        {UPS("  server 127.0.0.1:1;\n  keepalive_timeout 25h;\n"),
         "4:21: value \"25h\" in \"keepalive_timeout\" directive is out of range [1ms, 1d]"},
        {UPS("  server 127.0.0.1:1;\n  keepalive_requests 0;\n"),
         "4:22: value \"0\" in \"keepalive_requests\" directive is out of range "
         "[1, 1000000000]"},
        {UPS("  server 127.0.0.1:1;\n  keepalive 1 2;\n"),
         "4:3: invalid number of arguments in \"keepalive\" directive"},
    };
    EXPECT_ERRS(cases);
}

static void test_err_proxy_pass(void **state)
{
    (void)state;
    static const conf_err_case_t cases[] = {
        {SRV("proxy_pass http://127.0.0.1:1;\n"),
         "4:1: \"proxy_pass\" directive is not allowed here"},
        {HTTP("proxy_pass http://127.0.0.1:1;\n"),
         "2:1: \"proxy_pass\" directive is not allowed here"},
        {LOC("proxy_pass https://a:1;\n"),
         "5:12: invalid URL \"https://a:1\": only http:// is supported"},
        {LOC("proxy_pass backend;\n"), "5:12: invalid URL \"backend\": only http:// is supported"},
        {LOC("proxy_pass HTTP://backend;\n"),
         "5:12: invalid URL \"HTTP://backend\": only http:// is supported"},
        {LOC("proxy_pass http://127.0.0.1:1/x;\n"),
         "5:12: a URI part in proxy_pass (\"http://127.0.0.1:1/x\") is not supported: the "
         "request URI is passed unchanged"},
        {LOC("proxy_pass http://backend/;\n"),
         "5:12: a URI part in proxy_pass (\"http://backend/\") is not supported: the "
         "request URI is passed unchanged"},
        {LOC("proxy_pass http://;\n"), "5:12: invalid URL \"http://\": no host"},
        {LOC("proxy_pass;\n"), "5:1: invalid number of arguments in \"proxy_pass\" directive"},
        {LOC("proxy_pass http://a:1 http://b:1;\n"),
         "5:1: invalid number of arguments in \"proxy_pass\" directive"},
        {LOC("proxy_pass http://127.0.0.1:1;\nproxy_pass http://127.0.0.1:2;\n"),
         "6:1: duplicate action in this location"},
    };
    EXPECT_ERRS(cases);
}

static void test_err_undefined_upstream(void **state)
{
    (void)state;
    pt_conf_err_t full;
    /* Reported after the whole file was read, at the proxy_pass argument. */
    EXPECT_ERR_FULL(LOC("proxy_pass http://nosuch;\n"),
                    "5:12: upstream \"nosuch\" is not defined (no upstream block and no port "
                    "given)",
                    &full);
    assert_string_equal(caret_line(&full), "           ^");
    /* Also from a second server, with the group-less name in quotes. */
    EXPECT_ERR(HTTP("upstream backend {\n  server 127.0.0.1:1;\n}\n"
                    "server {\n  location / {\n    proxy_pass http://backend;\n  }\n}\n"
                    "server {\n  location / {\n    proxy_pass \"http://backend2\";\n  }\n}\n"),
               "12:16: upstream \"backend2\" is not defined (no upstream block and no port "
               "given)");
}

static void test_err_lb_method(void **state)
{
    (void)state;
    /* One method per group, whichever comes first; the second is reported. */
    static const conf_err_case_t cases[] = {
        {UPS1("round_robin;\n  random;"), "5:3: load balancing method is already set"},
        {UPS1("p2c_ewma;\n  p2c_ewma;"), "5:3: load balancing method is already set"},
        {UPS1("least_conn;\n  least_request;"), "5:3: load balancing method is already set"},
        {UPS1("hash $uri;\n  round_robin;"), "5:3: load balancing method is already set"},
        {UPS1("random;\n  hash $uri consistent;"), "5:3: load balancing method is already set"},
        {UPS1("hash $uri;\n  hash $host;"), "5:3: load balancing method is already set"},
        {UPS1("round_robin on;"), "4:3: invalid number of arguments in \"round_robin\" directive"},
        {UPS1("p2c_ewma 2;"), "4:3: invalid number of arguments in \"p2c_ewma\" directive"},
        {UPS1("least_conn x;"), "4:3: invalid number of arguments in \"least_conn\" directive"},
        {UPS1("random two;"), "4:3: invalid number of arguments in \"random\" directive"},
        {HTTP("round_robin;\n"), "2:1: \"round_robin\" directive is not allowed here"},
        {LOC("hash $uri;\n"), "5:1: \"hash\" directive is not allowed here"},
    };
    EXPECT_ERRS(cases);
}

static void test_err_hash(void **state)
{
    (void)state;
    /* No key. */
    static const conf_err_case_t cases[] = {
        {UPS1("hash;"), "4:3: invalid number of arguments in \"hash\" directive"},
        {UPS1("hash \"\";"), "4:8: empty hash key"},
        {UPS1("hash \"\" consistent;"), "4:8: empty hash key"},
        /* Second argument. */
        {UPS1("hash $uri maglev;"), "4:13: invalid parameter \"maglev\", expected \"consistent\""},
        {UPS1("hash $remote_addr Consistent;"),
         "4:21: invalid parameter \"Consistent\", expected \"consistent\""},
        {UPS1("hash $uri consistent extra;"),
         "4:3: invalid number of arguments in \"hash\" directive"},
        /* Key templates: the column points at the variable. */
        {UPS1("hash $nosuch;"), "4:8: unknown variable \"$nosuch\""},
        {UPS1("hash \"$host$nosuch\";"), "4:14: unknown variable \"$nosuch\""},
        {UPS1("hash $cookie_;"), "4:8: unknown variable \"$cookie_\""},
        {UPS1("hash $http_;"), "4:8: unknown variable \"$http_\""},
        {UPS1("hash a${uri;"), "4:9: invalid variable name in \"a${uri\""},
        {UPS1("hash $;"), "4:8: invalid variable name in \"$\""},
    };
    EXPECT_ERRS(cases);
}

static void test_err_hash_balance_factor(void **state)
{
    (void)state;
    /* "  hash_balance_factor " is 22 columns: the value is at 23. */
    static const conf_err_case_t cases[] = {
        {UPS1("hash $uri;\n  hash_balance_factor 1;"),
         "5:23: hash_balance_factor must be 0 (off) or >= 100"},
        {UPS1("hash_balance_factor 50;"), "4:23: hash_balance_factor must be 0 (off) or >= 100"},
        {UPS1("hash_balance_factor 99;"), "4:23: hash_balance_factor must be 0 (off) or >= 100"},
        {UPS1("hash_balance_factor -1;"), "4:23: invalid value \"-1\", expected 0..10000"},
        {UPS1("hash_balance_factor 10001;"), "4:23: invalid value \"10001\", expected 0..10000"},
        {UPS1("hash_balance_factor 150%;"), "4:23: invalid value \"150%\", expected 0..10000"},
        {UPS1("hash_balance_factor;"),
         "4:3: invalid number of arguments in \"hash_balance_factor\" directive"},
        {UPS1("hash_balance_factor 100 200;"),
         "4:3: invalid number of arguments in \"hash_balance_factor\" directive"},
    };
    EXPECT_ERRS(cases);
}

static void test_err_slow_start(void **state)
{
    (void)state;
    static const conf_err_case_t cases[] = {
        {UPS1("slow_start 2h;"),
         "4:14: value \"2h\" in \"slow_start\" directive is out of range [0, 1h]"},
        {UPS1("slow_start x;"),
         "4:14: invalid value \"x\" in \"slow_start\" directive, expected a time like "
         "250ms, 30s, 5m, 1h, 1d"},
        {UPS1("slow_start -1s;"),
         "4:14: invalid value \"-1s\" in \"slow_start\" directive, expected a time like "
         "250ms, 30s, 5m, 1h, 1d"},
        {UPS1("slow_start;"), "4:3: invalid number of arguments in \"slow_start\" directive"},
    };
    EXPECT_ERRS(cases);
}

static void test_err_limits(void **state)
{
    (void)state;
    static const conf_err_case_t cases[] = {
        {UPS1("max_connections -1;"), "4:19: invalid value \"-1\", expected 0..10000000"},
        {UPS1("max_connections 10000001;"),
         "4:19: invalid value \"10000001\", expected 0..10000000"},
        {UPS1("max_connections many;"), "4:19: invalid value \"many\", expected 0..10000000"},
        {UPS1("max_requests 1.5;"), "4:16: invalid value \"1.5\", expected 0..10000000"},
        {UPS1("max_requests 10000001;"), "4:16: invalid value \"10000001\", expected 0..10000000"},
        {UPS1("max_pending x;"), "4:15: invalid value \"x\", expected 0..10000000"},
        {UPS1("max_pending -5;"), "4:15: invalid value \"-5\", expected 0..10000000"},
        {UPS1("max_pending 1 2;"), "4:3: invalid number of arguments in \"max_pending\" directive"},
        {UPS1("pending_timeout 0;"),
         "4:19: value \"0\" in \"pending_timeout\" directive is out of range [1ms, 1h]"},
        {UPS1("pending_timeout 61m;"),
         "4:19: value \"61m\" in \"pending_timeout\" directive is out of range [1ms, 1h]"},
        {UPS1("pending_timeout soon;"),
         "4:19: invalid value \"soon\" in \"pending_timeout\" directive, expected a time "
         "like 250ms, 30s, 5m, 1h, 1d"},
        {SRV("max_requests 5;\n"), "4:1: \"max_requests\" directive is not allowed here"},
    };
    EXPECT_ERRS(cases);
}

static void test_err_retry_budget(void **state)
{
    (void)state;
    /* "  retry_budget " is 15 columns: the first value is at 16. */
    static const conf_err_case_t cases[] = {
        {UPS1("retry_budget off extra;"), "4:20: unexpected parameter after \"off\""},
        {UPS1("retry_budget off min_concurrency=3;"), "4:20: unexpected parameter after \"off\""},
        {UPS1("retry_budget 101%;"), "4:16: invalid value \"101\", expected 0..100"},
        {UPS1("retry_budget -1%;"), "4:16: invalid value \"-1\", expected 0..100"},
        {UPS1("retry_budget %;"), "4:16: invalid percentage \"%\", expected 0..100%"},
        {UPS1("retry_budget abc;"), "4:16: invalid value \"abc\", expected 0..100"},
        {UPS1("retry_budget 20%%;"), "4:16: invalid value \"20%\", expected 0..100"},
        {UPS1("retry_budget 12345678901234567%;"),
         "4:16: invalid percentage \"12345678901234567%\", expected 0..100%"},
        {UPS1("retry_budget On;"), "4:16: invalid value \"On\", expected 0..100"},
        {UPS1("retry_budget 20% min_conc=3;"), "4:20: invalid parameter \"min_conc=3\""},
        {UPS1("retry_budget 20% min_concurrency=-1;"),
         "4:20: invalid value \"-1\", expected 0..100000"},
        {UPS1("retry_budget 20% min_concurrency=100001;"),
         "4:20: invalid value \"100001\", expected 0..100000"},
        {UPS1("retry_budget 20% min_concurrency=;"),
         "4:20: invalid value \"\", expected 0..100000"},
        {UPS1("retry_budget;"), "4:3: invalid number of arguments in \"retry_budget\" directive"},
        {UPS1("retry_budget 20% min_concurrency=1 x;"),
         "4:3: invalid number of arguments in \"retry_budget\" directive"},
    };
    EXPECT_ERRS(cases);
}

static void test_err_health_check(void **state)
{
    (void)state;
    /* "  health_check " is 15 columns: the first parameter is at 16. */
    static const conf_err_case_t cases[] = {
        {UPS1("health_check;\n  health_check type=tcp;"), "5:3: duplicate health_check"},
        {UPS1("health_check type=tcp;\n  health_check;"), "5:3: duplicate health_check"},
        {UPS1("health_check type=udp;"), "4:16: invalid type \"udp\", expected http or tcp"},
        {UPS1("health_check type=;"), "4:16: invalid type \"\", expected http or tcp"},
        {UPS1("health_check interval=5ms;"), "4:16: invalid time \"5ms\" (e.g. 500ms, 5s, 1m)"},
        {UPS1("health_check interval=0;"), "4:16: invalid time \"0\" (e.g. 500ms, 5s, 1m)"},
        {UPS1("health_check interval=2d;"), "4:16: invalid time \"2d\" (e.g. 500ms, 5s, 1m)"},
        {UPS1("health_check timeout=fast;"), "4:16: invalid time \"fast\" (e.g. 500ms, 5s, 1m)"},
        {UPS1("health_check rise=0;"), "4:16: invalid value \"0\", expected 1..100"},
        {UPS1("health_check fall=101;"), "4:16: invalid value \"101\", expected 1..100"},
        {UPS1("health_check port=0;"), "4:16: invalid value \"0\", expected 1..65535"},
        {UPS1("health_check port=65536;"), "4:16: invalid value \"65536\", expected 1..65535"},
        {UPS1("health_check method=get;"), "4:16: invalid method \"get\""},
        {UPS1("health_check method=GET/1;"), "4:16: invalid method \"GET/1\""},
        {UPS1("health_check uri=health;"),
         "4:16: invalid uri \"health\": must start with / and have no spaces"},
        {UPS1("health_check \"uri=/a b\";"),
         "4:16: invalid uri \"/a b\": must start with / and have no spaces"},
        {UPS1("health_check host=;"), "4:16: invalid host \"\""},
        {UPS1("health_check host=a/b;"), "4:16: invalid host \"a/b\""},
        {UPS1("health_check body=;"), "4:16: invalid body \"\""},
        {UPS1("health_check foo=1;"), "4:16: invalid parameter \"foo=1\""},
        {UPS1("health_check http;"), "4:16: invalid parameter \"http\""},
        /* The second parameter: "type=tcp " moves it 9 columns. */
        {UPS1("health_check type=tcp rise=x;"), "4:25: invalid value \"x\", expected 1..100"},
        {UPS1("health_check a b c d e f g h i j k l;"),
         "4:3: invalid number of arguments in \"health_check\" directive"},
        {SRV("health_check;\n"), "4:1: \"health_check\" directive is not allowed here"},
    };
    EXPECT_ERRS(cases);
}

static void test_err_health_check_status(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "99", "600", "400-200", "abc", "200-600", "99-200", "", "-", "200-", "200x",
        "200-399x", "200-+", "1e3",
    };
    for (size_t i = 0; i < pt_countof(bad); i++) {
        char conf[256], want[256];
        snprintf(conf, sizeof(conf), UPS1("health_check status=%s;"), bad[i]);
        snprintf(want, sizeof(want),
                 "4:16: invalid status range \"%s\" (e.g. 200-399 or 204)", bad[i]);
        EXPECT_ERR(conf, want);
    }
    EXPECT_ERR(UPS1("health_check interval=3s status=2xx;"),
               "4:28: invalid status range \"2xx\" (e.g. 200-399 or 204)");
}

static void test_err_health_check_timeout(void **state)
{
    (void)state;
    /* The timeout that does not fit its interval is pointed at. */
    static const conf_err_case_t cases[] = {
        {UPS1("health_check interval=1s timeout=2s;"),
         "4:28: health_check timeout must not exceed its interval"},
        {UPS1("health_check timeout=2s interval=1s;"),
         "4:16: health_check timeout must not exceed its interval"},
        /* Against the default interval (5 s). */
        {UPS1("health_check timeout=6s;"),
         "4:16: health_check timeout must not exceed its interval"},
    };
    EXPECT_ERRS(cases);
}

static void test_err_outlier_detection(void **state)
{
    (void)state;
    /* "  outlier_detection " is 20 columns: the first parameter is at 21. */
    static const conf_err_case_t cases[] = {
        {UPS1("outlier_detection;"),
         "4:3: invalid number of arguments in \"outlier_detection\" directive"},
        {UPS1("outlier_detection a b c d e f g h;"),
         "4:3: invalid number of arguments in \"outlier_detection\" directive"},
        {UPS1("outlier_detection on;"), "4:21: invalid parameter \"on\""},
        {UPS1("outlier_detection off window=1s;"), "4:21: invalid parameter \"off\""},
        {UPS1("outlier_detection consecutive=5;"), "4:21: invalid parameter \"consecutive=5\""},
        {UPS1("outlier_detection consecutive_failures=-1;"),
         "4:21: invalid value \"-1\", expected 0..100000"},
        {UPS1("outlier_detection failure_ratio=101%;"),
         "4:21: invalid value \"101\", expected 0..100"},
        {UPS1("outlier_detection failure_ratio=;"),
         "4:21: invalid percentage \"\", expected 0..100%"},
        {UPS1("outlier_detection failure_ratio=half;"),
         "4:21: invalid value \"half\", expected 0..100"},
        {UPS1("outlier_detection min_requests=0;"),
         "4:21: invalid value \"0\", expected 1..1000000"},
        {UPS1("outlier_detection window=50ms;"),
         "4:21: invalid time \"50ms\" (e.g. 500ms, 5s, 1m)"},
        {UPS1("outlier_detection ejection_time=5ms;"),
         "4:21: invalid time \"5ms\" (e.g. 500ms, 5s, 1m)"},
        {UPS1("outlier_detection max_ejection_time=;"),
         "4:21: invalid time \"\" (e.g. 500ms, 5s, 1m)"},
        {UPS1("outlier_detection max_ejected=200%;"),
         "4:21: invalid value \"200\", expected 0..100"},
        /* A later parameter: "window=1s " moves it 10 columns. */
        {UPS1("outlier_detection window=1s min_requests=x;"),
         "4:31: invalid value \"x\", expected 1..1000000"},
        /* max_ejection_time below ejection_time: pointed at max_ejection_time. */
        {UPS1("outlier_detection ejection_time=30s max_ejection_time=10s;"),
         "4:39: max_ejection_time must be at least ejection_time"},
        {UPS1("outlier_detection max_ejection_time=10s ejection_time=30s;"),
         "4:21: max_ejection_time must be at least ejection_time"},
        /* Against the default ejection_time (30 s). */
        {UPS1("outlier_detection max_ejection_time=10s;"),
         "4:21: max_ejection_time must be at least ejection_time"},
    };
    EXPECT_ERRS(cases);
}

static void test_err_resolver(void **state)
{
    (void)state;
    /* "resolver " is 9 columns: the first address is at 10. */
    static const conf_err_case_t cases[] = {
        {HTTP("resolver valid=30s;\n"), "2:1: no resolver address"},
        {HTTP("resolver;\n"), "2:1: invalid number of arguments in \"resolver\" directive"},
        {HTTP("resolver dns.example;\n"), "2:10: invalid resolver address \"dns.example\""},
        {HTTP("resolver 127.0.0.1 10.0.0.300;\n"), "2:20: invalid resolver address \"10.0.0.300\""},
        {HTTP("resolver ::1;\n"), "2:10: invalid resolver address \"::1\""},
        {HTTP("resolver 127.0.0.1:0;\n"), "2:10: invalid resolver address \"127.0.0.1:0\""},
        {HTTP("resolver 1.1.1.1 2.2.2.2 3.3.3.3 4.4.4.4 5.5.5.5;\n"),
         "2:42: too many resolvers (4 at most)"},
        {HTTP("resolver 1.1.1.1 2.2.2.2 3.3.3.3 4.4.4.4 5.5.5.5 valid=5s;\n"),
         "2:1: invalid number of arguments in \"resolver\" directive"},
        {HTTP("resolver 127.0.0.1 valid=500ms;\n"),
         "2:20: invalid time \"500ms\" (e.g. 500ms, 5s, 1m)"},
        {HTTP("resolver 127.0.0.1 valid=;\n"), "2:20: invalid time \"\" (e.g. 500ms, 5s, 1m)"},
        {HTTP("resolver 127.0.0.1 ttl=5s;\n"), "2:20: invalid resolver address \"ttl=5s\""},
        {UPS1("resolver 127.0.0.1;"), "4:3: \"resolver\" directive is not allowed here"},
        {SRV("resolver 127.0.0.1;\n"), "4:1: \"resolver\" directive is not allowed here"},
        {HTTP("resolver_timeout 5ms;\n"),
         "2:18: value \"5ms\" in \"resolver_timeout\" directive is out of range [10ms, 1m]"},
        {HTTP("resolver_timeout 2m;\n"),
         "2:18: value \"2m\" in \"resolver_timeout\" directive is out of range [10ms, 1m]"},
        {HTTP("resolver_timeout x;\n"),
         "2:18: invalid value \"x\" in \"resolver_timeout\" directive, expected a time like "
         "250ms, 30s, 5m, 1h, 1d"},
        {HTTP("upstream_state_file a b;\n"),
         "2:1: invalid number of arguments in \"upstream_state_file\" directive"},
        {UPS1("upstream_state_file s.json;"),
         "4:3: \"upstream_state_file\" directive is not allowed here"},
    };
    EXPECT_ERRS(cases);
}

static void test_err_next_upstream(void **state)
{
    (void)state;
    /* "proxy_next_upstream " is 20 columns: the first word is at 21. */
    static const conf_err_case_t cases[] = {
        {LOC("proxy_next_upstream error http_404;\n"),
         "5:27: invalid value \"http_404\", expected off, error, timeout, http_500, "
         "http_502, http_503, http_504, http_429 or non_idempotent"},
        {LOC("proxy_next_upstream Error;\n"),
         "5:21: invalid value \"Error\", expected off, error, timeout, http_500, "
         "http_502, http_503, http_504, http_429 or non_idempotent"},
        /* "off" only alone. */
        {LOC("proxy_next_upstream off error;\n"),
         "5:21: invalid value \"off\", expected off, error, timeout, http_500, "
         "http_502, http_503, http_504, http_429 or non_idempotent"},
        {HTTP("proxy_next_upstream timeout invalid_header;\n"),
         "2:29: invalid value \"invalid_header\", expected off, error, timeout, "
         "http_500, http_502, http_503, http_504, http_429 or non_idempotent"},
        {LOC("proxy_next_upstream;\n"),
         "5:1: invalid number of arguments in \"proxy_next_upstream\" directive"},
        {LOC("proxy_next_upstream error timeout http_500 http_502 http_503 http_504 "
             "http_429 non_idempotent error;\n"),
         "5:1: invalid number of arguments in \"proxy_next_upstream\" directive"},
        /* "proxy_next_upstream_tries " is 26 columns. */
        {LOC("proxy_next_upstream_tries 101;\n"),
         "5:27: value \"101\" in \"proxy_next_upstream_tries\" directive is out of range "
         "[0, 100]"},
        {LOC("proxy_next_upstream_tries -1;\n"),
         "5:27: value \"-1\" in \"proxy_next_upstream_tries\" directive is out of range "
         "[0, 100]"},
        {LOC("proxy_next_upstream_tries three;\n"),
         "5:27: invalid value \"three\" in \"proxy_next_upstream_tries\" directive, "
         "expected an integer"},
        /* "proxy_next_upstream_timeout " is 28 columns. */
        {LOC("proxy_next_upstream_timeout 2d;\n"),
         "5:29: value \"2d\" in \"proxy_next_upstream_timeout\" directive is out of range "
         "[0, 1d]"},
        {LOC("proxy_next_upstream_timeout x;\n"),
         "5:29: invalid value \"x\" in \"proxy_next_upstream_timeout\" directive, expected "
         "a time like 250ms, 30s, 5m, 1h, 1d"},
        /* "proxy_try_timeout " is 18 columns. */
        {LOC("proxy_try_timeout x;\n"),
         "5:19: invalid value \"x\" in \"proxy_try_timeout\" directive, expected a time "
         "like 250ms, 30s, 5m, 1h, 1d"},
        {LOC("proxy_try_timeout 25h;\n"),
         "5:19: value \"25h\" in \"proxy_try_timeout\" directive is out of range [0, 1d]"},
        {LOC("proxy_try_timeout 1s 2s;\n"),
         "5:1: invalid number of arguments in \"proxy_try_timeout\" directive"},
        /* Location settings, not upstream or main ones. */
        {UPS1("proxy_next_upstream error;"),
         "4:3: \"proxy_next_upstream\" directive is not allowed here"},
        {"proxy_next_upstream_tries 2;\n",
         "1:1: \"proxy_next_upstream_tries\" directive is not allowed here"},
    };
    EXPECT_ERRS(cases);
}

static void test_err_admin_token(void **state)
{
    (void)state;
    /* "admin_token " is 12 columns. */
    static const conf_err_case_t cases[] = {
        {"admin_token 0123456789abcde;\n",
         "1:13: admin_token is too short: use 16 characters or more"},
        {"workers 1;\nadmin_token short;\n",
         "2:13: admin_token is too short: use 16 characters or more"},
        {"admin_token \"\";\n", "1:13: admin_token is too short: use 16 characters or more"},
        {"admin_token \"0123456789 abcdefgh\";\n",
         "1:13: admin_token must be printable ASCII without spaces"},
        {"admin_token \"0123456789\tabcdefgh\";\n",
         "1:13: admin_token must be printable ASCII without spaces"},
        {"admin_token 0123456789abcdef\xc3\xa9;\n",
         "1:13: admin_token must be printable ASCII without spaces"},
        {"admin_token;\n", "1:1: invalid number of arguments in \"admin_token\" directive"},
        {"admin_token 0123456789abcdef 0123456789abcdef;\n",
         "1:1: invalid number of arguments in \"admin_token\" directive"},
        {HTTP("admin_token 0123456789abcdef;\n"),
         "2:1: \"admin_token\" directive is not allowed here"},
    };
    EXPECT_ERRS(cases);
}

/* ------------------------------------------------------------------ */
/* Successful configs                                                  */
/* ------------------------------------------------------------------ */

static void test_groups(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK("http {\n"
                               "  server {\n"
                               "    listen 127.0.0.1:8080;\n"
                               "    location /a {\n"
                               "      proxy_pass http://backend;\n"
                               "    }\n"
                               "    location /b {\n"
                               "      proxy_pass http://127.0.0.1:8080;\n"
                               "    }\n"
                               "    location /c {\n"
                               "      proxy_pass \"http://127.0.0.1:8080\";\n"
                               "    }\n"
                               "    location /d {\n"
                               "      proxy_pass http://[::1];\n"
                               "    }\n"
                               "    location /e {\n"
                               "      proxy_pass http://other;\n"
                               "    }\n"
                               "  }\n"
                               "  upstream backend {\n"
                               "    server 127.0.0.1:9001 weight=5;\n"
                               "    server 127.0.0.1:9002 send_proxy;\n"
                               "    server 127.0.0.1:9003 weight=1000 send_proxy_v2;\n"
                               "    server [::1]:9004 send_proxy_v2 send_proxy weight=2;\n"
                               "    keepalive 0;\n"
                               "    keepalive_timeout 30s;\n"
                               "    keepalive_requests 50;\n"
                               "  }\n"
                               "  upstream other {\n"
                               "    server 10.0.0.1;\n"
                               "  }\n"
                               "}\n");
    ups_conf_t *uc = ups_conf(s);
    assert_int_equal(uc->groups.n, 4);
    assert_int_equal(uc->passes.n, 5);

    ups_group_t *b = group_at(s, 0);
    assert_string_equal(b->name, "backend");
    assert_false(b->implicit);
    assert_string_equal(b->file, conf_file);
    assert_int_equal(b->line, 20);
    assert_int_equal(b->nservers, 4);
    assert_keepalive(b, 0, 30000, 50);
    static const struct {
        const char *spec, *addr;
        int weight;
        pp_mode_t pp;
    } want[] = {
        {"127.0.0.1:9001", "127.0.0.1:9001", 5, PP_NONE},
        {"127.0.0.1:9002", "127.0.0.1:9002", 1, PP_V1},
        {"127.0.0.1:9003", "127.0.0.1:9003", 1000, PP_V2},
        {"[::1]:9004", "[::1]:9004", 2, PP_V1}, /* the last proxy flag wins */
    };
    for (size_t i = 0; i < pt_countof(want); i++) {
        const ups_server_t *sv = &b->servers[i];
        assert_literal(sv, want[i].spec, want[i].addr);
        assert_int_equal(sv->weight, want[i].weight);
        assert_int_equal(sv->pp, want[i].pp);
        assert_string_equal(sv->file, conf_file);
        assert_int_equal(sv->line, 21 + i);
        assert_int_equal(sv->max_conns, 0);
        assert_false(sv->backup);
        assert_false(sv->resolve);
        assert_int_equal(sv->slow_start_ms, 0);
    }
    assert_int_equal(b->servers[0].port, 9001);
    assert_int_equal(b->servers[3].addrs[0].ss.ss_family, AF_INET6);
    assert_int_equal(b->servers[3].port, 9004);

    ups_group_t *o = group_at(s, 1);
    assert_string_equal(o->name, "other");
    assert_int_equal(o->nservers, 1);
    assert_literal(&o->servers[0], "10.0.0.1", "10.0.0.1:80"); /* default port */
    assert_int_equal(o->servers[0].port, 80);
    assert_int_equal(o->servers[0].weight, 1);
    assert_int_equal(o->servers[0].pp, PP_NONE);
    assert_keepalive(o, 32, 60000, 1000); /* the defaults */
    assert_int_equal(o->line, 29);

    /* Implicit groups, one per address, made in proxy_pass order. */
    ups_group_t *i1 = group_at(s, 2);
    assert_string_equal(i1->name, "127.0.0.1:8080");
    assert_true(i1->implicit);
    assert_int_equal(i1->line, 8);
    assert_int_equal(i1->nservers, 1);
    assert_literal(&i1->servers[0], "127.0.0.1:8080", "127.0.0.1:8080");
    assert_int_equal(i1->servers[0].weight, 1);
    assert_int_equal(i1->servers[0].line, 8);
    assert_int_equal(i1->keepalive, 32);
    assert_int_equal(i1->lb, UPS_LB_P2C_EWMA);
    ups_group_t *i2 = group_at(s, 3);
    assert_string_equal(i2->name, "[::1]");
    assert_true(i2->implicit);
    assert_int_equal(i2->nservers, 1);
    assert_literal(&i2->servers[0], "[::1]", "[::1]:80");

    /* Locations point at their group and the forward handler. */
    pt_vhost_t *vh = first_vhost(s);
    ups_group_t *expect[] = {b, i1, i1, i2, o};
    for (size_t i = 0; i < pt_countof(expect); i++) {
        pt_location_t *l = loc_at(vh, i);
        assert_int_equal(l->action, PT_ACT_HANDLER);
        assert_ptr_equal(l->handler, ups_forward);
        assert_ptr_equal(l->handler_conf, expect[i]);
        const ups_pass_t *p = pt_array_at(&uc->passes, ups_pass_t, i);
        assert_ptr_equal(p->loc, l);
    }
    pt_snapshot_unref(s);
}

static void test_group_after_location(void **state)
{
    (void)state;
    /* The group is defined after the location that uses it, in another
     * server block order too; names with a port still prefer the group. */
    pt_snapshot_t *s = LOAD_OK(HTTP("server {\n"
                                    "  location / {\n"
                                    "    proxy_pass http://late;\n"
                                    "  }\n"
                                    "  location /p {\n"
                                    "    proxy_pass http://named:81;\n"
                                    "  }\n"
                                    "}\n"
                                    "upstream late {\n"
                                    "  server 127.0.0.1:9100;\n"
                                    "}\n"
                                    "upstream named:81 {\n"
                                    "  server 127.0.0.1:9101;\n"
                                    "}\n"));
    ups_conf_t *uc = ups_conf(s);
    assert_int_equal(uc->groups.n, 2);
    pt_vhost_t *vh = first_vhost(s);
    assert_ptr_equal(loc_at(vh, 0)->handler_conf, group_at(s, 0));
    assert_ptr_equal(loc_at(vh, 1)->handler_conf, group_at(s, 1));
    assert_false(group_at(s, 1)->implicit);
    pt_snapshot_unref(s);

    /* A group without any proxy_pass is kept (and validated). */
    s = LOAD_OK(HTTP("upstream unused {\n  server 127.0.0.1:9100;\n}\n"));
    assert_int_equal(ups_conf(s)->groups.n, 1);
    assert_int_equal(ups_conf(s)->passes.n, 0);
    pt_snapshot_unref(s);
}

static void test_localhost_resolves(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(HTTP("upstream l {\n"
                                    "  server localhost:80;\n"
                                    "  server localhost weight=3;\n"
                                    "}\n"
                                    "server {\n"
                                    "  location / {\n"
                                    "    proxy_pass http://localhost:8081;\n"
                                    "  }\n"
                                    "}\n"));
    ups_group_t *g = group_at(s, 0);
    /* One entry per line; localhost is 127.0.0.1 and maybe ::1. */
    assert_int_equal(g->nservers, 2);
    static const char *const specs[] = {"localhost:80", "localhost"};
    for (size_t i = 0; i < g->nservers; i++) {
        const ups_server_t *sv = &g->servers[i];
        assert_string_equal(sv->spec, specs[i]);
        assert_string_equal(sv->host, "localhost");
        assert_int_equal(sv->port, 80);
        assert_false(sv->resolve);
        assert_int_equal(sv->weight, i == 0 ? 1 : 3);
        assert_int_equal(sv->line, 3 + i);
        assert_true(sv->naddrs >= 1 && sv->naddrs <= 2);
        for (size_t k = 0; k < sv->naddrs; k++) assert_loopback(&sv->addrs[k], 80);
        /* No address twice from one name. */
        if (sv->naddrs == 2) assert_false(pt_addr_equal(&sv->addrs[0], &sv->addrs[1]));
    }
    /* Both lines resolve the same name the same way. */
    assert_int_equal(g->servers[0].naddrs, g->servers[1].naddrs);

    ups_group_t *imp = group_at(s, 1);
    assert_string_equal(imp->name, "localhost:8081");
    assert_true(imp->implicit);
    assert_int_equal(imp->nservers, 1);
    assert_string_equal(imp->servers[0].spec, "localhost:8081");
    assert_string_equal(imp->servers[0].host, "localhost");
    assert_int_equal(imp->servers[0].port, 8081);
    assert_true(imp->servers[0].naddrs >= 1);
    for (size_t k = 0; k < imp->servers[0].naddrs; k++)
        assert_loopback(&imp->servers[0].addrs[k], 8081);
    pt_snapshot_unref(s);
}

static void test_server_params(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(UPS("  server 127.0.0.1:9001 max_conns=10 slow_start=30s;\n"
                                   "  server 127.0.0.1:9002 backup weight=7 max_conns=0;\n"
                                   "  server localhost:9003 resolve send_proxy_v2 "
                                   "slow_start=250ms;\n"
                                   "  server 127.0.0.1:9004 resolve backup send_proxy weight=1 "
                                   "max_conns=1000000 slow_start=0;\n"
                                   "  server nohost.invalid:9005 resolve;\n"));
    const ups_group_t *g = only_group(s);
    assert_int_equal(g->nservers, 5);
    const ups_server_t *a = &g->servers[0], *b = &g->servers[1], *c = &g->servers[2],
                       *d = &g->servers[3], *e = &g->servers[4];
    assert_int_equal(a->max_conns, 10);
    assert_int_equal(a->slow_start_ms, 30000);
    assert_false(a->backup);
    assert_int_equal(a->weight, 1);

    assert_true(b->backup);
    assert_int_equal(b->weight, 7);
    assert_int_equal(b->max_conns, 0);
    assert_int_equal(b->slow_start_ms, 0);

    /* A name with resolve: resolved now too, re-resolved at run time. */
    assert_string_equal(c->host, "localhost");
    assert_true(c->resolve);
    assert_int_equal(c->pp, PP_V2);
    assert_int_equal(c->slow_start_ms, 250);
    assert_true(c->naddrs >= 1);
    for (size_t k = 0; k < c->naddrs; k++) assert_loopback(&c->addrs[k], 9003);

    /* resolve on a literal address: nothing to re-resolve. */
    assert_literal(d, "127.0.0.1:9004", "127.0.0.1:9004");
    assert_false(d->resolve);
    assert_true(d->backup);
    assert_int_equal(d->pp, PP_V1);
    assert_int_equal(d->max_conns, 1000000);

    /* A resolve name unknown at load: accepted, empty until the resolver knows it. */
    assert_string_equal(e->spec, "nohost.invalid:9005");
    assert_string_equal(e->host, "nohost.invalid");
    assert_int_equal(e->port, 9005);
    assert_true(e->resolve);
    assert_int_equal(e->naddrs, 0);
    pt_snapshot_unref(s);

    /* A bare number for slow_start= is seconds. */
    s = LOAD_OK(UPS("  server 127.0.0.1:1 slow_start=10;\n  server 127.0.0.1:2 slow_start=1d;\n"));
    assert_int_equal(only_group(s)->servers[0].slow_start_ms, 10000);
    assert_int_equal(only_group(s)->servers[1].slow_start_ms, 86400000);
    pt_snapshot_unref(s);

    /* The same address on two lines is kept as written (the runtime set
     * takes the first). */
    s = LOAD_OK(UPS("  server 127.0.0.1:1 weight=2;\n  server 127.0.0.1:1 weight=3;\n"));
    assert_int_equal(only_group(s)->nservers, 2);
    pt_snapshot_unref(s);
}

/*
 * Regression (fixed): each server line copied the group's whole array into
 * the snapshot pool, which never frees: 4096 lines kept ~700 MB (and took
 * seconds to load). The pool now grows with the number of lines.
 */
static void test_regress_many_servers_memory(void **state)
{
    (void)state;
    size_t cap = 64 + 4096 * 32;
    char *big = malloc(cap);
    assert_non_null(big);
    size_t o = (size_t)snprintf(big, cap, "http {\nupstream u {\n");
    for (int i = 0; i < 4096; i++)
        o += (size_t)snprintf(big + o, cap - o, "server 127.0.0.%d:%d;\n", 1 + i / 1000,
                              1 + i % 1000);
    snprintf(big + o, cap - o, "}\n}\n");
    pt_snapshot_t *s = LOAD_OK(big);
    free(big);
    const ups_group_t *g = only_group(s);
    assert_int_equal(g->nservers, 4096);
    for (size_t i = 0; i < g->nservers; i++) {
        char want[32];
        snprintf(want, sizeof(want), "127.0.0.%zu:%zu", 1 + i / 1000, 1 + i % 1000);
        assert_string_equal(g->servers[i].spec, want);
        assert_int_equal(g->servers[i].line, 3 + i);
    }
    /* About 0.5 KB per line today (the parsed text, nodes, addresses);
     * 2 KB leaves room and is still far below the quadratic growth. */
    size_t used = pt_pool_used(s->pool);
    if (used > 4096 * 2048) print_error("snapshot pool holds %zu bytes\n", used);
    assert_true(used <= 4096 * 2048);
    pt_snapshot_unref(s);
}

/* Every group setting at its default: what an upstream block with only
 * servers in it, or an implicit group, has. */
static void assert_group_defaults(const ups_group_t *g)
{
    assert_int_equal(g->lb, UPS_LB_P2C_EWMA);
    assert_false(g->lb_set);
    assert_int_equal(g->hash_key.nparts, 0);
    assert_int_equal(g->hash_balance_pct, 0);
    assert_int_equal(g->slow_start_ms, 0);
    assert_keepalive(g, 32, 60000, 1000);
    /* Circuit breaking. */
    assert_int_equal(g->max_connections, 0);
    assert_int_equal(g->max_requests, 0);
    assert_int_equal(g->max_pending, 1024);
    assert_int_equal(g->pending_timeout_ms, 5000);
    /* Retry budget: 20% min_concurrency=3. */
    assert_int_equal(g->retry_budget_pct, 20);
    assert_int_equal(g->retry_min_concurrency, 3);
    /* No active health checks; their parameters still have defaults. */
    assert_hc(&g->hc, hc_defaults(UPS_HC_OFF));
    assert_outlier(&g->outlier, outlier_defaults());
}

static void test_group_defaults(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(UPS("  server 127.0.0.1:1;\n"));
    const ups_conf_t *uc = ups_conf(s);
    assert_false(only_group(s)->implicit);
    assert_group_defaults(only_group(s));
    /* http level. */
    assert_null(uc->state_file);
    assert_int_equal(uc->nresolvers, 0);
    assert_int_equal(uc->resolver_valid_ms, 0);
    assert_int_equal(uc->resolver_timeout_ms, 5000);
    pt_snapshot_unref(s);

    /* Implicit groups get the same defaults. */
    s = LOAD_OK(LOC("proxy_pass http://127.0.0.1:9;\n"));
    assert_true(only_group(s)->implicit);
    assert_group_defaults(only_group(s));
    pt_snapshot_unref(s);
}

static void test_lb_methods(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(HTTP("upstream a {\n  server 127.0.0.1:1;\n  round_robin;\n}\n"
                                    "upstream b {\n  least_request;\n  server 127.0.0.1:1;\n}\n"
                                    "upstream c {\n  server 127.0.0.1:1;\n  least_conn;\n}\n"
                                    "upstream d {\n  server 127.0.0.1:1;\n  random;\n}\n"
                                    "upstream e {\n  server 127.0.0.1:1;\n  p2c_ewma;\n}\n"
                                    "upstream f {\n  server 127.0.0.1:1;\n  hash $uri;\n}\n"
                                    "upstream g {\n  server 127.0.0.1:1;\n"
                                    "  hash $remote_addr consistent;\n}\n"));
    static const ups_lb_t want[] = {
        UPS_LB_ROUND_ROBIN, UPS_LB_LEAST_REQUEST, UPS_LB_LEAST_REQUEST, UPS_LB_RANDOM,
        UPS_LB_P2C_EWMA,    UPS_LB_HASH,          UPS_LB_HASH,
    };
    assert_int_equal(ups_conf(s)->groups.n, pt_countof(want));
    for (size_t i = 0; i < pt_countof(want); i++) {
        assert_int_equal(group_at(s, i)->lb, want[i]);
        assert_true(group_at(s, i)->lb_set);
    }
    pt_snapshot_unref(s);
}

static void test_lb_settings(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(UPS1("hash $http_x_user;\n  hash_balance_factor 150;\n"
                                    "  slow_start 1m;"));
    const ups_group_t *g = only_group(s);
    assert_int_equal(g->lb, UPS_LB_HASH);
    assert_int_equal(g->hash_balance_pct, 150);
    assert_int_equal(g->slow_start_ms, 60000);
    pt_snapshot_unref(s);

    s = LOAD_OK(UPS1("hash_balance_factor 100;\n  slow_start 0;"));
    assert_int_equal(only_group(s)->hash_balance_pct, 100);
    assert_int_equal(only_group(s)->slow_start_ms, 0);
    pt_snapshot_unref(s);
    s = LOAD_OK(UPS1("hash_balance_factor 0;\n  slow_start 1h;"));
    assert_int_equal(only_group(s)->hash_balance_pct, 0);
    assert_int_equal(only_group(s)->slow_start_ms, 3600000);
    pt_snapshot_unref(s);
    s = LOAD_OK(UPS1("hash_balance_factor 10000;"));
    assert_int_equal(only_group(s)->hash_balance_pct, 10000);
    pt_snapshot_unref(s);
}

static void test_limits(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(UPS1("max_connections 100;\n  max_requests 200;\n"
                                    "  max_pending 0;\n  pending_timeout 250ms;"));
    const ups_group_t *g = only_group(s);
    assert_int_equal(g->max_connections, 100);
    assert_int_equal(g->max_requests, 200);
    assert_int_equal(g->max_pending, 0);
    assert_int_equal(g->pending_timeout_ms, 250);
    pt_snapshot_unref(s);

    s = LOAD_OK(UPS1("max_connections 10000000;\n  max_requests 0;\n"
                     "  max_pending 10000000;\n  pending_timeout 1h;"));
    g = only_group(s);
    assert_int_equal(g->max_connections, 10000000);
    assert_int_equal(g->max_requests, 0);
    assert_int_equal(g->max_pending, 10000000);
    assert_int_equal(g->pending_timeout_ms, 3600000);
    pt_snapshot_unref(s);
}

static void test_retry_budget(void **state)
{
    (void)state;
    static const struct {
        const char *conf;
        int pct, min;
    } cases[] = {
        {UPS1("retry_budget 50%;"), 50, 3},
        {UPS1("retry_budget 35;"), 35, 3},
        {UPS1("retry_budget 0% min_concurrency=0;"), 0, 0},
        {UPS1("retry_budget 100% min_concurrency=100000;"), 100, 100000},
        {UPS1("retry_budget 10% min_concurrency=1;"), 10, 1},
        /* off: no budget at all (pct < 0); min_concurrency unused. */
        {UPS1("retry_budget off;"), -1, 3},
        /* The last one wins. */
        {UPS1("retry_budget off;\n  retry_budget 5%;"), 5, 3},
    };
    for (size_t i = 0; i < pt_countof(cases); i++) {
        pt_snapshot_t *s = LOAD_OK(cases[i].conf);
        const ups_group_t *g = only_group(s);
        assert_int_equal(g->retry_budget_pct, cases[i].pct);
        assert_int_equal(g->retry_min_concurrency, cases[i].min);
        pt_snapshot_unref(s);
    }
}

static void test_health_check(void **state)
{
    (void)state;
    /* Without parameters: an HTTP check with the defaults. */
    pt_snapshot_t *s = LOAD_OK(UPS1("health_check;"));
    assert_hc(&only_group(s)->hc, hc_defaults(UPS_HC_HTTP));
    pt_snapshot_unref(s);

    s = LOAD_OK(UPS1("health_check type=http interval=10s timeout=10s rise=1 fall=100 "
                     "port=8081 method=HEAD uri=/healthz?full=1 host=app.internal "
                     "status=204 \"body=all good\";"));
    assert_hc(&only_group(s)->hc,
              (ups_hc_conf_t){.type = UPS_HC_HTTP, .interval_ms = 10000, .timeout_ms = 10000,
                              .rise = 1, .fall = 100, .port = 8081, .method = "HEAD",
                              .uri = "/healthz?full=1", .host = "app.internal", .status_lo = 204,
                              .status_hi = 204, .body = "all good"});
    pt_snapshot_unref(s);

    s = LOAD_OK(UPS1("health_check type=tcp interval=100ms timeout=10ms port=65535 "
                     "status=100-599;"));
    ups_hc_conf_t tcp = hc_defaults(UPS_HC_TCP);
    tcp.interval_ms = 100;
    tcp.timeout_ms = 10;
    tcp.port = 65535;
    tcp.status_lo = 100;
    tcp.status_hi = 599;
    assert_hc(&only_group(s)->hc, tcp);
    pt_snapshot_unref(s);

    s = LOAD_OK(UPS1("health_check status=200-299;"));
    assert_int_equal(only_group(s)->hc.status_lo, 200);
    assert_int_equal(only_group(s)->hc.status_hi, 299);
    pt_snapshot_unref(s);
}

/*
 * Regression (fixed): an interval shorter than the default timeout (2 s)
 * was refused ("timeout must not exceed its interval") though no timeout
 * was written. An unset timeout now shrinks to the interval.
 */
static void test_regress_health_check_short_interval(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(UPS1("health_check interval=1s;"));
    assert_int_equal(only_group(s)->hc.interval_ms, 1000);
    assert_int_equal(only_group(s)->hc.timeout_ms, 1000);
    pt_snapshot_unref(s);
    s = LOAD_OK(UPS1("health_check interval=3s;"));
    assert_int_equal(only_group(s)->hc.timeout_ms, 2000);
    pt_snapshot_unref(s);
}

/*
 * Regression (fixed): a single status code was read with sscanf and
 * anything after it ignored: "200x", "200-" and "200-+" loaded as 200.
 * Covered by test_err_health_check_status; this checks the valid forms.
 */
static void test_regress_health_check_status(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        int lo, hi;
    } ok[] = {{"204", 204, 204}, {"100", 100, 100}, {"599", 599, 599}, {"200-200", 200, 200}};
    for (size_t i = 0; i < pt_countof(ok); i++) {
        char conf[256];
        snprintf(conf, sizeof(conf), UPS1("health_check status=%s;"), ok[i].v);
        pt_snapshot_t *s = LOAD_OK(conf);
        assert_int_equal(only_group(s)->hc.status_lo, ok[i].lo);
        assert_int_equal(only_group(s)->hc.status_hi, ok[i].hi);
        pt_snapshot_unref(s);
    }
}

static void test_outlier_detection(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(UPS1("outlier_detection off;"));
    assert_false(only_group(s)->outlier.enabled);
    pt_snapshot_unref(s);

    s = LOAD_OK(UPS1("outlier_detection consecutive_failures=0 failure_ratio=25% "
                     "min_requests=100 window=30s ejection_time=5s max_ejection_time=1m "
                     "max_ejected=100%;"));
    assert_outlier(&only_group(s)->outlier,
                   (ups_outlier_conf_t){.enabled = true, .consecutive_failures = 0,
                                        .failure_ratio_pct = 25, .min_requests = 100,
                                        .window_ms = 30000, .base_ejection_ms = 5000,
                                        .max_ejection_ms = 60000, .max_ejected_pct = 100});
    pt_snapshot_unref(s);

    /* Unset parameters keep their defaults; "off" then on again. */
    s = LOAD_OK(UPS1("outlier_detection off;\n  outlier_detection failure_ratio=50;"));
    ups_outlier_conf_t ratio = outlier_defaults();
    ratio.failure_ratio_pct = 50;
    assert_outlier(&only_group(s)->outlier, ratio);
    pt_snapshot_unref(s);

    /* Equal bounds are fine. */
    s = LOAD_OK(UPS1("outlier_detection ejection_time=10s max_ejection_time=10s;"));
    assert_int_equal(only_group(s)->outlier.max_ejection_ms, 10000);
    pt_snapshot_unref(s);
}

/*
 * Regression (fixed): ejection_time above the default max_ejection_time
 * (300 s) was refused though no max was written. An unset max now rises
 * to ejection_time (as in Envoy).
 */
static void test_regress_outlier_long_ejection(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(UPS1("outlier_detection ejection_time=10m;"));
    assert_int_equal(only_group(s)->outlier.base_ejection_ms, 600000);
    assert_int_equal(only_group(s)->outlier.max_ejection_ms, 600000);
    pt_snapshot_unref(s);
}

static void test_resolver(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(HTTP("resolver 127.0.0.1 [::1]:5353 10.0.0.2:53 valid=30s;\n"
                                    "resolver_timeout 250ms;\n"
                                    "upstream u {\n  server 127.0.0.1:1;\n}\n"
                                    "upstream v {\n  server localhost:1 resolve;\n}\n"));
    const ups_conf_t *uc = ups_conf(s);
    assert_int_equal(uc->nresolvers, 3);
    char buf[64];
    static const char *const want[] = {"127.0.0.1:53", "[::1]:5353", "10.0.0.2:53"};
    for (size_t i = 0; i < pt_countof(want); i++) {
        assert_true(pt_addr_format(&uc->resolver[i], buf, sizeof(buf)) > 0);
        assert_string_equal(buf, want[i]);
    }
    assert_int_equal(uc->resolver_valid_ms, 30000);
    assert_int_equal(uc->resolver_timeout_ms, 250);
    /* valid= reaches every group. */
    assert_int_equal(group_at(s, 0)->resolve_valid_ms, 30000);
    assert_int_equal(group_at(s, 1)->resolve_valid_ms, 30000);
    pt_snapshot_unref(s);

    /* Four addresses at most; a later resolver line replaces the list. */
    s = LOAD_OK(HTTP("resolver 10.0.0.9;\n"
                     "resolver 1.1.1.1 2.2.2.2 3.3.3.3 4.4.4.4 valid=1s;\n"
                     "resolver_timeout 1m;\n"));
    uc = ups_conf(s);
    assert_int_equal(uc->nresolvers, 4);
    assert_true(pt_addr_format(&uc->resolver[3], buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "4.4.4.4:53");
    assert_int_equal(uc->resolver_valid_ms, 1000);
    assert_int_equal(uc->resolver_timeout_ms, 60000);
    pt_snapshot_unref(s);
}

static void test_state_file(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(HTTP("upstream_state_file ups.json;\n"));
    char want[256];
    snprintf(want, sizeof(want), "%s/ups.json", tmpdir);
    assert_string_equal(ups_conf(s)->state_file, want);
    pt_snapshot_unref(s);
    s = LOAD_OK(HTTP("upstream_state_file /var/lib/portico/ups.json;\n"));
    assert_string_equal(ups_conf(s)->state_file, "/var/lib/portico/ups.json");
    pt_snapshot_unref(s);
    s = LOAD_OK(HTTP("upstream_state_file /x.json;\nupstream_state_file off;\n"));
    assert_null(ups_conf(s)->state_file);
    pt_snapshot_unref(s);
}

static void test_next_upstream(void **state)
{
    (void)state;
    /* Defaults: error timeout, 3 tries, no overall or per-try limit. */
    pt_snapshot_t *s = LOAD_OK(LOC("proxy_pass http://127.0.0.1:1;\n"));
    const pt_http_settings_t *d = &loc_at(first_vhost(s), 0)->s;
    assert_int_equal(d->next_upstream, PT_NEXT_ERROR | PT_NEXT_TIMEOUT);
    assert_int_equal(d->next_upstream_tries, 3);
    assert_int_equal(d->next_upstream_timeout, 0);
    assert_int_equal(d->proxy_try_timeout, 0);
    assert_int_equal(s->http.next_upstream, PT_NEXT_ERROR | PT_NEXT_TIMEOUT);
    pt_snapshot_unref(s);

    s = LOAD_OK(LOC("proxy_pass http://127.0.0.1:1;\n"
                    "proxy_next_upstream error timeout http_500 http_502 http_503 http_504 "
                    "http_429 non_idempotent;\n"
                    "proxy_next_upstream_tries 0;\n"
                    "proxy_next_upstream_timeout 10s;\n"
                    "proxy_try_timeout 1500ms;\n"));
    const pt_http_settings_t *l = &loc_at(first_vhost(s), 0)->s;
    assert_int_equal(l->next_upstream, PT_NEXT_ERROR | PT_NEXT_TIMEOUT | PT_NEXT_500 |
                                           PT_NEXT_502 | PT_NEXT_503 | PT_NEXT_504 |
                                           PT_NEXT_429 | PT_NEXT_NON_IDEMPOTENT);
    assert_int_equal(l->next_upstream_tries, 0);
    assert_int_equal(l->next_upstream_timeout, 10000);
    assert_int_equal(l->proxy_try_timeout, 1500);
    pt_snapshot_unref(s);

    /* One word replaces the default set; off clears it. */
    static const struct {
        const char *words;
        unsigned mask;
    } cases[] = {
        {"off", 0},
        {"http_503", PT_NEXT_503},
        {"timeout", PT_NEXT_TIMEOUT},
        {"error non_idempotent", PT_NEXT_ERROR | PT_NEXT_NON_IDEMPOTENT},
        {"http_429 http_429", PT_NEXT_429},
        {"http_500 http_502 http_504", PT_NEXT_500 | PT_NEXT_502 | PT_NEXT_504},
    };
    for (size_t i = 0; i < pt_countof(cases); i++) {
        char conf[512];
        snprintf(conf, sizeof(conf),
                 LOC("proxy_pass http://127.0.0.1:1;\nproxy_next_upstream %s;\n"), cases[i].words);
        s = LOAD_OK(conf);
        assert_int_equal(loc_at(first_vhost(s), 0)->s.next_upstream, cases[i].mask);
        pt_snapshot_unref(s);
    }

    s = LOAD_OK(LOC("proxy_pass http://127.0.0.1:1;\n"
                    "proxy_next_upstream_tries 100;\nproxy_next_upstream_timeout 0;\n"
                    "proxy_try_timeout 1d;\n"));
    l = &loc_at(first_vhost(s), 0)->s;
    assert_int_equal(l->next_upstream_tries, 100);
    assert_int_equal(l->next_upstream_timeout, 0);
    assert_int_equal(l->proxy_try_timeout, 86400000);
    pt_snapshot_unref(s);
}

static void test_next_upstream_inherited(void **state)
{
    (void)state;
    /* http -> server -> location, each level overriding what it sets. */
    pt_snapshot_t *s = LOAD_OK("http {\n"
                               "  proxy_next_upstream error http_502;\n"
                               "  proxy_next_upstream_tries 5;\n"
                               "  server {\n"
                               "    listen 127.0.0.1:8080;\n"
                               "    proxy_next_upstream_timeout 20s;\n"
                               "    proxy_try_timeout 2s;\n"
                               "    location /a {\n"
                               "      proxy_next_upstream off;\n"
                               "      proxy_pass http://127.0.0.1:1;\n"
                               "    }\n"
                               "    location /b {\n"
                               "      proxy_next_upstream_tries 1;\n"
                               "      proxy_try_timeout 500ms;\n"
                               "      proxy_pass http://127.0.0.1:1;\n"
                               "    }\n"
                               "  }\n"
                               "}\n");
    assert_int_equal(s->http.next_upstream, PT_NEXT_ERROR | PT_NEXT_502);
    assert_int_equal(s->http.next_upstream_tries, 5);
    assert_int_equal(s->http.next_upstream_timeout, 0);
    pt_vhost_t *vh = first_vhost(s);
    assert_int_equal(vh->s.next_upstream, PT_NEXT_ERROR | PT_NEXT_502);
    assert_int_equal(vh->s.next_upstream_timeout, 20000);
    assert_int_equal(vh->s.proxy_try_timeout, 2000);
    const pt_http_settings_t *a = &loc_at(vh, 0)->s, *b = &loc_at(vh, 1)->s;
    assert_int_equal(a->next_upstream, 0);
    assert_int_equal(a->next_upstream_tries, 5);
    assert_int_equal(a->next_upstream_timeout, 20000);
    assert_int_equal(a->proxy_try_timeout, 2000);
    assert_int_equal(b->next_upstream, PT_NEXT_ERROR | PT_NEXT_502);
    assert_int_equal(b->next_upstream_tries, 1);
    assert_int_equal(b->next_upstream_timeout, 20000);
    assert_int_equal(b->proxy_try_timeout, 500);
    pt_snapshot_unref(s);
}

/*
 * Regression (fixed, src/proxy/conf.c): `proxy_try_timeout 0;` means "off"
 * (the default) but was refused: the setter shared the 1ms..7d range of
 * the other proxy timeouts.
 */
static void test_regress_proxy_try_timeout_zero(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(HTTP("proxy_try_timeout 5s;\n"
                                    "server {\n"
                                    "  listen 127.0.0.1:8080;\n"
                                    "  location / {\n"
                                    "    proxy_try_timeout 0;\n"
                                    "    proxy_pass http://127.0.0.1:1;\n"
                                    "  }\n"
                                    "}\n"));
    assert_int_equal(s->http.proxy_try_timeout, 5000);
    assert_int_equal(loc_at(first_vhost(s), 0)->s.proxy_try_timeout, 0);
    pt_snapshot_unref(s);
}

static void test_admin_token(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(HTTP(""));
    assert_null(s->main.admin_token);
    pt_snapshot_unref(s);
    /* 16 characters is enough; any printable ASCII but space. */
    s = LOAD_OK("admin_token 0123456789abcdef;\nhttp {\n}\n");
    assert_string_equal(s->main.admin_token, "0123456789abcdef");
    pt_snapshot_unref(s);
    s = LOAD_OK("admin_token \"!#$%&'()*+,-./~{}|\";\nhttp {\n}\n");
    assert_string_equal(s->main.admin_token, "!#$%&'()*+,-./~{}|");
    pt_snapshot_unref(s);
    /* The last one wins. */
    s = LOAD_OK("admin_token aaaaaaaaaaaaaaaa;\n"
                "admin_token bbbbbbbbbbbbbbbbbbbbbbbb;\n"
                "http {\n}\n");
    assert_string_equal(s->main.admin_token, "bbbbbbbbbbbbbbbbbbbbbbbb");
    pt_snapshot_unref(s);
}

/* ------------------------------------------------------------------ */
/* Hash keys                                                           */
/* ------------------------------------------------------------------ */

/* A request with headers, enough for pt_tpl_expand(). */
typedef struct fake_req {
    pt_request_t r;
    pt_http_hdr_t h[8];
} fake_req_t;

static void fake_init(fake_req_t *f, const char *path, const char *host)
{
    memset(f, 0, sizeof(*f));
    f->r.pool = pt_pool_create(4096);
    assert_non_null(f->r.pool);
    f->r.h.headers = f->h;
    f->r.h.path = path;
    f->r.h.path_len = strlen(path);
    f->r.h.host = host;
    f->r.h.host_len = host ? strlen(host) : 0;
    snprintf(f->r.client_ip, sizeof(f->r.client_ip), "192.0.2.7");
}

static void fake_header(fake_req_t *f, const char *name, const char *value)
{
    assert_true(f->r.h.nheaders < pt_countof(f->h));
    f->h[f->r.h.nheaders++] = (pt_http_hdr_t){name, strlen(name), value, strlen(value)};
}

/* Expands g's hash key for f and compares it with want. */
static void assert_key(const ups_group_t *g, fake_req_t *f, const char *want)
{
    size_t len = 0;
    char *v = pt_tpl_expand(&f->r, &g->hash_key, &len);
    assert_non_null(v);
    assert_int_equal(len, strlen(want));
    assert_string_equal(v, want);
}

static void test_hash_keys(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(HTTP("upstream a {\n  server 127.0.0.1:1;\n  hash $remote_addr;\n}\n"
                                    "upstream b {\n  server 127.0.0.1:1;\n"
                                    "  hash $http_x_user consistent;\n}\n"
                                    "upstream c {\n  server 127.0.0.1:1;\n"
                                    "  hash $cookie_session;\n}\n"
                                    "upstream d {\n  server 127.0.0.1:1;\n  hash $uri;\n}\n"
                                    "upstream e {\n  server 127.0.0.1:1;\n  hash $request_uri;\n}\n"
                                    "upstream f {\n  server 127.0.0.1:1;\n"
                                    "  hash \"$host$uri\";\n}\n"));
    const ups_group_t *a = group_at(s, 0), *b = group_at(s, 1), *c = group_at(s, 2),
                      *d = group_at(s, 3), *e = group_at(s, 4), *f = group_at(s, 5);
    assert_int_equal(a->hash_key.nparts, 1);
    assert_int_equal(a->hash_key.parts[0].kind, PT_VAR_REMOTE_ADDR);
    assert_int_equal(b->hash_key.nparts, 1);
    assert_int_equal(b->hash_key.parts[0].kind, PT_VAR_HTTP_HEADER);
    assert_int_equal(b->hash_key.parts[0].len, 6);
    assert_memory_equal(b->hash_key.parts[0].s, "x_user", 6);
    assert_int_equal(c->hash_key.nparts, 1);
    assert_int_equal(c->hash_key.parts[0].kind, PT_VAR_COOKIE);
    assert_int_equal(c->hash_key.parts[0].len, 7);
    assert_memory_equal(c->hash_key.parts[0].s, "session", 7);
    assert_int_equal(d->hash_key.parts[0].kind, PT_VAR_URI);
    assert_int_equal(e->hash_key.parts[0].kind, PT_VAR_REQUEST_URI);
    assert_int_equal(f->hash_key.nparts, 2);
    assert_int_equal(f->hash_key.parts[0].kind, PT_VAR_HOST);
    assert_int_equal(f->hash_key.parts[1].kind, PT_VAR_URI);

    fake_req_t fr;
    fake_init(&fr, "/p/q?x=1", "example.test");
    fake_header(&fr, "X-User", "alice");
    fake_header(&fr, "Cookie", "theme=dark; session=s3cr3t; lang=en");
    assert_key(a, &fr, "192.0.2.7");
    assert_key(b, &fr, "alice");
    assert_key(c, &fr, "s3cr3t");
    assert_key(d, &fr, "/p/q");
    assert_key(e, &fr, "/p/q?x=1");
    assert_key(f, &fr, "example.test/p/q");
    pt_pool_destroy(fr.r.pool);
    pt_snapshot_unref(s);
}

static void test_cookie_variable(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(UPS1("hash \"k=$cookie_session;\";"));
    const ups_group_t *g = only_group(s);
    static const struct {
        const char *cookies[3]; /* Cookie header values, NULL-terminated */
        const char *want;
    } cases[] = {
        {{"session=abc", NULL}, "k=abc;"},
        {{"a=1; session=abc; b=2", NULL}, "k=abc;"},
        {{"a=1;session=abc;b=2", NULL}, "k=abc;"},
        /* Trailing blanks are trimmed, '=' in a value kept. */
        {{"session=abc  ; b=2", NULL}, "k=abc;"},
        {{"session=a=b==", NULL}, "k=a=b==;"},
        /* Only an exact, case-sensitive name matches. */
        {{"xsession=1; session_id=2; Session=3", NULL}, "k=;"},
        {{"xsession=1; session=2", NULL}, "k=2;"},
        /* A pair without '=' does not hide the next one. */
        {{"flag; session=on", NULL}, "k=on;"},
        /* The first header that has it, and the first pair in it. */
        {{"a=1", "session=two; session=three", NULL}, "k=two;"},
        {{"session=one", "session=two", NULL}, "k=one;"},
        {{"session=", NULL}, "k=;"},
        {{"", NULL}, "k=;"},
        {{NULL}, "k=;"},
    };
    for (size_t i = 0; i < pt_countof(cases); i++) {
        fake_req_t fr;
        fake_init(&fr, "/", NULL);
        fake_header(&fr, "Accept", "session=no");
        for (size_t k = 0; cases[i].cookies[k]; k++)
            fake_header(&fr, "cookie", cases[i].cookies[k]);
        assert_key(g, &fr, cases[i].want);
        pt_pool_destroy(fr.r.pool);
    }
    pt_snapshot_unref(s);
}

/*
 * Regression (fixed): when "host:port" is not a numeric address,
 * add_servers() hands the port text to getaddrinfo(AI_NUMERICSERV), which
 * accepts 0, an empty port and values over 65535 (taken modulo 65536). A
 * numeric address with such a port (127.0.0.1:0) takes the same path.
 */
static void test_regress_server_port_range(void **state)
{
    (void)state;
    static const char *const bad[] = {
        UPS("  server localhost:0;\n"),
        UPS("  server localhost:99999;\n"),
        UPS("  server localhost:;\n"),
        UPS("  server 127.0.0.1:0;\n"),
        UPS("  server 127.0.0.1:70000;\n"),
        UPS("  server localhost:0 resolve;\n"),
        LOC("proxy_pass http://localhost:0;\n"),
    };
    size_t loaded = 0;
    for (size_t i = 0; i < pt_countof(bad); i++) {
        pt_conf_err_t err = {{0}};
        pt_snapshot_t *s = load_text(bad[i], &err);
        if (s) {
            ups_group_t *g = group_at(s, 0);
            print_error("case %zu loaded: first server %s\n", i, g->servers[0].spec);
            pt_snapshot_unref(s);
            loaded++;
        }
    }
    assert_int_equal(loaded, 0);
}

/*
 * Regression (fixed): "root" after "proxy_pass" in a location is
 * refused, the same two directives in the other order are accepted.
 */
static void test_regress_root_after_proxy_pass(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(LOC("root /srv;\nproxy_pass http://127.0.0.1:1;\n"));
    pt_snapshot_unref(s);
    s = LOAD_OK(LOC("proxy_pass http://127.0.0.1:1;\nroot /srv;\n"));
    pt_snapshot_unref(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_upstream_block),
        cmocka_unit_test(test_err_backup_only),
        cmocka_unit_test(test_err_server_line),
        cmocka_unit_test(test_err_host_not_found),
        cmocka_unit_test(test_err_keepalive),
        cmocka_unit_test(test_err_proxy_pass),
        cmocka_unit_test(test_err_undefined_upstream),
        cmocka_unit_test(test_err_lb_method),
        cmocka_unit_test(test_err_hash),
        cmocka_unit_test(test_err_hash_balance_factor),
        cmocka_unit_test(test_err_slow_start),
        cmocka_unit_test(test_err_limits),
        cmocka_unit_test(test_err_retry_budget),
        cmocka_unit_test(test_err_health_check),
        cmocka_unit_test(test_err_health_check_status),
        cmocka_unit_test(test_err_health_check_timeout),
        cmocka_unit_test(test_err_outlier_detection),
        cmocka_unit_test(test_err_resolver),
        cmocka_unit_test(test_err_next_upstream),
        cmocka_unit_test(test_err_admin_token),
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_group_after_location),
        cmocka_unit_test(test_localhost_resolves),
        cmocka_unit_test(test_server_params),
        cmocka_unit_test(test_group_defaults),
        cmocka_unit_test(test_lb_methods),
        cmocka_unit_test(test_lb_settings),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_retry_budget),
        cmocka_unit_test(test_health_check),
        cmocka_unit_test(test_outlier_detection),
        cmocka_unit_test(test_resolver),
        cmocka_unit_test(test_state_file),
        cmocka_unit_test(test_next_upstream),
        cmocka_unit_test(test_next_upstream_inherited),
        cmocka_unit_test(test_admin_token),
        cmocka_unit_test(test_hash_keys),
        cmocka_unit_test(test_cookie_variable),
        cmocka_unit_test(test_regress_server_port_range),
        cmocka_unit_test(test_regress_root_after_proxy_pass),
        cmocka_unit_test(test_regress_bare_ipv6_server),
        cmocka_unit_test(test_regress_wildcard_server),
        cmocka_unit_test(test_regress_many_servers_memory),
        cmocka_unit_test(test_regress_health_check_short_interval),
        cmocka_unit_test(test_regress_health_check_status),
        cmocka_unit_test(test_regress_outlier_long_ejection),
        cmocka_unit_test(test_regress_proxy_try_timeout_zero),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
