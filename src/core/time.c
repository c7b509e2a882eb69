/*
 * Clock helpers. CLOCK_MONOTONIC (not _COARSE): timers and latency
 * histograms need better than the 1-4 ms tick resolution of the coarse
 * clock; on Linux both are served by the vDSO without a system call.
 */
#include <time.h>

#include "core/core.h"

static uint64_t clock_us(clockid_t id)
{
    struct timespec ts;
    /* Cannot fail for these clock ids on Linux. */
    (void)clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Wall clock in milliseconds since the epoch. Any thread. */
uint64_t pt_time_wall_ms(void)
{
    return clock_us(CLOCK_REALTIME) / 1000u;
}

/* Monotonic milliseconds. Any thread. */
uint64_t pt_time_mono_ms(void)
{
    return clock_us(CLOCK_MONOTONIC) / 1000u;
}

/* Monotonic microseconds. Any thread. */
uint64_t pt_time_mono_us(void)
{
    return clock_us(CLOCK_MONOTONIC);
}
