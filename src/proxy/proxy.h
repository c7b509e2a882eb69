/*
 * Portico proxy: the request context, the configuration snapshot of the
 * HTTP side, and the runtime (workers, listeners, reload, drain).
 *
 * Feature modules (src/upstream, later cache, filter...) include this
 * header; proxy includes none of theirs. A module plugs in with a
 * pt_proxy_module_t: its config directives, per-snapshot and per-worker
 * state in numbered slots, and content handlers that locations point to.
 */
#ifndef PT_PROXY_H
#define PT_PROXY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/core.h"
#include "http/http.h"

typedef struct pt_snapshot pt_snapshot_t;
typedef struct pt_worker pt_worker_t;
typedef struct pt_conn pt_conn_t;
typedef struct pt_request pt_request_t;
typedef struct pt_location pt_location_t;
typedef struct pt_vhost pt_vhost_t;

/* Module slots in snapshots and workers. */
enum { PT_MOD_UPSTREAM = 0, PT_MOD_MAX = 8 };

/* ---- string templates with $variables ---- */

typedef enum {
    PT_VAR_LITERAL = 0,
    PT_VAR_HOST,
    PT_VAR_REMOTE_ADDR,
    PT_VAR_REMOTE_PORT,
    PT_VAR_SCHEME,
    PT_VAR_REQUEST_ID,
    PT_VAR_REQUEST_URI,
    PT_VAR_URI,
    PT_VAR_ARGS,
    PT_VAR_SERVER_PORT,
    PT_VAR_REQUEST_METHOD,
    PT_VAR_HTTP_HEADER, /* $http_<name>, '_' matches '-' */
    PT_VAR_COOKIE,      /* $cookie_<name>: that cookie's value from Cookie headers */
} pt_var_kind_t;

typedef struct pt_tpl_part {
    pt_var_kind_t kind;
    const char *s; /* literal text, or the header/cookie name for $http_/$cookie_ */
    size_t len;
} pt_tpl_part_t;

typedef struct pt_tpl {
    pt_tpl_part_t *parts;
    size_t nparts;
    bool is_empty; /* "" : means "remove" for proxy_set_header */
} pt_tpl_t;

/* Compiles a config argument into a template; errors point into it. */
int pt_tpl_compile(pt_conf_build_t *b, const pt_conf_node_t *n, size_t argi, pt_tpl_t *out);
/* Expands for r into the request pool. Returns NULL on OOM. */
char *pt_tpl_expand(pt_request_t *r, const pt_tpl_t *t, size_t *len);

/* ---- configuration snapshot ---- */

typedef struct pt_header_op {
    const char *name;
    size_t name_len;
    pt_tpl_t value;
    bool always; /* add_header ... always */
} pt_header_op_t;

typedef struct pt_cidr {
    uint8_t family; /* AF_INET or AF_INET6 */
    uint8_t bits;
    uint8_t addr[16];
} pt_cidr_t;

/* Settings inherited http -> server -> location (copied, then overridden). */
/* proxy_next_upstream: when a failed attempt may go to another server. */
enum {
    PT_NEXT_ERROR = 1u << 0,   /* connect failure, reset or close before the response */
    PT_NEXT_TIMEOUT = 1u << 1, /* connect or try timeout before the response */
    PT_NEXT_500 = 1u << 2,
    PT_NEXT_502 = 1u << 3,
    PT_NEXT_503 = 1u << 4,
    PT_NEXT_504 = 1u << 5,
    PT_NEXT_429 = 1u << 6,
    PT_NEXT_NON_IDEMPOTENT = 1u << 7,
};

