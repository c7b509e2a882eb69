/*
 * Unit tests: the proxy's configuration (src/proxy/conf.c, tpl.c) and
 * routing (src/proxy/route.c).
 *
 * Configs are written to a mkdtemp directory and loaded with
 * pt_snapshot_load(), as the runtime does. Error messages are compared
 * exactly, "file:line:col: message" included, because that is what users
 * read; a few tests check the caret line too.
 */
#include <errno.h>
#include <ftw.h>
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
#include "upstream/upstream.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

#define CONF_FIXTURE_TAG "proxy_conf"
#include "conf_fixture.h"

static const pt_listen_conf_t *listen_at(const pt_snapshot_t *s, const char *addr)
{
    pt_addr_t a;
    assert_int_equal(pt_addr_parse(addr, strlen(addr), 80, &a), 0);
    const pt_listen_conf_t *lc = pt_listen_lookup(s, &a);
    assert_non_null(lc);
    return lc;
}

static pt_vhost_t *vhost_at(const pt_listen_conf_t *lc, size_t i)
{
    assert_true(i < lc->vhosts.n);
    return *pt_array_at(&lc->vhosts, pt_vhost_t *, i);
}

static pt_location_t *loc_at(const pt_vhost_t *vh, size_t i)
{
    assert_true(i < vh->locations.n);
    return *pt_array_at(&vh->locations, pt_location_t *, i);
}

static const pt_header_op_t *hop_at(const pt_array_t *a, size_t i)
{
    assert_true(i < a->n);
    return pt_array_at(a, pt_header_op_t, i);
}

/* ------------------------------------------------------------------ */
/* Errors: main context                                                */
/* ------------------------------------------------------------------ */

static void test_err_main_syntax(void **state)
{
    (void)state;
    EXPECT_ERR("foo bar;\n", "1:1: unknown directive \"foo\"");
    EXPECT_ERR("http {\n}\n  foo;\n", "3:3: unknown directive \"foo\"");
    EXPECT_ERR("server {\n}\n", "1:1: \"server\" directive is not allowed here");
    EXPECT_ERR("listen 80;\n", "1:1: \"listen\" directive is not allowed here");
    EXPECT_ERR("worker_connections 10;\n",
               "1:1: \"worker_connections\" directive is not allowed here");
    EXPECT_ERR("workers;\n", "1:1: invalid number of arguments in \"workers\" directive");
    EXPECT_ERR("workers 1 2;\n", "1:1: invalid number of arguments in \"workers\" directive");
    EXPECT_ERR("workers {\n}\n", "1:1: directive \"workers\" is not terminated by \";\"");
    EXPECT_ERR("http;\n", "1:1: directive \"http\" has no opening \"{\"");
    EXPECT_ERR("http x {\n}\n", "1:1: invalid number of arguments in \"http\" directive");
    EXPECT_ERR("events;\n", "1:1: directive \"events\" has no opening \"{\"");
    EXPECT_ERR("pid;\n", "1:1: invalid number of arguments in \"pid\" directive");
    EXPECT_ERR("user a b c;\n", "1:1: invalid number of arguments in \"user\" directive");
    EXPECT_ERR("error_log a b c;\n", "1:1: invalid number of arguments in \"error_log\" directive");
}

static void test_err_main_values(void **state)
{
    (void)state;
    EXPECT_ERR("workers 0;\n", "1:9: value \"0\" in \"workers\" directive is out of range [1, 256]");
    EXPECT_ERR("workers 257;\n",
               "1:9: value \"257\" in \"workers\" directive is out of range [1, 256]");
    EXPECT_ERR("workers -1;\n",
               "1:9: value \"-1\" in \"workers\" directive is out of range [1, 256]");
    EXPECT_ERR("workers many;\n",
               "1:9: invalid value \"many\" in \"workers\" directive, expected an integer");
    EXPECT_ERR("events {\n  worker_connections 0;\n}\n",
               "2:22: value \"0\" in \"worker_connections\" directive is out of range [1, 1000000]");
    EXPECT_ERR("events {\n  worker_connections 1000001;\n}\n",
               "2:22: value \"1000001\" in \"worker_connections\" directive is out of range "
               "[1, 1000000]");
    EXPECT_ERR("user nosuchuser_portico;\n", "1:6: unknown user \"nosuchuser_portico\"");
    EXPECT_ERR("user nobody nosuchgroup_portico;\n",
               "1:13: unknown group \"nosuchgroup_portico\"");
    EXPECT_ERR("error_log stderr loud;\n",
               "1:18: invalid log level \"loud\", expected debug|info|notice|warn|error|crit");
    EXPECT_ERR("error_log stderr WARN;\n",
               "1:18: invalid log level \"WARN\", expected debug|info|notice|warn|error|crit");
    EXPECT_ERR("admin_listen nowhere;\n", "1:14: invalid address \"nowhere\"");
    EXPECT_ERR("admin_listen 127.0.0.1:0;\n", "1:14: invalid address \"127.0.0.1:0\"");
    EXPECT_ERR("worker_shutdown_timeout 2d;\n",
               "1:25: value \"2d\" in \"worker_shutdown_timeout\" directive is out of range [0, 1d]");
    EXPECT_ERR("worker_shutdown_timeout 5x;\n",
               "1:25: invalid value \"5x\" in \"worker_shutdown_timeout\" directive, expected a "
               "time like 250ms, 30s, 5m, 1h, 1d");
}

static void test_err_http_block(void **state)
{
    (void)state;
    EXPECT_ERR("", "1:1: no \"http\" block: nothing to serve");
    EXPECT_ERR("workers 2;\nevents {\n}\n", "1:1: no \"http\" block: nothing to serve");
    EXPECT_ERR("http {\n}\nhttp {\n}\n", "3:1: \"http\" directive is duplicate");

    /* A file that cannot be read has no position. */
    pt_conf_err_t err = {{0}};
    char path[200];
    snprintf(path, sizeof(path), "%s/missing.conf", tmpdir);
    assert_null(pt_snapshot_load(path, 1, &err));
    char want[300];
    snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", path);
    assert_string_equal(err.msg, want);
}

/* ------------------------------------------------------------------ */
/* Errors: http / server / location settings                           */
/* ------------------------------------------------------------------ */

static void test_err_wrong_context(void **state)
{
    (void)state;
    EXPECT_ERR(HTTP("listen 80;\n"), "2:1: \"listen\" directive is not allowed here");
    EXPECT_ERR(HTTP("server_name a;\n"), "2:1: \"server_name\" directive is not allowed here");
    EXPECT_ERR(HTTP("location / {\n}\n"), "2:1: \"location\" directive is not allowed here");
    EXPECT_ERR(HTTP("return 200;\n"), "2:1: \"return\" directive is not allowed here");
    EXPECT_ERR(HTTP("match_header X;\n"), "2:1: \"match_header\" directive is not allowed here");
    EXPECT_ERR(HTTP("workers 2;\n"), "2:1: \"workers\" directive is not allowed here");
    EXPECT_ERR(HTTP("http {\n}\n"), "2:1: \"http\" directive is not allowed here");
    EXPECT_ERR(HTTP("server;\n"), "2:1: directive \"server\" has no opening \"{\"");
    EXPECT_ERR(SRV("server {\n}\n"), "4:1: \"server\" directive is not allowed here");
    EXPECT_ERR(SRV("access_log a.log;\n"), "4:1: \"access_log\" directive is not allowed here");
    EXPECT_ERR(SRV("match_header X;\n"), "4:1: \"match_header\" directive is not allowed here");
    EXPECT_ERR(SRV("location / {\nlocation /a {\n}\n}\n"),
               "5:1: \"location\" directive is not allowed here");
    EXPECT_ERR(LOC("client_header_timeout 5s;\n"),
               "5:1: \"client_header_timeout\" directive is not allowed here");
    EXPECT_ERR(LOC("large_client_header_buffers 4 8k;\n"),
               "5:1: \"large_client_header_buffers\" directive is not allowed here");
    EXPECT_ERR(LOC("max_headers 10;\n"), "5:1: \"max_headers\" directive is not allowed here");
    EXPECT_ERR(LOC("set_real_ip_from 10.0.0.0/8;\n"),
               "5:1: \"set_real_ip_from\" directive is not allowed here");
    EXPECT_ERR(LOC("real_ip_header X-Real-IP;\n"),
               "5:1: \"real_ip_header\" directive is not allowed here");
    EXPECT_ERR(LOC("listen 80;\n"), "5:1: \"listen\" directive is not allowed here");
    EXPECT_ERR(LOC("server_name a;\n"), "5:1: \"server_name\" directive is not allowed here");
    EXPECT_ERR(LOC("bogus_directive;\n"), "5:1: unknown directive \"bogus_directive\"");
}

