/*
 * Metrics registry: per-thread shards merged on scrape.
 *
 * A series owns a run of consecutive uint64_t slots (same offsets in every
 * shard):
 *   counter    1 slot, the count
 *   gauge      1 slot, a signed delta stored two's complement (shards sum
 *              with wrap-around, which gives the right signed total)
 *   histogram  nbuckets slots of per-bucket (non-cumulative) counts, then
 *              the sum (IEEE double bits), then the count (observations
 *              above the last bound only bump the count: the +Inf bucket)
 *   gauge_fn   no slots; computed at scrape time
 *
 * Each worker thread updates only its own shard, so an update is a relaxed
 * load and a relaxed store (a plain mov on x86, no lock prefix); the
 * scraper reads every shard with relaxed loads. A scrape may see a
 * histogram's count and buckets from slightly different moments; that is
 * the usual trade for lock-free counters.
 *
 * Registration happens at start-up, before workers run, under a mutex.
 * The descriptors are never changed afterwards, so the hot path reads them
 * without synchronisation.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define MAX_SERIES PT_METRICS_MAX_SLOTS
#define MAX_BUCKETS 32

typedef struct series {
    pt_metric_kind_t kind;
    bool is_fn;           /* gauge computed by fn(arg) */
    bool family_start;    /* first series of its family: print HELP/TYPE */
    int slot;             /* first slot */
    int nbuckets;
    const char *name;     /* malloc'd */
    const char *help;     /* malloc'd */
    const char *labels;   /* malloc'd, "" for none */
    double (*fn)(void *arg);
    void *arg;
    double buckets[MAX_BUCKETS];
} series_t;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static series_t series[MAX_SERIES];
static int nseries;   /* guarded by reg_lock; read by writers after start-up */
static int nslots;    /* guarded by reg_lock */

static uint64_t *shards[PT_METRICS_MAX_SHARDS]; /* atomic pointers */

#define MAX_COLLECTORS 16
static struct {
    pt_metrics_collector_fn fn;
    void *arg;
} collectors[MAX_COLLECTORS]; /* guarded by reg_lock */
static int ncollectors;

int pt_metrics_collector_add(pt_metrics_collector_fn fn, void *arg)
{
    int rc = -ENOSPC;
    pthread_mutex_lock(&reg_lock);
    if (ncollectors < MAX_COLLECTORS) {
        collectors[ncollectors].fn = fn;
        collectors[ncollectors].arg = arg;
        ncollectors++;
        rc = 0;
    }
    pthread_mutex_unlock(&reg_lock);
    return rc;
}

void pt_metrics_collector_remove(pt_metrics_collector_fn fn, void *arg)
{
    pthread_mutex_lock(&reg_lock);
    for (int i = 0; i < ncollectors; i++) {
        if (collectors[i].fn != fn || collectors[i].arg != arg) continue;
        collectors[i] = collectors[--ncollectors];
        break;
    }
    pthread_mutex_unlock(&reg_lock);
}
static _Thread_local uint64_t *my_shard;

/* ------------------------------------------------------------------ */
/* Registration                                                        */
/* ------------------------------------------------------------------ */

