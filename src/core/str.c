/* Small string helpers shared by every module. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

size_t pt_fmt_u64(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    return n;
}

/*
 * Escape for one byte into out (up to 6 bytes); returns its length.
 * Bytes >= 0x7f get here only when they are not part of valid UTF-8 (see
 * pt_json_escape) and become \u00XX.
 */
static size_t escape_byte(unsigned char c, char out[6])
{
    static const char hex[] = "0123456789abcdef";
    switch (c) {
    case '"': out[0] = '\\'; out[1] = '"'; return 2;
    case '\\': out[0] = '\\'; out[1] = '\\'; return 2;
    case '\n': out[0] = '\\'; out[1] = 'n'; return 2;
    case '\r': out[0] = '\\'; out[1] = 'r'; return 2;
    case '\t': out[0] = '\\'; out[1] = 't'; return 2;
    default: break;
    }
    if (c < 0x20 || c >= 0x7f) {
        /* Control bytes, and bytes >= 0x80 that are not part of valid UTF-8
         * (see utf8_len), become \u00XX so the output is always valid JSON. */
        memcpy(out, "\\u00", 4);
        out[4] = hex[c >> 4];
        out[5] = hex[c & 0xf];
        return 6;
    }
    out[0] = (char)c;
    return 1;
}

/* Length of a valid UTF-8 sequence (2..4) at s, or 0. */
static size_t utf8_len(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

/*
 * Writes s[0..len) as a JSON string literal, quotes included, at buf.
 * snprintf semantics: returns the length of the full literal (without the
 * NUL); it fitted when the return value is < size. When it does not fit,
 * buf holds as many whole escape units as fit, NUL-terminated (if size > 0),
 * so a truncated result never ends in half an escape.
 */
size_t pt_json_escape(char *buf, size_t size, const char *s, size_t len)
{
    size_t need = 0;
    size_t cap = size > 0 ? size - 1 : 0; /* room for text, NUL excluded */
    bool full = false;
    char unit[6];

    unit[0] = '"';
    for (size_t i = 0; i <= len + 1; i++) {
        size_t n;
        if (i == 0 || i == len + 1) {
            unit[0] = '"';
            n = 1;
        } else {
            size_t u = (unsigned char)s[i - 1] >= 0x80
                           ? utf8_len((const unsigned char *)s + i - 1, len - (i - 1))
                           : 0;
            if (u > 0) {
                memcpy(unit, s + i - 1, u);
                n = u;
                i += u - 1;
            } else {
                n = escape_byte((unsigned char)s[i - 1], unit);
            }
        }
        if (!full && need + n <= cap) {
            memcpy(buf + need, unit, n);
        } else if (!full) {
            full = true;
            if (size > 0) buf[need] = '\0';
        }
        need += n;
    }
    if (!full && size > 0) buf[need] = '\0';
    return need;
}

/* ---- growing strings ---- */

static bool sbuf_reserve(pt_sbuf_t *b, size_t more)
{
    if (b->oom) return false;
    if (b->len + more + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + more + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void pt_sbuf_mem(pt_sbuf_t *b, const void *p, size_t n)
{
    if (!sbuf_reserve(b, n)) return;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void pt_sbuf_str(pt_sbuf_t *b, const char *s) { pt_sbuf_mem(b, s, strlen(s)); }

void pt_sbuf_printf(pt_sbuf_t *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof(tmp)) {
        pt_sbuf_mem(b, tmp, (size_t)n);
        return;
    }
    if (!sbuf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void pt_sbuf_json_str(pt_sbuf_t *b, const char *s, size_t len)
{
    size_t need = pt_json_escape(NULL, 0, s, len);
    if (!sbuf_reserve(b, need)) return;
    pt_json_escape(b->p + b->len, need + 1, s, len);
    b->len += need;
    b->p[b->len] = '\0';
}
