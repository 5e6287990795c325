/*
 * test-diagnose.c - the diagnosis of recorded runs, without running
 * anything: each recording of tests/fixtures/recordings (README.md there
 * says how each was made) is read with cohort_recording_load and diagnosed
 * with cohort_diagnose, and every finding is checked: its kind, rank, pid
 * and figures, and that no other finding comes with it.
 */
#include "harness.h"

#include <errno.h>
#include <signal.h>

struct diag {
	struct cohort_recording *r;
	struct cohort_finding *f;
	size_t n;
};

static void path_of(const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/tests/fixtures/recordings/%s", test_src_dir(), name);
}

static struct cohort_recording *load_rec(const char *name)
{
	struct cohort_recording *r = NULL;
	char path[4096], err[512];
	int rc;

	path_of(name, path, sizeof(path));
	rc = cohort_recording_load(path, &r, err, sizeof(err));
	CHECK_MSG(rc == 0, "loading %s: %d (%s)", name, rc, err);
	CHECK(r != NULL);
	return r;
}

static struct diag diagnose(const char *name)
{
	struct diag d = { load_rec(name), NULL, 0 };

	CHECK_OK(cohort_diagnose(&d.r, 1, &d.f, &d.n));
	return d;
}

static void diag_free(struct diag *d)
{
	cohort_findings_free(d->f);
	cohort_recording_free(d->r);
}

/* The kinds of all findings, in order, joined by commas. */
static const char *kinds(const struct diag *d)
{
	static char buf[1024];
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < d->n && len < sizeof(buf); i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", i ? "," : "",
		                        cohort_finding_name(d->f[i].kind));
	return buf;
}

/* The findings are exactly these kinds, in this order ("" for none). */
#define CHECK_KINDS(d, want) CHECK_STREQ(kinds(&(d)), want)

static const struct cohort_finding *finding(const struct diag *d, enum cohort_finding_kind kind, int rank)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->f[i].kind == kind && d->f[i].rank == rank)
			return &d->f[i];
	test_fail(__FILE__, __LINE__, "no %s finding for rank %d in: %s", cohort_finding_name(kind), rank,
	          kinds(d));
}

static bool has_ev(const struct cohort_finding *f, const char *name)
{
	for (int i = 0; i < f->nevidence; i++)
		if (strcmp(f->evidence[i].name, name) == 0)
			return true;
	return false;
}

static double ev(const struct cohort_finding *f, const char *name)
{
	for (int i = 0; i < f->nevidence; i++)
		if (strcmp(f->evidence[i].name, name) == 0)
			return f->evidence[i].value;
	test_fail(__FILE__, __LINE__, "the %s finding has no evidence '%s'", cohort_finding_name(f->kind), name);
}

/* Byte figures are whole numbers: exact. */
#define CHECK_EV(f, name, want) CHECK_EQ_U64((uint64_t)ev(f, name), (uint64_t)(want))
/* Times and rates as recorded (printed with 17 digits, read back exactly). */
#define CHECK_EV_DBL(f, name, want) CHECK_NEAR(ev(f, name), want, 1e-9)

TEST(diagnose_finding_names)
{
	static const char *names[] = { NULL, "oom_kill", "budget_kill", "slurm_rss_overcount",
		"shm_exhausted", "segfault", "bus_error", "leak", "cow_unshare", "oversubscribed", "crash",
		"exit_nonzero", "cut", "signalled", "spawn_failed", "shmem_charged", "page_cache",
		"node_imbalance" };

	for (int k = COHORT_FINDING_OOM_KILL; k <= COHORT_FINDING_NODE_IMBALANCE; k++)
		CHECK_STREQ(cohort_finding_name((enum cohort_finding_kind)k), names[k]);
	CHECK_STREQ(cohort_finding_name((enum cohort_finding_kind)99), "unknown");
}

TEST(diagnose_clean_runs_say_nothing)
{
	/* A clean run; a run under both oversubscription thresholds; the node's
	 * swap growing while the job used 0.05% of its limit (another process's
	 * doing). */
	static const char *names[] = { "clean.ndjson", "not-oversubscribed.ndjson",
		"swap-elsewhere.ndjson" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct diag d = diagnose(names[i]);

		CHECK_MSG(d.n == 0, "%s: %s", names[i], kinds(&d));
		CHECK_EQ(d.r->ended, 1);
		diag_free(&d);
	}
}

TEST(diagnose_oom_kill)
{
	struct diag d = diagnose("oom-kill.ndjson");
	const struct cohort_finding *f;

	CHECK_KINDS(d, "oom_kill");
	f = finding(&d, COHORT_FINDING_OOM_KILL, 0);
	CHECK_EQ(f->pid, 17484);
	CHECK_NEAR(f->t, 0.22237234800013539, 1e-9);
	CHECK_EV(f, "limit_bytes", 67108864);
	CHECK_EV(f, "last_est_bytes", 33801216);
	CHECK_EV(f, "peak_pss_bytes", 33801216);
	CHECK(!has_ev(f, "peak_cgroup_bytes"));
	CHECK_STREQ(f->host, "vm");
	CHECK_CONTAINS(f->message, "its memory limit is 64.0 MiB");
	diag_free(&d);

	/* The new supervisor's exit event has the cgroup's exact peak. */
	d = diagnose("oom-kill-peak-cgroup.ndjson");
	CHECK_KINDS(d, "oom_kill");
	f = finding(&d, COHORT_FINDING_OOM_KILL, 0);
	CHECK_EV(f, "peak_cgroup_bytes", 67100672);
	CHECK_EV(f, "last_est_bytes", 33801216);
	CHECK_CONTAINS(f->message, "its cgroup's peak was 64.0 MiB");
	CHECK_EQ_U64(d.r->workers[0].peak_cgroup, 67100672);
	CHECK_EQ_U64(d.r->workers[1].peak_cgroup, 0);
	diag_free(&d);
}

