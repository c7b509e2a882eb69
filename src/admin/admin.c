/*
 * The admin listener: one HTTP/1.1 request per connection, answered with
 * Connection: close, on the control thread's loop.
 *
 * A connection walks READING -> [BODY ->] WRITING -> LINGER -> closed:
 *   READING  read until the head parses (16 KiB at most: over is 431); then
 *            check the bearer token, find the endpoint and the framing
 *   BODY     read a Content-Length body (64 KiB at most: over is 413;
 *            chunked is 411), then run the endpoint
 *   WRITING  the response head and body, resumed on write edges
 *   LINGER   after the last byte, shut down our side and discard input
 *            until the client closes, so unread request bytes (a body we
 *            ignored) do not make the kernel answer with a RST that could
 *            destroy the response before the client reads it
 * A 10 s timer bounds the whole life of a connection.
 *
 * Everything a connection owns lives in its own pool. Closing stops the io
 * and timer and closes the fd at once, but the pool is destroyed from a
 * pt_loop_defer() task: the loop may still hold the io pointer for this
 * iteration, and we may be inside the connection's own callback.
 */
#include "admin/admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "http/http.h"

#define ADMIN_HEAD_MAX (16 * 1024)
#define ADMIN_BODY_MAX (64 * 1024)
#define ADMIN_LINE_MAX (8 * 1024)
#define ADMIN_HEADERS_MAX 64
#define ADMIN_TIMEOUT_MS 10000
#define ADMIN_ACCEPT_RETRY_MS 100
#define ADMIN_MAX_CONNS 256
#define ADMIN_BACKLOG 64

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define TEXT_CONTENT_TYPE "text/plain; charset=utf-8"
#define JSON_CONTENT_TYPE "application/json"

#define CONTINUE_100 "HTTP/1.1 100 Continue\r\n\r\n"
#define UNAUTHORIZED_HEADERS "WWW-Authenticate: Bearer realm=\"portico\"\r\n"
#define ALLOW_GET_HEADERS "Allow: GET\r\n"

typedef struct endpoint {
    char *path;
    size_t path_len;
    pt_admin_handler_t fn;
    void *arg;
    bool get_only; /* built-ins: the admin layer answers 405 for non-GET */
    bool prefix;   /* matches every path that starts with path */
} endpoint_t;

typedef enum { CONN_READING, CONN_BODY, CONN_WRITING, CONN_LINGER, CONN_CLOSED } conn_state_t;

typedef struct conn {
    pt_io_t io; /* first: the io callback gets &conn->io */
    pt_timer_t timer;
    pt_pool_t *pool; /* owns this struct and everything below */
    pt_admin_t *admin;
    struct conn *prev, *next;
    conn_state_t state;

    char *in;
    size_t in_len, last_len;
    pt_http_hdr_t *hdrs;

    /* The request being served, once its head parsed (strings in the pool). */
    pt_admin_request_t req;
    const endpoint_t *ep;
    char *req_body; /* from the pool, NUL-terminated */
    size_t req_body_len, req_body_want;

    char *head; /* response head, from the pool */
    size_t head_len, head_off;
    char *body; /* malloc'd, freed by a pool cleanup */
    size_t body_len, body_off;
} conn_t;

struct pt_admin {
    pt_admin_status_t status; /* status.token is our copy (or NULL) */
    size_t token_len;
    endpoint_t *eps;
    size_t neps, cap_eps;

    pt_loop_t *loop; /* NULL until started */
    pt_io_t listen_io;
    pt_timer_t accept_retry; /* re-tries accept after EMFILE and friends */
    conn_t *conns;
    size_t nconns;
};

/* ------------------------------------------------------------------ */
/* Helpers for handlers                                                */
/* ------------------------------------------------------------------ */

/* Sets resp's body to a malloc'd copy of p (NUL-terminated for the
 * handler's convenience, not sent). Returns 0 or -ENOMEM. */
int pt_admin_body(pt_admin_response_t *resp, const char *p, size_t len, const char *content_type)
{
    char *copy = malloc(len + 1);
    if (copy == NULL) return -ENOMEM;
    if (len > 0) memcpy(copy, p, len);
    copy[len] = '\0';
    free(resp->body); /* a handler may replace what it built so far */
    resp->body = copy;
    resp->body_len = len;
    resp->content_type = content_type;
    return 0;
}

