/*
 * Configuration language internals, shared by conf_lex.c, conf_parse.c and
 * conf_walk.c. Not for use outside src/core (tests of core excepted).
 */
#ifndef PT_CORE_CONF_INTERNAL_H
#define PT_CORE_CONF_INTERNAL_H

#include <stdarg.h>

#include "core/core.h"

#define CONF_MAX_FILE_SIZE ((size_t)16 << 20) /* bytes per file or string */
#define CONF_MAX_NESTING 64                        /* { } blocks, across includes */
#define CONF_MAX_TOKENS 1024                       /* name + arguments of a directive */
#define CONF_MAX_INCLUDE_DEPTH 16                  /* include inside include ... */

/* One source text the doc keeps so errors can quote its lines. */
typedef struct conf_file {
    const char *path; /* as opened; node->file points here */
    const char *text; /* NUL-terminated copy */
    size_t len;
    struct conf_file *next;
} conf_file_t;

struct pt_conf_doc {
    pt_pool_t *pool;
    pt_conf_node_t root;
    conf_file_t *files; /* most recently added first */
};

/* ---- Lexer (conf_lex.c) ---- */

typedef enum {
    CONF_TOK_EOF,
    CONF_TOK_WORD,   /* bare word or quoted string */
    CONF_TOK_SEMI,   /* ; */
    CONF_TOK_LBRACE, /* { */
    CONF_TOK_RBRACE, /* } */
} conf_tok_kind_t;

typedef struct {
    conf_tok_kind_t kind;
    const char *raw; /* the token's bytes in the source, quotes included */
    size_t rawlen;
    bool quoted;
    uint32_t line, col;
} conf_tok_t;

typedef struct {
    const char *p, *end;
    const char *bol; /* first byte of the current line */
    uint32_t line;
    /* Set when conf_lex_next() fails. */
    char errmsg[64];
    uint32_t errline, errcol;
} conf_lex_t;

/* The byte a backslash escape stands for, or 0 if the pair is kept. */
char conf_unescape_byte(char c);

/* Starts lexing text[0..len). text must stay alive while tokens are used. */
void conf_lex_init(conf_lex_t *lx, const char *text, size_t len);
/*
 * Reads the next token into *tok (CONF_TOK_EOF at the end). Returns 0, or
 * -EINVAL with lx->errmsg/errline/errcol describing the syntax error.
 */
int conf_lex_next(conf_lex_t *lx, conf_tok_t *tok);
/*
 * Returns the value of a CONF_TOK_WORD token: quotes removed, escapes
 * \" \' \\ \n \t \r replaced (other backslash pairs kept as is), copied
 * NUL-terminated into pool. NULL on OOM.
 */
char *conf_tok_value(pt_pool_t *pool, const conf_tok_t *tok, size_t *len);

/* ---- Errors (conf_parse.c) ---- */

/* pt_conf_error_at() with a va_list. Returns -EINVAL. */
int conf_verror_at(const pt_conf_doc_t *doc, pt_conf_err_t *err, const char *file,
                   uint32_t line, uint32_t col, const char *fmt, va_list ap);

/* ---- Registry (conf_walk.c) ---- */

/* Forgets every registered table. For tests only. */
void conf_registry_reset(void);

#endif /* PT_CORE_CONF_INTERNAL_H */
