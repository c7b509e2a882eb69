/*
 * The stub resolver: one pt_dns_resolve() runs two sub-queries (A and
 * AAAA) in parallel. Each sub-query makes attempts, one at a time, going
 * round the servers in order: an attempt is a fresh UDP socket connected to
 * one server, one query with a random id, and a timer. An attempt ends
 * with an answer (final: addresses, NODATA, NXDOMAIN), with a failure that
 * moves on to the next server at once (SERVFAIL, REFUSED, truncated or
 * malformed answer, ICMP port unreachable) or with its timer. Each server
 * gets two attempts at most, and the whole resolve ends by its deadline.
 * Datagrams that are not answers to the attempt's query (wrong id or
 * question) are ignored: the attempt keeps waiting.
 *
 * Lifetimes: a query may end inside one of its own I/O callbacks while the
 * loop still holds events for its other socket in the same batch, so its
 * memory is freed at the loop's deferred safe point, never at once (its
 * sockets are unregistered and closed at once).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns/dns.h"

#define DEFAULT_TIMEOUT_MS 5000
#define MIN_ATTEMPT_MS 100
#define LITERAL_TTL_S 3600
#define RECV_BUF 4096 /* answers over 512 bytes are accepted up to this size */

enum { SUB_PENDING = 1 };

typedef struct sub {
    pt_dns_query_t *q;
    uint16_t qtype;
    uint16_t id;        /* of the attempt in flight */
    pt_io_t io;         /* fd -1 between attempts */
    pt_timer_t timer;   /* the attempt's timeout, or the start of the first one */
    size_t server;      /* index of the next / current attempt's server */
    unsigned attempts;  /* started so far */
    int status;         /* SUB_PENDING, then PT_DNS_* / -errno */
    int last_error;     /* of the last failed attempt */
    pt_dns_answer_t ans;
} sub_t;

struct pt_dns_query {
    pt_dns_resolver_t *r;
    pt_dns_query_t *prev, *next; /* in r->queries */
    char name[PT_DNS_MAX_NAME + 1];
    pt_dns_cb cb;
    void *arg;
    uint64_t deadline; /* loop clock */
    int pending;       /* sub-queries still running */
    sub_t sub[2];      /* A, AAAA */
    /* names answered without asking: IP literals, localhost */
    pt_timer_t literal_timer;
    pt_addr_t literal[2];
    size_t nliteral;
};

struct pt_dns_resolver {
    pt_loop_t *loop;
    pt_addr_t servers[PT_DNS_MAX_SERVERS];
    size_t nservers;
    uint64_t timeout_ms;
    uint64_t attempt_ms;
    pt_dns_query_t *queries; /* pending */
    uint64_t rng;            /* fallback when getrandom() fails */
    uint16_t ids[32];        /* random ids drawn in batches */
    size_t nids;
};

/* ---- random query ids ---- */

static uint16_t random_id(pt_dns_resolver_t *r)
{
    if (r->nids == 0) {
        ssize_t n = getrandom(r->ids, sizeof(r->ids), GRND_NONBLOCK);
        if (n == (ssize_t)sizeof(r->ids)) {
            r->nids = pt_countof(r->ids);
        } else {
            /* No entropy yet (early boot) or no syscall: xorshift, seeded
             * from the clock, is less unpredictable but still works. */
            r->rng ^= pt_time_mono_us() * 0x9e3779b97f4a7c15ull;
            for (size_t i = 0; i < pt_countof(r->ids); i++) {
                r->rng ^= r->rng << 13;
                r->rng ^= r->rng >> 7;
                r->rng ^= r->rng << 17;
                r->ids[i] = (uint16_t)(r->rng >> 24);
            }
            r->nids = pt_countof(r->ids);
        }
    }
    return r->ids[--r->nids];
}

/* ---- attempts ---- */

static void sub_start_attempt(sub_t *s);
static void query_complete(pt_dns_query_t *q);

static void attempt_close(sub_t *s)
{
    pt_dns_resolver_t *r = s->q->r;
    if (s->io.fd >= 0) {
        pt_io_stop(r->loop, &s->io);
        close(s->io.fd);
        s->io.fd = -1;
    }
    pt_timer_stop(r->loop, &s->timer);
}

static void sub_finish(sub_t *s, int status)
{
    attempt_close(s);
    s->status = status;
    if (--s->q->pending == 0) query_complete(s->q);
}

