/*
 * The error log.
 *
 * Each message is formatted into a stack buffer and written with a single
 * write(2) on an O_APPEND descriptor, so lines written by different threads
 * never interleave (the kernel serialises appends per write call).
 *
 * Reopening never closes the descriptor writers may be using: the first
 * time a file is opened its fd number becomes "ours" for the life of the
 * process, and later (re)opens dup3() the new file over that number. A
 * concurrent writer therefore writes either to the old file or to the new
 * one, never to a closed or reused fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"

#define LOG_LINE_MAX 4096

static const char *const level_names[] = {"debug", "info", "notice", "warn", "error", "crit"};

static int log_level = PT_LOG_INFO; /* relaxed atomic */
static int log_fd = STDERR_FILENO;  /* relaxed atomic; the fd writers use */

/* Serialises open/reopen; guards the fields below. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int owned_fd = -1;          /* our fd number once a file was opened */
static char log_path[PATH_MAX];    /* "" = stderr */

static bool is_stderr_path(const char *path)
{
    return path == NULL || path[0] == '\0' || strcmp(path, "stderr") == 0;
}

/*
 * Points the log at path (NULL/"" = stderr). Caller holds log_lock.
 * Returns 0 or -errno (the previous target stays in use on failure).
 */
static int retarget(const char *path)
{
    int newfd;
    if (is_stderr_path(path)) {
        newfd = STDERR_FILENO;
    } else {
        newfd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (newfd < 0) return -errno;
    }

    if (owned_fd < 0) {
        /* Nothing of ours to replace yet: adopt newfd (or keep using 2). */
        if (newfd != STDERR_FILENO) owned_fd = newfd;
        __atomic_store_n(&log_fd, newfd, __ATOMIC_RELEASE);
        return 0;
    }
    /* dup3 (not dup2) so the replaced number keeps O_CLOEXEC. */
    if (dup3(newfd, owned_fd, O_CLOEXEC) < 0) {
        int err = -errno;
        if (newfd != STDERR_FILENO) close(newfd);
        return err;
    }
    if (newfd != STDERR_FILENO) close(newfd);
    return 0;
}

/*
 * Opens the error log at path ("stderr" or NULL = standard error) and sets
 * the minimum level. Safe to call again. Any thread. 0 or -errno; on
 * failure the previous destination and level stay.
 */
int pt_log_open(const char *path, pt_log_level_t level)
{
    if ((int)level < PT_LOG_DEBUG || level > PT_LOG_CRIT) return -EINVAL;
    if (!is_stderr_path(path) && strlen(path) >= sizeof(log_path)) return -ENAMETOOLONG;

    pthread_mutex_lock(&log_lock);
    int rc = retarget(path);
    if (rc == 0) {
        if (is_stderr_path(path))
            log_path[0] = '\0';
        else
            memcpy(log_path, path, strlen(path) + 1);
        __atomic_store_n(&log_level, (int)level, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&log_lock);
    return rc;
}

/* Reopens the current file (after logrotate moved it). Any thread. */
int pt_log_reopen(void)
{
    pthread_mutex_lock(&log_lock);
    int rc = log_path[0] ? retarget(log_path) : 0;
    pthread_mutex_unlock(&log_lock);
    return rc;
}

int pt_log_level_parse(const char *s, pt_log_level_t *out)
{
    if (s == NULL) return -EINVAL;
    for (size_t i = 0; i < pt_countof(level_names); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (pt_log_level_t)i;
            return 0;
        }
    }
    return -EINVAL;
}

bool pt_log_enabled(pt_log_level_t level)
{
    return (int)level >= __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

/* "2026-11-25T08:00:00.123Z [error] " into buf; returns its length. */
static size_t format_prefix(char *buf, size_t size, pt_log_level_t level)
{
    uint64_t ms = pt_time_wall_ms();
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&secs, &tm) == NULL) memset(&tm, 0, sizeof(tm));
    int n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ [%s] ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (unsigned)(ms % 1000), level_names[level]);
    if (n < 0) return 0;
    return pt_min((size_t)n, size - 1);
}

/* Writes one formatted line. Any thread. Messages over ~4 KiB are cut. */
void pt_logv(pt_log_level_t level, const char *fmt, va_list ap)
{
    if ((int)level < PT_LOG_DEBUG || level > PT_LOG_CRIT) level = PT_LOG_CRIT;
    if (!pt_log_enabled(level)) return;
    int saved_errno = errno; /* callers often log and then look at errno */

    char buf[LOG_LINE_MAX];
    size_t len = format_prefix(buf, sizeof(buf), level);
    /* Leave room for the newline. */
    int n = vsnprintf(buf + len, sizeof(buf) - len - 1, fmt, ap);
    if (n > 0) len += pt_min((size_t)n, sizeof(buf) - len - 2);
    /* One line per message: a trailing newline from the caller is dropped. */
    while (len > 0 && buf[len - 1] == '\n') len--;
    buf[len++] = '\n';

    int fd = __atomic_load_n(&log_fd, __ATOMIC_ACQUIRE);
    ssize_t w;
    do {
        w = write(fd, buf, len);
    } while (w < 0 && errno == EINTR);
    /* Nothing sensible to do if the log itself cannot be written. */
    errno = saved_errno;
}

void pt_log(pt_log_level_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pt_logv(level, fmt, ap);
    va_end(ap);
}