typedef struct pt_http_settings {
    uint64_t client_header_timeout;
    uint64_t client_body_timeout;
    uint64_t keepalive_timeout;
    uint64_t keepalive_requests;
    uint64_t send_timeout;
    uint64_t proxy_connect_timeout;
    uint64_t proxy_read_timeout;
    uint64_t proxy_send_timeout;
    uint64_t client_max_body_size; /* 0 = unlimited */
    uint64_t proxy_buffer_size;
    unsigned next_upstream;         /* PT_NEXT_*, default error | timeout */
    int next_upstream_tries;        /* attempts at most; 0 = one per server */
    uint64_t next_upstream_timeout; /* ms for all attempts; 0 = no limit */
    uint64_t proxy_try_timeout;     /* ms from attempt start to response head; 0 = off */
    pt_http_limits_t limits;
    bool server_tokens;
    pt_array_t add_headers;       /* pt_header_op_t */
    bool add_headers_own;         /* defined at this level (nginx inheritance) */
    pt_array_t proxy_set_headers; /* pt_header_op_t */
    bool proxy_set_headers_own;
    pt_array_t real_ip_from;      /* pt_cidr_t */
    const char *real_ip_header;   /* NULL, a header name, or "proxy_protocol" */
    bool real_ip_recursive;
    const char *request_id_header; /* taken from trusted clients, forwarded */
    pt_static_conf_t static_conf;  /* root, index, types */
    pt_array_t index_names;        /* const char * */
    pt_array_t mime_types;         /* pt_mime_type_t */
} pt_http_settings_t;

typedef enum {
    PT_LOC_PREFIX = 0,
    PT_LOC_PREFIX_NOREGEX, /* ^~ */
    PT_LOC_EXACT,          /* = */
    PT_LOC_REGEX,          /* ~ */
    PT_LOC_REGEX_CASELESS, /* ~* */
} pt_loc_match_t;

typedef struct pt_header_match {
    const char *name;
    size_t name_len;
    void *re; /* pcre2_code *, NULL: header must be present */
} pt_header_match_t;

/* A content handler: starts producing the response for r. */
typedef void (*pt_handler_fn)(pt_request_t *r);

typedef enum { PT_ACT_NONE = 0, PT_ACT_RETURN, PT_ACT_STATIC, PT_ACT_HANDLER } pt_action_t;

struct pt_location {
    pt_loc_match_t match;
    const char *path;
    size_t path_len;
    void *re; /* pcre2_code * for regex locations */
    pt_array_t header_matches; /* pt_header_match_t, all must match */
    const char *file;          /* where it was defined, for errors */
    uint32_t line;
    pt_action_t action;
    int return_status;
    pt_tpl_t return_text; /* body, or Location for 3xx */
    bool has_return_text;
    pt_handler_fn handler;
    void *handler_conf; /* the module's per-location config */
    pt_http_settings_t s;
    struct pt_location *dup_of; /* same path defined before (config check) */
    struct pt_route_stats *stats; /* request counters, bound when the snapshot goes live */
};

typedef struct pt_listen_conf {
    pt_addr_t addr;
    bool reuseport;
    bool proxy_protocol;
    int backlog;
    pt_vhost_t *default_server;
    bool default_server_explicit;
    pt_array_t vhosts; /* pt_vhost_t * */
    const char *file;
    uint32_t line, col;
} pt_listen_conf_t;

struct pt_vhost {
    pt_array_t names;     /* const char *, lower case; "*.x" wildcard */
    pt_array_t locations; /* pt_location_t * in definition order */
    pt_location_t *root_loc; /* implicit "location /" when none matches */
    bool server_return;      /* a server-level return answers every request (nginx) */
    pt_http_settings_t s;
};

typedef struct pt_main_conf {
    int workers;
    int worker_connections;
    const char *pid_path;
    const char *user;
    const char *group;
    const char *error_log;
    pt_log_level_t error_log_level;
    const char *admin_listen; /* NULL = off */
    const char *admin_token;  /* NULL = no authentication */
    uint64_t shutdown_timeout;
    const char *access_log; /* NULL = off; "stderr" */
} pt_main_conf_t;

struct pt_snapshot {
    _Atomic long refs;
    uint64_t generation;
    pt_pool_t *pool;
    const char *conf_path;
    const char *conf_dir;
    pt_main_conf_t main;
    pt_http_settings_t http;
    pt_array_t listens; /* pt_listen_conf_t */
    bool http_seen;
    void *mod[PT_MOD_MAX];
};

/* ---- modules ---- */

/*
 * What the control thread offers modules: its loop (timers, health checks,
 * resolvers run there), the admin server (NULL when off), the workers
 * (to post tasks to their loops) and reload. Lives for the whole process.
 */
