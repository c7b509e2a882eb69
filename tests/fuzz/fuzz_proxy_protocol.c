/*
 * Fuzz target for the PROXY protocol parser (src/proxy/proxy_protocol.c).
 *
 * Checks, for arbitrary input:
 *   - the result is a length in 1..len, PT_AGAIN or -EINVAL;
 *   - prefixes agree with the whole: before a header ends every prefix is
 *     PT_AGAIN; an input that is PT_AGAIN has only PT_AGAIN prefixes; a
 *     rejected one has no accepted prefix;
 *   - an accepted TCP header survives build -> parse in both versions.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "proxy/proxy.h"

/* Past this the parser never looks (16 + 512 bytes of v2). */
#define PREFIX_CHECK_MAX 600

static void check(bool ok)
{
    if (!ok) abort();
}

static void check_rebuild(const pt_addr_t *src, const pt_addr_t *dst, bool v2)
{
    char out[128];
    pt_addr_t s, d;
    int n = v2 ? pt_pp_build_v2(out, sizeof(out), src, dst)
               : pt_pp_build_v1(out, sizeof(out), src, dst);
    check(n > 0);
    check(pt_pp_parse(out, (size_t)n, &s, &d) == n);
    check(s.len == src->len && d.len == dst->len);
    check(memcmp(&s.ss, &src->ss, src->len) == 0);
    check(memcmp(&d.ss, &dst->ss, dst->len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    pt_addr_t src, dst;
    int rc = pt_pp_parse(buf, size, &src, &dst);
    check(rc == PT_AGAIN || rc == -EINVAL || (rc > 0 && (size_t)rc <= size));

    size_t lim = pt_min(size, (size_t)PREFIX_CHECK_MAX);
    for (size_t i = 0; i < lim; i++) {
        pt_addr_t s, d;
        int prc = pt_pp_parse(buf, i, &s, &d);
        if (rc == PT_AGAIN) check(prc == PT_AGAIN);
        else if (rc == -EINVAL) check(prc == PT_AGAIN || prc == -EINVAL);
        else check((int)i < rc ? prc == PT_AGAIN : prc == rc);
    }

    if (rc > 0 && src.len > 0) {
        check(src.ss.ss_family == dst.ss.ss_family);
        check_rebuild(&src, &dst, false);
        check_rebuild(&src, &dst, true);
    }
    return 0;
}