static void test_err_times(void **state)
{
    (void)state;
    EXPECT_ERR(HTTP("client_header_timeout 0;\n"),
               "2:23: value \"0\" in \"client_header_timeout\" directive is out of range [1ms, 7d]");
    EXPECT_ERR(HTTP("client_body_timeout 8d;\n"),
               "2:21: value \"8d\" in \"client_body_timeout\" directive is out of range [1ms, 7d]");
    EXPECT_ERR(HTTP("send_timeout 1y;\n"),
               "2:14: invalid value \"1y\" in \"send_timeout\" directive, expected a time like "
               "250ms, 30s, 5m, 1h, 1d");
    EXPECT_ERR(HTTP("proxy_connect_timeout 5s10m;\n"),
               "2:23: invalid value \"5s10m\" in \"proxy_connect_timeout\" directive, expected a "
               "time like 250ms, 30s, 5m, 1h, 1d");
    EXPECT_ERR(HTTP("proxy_read_timeout -1;\n"),
               "2:20: invalid value \"-1\" in \"proxy_read_timeout\" directive, expected a time "
               "like 250ms, 30s, 5m, 1h, 1d");
    EXPECT_ERR(SRV("proxy_send_timeout 0;\n"),
               "4:20: value \"0\" in \"proxy_send_timeout\" directive is out of range [1ms, 7d]");
    EXPECT_ERR(LOC("keepalive_timeout 2d;\n"),
               "5:19: value \"2d\" in \"keepalive_timeout\" directive is out of range [0, 1d]");
    EXPECT_ERR(HTTP("keepalive_timeout;\n"),
               "2:1: invalid number of arguments in \"keepalive_timeout\" directive");
    EXPECT_ERR(HTTP("keepalive_requests 0;\n"),
               "2:20: value \"0\" in \"keepalive_requests\" directive is out of range "
               "[1, 1000000000]");
}

static void test_err_sizes(void **state)
{
    (void)state;
    EXPECT_ERR(HTTP("client_max_body_size 10x;\n"),
               "2:22: invalid value \"10x\" in \"client_max_body_size\" directive, expected a size "
               "like 512, 16k, 8m, 1g");
    EXPECT_ERR(HTTP("client_max_body_size 99999999999999999999;\n"),
               "2:22: value \"99999999999999999999\" in \"client_max_body_size\" directive is out "
               "of range [0, 9223372036854775807]");
    EXPECT_ERR(HTTP("proxy_buffer_size 1k;\n"),
               "2:19: value \"1k\" in \"proxy_buffer_size\" directive is out of range [4k, 16m]");
    EXPECT_ERR(LOC("proxy_buffer_size 32m;\n"),
               "5:19: value \"32m\" in \"proxy_buffer_size\" directive is out of range [4k, 16m]");
    EXPECT_ERR(HTTP("large_client_header_buffers 4 512k;\n"),
               "2:1: total header buffer size 2097152 is over the limit of 1048576");
    EXPECT_ERR(SRV("large_client_header_buffers 64 1m;\n"),
               "4:1: total header buffer size 67108864 is over the limit of 1048576");
    EXPECT_ERR(HTTP("large_client_header_buffers 0 8k;\n"),
               "2:29: value \"0\" in \"large_client_header_buffers\" directive is out of range "
               "[1, 64]");
    EXPECT_ERR(HTTP("large_client_header_buffers 4 512;\n"),
               "2:31: value \"512\" in \"large_client_header_buffers\" directive is out of range "
               "[1k, 1m]");
    EXPECT_ERR(HTTP("large_client_header_buffers 4;\n"),
               "2:1: invalid number of arguments in \"large_client_header_buffers\" directive");
    EXPECT_ERR(HTTP("max_headers 1001;\n"),
               "2:13: value \"1001\" in \"max_headers\" directive is out of range [1, 1000]");
}

static void test_err_flags(void **state)
{
    (void)state;
    EXPECT_ERR(HTTP("server_tokens maybe;\n"),
               "2:15: invalid value \"maybe\" in \"server_tokens\" directive, expected on|off");
    EXPECT_ERR(LOC("etag yes;\n"),
               "5:6: invalid value \"yes\" in \"etag\" directive, expected on|off");
    EXPECT_ERR(HTTP("real_ip_recursive 1;\n"),
               "2:19: invalid value \"1\" in \"real_ip_recursive\" directive, expected on|off");
}

static void test_err_headers(void **state)
{
    (void)state;
    EXPECT_ERR(HTTP("add_header \"X A\" v;\n"), "2:12: invalid header name \"X A\"");
    EXPECT_ERR(HTTP("add_header \"\" v;\n"), "2:12: invalid header name \"\"");
    EXPECT_ERR(SRV("add_header X(A) v;\n"), "4:12: invalid header name \"X(A)\"");
    EXPECT_ERR(HTTP("add_header X-A v never;\n"), "2:18: invalid parameter \"never\"");
    EXPECT_ERR(HTTP("add_header X-A;\n"),
               "2:1: invalid number of arguments in \"add_header\" directive");
    EXPECT_ERR(HTTP("add_header X-A v always x;\n"),
               "2:1: invalid number of arguments in \"add_header\" directive");
    EXPECT_ERR(HTTP("proxy_set_header X:Y v;\n"), "2:18: invalid header name \"X:Y\"");
    EXPECT_ERR(LOC("proxy_set_header \"X/Y\" v;\n"), "5:18: invalid header name \"X/Y\"");
    EXPECT_ERR(HTTP("proxy_set_header X v always;\n"),
               "2:1: invalid number of arguments in \"proxy_set_header\" directive");
    EXPECT_ERR(HTTP("real_ip_header \"X Real\";\n"), "2:16: invalid header name \"X Real\"");
    EXPECT_ERR(HTTP("request_id_header \"\";\n"), "2:19: invalid header name \"\"");
    EXPECT_ERR(LOC("match_header \"Bad Name\";\nreturn 200;\n"),
               "5:14: invalid header name \"Bad Name\"");
    EXPECT_ERR(LOC("match_header X=Y v;\nreturn 200;\n"), "5:14: invalid header name \"X=Y\"");
    EXPECT_ERR(LOC("match_header X a b;\n"),
               "5:1: invalid number of arguments in \"match_header\" directive");
}

static void test_err_variables(void **state)
{
    (void)state;
    pt_conf_err_t full;
    /* The column points at the '$', inside the quotes. */
    EXPECT_ERR_FULL(HTTP("add_header X-A \"id=$nope\";\n"), "2:20: unknown variable \"$nope\"",
                    &full);
    assert_string_equal(caret_line(&full), "                   ^");
    EXPECT_ERR(HTTP("add_header X-A $;\n"), "2:16: invalid variable name in \"$\"");
    EXPECT_ERR(HTTP("add_header X-A ${host;\n"), "2:16: invalid variable name in \"${host\"");
    EXPECT_ERR(HTTP("add_header X-A ${nope}x;\n"), "2:16: unknown variable \"$nope\"");
    EXPECT_ERR(HTTP("add_header X-A $http_;\n"), "2:16: unknown variable \"$http_\"");
    EXPECT_ERR(HTTP("proxy_set_header Host $hots;\n"), "2:23: unknown variable \"$hots\"");
    EXPECT_ERR(LOC("return 200 \"a$-b\";\n"), "5:14: invalid variable name in \"a$-b\"");
    EXPECT_ERR(LOC("return \"http://x/$nope\";\n"), "5:18: unknown variable \"$nope\"");
}

static void test_err_real_ip_index_types(void **state)
{
    (void)state;
    EXPECT_ERR(HTTP("set_real_ip_from 10.0.0.0/33;\n"),
               "2:18: invalid address or CIDR \"10.0.0.0/33\"");
    EXPECT_ERR(SRV("set_real_ip_from ::1/129;\n"), "4:18: invalid address or CIDR \"::1/129\"");
    EXPECT_ERR(HTTP("set_real_ip_from example.com;\n"),
               "2:18: invalid address or CIDR \"example.com\"");
    EXPECT_ERR(HTTP("set_real_ip_from 10.0.0.0/;\n"),
               "2:18: invalid address or CIDR \"10.0.0.0/\"");
    EXPECT_ERR(HTTP("set_real_ip_from 10.0.0.0/8x;\n"),
               "2:18: invalid address or CIDR \"10.0.0.0/8x\"");
    EXPECT_ERR(HTTP("index index.html sub/x.html;\n"),
               "2:18: index file name \"sub/x.html\" may not contain '/'");
    EXPECT_ERR(HTTP("types {\n  text/html;\n}\n"),
               "3:3: invalid types entry, expected \"type ext ...;\"");
    EXPECT_ERR(HTTP("types {\n  text/html html;\n  text/css {\n  }\n}\n"),
               "4:3: invalid types entry, expected \"type ext ...;\"");
    EXPECT_ERR(HTTP("types text/html;\n"), "2:1: directive \"types\" has no opening \"{\"");
    EXPECT_ERR(HTTP("access_log a.log combined;\n"),
               "2:18: unknown log format \"combined\", only \"json\" is supported");
    EXPECT_ERR(HTTP("access_log;\n"),
               "2:1: invalid number of arguments in \"access_log\" directive");
}

/* ------------------------------------------------------------------ */
/* Errors: listen and server_name                                      */
/* ------------------------------------------------------------------ */

static void test_err_listen(void **state)
{
    (void)state;
    EXPECT_ERR(SRV("listen nowhere;\n"), "4:8: invalid listen address \"nowhere\"");
    EXPECT_ERR(SRV("listen 127.0.0.1:70000;\n"), "4:8: invalid listen address \"127.0.0.1:70000\"");
    EXPECT_ERR(SRV("listen ::1;\n"), "4:8: invalid listen address \"::1\"");
    EXPECT_ERR(SRV("listen 8081 fast;\n"), "4:13: invalid parameter \"fast\"");
    EXPECT_ERR(SRV("listen 8081 backlog=0;\n"), "4:13: invalid backlog \"0\", expected 1..65535");
    EXPECT_ERR(SRV("listen 8081 backlog=65536;\n"),
               "4:13: invalid backlog \"65536\", expected 1..65535");
    EXPECT_ERR(SRV("listen 8081 backlog=;\n"), "4:13: invalid backlog \"\", expected 1..65535");
    EXPECT_ERR(SRV("listen 8081 backlog=12x;\n"), "4:13: invalid backlog \"12x\", expected 1..65535");
    EXPECT_ERR(SRV("listen;\n"), "4:1: invalid number of arguments in \"listen\" directive");
    EXPECT_ERR(SRV("listen 1 a b c d e f;\n"),
               "4:1: invalid number of arguments in \"listen\" directive");
    /* SRV already listens on 127.0.0.1:8080. */
    EXPECT_ERR(SRV("listen 127.0.0.1:8080;\n"),
               "4:8: duplicate listen 127.0.0.1:8080 in this server");
    EXPECT_ERR(HTTP("server {\n  listen 8080;\n  listen *:8080 reuseport;\n}\n"),
               "4:10: duplicate listen *:8080 in this server");
}

