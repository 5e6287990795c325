/*
 * test-watch.c - the watcher in libcohort, called directly: event names,
 * the copy-on-write measure on a /proc tree whose figures are known
 * exactly, a cgroup's processes as one worker, and the pid index under
 * churn with real processes.
 */
#include "harness.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define KiB 1024ULL
#define MiB (1024ULL * 1024)

TEST(watch_event_names_round_trip)
{
	for (int k = 1; k < COHORT_EVENT_KIND_MAX; k++) {
		const char *name = cohort_event_name((enum cohort_event_kind)k);

		CHECK_MSG(strcmp(name, "unknown") != 0, "kind %d has no name", k);
		CHECK_EQ(cohort_event_kind_of(name), k);
	}
	CHECK_STREQ(cohort_event_name((enum cohort_event_kind)0), "unknown");
	CHECK_STREQ(cohort_event_name(COHORT_EVENT_KIND_MAX), "unknown");
	CHECK_EQ(cohort_event_kind_of("no such kind"), 0);
	CHECK_EQ(cohort_event_kind_of(NULL), 0);
	CHECK_STREQ(cohort_event_name(COHORT_EVENT_SIGNAL), "signal");
	CHECK_STREQ(cohort_event_name(COHORT_EVENT_KERNEL), "kernel");
}

TEST(watch_rejects_bad_options)
{
	struct cohort_watch_opts o = { .workers = 0 };
	struct cohort_watch *w = (struct cohort_watch *)1;

	CHECK_EQ(cohort_watch_create(&o, &w), -EINVAL);
	CHECK_EQ(cohort_watch_create(NULL, &w), -EINVAL);
	o.workers = 70000;
	CHECK_EQ(cohort_watch_create(&o, &w), -EINVAL);
	o.workers = 2;
	o.soft = 1.5;
	CHECK_EQ(cohort_watch_create(&o, &w), -EINVAL);
	o.soft = 0;
	o.pss_budget = 2;
	CHECK_EQ(cohort_watch_create(&o, &w), -EINVAL);
	o.pss_budget = 0;
	CHECK_OK(cohort_watch_create(&o, &w));
	CHECK_EQ(cohort_watch_start(w, 2, 123, NULL, 0), -ERANGE);
	CHECK_EQ(cohort_watch_start(w, 0, 0, NULL, 0), -EINVAL);
	CHECK_EQ(cohort_watch_exited(w, 0, 0), -ESRCH);
	CHECK_EQ(cohort_watch_exited(w, 5, 0), -ERANGE);
	cohort_watch_free(w);
	cohort_watch_free(NULL);
}

/* ---- a /proc tree with known figures ---- */

/* shared_kb counts the file pages (rss - anon) too: Shared_Clean is those, Shared_Dirty the rest. */
struct fproc {
	int pid, ppid;
	unsigned long long startstack;
	uint64_t rss_kb, anon_kb, pss_kb, pss_anon_kb, private_kb, shared_kb;
	const char *children;
};

/* Write <root>/PID/{stat,statm,smaps_rollup,task/PID/children}. */
static void fproc_write(const char *root, const struct fproc *p)
{
	char dir[512], path[600];

	snprintf(dir, sizeof(dir), "%s/%d/task/%d", root, p->pid, p->pid);
	{
		struct cmd_result r;

		cmd_run(&r, "mkdir -p '%s'", dir);
		cmd_free(&r);
	}
	snprintf(path, sizeof(path), "%s/children", dir);
	write_file(path, "%s", p->children ? p->children : "");
	snprintf(path, sizeof(path), "%s/%d/stat", root, p->pid);
	/* Fields 1-3, then 4 (ppid) ... 10 (minflt) ... 22 (start) ... 28 (startstack). */
	write_file(path, "%d (worker) S %d %d %d 0 -1 4194560 100 0 0 0 10 5 0 0 20 0 1 0 1000 "
	           "300000000 %llu 18446744073709551615 1 1 %llu 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
	           p->pid, p->ppid, p->pid, p->pid, (unsigned long long)(p->rss_kb / 4), p->startstack);
	snprintf(path, sizeof(path), "%s/%d/statm", root, p->pid);
	/* size resident shared(file+shmem) text lib data dt, in pages */
	write_file(path, "%llu %llu %llu 1 0 %llu 0\n", (unsigned long long)(p->rss_kb / 4 * 2),
	           (unsigned long long)(p->rss_kb / 4), (unsigned long long)((p->rss_kb - p->anon_kb) / 4),
	           (unsigned long long)(p->anon_kb / 4));
	snprintf(path, sizeof(path), "%s/%d/smaps_rollup", root, p->pid);
	write_file(path,
	           "00400000-7ffff000 ---p 00000000 00:00 0                  [rollup]\n"
	           "Rss:            %8llu kB\n"
	           "Pss:            %8llu kB\n"
	           "Pss_Anon:       %8llu kB\n"
	           "Pss_File:       %8llu kB\n"
	           "Pss_Shmem:             0 kB\n"
	           "Shared_Clean:   %8llu kB\n"
	           "Shared_Dirty:   %8llu kB\n"
	           "Private_Clean:         0 kB\n"
	           "Private_Dirty:  %8llu kB\n"
	           "Anonymous:      %8llu kB\n"
	           "Swap:                  0 kB\n"
	           "SwapPss:               0 kB\n",
	           (unsigned long long)p->rss_kb, (unsigned long long)p->pss_kb,
	           (unsigned long long)p->pss_anon_kb, (unsigned long long)(p->pss_kb - p->pss_anon_kb),
	           (unsigned long long)(p->rss_kb - p->anon_kb),
	           (unsigned long long)(p->shared_kb - (p->rss_kb - p->anon_kb)),
	           (unsigned long long)p->private_kb,
	           (unsigned long long)p->anon_kb);
}

static void rm_pid(const char *root, int pid)
{
	struct cmd_result r;

	cmd_run(&r, "rm -rf '%s/%d'", root, pid);
	cmd_free(&r);
}

