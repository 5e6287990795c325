/*
 * cmd-run.c - `cohort run`: launch N workers inside the allocation, sample
 * them, enforce a budget, record a timeline (supervise.c does the work).
 */
#include "supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Below this a limit holds no process: the libc and the program's own pages take more. */
#define MIN_LIMIT (4ULL << 20)

static void help(FILE *out)
{
	fprintf(out,
	        "Usage: cohort run [-n N] [OPTIONS] [--] CMD [ARGS...]\n"
	        "\n"
	        "Start N workers running CMD, inside the job's allocation: sample their memory\n"
	        "(RSS, PSS, USS, swap, shmem, the cgroup's counters), stop one that goes over its\n"
	        "budget before the kernel's OOM killer picks a victim, flag leaks and\n"
	        "copy-on-write unsharing, and record a timeline for `cohort report`.\n"
	        "Each worker gets COHORT_RANK, COHORT_SIZE, COHORT_JOB and COHORT_SUPERVISOR (the\n"
	        "supervisor's pid) in its environment.\n"
	        "\n"
	        "Options:\n"
	        "  -n, --workers N            workers to start, 1 to 4096 (default: the usable\n"
	        "                             CPUs)\n"
	        "  -l, --label                prefix each output line with the worker's rank\n"
	        "      --budget SIZE          memory for all workers together (default: the\n"
	        "                             allocation's limit less a margin for cohort and\n"
	        "                             the page cache)\n"
	        "  -m, --mem-per-worker SIZE  each worker's limit (default: budget / N)\n"
	        "      --enforce MODE         cgroup: a memory cgroup per worker, the kernel\n"
	        "                             enforces (root or a delegated v2 subtree);\n"
	        "                             rlimit: RLIMIT_DATA, allocations fail in the worker;\n"
	        "                             watch: cohort samples and stops a worker over its\n"
	        "                             limit (SIGTERM, then SIGKILL);\n"
	        "                             none: watch, warn and record, stop nothing (the\n"
	        "                             kernel and SLURM enforce the job's limit);\n"
	        "                             auto (default): cgroup when possible, else watch\n"
	        "      --soft PERCENT         warn at this share of a limit (default 90)\n"
	        "  -i, --interval SECONDS     time between samples (default 1; 0.1 works)\n"
	        "      --pss-budget PERCENT   CPU of one core for PSS page walks (default 0.6,\n"
	        "                             which keeps cohort within 1%% of a core)\n"
	        "      --grace SECONDS        from SIGTERM to SIGKILL (default 10)\n"
	        "  -K, --kill-on-bad-exit     stop every worker when one fails\n"
	        "      --no-catch             do not preload cohort's shim that records a fatal\n"
	        "                             signal's address and backtrace (on by default,\n"
	        "                             except for sanitizer-built programs)\n"
	        "  -o, --record FILE          record to FILE, as given: an existing regular file\n"
	        "                             of yours is replaced (a FIFO, device, symlink or\n"
	        "                             another user's file is refused). Without -o the\n"
	        "                             default name, cohort-<job>.ndjson or\n"
	        "                             cohort-<job>.<step>.<task>.ndjson for a task of\n"
	        "                             srun or mpirun, is created new, never an existing\n"
	        "                             file (when taken, .<host>.<pid> is added): see\n"
	        "                             docs/recording.md\n"
	        "      --no-record            record nothing\n"
	        "      --metrics FILE|DIR     keep the job's memory figures in FILE as Prometheus\n"
	        "                             metrics for node_exporter's textfile collector\n"
	        "                             (name it *.prom in the collector's directory; a\n"
	        "                             DIR gets cohort_<job>_<step>_<task>.prom):\n"
	        "                             replaced atomically every 5 s (or every sample when\n"
	        "                             --interval is longer) and once more at the end\n"
	        "  -q, --quiet                no live warnings and no summary\n"
	        "  -h, --help                 show this help\n"
	        "\n"
	        "Exit status: 0 when every worker exits 0 and nothing was killed; else the first\n"
	        "failing worker's exit code, or 128+signal; 137 when the kernel OOM-killed a\n"
	        "process in a worker's cgroup, 143 when cohort stopped a worker over its limit,\n"
	        "even if the program then exited 0; 2 bad usage; 3 cohort could not start the\n"
	        "workers (the plan does not fit, no cgroup, recording or metrics file\n"
	        "unwritable); 127 CMD could not be run.\n");
}

