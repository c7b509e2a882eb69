/*
 * Configuration lexer: nginx syntax.
 *
 * Tokens are ';', '{', '}', bare words and quoted strings. '#' starts a
 * comment that runs to the end of the line. Whitespace is space, tab, CR
 * and LF. Lines and columns are 1-based; columns count bytes.
 *
 * Like nginx, a backslash inside a word or a quoted string protects the
 * next byte (so `a\ b` is one word and "a\"b" one string); the escapes
 * \" \' \\ \n \t \r are replaced when the value is taken, any other pair
 * is kept as written (regexes keep their `\.`). Also like nginx, "${" in a
 * bare word runs to the matching '}' so `${name}` stays one word.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/conf_internal.h"

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Bytes that end a bare word (and must follow a closing quote). */
static bool ends_word(char c)
{
    return is_space(c) || c == ';' || c == '{' || c == '}' || c == '#';
}

static bool is_quote(char c)
{
    return c == '"' || c == '\'';
}

static uint32_t cur_col(const conf_lex_t *lx)
{
    return (uint32_t)(lx->p - lx->bol) + 1;
}

static void advance(conf_lex_t *lx)
{
    if (*lx->p == '\n') {
        lx->line++;
        lx->bol = lx->p + 1;
    }
    lx->p++;
}

static int lex_error(conf_lex_t *lx, uint32_t line, uint32_t col, const char *msg)
{
    snprintf(lx->errmsg, sizeof(lx->errmsg), "%s", msg);
    lx->errline = line;
    lx->errcol = col;
    return -EINVAL;
}

static int error_here(conf_lex_t *lx, const char *msg)
{
    return lex_error(lx, lx->line, cur_col(lx), msg);
}

void conf_lex_init(conf_lex_t *lx, const char *text, size_t len)
{
    memset(lx, 0, sizeof(*lx));
    lx->p = text;
    lx->end = text + len;
    lx->bol = text;
    lx->line = 1;
}

/* Skips whitespace and comments. */
static void skip_blanks(conf_lex_t *lx)
{
    while (lx->p < lx->end) {
        if (is_space(*lx->p)) {
            advance(lx);
        } else if (*lx->p == '#') {
            const char *nl = memchr(lx->p, '\n', (size_t)(lx->end - lx->p));
            lx->p = nl != NULL ? nl : lx->end; /* the '\n' is counted by advance() */
        } else {
            break;
        }
    }
}

/* Consumes a backslash and the byte it protects (there is one). */
static int skip_escape(conf_lex_t *lx)
{
    advance(lx);
    if (*lx->p == '\0') return error_here(lx, "unexpected NUL byte");
    advance(lx);
    return 0;
}

/* At "${": consumes up to and including the closing '}' if the name has one. */
static void skip_braced_var(conf_lex_t *lx)
{
    lx->p += 2;
    while (lx->p < lx->end && *lx->p != '}' && !ends_word(*lx->p) && !is_quote(*lx->p) &&
           *lx->p != '\0' && *lx->p != '\\')
        lx->p++;
    if (lx->p < lx->end && *lx->p == '}') lx->p++;
}

static int lex_word(conf_lex_t *lx)
{
    while (lx->p < lx->end) {
        char c = *lx->p;
        if (ends_word(c)) break;
        if (is_quote(c)) return error_here(lx, "unexpected quote in the middle of a word");
        if (c == '\0') return error_here(lx, "unexpected NUL byte");
        if (c == '\\' && lx->p + 1 < lx->end) {
            int rc = skip_escape(lx);
            if (rc < 0) return rc;
        } else if (c == '$' && lx->p + 1 < lx->end && lx->p[1] == '{') {
            skip_braced_var(lx);
        } else {
            advance(lx);
        }
    }
    return 0;
}

static int lex_quoted(conf_lex_t *lx)
{
    char q = *lx->p;
    uint32_t line = lx->line, col = cur_col(lx);

    advance(lx);
    for (;;) {
        if (lx->p == lx->end) return lex_error(lx, line, col, "unterminated quoted string");
        char c = *lx->p;
        if (c == '\0') return error_here(lx, "unexpected NUL byte");
        if (c == '\\' && lx->p + 1 < lx->end) {
            int rc = skip_escape(lx);
            if (rc < 0) return rc;
            continue;
        }
        advance(lx);
        if (c == q) break;
    }
    /* nginx wants a separator after the closing quote: "a"b is an error. */
    if (lx->p < lx->end && !ends_word(*lx->p))
        return error_here(lx, "missing space after quoted string");
    return 0;
}

int conf_lex_next(conf_lex_t *lx, conf_tok_t *tok)
{
    int rc = 0;

    skip_blanks(lx);
    memset(tok, 0, sizeof(*tok));
    tok->raw = lx->p;
    tok->line = lx->line;
    tok->col = cur_col(lx);
    if (lx->p == lx->end) {
        tok->kind = CONF_TOK_EOF;
        return 0;
    }
    switch (*lx->p) {
    case ';':
        tok->kind = CONF_TOK_SEMI;
        lx->p++;
        break;
    case '{':
        tok->kind = CONF_TOK_LBRACE;
        lx->p++;
        break;
    case '}':
        tok->kind = CONF_TOK_RBRACE;
        lx->p++;
        break;
    case '"':
    case '\'':
        tok->kind = CONF_TOK_WORD;
        tok->quoted = true;
        rc = lex_quoted(lx);
        break;
    case '\0':
        return error_here(lx, "unexpected NUL byte");
    default:
        tok->kind = CONF_TOK_WORD;
        rc = lex_word(lx);
        break;
    }
    if (rc < 0) return rc;
    tok->rawlen = (size_t)(lx->p - tok->raw);
    return 0;
}

/* The byte a backslash escape stands for, or 0 if the pair is kept. */
char conf_unescape_byte(char c)
{
    switch (c) {
    case '"':
    case '\'':
    case '\\':
        return c;
    case 'n':
        return '\n';
    case 't':
        return '\t';
    case 'r':
        return '\r';
    default:
        return 0;
    }
}

char *conf_tok_value(pt_pool_t *pool, const conf_tok_t *tok, size_t *len)
{
    const char *s = tok->raw, *e = tok->raw + tok->rawlen;
    if (tok->quoted) { /* the lexer guarantees both quotes are there */
        s++;
        e--;
    }
    char *out = pt_pool_alloc(pool, (size_t)(e - s) + 1);
    if (out == NULL) return NULL;

    char *o = out;
    while (s < e) {
        if (*s == '\\' && s + 1 < e) {
            char u = conf_unescape_byte(s[1]);
            if (u != 0) {
                *o++ = u;
            } else {
                *o++ = s[0];
                *o++ = s[1];
            }
            s += 2;
        } else {
            *o++ = *s++;
        }
    }
    *o = '\0';
    if (len != NULL) *len = (size_t)(o - out);
    return out;
}