static uint64_t copied(struct cohort_watch *w, unsigned rank)
{
	struct cohort_worker_state st;

	CHECK_OK(cohort_watch_worker(w, rank, &st));
	return st.cow_copied;
}

/* Tick until every process has had a page walk of its current files. */
static void ticks(struct cohort_watch *w, int n)
{
	for (int i = 0; i < n; i++) {
		CHECK_OK(cohort_watch_tick(w));
		usleep(20000);
	}
}

/*
 * A parent (pid 100, the worker's exec'd root) holds F = 192 MiB of
 * anonymous memory and forks 101 and 102 (same stack address). Then 101
 * writes the first half: it copies 96 MiB, and the pages it copied are no
 * longer shared three ways. Then 101 exits. Every figure below is what
 * the kernel would show at each step.
 */
TEST(watch_copy_on_write_on_known_figures)
{
	char root[512];
	const uint64_t F = 196608;   /* kB */
	struct cohort_probe probe = { 0 };
	struct cohort_watch_opts o = { .workers = 1, .pss_budget = 1.0, .interval = 1 };
	struct cohort_watch *w;
	unsigned long long ss = 0x7ffe00001000ULL;

	snprintf(root, sizeof(root), "%s/proc", test_tmpdir());
	probe.proc_root = root;
	o.probe = &probe;
	/* Just after the forks: everything shared three ways. */
	fproc_write(root, &(struct fproc){ 100, 1, ss, F + 4096, F, F / 3 + 1024, F / 3, 0, F + 4096, "101 102" });
	fproc_write(root, &(struct fproc){ 101, 100, ss, F + 4096, F, F / 3 + 1024, F / 3, 0, F + 4096, "" });
	fproc_write(root, &(struct fproc){ 102, 100, ss, F + 4096, F, F / 3 + 1024, F / 3, 0, F + 4096, "" });
	CHECK_OK(cohort_watch_create(&o, &w));
	CHECK_OK(cohort_watch_start(w, 0, 100, NULL, 0));
	ticks(w, 3);
	CHECK_EQ_U64(copied(w, 0), 0);

	/* 101 wrote the first half: 96 MiB copied. */
	fproc_write(root, &(struct fproc){ 100, 1, ss, F + 4096, F, 81920 + 1024, 81920, 0, F + 4096, "101 102" });
	fproc_write(root, &(struct fproc){ 101, 100, ss, F + 4096, F, 131072 + 1024, 131072, 98304, F / 2 + 4096, "" });
	fproc_write(root, &(struct fproc){ 102, 100, ss, F + 4096, F, 81920 + 1024, 81920, 0, F + 4096, "" });
	ticks(w, 3);
	CHECK_EQ_U64(copied(w, 0), 98304 * KiB);

	/*
	 * 101 exits: what it copied is gone from memory but stays counted. In
	 * the tick that finds it gone, the others' figures are from before
	 * (their share of what 101 shared has not moved to them yet): the
	 * total holds all the same.
	 */
	rm_pid(root, 101);
	fproc_write(root, &(struct fproc){ 100, 1, ss, F + 4096, F, 81920 + 1024, 81920, 0, F + 4096, "102" });
	ticks(w, 1);
	CHECK_EQ_U64(copied(w, 0), 98304 * KiB);
	fproc_write(root, &(struct fproc){ 100, 1, ss, F + 4096, F, 98304 + 1024, 98304, 0, F + 4096, "102" });
	fproc_write(root, &(struct fproc){ 102, 100, ss, F + 4096, F, 98304 + 1024, 98304, 0, F + 4096, "" });
	ticks(w, 3);
	CHECK_EQ_U64(copied(w, 0), 98304 * KiB);

	/* A child that began with an exec is no copy of its parent: its memory is its own. */
	fproc_write(root, &(struct fproc){ 100, 1, ss, F + 4096, F, 98304 + 1024, 98304, 0, F + 4096, "102 103" });
	fproc_write(root, &(struct fproc){ 103, 100, ss + 0x10000, 65536, 65536, 65536, 65536, 65536, 0, "" });
	ticks(w, 3);
	CHECK_EQ_U64(copied(w, 0), 98304 * KiB);
	cohort_watch_free(w);
}

/*
 * The exits of the page-walk measure, in the phases that overshot. The
 * root 100 holds 3T of anonymous memory and forks 101, 102 and 103, which
 * copy T, 2T and 3T: 6T copied. (1) 101 exits as a zombie in the tick
 * whose walks already show its share moved to 100 and 102; (2) then the
 * whole tree goes at once, before the root's end is reported, from walks
 * taken while all of it lived. The figure is 6T at each step, however the
 * walks fell against the exits.
 */