static int parse_number(const char *option, const char *text, double min, double max, double *ret)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (errno || end == text || *end != '\0' || !isfinite(v) || v < min || v > max) {
		cli_error("invalid value '%s' for %s: expected a number from %g to %g", text, option, min, max);
		return -1;
	}
	*ret = v;
	return 0;
}

/* SLURM's accounting setup, from `scontrol show config` (bounded in time and size). */
static void slurm_jobacct(struct run_opts *o)
{
	if (!o->alloc.slurm.present || cohort_slurm_config_read(&o->probe, &o->slurm_config) < 0)
		return;
	o->have_slurm_config = 1;
	if (o->slurm_config.jobacct_gather_type[0])
		o->jobacct = o->slurm_config.jobacct_gather_type;
	if (o->slurm_config.jobacct_gather_params[0])
		o->jobacct_params = o->slurm_config.jobacct_gather_params;
}

/*
 * The job's name for segments and the workers' COHORT_JOB. A COHORT_JOB
 * the segment calls would refuse is refused here, before any worker
 * starts: each worker's cohort_seg_create() would fail with -EINVAL.
 */
static int job_token(const struct cohort_alloc *a, char *job, size_t jsize)
{
	const char *env = getenv("COHORT_JOB");

	if (env && *env) {
		if (!cohort_job_scope_valid(env)) {
			cli_error("invalid COHORT_JOB '%s': a job scope is 1 to %d of [A-Za-z0-9_-] "
			          "(segment names are built from it); unset it or choose such a name",
			          env, COHORT_ID_MAX - 1);
			return -EINVAL;
		}
		snprintf(job, jsize, "%s", env);
	} else if (a->slurm.present)
		snprintf(job, jsize, "%s", a->slurm.job_id);
	else
		snprintf(job, jsize, "local-%d", (int)getpid());
	return 0;
}

/* Why a name was refused, in words. */
static const char *refusal(const char *path, int err, char *buf, size_t size)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return strerror(-err);
	if (S_ISLNK(st.st_mode))
		return "it is a symbolic link";
	if (S_ISFIFO(st.st_mode))
		return "it is a FIFO";
	if (S_ISDIR(st.st_mode))
		return "it is a directory";
	if (!S_ISREG(st.st_mode))
		return "it is not a regular file";
	if (st.st_uid != geteuid()) {
		snprintf(buf, size, "it belongs to another user (uid %u)", (unsigned)st.st_uid);
		return buf;
	}
	if (st.st_nlink != 1)
		return "it has other hard links";
	if (err == -EEXIST)
		return "it exists (another supervisor's, or an earlier run's)";
	return strerror(-err);
}

/*
 * The default recording is this supervisor's alone: created with O_EXCL
 * (never a file that is there already, whoever made it: another
 * supervisor of the job, a FIFO or a file another user planted), and
 * when the name is taken, this host and pid are added, and a counter
 * after them. Said on stderr, so the user finds the file. Returns 0 and
 * *ret with rec holding the name used, or -errno of the last try.
 */
static int claim_recording(char *rec, size_t size, struct cohort_recorder **ret)
{
	char host[64] = "", base[1024], first[1024], why[96], buf[96];
	int r;

	r = cohort_recorder_open_flags(rec, COHORT_RECORDER_EXCL, ret);
	if (r != -EEXIST || strlen(rec) <= 7 || strlen(rec) >= sizeof(base) - 100)
		return r;
	snprintf(first, sizeof(first), "%s", rec);
	snprintf(why, sizeof(why), "%s", refusal(rec, r, buf, sizeof(buf)));
	gethostname(host, sizeof(host) - 1);
	host[strcspn(host, "./")] = '\0';
	snprintf(base, sizeof(base), "%.*s.%s.%d", (int)(strlen(rec) - 7), rec, host, (int)getpid());
	for (int k = 0; k < 10 && r == -EEXIST; k++) {
		if (k == 0)
			snprintf(rec, size, "%s.ndjson", base);
		else
			snprintf(rec, size, "%s.%d.ndjson", base, k);
		r = cohort_recorder_open_flags(rec, COHORT_RECORDER_EXCL, ret);
	}
	if (r == 0)   /* even with --quiet: it says where the recording is */
		fprintf(stderr, "cohort: not recording in %s: %s; recording in %s instead\n", first, why, rec);
	return r;
}