TEST(diagnose_budget_kill)
{
	struct diag d = diagnose("budget-kill.ndjson");
	const struct cohort_finding *f;

	CHECK_KINDS(d, "budget_kill");
	f = finding(&d, COHORT_FINDING_BUDGET_KILL, 1);
	CHECK_EQ(f->pid, 17213);
	CHECK_NEAR(f->t, 0.4104454819998864, 1e-9);
	CHECK_EV(f, "est_bytes", 117789696);
	CHECK_EV(f, "limit_bytes", 104857600);
	CHECK_EV(f, "peak_bytes", 117789696);
	CHECK(!has_ev(f, "total_bytes"));
	CHECK_CONTAINS(f->message, "rank 1 (pid 17213) used 112.3 MiB at 0.4 s, above its 100.0 MiB budget");
	/* 112.3 MiB and a fifth, rounded up, as a floor: it was still growing */
	CHECK_CONTAINS(f->fix, "give it at least 112.3 MiB");
	CHECK_CONTAINS(f->fix, "--mem-per-worker 135M or more");
	CHECK_CONTAINS(f->fix, "it was still growing when stopped (");
	/* 0.4 s of samples, from a few KiB to 113.6 MiB: near 280 MiB/s */
	CHECK(ev(f, "growth_bytes_per_s") > 250.0 * (1 << 20) && ev(f, "growth_bytes_per_s") < 300.0 * (1 << 20));
	/* No leak or copy-on-write finding for it: none is named. */
	CHECK(strstr(f->fix, "leak") == NULL);
	CHECK(strstr(f->fix, "copy-on-write") == NULL);
	diag_free(&d);

	/* The same worker flat in its last step before the stop: no growth claimed. */
	d = diagnose("budget-kill-flat.ndjson");
	CHECK_KINDS(d, "budget_kill");
	f = finding(&d, COHORT_FINDING_BUDGET_KILL, 1);
	CHECK_CONTAINS(f->fix, "give it at least 112.3 MiB");
	CHECK(strstr(f->fix, "growing") == NULL);
	CHECK(!has_ev(f, "growth_bytes_per_s"));
	diag_free(&d);
}

/* A Pool's worker grew, not the worker's root: the finding names the pool worker's pid and command. */
TEST(diagnose_budget_kill_names_the_process_that_grew)
{
	struct diag d = diagnose("pool-grower.ndjson");
	const struct cohort_finding *f;

	CHECK_KINDS(d, "budget_kill");
	f = finding(&d, COHORT_FINDING_BUDGET_KILL, 0);
	CHECK_EQ(f->pid, 15245);   /* the process that grew, not the root (15242) */
	CHECK_EV(f, "process_pid", 15245);
	CHECK_EV(f, "process_growth_bytes", 370094080);
	CHECK_CONTAINS(f->message, "most of it is pid 15245 (python3), a process rank 0 started, which grew by 352.9 MiB");
	diag_free(&d);
}

TEST(diagnose_slurm_rss_overcount_killed_after_one_sample)
{
	struct diag d = diagnose("slurm-cut-single.ndjson");
	const struct cohort_finding *f;

	CHECK_EQ(d.r->nsamples, 1);
	CHECK_EQ(d.r->ended, 0);
	CHECK_STREQ(d.r->mem_limit_source, "scontrol show job");
	CHECK_KINDS(d, "slurm_rss_overcount,cut");
	f = finding(&d, COHORT_FINDING_SLURM_RSS_OVERCOUNT, -1);
	CHECK_EQ(f->pid, 0);
	CHECK_EV(f, "rss_sum_bytes", 1610612736);
	CHECK_EV(f, "pss_sum_bytes", 335544320);
	CHECK_EV(f, "limit_bytes", 1048576000);
	CHECK_EV_DBL(f, "first_seen_s", 1.0);
	CHECK_EV_DBL(f, "sample_t_s", 1.0);
	CHECK_NEAR(f->t, 1.0, 1e-9);
	CHECK_CONTAINS(f->message, "killed this one");
	CHECK_CONTAINS(f->message, "(scontrol show job)");
	CHECK(strstr(f->message, "assumed") == NULL);
	CHECK_CONTAINS(f->fix, "UsePss");
	/* 1.5 GiB and a tenth */
	CHECK_CONTAINS(f->fix, "--mem=1690M");
	diag_free(&d);

	/* No slurm_config in the header: jobacct_gather/linux assumed, and said. */
	d = diagnose("slurm-cut-single-noconfig.ndjson");
	CHECK_KINDS(d, "slurm_rss_overcount,cut");
	f = finding(&d, COHORT_FINDING_SLURM_RSS_OVERCOUNT, -1);
	CHECK_EV(f, "rss_sum_bytes", 1610612736);
	CHECK_CONTAINS(f->message, "jobacct_gather/linux (assumed");
	diag_free(&d);

	/* The supervisor got SIGTERM and ended normally: judged on the last sample too. */
	d = diagnose("slurm-sigterm-single.ndjson");
	CHECK_KINDS(d, "slurm_rss_overcount,signalled");
	f = finding(&d, COHORT_FINDING_SLURM_RSS_OVERCOUNT, -1);
	CHECK_EV(f, "rss_sum_bytes", 1610612736);
	CHECK_EV(f, "pss_sum_bytes", 335544320);
	CHECK_CONTAINS(f->message, "stopped this one (cohort got SIGTERM at 1.2 s)");
	diag_free(&d);
}

TEST(diagnose_slurm_rss_overcount_only_when_slurm_counts_rss)
{
	/* UsePss already set, or the cgroup plugin: SLURM does not count shared
	 * pages per process, so nothing to say (and never "use UsePss" where it
	 * is set); the PSS sum over the limit too: a real excess. */
	static const char *names[] = { "slurm-cut-single-usepss.ndjson",
		"slurm-cut-single-cgroup.ndjson", "slurm-cut-single-pss-over.ndjson" };
	const struct cohort_finding *f;
	struct diag d;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		d = diagnose(names[i]);
		CHECK_MSG(strcmp(kinds(&d), "cut") == 0, "%s: %s", names[i], kinds(&d));
		diag_free(&d);
	}
	/* NoShared takes only file and shmem pages out of each RSS: pages shared
	 * copy-on-write after fork are still charged once per process. */
	d = diagnose("slurm-cut-single-noshared.ndjson");
	CHECK_KINDS(d, "slurm_rss_overcount,cut");
	f = finding(&d, COHORT_FINDING_SLURM_RSS_OVERCOUNT, -1);
	CHECK_CONTAINS(f->fix, "UsePss");
	diag_free(&d);
}

