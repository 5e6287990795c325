/*
 * cmd-shm.c - `cohort shm ls|gc`: the files in /dev/shm, the job and the
 * processes each belongs to, and removal of the caller's orphaned cohort
 * segments (unmapped, and their job gone), never anything else.
 */
#include "cli.h"
#include "reap.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void help(FILE *out)
{
	fprintf(out,
	        "Usage: cohort shm ls [--json]\n"
	        "       cohort shm gc [--dry-run] [--json]\n"
	        "\n"
	        "ls: list the files in /dev/shm with their size (asked, and really used), owner,\n"
	        "the job that made them (cohort segments are named cohort.<uid>.<job>.<name>),\n"
	        "the processes that map them or hold them open, and whether they are orphaned:\n"
	        "mapped by no process, and their job gone (a local-<pid> job none of whose\n"
	        "processes holds the job's lease in /dev/shm/.cohort-lease.<uid> any more, in\n"
	        "any pid namespace, or a SLURM job with no cgroup left on this node).\n"
	        "\n"
	        "gc: remove the caller's orphaned cohort segments, and say what was removed and\n"
	        "what was kept and why. It never removes another user's file, a file some\n"
	        "process maps or holds open (checked again at removal with a kernel lease, which\n"
	        "sees every process), a file whose job still runs or cannot be judged, nor a\n"
	        "file not named cohort.*.\n"
	        "Before that, it reaps what a supervisor killed with SIGKILL left in the caller's\n"
	        "cgroup: its worker cgroups (cohort-<pid>-<start>, whose supervisor is gone), the\n"
	        "processes still in them (killed), and so the segments they kept open.\n"
	        "\n"
	        "Options:\n"
	        "  -n, --dry-run   gc: say what would be removed, remove nothing\n"
	        "      --json      print one JSON object instead of text\n"
	        "  -h, --help      show this help\n"
	        "\n"
	        "COHORT_ROOT_SHM, COHORT_ROOT_PROC and COHORT_ROOT_CGROUP replace /dev/shm, /proc\n"
	        "and /sys/fs/cgroup.\n"
	        "\n"
	        "Exit status: 0 ok, 2 bad usage, 3 /dev/shm could not be read or a removal failed.\n");
}

static const char *user_name(uid_t uid, char *buf, size_t size)
{
	struct passwd *pw = getpwuid(uid);

	if (pw)
		snprintf(buf, size, "%s", pw->pw_name);
	else
		snprintf(buf, size, "%u", (unsigned)uid);
	return buf;
}

static const char *job_state_name(enum cohort_job_state s)
{
	switch (s) {
	case COHORT_JOB_ALIVE: return "alive";
	case COHORT_JOB_GONE:  return "gone";
	default:               return "unknown";
	}
}

static bool orphaned(const struct cohort_shm_file *f, enum cohort_job_state js)
{
	return f->cohort && f->nmappers == 0 && js == COHORT_JOB_GONE;
}