/* The program a command will run: argv0 itself when it has a slash, else found on PATH. */
static bool resolve(const char *argv0, char *out, size_t size)
{
	const char *path = getenv("PATH");
	char dir[4096];

	if (strchr(argv0, '/')) {
		snprintf(out, size, "%s", argv0);
		return access(out, X_OK) == 0;
	}
	for (const char *p = path ? path : "/usr/bin:/bin"; *p; ) {
		size_t n = strcspn(p, ":");

		snprintf(dir, sizeof(dir), "%.*s", (int)n, p);
		snprintf(out, size, "%s/%s", n ? dir : ".", argv0);
		if (access(out, X_OK) == 0)
			return true;
		p += n;
		if (*p == ':')
			p++;
	}
	return false;
}

/* Does the file contain a sanitizer runtime's entry point? (It would fight the shim's handlers.) */
static bool sanitized(const char *file)
{
	static const char *const marks[] = { "__asan_init", "__tsan_init", "__msan_init", "__hwasan_init" };
	char buf[65536 + 32];
	size_t keep = 0, n;
	bool found = false;
	long total = 0;
	FILE *f = fopen(file, "re");

	if (!f)
		return false;
	while (!found && total < (256L << 20) && (n = fread(buf + keep, 1, 65536, f)) > 0) {
		size_t len = keep + n;

		total += (long)n;
		for (size_t m = 0; m < sizeof(marks) / sizeof(marks[0]) && !found; m++)
			found = memmem(buf, len, marks[m], strlen(marks[m])) != NULL;
		keep = len < 31 ? len : 31;
		memmove(buf, buf + len - keep, keep);
	}
	fclose(f);
	return found;
}

/*
 * The preload shim: COHORT_CATCH_LIB, else beside the cohort binary (the
 * build tree), else in ../lib/cohort/ (an installed tree).
 */
static void find_catch(struct run_opts *o)
{
	static char lib[4096];
	char exe[4096], prog[4096], *slash;
	const char *env = getenv("COHORT_CATCH_LIB");
	ssize_t n;

	o->catch_off = "the shim libcohort-catch.so was not found beside cohort or in ../lib/cohort";
	if (env && *env) {
		snprintf(lib, sizeof(lib), "%s", env);
	} else {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n <= 0)
			return;
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (!slash)
			return;
		*slash = '\0';
		snprintf(lib, sizeof(lib), "%s/libcohort-catch.so", exe);
		if (access(lib, R_OK) != 0)
			snprintf(lib, sizeof(lib), "%s/../lib/cohort/libcohort-catch.so", exe);
	}
	if (access(lib, R_OK) != 0 || strchr(lib, ' ') || strchr(lib, ':'))
		return;
	if (resolve(o->argv[0], prog, sizeof(prog)) && sanitized(prog)) {
		o->catch_off = "the command is built with a sanitizer, which reports crashes itself";
		return;
	}
	o->catch_lib = lib;
	o->catch_off = NULL;
}

/*
 * --metrics: a file, or a directory (node_exporter's) in which this task
 * gets cohort_<job>[_<step>][_<task>].prom, so that `srun -n 4 cohort run
 * --metrics DIR` gives each task of the node its own file. Tried now, by
 * creating its temporary file: a bad path stops us before any worker runs.
 */
static int metrics_path(struct run_opts *o, char *buf, size_t size)
{
	char why[COHORT_MSG_MAX];
	struct stat st;
	int n;

	if (stat(o->metrics, &st) == 0 && S_ISDIR(st.st_mode)) {
		n = snprintf(buf, size, "%s/cohort_%s", o->metrics, o->task.job[0] ? o->task.job : o->job);
		if (n > 0 && (size_t)n < size && o->task.step[0])
			n += snprintf(buf + n, size - (size_t)n, "_%s", o->task.step);
		if (n > 0 && (size_t)n < size && o->task.known)
			n += snprintf(buf + n, size - (size_t)n, "_%ld", o->task.id);
		if (n > 0 && (size_t)n < size)
			n += snprintf(buf + n, size - (size_t)n, ".prom");
		if (n < 0 || (size_t)n >= size) {
			cli_error("cannot write metrics into %s: the path is too long", o->metrics);
			return -ENAMETOOLONG;
		}
		o->metrics = buf;
	}
	if (cohort_metrics_check_path(o->metrics, why, sizeof(why)) < 0) {
		cli_error("cannot write the metrics file %s: %s", o->metrics, why);
		return -EINVAL;
	}
	return 0;
}

