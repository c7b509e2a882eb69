/*
 * String templates: config values with $variables, compiled once at load
 * and expanded per request into the request pool.
 */
#include <errno.h>
#include <string.h>

#include "proxy/proxy_int.h"

typedef struct var_name {
    const char *name;
    pt_var_kind_t kind;
} var_name_t;

static const var_name_t var_names[] = {
    {"host", PT_VAR_HOST},
    {"remote_addr", PT_VAR_REMOTE_ADDR},
    {"remote_port", PT_VAR_REMOTE_PORT},
    {"scheme", PT_VAR_SCHEME},
    {"request_id", PT_VAR_REQUEST_ID},
    {"request_uri", PT_VAR_REQUEST_URI},
    {"uri", PT_VAR_URI},
    {"args", PT_VAR_ARGS},
    {"server_port", PT_VAR_SERVER_PORT},
    {"request_method", PT_VAR_REQUEST_METHOD},
};

static bool is_var_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static int lookup_var(const char *name, size_t len, pt_tpl_part_t *part)
{
    if (len > 5 && memcmp(name, "http_", 5) == 0) {
        part->kind = PT_VAR_HTTP_HEADER;
        part->s = name + 5;
        part->len = len - 5;
        return 0;
    }
    if (len > 7 && memcmp(name, "cookie_", 7) == 0) {
        part->kind = PT_VAR_COOKIE;
        part->s = name + 7;
        part->len = len - 7;
        return 0;
    }
    for (size_t i = 0; i < pt_countof(var_names); i++) {
        if (strlen(var_names[i].name) == len && memcmp(var_names[i].name, name, len) == 0) {
            part->kind = var_names[i].kind;
            return 0;
        }
    }
    return -EINVAL;
}

static int push_part(pt_conf_build_t *b, pt_array_t *parts, pt_tpl_part_t p)
{
    pt_tpl_part_t *slot = pt_array_push(parts);
    if (!slot) return -ENOMEM;
    *slot = p;
    pt_unused(b);
    return 0;
}

int pt_tpl_compile(pt_conf_build_t *b, const pt_conf_node_t *n, size_t argi, pt_tpl_t *out)
{
    const pt_conf_arg_t *a = &n->args[argi];
    pt_array_t parts;
    if (pt_array_init(&parts, b->pool, sizeof(pt_tpl_part_t), 2) < 0) return -ENOMEM;
    size_t i = 0, lit = 0;
    while (i < a->len) {
        if (a->val[i] != '$') {
            i++;
            continue;
        }
        if (i > lit &&
            push_part(b, &parts, (pt_tpl_part_t){PT_VAR_LITERAL, a->val + lit, i - lit}) < 0)
            return -ENOMEM;
        size_t start = i + 1, end;
        bool braced = start < a->len && a->val[start] == '{';
        if (braced) start++;
        end = start;
        while (end < a->len && is_var_char(a->val[end])) end++;
        if (end == start || (braced && (end >= a->len || a->val[end] != '}')))
            return pt_conf_error_at(b->doc, b->err, n->file, a->line,
                                    pt_conf_arg_col(b->doc, n->file, a, i),
                                    "invalid variable name in \"%s\"", a->val);
        pt_tpl_part_t p = {PT_VAR_LITERAL, NULL, 0};
        if (lookup_var(a->val + start, end - start, &p) < 0)
            return pt_conf_error_at(b->doc, b->err, n->file, a->line,
                                    pt_conf_arg_col(b->doc, n->file, a, i),
                                    "unknown variable \"$%.*s\"", (int)(end - start),
                                    a->val + start);
        if (push_part(b, &parts, p) < 0) return -ENOMEM;
        i = lit = end + (braced ? 1 : 0);
    }
    if (i > lit && push_part(b, &parts, (pt_tpl_part_t){PT_VAR_LITERAL, a->val + lit, i - lit}) < 0)
        return -ENOMEM;
    out->parts = parts.items;
    out->nparts = parts.n;
    out->is_empty = a->len == 0;
    return 0;
}

