/*
 * The upstream_state_file: admin overrides (drain, weight) that survive a
 * reload and a restart, as HAProxy's server-state file does.
 *
 *   {"version":1,"upstreams":{"NAME":{"ADDR":{"weight":N|null,"admin":"drain|enabled"}}}}
 *
 * Saving writes a temporary file beside the target, fsyncs it and renames
 * it over the target, so a crash leaves the old file or the new one, never
 * half of one. Loading validates the whole file before it changes anything:
 * a malformed file is logged and ignored. The file replaces the overrides
 * of every group (a group it does not name has none); state.c applies
 * them when it builds the member sets and drops those of servers that are
 * no longer configured. Control thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "upstream/upstream_int.h"

#define STATE_VERSION 1
#define STATE_FILE_MAX (16 * 1024 * 1024) /* far above any real file; a guard */
#define WEIGHT_MAX 1000

/* ------------------------------------------------------------------ */
/* Saving                                                              */
/* ------------------------------------------------------------------ */

/* {"ADDR":{"weight":N|null,"admin":"..."},...} for one group; NULL on OOM. */
static json_t *group_json(const ups_gstate_t *gs)
{
    json_t *obj = json_object();
    for (size_t i = 0; obj != NULL && i < gs->noverrides; i++) {
        const ups_override_t *o = &gs->overrides[i];
        json_t *srv = json_pack("{s:o,s:s}", "weight",
                                o->weight > 0 ? json_integer(o->weight) : json_null(), "admin",
                                o->admin == UPS_ADMIN_DRAIN ? "drain" : "enabled");
        if (srv == NULL || json_object_set_new(obj, o->name, srv) < 0) {
            json_decref(obj);
            obj = NULL;
        }
    }
    return obj;
}

/* The whole file as JSON text (malloc'd), NULL on OOM. */
static char *state_text(const ups_rt_t *rt)
{
    json_t *groups = json_object();
    json_t *root = json_pack("{s:i,s:o}", "version", STATE_VERSION, "upstreams", groups);
    for (size_t i = 0; root != NULL && i < rt->ngroups; i++) {
        const ups_gstate_t *gs = rt->groups[i];
        if (gs->noverrides == 0) continue;
        json_t *g = group_json(gs);
        if (g == NULL || json_object_set_new(groups, gs->name, g) < 0) {
            json_decref(root);
            root = NULL;
        }
    }
    char *text = root != NULL ? json_dumps(root, JSON_INDENT(2)) : NULL;
    json_decref(root);
    return text;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Makes the rename durable: fsync the directory that holds path. */
static int sync_dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash == NULL ? strdup(".")
                : slash == path ? strdup("/")
                                : strndup(path, (size_t)(slash - path));
    if (dir == NULL) return -ENOMEM;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0) return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

/* Writes text to tmp, fsyncs and closes it. Returns 0 or a negative errno. */
static int write_tmp(const char *tmp, const char *text)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -errno;
    int rc = write_all(fd, text, strlen(text));
    if (rc == 0) rc = write_all(fd, "\n", 1);
    if (rc == 0 && fsync(fd) < 0) rc = -errno;
    if (close(fd) < 0 && rc == 0) rc = -errno;
    return rc;
}

/*
 * Writes every group's overrides to path: a temporary file in the same
 * directory (named after our pid, so two processes sharing a file do not
 * write into one temporary), fsync, rename. Returns 0 or a negative errno,
 * logged at error level; the previous file stays on failure.
 */