static void test_err_listen_shared(void **state)
{
    (void)state;
    EXPECT_ERR(HTTP("server {\n"
                    "  listen 127.0.0.1:8080 default_server;\n"
                    "}\n"
                    "server {\n"
                    "  listen 127.0.0.1:8080 default;\n"
                    "}\n"),
               "6:10: a duplicate default server for 127.0.0.1:8080");
    EXPECT_ERR(HTTP("server {\n"
                    "  listen 127.0.0.1:8080 reuseport;\n"
                    "}\n"
                    "server {\n"
                    "  listen 127.0.0.1:8080 backlog=10;\n"
                    "}\n"),
               "6:10: duplicate listen options for 127.0.0.1:8080 (first set at {F}:3)");
}

static void test_err_server_name(void **state)
{
    (void)state;
    EXPECT_ERR(SRV("server_name a*.example.com;\n"),
               "4:13: invalid server name \"a*.example.com\", only a leading \"*.\" wildcard is "
               "supported");
    EXPECT_ERR(SRV("server_name ok.com *example.com;\n"),
               "4:20: invalid server name \"*example.com\", only a leading \"*.\" wildcard is "
               "supported");
    EXPECT_ERR(SRV("server_name www.example.*;\n"),
               "4:13: invalid server name \"www.example.*\", only a leading \"*.\" wildcard is "
               "supported");
    EXPECT_ERR(SRV("server_name *;\n"),
               "4:13: invalid server name \"*\", only a leading \"*.\" wildcard is supported");
    EXPECT_ERR(SRV("server_name *.*.com;\n"),
               "4:13: invalid server name \"*.*.com\", only a leading \"*.\" wildcard is "
               "supported");
    EXPECT_ERR(SRV("server_name;\n"),
               "4:1: invalid number of arguments in \"server_name\" directive");
}

/* ------------------------------------------------------------------ */
/* Errors: locations and actions                                       */
/* ------------------------------------------------------------------ */

static void test_err_location_args(void **state)
{
    (void)state;
    EXPECT_ERR(SRV("location ~~ /a {\n}\n"), "4:10: invalid location modifier \"~~\"");
    EXPECT_ERR(SRV("location == /a {\n}\n"), "4:10: invalid location modifier \"==\"");
    EXPECT_ERR(SRV("location @named {\n}\n"), "4:10: location path \"@named\" must start with '/'");
    EXPECT_ERR(SRV("location = a {\n}\n"), "4:12: location path \"a\" must start with '/'");
    EXPECT_ERR(SRV("location ^~ \"\" {\n}\n"), "4:13: location path \"\" must start with '/'");
    EXPECT_ERR(SRV("location / /a /b {\n}\n"),
               "4:1: invalid number of arguments in \"location\" directive");
    EXPECT_ERR(SRV("location {\n}\n"), "4:1: invalid number of arguments in \"location\" directive");
    EXPECT_ERR(SRV("location /a;\n"), "4:1: directive \"location\" has no opening \"{\"");
}

static void test_err_location_regex(void **state)
{
    (void)state;
    pt_conf_err_t full;
    /* "^/a)b" starts at column 12; pcre reports the ')' (offset 3). */
    EXPECT_ERR_FULL(SRV("location ~ ^/a)b {\n  return 200;\n}\n"),
                    "4:15: invalid regular expression \"^/a)b\": unmatched closing parenthesis",
                    &full);
    assert_string_equal(caret_line(&full), "              ^");
    /* Quoted: one more column for the quote; the error is at the end (offset 4). */
    EXPECT_ERR(SRV("location ~* \"^/(x\" {\n  return 200;\n}\n"),
               "4:18: invalid regular expression \"^/(x\": missing closing parenthesis");
    EXPECT_ERR(LOC("match_header X-A ^(a;\nreturn 200;\n"),
               "5:21: invalid regular expression \"^(a\": missing closing parenthesis");
    EXPECT_ERR(LOC("match_header X-A \"a[b\";\nreturn 200;\n"),
               "5:22: invalid regular expression \"a[b\": missing terminating ] for character "
               "class");
}

static void test_err_location_dup(void **state)
{
    (void)state;
    EXPECT_ERR(SRV("location /a {\nreturn 200;\n}\nlocation /a {\nreturn 204;\n}\n"),
               "7:1: duplicate location \"/a\" (first at {F}:4)");
    /* "^~ /a" and "/a" are the same prefix (nginx agrees). */
    EXPECT_ERR(SRV("location /a {\nreturn 200;\n}\nlocation ^~ /a {\nreturn 204;\n}\n"),
               "7:1: duplicate location \"/a\" (first at {F}:4)");
    EXPECT_ERR(SRV("location = /a {\nreturn 200;\n}\nlocation = /a {\nreturn 204;\n}\n"),
               "7:1: duplicate location \"/a\" (first at {F}:4)");
    /* Both have header conditions: allowed; both without: not. */
    EXPECT_ERR(SRV("location /a {\nmatch_header X;\nreturn 200;\n}\n"
                   "location /a {\nreturn 201;\n}\n"
                   "location /a {\nreturn 202;\n}\n"),
               "11:1: duplicate location \"/a\" (first at {F}:8)");
}

static void test_err_location_nothing_to_do(void **state)
{
    (void)state;
    EXPECT_ERR(SRV("location /x {\n}\n"),
               "4:1: location \"/x\" has nothing to do: add proxy_pass, return or root");
    EXPECT_ERR(SRV("location ~ \\.php$ {\n  client_max_body_size 1m;\n}\n"),
               "4:1: location \"\\.php$\" has nothing to do: add proxy_pass, return or root");
    EXPECT_ERR(SRV("location = /x {\n  match_header X;\n}\n"),
               "4:1: location \"/x\" has nothing to do: add proxy_pass, return or root");
}

static void test_err_return(void **state)
{
    (void)state;
    EXPECT_ERR(SRV("return 301;\n"), "4:1: redirect status 301 requires a URL");
    EXPECT_ERR(LOC("return 302;\n"), "5:1: redirect status 302 requires a URL");
    EXPECT_ERR(LOC("return 399;\n"), "5:1: redirect status 399 requires a URL");
    EXPECT_ERR(SRV("return 99;\n"),
               "4:8: value \"99\" in \"return\" directive is out of range [200, 599]");
    EXPECT_ERR(LOC("return 600 x;\n"),
               "5:8: value \"600\" in \"return\" directive is out of range [200, 599]");
    EXPECT_ERR(LOC("return 199;\n"),
               "5:8: value \"199\" in \"return\" directive is out of range [200, 599]");
    EXPECT_ERR(LOC("return abc;\n"),
               "5:8: invalid value \"abc\" in \"return\" directive, expected an integer");
    EXPECT_ERR(LOC("return ftp://x;\n"),
               "5:8: invalid value \"ftp://x\" in \"return\" directive, expected an integer");
    EXPECT_ERR(LOC("return 200 a b;\n"),
               "5:1: invalid number of arguments in \"return\" directive");
    EXPECT_ERR(LOC("return;\n"), "5:1: invalid number of arguments in \"return\" directive");
}

static void test_err_duplicate_action(void **state)
{
    (void)state;
    EXPECT_ERR(LOC("return 200;\nreturn 204;\n"), "6:1: duplicate action in this block");
    EXPECT_ERR(SRV("return 200;\nreturn http://x;\n"), "5:1: duplicate action in this block");
    EXPECT_ERR(LOC("proxy_pass http://127.0.0.1:9;\nreturn 200;\n"),
               "6:1: duplicate action in this block");
    EXPECT_ERR(LOC("return 200;\nproxy_pass http://127.0.0.1:9;\n"),
               "6:1: duplicate action in this location");
}

/* ------------------------------------------------------------------ */
/* Successful parses                                                   */
/* ------------------------------------------------------------------ */

