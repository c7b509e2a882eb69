/*
 * Unit tests for src/http/static.c and src/http/mime.c.
 *
 * The group setup builds a document root in a mkdtemp() directory (files
 * with a fixed mtime, a directory with and one without an index, a FIFO,
 * a file outside the root) and removes it afterwards. Requests are built by
 * hand (method_id + headers), not with the parser.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/http.h"
#include "test_util.h"

/* Sun, 06 Nov 1994 08:49:37 GMT, the RFC example date. */
#define MTIME 784111777
#define LAST_MODIFIED "Sun, 06 Nov 1994 08:49:37 GMT"
#define HELLO "0123456789abcdefghij"        /* 20 bytes */
#define HELLO_ETAG "\"2ebc98a1-14\""         /* mtime-size in hex */
#define INDEX_HTML "<h1>index</h1>\n"        /* 15 bytes */

static char tmpdir[64];
static char root[128];

static const char *const index_names[] = {"index.htm", "index.html"};

typedef struct fixture {
    pt_pool_t *pool;
    pt_static_conf_t conf;
    pt_static_result_t res;
    pt_http_hdr_t hdrs[8];
} fixture_t;

/* ---------------------------------------------------------------- */
/* Document root                                                     */
/* ---------------------------------------------------------------- */

static void write_file(const char *rel, const char *data)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", tmpdir, rel);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, strlen(data), f), strlen(data));
    assert_int_equal(fclose(f), 0);
    struct timespec ts[2] = {{MTIME, 0}, {MTIME, 0}};
    assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
}

static void make_dir(const char *rel)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", tmpdir, rel);
    assert_int_equal(mkdir(p, 0755), 0);
}

static int group_setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/pt_static_XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    snprintf(root, sizeof(root), "%s/www", tmpdir);
    make_dir("www");
    write_file("secret.txt", "outside the root\n");
    write_file("www/hello.txt", HELLO);
    write_file("www/index.html", INDEX_HTML);
    write_file("www/a b.txt", "spaced\n");
    write_file("www/empty.txt", "");
    write_file("www/UPPER.PNG", "png");
    write_file("www/noext", "x");
    write_file("www/data.unknownext", "x");
    make_dir("www/sub");
    write_file("www/sub/index.html", "sub index\n");
    make_dir("www/d ir");
    write_file("www/d ir/index.html", "d ir\n");
    make_dir("www/noindex");
    write_file("www/noindex/other.txt", "x");
    make_dir("www/dirindex");
    make_dir("www/dirindex/index.htm"); /* a directory named like an index: skipped */
    write_file("www/dirindex/index.html", "second\n");
    char p[256];
    snprintf(p, sizeof(p), "%s/www/fifo", tmpdir);
    if (mkfifo(p, 0644) < 0) return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return remove_tree(tmpdir);
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    if (!fx) return -1;
    fx->pool = pt_pool_create(0);
    if (!fx->pool) return -1;
    fx->conf = (pt_static_conf_t){
        .root = root,
        .index = index_names,
        .nindex = pt_countof(index_names),
        .default_type = NULL,
        .types = NULL,
        .etag = true,
    };
    fx->res.fd = -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    if (fx->res.fd >= 0) close(fx->res.fd);
    pt_pool_destroy(fx->pool);
    free(fx);
    return 0;
}

/* ---------------------------------------------------------------- */
/* Helpers                                                           */
/* ---------------------------------------------------------------- */

/*
 * Serves path with the given method and headers (name, value pairs, NULL
 * terminated). Checks that no fd leaks: the only new fd is res.fd.
 */