TEST(watch_copy_on_write_exits_in_any_phase)
{
	char root[512], path[600];
	const uint64_t T = 24576, F = 3 * T;   /* kB */
	struct cohort_probe probe = { 0 };
	struct cohort_watch_opts o = { .workers = 1, .pss_budget = 1.0, .interval = 1 };
	struct cohort_watch *w;
	unsigned long long ss = 0x7ffe00001000ULL;

	snprintf(root, sizeof(root), "%s/proc", test_tmpdir());
	probe.proc_root = root;
	o.probe = &probe;
	/* Just after the forks: all of it shared four ways (file pages: 4096 kB each, 1024 of PSS). */
	fproc_write(root, &(struct fproc){ 100, 1, ss, F + 4096, F, F / 4 + 1024, F / 4, 0, F + 4096, "101 102 103" });
	for (int pid = 101; pid <= 103; pid++)
		fproc_write(root, &(struct fproc){ pid, 100, ss, F + 4096, F, F / 4 + 1024, F / 4, 0, F + 4096, "" });
	CHECK_OK(cohort_watch_create(&o, &w));
	CHECK_OK(cohort_watch_start(w, 0, 100, NULL, COHORT_WATCH_CHILD));
	ticks(w, 3);
	CHECK_EQ_U64(copied(w, 0), 0);

	/* The copies: [0,T) is held by all four apart, [T,2T) by 100 and 101, [2T,3T) by 100, 101, 102. */
	fproc_write(root, &(struct fproc){ 100, 1, ss, F + 4096, F, T + T / 2 + T / 3 + 1024, T + T / 2 + T / 3,
	                                   T, F + 4096 - T, "101 102 103" });
	fproc_write(root, &(struct fproc){ 101, 100, ss, F + 4096, F, T + T / 2 + T / 3 + 1024, T + T / 2 + T / 3,
	                                   T, F + 4096 - T, "" });
	fproc_write(root, &(struct fproc){ 102, 100, ss, F + 4096, F, 2 * T + T / 3 + 1024, 2 * T + T / 3,
	                                   2 * T, F + 4096 - 2 * T, "" });
	fproc_write(root, &(struct fproc){ 103, 100, ss, F + 4096, F, F + 1024, F, F, 4096, "" });
	ticks(w, 3);
	CHECK_EQ_U64(copied(w, 0), 6 * T * KiB);

	/*
	 * (1) 101 is a zombie (statm all zeros, no address space), and the
	 * walks of this very tick show its share moved: [T,2T) is 100's
	 * alone, [2T,3T) shared by 100 and 102.
	 */
	snprintf(path, sizeof(path), "%s/101/statm", root);
	write_file(path, "0 0 0 0 0 0 0\n");
	snprintf(path, sizeof(path), "%s/101/smaps_rollup", root);
	CHECK_EQ(unlink(path), 0);
	fproc_write(root, &(struct fproc){ 100, 1, ss, F + 4096, F, 2 * T + T / 2 + 1024, 2 * T + T / 2,
	                                   2 * T, F + 4096 - 2 * T, "101 102 103" });
	fproc_write(root, &(struct fproc){ 102, 100, ss, F + 4096, F, 2 * T + T / 2 + 1024, 2 * T + T / 2,
	                                   2 * T, F + 4096 - 2 * T, "" });
	ticks(w, 1);
	CHECK_EQ_U64(copied(w, 0), 6 * T * KiB);
	/* Reaped. */
	rm_pid(root, 101);
	fproc_write(root, &(struct fproc){ 100, 1, ss, F + 4096, F, 2 * T + T / 2 + 1024, 2 * T + T / 2,
	                                   2 * T, F + 4096 - 2 * T, "102 103" });
	ticks(w, 3);
	CHECK_EQ_U64(copied(w, 0), 6 * T * KiB);

	/*
	 * (2) Everything goes between two ticks: the watcher finds the tree
	 * empty, then learns of the root's end. The walks it has are from
	 * before any of it went.
	 */
	for (int pid = 100; pid <= 103; pid++)
		rm_pid(root, pid);
	ticks(w, 1);
	CHECK_EQ_U64(copied(w, 0), 6 * T * KiB);
	CHECK_OK(cohort_watch_exited(w, 0, 0));
	CHECK_EQ_U64(copied(w, 0), 6 * T * KiB);
	cohort_watch_free(w);
}

/* A cgroup's processes as one worker, however they were started; it ends when the cgroup empties. */
TEST(watch_a_cgroup_as_a_worker)
{
	char root[512], cg[512], path[700];
	struct cohort_probe probe = { 0 };
	struct cohort_watch_opts o = { .workers = 1, .pss_budget = 1.0 };
	struct cohort_watch *w;
	struct cohort_worker_state st;
	struct cohort_event ev;
	struct cmd_result r;
	int exits = 0;

	snprintf(root, sizeof(root), "%s/proc", test_tmpdir());
	snprintf(cg, sizeof(cg), "%s/cg", test_tmpdir());
	probe.proc_root = root;
	probe.cgroup_root = cg;
	o.probe = &probe;
	cmd_run(&r, "mkdir -p '%s/task_0'", cg);
	CHECK_EQ(r.status, 0);
	cmd_free(&r);
	snprintf(path, sizeof(path), "%s/memory.current", cg);
	write_file(path, "104857600\n");
	snprintf(path, sizeof(path), "%s/memory.max", cg);
	write_file(path, "max\n");
	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	write_file(path, "200\n");
	snprintf(path, sizeof(path), "%s/task_0/cgroup.procs", cg);
	write_file(path, "201\n");
	fproc_write(root, &(struct fproc){ 200, 1, 0x7000, 20480, 10240, 10240, 10240, 10240, 10240, "" });
	fproc_write(root, &(struct fproc){ 201, 1, 0x8000, 40960, 30720, 30720, 30720, 30720, 10240, "" });
	CHECK_OK(cohort_watch_create(&o, &w));
	CHECK_OK(cohort_watch_start_cgroup(w, 0, cg));
	CHECK_EQ(cohort_watch_start_cgroup(w, 0, cg), -EBUSY);
	ticks(w, 2);
	CHECK_OK(cohort_watch_worker(w, 0, &st));
	CHECK_EQ(st.nprocs, 2);
	CHECK_EQ_U64(st.rss, (20480 + 40960) * KiB);
	CHECK_EQ_U64(st.pss, (10240 + 30720) * KiB);
	CHECK_EQ(cohort_watch_running(w), 1);
	/* Both leave the cgroup: the worker has ended, status unknown. */
	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	write_file(path, "%s", "");
	snprintf(path, sizeof(path), "%s/task_0/cgroup.procs", cg);
	write_file(path, "%s", "");
	ticks(w, 1);
	CHECK_EQ(cohort_watch_running(w), 0);
	while (cohort_watch_next_event(w, &ev) == 1)
		if (ev.kind == COHORT_EVENT_EXIT) {
			exits++;
			CHECK_STREQ(cohort_event_str(&ev, "status"), "ended (status not known)");
			CHECK_EQ(ev.rank, 0);
		}
	CHECK_EQ(exits, 1);
	cohort_watch_free(w);
}

/*
 * Real processes through the pid index: 300 workers, half of them killed
 * and reaped, the rest still found; a worker handed over (not reported by
 * its parent) ends when its process is gone.
 */
