/*
 * Static file responses: map a request path to a file under a root, then
 * evaluate validators (RFC 9110 8.8), preconditions (13) and ranges (14).
 *
 * The function never sends anything: it returns a status, header lines and
 * an open fd + byte range, and the caller writes the response (sendfile).
 * Every path is decided by the status, so the caller does not need to know
 * why a request was refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/http.h"

#define OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)

/* The request path after decoding and normalization. */
typedef struct target {
    char *path;        /* decoded, normalized, NUL-terminated, starts with '/' */
    size_t path_len;
    const char *query; /* raw bytes after '?', NULL if none */
    size_t query_len;
} target_t;

/* The file chosen to answer, and its validators. */
typedef struct file {
    int fd;
    struct stat st;
    const char *name; /* for the MIME type: the request path or the index name */
    size_t name_len;
    char etag[48];    /* "mtime-size" in hex, with the quotes; empty when disabled */
    size_t etag_len;
    char last_modified[30];
} file_t;

/* The part of the file to send. */
typedef struct span {
    int status; /* 200, 206, 304, 412, 416 */
    off_t first, last;
} span_t;

/* ------------------------------------------------------------------ */
/* Results                                                             */
/* ------------------------------------------------------------------ */

static int set_headers(pt_static_result_t *res, char *h)
{
    if (!h) return -ENOMEM;
    res->headers = h;
    res->headers_len = strlen(h);
    return 0;
}

/* A response without a file body; headers is a complete header block or "". */
static int reply(pt_pool_t *pool, pt_static_result_t *res, int status, const char *headers)
{
    res->status = status;
    res->fd = -1;
    res->offset = 0;
    res->length = 0;
    return set_headers(res, pt_pool_printf(pool, "%s", headers));
}

static void close_fd(int *fd)
{
    if (*fd >= 0) (void)close(*fd);
    *fd = -1;
}

/* ------------------------------------------------------------------ */
/* Path: decode, normalize                                             */
/* ------------------------------------------------------------------ */

/*
 * Resolves "", "." and ".." segments of src (which starts with '/') into
 * dst (src_len + 2 bytes). ".." above the root is -400. A path that names a
 * directory ("/a/", "/a/.", "/a/b/..") keeps a trailing slash so the
 * directory rules still see it.
 */
static int normalize(const char *src, size_t src_len, char *dst, size_t *dst_len)
{
    size_t o = 1;
    bool dir = false;
    dst[0] = '/';
    for (size_t i = 0; i < src_len;) {
        while (i < src_len && src[i] == '/') i++;
        size_t s = i;
        while (i < src_len && src[i] != '/') i++;
        size_t n = i - s;
        dir = i < src_len || n == 0; /* followed by '/', or the path ended in '/' */
        if (n == 0) continue;
        if (n == 1 && src[s] == '.') {
            dir = true;
            continue;
        }
        if (n == 2 && src[s] == '.' && src[s + 1] == '.') {
            if (o == 1) return -400;
            while (o > 1 && dst[o - 1] != '/') o--;
            if (o > 1) o--; /* drop the '/' too, unless it is the root */
            dir = true;
            continue;
        }
        if (o > 1) dst[o++] = '/';
        memcpy(dst + o, src + s, n);
        o += n;
    }
    if (dir && o > 1) dst[o++] = '/';
    dst[o] = '\0';
    *dst_len = o;
    return 0;
}

/* Request-target bytes never include CTLs or spaces; refusing them here
 * also keeps the raw query safe to copy into a Location header. */
static bool raw_bytes_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f) return false;
    }
    return true;
}

static int resolve_target(pt_pool_t *pool, const char *path, size_t path_len, target_t *t)
{
    const char *q = memchr(path, '?', path_len);
    size_t plen = q ? (size_t)(q - path) : path_len;
    t->query = q ? q + 1 : NULL;
    t->query_len = q ? path_len - plen - 1 : 0;

    if (plen == 0 || path[0] != '/' || !raw_bytes_ok(path, path_len)) return -400;

    char *decoded = pt_pool_alloc(pool, plen + 1);
    t->path = pt_pool_alloc(pool, plen + 2);
    if (!decoded || !t->path) return -ENOMEM;
    size_t dlen;
    /* A bad escape or a NUL (which would cut the file name short): 400. */
    if (pt_http_pct_decode(path, plen, decoded, &dlen) < 0) return -400;
    return normalize(decoded, dlen, t->path, &t->path_len);
}