TEST(diagnose_slurm_rss_overcount_peak_and_notice)
{
	struct diag d = diagnose("slurm-cut-peak.ndjson");
	const struct cohort_finding *f;

	/* Cut, but the last sample's sum is under the limit: its largest sum, first over at 2 s. */
	CHECK_KINDS(d, "slurm_rss_overcount,cut");
	f = finding(&d, COHORT_FINDING_SLURM_RSS_OVERCOUNT, -1);
	CHECK_EV(f, "rss_sum_bytes", 1500000000);
	CHECK_EV(f, "pss_sum_bytes", 320000000);
	CHECK_EV_DBL(f, "first_seen_s", 2.0);
	CHECK_EV_DBL(f, "sample_t_s", 3.0);
	CHECK_NEAR(f->t, 2.0, 1e-9);
	CHECK_CONTAINS(f->message, "reached 1.4 GiB");
	diag_free(&d);

	/* A real run under a fake SLURM allocation that ended normally, with the supervisor's notice. */
	d = diagnose("slurm-rss-risk.ndjson");
	CHECK_KINDS(d, "slurm_rss_overcount");
	f = finding(&d, COHORT_FINDING_SLURM_RSS_OVERCOUNT, -1);
	CHECK_EV(f, "rss_sum_bytes", 1577476096);
	CHECK_EV(f, "pss_sum_bytes", 315106304);
	CHECK_EV(f, "limit_bytes", 1048576000);
	CHECK_EV_DBL(f, "first_seen_s", 0.90938549100019372);
	CHECK_CONTAINS(f->message, "kills such a job");
	CHECK_CONTAINS(f->message, "(assumed");
	CHECK_CONTAINS(f->fix, "--mem=1655M");
	diag_free(&d);
}

TEST(diagnose_shm_exhausted)
{
	struct diag d = diagnose("shm-full.ndjson");
	const struct cohort_finding *f;

	CHECK_KINDS(d, "shm_exhausted");
	f = finding(&d, COHORT_FINDING_SHM_EXHAUSTED, 0);
	CHECK_EQ(f->pid, 17706);
	CHECK_EV(f, "shm_size_bytes", 33554432);
	CHECK_EV(f, "shm_free_start_bytes", 33554432);
	CHECK_EV(f, "fault_addr", 0x7fcf4b49c000ULL);
	CHECK_CONTAINS(f->message, "in /dev/shm/shm-full-example.17706");
	CHECK_CONTAINS(f->fix, "posix_fallocate");
	CHECK_CONTAINS(f->backtrace, "shm-full.c:70");
	diag_free(&d);
}

TEST(diagnose_segfault_and_bus_error)
{
	struct diag d = diagnose("segfault.ndjson");
	const struct cohort_finding *f;

	CHECK_KINDS(d, "segfault");
	f = finding(&d, COHORT_FINDING_SEGFAULT, 0);
	CHECK_EQ(f->pid, 17647);
	CHECK_EV(f, "fault_addr", 0x5a3f808f5060ULL);
	CHECK_NEAR(f->t, 0.22445450500003972, 1e-9);
	CHECK_CONTAINS(f->message, "which no mapping holds");
	/* The shim's own frame and the signal trampoline are left out: the fault first. */
	CHECK_MSG(strncmp(f->backtrace, "store at ", 9) == 0, "backtrace:\n%s", f->backtrace);
	CHECK(strstr(f->backtrace, "libcohort-catch.so") == NULL);
	diag_free(&d);

	d = diagnose("bus-error.ndjson");
	CHECK_KINDS(d, "bus_error");
	f = finding(&d, COHORT_FINDING_BUS_ERROR, 0);
	CHECK_EQ(f->pid, 21472);
	CHECK_EV(f, "fault_addr", 0x7f82f1d9b064ULL);
	CHECK_CONTAINS(f->message, "in /tmp/diagcap/mapped");
	diag_free(&d);
}

TEST(diagnose_leak_quotes_final_figures)
{
	struct diag d = diagnose("leak.ndjson");
	const struct cohort_finding *f;

	/* Rank 0 leaks, rank 1 does not; no copy-on-write in a leak. */
	CHECK_KINDS(d, "leak");
	f = finding(&d, COHORT_FINDING_LEAK, 0);
	CHECK_EQ(f->pid, 17860);
	CHECK_EV_DBL(f, "rate_bytes_per_s", 8416008.0428381339);
	CHECK_EV_DBL(f, "window_s", 10.006378269999914);
	/* The exit event's figure, not the notice's 108768256 at 13 s. */
	CHECK_EV(f, "current_bytes", 134005760);
	CHECK_EV(f, "peak_bytes", 134005760);
	CHECK_EV_DBL(f, "eta_s", 1424.9499994484086);
	CHECK_EV_DBL(f, "first_seen_s", 13.008008201999928);
	CHECK_NEAR(f->t, 13.008008201999928, 1e-9);
	CHECK_CONTAINS(f->message, "it ended using 127.8 MiB, peak 127.8 MiB");
	CHECK_CONTAINS(f->message, "first seen at 13.0 s");
	/* The figures agree: the rise is the rate times the time quoted (63162880 B / 8416008 B/s = 7.5 s). */
	CHECK_EV(f, "floor_rise_bytes", 90177536 - 27017216);
	CHECK_CONTAINS(f->message, "rose from 25.8 MiB to 86.0 MiB, by 60.2 MiB in 7.5 s (8.0 MiB/s, "
	               "measured in a 10 s window");
	CHECK_EQ_U64(d.r->workers[0].last_est, 134005760);
	CHECK_EQ_U64(d.r->workers[0].cow_copied, 8192);
	diag_free(&d);

	/* Cut before the workers ended (and mid-line): the last sample's figures. */
	d = diagnose("leak-cut.ndjson");
	CHECK_EQ(d.r->cut, 1);
	CHECK_KINDS(d, "leak,cut");
	f = finding(&d, COHORT_FINDING_LEAK, 0);
	CHECK_EV(f, "current_bytes", 125559808);
	CHECK_EV(f, "peak_bytes", 125559808);
	CHECK_EV_DBL(f, "first_seen_s", 13.008008201999928);
	CHECK_CONTAINS(f->message, "it used 119.7 MiB");
	CHECK_EQ_U64(d.r->workers[0].last_rss, 127021056);
	diag_free(&d);
}