/*
 * The verdict's problems and fixes. A --budget the caller gave is the limit
 * the plan was checked against: raising it is a fix too when the allocation
 * holds the plan, and cohort check (which knows no --budget) would only say
 * that it fits, so it is not offered then.
 */
static int refuse(const struct run_opts *o, const struct cohort_verdict *v, bool user_budget)
{
	char lim[32];

	cli_error("not starting: the plan does not fit");
	for (int i = 0; i < v->nproblems; i++) {
		const struct cohort_problem *p = &v->problems[i];

		if (!p->fatal)
			continue;
		fprintf(stderr, "  problem: %s\n      fix: %s", p->message, p->fix);
		if (user_budget && p->kind == COHORT_PROBLEM_MEM_LIMIT && v->total <= o->alloc.mem_limit)
			fprintf(stderr, "; or raise --budget to %lluM (the allocation's %s limit holds it)",
			        (unsigned long long)((v->total + (1ULL << 20) - 1) >> 20),
			        cohort_size_format(o->alloc.mem_limit, lim, sizeof(lim)));
		else if (user_budget && p->kind == COHORT_PROBLEM_MEM_LIMIT)
			fprintf(stderr, " (a larger --budget does not help: the allocation's limit is %s)",
			        cohort_size_format(o->alloc.mem_limit, lim, sizeof(lim)));
		fputc('\n', stderr);
	}
	if (!user_budget)
		fprintf(stderr, "  (`cohort check --workers %u --mem-per-worker %lluM` shows the allocation)\n",
		        o->workers, (unsigned long long)(o->mem_per_worker >> 20));
	return CLI_ERROR;
}