static int serve(fixture_t *fx, pt_http_method_t m, const char *path, ...)
{
    pt_http_req_t req = {0};
    req.method_id = m;
    req.path = path;
    req.path_len = strlen(path);
    req.headers = fx->hdrs;
    va_list ap;
    va_start(ap, path);
    const char *name;
    while ((name = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        assert_true(req.nheaders < pt_countof(fx->hdrs));
        fx->hdrs[req.nheaders++] = (pt_http_hdr_t){name, strlen(name), value, strlen(value)};
    }
    va_end(ap);

    int before = count_fds();
    int rc = pt_http_static_serve(fx->pool, &fx->conf, &req, path, strlen(path), &fx->res);
    assert_int_equal(count_fds(), before + (fx->res.fd >= 0 ? 1 : 0));
    if (fx->res.status >= 400) assert_int_equal(fx->res.fd, -1);
    return rc;
}

#define SERVE(fx, m, ...) serve((fx), (m), __VA_ARGS__, (const char *)NULL)

/* The headers as a NUL-terminated string (headers_len checked too). */
static const char *hdrs(const fixture_t *fx)
{
    if (fx->res.headers_len == 0) return "";
    assert_non_null(fx->res.headers);
    assert_int_equal(strlen(fx->res.headers), fx->res.headers_len);
    return fx->res.headers;
}

static void assert_has_line(const fixture_t *fx, const char *line)
{
    char want[512];
    snprintf(want, sizeof(want), "%s\r\n", line);
    const char *h = hdrs(fx);
    const char *p = strstr(h, want);
    if (!p || (p != h && p[-1] != '\n')) fail_msg("missing header line '%s' in:\n%s", line, h);
}

static void assert_no_header(const fixture_t *fx, const char *name)
{
    char want[128];
    snprintf(want, sizeof(want), "%s:", name);
    const char *h = hdrs(fx);
    for (const char *p = h; (p = strstr(p, want)) != NULL; p++)
        if (p == h || p[-1] == '\n') fail_msg("unexpected header %s in:\n%s", name, h);
}

static void assert_status(fixture_t *fx, int status)
{
    assert_int_equal(fx->res.status, status);
}

static void assert_body(const fixture_t *fx, const char *expect)
{
    size_t n = strlen(expect);
    assert_true(fx->res.fd >= 0);
    assert_int_equal(fx->res.length, (off_t)n);
    char buf[256];
    assert_true(n < sizeof(buf));
    assert_int_equal(pread(fx->res.fd, buf, n, fx->res.offset), (ssize_t)n);
    assert_memory_equal(buf, expect, n);
}

/* ---------------------------------------------------------------- */
/* Plain files, index, redirects                                     */
/* ---------------------------------------------------------------- */

static void test_plain_file(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt"), 0);
    assert_status(fx, 200);
    assert_int_equal(fx->res.offset, 0);
    assert_body(fx, HELLO);
    assert_string_equal(hdrs(fx), "Content-Type: text/plain; charset=utf-8\r\n"
                                  "Content-Length: 20\r\n"
                                  "Last-Modified: " LAST_MODIFIED "\r\n"
                                  "ETag: " HELLO_ETAG "\r\n"
                                  "Accept-Ranges: bytes\r\n");
}

static void test_query_ignored(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt?v=1&x=/../.."), 0);
    assert_status(fx, 200);
    assert_body(fx, HELLO);
}

static void test_root_trailing_slash(void **state)
{
    fixture_t *fx = *state;
    char r[160];
    snprintf(r, sizeof(r), "%s//", root);
    fx->conf.root = r;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt"), 0);
    assert_status(fx, 200);
    assert_body(fx, HELLO);
}

static void test_index(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/"), 0);
    assert_status(fx, 200);
    assert_body(fx, INDEX_HTML);
    assert_has_line(fx, "Content-Type: text/html; charset=utf-8");
    assert_has_line(fx, "Content-Length: 15");
}

static void test_index_in_subdir(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/sub/"), 0);
    assert_status(fx, 200);
    assert_body(fx, "sub index\n");
}

static void test_index_skips_directory(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/dirindex/"), 0);
    assert_status(fx, 200);
    assert_body(fx, "second\n");
}

static void test_dir_redirect(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/sub"), 0);
    assert_status(fx, 301);
    assert_int_equal(fx->res.fd, -1);
    assert_string_equal(hdrs(fx), "Location: /sub/\r\n");
}

static void test_dir_redirect_query(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/sub?x=1&y=%20"), 0);
    assert_status(fx, 301);
    assert_string_equal(hdrs(fx), "Location: /sub/?x=1&y=%20\r\n");
}

static void test_dir_redirect_encoded(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(SERVE(fx, PT_HTTP_HEAD, "/d%20ir"), 0);
    assert_status(fx, 301);
    assert_string_equal(hdrs(fx), "Location: /d%20ir/\r\n");
}

/* "//sub" must not become "Location: //sub/", a link to host "sub". */
static void test_dir_redirect_no_open_redirect(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "//sub"), 0);
    assert_status(fx, 301);
    assert_string_equal(hdrs(fx), "Location: /sub/\r\n");
}

