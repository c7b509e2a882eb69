/*
 * Server selection: smooth weighted round robin (the nginx algorithm),
 * with per-worker state so no lock or atomic is needed. The state belongs
 * to one snapshot generation and is rebuilt when the config changes.
 */
#include <stdlib.h>
#include <string.h>

#include "upstream/upstream_int.h"

static int rr_rebuild(ups_worker_t *uw, const pt_snapshot_t *snap)
{
    const ups_conf_t *uc = snap->mod[PT_MOD_UPSTREAM];
    size_t ng = uc ? uc->groups.n : 0, total = 0;
    size_t *base = calloc(ng + 1, sizeof(*base));
    if (!base) return -1;
    for (size_t i = 0; i < ng; i++) {
        base[i] = total;
        total += (*pt_array_at(&uc->groups, ups_group_t *, i))->nservers;
    }
    int *cw = calloc(total + 1, sizeof(*cw));
    if (!cw) {
        free(base);
        return -1;
    }
    free(uw->rr_cw);
    free(uw->rr_base);
    uw->rr_cw = cw;
    uw->rr_base = base;
    uw->rr_n = total;
    uw->rr_gen = snap->generation;
    return 0;
}

const ups_server_t *ups_select(pt_request_t *r, const ups_group_t *g, const ups_server_t *avoid)
{
    if (g->nservers == 1) return avoid ? NULL : &g->servers[0];
    ups_worker_t *uw = ups_worker(r->worker);
    if (uw->rr_gen != r->snap->generation && rr_rebuild(uw, r->snap) < 0)
        return &g->servers[0];
    int *cw = uw->rr_cw + uw->rr_base[g->index];
    const ups_server_t *best = NULL;
    int best_i = -1, total = 0;
    for (size_t i = 0; i < g->nservers; i++) {
        const ups_server_t *s = &g->servers[i];
        if (s == avoid) continue;
        cw[i] += s->weight;
        total += s->weight;
        if (!best || cw[i] > cw[best_i]) {
            best = s;
            best_i = (int)i;
        }
    }
    if (best) cw[best_i] -= total;
    return best;
}
