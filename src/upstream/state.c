/*
 * Runtime state of upstream groups, kept across reloads (see the comment at
 * the top of upstream_int.h).
 *
 * Every change of a group's members (reload, DNS answer, admin weight)
 * builds a new immutable set and publishes it with one atomic store. The
 * old set is retired: each worker is posted a task, and when the last one
 * has run it, no worker can still hold the old pointer (workers only hold
 * a set inside one loop callback), so the control thread frees it.
 * Requests that picked a peer of the old set hold their own reference on
 * the peer, which outlives the set.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/upstream_int.h"

typedef struct ups_retired {
    ups_set_t *set;
    ups_rt_t *rt;
    _Atomic int pending; /* workers that have not run the quiescence task yet */
    struct ups_retired *next;
} ups_retired_t;

/* ---- peers and sets ---- */

void ups_peer_unref(ups_peer_t *p)
{
    if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1) free(p);
}

static ups_peer_t *peer_new(const pt_addr_t *a)
{
    ups_peer_t *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->addr = *a;
    pt_addr_format(a, p->name, sizeof(p->name));
    atomic_init(&p->hc_status, -1);
    atomic_init(&p->up_since, ups_now_ms());
    return p;
}

static void set_free(ups_set_t *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) ups_peer_unref(s->m[i].peer);
    free(s->m);
    free(s->maglev);
    free(s->bmaglev);
    free(s);
}

const ups_member_t *ups_rt_member(ups_gstate_t *gs, const char *peer_name)
{
    const ups_set_t *s = ups_set_load(gs);
    for (size_t i = 0; s && i < s->n; i++)
        if (strcmp(s->m[i].peer->name, peer_name) == 0) return &s->m[i];
    return NULL;
}

/* ---- retiring sets: quiescence through the workers' post queues ---- */

static void reap(void *arg)
{
    ups_rt_t *rt = arg;
    ups_retired_t **pp = &rt->retired;
    while (*pp) {
        ups_retired_t *r = *pp;
        if (atomic_load(&r->pending) == 0) {
            *pp = r->next;
            set_free(r->set);
            free(r);
        } else {
            pp = &r->next;
        }
    }
}

static void quiesce(void *arg)
{
    ups_retired_t *r = arg;
    if (atomic_fetch_sub(&r->pending, 1) == 1 && pt_loop_post(r->rt->ctl->loop, reap, r->rt) < 0)
        pt_log_error("upstream: cannot post to the control loop; an old member list waits");
}

static void retire(ups_rt_t *rt, ups_set_t *old)
{
    if (!old) return;
    pt_control_t *ctl = rt->ctl;
    int running = 0;
    for (int i = 0; ctl && i < ctl->nworkers; i++) running += ctl->workers[i] != NULL;
    if (running == 0) {
        set_free(old);
        return;
    }
    ups_retired_t *r = calloc(1, sizeof(*r));
    if (!r) {
        pt_log_error("upstream: out of memory retiring a member list (leaked)");
        return;
    }
    r->set = old;
    r->rt = rt;
    atomic_init(&r->pending, running);
    r->next = rt->retired;
    rt->retired = r;
    for (int i = 0; i < ctl->nworkers; i++) {
        if (!ctl->workers[i]) continue;
        if (pt_loop_post(ctl->workers[i]->loop, quiesce, r) < 0) {
            /* This worker will never confirm: the set stays until exit. */
            pt_log_error("upstream: cannot post to worker %d", i);
        }
    }
}

/* ---- groups ---- */

ups_gstate_t *ups_rt_group(ups_rt_t *rt, const char *name)
{
    for (size_t i = 0; i < rt->ngroups; i++)
        if (strcmp(rt->groups[i]->name, name) == 0) return rt->groups[i];
    if (rt->ngroups == rt->cap) {
        size_t cap = rt->cap ? rt->cap * 2 : 8;
        ups_gstate_t **g = realloc(rt->groups, cap * sizeof(*g));
        if (!g) return NULL;
        rt->groups = g;
        rt->cap = cap;
    }
    ups_gstate_t *gs = calloc(1, sizeof(*gs));
    if (!gs || !(gs->name = strdup(name))) {
        free(gs);
        return NULL;
    }
    gs->id = (int)rt->ngroups;
    rt->groups[rt->ngroups++] = gs;
    return gs;
}

static ups_override_t *override_find(ups_gstate_t *gs, const char *name)
{
    for (size_t i = 0; i < gs->noverrides; i++)
        if (strcmp(gs->overrides[i].name, name) == 0) return &gs->overrides[i];
    return NULL;
}

