/*
 * The runtime: worker threads, listening sockets, signals, reload and
 * graceful drain. The main thread is the control thread: it loads configs,
 * binds sockets, runs the admin listener and reacts to signals through a
 * signalfd; workers only serve traffic.
 *
 * Reload: a new snapshot is built and validated on the control thread; a
 * bad one is logged and dropped. A good one gets its listeners bound
 * (sockets for addresses that stay are reused), then each worker is told
 * through its loop's post queue to adopt it. Requests in flight keep the
 * snapshot they started with.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/admin.h"
#include "proxy/request_int.h"

#define MAX_WORKERS 256

/* One bound listen address: one fd shared by all workers, or one per worker. */
typedef struct bound {
    pt_addr_t addr;
    bool reuseport;
    bool proxy_protocol;
    int nfds;
    int fds[MAX_WORKERS];
    bool used; /* in the snapshot being installed */
} bound_t;

typedef struct pt_runtime {
    pt_snapshot_t *snap;
    uint64_t generation;
    int nworkers;
    pt_worker_t *workers[MAX_WORKERS];
    pthread_t threads[MAX_WORKERS];
    pt_loop_t *loop; /* control */
    pt_io_t sig_io;
    bound_t *bounds;
    size_t nbounds;
    pt_admin_t *admin;
    pt_alog_writer_t *alog;
    pt_proxy_metrics_t metrics;
    uint64_t start_wall_ms;
    _Atomic int workers_running;
    int nthreads; /* started */
    bool stopping;
    int exit_code;
    const char *pid_written;
    pt_control_t ctl;
    pt_route_registry_t *routes;
} pt_runtime_t;

/* ------------------------------------------------------------------ */
/* worker caches                                                       */
/* ------------------------------------------------------------------ */

typedef struct free_node {
    struct free_node *next;
} free_node_t;


/*
 * Per-worker caches of read buffers and request pools. Under load every
 * request takes and returns both; going through malloc/free each time makes
 * glibc trim and re-grow its heap, and the kernel zero fresh pages, which
 * shows as system time per request. The caches are large, and a 1 s trim
 * frees half of what stayed unused over the last second, so memory follows
 * load down again.
 */
#define MAX_FREE_BUFS 1024
#define MAX_FREE_POOLS 1024
#define REQ_POOL_BLOCK 8192

/*
 * Two size classes are in use at once (client head buffers and proxy
 * buffers), so the cache keeps one free list per class; a class whose size
 * a reload changed is emptied.
 */
static void buf_class_trim(struct pt_buf_class *c, size_t keep)
{
    while (c->n > keep) {
        free_node_t *n = c->head;
        c->head = n->next;
        free(n);
        c->n--;
    }
    if (c->low > c->n) c->low = c->n;
}

static struct pt_buf_class *buf_class(pt_worker_t *w, size_t size, bool take)
{
    struct pt_buf_class *cls = w->priv->bufs;
    for (int i = 0; i < 2; i++)
        if (cls[i].size == size) return &cls[i];
    if (take) return NULL;
    /* Reuse the class holding fewer buffers. */
    struct pt_buf_class *c = cls[0].n <= cls[1].n ? &cls[0] : &cls[1];
    buf_class_trim(c, 0);
    c->size = size;
    return c;
}

void *pt_worker_buf_get(pt_worker_t *w, size_t size)
{
    struct pt_buf_class *c = buf_class(w, size, true);
    if (c && c->head) {
        free_node_t *n = c->head;
        c->head = n->next;
        c->n--;
        if (c->n < c->low) c->low = c->n;
        return n;
    }
    if (c) c->low = 0;
    return malloc(size);
}

/* Armed while the caches hold something to trim or while draining; an idle
 * worker with empty caches sleeps until an event. */
static void arm_tick(pt_worker_t *w)
{
    if (!pt_timer_armed(&w->priv->tick)) pt_timer_start(w->loop, &w->priv->tick, 1000);
}

void pt_worker_buf_put(pt_worker_t *w, void *buf, size_t size)
{
    struct pt_buf_class *c = buf_class(w, size, false);
    if (c->n >= MAX_FREE_BUFS) {
        free(buf);
        return;
    }
    free_node_t *n = buf;
    n->next = c->head;
    c->head = n;
    c->n++;
    arm_tick(w);
}

pt_pool_t *pt_worker_pool_get(pt_worker_t *w)
{
    struct pt_worker_priv *p = w->priv;
    if (p->npools > 0) {
        pt_pool_t *pool = p->pools[--p->npools];
        if (p->npools < p->pools_low) p->pools_low = p->npools;
        return pool;
    }
    p->pools_low = 0;
    return pt_pool_create(REQ_POOL_BLOCK);
}

