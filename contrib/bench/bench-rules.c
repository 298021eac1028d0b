/*
 * bench-rules.c - messages/second through moat's rule engine, in process:
 * the same message parsing (message_view_parse) and rule evaluation
 * (ruleset_eval) the rules check runs in moatd's thread pool.
 *
 *   contrib/bench/bench-rules [-t THREADS] [-s SECONDS] [-l SCAN_LIMIT] RULES MESSAGE...
 *
 * RULES is a rule file or directory; each MESSAGE an .eml file.  Prints
 * the rule count, messages/second in all and per thread, and the mean
 * number of hits per message.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "message.h"
#include "ruleset.h"

#define MESSAGES_MAX 256

struct input {
	char *data;
	size_t len;
};

static struct input inputs[MESSAGES_MAX];
static size_t ninputs;
static struct ruleset *rules;
static size_t scan_limit = MESSAGE_SCAN_LIMIT_DEFAULT;
static double seconds = 5;

struct worker_stats {
	unsigned long messages, hits, limit_errors;
};

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
report(void *ctx, bool fatal, const char *where, const char *message)
{
	if (fatal)
		fprintf(stderr, "%s: %s\n", where, message);
}

static void *
run(void *arg)
{
	struct worker_stats *st = arg;
	const char *rcpts[] = { "user@example.net" };
	struct rule_envelope env = { "192.0.2.7", NULL, "mail.example.org",
	    "sender@example.org", rcpts, 1 };
	double end = now() + seconds;

	for (size_t i = 0; now() < end; i++) {
		const struct input *in = &inputs[i % ninputs];
		const char *why;
		struct message_view *mv = message_view_parse(in->data, in->len, scan_limit, &why);
		struct rule_result rr;
		if (mv == NULL)
			continue;
		if (ruleset_eval(rules, mv, &env, &rr)) {
			st->hits += rr.nhits;
			st->limit_errors += rr.limit_errors;
			rule_result_free(&rr);
		}
		message_view_free(&mv);
		st->messages++;
	}
	return NULL;
}

static bool
load_message(const char *path, struct input *in)
{
	FILE *fp = fopen(path, "rb");
	if (fp == NULL)
		return false;
	fseek(fp, 0, SEEK_END);
	long size = ftell(fp);
	rewind(fp);
	in->data = malloc((size_t)size + 1);
	in->len = fread(in->data, 1, (size_t)size, fp);
	in->data[in->len] = '\0';
	fclose(fp);
	return true;
}

int
main(int argc, char **argv)
{
	unsigned threads = 1;
	int c;

	while ((c = getopt(argc, argv, "t:s:l:")) != -1) {
		switch (c) {
		case 't': threads = (unsigned)atoi(optarg); break;
		case 's': seconds = atof(optarg); break;
		case 'l': scan_limit = (size_t)atol(optarg); break;
		default:
			fprintf(stderr, "usage: bench-rules [-t THREADS] [-s SECONDS] [-l SCAN_LIMIT] "
			    "RULES MESSAGE...\n");
			return 2;
		}
	}
	if (optind + 2 > argc || threads == 0 || threads > 64)
		return 2;
	/* The same allocator settings as moatd (see tune_malloc in proxy/moatd.c). */
	mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 16 * 1024 * 1024);
	message_view_init();
	struct ruleset_stats stats;
	const char *path = argv[optind];
	double t0 = now();
	rules = ruleset_load(&path, 1, report, NULL, &stats);
	if (rules == NULL)
		return 1;
	double t1 = now();
	unsigned hyperscan = ruleset_accelerate(rules, report, NULL);
	double t2 = now();
	stats = *ruleset_get_stats(rules);
	printf("rules: %u loaded in %.2f s (%u header, %u body, %u rawbody, %u uri, %u full, "
	    "%u meta; %u unsupported lines; %u prefiltered by Hyperscan, built in %.2f s)\n",
	    stats.rules, t1 - t0,
	    stats.header, stats.body, stats.rawbody, stats.uri, stats.full, stats.meta,
	    stats.unsupported, hyperscan, t2 - t1);
	size_t total_bytes = 0;
	for (int i = optind + 1; i < argc && ninputs < MESSAGES_MAX; i++)
		if (load_message(argv[i], &inputs[ninputs])) {
			total_bytes += inputs[ninputs].len;
			ninputs++;
		}
	if (ninputs == 0)
		return 1;
	printf("messages: %zu, mean size %zu bytes, scan_limit %zu\n", ninputs,
	    total_bytes / ninputs, scan_limit);

	pthread_t tids[64];
	struct worker_stats st[64];
	memset(st, 0, sizeof(st));
	t0 = now();
	for (unsigned i = 0; i < threads; i++)
		pthread_create(&tids[i], NULL, run, &st[i]);
	unsigned long messages = 0, hits = 0, limits = 0;
	for (unsigned i = 0; i < threads; i++) {
		pthread_join(tids[i], NULL);
		messages += st[i].messages;
		hits += st[i].hits;
		limits += st[i].limit_errors;
	}
	double elapsed = now() - t0;
	printf("threads %u: %.0f msg/s in all, %.0f msg/s per thread, %.3f ms/msg per thread, "
	    "%.1f hits/msg, %lu match-limit stops\n", threads, (double)messages / elapsed,
	    (double)messages / elapsed / threads, elapsed * 1000 * threads / (double)messages,
	    messages ? (double)hits / (double)messages : 0, limits);
	ruleset_unref(&rules);
	for (size_t i = 0; i < ninputs; i++)
		free(inputs[i].data);
	message_view_deinit();
	return 0;
}