TEST(diagnose_cow_unshare_quotes_final_total)
{
	struct diag d = diagnose("cow-unshare.ndjson");
	const struct cohort_finding *f;

	CHECK_KINDS(d, "cow_unshare");
	f = finding(&d, COHORT_FINDING_COW_UNSHARE, 0);
	CHECK_EQ(f->pid, 17859);
	/* The exit event's total, not the 55201792 of the notice at 0.44 s. */
	CHECK_EV(f, "copied_bytes", 347078656);
	CHECK_EV(f, "peak_uss_bytes", 629264384);
	CHECK_EV_DBL(f, "first_seen_s", 0.43885299299995495);
	CHECK_NEAR(f->t, 0.43885299299995495, 1e-9);
	CHECK_CONTAINS(f->message, "copied 331.0 MiB");
	/* True whether the workers write the shared data or only read it. */
	CHECK_CONTAINS(f->fix, "if they write the data they share after fork, budget for the copies "
	               "(here 331.0 MiB");
	CHECK_CONTAINS(f->fix, "multiprocessing.shared_memory");
	CHECK_CONTAINS(f->fix, "MAP_SHARED");
	CHECK_CONTAINS(f->fix, "if they only read it, the copies come from reference counts");
	CHECK(strstr(f->fix, "instead of many small objects") == NULL);
	diag_free(&d);

	/* Cut before the exit: the last sample's cumulative total. */
	d = diagnose("cow-unshare-cut.ndjson");
	CHECK_KINDS(d, "cow_unshare,cut");
	f = finding(&d, COHORT_FINDING_COW_UNSHARE, 0);
	CHECK_EV(f, "copied_bytes", 347074560);
	CHECK_EQ(d.r->workers[0].ended, 0);
	diag_free(&d);
}

TEST(diagnose_oversubscribed)
{
	struct diag d = diagnose("oversubscribed-swap.ndjson");
	const struct cohort_finding *f;

	/* The job's own cgroup swapped. */
	CHECK_KINDS(d, "oversubscribed");
	f = finding(&d, COHORT_FINDING_OVERSUBSCRIBED, -1);
	CHECK_EV(f, "swap_growth_bytes", 240ULL << 20);
	CHECK_EV(f, "cgroup_swap_growth_bytes", 240ULL << 20);
	CHECK_EV_DBL(f, "psi_some_avg10_pct", 4.0);
	CHECK_NEAR(f->t, -1, 1e-9);
	CHECK_CONTAINS(f->message, "240.0 MiB of the job's memory went to swap");
	diag_free(&d);

	/* The node's swap grew while the job filled 95% of its limit. */
	d = diagnose("oversubscribed-full.ndjson");
	CHECK_KINDS(d, "oversubscribed");
	f = finding(&d, COHORT_FINDING_OVERSUBSCRIBED, -1);
	CHECK_EV(f, "swap_growth_bytes", 240ULL << 20);
	CHECK_EV(f, "cgroup_swap_growth_bytes", 0);
	CHECK_NEAR(ev(f, "limit_fill_pct"), 95.0, 0.01);
	CHECK_CONTAINS(f->message, "they used up to 95% of their limit while the node's swap in use "
	               "rose by 240.0 MiB");
	diag_free(&d);

	d = diagnose("oversubscribed-psi.ndjson");
	CHECK_KINDS(d, "oversubscribed");
	f = finding(&d, COHORT_FINDING_OVERSUBSCRIBED, -1);
	CHECK_EV(f, "swap_growth_bytes", 0);
	CHECK_EV_DBL(f, "psi_some_avg10_pct", 37.25);
	CHECK_NEAR(f->t, 3.0, 1e-9);
	CHECK(strstr(f->message, "went to swap") == NULL);
	diag_free(&d);
}

TEST(diagnose_crash_and_exit_nonzero)
{
	struct diag d = diagnose("abort-and-exit3.ndjson");
	const struct cohort_finding *f;

	/* Most important first: the crash, then the exit. */
	CHECK_KINDS(d, "crash,exit_nonzero");
	f = finding(&d, COHORT_FINDING_CRASH, 0);
	CHECK_EQ(f->pid, 17670);
	CHECK_EV(f, "signal", 6);
	CHECK_CONTAINS(f->fix, "aborted itself");
	f = finding(&d, COHORT_FINDING_EXIT_NONZERO, 1);
	CHECK_EQ(f->pid, 17671);
	CHECK_EV(f, "exit_code", 3);
	diag_free(&d);

	/* An old recording: no errno in spawn_failed, rank 1 never started. */
	d = diagnose("spawn-failed.ndjson");
	CHECK_KINDS(d, "spawn_failed");
	f = finding(&d, COHORT_FINDING_SPAWN_FAILED, 0);
	CHECK_EQ(f->pid, 20840);
	CHECK_CONTAINS(f->message, "rank 0 could not be started at 0.0 s: cannot run '/nonexistent/prog'");
	CHECK_CONTAINS(f->message, "rank 1 was not started");
	CHECK(!has_ev(f, "errno"));
	CHECK_CONTAINS(f->fix, "check the command");
	diag_free(&d);
}

TEST(diagnose_spawn_failure_comes_first_and_the_stopped_ranks_did_not_crash)
{
	/* ulimit -n 64: ranks 0-12 started, rank 13 failed with EMFILE, cohort SIGKILLed 0-12. */
	struct diag d = diagnose("spawn-emfile.ndjson");
	const struct cohort_finding *f;

	CHECK_KINDS(d, "spawn_failed");
	f = finding(&d, COHORT_FINDING_SPAWN_FAILED, 13);
	CHECK_EV(f, "errno", EMFILE);
	CHECK_EV(f, "stopped_workers", 13);
	CHECK_EV(f, "unstarted_workers", 6);
	CHECK_CONTAINS(f->message, "rank 13 could not be started at 0.0 s: cannot run 'sleep': Too many open files");
	CHECK_CONTAINS(f->message, "so cohort stopped ranks 0-12, already started (they did not crash), "
	               "and ranks 14-19 were not started");
	CHECK_CONTAINS(f->fix, "raise `ulimit -n`");
	CHECK_CONTAINS(f->fix, "start fewer workers");
	diag_free(&d);
}