void pt_worker_pool_put(pt_worker_t *w, pt_pool_t *pool)
{
    struct pt_worker_priv *p = w->priv;
    if (p->npools == MAX_FREE_POOLS) {
        pt_pool_destroy(pool);
        return;
    }
    pt_pool_reset(pool);
    p->pools[p->npools++] = pool;
    arm_tick(w);
}

/* Frees half of what the caches did not need since the last trim. */
static void worker_caches_trim(pt_worker_t *w)
{
    struct pt_worker_priv *p = w->priv;
    for (int i = 0; i < 2; i++) {
        struct pt_buf_class *c = &p->bufs[i];
        buf_class_trim(c, c->n - (c->low + 1) / 2); /* round up: the last one goes too */
        c->low = c->n;
    }
    size_t keep = p->npools - (p->pools_low + 1) / 2;
    while (p->npools > keep) pt_pool_destroy(p->pools[--p->npools]);
    p->pools_low = p->npools;
}

static void worker_caches_free(pt_worker_t *w)
{
    struct pt_worker_priv *p = w->priv;
    for (int i = 0; i < 2; i++) buf_class_trim(&p->bufs[i], 0);
    while (p->npools > 0) pt_pool_destroy(p->pools[--p->npools]);
}

struct pt_worker_scratch *pt_worker_scratch(pt_worker_t *w)
{
    return (struct pt_worker_scratch *)w->priv->scratch;
}

/* ------------------------------------------------------------------ */
/* worker listeners                                                    */
/* ------------------------------------------------------------------ */

static void on_listener(pt_io_t *io, unsigned events)
{
    pt_wlistener_t *l = io->data;
    pt_unused(events);
    pt_conn_accept_all(l->w, io->fd, &l->addr, l->proxy_protocol);
}

static void listeners_close_all(pt_worker_t *w)
{
    struct pt_worker_priv *p = w->priv;
    while (p->listeners) {
        pt_wlistener_t *l = p->listeners;
        p->listeners = l->next;
        pt_io_stop(w->loop, &l->io); /* the fd belongs to the runtime's bound table */
        free(l);
    }
}

/* Makes the worker's listeners match the bound set for its snapshot. */
static void listeners_sync(pt_worker_t *w, const bound_t *bounds, size_t nbounds)
{
    struct pt_worker_priv *p = w->priv;
    pt_wlistener_t **pp = &p->listeners;
    /* Drop the ones whose fd is no longer in the set. */
    while (*pp) {
        pt_wlistener_t *l = *pp;
        bool keep = false;
        for (size_t i = 0; i < nbounds && !keep; i++) {
            const bound_t *b = &bounds[i];
            int fd = b->reuseport ? b->fds[w->id] : b->fds[0];
            keep = b->used && fd == l->io.fd;
            if (keep) l->proxy_protocol = b->proxy_protocol;
        }
        if (keep) {
            pp = &l->next;
            continue;
        }
        *pp = l->next;
        pt_io_stop(w->loop, &l->io);
        free(l);
    }
    for (size_t i = 0; i < nbounds; i++) {
        const bound_t *b = &bounds[i];
        if (!b->used) continue;
        int fd = b->reuseport ? b->fds[w->id] : b->fds[0];
        bool have = false;
        for (pt_wlistener_t *l = p->listeners; l && !have; l = l->next) have = l->io.fd == fd;
        if (have) continue;
        pt_wlistener_t *l = calloc(1, sizeof(*l));
        if (!l) {
            pt_log_error("worker %d: out of memory adding a listener", w->id);
            continue;
        }
        l->io.fd = fd;
        l->io.cb = on_listener;
        l->io.data = l;
        l->w = w;
        l->addr = b->addr;
        l->proxy_protocol = b->proxy_protocol;
        if (pt_io_start_read(w->loop, &l->io) < 0) {
            pt_log_error("worker %d: cannot watch a listener: %s", w->id, strerror(errno));
            free(l);
            continue;
        }
        l->next = p->listeners;
        p->listeners = l;
        /* Connections may already wait in the queue: no edge will come for them. */
        pt_conn_accept_all(w, fd, &l->addr, l->proxy_protocol);
    }
}

/* ------------------------------------------------------------------ */
/* worker threads                                                      */
/* ------------------------------------------------------------------ */

