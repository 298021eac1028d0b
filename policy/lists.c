/*
 * lists.c - allow and deny lists and per-domain thresholds (see lists.h).
 *
 * Owns: the parsed entries of each list, in one allocation per list.
 * Names and domains compare case-insensitively; a leading dot means "any
 * name below" (not the name itself), as in Postfix's parent_domain_matches
 * with a leading dot.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lists.h"

#define LIST_ENTRY_MAX 256

struct list_entry {
	int family;			/* AF_INET, AF_INET6, or 0 for names */
	unsigned char addr[16];
	unsigned prefix;		/* CIDR bits */
	char text[LIST_ENTRY_MAX];	/* lower-case name, domain or address */
};

struct list {
	enum list_kind kind;
	size_t count;
	struct list_entry entries[];
};

static void
lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* parse_cidr - "192.0.2.0/24" or an address (host prefix) */
static bool
parse_cidr(const char *text, struct list_entry *e)
{
	char buf[LIST_ENTRY_MAX];
	char *slash;

	snprintf(buf, sizeof(buf), "%s", text);
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash++ = '\0';
	if (inet_pton(AF_INET, buf, e->addr) == 1) {
		e->family = AF_INET;
		e->prefix = 32;
	} else if (inet_pton(AF_INET6, buf, e->addr) == 1) {
		e->family = AF_INET6;
		e->prefix = 128;
	} else {
		return false;
	}
	if (slash != NULL) {
		char *end;
		unsigned long bits = strtoul(slash, &end, 10);
		if (*slash == '\0' || *end != '\0' || bits > e->prefix)
			return false;
		e->prefix = (unsigned)bits;
	}
	return true;
}

/* list_parse - a comma-separated list; NULL and error filled on a bad entry */
struct list *
list_parse(enum list_kind kind, const char *text, char *error, size_t esize)
{
	size_t n = 1;
	for (const char *p = text; *p; p++)
		n += *p == ',';
	struct list *l = calloc(1, sizeof(*l) + n * sizeof(struct list_entry));
	char *copy = strdup(text), *save = NULL;

	if (l == NULL || copy == NULL) {
		snprintf(error, esize, "out of memory");
		goto fail;
	}
	l->kind = kind;
	for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		while (isspace((unsigned char)*tok))
			tok++;
		size_t len = strlen(tok);
		while (len > 0 && isspace((unsigned char)tok[len - 1]))
			tok[--len] = '\0';
		if (len == 0)
			continue;
		struct list_entry *e = &l->entries[l->count];
		if (len >= sizeof(e->text)) {
			snprintf(error, esize, "entry too long: %.40s...", tok);
			goto fail;
		}
		if (kind == LIST_CLIENTS) {
			if (!parse_cidr(tok, e)) {
				snprintf(error, esize, "not an address or CIDR: %s", tok);
				goto fail;
			}
		} else {
			/* "@example.org" and "example.org" mean the same domain. */
			snprintf(e->text, sizeof(e->text), "%s",
			    kind == LIST_ADDRESSES && tok[0] == '@' ? tok + 1 : tok);
			lower(e->text);
			if (e->text[0] == '\0' || strchr(e->text, ' ') != NULL) {
				snprintf(error, esize, "bad entry: %s", tok);
				goto fail;
			}
		}
		l->count++;
	}
	free(copy);
	return l;
fail:
	free(copy);
	free(l);
	return NULL;
}

void
list_free(struct list **l)
{
	free(*l);
	*l = NULL;
}

size_t
list_size(const struct list *l)
{
	return l != NULL ? l->count : 0;
}

static bool
prefix_match(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned bytes = bits / 8, rest = bits % 8;

	if (memcmp(a, b, bytes) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[bytes] & mask) == (b[bytes] & mask);
}

/* list_match_ip - IPv4-mapped IPv6 clients match IPv4 entries */
bool
list_match_ip(const struct list *l, const struct sockaddr *sa)
{
	unsigned char addr[16];
	int family;

	if (l == NULL)
		return false;
	if (sa->sa_family == AF_INET) {
		memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		family = AF_INET;
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			memcpy(addr, &a6->s6_addr[12], 4);
			family = AF_INET;
		} else {
			memcpy(addr, a6, 16);
			family = AF_INET6;
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < l->count; i++)
		if (l->entries[i].family == family &&
		    prefix_match(addr, l->entries[i].addr, l->entries[i].prefix))
			return true;
	return false;
}

/* name_matches - exact, or below a ".parent" entry */
static bool
name_matches(const char *entry, const char *name, size_t len)
{
	size_t elen = strlen(entry);

	if (entry[0] == '.')
		return len > elen && strncasecmp(name + len - elen, entry, elen) == 0;
	return len == elen && strncasecmp(name, entry, len) == 0;
}

bool
list_match_name(const struct list *l, const char *name)
{
	if (l == NULL || name == NULL)
		return false;
	size_t len = strlen(name);
	while (len > 0 && name[len - 1] == '.')
		len--;
	for (size_t i = 0; i < l->count; i++)
		if (name_matches(l->entries[i].text, name, len))
			return true;
	return false;
}

/* list_match_address - whole address, or its domain */
bool
list_match_address(const struct list *l, const char *address)
{
	if (l == NULL || address == NULL || address[0] == '\0')
		return false;
	const char *at = strrchr(address, '@');
	const char *domain = at != NULL ? at + 1 : NULL;
	for (size_t i = 0; i < l->count; i++) {
		const char *entry = l->entries[i].text;
		if (strchr(entry, '@') != NULL) {
			if (strcasecmp(entry, address) == 0)
				return true;
		} else if (domain != NULL && name_matches(entry, domain, strlen(domain))) {
			return true;
		}
	}
	return false;
}

/* domain_scores_parse - "example.net=15/8, example.org=20/10" */
struct domain_scores *
domain_scores_parse(const char *text, size_t *count_r, char *error, size_t esize)
{
	size_t n = 1;
	for (const char *p = text; *p; p++)
		n += *p == ',';
	struct domain_scores *ds = calloc(n, sizeof(*ds));
	char *copy = strdup(text), *save = NULL;

	*count_r = 0;
	if (ds == NULL || copy == NULL) {
		snprintf(error, esize, "out of memory");
		goto fail;
	}
	for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		char domain[256];
		double reject, tag;
		int used = 0;
		while (isspace((unsigned char)*tok))
			tok++;
		if (*tok == '\0')
			continue;
		if (sscanf(tok, " %255[^= ] = %lf / %lf %n", domain, &reject, &tag, &used) != 3 ||
		    tok[used] != '\0') {
			snprintf(error, esize, "expected domain=reject/tag, not \"%s\"", tok);
			goto fail;
		}
		if (tag > reject) {
			snprintf(error, esize, "%s: tag score above reject score", domain);
			goto fail;
		}
		struct domain_scores *d = &ds[(*count_r)++];
		snprintf(d->domain, sizeof(d->domain), "%s", domain[0] == '@' ? domain + 1 : domain);
		lower(d->domain);
		d->reject_score = reject;
		d->tag_score = tag;
	}
	free(copy);
	return ds;
fail:
	free(copy);
	free(ds);
	*count_r = 0;
	return NULL;
}

/* domain_scores_find - the entry for the address's domain, or -1 */
int
domain_scores_find(const struct domain_scores *ds, size_t count, const char *address)
{
	const char *at = address != NULL ? strrchr(address, '@') : NULL;

	if (at == NULL)
		return -1;
	for (size_t i = 0; i < count; i++)
		if (name_matches(ds[i].domain, at + 1, strlen(at + 1)))
			return (int)i;
	return -1;
}
