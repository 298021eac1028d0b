/*
 * lint.c - rule-load warnings counted by kind (lint.h).
 */
#include <stdlib.h>
#include <string.h>

#include "lint.h"

/* Beyond this many kinds the rest count as one: a summary, not a list. */
#define LINT_KINDS_MAX 256
#define LINT_KIND_LEN 120
/* Kinds printed; the others are totalled on one line. */
#define LINT_KINDS_SHOWN 40

struct kind {
	char text[LINT_KIND_LEN];
	unsigned long count;
};

struct lint_summary {
	struct kind kinds[LINT_KINDS_MAX];
	size_t nkinds;
	unsigned long other, total;
};

struct lint_summary *
lint_summary_new(void)
{
	return calloc(1, sizeof(struct lint_summary));
}

/* after_where - the text after "file:line: ", or the whole message */
static const char *
after_where(const char *m)
{
	for (const char *p = strchr(m, ':'); p != NULL; p = strchr(p + 1, ':')) {
		const char *d = p + 1;
		while (*d >= '0' && *d <= '9')
			d++;
		if (d > p + 1 && d[0] == ':' && d[1] == ' ')
			return d + 2;
	}
	return m;
}

void
lint_kind(const char *message, char *out, size_t outlen)
{
	const char *t = after_where(message);
	const char *sp = strchr(t, ' '), *colon = strstr(t, ": ");
	char buf[LINT_KIND_LEN * 2];
	size_t n = 0;

	/* "body NAME: reason" -> "body: reason"; an ifplugin keeps its plugin */
	if (sp != NULL && colon != NULL && sp < colon && memchr(sp + 1, ' ',
	    (size_t)(colon - sp - 1)) == NULL && strncmp(t, "ifplugin ", 9) != 0 &&
	    strncmp(t, "if ", 3) != 0) {
		n = (size_t)(sp - t);
		if (n >= sizeof(buf))
			n = sizeof(buf) - 1;
		memcpy(buf, t, n);
		t = colon;
	}
	/* the rest, without the list of rules a meta names; a count as N */
	const char *end = strstr(t, " as 0: ");
	end = end != NULL ? end + 5 : t + strlen(t);
	for (const char *p = t; p < end && n + 1 < sizeof(buf); p++) {
		if (*p >= '0' && *p <= '9' && (p == t || p[-1] == ' ')) {
			const char *q = p;
			while (q < end && *q >= '0' && *q <= '9')
				q++;
			if (q < end && *q == ' ') {
				buf[n++] = 'N';
				p = q - 1;
				continue;
			}
		}
		buf[n++] = *p;
	}
	buf[n] = '\0';
	snprintf(out, outlen, "%s", buf);
}

void
lint_summary_add(struct lint_summary *ls, const char *message)
{
	char k[LINT_KIND_LEN];

	if (ls == NULL)
		return;
	ls->total++;
	lint_kind(message, k, sizeof(k));
	for (size_t i = 0; i < ls->nkinds; i++) {
		if (strcmp(ls->kinds[i].text, k) == 0) {
			ls->kinds[i].count++;
			return;
		}
	}
	if (ls->nkinds == LINT_KINDS_MAX) {
		ls->other++;
		return;
	}
	snprintf(ls->kinds[ls->nkinds].text, LINT_KIND_LEN, "%s", k);
	ls->kinds[ls->nkinds++].count = 1;
}

static int
by_count(const void *a, const void *b)
{
	const struct kind *x = a, *y = b;

	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return strcmp(x->text, y->text);
}

void
lint_summary_print(const struct lint_summary *ls, FILE *out)
{
	struct kind sorted[LINT_KINDS_MAX];
	unsigned long rest = ls->other;

	memcpy(sorted, ls->kinds, ls->nkinds * sizeof(*sorted));
	qsort(sorted, ls->nkinds, sizeof(*sorted), by_count);
	for (size_t i = 0; i < ls->nkinds; i++) {
		if (i < LINT_KINDS_SHOWN)
			fprintf(out, "  %6lu  %s\n", sorted[i].count, sorted[i].text);
		else
			rest += sorted[i].count;
	}
	if (rest > 0)
		fprintf(out, "  %6lu  (other kinds)\n", rest);
}

unsigned long
lint_summary_total(const struct lint_summary *ls)
{
	return ls != NULL ? ls->total : 0;
}

void
lint_summary_free(struct lint_summary **ls)
{
	free(*ls);
	*ls = NULL;
}
