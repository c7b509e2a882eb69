/*
 * Unit tests for src/upstream/state_file.c: the upstream_state_file (admin
 * overrides) written and read back, atomic replacement, and every kind of
 * malformed file rejected with the state left as it was.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"
#include "upstream/upstream_int.h"

typedef struct fixture {
    char dir[64];
    char path[128];
    ups_rt_t *rt;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/pt-ups-state-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/upstreams.state", f->dir);
    f->rt = ups_rt_create(NULL);
    assert_non_null(f->rt);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    ups_rt_destroy(f->rt);
    remove_tree(f->dir);
    free(f);
    return 0;
}

/* Replaces gs's overrides with a malloc'd copy of o[0..n). */
static void set_overrides(ups_gstate_t *gs, const ups_override_t *o, size_t n)
{
    free(gs->overrides);
    gs->overrides = malloc((n ? n : 1) * sizeof(*o));
    assert_non_null(gs->overrides);
    memcpy(gs->overrides, o, n * sizeof(*o));
    gs->noverrides = n;
}

static ups_gstate_t *group(ups_rt_t *rt, const char *name)
{
    ups_gstate_t *gs = ups_rt_group(rt, name);
    assert_non_null(gs);
    return gs;
}

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

static char *read_text(const char *path)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return buf;
}