static bool valid_name(const char *s)
{
    if (s == NULL || *s == '\0') return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                  (p != s && c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

/*
 * Checks family rules against what is registered: a name equal to the last
 * series' name continues that family (same kind required); a name used by
 * an earlier, finished family is refused. Sets *start. Caller holds lock.
 */
static int check_family(const char *name, pt_metric_kind_t kind, const char *labels, bool *start)
{
    *start = true;
    if (nseries == 0) return 0;
    const series_t *last = &series[nseries - 1];
    if (strcmp(last->name, name) == 0) {
        if (last->kind != kind) return -EINVAL;
        /* Same name and labels again is a duplicate series. */
        for (int i = nseries - 1; i >= 0 && strcmp(series[i].name, name) == 0; i--) {
            if (strcmp(series[i].labels, labels) == 0) return -EINVAL;
        }
        *start = false;
        return 0;
    }
    for (int i = 0; i < nseries; i++) {
        if (strcmp(series[i].name, name) == 0) return -EINVAL;
    }
    return 0;
}

static void free_series(series_t *s)
{
    free((void *)s->name);
    free((void *)s->help);
    free((void *)s->labels);
    memset(s, 0, sizeof(*s));
}

/*
 * Adds a series shaped like tmpl (kind, fn, buckets) using need slots.
 * Returns the id or -errno.
 */
static pt_metric_id_t add_series(const char *name, const char *help, const char *labels,
                                 const series_t *tmpl, int need)
{
    if (!valid_name(name)) return -EINVAL;
    if (help == NULL) help = "";
    if (labels == NULL) labels = "";

    pthread_mutex_lock(&reg_lock);
    int rc;
    bool start;
    if (nseries >= MAX_SERIES || nslots + need > PT_METRICS_MAX_SLOTS) {
        rc = -ENOSPC;
        goto out;
    }
    rc = check_family(name, tmpl->kind, labels, &start);
    if (rc < 0) goto out;

    series_t *s = &series[nseries];
    *s = *tmpl;
    s->name = strdup(name);
    s->help = strdup(help);
    s->labels = strdup(labels);
    if (s->name == NULL || s->help == NULL || s->labels == NULL) {
        free_series(s);
        rc = -ENOMEM;
        goto out;
    }
    s->family_start = start;
    s->slot = nslots;
    rc = nseries;
    nslots += need;
    /* Publish last: writers and scrapes only look at [0, nseries). */
    __atomic_store_n(&nseries, nseries + 1, __ATOMIC_RELEASE);
out:
    pthread_mutex_unlock(&reg_lock);
    return rc;
}

/* Registers a counter series. Start-up only. Returns the id or -errno. */
pt_metric_id_t pt_metric_counter(const char *name, const char *help, const char *labels)
{
    series_t t = {.kind = PT_METRIC_COUNTER};
    return add_series(name, help, labels, &t, 1);
}

/* Registers a gauge series updated with pt_metric_gauge_add(). */
pt_metric_id_t pt_metric_gauge(const char *name, const char *help, const char *labels)
{
    series_t t = {.kind = PT_METRIC_GAUGE};
    return add_series(name, help, labels, &t, 1);
}

/*
 * Registers a histogram; bucket bounds must be finite and strictly
 * ascending, 1..32 of them (the +Inf bucket is implicit).
 */
pt_metric_id_t pt_metric_histogram(const char *name, const char *help, const char *labels,
                                   const double *buckets, size_t nbuckets)
{
    if (buckets == NULL || nbuckets == 0 || nbuckets > MAX_BUCKETS) return -EINVAL;
    series_t t = {.kind = PT_METRIC_HISTOGRAM, .nbuckets = (int)nbuckets};
    for (size_t i = 0; i < nbuckets; i++) {
        if (!isfinite(buckets[i])) return -EINVAL;
        if (i > 0 && !(buckets[i] > buckets[i - 1])) return -EINVAL;
        t.buckets[i] = buckets[i];
    }
    return add_series(name, help, labels, &t, (int)nbuckets + 2);
}

/* Registers a gauge computed at scrape time by fn(arg) (control thread). */
pt_metric_id_t pt_metric_gauge_fn(const char *name, const char *help, const char *labels,
                                  double (*fn)(void *arg), void *arg)
{
    if (fn == NULL) return -EINVAL;
    series_t t = {.kind = PT_METRIC_GAUGE, .is_fn = true, .fn = fn, .arg = arg};
    return add_series(name, help, labels, &t, 0);
}

/*
 * Forgets every series and zeroes every shard (shards stay allocated so
 * attached threads keep valid pointers). For tests; no concurrent users.
 */
void pt_metrics_reset(void)
{
    pthread_mutex_lock(&reg_lock);
    for (int i = 0; i < nseries; i++) free_series(&series[i]);
    nseries = 0;
    nslots = 0;
    ncollectors = 0;
    for (int i = 0; i < PT_METRICS_MAX_SHARDS; i++) {
        uint64_t *sh = __atomic_load_n(&shards[i], __ATOMIC_ACQUIRE);
        if (sh != NULL) memset(sh, 0, PT_METRICS_MAX_SLOTS * sizeof(uint64_t));
    }
    pthread_mutex_unlock(&reg_lock);
}

/*
 * Attaches the calling thread to shard index, allocating it on first use.
 * Out-of-range indexes and OOM leave the thread detached (updates become
 * no-ops) and are logged.
 */
void pt_metrics_thread_attach(int shard)
{
    if (shard < 0 || shard >= PT_METRICS_MAX_SHARDS) {
        pt_log_error("metrics: shard %d out of range", shard);
        my_shard = NULL;
        return;
    }
    pthread_mutex_lock(&reg_lock);
    uint64_t *sh = shards[shard];
    if (sh == NULL) {
        sh = calloc(PT_METRICS_MAX_SLOTS, sizeof(uint64_t));
        if (sh != NULL) __atomic_store_n(&shards[shard], sh, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&reg_lock);
    if (sh == NULL) pt_log_error("metrics: cannot allocate shard %d", shard);
    my_shard = sh;
}

/* ------------------------------------------------------------------ */
/* Updates (hot path)                                                  */
/* ------------------------------------------------------------------ */

/* Single-writer add: relaxed load + relaxed store, no read-modify-write. */
static inline void slot_add(uint64_t *slot, uint64_t n)
{
    uint64_t v = __atomic_load_n(slot, __ATOMIC_RELAXED);
    __atomic_store_n(slot, v + n, __ATOMIC_RELAXED);
}

static inline const series_t *writable_series(pt_metric_id_t id)
{
    if (my_shard == NULL || id < 0 || id >= __atomic_load_n(&nseries, __ATOMIC_ACQUIRE))
        return NULL;
    return &series[id];
}

/* Adds n to a counter (gauges: treated as a positive delta). */
void pt_metric_add(pt_metric_id_t id, uint64_t n)
{
    const series_t *s = writable_series(id);
    if (s == NULL || s->kind == PT_METRIC_HISTOGRAM || s->is_fn) return;
    slot_add(&my_shard[s->slot], n);
}

void pt_metric_gauge_add(pt_metric_id_t id, int64_t delta)
{
    const series_t *s = writable_series(id);
    if (s == NULL || s->kind != PT_METRIC_GAUGE || s->is_fn) return;
    slot_add(&my_shard[s->slot], (uint64_t)delta);
}

static inline double bits_to_double(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof(d));
    return d;
}

static inline uint64_t double_to_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof(b));
    return b;
}

