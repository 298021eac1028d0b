/*
 * lists.h - allow and deny lists (client address/CIDR, HELO name, sender,
 * recipient) and per-recipient-domain score thresholds.
 *
 * Parsed once with the configuration, immutable afterwards, so every
 * thread may match against them without locks.  Matching is pure: no DNS,
 * no allocation.
 */
#ifndef MOAT_LISTS_H
#define MOAT_LISTS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

enum list_kind {
	LIST_CLIENTS,		/* 192.0.2.7, 192.0.2.0/24, 2001:db8::/32 */
	LIST_NAMES,		/* mx.example.org, or .example.org for any name under it */
	LIST_ADDRESSES,		/* user@example.org, example.org or @example.org, .example.org */
	LIST_KIND_COUNT /* must be last */
};

struct list;

/* list_parse - a comma-separated list; NULL and error filled on a bad entry */
struct list *list_parse(enum list_kind kind, const char *text, char *error, size_t esize);
void list_free(struct list **l);
size_t list_size(const struct list *l);

bool list_match_ip(const struct list *l, const struct sockaddr *sa);
bool list_match_name(const struct list *l, const char *name);
bool list_match_address(const struct list *l, const char *address);

/* Score thresholds for mail to one recipient domain. */
struct domain_scores {
	char domain[256];
	double reject_score;
	double tag_score;
};

/* domain_scores_parse - "example.net=15/8, example.org=20/10" */
struct domain_scores *domain_scores_parse(const char *text, size_t *count_r,
    char *error, size_t esize);

/* domain_scores_find - the entry for the address's domain, or -1 */
int domain_scores_find(const struct domain_scores *ds, size_t count, const char *address);

#endif
