/*
 * Portico HTTP: the public API of src/http.
 *
 * HTTP/1.1 message parsing (RFC 9112), strict on purpose: this is the
 * request-smuggling front line. Parsers are zero-copy (every string points
 * into the caller's buffer) and incremental in the picohttpparser style:
 * call again with the same buffer grown by newly read bytes; pass the
 * previous length so the end-of-head search does not restart from zero.
 *
 * Also: the chunked decoder, HTTP dates, reason phrases, token lists, and
 * static file responses (conditional requests, ranges, MIME types).
 *
 * http knows nothing of routing or proxying.
 */
#ifndef PT_HTTP_H
#define PT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "core/core.h"

/* Parser results: > 0 is the head length; PT_AGAIN (-11) is "need more
 * bytes"; any other negative value is -status (e.g. -400, -414, -431,
 * -501, -505 for requests; -502 for responses). */

typedef enum {
    PT_HTTP_GET = 0,
    PT_HTTP_HEAD,
    PT_HTTP_POST,
    PT_HTTP_PUT,
    PT_HTTP_DELETE,
    PT_HTTP_CONNECT,
    PT_HTTP_OPTIONS,
    PT_HTTP_TRACE,
    PT_HTTP_PATCH,
    PT_HTTP_OTHER, /* any other token: forwarded as is */
} pt_http_method_t;

typedef enum {
    PT_HTTP_FORM_ORIGIN = 0, /* /path?query */
    PT_HTTP_FORM_ABSOLUTE,   /* http://host/path */
    PT_HTTP_FORM_AUTHORITY,  /* host:port (CONNECT only) */
    PT_HTTP_FORM_ASTERISK,   /* * (OPTIONS only) */
} pt_http_target_form_t;

typedef struct pt_http_hdr {
    const char *name;
    size_t name_len;
    const char *value; /* leading/trailing whitespace trimmed */
    size_t value_len;
} pt_http_hdr_t;

typedef struct pt_http_limits {
    size_t max_head;    /* request/status line + headers, bytes; over: 431 (414 if still in the request line) */
    size_t max_line;    /* request line length; over: 414 */
    size_t max_headers; /* header count; over: 431. Must be <= the caller's array capacity */
} pt_http_limits_t;

/* Flags set by the parsers. */
#define PT_HTTP_F_CHUNKED 0x01u       /* Transfer-Encoding: chunked (the only coding accepted) */
#define PT_HTTP_F_CLOSE 0x02u         /* Connection: close, or HTTP/1.0 without keep-alive */
#define PT_HTTP_F_KEEPALIVE 0x04u     /* Connection: keep-alive present */
#define PT_HTTP_F_UPGRADE 0x08u       /* Connection lists "upgrade" and an Upgrade header is present */
#define PT_HTTP_F_EXPECT_100 0x10u    /* Expect: 100-continue */
#define PT_HTTP_F_HAS_CL 0x20u        /* a valid Content-Length was present */

typedef struct pt_http_req {
    const char *method;
    size_t method_len;
    pt_http_method_t method_id;
    const char *target; /* the request-target as received */
    size_t target_len;
    pt_http_target_form_t form;
    const char *path;   /* path (with query) for origin- and absolute-form; target otherwise */
    size_t path_len;
    const char *host;   /* absolute-form authority if present, else the Host header; NULL if none */
    size_t host_len;
    int version;        /* 10 or 11 */
    pt_http_hdr_t *headers; /* caller's array (set before parsing) */
    size_t nheaders;
    int64_t content_length; /* -1 when absent */
    unsigned flags;
    size_t head_len;
} pt_http_req_t;

typedef struct pt_http_resp {
    int version; /* 10 or 11 */
    int status;
    const char *reason;
    size_t reason_len;
    pt_http_hdr_t *headers; /* caller's array (set before parsing) */
    size_t nheaders;
    int64_t content_length; /* -1 when absent */
    unsigned flags;
    size_t head_len;
} pt_http_resp_t;

/*
 * Parses a request head from buf[0..len). req->headers must point to an
 * array of at least lim->max_headers entries. last_len is the length passed
 * on the previous call for the same message (0 the first time).
 *
 * Rules (RFC 9112): leading empty lines are skipped; method is a token;
 * request-target without CTLs or spaces, form checked against the method;
 * version HTTP/1.0 or HTTP/1.1 (other HTTP/x.y: -505; garbage: -400); lines
 * end in CRLF or a lone LF; a bare CR anywhere is -400; obs-fold is -400;
 * header names are tokens with no whitespace before ':'; values may not
 * contain NUL, CR, LF or other CTLs except HTAB. Framing: Transfer-Encoding
 * in an HTTP/1.0 request is -400; Transfer-Encoding with Content-Length is
 * -400; TE must be exactly "chunked" (case-insensitive, possibly split over
 * several fields/commas: "chunked, chunked" is -400, a final coding other
 * than chunked is -400, other codings before chunked are -501);
 * Content-Length must be 1*DIGIT without overflow, duplicates must agree
 * (then merged), else -400. HTTP/1.1 without exactly one Host is -400;
 * a Host value with invalid characters is -400.
 *
 * Returns head length (> 0), PT_AGAIN, or -status.
 */
int pt_http_parse_request(const char *buf, size_t len, size_t last_len, pt_http_req_t *req,
                          const pt_http_limits_t *lim);

/*
 * Parses a response head. Same line and header rules. Framing: TE must be
 * exactly chunked (anything else: -502); TE with CL: chunked wins, CL is
 * ignored and PT_HTTP_F_CLOSE is set (the connection is not reused);
 * invalid or conflicting CL: -502. Status must be 3 digits 100..599.
 * The caller decides whether the status/method means "no body".
 */
