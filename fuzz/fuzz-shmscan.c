/*
 * fuzz-shmscan.c - the /dev/shm scanner over hostile /proc/PID/maps and
 * segment names. The first NUL-separated piece is a file name checked by
 * cohort_shm_name_parse(); the second becomes <proc>/1/maps, which
 * cohort_shm_list() reads to find the mappers of a private shm directory
 * holding one file.
 */
#include "cohort.h"
#include "fuzz-tree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const dirs[] = { "proc", "proc/1", "proc/1/fd", "shm", NULL };
	static const char *const files[] = { "proc/1/comm", "proc/1/maps" };
	char proc[128], shm[128], job[COHORT_ID_MAX];
	struct cohort_probe pr = { 0 };
	struct cohort_shm_file *list;
	size_t n;
	uid_t uid;
	char *name;

	tree_init(dirs);
	tree_split(data, size, files, 2);
	tree_put("shm/cohort.1000.42.grid", (const uint8_t *)"x", 1);
	snprintf(proc, sizeof(proc), "%s/proc", tree_root);
	snprintf(shm, sizeof(shm), "%s/shm", tree_root);
	pr.proc_root = proc;
	pr.shm_path = shm;

	name = tree_first(data, size);
	if (cohort_shm_name_parse(name, &uid, job, sizeof(job)) == 1 &&
	    (memchr(job, 0, sizeof(job)) == NULL || job[0] == '\0' || strchr(job, '.')))
		abort();
	free(name);

	if (cohort_shm_list(&pr, &list, &n) == 0) {
		if (n != 1 || list[0].nmappers > 1)
			abort();
		cohort_shm_files_free(list, n);
	}
	return 0;
}
