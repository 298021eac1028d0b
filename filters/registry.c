/*
 * registry.c - the list of checks moatd runs, in order, and the helpers
 * checks use to record their results.  A new check is one file plus one
 * line here.
 */
#include <stdio.h>
#include <string.h>

#include "chain.h"
#include "filter.h"

extern const struct filter filter_connlimit;
extern const struct filter filter_lists;
extern const struct filter filter_rules;

static const struct filter *const moatd_filters[] = {
	&filter_connlimit,
	&filter_lists,
	&filter_rules,
	NULL
};

const struct filter *const *filter_registry = moatd_filters;

/* filters_init - process-wide set-up of every check */
int
filters_init(const struct config *cfg, const char **error_r)
{
	for (size_t i = 0; filter_registry[i] != NULL; i++) {
		if (filter_registry[i]->init != NULL &&
		    filter_registry[i]->init(cfg, error_r) != 0) {
			while (i-- > 0)
				if (filter_registry[i]->deinit != NULL)
					filter_registry[i]->deinit();
			return -1;
		}
	}
	return 0;
}

/* filters_deinit - undo filters_init (tests call it between cases) */
void
filters_deinit(void)
{
	for (size_t i = 0; filter_registry[i] != NULL; i++)
		if (filter_registry[i]->deinit != NULL)
			filter_registry[i]->deinit();
}

/* filter_add_symbol - append evidence to a result (bounded; false if full) */
bool
filter_add_symbol(struct filter_result *result, const char *check,
    const char *name, double score, const char *detail)
{
	struct symbol sym;

	if (result->symbols.count >= FILTER_RESULT_SYMBOLS_MAX)
		return false;
	memset(&sym, 0, sizeof(sym));
	snprintf(sym.name, sizeof(sym.name), "%s", name);
	snprintf(sym.check, sizeof(sym.check), "%s", check != NULL ? check : "");
	snprintf(sym.detail, sizeof(sym.detail), "%s", detail != NULL ? detail : "");
	sym.score = score;
	return symbol_list_add(&result->symbols, &sym);
}

/* filter_result_free - release a result's symbols (when not handed over) */
void
filter_result_free(struct filter_result *result)
{
	symbol_list_free(&result->symbols);
}

/* filter_set_verdict - set a verdict with its reply line ("421 4.7.0 ...") */
void
filter_set_verdict(struct filter_result *result, enum verdict verdict, const char *reply)
{
	result->verdict = verdict;
	snprintf(result->reply, sizeof(result->reply), "%s", reply != NULL ? reply : "");
}
