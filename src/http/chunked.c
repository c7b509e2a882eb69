/*
 * The chunked transfer coding (RFC 9112 7.1), decoded in place and
 * strictly: framing disagreements between us and an origin are how
 * request smuggling starts, so anything outside the grammar is a 400.
 *
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-size   = 1*HEXDIG               (here: at most 16, value <= 2^62)
 *   chunk-ext    = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )
 *   last-chunk   = 1*("0") [ chunk-ext ] CRLF
 *
 * The decoder is a byte-level state machine (so input may be split
 * anywhere), except for chunk data, which is moved in bulk.
 */
#include <string.h>

#include "http/http.h"

enum {
    B_TCHAR = 0x01,  /* token */
    B_VALUE = 0x02,  /* field-value / quoted-pair byte: VCHAR, obs-text, SP, HTAB */
    B_QDTEXT = 0x04, /* quoted-string text: HTAB, SP, VCHAR but '"' and '\\', obs-text */
};

static const uint8_t bcls[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    6, 7, 2, 7, 7, 7, 7, 7, 6, 6, 7, 7, 6, 7, 7, 6,
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6,
    6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 2, 6, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 7, 6, 7, 0,
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
};

#define MAX_CHUNK ((uint64_t)1 << 62)
#define MAX_SIZE_DIGITS 16
#define DEFAULT_MAX_LINE 4096
#define DEFAULT_MAX_TRAILERS 16384

enum {
    ST_SIZE = 0,     /* chunk-size digits */
    ST_SIZE_BWS,     /* BWS after the size or an ext value: ';' next */
    ST_EXT_PRE,      /* after ';': BWS, then a name */
    ST_EXT_NAME,
    ST_EXT_NAME_BWS, /* BWS after a name: '=' or ';' next */
    ST_EXT_EQ,       /* after '=': BWS, then a value */
    ST_EXT_TOKEN,
    ST_EXT_QUOTED,
    ST_EXT_ESCAPE,   /* after '\\' in a quoted-string */
    ST_EXT_END,      /* after the closing quote */
    ST_SIZE_LF,      /* CR seen at the end of the size line */
    ST_DATA,
    ST_DATA_CR,
    ST_DATA_LF,
    ST_TRAILER,      /* start of a trailer line, or the final CRLF */
    ST_TR_NAME,
    ST_TR_VALUE,
    ST_TR_LF,
    ST_END_LF,
    ST_DONE,
    ST_ERROR,
};

void pt_http_chunked_init(pt_http_chunked_t *d)
{
    d->state = ST_SIZE;
    d->remaining = 0;
    d->line_len = 0;
    d->trailer_bytes = 0;
    d->body_bytes = 0;
}

static inline int hex_value(unsigned c)
{
    if (c - '0' < 10u) return (int)(c - '0');
    c |= 0x20;
    if (c - 'a' < 6u) return (int)(c - 'a' + 10);
    return -1;
}

static inline bool is_ws(unsigned c)
{
    return c == ' ' || c == '\t';
}

/*
 * One byte of a chunk-size line (states ST_SIZE .. ST_SIZE_LF).
 * Returns the next state, or ST_ERROR.
 */
