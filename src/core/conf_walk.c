/*
 * Directive registry, the walker that dispatches parsed nodes to module
 * handlers, and the value getters handlers use for their arguments.
 *
 * Error messages follow nginx's wording where nginx has one, so people
 * coming from nginx recognise them:
 *   unknown directive "x"
 *   "x" directive is not allowed here
 *   directive "x" has no opening "{"
 *   directive "x" is not terminated by ";"
 *   invalid number of arguments in "x" directive
 *   invalid value "v" in "x" directive, expected <what>
 *   value "v" in "x" directive is out of range [min, max]
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/conf_internal.h"

/* ------------------------------------------------------------------ */
/* Registry                                                            */
/* ------------------------------------------------------------------ */

#define MAX_TABLES 64

/* Start-up-only state: filled before any build, read-only afterwards. */
static const pt_conf_cmd_t *tables[MAX_TABLES];
static size_t ntables;

void conf_registry_reset(void)
{
    memset(tables, 0, sizeof(tables));
    ntables = 0;
}

/* First cmd in [t, stop) (stop NULL = the end) named name whose contexts meet mask. */
static const pt_conf_cmd_t *find_in(const pt_conf_cmd_t *t, const pt_conf_cmd_t *stop,
                                    const char *name, uint32_t mask)
{
    for (const pt_conf_cmd_t *c = t; c->name != NULL && c != stop; c++)
        if ((c->contexts & mask) != 0 && strcmp(c->name, name) == 0) return c;
    return NULL;
}

static const pt_conf_cmd_t *find_cmd(const char *name, uint32_t mask)
{
    for (size_t i = 0; i < ntables; i++) {
        const pt_conf_cmd_t *c = find_in(tables[i], NULL, name, mask);
        if (c != NULL) return c;
    }
    return NULL;
}

static bool cmd_valid(const pt_conf_cmd_t *c)
{
    if (c->contexts == 0 || c->min_args < 0) return false;
    return c->max_args == PT_CONF_ANY_ARGS || c->max_args >= c->min_args;
}

