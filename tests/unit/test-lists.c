/*
 * test-lists.c - allow/deny list parsing and matching (CIDR v4/v6, mapped
 * addresses, names and parent domains, addresses and domains), domain
 * thresholds, and the policy decisions built on them.
 */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "lists.h"
#include "policy.h"
#include "test.h"

static struct sockaddr_storage
addr(const char *text)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (strchr(text, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, text, &s6->sin6_addr);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		inet_pton(AF_INET, text, &s4->sin_addr);
	}
	return ss;
}

static void
test_clients(void)
{
	char err[256];
	struct list *l = list_parse(LIST_CLIENTS,
	    "192.0.2.0/24, 198.51.100.7 ,2001:db8::/32, 10.0.0.0/9", err, sizeof(err));
	static const struct {
		const char *ip;
		bool match;
	} cases[] = {
		{ "192.0.2.1", true }, { "192.0.2.255", true }, { "192.0.3.1", false },
		{ "198.51.100.7", true }, { "198.51.100.8", false },
		{ "2001:db8::1", true }, { "2001:db9::1", false },
		{ "::ffff:192.0.2.9", true }, { "10.127.255.255", true }, { "10.128.0.0", false },
	};

	CHECK(l != NULL);
	CHECK_INT(list_size(l), 4);
	for (size_t i = 0; i < TEST_COUNT(cases); i++) {
		struct sockaddr_storage ss = addr(cases[i].ip);
		if (list_match_ip(l, (struct sockaddr *)&ss) != cases[i].match) {
			printf("  %s: want %d\n", cases[i].ip, cases[i].match);
			test_failures++;
		}
	}
	list_free(&l);
	CHECK(l == NULL);
	static const char *const bad[] = { "192.0.2.0/33", "300.1.1.1", "2001:db8::/129",
	    "host.example", "192.0.2.0/", "1.2.3.4/x" };
	for (size_t i = 0; i < TEST_COUNT(bad); i++) {
		CHECK(list_parse(LIST_CLIENTS, bad[i], err, sizeof(err)) == NULL);
		CHECK(strstr(err, bad[i]) != NULL);
	}
}

static void
test_names(void)
{
	char err[256];
	struct list *l = list_parse(LIST_NAMES, "mx.Example.org, .trusted.example", err, sizeof(err));

	CHECK(list_match_name(l, "mx.example.org"));
	CHECK(list_match_name(l, "MX.EXAMPLE.ORG."));
	CHECK(!list_match_name(l, "a.mx.example.org"));
	CHECK(list_match_name(l, "a.trusted.example"));
	CHECK(list_match_name(l, "b.a.trusted.example"));
	CHECK(!list_match_name(l, "trusted.example"));
	CHECK(!list_match_name(l, "untrusted.example"));
	CHECK(!list_match_name(l, NULL));
	list_free(&l);
}

static void
test_addresses(void)
{
	char err[256];
	struct list *l = list_parse(LIST_ADDRESSES,
	    "boss@Example.org, @partner.example, friends.example, .sub.example", err, sizeof(err));

	CHECK(list_match_address(l, "boss@example.org"));
	CHECK(!list_match_address(l, "other@example.org"));
	CHECK(list_match_address(l, "anyone@partner.example"));
	CHECK(list_match_address(l, "anyone@FRIENDS.example"));
	CHECK(!list_match_address(l, "anyone@x.friends.example"));
	CHECK(list_match_address(l, "a@x.sub.example"));
	CHECK(!list_match_address(l, "a@sub.example"));
	CHECK(!list_match_address(l, ""));
	CHECK(!list_match_address(l, "postmaster"));
	list_free(&l);
	CHECK(list_match_address(NULL, "a@b") == false);
}

static void
test_domain_scores(void)
{
	char err[256];
	size_t n;
	struct domain_scores *ds = domain_scores_parse("example.net=15/8, @Strict.example = 6/3",
	    &n, err, sizeof(err));

	CHECK(ds != NULL);
	CHECK_INT(n, 2);
	CHECK_INT(domain_scores_find(ds, n, "a@example.net"), 0);
	CHECK_INT(domain_scores_find(ds, n, "a@strict.EXAMPLE"), 1);
	CHECK_INT(domain_scores_find(ds, n, "a@other.example"), -1);
	CHECK_INT(domain_scores_find(ds, n, NULL), -1);
	CHECK(ds[1].reject_score == 6 && ds[1].tag_score == 3);
	free(ds);
	CHECK(domain_scores_parse("example.net=5", &n, err, sizeof(err)) == NULL);
	CHECK(domain_scores_parse("example.net=5/8", &n, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "tag score above reject score") != NULL);
}

