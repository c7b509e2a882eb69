/*
 * The JSON access log. Workers append lines to a private buffer (no lock);
 * full buffers, and every buffer once a second, are handed to one writer
 * thread that does the write(2), so a slow disk never stalls an event loop.
 *
 * Fields (fixed order, documented in docs/configuration.md):
 * time, request_id, client, method, uri, protocol, host, status,
 * bytes_sent, request_bytes, duration_ms, upstream, upstream_connect_ms,
 * upstream_header_ms, user_agent, referer
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proxy/proxy_int.h"

#define ALOG_BUF (64 * 1024)
#define ALOG_MAX_QUEUE 256 /* buffers waiting; beyond this lines are dropped */

typedef struct alog_buf {
    struct alog_buf *next;
    size_t len;
    char data[ALOG_BUF];
} alog_buf_t;

struct pt_alog_writer {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool running;
    bool stop;
    int fd; /* -1: off */
    char *path;
    alog_buf_t *head, *tail;
    size_t queued;
    uint64_t dropped;
};

struct pt_alog {
    pt_alog_writer_t *wr;
    alog_buf_t *cur;
};

static void write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return; /* disk full or closed: the log loses lines, traffic goes on */
        }
        p += n;
        len -= (size_t)n;
    }
}

static void *writer_main(void *arg)
{
    pt_alog_writer_t *wr = arg;
    pthread_mutex_lock(&wr->lock);
    for (;;) {
        while (!wr->head && !wr->stop) pthread_cond_wait(&wr->cond, &wr->lock);
        if (!wr->head && wr->stop) break;
        alog_buf_t *b = wr->head;
        wr->head = b->next;
        if (!wr->head) wr->tail = NULL;
        wr->queued--;
        int fd = wr->fd;
        pthread_mutex_unlock(&wr->lock);
        if (fd >= 0) write_all(fd, b->data, b->len);
        free(b);
        pthread_mutex_lock(&wr->lock);
    }
    pthread_mutex_unlock(&wr->lock);
    return NULL;
}

pt_alog_writer_t *pt_alog_writer_create(void)
{
    pt_alog_writer_t *wr = calloc(1, sizeof(*wr));
    if (!wr) return NULL;
    wr->fd = -1;
    pthread_mutex_init(&wr->lock, NULL);
    pthread_cond_init(&wr->cond, NULL);
    if (pthread_create(&wr->thread, NULL, writer_main, wr) != 0) {
        pthread_mutex_destroy(&wr->lock);
        pthread_cond_destroy(&wr->cond);
        free(wr);
        return NULL;
    }
    wr->running = true;
    return wr;
}