/*
 * What a worker needs to serve a config: the snapshot and its own copy of
 * the bound sockets (the control thread may replace its array at the next
 * reload while the worker still reads this one).
 */
typedef struct adopt_msg {
    pt_worker_t *w;
    pt_snapshot_t *snap;
    bound_t *bounds;
    size_t nbounds;
} adopt_msg_t;

static adopt_msg_t *adopt_msg_new(pt_runtime_t *rt, pt_worker_t *w, pt_snapshot_t *snap)
{
    adopt_msg_t *m = malloc(sizeof(*m));
    bound_t *copy = malloc((rt->nbounds ? rt->nbounds : 1) * sizeof(*copy));
    if (!m || !copy) {
        free(m);
        free(copy);
        return NULL;
    }
    if (rt->nbounds) memcpy(copy, rt->bounds, rt->nbounds * sizeof(*copy));
    *m = (adopt_msg_t){w, pt_snapshot_ref(snap), copy, rt->nbounds};
    return m;
}

static void adopt_msg_free(adopt_msg_t *m)
{
    if (m->snap) pt_snapshot_unref(m->snap);
    free(m->bounds);
    free(m);
}

static void worker_adopt(void *arg)
{
    adopt_msg_t *m = arg;
    pt_worker_t *w = m->w;
    pt_snapshot_t *old = w->snap;
    w->snap = m->snap; /* the message's reference moves to the worker */
    m->snap = NULL;
    listeners_sync(w, m->bounds, m->nbounds);
    pt_snapshot_unref(old);
    adopt_msg_free(m);
}

static void worker_maybe_exit(pt_worker_t *w)
{
    if (w->draining && w->nconns == 0) pt_loop_stop(w->loop);
}

/* True when there is nothing for the trim tick to do. */
static bool caches_empty(const pt_worker_t *w)
{
    const struct pt_worker_priv *p = w->priv;
    return p->bufs[0].n == 0 && p->bufs[1].n == 0 && p->npools == 0;
}

static void on_tick(pt_timer_t *t)
{
    pt_worker_t *w = t->data;
    worker_caches_trim(w);
    worker_maybe_exit(w);
    if (w->draining)
        pt_timer_start(w->loop, t, 50);
    else if (!caches_empty(w))
        pt_timer_start(w->loop, t, 1000);
}

static void on_alog_timer(pt_timer_t *t)
{
    pt_worker_t *w = t->data;
    if (w->priv->alog) pt_alog_flush(w->priv->alog);
}

static void on_drain_timeout(pt_timer_t *t)
{
    pt_worker_t *w = t->data;
    pt_log_warn("worker %d: shutdown timeout, closing %llu connections", w->id,
                (unsigned long long)w->nconns);
    pt_conn_close_all(w);
    pt_loop_stop(w->loop);
}

static void worker_drain(void *arg)
{
    pt_worker_t *w = arg;
    if (w->draining) return;
    w->draining = true;
    listeners_close_all(w);
    pt_conn_drain_all(w);
    const pt_proxy_module_t *const *mods;
    size_t nm = pt_proxy_modules(&mods);
    for (size_t i = 0; i < nm; i++)
        if (mods[i]->worker_drain) mods[i]->worker_drain(w);
    pt_timer_start(w->loop, &w->priv->drain_timer, w->snap->main.shutdown_timeout);
    pt_timer_start(w->loop, &w->priv->tick, 10);
}

static void worker_stop_now(void *arg)
{
    pt_worker_t *w = arg;
    w->draining = true;
    listeners_close_all(w);
    pt_conn_close_all(w);
    pt_loop_stop(w->loop);
}

static void control_stop(void *arg)
{
    pt_runtime_t *rt = arg;
    pt_loop_stop(rt->loop);
}

static void *worker_main(void *arg)
{
    pt_worker_t *w = arg;
    pt_runtime_t *rt = w->priv->rt;
    pt_metrics_thread_attach(w->id + 1);
    const pt_proxy_module_t *const *mods;
    size_t nm = pt_proxy_modules(&mods);
    for (size_t i = 0; i < nm; i++)
        if (mods[i]->worker_init && mods[i]->worker_init(w) < 0)
            pt_log_error("worker %d: module %s failed to start", w->id, mods[i]->name);
    /* Listen only now: a connection accepted before the modules set up
     * their per-worker state would find none. */
    adopt_msg_t *init = w->priv->init;
    w->priv->init = NULL;
    listeners_sync(w, init->bounds, init->nbounds);
    adopt_msg_free(init);
    int rc = pt_loop_run(w->loop);
    if (rc < 0) pt_log(PT_LOG_CRIT, "worker %d: event loop failed: %s", w->id, strerror(-rc));
    listeners_close_all(w);
    pt_conn_close_all(w);
    for (size_t i = 0; i < nm; i++)
        if (mods[i]->worker_exit) mods[i]->worker_exit(w);
    /* Run deferred frees queued by the closes above. */
    pt_timer_stop(w->loop, &w->priv->tick);
    pt_timer_stop(w->loop, &w->priv->alog_timer);
    pt_timer_stop(w->loop, &w->priv->drain_timer);
    if (w->priv->alog) pt_alog_flush(w->priv->alog);
    /* The last worker out wakes the control thread (it sleeps on events). */
    if (atomic_fetch_sub(&rt->workers_running, 1) == 1) pt_loop_post(rt->loop, control_stop, rt);
    return NULL;
}

