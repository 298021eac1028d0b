/*
 * ruleset_private.h - the compiled form of a rule set, shared by ruleset.c
 * (loading and linking), meta.c (meta and "if" expressions) and
 * rule_eval.c (matching).  Nothing outside rules/ includes it.
 *
 * A struct ruleset is immutable once ruleset_load() returns it: every
 * field below is written while loading and only read afterwards, which is
 * what lets many threads evaluate one set at once.
 */
#ifndef MOAT_RULESET_PRIVATE_H
#define MOAT_RULESET_PRIVATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "ruleset.h"

/* The SpamAssassin version moat claims rule compatibility with, for
 * "if (version >= N)" conditions. */
#define RULESET_SA_VERSION 4.0
/* Evaluation bounds: steps per match (LIBRARIES.md: about 1e5), the
 * backtracking depth of the interpreter (the JIT ignores it) and the JIT
 * stack of each evaluating thread. */
#define RULESET_MATCH_LIMIT 100000
#define RULESET_DEPTH_LIMIT 10000
#define RULESET_JIT_STACK_MIN (32 * 1024)
#define RULESET_JIT_STACK_MAX (1024 * 1024)

enum rule_type {
	RULE_HEADER,
	RULE_BODY,
	RULE_RAWBODY,
	RULE_URI,
	RULE_FULL,
	RULE_META,
	RULE_TYPE_COUNT		/* must be last */
};

/* Where a header rule's value comes from. */
enum header_source {
	HSRC_FIELD,		/* a header field of the message */
	HSRC_ALL,		/* every header, "Name: value\n" each */
	HSRC_TOCC,		/* To, then Cc */
	HSRC_MESSAGEID,		/* SpamAssassin's MESSAGEID: the message-id fields */
	HSRC_ENVELOPE_FROM,
	HSRC_ENVELOPE_TO,	/* every recipient, one a line */
	HSRC_HELO,
	HSRC_CLIENT_IP,
	HSRC_CLIENT_NAME,
	HSRC_COUNT		/* must be last */
};

/* Header modifiers (SpamAssassin's Field:raw, :addr, :name, :first, :last). */
#define HMOD_RAW	0x01
#define HMOD_ADDR	0x02
#define HMOD_NAME	0x04
#define HMOD_FIRST	0x08
#define HMOD_LAST	0x10

/* One distinct header value that rules ask for; computed at most once per
 * evaluation, however many rules test it. */
struct header_key {
	enum header_source source;
	char *field;		/* HSRC_FIELD: the field name */
	unsigned mods;
};

struct meta_expr;

struct rule {
	char *name;
	char *description;	/* "" when none */
	char *where;		/* "file:line" of the definition */
	enum rule_type type;
	double score;
	bool reported;		/* a scored rule, not a __ sub-rule */
	pcre2_code *re;		/* every type but meta */
	/* body, rawbody, full and uri rules: a string every match contains
	 * (lower case; prefilter.h), NULL if none is known: then it always runs */
	char *literal;
	/* ... and the regex as written with what it was compiled with, for
	 * Hyperscan (hsscan.h); freed by ruleset_accelerate() */
	struct regex_source *source;
	/* header rules */
	size_t key;		/* index into ruleset->keys */
	bool exists;		/* exists:Field */
	bool negate;		/* Field !~ /re/ */
	char *if_unset;		/* NULL: a missing field is "" */
	/* meta rules */
	struct meta_expr *meta;
};

enum prefilter_mode {
	PREFILTER_ALL,		/* Hyperscan where it took the rule, else the literal */
	PREFILTER_LITERAL,	/* the literal automaton alone */
	PREFILTER_NONE,		/* every rule runs */
};

/* The Hyperscan prefilter of a set (ruleset_accelerate). */
struct ruleset_accel {
	/* per rule type: the Hyperscan database of its rules, NULL if none,
	 * and the automaton of the literals of the rules it does not cover,
	 * which is all that must run where the database could scan */
	struct hsscan *hs[RULE_TYPE_COUNT];
	struct prefilter *prefilter_rest[RULE_TYPE_COUNT];
	unsigned char *in_hs;	/* in_hs[r]: a database prefilters rule r */
};

struct ruleset {
	atomic_uint refs;
	struct rule *rules;	/* live rules, in file order */
	size_t nrules;
	size_t *order;		/* evaluation order: matches, then metas sorted */
	size_t nmatching;	/* order[0..nmatching): the rules that are not metas */
	struct meta_program *metas;	/* order[nmatching..nrules) as one program */
	struct header_key *keys;
	size_t nkeys;
	struct ruleset_stats stats;
	/* per rule type: the automaton of its rules' literals, NULL if none */
	struct prefilter *prefilter[RULE_TYPE_COUNT];
	/* what ruleset_accelerate() built, published whole once it is done
	 * (NULL until then: the literal automata do the work alone); a
	 * message takes one look at it, so it sees either all or none */
	_Atomic(const struct ruleset_accel *) accel;
	atomic_bool accelerate_claimed;	/* ruleset_accelerate() ran or runs */
	/* tests only: which prefilters run */
	enum prefilter_mode prefilter_mode;
};