static void test_dot_segments_resolved(void **state)
{
    fixture_t *fx = *state;
    static const char *const ok[] = {"/sub/../hello.txt", "/./hello.txt", "//hello.txt",
                                     "/sub//..//hello.txt", "/%68ello.txt", "/sub%2F..%2Fhello.txt"};
    for (size_t i = 0; i < pt_countof(ok); i++) {
        assert_int_equal(SERVE(fx, PT_HTTP_GET, ok[i]), 0);
        assert_status(fx, 200);
        assert_body(fx, HELLO);
        close(fx->res.fd);
        fx->res.fd = -1;
    }
    /* "/sub/." names the directory with a slash: its index, no redirect. */
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/sub/."), 0);
    assert_status(fx, 200);
    assert_body(fx, "sub index\n");
}

static void test_percent_decoded_space(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/a%20b.txt"), 0);
    assert_status(fx, 200);
    assert_body(fx, "spaced\n");
}

/* ---------------------------------------------------------------- */
/* Errors                                                            */
/* ---------------------------------------------------------------- */

static void test_not_found(void **state)
{
    fixture_t *fx = *state;
    static const char *const paths[] = {"/nope.txt", "/hello.txt/", "/hello.txt/x", "/sub/nope/"};
    for (size_t i = 0; i < pt_countof(paths); i++) {
        assert_int_equal(SERVE(fx, PT_HTTP_GET, paths[i]), 0);
        assert_status(fx, 404);
        assert_int_equal(fx->res.fd, -1);
        assert_string_equal(hdrs(fx), "");
    }
}

static void test_forbidden_dir_without_index(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/noindex/"), 0);
    assert_status(fx, 403);
    fx->conf.nindex = 0;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/"), 0);
    assert_status(fx, 403);
}

/* The FIFO has no writer: a blocking open would hang this test. */
static void test_forbidden_fifo(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/fifo"), 0);
    assert_status(fx, 403);
}

static void test_traversal(void **state)
{
    fixture_t *fx = *state;
    static const char *const bad[] = {
        "/../etc/passwd",          "/a/../../x",         "/%2e%2e/%2e%2e/etc/passwd",
        "/%2e%2e%2fsecret.txt",    "/sub/../../secret.txt", "/..",
        "/sub/..%2f..%2fsecret.txt", "/./../secret.txt",
    };
    for (size_t i = 0; i < pt_countof(bad); i++) {
        assert_int_equal(SERVE(fx, PT_HTTP_GET, bad[i]), 0);
        if (fx->res.status != 400) fail_msg("%s: status %d", bad[i], fx->res.status);
    }
}

static void test_bad_paths(void **state)
{
    fixture_t *fx = *state;
    static const char *const bad[] = {
        "/hello.txt%00.png", "/%00", "/%zz", "/%2", "/abc%", "/%g0", "hello.txt",
        "",                  "*",    "/a b", "/a\tb", "/a\r\nX: y", "/ok?a\nb",
    };
    for (size_t i = 0; i < pt_countof(bad); i++) {
        assert_int_equal(SERVE(fx, PT_HTTP_GET, bad[i]), 0);
        if (fx->res.status != 400) fail_msg("'%s': status %d", bad[i], fx->res.status);
    }
}