TEST(diagnose_signalled_supervisor)
{
	struct diag d;
	const struct cohort_finding *f;

	/* kill -INT from a shell on `cohort run -n 2 -- sleep 60`: exit 130, never "none". */
	d = diagnose("sigint-kill.ndjson");
	CHECK_EQ(d.r->exit_status, 130);
	CHECK_KINDS(d, "signalled");
	f = finding(&d, COHORT_FINDING_SIGNALLED, -1);
	CHECK_EQ(f->pid, 0);
	CHECK_NEAR(f->t, 2.0, 1e-9);
	CHECK_EV(f, "signal", SIGINT);
	CHECK_EV(f, "sender_pid", 3100);
	CHECK_EV(f, "sender_uid", 1000);
	CHECK_EV(f, "ended_by_signal", 2);
	CHECK_EV(f, "killed_after_grace", 0);
	CHECK_CONTAINS(f->message, "cohort got SIGINT from pid 3100 (uid 1000) at 2.0 s and passed it "
	               "to the workers; ranks 0-1 ended by it");
	CHECK_CONTAINS(f->fix, "pid 3100");
	CHECK(strstr(f->fix, "SLURM") == NULL);
	diag_free(&d);

	/* Two quick SIGTERMs: SIGKILL at the second, not after the grace; not crashes. */
	d = diagnose("sigterm-twice.ndjson");
	CHECK_KINDS(d, "signalled");
	f = finding(&d, COHORT_FINDING_SIGNALLED, -1);
	CHECK_EV(f, "killed_at_second_signal", 2);
	CHECK_EV(f, "killed_after_grace", 0);
	CHECK_EV_DBL(f, "second_signal_s", 2.3);
	CHECK_CONTAINS(f->message, "a second signal at 2.3 s");
	CHECK_CONTAINS(f->message, "ranks 0-1 were killed with SIGKILL at the second signal");
	diag_free(&d);

	/* The workers ignored SIGTERM and got SIGKILL after the grace (no sender known). */
	d = diagnose("sigterm-escalated-signal.ndjson");
	CHECK_KINDS(d, "signalled");
	f = finding(&d, COHORT_FINDING_SIGNALLED, -1);
	CHECK_EV(f, "sender_pid", -1);
	CHECK_EV(f, "killed_after_grace", 2);
	CHECK_CONTAINS(f->message, "cohort got SIGTERM at 0.7 s and passed it to the workers; ranks 0-1 "
	               "ignored it and were killed with SIGKILL after the grace");
	CHECK_CONTAINS(f->fix, "--grace");
	diag_free(&d);

	/* Under SLURM, three ways to end: the time limit or scancel, and what to do. */
	d = diagnose("slurm-sigterm-mixed.ndjson");
	CHECK_KINDS(d, "signalled");
	f = finding(&d, COHORT_FINDING_SIGNALLED, -1);
	CHECK_EV(f, "ended_by_signal", 1);
	CHECK_EV(f, "killed_after_grace", 1);
	CHECK_EV(f, "exited_on_their_own", 1);
	CHECK_CONTAINS(f->message, "; rank 1 ended by it; rank 0 ignored it and was killed with SIGKILL "
	               "after the grace; rank 2 exited on its own (status 1)");
	CHECK_CONTAINS(f->fix, "time limit (--time)");
	CHECK_CONTAINS(f->fix, "scancel");
	CHECK_CONTAINS(f->fix, "sbatch --signal");
	CHECK_CONTAINS(f->fix, "sacct -j 991");
	CHECK_CONTAINS(f->fix, "the worker that did not end on SIGTERM lost what it had not saved");
	diag_free(&d);

	/* The old form (a warning) and the new one, workers ended by SIGTERM. */
	static const char *names[] = { "sigterm-old.ndjson", "sigterm-signal.ndjson", "sigterm-escalated.ndjson" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		d = diagnose(names[i]);
		CHECK_MSG(strcmp(kinds(&d), "signalled") == 0, "%s: %s", names[i], kinds(&d));
		f = finding(&d, COHORT_FINDING_SIGNALLED, -1);
		CHECK_EV(f, "killed_after_grace", i == 2 ? 2 : 0);
		CHECK_EV(f, "ended_by_signal", i == 2 ? 0 : 2);
		diag_free(&d);
	}
	d = diagnose("sigterm-signal.ndjson");
	CHECK_CONTAINS(finding(&d, COHORT_FINDING_SIGNALLED, -1)->message,
	               "cohort got SIGTERM from pid 4242 (uid 0) at 0.7 s");
	diag_free(&d);

	/* A worker ended by a SIGTERM cohort did not send. */
	d = diagnose("worker-sigterm-outside.ndjson");
	CHECK_KINDS(d, "signalled");
	f = finding(&d, COHORT_FINDING_SIGNALLED, 1);
	CHECK_EQ(f->pid, 5002);
	CHECK_EV(f, "signal", SIGTERM);
	CHECK_CONTAINS(f->message, "rank 1 (pid 5002) was ended by SIGTERM at 2.0 s, which cohort did not send");
	diag_free(&d);
}

TEST(diagnose_sigkill_is_a_crash_unless_the_supervisor_escalated)
{
	/* The same run without the supervisor's signal notice: SIGKILL from outside. */
	struct diag d = diagnose("sigkill-from-outside.ndjson");
	const struct cohort_finding *f;

	CHECK_KINDS(d, "crash,crash");
	f = finding(&d, COHORT_FINDING_CRASH, 0);
	CHECK_EQ(f->pid, 20843);
	CHECK_EV(f, "signal", 9);
	f = finding(&d, COHORT_FINDING_CRASH, 1);
	CHECK_EQ(f->pid, 20844);
	CHECK_EV(f, "signal", 9);
	CHECK_CONTAINS(f->message, "not by the kernel's OOM killer");
	diag_free(&d);
}

