/*
 * decision.c - the decision record (see decision.h).
 *
 * Every record is one write(2) to an O_APPEND descriptor, so records from
 * several threads never interleave.  Reopening (log rotation) dup2()s the
 * new file over the old descriptor: writers never see a closed one.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "decision.h"
#include "json.h"
#include "log.h"

#define DECISION_LINE_MAX (16 * 1024)
#define DECISION_LINE_HUGE (1024 * 1024)

static atomic_int decision_fd = -1;

static const char *const stage_names[STAGE_COUNT] = {
	[STAGE_CONNECT] = "connect",
	[STAGE_HELO] = "helo",
	[STAGE_MAIL] = "mail",
	[STAGE_RCPT] = "rcpt",
	[STAGE_DATA] = "data",
	[STAGE_EOD] = "data",
};

const char *
stage_name(enum stage stage)
{
	return (unsigned)stage < STAGE_COUNT ? stage_names[stage] : "?";
}

/* decision_open - "stderr" or a file (append); also used to reopen on SIGHUP */
bool
decision_open(const char *target, char *error, size_t esize)
{
	int fd, old = atomic_load(&decision_fd);

	if (strcmp(target, "stderr") == 0 || strcmp(target, "-") == 0) {
		fd = dup(STDERR_FILENO);
	} else {
		fd = open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	}
	if (fd < 0) {
		snprintf(error, esize, "%s: %s", target, strerror(errno));
		return false;
	}
	if (old < 0) {
		atomic_store(&decision_fd, fd);
	} else {
		if (dup2(fd, old) < 0) {
			snprintf(error, esize, "%s: %s", target, strerror(errno));
			close(fd);
			return false;
		}
		close(fd);
	}
	return true;
}

static void
timestamp(char *buf, size_t size)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* decision_format - the record as one line with "\n"; returns length or 0 */
size_t
decision_format(const struct decision *d, char *buf, size_t size)
{
	struct json j;
	char ts[40], id[20];

	timestamp(ts, sizeof(ts));
	snprintf(id, sizeof(id), "%016llx", (unsigned long long)d->session_id);
	json_init(&j, buf, size);
	json_begin_object(&j);
	json_string(&j, "ts", ts);
	json_string(&j, "id", id);
	json_string(&j, "client_ip", d->client_ip);
	json_string(&j, "client_name", d->client_name);
	json_string(&j, "helo", d->helo);
	json_string(&j, "tls", d->tls);
	json_string(&j, "mail_from", d->mail_from);
	if (d->rcpts == NULL) {
		json_null(&j, "rcpts");
	} else {
		json_begin_array(&j, "rcpts");
		for (size_t i = 0; i < d->nrcpts; i++)
			json_string(&j, NULL, d->rcpts[i]);
		json_end_array(&j);
	}
	if (d->size < 0)
		json_null(&j, "size");
	else
		json_number(&j, "size", (double)d->size, 0);
	json_string(&j, "stage", stage_name(d->stage));
	json_string(&j, "action", action_name(d->action));
	double score = d->symbols != NULL ? symbol_list_score(d->symbols) : 0;
	json_number(&j, "score", score, 2);
	json_begin_array(&j, "symbols");
	for (size_t i = 0; d->symbols != NULL && i < d->symbols->count; i++) {
		const struct symbol *s = &d->symbols->items[i];
		json_begin_object(&j);
		json_string(&j, "name", s->name);
		json_number(&j, "score", s->score, 2);
		json_string(&j, "check", s->check);
		json_string(&j, "detail", s->detail[0] ? s->detail : NULL);
		if (s->monitor)
			json_raw(&j, ",\"monitor\":true");
		json_end_object(&j);
	}
	json_end_array(&j);
	json_string(&j, "reply", d->reply);
	json_string(&j, "backend_reply", d->backend_reply);
	json_string(&j, "queue_id", d->queue_id);
	json_number(&j, "ms", isfinite(d->ms) ? d->ms : 0, 1);
	json_number(&j, "config", (double)d->config_generation, 0);
	json_end_object(&j);
	json_raw(&j, "\n");
	return j.overflow ? 0 : j.len;
}

/* decision_write - format and append one record; thread-safe */
void
decision_write(const struct decision *d)
{
	char stackbuf[DECISION_LINE_MAX];
	char *buf = stackbuf;
	size_t n = decision_format(d, buf, sizeof(stackbuf));
	int fd = atomic_load(&decision_fd);

	if (n == 0) {
		/* Thousands of recipients: rare, so a heap buffer is fine. */
		buf = malloc(DECISION_LINE_HUGE);
		if (buf != NULL)
			n = decision_format(d, buf, DECISION_LINE_HUGE);
	}
	if (n == 0) {
		log_error("%016llx: decision record too large to write",
		    (unsigned long long)d->session_id);
	} else if (fd >= 0 && write(fd, buf, n) != (ssize_t)n) {
		log_error("decision log: write: %s", strerror(errno));
	}
	if (buf != stackbuf)
		free(buf);
}