void pt_metric_observe(pt_metric_id_t id, double value)
{
    const series_t *s = writable_series(id);
    if (s == NULL || s->kind != PT_METRIC_HISTOGRAM) return;
    uint64_t *base = &my_shard[s->slot];
    int nb = s->nbuckets;
    for (int i = 0; i < nb; i++) {
        if (value <= s->buckets[i]) {
            slot_add(&base[i], 1);
            break;
        }
    }
    uint64_t *sum = &base[nb];
    double cur = bits_to_double(__atomic_load_n(sum, __ATOMIC_RELAXED));
    __atomic_store_n(sum, double_to_bits(cur + value), __ATOMIC_RELAXED);
    slot_add(&base[nb + 1], 1);
}

/* ------------------------------------------------------------------ */
/* Scrape                                                              */
/* ------------------------------------------------------------------ */

static uint64_t sum_slot(int slot)
{
    uint64_t total = 0;
    for (int i = 0; i < PT_METRICS_MAX_SHARDS; i++) {
        const uint64_t *sh = __atomic_load_n(&shards[i], __ATOMIC_ACQUIRE);
        if (sh != NULL) total += __atomic_load_n(&sh[slot], __ATOMIC_RELAXED);
    }
    return total;
}

static double sum_double_slot(int slot)
{
    double total = 0;
    for (int i = 0; i < PT_METRICS_MAX_SHARDS; i++) {
        const uint64_t *sh = __atomic_load_n(&shards[i], __ATOMIC_ACQUIRE);
        if (sh != NULL) total += bits_to_double(__atomic_load_n(&sh[slot], __ATOMIC_RELAXED));
    }
    return total;
}

static double series_value(const series_t *s)
{
    if (s->is_fn) return s->fn(s->arg);
    switch (s->kind) {
    case PT_METRIC_COUNTER: return (double)sum_slot(s->slot);
    case PT_METRIC_GAUGE: return (double)(int64_t)sum_slot(s->slot);
    case PT_METRIC_HISTOGRAM: return (double)sum_slot(s->slot + s->nbuckets + 1);
    }
    return 0;
}

/*
 * Sum of a series over all shards: counters and gauges as their value,
 * gauge_fn by calling fn, histograms as their observation count.
 * NAN for an unknown id. Any thread (gauge_fn: the control thread).
 */
double pt_metric_value(pt_metric_id_t id)
{
    /* No lock: published descriptors never change, and a gauge_fn may
     * itself read other series. */
    if (id < 0 || id >= __atomic_load_n(&nseries, __ATOMIC_ACQUIRE)) return NAN;
    return series_value(&series[id]);
}

/* ---- rendering ---- */

typedef pt_sbuf_t outbuf_t;

static void out_mem(outbuf_t *o, const char *s, size_t n) { pt_sbuf_mem(o, s, n); }

static void out_str(outbuf_t *o, const char *s) { pt_sbuf_str(o, s); }

#define out_fmt pt_sbuf_printf

/* Shortest decimal that reads back as d (Prometheus style: 0.1, 2.5, 1e-06). */
static void format_double(char *buf, size_t size, double d)
{
    if (isnan(d)) {
        snprintf(buf, size, "NaN");
        return;
    }
    if (isinf(d)) {
        snprintf(buf, size, d > 0 ? "+Inf" : "-Inf");
        return;
    }
    /* Integers print plainly ("10", not "1e+01"), as Prometheus does. */
    if (d == floor(d) && fabs(d) < 1e15) {
        snprintf(buf, size, "%.0f", d);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) return;
    }
}

static void out_double(outbuf_t *o, double d)
{
    char tmp[64];
    format_double(tmp, sizeof(tmp), d);
    out_str(o, tmp);
}

