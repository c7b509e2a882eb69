/*
 * Region allocator (pt_pool_*) and pool-backed growable arrays (pt_array_*).
 *
 * Layout: the pool header lives at the start of the first block, so a pool
 * costs one malloc until it outgrows that block. Small allocations bump a
 * pointer inside the current block; when it is full a new block of the same
 * size is chained and becomes current (the tail of the old one is wasted;
 * that tail is at most a quarter of a block because anything larger than a
 * quarter block is a "large" allocation with its own malloc'd chunk).
 *
 * Under AddressSanitizer the unused part of every block is poisoned and each
 * allocation is unpoisoned to its exact size, so overflows into the
 * alignment padding or into the next allocation are reported, and so is use
 * after pt_pool_reset() of memory in the first block.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#if defined(__SANITIZE_ADDRESS__)
#define PT_POOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PT_POOL_ASAN 1
#endif
#endif

#ifdef PT_POOL_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define POOL_ALIGN 16u
#define POOL_DEFAULT_BLOCK 4096u
#define POOL_MIN_BLOCK 256u

#define align_up(n) (((n) + (POOL_ALIGN - 1)) & ~(size_t)(POOL_ALIGN - 1))

/* Chained blocks of block_size bytes; data follows the (aligned) header. */
typedef struct block {
    struct block *next;
} block_t;

/* Large allocations: one malloc each, freed at destroy/reset. */
typedef struct large {
    struct large *next;
} large_t;

typedef struct cleanup {
    struct cleanup *next;
    pt_cleanup_fn fn;
    void *data;
} cleanup_t;

struct pt_pool {
    char *cur;          /* next free byte in the current block (16-aligned) */
    char *end;          /* end of the current block */
    block_t *first;     /* the block holding this header */
    block_t *current;   /* the block cur points into */
    large_t *large;
    cleanup_t *cleanups; /* LIFO: head runs first */
    size_t block_size;
    size_t large_threshold; /* allocations above this get their own chunk */
    size_t used;
};

#define BLOCK_HDR align_up(sizeof(block_t))
#define LARGE_HDR align_up(sizeof(large_t))
#define POOL_HDR align_up(sizeof(struct pt_pool))

pt_pool_t *pt_pool_create(size_t block_size)
{
    if (block_size == 0) block_size = POOL_DEFAULT_BLOCK;
    if (block_size < POOL_MIN_BLOCK) block_size = POOL_MIN_BLOCK;
    block_size = align_up(block_size);

    block_t *b = malloc(block_size);
    if (b == NULL) return NULL;
    b->next = NULL;

    pt_pool_t *pool = (pt_pool_t *)((char *)b + BLOCK_HDR);
    memset(pool, 0, sizeof(*pool));
    pool->first = b;
    pool->current = b;
    pool->block_size = block_size;
    pool->large_threshold = block_size / 4;
    pool->cur = (char *)b + BLOCK_HDR + POOL_HDR;
    pool->end = (char *)b + block_size;
    POISON(pool->cur, (size_t)(pool->end - pool->cur));
    return pool;
}

static void run_cleanups(pt_pool_t *pool)
{
    /* Detach first: a handler that registers another cleanup (it should
     * not) must not make us loop over freed nodes. */
    cleanup_t *c = pool->cleanups;
    pool->cleanups = NULL;
    for (; c != NULL; c = c->next) c->fn(c->data);
}

static void free_large(pt_pool_t *pool)
{
    large_t *l = pool->large;
    while (l != NULL) {
        large_t *next = l->next;
        free(l);
        l = next;
    }
    pool->large = NULL;
}

/* Frees the blocks chained after the first one. */
static void free_extra_blocks(pt_pool_t *pool)
{
    block_t *b = pool->first->next;
    while (b != NULL) {
        block_t *next = b->next;
        UNPOISON(b, pool->block_size);
        free(b);
        b = next;
    }
    pool->first->next = NULL;
}

void pt_pool_destroy(pt_pool_t *pool)
{
    if (pool == NULL) return;
    run_cleanups(pool);
    free_large(pool);
    free_extra_blocks(pool);
    block_t *first = pool->first;
    UNPOISON(first, pool->block_size);
    free(first);
}

void pt_pool_reset(pt_pool_t *pool)
{
    run_cleanups(pool);
    free_large(pool);
    free_extra_blocks(pool);
    pool->current = pool->first;
    pool->cur = (char *)pool->first + BLOCK_HDR + POOL_HDR;
    pool->end = (char *)pool->first + pool->block_size;
    pool->used = 0;
    POISON(pool->cur, (size_t)(pool->end - pool->cur));
}

