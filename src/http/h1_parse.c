/*
 * HTTP/1.1 request and response heads (RFC 9112, RFC 9110), strict.
 *
 * How a call works, and why it is cheap when the head is incomplete:
 *   1. skip leading empty lines (a request may follow a CRLF sent after
 *      the previous body; RFC 9112 2.2);
 *   2. look at the first bytes (method / "HTTP/") so that obvious garbage,
 *      e.g. a TLS ClientHello on a plain port, fails at once instead of
 *      waiting for a blank line that never comes;
 *   3. find the blank line that ends the head with memchr, starting from
 *      last_len - 3 on a repeated call (picohttpparser's trick). In the
 *      usual case, a whole head in one read, the buffer itself ends in a
 *      blank line and no search is needed: the parse stops at the first
 *      blank line wherever it is;
 *   4. if the head is incomplete, check the limits (so an oversized head
 *      never returns PT_AGAIN forever) and return PT_AGAIN;
 *   5. otherwise check the limits, then parse the head once. The bytes
 *      parsed are known to end in a blank line, whose LF serves as a
 *      sentinel: the inner loops need no bounds checks.
 * The verdict depends only on the bytes, never on how they were split
 * across calls: limits are checked before syntax both when the head is
 * complete and when it is not, and step 2 only decides on bytes that lie
 * within the limits. The fuzz target checks this.
 */
#include <string.h>

#include "http/http.h"

/* Character classes (one table, one bit per class). */
enum {
    C_TCHAR = 0x01,  /* token (RFC 9110 5.6.2) */
    C_VALUE = 0x02,  /* field-value byte: VCHAR, obs-text, SP, HTAB */
    C_TARGET = 0x04, /* request-target byte: VCHAR, obs-text */
    C_HOST = 0x08,   /* reg-name: unreserved, sub-delims, '%' */
    C_DIGIT = 0x10,
    C_HEX = 0x20,
    C_IPLIT = 0x40, /* inside an IP-literal's brackets: unreserved, sub-delims, ':' */
};

static const uint8_t cls[256] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x02, 0x4f, 0x06, 0x07, 0x4f, 0x0f, 0x4f, 0x4f, 0x4e, 0x4e, 0x4f, 0x4f, 0x4e, 0x4f, 0x4f, 0x06,
    0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x46, 0x4e, 0x06, 0x4e, 0x06, 0x06,
    0x06, 0x6f, 0x6f, 0x6f, 0x6f, 0x6f, 0x6f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f,
    0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x06, 0x06, 0x06, 0x07, 0x4f,
    0x07, 0x6f, 0x6f, 0x6f, 0x6f, 0x6f, 0x6f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f,
    0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x06, 0x07, 0x06, 0x4f, 0x00,
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,
};

/* Content-Length and chunk sizes are capped at 2^62 (fits int64_t, and sums stay safe). */
#define MAX_BODY_LEN ((uint64_t)1 << 62)
/* How many bytes of the method step 2 looks at. */
#define EARLY_METHOD_BYTES 16

static inline bool has(unsigned char c, unsigned mask)
{
    return (cls[c] & mask) != 0;
}

static inline unsigned char lower(unsigned char c)
{
    return (unsigned char)(c - 'A') < 26u ? (unsigned char)(c | 0x20) : c;
}

/* a[0..n) equals the lower-case literal lit, ignoring ASCII case. */
static bool ci_eq(const char *a, const char *lit, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (lower((unsigned char)a[i]) != (unsigned char)lit[i]) return false;
    }
    return true;
}

/*
 * Word-at-a-time scanning (portable SWAR, no SSE). For each byte with
 * the high bit clear (obs-text, >= 0x80, is always allowed), adding
 * 0x80 - lo sets bit 7 iff the byte is >= lo, and adding 1 sets it iff
 * the byte is DEL; neither addition carries into the next byte.
 * Nonzero when one of the 8 bytes is below lo (lo <= 0x80) or is DEL.
 */
