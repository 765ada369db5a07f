/*
 * log.h — leveled logging to stderr, one line per call, safe from any thread.
 */
#ifndef PX_CORE_LOG_H
#define PX_CORE_LOG_H

enum px_log_level { PX_LOG_DEBUG = 0, PX_LOG_INFO = 1, PX_LOG_WARN = 2, PX_LOG_ERROR = 3,
                    PX_LOG_OFF = 4 };

/* Messages below `level` are dropped. Default PX_LOG_INFO. */
void px_log_set_level(enum px_log_level level);

/* Parses "debug", "info", "warn", "error" or "off"; returns -1 if unknown. */
int px_log_parse_level(const char *name);

void px_log(enum px_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define PX_DEBUG(...) px_log(PX_LOG_DEBUG, __VA_ARGS__)
#define PX_INFO(...) px_log(PX_LOG_INFO, __VA_ARGS__)
#define PX_WARN(...) px_log(PX_LOG_WARN, __VA_ARGS__)
#define PX_ERROR(...) px_log(PX_LOG_ERROR, __VA_ARGS__)

#endif
