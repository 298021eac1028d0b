/*
 * profile.c - what each text rule costs on one message (moat-check
 * --profile): its regex alone, timed over the text it reads, with PCRE2
 * and as a Hyperscan database of its own.  For the person tuning rules:
 * a rule set's speed is mostly the sum of a few expensive regexes, and
 * this names them.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hsscan.h"
#include "message.h"
#include "ruleset_private.h"

/* Each timing repeats its work until this much time has passed (or
 * REPS_MAX times), so that a 1 us regex is not measured as 0. */
#define TIMING_NS 2000000.0
#define REPS_MAX 1000

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* the text a rule type reads; uri rules: every URI a line, as the
 * prefilter in rule_eval.c scans them */
static const char *
text_of(const struct message_view *mv, enum rule_type t, size_t *len_r)
{
	switch (t) {
	case RULE_BODY:
		return message_view_body(mv, len_r);
	case RULE_RAWBODY:
		return message_view_rawbody(mv, len_r);
	case RULE_FULL:
		return message_view_full(mv, len_r);
	case RULE_URI:
		return message_view_uri_lines(mv, len_r);
	default:
		return NULL;
	}
}

/* pcre_time - ns for one run of r over its text (each URI on its own for
 * uri rules, as moatd runs them); *hit_r whether it matched */
static double
pcre_time(const struct rule *r, const struct message_view *mv, const char *s, size_t len,
    pcre2_match_data *md, pcre2_match_context *mctx, bool *hit_r)
{
	double t0 = now_ns(), t;
	unsigned reps = 0;

	do {
		bool hit = false;
		if (r->type == RULE_URI) {
			for (size_t i = 0; i < message_view_uri_count(mv); i++) {
				const char *u = message_view_uri(mv, i);
				hit |= pcre2_match(r->re, (PCRE2_SPTR)u, strlen(u), 0, 0, md, mctx) >= 0;
			}
		} else {
			hit = pcre2_match(r->re, (PCRE2_SPTR)s, len, 0, 0, md, mctx) >= 0;
		}
		*hit_r = hit;
		t = now_ns() - t0;
	} while (++reps < REPS_MAX && t < TIMING_NS);
	return t / reps;
}

/* hyperscan_time - ns for one scan of s by a database of r alone, or -1
 * if Hyperscan does not take it (or is absent); *candidate_r whether the
 * scan lets the rule through to PCRE2 */
static double
hyperscan_time(const struct rule *r, const char *s, size_t len, struct hsscan_state *st,
    bool *candidate_r)
{
	struct hsscan_pattern p = { r->source->pattern, r->source->options, r->source->utf,
		r->type == RULE_URI, 0 };
	bool accepted = false;
	const char *why;
	struct hsscan *hs = hsscan_build(&p, 1, &accepted, &why);
	double t0, t = -1;
	unsigned reps = 0;

	*candidate_r = true;
	if (hs == NULL || st == NULL)
		goto out;
	t0 = now_ns();
	do {
		unsigned char mark = 0;
		if (!hsscan_scan(hs, st, s, len, &mark)) {
			t = -1;
			goto out;
		}
		*candidate_r = mark != 0;
		t = now_ns() - t0;
	} while (++reps < REPS_MAX && t < TIMING_NS);
	t /= reps;
out:
	hsscan_free(&hs);
	return t;
}

static int
by_cost(const void *a, const void *b)
{
	const struct rule_cost *x = a, *y = b;

	return x->estimate_us < y->estimate_us ? 1 : x->estimate_us > y->estimate_us ? -1 :
	    strcmp(x->name, y->name);
}

size_t
ruleset_profile(const struct ruleset *rs, const struct message_view *mv,
    struct rule_cost **costs_r)
{
	static const char *const type_names[] = {
		[RULE_BODY] = "body", [RULE_RAWBODY] = "rawbody",
		[RULE_URI] = "uri", [RULE_FULL] = "full",
	};
	struct rule_cost *costs = calloc(rs->nrules + 1, sizeof(*costs));
	pcre2_match_context *mctx = pcre2_match_context_create(NULL);
	pcre2_match_data *md = pcre2_match_data_create(1, NULL);
	struct hsscan_state *st = hsscan_state_new();
	size_t n = 0;

	*costs_r = NULL;
	if (costs == NULL || mctx == NULL || md == NULL)
		goto out;
	pcre2_set_match_limit(mctx, RULESET_MATCH_LIMIT);
	pcre2_set_depth_limit(mctx, RULESET_DEPTH_LIMIT);
	for (enum rule_type t = RULE_BODY; t <= RULE_FULL; t++) {
		size_t len = 0;
		const char *s = text_of(mv, t, &len);
		for (size_t i = 0; s != NULL && i < rs->nrules; i++) {
			const struct rule *r = &rs->rules[i];
			if (r->type != t || r->re == NULL)
				continue;
			struct rule_cost *c = &costs[n++];
			bool candidate = true;
			c->name = r->name;
			c->where = r->where;
			c->type = type_names[t];
			c->pcre_us = pcre_time(r, mv, s, len, md, mctx, &c->hit) / 1e3;
			c->hyperscan_us = r->source != NULL ?
			    hyperscan_time(r, s, len, st, &candidate) : -1;
			if (c->hyperscan_us >= 0)
				c->hyperscan_us /= 1e3;
			/* moatd pays its share of the scan, and PCRE2 only if let through */
			c->estimate_us = c->hyperscan_us >= 0 ?
			    c->hyperscan_us + (candidate ? c->pcre_us : 0) : c->pcre_us;
		}
	}
	qsort(costs, n, sizeof(*costs), by_cost);
	*costs_r = costs;
	costs = NULL;
out:
	free(costs);
	pcre2_match_data_free(md);
	pcre2_match_context_free(mctx);
	hsscan_state_free(&st);
	return n;
}