/* {"error":"<msg>"} and a newline into a malloc'd string. */
static int json_error_body(const char *msg, char **out, size_t *out_len)
{
    pt_sbuf_t b = {0};
    pt_sbuf_str(&b, "{\"error\":");
    pt_sbuf_json_str(&b, msg, strlen(msg));
    pt_sbuf_str(&b, "}\n");
    if (b.oom) {
        free(b.p);
        return -ENOMEM;
    }
    *out = b.p;
    *out_len = b.len;
    return 0;
}

/* Sets resp's body to {"error":"<msg, escaped>"} as JSON; keeps the status.
 * Returns 0 or -ENOMEM. */
int pt_admin_json_error(pt_admin_response_t *resp, const char *msg)
{
    char *body;
    size_t len;
    int rc = json_error_body(msg, &body, &len);
    if (rc < 0) return rc;
    free(resp->body);
    resp->body = body;
    resp->body_len = len;
    resp->content_type = JSON_CONTENT_TYPE;
    return 0;
}

/* Checked whole first, so a bad string is left as it was. */
int pt_admin_pct_decode(char *s)
{
    size_t len = strlen(s), n;
    if (pt_http_pct_decode(s, len, NULL, &n) < 0) return -EINVAL;
    return pt_http_pct_decode(s, len, s, &n);
}

/* ------------------------------------------------------------------ */
/* Built-in endpoints                                                  */
/* ------------------------------------------------------------------ */

static int status_handler(const pt_admin_request_t *req, pt_admin_response_t *resp, void *arg)
{
    pt_unused(req);
    const pt_admin_t *admin = arg;
    const pt_admin_status_t *st = &admin->status;
    uint64_t now = pt_time_wall_ms();
    uint64_t uptime = now > st->start_wall_ms ? (now - st->start_wall_ms) / 1000 : 0;
    uint64_t gen = st->generation ? st->generation(st->arg) : 0;

    char buf[256];
    int n = snprintf(buf, sizeof(buf),
                     "{\"version\":\"%s\",\"uptime_seconds\":%llu,\"workers\":%d,"
                     "\"config_generation\":%llu,\"pid\":%ld}\n",
                     PT_VERSION, (unsigned long long)uptime, st->workers,
                     (unsigned long long)gen, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(buf)) return -EOVERFLOW;
    return pt_admin_body(resp, buf, (size_t)n, JSON_CONTENT_TYPE);
}