static void test_defaults(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK("http {\n  server {\n    root /srv;\n  }\n}\n");
    assert_int_equal(atomic_load(&s->refs), 1);
    assert_int_equal(s->generation, 1);
    assert_string_equal(s->conf_path, conf_file);
    assert_string_equal(s->conf_dir, tmpdir);
    assert_true(s->http_seen);

    const pt_main_conf_t *m = &s->main;
    assert_int_equal(m->workers, 1);
    assert_int_equal(m->worker_connections, 10240);
    assert_null(m->pid_path);
    assert_null(m->user);
    assert_null(m->group);
    assert_string_equal(m->error_log, "stderr");
    assert_int_equal(m->error_log_level, PT_LOG_NOTICE);
    assert_string_equal(m->admin_listen, "127.0.0.1:9901");
    assert_int_equal(m->shutdown_timeout, 30000);
    assert_null(m->access_log);

    const pt_http_settings_t *h = &s->http;
    assert_int_equal(h->client_header_timeout, 60000);
    assert_int_equal(h->client_body_timeout, 60000);
    assert_int_equal(h->keepalive_timeout, 75000);
    assert_int_equal(h->keepalive_requests, 1000);
    assert_int_equal(h->send_timeout, 60000);
    assert_int_equal(h->proxy_connect_timeout, 60000);
    assert_int_equal(h->proxy_read_timeout, 60000);
    assert_int_equal(h->proxy_send_timeout, 60000);
    assert_int_equal(h->client_max_body_size, 1024 * 1024);
    assert_int_equal(h->proxy_buffer_size, 64 * 1024);
    assert_int_equal(h->limits.max_line, 8192);
    assert_int_equal(h->limits.max_head, 32768);
    assert_int_equal(h->limits.max_headers, 100);
    assert_true(h->server_tokens);
    assert_int_equal(h->add_headers.n, 0);
    assert_int_equal(h->proxy_set_headers.n, 0);
    assert_int_equal(h->real_ip_from.n, 0);
    assert_null(h->real_ip_header);
    assert_false(h->real_ip_recursive);
    assert_string_equal(h->request_id_header, "X-Request-ID");
    assert_null(h->static_conf.root);
    assert_int_equal(h->static_conf.nindex, 1);
    assert_string_equal(h->static_conf.index[0], "index.html");
    assert_string_equal(h->static_conf.default_type, "application/octet-stream");
    assert_true(h->static_conf.etag);
    assert_null(h->static_conf.types);

    /* A server without listen listens on *:80 and is its default. */
    assert_int_equal(s->listens.n, 1);
    const pt_listen_conf_t *lc = listen_at(s, "*:80");
    assert_int_equal(pt_addr_port(&lc->addr), 80);
    assert_int_equal(lc->backlog, 511);
    assert_false(lc->reuseport);
    assert_false(lc->proxy_protocol);
    assert_false(lc->default_server_explicit);
    assert_int_equal(lc->vhosts.n, 1);
    pt_vhost_t *vh = vhost_at(lc, 0);
    assert_ptr_equal(lc->default_server, vh);
    assert_int_equal(vh->names.n, 0);
    assert_int_equal(vh->locations.n, 0);
    assert_int_equal(vh->s.keepalive_timeout, 75000);

    /* Implicit "location /" serving the server's root. */
    pt_location_t *rl = vh->root_loc;
    assert_non_null(rl);
    assert_string_equal(rl->path, "/");
    assert_int_equal(rl->path_len, 1);
    assert_int_equal(rl->match, PT_LOC_PREFIX);
    assert_int_equal(rl->action, PT_ACT_STATIC);
    assert_string_equal(rl->s.static_conf.root, "/srv");
    assert_int_equal(rl->line, 2);
    assert_null(s->mod[PT_MOD_UPSTREAM]);
    pt_snapshot_unref(s);
}

static void test_main_values(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK("workers 4;\n"
                               "pid run/portico.pid;\n"
                               "user nobody nogroup;\n"
                               "error_log logs/error.log warn;\n"
                               "admin_listen off;\n"
                               "worker_shutdown_timeout 1m30s;\n"
                               "events {\n  worker_connections 512;\n}\n"
                               "http {\n  access_log /var/log/a.log json;\n}\n");
    const pt_main_conf_t *m = &s->main;
    assert_int_equal(m->workers, 4);
    assert_int_equal(m->worker_connections, 512);
    char want[256];
    snprintf(want, sizeof(want), "%s/run/portico.pid", tmpdir);
    assert_string_equal(m->pid_path, want);
    assert_string_equal(m->user, "nobody");
    assert_string_equal(m->group, "nogroup");
    snprintf(want, sizeof(want), "%s/logs/error.log", tmpdir);
    assert_string_equal(m->error_log, want);
    assert_int_equal(m->error_log_level, PT_LOG_WARN);
    assert_null(m->admin_listen);
    assert_int_equal(m->shutdown_timeout, 90000);
    assert_string_equal(m->access_log, "/var/log/a.log");
    /* An http block without servers is valid: nothing listens. */
    assert_int_equal(s->listens.n, 0);
    pt_snapshot_unref(s);

    s = LOAD_OK("workers auto;\npid off;\nadmin_listen [::1]:9000;\n"
                "http {\n  access_log stderr;\n  access_log off;\n}\n");
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(s->main.workers, ncpu > 0 ? ncpu : 1);
    assert_null(s->main.pid_path);
    assert_string_equal(s->main.admin_listen, "[::1]:9000");
    assert_null(s->main.access_log);
    pt_snapshot_unref(s);

    s = LOAD_OK("error_log stderr debug;\nhttp {\n  access_log logs/access.log;\n}\n");
    assert_string_equal(s->main.error_log, "stderr");
    assert_int_equal(s->main.error_log_level, PT_LOG_DEBUG);
    snprintf(want, sizeof(want), "%s/logs/access.log", tmpdir);
    assert_string_equal(s->main.access_log, want);
    pt_snapshot_unref(s);
}

static void test_http_values(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(HTTP("client_header_timeout 10s;\n"
                                    "client_body_timeout 250ms;\n"
                                    "keepalive_timeout 0;\n"
                                    "keepalive_requests 7;\n"
                                    "send_timeout 1h;\n"
                                    "proxy_connect_timeout 1d;\n"
                                    "proxy_read_timeout 2m5s;\n"
                                    "proxy_send_timeout 3;\n"
                                    "client_max_body_size 0;\n"
                                    "proxy_buffer_size 16k;\n"
                                    "large_client_header_buffers 8 16k;\n"
                                    "max_headers 50;\n"
                                    "server_tokens OFF;\n"
                                    "set_real_ip_from 10.0.0.0/8;\n"
                                    "set_real_ip_from 2001:db8::/32;\n"
                                    "set_real_ip_from 192.168.1.1;\n"
                                    "real_ip_header proxy_protocol;\n"
                                    "real_ip_recursive on;\n"
                                    "request_id_header X-Trace;\n"
                                    "index a.html b.htm;\n"
                                    "default_type text/plain;\n"
                                    "etag off;\n"
                                    "root www/;\n"));
    const pt_http_settings_t *h = &s->http;
    assert_int_equal(h->client_header_timeout, 10000);
    assert_int_equal(h->client_body_timeout, 250);
    assert_int_equal(h->keepalive_timeout, 0);
    assert_int_equal(h->keepalive_requests, 7);
    assert_int_equal(h->send_timeout, 3600000);
    assert_int_equal(h->proxy_connect_timeout, 86400000);
    assert_int_equal(h->proxy_read_timeout, 125000);
    assert_int_equal(h->proxy_send_timeout, 3000);
    assert_int_equal(h->client_max_body_size, 0);
    assert_int_equal(h->proxy_buffer_size, 16384);
    assert_int_equal(h->limits.max_line, 16384);
    assert_int_equal(h->limits.max_head, 8 * 16384);
    assert_int_equal(h->limits.max_headers, 50);
    assert_false(h->server_tokens);
    assert_int_equal(h->real_ip_from.n, 3);
    const pt_cidr_t *c = pt_array_at(&h->real_ip_from, pt_cidr_t, 0);
    assert_int_equal(c->family, AF_INET);
    assert_int_equal(c->bits, 8);
    assert_int_equal(c->addr[0], 10);
    c = pt_array_at(&h->real_ip_from, pt_cidr_t, 1);
    assert_int_equal(c->family, AF_INET6);
    assert_int_equal(c->bits, 32);
    assert_int_equal(c->addr[0], 0x20);
    assert_int_equal(c->addr[1], 0x01);
    assert_int_equal(c->addr[2], 0x0d);
    assert_int_equal(c->addr[3], 0xb8);
    c = pt_array_at(&h->real_ip_from, pt_cidr_t, 2);
    assert_int_equal(c->family, AF_INET);
    assert_int_equal(c->bits, 32);
    assert_string_equal(h->real_ip_header, "proxy_protocol");
    assert_true(h->real_ip_recursive);
    assert_string_equal(h->request_id_header, "X-Trace");
    assert_int_equal(h->static_conf.nindex, 2);
    assert_string_equal(h->static_conf.index[0], "a.html");
    assert_string_equal(h->static_conf.index[1], "b.htm");
    assert_int_equal(h->index_names.n, 2);
    assert_string_equal(h->static_conf.default_type, "text/plain");
    assert_false(h->static_conf.etag);
    /* Relative to the config's directory, trailing slash dropped. */
    char want[256];
    snprintf(want, sizeof(want), "%s/www", tmpdir);
    assert_string_equal(h->static_conf.root, want);
    pt_snapshot_unref(s);

    s = LOAD_OK(HTTP("root /;\nserver {\n  root /srv//;\n}\n"));
    assert_string_equal(s->http.static_conf.root, "/");
    assert_string_equal(vhost_at(listen_at(s, "80"), 0)->s.static_conf.root, "/srv");
    pt_snapshot_unref(s);
}

