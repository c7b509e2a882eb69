/* Small string helpers shared by every module. */
#include <string.h>

#include "core/core.h"

static inline unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* ASCII case-insensitive equality of two byte strings (no locale). */
bool pt_strcaseeq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen) return false;
    for (size_t i = 0; i < alen; i++) {
        if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i])) return false;
    }
    return true;
}

/*
 * Escape for one byte into out (up to 6 bytes); returns its length.
 * Bytes >= 0x80 pass through untouched: UTF-8 stays UTF-8, and invalid
 * sequences are the producer's business (we do not re-encode).
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
    if (c < 0x20 || c == 0x7f) {
        memcpy(out, "\\u00", 4);
        out[4] = hex[c >> 4];
        out[5] = hex[c & 0xf];
        return 6;
    }
    out[0] = (char)c;
    return 1;
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
            n = escape_byte((unsigned char)s[i - 1], unit);
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