static ups_dyn_t *dyn_find(ups_gstate_t *gs, const char *spec)
{
    for (size_t i = 0; i < gs->ndyn; i++)
        if (strcmp(gs->dyn[i].spec, spec) == 0) return &gs->dyn[i];
    return NULL;
}

static ups_peer_t *peer_in(const ups_set_t *s, const pt_addr_t *a)
{
    for (size_t i = 0; s && i < s->n; i++)
        if (pt_addr_equal(&s->m[i].peer->addr, a)) return s->m[i].peer;
    return NULL;
}

static bool member_listed(const ups_member_t *m, size_t n, const pt_addr_t *a)
{
    for (size_t i = 0; i < n; i++)
        if (pt_addr_equal(&m[i].peer->addr, a)) return true;
    return false;
}

/* Appends the members of one `server` line (backups or not) to s. */
static int add_members(ups_gstate_t *gs, const ups_set_t *cur, ups_set_t *s, size_t cap,
                       const ups_server_t *sv, uint16_t spec)
{
    const ups_dyn_t *d = sv->resolve ? dyn_find(gs, sv->spec) : NULL;
    const pt_addr_t *addrs = d ? d->addrs : sv->addrs;
    size_t naddrs = d ? d->naddrs : sv->naddrs;
    for (size_t k = 0; k < naddrs && s->n < cap; k++) {
        if (member_listed(s->m, s->n, &addrs[k])) continue; /* first line wins */
        ups_peer_t *p = peer_in(cur, &addrs[k]);
        if (!p && !(p = peer_new(&addrs[k]))) return -ENOMEM;
        ups_peer_ref(p);
        const ups_override_t *o = override_find(gs, p->name);
        atomic_store(&p->admin, o ? o->admin : UPS_ADMIN_ENABLED);
        s->m[s->n++] = (ups_member_t){
            .peer = p,
            .weight = o && o->weight > 0 ? o->weight : sv->weight,
            .max_conns = sv->max_conns,
            .backup = sv->backup,
            .pp = sv->pp,
            .slow_start_ms = sv->slow_start_ms ? sv->slow_start_ms : gs->conf->slow_start_ms,
            .spec = spec,
        };
    }
    return 0;
}

static size_t members_cap(ups_gstate_t *gs, const ups_group_t *g)
{
    size_t cap = 0;
    for (size_t i = 0; i < g->nservers; i++) {
        const ups_server_t *sv = &g->servers[i];
        const ups_dyn_t *d = sv->resolve ? dyn_find(gs, sv->spec) : NULL;
        cap += d ? d->naddrs : sv->naddrs;
    }
    return cap;
}

static ups_set_t *set_build(ups_rt_t *rt, ups_gstate_t *gs)
{
    const ups_group_t *g = gs->conf;
    const ups_set_t *cur = ups_set_load(gs);
    size_t cap = members_cap(gs, g);
    ups_set_t *s = calloc(1, sizeof(*s));
    if (!s || !(s->m = calloc(cap ? cap : 1, sizeof(*s->m)))) {
        free(s);
        return NULL;
    }
    for (int backup = 0; backup < 2; backup++) {
        for (size_t i = 0; i < g->nservers; i++) {
            if (g->servers[i].backup != (bool)backup) continue;
            if (add_members(gs, cur, s, cap, &g->servers[i], (uint16_t)i) < 0) goto fail;
        }
        if (!backup) s->nprimary = s->n;
    }
    if (g->lb == UPS_LB_HASH) {
        if (s->nprimary &&
            ups_maglev_build(s->m, s->nprimary, &s->maglev, &s->maglev_size) < 0)
            goto fail;
        if (s->n > s->nprimary &&
            ups_maglev_build(s->m + s->nprimary, s->n - s->nprimary, &s->bmaglev,
                             &s->bmaglev_size) < 0)
            goto fail;
    }
    s->version = ++rt->next_version;
    return s;
fail:
    set_free(s);
    return NULL;
}

int ups_rt_republish(ups_rt_t *rt, ups_gstate_t *gs)
{
    if (!gs->conf) return 0;
    ups_set_t *s = set_build(rt, gs);
    if (!s) return -ENOMEM;
    ups_set_t *old = atomic_exchange_explicit(&gs->set, s, memory_order_acq_rel);
    retire(rt, old);
    return 0;
}

/* ---- admin overrides ---- */

static const char *state_file(const ups_rt_t *rt)
{
    const ups_conf_t *uc = rt->live ? rt->live->mod[PT_MOD_UPSTREAM] : NULL;
    return uc ? uc->state_file : NULL;
}