TEST(diagnose_signal_event_is_read)
{
	struct cohort_recording *r = load_rec("sigterm-signal.ndjson");
	const struct cohort_rec_event *e = NULL;

	CHECK_EQ(r->signal, 15);
	CHECK_STREQ(r->signal_name, "SIGTERM");
	CHECK_EQ(r->signal_sender_pid, 4242);
	CHECK_EQ(r->signal_sender_uid, 0);
	CHECK_NEAR(r->signal_t, 0.70034916300005534, 1e-9);
	for (size_t i = 0; i < r->nevents; i++)
		if (strcmp(r->events[i].kind, "signal") == 0)
			e = &r->events[i];
	CHECK(e != NULL);
	CHECK_EQ(e->rank, -1);
	CHECK_STREQ(e->signal_name, "SIGTERM");
	CHECK_EQ((long long)cohort_rec_event_num(e, "signal", 0), 15);
	CHECK_EQ((long long)cohort_rec_event_num(e, "sender_pid", 0), 4242);
	cohort_recording_free(r);

	/* No sender in the event: unknown, not 0. */
	r = load_rec("sigterm-escalated-signal.ndjson");
	CHECK_EQ(r->signal, 15);
	CHECK_EQ(r->signal_sender_pid, -1);
	CHECK_EQ(r->signal_sender_uid, -1);
	cohort_recording_free(r);

	/* The old form is a warning: the reader does not interpret it (the diagnosis may). */
	r = load_rec("sigterm-old.ndjson");
	CHECK_EQ(r->signal, 0);
	CHECK_STREQ(r->signal_name, "");
	cohort_recording_free(r);
}

TEST(diagnose_cut_recording)
{
	struct diag d = diagnose("cut-sigkill.ndjson");
	const struct cohort_finding *f;

	CHECK_KINDS(d, "cut");
	f = finding(&d, COHORT_FINDING_CUT, -1);
	CHECK_EV_DBL(f, "duration_s", 0.61552585000004001);
	CHECK_CONTAINS(f->message, "(SIGKILL, or its machine went down)");
	CHECK(strstr(f->message, "it had got") == NULL);
	/* The only finding: no "findings above" to point at. */
	CHECK(strstr(f->fix, "above") == NULL);
	CHECK_CONTAINS(f->fix, "the recording shows nothing wrong with the workers until then");
	/* The workers were running at the end. */
	CHECK_EQ(d.r->workers[0].ended, 0);
	CHECK_EQ(d.r->workers[1].ended, 0);
	CHECK_EQ(d.r->workers[0].pid, 20341);
	diag_free(&d);

	/* Under SLURM: says so. */
	d = diagnose("slurm-cut-single-usepss.ndjson");
	f = finding(&d, COHORT_FINDING_CUT, -1);
	CHECK_CONTAINS(f->message, "SLURM ends a step this way");
	diag_free(&d);

	/* With another finding before it: that one is pointed at. */
	d = diagnose("slurm-cut-single.ndjson");
	CHECK_CONTAINS(finding(&d, COHORT_FINDING_CUT, -1)->fix, "the findings above tell what the workers were doing");
	diag_free(&d);
}

TEST(diagnose_merges_recordings)
{
	struct cohort_recording *recs[2] = { load_rec("cow-unshare.ndjson"), load_rec("leak.ndjson") };
	struct diag d = { NULL, NULL, 0 };

	CHECK_OK(cohort_diagnose(recs, 2, &d.f, &d.n));
	/* Ordered by kind: the leak before the copy-on-write, whatever the order given. */
	CHECK_KINDS(d, "leak,cow_unshare");
	CHECK_EQ(d.f[0].pid, 17860);
	CHECK_EQ(d.f[1].pid, 17859);
	cohort_findings_free(d.f);
	cohort_recording_free(recs[0]);
	cohort_recording_free(recs[1]);
}

