/*
 * HTTP dates (RFC 9110 5.6.7) and reason phrases (RFC 9110 15).
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "http/http.h"

static const char day_names[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char month_names[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
static const char *const long_day_names[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                              "Thursday", "Friday", "Saturday"};

static void put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

void pt_http_date_format(time_t t, char out[30])
{
    struct tm tm;

    /* IMF-fixdate has a 4-digit year: clamp what cannot be written. */
    if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 < 0) {
        memcpy(out, "Thu, 01 Jan 1970 00:00:00 GMT", 30);
        return;
    }
    if (tm.tm_year + 1900 > 9999) {
        memcpy(out, "Fri, 31 Dec 9999 23:59:59 GMT", 30);
        return;
    }
    int year = tm.tm_year + 1900;
    memcpy(out, day_names[tm.tm_wday], 3);
    memcpy(out + 3, ", ", 2);
    put2(out + 5, tm.tm_mday);
    out[7] = ' ';
    memcpy(out + 8, month_names[tm.tm_mon], 3);
    out[11] = ' ';
    put2(out + 12, year / 100);
    put2(out + 14, year % 100);
    out[16] = ' ';
    put2(out + 17, tm.tm_hour);
    out[19] = ':';
    put2(out + 20, tm.tm_min);
    out[22] = ':';
    put2(out + 23, tm.tm_sec);
    memcpy(out + 25, " GMT", 5); /* with the NUL */
}

/* n decimal digits at s; -1 if any is not a digit. */
static int digits(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned char)s[i] - (unsigned)'0';
        if (d > 9) return -1;
        v = v * 10 + (int)d;
    }
    return v;
}

static int month_index(const char *s)
{
    for (int i = 0; i < 12; i++) {
        if (memcmp(s, month_names[i], 3) == 0) return i;
    }
    return -1;
}

static bool is_short_day(const char *s)
{
    for (int i = 0; i < 7; i++) {
        if (memcmp(s, day_names[i], 3) == 0) return true;
    }
    return false;
}

/* "HH:MM:SS" into tm; false when malformed or out of range (60 s: leap second). */
static bool parse_time_of_day(const char *s, struct tm *tm)
{
    if (s[2] != ':' || s[5] != ':') return false;
    tm->tm_hour = digits(s, 2);
    tm->tm_min = digits(s + 3, 2);
    tm->tm_sec = digits(s + 6, 2);
    return tm->tm_hour >= 0 && tm->tm_hour <= 23 && tm->tm_min >= 0 && tm->tm_min <= 59 &&
           tm->tm_sec >= 0 && tm->tm_sec <= 60;
}

static bool leap_year(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Range-checks the date part and converts. */
static int to_time(struct tm *tm, int year, time_t *out)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int max = mdays[tm->tm_mon] + (tm->tm_mon == 1 && leap_year(year));

    if (tm->tm_mday < 1 || tm->tm_mday > max) return -EINVAL;
    tm->tm_year = year - 1900;
    tm->tm_isdst = 0;
    *out = timegm(tm);
    return 0;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" */
static int parse_imf_fixdate(const char *s, time_t *out)
{
    struct tm tm = {0};

    if (!is_short_day(s) || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
        s[16] != ' ' || memcmp(s + 25, " GMT", 4) != 0)
        return -EINVAL;
    tm.tm_mday = digits(s + 5, 2);
    tm.tm_mon = month_index(s + 8);
    int year = digits(s + 12, 4);
    if (tm.tm_mon < 0 || year < 0 || !parse_time_of_day(s + 17, &tm)) return -EINVAL;
    return to_time(&tm, year, out);
}

/*
 * A two-digit year that looks more than 50 years in the future is in the
 * past century (RFC 9110 5.6.7).
 */
static int full_year(int yy)
{
    time_t now = time(NULL);
    struct tm tm;
    int this_year = gmtime_r(&now, &tm) != NULL ? tm.tm_year + 1900 : 2000;
    int year = this_year - this_year % 100 + yy;

    if (year > this_year + 50) year -= 100;
    return year;
}

/* "Sunday, 06-Nov-94 08:49:37 GMT" */
static int parse_rfc850(const char *s, size_t len, time_t *out)
{
    struct tm tm = {0};
    size_t d;

    for (d = 0; d < 7; d++) {
        size_t n = strlen(long_day_names[d]);
        if (len > n && memcmp(s, long_day_names[d], n) == 0 && s[n] == ',') break;
    }
    if (d == 7) return -EINVAL;
    size_t n = strlen(long_day_names[d]) + 1;
    s += n;
    if (len - n != 23 || s[0] != ' ' || s[3] != '-' || s[7] != '-' || s[10] != ' ' ||
        memcmp(s + 19, " GMT", 4) != 0)
        return -EINVAL;
    tm.tm_mday = digits(s + 1, 2);
    tm.tm_mon = month_index(s + 4);
    int yy = digits(s + 8, 2);
    if (tm.tm_mon < 0 || yy < 0 || !parse_time_of_day(s + 11, &tm)) return -EINVAL;
    return to_time(&tm, full_year(yy), out);
}

/* "Sun Nov  6 08:49:37 1994" (also "Nov 06") */
static int parse_asctime(const char *s, time_t *out)
{
    struct tm tm = {0};

    if (!is_short_day(s) || s[3] != ' ' || s[7] != ' ' || s[10] != ' ' || s[19] != ' ')
        return -EINVAL;
    tm.tm_mon = month_index(s + 4);
    tm.tm_mday = s[8] == ' ' ? digits(s + 9, 1) : digits(s + 8, 2);
    int year = digits(s + 20, 4);
    if (tm.tm_mon < 0 || year < 0 || !parse_time_of_day(s + 11, &tm)) return -EINVAL;
    return to_time(&tm, year, out);
}

int pt_http_date_parse(const char *s, size_t len, time_t *out)
{
    if (len == 29 && s[3] == ',') return parse_imf_fixdate(s, out);
    if (len == 24 && s[3] == ' ') return parse_asctime(s, out);
    if (len >= 30 && len <= 33) return parse_rfc850(s, len, out);
    return -EINVAL;
}

const char *pt_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 511: return "Network Authentication Required";
    default: return "Unknown";
    }
}

/* ---- percent-decoding ---- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int pt_http_pct_decode(const char *src, size_t len, char *dst, size_t *out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            if (i + 2 >= len) return -EINVAL;
            int hi = hex_value(src[i + 1]), lo = hex_value(src[i + 2]);
            if (hi < 0 || lo < 0) return -EINVAL;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (c == '\0') return -EINVAL;
        if (dst) dst[o] = c;
        o++;
    }
    if (dst) dst[o] = '\0';
    *out_len = o;
    return 0;
}
