/*
 * Portico DNS: the public API of src/dns.
 *
 * A small non-blocking stub resolver for upstream host names: it asks the
 * configured recursive servers (or those of /etc/resolv.conf) for the A and
 * AAAA records of a name over UDP, on a pt_loop_t, and calls back once with
 * the addresses and the TTL to keep them for. No cache, no search domains,
 * no TCP fallback (a truncated answer is an error; upstream names do not
 * have hundreds of addresses).
 *
 * Spoofing resistance as in every stub resolver: a random 16-bit id and a
 * fresh connected UDP socket (so a kernel-chosen random source port, and
 * datagrams from other peers are dropped by the kernel) per attempt, and an
 * answer is taken only if its id and question match ours.
 *
 * The response parser is strict (RFC 1035 section 4) and has its own entry
 * point for tests and the fuzzer: every section is walked, names may be
 * compressed but a pointer must point before itself (so loops cannot
 * happen), bytes past the last record are an error.
 *
 * All functions run on the loop's thread.
 */
#ifndef PT_DNS_H
#define PT_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define PT_DNS_TYPE_A 1
#define PT_DNS_TYPE_CNAME 5
#define PT_DNS_TYPE_SOA 6
#define PT_DNS_TYPE_AAAA 28
#define PT_DNS_CLASS_IN 1

#define PT_DNS_MAX_ADDRS 32   /* addresses kept per answer (the rest are dropped) */
#define PT_DNS_MAX_SERVERS 4  /* recursive servers used */
#define PT_DNS_MAX_CNAMES 8   /* CNAME links followed in one answer */
#define PT_DNS_MAX_NAME 255   /* wire length of a name, RFC 1035 2.3.4 */
#define PT_DNS_MAX_PACKET 512 /* queries carry no EDNS: answers fit in 512 */

/*
 * Results. 0 is success; the others are negative and distinct from the
 * errno values a resolve may also end with (-ENOMEM, -ENETUNREACH...).
 */
enum {
    PT_DNS_OK = 0,
    PT_DNS_NXDOMAIN = -1001,  /* the name does not exist (RCODE 3) */
    PT_DNS_NODATA = -1002,    /* it exists but has no record of the type */
    PT_DNS_SERVFAIL = -1003,  /* RCODE 2, 1, 4, 5 or other: the server failed or refused */
    PT_DNS_TRUNCATED = -1004, /* TC bit set */
    PT_DNS_MALFORMED = -1005, /* the answer breaks RFC 1035 */
    PT_DNS_MISMATCH = -1006,  /* not an answer to our query (id, flags or question) */
    PT_DNS_TIMEOUT = -1007,   /* no server answered in time */
};

/* A static English description of a PT_DNS_* result or negative errno. */
const char *pt_dns_strerror(int status);

/* ---- packets (pure functions, no I/O) ---- */

/*
 * Encodes a host name ("app.internal" or "app.internal.") as a wire name:
 * length-prefixed labels, lower case, ending with the root label. Labels are
 * 1..63 bytes of letters, digits, '-' and '_'; the whole is at most 255.
 * Returns the wire length or -EINVAL.
 */
int pt_dns_name_encode(const char *name, uint8_t *out, size_t size);

/*
 * Builds a recursive query (RD set, one question of qtype, class IN) for
 * name into buf. Returns the packet length or -EINVAL (bad name) /
 * -ENOSPC.
 */
int pt_dns_build_query(uint8_t *buf, size_t size, uint16_t id, const char *name, uint16_t qtype);

/* What a response said about our question. Addresses have port 0. */
typedef struct pt_dns_answer {
    int rcode;      /* RCODE of the header (for logs) */
    size_t n;       /* addresses in addrs[], unique, in answer order */
    pt_addr_t addrs[PT_DNS_MAX_ADDRS];
    uint32_t ttl;   /* seconds: the minimum over the CNAMEs and records used */
    size_t ncname;  /* CNAME links followed */
} pt_dns_answer_t;

/*
 * Parses a response to the query (id, qname, qtype class IN) and follows the
 * CNAME chain from qname inside the answer section to the records of qtype
 * (A or AAAA). out is filled on every return (n = 0 on errors).
 * Returns:
 *   PT_DNS_OK         at least one address in out;
 *   PT_DNS_NODATA     the name (or the end of its CNAME chain) has no such record;
 *   PT_DNS_NXDOMAIN, PT_DNS_SERVFAIL, PT_DNS_TRUNCATED  from the header;
 *   PT_DNS_MISMATCH   not a response to this query: ignore it, keep waiting;
 *   PT_DNS_MALFORMED  a response to this query that breaks the format;
 *   -EINVAL           qname cannot be encoded.
 */
int pt_dns_parse_response(const uint8_t *p, size_t len, uint16_t id, const char *qname,
                          uint16_t qtype, pt_dns_answer_t *out);

/* ---- resolver ---- */

typedef struct pt_dns_resolver pt_dns_resolver_t;
typedef struct pt_dns_query pt_dns_query_t;

/*
 * The result of one pt_dns_resolve(): status 0 with n >= 1 addresses (port
 * 0; IPv4 first, then IPv6) valid for ttl_s seconds, or a negative status
 * (PT_DNS_* or -errno) with n = 0. addrs is only valid during the call.
 * The query is gone when this runs: the callback may start new queries,
 * cancel others or destroy the resolver.
 */
typedef void (*pt_dns_cb)(void *arg, int status, const pt_addr_t *addrs, size_t n,
                          uint32_t ttl_s);

/*
 * Creates a resolver on loop asking servers[0..n) in order (a copy is kept,
 * at most PT_DNS_MAX_SERVERS; each with its port, usually 53). n == 0 reads
 * the nameserver lines of /etc/resolv.conf, or uses 127.0.0.1:53 when there
 * are none. timeout_ms (0 = 5 s) bounds one resolve from start to callback;
 * within it each server gets one or more attempts. NULL on OOM.
 */
pt_dns_resolver_t *pt_dns_resolver_create(pt_loop_t *loop, const pt_addr_t *servers, size_t n,
                                          uint64_t timeout_ms);
/* Cancels every pending query (their callbacks never run) and frees r.
 * Accepts NULL. */
void pt_dns_resolver_destroy(pt_dns_resolver_t *r);
/* The servers r asks (for logs and tests). */
size_t pt_dns_resolver_servers(const pt_dns_resolver_t *r, const pt_addr_t **servers);

/*
 * Starts resolving name (A and AAAA in parallel). cb runs exactly once,
 * later, from the loop (never from inside this call), unless the query is
 * cancelled first. IP literals and "localhost" are answered without a
 * query (TTL one hour). On success returns 0 and *q (may be NULL when the
 * caller never cancels); -EINVAL for a name that is not a host name,
 * -ENOMEM.
 */
int pt_dns_resolve(pt_dns_resolver_t *r, const char *name, pt_dns_cb cb, void *arg,
                   pt_dns_query_t **q);
/* Stops a pending query: its callback will not run. q must not have
 * completed yet (after the callback the handle is dangling). */
void pt_dns_cancel(pt_dns_query_t *q);

/*
 * Reads up to max "nameserver" addresses (port 53) from a resolv.conf file.
 * Scoped IPv6 addresses are skipped. Returns the number found (0 when the
 * file is missing or has none).
 */
size_t pt_dns_read_resolv_conf(const char *path, pt_addr_t *out, size_t max);

#endif /* PT_DNS_H */
