/*
 * accelerate.c - what decides which rules' regexes run: the automaton of
 * literals built with each set (build_prefilters), and the Hyperscan
 * databases ruleset_accelerate() adds later, published whole to threads
 * that may already be evaluating with the set.
 */
#include <stdlib.h>
#include <string.h>

#include "hsscan.h"
#include "prefilter.h"
#include "ruleset_private.h"

/* add_literal - rule id's literal into *pf, made on first use; false
 * when out of memory */
static bool
add_literal(struct prefilter **pf, const char *literal, size_t id)
{
	if (*pf == NULL && (*pf = prefilter_new()) == NULL)
		return false;
	return prefilter_add(*pf, literal, id);
}

/* build_prefilters - one automaton per text type over its rules'
 * literals; false when out of memory */
bool
build_prefilters(struct ruleset *rs)
{
	for (size_t i = 0; i < rs->nrules; i++) {
		struct rule *r = &rs->rules[i];
		if (r->literal != NULL && !add_literal(&rs->prefilter[r->type], r->literal, i))
			return false;
	}
	for (size_t t = 0; t < RULE_TYPE_COUNT; t++)
		if (rs->prefilter[t] != NULL && !prefilter_build(rs->prefilter[t]))
			return false;
	return true;
}

/* accel_free - see ruleset_private.h */
void
accel_free(struct ruleset_accel *a)
{
	if (a == NULL)
		return;
	for (size_t t = 0; t < RULE_TYPE_COUNT; t++) {
		hsscan_free(&a->hs[t]);
		prefilter_free(&a->prefilter_rest[t]);
	}
	free(a->in_hs);
	free(a);
}

/*
 * accel_build - one Hyperscan database per text type; the rules it cannot
 * take keep their literal, in an automaton of their own.  NULL if no
 * database was built (*count_r is then 0).
 */
static struct ruleset_accel *
accel_build(const struct ruleset *rs, ruleset_report_fn *reportfn, void *ctx,
    unsigned *count_r)
{
	struct ruleset_accel *a = calloc(1, sizeof(*a));
	struct hsscan_pattern *pats = calloc(rs->nrules + 1, sizeof(*pats));
	bool *accepted = calloc(rs->nrules + 1, sizeof(*accepted));
	bool ok = a != NULL && pats != NULL && accepted != NULL &&
	    (a->in_hs = calloc(rs->nrules + 1, 1)) != NULL;
	bool any = false;

	*count_r = 0;
	for (size_t t = 0; t < RULE_TYPE_COUNT && ok; t++) {
		size_t n = 0;
		const char *why;
		for (size_t i = 0; i < rs->nrules; i++) {
			const struct rule *r = &rs->rules[i];
			if (r->type == t && r->source != NULL)
				pats[n++] = (struct hsscan_pattern){ r->source->pattern,
					r->source->options, r->source->utf, t == RULE_URI, i };
		}
		if (n == 0)
			continue;
		if ((a->hs[t] = hsscan_build(pats, n, accepted, &why)) == NULL) {
			if (*why == '\0')
				continue;	/* it took none of them */
			if (reportfn != NULL && strstr(why, "without Hyperscan") == NULL)
				reportfn(ctx, false, "rules", why);
			break;
		}
		any = true;
		for (size_t k = 0; k < n && ok; k++) {
			const struct rule *r = &rs->rules[pats[k].id];
			a->in_hs[pats[k].id] = accepted[k];
			*count_r += accepted[k];
			if (!accepted[k] && r->literal != NULL)
				ok = add_literal(&a->prefilter_rest[t], r->literal, pats[k].id);
		}
		ok = ok && (a->prefilter_rest[t] == NULL || prefilter_build(a->prefilter_rest[t]));
	}
	free(pats);
	free(accepted);
	if (ok && any)
		return a;
	if (!ok && reportfn != NULL)
		reportfn(ctx, false, "rules", "out of memory for Hyperscan");
	accel_free(a);
	*count_r = 0;
	return NULL;
}

unsigned
ruleset_accelerate(struct ruleset *rs, ruleset_report_fn *reportfn, void *ctx)
{
	unsigned count = 0;

	if (rs == NULL || atomic_exchange(&rs->accelerate_claimed, true))
		return 0;
	struct ruleset_accel *a = accel_build(rs, reportfn, ctx, &count);
	if (a != NULL)
		atomic_store_explicit(&rs->accel, a, memory_order_release);
	/* Nothing reads the sources but the build above. */
	for (size_t i = 0; i < rs->nrules; i++)
		free_source(&rs->rules[i].source);
	return count;
}
