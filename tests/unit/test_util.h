/*
 * Small helpers shared by unit test programs: counting open descriptors
 * (leak checks) and removing a temporary directory tree.
 *
 * Include after cmocka.h.
 */
#ifndef PT_TEST_UTIL_H
#define PT_TEST_UTIL_H

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

/* A test of a program whose tests all run between setup() and teardown(). */
#define FIXTURE_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/* Entries of /proc/self/fd (including the one opendir uses: compare counts). */
static inline int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

static inline int remove_entry(const char *path, const struct stat *st, int flag,
                               struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes dir and everything below it (links not followed). Returns 0 or -1. */
static inline int remove_tree(const char *dir)
{
    return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
