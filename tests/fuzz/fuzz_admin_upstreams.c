/*
 * Fuzz target: the /upstreams admin endpoints (src/upstream/admin_api.c),
 * through ups_admin_handle(), the function the registered endpoints call,
 * over a runtime built by hand with the real state.c and a state file.
 *
 * The input is up to 8 requests separated by "\n%%\n", each
 * "METHOD TARGET\nBODY" (the target split at '?' as the admin server
 * does). Checks, for every request:
 *   - the handler succeeds with 200, 400, 404 or 405 and a JSON body
 *     (application/json, ending in a newline, parsed by jansson);
 *   - an error is {"error":"..."} and changes nothing: overrides, member
 *     weights, admin states and the state file stay as they were;
 *   - a 200 is an object; after one the state file, when there is one,
 *     loads into a fresh runtime with the same overrides.
 * Each input starts from a fresh runtime and no state file.
 */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin.h"
#include "fuzz_util.h"
#include "fuzz_upstream.h"

#define MAX_REQUESTS 8
#define SEPARATOR "\n%%\n"

/* ---- the runtime ---- */

static const fuzz_server_t api_servers[] = {{"127.0.0.1:9000", 1, 0, false}};

typedef struct world {
    ups_rt_t *rt;
    pt_snapshot_t snap; /* only mod[PT_MOD_UPSTREAM]: the state file */
    ups_conf_t uc;
    fuzz_group_t app, api;
    ups_gstate_t *gs_app, *gs_api;
} world_t;

static void world_init(world_t *w, const char *state_path)
{
    memset(w, 0, sizeof(*w));
    w->rt = ups_rt_create(NULL);
    check(w->rt != NULL);
    w->gs_app = fuzz_group_bind(w->rt, &w->app, "app", fuzz_app_servers,
                                pt_countof(fuzz_app_servers), UPS_LB_P2C_EWMA, UPS_HC_HTTP);
    w->gs_api = fuzz_group_bind(w->rt, &w->api, "api", api_servers, pt_countof(api_servers),
                                UPS_LB_ROUND_ROBIN, UPS_HC_TCP);
    check(ups_rt_group(w->rt, "gone") != NULL); /* not configured: never listed */
    /* Some state for the listing to show. */
    atomic_store(&ups_rt_member(w->gs_app, "[::1]:8082")->peer->hc_down, true);
    atomic_store(&ups_rt_member(w->gs_app, "127.0.0.1:8083")->peer->ejected_until,
                 ups_now_ms() + 60000);
    w->uc.state_file = state_path;
    w->snap.mod[PT_MOD_UPSTREAM] = &w->uc;
    w->rt->live = &w->snap;
}

static void world_free(world_t *w)
{
    w->rt->live = NULL; /* ours, not a real snapshot */
    ups_rt_destroy(w->rt);
}

/* ---- what must not change on an error ---- */

static void digest_group(pt_sbuf_t *b, ups_gstate_t *gs)
{
    pt_sbuf_printf(b, "%s:", gs->name);
    for (size_t i = 0; i < gs->noverrides; i++)
        pt_sbuf_printf(b, "o %s %d %d;", gs->overrides[i].name, gs->overrides[i].weight,
                       gs->overrides[i].admin);
    const ups_set_t *s = ups_set_load(gs);
    for (size_t i = 0; i < s->n; i++)
        pt_sbuf_printf(b, "m %s %d %d;", s->m[i].peer->name, s->m[i].weight,
                       atomic_load(&s->m[i].peer->admin));
    pt_sbuf_str(b, "\n");
}

/* Overrides, members and the state file as one string (malloc'd). */
static char *digest(world_t *w)
{
    pt_sbuf_t b = {0};
    digest_group(&b, w->gs_app);
    digest_group(&b, w->gs_api);
    char *file = fuzz_read_file(w->uc.state_file, NULL);
    pt_sbuf_str(&b, file != NULL ? file : "(no file)");
    free(file);
    check(!b.oom);
    return b.p;
}

static bool same_overrides(const ups_gstate_t *a, const ups_gstate_t *b)
{
    if (a->noverrides != b->noverrides) return false;
    for (size_t i = 0; i < a->noverrides; i++) {
        const ups_override_t *x = &a->overrides[i], *y = &b->overrides[i];
        if (strcmp(x->name, y->name) != 0 || x->weight != y->weight || x->admin != y->admin)
            return false;
    }
    return true;
}