#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

static inline uint64_t ctl_or_below(uint64_t x, unsigned lo)
{
    uint64_t low7 = x & ~HIGHS;
    uint64_t ge_lo = low7 + ONES * (0x80 - lo);
    uint64_t is_del = low7 + ONES;
    return ~x & (~ge_lo | is_del) & HIGHS;
}

/*
 * Skips bytes of class mask. Unrolled; reading ahead is safe because the
 * head ends in LF, which is in no class used here.
 */
static inline const unsigned char *skip_run(const unsigned char *p, unsigned mask)
{
    for (;; p += 4) {
        if (!has(p[0], mask)) return p;
        if (!has(p[1], mask)) return p + 1;
        if (!has(p[2], mask)) return p + 2;
        if (!has(p[3], mask)) return p + 3;
    }
}

static inline uint64_t load64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* Skips bytes of class mask, 8 at a time while none is below lo or DEL; never reads past end. */
static inline const unsigned char *skip_class(const unsigned char *p, const unsigned char *end,
                                              unsigned lo, unsigned mask)
{
    while (end - p >= 16 && ctl_or_below(load64(p), lo) == 0) {
        if (ctl_or_below(load64(p + 8), lo) != 0) {
            p += 8;
            break;
        }
        p += 16;
    }
    if (end - p >= 8 && ctl_or_below(load64(p), lo) == 0) p += 8;
    return skip_run(p, mask);
}

#define CI_IS(s, n, lit) ((n) == sizeof(lit) - 1 && ci_eq((s), (lit), sizeof(lit) - 1))

/* What the header fields say about framing and the connection. */
typedef struct head_info {
    int64_t cl;          /* -1 when absent */
    bool cl_seen;        /* any Content-Length field, valid or not */
    bool cl_bad;         /* invalid or conflicting Content-Length */
    bool te_seen;
    bool te_bad;         /* a transfer-coding that is not token [;params] */
    bool te_last_chunked;
    unsigned te_count;   /* list elements over all TE fields */
    unsigned te_chunked; /* how many of them are "chunked" */
    unsigned hosts;
    bool host_bad;
    const char *host;
    size_t host_len;
    bool conn_close, conn_keepalive, conn_upgrade;
    bool upgrade;
    bool expect_100;
} head_info_t;

/* ---- lists ---- */

bool pt_http_next_token(const char *v, size_t len, size_t *pos, const char **tok, size_t *tok_len)
{
    size_t i = *pos;

    while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
    if (i >= len) {
        *pos = len;
        return false;
    }
    size_t start = i;
    while (i < len && v[i] != ',') i++;
    size_t end = i;
    /* v[start] is neither OWS nor a comma, so the element stays non-empty. */
    while (v[end - 1] == ' ' || v[end - 1] == '\t') end--;
    *tok = v + start;
    *tok_len = end - start;
    *pos = i;
    return true;
}

static bool ci_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen) return false;
    for (size_t i = 0; i < alen; i++) {
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i])) return false;
    }
    return true;
}

bool pt_http_list_has(const char *v, size_t len, const char *token, size_t token_len)
{
    size_t pos = 0;
    const char *t;
    size_t tl;

    while (pt_http_next_token(v, len, &pos, &t, &tl)) {
        if (ci_equal(t, tl, token, token_len)) return true;
    }
    return false;
}

const pt_http_hdr_t *pt_http_find(const pt_http_hdr_t *h, size_t n, const char *name,
                                  size_t name_len)
{
    for (size_t i = 0; i < n; i++) {
        if (ci_equal(h[i].name, h[i].name_len, name, name_len)) return &h[i];
    }
    return NULL;
}