static void state_save(ups_rt_t *rt)
{
    const char *path = state_file(rt);
    if (path) ups_state_save(rt, path);
}

/* Sets or clears the override of name; returns -ENOMEM. */
static int override_set(ups_gstate_t *gs, const char *name, int weight, int admin)
{
    ups_override_t *o = override_find(gs, name);
    if (weight < 0 && admin == UPS_ADMIN_ENABLED) {
        if (o) *o = gs->overrides[--gs->noverrides];
        return 0;
    }
    if (!o) {
        ups_override_t *n = realloc(gs->overrides, (gs->noverrides + 1) * sizeof(*n));
        if (!n) return -ENOMEM;
        gs->overrides = n;
        o = &n[gs->noverrides++];
        snprintf(o->name, sizeof(o->name), "%s", name);
    }
    o->weight = weight;
    o->admin = admin;
    return 0;
}

int ups_rt_set_admin(ups_rt_t *rt, ups_gstate_t *gs, const char *peer_name, int admin)
{
    const ups_member_t *m = ups_rt_member(gs, peer_name);
    if (!m) return -ENOENT;
    if (admin != UPS_ADMIN_ENABLED && admin != UPS_ADMIN_DRAIN) return -EINVAL;
    const ups_override_t *o = override_find(gs, peer_name);
    int rc = override_set(gs, peer_name, o ? o->weight : -1, admin);
    if (rc < 0) return rc;
    atomic_store(&m->peer->admin, admin);
    if (admin == UPS_ADMIN_ENABLED) atomic_store(&m->peer->up_since, ups_now_ms());
    pt_log_notice("upstream %s: server %s %s by the admin API", gs->name, peer_name,
                  admin == UPS_ADMIN_DRAIN ? "drained" : "enabled");
    state_save(rt);
    return 0;
}

int ups_rt_set_weight(ups_rt_t *rt, ups_gstate_t *gs, const char *peer_name, int weight)
{
    const ups_member_t *m = ups_rt_member(gs, peer_name);
    if (!m) return -ENOENT;
    if (weight != -1 && (weight < 1 || weight > 1000)) return -EINVAL;
    int rc = override_set(gs, peer_name, weight, atomic_load(&m->peer->admin));
    if (rc < 0) return rc;
    rc = ups_rt_republish(rt, gs);
    if (rc < 0) return rc;
    pt_log_notice("upstream %s: server %s weight %d by the admin API", gs->name, peer_name,
                  weight);
    state_save(rt);
    return 0;
}

/* Drops overrides of servers no longer in gs's set; true when any went. */
static bool overrides_prune(ups_gstate_t *gs)
{
    bool dropped = false;
    for (size_t i = 0; i < gs->noverrides;) {
        if (gs->conf && ups_rt_member(gs, gs->overrides[i].name)) {
            i++;
            continue;
        }
        pt_log_notice("upstream %s: server %s is no longer configured; its admin state is dropped",
                      gs->name, gs->overrides[i].name);
        gs->overrides[i] = gs->overrides[--gs->noverrides];
        dropped = true;
    }
    return dropped;
}

/* ---- dynamic addresses ---- */

static void dyn_prune(ups_gstate_t *gs)
{
    const ups_group_t *g = gs->conf;
    for (size_t i = 0; i < gs->ndyn;) {
        bool keep = false;
        for (size_t k = 0; g && k < g->nservers; k++)
            keep |= g->servers[k].resolve && strcmp(g->servers[k].spec, gs->dyn[i].spec) == 0;
        if (keep) {
            i++;
            continue;
        }
        free((char *)gs->dyn[i].spec);
        free(gs->dyn[i].addrs);
        gs->dyn[i] = gs->dyn[--gs->ndyn];
    }
}

int ups_rt_set_dynamic(ups_rt_t *rt, ups_gstate_t *gs, const char *spec, const pt_addr_t *addrs,
                       size_t n)
{
    ups_dyn_t *d = dyn_find(gs, spec);
    if (!d) {
        ups_dyn_t *nd = realloc(gs->dyn, (gs->ndyn + 1) * sizeof(*nd));
        if (!nd) return -ENOMEM;
        gs->dyn = nd;
        d = &nd[gs->ndyn];
        *d = (ups_dyn_t){0};
        if (!(d->spec = strdup(spec))) return -ENOMEM;
        gs->ndyn++;
    }
    pt_addr_t *copy = malloc((n ? n : 1) * sizeof(*copy));
    if (!copy) return -ENOMEM;
    if (n) memcpy(copy, addrs, n * sizeof(*copy));
    free(d->addrs);
    d->addrs = copy;
    d->naddrs = n;
    int rc = ups_rt_republish(rt, gs);
    if (rc == 0 && rt->health) ups_health_sync(rt->health);
    if (rc == 0 && overrides_prune(gs)) state_save(rt);
    return rc;
}

