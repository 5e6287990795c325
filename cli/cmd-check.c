/*
 * cmd-check.c - `cohort check`: will this plan fit the allocation the job
 * really has? Exit 0 fits, 1 does not fit, 2 bad usage, 3 cannot tell.
 *
 * Run on every node of a job (`srun -N3 cohort check ...`), each node
 * judges its own allocation; the verdict then names the node, so that the
 * one that does not fit stands out among the others' answers.
 */
#include "cli.h"

#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static void help(FILE *out)
{
	fprintf(out,
	        "Usage: cohort check [--workers N] [--mem-per-worker SIZE] [--shm SIZE] [--json]\n"
	        "\n"
	        "Show the allocation this process really has (CPUs, memory limit and where it\n"
	        "comes from, RAM, swap, /dev/shm, SLURM ids) and judge whether N workers of\n"
	        "SIZE each, plus SIZE of shared segments in /dev/shm, fit it.\n"
	        "\n"
	        "Options:\n"
	        "  -n, --workers N            worker processes, 1 to 4096 as for cohort run\n"
	        "                             (default: the usable CPUs)\n"
	        "  -m, --mem-per-worker SIZE  memory each worker needs\n"
	        "  -s, --shm SIZE             shared segments in /dev/shm (they count against\n"
	        "                             the job's memory limit too)\n"
	        "      --json                 print one JSON object instead of text\n"
	        "  -h, --help                 show this help\n"
	        "\n"
	        "SIZE is a number with an optional K, M, G or T suffix (binary units);\n"
	        "a bare number means megabytes, as in srun --mem: 500M, 4G, 1.5T, 2048.\n"
	        "\n"
	        "Run on each node of a job (srun -N3 cohort check ...), each node judges its\n"
	        "own allocation and the verdict names the node (\"node\" in --json; null\n"
	        "when the step has one node).\n"
	        "\n"
	        "Exit status: 0 the plan fits, 1 it does not, 2 bad usage, 3 the allocation\n"
	        "could not be read.\n");
}

/*
 * The node to name in the verdict: SLURM's name for this node when the
 * step (or, outside a step, the job) spans several nodes, else NULL (one
 * node's answer needs no name).
 */
static const char *verdict_node(const struct cohort_alloc *a)
{
	const char *n = getenv("SLURM_STEP_NUM_NODES");

	if (!n || !*n)
		n = getenv("SLURM_JOB_NUM_NODES");
	if (!a->slurm.present || !a->slurm.node[0] || !n || atol(n) < 2)
		return NULL;
	return a->slurm.node;
}

static int print_json(const struct cohort_alloc *a, const struct cohort_plan *p,
                      const struct cohort_verdict *v)
{
	const char *node = verdict_node(a);
	json_t *root = json_object(), *plan = json_object();
	json_t *problems = json_array(), *warnings = json_array();

	json_object_set_new(root, "allocation", cli_json_alloc(a));
	json_object_set_new(plan, "workers", json_integer(v->workers));
	json_object_set_new(plan, "mem_per_worker_bytes", p->mem_per_worker ? cli_json_size(p->mem_per_worker) : json_null());
	json_object_set_new(plan, "shm_bytes", cli_json_size(p->shm));
	json_object_set_new(plan, "total_bytes", cli_json_size(v->total));
	json_object_set_new(plan, "per_worker_fit_bytes", cli_json_size(v->per_worker_fit));
	json_object_set_new(root, "plan", plan);
	json_object_set_new(root, "fits", json_boolean(v->fits));
	json_object_set_new(root, "node", node ? json_string(node) : json_null());
	for (int i = 0; i < v->nproblems; i++) {
		const struct cohort_problem *pr = &v->problems[i];
		json_t *o = json_pack("{s:s, s:s, s:s}", "kind", cohort_problem_name(pr->kind),
		                      "message", pr->message, "fix", pr->fix);

		json_array_append_new(pr->fatal ? problems : warnings, o);
	}
	json_object_set_new(root, "problems", problems);
	json_object_set_new(root, "warnings", warnings);
	if (cli_json_print(root) < 0)
		return CLI_ERROR;
	return v->fits ? CLI_OK : CLI_FAIL;
}

