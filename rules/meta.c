/*
 * meta.c - expressions: meta rules ("A && (B || !C)", "(A + B + C) > 1"),
 * SpamAssassin's "if" conditions ("!plugin(X)", "version >= 3.004") and
 * the if/ifplugin/else/endif blocks they open.  An expression is parsed
 * once (recursive descent, Perl's precedence) into a postfix program that
 * runs with a fixed-size stack: no allocation per message.  Linking binds
 * meta operands to rules and orders the metas, reporting cycles.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ruleset_private.h"

/* Bounds that keep a hostile rule file from exhausting the C stack while
 * parsing, or the evaluation stack while running. */
#define META_NESTING_MAX 100
#define META_STACK_MAX 256

enum meta_op {
	MOP_NUMBER,
	MOP_OPERAND,
	MOP_NOT,
	MOP_NEG,
	MOP_MUL,
	MOP_DIV,
	MOP_ADD,
	MOP_SUB,
	MOP_LT,
	MOP_LE,
	MOP_GT,
	MOP_GE,
	MOP_EQ,
	MOP_NE,
	MOP_AND,
	MOP_OR,
	/* only in a meta_program: */
	MOP_HIT,		/* push hits[rule] */
	MOP_STORE,		/* hits[rule] = the value; the stack empties */
	MOP_COUNT		/* must be last */
};

struct meta_insn {
	enum meta_op op;
	double number;		/* MOP_NUMBER */
	size_t operand;		/* MOP_OPERAND */
};

struct meta_operand {
	char *name;
	long rule;		/* -1: the constant value */
	double value;
};

struct meta_expr {
	struct meta_insn *code;
	size_t ncode, capcode;
	struct meta_operand *operands;
	size_t noperands, capoperands;
};

struct parser {
	const char *text, *p;
	unsigned flags;
	struct meta_expr *e;
	int nesting;
	size_t depth, maxdepth;	/* evaluation stack, simulated */
	bool failed;
	char *err;
	size_t errlen;
};

