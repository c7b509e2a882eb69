/*
 * Configuration parser: tokens to a tree of pt_conf_node_t, `include`
 * expansion, and error formatting with the quoted source line.
 *
 * Everything (nodes, values, file texts) is allocated from the caller's
 * pool; on failure the partial tree simply stays in the pool. The only
 * malloc is glob(3)'s result, freed before the included files are parsed.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/conf_internal.h"

/* ------------------------------------------------------------------ */
/* Error formatting                                                    */
/* ------------------------------------------------------------------ */

/* Widest slice of a source line quoted under an error (bytes). */
#define QUOTE_WIDTH 160

typedef struct {
    char *buf;
    size_t cap, len; /* len < cap always; buf stays NUL-terminated */
} out_t;

static void out_bytes(out_t *o, const char *s, size_t n)
{
    size_t room = o->cap - 1 - o->len;
    if (n > room) n = room;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void out_str(out_t *o, const char *s)
{
    out_bytes(o, s, strlen(s));
}

static void out_char(out_t *o, char c)
{
    if (o->len + 1 < o->cap) {
        o->buf[o->len++] = c;
        o->buf[o->len] = '\0';
    }
}

static bool is_control(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

static bool is_utf8_continuation(unsigned char c)
{
    return (c & 0xc0) == 0x80;
}

static const conf_file_t *find_file(const pt_conf_doc_t *doc, const char *path)
{
    if (doc == NULL || path == NULL) return NULL;
    for (const conf_file_t *f = doc->files; f != NULL; f = f->next)
        if (f->path == path) return f;
    for (const conf_file_t *f = doc->files; f != NULL; f = f->next)
        if (strcmp(f->path, path) == 0) return f;
    return NULL;
}

/* Finds line number `line` (1-based) of f; false if the file is shorter. */
static bool find_line(const conf_file_t *f, uint32_t line, const char **start, size_t *len)
{
    const char *p = f->text, *end = f->text + f->len;
    for (uint32_t i = 1; i < line; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL) return false;
        p = nl + 1;
    }
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = (size_t)((nl != NULL ? nl : end) - p);
    if (n > 0 && p[n - 1] == '\r') n--;
    *start = p;
    *len = n;
    return true;
}

uint32_t pt_conf_arg_col(const pt_conf_doc_t *doc, const char *file, const pt_conf_arg_t *a,
                         size_t offset)
{
    const conf_file_t *f = find_file(doc, file);
    const char *line;
    size_t len;
    if (f == NULL || !find_line(f, a->line, &line, &len) || a->col == 0 || a->col > len + 1)
        return a->col + (uint32_t)offset;
    size_t raw = a->col - 1 + (a->quoted ? 1 : 0), done = 0;
    /* Walk the source as the lexer unescaped it: "\\x" pairs that stand for
     * one byte take two source columns. */
    while (done < offset && raw < len) {
        if (line[raw] == '\\' && raw + 1 < len) {
            bool one = conf_unescape_byte(line[raw + 1]) != 0;
            if (one || done + 1 == offset) {
                raw += one ? 2 : 1;
                done += 1;
                continue;
            }
            raw += 2;
            done += 2;
            continue;
        }
        raw++;
        done++;
    }
    return (uint32_t)raw + 1;
}

/*
 * Appends "\n<source line>\n<caret line>". The caret line repeats the tabs
 * of the source line so the caret lines up whatever the tab width, and
 * skips UTF-8 continuation bytes so it lines up after non-ASCII text too.
 * Long lines are cut to a window around the column, marked with "...".
 */
static void out_source_line(out_t *o, const conf_file_t *f, uint32_t line, uint32_t col)
{
    const char *s;
    size_t len;
    if (!find_line(f, line, &s, &len)) return;

    size_t ci = col > 0 ? col - 1 : 0;
    if (ci > len) ci = len;
    size_t from = 0, to = len;
    if (len > QUOTE_WIDTH) {
        from = ci > QUOTE_WIDTH / 2 ? ci - QUOTE_WIDTH / 2 : 0;
        while (from > 0 && is_utf8_continuation((unsigned char)s[from])) from--;
        to = pt_min(len, from + QUOTE_WIDTH);
    }

    out_char(o, '\n');
    if (from > 0) out_str(o, "...");
    for (size_t i = from; i < to; i++)
        out_char(o, is_control((unsigned char)s[i]) ? (char)'?' : s[i]);
    if (to < len) out_str(o, "...");

    out_char(o, '\n');
    if (from > 0) out_str(o, "   ");
    for (size_t i = from; i < ci; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\t')
            out_char(o, '\t');
        else if (!is_utf8_continuation(c))
            out_char(o, ' ');
    }
    out_char(o, '^');
}

int conf_verror_at(const pt_conf_doc_t *doc, pt_conf_err_t *err, const char *file,
                   uint32_t line, uint32_t col, const char *fmt, va_list ap)
{
    if (err == NULL) return -EINVAL;

    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    /* Values quoted in messages come from the file: keep the log one entry. */
    for (char *p = msg; *p != '\0'; p++)
        if (is_control((unsigned char)*p)) *p = '?';

    out_t o = {err->msg, sizeof(err->msg), 0};
    err->msg[0] = '\0';
    if (file != NULL && line > 0) {
        char pos[32];
        snprintf(pos, sizeof(pos), ":%" PRIu32 ":%" PRIu32 ": ", line, col);
        out_str(&o, file);
        out_str(&o, pos);
    } else if (file != NULL) {
        out_str(&o, file);
        out_str(&o, ": ");
    }
    out_str(&o, msg);

    const conf_file_t *f = find_file(doc, file);
    if (f != NULL && line > 0) out_source_line(&o, f, line, col);
    return -EINVAL;
}

int pt_conf_error_at(const pt_conf_doc_t *doc, pt_conf_err_t *err, const char *file,
                     uint32_t line, uint32_t col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = conf_verror_at(doc, err, file, line, col, fmt, ap);
    va_end(ap);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Parser state                                                        */
/* ------------------------------------------------------------------ */

typedef struct {
    pt_conf_doc_t *doc;
    pt_pool_t *pool;
    pt_conf_err_t *err;
} parser_t;

/* One file (or string) being parsed. */
typedef struct {
    parser_t *ps;
    const conf_file_t *file;
    conf_lex_t lx;
    int include_depth; /* 0 for the main file */
} source_t;

/* Where an include was asked for, to point file errors at it. */
typedef struct {
    const char *file;
    uint32_t line, col;
} origin_t;

static int parse_items(source_t *src, pt_array_t *out, int nest, const pt_conf_node_t *owner);

static int error_at_tok(source_t *src, const conf_tok_t *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int error_at_tok(source_t *src, const conf_tok_t *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = conf_verror_at(src->ps->doc, src->ps->err, src->file->path, t->line, t->col, fmt, ap);
    va_end(ap);
    return rc;
}

static int error_at_node(source_t *src, const pt_conf_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int error_at_node(source_t *src, const pt_conf_node_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = conf_verror_at(src->ps->doc, src->ps->err, n->file, n->line, n->col, fmt, ap);
    va_end(ap);
    return rc;
}

static int oom(parser_t *ps)
{
    snprintf(ps->err->msg, sizeof(ps->err->msg), "out of memory while parsing configuration");
    return -ENOMEM;
}

/* Reports a problem with a whole file, at the include that named it if any. */
static int file_error(parser_t *ps, const origin_t *at, const char *path, const char *what,
                      int rc)
{
    char detail[128];
    if (rc == -EFBIG)
        snprintf(detail, sizeof(detail), "file too large (max %zu MiB)", CONF_MAX_FILE_SIZE >> 20);
    else
        snprintf(detail, sizeof(detail), "%s: %s", what, strerror(-rc));
    if (at != NULL)
        pt_conf_error_at(ps->doc, ps->err, at->file, at->line, at->col, "%s: %s", path, detail);
    else
        snprintf(ps->err->msg, sizeof(ps->err->msg), "%s: %s", path, detail);
    return rc;
}

static int lex_next(source_t *src, conf_tok_t *t)
{
    int rc = conf_lex_next(&src->lx, t);
    if (rc < 0)
        return pt_conf_error_at(src->ps->doc, src->ps->err, src->file->path, src->lx.errline,
                                src->lx.errcol, "%s", src->lx.errmsg);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Files                                                               */
/* ------------------------------------------------------------------ */

/* Adds a copy of text to the doc's file list. NULL on OOM. */
static const conf_file_t *add_file(parser_t *ps, const char *path, char *text, size_t len)
{
    conf_file_t *f = pt_pool_calloc(ps->pool, 1, sizeof(*f));
    char *p = pt_pool_strdup(ps->pool, path);
    if (f == NULL || p == NULL) return NULL;
    f->path = p;
    f->text = text;
    f->len = len;
    f->next = ps->doc->files;
    ps->doc->files = f;
    return f;
}

/* Reads all of fd into a NUL-terminated pool buffer. 0 or -errno/-EFBIG/-ENOMEM. */
static int read_all(pt_pool_t *pool, int fd, size_t hint, char **text, size_t *len)
{
    size_t cap = hint > 0 ? hint : 4096, n = 0;
    char *buf = pt_pool_alloc(pool, cap + 1);
    if (buf == NULL) return -ENOMEM;

    for (;;) {
        if (n == cap) {
            if (cap > CONF_MAX_FILE_SIZE) return -EFBIG;
            size_t ncap = pt_min(cap * 2, CONF_MAX_FILE_SIZE + 1);
            char *nbuf = pt_pool_alloc(pool, ncap + 1);
            if (nbuf == NULL) return -ENOMEM;
            memcpy(nbuf, buf, n);
            buf = nbuf;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -errno;
        if (r == 0) break;
        n += (size_t)r;
    }
    if (n > CONF_MAX_FILE_SIZE) return -EFBIG;
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

/* Reads path; on failure *what says which step failed ("cannot open"...). */
static int load_file(pt_pool_t *pool, const char *path, char **text, size_t *len,
                     const char **what)
{
    *what = "cannot open";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;

    *what = "cannot read";
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
    } else if (S_ISDIR(st.st_mode)) {
        rc = -EISDIR;
    } else if (S_ISREG(st.st_mode) && st.st_size > (off_t)CONF_MAX_FILE_SIZE) {
        rc = -EFBIG;
    } else {
        /* +1 so the read that sees EOF needs no second buffer. */
        size_t hint = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 0;
        rc = read_all(pool, fd, hint, text, len);
    }
    close(fd);
    return rc;
}

static int parse_text(parser_t *ps, const conf_file_t *f, int include_depth, pt_array_t *out,
                      int nest)
{
    source_t src = {.ps = ps, .file = f, .include_depth = include_depth};
    conf_lex_init(&src.lx, f->text, f->len);
    return parse_items(&src, out, nest, NULL);
}

/* Parses the file at path; its top-level directives are appended to out. */
static int parse_path(parser_t *ps, const char *path, const origin_t *at, int include_depth,
                      pt_array_t *out, int nest)
{
    char *text = NULL;
    size_t len = 0;
    const char *what;
    int rc = load_file(ps->pool, path, &text, &len, &what);
    if (rc == -ENOMEM) return oom(ps);
    if (rc < 0) return file_error(ps, at, path, what, rc);

    const conf_file_t *f = add_file(ps, path, text, len);
    if (f == NULL) return oom(ps);
    return parse_text(ps, f, include_depth, out, nest);
}

/* ------------------------------------------------------------------ */
/* include                                                             */
/* ------------------------------------------------------------------ */

static bool has_wildcard(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

/*
 * Builds the glob pattern and the plain path for an include argument:
 * relative names are relative to the including file's directory, whose
 * own glob characters are escaped so only the argument's wildcards count.
 */
static int include_paths(pt_pool_t *pool, const char *including, const char *arg,
                         char **pattern, char **plain)
{
    const char *slash = strrchr(including, '/');
    size_t dirlen = (arg[0] == '/' || slash == NULL) ? 0 : (size_t)(slash - including) + 1;
    size_t alen = strlen(arg);

    *plain = pt_pool_alloc(pool, dirlen + alen + 1);
    *pattern = pt_pool_alloc(pool, 2 * dirlen + alen + 1);
    if (*plain == NULL || *pattern == NULL) return -ENOMEM;

    memcpy(*plain, including, dirlen);
    memcpy(*plain + dirlen, arg, alen + 1);
    char *p = *pattern;
    for (size_t i = 0; i < dirlen; i++) {
        if (strchr("*?[\\", including[i]) != NULL) *p++ = '\\';
        *p++ = including[i];
    }
    memcpy(p, arg, alen + 1);
    return 0;
}

static int cmp_paths(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs glob(3) and copies the sorted matches into the pool. */
static int expand_glob(pt_pool_t *pool, const char *pattern, char ***paths, size_t *n)
{
    glob_t g;
    memset(&g, 0, sizeof(g));
    int grc = glob(pattern, GLOB_NOSORT, NULL, &g);
    *paths = NULL;
    *n = 0;
    if (grc == GLOB_NOMATCH) {
        globfree(&g);
        return 0;
    }
    if (grc != 0) {
        globfree(&g);
        return grc == GLOB_NOSPACE ? -ENOMEM : -EIO;
    }

    int rc = 0;
    char **v = pt_pool_calloc(pool, g.gl_pathc > 0 ? g.gl_pathc : 1, sizeof(char *));
    if (v == NULL) rc = -ENOMEM;
    for (size_t i = 0; rc == 0 && i < g.gl_pathc; i++) {
        v[i] = pt_pool_strdup(pool, g.gl_pathv[i]);
        if (v[i] == NULL) rc = -ENOMEM;
    }
    if (rc == 0) {
        /* Our own sort: glob's uses strcoll, which depends on the locale. */
        qsort(v, g.gl_pathc, sizeof(char *), cmp_paths);
        *paths = v;
        *n = g.gl_pathc;
    }
    globfree(&g);
    return rc;
}

static int parse_include(source_t *src, const pt_conf_node_t *node, bool has_block,
                         pt_array_t *out, int nest)
{
    parser_t *ps = src->ps;

    if (has_block)
        return error_at_node(src, node, "directive \"include\" is not terminated by \";\"");
    if (node->nargs != 1)
        return error_at_node(src, node, "invalid number of arguments in \"include\" directive");

    const pt_conf_arg_t *arg = &node->args[0];
    origin_t at = {node->file, arg->line, arg->col};
    if (src->include_depth >= CONF_MAX_INCLUDE_DEPTH)
        return pt_conf_error_at(ps->doc, ps->err, at.file, at.line, at.col,
                                "too many nested includes (max %d), is there an include cycle?",
                                CONF_MAX_INCLUDE_DEPTH);

    char *pattern, *plain;
    if (include_paths(ps->pool, node->file, arg->val, &pattern, &plain) < 0) return oom(ps);

    char **paths;
    size_t n;
    int rc = expand_glob(ps->pool, pattern, &paths, &n);
    if (rc == -ENOMEM) return oom(ps);
    if (rc < 0)
        return pt_conf_error_at(ps->doc, ps->err, at.file, at.line, at.col,
                                "cannot expand include pattern \"%s\"", plain);
    if (n == 0 && !has_wildcard(arg->val))
        return pt_conf_error_at(ps->doc, ps->err, at.file, at.line, at.col,
                                "include file not found: \"%s\"", plain);

    for (size_t i = 0; i < n; i++) {
        rc = parse_path(ps, paths[i], &at, src->include_depth + 1, out, nest);
        if (rc < 0) return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Directives and blocks                                               */
/* ------------------------------------------------------------------ */

static int push_node(parser_t *ps, pt_array_t *out, const pt_conf_node_t *node)
{
    pt_conf_node_t *slot = pt_array_push(out);
    if (slot == NULL) return oom(ps);
    *slot = *node;
    return 0;
}

static int add_arg(source_t *src, pt_array_t *args, const conf_tok_t *t)
{
    pt_conf_arg_t *a = pt_array_push(args);
    if (a == NULL) return oom(src->ps);
    a->val = conf_tok_value(src->ps->pool, t, &a->len);
    if (a->val == NULL) return oom(src->ps);
    a->line = t->line;
    a->col = t->col;
    a->quoted = t->quoted;
    return 0;
}

/*
 * Reads the arguments after a directive's name up to ';' or '{'. Sets
 * *block when it stopped at '{' (left in *brace for error positions).
 */
static int parse_args(source_t *src, pt_conf_node_t *node, bool *block, conf_tok_t *brace)
{
    pt_array_t args;
    if (pt_array_init(&args, src->ps->pool, sizeof(pt_conf_arg_t), 0) < 0) return oom(src->ps);

    for (;;) {
        conf_tok_t t;
        int rc = lex_next(src, &t);
        if (rc < 0) return rc;
        switch (t.kind) {
        case CONF_TOK_WORD:
            if (args.n + 1 >= CONF_MAX_TOKENS)
                return error_at_tok(src, &t, "too many arguments in \"%s\" directive (max %d)",
                                    node->name, CONF_MAX_TOKENS - 1);
            rc = add_arg(src, &args, &t);
            if (rc < 0) return rc;
            break;
        case CONF_TOK_SEMI:
        case CONF_TOK_LBRACE:
            node->args = args.items;
            node->nargs = args.n;
            *block = t.kind == CONF_TOK_LBRACE;
            *brace = t;
            return 0;
        case CONF_TOK_RBRACE:
            return error_at_tok(src, &t, "unexpected \"}\"");
        case CONF_TOK_EOF:
            return error_at_node(src, node, "unexpected end of file, expecting \";\" or \"{\"");
        }
    }
}

/* Parses one directive whose name is *name; appends it (or what it includes). */
static int parse_directive(source_t *src, const conf_tok_t *name, pt_array_t *out, int nest)
{
    parser_t *ps = src->ps;
    pt_conf_node_t node = {
        .file = src->file->path,
        .line = name->line,
        .col = name->col,
    };
    node.name = conf_tok_value(ps->pool, name, NULL);
    if (node.name == NULL) return oom(ps);

    bool block = false;
    conf_tok_t brace = {0};
    int rc = parse_args(src, &node, &block, &brace);
    if (rc < 0) return rc;

    if (strcmp(node.name, "include") == 0) return parse_include(src, &node, block, out, nest);

    if (block) {
        if (nest >= CONF_MAX_NESTING)
            return error_at_tok(src, &brace, "blocks nested too deeply (max %d)", CONF_MAX_NESTING);
        pt_array_t kids;
        if (pt_array_init(&kids, ps->pool, sizeof(pt_conf_node_t), 0) < 0) return oom(ps);
        rc = parse_items(src, &kids, nest + 1, &node);
        if (rc < 0) return rc;
        node.block = true;
        node.children = kids.items;
        node.nchildren = kids.n;
    }
    return push_node(ps, out, &node);
}

/*
 * Parses directives into out until the '}' closing owner's block, or until
 * the end of the file when owner is NULL (file level).
 */
static int parse_items(source_t *src, pt_array_t *out, int nest, const pt_conf_node_t *owner)
{
    for (;;) {
        conf_tok_t t;
        int rc = lex_next(src, &t);
        if (rc < 0) return rc;
        switch (t.kind) {
        case CONF_TOK_WORD:
            rc = parse_directive(src, &t, out, nest);
            if (rc < 0) return rc;
            break;
        case CONF_TOK_RBRACE:
            if (owner == NULL) return error_at_tok(src, &t, "unexpected \"}\"");
            return 0;
        case CONF_TOK_SEMI:
            return error_at_tok(src, &t, "unexpected \";\"");
        case CONF_TOK_LBRACE:
            return error_at_tok(src, &t, "unexpected \"{\"");
        case CONF_TOK_EOF:
            if (owner == NULL) return 0;
            return error_at_node(src, owner, "unexpected end of file, expecting \"}\"");
        }
    }
}

/* ------------------------------------------------------------------ */
/* Public API                                                          */
/* ------------------------------------------------------------------ */

static int begin(parser_t *ps, pt_pool_t *pool, pt_conf_err_t *err, const char *path)
{
    ps->pool = pool;
    ps->err = err;
    err->msg[0] = '\0';
    ps->doc = pt_pool_calloc(pool, 1, sizeof(pt_conf_doc_t));
    if (ps->doc == NULL) return oom(ps);
    ps->doc->pool = pool;
    pt_conf_node_t *root = &ps->doc->root;
    root->file = pt_pool_strdup(pool, path);
    root->name = pt_pool_strdup(pool, "");
    if (root->file == NULL || root->name == NULL) return oom(ps);
    root->line = 1;
    root->col = 1;
    root->block = true;
    return 0;
}

static int finish(parser_t *ps, pt_array_t *top, int rc, pt_conf_doc_t **out)
{
    if (rc < 0) return rc;
    ps->doc->root.children = top->items;
    ps->doc->root.nchildren = top->n;
    *out = ps->doc;
    return 0;
}

int pt_conf_parse_file(pt_pool_t *pool, const char *path, pt_conf_doc_t **out,
                       pt_conf_err_t *err)
{
    pt_conf_err_t scratch;
    parser_t ps;
    pt_array_t top;

    if (err == NULL) err = &scratch;
    if (out != NULL) *out = NULL;
    if (pool == NULL || path == NULL || out == NULL) {
        snprintf(err->msg, sizeof(err->msg), "invalid arguments to pt_conf_parse_file");
        return -EINVAL;
    }
    int rc = begin(&ps, pool, err, path);
    if (rc < 0) return rc;
    if (pt_array_init(&top, pool, sizeof(pt_conf_node_t), 0) < 0) return oom(&ps);
    rc = parse_path(&ps, path, NULL, 0, &top, 0);
    return finish(&ps, &top, rc, out);
}

int pt_conf_parse_string(pt_pool_t *pool, const char *name, const char *text, size_t len,
                         pt_conf_doc_t **out, pt_conf_err_t *err)
{
    pt_conf_err_t scratch;
    parser_t ps;
    pt_array_t top;

    if (err == NULL) err = &scratch;
    if (out != NULL) *out = NULL;
    if (name == NULL) name = "<string>";
    if (pool == NULL || out == NULL || (text == NULL && len > 0)) {
        snprintf(err->msg, sizeof(err->msg), "invalid arguments to pt_conf_parse_string");
        return -EINVAL;
    }
    int rc = begin(&ps, pool, err, name);
    if (rc < 0) return rc;
    if (len > CONF_MAX_FILE_SIZE) return file_error(&ps, NULL, name, "", -EFBIG);
    if (pt_array_init(&top, pool, sizeof(pt_conf_node_t), 0) < 0) return oom(&ps);

    /* Not strndup: a NUL byte in text must reach the lexer (and be refused). */
    char *copy = pt_pool_alloc(pool, len + 1);
    if (copy == NULL) return oom(&ps);
    if (len > 0) memcpy(copy, text, len);
    copy[len] = '\0';
    const conf_file_t *f = add_file(&ps, name, copy, len);
    if (f == NULL) return oom(&ps);
    rc = parse_text(&ps, f, 0, &top, 0);
    return finish(&ps, &top, rc, out);
}

const pt_conf_node_t *pt_conf_root(const pt_conf_doc_t *doc)
{
    return doc != NULL ? &doc->root : NULL;
}