static int size_line_byte(pt_http_chunked_t *d, unsigned c, size_t max_line)
{
    int st = d->state;

    if (st == ST_SIZE_LF) {
        if (c != '\n') return ST_ERROR;
        d->line_len = 0;
        return d->remaining == 0 ? ST_TRAILER : ST_DATA;
    }
    if (c == '\r') {
        /* The line may end after digits, a name, a token or a quoted value. */
        bool ok = (st == ST_SIZE && d->line_len > 0) || st == ST_EXT_NAME || st == ST_EXT_TOKEN ||
                  st == ST_EXT_END;
        return ok ? ST_SIZE_LF : ST_ERROR;
    }
    if (++d->line_len > max_line) return ST_ERROR;
    switch (st) {
    case ST_SIZE: {
        int h = hex_value(c);
        if (h >= 0) {
            if (d->line_len > MAX_SIZE_DIGITS || d->remaining > (MAX_CHUNK - (unsigned)h) >> 4)
                return ST_ERROR;
            d->remaining = (d->remaining << 4) | (unsigned)h;
            return ST_SIZE;
        }
        if (d->line_len == 1) return ST_ERROR; /* no digit: "+5", " 5", ";", "\n" */
        if (c == ';') return ST_EXT_PRE;
        return is_ws(c) ? ST_SIZE_BWS : ST_ERROR;
    }
    case ST_SIZE_BWS:
        if (c == ';') return ST_EXT_PRE;
        return is_ws(c) ? ST_SIZE_BWS : ST_ERROR;
    case ST_EXT_PRE:
        if (bcls[c] & B_TCHAR) return ST_EXT_NAME;
        return is_ws(c) ? ST_EXT_PRE : ST_ERROR;
    case ST_EXT_NAME:
        if (bcls[c] & B_TCHAR) return ST_EXT_NAME;
        if (c == '=') return ST_EXT_EQ;
        if (c == ';') return ST_EXT_PRE;
        return is_ws(c) ? ST_EXT_NAME_BWS : ST_ERROR;
    case ST_EXT_NAME_BWS:
        if (c == '=') return ST_EXT_EQ;
        if (c == ';') return ST_EXT_PRE;
        return is_ws(c) ? ST_EXT_NAME_BWS : ST_ERROR;
    case ST_EXT_EQ:
        if (bcls[c] & B_TCHAR) return ST_EXT_TOKEN;
        if (c == '"') return ST_EXT_QUOTED;
        return is_ws(c) ? ST_EXT_EQ : ST_ERROR;
    case ST_EXT_TOKEN:
        if (bcls[c] & B_TCHAR) return ST_EXT_TOKEN;
        if (c == ';') return ST_EXT_PRE;
        return is_ws(c) ? ST_SIZE_BWS : ST_ERROR;
    case ST_EXT_QUOTED:
        if (c == '"') return ST_EXT_END;
        if (c == '\\') return ST_EXT_ESCAPE;
        return (bcls[c] & B_QDTEXT) ? ST_EXT_QUOTED : ST_ERROR;
    case ST_EXT_ESCAPE:
        return (bcls[c] & B_VALUE) ? ST_EXT_QUOTED : ST_ERROR;
    case ST_EXT_END:
        if (c == ';') return ST_EXT_PRE;
        return is_ws(c) ? ST_SIZE_BWS : ST_ERROR;
    default:
        return ST_ERROR;
    }
}

/* One byte after the chunk data or in the trailer section. */
static int tail_byte(pt_http_chunked_t *d, unsigned c, size_t max_trailers)
{
    int st = d->state;

    if (st >= ST_TRAILER && ++d->trailer_bytes > max_trailers) return ST_ERROR;
    switch (st) {
    case ST_DATA_CR:
        return c == '\r' ? ST_DATA_LF : ST_ERROR;
    case ST_DATA_LF:
        return c == '\n' ? ST_SIZE : ST_ERROR;
    case ST_TRAILER:
        /* A line starting with SP/HTAB would be obs-fold. */
        if (c == '\r') return ST_END_LF;
        return (bcls[c] & B_TCHAR) ? ST_TR_NAME : ST_ERROR;
    case ST_TR_NAME:
        if (c == ':') return ST_TR_VALUE;
        return (bcls[c] & B_TCHAR) ? ST_TR_NAME : ST_ERROR;
    case ST_TR_VALUE:
        if (c == '\r') return ST_TR_LF;
        return (bcls[c] & B_VALUE) ? ST_TR_VALUE : ST_ERROR;
    case ST_TR_LF:
        return c == '\n' ? ST_TRAILER : ST_ERROR;
    case ST_END_LF:
        return c == '\n' ? ST_DONE : ST_ERROR;
    default:
        return ST_ERROR;
    }
}

ssize_t pt_http_chunked_decode(pt_http_chunked_t *d, char *buf, size_t *len)
{
    size_t max_line = d->max_line ? d->max_line : DEFAULT_MAX_LINE;
    size_t max_trailers = d->max_trailers ? d->max_trailers : DEFAULT_MAX_TRAILERS;
    const unsigned char *src = (const unsigned char *)buf;
    const unsigned char *end = src + *len;
    char *out = buf;

    if (d->state == ST_DONE) {
        /* Already complete: every byte belongs to what follows. */
        size_t n = *len;
        *len = 0;
        return (ssize_t)n;
    }
    while (src < end && d->state != ST_ERROR) {
        if (d->state == ST_DATA) {
            size_t n = (size_t)pt_min(d->remaining, (uint64_t)(end - src));
            if (out != (const char *)src) memmove(out, src, n);
            out += n;
            src += n;
            d->remaining -= n;
            d->body_bytes += n;
            if (d->remaining == 0) d->state = ST_DATA_CR;
        } else if (d->state <= ST_SIZE_LF) {
            d->state = size_line_byte(d, *src++, max_line);
        } else {
            d->state = tail_byte(d, *src++, max_trailers);
            if (d->state == ST_DONE) {
                size_t rest = (size_t)(end - src);
                memmove(out, src, rest);
                *len = (size_t)(out - buf);
                return (ssize_t)rest;
            }
        }
    }
    *len = (size_t)(out - buf);
    return d->state == ST_ERROR ? -400 : PT_AGAIN;
}