static pt_worker_t *worker_create(pt_runtime_t *rt, int id)
{
    pt_worker_t *w = calloc(1, sizeof(*w));
    struct pt_worker_priv *p = calloc(1, sizeof(*p));
    if (!w || !p) goto fail;
    w->priv = p;
    w->id = id;
    w->ctl = &rt->ctl;
    w->loop = pt_loop_create();
    p->scratch = calloc(1, sizeof(struct pt_worker_scratch));
    if (!w->loop || !p->scratch) goto fail;
    p->rt = rt;
    p->m = &rt->metrics;
    p->alog = pt_alog_create(rt->alog);
    if (!p->alog) goto fail;
    pt_timer_init(&p->tick, on_tick, w);
    pt_timer_init(&p->alog_timer, on_alog_timer, w);
    pt_timer_init(&p->drain_timer, on_drain_timeout, w);
    if (getrandom(&w->rng, sizeof(w->rng), 0) != sizeof(w->rng) || w->rng == 0)
        w->rng = pt_time_mono_us() * 2654435761u + (uint64_t)id + 1;
    w->snap = pt_snapshot_ref(rt->snap);
    p->init = adopt_msg_new(rt, w, rt->snap);
    if (!p->init) goto fail_snap;
    return w;
fail_snap:
    pt_snapshot_unref(w->snap);
    pt_alog_destroy(p->alog);
fail:
    if (w && w->loop) pt_loop_destroy(w->loop);
    if (p) {
        free(p->scratch);
        free(p);
    }
    free(w);
    return NULL;
}

static void worker_destroy(pt_worker_t *w)
{
    if (w->priv->init) adopt_msg_free(w->priv->init); /* thread never ran */
    pt_loop_destroy(w->loop); /* runs the last deferred frees */
    pt_alog_destroy(w->priv->alog);
    pt_snapshot_unref(w->snap);
    worker_caches_free(w);
    free(w->priv->scratch);
    free(w->priv);
    free(w);
}

/* ------------------------------------------------------------------ */
/* binding                                                             */
/* ------------------------------------------------------------------ */

static bound_t *bound_find(pt_runtime_t *rt, const pt_listen_conf_t *l)
{
    for (size_t i = 0; i < rt->nbounds; i++) {
        bound_t *b = &rt->bounds[i];
        if (pt_addr_equal(&b->addr, &l->addr) && b->reuseport == l->reuseport) return b;
    }
    return NULL;
}

static void bound_close(bound_t *b)
{
    for (int i = 0; i < b->nfds; i++)
        if (b->fds[i] >= 0) close(b->fds[i]);
    b->nfds = 0;
}

static int bound_open(pt_runtime_t *rt, bound_t *b, const pt_listen_conf_t *l)
{
    char name[64];
    pt_addr_format(&l->addr, name, sizeof(name));
    b->addr = l->addr;
    b->reuseport = l->reuseport;
    b->nfds = l->reuseport ? rt->nworkers : 1;
    for (int i = 0; i < b->nfds; i++) b->fds[i] = -1;
    for (int i = 0; i < b->nfds; i++) {
        int fd = pt_socket_listen(&l->addr, l->backlog, l->reuseport);
        if (fd < 0) {
            pt_log_error("cannot listen on %s: %s", name, strerror(-fd));
            fprintf(stderr, "portico: cannot listen on %s: %s\n", name, strerror(-fd));
            bound_close(b);
            return fd;
        }
        b->fds[i] = fd;
    }
    return 0;
}

/*
 * Binds what snap needs, reusing sockets already bound. On failure nothing
 * changes (new sockets are closed). On success, sockets no longer needed
 * are marked unused (closed after the workers let go of them).
 */
