/*
 * Shared fixture for unit tests that load whole configs through
 * pt_snapshot_load(): a temp directory with one config file, loaders, and
 * exact error assertions ("<file>:<line>:<col>: message").
 *
 * Include once per test program, after cmocka.h, with CONF_FIXTURE_TAG
 * defined to a short name for the temp directory.
 */
#ifndef PT_TEST_CONF_FIXTURE_H
#define PT_TEST_CONF_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "proxy/proxy_int.h"
#include "test_util.h"
#include "upstream/upstream.h"

#ifndef CONF_FIXTURE_TAG
#error "define CONF_FIXTURE_TAG before including conf_fixture.h"
#endif

/* Set once by the group setup, read-only afterwards. */
static char tmpdir[64];
static char conf_file[128];

static int group_setup(void **state)
{
    (void)state;
    if (pt_proxy_init() != 0 || pt_upstream_init() != 0) return -1;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/pt_" CONF_FIXTURE_TAG "_XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    snprintf(conf_file, sizeof(conf_file), "%s/t.conf", tmpdir);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return remove_tree(tmpdir);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static pt_snapshot_t *load_text_gen(const char *text, uint64_t gen, pt_conf_err_t *err)
{
    write_file(conf_file, text);
    return pt_snapshot_load(conf_file, gen, err);
}

static pt_snapshot_t *load_text(const char *text, pt_conf_err_t *err)
{
    return load_text_gen(text, 1, err);
}

#define LOAD_OK(text) load_ok_at((text), 1, __FILE__, __LINE__)
#define LOAD_OK_GEN(text, gen) load_ok_at((text), (gen), __FILE__, __LINE__)

static pt_snapshot_t *load_ok_at(const char *text, uint64_t gen, const char *file, int line)
{
    pt_conf_err_t err = {{0}};
    pt_snapshot_t *s = load_text_gen(text, gen, &err);
    if (!s) {
        print_error("unexpected config error: %s\n", err.msg);
        _fail(file, line);
    }
    return s;
}

/* Replaces every "{F}" in in with the config path. */
static void expand_path(char *out, size_t size, const char *in)
{
    size_t o = 0;
    for (const char *p = in; *p && o + 1 < size;) {
        if (strncmp(p, "{F}", 3) == 0) {
            o += (size_t)snprintf(out + o, size - o, "%s", conf_file);
            p += 3;
        } else {
            out[o++] = *p++;
        }
    }
    out[o < size ? o : size - 1] = '\0';
}

/*
 * Loads text and expects an error whose first line is "<conf_file>:<where>"
 * ("{F}" in where stands for the config path), or starts with it when
 * prefix is true (resolver messages vary). The full message goes to full.
 */
#define EXPECT_ERR(text, where) expect_err_at((text), (where), false, NULL, __FILE__, __LINE__)
#define EXPECT_ERR_PREFIX(text, where) \
    expect_err_at((text), (where), true, NULL, __FILE__, __LINE__)
#define EXPECT_ERR_FULL(text, where, full) \
    expect_err_at((text), (where), false, (full), __FILE__, __LINE__)

static void expect_err_at(const char *text, const char *where, bool prefix, pt_conf_err_t *full,
                          const char *file, int line)
{
    pt_conf_err_t err = {{0}};
    pt_snapshot_t *s = load_text(text, &err);
    if (s) {
        pt_snapshot_unref(s);
        print_error("config loaded, expected error \"%s\"\n", where);
        _fail(file, line);
    }
    char exp[1200], want[1400], got[2048];
    expand_path(exp, sizeof(exp), where);
    snprintf(want, sizeof(want), "%s:%s", conf_file, exp);
    snprintf(got, sizeof(got), "%s", err.msg);
    char *nl = strchr(got, '\n');
    if (nl) *nl = '\0';
    if (prefix && strlen(got) > strlen(want)) got[strlen(want)] = '\0';
    _assert_string_equal(got, want, file, line);
    if (full) *full = err;
}

/* One config that must fail to load, and where ("line:col: message"). */
typedef struct conf_err_case {
    const char *text;
    const char *where;
} conf_err_case_t;

/*
 * EXPECT_ERR for every case of a static table, in order. A failure names
 * the expected and the actual message, which tells the case apart.
 */
#define EXPECT_ERRS(cases) expect_errs_at((cases), pt_countof(cases), __FILE__, __LINE__)

static inline void expect_errs_at(const conf_err_case_t *cases, size_t n, const char *file,
                                  int line)
{
    for (size_t i = 0; i < n; i++)
        expect_err_at(cases[i].text, cases[i].where, false, NULL, file, line);
}

/* The caret line (third line) of a formatted error. */
static const char *caret_line(const pt_conf_err_t *e)
{
    const char *p = strchr(e->msg, '\n');
    assert_non_null(p);
    p = strchr(p + 1, '\n');
    assert_non_null(p);
    return p + 1;
}

/* Config skeletons; the comment says on which line the body starts. */
#define HTTP(body) "http {\n" body "}\n"                                      /* line 2 */
#define UPS(body) "http {\nupstream u {\n" body "}\n}\n"                      /* line 3 */
#define SRV_OPEN "http {\nserver {\nlisten 127.0.0.1:8080;\n"
#define SRV(body) SRV_OPEN body "}\n}\n"                                      /* line 4 */
#define LOC(body) SRV_OPEN "location /t {\n" body "}\n}\n}\n"                 /* line 5 */

#endif