static void test_inheritance_order(void **state)
{
    (void)state;
    /* Directives after the nested blocks still apply to them (nginx). */
    pt_snapshot_t *s = LOAD_OK("http {\n"
                               "  server {\n"
                               "    listen 127.0.0.1:8080;\n"
                               "    location /a {\n"
                               "      return 200;\n"
                               "    }\n"
                               "    location /b {\n"
                               "      proxy_read_timeout 7s;\n"
                               "      client_max_body_size 5k;\n"
                               "      return 200;\n"
                               "    }\n"
                               "    client_max_body_size 2m;\n"
                               "    keepalive_timeout 9s;\n"
                               "  }\n"
                               "  proxy_read_timeout 5s;\n"
                               "  keepalive_timeout 0;\n"
                               "  large_client_header_buffers 2 4k;\n"
                               "}\n");
    assert_int_equal(s->http.proxy_read_timeout, 5000);
    assert_int_equal(s->http.client_max_body_size, 1024 * 1024);
    assert_int_equal(s->http.keepalive_timeout, 0);

    pt_vhost_t *vh = vhost_at(listen_at(s, "127.0.0.1:8080"), 0);
    assert_int_equal(vh->s.proxy_read_timeout, 5000);
    assert_int_equal(vh->s.client_max_body_size, 2 * 1024 * 1024);
    assert_int_equal(vh->s.keepalive_timeout, 9000);
    assert_int_equal(vh->s.limits.max_line, 4096);
    assert_int_equal(vh->s.limits.max_head, 8192);

    pt_location_t *a = loc_at(vh, 0), *b = loc_at(vh, 1);
    assert_string_equal(a->path, "/a");
    assert_int_equal(a->s.proxy_read_timeout, 5000);
    assert_int_equal(a->s.client_max_body_size, 2 * 1024 * 1024);
    assert_int_equal(a->s.keepalive_timeout, 9000);
    assert_int_equal(a->s.limits.max_head, 8192);
    assert_string_equal(b->path, "/b");
    assert_int_equal(b->s.proxy_read_timeout, 7000);
    assert_int_equal(b->s.client_max_body_size, 5 * 1024);
    assert_int_equal(b->s.keepalive_timeout, 9000);
    /* The implicit root location inherits the server's final settings. */
    assert_int_equal(vh->root_loc->s.client_max_body_size, 2 * 1024 * 1024);
    assert_int_equal(vh->root_loc->s.proxy_read_timeout, 5000);
    pt_snapshot_unref(s);
}

static void test_inheritance_lists(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK("http {\n"
                               "  server {\n"
                               "    listen 127.0.0.1:8080;\n"
                               "    location /own {\n"
                               "      add_header X-L l;\n"
                               "      return 200;\n"
                               "    }\n"
                               "    location /inherit {\n"
                               "      return 200;\n"
                               "    }\n"
                               "  }\n"
                               "  server {\n"
                               "    listen 127.0.0.1:8081;\n"
                               "    add_header X-S s always;\n"
                               "    proxy_set_header Host \"\";\n"
                               "    set_real_ip_from 192.168.0.0/16;\n"
                               "    location /x {\n"
                               "      return 200;\n"
                               "    }\n"
                               "  }\n"
                               "  add_header X-A a;\n"
                               "  add_header X-B \"$host:$server_port\";\n"
                               "  proxy_set_header X-Real-IP $remote_addr;\n"
                               "  set_real_ip_from 10.0.0.0/8;\n"
                               "}\n");
    const pt_http_settings_t *h = &s->http;
    assert_true(h->add_headers_own);
    assert_int_equal(h->add_headers.n, 2);
    assert_string_equal(hop_at(&h->add_headers, 0)->name, "X-A");
    assert_false(hop_at(&h->add_headers, 0)->always);
    const pt_header_op_t *xb = hop_at(&h->add_headers, 1);
    assert_string_equal(xb->name, "X-B");
    assert_int_equal(xb->name_len, 3);
    assert_int_equal(xb->value.nparts, 3);
    assert_int_equal(xb->value.parts[0].kind, PT_VAR_HOST);
    assert_int_equal(xb->value.parts[1].kind, PT_VAR_LITERAL);
    assert_int_equal(xb->value.parts[1].len, 1);
    assert_memory_equal(xb->value.parts[1].s, ":", 1);
    assert_int_equal(xb->value.parts[2].kind, PT_VAR_SERVER_PORT);
    assert_int_equal(h->proxy_set_headers.n, 1);
    assert_int_equal(h->real_ip_from.n, 1);

    /* Server 1 defines nothing: inherits the http lists. */
    pt_vhost_t *v1 = vhost_at(listen_at(s, "127.0.0.1:8080"), 0);
    assert_false(v1->s.add_headers_own);
    assert_int_equal(v1->s.add_headers.n, 2);
    assert_int_equal(v1->s.proxy_set_headers.n, 1);
    pt_location_t *own = loc_at(v1, 0), *inh = loc_at(v1, 1);
    assert_true(own->s.add_headers_own);
    assert_int_equal(own->s.add_headers.n, 1); /* replaced, not extended */
    assert_string_equal(hop_at(&own->s.add_headers, 0)->name, "X-L");
    assert_int_equal(own->s.proxy_set_headers.n, 1);
    assert_int_equal(inh->s.add_headers.n, 2);
    assert_string_equal(hop_at(&inh->s.add_headers, 0)->name, "X-A");
    /* The location's list did not leak into the server's. */
    assert_int_equal(v1->s.add_headers.n, 2);

    /* Server 2 replaces both lists; its location inherits the server's. */
    pt_vhost_t *v2 = vhost_at(listen_at(s, "127.0.0.1:8081"), 0);
    assert_int_equal(v2->s.add_headers.n, 1);
    assert_string_equal(hop_at(&v2->s.add_headers, 0)->name, "X-S");
    assert_true(hop_at(&v2->s.add_headers, 0)->always);
    assert_int_equal(v2->s.proxy_set_headers.n, 1);
    const pt_header_op_t *host = hop_at(&v2->s.proxy_set_headers, 0);
    assert_string_equal(host->name, "Host");
    assert_true(host->value.is_empty);
    assert_int_equal(host->value.nparts, 0);
    /* set_real_ip_from adds to the inherited list, without touching http's. */
    assert_int_equal(v2->s.real_ip_from.n, 2);
    assert_int_equal(pt_array_at(&v2->s.real_ip_from, pt_cidr_t, 1)->bits, 16);
    assert_int_equal(s->http.real_ip_from.n, 1);
    pt_location_t *x = loc_at(v2, 0);
    assert_false(x->s.add_headers_own);
    assert_int_equal(x->s.add_headers.n, 1);
    assert_string_equal(hop_at(&x->s.add_headers, 0)->name, "X-S");
    assert_int_equal(x->s.real_ip_from.n, 2);
    pt_snapshot_unref(s);
}

static void test_templates(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(HTTP("add_header X-V \"a${uri}b$args$request_uri$request_method"
                                    "$remote_addr$remote_port$scheme$request_id$http_user_agent\";\n"
                                    "add_header X-E \"\";\n"));
    const pt_tpl_t *t = &hop_at(&s->http.add_headers, 0)->value;
    static const pt_var_kind_t kinds[] = {
        PT_VAR_LITERAL,     PT_VAR_URI,         PT_VAR_LITERAL,     PT_VAR_ARGS,
        PT_VAR_REQUEST_URI, PT_VAR_REQUEST_METHOD, PT_VAR_REMOTE_ADDR, PT_VAR_REMOTE_PORT,
        PT_VAR_SCHEME,      PT_VAR_REQUEST_ID,  PT_VAR_HTTP_HEADER,
    };
    assert_int_equal(t->nparts, pt_countof(kinds));
    for (size_t i = 0; i < pt_countof(kinds); i++) assert_int_equal(t->parts[i].kind, kinds[i]);
    assert_int_equal(t->parts[0].len, 1);
    assert_memory_equal(t->parts[0].s, "a", 1);
    assert_int_equal(t->parts[10].len, 10);
    assert_memory_equal(t->parts[10].s, "user_agent", 10);
    assert_false(t->is_empty);
    const pt_tpl_t *e = &hop_at(&s->http.add_headers, 1)->value;
    assert_true(e->is_empty);
    pt_snapshot_unref(s);
}

static void test_listen_options(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK("http {\n"
                               "  server {\n"
                               "    listen 127.0.0.1:8080;\n"
                               "    server_name A.Example.COM \"\" *.Wild.Test;\n"
                               "  }\n"
                               "  server {\n"
                               "    listen 127.0.0.1:8080 reuseport backlog=1024 proxy_protocol "
                               "default_server;\n"
                               "    listen [::1]:8443;\n"
                               "    listen 9090;\n"
                               "    server_name b.test;\n"
                               "  }\n"
                               "  server {\n"
                               "    listen [::1]:8443 default;\n"
                               "  }\n"
                               "}\n");
    assert_int_equal(s->listens.n, 3);
    const pt_listen_conf_t *l1 = listen_at(s, "127.0.0.1:8080");
    assert_ptr_equal(l1, pt_array_at(&s->listens, pt_listen_conf_t, 0));
    assert_true(l1->reuseport);
    assert_true(l1->proxy_protocol);
    assert_int_equal(l1->backlog, 1024);
    assert_string_equal(l1->file, conf_file);
    assert_int_equal(l1->line, 7);
    assert_int_equal(l1->col, 5);
    assert_int_equal(l1->vhosts.n, 2);
    pt_vhost_t *a = vhost_at(l1, 0), *b = vhost_at(l1, 1);
    assert_true(l1->default_server_explicit);
    assert_ptr_equal(l1->default_server, b);
    /* Names lower-cased; "" is skipped. */
    assert_int_equal(a->names.n, 2);
    assert_string_equal(*pt_array_at(&a->names, const char *, 0), "a.example.com");
    assert_string_equal(*pt_array_at(&a->names, const char *, 1), "*.wild.test");

    const pt_listen_conf_t *l2 = listen_at(s, "[::1]:8443");
    assert_false(l2->reuseport);
    assert_false(l2->proxy_protocol);
    assert_int_equal(l2->backlog, 511);
    assert_int_equal(l2->line, 0);
    assert_int_equal(l2->vhosts.n, 2);
    assert_ptr_equal(vhost_at(l2, 0), b);
    assert_true(l2->default_server_explicit);
    assert_ptr_equal(l2->default_server, vhost_at(l2, 1));

    const pt_listen_conf_t *l3 = listen_at(s, "0.0.0.0:9090");
    assert_int_equal(l3->vhosts.n, 1);
    assert_false(l3->default_server_explicit);
    assert_ptr_equal(l3->default_server, b);

    /* Not listened on. */
    pt_addr_t other;
    assert_int_equal(pt_addr_parse("127.0.0.1:8081", 14, 80, &other), 0);
    assert_null(pt_listen_lookup(s, &other));
    pt_snapshot_unref(s);

    /* Options given once, plain listens elsewhere are fine. */
    s = LOAD_OK(HTTP("server {\n  listen 8080;\n}\nserver {\n  listen *:8080 backlog=7;\n}\n"
                     "server {\n  listen 8080;\n}\n"));
    const pt_listen_conf_t *l = listen_at(s, "8080");
    assert_int_equal(l->backlog, 7);
    assert_int_equal(l->line, 6);
    assert_int_equal(l->vhosts.n, 3);
    assert_ptr_equal(l->default_server, vhost_at(l, 0));
    pt_snapshot_unref(s);
}