static void test_method_not_allowed(void **state)
{
    fixture_t *fx = *state;
    static const pt_http_method_t ms[] = {PT_HTTP_POST, PT_HTTP_PUT, PT_HTTP_DELETE,
                                          PT_HTTP_OPTIONS, PT_HTTP_OTHER};
    for (size_t i = 0; i < pt_countof(ms); i++) {
        assert_int_equal(SERVE(fx, ms[i], "/hello.txt"), 0);
        assert_status(fx, 405);
        assert_int_equal(fx->res.fd, -1);
        assert_string_equal(hdrs(fx), "Allow: GET, HEAD\r\n");
    }
}

/* ---------------------------------------------------------------- */
/* MIME types                                                        */
/* ---------------------------------------------------------------- */

static void test_mime_builtin(void **state)
{
    (void)state;
    /* Every built-in entry: a broken sort order makes the binary search miss some. */
    static const char *const map[][2] = {
        {"a.aac", "audio/aac"},  {"a.apng", "image/apng"}, {"a.atom", "application/atom+xml"},
        {"a.avif", "image/avif"}, {"a.bin", "application/octet-stream"}, {"a.bmp", "image/bmp"},
        {"a.css", "text/css; charset=utf-8"}, {"a.csv", "text/csv; charset=utf-8"},
        {"a.eot", "application/vnd.ms-fontobject"}, {"a.flac", "audio/flac"},
        {"a.gif", "image/gif"}, {"a.gz", "application/gzip"},
        {"a.htm", "text/html; charset=utf-8"}, {"a.html", "text/html; charset=utf-8"},
        {"a.ico", "image/x-icon"}, {"a.ics", "text/calendar; charset=utf-8"},
        {"a.jpeg", "image/jpeg"}, {"a.jpg", "image/jpeg"},
        {"a.js", "text/javascript; charset=utf-8"}, {"a.json", "application/json"},
        {"a.jsonld", "application/ld+json"}, {"a.jxl", "image/jxl"},
        {"a.m3u8", "application/vnd.apple.mpegurl"}, {"a.m4a", "audio/mp4"},
        {"a.m4v", "video/mp4"}, {"a.map", "application/json"},
        {"a.md", "text/markdown; charset=utf-8"}, {"a.mjs", "text/javascript; charset=utf-8"},
        {"a.mov", "video/quicktime"}, {"a.mp3", "audio/mpeg"}, {"a.mp4", "video/mp4"},
        {"a.mpd", "application/dash+xml"}, {"a.oga", "audio/ogg"}, {"a.ogg", "audio/ogg"},
        {"a.ogv", "video/ogg"}, {"a.opus", "audio/ogg"}, {"a.otf", "font/otf"},
        {"a.pdf", "application/pdf"}, {"a.png", "image/png"},
        {"a.rss", "application/rss+xml"}, {"a.svg", "image/svg+xml"},
        {"a.tar", "application/x-tar"}, {"a.tif", "image/tiff"}, {"a.tiff", "image/tiff"},
        {"a.ts", "video/mp2t"}, {"a.ttf", "font/ttf"}, {"a.txt", "text/plain; charset=utf-8"},
        {"a.wasm", "application/wasm"}, {"a.wav", "audio/wav"}, {"a.webm", "video/webm"},
        {"a.webmanifest", "application/manifest+json"}, {"a.webp", "image/webp"},
        {"a.woff", "font/woff"}, {"a.woff2", "font/woff2"},
        {"a.xhtml", "application/xhtml+xml"}, {"a.xml", "application/xml"},
        {"a.yaml", "application/yaml"}, {"a.yml", "application/yaml"},
        {"a.zip", "application/zip"}, {"a.zst", "application/zstd"},
    };
    for (size_t i = 0; i < pt_countof(map); i++) {
        const char *got = pt_http_mime_type(NULL, map[i][0], strlen(map[i][0]));
        if (strcmp(got, map[i][1]) != 0) fail_msg("%s: got %s", map[i][0], got);
    }
    assert_int_equal(pt_countof(map), 60);
}