pt_http_method_t pt_http_method_id(const char *m, size_t len)
{
    /* Methods are case-sensitive (RFC 9110 9.1). */
    switch (len) {
    case 3:
        if (memcmp(m, "GET", 3) == 0) return PT_HTTP_GET;
        if (memcmp(m, "PUT", 3) == 0) return PT_HTTP_PUT;
        break;
    case 4:
        if (memcmp(m, "POST", 4) == 0) return PT_HTTP_POST;
        if (memcmp(m, "HEAD", 4) == 0) return PT_HTTP_HEAD;
        break;
    case 5:
        if (memcmp(m, "PATCH", 5) == 0) return PT_HTTP_PATCH;
        if (memcmp(m, "TRACE", 5) == 0) return PT_HTTP_TRACE;
        break;
    case 6:
        if (memcmp(m, "DELETE", 6) == 0) return PT_HTTP_DELETE;
        break;
    case 7:
        if (memcmp(m, "OPTIONS", 7) == 0) return PT_HTTP_OPTIONS;
        if (memcmp(m, "CONNECT", 7) == 0) return PT_HTTP_CONNECT;
        break;
    default:
        break;
    }
    return PT_HTTP_OTHER;
}

/* ---- locating the head ---- */

/*
 * Skips empty lines at buf[0..]. Returns the offset of the first other
 * byte; *partial is set when the buffer ends inside a CRLF.
 */
static size_t skip_empty_lines(const char *buf, size_t len, bool *partial)
{
    size_t i = 0;

    *partial = false;
    while (i < len) {
        if (buf[i] == '\n') {
            i++;
        } else if (buf[i] == '\r') {
            if (i + 1 == len) {
                *partial = true;
                break;
            }
            if (buf[i + 1] != '\n') break; /* a bare CR: the line parser rejects it */
            i += 2;
        } else {
            break;
        }
    }
    return i;
}

/*
 * Offset just past the blank line that ends the head (LF followed by LF
 * or CRLF), searching LFs at or after from; 0 when not there yet.
 */
static size_t find_head_end(const char *buf, size_t from, size_t len)
{
    const char *p = buf + from;
    const char *end = buf + len;

    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        p++;
        if (p == end) return 0;
        if (*p == '\n') return (size_t)(p + 1 - buf);
        if (*p == '\r') {
            if (p + 1 == end) return 0;
            if (p[1] == '\n') return (size_t)(p + 2 - buf);
        }
    }
    return 0;
}

/*
 * The limits, checked before any syntax. avail is the head length when
 * complete, else the bytes so far (then the verdict must hold for any
 * continuation: an unterminated first line only gives lower bounds).
 * Returns 0, -414 (first line too long, or still in it past max_head) or
 * -431 (head too big).
 */
static int check_limits(const char *buf, size_t skip, size_t avail, bool complete,
                        const pt_http_limits_t *lim)
{
    size_t win = avail - skip;
    size_t line_len, line_end; /* line_end: offset just past its LF */

    if (lim->max_line < SIZE_MAX - 2 && win > lim->max_line + 2) win = lim->max_line + 2;
    const char *lf = memchr(buf + skip, '\n', win);
    if (lf != NULL) {
        size_t f = (size_t)(lf - buf);
        line_len = f - skip - (f > skip && buf[f - 1] == '\r');
        line_end = f + 1;
    } else if (skip + win < avail) {
        return -414; /* no LF within max_line + 2 bytes */
    } else {
        line_len = avail - skip - (avail > skip && buf[avail - 1] == '\r');
        line_end = avail + 1;
    }
    if (line_len > lim->max_line || line_end > lim->max_head) return -414;
    if (complete ? avail > lim->max_head : avail >= lim->max_head) return -431;
    return 0;
}

/*
 * Step 2 for requests: a byte in the first EARLY_METHOD_BYTES that can
 * neither be in a method nor end it is a 400, provided it lies within
 * the limits (so that the split of the input cannot change the verdict).
 * *scanned: where the scan stopped (no LF before it).
 */