static int metrics_handler(const pt_admin_request_t *req, pt_admin_response_t *resp, void *arg)
{
    pt_unused(req);
    pt_unused(arg);
    int rc = pt_metrics_render(&resp->body, &resp->body_len);
    if (rc < 0) return rc;
    resp->content_type = METRICS_CONTENT_TYPE;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Server life cycle                                                   */
/* ------------------------------------------------------------------ */

static int add_endpoint(pt_admin_t *admin, const char *path, pt_admin_handler_t fn, void *arg,
                        bool get_only, bool prefix)
{
    if (path == NULL || path[0] != '/' || fn == NULL) return -EINVAL;
    size_t len = strlen(path);
    if (prefix && path[len - 1] != '/') return -EINVAL;
    for (size_t i = 0; i < admin->neps; i++) {
        if (admin->eps[i].prefix == prefix && strcmp(admin->eps[i].path, path) == 0)
            return -EEXIST;
    }
    if (admin->neps == admin->cap_eps) {
        size_t cap = admin->cap_eps ? admin->cap_eps * 2 : 8;
        endpoint_t *eps = realloc(admin->eps, cap * sizeof(*eps));
        if (eps == NULL) return -ENOMEM;
        admin->eps = eps;
        admin->cap_eps = cap;
    }
    char *copy = strdup(path);
    if (copy == NULL) return -ENOMEM;
    admin->eps[admin->neps++] = (endpoint_t){copy, len, fn, arg, get_only, prefix};
    return 0;
}

/*
 * Registers an endpoint for an exact path. Before pt_admin_start only.
 * Returns 0, -EEXIST, -ENOMEM, or -EINVAL (path not starting with '/').
 */
int pt_admin_register(pt_admin_t *admin, const char *path, pt_admin_handler_t fn, void *arg)
{
    return add_endpoint(admin, path, fn, arg, false, false);
}

/*
 * Registers an endpoint for every path under prefix ("/upstreams/").
 * Before pt_admin_start only. Returns 0, -EEXIST, -ENOMEM, or -EINVAL
 * (prefix not starting and ending with '/').
 */
int pt_admin_register_prefix(pt_admin_t *admin, const char *prefix, pt_admin_handler_t fn,
                             void *arg)
{
    return add_endpoint(admin, prefix, fn, arg, false, true);
}

static void free_admin(pt_admin_t *admin)
{
    for (size_t i = 0; i < admin->neps; i++) free(admin->eps[i].path);
    free(admin->eps);
    free((char *)admin->status.token);
    free(admin);
}

/* Creates the server with /status and /metrics. NULL on OOM. */
pt_admin_t *pt_admin_create(const pt_admin_status_t *status)
{
    pt_admin_t *admin = calloc(1, sizeof(*admin));
    if (admin == NULL) return NULL;
    if (status != NULL) admin->status = *status;
    admin->status.token = NULL; /* the caller's until copied below */
    admin->listen_io.fd = -1;
    if (status != NULL && status->token != NULL) {
        admin->status.token = strdup(status->token);
        if (admin->status.token == NULL) goto fail;
        admin->token_len = strlen(admin->status.token);
    }
    if (add_endpoint(admin, "/status", status_handler, admin, true, false) < 0 ||
        add_endpoint(admin, "/metrics", metrics_handler, admin, true, false) < 0)
        goto fail;
    return admin;
fail:
    free_admin(admin);
    return NULL;
}

static void destroy_pool_task(void *arg)
{
    pt_pool_destroy(arg);
}

static void free_admin_task(void *arg)
{
    free_admin(arg);
}

/* Stops and closes everything of c now; its memory goes at the safe point. */
static void conn_close(conn_t *c)
{
    if (c->state == CONN_CLOSED) return;
    pt_admin_t *admin = c->admin;
    c->state = CONN_CLOSED;
    pt_timer_stop(admin->loop, &c->timer);
    pt_io_stop(admin->loop, &c->io);
    close(c->io.fd);
    c->io.fd = -1;

    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        admin->conns = c->next;
    if (c->next != NULL) c->next->prev = c->prev;
    admin->nconns--;

    if (pt_loop_defer(admin->loop, destroy_pool_task, c->pool) < 0) {
        /* Freeing now could leave the loop a dangling io; leak instead. */
        pt_log_error("admin: out of memory, leaking a closed connection");
    }
}

/* Closes the listener and every connection; frees the server. */
void pt_admin_destroy(pt_admin_t *admin)
{
    if (admin == NULL) return;
    if (admin->loop == NULL) {
        free_admin(admin);
        return;
    }
    while (admin->conns != NULL) conn_close(admin->conns);
    pt_timer_stop(admin->loop, &admin->accept_retry);
    pt_io_stop(admin->loop, &admin->listen_io);
    if (admin->listen_io.fd >= 0) close(admin->listen_io.fd);
    admin->listen_io.fd = -1;
    /* The listener io is part of admin: free it at the safe point too. */
    if (pt_loop_defer(admin->loop, free_admin_task, admin) < 0) free_admin(admin);
}

/* ------------------------------------------------------------------ */
/* Responses                                                           */
/* ------------------------------------------------------------------ */

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

static void free_body(void *p)
{
    free(p);
}

/*
 * Installs the response (takes ownership of body) and switches to WRITING.
 * extra is "" or whole header lines ("Allow: GET\r\n").
 * Returns 0 or -ENOMEM (body freed).
 */
static int set_response(conn_t *c, int status, const char *ctype, char *body, size_t body_len,
                        const char *extra)
{
    if (body != NULL && pt_pool_cleanup_add(c->pool, free_body, body) < 0) {
        free(body);
        return -ENOMEM;
    }
    if (body == NULL) body_len = 0;
    c->head = pt_pool_printf(c->pool,
                             "HTTP/1.1 %d %s\r\n"
                             "Content-Type: %s\r\n"
                             "Content-Length: %zu\r\n"
                             "%s"
                             "Cache-Control: no-store\r\n"
                             "Connection: close\r\n"
                             "\r\n",
                             status, reason(status), ctype, body_len, extra);
    if (c->head == NULL) return -ENOMEM;
    c->head_len = strlen(c->head);
    c->head_off = 0;
    c->body = body;
    c->body_len = body_len;
    c->body_off = 0;
    c->state = CONN_WRITING;
    return 0;
}

/* A short plain-text answer for errors: "404 Not Found\n". */
static int set_error(conn_t *c, int status, const char *extra)
{
    char *body = NULL;
    int n = asprintf(&body, "%d %s\n", status, reason(status));
    if (n < 0) return -ENOMEM;
    return set_response(c, status, TEXT_CONTENT_TYPE, body, (size_t)n, extra);
}

/* 401 with the challenge and a JSON error. */
static int set_unauthorized(conn_t *c)
{
    char *body;
    size_t len;
    if (json_error_body("unauthorized: this endpoint needs Authorization: Bearer <admin_token>",
                        &body, &len) < 0)
        return -ENOMEM;
    return set_response(c, 401, JSON_CONTENT_TYPE, body, len, UNAUTHORIZED_HEADERS);
}

/* The exact endpoint for path, else the longest prefix endpoint, else NULL. */
static const endpoint_t *find_endpoint(const pt_admin_t *admin, const char *path)
{
    const endpoint_t *best = NULL;
    for (size_t i = 0; i < admin->neps; i++) {
        const endpoint_t *ep = &admin->eps[i];
        if (!ep->prefix) {
            if (strcmp(ep->path, path) == 0) return ep;
        } else if (strncmp(ep->path, path, ep->path_len) == 0 &&
                   (best == NULL || ep->path_len > best->path_len)) {
            best = ep;
        }
    }
    return best;
}

/*
 * Compares the presented token with ours in time that depends only on our
 * token's length, so response timing does not reveal how many leading
 * bytes of a guess were right.
 */
static bool token_equal(const char *want, size_t want_len, const char *got, size_t got_len)
{
    volatile unsigned char diff = want_len != got_len;
    for (size_t i = 0; i < want_len; i++) {
        unsigned char g = i < got_len ? (unsigned char)got[i] : 0;
        diff |= (unsigned char)want[i] ^ g;
    }
    return diff == 0;
}

/*
 * True when no token is configured, or the request has exactly one
 * "Authorization: Bearer <token>" (scheme case-insensitive) with ours.
 */
static bool authorized(const pt_admin_t *admin, const pt_http_req_t *req)
{
    static const char auth[] = "Authorization", scheme[] = "Bearer";
    if (admin->status.token == NULL) return true;
    const pt_http_hdr_t *h = NULL;
    for (size_t i = 0; i < req->nheaders; i++) {
        if (!pt_strcaseeq_lit(req->headers[i].name, req->headers[i].name_len, auth)) continue;
        if (h != NULL) return false; /* two credentials: ambiguous */
        h = &req->headers[i];
    }
    size_t n = sizeof(scheme) - 1;
    if (h == NULL || h->value_len <= n || !pt_strcaseeq(h->value, n, scheme, n) ||
        (h->value[n] != ' ' && h->value[n] != '\t'))
        return false;
    const char *tok = h->value + n;
    size_t len = h->value_len - n;
    while (len > 0 && (*tok == ' ' || *tok == '\t')) {
        tok++;
        len--;
    }
    return token_equal(admin->status.token, admin->token_len, tok, len);
}

/* Copies method/path/query out of the parsed head as NUL-terminated strings. */
static int make_request(conn_t *c, const pt_http_req_t *req, pt_admin_request_t *out)
{
    const char *p = req->path;
    size_t plen = req->path_len;
    const char *q = memchr(p, '?', plen);
    size_t path_len = q ? (size_t)(q - p) : plen;

    out->method = pt_pool_strndup(c->pool, req->method, req->method_len);
    out->path = path_len ? pt_pool_strndup(c->pool, p, path_len) : "/";
    out->query = q ? pt_pool_strndup(c->pool, q + 1, plen - path_len - 1) : "";
    out->body = "";
    out->body_len = 0;
    if (out->method == NULL || out->path == NULL || out->query == NULL) return -ENOMEM;
    return 0;
}

/* Runs the endpoint chosen for the request (body complete) and installs
 * the response. */
static int run_endpoint(conn_t *c)
{
    const endpoint_t *ep = c->ep;
    pt_admin_request_t *ar = &c->req;
    if (c->req_body != NULL) {
        c->req_body[c->req_body_len] = '\0';
        ar->body = c->req_body;
        ar->body_len = c->req_body_len;
    }
    pt_admin_response_t resp = {.status = 200, .content_type = TEXT_CONTENT_TYPE};
    int rc = ep->fn(ar, &resp, ep->arg);
    if (rc < 0) {
        free(resp.body);
        pt_log_error("admin: %s %s: handler failed: %s", ar->method, ar->path, strerror(-rc));
        return set_error(c, 500, "");
    }
    if (resp.status < 100 || resp.status > 599) resp.status = 500;
    if (resp.content_type == NULL) resp.content_type = TEXT_CONTENT_TYPE;
    return set_response(c, resp.status, resp.content_type, resp.body, resp.body_len, "");
}

/*
 * Sends "100 Continue" to a client that waits for it before its body.
 * The connection is fresh and its send buffer empty, so this short write
 * either goes whole or the connection is broken. Returns 0 or -EIO.
 */
static int send_continue(conn_t *c)
{
    ssize_t n;
    do {
        n = send(c->io.fd, CONTINUE_100, sizeof(CONTINUE_100) - 1, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof(CONTINUE_100) - 1 ? 0 : -EIO;
}

/*
 * Sets up reading the request body: takes the body bytes that came with
 * the head, then runs the endpoint or switches to BODY. Bytes after the
 * body (pipelining) are ignored: one request per connection.
 * Returns 0, -ENOMEM, or -EIO (close the connection).
 */
static int start_body(conn_t *c, const pt_http_req_t *req)
{
    size_t want = req->content_length > 0 ? (size_t)req->content_length : 0;
    c->req_body = pt_pool_alloc(c->pool, want + 1);
    if (c->req_body == NULL) return -ENOMEM;
    c->req_body_want = want;
    c->req_body_len = pt_min(c->in_len - req->head_len, want);
    memcpy(c->req_body, c->in + req->head_len, c->req_body_len);
    if (c->req_body_len == want) return run_endpoint(c);
    if ((req->flags & PT_HTTP_F_EXPECT_100) && req->version == 11 && send_continue(c) < 0)
        return -EIO;
    c->state = CONN_BODY;
    return 0;
}

/*
 * A head parsed: checks the token, finds the endpoint and the framing,
 * then reads the body. Errors are answered before the body is read (the
 * LINGER state discards it).
 */
static int start_request(conn_t *c, const pt_http_req_t *req)
{
    if (make_request(c, req, &c->req) < 0) return -ENOMEM;
    if (!authorized(c->admin, req)) return set_unauthorized(c);
    /* An origin-form path is what admin endpoints know; anything else is
     * not ours (CONNECT authority, OPTIONS *). */
    bool path_form = req->form == PT_HTTP_FORM_ORIGIN || req->form == PT_HTTP_FORM_ABSOLUTE;
    c->ep = path_form ? find_endpoint(c->admin, c->req.path) : NULL;
    if (c->ep == NULL) return set_error(c, 404, "");
    if (c->ep->get_only && strcmp(c->req.method, "GET") != 0)
        return set_error(c, 405, ALLOW_GET_HEADERS);
    /* The parser answered other transfer codings (501, 400) already. */
    if (req->flags & PT_HTTP_F_CHUNKED) return set_error(c, 411, "");
    if (req->content_length > ADMIN_BODY_MAX) return set_error(c, 413, "");
    return start_body(c, req);
}

/* ------------------------------------------------------------------ */
/* Connection I/O                                                      */
/* ------------------------------------------------------------------ */

/* Tries to parse what has been read; may install a response. */
static int try_parse(conn_t *c)
{
    static const pt_http_limits_t lim = {
        .max_head = ADMIN_HEAD_MAX, .max_line = ADMIN_LINE_MAX, .max_headers = ADMIN_HEADERS_MAX};
    pt_http_req_t req;
    memset(&req, 0, sizeof(req));
    req.headers = c->hdrs;
    int rc = pt_http_parse_request(c->in, c->in_len, c->last_len, &req, &lim);
    c->last_len = c->in_len;
    if (rc == PT_AGAIN) {
        /* The buffer is the head limit: full and still incomplete is 431. */
        return c->in_len == ADMIN_HEAD_MAX ? set_error(c, 431, "") : 0;
    }
    if (rc > 0) return start_request(c, &req);
    int status = -rc >= 400 && -rc <= 599 ? -rc : 400;
    return set_error(c, status, "");
}

/*
 * One read into buf. Returns the bytes read (> 0), 0 when the socket has
 * nothing now, or -1 after closing the connection (error, or the client gave
 * up before the whole head or body).
 */
static ssize_t read_some(conn_t *c, char *buf, size_t cap)
{
    for (;;) {
        ssize_t n = read(c->io.fd, buf, cap);
        if (n > 0) return n;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            c->io.readable = false;
            return 0;
        }
        conn_close(c);
        return -1;
    }
}

static void do_read(conn_t *c)
{
    while (c->state == CONN_READING && c->io.readable) {
        ssize_t n = read_some(c, c->in + c->in_len, ADMIN_HEAD_MAX - c->in_len);
        if (n <= 0) return;
        c->in_len += (size_t)n;
        int rc = try_parse(c);
        if (rc < 0) {
            if (rc == -ENOMEM) pt_log_error("admin: out of memory answering a request");
            conn_close(c);
            return;
        }
    }
}

/* Reads the rest of the body (never past it), then runs the endpoint. */
static void do_read_body(conn_t *c)
{
    while (c->state == CONN_BODY && c->io.readable) {
        ssize_t n = read_some(c, c->req_body + c->req_body_len,
                              c->req_body_want - c->req_body_len);
        if (n <= 0) return;
        c->req_body_len += (size_t)n;
        if (c->req_body_len == c->req_body_want && run_endpoint(c) < 0) {
            pt_log_error("admin: out of memory answering a request");
            conn_close(c);
            return;
        }
    }
}

static void do_write(conn_t *c)
{
    while (c->state == CONN_WRITING && c->io.writable) {
        struct iovec iov[2];
        int niov = 0;
        if (c->head_off < c->head_len)
            iov[niov++] = (struct iovec){c->head + c->head_off, c->head_len - c->head_off};
        if (c->body_off < c->body_len)
            iov[niov++] = (struct iovec){c->body + c->body_off, c->body_len - c->body_off};
        if (niov == 0) {
            /* All sent: half-close and wait for the client's FIN. */
            shutdown(c->io.fd, SHUT_WR);
            c->state = CONN_LINGER;
            return;
        }
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
        ssize_t n = sendmsg(c->io.fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                c->io.writable = false;
                return;
            }
            conn_close(c);
            return;
        }
        size_t left = (size_t)n;
        size_t h = pt_min(left, c->head_len - c->head_off);
        c->head_off += h;
        c->body_off += left - h;
    }
}

/* Discards input until EOF (then closes) or EAGAIN. */
static void do_linger(conn_t *c)
{
    char sink[4096];
    while (c->state == CONN_LINGER && c->io.readable) {
        ssize_t n = read(c->io.fd, sink, sizeof(sink));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            c->io.readable = false;
            return;
        }
        if (n <= 0) conn_close(c);
    }
}

