/*
 * Unit tests: configuration language (src/core/conf_lex.c, conf_parse.c,
 * conf_walk.c). Error messages are compared byte for byte, caret line
 * included, because they are what users read.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/conf_internal.h"
#include "core/core.h"

#ifndef PT_TEST_DATA_DIR
#error "PT_TEST_DATA_DIR must point at tests/unit/data"
#endif
#define CONF_DIR PT_TEST_DATA_DIR "/conf"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

typedef struct {
    pt_pool_t *pool;
    pt_conf_doc_t *doc;
    pt_conf_err_t err;
    char tmpdir[64];
} fx_t;

static int fx_setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    fx->pool = pt_pool_create(0);
    assert_non_null(fx->pool);
    *state = fx;
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int fx_teardown(void **state)
{
    fx_t *fx = *state;
    pt_pool_destroy(fx->pool);
    if (fx->tmpdir[0] != '\0') nftw(fx->tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

/* Parses text named "t.conf"; returns the rc. */
static int parse(fx_t *fx, const char *text)
{
    return pt_conf_parse_string(fx->pool, "t.conf", text, strlen(text), &fx->doc, &fx->err);
}

static const pt_conf_node_t *parse_ok(fx_t *fx, const char *text)
{
    int rc = parse(fx, text);
    if (rc != 0) fprintf(stderr, "unexpected error: %s\n", fx->err.msg);
    assert_int_equal(rc, 0);
    assert_non_null(fx->doc);
    return pt_conf_root(fx->doc);
}

static void expect_error(fx_t *fx, const char *text, const char *msg)
{
    assert_int_equal(parse(fx, text), -EINVAL);
    assert_null(fx->doc);
    assert_string_equal(fx->err.msg, msg);
}

