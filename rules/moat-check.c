/*
 * moat-check.c - runs one message through moatd's chain, offline.
 *
 * The same library, checks, rule engine and policy as moatd: the message
 * is held as moatd holds it (canonical CRLF), every stage of the filter
 * chain runs with the envelope given on the command line, and the policy
 * decides.  Prints each check's result and each rule hit with its score,
 * the total, the action and the reply moatd would give; --json prints the
 * one decision record moatd would write.  --lint only loads the rules.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>

#include "chain.h"
#include "config.h"
#include "decision.h"
#include "lint.h"
#include "log.h"
#include "message.h"
#include "msgbuf.h"
#include "policy.h"
#include "pool.h"
#include "ruleset.h"
#include "worker.h"

#define OVERRIDES_MAX 256
#define RCPTS_MAX 1000
/* Message files bigger than this are checked on their first bytes only. */
#define READ_MAX ((size_t)64 << 20)

struct options {
	const char *config_path;
	char *overrides[OVERRIDES_MAX];
	size_t noverrides;
	const char *ip, *helo, *from;
	const char *rcpts[RCPTS_MAX];
	size_t nrcpts;
	bool json, lint;
	unsigned profile;		/* --profile[=N]: the N costliest rules; 0 off */
	struct lint_summary *warnings;	/* --lint: counted by kind */
	const char *file;
};

struct stage_wait {
	bool done;
	enum verdict verdict;
	char reply[FILTER_REPLY_MAX];
};

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: moat-check [-c FILE] [-o key=value]... [--ip A] [--helo H] [--from ADDR]\n"
	    "                  [--rcpt ADDR]... [--json | --profile[=N]] FILE.eml|-\n"
	    "       moat-check [-c FILE] [-o key=value]... --lint\n");
}

static void
report(void *ctx, bool fatal, const char *message)
{
	const struct options *opt = ctx;

	/* Warnings (unsupported rule lines) matter when linting, not per message. */
	if (fatal) {
		fprintf(stderr, "%s\n", message);
	} else if (opt->lint) {
		fprintf(stderr, "warning: %s\n", message);
		lint_summary_add(opt->warnings, message);
	}
}

