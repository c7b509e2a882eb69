/* Internal to src/proxy: connections, routing, runtime, access log. */
#ifndef PT_PROXY_INT_H
#define PT_PROXY_INT_H

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>

#include "proxy/proxy.h"

#define PT_MAX_HEAD (1u << 20)
#define PT_MAX_HEADERS 1000

/* ---- config helpers (conf.c) ---- */
void *pt_regex_compile(pt_conf_build_t *b, const pt_conf_node_t *n, size_t argi, bool caseless);
int pt_cidr_parse(const char *s, pt_cidr_t *out);
size_t pt_proxy_modules(const pt_proxy_module_t *const **out);

/* ---- routing (route.c) ---- */
bool pt_cidr_match(const pt_cidr_t *c, const pt_addr_t *a);
bool pt_cidr_list_match(const pt_array_t *list, const pt_addr_t *a);
const pt_listen_conf_t *pt_listen_lookup(const pt_snapshot_t *snap, const pt_addr_t *local);
/* Picks the vhost and location for r (sets r->vhost, r->loc). */
void pt_route(pt_request_t *r, const pt_listen_conf_t *lc);

/* ---- connections (conn.c) ---- */

/* Why a client connection was closed (portico_connections_closed_total). */
typedef enum {
    PT_CLOSE_CLIENT = 0,     /* the client closed or reset it */
    PT_CLOSE_DONE,           /* we closed after a response (Connection: close, limits) */
    PT_CLOSE_IDLE_TIMEOUT,   /* keepalive_timeout between requests */
    PT_CLOSE_TIMEOUT,        /* client_header/body_timeout, send_timeout */
    PT_CLOSE_ERROR,          /* bad input, aborted response, out of memory */
    PT_CLOSE_SHUTDOWN,       /* graceful or immediate stop */
    PT_CLOSE_NREASONS,
} pt_close_reason_t;

typedef enum {
    CONN_PROXY_HEADER = 0, /* waiting for the PROXY protocol header */
    CONN_IDLE,             /* waiting for (the rest of) a request head */
    CONN_ACTIVE,           /* a request is being handled */
    CONN_CLOSED,
} conn_state_t;

struct pt_conn {
    pt_io_t io;
    pt_worker_t *w;
    conn_state_t state;
    pt_addr_t peer;
    pt_addr_t local; /* the listener's configured address (config key) */
    pt_addr_t pp_src, pp_dst;
    bool has_pp;
    bool close_after; /* close when the current response is done */
    bool counted_idle; /* in portico_connections_idle */
    bool want_body;
    char *rbuf;
    size_t rsize;
    size_t rlen;     /* bytes in rbuf */
    size_t rpos;     /* start of the current request head */
    size_t last_len; /* for incremental parsing */
    size_t body_pos; /* next unread body byte */
    size_t next_pos; /* where the next pipelined request starts (after the body) */
    size_t next_len;
    pt_timer_t timer;
    pt_request_t *req;
    uint64_t nreq;
    pt_snapshot_t *snap; /* config the head is parsed with */
    const pt_listen_conf_t *lc;
    void (*tunnel_cb)(pt_request_t *r, unsigned events);
    struct pt_conn *prev, *next; /* worker's list */
};

/* Closes c, counted under reason. */
void pt_conn_close_why(pt_conn_t *c, pt_close_reason_t reason);

/* Accepts every pending connection on a listening fd. */
void pt_conn_accept_all(pt_worker_t *w, int lfd, const pt_addr_t *local, bool proxy_protocol);
/* Closes idle connections (drain); active ones close after their response. */
void pt_conn_drain_all(pt_worker_t *w);
/* Closes everything now (stop or drain timeout). */
void pt_conn_close_all(pt_worker_t *w);

/* ---- requests per route (route_stats.c) ---- */
typedef struct pt_route_stats pt_route_stats_t;
typedef struct pt_route_registry pt_route_registry_t;
pt_route_registry_t *pt_route_registry_create(void);
void pt_route_registry_destroy(pt_route_registry_t *reg);
/* Points every location of snap at its counters (control thread). */
void pt_route_registry_bind(pt_route_registry_t *reg, pt_snapshot_t *snap);
/* A metrics collector: portico_route_requests_total. */
void pt_route_registry_collect(pt_sbuf_t *o, void *arg);
/* Counts one finished request (any thread); cls = status/100, 0 = aborted. */
void pt_route_stats_count(pt_route_stats_t *s, int cls);

/* ---- metrics ids (runtime.c) ---- */
typedef struct pt_proxy_metrics {
    pt_metric_id_t conns_total;
    pt_metric_id_t conns_active;
    pt_metric_id_t conns_idle;
    pt_metric_id_t conns_closed[PT_CLOSE_NREASONS];
    pt_metric_id_t requests_by_class[6]; /* index status/100, 0 = aborted */
    pt_metric_id_t request_duration;
    pt_metric_id_t bytes_sent;
} pt_proxy_metrics_t;


/* ---- worker private state (runtime.c) ---- */

typedef struct pt_alog pt_alog_t;

struct pt_buf_class {
    size_t size;
    size_t n;
    size_t low; /* fewest cached since the last trim */
    struct free_node *head;
};

typedef struct pt_wlistener {
    pt_io_t io;
    pt_addr_t addr;
    bool proxy_protocol;
    pt_worker_t *w;
    struct pt_wlistener *next;
} pt_wlistener_t;

struct pt_worker_priv {
    pt_conn_t *conns; /* list head */
    pt_wlistener_t *listeners;
    pt_alog_t *alog;
    pt_timer_t drain_timer;
    pt_timer_t tick;
    pt_timer_t alog_timer; /* flushes access log lines soon after they are written */
    struct pt_runtime *rt;
    const struct pt_proxy_metrics *m;
    void *scratch; /* struct pt_worker_scratch */
    struct pt_buf_class bufs[2];
    pt_pool_t *pools[1024]; /* request pool cache (MAX_FREE_POOLS) */
    size_t npools;
    size_t pools_low;
    struct adopt_msg *init; /* first config, taken by the thread at start */
};

/* ---- access log (accesslog.c) ---- */

/* The access log writer: one thread writes buffers that workers fill. */
typedef struct pt_alog_writer pt_alog_writer_t;
pt_alog_writer_t *pt_alog_writer_create(void);
/* Sets/changes the file (NULL = off). Reopens for logrotate. */
int pt_alog_writer_set_path(pt_alog_writer_t *wr, const char *path);
void pt_alog_writer_reopen(pt_alog_writer_t *wr);
void pt_alog_writer_destroy(pt_alog_writer_t *wr);

pt_alog_t *pt_alog_create(pt_alog_writer_t *wr);
/* Appends one JSON line for a finished request; false when logging is off. */
bool pt_alog_request(pt_alog_t *al, pt_request_t *r);
/* Hands the buffered lines to the writer (timer tick, exit). */
void pt_alog_flush(pt_alog_t *al);
void pt_alog_destroy(pt_alog_t *al);

#endif /* PT_PROXY_INT_H */
