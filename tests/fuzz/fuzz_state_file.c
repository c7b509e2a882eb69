/*
 * Fuzz target: the upstream_state_file (src/upstream/state_file.c).
 *
 * The input is written to a file and loaded into a runtime built by hand
 * with the real state.c: a configured group "app" (fuzz_upstream.h: three
 * servers, one a backup) with an override already in place, and an
 * unconfigured group "old" with one too. Checks:
 *   - the load returns 0 or -EINVAL, and -EINVAL changes nothing at all;
 *   - what a successful load holds is valid: addresses non-empty, short
 *     enough and unique in their group, weights -1 or 1..1000, admin
 *     drain or enabled, no entry that says nothing;
 *   - republishing "app" applies it (member weights and admin states);
 *   - saving it and loading the copy into a fresh runtime gives the same
 *     overrides, and saving that gives the same bytes (a fixed point).
 * Everything is freed between inputs: LeakSanitizer sees any leak.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "fuzz_upstream.h"

/* ---- files ---- */

static void write_bytes(const char *path, const uint8_t *data, size_t size)
{
    FILE *fp = fopen(path, "wb");
    check(fp != NULL);
    check(fwrite(data, 1, size, fp) == size);
    check(fclose(fp) == 0);
}

/* ---- the runtime ---- */

typedef struct world {
    ups_rt_t *rt;
    fuzz_group_t app;
    ups_gstate_t *gs_app;
} world_t;

static void set_overrides(ups_gstate_t *gs, const ups_override_t *o, size_t n)
{
    free(gs->overrides);
    gs->overrides = malloc((n ? n : 1) * sizeof(*o));
    check(gs->overrides != NULL);
    memcpy(gs->overrides, o, n * sizeof(*o));
    gs->noverrides = n;
}

static void world_init(world_t *w)
{
    w->rt = ups_rt_create(NULL);
    check(w->rt != NULL);
    w->gs_app = fuzz_group_bind(w->rt, &w->app, "app", fuzz_app_servers,
                                pt_countof(fuzz_app_servers), UPS_LB_ROUND_ROBIN, UPS_HC_OFF);
    const ups_override_t app_ov[] = {{"127.0.0.1:8081", 7, UPS_ADMIN_DRAIN}};
    const ups_override_t old_ov[] = {{"10.0.0.1:80", -1, UPS_ADMIN_DRAIN}};
    set_overrides(w->gs_app, app_ov, pt_countof(app_ov));
    ups_gstate_t *old = ups_rt_group(w->rt, "old");
    check(old != NULL);
    set_overrides(old, old_ov, pt_countof(old_ov));
    check(ups_rt_republish(w->rt, w->gs_app) == 0);
}

/* Every group's overrides, to compare before and after a failed load. */
typedef struct copy {
    size_t ngroups;
    size_t n[2];
    ups_override_t ov[2][1];
} copy_t;

static void copy_take(const ups_rt_t *rt, copy_t *c)
{
    check(rt->ngroups == 2);
    c->ngroups = rt->ngroups;
    for (size_t i = 0; i < 2; i++) {
        check(rt->groups[i]->noverrides == 1);
        c->n[i] = rt->groups[i]->noverrides;
        c->ov[i][0] = rt->groups[i]->overrides[0];
    }
}

/* Field by field: the bytes after a name's NUL are not defined. */
static bool same_override(const ups_override_t *a, const ups_override_t *b)
{
    return strcmp(a->name, b->name) == 0 && a->weight == b->weight && a->admin == b->admin;
}

static void copy_check(const ups_rt_t *rt, const copy_t *c)
{
    check(rt->ngroups == c->ngroups);
    for (size_t i = 0; i < c->ngroups; i++) {
        check(rt->groups[i]->noverrides == c->n[i]);
        check(same_override(&rt->groups[i]->overrides[0], &c->ov[i][0]));
    }
}

/* ---- invariants ---- */

