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

ups_conn_t *ups_pool_take(ups_worker_t *uw, const ups_server_t *s)
{
    if (s->pp != PP_NONE) return NULL; /* PROXY headers are per client: never shared */
    for (ups_conn_t *uc = uw->idle; uc; uc = uc->next) {
        if (!pt_addr_equal(&uc->addr, &s->addr)) continue;
        pool_unlink(uw, uc);
        pt_timer_stop(uw->w->loop, &uc->idle_timer);
        uc->reused = true;
        return uc;
    }
    return NULL;
}

static size_t idle_for(ups_worker_t *uw, const pt_addr_t *a)
{
    size_t n = 0;
    for (ups_conn_t *uc = uw->idle; uc; uc = uc->next) n += pt_addr_equal(&uc->addr, a);
    return n;
}

void ups_pool_release(ups_worker_t *uw, ups_conn_t *uc, const ups_group_t *g, bool reusable)
{
    uc->fwd = NULL;
    if (!reusable || uw->w->draining || uc->pp != PP_NONE || g->keepalive == 0 ||
        uc->nreq >= g->keepalive_requests || idle_for(uw, &uc->addr) >= (size_t)g->keepalive) {
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