typedef struct pt_control {
    pt_loop_t *loop;
    struct pt_admin *admin;
    int nworkers;
    pt_worker_t **workers;
    /* Reloads the configuration as SIGHUP does. Returns 0, or -EINVAL with
     * the error ("file:line:col: message") in err; the running config stays. */
    int (*reload)(struct pt_control *ctl, pt_conf_err_t *err);
    void *rt;              /* the runtime (for reload) */
    void *mod[PT_MOD_MAX]; /* each module's process-wide state */
} pt_control_t;

typedef struct pt_proxy_module {
    const char *name;
    int slot;
    const pt_conf_cmd_t *cmds;
    /* Called after the whole config was walked (resolve names). */
    int (*finalize)(pt_conf_build_t *b, pt_snapshot_t *snap);
    /* Snapshot freed (pool is freed right after). */
    void (*snapshot_free)(pt_snapshot_t *snap);
    /* Worker start/stop, on the worker thread. */
    int (*worker_init)(pt_worker_t *w);
    void (*worker_exit)(pt_worker_t *w);
    /* Worker is draining: close idle upstream connections etc. */
    void (*worker_drain)(pt_worker_t *w);
    /* Control thread: process start (admin created, workers not started). */
    int (*control_init)(pt_control_t *ctl);
    /* Control thread: snap goes live (at start and on each reload), before
     * any worker sees it. A failure keeps the running config. */
    int (*control_adopt)(pt_control_t *ctl, pt_snapshot_t *snap);
    /* Control thread: after every worker exited. */
    void (*control_exit)(pt_control_t *ctl);
} pt_proxy_module_t;

/* The location a location-context directive handler was called for. */
pt_location_t *pt_conf_location(void *obj);

/* Registers a module (start-up only). Returns 0 or -ENOSPC. */
int pt_proxy_module_register(const pt_proxy_module_t *m);

/* ---- snapshots ---- */

/*
 * Loads and validates the config at path into a new snapshot (refs = 1).
 * On error returns NULL and fills err ("file:line:col: message" + caret).
 */
pt_snapshot_t *pt_snapshot_load(const char *path, uint64_t generation, pt_conf_err_t *err);
pt_snapshot_t *pt_snapshot_ref(pt_snapshot_t *s);
/* Drops a reference; the last one frees. Any thread. */
void pt_snapshot_unref(pt_snapshot_t *s);

/* ---- workers ---- */

struct pt_worker {
    int id;
    pt_loop_t *loop;
    pt_snapshot_t *snap; /* current; each request takes its own ref */
    bool draining;
    uint64_t nconns;      /* open downstream connections */
    uint64_t nrequests;   /* active requests */
    void *mod[PT_MOD_MAX];
    uint64_t rng; /* xorshift state for request ids */
    pt_control_t *ctl;
    struct pt_worker_priv *priv;
};

/* A request pool from the worker's cache (or a new one); NULL on OOM. */
pt_pool_t *pt_worker_pool_get(pt_worker_t *w);
void pt_worker_pool_put(pt_worker_t *w, pt_pool_t *pool);

/* A buffer of `size` bytes from the worker's cache (or malloc). */
void *pt_worker_buf_get(pt_worker_t *w, size_t size);
void pt_worker_buf_put(pt_worker_t *w, void *buf, size_t size);

/* ---- the request context ---- */

typedef enum {
    PT_REQ_HEAD = 0, /* response head not sent yet */
    PT_REQ_BODY,     /* head sent, body streaming */
    PT_REQ_DONE,
} pt_req_state_t;

/* An output segment: memory referenced (not copied) or a file range. */
typedef struct pt_out_seg {
    const char *p;
    size_t len;
    int fd; /* -1 for memory */
    off_t off;
} pt_out_seg_t;

#define PT_OUT_MAX_SEGS 8

/* Response being sent: what the proxy's writer needs to frame it. */
typedef struct pt_response {
    int status;
    pt_http_hdr_t *headers; /* from the handler; hop-by-hop already removed */
    size_t nheaders;
    int64_t content_length; /* -1: unknown (chunked to 1.1 clients, else close) */
    bool no_body;           /* HEAD, 1xx, 204, 304 */
    bool upgrade;           /* 101: the connection becomes a tunnel */
} pt_response_t;

