/*
 * Portico core: the public API of src/core.
 *
 * Core knows nothing of HTTP. It gives every other module:
 *   - memory pools (region allocation freed in one shot) and pooled buffers
 *   - the event loop (epoll, edge-triggered), timers, cross-thread posts
 *   - logging (error log with levels)
 *   - the configuration language: lexer, parser, AST with file:line:column,
 *     and the directive table walker that modules plug their directives into
 *   - the metrics registry (per-worker shards merged on scrape)
 *   - small helpers: size/time parsing, string utilities
 *
 * Conventions: functions return 0 or a negative errno unless said otherwise.
 */
#ifndef PT_CORE_H
#define PT_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PT_VERSION "0.1.0"

#define PT_OK 0
#define PT_AGAIN (-11) /* == -EAGAIN: would block, call again later */

#define pt_min(a, b) ((a) < (b) ? (a) : (b))
#define pt_max(a, b) ((a) > (b) ? (a) : (b))
#define pt_countof(a) (sizeof(a) / sizeof((a)[0]))
#define pt_unused(x) ((void)(x))

/* ------------------------------------------------------------------ */
/* Memory pools                                                        */
/* ------------------------------------------------------------------ */

/*
 * A region allocator: many small allocations, freed at once by
 * pt_pool_destroy(). Large allocations (over the block size) get their own
 * block. Cleanup handlers run in reverse order of registration at destroy.
 * A pool is used by one thread at a time.
 */
typedef struct pt_pool pt_pool_t;
typedef void (*pt_cleanup_fn)(void *data);