static int print_text(const struct cohort_alloc *a, const struct cohort_plan *p,
                      const struct cohort_verdict *v)
{
	char b1[32], b2[32], b3[32];
	const char *node;

	if (a->slurm.present)
		printf("Allocation: SLURM job %s%s%s%s%s\n", a->slurm.job_id,
		       a->slurm.step_id[0] ? ", step " : "", a->slurm.step_id,
		       a->slurm.node[0] ? " on " : "", a->slurm.node);
	else
		printf("Allocation: this machine (not in a SLURM job)\n");
	printf("  %-14s %-12u (%s)\n", "CPUs", a->cpus, cohort_source_name(a->cpus_source));
	printf("  %-14s %-12s (%s: %s)\n", "memory limit",
	       cohort_size_format(a->mem_limit, b1, sizeof(b1)),
	       cohort_source_name(a->mem_limit_source), a->mem_limit_where);
	if (a->task_share)
		printf("  %-14s %-12s (%ld tasks of this step on this node share the limit)\n",
		       "this task", cohort_size_format(a->task_share, b1, sizeof(b1)),
		       a->slurm.tasks_on_node);
	if (a->cgroup_version && a->cgroup_usage_known)
		printf("  %-14s %-12s (cgroup v%d %s)\n", "cgroup usage",
		       cohort_size_format(a->cgroup_usage, b1, sizeof(b1)),
		       a->cgroup_version, a->cgroup_path);
	printf("  %-14s %s total, %s available; swap %s\n", "node RAM",
	       cohort_size_format(a->ram_total, b1, sizeof(b1)),
	       cohort_size_format(a->ram_available, b2, sizeof(b2)),
	       cohort_size_format(a->swap_total, b3, sizeof(b3)));
	if (a->shm_known)
		printf("  %-14s %s free of %s\n", "/dev/shm",
		       cohort_size_format(a->shm_free, b1, sizeof(b1)),
		       cohort_size_format(a->shm_size, b2, sizeof(b2)));
	else
		printf("  %-14s unreadable\n", "/dev/shm");

	printf("\nPlan: %u worker%s", v->workers, v->workers == 1 ? "" : "s");
	if (p->mem_per_worker)
		printf(" x %s", cohort_size_format(p->mem_per_worker, b1, sizeof(b1)));
	if (p->shm)
		printf(" + %s of shared segments", cohort_size_format(p->shm, b1, sizeof(b1)));
	if (p->mem_per_worker || p->shm)
		printf(" = %s", cohort_size_format(v->total, b1, sizeof(b1)));
	printf("\n");
	if (!p->mem_per_worker)
		printf("  each worker may use up to %s (give --mem-per-worker to check a figure)\n",
		       cohort_size_format(v->per_worker_fit, b1, sizeof(b1)));

	node = verdict_node(a);
	printf("\nVerdict: %s%s%s\n", v->fits ? "fits" : "does NOT fit", node ? " on node " : "", node ? node : "");
	for (int i = 0; i < v->nproblems; i++) {
		const struct cohort_problem *pr = &v->problems[i];

		printf("  %s %s\n      fix: %s\n", pr->fatal ? "problem:" : "warning:",
		       pr->message, pr->fix);
	}
	return v->fits ? CLI_OK : CLI_FAIL;
}

static int cmd_check_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "workers", required_argument, NULL, 'n' },
		{ "mem-per-worker", required_argument, NULL, 'm' },
		{ "shm", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct cohort_plan plan = { 0 };
	struct cohort_probe probe;
	struct cohort_alloc alloc, within;
	struct cohort_verdict verdict;
	bool json = false;
	int c, r;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":n:m:s:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (cli_parse_count("--workers", optarg, CLI_MAX_WORKERS, &plan.workers) < 0)
				return CLI_USAGE;
			break;
		case 'm':
			if (cli_parse_size("--mem-per-worker", optarg, &plan.mem_per_worker) < 0)
				return CLI_USAGE;
			/* 0 would read as "not given": a figure of nothing is no plan to check. */
			if (!plan.mem_per_worker)
				return cli_usage_error(&cli_cmd_check, "--mem-per-worker %s is 0 bytes: give each "
				                       "worker's memory (such as 512M), or leave the option out", optarg);
			break;
		case 's':
			if (cli_parse_size("--shm", optarg, &plan.shm) < 0)
				return CLI_USAGE;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			help(stdout);
			return CLI_OK;
		case ':':
			return cli_usage_error(&cli_cmd_check, "option '%s' needs a value", argv[optind - 1]);
		default:
			return cli_usage_error(&cli_cmd_check, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error(&cli_cmd_check, "unexpected argument '%s'", argv[optind]);

	cli_probe(&probe);
	r = cohort_alloc_detect(&probe, &alloc);
	if (r < 0) {
		cli_error("cannot read the allocation: %s (is %s/meminfo readable?)",
		          cohort_strerror(r), probe.proc_root ? probe.proc_root : "/proc");
		return CLI_ERROR;
	}
	cli_ask_slurm(&probe, &alloc);
	/* Several tasks of the step here share the node's limit: this task's plan gets its share. */
	within = alloc;
	if (alloc.task_share) {
		within.mem_limit = alloc.task_share;
		snprintf(within.mem_limit_where, sizeof(within.mem_limit_where),
		         "this task's share, 1/%ld of %s, %ld tasks of the step on this node",
		         alloc.slurm.tasks_on_node, alloc.mem_limit_where, alloc.slurm.tasks_on_node);
	}
	r = cohort_plan_check(&within, &plan, &verdict);
	if (r < 0)
		return cli_usage_error(&cli_cmd_check, "impossible plan: %u workers x %llu bytes overflows",
		                       plan.workers, (unsigned long long)plan.mem_per_worker);
	return json ? print_json(&alloc, &plan, &verdict) : print_text(&alloc, &plan, &verdict);
}

const struct cli_cmd cli_cmd_check = {
	.name = "check",
	.usage = "[--workers N] [--mem-per-worker SIZE] [--shm SIZE] [--json]",
	.summary = "will the plan fit the allocation? (CPUs, memory, /dev/shm)",
	.exec = cmd_check_exec,
	.help = help,
};