TEST_TIMEOUT(watch_many_workers_churn, 60)
{
	enum { N = 300 };
	struct cohort_watch_opts o = { .workers = N + 1 };
	struct cohort_watch *w;
	struct cohort_worker_state st;
	struct cohort_event ev;
	pid_t pids[N], handed;
	int spawns = 0, exits = 0;

	CHECK_OK(cohort_watch_create(&o, &w));
	for (int i = 0; i < N; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			pause();
			_exit(0);
		}
		CHECK(pids[i] > 0);
		CHECK_OK(cohort_watch_start(w, (unsigned)i, pids[i], NULL, COHORT_WATCH_CHILD));
	}
	handed = fork();
	if (handed == 0) {
		pause();
		_exit(0);
	}
	CHECK_OK(cohort_watch_start(w, N, handed, NULL, 0));
	CHECK_OK(cohort_watch_tick(w));
	for (int i = 0; i < N; i++) {
		CHECK_OK(cohort_watch_worker(w, (unsigned)i, &st));
		CHECK_MSG(st.nprocs == 1 && st.rss > 0, "rank %d: %u processes, rss %llu", i, st.nprocs,
		          (unsigned long long)st.rss);
	}
	for (int i = 0; i < N; i += 2) {
		int status;

		kill(pids[i], SIGKILL);
		CHECK_EQ(waitpid(pids[i], &status, 0), pids[i]);
		CHECK_OK(cohort_watch_exited(w, (unsigned)i, status));
	}
	kill(handed, SIGKILL);
	waitpid(handed, NULL, 0);
	CHECK_OK(cohort_watch_tick(w));
	CHECK_OK(cohort_watch_tick(w));
	for (int i = 1; i < N; i += 2) {
		CHECK_OK(cohort_watch_worker(w, (unsigned)i, &st));
		CHECK_MSG(st.running && st.nprocs == 1 && st.rss > 0, "rank %d lost after the churn", i);
	}
	CHECK_OK(cohort_watch_worker(w, N, &st));
	CHECK(!st.running && st.ended);
	CHECK_EQ(cohort_watch_running(w), N / 2);
	while (cohort_watch_next_event(w, &ev) == 1) {
		if (ev.kind == COHORT_EVENT_SPAWN)
			spawns++;
		if (ev.kind == COHORT_EVENT_EXIT) {
			exits++;
			if (ev.rank < N)
				CHECK_EQ(cohort_event_num(&ev, "signal", 0), SIGKILL);
		}
	}
	CHECK_EQ(spawns, N + 1);
	CHECK_EQ(exits, N / 2 + 1);
	for (int i = 1; i < N; i += 2) {
		kill(pids[i], SIGKILL);
		waitpid(pids[i], NULL, 0);
	}
	cohort_watch_free(w);
}

/* A signal to the supervisor: its own event, with the sender. */
TEST(watch_signal_event)
{
	struct cohort_watch_opts o = { .workers = 1 };
	struct cohort_watch *w;
	struct cohort_event ev;

	CHECK_OK(cohort_watch_create(&o, &w));
	CHECK_OK(cohort_watch_signal(w, SIGTERM, 4242, 1000, "passing it on"));
	CHECK_EQ(cohort_watch_next_event(w, &ev), 1);
	CHECK_EQ(ev.kind, COHORT_EVENT_SIGNAL);
	CHECK_EQ(ev.rank, -1);
	CHECK_EQ(cohort_event_num(&ev, "signal", 0), SIGTERM);
	CHECK_STREQ(cohort_event_str(&ev, "signal_name"), "SIGTERM");
	CHECK_EQ(cohort_event_num(&ev, "sender_pid", 0), 4242);
	CHECK_EQ(cohort_event_num(&ev, "sender_uid", -1), 1000);
	CHECK_STREQ(ev.message, "the supervisor got SIGTERM from pid 4242: passing it on");
	CHECK_EQ(cohort_watch_next_event(w, &ev), 0);
	cohort_watch_free(w);
}

/* A fake cgroup v2 worker directory: memory.current and memory.stat as the kernel writes them. */
static void v2_cgroup_write(const char *dir, uint64_t usage, uint64_t anon, uint64_t file,
                            uint64_t shmem, uint64_t inactive_file)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/memory.current", dir);
	write_file(path, "%llu\n", (unsigned long long)usage);
	snprintf(path, sizeof(path), "%s/memory.peak", dir);
	write_file(path, "%llu\n", (unsigned long long)usage);
	snprintf(path, sizeof(path), "%s/memory.stat", dir);
	write_file(path, "anon %llu\nfile %llu\nkernel 1048576\nshmem %llu\nfile_mapped 0\n"
	           "inactive_anon %llu\nactive_anon 0\ninactive_file %llu\nactive_file %llu\n",
	           (unsigned long long)anon, (unsigned long long)file, (unsigned long long)shmem,
	           (unsigned long long)anon, (unsigned long long)inactive_file,
	           (unsigned long long)(file - shmem - inactive_file));
}

static int count_growth(struct cohort_watch *w, const char *growth, struct cohort_event *ret)
{
	struct cohort_event ev;
	int n = 0;

	while (cohort_watch_next_event(w, &ev) > 0)
		if (ev.kind == COHORT_EVENT_COW_UNSHARE && cohort_event_str(&ev, "kind_of_growth") &&
		    strcmp(cohort_event_str(&ev, "kind_of_growth"), growth) == 0) {
			n++;
			*ret = ev;
		}
	return n;
}

/*
 * The same fork as above with the worker in a cgroup v2 of its own: the
 * cgroup's count of copies (its anonymous pages beyond what the processes
 * allocated), shared memory charged to it, and the figure judged (the
 * larger of the estimate and the usage less inactive page cache).
 */