static int early_request_check(const char *buf, size_t len, size_t skip,
                               const pt_http_limits_t *lim, size_t *scanned)
{
    size_t stop = pt_min(len, skip + EARLY_METHOD_BYTES);
    size_t j = skip;

    while (j < stop && has((unsigned char)buf[j], C_TCHAR)) j++;
    *scanned = j;
    if (j == stop) return 0;
    if (buf[j] == ' ' && j > skip) return 0;
    if (j - skip < lim->max_line && j < lim->max_head) return -400;
    return 0;
}

/* Step 2 for responses: the status line must start with "HTTP/". */
static int early_response_check(const char *buf, size_t len, size_t skip)
{
    size_t n = pt_min(len - skip, (size_t)5);
    return memcmp(buf + skip, "HTTP/", n) == 0 ? 0 : -400;
}

/* buf[0..len) ends in a blank line after the first byte of the start line. */
static bool ends_in_blank_line(const char *buf, size_t len, size_t skip)
{
    /* buf[skip] is not LF, so an LF found at or after it ends a line. */
    if (len - skip < 3 || buf[len - 1] != '\n') return false;
    return buf[len - 2] == '\n' || (buf[len - 2] == '\r' && buf[len - 3] == '\n');
}

/*
 * Steps 1 to 4. Returns PT_AGAIN, a request status (-400, -414, -431), or
 * a length bound > 0: buf[0..bound) ends in a blank line, the first of
 * which ends the head, and the limits hold for it. *skip: bytes of
 * leading empty lines.
 */
static int locate_head(const char *buf, size_t len, size_t last_len, bool request,
                       const pt_http_limits_t *lim, size_t *skip)
{
    bool partial;
    size_t from;
    int rc;

    *skip = skip_empty_lines(buf, len, &partial);
    if (partial || *skip == len) {
        from = len;
    } else if (request) {
        rc = early_request_check(buf, len, *skip, lim, &from);
        if (rc < 0) return rc;
    } else {
        rc = early_response_check(buf, len, *skip);
        if (rc < 0) return rc;
        from = *skip;
    }
    if (from < len && len <= lim->max_head && len - *skip <= lim->max_line &&
        len <= INT32_MAX && ends_in_blank_line(buf, len, *skip))
        return (int)len; /* limits hold for any head inside: no search */
    if (last_len <= len && last_len > 3 && last_len - 3 > from) from = last_len - 3;

    size_t head_len = find_head_end(buf, from, len);
    if (head_len == 0) {
        if (len - *skip > lim->max_line || len >= lim->max_head) {
            rc = check_limits(buf, *skip, len, false, lim);
            if (rc < 0) return rc;
        }
        return PT_AGAIN;
    }
    if (head_len - *skip > lim->max_line || head_len > lim->max_head) {
        rc = check_limits(buf, *skip, head_len, true, lim);
        if (rc < 0) return rc;
    }
    if (head_len > INT32_MAX) return -431; /* the return type is int */
    return (int)head_len;
}

/* ---- field semantics ---- */

/* 1*DIGIT, at most 2^62; -1 when invalid. */
static int64_t parse_content_length(const char *v, size_t n)
{
    uint64_t x = 0;

    if (n == 0) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned char)v[i] - (unsigned)'0';
        if (d > 9) return -1;
        if (x > (MAX_BODY_LEN - d) / 10) return -1;
        x = x * 10 + d;
    }
    return (int64_t)x;
}

/* transfer-coding = token *( OWS ";" OWS transfer-parameter ); params not checked further. */
static bool valid_coding(const char *t, size_t n)
{
    size_t i = 0;

    while (i < n && has((unsigned char)t[i], C_TCHAR)) i++;
    if (i == 0) return false;
    while (i < n && (t[i] == ' ' || t[i] == '\t')) i++;
    return i == n || t[i] == ';';
}

