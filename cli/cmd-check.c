/*
 * cmd-check.c - `cohort check`: will this plan fit the allocation the job
 * really has? Exit 0 fits, 1 does not fit, 2 bad usage, 3 cannot tell.
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
	        "  -n, --workers N            worker processes (default: the usable CPUs)\n"
	        "  -m, --mem-per-worker SIZE  memory each worker needs\n"
	        "  -s, --shm SIZE             shared segments in /dev/shm (they count against\n"
	        "                             the job's memory limit too)\n"
	        "      --json                 print one JSON object instead of text\n"
	        "  -h, --help                 show this help\n"
	        "\n"
	        "SIZE is a number with an optional K, M, G or T suffix (binary units);\n"
	        "a bare number means megabytes, as in srun --mem: 500M, 4G, 1.5T, 2048.\n"
	        "\n"
	        "Exit status: 0 the plan fits, 1 it does not, 2 bad usage, 3 the allocation\n"
	        "could not be read.\n");
}

static json_t *jsize(uint64_t v)
{
	return json_integer(v > (uint64_t)LLONG_MAX ? LLONG_MAX : (json_int_t)v);
}

static json_t *jlong_or_null(long v)
{
	return v < 0 ? json_null() : json_integer(v);
}

static json_t *alloc_json(const struct cohort_alloc *a)
{
	json_t *o = json_object(), *slurm = json_null(), *cg = json_null();

	json_object_set_new(o, "cpus", json_integer(a->cpus));
	json_object_set_new(o, "cpus_source", json_string(cohort_source_name(a->cpus_source)));
	json_object_set_new(o, "mem_limit_bytes", jsize(a->mem_limit));
	json_object_set_new(o, "mem_limit_source", json_string(cohort_source_name(a->mem_limit_source)));
	json_object_set_new(o, "mem_limit_where", json_string(a->mem_limit_where));
	if (a->cgroup_version) {
		cg = json_object();
		json_object_set_new(cg, "version", json_integer(a->cgroup_version));
		json_object_set_new(cg, "path", json_string(a->cgroup_path));
		json_object_set_new(cg, "usage_bytes",
		                    a->cgroup_usage_known ? jsize(a->cgroup_usage) : json_null());
	}
	json_object_set_new(o, "cgroup", cg);
	json_object_set_new(o, "ram_total_bytes", jsize(a->ram_total));
	json_object_set_new(o, "ram_available_bytes", jsize(a->ram_available));
	json_object_set_new(o, "swap_total_bytes", jsize(a->swap_total));
	json_object_set_new(o, "swap_free_bytes", jsize(a->swap_free));
	json_object_set_new(o, "shm_size_bytes", a->shm_known ? jsize(a->shm_size) : json_null());
	json_object_set_new(o, "shm_free_bytes", a->shm_known ? jsize(a->shm_free) : json_null());
	if (a->slurm.present) {
		slurm = json_object();
		json_object_set_new(slurm, "job_id", json_string(a->slurm.job_id));
		json_object_set_new(slurm, "step_id",
		                    a->slurm.step_id[0] ? json_string(a->slurm.step_id) : json_null());
		json_object_set_new(slurm, "node",
		                    a->slurm.node[0] ? json_string(a->slurm.node) : json_null());
		json_object_set_new(slurm, "local_id", jlong_or_null(a->slurm.local_id));
		json_object_set_new(slurm, "proc_id", jlong_or_null(a->slurm.proc_id));
		json_object_set_new(slurm, "ntasks", jlong_or_null(a->slurm.ntasks));
		json_object_set_new(slurm, "cpus_on_node", jlong_or_null(a->slurm.cpus_on_node));
		json_object_set_new(slurm, "mem_per_node_bytes",
		                    a->slurm.mem_per_node ? jsize(a->slurm.mem_per_node) : json_null());
		json_object_set_new(slurm, "mem_per_cpu_bytes",
		                    a->slurm.mem_per_cpu ? jsize(a->slurm.mem_per_cpu) : json_null());
	}
	json_object_set_new(o, "slurm", slurm);
	return o;
}

static int print_json(const struct cohort_alloc *a, const struct cohort_plan *p,
                      const struct cohort_verdict *v)
{
	json_t *root = json_object(), *plan = json_object();
	json_t *problems = json_array(), *warnings = json_array();
	char *text;

	json_object_set_new(root, "allocation", alloc_json(a));
	json_object_set_new(plan, "workers", json_integer(v->workers));
	json_object_set_new(plan, "mem_per_worker_bytes", p->mem_per_worker ? jsize(p->mem_per_worker) : json_null());
	json_object_set_new(plan, "shm_bytes", jsize(p->shm));
	json_object_set_new(plan, "total_bytes", jsize(v->total));
	json_object_set_new(plan, "per_worker_fit_bytes", jsize(v->per_worker_fit));
	json_object_set_new(root, "plan", plan);
	json_object_set_new(root, "fits", json_boolean(v->fits));
	for (int i = 0; i < v->nproblems; i++) {
		const struct cohort_problem *pr = &v->problems[i];
		json_t *o = json_pack("{s:s, s:s, s:s}", "kind", cohort_problem_name(pr->kind),
		                      "message", pr->message, "fix", pr->fix);

		json_array_append_new(pr->fatal ? problems : warnings, o);
	}
	json_object_set_new(root, "problems", problems);
	json_object_set_new(root, "warnings", warnings);
	text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!text) {
		cli_error("out of memory writing JSON");
		return CLI_ERROR;
	}
	puts(text);
	free(text);
	return v->fits ? CLI_OK : CLI_FAIL;
}

static int print_text(const struct cohort_alloc *a, const struct cohort_plan *p,
                      const struct cohort_verdict *v)
{
	char b1[32], b2[32], b3[32];

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

	printf("\nPlan: %u workers", v->workers);
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

	printf("\nVerdict: %s\n", v->fits ? "fits" : "does NOT fit");
	for (int i = 0; i < v->nproblems; i++) {
		const struct cohort_problem *pr = &v->problems[i];

		printf("  %s %s\n      fix: %s\n", pr->fatal ? "problem:" : "warning:",
		       pr->message, pr->fix);
	}
	return v->fits ? CLI_OK : CLI_FAIL;
}

static int exec(int argc, char **argv)
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
	struct cohort_alloc alloc;
	struct cohort_verdict verdict;
	bool json = false;
	int c, r;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":n:m:s:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (cli_parse_count("--workers", optarg, 100000, &plan.workers) < 0)
				return CLI_USAGE;
			break;
		case 'm':
			if (cli_parse_size("--mem-per-worker", optarg, &plan.mem_per_worker) < 0)
				return CLI_USAGE;
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
	r = cohort_plan_check(&alloc, &plan, &verdict);
	if (r < 0)
		return cli_usage_error(&cli_cmd_check, "impossible plan: %u workers x %llu bytes overflows",
		                       plan.workers, (unsigned long long)plan.mem_per_worker);
	return json ? print_json(&alloc, &plan, &verdict) : print_text(&alloc, &plan, &verdict);
}

const struct cli_cmd cli_cmd_check = {
	.name = "check",
	.usage = "[--workers N] [--mem-per-worker SIZE] [--shm SIZE] [--json]",
	.summary = "will the plan fit the allocation? (CPUs, memory, /dev/shm)",
	.exec = exec,
	.help = help,
};