/* ------------------------------------------------------------------ */
/* Files                                                               */
/* ------------------------------------------------------------------ */

/* nginx's mapping; ENXIO is a socket or a device without a driver. */
static int open_errno_status(int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
        return 404;
    case EACCES:
    case EPERM:
    case ENXIO:
        return 403;
    default:
        return 500;
    }
}

/* Opens the first index file of the directory dfd that is a regular file.
 * Returns 0 (f filled), 403 when there is none, or another status. */
static int open_index(const pt_static_conf_t *conf, int dfd, file_t *f)
{
    for (size_t i = 0; i < conf->nindex; i++) {
        const char *name = conf->index[i];
        int fd = openat(dfd, name, OPEN_FLAGS);
        if (fd < 0) {
            if (errno == ENOENT || errno == ENOTDIR) continue;
            return open_errno_status(errno);
        }
        if (fstat(fd, &f->st) < 0) {
            (void)close(fd);
            return 500;
        }
        if (!S_ISREG(f->st.st_mode)) {
            (void)close(fd);
            continue;
        }
        f->fd = fd;
        f->name = name;
        f->name_len = strlen(name);
        return 0;
    }
    return 403;
}

/*
 * Opens root + t->path. Returns 0 with f->fd open and f->st filled, or a
 * status (301, 403, 404, 500) with f->fd = -1, or -ENOMEM.
 */
static int open_target(pt_pool_t *pool, const pt_static_conf_t *conf, const target_t *t,
                       file_t *f)
{
    const char *root = conf->root ? conf->root : "";
    size_t rlen = strlen(root);
    while (rlen > 0 && root[rlen - 1] == '/') rlen--;
    char *full = pt_pool_printf(pool, "%.*s%s", (int)rlen, root, t->path);
    if (!full) return -ENOMEM;

    int fd = open(full, OPEN_FLAGS);
    if (fd < 0) return open_errno_status(errno);
    if (fstat(fd, &f->st) < 0) {
        (void)close(fd);
        return 500;
    }
    f->name = t->path;
    f->name_len = t->path_len;
    if (S_ISREG(f->st.st_mode)) {
        f->fd = fd;
        return 0;
    }
    int status = 403; /* FIFOs, devices, sockets: never served */
    if (S_ISDIR(f->st.st_mode))
        status = t->path[t->path_len - 1] == '/' ? open_index(conf, fd, f) : 301;
    (void)close(fd);
    return status;
}

/* Location for a directory asked without its slash: the normalized path
 * (re-encoded, so it can never become "//host") + "/" + the raw query. */
static char *dir_location(pt_pool_t *pool, const target_t *t)
{
    static const char safe[] = "-._~!$&'()*+,;=:@/";
    static const char hex[] = "0123456789ABCDEF";
    char *enc = pt_pool_alloc(pool, t->path_len * 3 + 1);
    if (!enc) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < t->path_len; i++) {
        unsigned char c = (unsigned char)t->path[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (alnum || (c != '\0' && strchr(safe, c))) {
            enc[o++] = (char)c;
        } else {
            enc[o++] = '%';
            enc[o++] = hex[c >> 4];
            enc[o++] = hex[c & 15];
        }
    }
    enc[o] = '\0';
    if (t->query_len > 0)
        return pt_pool_printf(pool, "Location: %s/?%.*s\r\n", enc, (int)t->query_len, t->query);
    return pt_pool_printf(pool, "Location: %s/\r\n", enc);
}

/* ------------------------------------------------------------------ */
/* Validators and preconditions (RFC 9110 8.8, 13)                     */
/* ------------------------------------------------------------------ */

static void set_validators(const pt_static_conf_t *conf, file_t *f)
{
    pt_http_date_format(f->st.st_mtime, f->last_modified);
    f->etag_len = 0;
    f->etag[0] = '\0';
    if (conf->etag) {
        int n = snprintf(f->etag, sizeof(f->etag), "\"%" PRIx64 "-%" PRIx64 "\"",
                         (uint64_t)f->st.st_mtime, (uint64_t)f->st.st_size);
        f->etag_len = (size_t)n;
    }
}