static void test_locations(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(SRV("location = /exact {\n  return 204;\n}\n"
                                   "location ^~ /static/ {\n  root /srv;\n}\n"
                                   "location ~ \\.php$ {\n  proxy_pass http://127.0.0.1:9000;\n}\n"
                                   "location ~* \\.(gif|jpg)$ {\n  return 200 img;\n}\n"
                                   "location /api {\n  match_header X-Canary;\n"
                                   "  match_header X-V ^2;\n  return 200;\n}\n"
                                   "location /api {\n  return 201;\n}\n"
                                   "location = /api {\n  return 202;\n}\n"
                                   "location / {\n  return http://example.com$request_uri;\n}\n"));
    pt_vhost_t *vh = vhost_at(listen_at(s, "127.0.0.1:8080"), 0);
    assert_int_equal(vh->locations.n, 8);
    static const struct {
        pt_loc_match_t match;
        const char *path;
        pt_action_t action;
        int status;
        size_t nhm;
        uint32_t line;
    } want[] = {
        {PT_LOC_EXACT, "/exact", PT_ACT_RETURN, 204, 0, 4},
        {PT_LOC_PREFIX_NOREGEX, "/static/", PT_ACT_STATIC, 0, 0, 7},
        {PT_LOC_REGEX, "\\.php$", PT_ACT_HANDLER, 0, 0, 10},
        {PT_LOC_REGEX_CASELESS, "\\.(gif|jpg)$", PT_ACT_RETURN, 200, 0, 13},
        {PT_LOC_PREFIX, "/api", PT_ACT_RETURN, 200, 2, 16},
        {PT_LOC_PREFIX, "/api", PT_ACT_RETURN, 201, 0, 21},
        {PT_LOC_EXACT, "/api", PT_ACT_RETURN, 202, 0, 24},
        {PT_LOC_PREFIX, "/", PT_ACT_RETURN, 302, 0, 27},
    };
    for (size_t i = 0; i < pt_countof(want); i++) {
        pt_location_t *l = loc_at(vh, i);
        assert_int_equal(l->match, want[i].match);
        assert_string_equal(l->path, want[i].path);
        assert_int_equal(l->path_len, strlen(want[i].path));
        assert_int_equal(l->action, want[i].action);
        assert_int_equal(l->return_status, want[i].status);
        assert_int_equal(l->header_matches.n, want[i].nhm);
        assert_int_equal(l->line, want[i].line);
        assert_string_equal(l->file, conf_file);
        bool is_re = want[i].match == PT_LOC_REGEX || want[i].match == PT_LOC_REGEX_CASELESS;
        assert_int_equal(l->re != NULL, is_re);
    }
    assert_ptr_equal(loc_at(vh, 5)->dup_of, loc_at(vh, 4));
    assert_null(loc_at(vh, 6)->dup_of);
    const pt_header_match_t *hm = pt_array_at(&loc_at(vh, 4)->header_matches, pt_header_match_t, 0);
    assert_string_equal(hm->name, "X-Canary");
    assert_null(hm->re);
    hm = pt_array_at(&loc_at(vh, 4)->header_matches, pt_header_match_t, 1);
    assert_string_equal(hm->name, "X-V");
    assert_non_null(hm->re);
    /* return bodies and redirect URLs */
    pt_location_t *img = loc_at(vh, 3);
    assert_true(img->has_return_text);
    assert_int_equal(img->return_text.nparts, 1);
    assert_memory_equal(img->return_text.parts[0].s, "img", 3);
    pt_location_t *redir = loc_at(vh, 7);
    assert_true(redir->has_return_text);
    assert_int_equal(redir->return_text.nparts, 2);
    assert_int_equal(redir->return_text.parts[1].kind, PT_VAR_REQUEST_URI);
    assert_false(loc_at(vh, 0)->has_return_text);
    /* Static location: root, no explicit action needed. */
    assert_string_equal(loc_at(vh, 1)->s.static_conf.root, "/srv");
    /* No server root: the implicit location does nothing (404 at run time). */
    assert_int_equal(vh->root_loc->action, PT_ACT_NONE);
    pt_snapshot_unref(s);
}

static void test_return_forms(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(SRV("return 301 https://x.test$request_uri;\n"
                                   "location /a {\n  return 404;\n}\n"
                                   "location /b {\n  return $scheme://b.test;\n}\n"
                                   "location /c {\n  return 304;\n}\n"
                                   "location /d {\n  root /srv;\n  return 599 \"bye\";\n}\n"
                                   "location /e {\n  return https://e.test;\n}\n"));
    pt_vhost_t *vh = vhost_at(listen_at(s, "127.0.0.1:8080"), 0);
    /* return in server applies to the implicit root location. */
    assert_int_equal(vh->root_loc->action, PT_ACT_RETURN);
    assert_int_equal(vh->root_loc->return_status, 301);
    assert_true(vh->root_loc->has_return_text);
    assert_int_equal(loc_at(vh, 0)->return_status, 404);
    assert_false(loc_at(vh, 0)->has_return_text);
    assert_int_equal(loc_at(vh, 1)->return_status, 302);
    assert_true(loc_at(vh, 1)->has_return_text);
    assert_int_equal(loc_at(vh, 1)->return_text.parts[0].kind, PT_VAR_SCHEME);
    assert_int_equal(loc_at(vh, 2)->return_status, 304);
    assert_int_equal(loc_at(vh, 3)->return_status, 599);
    assert_int_equal(loc_at(vh, 3)->action, PT_ACT_RETURN);
    assert_int_equal(loc_at(vh, 4)->return_status, 302);
    pt_snapshot_unref(s);
}

static void test_types_block(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(HTTP("types {\n"
                                    "  text/html html HTM;\n"
                                    "  \"text/plain; charset=utf-8\" txt;\n"
                                    "  image/png png;\n"
                                    "}\n"
                                    "server {\n"
                                    "  root /srv;\n"
                                    "  location /x {\n"
                                    "    types {\n"
                                    "    }\n"
                                    "    default_type a/b;\n"
                                    "    index i.html;\n"
                                    "  }\n"
                                    "}\n"));
    const pt_http_settings_t *h = &s->http;
    assert_int_equal(h->static_conf.ntypes, 4);
    assert_int_equal(h->mime_types.n, 4);
    static const char *const want[][2] = {
        {"html", "text/html"},
        {"htm", "text/html"},
        {"txt", "text/plain; charset=utf-8"},
        {"png", "image/png"},
    };
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(h->static_conf.types[i].ext, want[i][0]);
        assert_string_equal(h->static_conf.types[i].type, want[i][1]);
    }
    pt_vhost_t *vh = vhost_at(listen_at(s, "80"), 0);
    assert_int_equal(vh->s.static_conf.ntypes, 4);
    pt_location_t *x = loc_at(vh, 0);
    assert_int_equal(x->s.static_conf.ntypes, 0);
    assert_string_equal(x->s.static_conf.default_type, "a/b");
    assert_int_equal(x->s.static_conf.nindex, 1);
    assert_string_equal(x->s.static_conf.index[0], "i.html");
    assert_string_equal(x->s.static_conf.root, "/srv");
    assert_int_equal(x->action, PT_ACT_STATIC);
    assert_int_equal(vh->s.static_conf.nindex, 1);
    assert_string_equal(vh->s.static_conf.index[0], "index.html");
    pt_snapshot_unref(s);
}

static void test_include_and_refs(void **state)
{
    (void)state;
    char inc[200];
    snprintf(inc, sizeof(inc), "%s/srv.inc", tmpdir);
    write_file(inc, "server {\n  listen 127.0.0.1:8090;\n  location /x {\n  }\n}\n");
    pt_conf_err_t err = {{0}};
    assert_null(load_text(HTTP("include srv.inc;\n"), &err));
    char want[400];
    snprintf(want, sizeof(want),
             "%s:3:3: location \"/x\" has nothing to do: add proxy_pass, return or root", inc);
    char *nl = strchr(err.msg, '\n');
    assert_non_null(nl);
    *nl = '\0';
    assert_string_equal(err.msg, want);

    write_file(inc, "server {\n  listen 127.0.0.1:8090;\n  return 200;\n}\n");
    pt_snapshot_t *s = LOAD_OK(HTTP("include srv.inc;\n"));
    assert_ptr_equal(pt_snapshot_ref(s), s);
    assert_int_equal(atomic_load(&s->refs), 2);
    pt_snapshot_unref(s);
    assert_int_equal(atomic_load(&s->refs), 1);
    assert_int_equal(listen_at(s, "127.0.0.1:8090")->vhosts.n, 1);
    pt_snapshot_unref(s);
    pt_snapshot_unref(NULL);
    remove(inc);
}