static int bind_snapshot(pt_runtime_t *rt, const pt_snapshot_t *snap, bound_t **unused,
                         size_t *nunused)
{
    size_t n = snap->listens.n;
    bound_t *next = calloc(n ? n : 1, sizeof(*next));
    if (!next) return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const pt_listen_conf_t *l = pt_array_at(&snap->listens, pt_listen_conf_t, i);
        bound_t *old = bound_find(rt, l);
        if (old && old->used) {
            next[i] = *old;
            old->used = false; /* moved */
        } else {
            int rc = bound_open(rt, &next[i], l);
            if (rc < 0) {
                for (size_t j = 0; j < i; j++) {
                    bound_t *o = NULL;
                    for (size_t k = 0; k < rt->nbounds; k++)
                        if (rt->bounds[k].nfds > 0 && rt->bounds[k].fds[0] == next[j].fds[0])
                            o = &rt->bounds[k];
                    if (o)
                        o->used = true; /* give it back */
                    else
                        bound_close(&next[j]);
                }
                free(next);
                return rc;
            }
        }
        next[i].proxy_protocol = l->proxy_protocol;
        next[i].used = true;
    }
    *unused = rt->bounds;
    *nunused = rt->nbounds;
    rt->bounds = next;
    rt->nbounds = n;
    return 0;
}

static void unused_close(bound_t *old, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (old[i].used) bound_close(&old[i]);
    free(old);
}

/* ------------------------------------------------------------------ */
/* control: reload, stop, signals                                      */
/* ------------------------------------------------------------------ */

static uint64_t generation_of(void *arg) { return ((pt_runtime_t *)arg)->generation; }

typedef struct close_msg {
    bound_t *old;
    size_t n;
    _Atomic int pending;
} close_msg_t;

/* Tells every module the snapshot goes live; on failure re-adopts prev. */
static int modules_adopt(pt_runtime_t *rt, pt_snapshot_t *snap, pt_snapshot_t *prev)
{
    if (rt->routes) pt_route_registry_bind(rt->routes, snap);
    const pt_proxy_module_t *const *mods;
    size_t nm = pt_proxy_modules(&mods);
    for (size_t i = 0; i < nm; i++) {
        if (!mods[i]->control_adopt) continue;
        int rc = mods[i]->control_adopt(&rt->ctl, snap);
        if (rc < 0) {
            pt_log_error("module %s cannot adopt the configuration: %s", mods[i]->name,
                         strerror(-rc));
            for (size_t k = 0; prev && k <= i; k++)
                if (mods[k]->control_adopt) mods[k]->control_adopt(&rt->ctl, prev);
            return rc;
        }
    }
    return 0;
}

/* Returns 0, or -EINVAL with err filled (the running configuration stays). */
static int reload(pt_runtime_t *rt, pt_conf_err_t *err)
{
    pt_log_notice("reloading configuration %s", rt->snap->conf_path);
    pt_snapshot_t *snap = pt_snapshot_load(rt->snap->conf_path, rt->generation + 1, err);
    if (!snap) {
        pt_log_error("reload failed, keeping the running configuration:\n%s", err->msg);
        return -EINVAL;
    }
    if (snap->main.workers != rt->nworkers)
        pt_log_warn("reload: \"workers %d\" takes effect only after a restart (running %d)",
                    snap->main.workers, rt->nworkers);
    if (modules_adopt(rt, snap, rt->snap) < 0) {
        snprintf(err->msg, sizeof(err->msg), "a module could not adopt the configuration");
        pt_snapshot_unref(snap);
        return -EINVAL;
    }
    bound_t *old;
    size_t nold;
    int rc = bind_snapshot(rt, snap, &old, &nold);
    if (rc < 0) {
        snprintf(err->msg, sizeof(err->msg), "cannot bind a listen address: %s", strerror(-rc));
        pt_log_error("reload failed, keeping the running configuration: %s", err->msg);
        modules_adopt(rt, rt->snap, NULL);
        pt_snapshot_unref(snap);
        return -EINVAL;
    }
    if (pt_alog_writer_set_path(rt->alog, snap->main.access_log) < 0)
        pt_log_error("cannot open access log %s", snap->main.access_log);
    if (snap->main.error_log && pt_log_open(snap->main.error_log, snap->main.error_log_level) < 0)
        pt_log_error("cannot open error log %s", snap->main.error_log);
    rt->generation++;
    pt_snapshot_t *prev = rt->snap;
    rt->snap = snap;
    for (int i = 0; i < rt->nworkers; i++) {
        adopt_msg_t *m = adopt_msg_new(rt, rt->workers[i], snap);
        if (!m) {
            pt_log_error("worker %d: out of memory, keeps the previous configuration", i);
            continue;
        }
        if (pt_loop_post(rt->workers[i]->loop, worker_adopt, m) < 0) adopt_msg_free(m);
    }
    pt_snapshot_unref(prev);
    /*
     * Workers stop watching removed sockets when they adopt; give them a
     * moment before closing (a closed fd number could be reused while a
     * worker still has it registered).
     */
    usleep(100 * 1000);
    unused_close(old, nold);
    pt_log_notice("configuration generation %llu is live", (unsigned long long)rt->generation);
    return 0;
}

