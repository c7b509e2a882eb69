/*
 * Unit tests: upstream configuration (src/upstream/upstream.c) and server
 * selection (src/upstream/balance.c).
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

/* Checks s is a loopback address (127.0.0.1 or ::1) with the given port. */
static void assert_loopback(const ups_server_t *s, uint16_t port)
{
    assert_int_equal(pt_addr_port(&s->addr), port);
    char ip[64];
    assert_true(pt_addr_format_ip(&s->addr, ip, sizeof(ip)) > 0);
    if (s->addr.ss.ss_family == AF_INET) {
        assert_string_equal(ip, "127.0.0.1");
        assert_int_equal(s->addr.len, sizeof(struct sockaddr_in));
    } else {
        assert_int_equal(s->addr.ss.ss_family, AF_INET6);
        assert_string_equal(ip, "::1");
        assert_int_equal(s->addr.len, sizeof(struct sockaddr_in6));
    }
}

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

static void test_err_upstream_block(void **state)
{
    (void)state;
    EXPECT_ERR(HTTP("upstream b {\n}\n"), "2:1: no servers in upstream \"b\"");
    EXPECT_ERR(HTTP("upstream b {\n  keepalive 4;\n}\n"), "2:1: no servers in upstream \"b\"");
    EXPECT_ERR(HTTP("upstream b {\n  server 127.0.0.1:1;\n}\n"
                    "upstream b {\n  server 127.0.0.1:2;\n}\n"),
               "5:10: duplicate upstream \"b\" (first at {F}:2)");
    EXPECT_ERR(HTTP("upstream b;\n"), "2:1: directive \"upstream\" has no opening \"{\"");
    EXPECT_ERR(HTTP("upstream {\n}\n"),
               "2:1: invalid number of arguments in \"upstream\" directive");
    EXPECT_ERR(HTTP("upstream a b {\n}\n"),
               "2:1: invalid number of arguments in \"upstream\" directive");
    EXPECT_ERR("upstream b {\n}\n", "1:1: \"upstream\" directive is not allowed here");
    EXPECT_ERR(SRV("upstream b {\n}\n"), "4:1: \"upstream\" directive is not allowed here");
    EXPECT_ERR(HTTP("keepalive 4;\n"), "2:1: \"keepalive\" directive is not allowed here");
    EXPECT_ERR(SRV("keepalive 4;\n"), "4:1: \"keepalive\" directive is not allowed here");
    /* "server" in http is the server block. */
    EXPECT_ERR(HTTP("server 127.0.0.1:1;\n"), "2:1: directive \"server\" has no opening \"{\"");
    EXPECT_ERR(UPS("  server 127.0.0.1:1;\n  listen 80;\n"),
               "4:3: \"listen\" directive is not allowed here");
    EXPECT_ERR(UPS("  server 127.0.0.1:1;\n  location / {\n  }\n"),
               "4:3: \"location\" directive is not allowed here");
    EXPECT_ERR(UPS("  server 127.0.0.1:1;\n  upstream v {\n  }\n"),
               "4:3: \"upstream\" directive is not allowed here");
    EXPECT_ERR(UPS("  server 127.0.0.1:1;\n  nonsense;\n"), "4:3: unknown directive \"nonsense\"");
}

static void test_err_server_line(void **state)
{
    (void)state;
    EXPECT_ERR(UPS("  server 127.0.0.1:1 weight=0;\n"),
               "3:22: invalid weight \"0\", expected 1..1000");
    EXPECT_ERR(UPS("  server 127.0.0.1:1 weight=1001;\n"),
               "3:22: invalid weight \"1001\", expected 1..1000");
    EXPECT_ERR(UPS("  server 127.0.0.1:1 weight=;\n"),
               "3:22: invalid weight \"\", expected 1..1000");
    EXPECT_ERR(UPS("  server 127.0.0.1:1 weight=2x;\n"),
               "3:22: invalid weight \"2x\", expected 1..1000");
    EXPECT_ERR(UPS("  server 127.0.0.1:1 weight=-1;\n"),
               "3:22: invalid weight \"-1\", expected 1..1000");
    EXPECT_ERR(UPS("  server 127.0.0.1:1 max_fails=3;\n"),
               "3:22: invalid parameter \"max_fails=3\"");
    EXPECT_ERR(UPS("  server 127.0.0.1:1 weight=2 backup;\n"),
               "3:31: invalid parameter \"backup\"");
    EXPECT_ERR(UPS("  server 127.0.0.1:1 Send_Proxy;\n"), "3:22: invalid parameter \"Send_Proxy\"");
    EXPECT_ERR(UPS("  server;\n"), "3:3: invalid number of arguments in \"server\" directive");
    EXPECT_ERR(UPS("  server a b c d e;\n"),
               "3:3: invalid number of arguments in \"server\" directive");
    EXPECT_ERR(UPS("  server 127.0.0.1:1 {\n  }\n"),
               "3:3: directive \"server\" is not terminated by \";\"");
    EXPECT_ERR(UPS("  server :80;\n"), "3:10: invalid server address \":80\"");
    EXPECT_ERR(UPS("  server :;\n"), "3:10: invalid server address \":\"");
}