/* The value of cookie `name` in one Cookie header value ("a=1; b=2"). */
static const char *cookie_in(const char *v, size_t vlen, const char *name, size_t nlen,
                             size_t *len)
{
    const char *p = v, *end = v + vlen;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ';')) p++;
        const char *eq = memchr(p, '=', (size_t)(end - p));
        const char *semi = memchr(p, ';', (size_t)(end - p));
        if (!semi) semi = end;
        if (eq && eq < semi && (size_t)(eq - p) == nlen && memcmp(p, name, nlen) == 0) {
            const char *val = eq + 1, *vend = semi;
            while (vend > val && (vend[-1] == ' ' || vend[-1] == '\t')) vend--;
            *len = (size_t)(vend - val);
            return val;
        }
        p = semi;
    }
    return NULL;
}

static const char *cookie_value(const pt_http_req_t *h, const pt_tpl_part_t *p, size_t *len)
{
    for (size_t i = 0; i < h->nheaders; i++) {
        const pt_http_hdr_t *hd = &h->headers[i];
        if (!pt_strcaseeq_lit(hd->name, hd->name_len, "cookie")) continue;
        const char *v = cookie_in(hd->value, hd->value_len, p->s, p->len, len);
        if (v) return v;
    }
    *len = 0;
    return "";
}

/* Value of one variable for r; *len set; may point into the request. */
static const char *var_value(pt_request_t *r, const pt_tpl_part_t *p, size_t *len, char *tmp,
                             size_t tmpsize)
{
    const pt_http_req_t *h = &r->h;
    const char *q;
    switch (p->kind) {
    case PT_VAR_LITERAL:
        *len = p->len;
        return p->s;
    case PT_VAR_HOST:
        *len = h->host ? h->host_len : 0;
        return h->host ? h->host : "";
    case PT_VAR_REMOTE_ADDR:
        *len = strlen(r->client_ip);
        return r->client_ip;
    case PT_VAR_REMOTE_PORT:
        *len = (size_t)snprintf(tmp, tmpsize, "%u", r->client_port);
        return tmp;
    case PT_VAR_SCHEME:
        *len = strlen(pt_req_scheme(r));
        return pt_req_scheme(r);
    case PT_VAR_REQUEST_ID:
        *len = r->request_id_len;
        return r->request_id;
    case PT_VAR_REQUEST_URI:
        *len = h->path_len;
        return h->path;
    case PT_VAR_URI:
        q = memchr(h->path, '?', h->path_len);
        *len = q ? (size_t)(q - h->path) : h->path_len;
        return h->path;
    case PT_VAR_ARGS:
        q = memchr(h->path, '?', h->path_len);
        *len = q ? h->path_len - (size_t)(q - h->path) - 1 : 0;
        return q ? q + 1 : "";
    case PT_VAR_SERVER_PORT:
        *len = (size_t)snprintf(tmp, tmpsize, "%u", pt_req_local_port(r));
        return tmp;
    case PT_VAR_REQUEST_METHOD:
        *len = h->method_len;
        return h->method;
    case PT_VAR_HTTP_HEADER:
        for (size_t i = 0; i < h->nheaders; i++) {
            const pt_http_hdr_t *hd = &h->headers[i];
            if (hd->name_len != p->len) continue;
            size_t k = 0;
            for (; k < p->len; k++) {
                char a = (char)tolower((unsigned char)hd->name[k]);
                char c = p->s[k] == '_' ? '-' : (char)tolower((unsigned char)p->s[k]);
                if (a != c) break;
            }
            if (k == p->len) {
                *len = hd->value_len;
                return hd->value;
            }
        }
        *len = 0;
        return "";
    case PT_VAR_COOKIE:
        return cookie_value(h, p, len);
    }
    *len = 0;
    return "";
}

char *pt_tpl_expand(pt_request_t *r, const pt_tpl_t *t, size_t *len)
{
    char tmp[32];
    size_t total = 0, vl;
    for (size_t i = 0; i < t->nparts; i++) {
        var_value(r, &t->parts[i], &vl, tmp, sizeof(tmp));
        total += vl;
    }
    char *out = pt_pool_alloc(r->pool, total + 1);
    if (!out) return NULL;
    size_t off = 0;
    for (size_t i = 0; i < t->nparts; i++) {
        const char *v = var_value(r, &t->parts[i], &vl, tmp, sizeof(tmp));
        memcpy(out + off, v, vl);
        off += vl;
    }
    out[off] = '\0';
    *len = off;
    return out;
}