static void test_mime_case_and_edges(void **state)
{
    (void)state;
    const pt_static_conf_t conf = {.default_type = "text/x-default"};
#define MT(c, s) pt_http_mime_type((c), (s), strlen(s))
    assert_string_equal(MT(NULL, "PHOTO.JPG"), "image/jpeg");
    assert_string_equal(MT(NULL, "/x/Page.HtMl"), "text/html; charset=utf-8");
    assert_string_equal(MT(NULL, "archive.tar.gz"), "application/gzip");
    assert_string_equal(MT(NULL, "noext"), "application/octet-stream");
    assert_string_equal(MT(NULL, "trailingdot."), "application/octet-stream");
    assert_string_equal(MT(NULL, ".png"), "application/octet-stream"); /* hidden file */
    assert_string_equal(MT(NULL, "/dir.png/file"), "application/octet-stream");
    assert_string_equal(MT(NULL, "a.verylongextensionname"), "application/octet-stream");
    assert_string_equal(MT(NULL, "a.pn"), "application/octet-stream");
    assert_string_equal(MT(NULL, "a.pngx"), "application/octet-stream");
    assert_string_equal(MT(&conf, "a.unknown"), "text/x-default");
    assert_string_equal(MT(&conf, "a.css"), "text/css; charset=utf-8");
    assert_string_equal(pt_http_mime_type(NULL, "a.png\0x", 7), "application/octet-stream");
    assert_string_equal(pt_http_mime_type(NULL, "a.pngx", 5), "image/png"); /* len honored */
#undef MT
}

static void test_mime_custom_table(void **state)
{
    (void)state;
    static const pt_mime_type_t types[] = {{"foo", "application/x-foo"}, {"png", "image/x-custom"}};
    const pt_static_conf_t conf = {.types = types, .ntypes = 2, .default_type = "text/plain"};
    assert_string_equal(pt_http_mime_type(&conf, "a.FOO", 5), "application/x-foo");
    assert_string_equal(pt_http_mime_type(&conf, "a.png", 5), "image/x-custom");
    /* The custom table replaces the built-in one. */
    assert_string_equal(pt_http_mime_type(&conf, "a.css", 5), "text/plain");
}

static void test_mime_in_response(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/UPPER.PNG"), 0);
    assert_status(fx, 200);
    assert_has_line(fx, "Content-Type: image/png");
    close(fx->res.fd);
    fx->res.fd = -1;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/noext"), 0);
    assert_has_line(fx, "Content-Type: application/octet-stream");
    close(fx->res.fd);
    fx->res.fd = -1;
    fx->conf.default_type = "text/x-fallback";
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/data.unknownext"), 0);
    assert_has_line(fx, "Content-Type: text/x-fallback");
}

/* ---------------------------------------------------------------- */
/* Validators and conditionals                                       */
/* ---------------------------------------------------------------- */

static void test_etag_disabled(void **state)
{
    fixture_t *fx = *state;
    fx->conf.etag = false;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt"), 0);
    assert_status(fx, 200);
    assert_no_header(fx, "ETag");
    assert_has_line(fx, "Last-Modified: " LAST_MODIFIED);
    close(fx->res.fd);
    fx->res.fd = -1;
    /* No ETag, so no list can match it; "*" still does. */
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "If-None-Match", HELLO_ETAG), 0);
    assert_status(fx, 200);
    close(fx->res.fd);
    fx->res.fd = -1;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "If-None-Match", "*"), 0);
    assert_status(fx, 304);
    assert_string_equal(hdrs(fx), "Last-Modified: " LAST_MODIFIED "\r\n");
}