static const char *tmpdir(fx_t *fx)
{
    if (fx->tmpdir[0] == '\0') {
        strcpy(fx->tmpdir, "/tmp/pt_conf_test_XXXXXX");
        assert_non_null(mkdtemp(fx->tmpdir));
    }
    return fx->tmpdir;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* ------------------------------------------------------------------ */
/* Structure                                                           */
/* ------------------------------------------------------------------ */

static void test_empty_and_comments(void **state)
{
    fx_t *fx = *state;
    const pt_conf_node_t *root = parse_ok(fx, "");
    assert_int_equal(root->nchildren, 0);
    assert_true(root->block);
    assert_string_equal(root->name, "");
    assert_string_equal(root->file, "t.conf");

    root = parse_ok(fx, "# only a comment\n   \t\r\n# another ; { } \" '\n");
    assert_int_equal(root->nchildren, 0);

    /* NULL text with len 0 is an empty config; NULL name gets a default. */
    assert_int_equal(pt_conf_parse_string(fx->pool, NULL, NULL, 0, &fx->doc, &fx->err), 0);
    assert_int_equal(pt_conf_root(fx->doc)->nchildren, 0);
    assert_string_equal(pt_conf_root(fx->doc)->file, "<string>");
    assert_null(pt_conf_root(NULL));
}

static void test_nested_blocks(void **state)
{
    fx_t *fx = *state;
    const pt_conf_node_t *root = parse_ok(fx,
                                          "workers 4;\n"
                                          "http {\n"
                                          "  server {\n"
                                          "    listen 127.0.0.1:8080 reuseport;\n"
                                          "    location / { }\n"
                                          "  }\n"
                                          "}\n");
    assert_int_equal(root->nchildren, 2);

    const pt_conf_node_t *w = &root->children[0];
    assert_string_equal(w->name, "workers");
    assert_string_equal(w->file, "t.conf");
    assert_int_equal(w->line, 1);
    assert_int_equal(w->col, 1);
    assert_false(w->block);
    assert_int_equal(w->nargs, 1);
    assert_string_equal(w->args[0].val, "4");
    assert_int_equal(w->args[0].len, 1);
    assert_int_equal(w->args[0].line, 1);
    assert_int_equal(w->args[0].col, 9);
    assert_false(w->args[0].quoted);

    const pt_conf_node_t *http = &root->children[1];
    assert_string_equal(http->name, "http");
    assert_true(http->block);
    assert_int_equal(http->nargs, 0);
    assert_int_equal(http->nchildren, 1);

    const pt_conf_node_t *srv = &http->children[0];
    assert_string_equal(srv->name, "server");
    assert_int_equal(srv->line, 3);
    assert_int_equal(srv->col, 3);
    assert_int_equal(srv->nchildren, 2);

    const pt_conf_node_t *listen = &srv->children[0];
    assert_string_equal(listen->name, "listen");
    assert_int_equal(listen->nargs, 2);
    assert_string_equal(listen->args[0].val, "127.0.0.1:8080");
    assert_string_equal(listen->args[1].val, "reuseport");
    assert_int_equal(listen->args[1].line, 4);
    assert_int_equal(listen->args[1].col, 27);

    const pt_conf_node_t *loc = &srv->children[1];
    assert_string_equal(loc->name, "location");
    assert_true(loc->block);
    assert_int_equal(loc->nargs, 1);
    assert_string_equal(loc->args[0].val, "/");
    assert_int_equal(loc->nchildren, 0);
}

static void test_tokens_without_spaces(void **state)
{
    fx_t *fx = *state;
    const pt_conf_node_t *root = parse_ok(fx, "a{b c;d;}e;'f';");
    assert_int_equal(root->nchildren, 3);
    assert_string_equal(root->children[0].name, "a");
    assert_int_equal(root->children[0].nchildren, 2);
    assert_string_equal(root->children[0].children[0].name, "b");
    assert_string_equal(root->children[0].children[0].args[0].val, "c");
    assert_string_equal(root->children[0].children[1].name, "d");
    assert_string_equal(root->children[1].name, "e");
    assert_int_equal(root->children[1].col, 10);
    assert_string_equal(root->children[2].name, "f");
    assert_int_equal(root->children[2].col, 12);
}

static void test_quoted_strings(void **state)
{
    fx_t *fx = *state;
    const pt_conf_node_t *root = parse_ok(fx, "a \"x y\" 'z' \"\" '' \"it's\" 'say \"hi\"';");
    const pt_conf_node_t *a = &root->children[0];
    assert_int_equal(a->nargs, 6);
    assert_string_equal(a->args[0].val, "x y");
    assert_int_equal(a->args[0].len, 3);
    assert_true(a->args[0].quoted);
    assert_int_equal(a->args[0].col, 3);
    assert_string_equal(a->args[1].val, "z");
    assert_int_equal(a->args[1].col, 9);
    assert_string_equal(a->args[2].val, "");
    assert_int_equal(a->args[2].len, 0);
    assert_true(a->args[2].quoted);
    assert_string_equal(a->args[3].val, "");
    assert_string_equal(a->args[4].val, "it's");
    assert_string_equal(a->args[5].val, "say \"hi\"");

    /* Quoted names are allowed, like nginx. */
    root = parse_ok(fx, "\"my name\" 1;");
    assert_string_equal(root->children[0].name, "my name");

    /* A string may span lines; positions after it follow the newlines. */
    root = parse_ok(fx, "a \"x\ny\" b;\nc;");
    a = &root->children[0];
    assert_string_equal(a->args[0].val, "x\ny");
    assert_int_equal(a->args[1].line, 2);
    assert_int_equal(a->args[1].col, 4);
    assert_int_equal(root->children[1].line, 3);
    assert_int_equal(root->children[1].col, 1);

    /* '#' inside quotes is not a comment; braces and ';' are plain bytes. */
    root = parse_ok(fx, "a \"#x;{}\" '#';");
    assert_string_equal(root->children[0].args[0].val, "#x;{}");
    assert_string_equal(root->children[0].args[1].val, "#");

    /* A closing quote may be followed by ; { } # or a space. */
    root = parse_ok(fx, "a \"x\"{b 'y';}c \"z\"#comment\n;");
    assert_int_equal(root->nchildren, 2);
    assert_string_equal(root->children[0].args[0].val, "x");
    assert_string_equal(root->children[0].children[0].args[0].val, "y");
    assert_string_equal(root->children[1].args[0].val, "z");
    /* ('}' is fine for the lexer; the parser then wants a ';' first.) */
    expect_error(fx, "a 'y'}", "t.conf:1:6: unexpected \"}\"\na 'y'}\n     ^");
}

static void test_escapes(void **state)
{
    fx_t *fx = *state;
    const pt_conf_node_t *root =
        parse_ok(fx, "a \"q\\\"q\" 'q\\'q' \"b\\\\s\" \"n\\nt\\tr\\r\" \"\\d\\.\" \"\\x\" "
                     "'\\\"' \"\\'\" \"end\\\\\";");
    const pt_conf_node_t *a = &root->children[0];
    assert_int_equal(a->nargs, 9);
    assert_string_equal(a->args[0].val, "q\"q");
    assert_string_equal(a->args[1].val, "q'q");
    assert_string_equal(a->args[2].val, "b\\s");
    assert_string_equal(a->args[3].val, "n\nt\tr\r");
    assert_int_equal(a->args[3].len, 6);
    assert_string_equal(a->args[4].val, "\\d\\.");
    assert_string_equal(a->args[5].val, "\\x");
    assert_string_equal(a->args[6].val, "\"");
    assert_string_equal(a->args[7].val, "'");
    assert_string_equal(a->args[8].val, "end\\");

    /* Bare words: same escapes; a backslash protects the next byte. */
    root = parse_ok(fx, "w\\\"x a\\ b c\\;d ~\\.php$ e\\\\ f\\n;");
    a = &root->children[0];
    assert_string_equal(a->name, "w\"x");
    assert_int_equal(a->nargs, 5);
    assert_string_equal(a->args[0].val, "a\\ b");
    assert_string_equal(a->args[1].val, "c\\;d");
    assert_string_equal(a->args[2].val, "~\\.php$");
    assert_string_equal(a->args[3].val, "e\\");
    assert_string_equal(a->args[4].val, "f\n");
}

static void test_comments_and_variables(void **state)
{
    fx_t *fx = *state;
    const pt_conf_node_t *root = parse_ok(fx,
                                          "a b#comment ; {\n"
                                          ";  # the ; above ends a\n"
                                          "  # indented comment\n"
                                          "set $x ${host}y $z;\n");
    assert_int_equal(root->nchildren, 2);
    assert_int_equal(root->children[0].nargs, 1);
    assert_string_equal(root->children[0].args[0].val, "b");
    const pt_conf_node_t *set = &root->children[1];
    assert_int_equal(set->line, 4);
    assert_int_equal(set->nargs, 3);
    assert_string_equal(set->args[0].val, "$x");
    assert_string_equal(set->args[1].val, "${host}y");
    assert_string_equal(set->args[2].val, "$z");

    /* "${" without a closing brace ends at the usual separators. */
    root = parse_ok(fx, "a ${b;");
    assert_string_equal(root->children[0].args[0].val, "${b");
}

static void test_crlf(void **state)
{
    fx_t *fx = *state;
    const pt_conf_node_t *root = parse_ok(fx, "a 1;\r\nb {\r\n  c;\r\n}\r\n");
    assert_int_equal(root->nchildren, 2);
    assert_int_equal(root->children[1].line, 2);
    assert_int_equal(root->children[1].children[0].line, 3);
    assert_int_equal(root->children[1].children[0].col, 3);
    expect_error(fx, "a b\r\n}\r\n", "t.conf:2:1: unexpected \"}\"\n}\n^");
}

/* ------------------------------------------------------------------ */
/* Syntax errors                                                       */
/* ------------------------------------------------------------------ */

static void test_error_unexpected_tokens(void **state)
{
    fx_t *fx = *state;
    expect_error(fx, "a;\n}", "t.conf:2:1: unexpected \"}\"\n}\n^");
    expect_error(fx, "a b }", "t.conf:1:5: unexpected \"}\"\na b }\n    ^");
    expect_error(fx, "x { a b }\n}", "t.conf:1:9: unexpected \"}\"\nx { a b }\n        ^");
    expect_error(fx, "  { a; }", "t.conf:1:3: unexpected \"{\"\n  { a; }\n  ^");
    expect_error(fx, "a;\n ;", "t.conf:2:2: unexpected \";\"\n ;\n ^");
    expect_error(fx, "a { ; }", "t.conf:1:5: unexpected \";\"\na { ; }\n    ^");
}

static void test_error_eof(void **state)
{
    fx_t *fx = *state;
    expect_error(fx, "worker 4",
                 "t.conf:1:1: unexpected end of file, expecting \";\" or \"{\"\nworker 4\n^");
    expect_error(fx, "a;\n  b c\n  d",
                 "t.conf:2:3: unexpected end of file, expecting \";\" or \"{\"\n  b c\n  ^");
    /* The innermost unterminated block is the one reported. */
    expect_error(fx, "http {\n  server {\n    listen 80;\n",
                 "t.conf:2:3: unexpected end of file, expecting \"}\"\n  server {\n  ^");
    expect_error(fx, "http {\n  server { }\n",
                 "t.conf:1:1: unexpected end of file, expecting \"}\"\nhttp {\n^");
}

static void test_error_strings(void **state)
{
    fx_t *fx = *state;
    expect_error(fx, "a \"bc\n d;", "t.conf:1:3: unterminated quoted string\na \"bc\n  ^");
    expect_error(fx, "a\n  'x\\'", "t.conf:2:3: unterminated quoted string\n  'x\\'\n  ^");
    expect_error(fx, "a \"x\\", "t.conf:1:3: unterminated quoted string\na \"x\\\n  ^");
    expect_error(fx, "a b\"c;",
                 "t.conf:1:4: unexpected quote in the middle of a word\na b\"c;\n   ^");
    expect_error(fx, "a b'c';",
                 "t.conf:1:4: unexpected quote in the middle of a word\na b'c';\n   ^");
    expect_error(fx, "a \"b\"c;",
                 "t.conf:1:6: missing space after quoted string\na \"b\"c;\n     ^");
    expect_error(fx, "a 'b''c';",
                 "t.conf:1:6: missing space after quoted string\na 'b''c';\n     ^");
}

static void test_error_nul_byte(void **state)
{
    fx_t *fx = *state;
    static const char *const texts[] = {"a\0;", "a \"\0\";", "a\\\0;", "\0"};
    static const size_t lens[] = {3, 6, 4, 1};
    static const char *const msgs[] = {
        "t.conf:1:2: unexpected NUL byte\na?;\n ^",
        "t.conf:1:4: unexpected NUL byte\na \"?\";\n   ^",
        "t.conf:1:3: unexpected NUL byte\na\\?;\n  ^",
        "t.conf:1:1: unexpected NUL byte\n?\n^",
    };
    for (size_t i = 0; i < pt_countof(texts); i++) {
        assert_int_equal(
            pt_conf_parse_string(fx->pool, "t.conf", texts[i], lens[i], &fx->doc, &fx->err),
            -EINVAL);
        assert_string_equal(fx->err.msg, msgs[i]);
    }
    /* In a comment it is harmless. */
    assert_int_equal(pt_conf_parse_string(fx->pool, "t.conf", "#\0\na;", 5, &fx->doc, &fx->err),
                     0);
    assert_int_equal(pt_conf_root(fx->doc)->nchildren, 1);
}

static void test_error_caret_tabs_utf8(void **state)
{
    fx_t *fx = *state;
    /* Tabs are kept in the source line and repeated in the caret line. */
    expect_error(fx, "\tfoo\tb\"x;", "t.conf:1:7: unexpected quote in the middle of a word\n"
                                     "\tfoo\tb\"x;\n"
                                     "\t   \t ^");
    /* "é" is two bytes (column 5 is the quote) but one column on screen. */
    expect_error(fx, "a \xc3\xa9\"x;",
                 "t.conf:1:5: unexpected quote in the middle of a word\n"
                 "a \xc3\xa9\"x;\n"
                 "   ^");
    /* Other control bytes are shown as '?'. */
    expect_error(fx, "a\x01 b }", "t.conf:1:6: unexpected \"}\"\na? b }\n     ^");
}

static void test_error_long_lines(void **state)
{
    fx_t *fx = *state;
    char text[512], want[1024];

    /* Error far right: the window starts 80 bytes before the column. */
    size_t n = (size_t)snprintf(text, sizeof(text), "a ");
    memset(text + n, 'b', 250);
    n += 250;
    snprintf(text + n, sizeof(text) - n, " c\"d;"); /* the quote is column 255 */
    n = (size_t)snprintf(want, sizeof(want),
                         "t.conf:1:255: unexpected quote in the middle of a word\n...%s\n   ",
                         text + 174);
    memset(want + n, ' ', 80);
    snprintf(want + n + 80, sizeof(want) - n - 80, "^");
    expect_error(fx, text, want);

    /* Error near the left: the line is cut at 160 bytes. */
    n = (size_t)snprintf(text, sizeof(text), "a\"");
    memset(text + n, 'x', 300);
    text[n + 300] = '\0';
    n = (size_t)snprintf(want, sizeof(want),
                         "t.conf:1:2: unexpected quote in the middle of a word\n%.160s...\n ^",
                         text);
    expect_error(fx, text, want);
}

static void test_nesting_limit(void **state)
{
    fx_t *fx = *state;
    char *text = malloc(65 * 4 + 65 * 2 + 1);
    assert_non_null(text);

    /* 64 levels are fine. */
    char *p = text;
    for (int i = 0; i < 64; i++) p += sprintf(p, "a {\n");
    for (int i = 0; i < 64; i++) p += sprintf(p, "}\n");
    const pt_conf_node_t *node = parse_ok(fx, text);
    int depth = 0;
    while (node->nchildren == 1) {
        node = &node->children[0];
        depth++;
    }
    assert_int_equal(depth, 64);

    /* The 65th '{' is refused. */
    p = text;
    for (int i = 0; i < 65; i++) p += sprintf(p, "a {\n");
    for (int i = 0; i < 65; i++) p += sprintf(p, "}\n");
    expect_error(fx, text, "t.conf:65:3: blocks nested too deeply (max 64)\na {\n  ^");
    free(text);
}

static void test_token_limit(void **state)
{
    fx_t *fx = *state;
    char *text = malloc(2 + 1024 * 2 + 2);
    assert_non_null(text);

    /* name + 1023 arguments = 1024 tokens: fine. */
    char *p = text;
    p += sprintf(p, "a\n");
    for (int i = 0; i < 1023; i++) p += sprintf(p, "x\n");
    p += sprintf(p, ";");
    const pt_conf_node_t *root = parse_ok(fx, text);
    assert_int_equal(root->children[0].nargs, 1023);
    assert_int_equal(root->children[0].args[1022].line, 1024);

    /* One more is refused, at the argument that is too many. */
    p = text;
    p += sprintf(p, "a\n");
    for (int i = 0; i < 1024; i++) p += sprintf(p, "x\n");
    p += sprintf(p, ";");
    expect_error(fx, text, "t.conf:1025:1: too many arguments in \"a\" directive (max 1023)\nx\n^");
    free(text);
}

static void test_size_limit(void **state)
{
    fx_t *fx = *state;
    size_t big = 16u * 1024 * 1024 + 1;
    char *text = malloc(big);
    assert_non_null(text);
    memset(text, ' ', big);
    assert_int_equal(pt_conf_parse_string(fx->pool, "big.conf", text, big, &fx->doc, &fx->err),
                     -EFBIG);
    assert_string_equal(fx->err.msg, "big.conf: file too large (max 16 MiB)");
    /* Exactly 16 MiB is accepted. */
    assert_int_equal(
        pt_conf_parse_string(fx->pool, "big.conf", text, big - 1, &fx->doc, &fx->err), 0);
    free(text);

    /* Same limit for files. */
    char path[128];
    snprintf(path, sizeof(path), "%s/big.conf", tmpdir(fx));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)big), 0);
    assert_int_equal(close(fd), 0);
    assert_int_equal(pt_conf_parse_file(fx->pool, path, &fx->doc, &fx->err), -EFBIG);
    char want[256];
    snprintf(want, sizeof(want), "%s: file too large (max 16 MiB)", path);
    assert_string_equal(fx->err.msg, want);
}