static void test_err_host_not_found(void **state)
{
    (void)state;
    pt_conf_err_t full;
    EXPECT_ERR_PREFIX(UPS("  server nohost.invalid:80;\n"),
                      "3:10: host not found in \"nohost.invalid:80\": ");
    EXPECT_ERR_PREFIX(UPS("  server 127.0.0.1:1;\n  server portico-test.invalid weight=2;\n"),
                      "4:10: host not found in \"portico-test.invalid\": ");
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
    EXPECT_ERR(UPS("  server 127.0.0.1:1;\n  keepalive -1;\n"),
               "4:13: value \"-1\" in \"keepalive\" directive is out of range [0, 100000]");
    EXPECT_ERR(UPS("  server 127.0.0.1:1;\n  keepalive 100001;\n"),
               "4:13: value \"100001\" in \"keepalive\" directive is out of range [0, 100000]");
    EXPECT_ERR(UPS("  server 127.0.0.1:1;\n  keepalive many;\n"),
               "4:13: invalid value \"many\" in \"keepalive\" directive, expected an integer");
    EXPECT_ERR(UPS("  server 127.0.0.1:1;\n  keepalive_timeout 0;\n"),
               "4:21: value \"0\" in \"keepalive_timeout\" directive is out of range [1ms, 1d]");
    EXPECT_ERR(UPS("  server 127.0.0.1:1;\n  keepalive_timeout 25h;\n"),
               "4:21: value \"25h\" in \"keepalive_timeout\" directive is out of range [1ms, 1d]");
    EXPECT_ERR(UPS("  server 127.0.0.1:1;\n  keepalive_requests 0;\n"),
               "4:22: value \"0\" in \"keepalive_requests\" directive is out of range "
               "[1, 1000000000]");
    EXPECT_ERR(UPS("  server 127.0.0.1:1;\n  keepalive 1 2;\n"),
               "4:3: invalid number of arguments in \"keepalive\" directive");
}