static void *alloc_large(pt_pool_t *pool, size_t size)
{
    if (size > SIZE_MAX - LARGE_HDR) return NULL;
    large_t *l = malloc(LARGE_HDR + size);
    if (l == NULL) return NULL;
    l->next = pool->large;
    pool->large = l;
    pool->used += size;
    return (char *)l + LARGE_HDR;
}

/* Slow path: the current block cannot hold size bytes; chain a new one. */
static void *alloc_block(pt_pool_t *pool, size_t size)
{
    block_t *b = malloc(pool->block_size);
    if (b == NULL) return NULL;
    /* Append after current so reset/destroy see one chain from first. */
    b->next = pool->current->next;
    pool->current->next = b;
    pool->current = b;
    char *p = (char *)b + BLOCK_HDR;
    pool->end = (char *)b + pool->block_size;
    POISON(p, (size_t)(pool->end - p));
    pool->cur = p + align_up(size);
    pool->used += size;
    UNPOISON(p, size);
    return p;
}

void *pt_pool_alloc(pt_pool_t *pool, size_t size)
{
    /* size 0 still gets a distinct, valid pointer. */
    if (size == 0) size = 1;
    if (__builtin_expect(size > pool->large_threshold, 0)) return alloc_large(pool, size);
    size_t rounded = align_up(size);
    if (__builtin_expect((size_t)(pool->end - pool->cur) >= rounded, 1)) {
        char *p = pool->cur;
        pool->cur = p + rounded;
        pool->used += size;
        UNPOISON(p, size);
        return p;
    }
    return alloc_block(pool, size);
}

void *pt_pool_calloc(pt_pool_t *pool, size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) return NULL;
    void *p = pt_pool_alloc(pool, total);
    if (p != NULL) memset(p, 0, total);
    return p;
}

char *pt_pool_strndup(pt_pool_t *pool, const char *s, size_t len)
{
    if (len == SIZE_MAX) return NULL;
    char *p = pt_pool_alloc(pool, len + 1);
    if (p == NULL) return NULL;
    if (len > 0) memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *pt_pool_strdup(pt_pool_t *pool, const char *s)
{
    return pt_pool_strndup(pool, s, strlen(s));
}

char *pt_pool_printf(pt_pool_t *pool, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;

    char *p = pt_pool_alloc(pool, (size_t)n + 1);
    if (p == NULL) return NULL;
    va_start(ap, fmt);
    int m = vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    assert(m == n);
    pt_unused(m);
    return p;
}

int pt_pool_cleanup_add(pt_pool_t *pool, pt_cleanup_fn fn, void *data)
{
    cleanup_t *c = pt_pool_alloc(pool, sizeof(*c));
    if (c == NULL) return -ENOMEM;
    c->fn = fn;
    c->data = data;
    c->next = pool->cleanups;
    pool->cleanups = c;
    return 0;
}

size_t pt_pool_used(const pt_pool_t *pool)
{
    return pool->used;
}

/* ------------------------------------------------------------------ */
/* Arrays                                                              */
/* ------------------------------------------------------------------ */

int pt_array_init(pt_array_t *a, pt_pool_t *pool, size_t item_size, size_t cap)
{
    a->pool = pool;
    a->items = NULL;
    a->n = 0;
    a->cap = 0;
    a->size = item_size;
    if (item_size == 0) return -EINVAL;
    if (cap == 0) return 0;
    a->items = pt_pool_calloc(pool, cap, item_size);
    if (a->items == NULL) return -ENOMEM;
    a->cap = cap;
    return 0;
}

/* Doubles the capacity; the old storage stays in the pool until reset. */
static int array_grow(pt_array_t *a)
{
    size_t cap = a->cap ? a->cap * 2 : 4;
    size_t bytes;
    if (cap < a->cap || __builtin_mul_overflow(cap, a->size, &bytes)) return -ENOMEM;
    void *items = pt_pool_alloc(a->pool, bytes);
    if (items == NULL) return -ENOMEM;
    if (a->n > 0) memcpy(items, a->items, a->n * a->size);
    a->items = items;
    a->cap = cap;
    return 0;
}

void *pt_array_push(pt_array_t *a)
{
    if (a->n == a->cap && array_grow(a) < 0) return NULL;
    void *slot = (char *)a->items + a->n * a->size;
    memset(slot, 0, a->size);
    a->n++;
    return slot;
}