/* Creates a pool whose blocks are block_size bytes (0 = 4096). NULL on OOM. */
pt_pool_t *pt_pool_create(size_t block_size);
/* Runs cleanups, frees every block. Accepts NULL. */
void pt_pool_destroy(pt_pool_t *pool);
/* Frees everything but the first block so the pool can be reused. */
void pt_pool_reset(pt_pool_t *pool);
/* 16-byte aligned allocation; NULL on OOM. */
void *pt_pool_alloc(pt_pool_t *pool, size_t size);
/* Zeroed allocation; NULL on OOM. */
void *pt_pool_calloc(pt_pool_t *pool, size_t n, size_t size);
/* Copies len bytes and NUL-terminates; NULL on OOM. */
char *pt_pool_strndup(pt_pool_t *pool, const char *s, size_t len);
char *pt_pool_strdup(pt_pool_t *pool, const char *s);
/* printf into the pool; NULL on OOM. */
char *pt_pool_printf(pt_pool_t *pool, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Registers fn(data) to run at destroy/reset. Returns 0 or -ENOMEM. */
int pt_pool_cleanup_add(pt_pool_t *pool, pt_cleanup_fn fn, void *data);
/* Bytes handed out so far (for tests and memory accounting). */
size_t pt_pool_used(const pt_pool_t *pool);

/* ------------------------------------------------------------------ */
/* Growable array (pool-backed)                                        */
/* ------------------------------------------------------------------ */

typedef struct pt_array {
    pt_pool_t *pool;
    void *items;
    size_t n, cap, size;
} pt_array_t;

int pt_array_init(pt_array_t *a, pt_pool_t *pool, size_t item_size, size_t cap);
/* Returns a pointer to a new zeroed slot at the end, or NULL on OOM. */
void *pt_array_push(pt_array_t *a);
#define pt_array_at(a, type, i) (&((type *)(a)->items)[i])

/* ------------------------------------------------------------------ */
/* Event loop                                                          */
/* ------------------------------------------------------------------ */

typedef struct pt_loop pt_loop_t;
typedef struct pt_io pt_io_t;
typedef struct pt_timer pt_timer_t;

#define PT_EV_READ 0x1u
#define PT_EV_WRITE 0x2u
#define PT_EV_ERROR 0x4u /* EPOLLERR or EPOLLHUP */

/*
 * An fd watched edge-triggered for both directions. The loop sets
 * readable/writable when an edge arrives; the owner clears them when a
 * read/write returns EAGAIN (or a short read on a stream socket) and waits
 * for the next edge. cb gets the events that fired.
 */
typedef void (*pt_io_cb)(pt_io_t *io, unsigned events);
struct pt_io {
    int fd;
    bool readable;
    bool writable;
    bool registered;
    pt_io_cb cb;
    void *data;
};

typedef void (*pt_timer_cb)(pt_timer_t *t);
struct pt_timer {
    uint64_t when_ms; /* absolute, loop clock */
    size_t heap_idx;  /* SIZE_MAX when not armed */
    pt_timer_cb cb;
    void *data;
};

typedef void (*pt_task_fn)(void *arg);

/* Creates a loop. NULL on failure (errno set). */
pt_loop_t *pt_loop_create(void);
void pt_loop_destroy(pt_loop_t *loop);
/* Runs the posted and deferred tasks now (a loop that no longer runs, at
 * shutdown, so what they free is freed in order). */
void pt_loop_run_pending(pt_loop_t *loop);
/* Runs until pt_loop_stop(). Returns 0 or -errno from epoll. */
int pt_loop_run(pt_loop_t *loop);
/* Makes pt_loop_run() return after the current iteration. Loop thread only. */
void pt_loop_stop(pt_loop_t *loop);

/* Registers io->fd for read+write edges (EPOLLET). io->fd must be set. */
int pt_io_start(pt_loop_t *loop, pt_io_t *io);
/* Same, but read edges only (listening sockets, eventfds). */
int pt_io_start_read(pt_loop_t *loop, pt_io_t *io);
/* Unregisters (does not close the fd). Safe if not registered. */
void pt_io_stop(pt_loop_t *loop, pt_io_t *io);

void pt_timer_init(pt_timer_t *t, pt_timer_cb cb, void *data);
/* (Re)arms the timer to fire after ms milliseconds. */
void pt_timer_start(pt_loop_t *loop, pt_timer_t *t, uint64_t ms);
void pt_timer_stop(pt_loop_t *loop, pt_timer_t *t);
static inline bool pt_timer_armed(const pt_timer_t *t) { return t->heap_idx != SIZE_MAX; }

/* Monotonic milliseconds, cached once per loop iteration. */
uint64_t pt_loop_now(const pt_loop_t *loop);
/* Refreshes and returns the cached clock. */
uint64_t pt_loop_update_time(pt_loop_t *loop);

/*
 * Runs fn(arg) on the loop thread at the end of the current iteration,
 * after all I/O callbacks: the safe point to free an object from inside its
 * own callback. Loop thread only. Returns 0 or -ENOMEM.
 */
int pt_loop_defer(pt_loop_t *loop, pt_task_fn fn, void *arg);
/*
 * Runs fn(arg) on the loop thread soon. Any thread may call it (wakes the
 * loop through an eventfd). Returns 0 or -ENOMEM.
 */
int pt_loop_post(pt_loop_t *loop, pt_task_fn fn, void *arg);

/* Wall clock in milliseconds since the epoch (for logs). */
uint64_t pt_time_wall_ms(void);
/* Monotonic clock in milliseconds. */
uint64_t pt_time_mono_ms(void);
/* Monotonic clock in microseconds. */
uint64_t pt_time_mono_us(void);

/* ------------------------------------------------------------------ */
/* Logging                                                             */
/* ------------------------------------------------------------------ */

typedef enum {
    PT_LOG_DEBUG = 0,
    PT_LOG_INFO,
    PT_LOG_NOTICE,
    PT_LOG_WARN,
    PT_LOG_ERROR,
    PT_LOG_CRIT,
} pt_log_level_t;

/*
 * Opens the error log at path ("stderr" or NULL = standard error) and sets
 * the minimum level. Safe to call again (reopen). Any thread.
 */
int pt_log_open(const char *path, pt_log_level_t level);
/* Reopens the current file (logrotate). */
int pt_log_reopen(void);
/* Parses "debug|info|notice|warn|error|crit". Returns 0 or -EINVAL. */
int pt_log_level_parse(const char *s, pt_log_level_t *out);
bool pt_log_enabled(pt_log_level_t level);
/* One line: "2026-11-25T08:00:00.123Z [error] message\n". Any thread. */
void pt_log(pt_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pt_logv(pt_log_level_t level, const char *fmt, va_list ap);

#define pt_log_error(...) pt_log(PT_LOG_ERROR, __VA_ARGS__)
#define pt_log_warn(...) pt_log(PT_LOG_WARN, __VA_ARGS__)
#define pt_log_notice(...) pt_log(PT_LOG_NOTICE, __VA_ARGS__)
#define pt_log_info(...) pt_log(PT_LOG_INFO, __VA_ARGS__)
#define pt_log_debug(...)                                                     \
    do {                                                                      \
        if (pt_log_enabled(PT_LOG_DEBUG)) pt_log(PT_LOG_DEBUG, __VA_ARGS__);  \
    } while (0)

/* ------------------------------------------------------------------ */
/* Configuration language: nginx syntax                                */
/* ------------------------------------------------------------------ */

/*
 * Syntax: directives are a name followed by arguments and end in ';', or a
 * name, arguments and a '{ ... }' block. Arguments are bare words or single-
 * or double-quoted strings (escapes \" \' \\ \n \t \r; a quoted string is
 * one argument even when empty). '#' starts a comment to end of line
 * (outside quotes). `include PATTERN;` is expanded by the parser in place
 * (glob, relative to the including file's directory, sorted; a pattern
 * with no wildcard that matches nothing is an error; nesting depth <= 16).
 *
 * Every node and argument remembers file, line and column (1-based,
 * columns count bytes). Errors are formatted by pt_conf_error*() as:
 *
 *     file:line:column: message
 *         <the source line>
 *         <spaces>^
 */

typedef struct pt_conf_doc pt_conf_doc_t;

typedef struct pt_conf_arg {
    char *val;      /* unescaped, NUL-terminated */
    size_t len;
    uint32_t line;  /* position of the first character (the quote if quoted) */
    uint32_t col;
    bool quoted;
} pt_conf_arg_t;

typedef struct pt_conf_node {
    const char *file; /* path as opened; owned by the doc */
    uint32_t line;
    uint32_t col;
    char *name;
    pt_conf_arg_t *args;
    size_t nargs;
    bool block;                     /* had a { } block (maybe empty) */
    struct pt_conf_node *children;  /* array of nchildren nodes */
    size_t nchildren;
} pt_conf_node_t;

/* Error text, filled by the parser and by directive handlers. */
typedef struct pt_conf_err {
    char msg[2048];
} pt_conf_err_t;

/*
 * Parses path (following includes) into a doc allocated from pool.
 * On success returns 0 and *out; the root node is a block whose children are
 * the top-level directives. On failure returns a negative errno (-EINVAL for
 * syntax) and fills err with the formatted message. The doc keeps the
 * source text of every file so errors can quote lines.
 */
int pt_conf_parse_file(pt_pool_t *pool, const char *path, pt_conf_doc_t **out,
                       pt_conf_err_t *err);
/* Same, from a memory buffer; name is used as the file name in errors. */
int pt_conf_parse_string(pt_pool_t *pool, const char *name, const char *text,
                         size_t len, pt_conf_doc_t **out, pt_conf_err_t *err);
const pt_conf_node_t *pt_conf_root(const pt_conf_doc_t *doc);

/*
 * Formats "file:line:col: message" plus the quoted source line and a caret
 * into err. Returns -EINVAL so handlers can `return pt_conf_error(...)`.
 */
int pt_conf_error_at(const pt_conf_doc_t *doc, pt_conf_err_t *err, const char *file,
                     uint32_t line, uint32_t col, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/*
 * The source column of byte `offset` of an argument's unescaped value
 * (escapes such as \" take two source columns for one byte). For errors
 * that point inside an argument (regexes, templates).
 */
uint32_t pt_conf_arg_col(const pt_conf_doc_t *doc, const char *file, const pt_conf_arg_t *a,
                         size_t offset);

/* ---- Directive tables: how modules plug directives in ---- */

/* Contexts (bitmask). */
#define PT_CONF_MAIN 0x01u
#define PT_CONF_EVENTS 0x02u
#define PT_CONF_HTTP 0x04u
#define PT_CONF_SERVER 0x08u
#define PT_CONF_LOCATION 0x10u
#define PT_CONF_UPSTREAM 0x20u

#define PT_CONF_ANY_ARGS (-1)

typedef struct pt_conf_build pt_conf_build_t;

/*
 * One directive. set() is called with the node and the object of the
 * enclosing block (whatever the block's handler passed to pt_conf_walk).
 * It returns 0 or the result of pt_conf_err_node()/pt_conf_err_arg().
 */
typedef struct pt_conf_cmd {
    const char *name;
    uint32_t contexts;
    int min_args;
    int max_args; /* PT_CONF_ANY_ARGS = no upper bound */
    bool block;   /* must have a { } block; others must not */
    int (*set)(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj);
} pt_conf_cmd_t;

/* State of one configuration build (one load or reload). */
struct pt_conf_build {
    pt_conf_doc_t *doc;
    pt_conf_err_t *err;
    pt_pool_t *pool; /* owns everything the build produces */
    void *user;      /* the snapshot being built */
};

/*
 * Registers a table of directives (terminated by a {NULL} entry). Call at
 * start-up, before any build; not thread-safe. Returns 0 or -EEXIST when a
 * name is registered twice for overlapping contexts.
 */
int pt_conf_register(const pt_conf_cmd_t *cmds);
/*
 * Walks the children of block: for each, finds the directive for ctx,
 * checks block-ness and argument count, and calls set(b, child, obj).
 * Errors: unknown directive, directive not allowed in this context,
 * wrong argument count, missing/unexpected block. Stops at the first error.
 */
int pt_conf_walk(pt_conf_build_t *b, const pt_conf_node_t *block, uint32_t ctx, void *obj);
/* Error at a node's name / at an argument. Return value: -EINVAL. */
int pt_conf_err_node(pt_conf_build_t *b, const pt_conf_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int pt_conf_err_arg(pt_conf_build_t *b, const pt_conf_node_t *n, size_t argi,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Value parsers; each reports "invalid value" style errors at the argument. */
int pt_conf_get_flag(pt_conf_build_t *b, const pt_conf_node_t *n, size_t argi, bool *out);
int pt_conf_get_int(pt_conf_build_t *b, const pt_conf_node_t *n, size_t argi, long long min,
                    long long max, long long *out);
/* Sizes: 123, 16k, 8K, 1m, 2g. */
int pt_conf_get_size(pt_conf_build_t *b, const pt_conf_node_t *n, size_t argi, uint64_t min,
                     uint64_t max, uint64_t *out);
/* Times to milliseconds: 250ms, 30s, 5m, 1h, 1d; a bare number is seconds. */
int pt_conf_get_msec(pt_conf_build_t *b, const pt_conf_node_t *n, size_t argi, uint64_t min,
                     uint64_t max, uint64_t *out);

/* Pure parsers behind them (no error reporting); 0 or -EINVAL/-ERANGE. */
int pt_parse_size(const char *s, size_t len, uint64_t *out);
int pt_parse_msec(const char *s, size_t len, uint64_t *out);

/* ------------------------------------------------------------------ */
/* Metrics registry                                                    */
/* ------------------------------------------------------------------ */

/*
 * Series are registered at start-up (any module, before workers start) and
 * return a slot id. Every worker thread owns a shard of slots and updates
 * it without locks or atomics (a single writer); scrapes read all shards
 * with relaxed loads and sum. Labels are given pre-rendered, e.g.
 * "class=\"2xx\"" (empty for none). Series of one family share name/help
 * and must be registered one after another.
 */
typedef enum { PT_METRIC_COUNTER, PT_METRIC_GAUGE, PT_METRIC_HISTOGRAM } pt_metric_kind_t;

typedef int pt_metric_id_t;

#define PT_METRICS_MAX_SLOTS 4096
#define PT_METRICS_MAX_SHARDS 256

/* Returns the id (>= 0) or -ENOSPC / -EINVAL. */
pt_metric_id_t pt_metric_counter(const char *name, const char *help, const char *labels);
pt_metric_id_t pt_metric_gauge(const char *name, const char *help, const char *labels);
/* Buckets are upper bounds in the observed unit (ascending, <= 32). */
pt_metric_id_t pt_metric_histogram(const char *name, const char *help, const char *labels,
                                   const double *buckets, size_t nbuckets);

/*
 * A gauge whose value is computed at scrape time by fn(arg) (control
 * thread). For values owned elsewhere (uptime, config generation).
 */
pt_metric_id_t pt_metric_gauge_fn(const char *name, const char *help, const char *labels,
                                  double (*fn)(void *arg), void *arg);

/* Attaches the calling thread to shard index (0..PT_METRICS_MAX_SHARDS-1). */
void pt_metrics_thread_attach(int shard);

/* Updates in the calling thread's shard (no-op if not attached). */
void pt_metric_add(pt_metric_id_t id, uint64_t n);
static inline void pt_metric_inc(pt_metric_id_t id) { pt_metric_add(id, 1); }
/* Gauges may go down: per-shard signed deltas, summed on scrape. */
void pt_metric_gauge_add(pt_metric_id_t id, int64_t delta);
void pt_metric_observe(pt_metric_id_t id, double value);

/*
 * A collector renders families whose series are not known at start-up
 * (per upstream group or server) at scrape time, on the scraping thread,
 * after the registered series, in text format 0.0.4 (HELP and TYPE lines
 * included). Add and remove on the control thread. Returns 0, -ENOSPC.
 */
typedef struct pt_sbuf pt_sbuf_t;
typedef void (*pt_metrics_collector_fn)(pt_sbuf_t *out, void *arg);
int pt_metrics_collector_add(pt_metrics_collector_fn fn, void *arg);
void pt_metrics_collector_remove(pt_metrics_collector_fn fn, void *arg);
/* For collectors: the HELP (escaped) and TYPE lines of a family. */
void pt_metrics_family_head(pt_sbuf_t *o, const char *name, const char *type, const char *help);
/* For collectors: a label value escaped per the text format (\\, \", \n). */
void pt_metrics_label_value(pt_sbuf_t *o, const char *v);

/* Sum of one counter/gauge series over all shards (tests, /status). */
double pt_metric_value(pt_metric_id_t id);

/*
 * Renders every series in Prometheus text exposition format 0.0.4 into a
 * malloc'd buffer (*out, *len). Caller frees. Returns 0 or -ENOMEM.
 */
int pt_metrics_render(char **out, size_t *len);
/* Forgets every series and zeroes all shards. Tests only; no concurrent users. */
void pt_metrics_reset(void);

/* ------------------------------------------------------------------ */
/* Socket addresses and sockets                                        */
/* ------------------------------------------------------------------ */

#include <netinet/in.h>
#include <sys/socket.h>

/*
 * Only IPv4 and IPv6 are used, so the storage is sized for sockaddr_in6
 * (28 bytes) rather than sockaddr_storage (128): every connection holds
 * a few of these, and idle-connection memory is a product metric.
 * ss_family aliases the family field every sockaddr starts with.
 */
typedef union pt_sockaddr {
    sa_family_t ss_family;
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
} pt_sockaddr_t;

typedef struct pt_addr {
    pt_sockaddr_t ss;
    socklen_t len;
} pt_addr_t;

/*
 * Parses a numeric listen/connect address: "1.2.3.4:80", "[::1]:80",
 * "*:80" (any IPv4), "[::]:80", "80" (port only: 0.0.0.0), "1.2.3.4"
 * (default_port). Port 1..65535. Returns 0 or -EINVAL.
 */
int pt_addr_parse(const char *s, size_t len, uint16_t default_port, pt_addr_t *out);
/* "1.2.3.4:80" or "[::1]:80" into buf. Returns the length or -ENOSPC. */
int pt_addr_format(const pt_addr_t *a, char *buf, size_t size);
/* Address only ("1.2.3.4", "::1") into buf. Returns the length or -ENOSPC. */
int pt_addr_format_ip(const pt_addr_t *a, char *buf, size_t size);
uint16_t pt_addr_port(const pt_addr_t *a);
bool pt_addr_equal(const pt_addr_t *a, const pt_addr_t *b);

/*
 * Creates a non-blocking, close-on-exec TCP listening socket with
 * SO_REUSEADDR (and SO_REUSEPORT when reuseport), IPV6_V6ONLY for IPv6.
 * Returns the fd or a negative errno.
 */
int pt_socket_listen(const pt_addr_t *a, int backlog, bool reuseport);
/*
 * Starts a non-blocking connect. Returns the fd (connection in progress or
 * done) or a negative errno. Sets TCP_NODELAY.
 */
int pt_socket_connect(const pt_addr_t *a);

/* ------------------------------------------------------------------ */
/* String helpers                                                      */
/* ------------------------------------------------------------------ */

/* ASCII case-insensitive equality (header names, tokens). Inline: it sits
 * on every header lookup. */
static inline bool pt_strcaseeq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen) return false;
    for (size_t i = 0; i < alen; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x == y) continue;
        if ((x | 0x20) != (y | 0x20)) return false;
        x |= 0x20;
        if (x < 'a' || x > 'z') return false; /* only letters differ by case */
    }
    return true;
}
#define pt_strcaseeq_lit(a, alen, lit) pt_strcaseeq((a), (alen), (lit), sizeof(lit) - 1)
/* Writes v in decimal to out (at least 20 bytes, no NUL); returns the
 * length. For hot paths where snprintf costs too much. */
size_t pt_fmt_u64(char *out, uint64_t v);
/* Appends a JSON string literal (with quotes, escaped) to buf; returns the
 * bytes written, or the bytes needed if it does not fit (like snprintf).
 * Valid UTF-8 passes through; other bytes >= 0x80 become \u00XX. */
size_t pt_json_escape(char *buf, size_t size, const char *s, size_t len);

/* A growing, NUL-terminated string (malloc'd; free(b.p) when done). After
 * an allocation failure oom is set and further appends do nothing. */
struct pt_sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

void pt_sbuf_mem(pt_sbuf_t *b, const void *p, size_t n);
void pt_sbuf_str(pt_sbuf_t *b, const char *s);
void pt_sbuf_printf(pt_sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal (quotes included). */
void pt_sbuf_json_str(pt_sbuf_t *b, const char *s, size_t len);

#endif /* PT_CORE_H */
