/*
 * fuzz-procmem.c - the per-process readers over hostile /proc files. The
 * input is split at NUL bytes into statm, smaps_rollup, status, stat and
 * task/1/children of process 1 in a private proc tree, then fed to
 * cohort_proc_statm(), cohort_smaps_parse() and cohort_proc_smaps(),
 * cohort_proc_status(), the process tree walkers and the watcher over them. A second pass with
 * no smaps_rollup sums the same text as a full smaps.
 */
#include "cohort.h"
#include "fuzz-tree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whatever the file said, a parsed figure set must be self-consistent. */
static void check_procmem(const struct cohort_procmem *m)
{
	if (m->uss != m->private_clean + m->private_dirty || m->uss < m->private_clean ||
	    m->pss > m->rss || m->uss > m->rss)
		abort();
	if (m->source != COHORT_SMAPS_ROLLUP && m->source != COHORT_SMAPS_SUMMED)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const dirs[] = { "proc", "proc/1", "proc/1/task", "proc/1/task/1",
	                                    "proc/2", NULL };
	static const char *const files[] = { "proc/1/statm", "proc/1/smaps_rollup",
	                                     "proc/1/status", "proc/1/stat",
	                                     "proc/1/task/1/children" };
	char proc[128], smaps[256], rollup[256];
	struct cohort_probe pr = { 0 };
	struct cohort_statm sm;
	struct cohort_procmem m;
	struct cohort_procstatus st;
	pid_t *pids;
	size_t n;
	char *text;

	tree_init(dirs);
	tree_split(data, size, files, 5);
	snprintf(proc, sizeof(proc), "%s/proc", tree_root);
	pr.proc_root = proc;

	text = tree_first(data, size);
	if (cohort_smaps_parse(text, &m) == 0)
		check_procmem(&m);
	free(text);

	if (cohort_proc_statm(&pr, 1, &sm) == 0 && (sm.size | sm.rss | sm.shared) % 4096 != 0)
		abort();   /* figures are whole pages */
	if (cohort_proc_smaps(&pr, 1, &m) == 0)
		check_procmem(&m);
	if (cohort_proc_status(&pr, 1, &st) == 0 && memchr(st.name, 0, sizeof(st.name)) == NULL)
		abort();
	if (cohort_pids_descendants(&pr, 1, &pids, &n) == 0)
		cohort_pids_free(pids);
	if (cohort_pids_tree(&pr, 1, COHORT_TREE_ALL_THREADS, &pids, &n) == 0)
		cohort_pids_free(pids);
	{
		/* The watcher over the same tree: stat, statm, smaps and children, whatever they hold. */
		struct cohort_watch_opts wo = { .probe = &pr, .workers = 1, .pss_budget = 1.0 };
		struct cohort_worker_state ws;
		struct cohort_event ev;
		struct cohort_watch *w;

		if (cohort_watch_create(&wo, &w) == 0) {
			if (cohort_watch_start(w, 0, 1, NULL, 0) == 0) {
				cohort_watch_tick(w);
				cohort_watch_tick(w);
				if (cohort_watch_worker(w, 0, &ws) != 0 || ws.rss % 4096 != 0)
					abort();
			}
			while (cohort_watch_next_event(w, &ev) == 1)
				if (!memchr(ev.message, 0, sizeof(ev.message)))
					abort();
			cohort_watch_free(w);
		}
	}

	/* The same rollup text read as a full smaps (a kernel before 4.14). */
	snprintf(rollup, sizeof(rollup), "%s/1/smaps_rollup", proc);
	snprintf(smaps, sizeof(smaps), "%s/1/smaps", proc);
	if (rename(rollup, smaps) == 0) {
		if (cohort_proc_smaps(&pr, 1, &m) == 0)
			check_procmem(&m);
		unlink(smaps);
	}
	return 0;
}
