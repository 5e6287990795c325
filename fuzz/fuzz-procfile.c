/*
 * fuzz-procfile.c - allocation discovery over hostile /proc and cgroup
 * contents. The input is split at NUL bytes into meminfo, self/status,
 * self/cgroup and a memory.limit_in_bytes, written into a private tree
 * that cohort_alloc_detect() then reads.
 */
#include "cohort.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char root[64];

static void cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		return;
}

static void put(const char *rel, const uint8_t *p, size_t n)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "w");
	if (!f)
		abort();
	fwrite(p, 1, n, f);
	fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const files[] = {
		"proc/meminfo", "proc/self/status", "proc/self/cgroup",
		"cgroup/memory/a/memory.limit_in_bytes",
	};
	char proc[128], cg[128];
	struct cohort_probe pr = { 0 };
	struct cohort_alloc a;
	const char *env[] = { "SLURM_JOB_ID=1", NULL };
	size_t start = 0, k = 0;

	if (!root[0]) {
		char path[256];

		snprintf(root, sizeof(root), "/tmp/cohort-fuzz-%d", (int)getpid());
		mkdir(root, 0700);
		snprintf(path, sizeof(path), "%s/proc", root); mkdir(path, 0700);
		snprintf(path, sizeof(path), "%s/proc/self", root); mkdir(path, 0700);
		snprintf(path, sizeof(path), "%s/cgroup", root); mkdir(path, 0700);
		snprintf(path, sizeof(path), "%s/cgroup/memory", root); mkdir(path, 0700);
		snprintf(path, sizeof(path), "%s/cgroup/memory/a", root); mkdir(path, 0700);
		atexit(cleanup);
	}
	for (size_t i = 0; i <= size && k < 4; i++)
		if (i == size || data[i] == 0) {
			put(files[k++], data + start, i - start);
			start = i + 1;
		}
	for (; k < 4; k++)
		put(files[k], (const uint8_t *)"", 0);
	snprintf(proc, sizeof(proc), "%s/proc", root);
	snprintf(cg, sizeof(cg), "%s/cgroup", root);
	pr.proc_root = proc;
	pr.cgroup_root = cg;
	pr.shm_path = root;
	pr.envp = env;
	/* Whatever the files say, a success always names where its limit came from. */
	if (cohort_alloc_detect(&pr, &a) == 0 && a.mem_limit_source == COHORT_SRC_NONE)
		abort();
	return 0;
}
