/* Internal to src/proxy: the request life cycle shared by conn.c and request.c. */
#ifndef PT_REQUEST_INT_H
#define PT_REQUEST_INT_H

#include "proxy/proxy_int.h"

/* Per-worker scratch space used while parsing a head. */
struct pt_worker_scratch {
    pt_http_req_t req;
    pt_http_hdr_t headers[PT_MAX_HEADERS];
    time_t date_sec;
    char date[30];
};

struct pt_worker_scratch *pt_worker_scratch(pt_worker_t *w);

/* Starts the request whose head was parsed (rc: head length or -status). */
void pt_request_start(pt_conn_t *c, int rc);
/* I/O on the client socket while the request is active. */
void pt_request_on_io(pt_request_t *r, unsigned events);
/* The connection timer fired while the request is active. */
void pt_request_on_timeout(pt_request_t *r);
/* The connection is closing under the request: tell the handler, log. */
void pt_request_abort_internal(pt_request_t *r);
/* The request ended; keep = the connection may serve another. */
void pt_conn_request_done(pt_conn_t *c, bool keep);
void pt_conn_close(pt_conn_t *c);
/* Client address (realip) and request id. */
void pt_request_identify(pt_request_t *r);
int pt_request_body_init(pt_request_t *r);

#endif
