/* Unit tests for src/core/pool.c: pools and pool-backed arrays. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/core.h"

static void test_alignment(void **state)
{
    pt_unused(state);
    pt_pool_t *pool = pt_pool_create(0);
    assert_non_null(pool);
    for (size_t i = 1; i < 200; i++) {
        char *p = pt_pool_alloc(pool, i % 37 + 1);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        memset(p, 0xab, i % 37 + 1);
    }
    /* Zero-size allocations still return distinct valid pointers. */
    void *a = pt_pool_alloc(pool, 0);
    void *b = pt_pool_alloc(pool, 0);
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    pt_pool_destroy(pool);
}

static void test_distinct_and_used(void **state)
{
    pt_unused(state);
    pt_pool_t *pool = pt_pool_create(1024);
    assert_non_null(pool);
    assert_int_equal(pt_pool_used(pool), 0);
    char *a = pt_pool_alloc(pool, 10);
    char *b = pt_pool_alloc(pool, 10);
    assert_int_equal(b - a, 16);
    assert_int_equal(pt_pool_used(pool), 20);
    /* Fill many blocks: every allocation must stay writable and intact. */
    char *ptrs[500];
    for (int i = 0; i < 500; i++) {
        ptrs[i] = pt_pool_alloc(pool, 100);
        assert_non_null(ptrs[i]);
        memset(ptrs[i], i & 0xff, 100);
    }
    for (int i = 0; i < 500; i++) {
        assert_int_equal((unsigned char)ptrs[i][0], i & 0xff);
        assert_int_equal((unsigned char)ptrs[i][99], i & 0xff);
    }
    assert_int_equal(pt_pool_used(pool), 20 + 500 * 100);
    pt_pool_destroy(pool);
}

static void test_large(void **state)
{
    pt_unused(state);
    pt_pool_t *pool = pt_pool_create(1024);
    assert_non_null(pool);
    /* Over a quarter of the block: own chunk, still aligned. */
    char *big = pt_pool_alloc(pool, 257);
    assert_non_null(big);
    assert_int_equal((uintptr_t)big % 16, 0);
    memset(big, 1, 257);
    char *huge = pt_pool_alloc(pool, 1 << 20);
    assert_non_null(huge);
    assert_int_equal((uintptr_t)huge % 16, 0);
    memset(huge, 2, 1 << 20);
    /* A small allocation after the large ones still comes from the block. */
    char *small = pt_pool_alloc(pool, 8);
    assert_non_null(small);
    assert_int_equal(pt_pool_used(pool), 257 + (1 << 20) + 8);
    /* Overflowing sizes fail cleanly. */
    assert_null(pt_pool_alloc(pool, SIZE_MAX));
    assert_null(pt_pool_calloc(pool, SIZE_MAX / 2, 3));
    pt_pool_destroy(pool);
}

static int order[8];
static int norder;

static void record(void *data)
{
    order[norder++] = (int)(intptr_t)data;
}

static void test_cleanup_order(void **state)
{
    pt_unused(state);
    pt_pool_t *pool = pt_pool_create(0);
    assert_non_null(pool);
    norder = 0;
    for (intptr_t i = 1; i <= 4; i++) assert_int_equal(pt_pool_cleanup_add(pool, record, (void *)i), 0);
    pt_pool_destroy(pool);
    assert_int_equal(norder, 4);
    assert_int_equal(order[0], 4);
    assert_int_equal(order[1], 3);
    assert_int_equal(order[2], 2);
    assert_int_equal(order[3], 1);
    pt_pool_destroy(NULL);
}

static void test_reset(void **state)
{
    pt_unused(state);
    pt_pool_t *pool = pt_pool_create(512);
    assert_non_null(pool);
    char *first = pt_pool_alloc(pool, 16);
    for (int i = 0; i < 100; i++) assert_non_null(pt_pool_alloc(pool, 100));
    assert_non_null(pt_pool_alloc(pool, 4000));
    norder = 0;
    assert_int_equal(pt_pool_cleanup_add(pool, record, (void *)(intptr_t)7), 0);
    assert_int_equal(pt_pool_cleanup_add(pool, record, (void *)(intptr_t)8), 0);
    pt_pool_reset(pool);
    assert_int_equal(norder, 2);
    assert_int_equal(order[0], 8);
    assert_int_equal(order[1], 7);
    assert_int_equal(pt_pool_used(pool), 0);
    /* The first block is reused: the first allocation lands at the same spot. */
    char *again = pt_pool_alloc(pool, 16);
    assert_ptr_equal(first, again);
    for (int i = 0; i < 100; i++) assert_non_null(pt_pool_alloc(pool, 100));
    pt_pool_destroy(pool);
    /* Cleanups registered before reset do not run twice. */
    assert_int_equal(norder, 2);
}

static void test_strings(void **state)
{
    pt_unused(state);
    pt_pool_t *pool = pt_pool_create(0);
    assert_non_null(pool);
    char *s = pt_pool_strdup(pool, "hello");
    assert_string_equal(s, "hello");
    char *t = pt_pool_strndup(pool, "abcdef", 3);
    assert_string_equal(t, "abc");
    char *e = pt_pool_strndup(pool, "", 0);
    assert_string_equal(e, "");
    char *f = pt_pool_printf(pool, "%s-%d-%04x", "x", 42, 0xbeef);
    assert_string_equal(f, "x-42-beef");
    /* A long printf goes through the large path. */
    char *g = pt_pool_printf(pool, "%5000d", 7);
    assert_int_equal(strlen(g), 5000);
    assert_int_equal(g[4999], '7');
    int *z = pt_pool_calloc(pool, 10, sizeof(int));
    for (int i = 0; i < 10; i++) assert_int_equal(z[i], 0);
    pt_pool_destroy(pool);
}

static void test_array(void **state)
{
    pt_unused(state);
    pt_pool_t *pool = pt_pool_create(0);
    assert_non_null(pool);
    pt_array_t a;
    assert_int_equal(pt_array_init(&a, pool, sizeof(uint64_t), 0), 0);
    for (uint64_t i = 0; i < 1000; i++) {
        uint64_t *slot = pt_array_push(&a);
        assert_non_null(slot);
        assert_int_equal(*slot, 0);
        *slot = i * 3;
    }
    assert_int_equal(a.n, 1000);
    assert_true(a.cap >= 1000);
    for (uint64_t i = 0; i < 1000; i++) assert_int_equal(*pt_array_at(&a, uint64_t, i), i * 3);

    pt_array_t b;
    assert_int_equal(pt_array_init(&b, pool, 24, 2), 0);
    assert_int_equal(b.cap, 2);
    assert_non_null(pt_array_push(&b));
    assert_non_null(pt_array_push(&b));
    assert_non_null(pt_array_push(&b));
    assert_int_equal(b.n, 3);
    assert_int_equal(b.cap, 4);
    pt_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alignment),     cmocka_unit_test(test_distinct_and_used),
        cmocka_unit_test(test_large),         cmocka_unit_test(test_cleanup_order),
        cmocka_unit_test(test_reset),         cmocka_unit_test(test_strings),
        cmocka_unit_test(test_array),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
