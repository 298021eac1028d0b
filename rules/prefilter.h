/*
 * prefilter.h - the literal prefilter of body, rawbody, full and uri rules:
 * a string every match of a rule's regex must contain, found at load by a
 * conservative reading of the pattern, and one Aho-Corasick pass per text
 * that tells which rules can match at all, so PCRE2 runs only for those.
 * An automaton is immutable once built; a scan writes only to the caller's
 * marks, so any number of threads may scan one at once.
 */
#ifndef MOAT_PREFILTER_H
#define MOAT_PREFILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Literals shorter than this select too much to be worth a rule's entry. */
#define PREFILTER_MIN_LITERAL 3

/*
 * prefilter_literal - ASCII strings, at least one of which every match of
 * pat[0..len) compiled with options must contain: one for a sequence, one
 * per alternative of "a|b".  They go lower-cased into out, "\n" between
 * them, NUL-terminated; returns the length, 0 if no set of strings of
 * PREFILTER_MIN_LITERAL bytes or more can be proved (or out is too short).
 */
size_t prefilter_literal(const char *pat, size_t len, uint32_t options, char *out,
    size_t outlen);

struct prefilter;

/* prefilter_new - an empty automaton; NULL when out of memory */
struct prefilter *prefilter_new(void);
/* prefilter_add - each literal of lits (as prefilter_literal() writes them)
 * selects id; false when out of memory */
bool prefilter_add(struct prefilter *pf, const char *lits, size_t id);
/* prefilter_build - make it ready to scan (once, after every add); false when out of memory */
bool prefilter_build(struct prefilter *pf);
/*
 * prefilter_scan - marks[id] = 1 for each id whose literal occurs in
 * s[0..len), compared ignoring ASCII case.  Returns false (marks unchanged)
 * if the text holds a character that PCRE2's caseless UTF matching folds
 * to an ASCII letter (U+212A, U+017F): then every rule must run.
 */
bool prefilter_scan(const struct prefilter *pf, const char *s, size_t len,
    unsigned char *marks);
void prefilter_free(struct prefilter **pf);

#endif