TEST(watch_worker_cgroup_v2_counts_what_rss_hides)
{
	char root[512], cg[512];
	const uint64_t F = 196608;   /* kB */
	struct cohort_probe probe = { 0 };
	struct cohort_watch_opts o = { .workers = 1, .pss_budget = 1.0, .interval = 1,
	                               .mem_per_worker = 2048ULL << 20 };
	struct cohort_worker_state st;
	struct cohort_event ev;
	struct cohort_watch *w;
	unsigned long long ss = 0x7ffe00001000ULL;

	snprintf(root, sizeof(root), "%s/proc", test_tmpdir());
	snprintf(cg, sizeof(cg), "%s/rank-0", test_tmpdir());
	CHECK_OK(mkdir(cg, 0755));
	probe.proc_root = root;
	o.probe = &probe;
	fproc_write(root, &(struct fproc){ 100, 1, ss, F + 4096, F, F / 3 + 1024, F / 3, 0, F + 4096, "101 102" });
	fproc_write(root, &(struct fproc){ 101, 100, ss, F + 4096, F, F / 3 + 1024, F / 3, 0, F + 4096, "" });
	fproc_write(root, &(struct fproc){ 102, 100, ss, F + 4096, F, F / 3 + 1024, F / 3, 0, F + 4096, "" });
	/* The parent's 192 MiB, once, and 4 MiB of inactive page cache. */
	v2_cgroup_write(cg, (F + 4096) * KiB, F * KiB, 4096 * KiB, 0, 4096 * KiB);
	CHECK_OK(cohort_watch_create(&o, &w));
	CHECK_OK(cohort_watch_start(w, 0, 100, cg, 0));
	ticks(w, 3);
	CHECK_OK(cohort_watch_worker(w, 0, &st));
	CHECK_EQ(st.has_cgroup_usage, 1);
	CHECK_EQ_U64(st.cg_usage, (F + 4096) * KiB);
	CHECK_EQ_U64(st.cg_work, F * KiB);
	CHECK_EQ_U64(st.cow_copied, 0);
	CHECK_EQ(count_growth(w, "cow", &ev), 0);

	/*
	 * 101 wrote half of it: the cgroup holds 96 MiB more anonymous pages,
	 * and nobody's statm moved; the page walks are not redone here, so the
	 * estimate cannot see it: the cgroup's usage is the figure judged.
	 */
	v2_cgroup_write(cg, (F + F / 2 + 4096) * KiB, (F + F / 2) * KiB, 4096 * KiB, 0, 4096 * KiB);
	ticks(w, 1);
	CHECK_OK(cohort_watch_worker(w, 0, &st));
	CHECK_EQ_U64(st.cow_copied, F / 2 * KiB);
	CHECK_EQ_U64(st.cg_anon, (F + F / 2) * KiB);
	CHECK_EQ(count_growth(w, "cow", &ev), 1);
	CHECK_STREQ(cohort_event_str(&ev, "source"), "cgroup");
	CHECK_EQ_U64((uint64_t)cohort_event_num(&ev, "copied_bytes", 0), F / 2 * KiB);
	CHECK_EQ_U64((uint64_t)cohort_event_num(&ev, "rss_sum_bytes", 0), 3 * (F + 4096) * KiB);
	CHECK_EQ_U64((uint64_t)cohort_event_num(&ev, "allocated_bytes", 0), F * KiB);

	/*
	 * 64 MiB of /dev/shm written (file counts shmem too): a thirtieth of
	 * the 2 GiB limit, how shared memory should be used, not said.
	 */
	v2_cgroup_write(cg, (F + F / 2 + 4096 + 65536) * KiB, (F + F / 2) * KiB, (4096 + 65536) * KiB,
	                65536 * KiB, 4096 * KiB);
	ticks(w, 2);
	CHECK_EQ(count_growth(w, "shmem", &ev), 0);
	/* 256 MiB, an eighth of the limit: said as shared memory, once. */
	v2_cgroup_write(cg, (F + F / 2 + 4096 + 262144) * KiB, (F + F / 2) * KiB, (4096 + 262144) * KiB,
	                262144 * KiB, 4096 * KiB);
	ticks(w, 2);
	CHECK_EQ(count_growth(w, "shmem", &ev), 1);
	CHECK_EQ_U64((uint64_t)cohort_event_num(&ev, "cgroup_shmem_bytes", 0), 262144 * KiB);
	CHECK_EQ(count_growth(w, "page_cache", &ev), 0);   /* far from its limit */
	CHECK_OK(cohort_watch_worker(w, 0, &st));
	CHECK_EQ(st.used_by_cgroup, st.used > st.est);
	CHECK_GE(st.used, (F + F / 2 + 262144) * KiB);

	/* A memory.stat the kernel would not write: the worker keeps its last figures, nothing breaks. */
	{
		char path[600];

		snprintf(path, sizeof(path), "%s/memory.stat", cg);
		write_file(path, "anon 99999999999999999999999\n");
	}
	ticks(w, 1);
	CHECK_OK(cohort_watch_worker(w, 0, &st));
	CHECK_EQ(st.has_cgroup_usage, 0);
	cohort_watch_free(w);
}

/* ---- who a process is ---- */

/* Internal to libcohort (src/internal.h), linked statically here. */
int cohort__kmsg_oom(const char *rec, size_t len, pid_t *ret_pid, char *comm, size_t comm_size,
                     char *memcg, size_t memcg_size);

