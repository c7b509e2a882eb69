/*
 * Portico upstreams: `upstream` groups of origin servers, `proxy_pass`,
 * per-worker keep-alive connection pools, server selection (smooth
 * weighted round robin) and the HTTP/1.1 exchange with the origin.
 */
#ifndef PT_UPSTREAM_H
#define PT_UPSTREAM_H

#include "proxy/proxy.h"

/* Registers the upstream module with the proxy (directives, handlers). */
int pt_upstream_init(void);

#endif /* PT_UPSTREAM_H */
