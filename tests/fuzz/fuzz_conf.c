/*
 * Fuzz target: configuration language. Parses the input as a config
 * string, walks it with a permissive directive table whose handlers run
 * every value getter on every argument, and formats an error at every
 * node and argument (the source-line quoting is the trickiest code).
 * Everything lives in one pool, destroyed at the end: LeakSanitizer
 * catches anything that escaped it (glob's buffers).
 *
 * `include` would read arbitrary files of this machine, so the input's
 * "include" bytes are defused first (the include code has unit tests).
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define ALL_CTX                                                                           \
    (PT_CONF_MAIN | PT_CONF_EVENTS | PT_CONF_HTTP | PT_CONF_SERVER | PT_CONF_LOCATION |  \
     PT_CONF_UPSTREAM)

static int set_values(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    (void)obj;
    /* Up to one past the last argument, on purpose; few: walks can be long. */
    for (size_t i = 0; i <= n->nargs && i < 4; i++) {
        bool flag;
        long long ll;
        uint64_t u;
        pt_conf_get_flag(b, n, i, &flag);
        pt_conf_get_int(b, n, i, -1000, 1000, &ll);
        pt_conf_get_int(b, n, i, 0, LLONG_MAX, &ll);
        pt_conf_get_size(b, n, i, 1, 1u << 20, &u);
        pt_conf_get_msec(b, n, i, 1000, 3600000, &u);
        if (i < n->nargs) {
            pt_parse_size(n->args[i].val, n->args[i].len, &u);
            pt_parse_msec(n->args[i].val, n->args[i].len, &u);
        }
    }
    return 0;
}

static int set_block(pt_conf_build_t *b, const pt_conf_node_t *n, void *obj)
{
    return pt_conf_walk(b, n, PT_CONF_HTTP, obj);
}

static const pt_conf_cmd_t fuzz_cmds[] = {
    {"http", ALL_CTX, 0, PT_CONF_ANY_ARGS, true, set_block},
    {"server", ALL_CTX, 0, PT_CONF_ANY_ARGS, true, set_block},
    {"location", ALL_CTX, 1, 2, true, set_block},
    {"a", ALL_CTX, 0, PT_CONF_ANY_ARGS, false, set_values},
    {"v", ALL_CTX, 1, 1, false, set_values},
    {"listen", PT_CONF_HTTP, 1, 3, false, set_values},
    {"workers", PT_CONF_MAIN, 1, 1, false, set_values},
    {"quiet", ALL_CTX, 0, PT_CONF_ANY_ARGS, false, NULL},
    {NULL, 0, 0, 0, false, NULL},
};

/*
 * Formats an error at up to *budget nodes and arguments (each one rescans
 * the text for its line: unbounded, big inputs would crawl). Recursion is
 * bounded by the parser's nesting limit (64).
 */
static void errors_everywhere(pt_conf_build_t *b, const pt_conf_node_t *n, int *budget)
{
    if (--*budget < 0) return;
    pt_conf_err_node(b, n, "node %s", n->name);
    for (size_t i = 0; i < n->nargs && --*budget >= 0; i++)
        pt_conf_err_arg(b, n, i, "arg %s", n->args[i].val);
    for (size_t i = 0; i < n->nchildren; i++) errors_everywhere(b, &n->children[i], budget);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool registered;
    if (!registered) {
        if (pt_conf_register(fuzz_cmds) != 0) abort();
        registered = true;
    }

    char *text = malloc(size + 1);
    if (text == NULL) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    for (char *p = text; (p = memmem(p, size - (size_t)(p - text), "include", 7)) != NULL; p++)
        p[0] = 'I';

    pt_pool_t *pool = pt_pool_create(0);
    if (pool == NULL) abort();
    pt_conf_doc_t *doc = NULL;
    pt_conf_err_t err;
    int rc = pt_conf_parse_string(pool, "fuzz.conf", text, size, &doc, &err);
    if (rc == 0) {
        if (doc == NULL) abort();
        pt_conf_build_t b = {.doc = doc, .err = &err, .pool = pool};
        pt_conf_walk(&b, pt_conf_root(doc), PT_CONF_MAIN, NULL);
        int budget = 256;
        errors_everywhere(&b, pt_conf_root(doc), &budget);
    } else if (doc != NULL || rc != -EINVAL || strncmp(err.msg, "fuzz.conf:", 10) != 0) {
        abort(); /* syntax errors always come with a position */
    }
    pt_pool_destroy(pool);
    free(text);
    return 0;
}