TEST(watch_identity_reads_a_fixture_environ)
{
	char root[4096], words[256];
	struct cohort_probe probe = { 0 };
	struct cohort_proc_identity id;

	snprintf(root, sizeof(root), "%s/tests/fixtures/proc-ident", test_src_dir());
	probe.proc_root = root;
	CHECK_OK(cohort_proc_identity_read(&probe, 4242, &id));
	CHECK_EQ(id.pid, 4242);
	CHECK_EQ(id.ppid, 4200);
	CHECK_STREQ(id.comm, "a.out");
	CHECK_STREQ(id.cmdline, "./a.out --size 10");
	CHECK_EQ(id.environ_read, 1);
	CHECK_EQ(id.mpi_rank, 2);
	CHECK_EQ(id.slurm_procid, 5);
	CHECK_EQ(id.slurm_localid, 1);
	CHECK_EQ(id.rank, -1);
	CHECK_EQ(id.child, 0u);
	CHECK_STREQ(cohort_proc_identity_describe(&id, words, sizeof(words)),
	            "pid 4242 (a.out, MPI rank 2, SLURM task 5)");
	id.rank = 0;
	id.child = 3;
	CHECK_STREQ(cohort_proc_identity_describe(&id, words, sizeof(words)),
	            "pid 4242 (a.out, MPI rank 2, SLURM task 5), child 3 of rank 0");
	id.child = 0;
	CHECK_STREQ(cohort_proc_identity_describe(&id, words, sizeof(words)),
	            "pid 4242 (a.out, MPI rank 2, SLURM task 5), the root of rank 0");
	/* Odd values are not ranks; the last entry needs no NUL. */
	CHECK_OK(cohort_proc_identity_read(&probe, 4243, &id));
	CHECK_STREQ(id.cmdline, "python3 -c import x");
	CHECK_EQ(id.mpi_rank, 7);
	CHECK_EQ(id.slurm_procid, -1);
	CHECK_EQ(id.slurm_localid, -1);
	CHECK_EQ(cohort_proc_identity_read(&probe, 4244, &id), -ESRCH);
	/* A small buffer cuts the words, never past its end. */
	id.pid = 4243;
	CHECK_STREQ(cohort_proc_identity_describe(&id, words, 8), "pid 424");
}

TEST(watch_identity_hostile_environ)
{
	size_t big = 3 * 1024 * 1024;
	char *env = malloc(big), root[64], path[128];
	struct cohort_probe probe = { 0 };
	struct cohort_proc_identity id;
	int mpi = 0, procid = 0, localid = 0;

	CHECK(env != NULL);
	/* No NUL at all: one huge entry, no rank. */
	memset(env, 'A', big);
	CHECK_EQ(cohort_environ_ranks(env, big, &mpi, &procid, &localid), 0);
	CHECK_EQ(mpi, -1);
	/* A key without a value, a value with junk, a key inside a value, an overflow. */
	static const char odd[] = "OMPI_COMM_WORLD_RANK=\0PMI_RANK=12x\0X=PMIX_RANK=3\0"
	                          "MV2_COMM_WORLD_RANK=99999999999\0=\0\0\0SLURM_PROCID=-1";
	CHECK_EQ(cohort_environ_ranks(odd, sizeof(odd) - 1, &mpi, &procid, &localid), 0);
	CHECK_EQ(mpi, -1);
	CHECK_EQ(procid, -1);
	/* The launcher's own name wins over the generic PMI one, whatever the order. */
	static const char both[] = "PMI_RANK=1\0OMPI_COMM_WORLD_RANK=3\0PMIX_RANK=1";
	CHECK_EQ(cohort_environ_ranks(both, sizeof(both) - 1, &mpi, NULL, NULL), 1);
	CHECK_EQ(mpi, 3);
	CHECK_EQ(cohort_environ_ranks(NULL, 0, NULL, NULL, NULL), 0);
	/* A /proc whose environ is megabytes of one entry, the rank past the bound: read, not found. */
	snprintf(root, sizeof(root), "%s", "proc");
	mkdir(root, 0755);
	snprintf(path, sizeof(path), "%s/77", root);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/77/stat", root);
	write_file(path, "77 (big) S 1 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 1000 10 1 1 1 1 0 0 0 0\n");
	snprintf(path, sizeof(path), "%s/77/environ", root);
	memcpy(env + big - 32, "\0OMPI_COMM_WORLD_RANK=5", 23);
	{
		FILE *f = fopen(path, "w");

		CHECK(f != NULL);
		CHECK_EQ(fwrite(env, 1, big - 9, f), big - 9);
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/77/cmdline", root);
	{
		FILE *f = fopen(path, "w");

		CHECK(f != NULL);
		CHECK_EQ(fwrite(env, 1, 100000, f), 100000u);   /* no NUL: cut at the bound */
		fclose(f);
	}
	probe.proc_root = root;
	CHECK_OK(cohort_proc_identity_read(&probe, 77, &id));
	CHECK_EQ(id.mpi_rank, -1);
	CHECK_EQ(id.environ_read, 1);
	CHECK_EQ(strlen(id.cmdline), (size_t)COHORT_CMDLINE_MAX - 1);
	free(env);
}

TEST(watch_kernel_log_oom_records)
{
	char comm[16], memcg[256];
	pid_t pid = 0;
	static const char killed[] = "3,1234,5678901,-;Memory cgroup out of memory: Killed process 4321 "
	                             "(stress-ng-vm) total-vm:420000kB, anon-rss:300000kB, file-rss:0kB";
	static const char summary[] = "6,1233,5678900,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask="
	                              "(null),cpuset=/,mems_allowed=0,oom_memcg=/cohort-1/rank-0,task_memcg="
	                              "/cohort-1/rank-0,task=stress-ng-vm,pid=4321,uid=0";

	CHECK_EQ(cohort__kmsg_oom(killed, sizeof(killed) - 1, &pid, comm, sizeof(comm), memcg, sizeof(memcg)), 1);
	CHECK_EQ(pid, 4321);
	CHECK_STREQ(comm, "stress-ng-vm");
	CHECK_STREQ(memcg, "");
	CHECK_EQ(cohort__kmsg_oom(summary, sizeof(summary) - 1, &pid, comm, sizeof(comm), memcg,
	                          sizeof(memcg)), 1);
	CHECK_EQ(pid, 4321);
	CHECK_STREQ(comm, "stress-ng-vm");
	CHECK_STREQ(memcg, "/cohort-1/rank-0");
	/* Other records, cut ones, and junk are not victims. */
	CHECK_EQ(cohort__kmsg_oom("6,1,2,-;eth0: link up", 21, &pid, comm, sizeof(comm), memcg,
	                          sizeof(memcg)), 0);
	CHECK_EQ(cohort__kmsg_oom("3,1,2,-;Killed process ", 23, &pid, comm, sizeof(comm), memcg,
	                          sizeof(memcg)), 0);
	CHECK_EQ(cohort__kmsg_oom("3,1,2,-;Killed process 99999999999 (x)", 38, &pid, comm, sizeof(comm),
	                          memcg, sizeof(memcg)), 0);
	CHECK_EQ(cohort__kmsg_oom("oom-kill:task=x,pid=", 20, &pid, comm, sizeof(comm), memcg,
	                          sizeof(memcg)), 0);
	/* A name longer than the buffer is cut, and a record without ')' ends at its end. */
	CHECK_EQ(cohort__kmsg_oom("Killed process 12 (abcdefghijklmnopqrstuvwxyz", 45, &pid, comm,
	                          sizeof(comm), memcg, sizeof(memcg)), 1);
	CHECK_EQ(pid, 12);
	CHECK_STREQ(comm, "abcdefghijklmno");
}

/* A record as the crash shim writes it. */
static void exit_file(const char *dir, const char *name, pid_t pid, int status, pid_t reaper)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	write_file(path, "pid %d\nstatus %d\nreaper %d\n", (int)pid, status, (int)reaper);
}