/* The state file says what the runtime holds. */
static void check_state_file(world_t *w)
{
    if (access(w->uc.state_file, F_OK) != 0) {
        check(w->gs_app->noverrides == 0 && w->gs_api->noverrides == 0);
        return;
    }
    ups_rt_t *copy = ups_rt_create(NULL);
    check(copy != NULL);
    check(ups_state_load(copy, w->uc.state_file) == 0);
    ups_gstate_t *app = ups_rt_group(copy, "app"), *api = ups_rt_group(copy, "api");
    check(app != NULL && api != NULL);
    check(same_overrides(app, w->gs_app) && same_overrides(api, w->gs_api));
    ups_rt_destroy(copy);
}

/* ---- one request ---- */

typedef struct parsed {
    char *method, *path, *query, *body;
    size_t body_len;
    char *buf; /* owns all four */
} parsed_t;

/* "METHOD TARGET\nBODY" from p[0..len) into r (every part NUL-terminated). */
static void parse_request(const char *p, size_t len, parsed_t *r)
{
    r->buf = malloc(len + 2);
    check(r->buf != NULL);
    memcpy(r->buf, p, len);
    r->buf[len] = '\0';
    r->buf[len + 1] = '\0';
    char *nl = memchr(r->buf, '\n', len);
    r->body = nl != NULL ? nl + 1 : r->buf + len + 1;
    r->body_len = nl != NULL ? len - (size_t)(nl + 1 - r->buf) : 0;
    if (nl != NULL) *nl = '\0';
    r->method = r->buf;
    char *sp = strchr(r->buf, ' ');
    r->path = sp != NULL ? sp + 1 : r->buf + strlen(r->buf);
    if (sp != NULL) *sp = '\0';
    char *q = strchr(r->path, '?');
    r->query = q != NULL ? q + 1 : r->path + strlen(r->path);
    if (q != NULL) *q = '\0';
}

static void check_reply(const pt_admin_response_t *resp)
{
    int st = resp->status;
    check(st == 200 || st == 400 || st == 404 || st == 405);
    check(resp->content_type != NULL && strcmp(resp->content_type, "application/json") == 0);
    check(resp->body != NULL && resp->body_len > 0 && resp->body[resp->body_len - 1] == '\n');
    json_error_t err;
    json_t *root = json_loadb(resp->body, resp->body_len, JSON_REJECT_DUPLICATES, &err);
    check(json_is_object(root));
    if (st != 200) {
        check(json_object_size(root) == 1);
        check(json_is_string(json_object_get(root, "error")));
    } else {
        check(json_is_array(json_object_get(root, "upstreams")) ||
              json_is_string(json_object_get(root, "name")) ||
              json_is_string(json_object_get(root, "address")));
    }
    json_decref(root);
}

static void one_request(world_t *w, const char *p, size_t len)
{
    parsed_t r;
    parse_request(p, len, &r);
    pt_admin_request_t req = {.method = r.method, .path = r.path, .query = r.query,
                              .body = r.body, .body_len = r.body_len};
    pt_admin_response_t resp = {.status = 200};
    char *before = digest(w);
    check(ups_admin_handle(w->rt, &req, &resp) == 0);
    check_reply(&resp);
    char *after = digest(w);
    if (resp.status != 200) check(strcmp(before, after) == 0);
    if (resp.status == 200 && strcmp(req.method, "POST") == 0) check_state_file(w);
    free(before);
    free(after);
    free(resp.body);
    free(r.buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char state_path[128];
    fuzz_scratch_path(state_path, sizeof(state_path), "state.json");
    check(unlink(state_path) == 0 || errno == ENOENT);
    world_t w;
    world_init(&w, state_path);
    const char *p = (const char *)data, *end = p + size;
    for (int i = 0; i < MAX_REQUESTS && p <= end; i++) {
        const char *sep = memmem(p, (size_t)(end - p), SEPARATOR, strlen(SEPARATOR));
        const char *stop = sep != NULL ? sep : end;
        one_request(&w, p, (size_t)(stop - p));
        if (sep == NULL) break;
        p = sep + strlen(SEPARATOR);
    }
    world_free(&w);
    return 0;
}
