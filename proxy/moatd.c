/*
 * moatd.c - the daemon: options, start-up, signals, reload and drain.
 *
 * The main thread serves no client.  It loads the configuration, probes the
 * backend's capabilities, binds the listening sockets, starts one worker
 * per core, and then only waits for signals: SIGHUP reloads (a complete new
 * configuration or none), SIGTERM/SIGINT drain and exit, and the wait's
 * timeout re-probes the backend.
 */
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "accelerator.h"
#include "caps.h"
#include "config.h"
#include "decision.h"
#include "filter.h"
#include "lint.h"
#include "log.h"
#include "message.h"
#include "netaddr.h"
#include "pool.h"
#include "ruleset.h"
#include "worker.h"

#define WORKERS_MAX 64
#define OVERRIDES_MAX 256
/* Jobs waiting for a pool thread; beyond it checks fail into their failure action. */
#define POOL_QUEUE_MAX 4096
/* Heap, not mmap, below 1 MB; return memory to the kernel only above 16 MB free. */
#define MALLOC_MMAP_THRESHOLD (1024 * 1024)
#define MALLOC_TRIM_THRESHOLD (16 * 1024 * 1024)

struct options {
	const char *config_path;
	char *overrides[OVERRIDES_MAX];
	size_t noverrides;
	bool check_only;
};

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: moatd [-n] [-c FILE] [-o key=value]...\n"
	    "  -c FILE        configuration file (default: none, built-in defaults)\n"
	    "  -o key=value   override a configuration key (repeatable)\n"
	    "  -n             check the configuration, print errors as file:line, exit\n"
	    "  -V             print the version\n");
}

/* report_stderr - "moatd -n" and start-up: errors always; with -n the
 * warnings are counted by kind (moat-check --lint lists each one) */
static void
report_stderr(void *ctx, bool fatal, const char *message)
{
	struct lint_summary *warnings = ctx;

	if (fatal)
		fprintf(stderr, "%s\n", message);
	else if (warnings != NULL)
		lint_summary_add(warnings, message);
	else
		log_debug("rules: %s", message);
}

static void
report_log(void *ctx, bool fatal, const char *message)
{
	if (fatal)
		log_error("reload: %s", message);
	else
		log_debug("reload: rules: %s", message);
}

/* log_rules - one line on what the rule set holds */
static void
log_rules(const struct config *cfg)
{
	if (cfg->ruleset == NULL) {
		log_info("rules: none (rules is empty)");
		return;
	}
	const struct ruleset_stats *st = ruleset_get_stats(cfg->ruleset);
	log_info("rules: %u rules from %u files (%u header, %u body, %u rawbody, %u uri, "
	    "%u full, %u meta); %u unsupported lines skipped%s", st->rules, st->files,
	    st->header, st->body, st->rawbody, st->uri, st->full, st->meta, st->unsupported,
	    st->unsupported > 0 ? " (moatd -n lists them)" : "");
}