static void conn_process(conn_t *c)
{
    if (c->state == CONN_READING) do_read(c);
    if (c->state == CONN_BODY) do_read_body(c);
    if (c->state == CONN_WRITING) do_write(c);
    if (c->state == CONN_LINGER) do_linger(c);
}

static void on_conn_io(pt_io_t *io, unsigned events)
{
    pt_unused(events);
    conn_process((conn_t *)io->data);
}

static void on_conn_timeout(pt_timer_t *t)
{
    conn_close(t->data);
}

/* Sets up a connection for an accepted fd; closes fd on failure. */
static void conn_open(pt_admin_t *admin, int fd)
{
    if (admin->nconns >= ADMIN_MAX_CONNS) {
        pt_log_warn("admin: too many connections, closing a new one");
        close(fd);
        return;
    }
    pt_pool_t *pool = pt_pool_create(4096);
    conn_t *c = pool ? pt_pool_calloc(pool, 1, sizeof(*c)) : NULL;
    if (c != NULL) {
        c->in = pt_pool_alloc(pool, ADMIN_HEAD_MAX);
        c->hdrs = pt_pool_calloc(pool, ADMIN_HEADERS_MAX, sizeof(*c->hdrs));
    }
    if (c == NULL || c->in == NULL || c->hdrs == NULL) {
        pt_log_error("admin: out of memory accepting a connection");
        pt_pool_destroy(pool);
        close(fd);
        return;
    }
    c->pool = pool;
    c->admin = admin;
    c->state = CONN_READING;
    c->io.fd = fd;
    c->io.cb = on_conn_io;
    c->io.data = c;
    pt_timer_init(&c->timer, on_conn_timeout, c);
    int rc = pt_io_start(admin->loop, &c->io);
    if (rc < 0) {
        pt_log_error("admin: cannot watch a connection: %s", strerror(-rc));
        pt_pool_destroy(pool);
        close(fd);
        return;
    }
    pt_timer_start(admin->loop, &c->timer, ADMIN_TIMEOUT_MS);
    c->next = admin->conns;
    if (c->next != NULL) c->next->prev = c;
    admin->conns = c;
    admin->nconns++;
    /* The registration edge reports data that is already there. */
}