int pt_http_parse_response(const char *buf, size_t len, size_t last_len, pt_http_resp_t *resp,
                           const pt_http_limits_t *lim);

/* Finds a header by case-insensitive name; NULL if absent (first match). */
const pt_http_hdr_t *pt_http_find(const pt_http_hdr_t *h, size_t n, const char *name,
                                  size_t name_len);

/*
 * Iterates comma-separated tokens of a list header value (OWS trimmed,
 * empty elements skipped). Start with *pos = 0. Returns true and sets
 * tok/tok_len while there are tokens.
 */
bool pt_http_next_token(const char *v, size_t len, size_t *pos, const char **tok,
                        size_t *tok_len);
/* True if the list value contains token (case-insensitive). */
bool pt_http_list_has(const char *v, size_t len, const char *token, size_t token_len);

/* ---- chunked transfer coding ---- */

typedef struct pt_http_chunked {
    int state;
    uint64_t remaining;    /* bytes left in the current chunk */
    size_t line_len;       /* bytes seen on the current size/ext/trailer line */
    size_t trailer_bytes;  /* total trailer bytes seen */
    size_t max_line;       /* limit for a chunk-size line incl. extensions (0 = 4096) */
    size_t max_trailers;   /* limit for all trailer bytes (0 = 16384) */
    uint64_t body_bytes;   /* decoded bytes so far */
} pt_http_chunked_t;

/* Resets the decoder (limits keep their values). */
void pt_http_chunked_init(pt_http_chunked_t *d);

/*
 * Decodes chunked data in place: on entry buf[0..*len) holds raw bytes, on
 * return buf[0..*len) holds the decoded data bytes. Returns PT_AGAIN when
 * more input is needed, -400 on malformed input (chunk size that is not
 * 1*HEXDIG, overflow over 2^62, sign/prefix/space, bad or over-long
 * extension, data not followed by CRLF, bare LF or CR in framing, bad or
 * over-long trailers), or >= 0 when the terminating chunk and trailers
 * have been consumed: the number of bytes after the message, which the
 * function leaves at buf + *len (pipelined data).
 * Trailers are validated and discarded.
 */
ssize_t pt_http_chunked_decode(pt_http_chunked_t *d, char *buf, size_t *len);

/* ---- dates, reasons ---- */

/* Writes an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), 29 bytes + NUL. */
void pt_http_date_format(time_t t, char out[30]);
/* Parses IMF-fixdate, RFC 850 and asctime forms. Returns 0 or -EINVAL. */
int pt_http_date_parse(const char *s, size_t len, time_t *out);
/* "OK", "Not Found", ...; "Unknown" for unknown codes. */
const char *pt_http_reason(int status);
/* Method token to id (PT_HTTP_OTHER for unknown tokens). */
pt_http_method_t pt_http_method_id(const char *m, size_t len);

/*
 * Percent-decodes src[0..len) into dst (len + 1 bytes; dst may be src,
 * decoding never grows), NUL-terminated, length in *out_len. A bad escape
 * or a NUL (raw or %00) is -EINVAL. With dst NULL it only checks.
 */
int pt_http_pct_decode(const char *src, size_t len, char *dst, size_t *out_len);

/* ---- static files ---- */

typedef struct pt_mime_type {
    const char *ext;  /* without dot, lower case */
    const char *type; /* "text/html; charset=utf-8" */
} pt_mime_type_t;

typedef struct pt_static_conf {
    const char *root;  /* directory, no trailing slash needed */
    const char *const *index; /* index file names, tried in order */
    size_t nindex;
    const char *default_type; /* for unknown extensions */
    const pt_mime_type_t *types; /* NULL: built-in table */
    size_t ntypes;
    bool etag; /* send ETag (default on) */
} pt_static_conf_t;

typedef struct pt_static_result {
    int status;      /* 200, 206, 301, 304, 400, 403, 404, 405, 412, 416, 500 */
    int fd;          /* open file to send (-1 when no body from a file); the caller closes it */
    off_t offset;    /* body range in the file */
    off_t length;
    char *headers;   /* header lines, each ending in CRLF (no status line, no final CRLF), from pool */
    size_t headers_len;
} pt_static_result_t;

/*
 * Maps the request to a file under conf->root and prepares the response.
 * path/path_len: the request path (may include a "?query", ignored);
 * it is percent-decoded and normalized; attempts to leave root are 400,
 * NUL bytes are 400. Methods other than GET/HEAD: 405 with Allow. Directory
 * without trailing slash: 301 with Location (path + "/"); directory with
 * slash: the first existing index file, else 403 (no listings).
 * Sets: Content-Type, Content-Length, Last-Modified, ETag ("mtime-size" in
 * hex, weak comparison for If-None-Match), Accept-Ranges: bytes, and for
 * ranges Content-Range. Honors If-None-Match (304), If-Modified-Since
 * (304), If-Match / If-Unmodified-Since (412), Range with one range
 * (206/416; multiple ranges serve the whole file with 200), If-Range.
 * HEAD gets the same headers with no body (fd closed, -1).
 * Error statuses (4xx/5xx) leave fd = -1 and headers may be empty: the
 * caller writes its own error body. Returns 0 (see status) or -ENOMEM.
 */
int pt_http_static_serve(pt_pool_t *pool, const pt_static_conf_t *conf, const pt_http_req_t *req,
                         const char *path, size_t path_len, pt_static_result_t *res);

/* MIME type for a file name using conf's table (or the built-in one). */
const char *pt_http_mime_type(const pt_static_conf_t *conf, const char *name, size_t len);

#endif /* PT_HTTP_H */