/* The attempt in flight failed with err: on to the next server, or done. */
static void attempt_failed(sub_t *s, int err)
{
    attempt_close(s);
    s->last_error = err;
    sub_start_attempt(s);
}

/* Opens a socket connected to server and sends the query. Returns the fd or -errno. */
static int send_query(const pt_addr_t *server, const uint8_t *pkt, size_t len)
{
    int fd = socket(server->ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    /* connect() makes the kernel pick a random source port and drop
     * datagrams from any other peer. */
    if (connect(fd, &server->ss.sa, server->len) < 0 || send(fd, pkt, len, 0) != (ssize_t)len) {
        int err = errno ? -errno : -EIO;
        close(fd);
        return err;
    }
    return fd;
}

static void sub_start_attempt(sub_t *s)
{
    pt_dns_query_t *q = s->q;
    pt_dns_resolver_t *r = q->r;
    uint64_t now = pt_loop_now(r->loop);
    for (;;) {
        if (now >= q->deadline || s->attempts >= 2 * r->nservers) {
            sub_finish(s, s->last_error ? s->last_error : PT_DNS_TIMEOUT);
            return;
        }
        const pt_addr_t *server = &r->servers[s->server];
        s->server = (s->server + 1) % r->nservers;
        s->attempts++;
        s->id = random_id(r);
        uint8_t pkt[PT_DNS_MAX_PACKET];
        int len = pt_dns_build_query(pkt, sizeof(pkt), s->id, q->name, s->qtype);
        if (len < 0) {
            sub_finish(s, len); /* checked in pt_dns_resolve: cannot happen */
            return;
        }
        int fd = send_query(server, pkt, (size_t)len);
        if (fd >= 0) {
            s->io.fd = fd;
            int rc = pt_io_start_read(r->loop, &s->io);
            if (rc == 0) break;
            close(fd);
            s->io.fd = -1;
            fd = rc;
        }
        s->last_error = fd;
    }
    pt_timer_start(r->loop, &s->timer, pt_min(r->attempt_ms, q->deadline - now));
}

/* The timer: the first attempt (none in flight yet) or a timeout. */
static void on_sub_timer(pt_timer_t *t)
{
    sub_t *s = t->data;
    if (s->io.fd < 0 && s->attempts == 0) {
        sub_start_attempt(s);
        return;
    }
    attempt_failed(s, PT_DNS_TIMEOUT);
}

static void on_sub_read(pt_io_t *io, unsigned events)
{
    sub_t *s = io->data;
    pt_unused(events);
    uint8_t buf[RECV_BUF];
    for (;;) {
        ssize_t n = recv(io->fd, buf, sizeof(buf), MSG_TRUNC);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                io->readable = false;
                return;
            }
            if (errno == EINTR) continue;
            attempt_failed(s, -errno); /* e.g. ECONNREFUSED: nothing listens */
            return;
        }
        int rc = (size_t)n > sizeof(buf)
                     ? PT_DNS_MALFORMED
                     : pt_dns_parse_response(buf, (size_t)n, s->id, s->q->name, s->qtype, &s->ans);
        switch (rc) {
        case PT_DNS_MISMATCH:
            continue; /* not ours (late answer to an earlier attempt, spoof) */
        case PT_DNS_OK:
        case PT_DNS_NODATA:
        case PT_DNS_NXDOMAIN:
            sub_finish(s, rc);
            return;
        default:
            attempt_failed(s, rc);
            return;
        }
    }
}

/* ---- queries ---- */

static void query_free(void *arg) { free(arg); }

static void query_unlink(pt_dns_query_t *q)
{
    if (q->prev) q->prev->next = q->next;
    else q->r->queries = q->next;
    if (q->next) q->next->prev = q->prev;
    q->prev = q->next = NULL;
}

/* Frees q at the loop's safe point (its sockets may have events queued). */
static void query_release(pt_dns_query_t *q, pt_loop_t *loop)
{
    if (pt_loop_defer(loop, query_free, q) < 0)
        pt_log_error("dns: out of memory; a finished query of %zu bytes is leaked", sizeof(*q));
}

