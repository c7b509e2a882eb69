/*
 * Internal to src/upstream.
 *
 * Two kinds of state:
 *
 *  - Configuration (ups_group_t, ups_server_t): part of a config snapshot,
 *    immutable once built, replaced on reload.
 *
 *  - Runtime state (ups_rt_t, ups_gstate_t, ups_set_t, ups_peer_t): one per
 *    process, owned by the control thread, kept across reloads (keyed by
 *    group name and server address), so health, ejections, admin changes
 *    and EWMA latency survive a reload. Workers read it without locks:
 *      * a group's current member list is an immutable ups_set_t published
 *        by one atomic pointer store; a replaced set is freed only after
 *        every worker has run one loop task since (quiescence), and workers
 *        never keep a set pointer across loop callbacks;
 *      * a peer (one server address) is reference counted: each set that
 *        lists it holds one reference and each request using it one more;
 *      * everything that changes at run time in a peer is an atomic, read
 *        and written with relaxed ordering (a stale read costs one
 *        sub-optimal choice, never memory safety).
 */
#ifndef PT_UPSTREAM_INT_H
#define PT_UPSTREAM_INT_H

#include <stdatomic.h>

#include "upstream/upstream.h"

typedef enum { PP_NONE = 0, PP_V1, PP_V2 } pp_mode_t;

/* ------------------------------------------------------------------ */
/* Configuration                                                       */
/* ------------------------------------------------------------------ */

typedef enum {
    UPS_LB_P2C_EWMA = 0, /* default */
    UPS_LB_ROUND_ROBIN,
    UPS_LB_LEAST_REQUEST,
    UPS_LB_RANDOM,
    UPS_LB_HASH, /* Maglev */
} ups_lb_t;

/* One `server` line. Literal addresses and names resolved at load give
 * addrs[]; `resolve` names are re-resolved at run time (addrs[] then holds
 * the first answer, used until the resolver has one). */
typedef struct ups_server {
    const char *spec;  /* as written: "10.0.0.1:80", "app.internal:8080" */
    const char *host;  /* the host part when it is a name, else NULL */
    uint16_t port;
    pt_addr_t *addrs;
    size_t naddrs;
    int weight;        /* 1..1000 */
    int max_conns;     /* requests in flight to one address; 0 = no limit */
    bool backup;
    bool resolve;
    pp_mode_t pp;
    uint64_t slow_start_ms; /* 0 = the group's */
    const char *file;
    uint32_t line;
} ups_server_t;

typedef enum { UPS_HC_OFF = 0, UPS_HC_TCP, UPS_HC_HTTP } ups_hc_type_t;

typedef struct ups_hc_conf {
    ups_hc_type_t type;
    uint64_t interval_ms; /* default 5 s */
    uint64_t timeout_ms;  /* default 2 s */
    int rise;             /* consecutive passes to mark up, default 2 */
    int fall;             /* consecutive failures to mark down, default 3 */
    uint16_t port;        /* 0 = the server's port */
    const char *method;   /* "GET" */
    const char *uri;      /* "/" */
    const char *host;     /* Host header; NULL = the server address */
    int status_lo, status_hi; /* expected status range, default 200..399 */
    const char *body;     /* substring the body must contain; NULL = any */
} ups_hc_conf_t;

typedef struct ups_outlier_conf {
    bool enabled;               /* default on */
    int consecutive_failures;   /* default 5; 0 = off */
    int failure_ratio_pct;      /* default 0 = off; e.g. 50 */
    int min_requests;           /* in the window before the ratio counts; default 20 */
    uint64_t window_ms;         /* default 10 s */
    uint64_t base_ejection_ms;  /* default 30 s; doubles per consecutive ejection */
    uint64_t max_ejection_ms;   /* default 300 s */
    int max_ejected_pct;        /* default 50 */
} ups_outlier_conf_t;

typedef struct ups_gstate ups_gstate_t;

typedef struct ups_group {
    const char *name;
    size_t index; /* in the snapshot's group list */
    ups_server_t *servers;
    size_t nservers;
    ups_lb_t lb;
    bool lb_set;
    pt_tpl_t hash_key;        /* UPS_LB_HASH */
    int hash_balance_pct;     /* bounded load: 0 = off, else e.g. 150 */
    uint64_t slow_start_ms;   /* 0 = off */
    int keepalive;            /* idle connections kept per worker per server */
    uint64_t keepalive_timeout;
    uint64_t keepalive_requests;
    /* circuit breaking; 0 = no limit */
    int max_connections;      /* open connections to the group, all workers */
    int max_requests;         /* requests in flight in the group */
    int max_pending;          /* requests waiting for a connection slot */
    uint64_t pending_timeout_ms;
    /* retry budget */
    int retry_budget_pct;     /* default 20 */
    int retry_min_concurrency;/* default 3 */
    ups_hc_conf_t hc;
    ups_outlier_conf_t outlier;
    uint64_t resolve_valid_ms; /* `resolver valid=`: fixed re-resolve interval; 0 = follow TTLs */
    bool implicit;            /* made from proxy_pass http://host:port */
    const char *file;
    uint32_t line;
    ups_gstate_t *state;      /* bound when the snapshot goes live */
} ups_group_t;