static struct symbol_list
symbols(const char *const *names, const double *scores, size_t n)
{
	struct symbol_list l = { 0 };
	for (size_t i = 0; i < n; i++) {
		struct symbol s;
		memset(&s, 0, sizeof(s));
		snprintf(s.name, sizeof(s.name), "%s", names[i]);
		s.score = scores[i];
		symbol_list_add(&l, &s);
	}
	return l;
}

static void
test_policy(void)
{
	char *o[] = { "rules=", "domain_scores=strict.example=4/2", "reject_show_rules=yes" };
	struct config *cfg = config_load(NULL, o, 3, NULL, NULL);
	static const char *const names[] = { "A", "B", "NICE" };
	static const double scores[] = { 4.0, 3.0, -1.0 };
	struct symbol_list l = symbols(names, scores, 3);
	struct policy_decision d;

	CHECK(cfg != NULL);
	policy_decide(cfg, VERDICT_CONTINUE, "", &l, "a@example.net", &d);
	CHECK_INT(d.action, ACTION_TAG);	/* 6 >= 5 */
	CHECK(d.score == 6.0);
	policy_decide(cfg, VERDICT_CONTINUE, "", &l, "a@strict.example", &d);
	CHECK_INT(d.action, ACTION_REJECT);	/* 6 >= 4 */
	CHECK_STR(d.reply, "550 5.7.1 Message rejected as spam (A, B)");
	policy_decide(cfg, VERDICT_ACCEPT, "", &l, "a@strict.example", &d);
	CHECK_INT(d.action, ACTION_ACCEPT);	/* allow-listed: the score is not acted on */
	policy_decide(cfg, VERDICT_TEMPFAIL, "", &l, NULL, &d);
	CHECK_INT(d.action, ACTION_TEMPFAIL);
	CHECK_STR(d.reply, "451 4.7.1 Try again later");
	policy_decide(cfg, VERDICT_REJECT, "554 5.7.1 no", &l, NULL, &d);
	CHECK_STR(d.reply, "554 5.7.1 no");

	/* tempfail_score: between tag and reject, a 451 instead of a tag. */
	char *t[] = { "rules=", "tempfail_score=5.5" };
	struct config *tcfg = config_load(NULL, t, 2, NULL, NULL);
	CHECK(tcfg != NULL && !isnan(tcfg->tempfail_score));
	policy_decide(tcfg, VERDICT_CONTINUE, "", &l, NULL, &d);
	CHECK_INT(d.action, ACTION_TEMPFAIL);	/* 6 >= 5.5 */
	CHECK_STR(d.reply, "451 4.7.1 Try again later");
	config_unref(&tcfg);
	CHECK(isnan(cfg->tempfail_score));	/* off by default */

	char hdr[4096];
	policy_decide(cfg, VERDICT_CONTINUE, "", &l, NULL, &d);
	size_t n = policy_tag_headers(cfg, &d, &l, hdr, sizeof(hdr));
	CHECK_INT(n, strlen(hdr));
	CHECK_STR(hdr, "X-Spam-Flag: YES\r\nX-Spam-Score: 6.0\r\n"
	    "X-Spam-Status: Yes, score=6.0 required=5.0 tests=A,B,NICE\r\n");
	symbol_list_free(&l);

	/* Forty long names: folded lines, none over 78 characters. */
	for (int i = 0; i < 40; i++) {
		struct symbol s;
		memset(&s, 0, sizeof(s));
		snprintf(s.name, sizeof(s.name), "A_RATHER_LONG_RULE_NAME_%02d", i);
		s.score = 0.5;
		symbol_list_add(&l, &s);
	}
	policy_decide(cfg, VERDICT_CONTINUE, "", &l, NULL, &d);
	n = policy_tag_headers(cfg, &d, &l, hdr, sizeof(hdr));
	CHECK(n > 0);
	size_t longest = 0, run = 0;
	for (size_t i = 0; i < n; i++) {
		run = hdr[i] == '\n' ? 0 : run + 1;
		longest = run > longest ? run : longest;
	}
	CHECK(longest <= 78);
	CHECK(strstr(hdr, "\r\n\tA_RATHER_LONG_RULE_NAME_") != NULL);
	CHECK(strstr(hdr, "A_RATHER_LONG_RULE_NAME_39\r\n") != NULL);
	/* Too small a buffer: no header at all rather than a broken one. */
	CHECK_INT(policy_tag_headers(cfg, &d, &l, hdr, 100), 0);
	symbol_list_free(&l);
	config_unref(&cfg);
}

int
main(void)
{
	static const struct test_case cases[] = {
		{ "clients", test_clients },
		{ "names", test_names },
		{ "addresses", test_addresses },
		{ "domain_scores", test_domain_scores },
		{ "policy", test_policy },
	};
	return test_main(cases, TEST_COUNT(cases));
}