static void note_transfer_encoding(head_info_t *hi, const char *v, size_t n)
{
    size_t pos = 0;
    const char *t;
    size_t tl;

    hi->te_seen = true;
    /* A field with no coding at all is refused: recipients that honour
     * only the first TE field would disagree with us. */
    if (!pt_http_next_token(v, n, &pos, &t, &tl)) hi->te_bad = true;
    pos = 0;
    while (pt_http_next_token(v, n, &pos, &t, &tl)) {
        bool chunked = CI_IS(t, tl, "chunked");
        if (!chunked && !valid_coding(t, tl)) hi->te_bad = true;
        hi->te_count++;
        hi->te_chunked += chunked;
        hi->te_last_chunked = chunked;
    }
}

static void note_content_length(head_info_t *hi, const char *v, size_t n)
{
    int64_t cl = parse_content_length(v, n);

    hi->cl_seen = true;
    if (cl < 0 || (hi->cl >= 0 && hi->cl != cl)) hi->cl_bad = true;
    else hi->cl = cl;
}

static void note_connection(head_info_t *hi, const char *v, size_t n)
{
    size_t pos = 0;
    const char *t;
    size_t tl;

    while (pt_http_next_token(v, n, &pos, &t, &tl)) {
        if (CI_IS(t, tl, "close")) hi->conn_close = true;
        else if (CI_IS(t, tl, "keep-alive")) hi->conn_keepalive = true;
        else if (CI_IS(t, tl, "upgrade")) hi->conn_upgrade = true;
    }
}

/* host = uri-host [ ":" port ]; port is 1 to 5 digits, at most 65535. */
static bool valid_host(const char *h, size_t n, bool need_port)
{
    size_t i = 0;

    if (n > 0 && h[0] == '[') {
        i = 1;
        while (i < n && has((unsigned char)h[i], C_IPLIT)) i++;
        if (i == 1 || i == n || h[i] != ']') return false;
        i++;
    } else {
        while (i < n && has((unsigned char)h[i], C_HOST)) {
            if (h[i] == '%') {
                if (n - i < 3 || !has((unsigned char)h[i + 1], C_HEX) ||
                    !has((unsigned char)h[i + 2], C_HEX))
                    return false;
                i += 2;
            }
            i++;
        }
    }
    if (i == n) return !need_port;
    if (h[i] != ':' || n - i - 1 == 0 || n - i - 1 > 5) return false;
    unsigned port = 0;
    for (i++; i < n; i++) {
        if (!has((unsigned char)h[i], C_DIGIT)) return false;
        port = port * 10 + (unsigned)(h[i] - '0');
    }
    return port <= 65535;
}

/* Records what one field means for framing and the connection. */
static void note_field(head_info_t *hi, const pt_http_hdr_t *h, bool request)
{
    const char *n = h->name;

    /* Dispatch on length and first letter before comparing names. */
    switch (h->name_len) {
    case 4:
        if (request && CI_IS(n, 4, "host")) {
            if (hi->hosts++ == 0) {
                hi->host = h->value;
                hi->host_len = h->value_len;
            }
            if (!valid_host(h->value, h->value_len, false)) hi->host_bad = true;
        }
        break;
    case 6:
        if (request && CI_IS(n, 6, "expect") && CI_IS(h->value, h->value_len, "100-continue"))
            hi->expect_100 = true;
        break;
    case 7:
        if (CI_IS(n, 7, "upgrade") && h->value_len > 0) hi->upgrade = true;
        break;
    case 10:
        if (CI_IS(n, 10, "connection")) note_connection(hi, h->value, h->value_len);
        break;
    case 14:
        if (lower((unsigned char)n[0]) == 'c' && CI_IS(n, 14, "content-length"))
            note_content_length(hi, h->value, h->value_len);
        break;
    case 17:
        if (lower((unsigned char)n[0]) == 't' && CI_IS(n, 17, "transfer-encoding"))
            note_transfer_encoding(hi, h->value, h->value_len);
        break;
    default:
        break;
    }
}