/*
 * A worker's root with a child: the child dies of SIGSEGV and its parent
 * reaps it (the shim's record, written here as the shim would): one
 * child_exit naming the child as child 1 of rank 0, and its reaper. Then a
 * restarting program's thousand deaths: a few told, the rest counted, all
 * records removed, and odd files (a symlink, junk) harmless.
 */
TEST_TIMEOUT(watch_child_deaths_from_the_shim, 60)
{
	struct cohort_watch_opts o = { .workers = 1, .interval = 0.05 };
	struct cohort_watch *w;
	struct cohort_event ev;
	char dir[512], path[600];
	int fds[2], go[2], st, told = 0, summaries = 0;
	pid_t root, child = 0;
	char c;
	bool seen = false;

	snprintf(dir, sizeof(dir), "%s/catch", getcwd(path, sizeof(path)));
	CHECK_OK(mkdir(dir, 0700));
	o.crash_dir = dir;
	CHECK_OK(pipe(fds));
	CHECK_OK(pipe(go));
	root = fork();
	CHECK(root >= 0);
	if (root == 0) {
		pid_t g = fork();

		if (g == 0) {
			pause();
			_exit(0);
		}
		/* Told to go on: kill the child as a crash would, reap it, wait to be killed. */
		if (write(fds[1], &g, sizeof(g)) != sizeof(g) || read(go[0], &c, 1) != 1)
			_exit(2);
		kill(g, SIGSEGV);
		waitpid(g, &st, 0);
		pause();
		_exit(0);
	}
	CHECK_EQ(read(fds[0], &child, sizeof(child)), (ssize_t)sizeof(child));
	CHECK_OK(cohort_watch_create(&o, &w));
	CHECK_OK(cohort_watch_start(w, 0, root, NULL, COHORT_WATCH_CHILD));
	for (int i = 0; i < 20; i++) {
		struct cohort_worker_state ws;

		CHECK_OK(cohort_watch_tick(w));
		CHECK_OK(cohort_watch_worker(w, 0, &ws));
		if (ws.nprocs == 2)
			break;
		usleep(20000);
	}
	CHECK_EQ(write(go[1], "x", 1), 1);
	/* The root reaped it: only then does the shim write. */
	for (int i = 0; i < 200; i++) {
		char stat_path[64];

		snprintf(stat_path, sizeof(stat_path), "/proc/%d", (int)child);
		if (access(stat_path, F_OK) < 0)
			break;
		usleep(10000);
	}
	exit_file(dir, "exit.x", 0, 0, 0);                    /* junk: removed */
	snprintf(path, sizeof(path), "%s/exit.1", dir);
	CHECK_OK(symlink("/etc/passwd", path));              /* never followed */
	{
		char name[64];

		snprintf(name, sizeof(name), "exit.%d", (int)child);
		exit_file(dir, name, child, SIGSEGV, root);
	}
	CHECK_OK(cohort_watch_tick(w));
	while (cohort_watch_next_event(w, &ev) == 1) {
		if (ev.kind != COHORT_EVENT_CHILD_EXIT)
			continue;
		seen = true;
		CHECK_EQ(ev.rank, 0);
		CHECK_EQ(cohort_event_num(&ev, "process_pid", 0), child);
		CHECK_EQ(cohort_event_num(&ev, "process_child", 0), 1);
		CHECK_EQ(cohort_event_num(&ev, "signal", 0), SIGSEGV);
		CHECK_EQ(cohort_event_num(&ev, "reaper_pid", 0), root);
		CHECK_EQ(cohort_event_num(&ev, "count", 0), 1);
		CHECK(cohort_event_str(&ev, "process") != NULL);
		CHECK_CONTAINS(ev.message, "child 1 of rank 0");
		CHECK_CONTAINS(ev.message, "signal 11");
		CHECK(ev.notice);
	}
	CHECK(seen);
	CHECK_EQ(access(path, F_OK) < 0 && errno == ENOENT, 1);
	/* A thousand deaths of the same (gone) child, as a restarting program makes. */
	for (int i = 0; i < 1000; i++) {
		char name[64];

		snprintf(name, sizeof(name), "exit.%d.%d", (int)child, i);
		exit_file(dir, name, child, SIGSEGV, root);
	}
	CHECK_OK(cohort_watch_tick(w));
	kill(root, SIGKILL);
	CHECK_EQ(waitpid(root, &st, 0), root);
	CHECK_OK(cohort_watch_exited(w, 0, st));
	CHECK_OK(cohort_watch_finish(w));
	while (cohort_watch_next_event(w, &ev) == 1) {
		if (ev.kind != COHORT_EVENT_CHILD_EXIT)
			continue;
		if (cohort_event_num(&ev, "summary", 0) > 0) {
			summaries++;
			CHECK_EQ(cohort_event_num(&ev, "count", 0), 1001);
			CHECK_CONTAINS(ev.message, "1001 processes below its root");
		} else {
			told++;
			CHECK_LE(cohort_event_num(&ev, "count", 0), 8);
		}
	}
	/* Eight in all are told (one above), then one summary with the count. */
	CHECK_EQ(told, 7);
	CHECK_EQ(summaries, 1);
	{
		struct cmd_result r;

		cmd_run(&r, "ls -A '%s'", dir);
		CHECK_STREQ(r.out, "");
		cmd_free(&r);
	}
	cohort_watch_free(w);
}