static void assert_304(fixture_t *fx)
{
    assert_status(fx, 304);
    assert_int_equal(fx->res.fd, -1);
    assert_int_equal(fx->res.length, 0);
    assert_string_equal(hdrs(fx), "ETag: " HELLO_ETAG "\r\nLast-Modified: " LAST_MODIFIED "\r\n");
}

static void test_inm_exact(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "If-None-Match", HELLO_ETAG), 0);
    assert_304(fx);
}

static void test_inm_weak(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "If-None-Match", "W/" HELLO_ETAG), 0);
    assert_304(fx);
}

static void test_inm_list_and_star(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(SERVE(fx, PT_HTTP_HEAD, "/hello.txt", "if-none-match",
                           "\"a,b\", W/\"x\" ,\t" HELLO_ETAG ", \"z\""),
                     0);
    assert_304(fx);
    /* Split over two fields. */
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "If-None-Match", "\"x\"",
                           "If-None-Match", HELLO_ETAG),
                     0);
    assert_304(fx);
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "If-None-Match", "*"), 0);
    assert_304(fx);
}

static void test_inm_mismatch(void **state)
{
    fixture_t *fx = *state;
    /* A mismatching If-None-Match also disables If-Modified-Since. */
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "If-None-Match",
                           "\"2ebc98a1-15\", \"2ebc98a1-14", "If-Modified-Since", LAST_MODIFIED),
                     0);
    assert_status(fx, 200);
    assert_body(fx, HELLO);
}

static void test_ims(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "If-Modified-Since", LAST_MODIFIED), 0);
    assert_304(fx);
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "If-Modified-Since",
                           "Sun, 06 Nov 1994 08:49:38 GMT"),
                     0);
    assert_304(fx);
    assert_int_equal(SERVE(fx, PT_HTTP_HEAD, "/hello.txt", "If-Modified-Since",
                           "Mon, 01 Jan 2024 00:00:00 GMT"),
                     0);
    assert_304(fx);
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "If-Modified-Since",
                           "Sun, 06 Nov 1994 08:49:36 GMT"),
                     0);
    assert_status(fx, 200);
    assert_body(fx, HELLO);
    close(fx->res.fd);
    fx->res.fd = -1;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "If-Modified-Since", "yesterday"), 0);
    assert_status(fx, 200);
}

static void test_if_match(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "If-Match", "\"other\""), 0);
    assert_status(fx, 412);
    assert_string_equal(hdrs(fx), "");
    /* Strong comparison: a weak tag never matches. */
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "If-Match", "W/" HELLO_ETAG), 0);
    assert_status(fx, 412);
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "If-Match", "\"x\", " HELLO_ETAG), 0);
    assert_status(fx, 200);
    close(fx->res.fd);
    fx->res.fd = -1;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "If-Match", "*"), 0);
    assert_status(fx, 200);
    close(fx->res.fd);
    fx->res.fd = -1;
    /* If-Match wins over If-None-Match's 304 ordering: 412 first. */
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "If-Match", "\"x\"", "If-None-Match",
                           HELLO_ETAG),
                     0);
    assert_status(fx, 412);
}

static void test_if_unmodified_since(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "If-Unmodified-Since",
                           "Sun, 06 Nov 1994 08:49:36 GMT"),
                     0);
    assert_status(fx, 412);
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "If-Unmodified-Since", LAST_MODIFIED),
                     0);
    assert_status(fx, 200);
    close(fx->res.fd);
    fx->res.fd = -1;
    /* Ignored when If-Match is present (and matches). */
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "If-Match", HELLO_ETAG,
                           "If-Unmodified-Since", "Sun, 06 Nov 1994 08:49:36 GMT"),
                     0);
    assert_status(fx, 200);
}

/* ---------------------------------------------------------------- */
/* Ranges                                                            */
/* ---------------------------------------------------------------- */

