/* Unit tests for src/core/str.c and src/core/time.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "core/core.h"

static void test_strcaseeq(void **state)
{
    pt_unused(state);
    assert_true(pt_strcaseeq("Content-Length", 14, "content-length", 14));
    assert_true(pt_strcaseeq_lit("HOST", 4, "host"));
    assert_true(pt_strcaseeq("", 0, "", 0));
    assert_false(pt_strcaseeq("host", 4, "hosts", 5));
    assert_false(pt_strcaseeq("hosu", 4, "host", 4));
    /* ASCII only: '@' (0x40) and '`' (0x60) differ by the case bit but are not letters. */
    assert_false(pt_strcaseeq("@", 1, "`", 1));
    assert_false(pt_strcaseeq("[", 1, "{", 1));
    assert_false(pt_strcaseeq("\xc9", 1, "\xe9", 1));
    /* pairs that differ only in bit 0x20 but are not letters */
    assert_false(pt_strcaseeq("@", 1, "`", 1));
    assert_false(pt_strcaseeq("[", 1, "{", 1));
    assert_false(pt_strcaseeq("^", 1, "~", 1));
    assert_false(pt_strcaseeq("\x0d", 1, "-", 1));
    assert_true(pt_strcaseeq("X-Forwarded-For", 15, "x-forwarded-for", 15));
    /* Lengths, not NULs, delimit. */
    assert_true(pt_strcaseeq("ab\0c", 4, "AB\0C", 4));
}

/* Escapes s and compares with want, also checking the NUL and return. */
static void esc(const char *s, size_t len, const char *want)
{
    char buf[256];
    memset(buf, 'Z', sizeof(buf));
    size_t n = pt_json_escape(buf, sizeof(buf), s, len);
    assert_int_equal(n, strlen(want));
    assert_string_equal(buf, want);
}

static void test_json_escape(void **state)
{
    pt_unused(state);
    esc("", 0, "\"\"");
    esc("plain", 5, "\"plain\"");
    esc("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
    esc("l1\nl2\r\t", 7, "\"l1\\nl2\\r\\t\"");
    esc("\x01\x1f\b\f", 4, "\"\\u0001\\u001f\\u0008\\u000c\"");
    esc("nul\0x", 5, "\"nul\\u0000x\"");
    esc("\x7f", 1, "\"\\u007f\"");
    /* UTF-8 and other high bytes pass through unchanged. */
    /* valid UTF-8 passes through; a stray byte becomes \u00XX (valid JSON) */
    esc("caf\xc3\xa9 \xe2\x82\xac \xff", 11, "\"caf\xc3\xa9 \xe2\x82\xac \\u00ff\"");
    esc("\xc3", 1, "\"\\u00c3\"");               /* truncated sequence */
    esc("\xed\xa0\x80", 3, "\"\\u00ed\\u00a0\\u0080\""); /* surrogate */
    esc("/<>'", 4, "\"/<>'\"");
}

static void test_json_escape_truncation(void **state)
{
    pt_unused(state);
    char buf[16];
    /* "a\nb" -> "\"a\\nb\"" = 6 bytes. */
    assert_int_equal(pt_json_escape(NULL, 0, "a\nb", 3), 6);
    memset(buf, 'Z', sizeof(buf));
    assert_int_equal(pt_json_escape(buf, 7, "a\nb", 3), 6); /* fits with NUL */
    assert_string_equal(buf, "\"a\\nb\"");
    memset(buf, 'Z', sizeof(buf));
    assert_int_equal(pt_json_escape(buf, 6, "a\nb", 3), 6); /* no room for NUL */
    assert_string_equal(buf, "\"a\\nb");
    /* A cut never splits an escape. */
    memset(buf, 'Z', sizeof(buf));
    assert_int_equal(pt_json_escape(buf, 4, "a\nb", 3), 6);
    assert_string_equal(buf, "\"a");
    memset(buf, 'Z', sizeof(buf));
    assert_int_equal(pt_json_escape(buf, 8, "\x01\x02", 2), 14);
    assert_string_equal(buf, "\"\\u0001");
    memset(buf, 'Z', sizeof(buf));
    assert_int_equal(pt_json_escape(buf, 1, "x", 1), 3);
    assert_int_equal(buf[0], '\0');
    assert_int_equal(buf[1], 'Z');
}

static void test_time(void **state)
{
    pt_unused(state);
    uint64_t wall = pt_time_wall_ms();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    assert_true(wall <= now && now - wall < 1000);
    assert_true(wall > 1600000000000ull);

    uint64_t us1 = pt_time_mono_us();
    uint64_t ms1 = pt_time_mono_ms();
    struct timespec d = {.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000};
    nanosleep(&d, NULL);
    uint64_t us2 = pt_time_mono_us();
    uint64_t ms2 = pt_time_mono_ms();
    assert_true(us2 - us1 >= 20000);
    assert_true(ms2 - ms1 >= 19 && ms2 - ms1 < 1000);
    /* Microsecond resolution: two quick reads are never a coarse tick apart. */
    uint64_t a = pt_time_mono_us(), b = pt_time_mono_us();
    assert_true(b >= a && b - a < 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strcaseeq),
        cmocka_unit_test(test_json_escape),
        cmocka_unit_test(test_json_escape_truncation),
        cmocka_unit_test(test_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