/* HELP text escaping per the text format: backslash and newline. */
static void out_help(outbuf_t *o, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            out_mem(o, "\\\\", 2);
        else if (*s == '\n')
            out_mem(o, "\\n", 2);
        else
            out_mem(o, s, 1);
    }
}

/* name{labels[,extra]} where labels and extra may each be empty. */
static void out_series_name(outbuf_t *o, const char *name, const char *suffix,
                            const char *labels, const char *extra)
{
    out_str(o, name);
    out_str(o, suffix);
    bool has_l = labels[0] != '\0', has_e = extra != NULL && extra[0] != '\0';
    if (!has_l && !has_e) return;
    out_mem(o, "{", 1);
    if (has_l) out_str(o, labels);
    if (has_l && has_e) out_mem(o, ",", 1);
    if (has_e) out_str(o, extra);
    out_mem(o, "}", 1);
}

static const char *kind_name(pt_metric_kind_t k)
{
    switch (k) {
    case PT_METRIC_COUNTER: return "counter";
    case PT_METRIC_GAUGE: return "gauge";
    case PT_METRIC_HISTOGRAM: return "histogram";
    }
    return "untyped";
}

static void render_histogram(outbuf_t *o, const series_t *s)
{
    uint64_t cumulative = 0;
    char le[80], num[64];
    for (int i = 0; i < s->nbuckets; i++) {
        cumulative += sum_slot(s->slot + i);
        format_double(num, sizeof(num), s->buckets[i]);
        snprintf(le, sizeof(le), "le=\"%s\"", num);
        out_series_name(o, s->name, "_bucket", s->labels, le);
        out_fmt(o, " %" PRIu64 "\n", cumulative);
    }
    uint64_t count = sum_slot(s->slot + s->nbuckets + 1);
    /* Observations over the last bound exist only in count; a racing
     * scrape could see count lag the buckets, keep +Inf monotonic. */
    if (count < cumulative) count = cumulative;
    out_series_name(o, s->name, "_bucket", s->labels, "le=\"+Inf\"");
    out_fmt(o, " %" PRIu64 "\n", count);
    out_series_name(o, s->name, "_sum", s->labels, NULL);
    out_mem(o, " ", 1);
    out_double(o, sum_double_slot(s->slot + s->nbuckets));
    out_mem(o, "\n", 1);
    out_series_name(o, s->name, "_count", s->labels, NULL);
    out_fmt(o, " %" PRIu64 "\n", count);
}

void pt_metrics_family_head(pt_sbuf_t *o, const char *name, const char *type, const char *help)
{
    out_str(o, "# HELP ");
    out_str(o, name);
    out_mem(o, " ", 1);
    out_help(o, help);
    out_str(o, "\n# TYPE ");
    out_str(o, name);
    out_mem(o, " ", 1);
    out_str(o, type);
    out_mem(o, "\n", 1);
}

void pt_metrics_label_value(pt_sbuf_t *o, const char *v)
{
    for (; *v; v++) {
        if (*v == '\n') {
            out_mem(o, "\\n", 2);
            continue;
        }
        if (*v == '\\' || *v == '"') out_mem(o, "\\", 1);
        out_mem(o, v, 1);
    }
}

static void render_series(outbuf_t *o, const series_t *s)
{
    if (s->family_start) pt_metrics_family_head(o, s->name, kind_name(s->kind), s->help);
    if (s->kind == PT_METRIC_HISTOGRAM) {
        render_histogram(o, s);
        return;
    }
    out_series_name(o, s->name, "", s->labels, NULL);
    if (s->is_fn) {
        out_mem(o, " ", 1);
        out_double(o, s->fn(s->arg));
        out_mem(o, "\n", 1);
    } else if (s->kind == PT_METRIC_COUNTER) {
        out_fmt(o, " %" PRIu64 "\n", sum_slot(s->slot));
    } else {
        out_fmt(o, " %" PRId64 "\n", (int64_t)sum_slot(s->slot));
    }
}

/*
 * Renders every series (Prometheus text format 0.0.4) into a malloc'd,
 * NUL-terminated buffer. Caller frees *out. Control thread (gauge_fn
 * callbacks run here). Returns 0 or -ENOMEM.
 */
int pt_metrics_render(char **out, size_t *len)
{
    outbuf_t o = {0};
    pt_sbuf_mem(&o, "", 0); /* an empty registry still renders "" */
    int n = __atomic_load_n(&nseries, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++) render_series(&o, &series[i]);
    pthread_mutex_lock(&reg_lock);
    for (int i = 0; i < ncollectors; i++) collectors[i].fn(&o, collectors[i].arg);
    pthread_mutex_unlock(&reg_lock);
    if (o.oom) {
        free(o.p);
        return -ENOMEM;
    }
    *out = o.p;
    *len = o.len;
    return 0;
}