TEST(diagnose_bad_files_are_refused_with_a_reason)
{
	static const struct { const char *name; int rc; const char *want; } cases[] = {
		{ "empty.ndjson", COHORT_EBADREC, "is empty" },
		{ "format-too-high.ndjson", COHORT_EBADREC, "recording format 2, this cohort reads format 1" },
		{ "not-a-recording.ndjson", COHORT_EBADREC, "is not a cohort recording" },
		{ "no-such-file.ndjson", -ENOENT, "No such file or directory" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cohort_recording *r = NULL;
		char path[4096], err[512];

		path_of(cases[i].name, path, sizeof(path));
		CHECK_EQ(cohort_recording_load(path, &r, err, sizeof(err)), cases[i].rc);
		CHECK(r == NULL);
		CHECK_CONTAINS(err, cases[i].want);
		CHECK_CONTAINS(err, cases[i].name);
	}
}

TEST(diagnose_odd_files_give_partial_results)
{
	struct diag d = diagnose("header-only.ndjson");

	CHECK_EQ(d.r->nworkers, 2);
	CHECK_EQ(d.r->nsamples, 0);
	CHECK_KINDS(d, "cut");
	diag_free(&d);

	/* Garbage between good lines: counted and skipped; ranks out of range dropped. */
	d = diagnose("garbage-lines.ndjson");
	CHECK_EQ(d.r->bad_lines, 5);
	CHECK_EQ(d.r->ended, 1);
	CHECK_EQ(d.r->exit_status, 4);
	CHECK_KINDS(d, "exit_nonzero");
	CHECK_EQ(finding(&d, COHORT_FINDING_EXIT_NONZERO, 1)->pid, 7);
	CHECK_EQ(d.r->workers[0].ended, 0);
	diag_free(&d);

	/* Numbers too large for their meaning: none taken as a figure. */
	d = diagnose("huge-numbers.ndjson");
	CHECK_EQ(d.r->bad_lines, 1);       /* an integer past 2^64 is not JSON jansson reads */
	CHECK_EQ_U64(d.r->mem_limit, 0);
	CHECK_EQ(d.r->workers[0].exit_code, -1);
	CHECK_EQ_U64(d.r->workers[0].peak_cgroup, 0);
	CHECK_NEAR(d.r->samples[0].psi_some10, -1, 0);
	CHECK_KINDS(d, "");
	diag_free(&d);

	/* Negative numbers: no negative sizes, signals or exit codes. */
	d = diagnose("negative-numbers.ndjson");
	CHECK_EQ(d.r->workers[0].signal, 0);
	CHECK_EQ(d.r->workers[1].signal, 0);
	CHECK_EQ(d.r->workers[0].exit_code, -1);
	CHECK_EQ_U64(d.r->workers[0].peak_rss, 0);
	CHECK_EQ_U64(d.r->mem_limit, 0);
	CHECK_EQ(d.r->signal, -1);         /* a signal event whose number is not one */
	CHECK_KINDS(d, "signalled,leak,cow_unshare");
	CHECK_EV(finding(&d, COHORT_FINDING_SIGNALLED, -1), "signal", 0);
	CHECK_EV(finding(&d, COHORT_FINDING_LEAK, 0), "rate_bytes_per_s", 0);
	CHECK_EV(finding(&d, COHORT_FINDING_LEAK, 0), "current_bytes", 0);
	CHECK_EV(finding(&d, COHORT_FINDING_COW_UNSHARE, 0), "copied_bytes", 0);
	diag_free(&d);

	/* Every field missing: what the lines say, with no figure invented. */
	d = diagnose("missing-fields.ndjson");
	CHECK_KINDS(d, "oom_kill,segfault,signalled,leak,cow_unshare,cut");
	CHECK_EV(finding(&d, COHORT_FINDING_OOM_KILL, 0), "limit_bytes", 0);
	CHECK_CONTAINS(finding(&d, COHORT_FINDING_OOM_KILL, 0)->message, "limit is not in the recording");
	CHECK_CONTAINS(finding(&d, COHORT_FINDING_CUT, -1)->message, "it had got a signal");
	diag_free(&d);
}

/* Copy-on-write by the worker cgroup's count: the exit's total, the notice's cgroup figures. */
TEST(diagnose_cow_by_the_worker_cgroup)
{
	struct diag d = diagnose("cow-cgroup.ndjson");
	const struct cohort_finding *f;

	CHECK_KINDS(d, "cow_unshare");
	f = finding(&d, COHORT_FINDING_COW_UNSHARE, 0);
	CHECK_EQ(f->pid, 26317);
	CHECK_EV(f, "copied_bytes", 419495936);
	CHECK_EV(f, "cgroup_anon_bytes", 251883520);
	CHECK_EV(f, "cgroup_usage_bytes", 253493248);
	CHECK_EV(f, "rss_sum_bytes", 632713216);
	CHECK_EV(f, "allocated_bytes", 209874944);
	CHECK_EV_DBL(f, "first_seen_s", 3.259886401001495);
	CHECK_CONTAINS(f->message, "copy-on-write, by its cgroup's count");
	CHECK_CONTAINS(f->message, "up to 400.1 MiB of anonymous memory beyond what its processes allocated");
	CHECK_CONTAINS(f->message, "RSS sum was 603.4 MiB");
	/* The fix of copy-on-write, whichever counted it. */
	CHECK_CONTAINS(f->fix, "budget for the copies (here 400.1 MiB");
	CHECK_CONTAINS(f->fix, "MAP_SHARED");
	CHECK_EQ(d.r->workers[0].used_by_cgroup, 1);
	CHECK_EQ_U64(d.r->workers[0].last_used, 630849536);
	CHECK_EQ_U64(d.r->workers[0].peak_used, 630980608);
	diag_free(&d);
}

/* The kernel killed the worker at its cgroup's limit: the finding quotes the cgroup, not the estimate. */
TEST(diagnose_oom_kill_quotes_the_worker_cgroup)
{
	struct diag d = diagnose("oom-kill-cow-cgroup.ndjson");
	const struct cohort_finding *f;

	CHECK_KINDS(d, "oom_kill,cow_unshare");
	f = finding(&d, COHORT_FINDING_OOM_KILL, 0);
	CHECK_CONTAINS(f->message, "its memory limit is 450.0 MiB and its cgroup last held 424.2 MiB (cgroup)");
	CHECK_CONTAINS(f->message, "its cgroup's peak was 450.0 MiB");
	CHECK(strstr(f->message, "last used about") == NULL);
	CHECK_EV(f, "last_cgroup_bytes", 444858368);
	CHECK_EV(f, "last_used_bytes", 444858368);
	CHECK_EV(f, "last_est_bytes", 497111040);
	CHECK_EV(f, "peak_cgroup_bytes", 471859200);
	f = finding(&d, COHORT_FINDING_COW_UNSHARE, 0);
	CHECK_EV(f, "copied_bytes", 229355520);
	CHECK_CONTAINS(f->message, "by its cgroup's count");
	diag_free(&d);
}

/* Shared memory and page cache in a worker's cgroup: each its own finding, figures and fix. */
TEST(diagnose_shmem_and_page_cache_of_a_worker_cgroup)
{
	struct diag d = diagnose("cgroup-shmem-cache.ndjson");
	const struct cohort_finding *f;

	CHECK_KINDS(d, "shmem_charged,page_cache");
	f = finding(&d, COHORT_FINDING_SHMEM_CHARGED, 0);
	CHECK_EV(f, "cgroup_shmem_bytes", 41943040);
	CHECK_EV(f, "limit_bytes", 167772160);
	CHECK_EV(f, "shm_size_bytes", 25276059648ULL);
	CHECK_CONTAINS(f->message, "40.0 MiB of shared memory");
	CHECK_CONTAINS(f->message, "against its 160.0 MiB limit; /dev/shm is 23.5 GiB");
	CHECK_CONTAINS(f->fix, "size the segments against both /dev/shm (23.5 GiB) and the worker's "
	               "memory limit (160.0 MiB)");
	f = finding(&d, COHORT_FINDING_PAGE_CACHE, 0);
	CHECK_EV(f, "page_cache_bytes", 105504768);
	CHECK_EV(f, "inactive_file_bytes", 104857600);
	CHECK_EV(f, "cgroup_usage_bytes", 151977984);
	CHECK_CONTAINS(f->message, "144.9 MiB of its 160.0 MiB limit");
	CHECK_CONTAINS(f->message, "without the inactive part it used 44.9 MiB");
	CHECK_CONTAINS(f->fix, "page cache is reclaimable");
	CHECK_CONTAINS(f->fix, "only when it cannot be dropped");
	diag_free(&d);
}

/* ---- deaths below a worker's root ---- */

/* A program forks 4 children, child 3 segfaults: the finding names it, its backtrace, its parent. */
TEST(diagnose_child_segfault_names_the_child)
{
	struct diag d = diagnose("child-segfault.ndjson");
	const struct cohort_finding *f;

	CHECK_KINDS(d, "segfault,exit_nonzero");
	f = finding(&d, COHORT_FINDING_SEGFAULT, 0);
	CHECK_EQ(f->pid, 25551);
	CHECK_EV(f, "process_pid", 25551);
	CHECK_EV(f, "process_child", 3);
	CHECK_EV(f, "signal", SIGSEGV);
	CHECK_EV(f, "deaths", 1);
	CHECK(!has_ev(f, "process_mpi_rank"));
	CHECK_CONTAINS(f->message, "pid 25551 (runner), child 3 of rank 0, not the worker's root (pid 25548), "
	               "died of signal 11 (SIGSEGV) at address 0x0, which no mapping holds; its parent, "
	               "pid 25548, reaped it");
	CHECK_CONTAINS(f->backtrace, "helper_children");
	CHECK(strstr(f->backtrace, "libcohort-catch.so") == NULL);
	CHECK_EQ(finding(&d, COHORT_FINDING_EXIT_NONZERO, 0)->pid, 25548);
	diag_free(&d);
}

/* The same child 500 times over (a pool that replaces its dead workers): one finding, the count. */
TEST(diagnose_restarted_children_one_finding_with_the_count)
{
	struct diag d = diagnose("children-restarted.ndjson");
	const struct cohort_finding *f;

	CHECK_KINDS(d, "segfault,exit_nonzero");
	f = finding(&d, COHORT_FINDING_SEGFAULT, 0);
	CHECK_EQ(f->pid, 25551);
	CHECK_EV(f, "deaths", 500);
	CHECK_CONTAINS(f->message, "; 500 processes of rank 0 died of it, this one first");
	diag_free(&d);
}

/* A DataLoader-like worker (MPI rank 2) killed by SIGBUS in /dev/shm, full: shm_exhausted, named. */
TEST(diagnose_child_sigbus_with_shm_full_is_shm_exhausted)
{
	struct diag d = diagnose("child-sigbus-shm.ndjson");
	const struct cohort_finding *f;

	CHECK_KINDS(d, "shm_exhausted,exit_nonzero");
	f = finding(&d, COHORT_FINDING_SHM_EXHAUSTED, 0);
	CHECK_EQ(f->pid, 25551);
	CHECK_EV(f, "process_mpi_rank", 2);
	CHECK_EV(f, "shm_free_end_bytes", 1048576);
	CHECK_CONTAINS(f->message, "pid 25551 (python3, MPI rank 2), child 3 of rank 0 died of SIGBUS (bus "
	               "error) at address 0x0, in /dev/shm/torch_1234_567 (deleted)");
	CHECK_CONTAINS(f->fix, "/dev/shm");
	diag_free(&d);
}

/* stress-ng's workers OOM-killed and restarted: one finding, the count, the first victim, the evidence. */
TEST(diagnose_oom_kills_below_the_root_counted_and_named)
{
	struct diag d = diagnose("stress-ng-oom.ndjson");
	const struct cohort_finding *f;

	CHECK_KINDS(d, "oom_kill");
	f = finding(&d, COHORT_FINDING_OOM_KILL, 0);
	CHECK_EQ(f->pid, 25648);
	CHECK_EV(f, "oom_kills", 10);
	CHECK_EV(f, "kernel_oom_kills", 10);
	CHECK_EV(f, "process_pid", 25648);
	CHECK_EV(f, "process_child", 5);
	CHECK_EV(f, "kernel_log", 8);
	CHECK_EV(f, "peak_cgroup_bytes", 314572800);
	CHECK_CONTAINS(f->message, "the kernel OOM-killed 10 processes of rank 0, the first pid 25648 "
	               "(stress-ng-vm), child 5 of rank 0 at 1.2 s (the kernel log names it): not the "
	               "worker's own process (pid 25643)");
	diag_free(&d);
}

/* The same run as an older supervisor recorded it: the kernel's count, no victim named. */
TEST(diagnose_oom_kills_below_the_root_old_recording)
{
	struct diag d = diagnose("oom-below-old.ndjson");
	const struct cohort_finding *f;

	CHECK_KINDS(d, "oom_kill");
	f = finding(&d, COHORT_FINDING_OOM_KILL, 0);
	CHECK_EQ(f->pid, 25643);
	CHECK_EV(f, "oom_kills", 10);
	CHECK(!has_ev(f, "process_pid"));
	CHECK_CONTAINS(f->message, "killed 10 processes in rank 0's cgroup, from 1.2 s: not the worker's own "
	               "process (pid 25643), one it started");
	diag_free(&d);
}

/* Odd deaths (pids, counts and child indexes out of range, ranks that are not): bounded words. */
TEST(diagnose_child_exits_odd_values)
{
	struct diag d = diagnose("child-exit-odd.ndjson");
	const struct cohort_finding *f;

	CHECK_KINDS(d, "oom_kill,segfault");
	f = finding(&d, COHORT_FINDING_OOM_KILL, 0);
	CHECK_EV(f, "oom_kills", 1000000000000ULL);
	CHECK_CONTAINS(f->message, "pid 13 (?), a process of rank 0");
	f = finding(&d, COHORT_FINDING_SEGFAULT, 0);
	CHECK_EQ(f->pid, 11);
	CHECK(!has_ev(f, "process_mpi_rank"));
	CHECK_CONTAINS(f->message, "pid 11 (xxxxxxxxxxxxxxx), a process of rank 0");
	diag_free(&d);
}

/*
 * A real PyTorch DataLoader passing 48 MiB tensors through a 64 MiB
 * /dev/shm: worker 2 dies of SIGBUS, PyTorch's own handler (not the shim)
 * reports it, its parent's waitpid tells the shim. /dev/shm was full only
 * for the sample around the death: still shm_exhausted, naming the worker.
 */
TEST(diagnose_dataloader_sigbus_is_shm_exhausted)
{
	struct diag d = diagnose("dataloader-sigbus.ndjson");
	const struct cohort_finding *f;

	CHECK_KINDS(d, "shm_exhausted,cow_unshare,exit_nonzero");
	f = finding(&d, COHORT_FINDING_SHM_EXHAUSTED, 0);
	CHECK_EQ(f->pid, 26490);
	CHECK_EV(f, "process_child", 2);
	CHECK_EV(f, "shm_free_end_bytes", 0);
	CHECK_EV(f, "shm_free_start_bytes", 67108864);
	CHECK_CONTAINS(f->message, "pid 26490 (python3), child 2 of rank 0 died of SIGBUS (bus error); its "
	               "parent, pid 26487, reaped it: /dev/shm had 64.0 MiB free of 64.0 MiB at the start "
	               "and 0 B at 1.0 s");
	diag_free(&d);
}