static bool is_ows(char c) { return c == ' ' || c == '\t'; }

/*
 * True if the entity-tag list v[0..len) names our ETag. Weak comparison
 * ignores W/; strong comparison needs both tags strong (ours always is).
 * A malformed element ends the list (no match from it onwards).
 */
static bool etag_list_match(const char *v, size_t len, const file_t *f, bool weak)
{
    size_t i = 0;
    for (;;) {
        while (i < len && (is_ows(v[i]) || v[i] == ',')) i++;
        if (i == len) return false;
        bool tag_weak = false;
        if (len - i >= 2 && v[i] == 'W' && v[i + 1] == '/') {
            tag_weak = true;
            i += 2;
        }
        if (i == len || v[i] != '"') return false;
        const char *end = memchr(v + i + 1, '"', len - i - 1);
        if (!end) return false;
        size_t tag_len = (size_t)(end - (v + i)) + 1;
        if (f->etag_len > 0 && tag_len == f->etag_len && memcmp(v + i, f->etag, tag_len) == 0 &&
            (weak || !tag_weak))
            return true;
        i += tag_len;
        while (i < len && is_ows(v[i])) i++;
        if (i < len && v[i] != ',') return false;
    }
}

/*
 * Evaluates every If-Match / If-None-Match field: *present tells whether
 * any was sent, the result whether any matched ("*" matches: the file
 * exists).
 */
static bool etag_fields_match(const pt_http_req_t *req, const char *name, const file_t *f,
                              bool weak, bool *present)
{
    size_t nlen = strlen(name);
    bool match = false;
    *present = false;
    for (size_t i = 0; i < req->nheaders; i++) {
        const pt_http_hdr_t *h = &req->headers[i];
        if (h->name_len != nlen || strncasecmp(h->name, name, nlen) != 0) continue;
        *present = true;
        bool star = h->value_len == 1 && h->value[0] == '*';
        if (star || etag_list_match(h->value, h->value_len, f, weak)) match = true;
    }
    return match;
}

/* Parses the date header name; false if absent or not a valid HTTP-date. */
static bool header_date(const pt_http_req_t *req, const char *name, time_t *out)
{
    const pt_http_hdr_t *h = pt_http_find(req->headers, req->nheaders, name, strlen(name));
    return h && pt_http_date_parse(h->value, h->value_len, out) == 0;
}

