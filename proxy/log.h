/*
 * log.h - the operational log: one line per event, to stderr or syslog.
 *
 * Lines are lowercase "what: object: reason", prefixed by the session id
 * where there is one.  Safe to call from any thread.  The decision record
 * (decision.h) is a separate, structured stream.
 */
#ifndef MOAT_LOG_H
#define MOAT_LOG_H

#include <stdbool.h>

enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_COUNT /* must be last */
};

/* log_open - choose stderr or syslog and the most verbose level shown */
void log_open(const char *ident, bool use_syslog, enum log_level level);

/* log_set_level - change the level (on reload) */
void log_set_level(enum log_level level);

/* log_enabled - would a message at this level be written? */
bool log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) \
	do { if (log_enabled(LOG_LEVEL_DEBUG)) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__); } while (0)

#endif