static int control_reload(pt_control_t *ctl, pt_conf_err_t *err)
{
    pt_runtime_t *rt = ctl->rt;
    if (rt->stopping) {
        snprintf(err->msg, sizeof(err->msg), "shutting down");
        return -EINVAL;
    }
    return reload(rt, err);
}

static void stop_workers(pt_runtime_t *rt, bool graceful)
{
    for (int i = 0; i < rt->nworkers; i++)
        pt_loop_post(rt->workers[i]->loop, graceful ? worker_drain : worker_stop_now,
                     rt->workers[i]);
}

static void on_signal(pt_io_t *io, unsigned events)
{
    pt_runtime_t *rt = io->data;
    struct signalfd_siginfo si;
    pt_unused(events);
    while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGHUP:
            if (!rt->stopping) {
                pt_conf_err_t err = {{0}};
                reload(rt, &err);
            }
            break;
        case SIGUSR1:
            pt_log_notice("reopening logs");
            pt_log_reopen();
            pt_alog_writer_reopen(rt->alog);
            break;
        case SIGTERM:
            if (!rt->stopping) pt_log_notice("SIGTERM: graceful shutdown");
            rt->stopping = true;
            stop_workers(rt, true);
            break;
        case SIGQUIT:
        case SIGINT:
            pt_log_notice("%s: immediate shutdown", si.ssi_signo == SIGINT ? "SIGINT" : "SIGQUIT");
            rt->stopping = true;
            stop_workers(rt, false);
            break;
        default:
            break;
        }
    }
    io->readable = false;
}


/* ------------------------------------------------------------------ */
/* process set-up                                                      */
/* ------------------------------------------------------------------ */

static int write_pid(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return -errno;
    fprintf(f, "%d\n", (int)getpid());
    if (fclose(f) != 0 || rename(tmp, path) < 0) {
        unlink(tmp);
        return -errno;
    }
    return 0;
}

static int drop_privileges(const pt_main_conf_t *m)
{
    if (!m->user) return 0;
    if (geteuid() != 0) {
        pt_log_warn("\"user %s\" ignored: not running as root", m->user);
        return 0;
    }
    struct passwd *pw = getpwnam(m->user);
    if (!pw) return -ENOENT;
    gid_t gid = pw->pw_gid;
    if (m->group) {
        struct group *gr = getgrnam(m->group);
        if (!gr) return -ENOENT;
        gid = gr->gr_gid;
    }
    if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(pw->pw_uid) < 0) return -errno;
    return 0;
}

static int daemonize(void)
{
    pid_t pid = fork();
    if (pid < 0) return -errno;
    if (pid > 0) _exit(0);
    if (setsid() < 0) return -errno;
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        if (fd > 2) close(fd);
    }
    return 0;
}

static void register_metrics(pt_proxy_metrics_t *m)
{
    static const char *const classes[6] = {"class=\"aborted\"", "class=\"1xx\"", "class=\"2xx\"",
                                           "class=\"3xx\"",     "class=\"4xx\"", "class=\"5xx\""};
    static const double buckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25,  0.5,   1,    2.5,   5,    10};
    m->conns_total = pt_metric_counter("portico_connections_total",
                                       "Client connections accepted.", "");
    m->conns_active = pt_metric_gauge("portico_connections_active", "Client connections open.", "");
    m->conns_idle = pt_metric_gauge("portico_connections_idle",
                                    "Client connections open and waiting for a request.", "");
    static const char *const reasons[PT_CLOSE_NREASONS] = {
        "reason=\"client\"",  "reason=\"done\"",  "reason=\"idle_timeout\"",
        "reason=\"timeout\"", "reason=\"error\"", "reason=\"shutdown\""};
    for (int i = 0; i < PT_CLOSE_NREASONS; i++)
        m->conns_closed[i] = pt_metric_counter("portico_connections_closed_total",
                                               "Client connections closed, by reason.", reasons[i]);
    for (int i = 0; i < 6; i++)
        m->requests_by_class[i] = pt_metric_counter("portico_requests_total",
                                                    "Requests by response status class.",
                                                    classes[i]);
    m->request_duration = pt_metric_histogram("portico_request_duration_seconds",
                                              "Time from request head to the end of the response.",
                                              "", buckets, pt_countof(buckets));
    m->bytes_sent = pt_metric_counter("portico_response_bytes_total",
                                      "Bytes sent to clients (heads and bodies).", "");
}

