/*
 * Routing: listener -> virtual host (server_name) -> location, with
 * nginx's precedence: exact "=" first, then the longest prefix; a "^~"
 * longest prefix stops there, otherwise regexes are tried in order and the
 * first match wins, else the longest prefix. A location with match_header
 * conditions is only a candidate when every condition holds.
 */
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "proxy/proxy_int.h"

bool pt_cidr_match(const pt_cidr_t *c, const pt_addr_t *a)
{
    const uint8_t *ip;
    if (c->family == AF_INET && a->ss.ss_family == AF_INET) {
        ip = (const uint8_t *)&((const struct sockaddr_in *)&a->ss)->sin_addr;
    } else if (c->family == AF_INET6 && a->ss.ss_family == AF_INET6) {
        ip = ((const struct sockaddr_in6 *)&a->ss)->sin6_addr.s6_addr;
    } else {
        return false;
    }
    unsigned full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(ip, c->addr, full) != 0) return false;
    if (rest == 0) return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (ip[full] & mask) == (c->addr[full] & mask);
}

bool pt_cidr_list_match(const pt_array_t *list, const pt_addr_t *a)
{
    for (size_t i = 0; i < list->n; i++)
        if (pt_cidr_match(pt_array_at(list, pt_cidr_t, i), a)) return true;
    return false;
}

const pt_listen_conf_t *pt_listen_lookup(const pt_snapshot_t *snap, const pt_addr_t *local)
{
    for (size_t i = 0; i < snap->listens.n; i++) {
        const pt_listen_conf_t *l = pt_array_at(&snap->listens, pt_listen_conf_t, i);
        if (pt_addr_equal(&l->addr, local)) return l;
    }
    return NULL;
}

/* Host without port, lower-cased comparison. */
static size_t host_name_len(const char *h, size_t len)
{
    if (len > 0 && h[0] == '[') {
        const char *end = memchr(h, ']', len);
        return end ? (size_t)(end - h) + 1 : len;
    }
    const char *colon = memchr(h, ':', len);
    size_t n = colon ? (size_t)(colon - h) : len;
    while (n > 0 && h[n - 1] == '.') n--; /* "example.com." */
    return n;
}

static bool name_matches(const char *name, const char *host, size_t hlen)
{
    if (name[0] == '*' && name[1] == '.') {
        size_t sl = strlen(name + 1); /* ".example.com" */
        return hlen > sl && pt_strcaseeq(host + hlen - sl, sl, name + 1, sl);
    }
    return pt_strcaseeq(name, strlen(name), host, hlen);
}

static pt_vhost_t *find_vhost(const pt_listen_conf_t *lc, const char *host, size_t hlen)
{
    pt_vhost_t *wild = NULL;
    size_t wild_len = 0;
    for (size_t i = 0; host && i < lc->vhosts.n; i++) {
        pt_vhost_t *vh = *pt_array_at(&lc->vhosts, pt_vhost_t *, i);
        for (size_t j = 0; j < vh->names.n; j++) {
            const char *name = *pt_array_at(&vh->names, const char *, j);
            if (!name_matches(name, host, hlen)) continue;
            if (name[0] != '*') return vh; /* exact names win over wildcards */
            /* nginx: the longest matching wildcard wins */
            size_t nl = strlen(name);
            if (!wild || nl > wild_len) {
                wild = vh;
                wild_len = nl;
            }
        }
    }
    return wild ? wild : lc->default_server;
}

static bool headers_match(const pt_location_t *loc, const pt_http_req_t *h)
{
    for (size_t i = 0; i < loc->header_matches.n; i++) {
        const pt_header_match_t *m = pt_array_at(&loc->header_matches, pt_header_match_t, i);
        const pt_http_hdr_t *hd = pt_http_find(h->headers, h->nheaders, m->name, m->name_len);
        if (!hd) return false;
        if (!m->re) continue;
        pcre2_match_data *md = pcre2_match_data_create(1, NULL);
        if (!md) return false;
        int rc = pcre2_match(m->re, (PCRE2_SPTR)hd->value, hd->value_len, 0, 0, md, NULL);
        pcre2_match_data_free(md);
        if (rc < 0) return false;
    }
    return true;
}

static bool regex_matches(const pt_location_t *loc, const char *path, size_t len)
{
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md) return false;
    int rc = pcre2_match(loc->re, (PCRE2_SPTR)path, len, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

static pt_location_t *find_location(pt_vhost_t *vh, const pt_http_req_t *h)
{
    const char *path = h->path;
    const char *q = memchr(path, '?', h->path_len);
    size_t len = q ? (size_t)(q - path) : h->path_len;
    pt_location_t *prefix = NULL;
    for (size_t i = 0; i < vh->locations.n; i++) {
        pt_location_t *loc = *pt_array_at(&vh->locations, pt_location_t *, i);
        if (loc->match == PT_LOC_EXACT) {
            if (loc->path_len == len && memcmp(loc->path, path, len) == 0 && headers_match(loc, h))
                return loc;
        } else if (loc->match == PT_LOC_PREFIX || loc->match == PT_LOC_PREFIX_NOREGEX) {
            if (loc->path_len <= len && memcmp(loc->path, path, loc->path_len) == 0 &&
                (!prefix || loc->path_len > prefix->path_len ||
                 (loc->path_len == prefix->path_len && prefix->header_matches.n == 0 &&
                  loc->header_matches.n > 0)) &&
                headers_match(loc, h))
                prefix = loc;
        }
    }
    if (prefix && prefix->match == PT_LOC_PREFIX_NOREGEX) return prefix;
    for (size_t i = 0; i < vh->locations.n; i++) {
        pt_location_t *loc = *pt_array_at(&vh->locations, pt_location_t *, i);
        if ((loc->match == PT_LOC_REGEX || loc->match == PT_LOC_REGEX_CASELESS) &&
            regex_matches(loc, path, len) && headers_match(loc, h))
            return loc;
    }
    return prefix ? prefix : vh->root_loc;
}

void pt_route(pt_request_t *r, const pt_listen_conf_t *lc)
{
    const char *host = r->h.host;
    size_t hlen = host ? host_name_len(host, r->h.host_len) : 0;
    r->vhost = find_vhost(lc, host, hlen);
    /* A server-level return runs before location matching, as in nginx. */
    r->loc = r->vhost->server_return ? r->vhost->root_loc : find_location(r->vhost, &r->h);
}