/* The combined status when no sub-query found addresses. */
static int combined_error(const pt_dns_query_t *q)
{
    int a = q->sub[0].status, aaaa = q->sub[1].status;
    if (a == PT_DNS_NXDOMAIN || aaaa == PT_DNS_NXDOMAIN) return PT_DNS_NXDOMAIN;
    return a == PT_DNS_NODATA ? aaaa : a;
}

static void query_complete(pt_dns_query_t *q)
{
    pt_addr_t addrs[2 * PT_DNS_MAX_ADDRS];
    size_t n = 0;
    uint32_t ttl = UINT32_MAX;
    for (size_t i = 0; i < 2; i++) {
        const sub_t *s = &q->sub[i];
        if (s->status != PT_DNS_OK) continue;
        memcpy(&addrs[n], s->ans.addrs, s->ans.n * sizeof(addrs[0]));
        n += s->ans.n;
        ttl = pt_min(ttl, s->ans.ttl);
    }
    int status = n ? PT_DNS_OK : combined_error(q);
    pt_dns_cb cb = q->cb;
    void *arg = q->arg;
    pt_loop_t *loop = q->r->loop;
    query_unlink(q);
    query_release(q, loop);
    cb(arg, status, n ? addrs : NULL, n, n ? ttl : 0);
}

static void on_literal_timer(pt_timer_t *t)
{
    pt_dns_query_t *q = t->data;
    pt_addr_t addrs[2];
    size_t n = q->nliteral;
    memcpy(addrs, q->literal, sizeof(addrs));
    pt_dns_cb cb = q->cb;
    void *arg = q->arg;
    pt_loop_t *loop = q->r->loop;
    query_unlink(q);
    query_release(q, loop);
    cb(arg, PT_DNS_OK, addrs, n, LITERAL_TTL_S);
}

/* Fills q->literal when name needs no query; returns true then. */
static bool literal_answer(pt_dns_query_t *q, const char *name)
{
    struct in_addr a4;
    struct in6_addr a6;
    size_t len = strlen(name);
    char tmp[PT_DNS_MAX_NAME + 1];
    if (len >= 2 && name[0] == '[' && name[len - 1] == ']' && len - 2 < sizeof(tmp)) {
        memcpy(tmp, name + 1, len - 2); /* "[::1]" as written in addresses */
        tmp[len - 2] = '\0';
        name = tmp;
        len = strlen(tmp);
    }
    pt_addr_t *l = q->literal;
    memset(l, 0, sizeof(q->literal));
    if (inet_pton(AF_INET, name, &a4) == 1) {
        l[0].ss.in4 = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr = a4};
        l[0].len = sizeof(struct sockaddr_in);
        q->nliteral = 1;
        return true;
    }
    if (inet_pton(AF_INET6, name, &a6) == 1) {
        l[0].ss.in6 = (struct sockaddr_in6){.sin6_family = AF_INET6, .sin6_addr = a6};
        l[0].len = sizeof(struct sockaddr_in6);
        q->nliteral = 1;
        return true;
    }
    if (pt_strcaseeq_lit(name, len, "localhost") || pt_strcaseeq_lit(name, len, "localhost.")) {
        l[0].ss.in4 = (struct sockaddr_in){.sin_family = AF_INET,
                                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        l[0].len = sizeof(struct sockaddr_in);
        l[1].ss.in6 = (struct sockaddr_in6){.sin6_family = AF_INET6, .sin6_addr = in6addr_loopback};
        l[1].len = sizeof(struct sockaddr_in6);
        q->nliteral = 2;
        return true;
    }
    return false;
}

static void sub_init(pt_dns_query_t *q, sub_t *s, uint16_t qtype)
{
    s->q = q;
    s->qtype = qtype;
    s->io = (pt_io_t){.fd = -1, .cb = on_sub_read, .data = s};
    pt_timer_init(&s->timer, on_sub_timer, s);
    s->status = SUB_PENDING;
}

