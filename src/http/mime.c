/*
 * MIME types by file extension, for static file responses.
 *
 * The built-in table is sorted by extension (strcmp order) so a lookup is a
 * binary search over ~60 entries; test_http_static.c looks every entry up,
 * which fails if the order is ever broken. Tables from the configuration
 * are searched linearly (they are not required to be sorted).
 */
#include <string.h>
#include <strings.h>

#include "http/http.h"

#define UTF8 "; charset=utf-8"

/* Keep sorted by ext (plain byte order: digits before letters, "woff" before "woff2"). */
static const pt_mime_type_t builtin[] = {
    {"aac", "audio/aac"},
    {"apng", "image/apng"},
    {"atom", "application/atom+xml"},
    {"avif", "image/avif"},
    {"bin", "application/octet-stream"},
    {"bmp", "image/bmp"},
    {"css", "text/css" UTF8},
    {"csv", "text/csv" UTF8},
    {"eot", "application/vnd.ms-fontobject"},
    {"flac", "audio/flac"},
    {"gif", "image/gif"},
    {"gz", "application/gzip"},
    {"htm", "text/html" UTF8},
    {"html", "text/html" UTF8},
    {"ico", "image/x-icon"},
    {"ics", "text/calendar" UTF8},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript" UTF8},
    {"json", "application/json"},
    {"jsonld", "application/ld+json"},
    {"jxl", "image/jxl"},
    {"m3u8", "application/vnd.apple.mpegurl"},
    {"m4a", "audio/mp4"},
    {"m4v", "video/mp4"},
    {"map", "application/json"},
    {"md", "text/markdown" UTF8},
    {"mjs", "text/javascript" UTF8},
    {"mov", "video/quicktime"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"mpd", "application/dash+xml"},
    {"oga", "audio/ogg"},
    {"ogg", "audio/ogg"},
    {"ogv", "video/ogg"},
    {"opus", "audio/ogg"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"rss", "application/rss+xml"},
    {"svg", "image/svg+xml"},
    {"tar", "application/x-tar"},
    {"tif", "image/tiff"},
    {"tiff", "image/tiff"},
    {"ts", "video/mp2t"},
    {"ttf", "font/ttf"},
    {"txt", "text/plain" UTF8},
    {"wasm", "application/wasm"},
    {"wav", "audio/wav"},
    {"webm", "video/webm"},
    {"webmanifest", "application/manifest+json"},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xhtml", "application/xhtml+xml"},
    {"xml", "application/xml"},
    {"yaml", "application/yaml"},
    {"yml", "application/yaml"},
    {"zip", "application/zip"},
    {"zst", "application/zstd"},
};

/* Longest extension we bother looking up; longer ones are "unknown". */
#define EXT_MAX 15

/*
 * Finds the extension of the last path segment: the bytes after its last
 * dot. A leading dot (".htaccess") is a hidden name, not an extension.
 */
static bool find_ext(const char *name, size_t len, const char **ext, size_t *ext_len)
{
    size_t seg = len;
    while (seg > 0 && name[seg - 1] != '/') seg--;
    for (size_t i = len; i > seg; i--) {
        if (name[i - 1] != '.') continue;
        if (i - 1 == seg || i == len) return false;
        *ext = name + i;
        *ext_len = len - i;
        return true;
    }
    return false;
}

static const char *search_builtin(const char *lower)
{
    size_t lo = 0, hi = pt_countof(builtin);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(lower, builtin[mid].ext);
        if (c == 0) return builtin[mid].type;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static const char *search_table(const pt_mime_type_t *t, size_t n, const char *ext, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        if (t[i].ext && strlen(t[i].ext) == len && strncasecmp(t[i].ext, ext, len) == 0)
            return t[i].type;
    }
    return NULL;
}

static const char *default_type(const pt_static_conf_t *conf)
{
    if (conf && conf->default_type) return conf->default_type;
    return "application/octet-stream";
}

/*
 * Returns the type for name[0..len) (a file name or path): conf->types if
 * set, else the built-in table; the extension is matched case-insensitively.
 * Unknown or missing extension: conf->default_type, else
 * "application/octet-stream". conf may be NULL. Never returns NULL; the
 * string is static or owned by conf. Any thread.
 */
const char *pt_http_mime_type(const pt_static_conf_t *conf, const char *name, size_t len)
{
    const char *ext;
    size_t ext_len;
    if (!name || !find_ext(name, len, &ext, &ext_len)) return default_type(conf);

    const char *type;
    if (conf && conf->types) {
        type = search_table(conf->types, conf->ntypes, ext, ext_len);
    } else {
        if (ext_len > EXT_MAX) return default_type(conf);
        char lower[EXT_MAX + 1];
        for (size_t i = 0; i < ext_len; i++) {
            unsigned char c = (unsigned char)ext[i];
            if (c == '\0') return default_type(conf);
            lower[i] = (char)((c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c);
        }
        lower[ext_len] = '\0';
        type = search_builtin(lower);
    }
    return type ? type : default_type(conf);
}
