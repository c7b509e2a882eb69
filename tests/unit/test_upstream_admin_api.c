/*
 * Unit tests for src/upstream/admin_api.c: the /upstreams endpoints on a
 * real admin listener (127.0.0.1, real sockets), over a runtime built by
 * hand (groups bound to hand-made configs, sets published by state.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin.h"
#include "admin_fixture.h"
#include "test_util.h"
#include "upstream/upstream_int.h"

#define APP_A "127.0.0.1:8081"
#define APP_B "[::1]:8082"
#define APP_B_ENC "%5B%3A%3A1%5D%3A8082"
#define APP_C "127.0.0.1:8083"
#define API_A "127.0.0.1:9000"

typedef struct fixture {
    admin_server_t srv;
    pt_control_t ctl;
    ups_rt_t *rt;
    pt_snapshot_t *snap; /* only mod[PT_MOD_UPSTREAM] is used: the state file */
    ups_conf_t uc;
    char dir[64];
    char state_path[128];
    pt_addr_t addrs[4];
    ups_server_t app_servers[3], api_servers[1];
    ups_group_t app, api;
    ups_gstate_t *gs_app, *gs_api;
} fixture_t;

/* ---- the runtime ---- */

static ups_server_t server(pt_addr_t *a, const char *spec, int weight, int max_conns, bool backup)
{
    assert_int_equal(pt_addr_parse(spec, strlen(spec), 0, a), 0);
    return (ups_server_t){.spec = spec, .addrs = a, .naddrs = 1, .weight = weight,
                          .max_conns = max_conns, .backup = backup};
}

static ups_gstate_t *bind_group(ups_rt_t *rt, ups_group_t *g)
{
    ups_gstate_t *gs = ups_rt_group(rt, g->name);
    assert_non_null(gs);
    gs->conf = g;
    g->state = gs;
    assert_int_equal(ups_rt_republish(rt, gs), 0);
    return gs;
}