int pt_dns_resolve(pt_dns_resolver_t *r, const char *name, pt_dns_cb cb, void *arg,
                   pt_dns_query_t **out)
{
    if (out) *out = NULL;
    size_t len = strlen(name);
    if (len == 0 || len > PT_DNS_MAX_NAME) return -EINVAL;
    pt_dns_query_t *q = calloc(1, sizeof(*q));
    if (!q) return -ENOMEM;
    q->r = r;
    memcpy(q->name, name, len + 1);
    q->cb = cb;
    q->arg = arg;
    pt_timer_init(&q->literal_timer, on_literal_timer, q);
    sub_init(q, &q->sub[0], PT_DNS_TYPE_A);
    sub_init(q, &q->sub[1], PT_DNS_TYPE_AAAA);
    /* The callback never runs inside this call: answers, even immediate
     * ones, come from timers. */
    if (literal_answer(q, name)) {
        pt_timer_start(r->loop, &q->literal_timer, 0);
    } else {
        uint8_t wire[PT_DNS_MAX_NAME];
        if (pt_dns_name_encode(name, wire, sizeof(wire)) < 0) {
            free(q);
            return -EINVAL;
        }
        q->deadline = pt_loop_now(r->loop) + r->timeout_ms;
        q->pending = 2;
        pt_timer_start(r->loop, &q->sub[0].timer, 0);
        pt_timer_start(r->loop, &q->sub[1].timer, 0);
    }
    q->next = r->queries;
    if (q->next) q->next->prev = q;
    r->queries = q;
    if (out) *out = q;
    return 0;
}

void pt_dns_cancel(pt_dns_query_t *q)
{
    if (!q) return;
    pt_dns_resolver_t *r = q->r;
    attempt_close(&q->sub[0]);
    attempt_close(&q->sub[1]);
    pt_timer_stop(r->loop, &q->literal_timer);
    query_unlink(q);
    query_release(q, r->loop);
}

/* ---- resolvers ---- */

size_t pt_dns_read_resolv_conf(const char *path, pt_addr_t *out, size_t max)
{
    FILE *f = fopen(path, "re");
    if (!f) return 0;
    char line[512];
    size_t n = 0;
    while (n < max && fgets(line, sizeof(line), f)) {
        char key[16], val[64];
        if (sscanf(line, "%15s %63s", key, val) != 2 || strcmp(key, "nameserver") != 0) continue;
        pt_addr_t *a = &out[n];
        memset(a, 0, sizeof(*a));
        if (inet_pton(AF_INET, val, &a->ss.in4.sin_addr) == 1) {
            a->ss.in4.sin_family = AF_INET;
            a->ss.in4.sin_port = htons(53);
            a->len = sizeof(struct sockaddr_in);
            n++;
        } else if (inet_pton(AF_INET6, val, &a->ss.in6.sin6_addr) == 1) {
            /* "fe80::1%eth0" fails inet_pton: scoped servers are skipped. */
            a->ss.in6.sin6_family = AF_INET6;
            a->ss.in6.sin6_port = htons(53);
            a->len = sizeof(struct sockaddr_in6);
            n++;
        }
    }
    fclose(f);
    return n;
}

pt_dns_resolver_t *pt_dns_resolver_create(pt_loop_t *loop, const pt_addr_t *servers, size_t n,
                                          uint64_t timeout_ms)
{
    pt_dns_resolver_t *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    r->loop = loop;
    if (n > 0) {
        r->nservers = pt_min(n, (size_t)PT_DNS_MAX_SERVERS);
        memcpy(r->servers, servers, r->nservers * sizeof(*servers));
    } else {
        r->nservers = pt_dns_read_resolv_conf("/etc/resolv.conf", r->servers, PT_DNS_MAX_SERVERS);
    }
    if (r->nservers == 0) {
        r->servers[0].ss.in4 = (struct sockaddr_in){
            .sin_family = AF_INET, .sin_port = htons(53), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        r->servers[0].len = sizeof(struct sockaddr_in);
        r->nservers = 1;
    }
    r->timeout_ms = timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS;
    /* Two rounds over the servers fit in the timeout. */
    r->attempt_ms = pt_max(r->timeout_ms / (2 * r->nservers), (uint64_t)MIN_ATTEMPT_MS);
    r->rng = pt_time_mono_us() ^ (uint64_t)(uintptr_t)r ^ ((uint64_t)getpid() << 32);
    if (r->rng == 0) r->rng = 1;
    return r;
}

void pt_dns_resolver_destroy(pt_dns_resolver_t *r)
{
    if (!r) return;
    while (r->queries) pt_dns_cancel(r->queries);
    free(r);
}

size_t pt_dns_resolver_servers(const pt_dns_resolver_t *r, const pt_addr_t **servers)
{
    *servers = r->servers;
    return r->nservers;
}
