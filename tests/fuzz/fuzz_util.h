/*
 * Helpers shared by fuzz targets that need files: a scratch directory for
 * the whole process (on tmpfs when there is one: the code under test may
 * fsync), removed at exit. Include once per target.
 */
#ifndef PT_FUZZ_UTIL_H
#define PT_FUZZ_UTIL_H

#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"

/* An invariant of the target: a crash libFuzzer reports. */
static inline void check(bool ok)
{
    if (!ok) abort();
}

static char fuzz_dir[64]; /* set once by fuzz_scratch_path; the fuzzer is single-threaded */

static inline int fuzz_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void fuzz_scratch_remove(void)
{
    nftw(fuzz_dir, fuzz_rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/*
 * Writes "<scratch dir>/<name>" into buf. The first call makes the
 * directory and sends the error log to /dev/null at debug level, so that
 * every message is still formatted (and checked by the sanitizers).
 */
static inline void fuzz_scratch_path(char *buf, size_t size, const char *name)
{
    if (fuzz_dir[0] == '\0') {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/pt-fuzz-XXXXXX", base);
        check(mkdtemp(fuzz_dir) != NULL);
        check(atexit(fuzz_scratch_remove) == 0);
        check(pt_log_open("/dev/null", PT_LOG_DEBUG) == 0);
    }
    int n = snprintf(buf, size, "%s/%s", fuzz_dir, name);
    check(n > 0 && (size_t)n < size);
}

/* The whole file at path (malloc'd, NUL-terminated; its length in *len
 * unless len is NULL), or NULL when there is no such file. */
static inline char *fuzz_read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        check(errno == ENOENT);
        return NULL;
    }
    char *buf = NULL;
    size_t n = 0;
    FILE *mem = open_memstream(&buf, &n);
    check(mem != NULL);
    char chunk[4096];
    for (size_t got; (got = fread(chunk, 1, sizeof(chunk), fp)) > 0;)
        check(fwrite(chunk, 1, got, mem) == got);
    check(fclose(fp) == 0);
    check(fclose(mem) == 0);
    if (len != NULL) *len = n;
    return buf;
}

#endif