/* ---- line parsing (the head ends in a blank line: see step 5) ---- */

/* p is at a line end (CR or LF); returns the start of the next line, or NULL on a bare CR. */
static inline const unsigned char *eat_eol(const unsigned char *p)
{
    if (*p == '\n') return p + 1;
    if (*p == '\r' && p[1] == '\n') return p + 2;
    return NULL;
}

/*
 * Parses header lines from p up to and including the first blank line,
 * which is at or before end; *head_end: just past it. Returns 0, -400 or
 * -431 (too many fields).
 */
static int parse_fields(const unsigned char *p, const unsigned char *end, pt_http_hdr_t *hdrs,
                        size_t max, size_t *nout, head_info_t *hi, bool request,
                        const unsigned char **head_end)
{
    size_t n = 0;

    while (*p != '\r' && *p != '\n') {
        if (n == max) return -431;
        const unsigned char *name = p;
        p = skip_run(p, C_TCHAR);
        /* Also rejects obs-fold (line starting with SP/HTAB) and "name :". */
        if (p == name || *p != ':') return -400;
        pt_http_hdr_t *h = &hdrs[n++];
        h->name = (const char *)name;
        h->name_len = (size_t)(p - name);
        p++;
        while (*p == ' ' || *p == '\t') p++;
        const unsigned char *v = p;
        p = skip_class(p, end, 0x20, C_VALUE); /* HTAB takes the byte loop */
        const unsigned char *ve = p;
        p = eat_eol(p); /* NUL, other CTLs and bare CR all fail here */
        if (p == NULL) return -400;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        h->value = (const char *)v;
        h->value_len = (size_t)(ve - v);
        note_field(hi, h, request);
    }
    p = eat_eol(p);
    if (p == NULL) return -400;
    *nout = n;
    *head_end = p;
    return 0;
}

/* "HTTP/d.d": 10, 11, 0 for another version, -1 for garbage. */
static int parse_version(const unsigned char *p)
{
    if (memcmp(p, "HTTP/1.1", 8) == 0) return 11;
    if (memcmp(p, "HTTP/1.0", 8) == 0) return 10;
    if (memcmp(p, "HTTP/", 5) != 0 || !has(p[5], C_DIGIT) || p[6] != '.' || !has(p[7], C_DIGIT))
        return -1;
    return 0;
}

/* ---- requests ---- */

/* http:// or https:// URI: the authority becomes host, the rest path. */
static int parse_absolute_form(pt_http_req_t *req)
{
    const char *t = req->target;
    const char *end = t + req->target_len;
    size_t sl;

    if (req->target_len > 7 && ci_eq(t, "http://", 7)) sl = 7;
    else if (req->target_len > 8 && ci_eq(t, "https://", 8)) sl = 8;
    else return -400;

    const char *a = t + sl;
    const char *e = a;
    while (e < end && *e != '/' && *e != '?' && *e != '#') e++;
    /* An empty host is invalid for http(s) (RFC 9110 4.2.1), userinfo is
     * rejected ('@' is not a host character, RFC 9110 4.2.4). */
    if (e == a || *a == ':' || !valid_host(a, (size_t)(e - a), false)) return -400;
    req->host = a;
    req->host_len = (size_t)(e - a);
    if (e == end) {
        /* RFC 9112 3.2.1/3.2.4: an empty path is sent as "/", or "*" for
         * OPTIONS. "/" is the last slash of "://", still in the buffer. */
        req->path = req->method_id == PT_HTTP_OPTIONS ? "*" : a - 1;
        req->path_len = 1;
        return 0;
    }
    /* "http://h?q" would need "/?q", which is not in the buffer. */
    if (*e != '/') return -400;
    req->path = e;
    req->path_len = (size_t)(end - e);
    return 0;
}