/* ------------------------------------------------------------------ */
/* Files and includes                                                  */
/* ------------------------------------------------------------------ */

static void test_file_errors(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(pt_conf_parse_file(fx->pool, "/nonexistent/x.conf", &fx->doc, &fx->err),
                     -ENOENT);
    assert_null(fx->doc);
    assert_string_equal(fx->err.msg, "/nonexistent/x.conf: cannot open: No such file or directory");

    assert_int_equal(pt_conf_parse_file(fx->pool, CONF_DIR, &fx->doc, &fx->err), -EISDIR);
    assert_string_equal(fx->err.msg, CONF_DIR ": cannot read: Is a directory");

    /* Not a regular file, but readable: fine. */
    assert_int_equal(pt_conf_parse_file(fx->pool, "/dev/null", &fx->doc, &fx->err), 0);
    assert_int_equal(pt_conf_root(fx->doc)->nchildren, 0);

    assert_int_equal(pt_conf_parse_file(fx->pool, NULL, &fx->doc, &fx->err), -EINVAL);
    assert_int_equal(pt_conf_parse_file(NULL, "x", &fx->doc, &fx->err), -EINVAL);
}

static void test_include_glob_order(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(pt_conf_parse_file(fx->pool, CONF_DIR "/main.conf", &fx->doc, &fx->err), 0);
    const pt_conf_node_t *root = pt_conf_root(fx->doc);

    /* first; a; b; leaf; c {nested}; http { b; leaf; }; last; */
    static const char *const names[] = {"first", "a", "b", "leaf", "c", "http", "last"};
    assert_int_equal(root->nchildren, pt_countof(names));
    for (size_t i = 0; i < pt_countof(names); i++)
        assert_string_equal(root->children[i].name, names[i]);

    assert_string_equal(root->children[0].file, CONF_DIR "/main.conf");
    assert_string_equal(root->children[1].file, CONF_DIR "/sub/a.conf");
    assert_string_equal(root->children[2].file, CONF_DIR "/sub/b.conf");
    /* leaf.inc is named "../leaf.inc" relative to sub/b.conf. */
    assert_string_equal(root->children[3].file, CONF_DIR "/sub/../leaf.inc");
    assert_string_equal(root->children[3].args[0].val, "from leaf");
    assert_int_equal(root->children[4].nchildren, 1);
    assert_string_equal(root->children[4].children[0].name, "nested");
    assert_int_equal(root->children[4].children[0].line, 2);
    assert_int_equal(root->children[6].line, 7);

    /* Includes inside a block splice into that block. */
    const pt_conf_node_t *http = &root->children[5];
    assert_int_equal(http->nchildren, 2);
    assert_string_equal(http->children[0].name, "b");
    assert_string_equal(http->children[1].name, "leaf");
}

