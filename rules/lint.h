/*
 * lint.h - rule-load warnings counted by kind, for "moatd -n" and
 * "moat-check --lint": SpamAssassin's stock files give over 4,000
 * warnings (unsupported directives, plugin blocks, eval: tests), which
 * nobody reads one by one, but two dozen kinds with their counts say
 * at a glance what moat skipped.
 */
#ifndef MOAT_LINT_H
#define MOAT_LINT_H

#include <stdio.h>

struct lint_summary;

/* lint_summary_new - an empty summary; NULL when out of memory */
struct lint_summary *lint_summary_new(void);

/* lint_summary_add - count one warning, "file:line: text" as the rule
 * loader reports it */
void lint_summary_add(struct lint_summary *ls, const char *message);

/* lint_kind - the kind of a warning: its text without where it is, the
 * rule's name, counts, or the list of rules a meta names */
void lint_kind(const char *message, char *out, size_t outlen);

/* lint_summary_print - the kinds, most frequent first, "  COUNT  KIND" */
void lint_summary_print(const struct lint_summary *ls, FILE *out);

unsigned long lint_summary_total(const struct lint_summary *ls);

void lint_summary_free(struct lint_summary **ls);

#endif