/* Wait for the watcher's descriptor and hand it what came; 1 when something did. */
static int watch_wait(struct cohort_watch *w, int ms)
{
	struct pollfd p = { .events = POLLIN };

	if (cohort_watch_fds(w, &p.fd, 1) != 1 || poll(&p, 1, ms) != 1)
		return 0;
	CHECK_OK(cohort_watch_ready(w, p.fd));
	return 1;
}

#define JOB43 "system.slice/slurmstepd.scope/job_43"

/*
 * OOM kills in a worker's cgroup (a copy of the v2 fixture, whose
 * memory.events the test rewrites) attributed without the kernel log: a
 * child its parent reaped killed by SIGKILL (the shim's record) is the
 * victim by its reaped status; a child that vanished without a record is
 * the victim as the one that vanished; the root itself is never one.
 */
TEST_TIMEOUT(watch_oom_victims_by_reaped_status_and_vanishing, 60)
{
	struct cohort_watch_opts o = { .workers = 1, .interval = 0.05 };
	struct cohort_probe p = { 0 };
	struct cohort_watch *w;
	struct cohort_event ev;
	char root[512], dir[1024], cat[512], path[1200], name[64], cwd[400];
	pid_t kids[2], rootpid;
	int fds[2], st, found = 0;
	struct cmd_result r;

	snprintf(root, sizeof(root), "%s/cgroup-v2", getcwd(cwd, sizeof(cwd)));
	cmd_run(&r, "cp -r %s/tests/fixtures/cgroup-v2 %s", test_src_dir(), root);
	CHECK_MSG(r.status == 0, "cp: %s", r.err);
	cmd_free(&r);
	p.cgroup_root = root;
	snprintf(dir, sizeof(dir), "%s/" JOB43, root);
	snprintf(path, sizeof(path), "%s/memory.events", dir);
	snprintf(cat, sizeof(cat), "%s/catch", cwd);
	CHECK_OK(mkdir(cat, 0700));
	o.probe = &p;
	o.crash_dir = cat;
	CHECK_OK(pipe(fds));
	rootpid = fork();
	CHECK(rootpid >= 0);
	if (rootpid == 0) {
		for (int i = 0; i < 2; i++)
			if ((kids[i] = fork()) == 0) {
				pause();
				_exit(0);
			}
		if (write(fds[1], kids, sizeof(kids)) != sizeof(kids))
			_exit(2);
		for (;;)
			if (wait(NULL) < 0)
				pause();
	}
	CHECK_EQ(read(fds[0], kids, sizeof(kids)), (ssize_t)sizeof(kids));
	CHECK_OK(cohort_watch_create(&o, &w));
	CHECK_OK(cohort_watch_start(w, 0, rootpid, dir, COHORT_WATCH_CHILD));
	for (int i = 0; i < 50; i++) {
		struct cohort_worker_state ws;

		CHECK_OK(cohort_watch_tick(w));
		CHECK_OK(cohort_watch_worker(w, 0, &ws));
		if (ws.nprocs == 3)
			break;
		usleep(20000);
	}
	/* The first child killed and reaped (its record as the shim writes it), the kill counted. */
	CHECK_OK(kill(kids[0], SIGKILL));
	for (int i = 0; i < 200 && kill(kids[0], 0) == 0; i++)
		usleep(10000);
	snprintf(name, sizeof(name), "exit.%d", (int)kids[0]);
	exit_file(cat, name, kids[0], SIGKILL, rootpid);
	write_file(path, "low 0\nhigh 0\nmax 9\noom 3\noom_kill 3\noom_group_kill 0\n");
	CHECK_EQ(watch_wait(w, 5000), 1);
	usleep(1100000);   /* past the second in which the kernel log could have named it */
	CHECK_OK(cohort_watch_tick(w));
	/* The second vanishes without a record. */
	CHECK_OK(kill(kids[1], SIGKILL));
	for (int i = 0; i < 200 && kill(kids[1], 0) == 0; i++)
		usleep(10000);
	CHECK_OK(cohort_watch_tick(w));
	write_file(path, "low 0\nhigh 0\nmax 9\noom 4\noom_kill 4\noom_group_kill 0\n");
	CHECK_EQ(watch_wait(w, 5000), 1);
	usleep(1100000);
	CHECK_OK(cohort_watch_tick(w));
	while (cohort_watch_next_event(w, &ev) == 1) {
		if (ev.kind != COHORT_EVENT_OOM_KILL)
			continue;
		found++;
		CHECK_EQ(ev.rank, 0);
		CHECK_EQ(cohort_event_num(&ev, "count", 0), found);
		if (found == 1) {
			CHECK_EQ(cohort_event_num(&ev, "process_pid", 0), kids[0]);
			CHECK_STREQ(cohort_event_str(&ev, "evidence"), "reaper_status");
			CHECK_CONTAINS(ev.message, "its parent reaped it killed by SIGKILL");
		} else {
			CHECK_EQ(cohort_event_num(&ev, "process_pid", 0), kids[1]);
			CHECK_STREQ(cohort_event_str(&ev, "evidence"), "vanished");
		}
		CHECK_GE(cohort_event_num(&ev, "process_child", 0), 1);
	}
	CHECK_EQ(found, 2);
	kill(rootpid, SIGKILL);
	CHECK_EQ(waitpid(rootpid, &st, 0), rootpid);
	CHECK_OK(cohort_watch_exited(w, 0, st));
	CHECK_OK(cohort_watch_finish(w));
	/* The root died of SIGKILL with no kill counted for it: not an OOM kill. */
	while (cohort_watch_next_event(w, &ev) == 1)
		CHECK_MSG(ev.kind != COHORT_EVENT_OOM_KILL, "oom_kill at the end: %s", ev.message);
	cohort_watch_free(w);
}