static int open_log(const char *path)
{
    if (strcmp(path, "stderr") == 0) return dup(STDERR_FILENO);
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

int pt_alog_writer_set_path(pt_alog_writer_t *wr, const char *path)
{
    int fd = -1;
    char *copy = NULL;
    if (path) {
        fd = open_log(path);
        copy = strdup(path);
        if (fd < 0 || !copy) {
            int e = fd < 0 ? errno : ENOMEM;
            if (fd >= 0) close(fd);
            free(copy);
            return -e;
        }
    }
    pthread_mutex_lock(&wr->lock);
    int old = wr->fd;
    wr->fd = fd;
    free(wr->path);
    wr->path = copy;
    pthread_mutex_unlock(&wr->lock);
    /* The writer may be mid-write on old; it copied the fd under the lock,
     * and a write to a closed fd fails harmlessly (EBADF). */
    if (old >= 0) close(old);
    return 0;
}

void pt_alog_writer_reopen(pt_alog_writer_t *wr)
{
    pthread_mutex_lock(&wr->lock);
    char *path = wr->path ? strdup(wr->path) : NULL;
    pthread_mutex_unlock(&wr->lock);
    if (!path) return;
    if (pt_alog_writer_set_path(wr, path) < 0) pt_log_error("cannot reopen access log %s", path);
    free(path);
}

void pt_alog_writer_destroy(pt_alog_writer_t *wr)
{
    if (!wr) return;
    pthread_mutex_lock(&wr->lock);
    wr->stop = true;
    pthread_cond_signal(&wr->cond);
    pthread_mutex_unlock(&wr->lock);
    if (wr->running) pthread_join(wr->thread, NULL);
    if (wr->fd >= 0) close(wr->fd);
    free(wr->path);
    pthread_mutex_destroy(&wr->lock);
    pthread_cond_destroy(&wr->cond);
    free(wr);
}

pt_alog_t *pt_alog_create(pt_alog_writer_t *wr)
{
    pt_alog_t *al = calloc(1, sizeof(*al));
    if (al) al->wr = wr;
    return al;
}

void pt_alog_flush(pt_alog_t *al)
{
    alog_buf_t *b = al->cur;
    if (!b || b->len == 0) return;
    al->cur = NULL;
    b->next = NULL;
    pt_alog_writer_t *wr = al->wr;
    pthread_mutex_lock(&wr->lock);
    if (wr->queued >= ALOG_MAX_QUEUE) {
        wr->dropped++;
        pthread_mutex_unlock(&wr->lock);
        free(b);
        return;
    }
    if (wr->tail)
        wr->tail->next = b;
    else
        wr->head = b;
    wr->tail = b;
    wr->queued++;
    pthread_cond_signal(&wr->cond);
    pthread_mutex_unlock(&wr->lock);
}

void pt_alog_destroy(pt_alog_t *al)
{
    if (!al) return;
    pt_alog_flush(al);
    free(al->cur);
    free(al);
}

typedef struct line {
    char *p;
    size_t len, cap;
} line_t;

static void put(line_t *l, const char *s, size_t n)
{
    if (l->len + n <= l->cap) memcpy(l->p + l->len, s, n);
    l->len += n;
}

#define put_lit(l, lit) put((l), (lit), sizeof(lit) - 1)

static void put_str(line_t *l, const char *key, const char *s, size_t n)
{
    put(l, key, strlen(key));
    size_t room = l->len < l->cap ? l->cap - l->len : 0;
    size_t w = pt_json_escape(l->p + l->len, room, s ? s : "", s ? n : 0);
    l->len += w;
}

static void put_num(line_t *l, const char *key, const char *fmt, double v)
{
    char tmp[48];
    int n = snprintf(tmp, sizeof(tmp), fmt, v);
    put(l, key, strlen(key));
    put(l, tmp, (size_t)n);
}

static void hdr_value(const pt_request_t *r, const char *name, size_t nlen, const char **v,
                      size_t *vl)
{
    const pt_http_hdr_t *h = r->h.headers ? pt_http_find(r->h.headers, r->h.nheaders, name, nlen)
                                          : NULL;
    *v = h ? h->value : "";
    *vl = h ? h->value_len : 0;
}

bool pt_alog_request(pt_alog_t *al, pt_request_t *r)
{
    if (!al->wr || al->wr->fd < 0) return false; /* racy read of a flag: a line more or less */
    if (!al->cur) {
        al->cur = malloc(sizeof(*al->cur));
        if (!al->cur) return false;
        al->cur->len = 0;
    }
    char tbuf[40];
    uint64_t now = pt_time_wall_ms();
    time_t sec = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t tl = strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
    tl += (size_t)snprintf(tbuf + tl, sizeof(tbuf) - tl, ".%03uZ", (unsigned)(now % 1000));

    for (int attempt = 0; attempt < 2; attempt++) {
        alog_buf_t *b = al->cur;
        line_t l = {b->data + b->len, 0, ALOG_BUF - b->len};
        const char *ua, *ref;
        size_t ual, refl;
        hdr_value(r, "user-agent", 10, &ua, &ual);
        hdr_value(r, "referer", 7, &ref, &refl);
        const char *proto = r->h.version == 10 ? "HTTP/1.0" : "HTTP/1.1";
        put_str(&l, "{\"time\":", tbuf, tl);
        put_str(&l, ",\"request_id\":", r->request_id, r->request_id_len);
        put_str(&l, ",\"client\":", r->client_ip, strlen(r->client_ip));
        put_str(&l, ",\"method\":", r->h.method, r->h.method_len);
        put_str(&l, ",\"uri\":", r->h.path, r->h.path_len);
        put_str(&l, ",\"protocol\":", proto, 8);
        put_str(&l, ",\"host\":", r->h.host, r->h.host ? r->h.host_len : 0);
        put_num(&l, ",\"status\":", "%.0f", r->status);
        put_num(&l, ",\"bytes_sent\":", "%.0f", (double)(r->bytes_sent));
        put_num(&l, ",\"request_bytes\":", "%.0f", (double)(r->h.head_len + r->body_received));
        put_num(&l, ",\"duration_ms\":", "%.3f", (double)(pt_time_mono_us() - r->start_us) / 1000.0);
        put_str(&l, ",\"upstream\":", r->upstream_addr, strlen(r->upstream_addr));
        put_num(&l, ",\"upstream_connect_ms\":", "%.3f", (double)r->upstream_connect_us / 1000.0);
        put_num(&l, ",\"upstream_header_ms\":", "%.3f", (double)r->upstream_header_us / 1000.0);
        put_str(&l, ",\"user_agent\":", ua, ual);
        put_str(&l, ",\"referer\":", ref, refl);
        put_lit(&l, "}\n");
        if (l.len < l.cap) {
            b->len += l.len;
            return true;
        }
        if (b->len == 0) return false; /* a single line over 64 KiB: drop it */
        pt_alog_flush(al);
        al->cur = malloc(sizeof(*al->cur));
        if (!al->cur) return false;
        al->cur->len = 0;
    }
    return false;
}