static void test_include_relative_to_string_name(void **state)
{
    fx_t *fx = *state;
    /* A string's name gives the directory relative includes start from. */
    const char *text = "include sub/a.conf;\ninclude " CONF_DIR "/sub/c.conf;";
    assert_int_equal(pt_conf_parse_string(fx->pool, CONF_DIR "/virtual.conf", text, strlen(text),
                                          &fx->doc, &fx->err),
                     0);
    const pt_conf_node_t *root = pt_conf_root(fx->doc);
    assert_int_equal(root->nchildren, 2);
    assert_string_equal(root->children[0].name, "a");
    assert_string_equal(root->children[1].name, "c");
    assert_string_equal(root->children[1].file, CONF_DIR "/sub/c.conf");
}

static void test_include_errors(void **state)
{
    fx_t *fx = *state;

    assert_int_equal(pt_conf_parse_file(fx->pool, CONF_DIR "/missing.conf", &fx->doc, &fx->err),
                     -EINVAL);
    assert_string_equal(fx->err.msg,
                        CONF_DIR "/missing.conf:2:9: include file not found: \"" CONF_DIR
                                 "/nothere.conf\"\n"
                                 "include nothere.conf;\n"
                                 "        ^");

    /* A self-including file stops at depth 16 (at the 16th include). */
    assert_int_equal(pt_conf_parse_file(fx->pool, CONF_DIR "/self.conf", &fx->doc, &fx->err),
                     -EINVAL);
    assert_string_equal(fx->err.msg,
                        CONF_DIR "/self.conf:1:9: too many nested includes (max 16), is there "
                                 "an include cycle?\n"
                                 "include self.conf;\n"
                                 "        ^");

    /* Errors inside an included file point into that file. */
    assert_int_equal(
        pt_conf_parse_file(fx->pool, CONF_DIR "/bad_include.conf", &fx->doc, &fx->err), -EINVAL);
    assert_string_equal(fx->err.msg, CONF_DIR "/err/unterminated.inc:1:1: unexpected end of "
                                              "file, expecting \"}\"\na {\n^");
    assert_int_equal(pt_conf_parse_file(fx->pool, CONF_DIR "/bad_syntax.conf", &fx->doc, &fx->err),
                     -EINVAL);
    assert_string_equal(fx->err.msg, CONF_DIR "/err/syntax.inc:2:8: missing space after quoted "
                                              "string\n  b \"x\"y;\n       ^");

    /* Wrong shapes of include itself. */
    expect_error(fx, "include;", "t.conf:1:1: invalid number of arguments in \"include\" "
                                 "directive\ninclude;\n^");
    expect_error(fx, "http {\n  include a b;\n}",
                 "t.conf:2:3: invalid number of arguments in \"include\" directive\n"
                 "  include a b;\n  ^");
    expect_error(fx, "include x { }",
                 "t.conf:1:1: directive \"include\" is not terminated by \";\"\ninclude x { }\n^");

    /* A wildcard that matches nothing is fine. */
    const pt_conf_node_t *root = parse_ok(fx, "include /nonexistent/*.conf; a;");
    assert_int_equal(root->nchildren, 1);
}

static void test_include_file_errors(void **state)
{
    fx_t *fx = *state;
    char dir[128], text[512], want[1024];
    snprintf(dir, sizeof(dir), "%s", tmpdir(fx));

    /* A glob match that cannot be read is reported at the include. */
    char sub[160];
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    snprintf(text, sizeof(text), "include %s;", sub);
    assert_int_equal(parse(fx, text), -EISDIR);
    snprintf(want, sizeof(want), "t.conf:1:9: %s: cannot read: Is a directory\n%s\n        ^", sub,
             text);
    assert_string_equal(fx->err.msg, want);
}

static void test_include_dir_with_glob_chars(void **state)
{
    fx_t *fx = *state;
    char dir[256], path[300];
    /* The including file's directory is taken literally, not as a pattern. */
    snprintf(dir, sizeof(dir), "%s/we[ir]d*", tmpdir(fx));
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(path, sizeof(path), "%s/main.conf", dir);
    write_file(path, "include inc.conf;\ninclude i*.conf;\n");
    snprintf(path, sizeof(path), "%s/inc.conf", dir);
    write_file(path, "inner;\n");

    snprintf(path, sizeof(path), "%s/main.conf", dir);
    assert_int_equal(pt_conf_parse_file(fx->pool, path, &fx->doc, &fx->err), 0);
    const pt_conf_node_t *root = pt_conf_root(fx->doc);
    assert_int_equal(root->nchildren, 2);
    assert_string_equal(root->children[0].name, "inner");
    assert_string_equal(root->children[1].name, "inner");
    snprintf(path, sizeof(path), "%s/inc.conf", dir);
    assert_string_equal(root->children[1].file, path);
}

/* ------------------------------------------------------------------ */
/* pt_conf_error_at                                                    */
/* ------------------------------------------------------------------ */