static bool
parse_options(int argc, char **argv, struct options *opt)
{
	static const struct option longopts[] = {
		{ "ip", required_argument, NULL, 'i' },
		{ "helo", required_argument, NULL, 'H' },
		{ "from", required_argument, NULL, 'f' },
		{ "rcpt", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "lint", no_argument, NULL, 'l' },
		{ "profile", optional_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	opt->ip = "127.0.0.1";
	opt->helo = "localhost";
	while ((c = getopt_long(argc, argv, "c:o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': opt->config_path = optarg; break;
		case 'o':
			if (opt->noverrides == OVERRIDES_MAX)
				return false;
			opt->overrides[opt->noverrides++] = optarg;
			break;
		case 'i': opt->ip = optarg; break;
		case 'H': opt->helo = optarg; break;
		case 'f': opt->from = optarg; break;
		case 'r':
			if (opt->nrcpts == RCPTS_MAX)
				return false;
			opt->rcpts[opt->nrcpts++] = optarg;
			break;
		case 'j': opt->json = true; break;
		case 'l': opt->lint = true; break;
		case 'p': {
			char *end;
			unsigned long n = optarg != NULL ? strtoul(optarg, &end, 10) : 20;
			if (optarg != NULL && (*end != '\0' || n == 0 || n > 100000))
				return false;
			opt->profile = (unsigned)n;
			break;
		}
		case 'h': usage(stdout); exit(0);
		default: return false;
		}
	}
	if (opt->json && opt->profile > 0)
		return false;	/* --json prints exactly one record */
	if (opt->lint)
		return optind == argc;
	if (optind + 1 != argc)
		return false;
	opt->file = argv[optind];
	return true;
}

/* read_message - the file as moatd would hold it: CRLF line endings */
static bool
read_message(const char *path, struct msgbuf *mb)
{
	FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char buf[65536];
	size_t n, total = 0;
	bool first_line = true, prev_cr = false;

	if (fp == NULL) {
		fprintf(stderr, "moat-check: %s: %s\n", path, strerror(errno));
		return false;
	}
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0 && total < READ_MAX) {
		size_t start = 0;
		/* An mbox "From " separator is not part of the message. */
		if (first_line && n >= 5 && memcmp(buf, "From ", 5) == 0) {
			char *nl = memchr(buf, '\n', n);
			start = nl != NULL ? (size_t)(nl - buf) + 1 : n;
		}
		first_line = false;
		for (size_t i = start; i < n; i++) {
			if (buf[i] == '\n' && !prev_cr)
				msgbuf_append(mb, "\r", 1);
			msgbuf_append(mb, &buf[i], 1);
			prev_cr = buf[i] == '\r';
		}
		total += n;
	}
	if (mb->size > 0 && !prev_cr) {
		/* moatd only ever holds messages that end with CRLF. */
		char last;
		msgbuf_read(mb, mb->size - 1, &last, 1);
		if (last != '\n')
			msgbuf_append(mb, "\r\n", 2);
	}
	if (fp != stdin)
		fclose(fp);
	return msgbuf_flush(mb);
}

static void
stage_done(void *arg, enum verdict verdict, const char *reply)
{
	struct stage_wait *sw = arg;

	sw->done = true;
	sw->verdict = verdict;
	snprintf(sw->reply, sizeof(sw->reply), "%s", reply);
}

/* run_stage - one stage of the chain, waiting (bounded) for async checks */
static enum verdict
run_stage(struct chain *c, struct worker *w, enum stage stage,
    const struct filter_txn *txn, unsigned timeout_ms, char *reply, size_t size)
{
	struct stage_wait sw = { 0 };
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	chain_run(c, stage, txn, stage_done, &sw);
	while (!sw.done) {
		struct timeval tv = { 0, 100000 };
		event_base_loopexit(worker_base(w), &tv);
		event_base_dispatch(worker_base(w));
		clock_gettime(CLOCK_MONOTONIC, &now);
		/* The chain's own timeouts fire first; this only guards a bug. */
		if ((now.tv_sec - start.tv_sec) * 1000 > (long)timeout_ms + 5000) {
			fprintf(stderr, "moat-check: stage %s did not finish\n", stage_name(stage));
			exit(2);
		}
	}
	snprintf(reply, size, "%s", sw.reply);
	return sw.verdict;
}

/* header_address - the address inside "<...>" of a header line, or the value */
static char *
header_address(const struct message_view *mv, const char *name)
{
	for (size_t i = 0; i < message_view_header_count(mv); i++) {
		const struct message_header *h = message_view_header(mv, i);
		if (strcasecmp(h->name, name) != 0)
			continue;
		const char *lt = strchr(h->raw, '<'), *gt = lt ? strchr(lt, '>') : NULL;
		if (lt != NULL && gt != NULL)
			return strndup(lt + 1, (size_t)(gt - lt - 1));
		return strdup(h->raw);
	}
	return NULL;
}

static void
print_text(const struct config *cfg, const struct symbol_list *symbols,
    const struct policy_decision *d, enum verdict early, enum stage early_stage)
{
	if (early != VERDICT_CONTINUE && early != VERDICT_ACCEPT)
		printf("stage %s: %s\n", stage_name(early_stage), verdict_name(early));
	printf("%-8s %-28s %s\n", "score", "symbol", "description");
	for (size_t i = 0; i < symbols->count; i++) {
		const struct symbol *s = &symbols->items[i];
		printf("%8.2f %-28s %s%s\n", s->score, s->name,
		    s->detail[0] ? s->detail : s->check,
		    s->monitor ? " [monitor: not counted]" : "");
	}
	printf("total score %.2f (tag at %.1f, reject at %.1f)\n", d->score, d->tag_score,
	    d->reject_score);
	printf("action: %s\n", action_name(d->action));
	printf("reply: %s\n", d->reply[0] ? d->reply : "(the backend's own reply)");
}

/*
 * print_profile - the costliest text rules on this message.  Each regex
 * is timed alone, as a Hyperscan database of its own and with PCRE2; in
 * moatd one database scans for all rules at once, so the figures say
 * which rules weigh most, not what the whole set costs.
 */
static void
print_profile(const struct config *cfg, const struct message_view *mv, const char *why,
    unsigned top)
{
	struct rule_cost *costs = NULL;
	size_t n = 0;
	double sum = 0;

	if (cfg->ruleset == NULL || mv == NULL) {
		printf("\nprofile: %s\n", mv == NULL ? why : "no rules configured");
		return;
	}
	n = ruleset_profile(cfg->ruleset, mv, &costs);
	for (size_t i = 0; i < n; i++)
		sum += costs[i].estimate_us;
	printf("\nprofile: %zu text rules, timed one by one on this message: %.0f us added up "
	    "(more than\nmoatd spends, where one Hyperscan scan serves them all).  The %zu "
	    "costliest\n(hyperscan: a database of the regex alone, one scan; pcre2: the regex "
	    "over the text):\n", n, sum, n < top ? n : (size_t)top);
	printf("  %10s %10s %10s  %-7s %-30s %s\n", "estimate", "hyperscan", "pcre2", "type",
	    "rule", "defined at");
	for (size_t i = 0; i < n && i < top; i++) {
		const struct rule_cost *c = &costs[i];
		char hs[32];
		if (c->hyperscan_us >= 0)
			snprintf(hs, sizeof(hs), "%.1f us", c->hyperscan_us);
		else
			snprintf(hs, sizeof(hs), "-");
		printf("  %7.1f us %10s %7.1f us  %-7s %-30s %s%s\n", c->estimate_us, hs,
		    c->pcre_us, c->type, c->name, c->where, c->hit ? " (hit)" : "");
	}
	free(costs);
}

int
main(int argc, char **argv)
{
	struct options opt = { 0 };
	struct config *cfg;
	struct msgbuf mb;
	int rc = 0;

	if (!parse_options(argc, argv, &opt)) {
		usage(stderr);
		return 2;
	}
	log_open("moat-check", false, LOG_LEVEL_WARNING);
	message_view_init();
	if (opt.lint)
		opt.warnings = lint_summary_new();
	cfg = config_load(opt.config_path, opt.overrides, opt.noverrides, report, &opt);
	if (cfg == NULL) {
		lint_summary_free(&opt.warnings);
		return 1;
	}
	log_set_level(cfg->log_level < LOG_LEVEL_WARNING ? cfg->log_level : LOG_LEVEL_WARNING);
	if (opt.lint) {
		if (lint_summary_total(opt.warnings) > 0) {
			printf("%lu warnings, by kind:\n", lint_summary_total(opt.warnings));
			lint_summary_print(opt.warnings, stdout);
		}
		lint_summary_free(&opt.warnings);
		if (cfg->ruleset != NULL) {
			const struct ruleset_stats *st = ruleset_get_stats(cfg->ruleset);
			printf("%u rules from %u files (%u header, %u body, %u rawbody, %u uri, "
			    "%u full, %u meta), %u unsupported lines skipped\n", st->rules,
			    st->files, st->header, st->body, st->rawbody, st->uri, st->full,
			    st->meta, st->unsupported);
		} else {
			printf("no rules configured\n");
		}
		config_unref(&cfg);
		message_view_deinit();
		return 0;
	}

	msgbuf_init(&mb, (size_t)cfg->message_memory_limit, cfg->temp_dir);
	if (!read_message(opt.file, &mb)) {
		config_unref(&cfg);
		return 1;
	}
	const char *why = NULL;
	size_t peek_len = mb.size < cfg->scan_limit ? (size_t)mb.size : (size_t)cfg->scan_limit;
	char *peek = malloc(peek_len + 1);
	if (peek == NULL || msgbuf_read(&mb, 0, peek, peek_len) != (ssize_t)peek_len)
		return 1;
	const char *parse_error = NULL;
	struct message_view *mv = message_view_parse(peek, peek_len, cfg->scan_limit,
	    &parse_error);
	char *from = opt.from != NULL ? strdup(opt.from) : mv ? header_address(mv, "From") : NULL;
	char *to = opt.nrcpts == 0 && mv ? header_address(mv, "To") : NULL;
	free(peek);	/* the view keeps its own copy */
	if (opt.nrcpts == 0)
		opt.rcpts[opt.nrcpts++] = to != NULL ? to : "postmaster";

	if (!pool_start(cfg->pool_threads != 0 ? cfg->pool_threads : 1, 16) ||
	    filters_init(cfg, &why) != 0) {
		fprintf(stderr, "moat-check: cannot start the checks\n");
		return 1;
	}
	struct worker *w = worker_create(0, NULL, 0);
	struct chain chain;
	void *states[FILTERS_MAX] = { 0 };
	struct symbol_list symbols = { 0 };
	struct filter_txn txn = {
		.session_id = 1,
		.cfg = cfg,
		.client_ip = opt.ip,
		.helo = opt.helo,
	};
	struct sockaddr_storage ss = { 0 };
	txn.client_addr = (const struct sockaddr *)&ss;
	chain_init(&chain, w, 1, cfg, states, &symbols);

	/* The stages in moatd's order; the first refusal ends the run, as it would
	 * end the SMTP transaction. */
	char reply[FILTER_REPLY_MAX];
	unsigned wait = cfg->rules_timeout_ms;
	enum verdict v = VERDICT_CONTINUE;
	enum stage at = STAGE_CONNECT;
	const enum stage order[] = { STAGE_CONNECT, STAGE_HELO, STAGE_MAIL };
	txn.mail_from = from != NULL ? from : "";
	for (size_t i = 0; i < 3 && v <= VERDICT_ACCEPT; i++) {
		at = order[i];
		v = run_stage(&chain, w, at, &txn, wait, reply, sizeof(reply));
	}
	for (size_t i = 0; i < opt.nrcpts && v <= VERDICT_ACCEPT; i++) {
		txn.rcpt = opt.rcpts[i];
		txn.rcpts = opt.rcpts;
		txn.nrcpts = i;
		at = STAGE_RCPT;
		v = run_stage(&chain, w, at, &txn, wait, reply, sizeof(reply));
	}
	txn.rcpt = NULL;
	txn.nrcpts = opt.nrcpts;
	txn.message = &mb;
	if (v <= VERDICT_ACCEPT) {
		at = STAGE_DATA;
		v = run_stage(&chain, w, at, &txn, wait, reply, sizeof(reply));
	}
	enum verdict early = v;
	if (v <= VERDICT_ACCEPT) {
		at = STAGE_EOD;
		v = run_stage(&chain, w, at, &txn, wait, reply, sizeof(reply));
		early = VERDICT_CONTINUE;
	}
	struct policy_decision d;
	policy_decide(cfg, v, reply, &symbols, opt.rcpts[0], &d);

	if (opt.json) {
		char line[1 << 16];
		struct decision rec = {
			.session_id = 1,
			.client_ip = opt.ip,
			.helo = opt.helo,
			.mail_from = txn.mail_from,
			.rcpts = opt.rcpts,
			.nrcpts = opt.nrcpts,
			.size = (int64_t)mb.size,
			.stage = at,
			.action = d.action,
			.symbols = &symbols,
			.reply = d.reply[0] ? d.reply : NULL,
			.config_generation = cfg->generation,
		};
		size_t n = decision_format(&rec, line, sizeof(line));
		if (n == 0) {
			fprintf(stderr, "moat-check: record too large\n");
			rc = 1;
		} else {
			fwrite(line, 1, n, stdout);
		}
	} else {
		print_text(cfg, &symbols, &d, early, at);
		if (opt.profile > 0)
			print_profile(cfg, mv, parse_error, opt.profile);
	}

	struct filter_txn end = txn;
	chain_end(&chain, &end);
	/* A timed-out job may still post its result: stop the pool first. */
	pool_stop();
	worker_join(&w);
	filters_deinit();
	symbol_list_free(&symbols);
	msgbuf_free(&mb);
	message_view_free(&mv);
	free(from);
	free(to);
	config_unref(&cfg);
	message_view_deinit();
	return rc;
}
