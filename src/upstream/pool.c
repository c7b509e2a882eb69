/*
 * Per-worker keep-alive pools of origin connections. An idle connection is
 * watched for reads: an origin that closes it (or sends anything unasked)
 * makes it useless, so it is closed at once rather than handed out.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "upstream/upstream_int.h"

static void pool_unlink(ups_worker_t *uw, ups_conn_t *uc)
{
    if (uc->prev)
        uc->prev->next = uc->next;
    else
        uw->idle = uc->next;
    if (uc->next) uc->next->prev = uc->prev;
    uc->prev = uc->next = NULL;
    uw->nidle--;
}

static void conn_free(void *arg) { free(arg); }

void ups_conn_close(ups_conn_t *uc)
{
    pt_loop_t *loop = uc->uw->w->loop;
    if (uc->peer) {
        atomic_fetch_sub_explicit(&uc->peer->conns, 1, memory_order_relaxed);
        ups_peer_unref(uc->peer);
        uc->peer = NULL;
    }
    if (uc->gs) {
        atomic_fetch_sub_explicit(&uc->gs->conns, 1, memory_order_relaxed);
        uc->gs = NULL;
    }
    pt_timer_stop(loop, &uc->idle_timer);
    pt_io_stop(loop, &uc->io);
    close(uc->io.fd);
    uc->io.fd = -1;
    if (pt_loop_defer(loop, conn_free, uc) < 0) pt_log_error("leaking an upstream connection");
}

static void on_idle_event(pt_io_t *io, unsigned events)
{
    ups_conn_t *uc = io->data;
    pt_unused(events);
    if (uc->fwd) return; /* in use: the exchange replaced the callback */
    pool_unlink(uc->uw, uc);
    ups_conn_close(uc);
}

static void on_idle_timeout(pt_timer_t *t)
{
    ups_conn_t *uc = t->data;
    pool_unlink(uc->uw, uc);
    ups_conn_close(uc);
}

ups_conn_t *ups_pool_take(ups_worker_t *uw, const ups_member_t *m)
{
    if (m->pp != PP_NONE) return NULL; /* PROXY headers are per client: never shared */
    for (ups_conn_t *uc = uw->idle; uc; uc = uc->next) {
        if (uc->peer != m->peer) continue;
        pool_unlink(uw, uc);
        pt_timer_stop(uw->w->loop, &uc->idle_timer);
        uc->reused = true;
        return uc;
    }
    return NULL;
}

static size_t idle_for(ups_worker_t *uw, const ups_peer_t *p)
{
    size_t n = 0;
    for (ups_conn_t *uc = uw->idle; uc; uc = uc->next) n += uc->peer == p;
    return n;
}

bool ups_pool_evict_one(ups_worker_t *uw, const ups_gstate_t *gs)
{
    for (ups_conn_t *uc = uw->idle; uc; uc = uc->next) {
        if (uc->gs != gs) continue;
        pool_unlink(uw, uc);
        ups_conn_close(uc);
        return true;
    }
    return false;
}

void ups_pool_release(ups_worker_t *uw, ups_conn_t *uc, const ups_group_t *g, bool reusable)
{
    uc->fwd = NULL;
    if (!reusable || uw->w->draining || uc->pp != PP_NONE || g->keepalive == 0 ||
        uc->nreq >= g->keepalive_requests || idle_for(uw, uc->peer) >= (size_t)g->keepalive) {
        ups_conn_close(uc);
        return;
    }
    uc->io.cb = on_idle_event;
    uc->io.data = uc;
    uc->next = uw->idle;
    uc->prev = NULL;
    if (uw->idle) uw->idle->prev = uc;
    uw->idle = uc;
    uw->nidle++;
    pt_timer_init(&uc->idle_timer, on_idle_timeout, uc);
    pt_timer_start(uw->w->loop, &uc->idle_timer, g->keepalive_timeout);
}

void ups_pool_close_all(ups_worker_t *uw)
{
    while (uw && uw->idle) {
        ups_conn_t *uc = uw->idle;
        pool_unlink(uw, uc);
        ups_conn_close(uc);
    }
}