/* Target form against the method (RFC 9112 3.2). */
static int classify_target(pt_http_req_t *req)
{
    req->path = req->target;
    req->path_len = req->target_len;
    if (req->method_id == PT_HTTP_CONNECT) {
        req->form = PT_HTTP_FORM_AUTHORITY;
        return valid_host(req->target, req->target_len, true) && req->target[0] != ':' ? 0 : -400;
    }
    if (req->target[0] == '/') {
        req->form = PT_HTTP_FORM_ORIGIN;
        return 0;
    }
    if (req->target[0] == '*') {
        req->form = PT_HTTP_FORM_ASTERISK;
        return req->target_len == 1 && req->method_id == PT_HTTP_OPTIONS ? 0 : -400;
    }
    req->form = PT_HTTP_FORM_ABSOLUTE;
    return parse_absolute_form(req);
}

/* method SP request-target SP HTTP-version CRLF. Returns the next line or NULL (*rc set). */
static const unsigned char *parse_request_line(const unsigned char *p, const unsigned char *end,
                                               pt_http_req_t *req, int *rc)
{
    const unsigned char *m = p;

    *rc = -400;
    while (has(*p, C_TCHAR)) p++;
    if (p == m || *p != ' ') return NULL;
    req->method = (const char *)m;
    req->method_len = (size_t)(p - m);
    req->method_id = pt_http_method_id(req->method, req->method_len);

    const unsigned char *t = ++p;
    p = skip_class(p, end, 0x21, C_TARGET);
    if (p == t || *p != ' ') return NULL;
    req->target = (const char *)t;
    req->target_len = (size_t)(p - t);

    p++;
    if (end - p < 9) return NULL; /* version + LF */
    int v = parse_version(p);
    if (v < 0) return NULL;
    p = eat_eol(p + 8);
    if (p == NULL) return NULL;
    if (v == 0) {
        *rc = -505;
        return NULL;
    }
    req->version = v;
    *rc = classify_target(req);
    return *rc == 0 ? p : NULL;
}

/* Framing and Host rules once all fields are known (RFC 9112 3.2, 6.1, 6.3). */
static int finish_request(pt_http_req_t *req, const head_info_t *hi)
{
    unsigned flags = 0;

    if (hi->hosts > 1 || hi->host_bad || (req->version == 11 && hi->hosts == 0)) return -400;
    if (req->form != PT_HTTP_FORM_ABSOLUTE && hi->hosts == 1) {
        req->host = hi->host;
        req->host_len = hi->host_len;
    }
    if (hi->te_seen) {
        if (req->version == 10 || hi->cl_seen) return -400;
        if (hi->te_bad || hi->te_chunked != 1 || !hi->te_last_chunked) return -400;
        if (hi->te_count > 1) return -501; /* other codings before chunked */
        flags |= PT_HTTP_F_CHUNKED;
    } else if (hi->cl_seen) {
        if (hi->cl_bad) return -400;
        req->content_length = hi->cl;
        flags |= PT_HTTP_F_HAS_CL;
    }
    if (hi->conn_keepalive) flags |= PT_HTTP_F_KEEPALIVE;
    if (hi->conn_close || (req->version == 10 && !hi->conn_keepalive)) flags |= PT_HTTP_F_CLOSE;
    if (hi->conn_upgrade && hi->upgrade) flags |= PT_HTTP_F_UPGRADE;
    /* An HTTP/1.0 client cannot mean 100-continue (RFC 9110 10.1.1). */
    if (hi->expect_100 && req->version == 11) flags |= PT_HTTP_F_EXPECT_100;
    req->flags = flags;
    return 0;
}

