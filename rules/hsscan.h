/*
 * hsscan.h - Hyperscan as the prefilter of text rules: the regexes of one
 * rule type compiled into one database (HS_FLAG_PREFILTER: it may report a
 * rule that cannot match, never miss one that can), and one pass over a
 * text that tells which rules PCRE2 must confirm.
 *
 * The database is built in byte mode over a projection of the text that
 * keeps one byte per character: ASCII as it is, every other character
 * (and every byte of invalid UTF-8) as 0x80, with each rule's pattern
 * rewritten to match (a non-ASCII character or class member becomes
 * \x80).  For a rule that PCRE2 runs in UTF mode without Unicode
 * properties, that projection loses no match: non-ASCII characters are
 * never word, digit or space characters there, and "." or [^x] match them
 * one at a time either way.  Byte mode compiles in seconds where UTF-8
 * mode took minutes for the stock SpamAssassin set.
 *
 * Built without Hyperscan (configure found no libhs, or --without-hyperscan)
 * or on a CPU it does not support, hsscan_build() returns NULL and the
 * literal prefilter (prefilter.h) does the work alone.
 *
 * A database is immutable once built; a scan's scratch space and
 * projection buffer are in a struct hsscan_state that one thread uses at a
 * time, so any number of threads may scan one database at once.
 */
#ifndef MOAT_HSSCAN_H
#define MOAT_HSSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hsscan_pattern {
	const char *re;		/* the regex between its delimiters, NUL-terminated */
	uint32_t pcre_options;	/* PCRE2_CASELESS, _MULTILINE, _DOTALL, _EXTENDED */
	bool utf;		/* compiled by PCRE2 in UTF mode (others are not taken) */
	bool per_line;		/* it runs on each line of what is scanned (uri
				 * rules, one URI a line): multi-line mode, and
				 * no \A \z \Z \G */
	size_t id;		/* what a scan marks */
};

struct hsscan;
struct hsscan_state;

/*
 * hsscan_build - one database over pats[0..n): accepted[i] says whether
 * pattern i is in it (rules it cannot take keep the literal prefilter).
 * NULL when none was accepted, or Hyperscan is absent or unusable here;
 * *why_r then says why in a few words ("" when nothing went wrong).
 */
struct hsscan *hsscan_build(const struct hsscan_pattern *pats, size_t n, bool *accepted,
    const char **why_r);

/* hsscan_state_new - scan state for one thread (its owner frees it with
 * hsscan_state_free()); NULL without Hyperscan or memory, and then
 * hsscan_scan() always says it cannot tell */
struct hsscan_state *hsscan_state_new(void);
void hsscan_state_free(struct hsscan_state **st);

/*
 * hsscan_scan - marks[id] = 1 for each pattern that may match s[0..len),
 * with st's scratch space.
 * Returns false, marks unchanged or partly set, when it cannot tell: the
 * text holds a character PCRE2 case-folds to an ASCII letter (U+212A,
 * U+017F), or memory or scratch space could not be had.  Then every
 * pattern must be taken as possible.
 */
bool hsscan_scan(const struct hsscan *hs, struct hsscan_state *st, const char *s, size_t len,
    unsigned char *marks);

/* hsscan_project_pattern - the byte-mode form of a UTF-mode pattern
 * (malloc'ed), or NULL if it has a construct the projection cannot carry
 * (\p, \h, \R, a negated class with a non-ASCII member...).  Exposed for
 * tests. */
char *hsscan_project_pattern(const char *re);

/* hsscan_project_text - out (len bytes at least) gets the projection of
 * s[0..len); its length, or SIZE_MAX if s holds U+212A or U+017F.
 * Exposed for tests. */
size_t hsscan_project_text(const char *s, size_t len, char *out);

void hsscan_free(struct hsscan **hs);

#endif