/* ruleset.c */
void free_source(struct regex_source **src);

/* accelerate.c */
/* build_prefilters - one automaton per text type over its rules'
 * literals; false when out of memory */
bool build_prefilters(struct ruleset *rs);
/* accel_free - what ruleset_accelerate() built (NULL is fine) */
void accel_free(struct ruleset_accel *a);

/* meta.c: expressions of meta rules and of "if" conditions. */
#define META_CONDITION 0x01	/* "if" syntax: word(arguments) is an operand */

struct meta_expr *meta_parse(const char *text, unsigned flags, char *err, size_t errlen);
void meta_free(struct meta_expr **e);
size_t meta_operand_count(const struct meta_expr *e);
const char *meta_operand_name(const struct meta_expr *e, size_t i);
/* meta_bind_rule - operand i is rule (an index into the rules array) */
void meta_bind_rule(struct meta_expr *e, size_t i, size_t rule);
/* meta_bind_value - operand i is the constant v */
void meta_bind_value(struct meta_expr *e, size_t i, double v);
/* meta_eval - the value, with hits[r] the value of rule r (0 or 1) */
double meta_eval(const struct meta_expr *e, const unsigned char *hits);
/* meta_program_build - the linked metas rules[metas[0..n)], in that order,
 * as one program; NULL without memory */
struct meta_program *meta_program_build(const struct rule *rules, const size_t *metas,
    size_t n);
/* meta_program_run - hits[m] for each meta m of the program (NULL: none) */
void meta_program_run(const struct meta_program *p, unsigned char *hits);
void meta_program_free(struct meta_program **p);
/*
 * meta_link - bind the operands of every meta in rules[] by name: find()
 * gives a rule index, or -1 (counts 0) or -2 (counts 0, one warning per
 * meta); then order_r gets the metas so that each comes after the metas
 * it uses, every dependency cycle reported as fatal.  Returns how many
 * metas are in order_r, or SIZE_MAX when out of memory.
 */
typedef long meta_find_fn(void *ctx, const char *name);
typedef void meta_report_fn(void *ctx, bool fatal, const struct rule *r, const char *message);
size_t meta_link(struct rule *rules, size_t nrules, size_t *order_r, meta_find_fn *find,
    meta_report_fn *report, void *ctx);

/*
 * SpamAssassin's if/ifplugin/else/endif blocks, as a file is read.  moat
 * implements no SpamAssassin plugin and none of its Perl features, and
 * claims its version 4.0: "ifplugin X" is false, "if !plugin(X)" true.
 */
#define COND_NESTING_MAX 64

struct cond_block {
	bool saved_skip, saved_counted;
	bool feature;		/* its condition asked about a plugin or feature */
	unsigned line;
};

struct cond_stack {
	struct cond_block blocks[COND_NESTING_MAX];
	size_t n, overflow;
	bool skip;		/* inside a false block: lines are not read */
	bool counted;		/* ... for want of a plugin: they count as unsupported */
};

enum cond_status {
	COND_NONE,		/* not a conditional line */
	COND_OK,
	COND_WARN,		/* a block is skipped for want of a plugin: msg */
	COND_ERROR,		/* msg */
	COND_STATUS_COUNT	/* must be last */
};

/* meta_conditional - apply one line whose first word is key */
enum cond_status meta_conditional(struct cond_stack *cs, const char *key, const char *value,
    unsigned line, char *msg, size_t msglen);

/* rule_eval.c: compiling what rules match, and matching it. */
enum parse_status {
	PARSE_OK,
	PARSE_UNSUPPORTED,	/* err says what */
	PARSE_ERROR,		/* err says why */
	PARSE_STATUS_COUNT	/* must be last */
};

/* What a header rule tests; the strings point into the parsed text. */
struct header_spec {
	enum header_source source;
	const char *field;
	unsigned mods;
	bool exists, negate;
	char *pattern;		/* "/re/flags", unless exists */
	char *if_unset;		/* NULL: none given */
};

/* rule_header_parse - "Field[:mod] =~ /re/ [if-unset: X]" or "exists:Field" */
enum parse_status rule_header_parse(char *text, struct header_spec *hs_r, char *err,
    size_t errlen);
/* What a text rule's regex was compiled from, for the prefilters. */
struct regex_source {
	char *pattern;		/* between the delimiters */
	uint32_t options;	/* PCRE2 options, the flags included */
	bool utf;		/* compiled in UTF mode (else as bytes) */
};

/* rule_regex_compile - "/re/flags", "m{re}flags"..., compiled with the JIT;
 * if literal_r is not NULL, it gets the pattern's required literal
 * (malloc'ed) or NULL, and *source_r the source (malloc'ed; NULL when out
 * of memory, which only costs speed) */
pcre2_code *rule_regex_compile(char *text, uint32_t options, char **literal_r,
    struct regex_source **source_r, char *err, size_t errlen);
/* rule_eval_thread_cleanup - release this thread's matching state now */
void rule_eval_thread_cleanup(void);

#endif