int ups_state_save(ups_rt_t *rt, const char *path)
{
    char *text = state_text(rt);
    char *tmp = NULL;
    int rc = 0;
    if (text == NULL || asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0) {
        tmp = NULL;
        rc = -ENOMEM;
        goto out;
    }
    rc = write_tmp(tmp, text);
    if (rc == 0 && rename(tmp, path) < 0) rc = -errno;
    if (rc < 0) {
        unlink(tmp);
        goto out;
    }
    rc = sync_dir_of(path);
    if (rc < 0) { /* the new file is in place; only its durability is in doubt */
        pt_log_warn("upstream: cannot sync the directory of the state file %s: %s", path,
                    strerror(-rc));
        rc = 0;
    }
out:
    if (rc < 0)
        pt_log_error("upstream: cannot write the state file %s: %s", path, strerror(-rc));
    free(tmp);
    free(text);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Loading                                                             */
/* ------------------------------------------------------------------ */

/* One group's overrides as read, before they are applied. */
typedef struct loaded {
    const char *name; /* in the parsed JSON */
    ups_override_t *ov; /* malloc'd */
    size_t n;
    ups_gstate_t *gs;
} loaded_t;

static void loaded_free(loaded_t *l, size_t n)
{
    for (size_t i = 0; i < n; i++) free(l[i].ov);
    free(l);
}

/* Reads the whole file; -ENOENT when it does not exist. */
static int read_file(const char *path, char **out, size_t *out_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct stat st;
    int rc = fstat(fd, &st) < 0 ? -errno : 0;
    if (rc == 0 && !S_ISREG(st.st_mode)) rc = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
    if (rc == 0 && st.st_size > STATE_FILE_MAX) rc = -EFBIG;
    size_t size = rc == 0 ? (size_t)st.st_size : 0, len = 0;
    char *buf = rc == 0 ? malloc(size + 1) : NULL;
    if (rc == 0 && buf == NULL) rc = -ENOMEM;
    while (rc == 0 && len < size) {
        ssize_t n = read(fd, buf + len, size - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) rc = -errno;
        if (n <= 0) break; /* shrank under us: parse what we have */
        len += (size_t)n;
    }
    close(fd);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return 0;
}

/*
 * One server entry: {"weight":N|null,"admin":"drain|enabled"}, both
 * optional (null / enabled). Returns 0 or -EINVAL with the reason in why.
 */
static int parse_override(const char *name, json_t *v, ups_override_t *o, char *why,
                          size_t why_size)
{
    if (name[0] == '\0' || strlen(name) >= sizeof(o->name)) {
        snprintf(why, why_size, "server address \"%.80s\" is empty or too long", name);
        return -EINVAL;
    }
    json_t *w = json_is_object(v) ? json_object_get(v, "weight") : NULL;
    json_t *a = json_is_object(v) ? json_object_get(v, "admin") : NULL;
    const char *admin = a != NULL ? json_string_value(a) : "enabled";
    if (!json_is_object(v) ||
        (w != NULL && !json_is_null(w) &&
         (!json_is_integer(w) || json_integer_value(w) < 1 ||
          json_integer_value(w) > WEIGHT_MAX)) ||
        admin == NULL || (strcmp(admin, "drain") != 0 && strcmp(admin, "enabled") != 0)) {
        snprintf(why, why_size,
                 "server \"%s\": expected {\"weight\":1..%d or null,\"admin\":\"drain\" or "
                 "\"enabled\"}",
                 name, WEIGHT_MAX);
        return -EINVAL;
    }
    snprintf(o->name, sizeof(o->name), "%s", name);
    o->weight = w != NULL && json_is_integer(w) ? (int)json_integer_value(w) : -1;
    o->admin = strcmp(admin, "drain") == 0 ? UPS_ADMIN_DRAIN : UPS_ADMIN_ENABLED;
    return 0;
}

/* A group's {"ADDR":{...},...} into l. Returns 0, -EINVAL (why), -ENOMEM. */
static int parse_group(const char *name, json_t *servers, loaded_t *l, char *why,
                       size_t why_size)
{
    if (name[0] == '\0' || !json_is_object(servers)) {
        snprintf(why, why_size, "upstream \"%.80s\": expected an object of servers", name);
        return -EINVAL;
    }
    l->name = name;
    l->ov = malloc((json_object_size(servers) + 1) * sizeof(*l->ov));
    if (l->ov == NULL) return -ENOMEM;
    const char *addr;
    json_t *v;
    json_object_foreach(servers, addr, v) {
        ups_override_t *o = &l->ov[l->n];
        int rc = parse_override(addr, v, o, why, why_size);
        if (rc < 0) return rc;
        /* Enabled with the configured weight is no override at all. */
        if (o->weight > 0 || o->admin != UPS_ADMIN_ENABLED) l->n++;
    }
    return 0;
}

/* The whole document into *out (one entry per group). Returns 0, -EINVAL
 * (why), -ENOMEM; frees what it made on failure. */
static int parse_state(json_t *root, loaded_t **out, size_t *nout, char *why, size_t why_size)
{
    json_t *ver = json_is_object(root) ? json_object_get(root, "version") : NULL;
    json_t *ups = json_is_object(root) ? json_object_get(root, "upstreams") : NULL;
    if (!json_is_integer(ver) || json_integer_value(ver) != STATE_VERSION ||
        !json_is_object(ups)) {
        snprintf(why, why_size, "expected {\"version\":%d,\"upstreams\":{...}}", STATE_VERSION);
        return -EINVAL;
    }
    size_t n = 0;
    loaded_t *l = calloc(json_object_size(ups) + 1, sizeof(*l));
    if (l == NULL) return -ENOMEM;
    const char *name;
    json_t *servers;
    json_object_foreach(ups, name, servers) {
        int rc = parse_group(name, servers, &l[n++], why, why_size);
        if (rc < 0) {
            loaded_free(l, n);
            return rc;
        }
    }
    *out = l;
    *nout = n;
    return 0;
}

/* Gives each group its loaded overrides (none when the file does not name
 * it). Nothing can fail here: every allocation was made before. */
static void apply_loaded(ups_rt_t *rt, loaded_t *l, size_t n)
{
    for (size_t i = 0; i < rt->ngroups; i++) {
        ups_gstate_t *gs = rt->groups[i];
        free(gs->overrides);
        gs->overrides = NULL;
        gs->noverrides = 0;
    }
    for (size_t i = 0; i < n; i++) {
        l[i].gs->overrides = l[i].ov;
        l[i].gs->noverrides = l[i].n;
        l[i].ov = NULL;
    }
}

/* Parses text and, when it is valid, applies it. */
static int load_text(ups_rt_t *rt, const char *path, const char *text, size_t len)
{
    char why[320];
    loaded_t *l = NULL;
    size_t n = 0;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = root == NULL ? -EINVAL : parse_state(root, &l, &n, why, sizeof(why));
    if (root == NULL)
        snprintf(why, sizeof(why), "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
    /* Groups first (this may allocate), so applying cannot fail half-way. */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        l[i].gs = ups_rt_group(rt, l[i].name);
        if (l[i].gs == NULL) rc = -ENOMEM;
    }
    if (rc == 0) {
        size_t total = 0;
        for (size_t i = 0; i < n; i++) total += l[i].n;
        apply_loaded(rt, l, n);
        pt_log_info("upstream: %zu admin override(s) loaded from %s", total, path);
    } else if (rc == -EINVAL) {
        pt_log_error("upstream: ignoring the malformed state file %s: %s", path, why);
    } else {
        pt_log_error("upstream: cannot load the state file %s: %s", path, strerror(-rc));
    }
    if (l != NULL) loaded_free(l, n);
    json_decref(root);
    return rc;
}

/*
 * Loads the overrides of every group from path, creating the group states
 * it names. A missing file is no error (0, nothing changes). A malformed
 * one is logged and ignored: -EINVAL, nothing changes. Other errors
 * (unreadable, -ENOMEM) are logged and returned, nothing changes either.
 */
int ups_state_load(ups_rt_t *rt, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    int rc = read_file(path, &text, &len);
    if (rc == -ENOENT) {
        pt_log_info("upstream: no state file %s yet", path);
        return 0;
    }
    if (rc < 0) {
        pt_log_error("upstream: cannot read the state file %s: %s", path, strerror(-rc));
        return rc;
    }
    rc = load_text(rt, path, text, len);
    free(text);
    return rc;
}
