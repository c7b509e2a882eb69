/*
 * Portico admin: a separate HTTP/1.1 listener (default 127.0.0.1:9901) run
 * by the control thread's loop. It serves GET /status (JSON) and
 * GET /metrics (Prometheus text format 0.0.4), plus any endpoint another
 * module registers with pt_admin_register().
 *
 * The admin listener is deliberately simple: one request per connection
 * (it answers with Connection: close), small bodies, no TLS.
 */
#ifndef PT_ADMIN_H
#define PT_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

typedef struct pt_admin pt_admin_t;

typedef struct pt_admin_request {
    const char *method; /* NUL-terminated */
    const char *path;   /* NUL-terminated, without the query, still percent-encoded */
    const char *query;  /* NUL-terminated, "" when none */
    const char *body;   /* request body (Content-Length, at most 64 KiB), NUL-terminated */
    size_t body_len;
} pt_admin_request_t;

typedef struct pt_admin_response {
    int status;               /* default 200 */
    const char *content_type; /* default "text/plain; charset=utf-8" */
    char *body;               /* malloc'd; the admin module frees it */
    size_t body_len;
} pt_admin_response_t;

/*
 * Fills resp for req. Runs on the control thread. Returns 0, or a negative
 * errno to answer 500.
 */
typedef int (*pt_admin_handler_t)(const pt_admin_request_t *req, pt_admin_response_t *resp,
                                  void *arg);

/* What GET /status reports; callbacks run on the control thread. */
typedef struct pt_admin_status {
    uint64_t start_wall_ms;        /* process start, wall clock */
    int workers;
    uint64_t (*generation)(void *arg); /* config generation (1 = first load) */
    void *arg;
    /* When set, every request needs "Authorization: Bearer <token>" (else
     * 401 with WWW-Authenticate: Bearer). Copied. */
    const char *token;
} pt_admin_status_t;

/*
 * Registers an endpoint for an exact path (any method; the handler checks).
 * Call before pt_admin_start; not thread-safe. Returns 0, -EEXIST, -ENOMEM.
 */
int pt_admin_register(pt_admin_t *admin, const char *path, pt_admin_handler_t fn, void *arg);

/*
 * Registers a handler for every path that starts with prefix (which ends
 * in '/'), e.g. "/upstreams/". Exact registrations win over prefixes; the
 * longest prefix wins. Same rules and errors as pt_admin_register.
 */
int pt_admin_register_prefix(pt_admin_t *admin, const char *prefix, pt_admin_handler_t fn,
                             void *arg);

/* Sets resp's body to a copy of p (malloc'd) and its content type.
 * Returns 0 or -ENOMEM. */
int pt_admin_body(pt_admin_response_t *resp, const char *p, size_t len, const char *content_type);

/* {"error":"<msg, JSON-escaped>"} as application/json; keeps resp->status. */
int pt_admin_json_error(pt_admin_response_t *resp, const char *msg);

/* Decodes %XX in place; returns -EINVAL on a bad escape or an encoded NUL. */
int pt_admin_pct_decode(char *s);

/*
 * Creates the admin server (registers /status and /metrics). status is
 * copied. Returns NULL on OOM.
 */
pt_admin_t *pt_admin_create(const pt_admin_status_t *status);

/*
 * Binds addr ("127.0.0.1:9901", "[::1]:9901", "9901" = 127.0.0.1) and starts
 * accepting on loop. Returns 0 or a negative errno (the address in use, a bad
 * address: -EINVAL). Logs the reason at error level.
 */
int pt_admin_start(pt_admin_t *admin, pt_loop_t *loop, const char *addr);

/* Closes the listener and every connection; frees the server. */
void pt_admin_destroy(pt_admin_t *admin);

#endif /* PT_ADMIN_H */