typedef struct ups_pass {
    pt_location_t *loc;
    const char *name;
    const pt_conf_node_t *node;
} ups_pass_t;

typedef struct ups_conf {
    pt_array_t groups; /* ups_group_t * */
    pt_array_t passes; /* ups_pass_t, resolved at finalize */
    const char *state_file;     /* upstream_state_file; NULL = none */
    pt_addr_t resolver[4];      /* `resolver` addresses; none = /etc/resolv.conf */
    size_t nresolvers;
    uint64_t resolver_valid_ms;  /* valid=: overrides DNS TTLs; 0 = follow TTLs */
    uint64_t resolver_timeout_ms;
} ups_conf_t;

/* ------------------------------------------------------------------ */
/* Runtime state (shared by all threads)                               */
/* ------------------------------------------------------------------ */

enum { UPS_ADMIN_ENABLED = 0, UPS_ADMIN_DRAIN = 1 };

typedef struct ups_peer {
    _Atomic int refs;             /* sets listing it + requests using it */
    pt_addr_t addr;
    char name[64];                /* "1.2.3.4:80", "[::1]:80" */
    _Atomic int admin;            /* UPS_ADMIN_* (admin API, state file) */
    _Atomic bool hc_down;         /* active health checks say down */
    _Atomic int64_t ejected_until;/* monotonic ms; passive ejection, 0 = none */
    _Atomic int ejections;        /* consecutive ejections (back-off) */
    _Atomic int64_t up_since;     /* monotonic ms it became available (slow start) */
    _Atomic int consec_fail;
    _Atomic int active;           /* requests in flight, all workers */
    _Atomic int conns;            /* open connections (busy and idle), all workers */
    _Atomic uint64_t ewma_ns;     /* peak EWMA of time to response head */
    _Atomic int64_t ewma_stamp_us;
    _Atomic int64_t last_done_us; /* monotonic us of its last answer (or failure) */
    _Atomic int64_t busy_since_us;/* monotonic us its in-flight count left 0 */
    _Atomic int64_t win_start;    /* failure-ratio window: monotonic ms */
    _Atomic uint32_t win_total, win_fail;
    /* statistics for /upstreams and /metrics */
    _Atomic uint64_t requests, failures, ejections_total;
    _Atomic uint64_t hc_checks, hc_failures;
    _Atomic int hc_status;        /* last health check status code, -1 none */
} ups_peer_t;

typedef struct ups_member {
    ups_peer_t *peer;
    int weight;         /* config weight, or the admin override */
    int max_conns;      /* 0 = no limit */
    bool backup;
    pp_mode_t pp;
    uint64_t slow_start_ms;
    uint16_t spec;      /* index of its `server` line in the group config */
} ups_member_t;

/* An immutable member list of a group: primaries first, then backups. */
typedef struct ups_set {
    uint64_t version;   /* process-unique, increasing */
    size_t n, nprimary;
    ups_member_t *m;
    uint32_t *maglev;   /* UPS_LB_HASH: table of primary member indexes */
    size_t maglev_size;
    uint32_t *bmaglev;  /* UPS_LB_HASH: table of backup member indexes */
    size_t bmaglev_size;
} ups_set_t;

#define UPS_LAT_BUCKETS 12

typedef struct ups_gstate {
    char *name;
    int id;                          /* small process-unique index */
    _Atomic(ups_set_t *) set;
    const ups_group_t *conf;         /* in the live snapshot (control thread only) */
    /* circuit breaking and retry budget */
    _Atomic int active;              /* requests in flight */
    _Atomic int conns;               /* open connections */
    _Atomic int pending;             /* requests waiting for a slot */
    _Atomic int active_retries;      /* retries in flight */
    _Atomic int ejected;             /* peers ejected now */
    /* statistics */
    _Atomic uint64_t requests, retries, budget_exhausted, overflow, no_server;
    _Atomic uint64_t responses[6];   /* by status class: 0 = none/aborted, 1xx..5xx */
    _Atomic uint64_t lat_buckets[UPS_LAT_BUCKETS + 1]; /* upstream time, non-cumulative; last = +Inf */
    _Atomic uint64_t lat_sum_us, lat_count;
    /* admin overrides kept across reloads, by server address */
    struct ups_override *overrides;
    size_t noverrides;
    /* dynamic (re-resolved) addresses per `server` line, control thread only */
    struct ups_dyn *dyn;
    size_t ndyn;
} ups_gstate_t;