static void build_runtime(fixture_t *f)
{
    f->app_servers[0] = server(&f->addrs[0], APP_A, 5, 10, false);
    f->app_servers[1] = server(&f->addrs[1], APP_B, 1, 0, false);
    f->app_servers[2] = server(&f->addrs[2], APP_C, 2, 0, true);
    f->api_servers[0] = server(&f->addrs[3], API_A, 1, 0, false);
    f->app = (ups_group_t){.name = "app", .servers = f->app_servers, .nservers = 3,
                           .lb = UPS_LB_P2C_EWMA, .hc = {.type = UPS_HC_HTTP}};
    f->api = (ups_group_t){.name = "api", .index = 1, .servers = f->api_servers,
                           .nservers = 1, .lb = UPS_LB_ROUND_ROBIN};
    f->rt = ups_rt_create(&f->ctl);
    assert_non_null(f->rt);
    f->gs_app = bind_group(f->rt, &f->app);
    f->gs_api = bind_group(f->rt, &f->api);
    /* A group that left the configuration: its state lives on, unlisted. */
    assert_non_null(ups_rt_group(f->rt, "gone"));

    snprintf(f->dir, sizeof(f->dir), "/tmp/pt-ups-admin-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->state_path, sizeof(f->state_path), "%s/state.json", f->dir);
    f->uc.state_file = f->state_path;
    f->snap = calloc(1, sizeof(*f->snap));
    assert_non_null(f->snap);
    f->snap->mod[PT_MOD_UPSTREAM] = &f->uc;
    f->rt->live = f->snap;
}

static ups_peer_t *peer(const fixture_t *f, ups_gstate_t *gs, const char *name)
{
    pt_unused(f);
    const ups_member_t *m = ups_rt_member(gs, name);
    assert_non_null(m);
    return m->peer;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    admin_server_init(&f->srv);
    f->srv.admin = pt_admin_create(NULL);
    assert_non_null(f->srv.admin);
    f->ctl = (pt_control_t){.loop = f->srv.loop, .admin = f->srv.admin};
    build_runtime(f);
    assert_int_equal(ups_admin_register(f->rt), 0);
    assert_int_equal(ups_admin_register(f->rt), -EEXIST);
    admin_server_start(&f->srv);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    admin_server_stop(&f->srv);
    f->rt->live = NULL; /* ours, not a real snapshot */
    ups_rt_destroy(f->rt);
    free(f->snap);
    remove_tree(f->dir);
    free(f);
    return 0;
}

/* ---- client ---- */

typedef struct reply {
    admin_reply_t http;
    int status;
    const char *raw;
    json_t *json; /* the body parsed */
} reply_t;

/* Sends one request (body may be NULL) and parses the JSON answer. */
static void call(const fixture_t *f, const char *method, const char *target, const char *body,
                 reply_t *r)
{
    char *req = NULL;
    int n = asprintf(&req, "%s %s HTTP/1.1\r\nHost: a\r\nContent-Length: %zu\r\n\r\n%s", method,
                     target, body ? strlen(body) : 0, body ? body : "");
    assert_true(n > 0);
    request_n(&f->srv, req, (size_t)n, &r->http);
    free(req);
    r->status = r->http.status;
    r->raw = r->http.raw;
    json_error_t err;
    r->json = json_loadb(r->http.body, r->http.body_len, 0, &err);
    if (r->json == NULL) fprintf(stderr, "not JSON: %s\n", r->raw);
    assert_non_null(r->json);
    assert_non_null(strstr(r->raw, "\r\nContent-Type: application/json\r\n"));
}

static void reply_free(reply_t *r)
{
    json_decref(r->json);
    free(r->http.raw);
}

/* An error answer: the status and {"error":"...<part>..."}. */
static void expect_error(const fixture_t *f, const char *method, const char *target,
                         const char *body, int status, const char *part)
{
    reply_t r;
    call(f, method, target, body, &r);
    if (r.status != status) fprintf(stderr, "%s %s -> %s\n", method, target, r.raw);
    assert_int_equal(r.status, status);
    const char *msg = json_string_value(json_object_get(r.json, "error"));
    assert_non_null(msg);
    assert_int_equal(json_object_size(r.json), 1);
    if (strstr(msg, part) == NULL) fprintf(stderr, "error \"%s\" lacks \"%s\"\n", msg, part);
    assert_non_null(strstr(msg, part));
    reply_free(&r);
}

static json_int_t int_of(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v)) fprintf(stderr, "\"%s\" is not an integer\n", key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static const char *str_of(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    if (s == NULL) fprintf(stderr, "\"%s\" is not a string\n", key);
    assert_non_null(s);
    return s;
}

/* The server entry with that address in a GROUP object. */
static json_t *server_of(const json_t *group, const char *addr)
{
    json_t *servers = json_object_get(group, "servers");
    size_t i;
    json_t *s;
    json_array_foreach(servers, i, s) {
        if (strcmp(str_of(s, "address"), addr) == 0) return s;
    }
    fail_msg("no server %s", addr);
    return NULL;
}

static void assert_state(const json_t *srv, const char *state, const char *admin,
                         const char *health)
{
    assert_string_equal(str_of(srv, "state"), state);
    assert_string_equal(str_of(srv, "admin"), admin);
    assert_string_equal(str_of(srv, "health"), health);
}

/* ---- tests ---- */

static void test_list(void **state)
{
    fixture_t *f = *state;
    ups_peer_t *a = peer(f, f->gs_app, APP_A);
    atomic_store(&a->active, 2);
    atomic_store(&a->conns, 4);
    atomic_store(&a->requests, 10);
    atomic_store(&a->failures, 3);
    atomic_store(&a->ejections_total, 1);
    atomic_store(&f->gs_app->active, 7);
    atomic_store(&f->gs_app->requests, 100);
    atomic_store(&f->gs_app->retries, 4);
    atomic_store(&f->gs_app->budget_exhausted, 1);
    atomic_store(&f->gs_app->overflow, 2);
    atomic_store(&f->gs_app->responses[2], 90);

    reply_t r;
    call(f, "GET", "/upstreams", NULL, &r);
    assert_int_equal(r.status, 200);
    json_t *groups = json_object_get(r.json, "upstreams");
    assert_int_equal(json_array_size(groups), 2); /* "gone" is not listed */
    json_t *app = json_array_get(groups, 0);
    json_t *api = json_array_get(groups, 1);
    assert_string_equal(str_of(app, "name"), "app");
    assert_string_equal(str_of(app, "algorithm"), "p2c_ewma");
    assert_string_equal(str_of(app, "health_check"), "http");
    assert_int_equal(int_of(app, "active"), 7);
    assert_int_equal(int_of(app, "requests"), 100);
    assert_int_equal(int_of(app, "retries"), 4);
    assert_int_equal(int_of(app, "budget_exhausted"), 1);
    assert_int_equal(int_of(app, "overflow"), 2);
    assert_int_equal(int_of(json_object_get(app, "responses"), "2xx"), 90);
    assert_string_equal(str_of(api, "name"), "api");
    assert_string_equal(str_of(api, "algorithm"), "round_robin");
    assert_string_equal(str_of(api, "health_check"), "off");

    json_t *servers = json_object_get(app, "servers");
    assert_int_equal(json_array_size(servers), 3);
    json_t *s = json_array_get(servers, 0);
    assert_string_equal(str_of(s, "address"), APP_A);
    assert_int_equal(int_of(s, "weight"), 5);
    assert_int_equal(int_of(s, "config_weight"), 5);
    assert_true(json_is_false(json_object_get(s, "backup")));
    assert_state(s, "up", "enabled", "up");
    assert_int_equal(int_of(s, "active"), 2);
    assert_int_equal(int_of(s, "connections"), 4);
    assert_true(json_is_number(json_object_get(s, "ewma_ms")));
    assert_true(json_number_value(json_object_get(s, "ewma_ms")) == 0.0);
    assert_int_equal(int_of(s, "requests"), 10);
    assert_int_equal(int_of(s, "failures"), 3);
    assert_int_equal(int_of(s, "ejections"), 1);
    assert_int_equal(int_of(s, "max_conns"), 10);
    assert_int_equal(json_object_size(s), 14);
    assert_string_equal(str_of(json_array_get(servers, 1), "address"), APP_B);
    s = json_array_get(servers, 2);
    assert_string_equal(str_of(s, "address"), APP_C);
    assert_true(json_is_true(json_object_get(s, "backup")));
    reply_free(&r);

    /* Wrong method, and the query is no part of the path. */
    expect_error(f, "POST", "/upstreams", "{}", 405, "POST");
    call(f, "GET", "/upstreams?x=1", NULL, &r);
    assert_int_equal(r.status, 200);
    reply_free(&r);
}

static void test_server_states(void **state)
{
    fixture_t *f = *state;
    ups_peer_t *a = peer(f, f->gs_app, APP_A);
    ups_peer_t *b = peer(f, f->gs_app, APP_B);
    ups_peer_t *c = peer(f, f->gs_app, APP_C);
    atomic_store(&a->hc_down, true);
    atomic_store(&b->ejected_until, ups_now_ms() + 60000);
    atomic_store(&c->ejected_until, ups_now_ms() - 1); /* over */
    ups_ewma_observe(c, 2500000, (int64_t)pt_time_mono_us()); /* 2.5 ms */

    reply_t r;
    call(f, "GET", "/upstreams/app", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(str_of(r.json, "name"), "app");
    assert_state(server_of(r.json, APP_A), "down", "enabled", "down");
    assert_state(server_of(r.json, APP_B), "ejected", "enabled", "up");
    assert_state(server_of(r.json, APP_C), "up", "enabled", "up");
    double ewma = json_number_value(json_object_get(server_of(r.json, APP_C), "ewma_ms"));
    assert_true(ewma > 2.0 && ewma <= 2.5);
    reply_free(&r);

    /* The admin's drain says more than health or ejection. */
    call(f, "POST", "/upstreams/app/servers/127.0.0.1%3A8081/drain", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_state(r.json, "drain", "drain", "down");
    reply_free(&r);
    call(f, "POST", "/upstreams/app/servers/" APP_B_ENC "/drain", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_state(r.json, "drain", "drain", "up");
    reply_free(&r);
}

static void test_get_one(void **state)
{
    fixture_t *f = *state;
    reply_t r;
    call(f, "GET", "/upstreams/api", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(str_of(r.json, "name"), "api");
    assert_int_equal(json_array_size(json_object_get(r.json, "servers")), 1);
    reply_free(&r);

    /* A server, by its encoded or plain address. */
    static const char *const targets[] = {
        "/upstreams/app/servers/" APP_B_ENC,
        "/upstreams/app/servers/%5b%3a%3a1%5d%3a8082",
        "/upstreams/app/servers/[::1]:8082",
        "/upstreams/%61pp/servers/" APP_B_ENC,
    };
    for (size_t i = 0; i < pt_countof(targets); i++) {
        call(f, "GET", targets[i], NULL, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(str_of(r.json, "address"), APP_B);
        assert_int_equal(int_of(r.json, "weight"), 1);
        reply_free(&r);
    }
}

static void test_not_found(void **state)
{
    fixture_t *f = *state;
    expect_error(f, "GET", "/upstreams/nope", NULL, 404, "no upstream \"nope\"");
    expect_error(f, "GET", "/upstreams/gone", NULL, 404, "no upstream \"gone\"");
    expect_error(f, "GET", "/upstreams/", NULL, 404, "no such endpoint");
    expect_error(f, "GET", "/upstreams/app/", NULL, 404, "no such endpoint");
    expect_error(f, "GET", "/upstreams//app", NULL, 404, "no such endpoint");
    expect_error(f, "GET", "/upstreams/app/servers", NULL, 404, "no such endpoint");
    expect_error(f, "GET", "/upstreams/app/extra", NULL, 404, "no such endpoint");
    expect_error(f, "POST", "/upstreams/app/nodes/" APP_A "/drain", NULL, 404,
                 "no such endpoint");
    expect_error(f, "POST", "/upstreams/app/servers/" APP_A "/drain/now", NULL, 404,
                 "no such endpoint");
    expect_error(f, "GET", "/upstreams/app/servers/10.9.9.9:1", NULL, 404,
                 "no server \"10.9.9.9:1\" in upstream \"app\"");
    expect_error(f, "POST", "/upstreams/app/servers/10.9.9.9:1/drain", NULL, 404,
                 "no server \"10.9.9.9:1\"");
    /* A server of another group. */
    expect_error(f, "POST", "/upstreams/app/servers/" API_A "/drain", NULL, 404, "no server");
    expect_error(f, "POST", "/upstreams/nope/servers/" APP_A "/drain", NULL, 404,
                 "no upstream \"nope\"");
    expect_error(f, "POST", "/upstreams/app/servers/" APP_A "/explode", NULL, 404,
                 "unknown action \"explode\"");
    assert_int_equal(atomic_load(&peer(f, f->gs_app, APP_A)->admin), UPS_ADMIN_ENABLED);
}

static void test_bad_requests(void **state)
{
    fixture_t *f = *state;
    /* Not an address at all: bad input, not an unknown server. */
    static const char *const not_addresses[] = {
        "GET", "app.internal:8080", "127.0.0.1", "8081", "127.0.0.1%25zz80", "127.0.0.1:99999",
        "[::1]", "::1:80",
    };
    for (size_t i = 0; i < pt_countof(not_addresses); i++) {
        char target[128];
        snprintf(target, sizeof(target), "/upstreams/app/servers/%s/drain", not_addresses[i]);
        expect_error(f, "POST", target, NULL, 400, "invalid server address");
        snprintf(target, sizeof(target), "/upstreams/app/servers/%s", not_addresses[i]);
        expect_error(f, "GET", target, NULL, 400, "invalid server address");
    }
    expect_error(f, "GET", "/upstreams/app/servers/" APP_A "/drain", NULL, 405, "use POST");
    expect_error(f, "PUT", "/upstreams/app/servers/" APP_A "/weight", "{\"weight\":3}", 405,
                 "use POST");
    expect_error(f, "DELETE", "/upstreams/app", NULL, 405, "use GET");
    expect_error(f, "POST", "/upstreams/app/servers/" APP_A, NULL, 405, "use GET");
    expect_error(f, "POST", "/upstreams/app/servers/127.0.0.1%3/drain", NULL, 400,
                 "percent-encoding");
    expect_error(f, "POST", "/upstreams/app/servers/127.0.0.1%00/drain", NULL, 400,
                 "percent-encoding");
    expect_error(f, "GET", "/upstreams/a%zzp", NULL, 400, "percent-encoding");
    const ups_member_t *m = ups_rt_member(f->gs_app, APP_A);
    assert_int_equal(m->weight, 5);
    assert_int_equal(atomic_load(&m->peer->admin), UPS_ADMIN_ENABLED);
    assert_int_equal(f->gs_app->noverrides, 0);
    assert_int_equal(access(f->state_path, F_OK), -1); /* nothing changed, nothing saved */
}

/* The state file holds exactly the JSON document want. */
static void assert_state_file(const fixture_t *f, const char *want)
{
    json_error_t err;
    json_t *got = json_load_file(f->state_path, 0, &err);
    json_t *exp = json_loads(want, 0, &err);
    assert_non_null(got);
    assert_non_null(exp);
    if (!json_equal(got, exp)) {
        char *text = json_dumps(got, 0);
        fprintf(stderr, "state file: %s\nwant: %s\n", text, want);
        free(text);
    }
    assert_true(json_equal(got, exp));
    json_decref(got);
    json_decref(exp);
}

static void test_drain_enable(void **state)
{
    fixture_t *f = *state;
    reply_t r;
    call(f, "POST", "/upstreams/app/servers/" APP_B_ENC "/drain", "", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(str_of(r.json, "address"), APP_B);
    assert_state(r.json, "drain", "drain", "up");
    reply_free(&r);
    assert_int_equal(atomic_load(&peer(f, f->gs_app, APP_B)->admin), UPS_ADMIN_DRAIN);
    assert_state_file(f, "{\"version\":1,\"upstreams\":{\"app\":{\"[::1]:8082\":"
                         "{\"weight\":null,\"admin\":\"drain\"}}}}");

    /* Idempotent; and the listing agrees. */
    call(f, "POST", "/upstreams/app/servers/" APP_B_ENC "/drain", NULL, &r);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    call(f, "GET", "/upstreams", NULL, &r);
    json_t *app = json_array_get(json_object_get(r.json, "upstreams"), 0);
    assert_state(server_of(app, APP_B), "drain", "drain", "up");
    assert_state(server_of(app, APP_A), "up", "enabled", "up");
    reply_free(&r);

    call(f, "POST", "/upstreams/app/servers/" APP_B_ENC "/enable", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_state(r.json, "up", "enabled", "up");
    reply_free(&r);
    assert_int_equal(atomic_load(&peer(f, f->gs_app, APP_B)->admin), UPS_ADMIN_ENABLED);
    assert_int_equal(f->gs_app->noverrides, 0);
    assert_state_file(f, "{\"version\":1,\"upstreams\":{}}");
}

static void test_weight(void **state)
{
    fixture_t *f = *state;
    reply_t r;
    call(f, "POST", "/upstreams/app/servers/" APP_A "/weight", "{\"weight\":50}", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(int_of(r.json, "weight"), 50);
    assert_int_equal(int_of(r.json, "config_weight"), 5);
    reply_free(&r);
    assert_int_equal(ups_rt_member(f->gs_app, APP_A)->weight, 50);
    assert_state_file(f, "{\"version\":1,\"upstreams\":{\"app\":{\"127.0.0.1:8081\":"
                         "{\"weight\":50,\"admin\":\"enabled\"}}}}");

    /* Draining keeps the weight; both are saved. */
    call(f, "POST", "/upstreams/app/servers/" APP_A "/drain", NULL, &r);
    assert_int_equal(int_of(r.json, "weight"), 50);
    reply_free(&r);
    call(f, "POST", "/upstreams/api/servers/" API_A "/weight", " { \"weight\" : 1000 } ", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(int_of(r.json, "weight"), 1000);
    reply_free(&r);
    assert_state_file(f, "{\"version\":1,\"upstreams\":{"
                         "\"app\":{\"127.0.0.1:8081\":{\"weight\":50,\"admin\":\"drain\"}},"
                         "\"api\":{\"127.0.0.1:9000\":{\"weight\":1000,\"admin\":\"enabled\"}}}}");

    /* null goes back to the configured weight. */
    call(f, "POST", "/upstreams/app/servers/" APP_A "/weight", "{\"weight\":null}", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(int_of(r.json, "weight"), 5);
    assert_string_equal(str_of(r.json, "admin"), "drain");
    reply_free(&r);
    assert_int_equal(ups_rt_member(f->gs_app, APP_A)->weight, 5);
}

static void test_weight_bad(void **state)
{
    fixture_t *f = *state;
    reply_t r;
    call(f, "POST", "/upstreams/app/servers/" APP_A "/weight", "{\"weight\":7}", &r);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    static const struct {
        const char *body, *error;
    } bad[] = {
        {"", "invalid JSON"},
        {"nope", "invalid JSON"},
        {"{\"weight\":5} x", "invalid JSON"},
        {"{\"weight\":5,\"weight\":6}", "invalid JSON"},
        {"[5]", "must be {\"weight\":N}"},
        {"5", "invalid JSON"},
        {"{}", "must be {\"weight\":N}"},
        {"{\"Weight\":5}", "must be {\"weight\":N}"},
        {"{\"weight\":5,\"admin\":\"drain\"}", "must be {\"weight\":N}"},
        {"{\"weight\":0}", "from 1 to 1000"},
        {"{\"weight\":1001}", "from 1 to 1000"},
        {"{\"weight\":-1}", "from 1 to 1000"},
        {"{\"weight\":99999999999999999999}", "invalid JSON"},
        {"{\"weight\":\"5\"}", "from 1 to 1000"},
        {"{\"weight\":5.0}", "from 1 to 1000"},
        {"{\"weight\":true}", "from 1 to 1000"},
        {"{\"weight\":{}}", "from 1 to 1000"},
    };
    for (size_t i = 0; i < pt_countof(bad); i++) {
        expect_error(f, "POST", "/upstreams/app/servers/" APP_A "/weight", bad[i].body, 400,
                     bad[i].error);
        assert_int_equal(ups_rt_member(f->gs_app, APP_A)->weight, 7);
        assert_int_equal(f->gs_app->noverrides, 1);
    }
    assert_state_file(f, "{\"version\":1,\"upstreams\":{\"app\":{\"127.0.0.1:8081\":"
                         "{\"weight\":7,\"admin\":\"enabled\"}}}}");
}

static void test_register_without_admin(void **state)
{
    pt_unused(state);
    pt_control_t ctl = {0};
    ups_rt_t *rt = ups_rt_create(&ctl);
    assert_non_null(rt);
    assert_int_equal(ups_admin_register(rt), 0);
    ups_rt_destroy(rt);
    rt = ups_rt_create(NULL);
    assert_non_null(rt);
    assert_int_equal(ups_admin_register(rt), 0);
    ups_rt_destroy(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FIXTURE_TEST(test_list),
        FIXTURE_TEST(test_server_states),
        FIXTURE_TEST(test_get_one),
        FIXTURE_TEST(test_not_found),
        FIXTURE_TEST(test_bad_requests),
        FIXTURE_TEST(test_drain_enable),
        FIXTURE_TEST(test_weight),
        FIXTURE_TEST(test_weight_bad),
        cmocka_unit_test(test_register_without_admin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
