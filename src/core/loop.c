/*
 * The event loop: epoll (edge-triggered), a binary min-heap of timers,
 * deferred tasks run at the end of each iteration, and an eventfd through
 * which other threads post tasks.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"

#define MAX_EVENTS 256

typedef struct task {
    pt_task_fn fn;
    void *arg;
} task_t;

typedef struct task_queue {
    task_t *items;
    size_t n, cap;
} task_queue_t;

struct pt_loop {
    int epfd;
    bool stop;
    uint64_t now_ms;
    pt_timer_t **heap;
    size_t heap_n, heap_cap;
    task_queue_t deferred;
    /* tasks posted from other threads */
    pthread_mutex_t post_lock;
    task_queue_t posted;
    pt_io_t wake_io;
};

uint64_t pt_loop_now(const pt_loop_t *loop) { return loop->now_ms; }

uint64_t pt_loop_update_time(pt_loop_t *loop)
{
    loop->now_ms = pt_time_mono_ms();
    return loop->now_ms;
}

static int queue_push(task_queue_t *q, pt_task_fn fn, void *arg)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        task_t *items = realloc(q->items, cap * sizeof(*items));
        if (!items) return -ENOMEM;
        q->items = items;
        q->cap = cap;
    }
    q->items[q->n++] = (task_t){fn, arg};
    return 0;
}

/* Runs tasks queued so far, including ones queued while running. */
static void queue_run(task_queue_t *q)
{
    for (size_t i = 0; i < q->n; i++) {
        task_t t = q->items[i];
        t.fn(t.arg);
    }
    q->n = 0;
}

static void on_wake(pt_io_t *io, unsigned events)
{
    pt_loop_t *loop = io->data;
    uint64_t v;
    pt_unused(events);
    while (read(io->fd, &v, sizeof(v)) > 0) {
    }
    io->readable = false;
    pthread_mutex_lock(&loop->post_lock);
    task_queue_t batch = loop->posted;
    loop->posted = (task_queue_t){0};
    pthread_mutex_unlock(&loop->post_lock);
    queue_run(&batch);
    free(batch.items);
}

pt_loop_t *pt_loop_create(void)
{
    pt_loop_t *loop = calloc(1, sizeof(*loop));
    if (!loop) return NULL;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) goto fail;
    pthread_mutex_init(&loop->post_lock, NULL);
    loop->wake_io.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->wake_io.fd < 0) goto fail_ep;
    loop->wake_io.cb = on_wake;
    loop->wake_io.data = loop;
    if (pt_io_start_read(loop, &loop->wake_io) < 0) goto fail_wake;
    pt_loop_update_time(loop);
    return loop;
fail_wake:
    close(loop->wake_io.fd);
fail_ep:
    pthread_mutex_destroy(&loop->post_lock);
    close(loop->epfd);
fail:
    free(loop);
    return NULL;
}

void pt_loop_run_pending(pt_loop_t *loop)
{
    on_wake(&loop->wake_io, PT_EV_READ);
    queue_run(&loop->deferred);
}

void pt_loop_destroy(pt_loop_t *loop)
{
    if (!loop) return;
    /* Posted tasks that never ran may own memory: run them so they free it. */
    pt_loop_run_pending(loop);
    close(loop->wake_io.fd);
    close(loop->epfd);
    pthread_mutex_destroy(&loop->post_lock);
    free(loop->heap);
    free(loop->deferred.items);
    free(loop);
}

void pt_loop_stop(pt_loop_t *loop) { loop->stop = true; }

static int io_register(pt_loop_t *loop, pt_io_t *io, uint32_t events)
{
    struct epoll_event ev = {.events = events | EPOLLET, .data.ptr = io};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, io->fd, &ev) < 0) return -errno;
    io->registered = true;
    io->readable = false;
    io->writable = false;
    return 0;
}