/* Accepts until EAGAIN (edge-triggered). */
static void accept_all(pt_admin_t *admin)
{
    for (;;) {
        int fd = accept4(admin->listen_io.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            conn_open(admin, fd);
            continue;
        }
        switch (errno) {
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
            continue;
        case EAGAIN:
            admin->listen_io.readable = false;
            return;
        default:
            /* EMFILE, ENFILE, ENOBUFS, ENOMEM: no new edge will come for
             * the queued connections, so retry on a timer. */
            pt_log_error("admin: accept: %s", strerror(errno));
            pt_timer_start(admin->loop, &admin->accept_retry, ADMIN_ACCEPT_RETRY_MS);
            return;
        }
    }
}

static void on_accept(pt_io_t *io, unsigned events)
{
    pt_unused(events);
    accept_all(io->data);
}

static void on_accept_retry(pt_timer_t *t)
{
    accept_all(t->data);
}

/* "9901" means 127.0.0.1:9901 here (pt_addr_parse would pick 0.0.0.0). */
static int parse_admin_addr(const char *addr, pt_addr_t *out)
{
    size_t len = strlen(addr);
    bool digits = len > 0 && strspn(addr, "0123456789") == len;
    if (!digits) return pt_addr_parse(addr, len, 0, out);
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "127.0.0.1:%s", addr);
    if (n < 0 || (size_t)n >= sizeof(buf)) return -EINVAL;
    return pt_addr_parse(buf, (size_t)n, 0, out);
}

/*
 * Binds addr and starts accepting on loop (the control thread's). Returns
 * 0 or a negative errno, logged at error level.
 */
int pt_admin_start(pt_admin_t *admin, pt_loop_t *loop, const char *addr)
{
    if (admin->loop != NULL) return -EALREADY;
    pt_addr_t a;
    if (addr == NULL || parse_admin_addr(addr, &a) < 0) {
        pt_log_error("admin: invalid listen address \"%s\"", addr ? addr : "(null)");
        return -EINVAL;
    }
    int fd = pt_socket_listen(&a, ADMIN_BACKLOG, false);
    if (fd < 0) {
        pt_log_error("admin: cannot listen on %s: %s", addr, strerror(-fd));
        return fd;
    }
    admin->listen_io = (pt_io_t){.fd = fd, .cb = on_accept, .data = admin};
    pt_timer_init(&admin->accept_retry, on_accept_retry, admin);
    int rc = pt_io_start_read(loop, &admin->listen_io);
    if (rc < 0) {
        pt_log_error("admin: cannot watch %s: %s", addr, strerror(-rc));
        close(fd);
        admin->listen_io.fd = -1;
        return rc;
    }
    admin->loop = loop;
    pt_log_info("admin: listening on %s", addr);
    return 0;
}