struct pt_request {
    pt_conn_t *conn;
    pt_worker_t *worker;
    pt_snapshot_t *snap;
    pt_pool_t *pool;
    pt_http_req_t h;
    pt_vhost_t *vhost;
    pt_location_t *loc;
    const char *request_id;
    size_t request_id_len;
    char client_ip[48]; /* after real_ip processing */
    uint16_t client_port;
    uint64_t start_us;
    pt_req_state_t state;
    int status;             /* sent status, for logs and metrics */
    uint64_t bytes_sent;    /* body bytes sent to the client */
    uint64_t body_received; /* request body bytes read */
    bool resp_chunked;      /* we chunk-encode the body to the client */
    bool resp_close;        /* close the connection after this response */
    bool body_done;         /* request body fully read */
    bool req_chunked;
    int64_t body_left;      /* request body bytes left (content-length) */
    pt_http_chunked_t chunked;
    /* output queue */
    pt_out_seg_t out[PT_OUT_MAX_SEGS];
    int nout;
    char *head_buf; /* serialized response head (pool) */
    char chunk_hdr[24];
    /* handler state */
    void *handler_data;
    /* Called when the output queue drained (after PT_AGAIN). */
    void (*on_drain)(pt_request_t *r);
    /* Called when request body bytes are available (see pt_req_read_body). */
    void (*on_body)(pt_request_t *r);
    /* Called when the request is aborted (client gone, timeout, stop). */
    void (*on_abort)(pt_request_t *r);
    /* Upstream address and timing for the access log. */
    char upstream_addr[64];
    uint64_t upstream_connect_us;
    uint64_t upstream_header_us;
    bool tunnel;
    bool head_only;      /* HEAD or a bodiless status: body bytes are dropped */
    bool sent_continue;  /* 100 Continue written */
    size_t head_len;     /* response head bytes */
    size_t body_pending; /* bytes returned by pt_req_read_body not yet consumed */
    bool chunked_done;
    bool aborted;        /* ended by the client side (gone, timeout) */
};

/*
 * Answers with a small generated response (errors, `return`): status,
 * optional body (copied), content type. Closes the connection afterwards
 * when close is true. Only before the head was sent.
 */
void pt_req_respond(pt_request_t *r, int status, const char *ctype, const char *body,
                    size_t len, bool close);
/* A redirect (3xx) to location with a short HTML body. */
void pt_req_redirect(pt_request_t *r, int status, const char *location, size_t len);
/*
 * Ends r after the last send returned rc: 0 finishes now, PT_AGAIN
 * finishes once the output drained, an error aborts.
 */
void pt_req_finish_after(pt_request_t *r, int rc);
/* Standard error page for status (short HTML body, Connection: close if close). */
void pt_req_error(pt_request_t *r, int status, bool close);
/* The same with a Retry-After header (503 when no origin can take it); the
 * connection closes after it when the request body was not fully read. */
void pt_req_error_retry_after(pt_request_t *r, int status, unsigned seconds);

/*
 * Queues the response head. The writer adds Date? (no: origin's is kept),
 * Server (generated responses), Connection, framing (Content-Length or
 * chunked), add_header lines. Nothing is written until pt_req_flush().
 * Returns 0 or -ENOMEM.
 */
int pt_req_send_head(pt_request_t *r, const pt_response_t *resp);
/* Drops a queued response head if none of it was written yet, so the
 * request can still be answered with an error. No-op otherwise. */
void pt_req_unsend_head(pt_request_t *r);
/*
 * Queues body bytes (referenced, not copied: keep them alive and unchanged
 * until the queue drains) and tries to write. last marks the end of the
 * body (the terminating chunk is added when chunking). Returns 0 when
 * everything was written, PT_AGAIN when some is queued (on_drain will be
 * called), or a negative errno (client gone: the request is aborted).
 */
int pt_req_send_body(pt_request_t *r, const char *p, size_t len, bool last);
/* Queues a file range (sendfile) and tries to write. Same returns. */
int pt_req_send_file(pt_request_t *r, int fd, off_t off, size_t len, bool last);
/* Writes what is queued. Same returns. */
int pt_req_flush(pt_request_t *r);
/*
 * Marks the response complete. The connection goes on with the next
 * (pipelined) request or idles. Call after the last pt_req_send_* returned
 * 0, or from on_drain. The request is freed at a safe point.
 */
void pt_req_finish(pt_request_t *r);
/*
 * Aborts: the response cannot be completed (origin failed mid-body); the
 * client connection is closed. Logged with the status sent.
 */
