/*
 * log.c - the operational log (see log.h).
 *
 * Each line is formatted into one buffer and written with one write(2), so
 * lines from several threads never interleave on stderr.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LOG_LINE_MAX 2048

static const char *log_ident = "moatd";
static bool log_syslog;
static _Atomic int log_level = LOG_LEVEL_INFO;

static const char *const level_names[LOG_LEVEL_COUNT] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARNING] = "warning",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

static const int syslog_priorities[LOG_LEVEL_COUNT] = {
	[LOG_LEVEL_ERROR] = LOG_ERR,
	[LOG_LEVEL_WARNING] = LOG_WARNING,
	[LOG_LEVEL_INFO] = LOG_INFO,
	[LOG_LEVEL_DEBUG] = LOG_DEBUG,
};

/* log_open - choose stderr or syslog and the most verbose level shown */
void
log_open(const char *ident, bool use_syslog, enum log_level level)
{
	log_ident = ident;
	log_level = level;
	if (use_syslog && !log_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	else if (!use_syslog && log_syslog)
		closelog();
	log_syslog = use_syslog;
}

/* log_set_level - change the level (on reload) */
void
log_set_level(enum log_level level)
{
	log_level = level;
}

/* log_enabled - would a message at this level be written? */
bool
log_enabled(enum log_level level)
{
	return (int)level <= log_level;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	size_t n = 0;
	va_list ap;

	if (!log_enabled(level))
		return;
	if (!log_syslog) {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %s[%ld]: ",
		    ts.tv_nsec / 1000000, log_ident, (long)getpid());
	}
	if (level != LOG_LEVEL_INFO)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%s: ", level_names[level]);
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	n += (size_t)m;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	if (log_syslog) {
		line[n] = '\0';
		syslog(syslog_priorities[level], "%s", line);
		return;
	}
	line[n++] = '\n';
	/* Nothing useful can be done if stderr is gone. */
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}