typedef struct ups_override {
    char name[64];      /* peer address */
    int weight;         /* -1 = none */
    int admin;          /* UPS_ADMIN_* */
} ups_override_t;

typedef struct ups_dyn {
    const char *spec;   /* the `server` line it belongs to (matched by spec) */
    pt_addr_t *addrs;   /* malloc'd; NULL = use the config's addresses */
    size_t naddrs;
} ups_dyn_t;

typedef struct ups_health ups_health_t;
typedef struct ups_resolve ups_resolve_t;

typedef struct ups_rt {
    pt_control_t *ctl;
    ups_gstate_t **groups;           /* every group ever seen; freed at exit */
    size_t ngroups, cap;
    pt_snapshot_t *live;             /* the live snapshot (ref held) */
    ups_health_t *health;
    ups_resolve_t *resolve;
    uint64_t next_version;
    struct ups_retired *retired;     /* sets waiting for quiescence */
    pt_timer_t outlier_tick;         /* 1 s, while a group has outlier detection */
    bool tick_armed;
} ups_rt_t;

/* state.c: the runtime state (control thread unless said otherwise) */
ups_rt_t *ups_rt_create(pt_control_t *ctl);
void ups_rt_destroy(ups_rt_t *rt);
/* Binds every group of snap to its state and publishes new sets. */
int ups_rt_adopt(ups_rt_t *rt, pt_snapshot_t *snap);
/* Rebuilds and publishes gs's set from its config, dynamic addresses and overrides. */
int ups_rt_republish(ups_rt_t *rt, ups_gstate_t *gs);
/* Dynamic addresses of one resolvable `server` line changed. */
int ups_rt_set_dynamic(ups_rt_t *rt, ups_gstate_t *gs, const char *spec, const pt_addr_t *addrs,
                       size_t n);
ups_gstate_t *ups_rt_group(ups_rt_t *rt, const char *name);
/* The member with that peer name in gs's current set, or NULL. */
const ups_member_t *ups_rt_member(ups_gstate_t *gs, const char *peer_name);
/* Admin changes: validated by the caller. weight -1 = clear the override. */
int ups_rt_set_admin(ups_rt_t *rt, ups_gstate_t *gs, const char *peer_name, int admin);
int ups_rt_set_weight(ups_rt_t *rt, ups_gstate_t *gs, const char *peer_name, int weight);
/* Peer references (any thread). */
static inline void ups_peer_ref(ups_peer_t *p) { atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed); }
void ups_peer_unref(ups_peer_t *p);
/* Loads the current set (worker: valid until the current callback returns). */
static inline const ups_set_t *ups_set_load(ups_gstate_t *gs)
{
    return atomic_load_explicit(&gs->set, memory_order_acquire);
}
/* state_file.c: the upstream_state_file (admin overrides) */
int ups_state_save(ups_rt_t *rt, const char *path);
int ups_state_load(ups_rt_t *rt, const char *path);

/* outlier.c: availability, slow start, passive checks, EWMA (any thread) */
int64_t ups_now_ms(void);
/* Available for new requests: enabled, not down, not ejected. */
bool ups_peer_available(const ups_peer_t *p, int64_t now_ms);
/* Effective weight scaled by slow start, > 0 (x16 fixed point: 16 = weight 1). */
int ups_member_weight16(const ups_member_t *m, int64_t now_ms);
/* A request to p finished: success or failure (connect error, reset, timeout, 5xx). */
void ups_passive_record(ups_gstate_t *gs, const ups_group_t *g, ups_peer_t *p, bool failure,
                        int64_t now_ms);
/* Peak EWMA (tau 10 s) of the time to response head. */
void ups_ewma_observe(ups_peer_t *p, uint64_t rtt_ns, int64_t now_us);
/* The EWMA decayed to now (0 when never observed). */
double ups_ewma_get(const ups_peer_t *p, int64_t now_us);
/* How long p has had requests in flight without answering any (ns; 0 when
 * idle): a lower bound of its latency that peak EWMA only learns once the
 * first slow answer comes back. */
double ups_peer_stall_ns(const ups_peer_t *p, int64_t now_us);
/* A request to p starts / is counted in flight (keeps busy_since_us). */
void ups_peer_busy(ups_peer_t *p, int64_t now_us);
/* Control thread, about once a second: ends due ejections of gs's members
 * (up_since = end of ejection) and recounts gs->ejected. */
void ups_outlier_tick(ups_gstate_t *gs, int64_t now_ms);
/* Envoy's retry budget: one more retry while retries in flight stay below
 * max(min_concurrency, pct% of requests in flight); counts refusals. */
bool ups_retry_budget_allows(ups_gstate_t *gs, const ups_group_t *g);