/* ---- outlier detection housekeeping ---- */

#define OUTLIER_TICK_MS 1000

static bool any_outlier_detection(const ups_rt_t *rt)
{
    for (size_t i = 0; i < rt->ngroups; i++)
        if (rt->groups[i]->conf && rt->groups[i]->conf->outlier.enabled) return true;
    return false;
}

/* Ends due ejections once a second, only while some group can eject. */
static void on_outlier_tick(pt_timer_t *t)
{
    ups_rt_t *rt = t->data;
    int64_t now = ups_now_ms();
    for (size_t i = 0; i < rt->ngroups; i++)
        if (rt->groups[i]->conf) ups_outlier_tick(rt->groups[i], now);
    rt->tick_armed = any_outlier_detection(rt);
    if (rt->tick_armed) pt_timer_start(rt->ctl->loop, t, OUTLIER_TICK_MS);
}

static void outlier_tick_sync(ups_rt_t *rt)
{
    if (!rt->ctl || !rt->ctl->loop || rt->tick_armed || !any_outlier_detection(rt)) return;
    pt_timer_init(&rt->outlier_tick, on_outlier_tick, rt);
    pt_timer_start(rt->ctl->loop, &rt->outlier_tick, OUTLIER_TICK_MS);
    rt->tick_armed = true;
}

/* ---- adopting a snapshot ---- */

int ups_rt_adopt(ups_rt_t *rt, pt_snapshot_t *snap)
{
    const ups_conf_t *uc = snap->mod[PT_MOD_UPSTREAM];
    const char *old_file = state_file(rt);
    bool first = rt->live == NULL;
    pt_snapshot_t *prev = rt->live;
    rt->live = pt_snapshot_ref(snap);
    if (prev) pt_snapshot_unref(prev);
    const char *file = state_file(rt);
    bool load = file && (first || !old_file || strcmp(old_file, file) != 0);
    for (size_t i = 0; i < rt->ngroups; i++) rt->groups[i]->conf = NULL;
    for (size_t i = 0; uc && i < uc->groups.n; i++) {
        ups_group_t *g = *pt_array_at(&uc->groups, ups_group_t *, i);
        ups_gstate_t *gs = ups_rt_group(rt, g->name);
        if (!gs) return -ENOMEM;
        g->state = gs;
        gs->conf = g;
    }
    if (load) ups_state_load(rt, file); /* a bad file is logged and ignored */
    bool dropped = false;
    for (size_t i = 0; i < rt->ngroups; i++) {
        ups_gstate_t *gs = rt->groups[i];
        dyn_prune(gs);
        if (!gs->conf) continue;
        int rc = ups_rt_republish(rt, gs);
        if (rc < 0) return rc;
        dropped |= overrides_prune(gs);
    }
    if (dropped) state_save(rt);
    outlier_tick_sync(rt);
    if (rt->health) ups_health_sync(rt->health);
    if (rt->resolve) ups_resolve_sync(rt->resolve);
    return 0;
}

/* ---- life cycle ---- */

ups_rt_t *ups_rt_create(pt_control_t *ctl)
{
    ups_rt_t *rt = calloc(1, sizeof(*rt));
    if (!rt) return NULL;
    rt->ctl = ctl;
    return rt;
}

void ups_rt_destroy(ups_rt_t *rt)
{
    if (!rt) return;
    if (rt->tick_armed) pt_timer_stop(rt->ctl->loop, &rt->outlier_tick);
    if (rt->health) ups_health_destroy(rt->health);
    if (rt->resolve) ups_resolve_destroy(rt->resolve);
    while (rt->retired) {
        ups_retired_t *r = rt->retired;
        rt->retired = r->next;
        set_free(r->set);
        free(r);
    }
    for (size_t i = 0; i < rt->ngroups; i++) {
        ups_gstate_t *gs = rt->groups[i];
        set_free(atomic_load(&gs->set));
        for (size_t k = 0; k < gs->ndyn; k++) {
            free((char *)gs->dyn[k].spec);
            free(gs->dyn[k].addrs);
        }
        free(gs->dyn);
        free(gs->overrides);
        free(gs->name);
        free(gs);
    }
    free(rt->groups);
    if (rt->live) pt_snapshot_unref(rt->live);
    free(rt);
}