static void fail(struct parser *ps, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* fail - record the first error, with its column (1-based) */
static void
fail(struct parser *ps, const char *at, const char *fmt, ...)
{
	char what[200];
	va_list ap;

	if (ps->failed)
		return;
	ps->failed = true;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(ps->err, ps->errlen, "syntax error at column %zu: %s",
	    (size_t)(at - ps->text) + 1, what);
}

static void
skip_space(struct parser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t')
		ps->p++;
}

/* emit - append one instruction; pops and pushes track the stack depth */
static void
emit(struct parser *ps, enum meta_op op, double number, size_t operand, int pops)
{
	struct meta_expr *e = ps->e;

	if (ps->failed)
		return;
	if (e->ncode == e->capcode) {
		size_t cap = e->capcode ? e->capcode * 2 : 16;
		struct meta_insn *n = realloc(e->code, cap * sizeof(*n));
		if (n == NULL) {
			ps->failed = true;
			snprintf(ps->err, ps->errlen, "out of memory");
			return;
		}
		e->code = n;
		e->capcode = cap;
	}
	e->code[e->ncode++] = (struct meta_insn){ op, number, operand };
	ps->depth = ps->depth - (size_t)pops + 1;
	if (ps->depth > ps->maxdepth)
		ps->maxdepth = ps->depth;
	if (ps->maxdepth > META_STACK_MAX)
		fail(ps, ps->p, "%s", "expression too complex");
}

/* add_operand - the index of name among the operands, added once */
static size_t
add_operand(struct parser *ps, const char *name, size_t len)
{
	struct meta_expr *e = ps->e;

	for (size_t i = 0; i < e->noperands; i++)
		if (strlen(e->operands[i].name) == len && memcmp(e->operands[i].name, name, len) == 0)
			return i;
	if (e->noperands == e->capoperands) {
		size_t cap = e->capoperands ? e->capoperands * 2 : 8;
		struct meta_operand *n = realloc(e->operands, cap * sizeof(*n));
		if (n == NULL)
			goto oom;
		e->operands = n;
		e->capoperands = cap;
	}
	char *copy = strndup(name, len);
	if (copy == NULL)
		goto oom;
	e->operands[e->noperands] = (struct meta_operand){ copy, -1, 0 };
	return e->noperands++;
oom:
	ps->failed = true;
	snprintf(ps->err, ps->errlen, "out of memory");
	return 0;
}

static bool
is_word(int c)
{
	return isalnum((unsigned char)c) || c == '_';
}

static void parse_or(struct parser *ps);

/* parse_primary - a number, a rule name, a call (conditions) or (expr) */
static void
parse_primary(struct parser *ps)
{
	const char *start;

	skip_space(ps);
	start = ps->p;
	if (isdigit((unsigned char)*ps->p) || (*ps->p == '.' && isdigit((unsigned char)ps->p[1]))) {
		char *end;
		double v = strtod(ps->p, &end);
		/* strtod also takes hex and exponents; rule files use neither */
		while (isdigit((unsigned char)*ps->p) || *ps->p == '.')
			ps->p++;
		if (end != ps->p || is_word(*ps->p)) {
			fail(ps, start, "%s", "malformed number");
			return;
		}
		emit(ps, MOP_NUMBER, v, 0, 0);
		return;
	}
	if (isalpha((unsigned char)*ps->p) || *ps->p == '_') {
		while (is_word(*ps->p))
			ps->p++;
		if ((ps->flags & META_CONDITION) && *ps->p == '(') {
			/* plugin(Mail::SpamAssassin::Plugin::X): one opaque operand */
			const char *close = strchr(ps->p, ')');
			if (close == NULL) {
				fail(ps, ps->p, "%s", "missing closing parenthesis");
				return;
			}
			ps->p = close + 1;
		} else if (*ps->p == ':' || *ps->p == '(') {
			fail(ps, ps->p, "unexpected '%c' after a rule name", *ps->p);
			return;
		}
		size_t i = add_operand(ps, start, (size_t)(ps->p - start));
		emit(ps, MOP_OPERAND, 0, i, 0);
		return;
	}
	if (*ps->p == '(') {
		ps->p++;
		parse_or(ps);
		skip_space(ps);
		if (ps->failed)
			return;
		if (*ps->p != ')') {
			fail(ps, ps->p, "%s", *ps->p == '\0' ? "missing closing parenthesis" :
			    "expected an operator or ')'");
			return;
		}
		ps->p++;
		return;
	}
	if (*ps->p == '\0')
		fail(ps, start, "%s", "expected an operand at the end");
	else if (*ps->p == ')')
		fail(ps, start, "%s", "unexpected ')'");
	else if (strchr("&|*/<>=!^?:~%", *ps->p) != NULL)
		fail(ps, start, "%s", "expected an operand before an operator");
	else if (isprint((unsigned char)*ps->p))
		fail(ps, start, "unexpected character '%c'", *ps->p);
	else
		fail(ps, start, "unexpected byte 0x%02x", (unsigned)(unsigned char)*ps->p);
}

static void
parse_unary(struct parser *ps)
{
	skip_space(ps);
	if (++ps->nesting > META_NESTING_MAX) {
		fail(ps, ps->p, "%s", "expression nested too deeply");
		return;
	}
	if (*ps->p == '!' && ps->p[1] != '=') {
		ps->p++;
		parse_unary(ps);
		emit(ps, MOP_NOT, 0, 0, 1);
	} else if (*ps->p == '-') {
		ps->p++;
		parse_unary(ps);
		emit(ps, MOP_NEG, 0, 0, 1);
	} else if (*ps->p == '+') {
		ps->p++;
		parse_unary(ps);
	} else {
		parse_primary(ps);
	}
	ps->nesting--;
}

/* The binary operators, by precedence level, loosest first (Perl's order). */
struct binop {
	const char *token;
	enum meta_op op;
	int level;
};

static const struct binop binops[] = {
	{ "||", MOP_OR, 0 },
	{ "&&", MOP_AND, 1 },
	{ "==", MOP_EQ, 2 }, { "!=", MOP_NE, 2 },
	{ "<=", MOP_LE, 3 }, { ">=", MOP_GE, 3 }, { "<", MOP_LT, 3 }, { ">", MOP_GT, 3 },
	{ "+", MOP_ADD, 4 }, { "-", MOP_SUB, 4 },
	{ "*", MOP_MUL, 5 }, { "/", MOP_DIV, 5 },
};
#define BINOP_LEVELS 6

/* next_binop - the binary operator at ps->p, or NULL (and an error for an
 * operator moat does not know) */
static const struct binop *
next_binop(struct parser *ps)
{
	skip_space(ps);
	for (size_t i = 0; i < sizeof(binops) / sizeof(binops[0]); i++)
		if (strncmp(ps->p, binops[i].token, strlen(binops[i].token)) == 0)
			return &binops[i];
	if (*ps->p != '\0' && *ps->p != ')') {
		if (strchr("&|=!^?:~%<>", *ps->p) != NULL) {
			/* "&", "|", "=", "^", "?:", "=~" ...: Perl has them, moat does not */
			int len = ps->p[1] != '\0' && strchr("&|=~", ps->p[1]) != NULL ? 2 : 1;
			fail(ps, ps->p, "unknown operator '%.*s'", len, ps->p);
		} else {
			fail(ps, ps->p, "%s", "expected an operator");
		}
	}
	return NULL;
}

/* parse_level - operands joined by the operators of one level, left to right */
static void
parse_level(struct parser *ps, int level)
{
	const struct binop *b;

	if (level == BINOP_LEVELS) {
		parse_unary(ps);
		return;
	}
	parse_level(ps, level + 1);
	while (!ps->failed && (b = next_binop(ps)) != NULL && b->level == level) {
		ps->p += strlen(b->token);
		parse_level(ps, level + 1);
		emit(ps, b->op, 0, 0, 2);
	}
}

static void
parse_or(struct parser *ps)
{
	if (++ps->nesting > META_NESTING_MAX) {
		fail(ps, ps->p, "%s", "expression nested too deeply");
		return;
	}
	parse_level(ps, 0);
	ps->nesting--;
}

/* meta_parse - compile text; NULL with the reason in err */
struct meta_expr *
meta_parse(const char *text, unsigned flags, char *err, size_t errlen)
{
	struct meta_expr *e = calloc(1, sizeof(*e));
	struct parser ps = { text, text, flags, e, 0, 0, 0, false, err, errlen };

	if (e == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	skip_space(&ps);
	if (*ps.p == '\0') {
		snprintf(err, errlen, "empty expression");
		meta_free(&e);
		return NULL;
	}
	parse_or(&ps);
	skip_space(&ps);
	if (!ps.failed && *ps.p == ')')
		fail(&ps, ps.p, "%s", "unexpected ')'");
	else if (!ps.failed && *ps.p != '\0')
		fail(&ps, ps.p, "%s", "expected an operator");
	if (ps.failed) {
		meta_free(&e);
		return NULL;
	}
	return e;
}

void
meta_free(struct meta_expr **ep)
{
	struct meta_expr *e = *ep;

	if (e == NULL)
		return;
	for (size_t i = 0; i < e->noperands; i++)
		free(e->operands[i].name);
	free(e->operands);
	free(e->code);
	free(e);
	*ep = NULL;
}

size_t
meta_operand_count(const struct meta_expr *e)
{
	return e->noperands;
}

const char *
meta_operand_name(const struct meta_expr *e, size_t i)
{
	return e->operands[i].name;
}

void
meta_bind_rule(struct meta_expr *e, size_t i, size_t rule)
{
	e->operands[i].rule = (long)rule;
}

void
meta_bind_value(struct meta_expr *e, size_t i, double v)
{
	e->operands[i].rule = -1;
	e->operands[i].value = v;
}

/* operate - an operator on the stack st[0, *sp); && and || give an
 * operand's value, as in Perl */
static inline void
operate(enum meta_op op, double *st, size_t *sp)
{
	double *top = &st[*sp - 1];

	switch (op) {
	case MOP_NOT: *top = *top == 0; return;
	case MOP_NEG: *top = -*top; return;
	default: break;
	}
	double b = *top, a = top[-1];
	(*sp)--;
	switch (op) {
	case MOP_MUL: a = a * b; break;
	/* Perl dies on a division by zero; the meta then cannot hit. */
	case MOP_DIV: a = b != 0 ? a / b : 0; break;
	case MOP_ADD: a = a + b; break;
	case MOP_SUB: a = a - b; break;
	case MOP_LT: a = a < b; break;
	case MOP_LE: a = a <= b; break;
	case MOP_GT: a = a > b; break;
	case MOP_GE: a = a >= b; break;
	case MOP_EQ: a = a == b; break;
	case MOP_NE: a = a != b; break;
	case MOP_AND: a = a != 0 ? b : a; break;
	case MOP_OR: a = a != 0 ? a : b; break;
	default: break;
	}
	top[-1] = a;
}

/* meta_eval - run one expression's code */
double
meta_eval(const struct meta_expr *e, const unsigned char *hits)
{
	double st[META_STACK_MAX + 1];
	size_t sp = 0;

	for (size_t i = 0; i < e->ncode; i++) {
		const struct meta_insn *in = &e->code[i];

		if (in->op == MOP_NUMBER) {
			st[sp++] = in->number;
		} else if (in->op == MOP_OPERAND) {
			const struct meta_operand *o = &e->operands[in->operand];
			st[sp++] = o->rule >= 0 ? (double)hits[o->rule] : o->value;
		} else {
			operate(in->op, st, &sp);
		}
	}
	return sp == 1 ? st[0] : 0;
}

/*
 * A meta program: every meta of a set in evaluation order, in one array.
 * Evaluating 759 metas one expression at a time meant two scattered
 * allocations each, and in moatd, where the network code has just
 * evicted them, cache misses cost five times the arithmetic.
 */
struct meta_step {
	uint8_t op;		/* enum meta_op */
	uint32_t rule;		/* MOP_HIT, MOP_STORE */
	double number;		/* MOP_NUMBER */
};

struct meta_program {
	struct meta_step *steps;
	size_t nsteps;
};

struct meta_program *
meta_program_build(const struct rule *rules, const size_t *metas, size_t n)
{
	struct meta_program *p = calloc(1, sizeof(*p));
	size_t total = 0;

	if (p == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		total += rules[metas[i]].meta->ncode + 1;
	if ((p->steps = calloc(total + 1, sizeof(*p->steps))) == NULL) {
		free(p);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		const struct meta_expr *e = rules[metas[i]].meta;
		for (size_t k = 0; k < e->ncode; k++) {
			const struct meta_insn *in = &e->code[k];
			struct meta_step *st = &p->steps[p->nsteps++];
			st->op = (uint8_t)in->op;
			st->number = in->number;
			if (in->op != MOP_OPERAND)
				continue;
			const struct meta_operand *o = &e->operands[in->operand];
			if (o->rule >= 0) {
				st->op = MOP_HIT;
				st->rule = (uint32_t)o->rule;
			} else {
				st->op = MOP_NUMBER;
				st->number = o->value;
			}
		}
		p->steps[p->nsteps++] = (struct meta_step){ .op = MOP_STORE,
			.rule = (uint32_t)metas[i] };
	}
	return p;
}

/* meta_program_run - as meta_eval() for each meta in turn, each seeing the
 * metas before it */
void
meta_program_run(const struct meta_program *p, unsigned char *hits)
{
	double st[META_STACK_MAX + 1];
	size_t sp = 0;

	for (size_t i = 0; p != NULL && i < p->nsteps; i++) {
		const struct meta_step *in = &p->steps[i];

		if (in->op == MOP_NUMBER) {
			st[sp++] = in->number;
		} else if (in->op == MOP_HIT) {
			st[sp++] = hits[in->rule];
		} else if (in->op == MOP_STORE) {
			hits[in->rule] = sp == 1 && st[0] != 0;
			sp = 0;
		} else {
			operate(in->op, st, &sp);
		}
	}
}

void
meta_program_free(struct meta_program **pp)
{
	if (*pp == NULL)
		return;
	free((*pp)->steps);
	free(*pp);
	*pp = NULL;
}

/* The colours of a depth-first search. */
enum visit {
	VISIT_NEW,
	VISIT_OPEN,		/* on the current path */
	VISIT_DONE,
	VISIT_COUNT		/* must be last */
};

/* cycle_path - "A -> B -> A" from the search path, starting at rule */
static void
cycle_path(const struct rule *rules, const size_t *path, size_t npath, size_t rule,
    char *err, size_t errlen)
{
	size_t i = 0, o;

	while (i < npath && path[i] != rule)
		i++;
	o = (size_t)snprintf(err, errlen, "dependency cycle:");
	for (; i < npath && o < errlen; i++)
		o += (size_t)snprintf(err + o, errlen - o, " %s ->", rules[path[i]].name);
	if (o < errlen)
		snprintf(err + o, errlen - o, " %s", rules[rule].name);
}

/* meta_order - depth-first, with an explicit stack: chains of metas in a
 * file can be long, the C stack is not */
static size_t
meta_order(const struct rule *rules, size_t nrules, size_t *order_r, meta_report_fn *report,
    void *ctx)
{
	unsigned char *state = calloc(nrules + 1, 1);
	size_t *path = malloc((nrules + 1) * sizeof(*path));
	size_t *next = malloc((nrules + 1) * sizeof(*next));
	size_t n = 0;
	char err[1024];

	if (state == NULL || path == NULL || next == NULL) {
		free(state);
		free(path);
		free(next);
		return SIZE_MAX;
	}
	for (size_t r = 0; r < nrules; r++) {
		size_t npath = 0;

		if (rules[r].type != RULE_META || state[r] != VISIT_NEW)
			continue;
		path[npath] = r;
		next[npath++] = 0;
		state[r] = VISIT_OPEN;
		while (npath > 0) {
			size_t cur = path[npath - 1];
			const struct meta_expr *e = rules[cur].meta;
			if (next[npath - 1] == e->noperands) {
				state[cur] = VISIT_DONE;
				order_r[n++] = cur;
				npath--;
				continue;
			}
			long dep = e->operands[next[npath - 1]++].rule;
			if (dep < 0 || rules[dep].type != RULE_META || state[dep] == VISIT_DONE)
				continue;
			if (state[dep] == VISIT_OPEN) {
				/* each back edge closes one cycle: report it, go on */
				cycle_path(rules, path, npath, (size_t)dep, err, sizeof(err));
				report(ctx, true, &rules[dep], err);
				continue;
			}
			state[dep] = VISIT_OPEN;
			path[npath] = (size_t)dep;
			next[npath++] = 0;
		}
	}
	free(state);
	free(path);
	free(next);
	return n;
}

size_t
meta_link(struct rule *rules, size_t nrules, size_t *order_r, meta_find_fn *find,
    meta_report_fn *report, void *ctx)
{
	for (size_t r = 0; r < nrules; r++) {
		struct meta_expr *e = rules[r].meta;
		char missing[1024] = "", msg[1200];
		size_t o = 0, n = 0;

		if (rules[r].type != RULE_META)
			continue;
		for (size_t i = 0; i < e->noperands; i++) {
			long rule = find(ctx, e->operands[i].name);
			if (rule >= 0) {
				meta_bind_rule(e, i, (size_t)rule);
				continue;
			}
			meta_bind_value(e, i, 0);
			if (rule == -1)
				continue;
			/* names past the buffer are cut: the count says how many */
			if (o < sizeof(missing))
				o += (size_t)snprintf(missing + o, sizeof(missing) - o, "%s%s",
				    o ? ", " : "", e->operands[i].name);
			n++;
		}
		if (n > 0) {
			snprintf(msg, sizeof(msg), "%zu undefined or unsupported rule%s count%s as 0: "
			    "%.700s", n, n > 1 ? "s" : "", n > 1 ? "" : "s", missing);
			report(ctx, false, &rules[r], msg);
		}
	}
	return meta_order(rules, nrules, order_r, report, ctx);
}

/*
 * can_is_true - the SpamAssassin engine features moat has too: metas that
 * tolerate undefined sub-rules (bug 6558: moat counts them as 0) and Perl
 * 5.10 regex syntax (PCRE2 has it).  Plugin features stay false.
 */
static bool
can_is_true(const char *op)
{
	static const char *const features[] = {
		"can(Mail::SpamAssassin::Conf::feature_bug6558_free)",
		"can(Mail::SpamAssassin::Conf::perl_min_version_5010000)",
	};
	for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++)
		if (strcmp(op, features[i]) == 0)
			return true;
	return false;
}

/* condition - the value of an "if" condition; false with err on a problem */
static bool
condition(const char *text, bool *value_r, bool *feature_r, char *err, size_t errlen)
{
	char why[256];
	struct meta_expr *e = meta_parse(text, META_CONDITION, why, sizeof(why));

	*feature_r = false;
	if (e == NULL) {
		snprintf(err, errlen, "if %s: %s", text, why);
		return false;
	}
	for (size_t i = 0; i < e->noperands; i++) {
		const char *op = e->operands[i].name;
		if (strcmp(op, "version") == 0) {
			meta_bind_value(e, i, RULESET_SA_VERSION);
		} else if (strcmp(op, "perl_version") == 0) {
			meta_bind_value(e, i, 5.036);	/* Debian 12's */
		} else if (strcmp(op, "local_tests_only") == 0) {
			meta_bind_value(e, i, 0);
		} else if (can_is_true(op)) {
			meta_bind_value(e, i, 1);
		} else if (strncmp(op, "plugin(", 7) == 0 || strncmp(op, "can(", 4) == 0 ||
		    strncmp(op, "has(", 4) == 0) {
			meta_bind_value(e, i, 0);
			*feature_r = true;
		} else {
			snprintf(err, errlen, "if %s: unknown condition '%s'", text, op);
			meta_free(&e);
			return false;
		}
	}
	*value_r = meta_eval(e, NULL) != 0;
	meta_free(&e);
	return true;
}

/* start_skip - lines stop being read; one warning for the whole block when
 * moat lacks what it asks for (a failed version check is simply not for
 * SpamAssassin 4.0, and is silent) */
static enum cond_status
start_skip(struct cond_stack *cs, const char *key, const char *value, bool feature,
    char *msg, size_t msglen)
{
	cs->skip = true;
	cs->counted = feature;
	if (!feature)
		return COND_OK;
	if (strcmp(key, "ifplugin") == 0)
		snprintf(msg, msglen, "ifplugin %s: SpamAssassin plugins unsupported, block skipped",
		    value);
	else
		snprintf(msg, msglen, "%s%s%s: SpamAssassin plugin and feature tests unsupported, "
		    "block skipped", key, *value ? " " : "", value);
	return COND_WARN;
}

enum cond_status
meta_conditional(struct cond_stack *cs, const char *key, const char *value, unsigned line,
    char *msg, size_t msglen)
{
	bool is_if = strcmp(key, "if") == 0, is_endif = strcmp(key, "endif") == 0;

	if (is_if || strcmp(key, "ifplugin") == 0) {
		bool feature = true, value_true = false;
		if (cs->n == COND_NESTING_MAX) {
			cs->overflow++;
			snprintf(msg, msglen, "%s: blocks nested deeper than %d", key,
			    COND_NESTING_MAX);
			return COND_ERROR;
		}
		if (*value == '\0') {
			snprintf(msg, msglen, "%s: missing condition", key);
			return COND_ERROR;
		}
		/* Conditions inside a skipped block are not evaluated, as in SA. */
		if (is_if && !cs->skip && !condition(value, &value_true, &feature, msg, msglen))
			return COND_ERROR;
		cs->blocks[cs->n++] = (struct cond_block){ cs->skip, cs->counted, feature, line };
		if (!cs->skip && !value_true)
			return start_skip(cs, key, value, feature, msg, msglen);
		return COND_OK;
	}
	if (!is_endif && strcmp(key, "else") != 0)
		return COND_NONE;
	if (*value != '\0') {
		snprintf(msg, msglen, "%s: takes no argument", key);
		return COND_ERROR;
	}
	if (cs->overflow > 0) {
		cs->overflow -= is_endif;
		return COND_OK;
	}
	if (cs->n == 0) {
		snprintf(msg, msglen, "%s without if", key);
		return COND_ERROR;
	}
	struct cond_block *b = &cs->blocks[cs->n - 1];
	if (is_endif) {
		cs->skip = b->saved_skip;
		cs->counted = b->saved_counted;
		cs->n--;
	} else if (!b->saved_skip) {
		/* (the else of a block inside a skipped one stays skipped) */
		if (!cs->skip)
			return start_skip(cs, "else", "", b->feature, msg, msglen);
		cs->skip = false;
		cs->counted = false;
	}
	return COND_OK;
}