/* health.c: active checks on the control loop */
ups_health_t *ups_health_create(ups_rt_t *rt);
/* Starts/stops probers to match the current sets of every group. */
void ups_health_sync(ups_health_t *h);
void ups_health_destroy(ups_health_t *h);

/* resolve.c: re-resolution of `resolve` servers on the control loop */
ups_resolve_t *ups_resolve_create(ups_rt_t *rt);
void ups_resolve_sync(ups_resolve_t *rs);
void ups_resolve_destroy(ups_resolve_t *rs);

/* admin_api.c: /upstreams endpoints */
int ups_admin_register(ups_rt_t *rt);
/* One request for /upstreams[/...] as the registered endpoints answer it
 * (other paths 404); 0 or a negative errno (500). For the fuzz target. */
struct pt_admin_request;
struct pt_admin_response;
int ups_admin_handle(ups_rt_t *rt, const struct pt_admin_request *req,
                     struct pt_admin_response *resp);

/* stats.c: Prometheus families per group and server (a metrics collector) */
void ups_metrics_collect(pt_sbuf_t *out, void *arg);
/* Time from attempt start to response head, into gs's histogram (any thread). */
void ups_stats_latency(ups_gstate_t *gs, uint64_t us);

/* ------------------------------------------------------------------ */
/* Per-worker state                                                    */
/* ------------------------------------------------------------------ */

typedef struct ups_conn ups_conn_t;

typedef struct ups_metrics {
    pt_metric_id_t reqs_new;
    pt_metric_id_t reqs_reused;
    pt_metric_id_t errors;
} ups_metrics_t;

/* Per worker, per group: load balancer state for one set version. */
typedef struct ups_lbw {
    uint64_t version;
    int *cw;      /* smooth weighted round robin current weights, per member */
    size_t n;
    size_t rr_next; /* least_request tie rotation */
} ups_lbw_t;

typedef struct ups_pending ups_pending_t;

typedef struct ups_worker {
    pt_worker_t *w;
    ups_rt_t *rt;
    ups_conn_t *idle; /* idle pooled connections (all servers) */
    size_t nidle;
    ups_lbw_t *lbw;   /* indexed by ups_gstate_t.id */
    size_t nlbw;
    uint64_t rng;
    ups_pending_t *pending_head, *pending_tail; /* requests waiting for a slot */
    const ups_metrics_t *m;
} ups_worker_t;

struct ups_conn {
    pt_io_t io;
    ups_worker_t *uw;
    pt_addr_t addr;
    ups_peer_t *peer;   /* ref held while the connection is open */
    ups_gstate_t *gs;   /* counts in gs->conns */
    pp_mode_t pp;
    uint64_t nreq;
    bool reused;
    pt_timer_t idle_timer;
    ups_conn_t *prev, *next;
    int keepalive; /* limits from the group at release time */
    void *fwd;     /* the exchange using it, NULL when idle */
};

/* pool.c */
ups_conn_t *ups_pool_take(ups_worker_t *uw, const ups_member_t *m);
/* Returns the connection to the idle pool, or closes it. */
void ups_pool_release(ups_worker_t *uw, ups_conn_t *uc, const ups_group_t *g, bool reusable);
void ups_conn_close(ups_conn_t *uc);
/* Closes one idle connection of gs in this worker; false when none. */
bool ups_pool_evict_one(ups_worker_t *uw, const ups_gstate_t *gs);
void ups_pool_close_all(ups_worker_t *uw);
ups_worker_t *ups_worker(pt_worker_t *w);

/* balance.c: picking a member (worker thread) */
typedef struct ups_pick {
    const ups_group_t *g;
    const ups_set_t *set;
    ups_lbw_t *lbw;               /* this worker's state for g (version == set->version) */
    uint64_t *rng;                /* xorshift64 state */
    uint64_t hash;                /* UPS_LB_HASH: the key's hash */
    ups_peer_t *const *avoid;     /* peers already tried by this request */
    size_t navoid;
    int64_t now_ms, now_us;
    bool saw_full;                /* out: a member was skipped only for max_conns */
} ups_pick_t;

/* The chosen member, or NULL when none is available (all down, drained,
 * ejected, avoided or full). Primaries first; backups only when no primary
 * is available. */
const ups_member_t *ups_lb_pick(ups_pick_t *pk);
/* Resets lbw for a new set version (returns -ENOMEM). */
int ups_lbw_reset(ups_lbw_t *lbw, const ups_set_t *set);
/* Maglev lookup table (M = 65537) over members m[0..n), entries index m[]. */
int ups_maglev_build(const ups_member_t *m, size_t n, uint32_t **table, size_t *size);
uint64_t ups_hash_key(const void *p, size_t len);

/* forward.c */
void ups_forward(pt_request_t *r);
/* Fails every request waiting for a slot (worker exit). */
void ups_pending_fail_all(ups_worker_t *uw);

#endif
