/* Unit tests: the error log (src/core/log.c): format, levels, reopen. */
#include <errno.h>
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

#include "core/core.h"

static char dir[64];

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return calloc(1, 1);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/pt_log_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    pt_log_open("stderr", PT_LOG_INFO);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd);
}

static void test_levels_and_format(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/a.log", dir);
    assert_int_equal(pt_log_open(path, PT_LOG_WARN), 0);
    assert_false(pt_log_enabled(PT_LOG_INFO));
    assert_true(pt_log_enabled(PT_LOG_ERROR));
    pt_log_info("hidden %d", 1);
    pt_log_warn("shown %d", 2);
    pt_log_error("also %s", "shown");
    char *text = slurp(path);
    assert_null(strstr(text, "hidden"));
    /* "2026-11-25T08:00:00.123Z [warn] shown 2\n" */
    char *line = strstr(text, "[warn] shown 2\n");
    assert_non_null(line);
    assert_true(line - text == 25);
    assert_int_equal(text[4], '-');
    assert_int_equal(text[10], 'T');
    assert_int_equal(text[23], 'Z');
    assert_non_null(strstr(text, "[error] also shown\n"));
    free(text);
}

static void test_reopen_after_rotation(void **state)
{
    (void)state;
    char path[128], rotated[128];
    snprintf(path, sizeof(path), "%s/b.log", dir);
    snprintf(rotated, sizeof(rotated), "%s/b.log.1", dir);
    assert_int_equal(pt_log_open(path, PT_LOG_INFO), 0);
    pt_log_info("before");
    assert_int_equal(rename(path, rotated), 0);
    pt_log_info("still old file");
    assert_int_equal(pt_log_reopen(), 0);
    pt_log_info("after");
    char *old = slurp(rotated), *cur = slurp(path);
    assert_non_null(strstr(old, "before"));
    assert_non_null(strstr(old, "still old file"));
    assert_null(strstr(old, "after"));
    assert_non_null(strstr(cur, "after"));
    free(old);
    free(cur);
}

static void test_long_messages_are_cut_to_one_line(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/c.log", dir);
    assert_int_equal(pt_log_open(path, PT_LOG_INFO), 0);
    char *big = malloc(10000);
    memset(big, 'x', 9999);
    big[9999] = '\0';
    pt_log_info("%s", big);
    free(big);
    char *text = slurp(path);
    size_t len = strlen(text);
    assert_true(len <= 4096);
    assert_int_equal(text[len - 1], '\n');
    assert_null(memchr(text, '\n', len - 1)); /* exactly one line */
    free(text);
}

static void test_level_parse(void **state)
{
    (void)state;
    pt_log_level_t l;
    assert_int_equal(pt_log_level_parse("debug", &l), 0);
    assert_int_equal(l, PT_LOG_DEBUG);
    assert_int_equal(pt_log_level_parse("crit", &l), 0);
    assert_int_equal(l, PT_LOG_CRIT);
    assert_int_equal(pt_log_level_parse("warning", &l), -EINVAL);
    assert_int_equal(pt_log_level_parse("", &l), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels_and_format),
        cmocka_unit_test(test_reopen_after_rotation),
        cmocka_unit_test(test_long_messages_are_cut_to_one_line),
        cmocka_unit_test(test_level_parse),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
