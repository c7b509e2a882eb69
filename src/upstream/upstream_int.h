/* Internal to src/upstream. */
#ifndef PT_UPSTREAM_INT_H
#define PT_UPSTREAM_INT_H

#include "upstream/upstream.h"

typedef enum { PP_NONE = 0, PP_V1, PP_V2 } pp_mode_t;

typedef struct ups_server {
    pt_addr_t addr;
    char name[64]; /* "1.2.3.4:80" */
    int weight;
    pp_mode_t pp;
    size_t index; /* in the group */
} ups_server_t;

typedef struct ups_group {
    const char *name;
    size_t index; /* in the snapshot's group list */
    ups_server_t *servers;
    size_t nservers;
    int total_weight;
    int keepalive;          /* idle connections kept per worker per server */
    uint64_t keepalive_timeout;
    uint64_t keepalive_requests;
    bool implicit;          /* made from proxy_pass http://host:port */
    const char *file;
    uint32_t line;
} ups_group_t;

typedef struct ups_pass {
    pt_location_t *loc;
    const char *name;
    const pt_conf_node_t *node;
} ups_pass_t;

typedef struct ups_conf {
    pt_array_t groups; /* ups_group_t * */
    pt_array_t passes; /* ups_pass_t, resolved at finalize */
} ups_conf_t;

/* Per-worker state. */
typedef struct ups_conn ups_conn_t;

typedef struct ups_metrics {
    pt_metric_id_t reqs_new;
    pt_metric_id_t reqs_reused;
    pt_metric_id_t errors;
} ups_metrics_t;

typedef struct ups_worker {
    pt_worker_t *w;
    ups_conn_t *idle; /* idle pooled connections (all servers) */
    size_t nidle;
    uint64_t rr_gen;  /* snapshot generation the weights belong to */
    int *rr_cw;       /* smooth weighted round robin state, per server of every group */
    size_t *rr_base;  /* offset of each group in rr_cw */
    size_t rr_n;
    const ups_metrics_t *m;
} ups_worker_t;

struct ups_conn {
    pt_io_t io;
    ups_worker_t *uw;
    pt_addr_t addr;
    pp_mode_t pp;
    uint64_t nreq;
    bool reused;
    pt_timer_t idle_timer;
    ups_conn_t *prev, *next;
    int keepalive; /* limits from the group at release time */
    void *fwd;     /* the exchange using it, NULL when idle */
};

/* pool.c */
ups_conn_t *ups_pool_take(ups_worker_t *uw, const ups_server_t *s);
/* Returns the connection to the idle pool, or closes it. */
void ups_pool_release(ups_worker_t *uw, ups_conn_t *uc, const ups_group_t *g, bool reusable);
void ups_conn_close(ups_conn_t *uc);
void ups_pool_close_all(ups_worker_t *uw);
ups_worker_t *ups_worker(pt_worker_t *w);

/* balance.c */
const ups_server_t *ups_select(pt_request_t *r, const ups_group_t *g, const ups_server_t *avoid);

/* forward.c */
void ups_forward(pt_request_t *r);

#endif