int pt_http_parse_request(const char *buf, size_t len, size_t last_len, pt_http_req_t *req,
                          const pt_http_limits_t *lim)
{
    size_t skip;
    int bound = locate_head(buf, len, last_len, true, lim, &skip);
    if (bound <= 0) return bound;

    const unsigned char *p = (const unsigned char *)buf + skip;
    const unsigned char *end = (const unsigned char *)buf + bound;
    head_info_t hi = {.cl = -1};
    int rc;

    req->host = NULL;
    req->host_len = 0;
    req->nheaders = 0;
    req->content_length = -1;
    req->flags = 0;
    req->head_len = 0;
    p = parse_request_line(p, end, req, &rc);
    if (p == NULL) return rc;
    rc = parse_fields(p, end, req->headers, lim->max_headers, &req->nheaders, &hi, true, &p);
    if (rc < 0) return rc;
    rc = finish_request(req, &hi);
    if (rc < 0) return rc;
    req->head_len = (size_t)(p - (const unsigned char *)buf);
    return (int)req->head_len;
}

/* ---- responses ---- */

/* HTTP-version SP 3DIGIT [ SP reason-phrase ] CRLF; "SP reason" may be absent. */
static const unsigned char *parse_status_line(const unsigned char *p, const unsigned char *end,
                                              pt_http_resp_t *resp)
{
    if (end - p < 13) return NULL; /* "HTTP/1.1 200" LF */
    int v = parse_version(p);
    if (v <= 0 || p[8] != ' ') return NULL;
    resp->version = v;
    p += 9;
    if (p[0] < '1' || p[0] > '5' || !has(p[1], C_DIGIT) || !has(p[2], C_DIGIT)) return NULL;
    resp->status = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
    p += 3;
    resp->reason = (const char *)p;
    if (*p == ' ') {
        resp->reason = (const char *)++p;
        while (has(*p, C_VALUE)) p++;
    }
    resp->reason_len = (size_t)(p - (const unsigned char *)resp->reason);
    return eat_eol(p);
}

/* Response framing (RFC 9112 6.1, 6.3): a bad framing is a bad gateway. */
static int finish_response(pt_http_resp_t *resp, const head_info_t *hi)
{
    unsigned flags = 0;

    if (hi->te_seen) {
        /* Only "chunked" is decoded; TE in HTTP/1.0 means faulty framing. */
        if (resp->version == 10 || hi->te_bad || hi->te_count != 1 || hi->te_chunked != 1)
            return -502;
        flags |= PT_HTTP_F_CHUNKED;
        /* With CL too the sender may be confused: chunked wins, no reuse. */
        if (hi->cl_seen) flags |= PT_HTTP_F_CLOSE;
    } else if (hi->cl_seen) {
        if (hi->cl_bad) return -502;
        resp->content_length = hi->cl;
        flags |= PT_HTTP_F_HAS_CL;
    }
    if (hi->conn_keepalive) flags |= PT_HTTP_F_KEEPALIVE;
    if (hi->conn_close || (resp->version == 10 && !hi->conn_keepalive)) flags |= PT_HTTP_F_CLOSE;
    if (hi->conn_upgrade && hi->upgrade) flags |= PT_HTTP_F_UPGRADE;
    resp->flags = flags;
    return 0;
}

int pt_http_parse_response(const char *buf, size_t len, size_t last_len, pt_http_resp_t *resp,
                           const pt_http_limits_t *lim)
{
    size_t skip;
    int bound = locate_head(buf, len, last_len, false, lim, &skip);
    if (bound == PT_AGAIN) return PT_AGAIN;
    if (bound < 0) return -502;

    const unsigned char *p = (const unsigned char *)buf + skip;
    const unsigned char *end = (const unsigned char *)buf + bound;
    head_info_t hi = {.cl = -1};

    resp->nheaders = 0;
    resp->content_length = -1;
    resp->flags = 0;
    resp->head_len = 0;
    p = parse_status_line(p, end, resp);
    if (p == NULL) return -502;
    if (parse_fields(p, end, resp->headers, lim->max_headers, &resp->nheaders, &hi, false, &p) < 0)
        return -502;
    if (finish_response(resp, &hi) < 0) return -502;
    resp->head_len = (size_t)(p - (const unsigned char *)buf);
    return (int)resp->head_len;
}