static void check_overrides_valid(const ups_gstate_t *gs)
{
    for (size_t i = 0; i < gs->noverrides; i++) {
        const ups_override_t *o = &gs->overrides[i];
        size_t len = strnlen(o->name, sizeof(o->name));
        check(len > 0 && len < sizeof(o->name));
        check(o->weight == -1 || (o->weight >= 1 && o->weight <= 1000));
        check(o->admin == UPS_ADMIN_ENABLED || o->admin == UPS_ADMIN_DRAIN);
        check(o->weight > 0 || o->admin != UPS_ADMIN_ENABLED);
        for (size_t k = 0; k < i; k++) check(strcmp(gs->overrides[k].name, o->name) != 0);
    }
}

static const ups_override_t *override_of(const ups_gstate_t *gs, const char *name)
{
    for (size_t i = 0; i < gs->noverrides; i++)
        if (strcmp(gs->overrides[i].name, name) == 0) return &gs->overrides[i];
    return NULL;
}

/* The published set of app agrees with its overrides. */
static void check_applied(world_t *w)
{
    check(ups_rt_republish(w->rt, w->gs_app) == 0);
    const ups_set_t *s = ups_set_load(w->gs_app);
    check(s != NULL && s->n == pt_countof(fuzz_app_servers) && s->nprimary == 2);
    for (size_t i = 0; i < s->n; i++) {
        const ups_member_t *m = &s->m[i];
        const ups_override_t *o = override_of(w->gs_app, m->peer->name);
        int config_weight = fuzz_app_servers[m->spec].weight;
        check(m->weight == (o != NULL && o->weight > 0 ? o->weight : config_weight));
        check(atomic_load(&m->peer->admin) == (o != NULL ? o->admin : UPS_ADMIN_ENABLED));
    }
}

static bool same_overrides(const ups_gstate_t *a, const ups_gstate_t *b)
{
    if (a->noverrides != b->noverrides) return false;
    for (size_t i = 0; i < a->noverrides; i++)
        if (!same_override(&a->overrides[i], &b->overrides[i])) return false;
    return true;
}

/* Save, load into a fresh runtime, compare; save again, same bytes. */
static void check_round_trip(ups_rt_t *rt)
{
    char out[128], again[128];
    fuzz_scratch_path(out, sizeof(out), "out.state");
    fuzz_scratch_path(again, sizeof(again), "again.state");
    check(ups_state_save(rt, out) == 0);
    ups_rt_t *copy = ups_rt_create(NULL);
    check(copy != NULL);
    check(ups_state_load(copy, out) == 0);
    size_t named = 0;
    for (size_t i = 0; i < rt->ngroups; i++) {
        const ups_gstate_t *gs = rt->groups[i];
        if (gs->noverrides == 0) continue;
        named++;
        const ups_gstate_t *cs = ups_rt_group(copy, gs->name);
        check(cs != NULL && same_overrides(gs, cs));
    }
    check(copy->ngroups == named);
    check(ups_state_save(copy, again) == 0);
    size_t la, lb;
    char *a = fuzz_read_file(out, &la), *b = fuzz_read_file(again, &lb);
    check(a != NULL && b != NULL && la == lb && memcmp(a, b, la) == 0);
    free(a);
    free(b);
    ups_rt_destroy(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char in[128];
    fuzz_scratch_path(in, sizeof(in), "in.state");
    write_bytes(in, data, size);
    world_t w;
    world_init(&w);
    copy_t before;
    copy_take(w.rt, &before);

    int rc = ups_state_load(w.rt, in);
    check(rc == 0 || rc == -EINVAL);
    if (rc == -EINVAL) {
        copy_check(w.rt, &before);
    } else {
        for (size_t i = 0; i < w.rt->ngroups; i++) check_overrides_valid(w.rt->groups[i]);
        check_applied(&w);
        check_round_trip(w.rt);
    }
    ups_rt_destroy(w.rt);
    return 0;
}
