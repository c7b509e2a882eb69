/* HTTP dates and reason phrases. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <time.h>

#include "http/http.h"

static void test_date_format(void **state)
{
    (void)state;
    static const struct {
        time_t t;
        const char *s;
    } t[] = {
        {0, "Thu, 01 Jan 1970 00:00:00 GMT"},
        {784111777, "Sun, 06 Nov 1994 08:49:37 GMT"},
        {951782400, "Tue, 29 Feb 2000 00:00:00 GMT"},
        {1700000000, "Tue, 14 Nov 2023 22:13:20 GMT"},
        {2147483647, "Tue, 19 Jan 2038 03:14:07 GMT"},
        {4102444799, "Thu, 31 Dec 2099 23:59:59 GMT"},
        {253402300799, "Fri, 31 Dec 9999 23:59:59 GMT"},
        {253402300800, "Fri, 31 Dec 9999 23:59:59 GMT"}, /* clamped */
        {-1, "Wed, 31 Dec 1969 23:59:59 GMT"},
    };
    for (size_t i = 0; i < pt_countof(t); i++) {
        char out[30];
        memset(out, 'x', sizeof(out));
        pt_http_date_format(t[i].t, out);
        assert_string_equal(out, t[i].s);
    }
}

static void test_date_parse_valid(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        time_t t;
    } t[] = {
        {"Sun, 06 Nov 1994 08:49:37 GMT", 784111777},
        {"Sunday, 06-Nov-94 08:49:37 GMT", 784111777},
        {"Sun Nov  6 08:49:37 1994", 784111777},
        {"Sun Nov 06 08:49:37 1994", 784111777},
        {"Thu, 01 Jan 1970 00:00:00 GMT", 0},
        {"Tue, 29 Feb 2000 00:00:00 GMT", 951782400},
        {"Wednesday, 29-Feb-00 00:00:00 GMT", 951782400},
        {"Tue Feb 29 00:00:00 2000", 951782400},
        {"Thu, 31 Dec 2099 23:59:59 GMT", 4102444799},
        {"Tue, 14 Nov 2023 22:13:20 GMT", 1700000000},
        {"Tuesday, 14-Nov-23 22:13:20 GMT", 1700000000},
        {"Sat, 31 Dec 2016 23:59:60 GMT", 1483228800}, /* leap second */
        /* the weekday is not cross-checked */
        {"Mon, 06 Nov 1994 08:49:37 GMT", 784111777},
    };
    for (size_t i = 0; i < pt_countof(t); i++) {
        time_t out = 12345;
        assert_int_equal(pt_http_date_parse(t[i].s, strlen(t[i].s), &out), 0);
        assert_int_equal(out, t[i].t);
    }
}

/* Two-digit years: more than 50 years ahead means the previous century. */
static void test_date_parse_rfc850_year(void **state)
{
    (void)state;
    time_t now = time(NULL);
    struct tm tm;
    assert_non_null(gmtime_r(&now, &tm));
    int year = tm.tm_year + 1900;
    time_t out;

    assert_int_equal(pt_http_date_parse("Monday, 01-Jan-99 00:00:00 GMT", 30, &out), 0);
    assert_true(gmtime_r(&out, &tm) != NULL);
    int y99 = tm.tm_year + 1900;
    assert_int_equal(y99 % 100, 99);
    assert_true(y99 <= year + 50 && y99 > year - 50);

    assert_int_equal(pt_http_date_parse("Monday, 01-Jan-01 00:00:00 GMT", 30, &out), 0);
    assert_true(gmtime_r(&out, &tm) != NULL);
    int y01 = tm.tm_year + 1900;
    assert_int_equal(y01 % 100, 1);
    assert_true(y01 <= year + 50 && y01 > year - 50);
}

static void test_date_parse_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 gmt",
        "sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun,  6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37  GMT",
        " Sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT ",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 31 Nov 1994 08:49:37 GMT",
        "Sun, 32 Dec 1994 08:49:37 GMT",
        "Sun, 29 Feb 1995 08:49:37 GMT",
        "Sun, 29 Feb 1900 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:37 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 06 Nov 1994 08-49-37 GMT",
        "Sun, 06 Nov 1994 08:49:3x GMT",
        "Sun, 0x Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 19x4 08:49:37 GMT",
        "Sun, 06-Nov-1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 UTC",
        "Sunday, 06 Nov 94 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sundae, 06-Nov-94 08:49:37 GMT",
        "Sunday 06-Nov-94 08:49:37 GMT x",
        "Sunday, 6-Nov-94 08:49:37 GMT",
        "Sunday, 06-Nov-9x 08:49:37 GMT",
        "Sun Nov  6 08:49:37 94",
        "Sun Nov 6 08:49:37 1994",
        "Sun Nov  6 08:49:37 1994 ",
        "Sun Nov 6  08:49:37 1994",
        "Sun Nov    08:49:37 1994",
        "Sun Nov 31 08:49:37 1994",
        "Sun Nov  6 08:49:37 199x",
        "Sun Nov  6 25:49:37 1994",
        "1994-11-06T08:49:37Z",
    };
    for (size_t i = 0; i < pt_countof(bad); i++) {
        time_t out = 777;
        int rc = pt_http_date_parse(bad[i], strlen(bad[i]), &out);
        if (rc != -EINVAL) print_error("accepted: \"%s\"\n", bad[i]);
        assert_int_equal(rc, -EINVAL);
    }
}

static void test_date_roundtrip(void **state)
{
    (void)state;
    for (time_t t = -86400 * 365; t < (time_t)4200000000; t += 7777777) {
        char s[30];
        time_t back;
        pt_http_date_format(t, s);
        assert_int_equal(strlen(s), 29);
        assert_int_equal(pt_http_date_parse(s, 29, &back), 0);
        assert_int_equal(back, t);
    }
}

static void test_reasons(void **state)
{
    (void)state;
    static const struct {
        int status;
        const char *reason;
    } t[] = {
        {100, "Continue"},
        {101, "Switching Protocols"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {203, "Non-Authoritative Information"},
        {204, "No Content"},
        {205, "Reset Content"},
        {206, "Partial Content"},
        {300, "Multiple Choices"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {303, "See Other"},
        {304, "Not Modified"},
        {305, "Use Proxy"},
        {307, "Temporary Redirect"},
        {308, "Permanent Redirect"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {402, "Payment Required"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {406, "Not Acceptable"},
        {407, "Proxy Authentication Required"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {410, "Gone"},
        {411, "Length Required"},
        {412, "Precondition Failed"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {415, "Unsupported Media Type"},
        {416, "Range Not Satisfiable"},
        {417, "Expectation Failed"},
        {421, "Misdirected Request"},
        {422, "Unprocessable Content"},
        {426, "Upgrade Required"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {451, "Unavailable For Legal Reasons"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {505, "HTTP Version Not Supported"},
        {103, "Early Hints"},
        {428, "Precondition Required"},
        {511, "Network Authentication Required"},
        {0, "Unknown"},
        {-1, "Unknown"},
        {199, "Unknown"},
        {299, "Unknown"},
        {306, "Unknown"},
        {418, "Unknown"},
        {600, "Unknown"},
        {99999, "Unknown"},
    };
    for (size_t i = 0; i < pt_countof(t); i++) assert_string_equal(pt_http_reason(t[i].status), t[i].reason);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_date_format),          cmocka_unit_test(test_date_parse_valid),
        cmocka_unit_test(test_date_parse_rfc850_year), cmocka_unit_test(test_date_parse_invalid),
        cmocka_unit_test(test_date_roundtrip),       cmocka_unit_test(test_reasons),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
