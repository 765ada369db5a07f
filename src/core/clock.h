/*
 * clock.h — time sources: monotonic for durations and deadlines, realtime for
 * timestamps shown to people.
 */
#ifndef PX_CORE_CLOCK_H
#define PX_CORE_CLOCK_H

#include <stdint.h>

/* Monotonic nanoseconds since an arbitrary origin. */
int64_t px_now_ns(void);

/* Wall-clock milliseconds since the Unix epoch. */
int64_t px_wall_ms(void);

static inline double px_ns_to_ms(int64_t ns)
{
    return (double)ns / 1e6;
}

#endif
