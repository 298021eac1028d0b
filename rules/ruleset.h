/*
 * ruleset.h - the regex rule engine: a SpamAssassin-compatible subset of
 * rule files, compiled once (PCRE2 with JIT) into an immutable rule set.
 *
 * A rule set is built completely or not at all: ruleset_load() reports
 * every error as "file:line: message" and returns NULL if any was fatal
 * (a syntax error, a regex PCRE2 cannot compile); lines moat does not
 * support (eval: tests, plugins, unknown directives) are reported as
 * warnings, counted, and skipped.  A loaded set is reference-counted and
 * never changes, so sessions keep the set they started with across a
 * reload, and any number of threads may evaluate one set at once.
 *
 * Evaluation is bounded: every match runs under a match limit and with a
 * JIT stack of its own thread; a rule that hits a limit counts as not
 * matched and is reported in the result's errors.
 */
#ifndef MOAT_RULESET_H
#define MOAT_RULESET_H

#include <stdbool.h>
#include <stddef.h>

struct message_view;
struct ruleset;

/* One problem found while loading: where = "file:line". */
typedef void ruleset_report_fn(void *ctx, bool fatal, const char *where,
    const char *message);

struct ruleset_stats {
	unsigned files;
	unsigned rules;		/* scored or sub-rules that will be evaluated */
	unsigned header, body, rawbody, uri, full, meta;
	unsigned unsupported;	/* lines reported and skipped */
	unsigned errors;	/* fatal problems */
};

/* The envelope, for the pseudo-headers EnvelopeFrom, EnvelopeTo, Helo,
 * ClientIP and ClientName. */
struct rule_envelope {
	const char *client_ip;
	const char *client_name;	/* NULL: unknown */
	const char *helo;
	const char *mail_from;		/* "" for <> */
	const char *const *rcpts;
	size_t nrcpts;
};

struct rule_hit {
	const char *name;		/* points into the rule set */
	const char *description;	/* "" when the rule has none */
	double score;
};

struct rule_result {
	struct rule_hit *hits;		/* scored rules that matched, in file order */
	size_t nhits;
	double score;			/* sum of the hits' scores */
	unsigned limit_errors;		/* rules stopped by a match limit */
	char first_error[256];		/* "RULE_NAME: match limit exceeded" */
};

/*
 * ruleset_load - read rule files (a directory means its *.rules and *.cf files, in
 * name order; "include" lines are followed relative to the including
 * file).  Returns NULL if any fatal problem was reported.
 */
struct ruleset *ruleset_load(const char *const *paths, size_t npaths,
    ruleset_report_fn *report, void *ctx, struct ruleset_stats *stats_r);

/*
 * ruleset_accelerate - build the Hyperscan prefilter of a set: a few
 * seconds for SpamAssassin's stock rules, then several times faster
 * matching (the hits are the same either way).  It may run while other
 * threads evaluate with the set: each message uses the prefilter if it
 * was complete when its evaluation began.  The first call does the work;
 * later ones return 0 at once.  Returns how many text rules Hyperscan
 * took; 0 without Hyperscan, or where it failed (reported as a warning),
 * and the set keeps its literal prefilter.  moatd does this on a thread
 * of its own; moat-check, which runs one message, does not.
 */
unsigned ruleset_accelerate(struct ruleset *rs, ruleset_report_fn *report, void *ctx);

struct ruleset *ruleset_ref(struct ruleset *rs);
void ruleset_unref(struct ruleset **rs);

/* ruleset_eval - run every rule; result_r is filled (free with rule_result_free) */
bool ruleset_eval(const struct ruleset *rs, const struct message_view *mv,
    const struct rule_envelope *env, struct rule_result *result_r);

void rule_result_free(struct rule_result *r);

/* What one text rule costs on one message (ruleset_profile). */
struct rule_cost {
	const char *name, *where;	/* the rule's; valid while the set lives */
	const char *type;		/* "body", "rawbody", "uri", "full" */
	double hyperscan_us;	/* a Hyperscan database of this regex alone, one
				 * scan of the text; < 0: Hyperscan does not take it */
	double pcre_us;		/* PCRE2 over the text (each URI, for uri rules) */
	double estimate_us;	/* its share in moatd: the scan, plus PCRE2 if the
				 * scan lets it through; PCRE2 alone if not taken */
	bool hit;
};

/*
 * ruleset_profile - *costs_r (malloc'ed; the caller frees it) gets every
 * body, rawbody, uri and full rule's cost on mv, the most expensive
 * first; returns how many.  Each regex is timed alone, so it takes
 * seconds for a big set.  Needs a set not accelerated (the Hyperscan
 * column needs the regex sources); moat-check --profile calls it.
 */
size_t ruleset_profile(const struct ruleset *rs, const struct message_view *mv,
    struct rule_cost **costs_r);

/* ruleset_get_stats - the counts of a loaded set */
const struct ruleset_stats *ruleset_get_stats(const struct ruleset *rs);

#endif