static void assert_206(fixture_t *fx, const char *range, off_t first, off_t last)
{
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "Range", range), 0);
    if (fx->res.status != 206) fail_msg("%s: status %d", range, fx->res.status);
    assert_int_equal(fx->res.offset, first);
    char expect[32];
    snprintf(expect, sizeof(expect), "%.*s", (int)(last - first + 1), &HELLO[first]);
    assert_body(fx, expect);
    char line[64];
    snprintf(line, sizeof(line), "Content-Range: bytes %jd-%jd/20", (intmax_t)first,
             (intmax_t)last);
    assert_has_line(fx, line);
    snprintf(line, sizeof(line), "Content-Length: %jd", (intmax_t)(last - first + 1));
    assert_has_line(fx, line);
    assert_has_line(fx, "ETag: " HELLO_ETAG);
    close(fx->res.fd);
    fx->res.fd = -1;
}

static void test_range_forms(void **state)
{
    fixture_t *fx = *state;
    assert_206(fx, "bytes=0-4", 0, 4);
    assert_206(fx, "bytes=10-", 10, 19);
    assert_206(fx, "bytes=-5", 15, 19);
    assert_206(fx, "bytes=19-19", 19, 19);
    assert_206(fx, "BYTES=3-3", 3, 3);
    assert_206(fx, "bytes= 2-3 ,", 2, 3);
}

static void test_range_clamp(void **state)
{
    fixture_t *fx = *state;
    assert_206(fx, "bytes=5-100", 5, 19);
    assert_206(fx, "bytes=-50", 0, 19);
    assert_206(fx, "bytes=0-99999999999999999999999", 0, 19);
    /* One satisfiable range among unsatisfiable ones: 206 for it. */
    assert_206(fx, "bytes=100-200, 4-6", 4, 6);
}

static void test_range_unsatisfiable(void **state)
{
    fixture_t *fx = *state;
    static const char *const r[] = {"bytes=20-", "bytes=20-30", "bytes=-0",
                                    "bytes=99999999999999999999-", "bytes=30-40, 50-"};
    for (size_t i = 0; i < pt_countof(r); i++) {
        assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "Range", r[i]), 0);
        if (fx->res.status != 416) fail_msg("%s: status %d", r[i], fx->res.status);
        assert_int_equal(fx->res.fd, -1);
        assert_string_equal(hdrs(fx), "Content-Range: bytes */20\r\n");
    }
}

static void test_range_invalid_ignored(void **state)
{
    fixture_t *fx = *state;
    static const char *const r[] = {"bytes=5-2", "items=0-1", "bytes=abc", "bytes=",
                                    "bytes", "bytes=1", "bytes=--1", "bytes=1-2-3",
                                    "bytes=0-1;2-3", "bytes =0-1", "bytes=0 -1", "bytes=,"};
    for (size_t i = 0; i < pt_countof(r); i++) {
        assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "Range", r[i]), 0);
        if (fx->res.status != 200) fail_msg("'%s': status %d", r[i], fx->res.status);
        assert_body(fx, HELLO);
        assert_no_header(fx, "Content-Range");
        close(fx->res.fd);
        fx->res.fd = -1;
    }
}

static void test_range_multi_whole(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "Range", "bytes=0-1,5-6"), 0);
    assert_status(fx, 200);
    assert_body(fx, HELLO);
    assert_has_line(fx, "Content-Length: 20");
    assert_no_header(fx, "Content-Range");
}

static void test_if_range(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "Range", "bytes=1-2", "If-Range",
                           HELLO_ETAG),
                     0);
    assert_status(fx, 206);
    assert_body(fx, "12");
    close(fx->res.fd);
    fx->res.fd = -1;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "Range", "bytes=1-2", "If-Range",
                           LAST_MODIFIED),
                     0);
    assert_status(fx, 206);
    close(fx->res.fd);
    fx->res.fd = -1;
    /* Mismatches: other tag, weak tag, other date, garbage. The whole file. */
    static const char *const no[] = {"\"other\"", ("W/" HELLO_ETAG),
                                     "Sun, 06 Nov 1994 08:49:38 GMT", "garbage"};
    for (size_t i = 0; i < pt_countof(no); i++) {
        assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "Range", "bytes=1-2", "If-Range",
                               no[i]),
                         0);
        if (fx->res.status != 200) fail_msg("%s: status %d", no[i], fx->res.status);
        assert_body(fx, HELLO);
        close(fx->res.fd);
        fx->res.fd = -1;
    }
    /* If-Range without Range does nothing. */
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "If-Range", "\"other\""), 0);
    assert_status(fx, 200);
}