static void test_error_at(void **state)
{
    fx_t *fx = *state;
    pt_conf_err_t err;

    assert_int_equal(pt_conf_error_at(NULL, &err, "f.conf", 3, 4, "bad %s", "thing"), -EINVAL);
    assert_string_equal(err.msg, "f.conf:3:4: bad thing");
    pt_conf_error_at(NULL, &err, "f.conf", 0, 0, "no line");
    assert_string_equal(err.msg, "f.conf: no line");
    pt_conf_error_at(NULL, &err, NULL, 0, 0, "plain");
    assert_string_equal(err.msg, "plain");
    assert_int_equal(pt_conf_error_at(NULL, NULL, "f", 1, 1, "x"), -EINVAL);

    /* With a doc: quotes the line; the last line needs no newline. */
    parse_ok(fx, "a;\nbb cc;");
    pt_conf_error_at(fx->doc, &err, "t.conf", 2, 4, "here");
    assert_string_equal(err.msg, "t.conf:2:4: here\nbb cc;\n   ^");
    /* A column past the end of the line puts the caret just after it. */
    pt_conf_error_at(fx->doc, &err, "t.conf", 1, 99, "end");
    assert_string_equal(err.msg, "t.conf:1:99: end\na;\n  ^");
    /* Unknown lines or files: no quote. */
    pt_conf_error_at(fx->doc, &err, "t.conf", 3, 1, "past");
    assert_string_equal(err.msg, "t.conf:3:1: past");
    pt_conf_error_at(fx->doc, &err, "other.conf", 1, 1, "other");
    assert_string_equal(err.msg, "other.conf:1:1: other");
    /* Control characters in the message cannot split the log entry. */
    pt_conf_error_at(NULL, &err, "f", 1, 1, "a\nb\x1b" "c\td");
    assert_string_equal(err.msg, "f:1:1: a?b?c\td");

    /* Very long messages are cut, never overflow. */
    char big[3000];
    memset(big, 'm', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    pt_conf_error_at(fx->doc, &err, "t.conf", 1, 1, "%s", big);
    assert_true(strlen(err.msg) < sizeof(err.msg));
    assert_memory_equal(err.msg, "t.conf:1:1: mmm", 15);
}

/* ------------------------------------------------------------------ */
/* Walker                                                              */
/* ------------------------------------------------------------------ */

typedef struct {
    int count;
    int http_count;
} walk_obj_t;

static int set_count(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    (void)b;
    (void)n;
    ((walk_obj_t *)obj)->count++;
    return 0;
}

static int set_http(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    ((walk_obj_t *)obj)->http_count++;
    return pt_conf_walk(b, n, PT_CONF_HTTP, obj);
}

static int set_fail(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    (void)obj;
    return pt_conf_err_arg(b, n, 0, "bad thing \"%s\"", n->args[0].val);
}

static int set_enomem(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    (void)b;
    (void)n;
    (void)obj;
    return -ENOMEM;
}

static const pt_conf_cmd_t test_cmds[] = {
    {"workers", PT_CONF_MAIN, 1, 1, false, set_count},
    {"http", PT_CONF_MAIN, 0, 0, true, set_http},
    {"listen", PT_CONF_HTTP, 1, 2, false, set_count},
    {"tags", PT_CONF_MAIN | PT_CONF_HTTP, 0, PT_CONF_ANY_ARGS, false, set_count},
    {"fail", PT_CONF_MAIN, 1, 1, false, set_fail},
    {"oom", PT_CONF_MAIN, 0, 0, false, set_enomem},
    {"quiet", PT_CONF_MAIN, 0, PT_CONF_ANY_ARGS, false, NULL},
    {NULL, 0, 0, 0, false, NULL},
};

static int walk_setup(void **state)
{
    conf_registry_reset();
    assert_int_equal(pt_conf_register(test_cmds), 0);
    return fx_setup(state);
}

static int walk_teardown(void **state)
{
    conf_registry_reset();
    return fx_teardown(state);
}

/* Parses text and walks it at main level; returns the walk's rc. */
static int walk(fx_t *fx, const char *text, walk_obj_t *obj)
{
    parse_ok(fx, text);
    pt_conf_build_t b = {.doc = fx->doc, .err = &fx->err, .pool = fx->pool};
    memset(obj, 0, sizeof(*obj));
    return pt_conf_walk(&b, pt_conf_root(fx->doc), PT_CONF_MAIN, obj);
}

static void expect_walk_error(fx_t *fx, const char *text, int rc, const char *msg)
{
    walk_obj_t obj;
    assert_int_equal(walk(fx, text, &obj), rc);
    assert_string_equal(fx->err.msg, msg);
}

static void test_walk_ok(void **state)
{
    fx_t *fx = *state;
    walk_obj_t obj;
    assert_int_equal(walk(fx,
                          "workers 4;\ntags;\nquiet a b c;\n"
                          "http {\n  listen 80;\n  listen 81 x;\n  tags a b c d e f;\n}\n",
                          &obj),
                     0);
    assert_int_equal(obj.count, 5);
    assert_int_equal(obj.http_count, 1);
}

static void test_walk_errors(void **state)
{
    fx_t *fx = *state;
    expect_walk_error(fx, "workers 1;\nfoo bar;", -EINVAL,
                      "t.conf:2:1: unknown directive \"foo\"\nfoo bar;\n^");
    expect_walk_error(fx, "listen 80;", -EINVAL,
                      "t.conf:1:1: \"listen\" directive is not allowed here\nlisten 80;\n^");
    expect_walk_error(fx, "http {\n  workers 2;\n}", -EINVAL,
                      "t.conf:2:3: \"workers\" directive is not allowed here\n  workers 2;\n  ^");
    expect_walk_error(fx, "http {\n\tnope;\n}", -EINVAL,
                      "t.conf:2:2: unknown directive \"nope\"\n\tnope;\n\t^");
    expect_walk_error(fx, "workers;", -EINVAL,
                      "t.conf:1:1: invalid number of arguments in \"workers\" directive\n"
                      "workers;\n^");
    expect_walk_error(fx, " workers 1 2;", -EINVAL,
                      "t.conf:1:2: invalid number of arguments in \"workers\" directive\n"
                      " workers 1 2;\n ^");
    expect_walk_error(fx, "http { listen 1 2 3; }", -EINVAL,
                      "t.conf:1:8: invalid number of arguments in \"listen\" directive\n"
                      "http { listen 1 2 3; }\n       ^");
    expect_walk_error(fx, "http { listen; }", -EINVAL,
                      "t.conf:1:8: invalid number of arguments in \"listen\" directive\n"
                      "http { listen; }\n       ^");
    expect_walk_error(fx, "http x { }", -EINVAL,
                      "t.conf:1:1: invalid number of arguments in \"http\" directive\n"
                      "http x { }\n^");
    expect_walk_error(fx, "http;", -EINVAL,
                      "t.conf:1:1: directive \"http\" has no opening \"{\"\nhttp;\n^");
    expect_walk_error(fx, "workers 1 { }", -EINVAL,
                      "t.conf:1:1: directive \"workers\" is not terminated by \";\"\n"
                      "workers 1 { }\n^");
    expect_walk_error(fx, "fail   xyz;", -EINVAL,
                      "t.conf:1:8: bad thing \"xyz\"\nfail   xyz;\n       ^");
    expect_walk_error(fx, "oom;", -ENOMEM,
                      "t.conf:1:1: \"oom\" directive failed: Cannot allocate memory\noom;\n^");

    /* The walk stops at the first error. */
    walk_obj_t obj;
    assert_int_equal(walk(fx, "workers 1;\nfoo;\nworkers 2;", &obj), -EINVAL);
    assert_int_equal(obj.count, 1);
}

static void test_err_helpers(void **state)
{
    fx_t *fx = *state;
    parse_ok(fx, "name a  bb;");
    pt_conf_build_t b = {.doc = fx->doc, .err = &fx->err, .pool = fx->pool};
    const pt_conf_node_t *n = &pt_conf_root(fx->doc)->children[0];

    assert_int_equal(pt_conf_err_node(&b, n, "node %d", 1), -EINVAL);
    assert_string_equal(fx->err.msg, "t.conf:1:1: node 1\nname a  bb;\n^");
    assert_int_equal(pt_conf_err_arg(&b, n, 1, "arg %s", n->args[1].val), -EINVAL);
    assert_string_equal(fx->err.msg, "t.conf:1:9: arg bb\nname a  bb;\n        ^");
    /* An argument index past the end points at the node. */
    assert_int_equal(pt_conf_err_arg(&b, n, 5, "none"), -EINVAL);
    assert_string_equal(fx->err.msg, "t.conf:1:1: none\nname a  bb;\n^");
}

static int set_nothing(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    (void)b;
    (void)n;
    (void)obj;
    return 0;
}

static void test_register(void **state)
{
    (void)state;
    static const pt_conf_cmd_t same_ctx[] = {
        {"workers", PT_CONF_MAIN | PT_CONF_EVENTS, 1, 1, false, set_nothing},
        {NULL, 0, 0, 0, false, NULL},
    };
    static const pt_conf_cmd_t other_ctx[] = {
        {"workers", PT_CONF_UPSTREAM, 0, 0, false, set_nothing},
        {"fresh", PT_CONF_UPSTREAM, 0, 0, false, set_nothing},
        {NULL, 0, 0, 0, false, NULL},
    };
    static const pt_conf_cmd_t dup_inside[] = {
        {"twice", PT_CONF_SERVER, 0, 0, false, set_nothing},
        {"twice", PT_CONF_SERVER | PT_CONF_LOCATION, 0, 0, false, set_nothing},
        {NULL, 0, 0, 0, false, NULL},
    };
    static const pt_conf_cmd_t bad_args[] = {
        {"bad", PT_CONF_SERVER, 2, 1, false, set_nothing},
        {NULL, 0, 0, 0, false, NULL},
    };
    static const pt_conf_cmd_t no_ctx[] = {
        {"bad", 0, 0, 0, false, set_nothing},
        {NULL, 0, 0, 0, false, NULL},
    };
    static const pt_conf_cmd_t empty[] = {{NULL, 0, 0, 0, false, NULL}};

    /* test_cmds is registered by the setup. */
    assert_int_equal(pt_conf_register(same_ctx), -EEXIST);
    assert_int_equal(pt_conf_register(dup_inside), -EEXIST);
    assert_int_equal(pt_conf_register(bad_args), -EINVAL);
    assert_int_equal(pt_conf_register(no_ctx), -EINVAL);
    assert_int_equal(pt_conf_register(NULL), -EINVAL);
    assert_int_equal(pt_conf_register(other_ctx), 0);
    assert_int_equal(pt_conf_register(other_ctx), -EEXIST);

    /* 64 tables at most (two are in). */
    for (int i = 0; i < 62; i++) assert_int_equal(pt_conf_register(empty), 0);
    assert_int_equal(pt_conf_register(empty), -ENOSPC);
}

static void test_walk_same_name_other_context(void **state)
{
    fx_t *fx = *state;
    static const pt_conf_cmd_t more[] = {
        {"workers", PT_CONF_HTTP, 0, 0, false, set_count},
        {NULL, 0, 0, 0, false, NULL},
    };
    assert_int_equal(pt_conf_register(more), 0);
    walk_obj_t obj;
    /* main's workers takes one argument; http's none. */
    assert_int_equal(walk(fx, "workers 3;\nhttp { workers; }", &obj), 0);
    assert_int_equal(obj.count, 2);
    expect_walk_error(fx, "http { workers 3; }", -EINVAL,
                      "t.conf:1:8: invalid number of arguments in \"workers\" directive\n"
                      "http { workers 3; }\n       ^");
}

/* ------------------------------------------------------------------ */
/* Value getters                                                       */
/* ------------------------------------------------------------------ */

/* Parses "v <value>;" into fx and returns the node. */
static const pt_conf_node_t *value_node(fx_t *fx, pt_conf_build_t *b, const char *value)
{
    char text[512];
    snprintf(text, sizeof(text), "v %s;", value);
    const pt_conf_node_t *root = parse_ok(fx, text);
    *b = (pt_conf_build_t){.doc = fx->doc, .err = &fx->err, .pool = fx->pool};
    return &root->children[0];
}

static int get_flag(fx_t *fx, const char *value, bool *out)
{
    pt_conf_build_t b;
    const pt_conf_node_t *n = value_node(fx, &b, value);
    return pt_conf_get_flag(&b, n, 0, out);
}

static int get_int(fx_t *fx, const char *value, long long min, long long max, long long *out)
{
    pt_conf_build_t b;
    const pt_conf_node_t *n = value_node(fx, &b, value);
    return pt_conf_get_int(&b, n, 0, min, max, out);
}

static int get_size(fx_t *fx, const char *value, uint64_t min, uint64_t max, uint64_t *out)
{
    pt_conf_build_t b;
    const pt_conf_node_t *n = value_node(fx, &b, value);
    return pt_conf_get_size(&b, n, 0, min, max, out);
}

static int get_msec(fx_t *fx, const char *value, uint64_t min, uint64_t max, uint64_t *out)
{
    pt_conf_build_t b;
    const pt_conf_node_t *n = value_node(fx, &b, value);
    return pt_conf_get_msec(&b, n, 0, min, max, out);
}

static void test_get_flag(void **state)
{
    fx_t *fx = *state;
    bool v = false;
    assert_int_equal(get_flag(fx, "on", &v), 0);
    assert_true(v);
    assert_int_equal(get_flag(fx, "off", &v), 0);
    assert_false(v);
    assert_int_equal(get_flag(fx, "On", &v), 0);
    assert_true(v);
    assert_int_equal(get_flag(fx, "OFF", &v), 0);
    assert_false(v);
    assert_int_equal(get_flag(fx, "'on'", &v), 0);
    assert_true(v);

    static const char *const bad[] = {"yes", "onn", "of", "1", "\"\"", "\"on \""};
    static const char *const shown[] = {"yes", "onn", "of", "1", "", "on "};
    for (size_t i = 0; i < pt_countof(bad); i++) {
        v = true;
        assert_int_equal(get_flag(fx, bad[i], &v), -EINVAL);
        assert_true(v); /* untouched */
        char want[256];
        snprintf(want, sizeof(want),
                 "t.conf:1:3: invalid value \"%s\" in \"v\" directive, expected on|off\nv %s;\n  ^",
                 shown[i], bad[i]);
        assert_string_equal(fx->err.msg, want);
    }

    /* Missing argument. */
    pt_conf_build_t b;
    const pt_conf_node_t *n = value_node(fx, &b, "on");
    assert_int_equal(pt_conf_get_flag(&b, n, 1, &v), -EINVAL);
    assert_string_equal(fx->err.msg,
                        "t.conf:1:1: invalid number of arguments in \"v\" directive\nv on;\n^");
}

static void test_get_int(void **state)
{
    fx_t *fx = *state;
    long long v = 0;

    assert_int_equal(get_int(fx, "42", 0, 100, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(get_int(fx, "0", 0, 100, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(get_int(fx, "100", 0, 100, &v), 0);
    assert_int_equal(v, 100);
    assert_int_equal(get_int(fx, "007", 0, 100, &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(get_int(fx, "-5", -10, 10, &v), 0);
    assert_int_equal(v, -5);
    assert_int_equal(get_int(fx, "-9223372036854775808", LLONG_MIN, LLONG_MAX, &v), 0);
    assert_true(v == LLONG_MIN);
    assert_int_equal(get_int(fx, "9223372036854775807", LLONG_MIN, LLONG_MAX, &v), 0);
    assert_true(v == LLONG_MAX);

    v = 1;
    assert_int_equal(get_int(fx, "101", 0, 100, &v), -EINVAL);
    assert_int_equal(v, 1);
    assert_string_equal(fx->err.msg, "t.conf:1:3: value \"101\" in \"v\" directive is out of "
                                     "range [0, 100]\nv 101;\n  ^");
    assert_int_equal(get_int(fx, "-1", 0, 100, &v), -EINVAL);
    assert_string_equal(fx->err.msg, "t.conf:1:3: value \"-1\" in \"v\" directive is out of "
                                     "range [0, 100]\nv -1;\n  ^");
    assert_int_equal(get_int(fx, "-0", 0, 100, &v), -EINVAL);
    assert_string_equal(fx->err.msg, "t.conf:1:3: value \"-0\" in \"v\" directive is out of "
                                     "range [0, 100]\nv -0;\n  ^");
    assert_int_equal(get_int(fx, "-11", -10, 10, &v), -EINVAL);
    assert_string_equal(fx->err.msg, "t.conf:1:3: value \"-11\" in \"v\" directive is out of "
                                     "range [-10, 10]\nv -11;\n  ^");
    assert_int_equal(get_int(fx, "9223372036854775808", LLONG_MIN, LLONG_MAX, &v), -EINVAL);
    assert_string_equal(fx->err.msg,
                        "t.conf:1:3: value \"9223372036854775808\" in \"v\" directive is out of "
                        "range [-9223372036854775808, 9223372036854775807]\n"
                        "v 9223372036854775808;\n  ^");
    assert_int_equal(get_int(fx, "-9223372036854775809", LLONG_MIN, LLONG_MAX, &v), -EINVAL);
    assert_int_equal(get_int(fx, "99999999999999999999999", 0, 10, &v), -EINVAL);
    assert_string_equal(fx->err.msg, "t.conf:1:3: value \"99999999999999999999999\" in \"v\" "
                                     "directive is out of range [0, 10]\n"
                                     "v 99999999999999999999999;\n  ^");

    static const char *const bad[] = {"+1", "1.5", "1k", "\"\"", "-", "\" 1\"", "0x10", "--1"};
    static const char *const shown[] = {"+1", "1.5", "1k", "", "-", " 1", "0x10", "--1"};
    for (size_t i = 0; i < pt_countof(bad); i++) {
        assert_int_equal(get_int(fx, bad[i], -100, 100, &v), -EINVAL);
        char want[256];
        snprintf(want, sizeof(want),
                 "t.conf:1:3: invalid value \"%s\" in \"v\" directive, expected an integer\n"
                 "v %s;\n  ^",
                 shown[i], bad[i]);
        assert_string_equal(fx->err.msg, want);
    }
}

static void test_parse_size(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int rc;
        uint64_t v;
    } cases[] = {
        {"0", 0, 0},
        {"512", 0, 512},
        {"16k", 0, 16384},
        {"8K", 0, 8192},
        {"1m", 0, 1048576},
        {"3M", 0, 3145728},
        {"2g", 0, 2147483648ull},
        {"1G", 0, 1073741824},
        {"0k", 0, 0},
        {"18446744073709551615", 0, UINT64_MAX},
        {"17179869183g", 0, 17179869183ull << 30},
        {"18446744073709551616", -ERANGE, 0},
        {"17179869184g", -ERANGE, 0},
        {"18014398509481984k", -ERANGE, 0},
        {"99999999999999999999999999k", -ERANGE, 0},
        {"", -EINVAL, 0},
        {"k", -EINVAL, 0},
        {"1.5k", -EINVAL, 0},
        {"-1", -EINVAL, 0},
        {"+1", -EINVAL, 0},
        {"1kb", -EINVAL, 0},
        {"1t", -EINVAL, 0},
        {"1 k", -EINVAL, 0},
        {" 1", -EINVAL, 0},
        {"1kk", -EINVAL, 0},
        {"99999999999999999999999x", -EINVAL, 0},
    };
    for (size_t i = 0; i < pt_countof(cases); i++) {
        uint64_t v = 12345;
        int rc = pt_parse_size(cases[i].s, strlen(cases[i].s), &v);
        if (rc != cases[i].rc) fprintf(stderr, "case \"%s\"\n", cases[i].s);
        assert_int_equal(rc, cases[i].rc);
        assert_true(v == (rc == 0 ? cases[i].v : 12345));
    }
    /* Only len bytes are read. */
    uint64_t v;
    assert_int_equal(pt_parse_size("16kXYZ", 3, &v), 0);
    assert_int_equal(v, 16384);
    assert_int_equal(pt_parse_size("16kXYZ", 0, &v), -EINVAL);
    assert_int_equal(pt_parse_size(NULL, 3, &v), -EINVAL);
}

static void test_parse_msec(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int rc;
        uint64_t v;
    } cases[] = {
        {"0", 0, 0},
        {"250ms", 0, 250},
        {"30s", 0, 30000},
        {"30", 0, 30000},
        {"5m", 0, 300000},
        {"1h", 0, 3600000},
        {"1d", 0, 86400000},
        {"1m30s", 0, 90000},
        {"1m30", 0, 90000},
        {"1d2h3m4s5ms", 0, 93784005},
        {"1h500ms", 0, 3600500},
        {"0s0ms", 0, 0},
        {"18446744073709551615ms", 0, UINT64_MAX},
        {"18446744073709551s615ms", 0, UINT64_MAX},
        {"18446744073709551s616ms", -ERANGE, 0},
        {"18446744073709551616ms", -ERANGE, 0},
        {"18446744073709552", -ERANGE, 0},
        {"213503982335d", -ERANGE, 0},
        {"213503982334d", 0, 213503982334ull * 86400000},
        {"", -EINVAL, 0},
        {"s", -EINVAL, 0},
        {"ms", -EINVAL, 0},
        {"1x", -EINVAL, 0},
        {"30s1m", -EINVAL, 0},
        {"1s1s", -EINVAL, 0},
        {"1ms1s", -EINVAL, 0},
        {"1s30", -EINVAL, 0},
        {"500ms30", -EINVAL, 0},
        {"1.5s", -EINVAL, 0},
        {"-1s", -EINVAL, 0},
        {"+1s", -EINVAL, 0},
        {"1 s", -EINVAL, 0},
        {"1m 30s", -EINVAL, 0},
        {"1mm", -EINVAL, 0},
        {"1S", -EINVAL, 0},
        {"1y", -EINVAL, 0},
        {"1w", -EINVAL, 0},
        {"99999999999999999999d1x", -EINVAL, 0},
    };
    for (size_t i = 0; i < pt_countof(cases); i++) {
        uint64_t v = 12345;
        int rc = pt_parse_msec(cases[i].s, strlen(cases[i].s), &v);
        if (rc != cases[i].rc) fprintf(stderr, "case \"%s\"\n", cases[i].s);
        assert_int_equal(rc, cases[i].rc);
        assert_true(v == (rc == 0 ? cases[i].v : 12345));
    }
    uint64_t v;
    assert_int_equal(pt_parse_msec("5mXYZ", 2, &v), 0);
    assert_int_equal(v, 300000);
    assert_int_equal(pt_parse_msec("5msXYZ", 2, &v), 0);
    assert_int_equal(v, 300000);
    assert_int_equal(pt_parse_msec(NULL, 1, &v), -EINVAL);
}

static void test_get_size(void **state)
{
    fx_t *fx = *state;
    uint64_t v = 0;
    assert_int_equal(get_size(fx, "16k", 0, UINT64_MAX, &v), 0);
    assert_int_equal(v, 16384);
    assert_int_equal(get_size(fx, "1k", 1024, 1048576, &v), 0);
    assert_int_equal(get_size(fx, "1m", 1024, 1048576, &v), 0);
    assert_int_equal(v, 1048576);

    v = 7;
    assert_int_equal(get_size(fx, "1023", 1024, 1048576, &v), -EINVAL);
    assert_int_equal(v, 7);
    assert_string_equal(fx->err.msg, "t.conf:1:3: value \"1023\" in \"v\" directive is out of "
                                     "range [1k, 1m]\nv 1023;\n  ^");
    assert_int_equal(get_size(fx, "2g", 0, 1536, &v), -EINVAL);
    assert_string_equal(fx->err.msg, "t.conf:1:3: value \"2g\" in \"v\" directive is out of "
                                     "range [0, 1536]\nv 2g;\n  ^");
    assert_int_equal(get_size(fx, "20000000000g", 0, UINT64_MAX, &v), -EINVAL);
    assert_string_equal(fx->err.msg, "t.conf:1:3: value \"20000000000g\" in \"v\" directive is "
                                     "out of range [0, 18446744073709551615]\n"
                                     "v 20000000000g;\n  ^");
    assert_int_equal(get_size(fx, "3g", 1, 2ull << 30, &v), -EINVAL);
    assert_string_equal(fx->err.msg, "t.conf:1:3: value \"3g\" in \"v\" directive is out of "
                                     "range [1, 2g]\nv 3g;\n  ^");
    assert_int_equal(get_size(fx, "1.5m", 0, 100, &v), -EINVAL);
    assert_string_equal(fx->err.msg, "t.conf:1:3: invalid value \"1.5m\" in \"v\" directive, "
                                     "expected a size like 512, 16k, 8m, 1g\nv 1.5m;\n  ^");
}

static void test_get_msec(void **state)
{
    fx_t *fx = *state;
    uint64_t v = 0;
    assert_int_equal(get_msec(fx, "1m30s", 0, UINT64_MAX, &v), 0);
    assert_int_equal(v, 90000);
    assert_int_equal(get_msec(fx, "60", 1000, 3600000, &v), 0);
    assert_int_equal(v, 60000);

    v = 7;
    assert_int_equal(get_msec(fx, "2h", 1000, 3600000, &v), -EINVAL);
    assert_int_equal(v, 7);
    assert_string_equal(fx->err.msg, "t.conf:1:3: value \"2h\" in \"v\" directive is out of "
                                     "range [1s, 1h]\nv 2h;\n  ^");
    assert_int_equal(get_msec(fx, "999ms", 1000, 90000, &v), -EINVAL);
    assert_string_equal(fx->err.msg, "t.conf:1:3: value \"999ms\" in \"v\" directive is out of "
                                     "range [1s, 90s]\nv 999ms;\n  ^");
    assert_int_equal(get_msec(fx, "1s", 0, 250, &v), -EINVAL);
    assert_string_equal(fx->err.msg, "t.conf:1:3: value \"1s\" in \"v\" directive is out of "
                                     "range [0, 250ms]\nv 1s;\n  ^");
    assert_int_equal(get_msec(fx, "7d", 0, 2 * 86400000ull, &v), -EINVAL);
    assert_string_equal(fx->err.msg, "t.conf:1:3: value \"7d\" in \"v\" directive is out of "
                                     "range [0, 2d]\nv 7d;\n  ^");
    assert_int_equal(get_msec(fx, "99999999999999d", 0, UINT64_MAX, &v), -EINVAL);
    assert_string_equal(fx->err.msg, "t.conf:1:3: value \"99999999999999d\" in \"v\" directive "
                                     "is out of range [0, 18446744073709551615ms]\n"
                                     "v 99999999999999d;\n  ^");
    assert_int_equal(get_msec(fx, "30s1m", 0, UINT64_MAX, &v), -EINVAL);
    assert_string_equal(fx->err.msg, "t.conf:1:3: invalid value \"30s1m\" in \"v\" directive, "
                                     "expected a time like 250ms, 30s, 5m, 1h, 1d\n"
                                     "v 30s1m;\n  ^");
}

static void test_value_shown_is_cut(void **state)
{
    fx_t *fx = *state;
    char value[301], want[1024];
    memset(value, 'x', 300);
    value[300] = '\0';
    bool v;
    assert_int_equal(get_flag(fx, value, &v), -EINVAL);
    snprintf(want, sizeof(want), "t.conf:1:3: invalid value \"%.128s\" in \"v\" directive, "
                                 "expected on|off\n", value);
    assert_memory_equal(fx->err.msg, want, strlen(want));
    /* Escaped control characters in a value do not reach the log raw. */
    assert_int_equal(get_flag(fx, "\"a\\nb\"", &v), -EINVAL);
    assert_string_equal(fx->err.msg, "t.conf:1:3: invalid value \"a?b\" in \"v\" directive, "
                                     "expected on|off\nv \"a\\nb\";\n  ^");
}

/* ------------------------------------------------------------------ */

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
#define W(name) cmocka_unit_test_setup_teardown(name, walk_setup, walk_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_empty_and_comments),
        T(test_nested_blocks),
        T(test_tokens_without_spaces),
        T(test_quoted_strings),
        T(test_escapes),
        T(test_comments_and_variables),
        T(test_crlf),
        T(test_error_unexpected_tokens),
        T(test_error_eof),
        T(test_error_strings),
        T(test_error_nul_byte),
        T(test_error_caret_tabs_utf8),
        T(test_error_long_lines),
        T(test_nesting_limit),
        T(test_token_limit),
        T(test_size_limit),
        T(test_file_errors),
        T(test_include_glob_order),
        T(test_include_relative_to_string_name),
        T(test_include_errors),
        T(test_include_file_errors),
        T(test_include_dir_with_glob_chars),
        T(test_error_at),
        W(test_walk_ok),
        W(test_walk_errors),
        W(test_err_helpers),
        W(test_register),
        W(test_walk_same_name_other_context),
        T(test_get_flag),
        T(test_get_int),
        T(test_parse_size),
        T(test_parse_msec),
        T(test_get_size),
        T(test_get_msec),
        T(test_value_shown_is_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