int pt_io_start(pt_loop_t *loop, pt_io_t *io)
{
    return io_register(loop, io, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
}

int pt_io_start_read(pt_loop_t *loop, pt_io_t *io) { return io_register(loop, io, EPOLLIN); }

void pt_io_stop(pt_loop_t *loop, pt_io_t *io)
{
    if (!io->registered) return;
    /* Events for this io already fetched in this iteration are dropped by
     * the registered check in dispatch(). */
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    io->registered = false;
}

/* ---- timers: binary min-heap on when_ms ---- */

void pt_timer_init(pt_timer_t *t, pt_timer_cb cb, void *data)
{
    t->when_ms = 0;
    t->heap_idx = SIZE_MAX;
    t->cb = cb;
    t->data = data;
}

static void heap_set(pt_loop_t *loop, size_t i, pt_timer_t *t)
{
    loop->heap[i] = t;
    t->heap_idx = i;
}

static void heap_up(pt_loop_t *loop, size_t i)
{
    pt_timer_t *t = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (loop->heap[parent]->when_ms <= t->when_ms) break;
        heap_set(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_set(loop, i, t);
}

static void heap_down(pt_loop_t *loop, size_t i)
{
    pt_timer_t *t = loop->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        uint64_t mw = t->when_ms;
        if (l < loop->heap_n && loop->heap[l]->when_ms < mw) {
            m = l;
            mw = loop->heap[l]->when_ms;
        }
        if (r < loop->heap_n && loop->heap[r]->when_ms < mw) m = r;
        if (m == i) break;
        heap_set(loop, i, loop->heap[m]);
        i = m;
    }
    heap_set(loop, i, t);
}

void pt_timer_stop(pt_loop_t *loop, pt_timer_t *t)
{
    if (t->heap_idx == SIZE_MAX) return;
    size_t i = t->heap_idx;
    t->heap_idx = SIZE_MAX;
    loop->heap_n--;
    if (i == loop->heap_n) return;
    pt_timer_t *last = loop->heap[loop->heap_n];
    heap_set(loop, i, last);
    heap_down(loop, i);
    heap_up(loop, last->heap_idx);
}

void pt_timer_start(pt_loop_t *loop, pt_timer_t *t, uint64_t ms)
{
    uint64_t when = loop->now_ms + ms;
    if (t->heap_idx != SIZE_MAX) {
        /* Re-arming to the same millisecond is common (keep-alive idle
         * resets on every request): skip the heap work then. */
        if (t->when_ms == when) return;
        bool later = when > t->when_ms;
        t->when_ms = when;
        if (later)
            heap_down(loop, t->heap_idx);
        else
            heap_up(loop, t->heap_idx);
        return;
    }
    if (loop->heap_n == loop->heap_cap) {
        size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 256;
        pt_timer_t **heap = realloc(loop->heap, cap * sizeof(*heap));
        if (!heap) {
            /* Cannot arm: fire on the next iteration rather than never. */
            pt_log_error("timer heap: out of memory");
            abort();
        }
        loop->heap = heap;
        loop->heap_cap = cap;
    }
    t->when_ms = when;
    heap_set(loop, loop->heap_n++, t);
    heap_up(loop, t->heap_idx);
}

static void run_timers(pt_loop_t *loop)
{
    while (loop->heap_n > 0 && loop->heap[0]->when_ms <= loop->now_ms) {
        pt_timer_t *t = loop->heap[0];
        pt_timer_stop(loop, t);
        t->cb(t);
    }
}

static int next_timeout(const pt_loop_t *loop)
{
    if (loop->deferred.n > 0) return 0;
    /* No timer: sleep until an event or a post. Idle wake-ups are not free
     * (on a busy VM each costs milliseconds of CPU). */
    if (loop->heap_n == 0) return -1;
    uint64_t when = loop->heap[0]->when_ms;
    if (when <= loop->now_ms) return 0;
    uint64_t d = when - loop->now_ms;
    return d > INT32_MAX ? INT32_MAX : (int)d;
}

int pt_loop_defer(pt_loop_t *loop, pt_task_fn fn, void *arg)
{
    return queue_push(&loop->deferred, fn, arg);
}

int pt_loop_post(pt_loop_t *loop, pt_task_fn fn, void *arg)
{
    pthread_mutex_lock(&loop->post_lock);
    int rc = queue_push(&loop->posted, fn, arg);
    pthread_mutex_unlock(&loop->post_lock);
    if (rc < 0) return rc;
    uint64_t one = 1;
    ssize_t n = write(loop->wake_io.fd, &one, sizeof(one));
    pt_unused(n); /* EAGAIN means the counter is already non-zero: awake */
    return 0;
}

static void dispatch(struct epoll_event *ev)
{
    pt_io_t *io = ev->data.ptr;
    unsigned events = 0;
    if (ev->events & (EPOLLIN | EPOLLRDHUP)) {
        io->readable = true;
        events |= PT_EV_READ;
    }
    if (ev->events & EPOLLOUT) {
        io->writable = true;
        events |= PT_EV_WRITE;
    }
    if (ev->events & (EPOLLERR | EPOLLHUP)) {
        /* Let both sides see the error through their next read/write. */
        io->readable = true;
        io->writable = true;
        events |= PT_EV_ERROR | PT_EV_READ | PT_EV_WRITE;
    }
    io->cb(io, events);
}

int pt_loop_run(pt_loop_t *loop)
{
    struct epoll_event evs[MAX_EVENTS];
    loop->stop = false;
    while (!loop->stop) {
        int n = epoll_wait(loop->epfd, evs, MAX_EVENTS, next_timeout(loop));
        if (n < 0 && errno != EINTR) return -errno;
        pt_loop_update_time(loop);
        /*
         * An io stopped by an earlier callback of this batch may have been
         * freed already only if its owner freed it directly; owners free at
         * the deferred safe point, so the pointer stays valid until the end
         * of the batch and the registered flag tells us to skip it.
         */
        for (int i = 0; i < n; i++) {
            pt_io_t *io = evs[i].data.ptr;
            if (!io->registered) continue;
            dispatch(&evs[i]);
        }
        run_timers(loop);
        queue_run(&loop->deferred);
    }
    return 0;
}