/* ------------------------------------------------------------------ */
/* Routing                                                             */
/* ------------------------------------------------------------------ */

/* Routes host/path on listen with headers; returns the location. */
static const pt_location_t *route(pt_snapshot_t *s, const char *listen, const char *host,
                                  const char *path, pt_http_hdr_t *h, size_t nh,
                                  const pt_vhost_t **vh)
{
    pt_request_t r;
    memset(&r, 0, sizeof(r));
    r.snap = s;
    r.h.path = path;
    r.h.path_len = strlen(path);
    r.h.host = host;
    r.h.host_len = host ? strlen(host) : 0;
    r.h.headers = h;
    r.h.nheaders = nh;
    pt_route(&r, listen_at(s, listen));
    assert_non_null(r.vhost);
    assert_non_null(r.loc);
    if (vh) *vh = r.vhost;
    return r.loc;
}

/* The status a location returns identifies it in these configs. */
static int route_status(pt_snapshot_t *s, const char *path)
{
    return route(s, "127.0.0.1:8080", "x", path, NULL, 0, NULL)->return_status;
}

static void test_route_precedence(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(SRV("location / {\n  return 200;\n}\n"
                                   "location /images/ {\n  return 201;\n}\n"
                                   "location ^~ /static/ {\n  return 202;\n}\n"
                                   "location ~ \\.php$ {\n  return 203;\n}\n"
                                   "location ~* \\.(gif|jpg)$ {\n  return 204;\n}\n"
                                   "location = /exact {\n  return 205;\n}\n"
                                   "location ~ ^/r/ {\n  return 206;\n}\n"
                                   "location ~ ^/r/x {\n  return 207;\n}\n"
                                   "location ^~ /a/ {\n  return 208;\n}\n"
                                   "location /a/b/ {\n  return 209;\n}\n"
                                   "location ~ ^/a/.*\\.txt$ {\n  return 210;\n}\n"
                                   "location = / {\n  return 211;\n}\n"
                                   "location /static/deep/ {\n  return 212;\n}\n"));
    assert_int_equal(route_status(s, "/"), 211);          /* exact beats everything */
    assert_int_equal(route_status(s, "/?q=1"), 211);      /* query ignored */
    assert_int_equal(route_status(s, "/exact"), 205);
    assert_int_equal(route_status(s, "/exact?x"), 205);
    assert_int_equal(route_status(s, "/exact/"), 200);    /* exact is exact */
    assert_int_equal(route_status(s, "/exactly"), 200);
    assert_int_equal(route_status(s, "/static/a.gif"), 202); /* ^~ stops regexes */
    assert_int_equal(route_status(s, "/static/x.php"), 202);
    assert_int_equal(route_status(s, "/static/deep/x.php"), 203); /* longer plain prefix wins */
    assert_int_equal(route_status(s, "/static/deep/y"), 212);
    assert_int_equal(route_status(s, "/images/a.GIF"), 204);  /* regex beats prefix, ~* */
    assert_int_equal(route_status(s, "/images/a.txt"), 201);  /* longest prefix */
    assert_int_equal(route_status(s, "/images"), 200);
    assert_int_equal(route_status(s, "/x/index.php"), 203);
    assert_int_equal(route_status(s, "/x/index.PHP"), 200);   /* ~ is case-sensitive */
    assert_int_equal(route_status(s, "/x/index.php?a=b.gif"), 203);
    assert_int_equal(route_status(s, "/x/a.jpg?x.php"), 204); /* regex sees no query */
    assert_int_equal(route_status(s, "/r/x"), 206);           /* first regex wins */
    assert_int_equal(route_status(s, "/a/c.txt"), 208);       /* ^~ /a/ */
    assert_int_equal(route_status(s, "/a/b/c.txt"), 210);     /* longest is /a/b/: regexes run */
    assert_int_equal(route_status(s, "/a/b/c"), 209);
    assert_int_equal(route_status(s, "/zzz"), 200);
    pt_snapshot_unref(s);
}

static void test_route_implicit_root(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(SRV("root /srv;\nlocation /a {\n  return 200;\n}\n"));
    const pt_vhost_t *vh;
    const pt_location_t *l = route(s, "127.0.0.1:8080", NULL, "/b", NULL, 0, &vh);
    assert_ptr_equal(l, vh->root_loc);
    assert_int_equal(l->action, PT_ACT_STATIC);
    l = route(s, "127.0.0.1:8080", NULL, "/a/b", NULL, 0, &vh);
    assert_string_equal(l->path, "/a");
    /* A prefix is a byte prefix, as in nginx: "/ab" matches "/a". */
    l = route(s, "127.0.0.1:8080", NULL, "/ab", NULL, 0, &vh);
    assert_string_equal(l->path, "/a");
    pt_snapshot_unref(s);
}

static pt_http_hdr_t hdr(const char *name, const char *value)
{
    return (pt_http_hdr_t){name, strlen(name), value, strlen(value)};
}

static int route_hdr(pt_snapshot_t *s, const char *path, pt_http_hdr_t *h, size_t nh)
{
    return route(s, "127.0.0.1:8080", "x", path, h, nh, NULL)->return_status;
}

static void test_route_match_header(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(SRV("location /api {\n  match_header X-Canary;\n  return 200;\n}\n"
                                   "location /api {\n  return 201;\n}\n"
                                   "location /api/v {\n  match_header X-Version \"^2\\.\";\n"
                                   "  return 202;\n}\n"
                                   "location /b {\n  return 203;\n}\n"
                                   "location /b {\n  match_header X-B yes;\n  return 204;\n}\n"
                                   "location ~ ^/re {\n  match_header X-R;\n  return 205;\n}\n"
                                   "location ~ ^/re {\n  return 206;\n}\n"
                                   "location = /e {\n  match_header X-E;\n  return 207;\n}\n"
                                   "location = /e {\n  return 208;\n}\n"));
    pt_http_hdr_t h[3];
    assert_int_equal(route_hdr(s, "/api/x", NULL, 0), 201);
    h[0] = hdr("x-canary", "");
    assert_int_equal(route_hdr(s, "/api/x", h, 1), 200); /* present, any value, any case */
    h[0] = hdr("X-Version", "2.1");
    assert_int_equal(route_hdr(s, "/api/v/1", h, 1), 202);
    h[0] = hdr("X-Version", "3.0");
    assert_int_equal(route_hdr(s, "/api/v/1", h, 1), 201); /* falls back to the shorter prefix */
    h[0] = hdr("X-Version", "v2.1");
    assert_int_equal(route_hdr(s, "/api/v/1", h, 1), 201); /* regex anchored */
    h[0] = hdr("X-Version", "2.1");
    h[1] = hdr("X-Canary", "1");
    assert_int_equal(route_hdr(s, "/api/v/1", h, 2), 202);
    assert_int_equal(route_hdr(s, "/api/w", h, 2), 200);
    /* Conditional location defined after the plain one still wins. */
    assert_int_equal(route_hdr(s, "/b", NULL, 0), 203);
    h[0] = hdr("X-B", "yes");
    assert_int_equal(route_hdr(s, "/b", h, 1), 204);
    h[0] = hdr("X-B", "no");
    assert_int_equal(route_hdr(s, "/b", h, 1), 203);
    /* Regex locations: the first one whose headers match. */
    assert_int_equal(route_hdr(s, "/re", NULL, 0), 206);
    h[0] = hdr("X-R", "1");
    assert_int_equal(route_hdr(s, "/re", h, 1), 205);
    /* Exact locations. */
    assert_int_equal(route_hdr(s, "/e", NULL, 0), 208);
    h[0] = hdr("X-E", "1");
    assert_int_equal(route_hdr(s, "/e", h, 1), 207);
    pt_snapshot_unref(s);
}

static void test_route_vhosts(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(HTTP("server {\n  listen 127.0.0.1:8080;\n"
                                    "  server_name first.test;\n  return 200;\n}\n"
                                    "server {\n  listen 127.0.0.1:8080;\n"
                                    "  server_name *.example.com;\n  return 201;\n}\n"
                                    "server {\n  listen 127.0.0.1:8080;\n"
                                    "  server_name www.example.com Example.ORG [::1];\n"
                                    "  return 202;\n}\n"
                                    "server {\n  listen 127.0.0.1:8080 default_server;\n"
                                    "  server_name explicit.test;\n  return 203;\n}\n"
                                    "server {\n  listen 127.0.0.1:8081;\n"
                                    "  server_name one.test;\n  return 204;\n}\n"
                                    "server {\n  listen 127.0.0.1:8081;\n"
                                    "  server_name *.one.test;\n  return 205;\n}\n"));
    static const struct {
        const char *listen, *host;
        int status;
    } cases[] = {
        {"127.0.0.1:8080", "first.test", 200},
        {"127.0.0.1:8080", "FIRST.Test", 200},
        {"127.0.0.1:8080", "www.example.com", 202},  /* exact beats an earlier wildcard */
        {"127.0.0.1:8080", "a.example.com", 201},
        {"127.0.0.1:8080", "a.b.example.com", 201},
        {"127.0.0.1:8080", "A.EXAMPLE.com:8080", 201},
        {"127.0.0.1:8080", "example.com", 203},      /* "*.x" does not match "x" */
        {"127.0.0.1:8080", "badexample.com", 203},
        {"127.0.0.1:8080", "example.org", 202},
        {"127.0.0.1:8080", "example.org:8080", 202}, /* port ignored */
        {"127.0.0.1:8080", "example.org.", 202},     /* trailing dot ignored */
        {"127.0.0.1:8080", "example.org.:80", 202},
        {"127.0.0.1:8080", "[::1]:8080", 202},
        {"127.0.0.1:8080", "[::1]", 202},
        {"127.0.0.1:8080", "unknown.test", 203},     /* explicit default server */
        {"127.0.0.1:8080", "", 203},
        {"127.0.0.1:8081", "unknown.test", 204},     /* first server is the default */
        {"127.0.0.1:8081", "x.one.test", 205},
        {"127.0.0.1:8081", "one.test", 204},
    };
    for (size_t i = 0; i < pt_countof(cases); i++) {
        const pt_vhost_t *vh;
        route(s, cases[i].listen, cases[i].host, "/", NULL, 0, &vh);
        if (vh->root_loc->return_status != cases[i].status)
            print_error("host \"%s\" on %s\n", cases[i].host, cases[i].listen);
        assert_int_equal(vh->root_loc->return_status, cases[i].status);
    }
    /* No Host at all (HTTP/1.0): the default server. */
    const pt_vhost_t *vh;
    route(s, "127.0.0.1:8080", NULL, "/", NULL, 0, &vh);
    assert_int_equal(vh->root_loc->return_status, 203);
    pt_snapshot_unref(s);
}

