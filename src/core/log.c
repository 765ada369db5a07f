/*
 * log.c — stderr logger. Each message is formatted into a local buffer and
 * written with one write(2) so lines from different threads never interleave.
 */
#include "core/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int g_level = PX_LOG_INFO;

void px_log_set_level(enum px_log_level level)
{
    atomic_store(&g_level, (int)level);
}

int px_log_parse_level(const char *name)
{
    static const char *names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i < 5; i++)
        if (strcmp(name, names[i]) == 0) return i;
    return -1;
}

void px_log(enum px_log_level level, const char *fmt, ...)
{
    if ((int)level < atomic_load(&g_level)) return;
    static const char *tags[] = {"debug", "info", "warn", "error", "off"};
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, tags[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2) len = sizeof line - 2;
    line[len++] = '\n';
    /* A short write to stderr leaves nothing sensible to do; ignore it. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