static void mappers_text(const struct cohort_shm_file *f, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	if (f->nmappers == 0) {
		snprintf(buf, size, "-");
		return;
	}
	for (size_t i = 0; i < f->nmappers && len + 16 < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%d", i ? "," : "", (int)f->mappers[i]);
	if (len + 16 >= size)
		snprintf(buf + len, size - len, ",...");
}

static int do_ls(const struct cohort_probe *probe, bool json)
{
	struct cohort_shm_file *files;
	size_t n;
	int r = cohort_shm_list(probe, &files, &n);
	bool complete = true;
	size_t uninspected = 0, denied = 0;

	if (r < 0) {
		cli_error("cannot list %s: %s", probe->shm_path ? probe->shm_path : "/dev/shm",
		          cohort_strerror(r));
		return CLI_ERROR;
	}
	for (size_t i = 0; i < n; i++)
		complete = complete && files[i].mappers_complete;
	if (n > 0) {
		uninspected = files[0].uninspected;
		denied = files[0].denied;
	}
	if (json) {
		json_t *root = json_object(), *arr = json_array();

		for (size_t i = 0; i < n; i++) {
			const struct cohort_shm_file *f = &files[i];
			enum cohort_job_state js = cohort_shm_job_state(probe, f);
			json_t *o = json_object(), *m = json_array();
			char ub[64];

			json_object_set_new(o, "name", json_string(f->name));
			json_object_set_new(o, "size_bytes", cli_json_size(f->size));
			json_object_set_new(o, "allocated_bytes", cli_json_size(f->allocated));
			json_object_set_new(o, "uid", json_integer(f->uid));
			json_object_set_new(o, "owner", json_string(user_name(f->uid, ub, sizeof(ub))));
			json_object_set_new(o, "cohort", json_boolean(f->cohort));
			json_object_set_new(o, "job", f->cohort ? json_string(f->job) : json_null());
			json_object_set_new(o, "job_state", f->cohort ? json_string(job_state_name(js)) : json_null());
			for (size_t k = 0; k < f->nmappers; k++)
				json_array_append_new(m, json_integer(f->mappers[k]));
			json_object_set_new(o, "pids", m);
			json_object_set_new(o, "orphaned", json_boolean(orphaned(f, js)));
			json_array_append_new(arr, o);
		}
		json_object_set_new(root, "files", arr);
		json_object_set_new(root, "mappers_complete", json_boolean(complete));
		json_object_set_new(root, "uninspected_processes", json_integer((json_int_t)uninspected));
		if (cli_json_print(root) < 0) {
			cohort_shm_files_free(files, n);
			return CLI_ERROR;
		}
	} else {
		printf("%-40s %10s %10s %-10s %-16s %-8s %s\n", "NAME", "SIZE", "USED", "OWNER", "JOB",
		       "STATE", "PIDS");
		for (size_t i = 0; i < n; i++) {
			const struct cohort_shm_file *f = &files[i];
			enum cohort_job_state js = cohort_shm_job_state(probe, f);
			char b1[32], b2[32], ub[64], pids[256], job[COHORT_ID_MAX + 16];
			const char *state;

			mappers_text(f, pids, sizeof(pids));
			if (f->cohort)
				snprintf(job, sizeof(job), "%s (%s)", f->job, job_state_name(js));
			else
				snprintf(job, sizeof(job), "-");
			state = f->nmappers ? "in use" : orphaned(f, js) ? "orphaned" : "unused";
			printf("%-40s %10s %10s %-10s %-16s %-8s %s\n", f->name,
			       cohort_size_format(f->size, b1, sizeof(b1)),
			       cohort_size_format(f->allocated, b2, sizeof(b2)),
			       user_name(f->uid, ub, sizeof(ub)), job, state, pids);
		}
		if (n == 0)
			printf("(no files)\n");
		if (!complete) {
			printf("\n%zu process%s could not be read", uninspected, uninspected == 1 ? "" : "es");
			if (denied)
				printf(" (%zu: permission denied, as for another user's process or without\n"
				       "CAP_SYS_PTRACE, which even root may lack)", denied);
			printf(": a file shown unused may still be mapped by one of them.\n"
			       "'cohort shm gc' checks again with a kernel lease before removing anything.\n");
		}
	}
	cohort_shm_files_free(files, n);
	return CLI_OK;
}

static int do_gc(const struct cohort_probe *probe, bool dry_run, bool json)
{
	struct cohort_shm_file *files;
	size_t n, removed = 0, kept = 0, others = 0;
	uint64_t freed = 0;
	uid_t uid = getuid();
	json_t *root = NULL, *arr = NULL;
	int status = CLI_OK;
	struct reaped *dead = NULL;
	size_t ndead = 0;
	int r;

	/* First what killed supervisors left: their processes hold segments open. */
	if (reap_dead_supervisors(probe, dry_run, false, &dead, &ndead) < 0)
		ndead = 0;
	r = cohort_shm_list(probe, &files, &n);

	if (r < 0) {
		cli_error("cannot list %s: %s", probe->shm_path ? probe->shm_path : "/dev/shm",
		          cohort_strerror(r));
		free(dead);
		return CLI_ERROR;
	}
	if (json) {
		json_t *sv = json_array();

		root = json_object();
		arr = json_array();
		for (size_t i = 0; i < ndead; i++) {
			json_t *o = json_object();

			json_object_set_new(o, "supervisor_pid", json_integer(dead[i].supervisor));
			json_object_set_new(o, "cgroup", json_string(dead[i].cgroup));
			json_object_set_new(o, dry_run ? "would_kill" : "killed", json_integer(dead[i].killed));
			json_object_set_new(o, "still_running", json_integer(dead[i].left));
			json_object_set_new(o, dry_run ? "would_remove_cgroups" : "removed_cgroups",
			                    json_integer(dead[i].cgroups));
			json_array_append_new(sv, o);
		}
		json_object_set_new(root, "dead_supervisors", sv);
	}
	for (size_t i = 0; i < ndead && !json; i++) {
		const struct reaped *x = &dead[i];

		printf("%s %u process%s that supervisor %d (gone) left in %s; %s %u cgroup%s%s%s\n",
		       dry_run ? "would kill" : "killed", x->killed, x->killed == 1 ? "" : "es",
		       (int)x->supervisor, x->cgroup, dry_run ? "would remove" : "removed", x->cgroups,
		       x->cgroups == 1 ? "" : "s", x->left ? "; some still run" : "",
		       x->error ? "; the cgroup could not be removed" : "");
		if (x->error || x->left)
			status = CLI_ERROR;
	}
	free(dead);
	for (size_t i = 0; i < n; i++) {
		const struct cohort_shm_file *f = &files[i];
		char b1[32];
		int v = cohort_shm_remove(probe, f, uid, dry_run);

		if (v < 0) {
			cli_error("cannot remove %s: %s", f->name, cohort_strerror(v));
			status = CLI_ERROR;
			continue;
		}
		if (v == COHORT_SHM_KEEP_NOT_COHORT) {
			others++;
			continue;
		}
		if (v == COHORT_SHM_REMOVED || v == COHORT_SHM_ORPHANED) {
			removed++;
			freed += f->allocated;
		} else {
			kept++;
		}
		if (json) {
			json_t *o = json_object();

			json_object_set_new(o, "name", json_string(f->name));
			json_object_set_new(o, "action",
			                    json_string(v == COHORT_SHM_REMOVED ? "removed" :
			                                v == COHORT_SHM_ORPHANED ? "would_remove" : "kept"));
			json_object_set_new(o, "reason", json_string(cohort_shm_verdict_name((enum cohort_shm_verdict)v)));
			json_object_set_new(o, "job", json_string(f->job));
			json_object_set_new(o, "allocated_bytes", cli_json_size(f->allocated));
			json_array_append_new(arr, o);
			continue;
		}
		if (v == COHORT_SHM_REMOVED || v == COHORT_SHM_ORPHANED)
			printf("%s %s (%s): job %s is gone and no process maps it\n",
			       v == COHORT_SHM_REMOVED ? "removed" : "would remove", f->name,
			       cohort_size_format(f->allocated, b1, sizeof(b1)), f->job);
		else
			printf("kept    %s: %s\n", f->name, cohort_shm_verdict_name((enum cohort_shm_verdict)v));
	}
	if (json) {

		json_object_set_new(root, "dry_run", json_boolean(dry_run));
		json_object_set_new(root, "segments", arr);
		json_object_set_new(root, "removed", json_integer((json_int_t)(dry_run ? 0 : removed)));
		json_object_set_new(root, "kept", json_integer((json_int_t)kept));
		json_object_set_new(root, "freed_bytes", cli_json_size(dry_run ? 0 : freed));
		json_object_set_new(root, "other_files", json_integer((json_int_t)others));
		if (cli_json_print(root) < 0)
			status = CLI_ERROR;
	} else {
		char b1[32];

		printf("%s %zu cohort segment%s (%s), kept %zu; %zu other file%s in %s left alone\n",
		       dry_run ? "would remove" : "removed", removed, removed == 1 ? "" : "s",
		       cohort_size_format(freed, b1, sizeof(b1)), kept, others, others == 1 ? "" : "s",
		       probe->shm_path ? probe->shm_path : "/dev/shm");
	}
	cohort_shm_files_free(files, n);
	return status;
}

static int cmd_shm_exec(int argc, char **argv);

const struct cli_cmd cli_cmd_shm = {
	.name = "shm",
	.usage = "ls [--json] | gc [--dry-run] [--json]",
	.summary = "list /dev/shm segments, their jobs and mappers; remove orphans",
	.exec = cmd_shm_exec,
	.help = help,
};

static int cmd_shm_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cohort_probe probe;
	bool json = false, dry_run = false;
	const char *sub;
	int c;

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		help(stdout);
		return CLI_OK;
	}
	if (argc < 2)
		return cli_usage_error(&cli_cmd_shm, "missing subcommand: 'ls' or 'gc'");
	sub = argv[1];
	if (strcmp(sub, "ls") != 0 && strcmp(sub, "gc") != 0)
		return cli_usage_error(&cli_cmd_shm, "unknown subcommand '%s': expected 'ls' or 'gc'", sub);
	opterr = 0;
	optind = 1;
	/* Options after the subcommand: getopt sees argv + 1, so its argv[optind - 1] is argv[optind]. */
	while ((c = getopt_long(argc - 1, argv + 1, ":nh", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			dry_run = true;
			break;
		case 'J':
			json = true;
			break;
		case 'h':
			help(stdout);
			return CLI_OK;
		case ':':
			return cli_usage_error(&cli_cmd_shm, "option '%s' needs a value", argv[optind]);
		default:
			return cli_usage_error(&cli_cmd_shm, "unknown option '%s'", argv[optind]);
		}
	}
	if (optind < argc - 1)
		return cli_usage_error(&cli_cmd_shm, "unexpected argument '%s'", argv[optind + 1]);
	if (dry_run && strcmp(sub, "gc") != 0)
		return cli_usage_error(&cli_cmd_shm, "--dry-run is for 'gc' only");
	cli_probe(&probe);
	return strcmp(sub, "ls") == 0 ? do_ls(&probe, json) : do_gc(&probe, dry_run, json);
}