static void test_range_after_conditionals(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "Range", "bytes=0-1", "If-None-Match",
                           HELLO_ETAG),
                     0);
    assert_304(fx);
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt", "Range", "bytes=0-1", "If-Match",
                           HELLO_ETAG),
                     0);
    assert_status(fx, 206);
    assert_body(fx, "01");
}

/* ---------------------------------------------------------------- */
/* HEAD, empty files                                                 */
/* ---------------------------------------------------------------- */

static void test_head(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/hello.txt"), 0);
    char *get = strdup(hdrs(fx));
    assert_non_null(get);
    close(fx->res.fd);
    fx->res.fd = -1;
    /* Range applies to GET only: HEAD gets the 200 headers. */
    assert_int_equal(SERVE(fx, PT_HTTP_HEAD, "/hello.txt", "Range", "bytes=0-1"), 0);
    assert_status(fx, 200);
    assert_int_equal(fx->res.fd, -1);
    assert_int_equal(fx->res.length, 0);
    assert_string_equal(hdrs(fx), get);
    free(get);
}

static void test_empty_file(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(SERVE(fx, PT_HTTP_GET, "/empty.txt"), 0);
    assert_status(fx, 200);
    assert_int_equal(fx->res.fd, -1);
    assert_int_equal(fx->res.length, 0);
    assert_string_equal(hdrs(fx), "Content-Type: text/plain; charset=utf-8\r\n"
                                  "Content-Length: 0\r\n"
                                  "Last-Modified: " LAST_MODIFIED "\r\n"
                                  "ETag: \"2ebc98a1-0\"\r\n"
                                  "Accept-Ranges: bytes\r\n");
    static const char *const r[] = {"bytes=0-", "bytes=0-0", "bytes=-1"};
    for (size_t i = 0; i < pt_countof(r); i++) {
        assert_int_equal(SERVE(fx, PT_HTTP_GET, "/empty.txt", "Range", r[i]), 0);
        assert_status(fx, 416);
        assert_string_equal(hdrs(fx), "Content-Range: bytes */0\r\n");
    }
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_plain_file),
        T(test_query_ignored),
        T(test_root_trailing_slash),
        T(test_index),
        T(test_index_in_subdir),
        T(test_index_skips_directory),
        T(test_dir_redirect),
        T(test_dir_redirect_query),
        T(test_dir_redirect_encoded),
        T(test_dir_redirect_no_open_redirect),
        T(test_dot_segments_resolved),
        T(test_percent_decoded_space),
        T(test_not_found),
        T(test_forbidden_dir_without_index),
        T(test_forbidden_fifo),
        T(test_traversal),
        T(test_bad_paths),
        T(test_method_not_allowed),
        T(test_mime_builtin),
        T(test_mime_case_and_edges),
        T(test_mime_custom_table),
        T(test_mime_in_response),
        T(test_etag_disabled),
        T(test_inm_exact),
        T(test_inm_weak),
        T(test_inm_list_and_star),
        T(test_inm_mismatch),
        T(test_ims),
        T(test_if_match),
        T(test_if_unmodified_since),
        T(test_range_forms),
        T(test_range_clamp),
        T(test_range_unsatisfiable),
        T(test_range_invalid_ignored),
        T(test_range_multi_whole),
        T(test_if_range),
        T(test_range_after_conditionals),
        T(test_head),
        T(test_empty_file),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