int pt_conf_register(const pt_conf_cmd_t *cmds)
{
    if (cmds == NULL) return -EINVAL;
    if (ntables == MAX_TABLES) return -ENOSPC;
    for (const pt_conf_cmd_t *c = cmds; c->name != NULL; c++) {
        if (!cmd_valid(c)) return -EINVAL;
        if (find_cmd(c->name, c->contexts) != NULL) return -EEXIST;
        if (find_in(cmds, c, c->name, c->contexts) != NULL) return -EEXIST;
    }
    tables[ntables++] = cmds;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

static int verr_node(pt_conf_build_t *b, const pt_conf_node_t *n, const char *fmt, va_list ap)
{
    return conf_verror_at(b->doc, b->err, n->file, n->line, n->col, fmt, ap);
}

int pt_conf_err_node(pt_conf_build_t *b, const pt_conf_node_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = verr_node(b, n, fmt, ap);
    va_end(ap);
    return rc;
}

int pt_conf_err_arg(pt_conf_build_t *b, const pt_conf_node_t *n, size_t argi, const char *fmt,
                    ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc;
    if (argi < n->nargs)
        rc = conf_verror_at(b->doc, b->err, n->file, n->args[argi].line, n->args[argi].col, fmt,
                            ap);
    else
        rc = verr_node(b, n, fmt, ap);
    va_end(ap);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Walker                                                              */
/* ------------------------------------------------------------------ */

/* Checks that n matches cmd's shape (block-ness, argument count). */
static int check_shape(pt_conf_build_t *b, const pt_conf_node_t *n, const pt_conf_cmd_t *cmd)
{
    if (cmd->block && !n->block)
        return pt_conf_err_node(b, n, "directive \"%s\" has no opening \"{\"", n->name);
    if (!cmd->block && n->block)
        return pt_conf_err_node(b, n, "directive \"%s\" is not terminated by \";\"", n->name);
    if (n->nargs < (size_t)cmd->min_args ||
        (cmd->max_args != PT_CONF_ANY_ARGS && n->nargs > (size_t)cmd->max_args))
        return pt_conf_err_node(b, n, "invalid number of arguments in \"%s\" directive", n->name);
    return 0;
}

static int walk_one(pt_conf_build_t *b, const pt_conf_node_t *n, uint32_t ctx, void *obj)
{
    const pt_conf_cmd_t *cmd = find_cmd(n->name, ctx);
    if (cmd == NULL) {
        if (find_cmd(n->name, UINT32_MAX) != NULL)
            return pt_conf_err_node(b, n, "\"%s\" directive is not allowed here", n->name);
        return pt_conf_err_node(b, n, "unknown directive \"%s\"", n->name);
    }
    int rc = check_shape(b, n, cmd);
    if (rc < 0 || cmd->set == NULL) return rc;

    b->err->msg[0] = '\0';
    rc = cmd->set(b, n, obj);
    if (rc == 0) return 0;
    if (rc > 0) rc = -EINVAL;
    /* A handler that failed without saying why (say -ENOMEM) still gets a position. */
    if (b->err->msg[0] == '\0')
        pt_conf_err_node(b, n, "\"%s\" directive failed: %s", n->name, strerror(-rc));
    return rc;
}

/*
 * A cmd with set == NULL accepts the node without doing anything (used
 * for directives handled elsewhere, and by the fuzz target).
 */
int pt_conf_walk(pt_conf_build_t *b, const pt_conf_node_t *block, uint32_t ctx, void *obj)
{
    if (b == NULL || b->err == NULL || block == NULL) return -EINVAL;
    for (size_t i = 0; i < block->nchildren; i++) {
        int rc = walk_one(b, &block->children[i], ctx, obj);
        if (rc < 0) return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Pure value parsers                                                  */
/* ------------------------------------------------------------------ */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * Reads the decimal digits at s[*i..len) into *v. Returns false if there
 * are none; sets *overflow (and keeps going) if they do not fit.
 */
static bool read_digits(const char *s, size_t len, size_t *i, uint64_t *v, bool *overflow)
{
    size_t start = *i;
    *v = 0;
    for (; *i < len && is_digit(s[*i]); (*i)++) {
        uint64_t d = (uint64_t)(s[*i] - '0');
        if (*v > (UINT64_MAX - d) / 10) *overflow = true;
        else *v = *v * 10 + d;
    }
    return *i > start;
}

int pt_parse_size(const char *s, size_t len, uint64_t *out)
{
    if (s == NULL || len == 0) return -EINVAL;

    uint64_t mult = 1;
    switch (s[len - 1]) {
    case 'k':
    case 'K':
        mult = 1ull << 10;
        break;
    case 'm':
    case 'M':
        mult = 1ull << 20;
        break;
    case 'g':
    case 'G':
        mult = 1ull << 30;
        break;
    }
    size_t n = mult == 1 ? len : len - 1, i = 0;
    uint64_t v;
    bool overflow = false;
    if (!read_digits(s, n, &i, &v, &overflow) || i != n) return -EINVAL;
    if (overflow || __builtin_mul_overflow(v, mult, &v)) return -ERANGE;
    *out = v;
    return 0;
}

/* Time units from largest to smallest; a unit may only follow larger ones. */
static const struct {
    const char *suffix;
    uint64_t ms;
} time_units[] = {
    {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1},
};

#define UNIT_SEC 3 /* index of "s": a bare number counts as seconds */

/* Reads the unit at s[*i..len) (none at the end = seconds). -1 if unknown. */
static int read_unit(const char *s, size_t len, size_t *i)
{
    if (*i == len) return UNIT_SEC;
    /* "ms" before "m": the longest suffix wins. */
    if (s[*i] == 'm' && *i + 1 < len && s[*i + 1] == 's') {
        *i += 2;
        return 4;
    }
    for (int u = 0; u < 4; u++) {
        if (s[*i] == time_units[u].suffix[0]) {
            (*i)++;
            return u;
        }
    }
    return -1;
}

int pt_parse_msec(const char *s, size_t len, uint64_t *out)
{
    if (s == NULL || len == 0) return -EINVAL;

    uint64_t total = 0;
    bool overflow = false;
    int last = -1;
    size_t i = 0;
    while (i < len) {
        uint64_t v, part;
        if (!read_digits(s, len, &i, &v, &overflow)) return -EINVAL;
        int u = read_unit(s, len, &i);
        if (u < 0 || u <= last) return -EINVAL; /* unknown, repeated or out of order */
        last = u;
        if (__builtin_mul_overflow(v, time_units[u].ms, &part) ||
            __builtin_add_overflow(total, part, &total))
            overflow = true;
    }
    if (overflow) return -ERANGE;
    *out = total;
    return 0;
}

/* Parses a decimal integer with an optional '-' (no '+', no spaces). */
static int parse_ll(const char *s, size_t len, long long *out)
{
    size_t i = 0;
    bool neg = false, overflow = false;
    uint64_t v;

    if (len > 0 && s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (!read_digits(s, len, &i, &v, &overflow) || i != len) return -EINVAL;
    uint64_t limit = neg ? (uint64_t)LLONG_MAX + 1 : (uint64_t)LLONG_MAX;
    if (overflow || v > limit) return -ERANGE;
    /* -(LLONG_MAX + 1) without overflowing on the way. */
    *out = neg ? (v == limit ? LLONG_MIN : -(long long)v) : (long long)v;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Getters with error reporting                                        */
/* ------------------------------------------------------------------ */

/* Longest slice of a value quoted in a message. */
#define VALUE_SHOWN 128

static int missing_arg(pt_conf_build_t *b, const pt_conf_node_t *n)
{
    return pt_conf_err_node(b, n, "invalid number of arguments in \"%s\" directive", n->name);
}

static int invalid(pt_conf_build_t *b, const pt_conf_node_t *n, size_t argi, const char *expected)
{
    return pt_conf_err_arg(b, n, argi, "invalid value \"%.*s\" in \"%s\" directive, expected %s",
                           VALUE_SHOWN, n->args[argi].val, n->name, expected);
}

static int out_of_range(pt_conf_build_t *b, const pt_conf_node_t *n, size_t argi,
                        const char *lo, const char *hi)
{
    return pt_conf_err_arg(b, n, argi,
                           "value \"%.*s\" in \"%s\" directive is out of range [%s, %s]",
                           VALUE_SHOWN, n->args[argi].val, n->name, lo, hi);
}

/* Writes v with the largest unit that divides it exactly ("16k", "1g", "100"). */
static void format_size(char *buf, size_t cap, uint64_t v)
{
    static const struct {
        char suffix;
        uint64_t bytes;
    } units[] = {{'g', 1ull << 30}, {'m', 1ull << 20}, {'k', 1ull << 10}};
    for (size_t i = 0; v > 0 && i < pt_countof(units); i++) {
        if (v % units[i].bytes == 0) {
            snprintf(buf, cap, "%" PRIu64 "%c", v / units[i].bytes, units[i].suffix);
            return;
        }
    }
    snprintf(buf, cap, "%" PRIu64, v);
}

/* Same for times ("30s", "5m", "250ms", "0"). */
static void format_msec(char *buf, size_t cap, uint64_t v)
{
    for (size_t i = 0; v > 0 && i < UNIT_SEC + 1; i++) {
        if (v % time_units[i].ms == 0) {
            snprintf(buf, cap, "%" PRIu64 "%s", v / time_units[i].ms, time_units[i].suffix);
            return;
        }
    }
    if (v == 0)
        snprintf(buf, cap, "0");
    else
        snprintf(buf, cap, "%" PRIu64 "ms", v);
}

int pt_conf_get_flag(pt_conf_build_t *b, const pt_conf_node_t *n, size_t argi, bool *out)
{
    if (argi >= n->nargs) return missing_arg(b, n);
    const char *v = n->args[argi].val;
    if (strcasecmp(v, "on") == 0) {
        *out = true;
        return 0;
    }
    if (strcasecmp(v, "off") == 0) {
        *out = false;
        return 0;
    }
    return invalid(b, n, argi, "on|off");
}

int pt_conf_get_int(pt_conf_build_t *b, const pt_conf_node_t *n, size_t argi, long long min,
                    long long max, long long *out)
{
    if (argi >= n->nargs) return missing_arg(b, n);
    const pt_conf_arg_t *a = &n->args[argi];
    long long v;
    int rc = parse_ll(a->val, a->len, &v);
    if (rc == -EINVAL) return invalid(b, n, argi, "an integer");
    /* A sign where no negative value is allowed ("-0" too) reads best as "out of range". */
    if (rc == 0 && a->val[0] == '-' && min >= 0) rc = -ERANGE;
    if (rc < 0 || v < min || v > max) {
        char lo[32], hi[32];
        snprintf(lo, sizeof(lo), "%lld", min);
        snprintf(hi, sizeof(hi), "%lld", max);
        return out_of_range(b, n, argi, lo, hi);
    }
    *out = v;
    return 0;
}

int pt_conf_get_size(pt_conf_build_t *b, const pt_conf_node_t *n, size_t argi, uint64_t min,
                     uint64_t max, uint64_t *out)
{
    if (argi >= n->nargs) return missing_arg(b, n);
    const pt_conf_arg_t *a = &n->args[argi];
    uint64_t v;
    int rc = pt_parse_size(a->val, a->len, &v);
    if (rc == -EINVAL) return invalid(b, n, argi, "a size like 512, 16k, 8m, 1g");
    if (rc < 0 || v < min || v > max) {
        char lo[32], hi[32];
        format_size(lo, sizeof(lo), min);
        format_size(hi, sizeof(hi), max);
        return out_of_range(b, n, argi, lo, hi);
    }
    *out = v;
    return 0;
}

int pt_conf_get_msec(pt_conf_build_t *b, const pt_conf_node_t *n, size_t argi, uint64_t min,
                     uint64_t max, uint64_t *out)
{
    if (argi >= n->nargs) return missing_arg(b, n);
    const pt_conf_arg_t *a = &n->args[argi];
    uint64_t v;
    int rc = pt_parse_msec(a->val, a->len, &v);
    if (rc == -EINVAL) return invalid(b, n, argi, "a time like 250ms, 30s, 5m, 1h, 1d");
    if (rc < 0 || v < min || v > max) {
        char lo[32], hi[32];
        format_msec(lo, sizeof(lo), min);
        format_msec(hi, sizeof(hi), max);
        return out_of_range(b, n, argi, lo, hi);
    }
    *out = v;
    return 0;
}