static void test_err_proxy_pass(void **state)
{
    (void)state;
    EXPECT_ERR(SRV("proxy_pass http://127.0.0.1:1;\n"),
               "4:1: \"proxy_pass\" directive is not allowed here");
    EXPECT_ERR(HTTP("proxy_pass http://127.0.0.1:1;\n"),
               "2:1: \"proxy_pass\" directive is not allowed here");
    EXPECT_ERR(LOC("proxy_pass https://a:1;\n"),
               "5:12: invalid URL \"https://a:1\": only http:// is supported");
    EXPECT_ERR(LOC("proxy_pass backend;\n"),
               "5:12: invalid URL \"backend\": only http:// is supported");
    EXPECT_ERR(LOC("proxy_pass HTTP://backend;\n"),
               "5:12: invalid URL \"HTTP://backend\": only http:// is supported");
    EXPECT_ERR(LOC("proxy_pass http://127.0.0.1:1/x;\n"),
               "5:12: a URI part in proxy_pass (\"http://127.0.0.1:1/x\") is not supported: the "
               "request URI is passed unchanged");
    EXPECT_ERR(LOC("proxy_pass http://backend/;\n"),
               "5:12: a URI part in proxy_pass (\"http://backend/\") is not supported: the "
               "request URI is passed unchanged");
    EXPECT_ERR(LOC("proxy_pass http://;\n"), "5:12: invalid URL \"http://\": no host");
    EXPECT_ERR(LOC("proxy_pass;\n"), "5:1: invalid number of arguments in \"proxy_pass\" directive");
    EXPECT_ERR(LOC("proxy_pass http://a:1 http://b:1;\n"),
               "5:1: invalid number of arguments in \"proxy_pass\" directive");
    EXPECT_ERR(LOC("proxy_pass http://127.0.0.1:1;\nproxy_pass http://127.0.0.1:2;\n"),
               "6:1: duplicate action in this location");
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
    assert_int_equal(b->total_weight, 5 + 1 + 1000 + 2);
    assert_int_equal(b->keepalive, 0);
    assert_int_equal(b->keepalive_timeout, 30000);
    assert_int_equal(b->keepalive_requests, 50);
    static const struct {
        const char *name;
        int weight;
        pp_mode_t pp;
    } want[] = {
        {"127.0.0.1:9001", 5, PP_NONE},
        {"127.0.0.1:9002", 1, PP_V1},
        {"127.0.0.1:9003", 1000, PP_V2},
        {"[::1]:9004", 2, PP_V1}, /* the last proxy flag wins */
    };
    for (size_t i = 0; i < pt_countof(want); i++) {
        const ups_server_t *sv = &b->servers[i];
        assert_string_equal(sv->name, want[i].name);
        assert_int_equal(sv->weight, want[i].weight);
        assert_int_equal(sv->pp, want[i].pp);
        assert_int_equal(sv->index, i);
    }
    assert_int_equal(b->servers[3].addr.ss.ss_family, AF_INET6);
    assert_int_equal(pt_addr_port(&b->servers[3].addr), 9004);

    ups_group_t *o = group_at(s, 1);
    assert_string_equal(o->name, "other");
    assert_int_equal(o->nservers, 1);
    assert_string_equal(o->servers[0].name, "10.0.0.1:80"); /* default port */
    assert_int_equal(o->servers[0].weight, 1);
    assert_int_equal(o->servers[0].pp, PP_NONE);
    assert_int_equal(o->total_weight, 1);
    /* Defaults. */
    assert_int_equal(o->keepalive, 32);
    assert_int_equal(o->keepalive_timeout, 60000);
    assert_int_equal(o->keepalive_requests, 1000);
    assert_int_equal(o->line, 29);

    /* Implicit groups, one per address, made in proxy_pass order. */
    ups_group_t *i1 = group_at(s, 2);
    assert_string_equal(i1->name, "127.0.0.1:8080");
    assert_true(i1->implicit);
    assert_int_equal(i1->line, 8);
    assert_int_equal(i1->nservers, 1);
    assert_string_equal(i1->servers[0].name, "127.0.0.1:8080");
    assert_int_equal(i1->keepalive, 32);
    ups_group_t *i2 = group_at(s, 3);
    assert_string_equal(i2->name, "[::1]");
    assert_true(i2->implicit);
    assert_string_equal(i2->servers[0].name, "[::1]:80");

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
    /* localhost is 127.0.0.1 and maybe ::1: every address becomes a server. */
    assert_true(g->nservers >= 2 && g->nservers % 2 == 0);
    size_t half = g->nservers / 2;
    int total = 0;
    for (size_t i = 0; i < g->nservers; i++) {
        assert_loopback(&g->servers[i], 80);
        assert_int_equal(g->servers[i].index, i);
        assert_int_equal(g->servers[i].weight, i < half ? 1 : 3);
        total += g->servers[i].weight;
    }
    assert_int_equal(g->total_weight, total);
    /* No address twice from one name. */
    for (size_t i = 0; i < half; i++)
        for (size_t j = i + 1; j < half; j++)
            assert_false(pt_addr_equal(&g->servers[i].addr, &g->servers[j].addr));

    ups_group_t *imp = group_at(s, 1);
    assert_string_equal(imp->name, "localhost:8081");
    assert_true(imp->implicit);
    assert_true(imp->nservers >= 1);
    for (size_t i = 0; i < imp->nservers; i++) assert_loopback(&imp->servers[i], 8081);
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
        LOC("proxy_pass http://localhost:0;\n"),
    };
    size_t loaded = 0;
    for (size_t i = 0; i < pt_countof(bad); i++) {
        pt_conf_err_t err = {{0}};
        pt_snapshot_t *s = load_text(bad[i], &err);
        if (s) {
            ups_group_t *g = group_at(s, 0);
            print_error("case %zu loaded: first server %s\n", i, g->servers[0].name);
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

/* ------------------------------------------------------------------ */
/* Balancer                                                            */
/* ------------------------------------------------------------------ */

/* A request on a worker with a zeroed upstream state, as ups_select needs. */
typedef struct bal {
    pt_worker_t w;
    ups_worker_t uw;
    pt_request_t r;
} bal_t;

static bal_t *bal_new(pt_snapshot_t *s)
{
    bal_t *b = calloc(1, sizeof(*b));
    assert_non_null(b);
    b->uw.w = &b->w;
    b->w.mod[PT_MOD_UPSTREAM] = &b->uw;
    b->r.worker = &b->w;
    b->r.snap = s;
    return b;
}

static void bal_free(bal_t *b)
{
    free(b->uw.rr_cw);
    free(b->uw.rr_base);
    free(b);
}

/* n picks from g as letters 'a' + server index. */
static void picks(bal_t *b, const ups_group_t *g, const ups_server_t *avoid, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        const ups_server_t *sv = ups_select(&b->r, g, avoid);
        assert_non_null(sv);
        assert_true(sv >= g->servers && sv < g->servers + g->nservers);
        out[i] = (char)('a' + sv->index);
    }
    out[n] = '\0';
}

#define WEIGHTED                                   \
    HTTP("upstream w {\n"                          \
         "  server 127.0.0.1:9001 weight=5;\n"     \
         "  server 127.0.0.1:9002;\n"              \
         "  server 127.0.0.1:9003;\n"              \
         "}\n"                                     \
         "upstream e {\n"                          \
         "  server 127.0.0.1:9011;\n"              \
         "  server 127.0.0.1:9012;\n"              \
         "  server 127.0.0.1:9013;\n"              \
         "}\n"                                     \
         "upstream one {\n"                        \
         "  server 127.0.0.1:9021;\n"              \
         "}\n"                                     \
         "upstream two {\n"                        \
         "  server 127.0.0.1:9031 weight=2;\n"     \
         "  server 127.0.0.1:9032;\n"              \
         "}\n")

static void test_balance_smooth_wrr(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(WEIGHTED);
    bal_t *b = bal_new(s);
    char seq[64];
    /* nginx's smooth weighted round robin for 5,1,1. */
    picks(b, group_at(s, 0), NULL, 7, seq);
    assert_string_equal(seq, "aabacaa");
    assert_int_equal(b->uw.rr_gen, 1);
    assert_int_equal(b->uw.rr_n, 3 + 3 + 1 + 2);
    /* After a full cycle the state is back at zero: the cycle repeats. */
    picks(b, group_at(s, 0), NULL, 14, seq);
    assert_string_equal(seq, "aabacaaaabacaa");
    picks(b, group_at(s, 1), NULL, 6, seq);
    assert_string_equal(seq, "abcabc");
    picks(b, group_at(s, 3), NULL, 6, seq);
    assert_string_equal(seq, "abaaba");
    bal_free(b);
    pt_snapshot_unref(s);
}

static void test_balance_groups_independent(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(WEIGHTED);
    bal_t *b = bal_new(s);
    const ups_group_t *w = group_at(s, 0), *e = group_at(s, 1), *two = group_at(s, 3);
    char sw[8], se[8], st[8];
    for (size_t i = 0; i < 7; i++) {
        sw[i] = (char)('a' + ups_select(&b->r, w, NULL)->index);
        se[i] = (char)('a' + ups_select(&b->r, e, NULL)->index);
        st[i] = (char)('a' + ups_select(&b->r, two, NULL)->index);
    }
    sw[7] = se[7] = st[7] = '\0';
    assert_string_equal(sw, "aabacaa");
    assert_string_equal(se, "abcabca");
    assert_string_equal(st, "abaabaa");

    /* A second worker has its own state. */
    bal_t *b2 = bal_new(s);
    char seq[8];
    picks(b2, w, NULL, 3, seq);
    assert_string_equal(seq, "aab");
    bal_free(b2);
    bal_free(b);
    pt_snapshot_unref(s);
}

static void test_balance_single_server(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(WEIGHTED);
    bal_t *b = bal_new(s);
    const ups_group_t *one = group_at(s, 2);
    assert_ptr_equal(ups_select(&b->r, one, NULL), &one->servers[0]);
    assert_ptr_equal(ups_select(&b->r, one, NULL), &one->servers[0]);
    /* The only server failed: nothing else to try. */
    assert_null(ups_select(&b->r, one, &one->servers[0]));
    /* One server needs no per-worker state. */
    assert_null(b->uw.rr_cw);
    bal_free(b);
    pt_snapshot_unref(s);
}

static void test_balance_avoid(void **state)
{
    (void)state;
    pt_snapshot_t *s = LOAD_OK(WEIGHTED);
    bal_t *b = bal_new(s);
    const ups_group_t *w = group_at(s, 0);
    char seq[128];
    /* Avoiding "a", the others share its turns; "a" keeps its credit. */
    picks(b, w, &w->servers[0], 3, seq);
    assert_string_equal(seq, "bcb");
    picks(b, w, NULL, 1, seq);
    assert_string_equal(seq, "a");
    bal_free(b);

    /* Avoiding "b": a and c in a 5:1 ratio, exactly over whole cycles. */
    b = bal_new(s);
    picks(b, w, &w->servers[1], 60, seq);
    size_t na = 0, nc = 0;
    for (size_t i = 0; i < 60; i++) {
        assert_true(seq[i] != 'b');
        na += seq[i] == 'a';
        nc += seq[i] == 'c';
    }
    assert_int_equal(na, 50);
    assert_int_equal(nc, 10);
    char cyc[8];
    memcpy(cyc, seq, 6);
    cyc[6] = '\0';
    assert_string_equal(cyc, "aaacaa");
    bal_free(b);

    /* Two servers, one avoided: always the other. */
    b = bal_new(s);
    const ups_group_t *two = group_at(s, 3);
    picks(b, two, &two->servers[0], 5, seq);
    assert_string_equal(seq, "bbbbb");
    picks(b, two, &two->servers[1], 5, seq);
    assert_string_equal(seq, "aaaaa");
    /* An avoid pointer from another group excludes nothing here. */
    picks(b, two, &w->servers[0], 3, seq);
    assert_int_equal(strlen(seq), 3);
    bal_free(b);
    pt_snapshot_unref(s);
}

static void test_balance_new_generation(void **state)
{
    (void)state;
    pt_snapshot_t *s1 = LOAD_OK_GEN(WEIGHTED, 1);
    bal_t *b = bal_new(s1);
    char seq[16];
    picks(b, group_at(s1, 0), NULL, 3, seq);
    assert_string_equal(seq, "aab");
    assert_int_equal(b->uw.rr_gen, 1);

    /* A reload with reordered weights: the state is rebuilt for it. */
    pt_snapshot_t *s2 = LOAD_OK_GEN(HTTP("upstream w {\n"
                                         "  server 127.0.0.1:9001;\n"
                                         "  server 127.0.0.1:9002 weight=5;\n"
                                         "  server 127.0.0.1:9003;\n"
                                         "}\n"),
                                    2);
    b->r.snap = s2;
    picks(b, group_at(s2, 0), NULL, 7, seq);
    assert_string_equal(seq, "bbabcbb");
    assert_int_equal(b->uw.rr_gen, 2);
    assert_int_equal(b->uw.rr_n, 3);
    bal_free(b);
    pt_snapshot_unref(s2);
    pt_snapshot_unref(s1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_upstream_block),
        cmocka_unit_test(test_err_server_line),
        cmocka_unit_test(test_err_host_not_found),
        cmocka_unit_test(test_err_keepalive),
        cmocka_unit_test(test_err_proxy_pass),
        cmocka_unit_test(test_err_undefined_upstream),
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_group_after_location),
        cmocka_unit_test(test_localhost_resolves),
        cmocka_unit_test(test_regress_server_port_range),
        cmocka_unit_test(test_regress_root_after_proxy_pass),
        cmocka_unit_test(test_balance_smooth_wrr),
        cmocka_unit_test(test_balance_groups_independent),
        cmocka_unit_test(test_balance_single_server),
        cmocka_unit_test(test_balance_avoid),
        cmocka_unit_test(test_balance_new_generation),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
