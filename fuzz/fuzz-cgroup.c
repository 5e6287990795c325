/*
 * fuzz-cgroup.c - the memory cgroup readers over hostile files. The input
 * is split at NUL bytes into the files of a v2 cgroup (memory.current,
 * memory.stat, memory.events, memory.pressure, memory.max, memory.peak,
 * cgroup.procs) and of a v1 cgroup (memory.usage_in_bytes, memory.stat,
 * memory.oom_control, memory.limit_in_bytes, memory.failcnt), plus
 * <proc>/1/cgroup; cohort_psi_parse() and cohort_cgroup_stat_parse() (as v1
 * and v2) also read the first piece alone, and cohort_cgroup_read_usage() the
 * job directory of each tree.
 */
#include "cohort.h"
#include "fuzz-tree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_psi(const struct cohort_psi *p)
{
	/* Shares of time are percentages, whatever the file said. */
	if (!(p->some_avg10 >= 0 && p->some_avg10 <= 100 && p->some_avg60 >= 0 &&
	      p->some_avg60 <= 100 && p->some_avg300 >= 0 && p->some_avg300 <= 100))
		abort();
	if (p->has_full && !(p->full_avg10 >= 0 && p->full_avg10 <= 100 &&
	                     p->full_avg60 >= 0 && p->full_avg60 <= 100 &&
	                     p->full_avg300 >= 0 && p->full_avg300 <= 100))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const dirs[] = { "proc", "proc/1", "cg", "cg/v2", "cg/v2/job",
	                                    "cg/v1", "cg/v1/memory", "cg/v1/memory/job", NULL };
	static const char *const files[] = {
		"cg/v2/job/memory.pressure", "cg/v2/job/memory.current", "cg/v2/job/memory.stat",
		"cg/v2/job/memory.events", "cg/v2/job/memory.max", "cg/v2/job/memory.peak",
		"cg/v2/job/cgroup.procs",
		"cg/v1/memory/job/memory.usage_in_bytes", "cg/v1/memory/job/memory.stat",
		"cg/v1/memory/job/memory.oom_control", "cg/v1/memory/job/memory.limit_in_bytes",
		"cg/v1/memory/job/memory.failcnt", "cg/v1/memory/job/cgroup.procs",
		"proc/1/cgroup",
	};
	char proc[128], v1[128], v2[128], dir[COHORT_PATH_MAX];
	struct cohort_probe pr = { 0 };
	struct cohort_psi psi;
	struct cohort_cgmem c;
	struct cohort_cgstat st;
	uint64_t usage;
	pid_t *pids;
	size_t n;
	int version;
	char *text;

	tree_init(dirs);
	tree_split(data, size, files, sizeof(files) / sizeof(files[0]));
	snprintf(proc, sizeof(proc), "%s/proc", tree_root);
	snprintf(v1, sizeof(v1), "%s/cg/v1", tree_root);
	snprintf(v2, sizeof(v2), "%s/cg/v2", tree_root);
	pr.proc_root = proc;

	text = tree_first(data, size);
	if (cohort_psi_parse(text, &psi) == 0)
		check_psi(&psi);
	/* memory.stat text as either version: a figure is known only when anon is. */
	for (int v = 1; v <= 2; v++)
		if (cohort_cgroup_stat_parse(text, v, &st) == 0 && st.anon == COHORT_MEM_UNKNOWN)
			abort();
	free(text);

	pr.cgroup_root = v2;
	if (cohort_cgroup_read(&pr, "/job", &c) == 0) {
		if (c.version != 2 || memchr(c.dir, 0, sizeof(c.dir)) == NULL)
			abort();
		if (c.has_pressure)
			check_psi(&c.pressure);
	}
	if (cohort_pids_cgroup(&pr, "/job", &pids, &n) == 0) {
		for (size_t i = 1; i < n; i++)
			if (pids[i - 1] >= pids[i])
				abort();   /* sorted, no repeats */
		cohort_pids_free(pids);
	}
	if (cohort_cgroup_of_pid(&pr, 1, dir, sizeof(dir), &version) == 0 &&
	    memchr(dir, 0, sizeof(dir)) == NULL)
		abort();

	/* The watcher's per-tick reader: a usage of "max" is no usage. */
	snprintf(dir, sizeof(dir), "%s/job", v2);
	if (cohort_cgroup_read_usage(dir, 2, &usage, &st) == 0 && (usage == UINT64_MAX ||
	    st.anon == COHORT_MEM_UNKNOWN))
		abort();
	snprintf(dir, sizeof(dir), "%s/memory/job", v1);
	if (cohort_cgroup_read_usage(dir, 1, &usage, &st) == 0 && usage == UINT64_MAX)
		abort();

	pr.cgroup_root = v1;
	if (cohort_cgroup_read(&pr, "/job", &c) == 0 && c.version != 1)
		abort();
	if (cohort_pids_cgroup(&pr, "/job", &pids, &n) == 0)
		cohort_pids_free(pids);
	if (cohort_cgroup_of_pid(&pr, 1, dir, sizeof(dir), &version) == 0 &&
	    memchr(dir, 0, sizeof(dir)) == NULL)
		abort();
	return 0;
}