static void raise_nofile(int want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return;
    rlim_t need = (rlim_t)want + 64;
    if (rl.rlim_cur >= need) return;
    rl.rlim_cur = need < rl.rlim_max ? need : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < need)
        pt_log_warn("open file limit %llu is below worker_connections x workers; raise ulimit -n",
                    (unsigned long long)rl.rlim_cur);
}

static int start_workers(pt_runtime_t *rt)
{
    for (int i = 0; i < rt->nworkers; i++) {
        rt->workers[i] = worker_create(rt, i);
        if (!rt->workers[i]) return -ENOMEM;
    }
    rt->workers_running = rt->nworkers;
    for (int i = 0; i < rt->nworkers; i++) {
        int rc = pthread_create(&rt->threads[i], NULL, worker_main, rt->workers[i]);
        if (rc != 0) {
            rt->workers_running -= rt->nworkers - i;
            return -rc;
        }
        rt->nthreads++;
    }
    return 0;
}

static int control_setup(pt_runtime_t *rt, sigset_t *mask)
{
    rt->loop = pt_loop_create();
    if (!rt->loop) return -ENOMEM;
    rt->sig_io.fd = signalfd(-1, mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (rt->sig_io.fd < 0) return -errno;
    rt->sig_io.cb = on_signal;
    rt->sig_io.data = rt;
    return pt_io_start_read(rt->loop, &rt->sig_io);
}

/* POST /reload: 200 with the new generation, 400 with the config error. */
static int admin_reload(const pt_admin_request_t *req, pt_admin_response_t *resp, void *arg)
{
    pt_runtime_t *rt = arg;
    if (strcmp(req->method, "POST") != 0) {
        resp->status = 405;
        return pt_admin_json_error(resp, "use POST");
    }
    pt_conf_err_t err = {{0}};
    if (control_reload(&rt->ctl, &err) < 0) {
        resp->status = 400;
        return pt_admin_json_error(resp, err.msg);
    }
    char buf[64];
    int n = snprintf(buf, sizeof(buf), "{\"generation\":%llu}\n",
                     (unsigned long long)rt->generation);
    return pt_admin_body(resp, buf, (size_t)n, "application/json");
}

static int admin_setup(pt_runtime_t *rt)
{
    if (!rt->snap->main.admin_listen) return 0;
    pt_admin_status_t st = {rt->start_wall_ms, rt->nworkers, generation_of, rt,
                            rt->snap->main.admin_token};
    rt->admin = pt_admin_create(&st);
    if (!rt->admin) return -ENOMEM;
    int rc = pt_admin_register(rt->admin, "/reload", admin_reload, rt);
    if (rc < 0) return rc;
    return pt_admin_start(rt->admin, rt->loop, rt->snap->main.admin_listen);
}

/* The control context modules get; then their control_init and first adopt. */
static int modules_control_init(pt_runtime_t *rt)
{
    rt->routes = pt_route_registry_create();
    if (!rt->routes || pt_metrics_collector_add(pt_route_registry_collect, rt->routes) < 0)
        return -ENOMEM;
    rt->ctl = (pt_control_t){.loop = rt->loop, .admin = rt->admin, .nworkers = rt->nworkers,
                             .workers = rt->workers, .reload = control_reload, .rt = rt};
    const pt_proxy_module_t *const *mods;
    size_t nm = pt_proxy_modules(&mods);
    for (size_t i = 0; i < nm; i++) {
        if (!mods[i]->control_init) continue;
        int rc = mods[i]->control_init(&rt->ctl);
        if (rc < 0) {
            pt_log_error("module %s cannot start: %s", mods[i]->name, strerror(-rc));
            return rc;
        }
    }
    return modules_adopt(rt, rt->snap, NULL);
}

static void modules_control_exit(pt_runtime_t *rt)
{
    const pt_proxy_module_t *const *mods;
    size_t nm = pt_proxy_modules(&mods);
    for (size_t i = 0; i < nm; i++)
        if (mods[i]->control_exit) mods[i]->control_exit(&rt->ctl);
}

static void runtime_teardown(pt_runtime_t *rt)
{
    for (int i = 0; i < rt->nthreads; i++) pthread_join(rt->threads[i], NULL);
    /*
     * Workers first: their loops run the tasks still posted to them, which
     * may post to the control loop (module housekeeping); run those too
     * while the modules' state still exists, then let the modules go.
     */
    for (int i = 0; i < rt->nworkers; i++) {
        if (rt->workers[i]) worker_destroy(rt->workers[i]);
        rt->workers[i] = NULL;
    }
    if (rt->loop) pt_loop_run_pending(rt->loop);
    if (rt->ctl.loop) modules_control_exit(rt);
    if (rt->routes) {
        pt_metrics_collector_remove(pt_route_registry_collect, rt->routes);
        pt_route_registry_destroy(rt->routes);
    }
    if (rt->admin) pt_admin_destroy(rt->admin);
    for (size_t i = 0; i < rt->nbounds; i++) bound_close(&rt->bounds[i]);
    free(rt->bounds);
    if (rt->alog) pt_alog_writer_destroy(rt->alog);
    if (rt->sig_io.fd > 0) close(rt->sig_io.fd);
    if (rt->loop) pt_loop_destroy(rt->loop);
    if (rt->pid_written) unlink(rt->pid_written);
    pt_snapshot_unref(rt->snap);
}

int pt_proxy_run(const pt_run_opts_t *opts)
{
    pt_runtime_t *rt = calloc(1, sizeof(*rt));
    if (!rt) return 1;
    pt_conf_err_t err = {{0}};
    rt->start_wall_ms = pt_time_wall_ms();
    rt->generation = 1;
    rt->snap = pt_snapshot_load(opts->conf_path, 1, &err);
    if (!rt->snap) {
        fprintf(stderr, "%s\n", err.msg);
        free(rt);
        return 1;
    }
    const pt_main_conf_t *m = &rt->snap->main;
    rt->nworkers = m->workers;
    if (pt_log_open(m->error_log, m->error_log_level) < 0)
        fprintf(stderr, "portico: cannot open error log %s: %s\n", m->error_log, strerror(errno));
    signal(SIGPIPE, SIG_IGN);
    if (opts->daemonize && daemonize() < 0) {
        fprintf(stderr, "portico: cannot daemonize: %s\n", strerror(errno));
        goto fail;
    }
    sigset_t mask;
    sigemptyset(&mask);
    int sigs[] = {SIGHUP, SIGTERM, SIGQUIT, SIGINT, SIGUSR1};
    for (size_t i = 0; i < pt_countof(sigs); i++) sigaddset(&mask, sigs[i]);
    pthread_sigmask(SIG_BLOCK, &mask, NULL); /* threads inherit the mask */
    raise_nofile(m->worker_connections * m->workers);
    register_metrics(&rt->metrics);
    pt_metrics_thread_attach(0);
    rt->alog = pt_alog_writer_create();
    if (!rt->alog || pt_alog_writer_set_path(rt->alog, m->access_log) < 0) {
        pt_log_error("cannot open access log %s", m->access_log ? m->access_log : "");
        goto fail;
    }
    bound_t *none;
    size_t nnone;
    if (bind_snapshot(rt, rt->snap, &none, &nnone) < 0) goto fail;
    free(none);
    if (control_setup(rt, &mask) < 0 || admin_setup(rt) < 0 || modules_control_init(rt) < 0)
        goto fail;
    if (drop_privileges(m) < 0) {
        pt_log_error("cannot switch to user %s: %s", m->user, strerror(errno));
        goto fail;
    }
    if (m->pid_path) {
        if (write_pid(m->pid_path) < 0) {
            pt_log_error("cannot write pid file %s: %s", m->pid_path, strerror(errno));
            goto fail;
        }
        rt->pid_written = m->pid_path;
    }
    if (start_workers(rt) < 0) {
        pt_log_error("cannot start workers");
        rt->stopping = true;
        for (int i = 0; i < rt->nthreads; i++)
            pt_loop_post(rt->workers[i]->loop, worker_stop_now, rt->workers[i]);
        goto fail;
    }
    pt_log_notice("portico %s started: %d workers, configuration %s", PT_VERSION, rt->nworkers,
                  rt->snap->conf_path);
    pt_loop_run(rt->loop);
    runtime_teardown(rt);
    pt_log_notice("portico stopped");
    free(rt);
    return 0;
fail:
    runtime_teardown(rt);
    free(rt);
    return 1;
}