/* RFC 9110 13.2.2 steps 1-4. Returns 0 (go on), 304 or 412. */
static int preconditions(const pt_http_req_t *req, const file_t *f)
{
    bool present;
    time_t date;
    time_t mtime = f->st.st_mtime;

    bool match = etag_fields_match(req, "If-Match", f, false, &present);
    if (present) {
        if (!match) return 412;
    } else if (header_date(req, "If-Unmodified-Since", &date) && mtime > date) {
        return 412;
    }

    /* Only GET and HEAD get here, so a false If-None-Match is always 304. */
    match = etag_fields_match(req, "If-None-Match", f, true, &present);
    if (present) {
        if (match) return 304;
    } else if (header_date(req, "If-Modified-Since", &date) && mtime <= date) {
        return 304;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Ranges (RFC 9110 14)                                                */
/* ------------------------------------------------------------------ */

/* 1*DIGIT, saturating at INT64_MAX (a huge first-pos is just unsatisfiable). */
static bool parse_pos(const char *v, size_t len, size_t *i, uint64_t *out)
{
    size_t s = *i;
    uint64_t n = 0;
    while (*i < len && v[*i] >= '0' && v[*i] <= '9') {
        unsigned d = (unsigned)(v[*i] - '0');
        n = n > ((uint64_t)INT64_MAX - d) / 10 ? (uint64_t)INT64_MAX : n * 10 + d;
        (*i)++;
    }
    *out = n;
    return *i > s;
}

typedef enum { RANGE_IGNORE, RANGE_ONE, RANGE_MANY, RANGE_UNSAT } range_kind_t;

/*
 * Parses one range-spec at v[*i] and, if satisfiable for size, sets
 * *first and *last (last clamped). Returns -1 if invalid, 0 unsatisfiable,
 * 1 satisfiable.
 */
static int parse_spec(const char *v, size_t len, size_t *i, uint64_t size, uint64_t *first,
                      uint64_t *last)
{
    uint64_t a, b;
    if (v[*i] == '-') { /* suffix-range: the last b bytes */
        (*i)++;
        if (!parse_pos(v, len, i, &b)) return -1;
        if (b == 0 || size == 0) return 0;
        *first = size - pt_min(b, size);
        *last = size - 1;
        return 1;
    }
    if (!parse_pos(v, len, i, &a) || *i == len || v[*i] != '-') return -1;
    (*i)++;
    bool has_last = parse_pos(v, len, i, &b);
    if (has_last && b < a) return -1;
    if (a >= size) return 0;
    *first = a;
    *last = has_last ? pt_min(b, size - 1) : size - 1;
    return 1;
}

/*
 * Parses a Range value against a file of size bytes. A value that is not
 * a valid "bytes=" ranges-specifier is ignored (200). One satisfiable
 * range: RANGE_ONE with *first and *last. More than one: RANGE_MANY (we do not
 * do multipart/byteranges; the whole file is cheaper and always correct).
 * None satisfiable: RANGE_UNSAT (416).
 */
static range_kind_t parse_range(const char *v, size_t len, uint64_t size, uint64_t *first,
                                uint64_t *last)
{
    if (len < 6 || strncasecmp(v, "bytes=", 6) != 0) return RANGE_IGNORE;
    size_t i = 6, nspecs = 0, nsat = 0;
    for (;;) {
        while (i < len && (is_ows(v[i]) || v[i] == ',')) i++;
        if (i == len) break;
        uint64_t a = 0, b = 0;
        int rc = parse_spec(v, len, &i, size, &a, &b);
        if (rc < 0) return RANGE_IGNORE;
        nspecs++;
        if (rc > 0 && nsat++ == 0) {
            *first = a;
            *last = b;
        }
        while (i < len && is_ows(v[i])) i++;
        if (i < len && v[i] != ',') return RANGE_IGNORE;
    }
    if (nspecs == 0) return RANGE_IGNORE;
    if (nsat == 0) return RANGE_UNSAT;
    return nsat == 1 ? RANGE_ONE : RANGE_MANY;
}

/*
 * If-Range (RFC 9110 13.1.5): the Range applies only if the validator
 * still names this file: a strong ETag match, or a date exactly equal to
 * Last-Modified. No If-Range: the Range applies.
 */
static bool if_range_ok(const pt_http_req_t *req, const file_t *f)
{
    const pt_http_hdr_t *h = pt_http_find(req->headers, req->nheaders, "If-Range", 8);
    if (!h) return true;
    const char *v = h->value;
    size_t len = h->value_len;
    if (len > 0 && (v[0] == '"' || (len >= 2 && v[0] == 'W' && v[1] == '/')))
        return f->etag_len > 0 && len == f->etag_len && memcmp(v, f->etag, len) == 0;
    time_t date;
    return pt_http_date_parse(v, len, &date) == 0 && date == f->st.st_mtime;
}

/* Decides 200 / 206 / 416 for a GET that passed its preconditions. */
static span_t choose_span(const pt_http_req_t *req, const file_t *f)
{
    uint64_t size = (uint64_t)f->st.st_size;
    span_t s = {200, 0, f->st.st_size - 1};
    if (req->method_id != PT_HTTP_GET) return s;
    const pt_http_hdr_t *h = pt_http_find(req->headers, req->nheaders, "Range", 5);
    if (!h || !if_range_ok(req, f)) return s;
    uint64_t a = 0, b = 0;
    switch (parse_range(h->value, h->value_len, size, &a, &b)) {
    case RANGE_ONE:
        s.status = 206;
        s.first = (off_t)a;
        s.last = (off_t)b;
        break;
    case RANGE_UNSAT:
        s.status = 416;
        break;
    default:
        break;
    }
    return s;
}

/* ------------------------------------------------------------------ */
/* Responses                                                           */
/* ------------------------------------------------------------------ */

static char *etag_line(pt_pool_t *pool, const file_t *f)
{
    if (f->etag_len == 0) return pt_pool_printf(pool, "%s", "");
    return pt_pool_printf(pool, "ETag: %s\r\n", f->etag);
}

/* 200 or 206 with the representation headers. */
static int reply_body(pt_pool_t *pool, const pt_static_conf_t *conf, const pt_http_req_t *req,
                      file_t *f, const span_t *s, pt_static_result_t *res)
{
    off_t size = f->st.st_size;
    off_t length = s->status == 206 ? s->last - s->first + 1 : size;
    char *range = s->status == 206
                      ? pt_pool_printf(pool, "Content-Range: bytes %jd-%jd/%jd\r\n",
                                       (intmax_t)s->first, (intmax_t)s->last, (intmax_t)size)
                      : pt_pool_printf(pool, "%s", "");
    char *etag = etag_line(pool, f);
    if (!range || !etag) return -ENOMEM;
    const char *type = pt_http_mime_type(conf, f->name, f->name_len);
    char *h = pt_pool_printf(pool,
                             "Content-Type: %s\r\n"
                             "Content-Length: %jd\r\n"
                             "%s"
                             "Last-Modified: %s\r\n"
                             "%s"
                             "Accept-Ranges: bytes\r\n",
                             type, (intmax_t)length, range, f->last_modified, etag);
    if (set_headers(res, h) < 0) return -ENOMEM;

    res->status = s->status;
    res->offset = s->status == 206 ? s->first : 0;
    res->length = length;
    /* HEAD sends no body; an empty file has none to send either. */
    if (req->method_id == PT_HTTP_HEAD || length == 0) {
        close_fd(&f->fd);
        res->length = 0;
    }
    res->fd = f->fd;
    f->fd = -1;
    return 0;
}

/* Everything after the file is open; takes ownership of f->fd. */
static int reply_file(pt_pool_t *pool, const pt_static_conf_t *conf, const pt_http_req_t *req,
                      file_t *f, pt_static_result_t *res)
{
    set_validators(conf, f);
    int status = preconditions(req, f);
    span_t s = {status, 0, 0};
    if (status == 0) s = choose_span(req, f);

    int rc;
    char *h;
    switch (s.status) {
    case 304:
        h = etag_line(pool, f);
        h = h ? pt_pool_printf(pool, "%sLast-Modified: %s\r\n", h, f->last_modified) : NULL;
        rc = h ? reply(pool, res, 304, h) : -ENOMEM;
        break;
    case 412:
        rc = reply(pool, res, 412, "");
        break;
    case 416:
        h = pt_pool_printf(pool, "Content-Range: bytes */%jd\r\n", (intmax_t)f->st.st_size);
        rc = h ? reply(pool, res, 416, h) : -ENOMEM;
        break;
    default:
        rc = reply_body(pool, conf, req, f, &s, res);
        break;
    }
    close_fd(&f->fd);
    return rc;
}

/* Contract in http.h. Order: method (405), path (400), file (301/403/404/
 * 500), preconditions (412/304), Range (206/416). Any thread; blocking file
 * system calls (open, fstat) are done inline. */
int pt_http_static_serve(pt_pool_t *pool, const pt_static_conf_t *conf, const pt_http_req_t *req,
                         const char *path, size_t path_len, pt_static_result_t *res)
{
    *res = (pt_static_result_t){.status = 500, .fd = -1};
    if (req->method_id != PT_HTTP_GET && req->method_id != PT_HTTP_HEAD)
        return reply(pool, res, 405, "Allow: GET, HEAD\r\n");

    target_t t;
    int rc = resolve_target(pool, path, path_len, &t);
    if (rc == -ENOMEM) return rc;
    if (rc < 0) return reply(pool, res, -rc, "");

    file_t f = {.fd = -1};
    rc = open_target(pool, conf, &t, &f);
    if (rc < 0) return rc;
    if (rc == 301) {
        char *loc = dir_location(pool, &t);
        return loc ? reply(pool, res, 301, loc) : -ENOMEM;
    }
    if (rc > 0) return reply(pool, res, rc, "");
    rc = reply_file(pool, conf, req, &f, res);
    if (rc < 0) close_fd(&res->fd);
    return rc;
}