static pt_addr_t addr(const char *s)
{
    pt_addr_t a;
    assert_int_equal(pt_addr_parse(s, strlen(s), 1, &a), 0);
    return a;
}

static bool cidr_match(const char *cidr, const char *ip)
{
    pt_cidr_t c;
    assert_int_equal(pt_cidr_parse(cidr, &c), 0);
    pt_addr_t a = addr(ip);
    return pt_cidr_match(&c, &a);
}

static void test_cidr(void **state)
{
    (void)state;
    assert_true(cidr_match("10.0.0.0/8", "10.255.1.2:80"));
    assert_false(cidr_match("10.0.0.0/8", "11.0.0.1:80"));
    assert_true(cidr_match("172.16.0.0/12", "172.31.255.255"));
    assert_false(cidr_match("172.16.0.0/12", "172.32.0.0"));
    assert_false(cidr_match("172.16.0.0/12", "172.15.255.255"));
    assert_true(cidr_match("192.168.1.7", "192.168.1.7"));
    assert_false(cidr_match("192.168.1.7", "192.168.1.8"));
    assert_true(cidr_match("192.168.1.7/31", "192.168.1.6"));
    assert_false(cidr_match("192.168.1.7/31", "192.168.1.5"));
    assert_true(cidr_match("0.0.0.0/0", "8.8.8.8"));
    assert_true(cidr_match("10.1.2.3/8", "10.9.9.9")); /* host bits in the config ignored */
    assert_false(cidr_match("10.0.0.0/8", "[::ffff:10.0.0.1]:80")); /* families differ */
    assert_false(cidr_match("::/0", "10.0.0.1"));
    assert_true(cidr_match("::/0", "[2001:db8::1]"));
    assert_true(cidr_match("2001:db8::/32", "[2001:db8:ffff::1]:443"));
    assert_false(cidr_match("2001:db8::/32", "[2001:db9::1]"));
    assert_true(cidr_match("2001:db8:abcd::/45", "[2001:db8:abcf::1]"));
    assert_false(cidr_match("2001:db8:abcd::/45", "[2001:db8:abd0::1]"));
    assert_true(cidr_match("::1", "[::1]:8080"));
    assert_false(cidr_match("::1/128", "[::2]"));

    pt_cidr_t c;
    assert_int_equal(pt_cidr_parse("::/128", &c), 0);
    assert_int_equal(c.bits, 128);
    assert_int_equal(pt_cidr_parse("1.2.3.4/33", &c), -EINVAL);
    assert_int_equal(pt_cidr_parse("::/129", &c), -EINVAL);
    assert_int_equal(pt_cidr_parse("1.2.3/8", &c), -EINVAL);
    assert_int_equal(pt_cidr_parse("", &c), -EINVAL);
    assert_int_equal(pt_cidr_parse("/8", &c), -EINVAL);
    assert_int_equal(pt_cidr_parse("1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa/8", &c),
                     -EINVAL);

    pt_array_t list;
    pt_pool_t *pool = pt_pool_create(0);
    assert_non_null(pool);
    assert_int_equal(pt_array_init(&list, pool, sizeof(pt_cidr_t), 2), 0);
    pt_addr_t a = addr("10.0.0.1");
    assert_false(pt_cidr_list_match(&list, &a));
    assert_int_equal(pt_cidr_parse("192.168.0.0/16", pt_array_push(&list)), 0);
    assert_false(pt_cidr_list_match(&list, &a));
    assert_int_equal(pt_cidr_parse("10.0.0.0/8", pt_array_push(&list)), 0);
    assert_true(pt_cidr_list_match(&list, &a));
    pt_pool_destroy(pool);
}

/* ------------------------------------------------------------------ */
/* Regressions: bugs found in review, fixed                            */
/* ------------------------------------------------------------------ */

/* pt_cidr_parse() reads the prefix length with strtol: a sign is accepted
 * and a negative length means "no length" (/32). */
static void test_regress_cidr_signed_prefix(void **state)
{
    (void)state;
    pt_cidr_t c;
    assert_int_equal(pt_cidr_parse("1.2.3.4/-1", &c), -EINVAL);
    assert_int_equal(pt_cidr_parse("1.2.3.4/+8", &c), -EINVAL);
    EXPECT_ERR(HTTP("set_real_ip_from 10.0.0.0/-8;\n"),
               "2:18: invalid address or CIDR \"10.0.0.0/-8\"");
}

/* nginx picks the longest matching "*." name; find_vhost() the first one. */
static void test_regress_longest_wildcard(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(HTTP("server {\n  listen 127.0.0.1:8080;\n"
                                    "  server_name *.example.com;\n  return 200;\n}\n"
                                    "server {\n  listen 127.0.0.1:8080;\n"
                                    "  server_name *.api.example.com;\n  return 201;\n}\n"));
    const pt_vhost_t *vh;
    route(s, "127.0.0.1:8080", "x.api.example.com", "/", NULL, 0, &vh);
    int status = vh->root_loc->return_status;
    pt_snapshot_unref(s);
    assert_int_equal(status, 201);
}

/* Error columns add the offset in the unescaped value to the argument's
 * column: each escape before the error moves the caret one column left. */
static void test_regress_regex_column_after_escape(void **state)
{
    (void)state;
    /* 'l' is column 1: the quote is column 12, the ')' column 17. */
    EXPECT_ERR(SRV("location ~ \"a\\\"b)\" {\n  return 200;\n}\n"),
               "4:17: invalid regular expression \"a\"b)\": unmatched closing parenthesis");
    /* The quote is column 16; \" \" take two columns each: the '$' is column 22. */
    EXPECT_ERR(HTTP("add_header X-A \"\\\"x\\\"$nope\";\n"),
               "2:22: unknown variable \"$nope\"");
}

/* nginx runs a server-level return before location matching. */
static void test_regress_server_return_wins(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(HTTP("server {\n  listen 127.0.0.1:8080;\n"
                                    "  return 301 https://example.com$request_uri;\n"
                                    "  location /api/ { return 200; }\n}\n"));
    const pt_vhost_t *vh;
    const pt_location_t *loc = route(s, "127.0.0.1:8080", "x", "/api/v1", NULL, 0, &vh);
    int status = loc->return_status;
    bool is_root = loc == vh->root_loc;
    pt_snapshot_unref(s);
    assert_int_equal(status, 301);
    assert_true(is_root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_main_syntax),
        cmocka_unit_test(test_err_main_values),
        cmocka_unit_test(test_err_http_block),
        cmocka_unit_test(test_err_wrong_context),
        cmocka_unit_test(test_err_times),
        cmocka_unit_test(test_err_sizes),
        cmocka_unit_test(test_err_flags),
        cmocka_unit_test(test_err_headers),
        cmocka_unit_test(test_err_variables),
        cmocka_unit_test(test_err_real_ip_index_types),
        cmocka_unit_test(test_err_listen),
        cmocka_unit_test(test_err_listen_shared),
        cmocka_unit_test(test_err_server_name),
        cmocka_unit_test(test_err_location_args),
        cmocka_unit_test(test_err_location_regex),
        cmocka_unit_test(test_err_location_dup),
        cmocka_unit_test(test_err_location_nothing_to_do),
        cmocka_unit_test(test_err_return),
        cmocka_unit_test(test_err_duplicate_action),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_main_values),
        cmocka_unit_test(test_http_values),
        cmocka_unit_test(test_inheritance_order),
        cmocka_unit_test(test_inheritance_lists),
        cmocka_unit_test(test_templates),
        cmocka_unit_test(test_listen_options),
        cmocka_unit_test(test_locations),
        cmocka_unit_test(test_return_forms),
        cmocka_unit_test(test_types_block),
        cmocka_unit_test(test_include_and_refs),
        cmocka_unit_test(test_route_precedence),
        cmocka_unit_test(test_route_implicit_root),
        cmocka_unit_test(test_route_match_header),
        cmocka_unit_test(test_route_vhosts),
        cmocka_unit_test(test_cidr),
        cmocka_unit_test(test_regress_cidr_signed_prefix),
        cmocka_unit_test(test_regress_longest_wildcard),
        cmocka_unit_test(test_regress_regex_column_after_escape),
        cmocka_unit_test(test_regress_server_return_wins),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