/* The file at path holds exactly the JSON document want. */
static void assert_file_json(const char *path, const char *want)
{
    const char *text = read_text(path);
    assert_true(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
    json_error_t err;
    json_t *got = json_loads(text, 0, &err);
    json_t *exp = json_loads(want, 0, &err);
    assert_non_null(got);
    assert_non_null(exp);
    if (!json_equal(got, exp)) fprintf(stderr, "got:\n%s\nwant:\n%s\n", text, want);
    assert_true(json_equal(got, exp));
    json_decref(got);
    json_decref(exp);
}

static void assert_override(const ups_gstate_t *gs, size_t i, const char *name, int weight,
                            int admin)
{
    assert_true(i < gs->noverrides);
    assert_string_equal(gs->overrides[i].name, name);
    assert_int_equal(gs->overrides[i].weight, weight);
    assert_int_equal(gs->overrides[i].admin, admin);
}

/* Entries of f->dir other than "." and "..". */
static int dir_entries(const fixture_t *f)
{
    DIR *d = opendir(f->dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void test_round_trip(void **state)
{
    fixture_t *f = *state;
    const ups_override_t app[] = {
        {"10.0.0.1:80", 5, UPS_ADMIN_ENABLED},
        {"[::1]:8080", -1, UPS_ADMIN_DRAIN},
        {"10.0.0.3:80", 1000, UPS_ADMIN_DRAIN},
    };
    const ups_override_t api[] = {{"127.0.0.1:9000", 1, UPS_ADMIN_ENABLED}};
    set_overrides(group(f->rt, "app"), app, pt_countof(app));
    group(f->rt, "empty"); /* no overrides: not written */
    set_overrides(group(f->rt, "api \"v2\""), api, pt_countof(api));

    assert_int_equal(ups_state_save(f->rt, f->path), 0);
    assert_file_json(f->path,
                     "{\"version\":1,\"upstreams\":{"
                     "\"app\":{\"10.0.0.1:80\":{\"weight\":5,\"admin\":\"enabled\"},"
                     "\"[::1]:8080\":{\"weight\":null,\"admin\":\"drain\"},"
                     "\"10.0.0.3:80\":{\"weight\":1000,\"admin\":\"drain\"}},"
                     "\"api \\\"v2\\\"\":"
                     "{\"127.0.0.1:9000\":{\"weight\":1,\"admin\":\"enabled\"}}}}");
    assert_int_equal(dir_entries(f), 1); /* no temporary file left */

    /* A fresh runtime reads back the same overrides, creating the groups. */
    ups_rt_t *rt = ups_rt_create(NULL);
    assert_non_null(rt);
    assert_int_equal(ups_state_load(rt, f->path), 0);
    assert_int_equal(rt->ngroups, 2);
    ups_gstate_t *gs = group(rt, "app");
    assert_null(gs->conf);
    assert_int_equal(gs->noverrides, 3);
    for (size_t i = 0; i < pt_countof(app); i++)
        assert_override(gs, i, app[i].name, app[i].weight, app[i].admin);
    gs = group(rt, "api \"v2\"");
    assert_int_equal(gs->noverrides, 1);
    assert_override(gs, 0, "127.0.0.1:9000", 1, UPS_ADMIN_ENABLED);
    assert_int_equal(rt->ngroups, 2);
    ups_rt_destroy(rt);
}

static void test_save_replaces(void **state)
{
    fixture_t *f = *state;
    /* Nothing to say is still a valid file. */
    assert_int_equal(ups_state_save(f->rt, f->path), 0);
    assert_file_json(f->path, "{\"version\":1,\"upstreams\":{}}");

    const ups_override_t o[] = {{"10.0.0.1:80", -1, UPS_ADMIN_DRAIN}};
    ups_gstate_t *gs = group(f->rt, "app");
    set_overrides(gs, o, 1);
    assert_int_equal(ups_state_save(f->rt, f->path), 0);
    assert_file_json(f->path, "{\"version\":1,\"upstreams\":{\"app\":{\"10.0.0.1:80\":"
                              "{\"weight\":null,\"admin\":\"drain\"}}}}");
    set_overrides(gs, o, 0);
    assert_int_equal(ups_state_save(f->rt, f->path), 0);
    assert_file_json(f->path, "{\"version\":1,\"upstreams\":{}}");
    assert_int_equal(dir_entries(f), 1);
}

static void test_save_errors(void **state)
{
    fixture_t *f = *state;
    char path[192];
    snprintf(path, sizeof(path), "%s/missing-dir/upstreams.state", f->dir);
    assert_int_equal(ups_state_save(f->rt, path), -ENOENT);
    assert_int_equal(dir_entries(f), 0);

    /* A directory in the way: the rename fails, the temp file is removed. */
    assert_int_equal(mkdir(f->path, 0755), 0);
    int rc = ups_state_save(f->rt, f->path);
    assert_true(rc == -EISDIR || rc == -EEXIST || rc == -ENOTEMPTY);
    assert_int_equal(dir_entries(f), 1);
}

static void test_load_missing(void **state)
{
    fixture_t *f = *state;
    const ups_override_t o[] = {{"10.0.0.1:80", 7, UPS_ADMIN_ENABLED}};
    set_overrides(group(f->rt, "app"), o, 1);
    assert_int_equal(ups_state_load(f->rt, f->path), 0);
    assert_int_equal(f->rt->ngroups, 1);
    assert_override(f->rt->groups[0], 0, "10.0.0.1:80", 7, UPS_ADMIN_ENABLED);
}

static void test_load_replaces(void **state)
{
    fixture_t *f = *state;
    const ups_override_t o[] = {{"10.0.0.1:80", 7, UPS_ADMIN_ENABLED},
                                {"10.0.0.2:80", -1, UPS_ADMIN_DRAIN}};
    set_overrides(group(f->rt, "app"), o, 2);
    set_overrides(group(f->rt, "old"), o, 1);
    write_text(f->path, "{\"version\":1,\"upstreams\":{"
                        "\"app\":{"
                        "\"10.0.0.2:80\":{\"weight\":3},"          /* admin: enabled */
                        "\"10.0.0.4:80\":{\"admin\":\"drain\"},"   /* weight: null */
                        "\"10.0.0.5:80\":{\"weight\":null,\"admin\":\"enabled\"}," /* no-op */
                        "\"10.0.0.6:80\":{},"                      /* no-op */
                        "\"10.0.0.7:80\":{\"weight\":2,\"note\":\"kept for later\"}},"
                        "\"new\":{\"[::1]:80\":{\"weight\":9,\"admin\":\"drain\"}}},"
                        "\"written_by\":\"a future version\"}");
    assert_int_equal(ups_state_load(f->rt, f->path), 0);
    ups_gstate_t *app = group(f->rt, "app");
    assert_int_equal(app->noverrides, 3);
    assert_override(app, 0, "10.0.0.2:80", 3, UPS_ADMIN_ENABLED);
    assert_override(app, 1, "10.0.0.4:80", -1, UPS_ADMIN_DRAIN);
    assert_override(app, 2, "10.0.0.7:80", 2, UPS_ADMIN_ENABLED);
    /* A group the file does not name has no overrides any more. */
    assert_int_equal(group(f->rt, "old")->noverrides, 0);
    ups_gstate_t *nw = group(f->rt, "new");
    assert_int_equal(nw->noverrides, 1);
    assert_override(nw, 0, "[::1]:80", 9, UPS_ADMIN_DRAIN);
    assert_int_equal(f->rt->ngroups, 3);
}

static void test_load_malformed(void **state)
{
    fixture_t *f = *state;
    static const char *const bad[] = {
        "",
        "not json",
        "{\"version\":1,\"upstreams\":{}",
        "[]",
        "{}",
        "{\"upstreams\":{}}",
        "{\"version\":2,\"upstreams\":{}}",
        "{\"version\":\"1\",\"upstreams\":{}}",
        "{\"version\":1}",
        "{\"version\":1,\"upstreams\":[]}",
        "{\"version\":1,\"upstreams\":{\"app\":[]}}",
        "{\"version\":1,\"upstreams\":{\"\":{}}}",
        "{\"version\":1,\"upstreams\":{\"app\":{\"10.0.0.1:80\":5}}}",
        "{\"version\":1,\"upstreams\":{\"app\":{\"10.0.0.1:80\":{\"weight\":0}}}}",
        "{\"version\":1,\"upstreams\":{\"app\":{\"10.0.0.1:80\":{\"weight\":1001}}}}",
        "{\"version\":1,\"upstreams\":{\"app\":{\"10.0.0.1:80\":{\"weight\":-1}}}}",
        "{\"version\":1,\"upstreams\":{\"app\":{\"10.0.0.1:80\":{\"weight\":\"5\"}}}}",
        "{\"version\":1,\"upstreams\":{\"app\":{\"10.0.0.1:80\":{\"weight\":5.5}}}}",
        "{\"version\":1,\"upstreams\":{\"app\":{\"10.0.0.1:80\":{\"weight\":true}}}}",
        "{\"version\":1,\"upstreams\":{\"app\":{\"10.0.0.1:80\":{\"admin\":\"off\"}}}}",
        "{\"version\":1,\"upstreams\":{\"app\":{\"10.0.0.1:80\":{\"admin\":1}}}}",
        "{\"version\":1,\"upstreams\":{\"app\":{\"10.0.0.1:80\":{\"admin\":null}}}}",
        "{\"version\":1,\"upstreams\":{\"app\":{\"\":{\"admin\":\"drain\"}}}}",
        "{\"version\":1,\"upstreams\":{\"app\":{"
        "\"0123456789012345678901234567890123456789012345678901234567890123\":{}}}}",
        /* duplicates are ambiguous */
        "{\"version\":1,\"upstreams\":{\"app\":{},\"app\":{}}}",
        "{\"version\":1,\"upstreams\":{\"app\":{\"10.0.0.1:80\":{\"weight\":2},"
        "\"10.0.0.1:80\":{\"weight\":3}}}}",
        /* the first group is fine, the second is not: nothing is applied */
        "{\"version\":1,\"upstreams\":{\"ok\":{\"10.0.0.9:80\":{\"weight\":4}},"
        "\"app\":{\"10.0.0.1:80\":{\"weight\":0}}}}",
    };
    const ups_override_t o[] = {{"10.0.0.1:80", 7, UPS_ADMIN_DRAIN}};
    ups_gstate_t *gs = group(f->rt, "app");
    set_overrides(gs, o, 1);
    for (size_t i = 0; i < pt_countof(bad); i++) {
        write_text(f->path, bad[i]);
        int rc = ups_state_load(f->rt, f->path);
        if (rc != -EINVAL) fprintf(stderr, "accepted: %s\n", bad[i]);
        assert_int_equal(rc, -EINVAL);
        assert_int_equal(f->rt->ngroups, 1);
        assert_int_equal(gs->noverrides, 1);
        assert_override(gs, 0, "10.0.0.1:80", 7, UPS_ADMIN_DRAIN);
    }
    /* The longest address that fits is fine. */
    write_text(f->path, "{\"version\":1,\"upstreams\":{\"app\":{"
                        "\"012345678901234567890123456789012345678901234567890123456789012\":"
                        "{\"weight\":1}}}}");
    assert_int_equal(ups_state_load(f->rt, f->path), 0);
    assert_int_equal(gs->noverrides, 1);
    assert_int_equal(strlen(gs->overrides[0].name), 63);
}

static void test_load_unreadable(void **state)
{
    fixture_t *f = *state;
    const ups_override_t o[] = {{"10.0.0.1:80", 7, UPS_ADMIN_DRAIN}};
    ups_gstate_t *gs = group(f->rt, "app");
    set_overrides(gs, o, 1);
    assert_int_equal(mkdir(f->path, 0755), 0); /* a directory is no state file */
    assert_int_equal(ups_state_load(f->rt, f->path), -EISDIR);
    assert_int_equal(gs->noverrides, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FIXTURE_TEST(test_round_trip),
        FIXTURE_TEST(test_save_replaces),
        FIXTURE_TEST(test_save_errors),
        FIXTURE_TEST(test_load_missing),
        FIXTURE_TEST(test_load_replaces),
        FIXTURE_TEST(test_load_malformed),
        FIXTURE_TEST(test_load_unreadable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