static bool
parse_options(int argc, char **argv, struct options *opt)
{
	int c;

	while ((c = getopt(argc, argv, "c:o:nhV")) != -1) {
		switch (c) {
		case 'c':
			opt->config_path = optarg;
			break;
		case 'o':
			if (opt->noverrides == OVERRIDES_MAX) {
				fprintf(stderr, "moatd: too many -o options\n");
				return false;
			}
			opt->overrides[opt->noverrides++] = optarg;
			break;
		case 'n':
			opt->check_only = true;
			break;
		case 'V':
			printf("moatd %s\n", PACKAGE_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return false;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "moatd: unexpected argument: %s\n", argv[optind]);
		usage(stderr);
		return false;
	}
	return true;
}

/*
 * tune_malloc - keep freed memory for the next message: parsing a 50 KB
 * message allocates and frees a few hundred KB, and glibc's default of
 * giving it back to the kernel each time (trim, mmap) doubled the parse
 * cost in page faults (bench-rules: 578 -> 745 msg/s with the shipped rules).
 */
static void
tune_malloc(void)
{
	mallopt(M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD);
	mallopt(M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD);
}

/* raise_fd_limit - 5,000 idle clients need more than the usual 1,024 fds */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* address_free - true unless another process (moatd or not) holds it */
static bool
address_free(const struct netaddr *a, char *error, size_t esize)
{
	int one = 1;
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		snprintf(error, esize, "socket: %s", strerror(errno));
		return false;
	}
	/* Without SO_REUSEPORT: fails if anyone already listens there, even
	 * another moatd that would otherwise share the port silently. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	bool ok = bind(fd, (const struct sockaddr *)&a->ss, a->len) == 0;
	if (!ok)
		snprintf(error, esize, "%s", strerror(errno));
	close(fd);
	return ok;
}

static unsigned
worker_count(const struct config *cfg)
{
	long n = cfg->workers != 0 ? (long)cfg->workers : sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	return n > WORKERS_MAX ? WORKERS_MAX : (unsigned)n;
}

static void
probe_backend(const struct config *cfg, bool startup)
{
	struct caps caps;
	char why[256];

	if (caps_probe(cfg, &caps, why, sizeof(why))) {
		caps_publish(&caps);
		if (startup)
			log_info("backend %s: capabilities 0x%x, size limit %llu",
			    cfg->backend_text, caps.bits, (unsigned long long)caps.size);
	} else {
		log_warning("backend %s: probe failed: %s%s", cfg->backend_text, why,
		    startup ? " (offering only PIPELINING and SIZE until it answers)" : "");
	}
}

static void
reload(const struct options *opt)
{
	struct config *old = config_current();
	struct config *cfg = config_load(opt->config_path, opt->overrides,
	    opt->noverrides, report_log, NULL);
	char error[512];

	if (cfg == NULL) {
		log_error("reload failed: keeping configuration generation %llu",
		    (unsigned long long)old->generation);
		config_unref(&old);
		return;
	}
	if (strcmp(cfg->listen_text, old->listen_text) != 0)
		log_warning("reload: listen changed: takes effect at restart");
	if (cfg->log_syslog != old->log_syslog)
		log_warning("reload: log changed: takes effect at restart");
	log_set_level(cfg->log_level);
	if (!decision_open(cfg->decision_log, error, sizeof(error)))
		log_error("reload: decision_log: %s (records go on to the old file)", error);
	config_unref(&old);
	accelerator_submit(cfg->ruleset, cfg->generation);
	config_swap(cfg);
	log_rules(cfg);
	log_info("reloaded configuration: generation %llu", (unsigned long long)cfg->generation);
}

int
main(int argc, char **argv)
{
	struct options opt = { 0 };
	struct config *cfg;
	struct worker *workers[WORKERS_MAX];
	unsigned nworkers;
	sigset_t sigs;
	char error[512];
	const char *why;

	if (!parse_options(argc, argv, &opt))
		return 1;
	tune_malloc();
	log_open("moatd", false, LOG_LEVEL_INFO);
	message_view_init();
	struct lint_summary *warnings = opt.check_only ? lint_summary_new() : NULL;
	cfg = config_load(opt.config_path, opt.overrides, opt.noverrides,
	    report_stderr, warnings);
	if (opt.check_only && lint_summary_total(warnings) > 0) {
		fprintf(stderr, "moatd: %lu warnings, by kind (moat-check --lint lists each "
		    "with its file:line):\n", lint_summary_total(warnings));
		lint_summary_print(warnings, stderr);
	}
	lint_summary_free(&warnings);
	if (cfg == NULL)
		return 1;
	if (opt.check_only) {
		if (cfg->ruleset != NULL) {
			const struct ruleset_stats *st = ruleset_get_stats(cfg->ruleset);
			fprintf(stderr, "moatd: %u rules loaded, %u unsupported lines skipped\n",
			    st->rules, st->unsupported);
		}
		fprintf(stderr, "moatd: configuration ok\n");
		config_unref(&cfg);
		return 0;
	}
	log_open("moatd", cfg->log_syslog, cfg->log_level);
	if (!decision_open(cfg->decision_log, error, sizeof(error))) {
		log_error("decision_log: %s", error);
		return 1;
	}

	/* Signals go to the main thread's sigtimedwait(), never to a worker. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();

	if (filters_init(cfg, &why) != 0) {
		log_error("filters: %s", why);
		return 1;
	}
	if (!pool_start(cfg->pool_threads, POOL_QUEUE_MAX)) {
		log_error("cannot start the check thread pool");
		return 2;
	}
	if (!accelerator_start()) {
		log_error("cannot start the rule accelerator thread");
		return 2;
	}
	accelerator_submit(cfg->ruleset, cfg->generation);
	probe_backend(cfg, true);
	config_swap(config_ref(cfg));

	nworkers = worker_count(cfg);
	for (size_t a = 0; a < cfg->nlisten; a++) {
		if (!address_free(&cfg->listen[a], error, sizeof(error))) {
			char where[NETADDR_TEXT_MAX + 8];
			netaddr_format((const struct sockaddr *)&cfg->listen[a].ss, where, sizeof(where));
			log_error("listen %s: %s", where, error);
			return 2;
		}
	}
	for (unsigned i = 0; i < nworkers; i++) {
		int fds[CONFIG_LISTEN_MAX];
		for (size_t a = 0; a < cfg->nlisten; a++) {
			fds[a] = worker_listen_socket((const struct sockaddr *)&cfg->listen[a].ss,
			    cfg->listen[a].len, error, sizeof(error));
			if (fds[a] < 0) {
				log_error("listen: %s", error);
				return 2;
			}
		}
		workers[i] = worker_create(i, fds, cfg->nlisten);
		if (workers[i] == NULL || !worker_start(workers[i])) {
			log_error("cannot start worker %u", i);
			return 2;
		}
	}
	log_rules(cfg);
	log_info("listening on %s, backend %s, %u workers, configuration generation %llu",
	    cfg->listen_text, cfg->backend_text, nworkers,
	    (unsigned long long)cfg->generation);

	for (;;) {
		struct config *now = config_current();
		unsigned interval = now->backend_probe_interval_ms;
		struct timespec ts = { interval / 1000, (long)(interval % 1000) * 1000000 };
		int sig = sigtimedwait(&sigs, NULL, &ts);
		if (sig < 0) {
			if (errno == EAGAIN)
				probe_backend(now, false);
			config_unref(&now);
			continue;
		}
		config_unref(&now);
		if (sig == SIGHUP) {
			reload(&opt);
			continue;
		}
		log_info("signal %d: draining", sig);
		break;
	}
	for (unsigned i = 0; i < nworkers; i++)
		worker_drain(workers[i]);
	for (unsigned i = 0; i < nworkers; i++)
		worker_wait(workers[i]);
	accelerator_stop();
	/* Jobs still running post to the (stopped) workers; join frees those. */
	pool_stop();
	for (unsigned i = 0; i < nworkers; i++)
		worker_join(&workers[i]);
	filters_deinit();
	config_swap(NULL);
	config_unref(&cfg);
	message_view_deinit();
	log_info("stopped");
	return 0;
}