static int cmd_run_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "workers", required_argument, NULL, 'n' },
		{ "label", no_argument, NULL, 'l' },
		{ "budget", required_argument, NULL, 'B' },
		{ "mem-per-worker", required_argument, NULL, 'm' },
		{ "enforce", required_argument, NULL, 'E' },
		{ "soft", required_argument, NULL, 'S' },
		{ "interval", required_argument, NULL, 'i' },
		{ "pss-budget", required_argument, NULL, 'P' },
		{ "grace", required_argument, NULL, 'G' },
		{ "kill-on-bad-exit", no_argument, NULL, 'K' },
		{ "record", required_argument, NULL, 'o' },
		{ "no-record", no_argument, NULL, 'N' },
		{ "metrics", required_argument, NULL, 'M' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "catch", no_argument, NULL, 'C' },
		{ "no-catch", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	static char job[80], recname[1024], metrics_file[1024];
	struct run_opts o;
	struct cohort_alloc within;
	struct cohort_plan plan;
	struct cohort_verdict verdict;
	bool no_record = false, no_catch = false, controller_down = false;
	uint64_t share;
	double soft_pct = 90;
	int c, r;
	char a[32], b[32];
	static char budget_source[320];

	memset(&o, 0, sizeof(o));
	o.interval = 1.0;
	o.pss_budget = 0.006;
	o.grace = 10.0;
	o.enforce = ENFORCE_AUTO;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+:n:lm:i:Ko:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (cli_parse_count("--workers", optarg, CLI_MAX_WORKERS, &o.workers) < 0)
				return CLI_USAGE;
			break;
		case 'l':
			o.label = true;
			break;
		case 'B':
			if (cli_parse_size("--budget", optarg, &o.budget) < 0)
				return CLI_USAGE;
			if (o.budget < MIN_LIMIT)
				return cli_usage_error(&cli_cmd_run, "--budget %s is below %d MiB, which holds no "
				                       "process%s", optarg, (int)(MIN_LIMIT >> 20),
				                       strpbrk(optarg, "kKmMgGtTpP") ? "" : " (a unit left out: 10G, not 10?)");
			break;
		case 'm':
			if (cli_parse_size("--mem-per-worker", optarg, &o.mem_per_worker) < 0)
				return CLI_USAGE;
			if (o.mem_per_worker < MIN_LIMIT)
				return cli_usage_error(&cli_cmd_run, "--mem-per-worker %s is below %d MiB, which "
				                       "holds no process%s", optarg, (int)(MIN_LIMIT >> 20),
				                       strpbrk(optarg, "kKmMgGtTpP") ? "" : " (a unit left out: 10G, not 10?)");
			break;
		case 'E':
			if (strcmp(optarg, "cgroup") == 0)
				o.enforce = ENFORCE_CGROUP;
			else if (strcmp(optarg, "rlimit") == 0)
				o.enforce = ENFORCE_RLIMIT;
			else if (strcmp(optarg, "watch") == 0)
				o.enforce = ENFORCE_WATCH;
			else if (strcmp(optarg, "auto") == 0)
				o.enforce = ENFORCE_AUTO;
			else if (strcmp(optarg, "none") == 0)
				o.enforce = ENFORCE_NONE;
			else
				return cli_usage_error(&cli_cmd_run, "invalid --enforce '%s': expected cgroup, "
				                       "rlimit, watch, none or auto", optarg);
			break;
		case 'S':
			if (parse_number("--soft", optarg, 1, 100, &soft_pct) < 0)
				return CLI_USAGE;
			break;
		case 'i':
			if (parse_number("--interval", optarg, 0.01, 3600, &o.interval) < 0)
				return CLI_USAGE;
			break;
		case 'P':
			if (parse_number("--pss-budget", optarg, 0.1, 100, &o.pss_budget) < 0)
				return CLI_USAGE;
			o.pss_budget /= 100;
			break;
		case 'G':
			if (parse_number("--grace", optarg, 0, 3600, &o.grace) < 0)
				return CLI_USAGE;
			break;
		case 'K':
			o.kill_on_bad_exit = true;
			break;
		case 'o':
			o.record = optarg;
			break;
		case 'N':
			no_record = true;
			break;
		case 'M':
			/* "--metrics -- CMD" took "--" as the file: refused rather than a file named "--". */
			if (optarg[0] == '-')
				return cli_usage_error(&cli_cmd_run, "--metrics needs a file, not '%s' "
				                       "(write ./%s for a file of that name)", optarg, optarg);
			o.metrics = optarg;
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'C':
			no_catch = false;
			break;
		case 'c':
			no_catch = true;
			break;
		case 'h':
			help(stdout);
			return CLI_OK;
		case ':':
			return cli_usage_error(&cli_cmd_run, "option '%s' needs a value", argv[optind - 1]);
		default:
			return cli_usage_error(&cli_cmd_run, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return cli_usage_error(&cli_cmd_run, "no command to run: cohort run [OPTIONS] -- CMD [ARGS...]");
	if (no_record && o.record)
		return cli_usage_error(&cli_cmd_run, "--record and --no-record contradict each other");
	o.argv = argv + optind;
	o.soft = soft_pct / 100.0;

	cli_probe(&o.probe);
	r = cohort_alloc_detect(&o.probe, &o.alloc);
	if (r < 0) {
		cli_error("cannot read the allocation: %s", cohort_strerror(r));
		return CLI_ERROR;
	}
	/* A controller that did not answer in time is not asked again for its configuration. */
	controller_down = cli_ask_slurm(&o.probe, &o.alloc) == COHORT_ETIMEDOUT;
	if (!o.workers)
		o.workers = o.alloc.cpus ? o.alloc.cpus : 1;

	/*
	 * The budget: what the allocation holds for this task (its share when
	 * several tasks of the step are on this node), less room for cohort
	 * and the page cache.
	 */
	share = o.alloc.task_share ? o.alloc.task_share : o.alloc.mem_limit;
	o.margin = share / 20;
	if (o.margin < (64ULL << 20))
		o.margin = 64ULL << 20;
	if (o.margin > (1ULL << 30))
		o.margin = 1ULL << 30;
	if (o.margin * 4 > share)
		o.margin = share / 4;
	if (o.budget) {
		if (o.budget > o.alloc.mem_limit) {
			cli_error("--budget %s is above the allocation's %s memory limit (%s: %s); "
			          "use at most --budget %lluM",
			          cohort_size_format(o.budget, a, sizeof(a)),
			          cohort_size_format(o.alloc.mem_limit, b, sizeof(b)),
			          cohort_source_name(o.alloc.mem_limit_source), o.alloc.mem_limit_where,
			          (unsigned long long)(o.alloc.mem_limit >> 20));
			return CLI_ERROR;
		}
		snprintf(budget_source, sizeof(budget_source), "--budget");
	} else {
		o.budget = share - o.margin;
		if (o.alloc.task_share)
			snprintf(budget_source, sizeof(budget_source), "this task's share of the %s limit (%s), "
			         "1/%ld for the %ld tasks of the step on this node, less %s for cohort and the "
			         "page cache", cohort_size_format(o.alloc.mem_limit, a, sizeof(a)),
			         cohort_source_name(o.alloc.mem_limit_source), o.alloc.slurm.tasks_on_node,
			         o.alloc.slurm.tasks_on_node, cohort_size_format(o.margin, b, sizeof(b)));
		else
			snprintf(budget_source, sizeof(budget_source), "the %s limit (%s) less %s for cohort and the page cache",
			         cohort_size_format(o.alloc.mem_limit, a, sizeof(a)),
			         cohort_source_name(o.alloc.mem_limit_source),
			         cohort_size_format(o.margin, b, sizeof(b)));
	}
	o.budget_source = budget_source;
	if (!o.mem_per_worker)
		o.mem_per_worker = o.budget / o.workers;

	/* Refuse a plan that cannot fit, with cohort check's explanation. */
	within = o.alloc;
	within.mem_limit = o.budget;
	if (strcmp(budget_source, "--budget") == 0)
		within.mem_limit_source = COHORT_SRC_NONE;
	snprintf(within.mem_limit_where, sizeof(within.mem_limit_where), "%s", budget_source);
	plan = (struct cohort_plan){ .workers = o.workers, .mem_per_worker = o.mem_per_worker };
	if (cohort_plan_check(&within, &plan, &verdict) < 0)
		return cli_usage_error(&cli_cmd_run, "impossible plan: %u workers x %llu bytes",
		                       o.workers, (unsigned long long)o.mem_per_worker);
	if (!verdict.fits)
		return refuse(&o, &verdict, strcmp(budget_source, "--budget") == 0);

	if (job_token(&o.alloc, job, sizeof(job)) < 0)
		return CLI_USAGE;
	o.job = job;
	cohort_task_detect(&o.probe, &o.alloc, job, o.workers, &o.task);
	if (getenv("COHORT_JOB") && strcmp(job, getenv("COHORT_JOB")) == 0)
		snprintf(o.task.job, sizeof(o.task.job), "%s", job);   /* the user's name for the job */
	if (o.metrics && metrics_path(&o, metrics_file, sizeof(metrics_file)) < 0)
		return CLI_ERROR;
	if (!no_record && !o.record) {
		if (cohort_recording_name(job, &o.task, recname, sizeof(recname)) < 0)
			snprintf(recname, sizeof(recname), "cohort-%s.ndjson", job);
		r = claim_recording(recname, sizeof(recname), &o.rec);
		o.record = recname;
	} else if (o.record) {
		r = cohort_recorder_open_flags(o.record, 0, &o.rec);
	} else {
		r = 0;   /* --no-record: the supervisor records in memory */
	}
	if (r < 0) {
		char why[96];

		cli_error("cannot write the recording %s: %s (use --record FILE elsewhere, or --no-record)",
		          o.record, refusal(o.record, r, why, sizeof(why)));
		return CLI_ERROR;
	}
	if (!controller_down)
		slurm_jobacct(&o);
	if (no_catch)
		o.catch_off = "--no-catch";
	else
		find_catch(&o);
	return supervise(&o);
}

const struct cli_cmd cli_cmd_run = {
	.name = "run",
	.usage = "[-n N] [OPTIONS] [--] CMD [ARGS...]",
	.summary = "run N workers inside the allocation: sample, enforce, record",
	.exec = cmd_run_exec,
	.help = help,
};