void pt_req_abort(pt_request_t *r);

/*
 * Request body input: returns decoded body bytes available now in *p and *len
 * (pointing into the connection buffer, valid until the next call), 0 when
 * some were returned, PT_AGAIN when none now (on_body will be called),
 * 1 when the body is complete (no bytes), or -status on a framing error
 * (the caller answers it). Call pt_req_body_consumed(r) when done with
 * the bytes returned.
 */
int pt_req_read_body(pt_request_t *r, const char **p, size_t *len);
void pt_req_body_consumed(pt_request_t *r);

/*
 * Tunnels (after 101): the client socket fd and any bytes already read
 * from it beyond the request. The caller takes over the client side: the
 * request stays open until pt_req_finish/abort.
 */
int pt_req_tunnel_fd(pt_request_t *r);
/* The client socket's io (readiness flags) for tunnel pumping. */
pt_io_t *pt_req_client_io(pt_request_t *r);
/* Called when the client socket is readable/writable in tunnel mode. */
void pt_req_set_tunnel_cb(pt_request_t *r, void (*cb)(pt_request_t *r, unsigned events));
/* Bytes read from the client beyond the request head, handed over once. */
size_t pt_req_take_pending(pt_request_t *r, char *dst, size_t cap);

/*
 * Serializes the request head to forward to an origin into the request
 * pool: request line (origin-form), headers minus hop-by-hop ones and
 * those listed in Connection, proxy_set_header applied ("" removes),
 * Via, X-Forwarded-For (appended), X-Forwarded-Proto, Forwarded, the
 * request id header, framing (Content-Length, or Transfer-Encoding:
 * chunked when the body is re-chunked), and for upgrades Connection:
 * upgrade with the Upgrade header. Returns NULL on OOM.
 */
char *pt_req_forward_head(pt_request_t *r, size_t *len);

/*
 * Removes hop-by-hop fields from a response header array in place:
 * Connection and the fields it lists, Keep-Alive, Proxy-Connection, TE,
 * Trailer, Transfer-Encoding, Content-Length (the writer frames the body
 * itself), and Upgrade unless keep_upgrade. Returns the new count.
 */
size_t pt_resp_strip_hop(pt_http_hdr_t *h, size_t n, bool keep_upgrade);

/* The remote client address as seen on the socket. */
const pt_addr_t *pt_req_peer(const pt_request_t *r);
/* "http" (later "https") */
const char *pt_req_scheme(const pt_request_t *r);
uint16_t pt_req_local_port(const pt_request_t *r);
/* The PROXY protocol source received on the connection, or NULL. */
const pt_addr_t *pt_req_proxy_src(const pt_request_t *r);

/* ---- PROXY protocol (v1 text, v2 binary) ---- */

/*
 * Parses a PROXY protocol header at the start of buf[0..len). On success
 * returns the header length (> 0) and fills src/dst (for "UNKNOWN"/LOCAL
 * commands, src->len and dst->len are 0: use the socket addresses).
 * Returns PT_AGAIN when more bytes are needed, -EINVAL when malformed
 * (including a v1 line over 107 bytes or a v2 length over 512 bytes).
 */
int pt_pp_parse(const char *buf, size_t len, pt_addr_t *src, pt_addr_t *dst);
/* Writes a v1 line ("PROXY TCP4 s d sp dp\r\n") for src/dst; returns its
 * length or -ENOSPC. Mixed families: "PROXY UNKNOWN\r\n". */
int pt_pp_build_v1(char *out, size_t size, const pt_addr_t *src, const pt_addr_t *dst);
/* Writes a v2 header (PROXY command, TCP over IPv4/IPv6); returns its
 * length or -ENOSPC. */
int pt_pp_build_v2(char *out, size_t size, const pt_addr_t *src, const pt_addr_t *dst);

/* ---- runtime ---- */

typedef struct pt_run_opts {
    const char *conf_path;
    bool daemonize;
} pt_run_opts_t;

/* Registers the proxy's own directives. Call once at start-up. */
int pt_proxy_init(void);
/*
 * Runs the server until stopped: loads the config, binds, drops privileges,
 * starts workers and the control thread, handles signals. Returns the
 * process exit status.
 */
int pt_proxy_run(const pt_run_opts_t *opts);

#endif /* PT_PROXY_H */
