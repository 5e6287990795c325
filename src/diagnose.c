/*
 * diagnose.c - why did the job die, and what to change: findings from
 * recordings, each with the figures it rests on and a concrete fix.
 */
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MiB (1ULL << 20)

const char *cohort_finding_name(enum cohort_finding_kind kind)
{
	switch (kind) {
	case COHORT_FINDING_OOM_KILL:            return "oom_kill";
	case COHORT_FINDING_BUDGET_KILL:         return "budget_kill";
	case COHORT_FINDING_SLURM_RSS_OVERCOUNT: return "slurm_rss_overcount";
	case COHORT_FINDING_SHM_EXHAUSTED:       return "shm_exhausted";
	case COHORT_FINDING_SEGFAULT:            return "segfault";
	case COHORT_FINDING_BUS_ERROR:           return "bus_error";
	case COHORT_FINDING_LEAK:                return "leak";
	case COHORT_FINDING_COW_UNSHARE:         return "cow_unshare";
	case COHORT_FINDING_OVERSUBSCRIBED:      return "oversubscribed";
	case COHORT_FINDING_CRASH:               return "crash";
	case COHORT_FINDING_EXIT_NONZERO:        return "exit_nonzero";
	case COHORT_FINDING_CUT:                 return "cut";
	case COHORT_FINDING_SIGNALLED:           return "signalled";
	case COHORT_FINDING_SPAWN_FAILED:        return "spawn_failed";
	case COHORT_FINDING_SHMEM_CHARGED:       return "shmem_charged";
	case COHORT_FINDING_PAGE_CACHE:          return "page_cache";
	case COHORT_FINDING_NODE_IMBALANCE:      return "node_imbalance";
	}
	return "unknown";
}

/* Did the recorded cluster charge the RSS sum? cohort_slurm_sums_rss() on what was recorded. */
static bool sums_rss(const struct cohort_recording *r)
{
	struct cohort_slurm_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cohort__strlcpy(cfg.jobacct_gather_type, r->jobacct, sizeof(cfg.jobacct_gather_type));
	cohort__strlcpy(cfg.jobacct_gather_params, r->jobacct_params, sizeof(cfg.jobacct_gather_params));
	cohort__slurm_config_flags(&cfg);
	return cohort_slurm_sums_rss(&cfg) == 1;
}

/*
 * A worker's rank in the whole job: its rank in the recording after those
 * of the job's earlier tasks (srun -n 4 cohort run -n 2: task 1's rank 0
 * is rank 2). A recording that is no task of several has offset 0.
 */
#define GR(r, rank) ((int)((r)->task.rank_offset + (rank)))

struct list {
	struct cohort_finding *f;
	size_t n, cap;
	int error;
};

static struct cohort_finding *add(struct list *l, const struct cohort_recording *r,
                                  enum cohort_finding_kind kind, int rank, double t)
{
	struct cohort_finding *f;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct cohort_finding *nf = realloc(l->f, cap * sizeof(*nf));

		if (!nf) {
			l->error = -ENOMEM;
			return NULL;
		}
		l->f = nf;
		l->cap = cap;
	}
	f = &l->f[l->n++];
	memset(f, 0, sizeof(*f));
	f->kind = kind;
	f->rank = rank;
	f->pid = rank >= 0 ? r->workers[rank].pid : 0;
	f->t = t;
	f->task = r->task.known ? r->task.id : -1;
	f->global_rank = rank >= 0 ? GR(r, rank) : -1;
	cohort__strlcpy(f->node, r->task.node[0] ? r->task.node : r->host, sizeof(f->node));
	cohort__strlcpy(f->host, r->host, sizeof(f->host));
	return f;
}

static void evidence(struct cohort_finding *f, const char *name, double value, const char *unit)
{
	if (!f || f->nevidence == COHORT_EVIDENCE_MAX)
		return;
	cohort__strlcpy(f->evidence[f->nevidence].name, name, sizeof(f->evidence[0].name));
	f->evidence[f->nevidence].value = value;
	cohort__strlcpy(f->evidence[f->nevidence].unit, unit, sizeof(f->evidence[0].unit));
	f->nevidence++;
}

#define SAY(buf, ...) snprintf((buf), sizeof(buf), __VA_ARGS__)

static const char *sz(uint64_t v, char *buf)
{
	return cohort_size_format(v, buf, 32);
}

/* The first event of a kind for a rank (-2: any rank), or NULL. */
static const struct cohort_rec_event *find_event(const struct cohort_recording *r, const char *kind,
                                                 int rank)
{
	/* Indexed by the reader: a walk here, once per worker, cost workers x events. */
	return cohort_rec_find_event(r, kind, rank);
}

/*
 * What a cow_unshare event says grew: "cow", "shmem" or "page_cache"
 * (kind_of_growth); a recording from before the field is copy-on-write.
 */
static const char *growth_of(const struct cohort_rec_event *e)
{
	return e->growth[0] ? e->growth : "cow";
}

/* The first cow_unshare event of a rank that says growth, or NULL. */
static const struct cohort_rec_event *find_growth(const struct cohort_recording *r, int rank,
                                                  const char *growth)
{
	size_t from, to;

	cohort_rec_events_of(r, "cow_unshare", rank, &from, &to);
	for (size_t i = from; i < to; i++)
		if (strcmp(growth_of(&r->events[r->by_kind_rank[i]]), growth) == 0)
			return &r->events[r->by_kind_rank[i]];
	return NULL;
}

/* The crash shim's record of pid: crashed_pid names it (the event's pid is its worker's root). */
static const struct cohort_rec_event *find_crash(const struct cohort_recording *r, pid_t pid)
{
	for (size_t i = 0; i < r->nevents; i++)
		if (strcmp(r->events[i].kind, "crash_info") == 0 &&
		    (pid_t)cohort_rec_event_num(&r->events[i], "crashed_pid", r->events[i].pid) == pid)
			return &r->events[i];
	return NULL;
}

/*
 * Whether an event names a process below its worker's root (a pool
 * worker, an MPI rank under mpirun): its process_pid is not the root's.
 */
static bool below_root(const struct cohort_rec_event *e)
{
	double pid = cohort_rec_event_num(e, "process_pid", 0);

	return pid > 0 && (pid_t)pid != e->pid;
}

/*
 * The process an event names, as the watcher knew it. An event of an
 * older recording has no process_child: its process is then only "of rank
 * R" (rank -1 in the identity, which the caller words itself).
 */
static void event_identity(const struct cohort_recording *r, const struct cohort_rec_event *e,
                           struct cohort_proc_identity *id)
{
	double child = cohort_rec_event_num(e, "process_child", -1);

	memset(id, 0, sizeof(*id));
	id->pid = (pid_t)cohort_rec_event_num(e, "process_pid", 0);
	cohort__strlcpy(id->comm, e->process, sizeof(id->comm));
	cohort__strlcpy(id->cmdline, e->process_cmdline, sizeof(id->cmdline));
	id->mpi_rank = (int)cohort_rec_event_num(e, "process_mpi_rank", -1);
	id->slurm_procid = (int)cohort_rec_event_num(e, "process_slurm_procid", -1);
	id->slurm_localid = -1;
	/* A child index out of range is an edited file: the process is then only "of rank R". */
	id->rank = child >= 1 && child < 1e9 ? GR(r, e->rank) : -1;
	id->child = id->rank >= 0 ? (unsigned)child : 0;
}

/* "pid 7482 (python3, MPI rank 2), child 3 of rank 0", or, from an older recording, "... a process of rank 0". */
static const char *event_who(const struct cohort_recording *r, const struct cohort_rec_event *e,
                             char *buf, size_t size)
{
	struct cohort_proc_identity id;
	size_t len;

	event_identity(r, e, &id);
	cohort_proc_identity_describe(&id, buf, size);
	len = strlen(buf);
	if (id.rank < 0 && len < size)
		snprintf(buf + len, size - len, ", a process of rank %d", GR(r, e->rank));
	return buf;
}

/* An event's count of deaths: def when absent, never below 0 nor above 10^12 (an edited file). */
static double count_of(const struct cohort_rec_event *e, double def)
{
	double c = cohort_rec_event_num(e, "count", def);

	return c < 0 ? 0 : c > 1e12 ? 1e12 : c;
}

/* The evidence that names a process: its pid, and its MPI rank and child index when known. */
static void process_evidence(struct cohort_finding *f, const struct cohort_rec_event *e)
{
	double v;

	evidence(f, "process_pid", cohort_rec_event_num(e, "process_pid", 0), "");
	if ((v = cohort_rec_event_num(e, "process_mpi_rank", -1)) >= 0)
		evidence(f, "process_mpi_rank", v, "");
	if ((v = cohort_rec_event_num(e, "process_child", -1)) >= 1)
		evidence(f, "process_child", v, "");
}

static const struct cohort_rec_sample *last_sample(const struct cohort_recording *r)
{
	return r->nsamples ? &r->samples[r->nsamples - 1] : NULL;
}

/*
 * Whether the supervisor itself got a signal (SIGTERM from SLURM at a limit
 * or on scancel, ^C, ...), and when: 1 and *ret_t, else 0. *ret_name gets
 * its name ("SIGTERM"), or "a signal" when the recording does not say.
 */
static int supervisor_signal(const struct cohort_recording *r, double *ret_t, const char **ret_name)
{
	if (r->signal) {
		*ret_t = r->signal_t;
		*ret_name = r->signal_name[0] ? r->signal_name : "a signal";
		return 1;
	}
	/*
	 * Fallback for format-1 recordings written before the "signal" kind
	 * existed: their supervisor recorded the signal as a "warning" that
	 * concerns no worker, whose message begins "got " and strsignal()'s
	 * words ("got Terminated: passing it to the workers ..."). No other
	 * warning has both; this is the only place the diagnosis reads a
	 * message, and only for such old recordings.
	 */
	size_t first, end;

	/* The warnings of no worker only, from the reader's index: this runs once per worker. */
	cohort_rec_events_of(r, "warning", -1, &first, &end);
	for (size_t i = first; i < end; i++) {
		const struct cohort_rec_event *e = &r->events[r->by_kind_rank[i]];

		if (strncmp(e->message, "got ", 4) == 0) {
			*ret_t = e->t;
			*ret_name = "a signal";
			return 1;
		}
	}
	return 0;
}

/* An event's figure in bytes: def when it has none, 0 when negative, never past 2^64. */
static uint64_t num_bytes(const struct cohort_rec_event *e, const char *name, uint64_t def)
{
	double v = cohort_rec_event_num(e, name, -1);

	if (v < 0)
		return cohort_rec_event_num(e, name, 0) < 0 ? 0 : def;
	return v >= 1.8e19 ? UINT64_MAX : (uint64_t)v;
}

/* A worker's peak: its own cgroup's exact peak when it had one, else the largest PSS sampled. */
static uint64_t worker_peak(const struct cohort_rec_worker *w)
{
	return w->peak_cgroup ? w->peak_cgroup : w->peak_pss;
}

static void crash_details(struct cohort_finding *f, const struct cohort_rec_event *c, char *buf,
                          size_t size)
{
	buf[0] = '\0';
	if (!c)
		return;
	evidence(f, "fault_addr", (double)c->fault_addr, "addr");
	/* The frames from the signal on: the shim's own and the kernel's trampoline go. */
	{
		const char *p = c->backtrace, *nl;
		bool after_shim = false;
		size_t len = 0;

		for (; *p; p = nl + 1) {
			nl = strchr(p, '\n');
			if (!nl)
				break;
			if (memmem(p, (size_t)(nl - p), "libcohort-catch.so", 18)) {
				after_shim = true;
				continue;
			}
			if (after_shim) {   /* the signal trampoline in libc */
				after_shim = false;
				continue;
			}
			if (len + (size_t)(nl - p) + 2 < sizeof(f->backtrace)) {
				memcpy(f->backtrace + len, p, (size_t)(nl - p) + 1);
				len += (size_t)(nl - p) + 1;
				f->backtrace[len] = '\0';
			}
		}
	}
	if (c->in_guard)
		snprintf(buf, size, " at address 0x%llx, in the guard page after %s: a write past the "
		         "end of the segment", (unsigned long long)c->fault_addr, c->where);
	else if (c->where[0])
		snprintf(buf, size, " at address 0x%llx, in %s", (unsigned long long)c->fault_addr, c->where);
	else
		snprintf(buf, size, " at address 0x%llx, which no mapping holds",
		         (unsigned long long)c->fault_addr);
}

/*
 * A set of ranks as the shortest words: "rank 3", "ranks 0-12", "ranks 0-2,
 * 5, 7-9". in[k] selects rank k of r, named by its rank in the job.
 * Returns how many were selected.
 */
static unsigned rank_words(const struct cohort_recording *r, const bool *in, unsigned n,
                           char *buf, size_t size)
{
	unsigned count = 0;
	size_t len;

	for (unsigned k = 0; k < n; k++)
		count += in[k];
	len = (size_t)snprintf(buf, size, "%s", count == 1 ? "rank " : "ranks ");
	for (unsigned k = 0, first = 1; k < n && len < size; k++) {
		unsigned j = k;

		if (!in[k])
			continue;
		while (j + 1 < n && in[j + 1])
			j++;
		if (j == k)
			len += (size_t)snprintf(buf + len, size - len, "%s%d", first ? "" : ", ", GR(r, k));
		else
			len += (size_t)snprintf(buf + len, size - len, "%s%d-%d", first ? "" : ", ", GR(r, k),
			                        GR(r, j));
		first = 0;
		k = j;
	}
	return count;
}

/* The first spawn_failed event of a recording, or NULL. */
static const struct cohort_rec_event *spawn_failure(const struct cohort_recording *r)
{
	return find_event(r, "spawn_failed", -2);
}

/* A worker that never ran: no spawn, no sample, no exit. */
static bool never_started(const struct cohort_rec_worker *w)
{
	return w->pid <= 0 && !w->ended;
}

/*
 * Why cohort itself ended a worker, when it did: the worker died of SIGKILL
 * or of a signal cohort sends (the one it was given, SIGTERM) after
 * something that makes cohort stop every worker. Such an end is not a
 * crash; the finding of its cause tells of it.
 */
enum stop_reason { STOP_NONE, STOP_SPAWN_FAILED, STOP_SIGNAL, STOP_OTHER };

static enum stop_reason stop_reason(const struct cohort_recording *r, const struct cohort_rec_worker *w)
{
	const struct cohort_rec_event *sf = spawn_failure(r);
	double sig_t;
	const char *sig_name;

	if (!w->ended || !w->signal)
		return STOP_NONE;
	if (sf && sf->rank != w->rank && w->end >= sf->t &&
	    (w->signal == SIGKILL || (w->stopped_by_cohort && w->signal == SIGTERM)))
		return STOP_SPAWN_FAILED;
	if (supervisor_signal(r, &sig_t, &sig_name) && w->end >= sig_t &&
	    (w->signal == SIGKILL || w->signal == r->signal ||
	     (r->signal <= 0 && (w->signal == SIGTERM || w->signal == SIGINT || w->signal == SIGHUP))))
		return STOP_SIGNAL;
	/* --kill-on-bad-exit: another worker's end, which has its own finding. */
	if (w->stopped_by_cohort && (w->signal == SIGTERM || w->signal == SIGKILL))
		return STOP_OTHER;
	return STOP_NONE;
}

/* What an errno of a failed start means, and what to change. */
static const char *spawn_fix(int err)
{
	switch (err) {
	case EMFILE:
		return "cohort ran out of open files (EMFILE: its RLIMIT_NOFILE, `ulimit -n`): each "
		       "worker takes a few descriptors (its output pipes, its cgroup's files); raise "
		       "`ulimit -n` before cohort run (`ulimit -n 65536`, up to `ulimit -Hn`) or start "
		       "fewer workers";
	case ENFILE:
		return "the whole system ran out of open files (ENFILE: fs.file-max): close other "
		       "programs' files, or ask the administrators to raise fs.file-max; or start "
		       "fewer workers";
	case EAGAIN:
		return "no more processes could be made (EAGAIN: `ulimit -u`, or the cgroup's "
		       "pids.max, or SLURM's task limit): raise that limit or start fewer workers";
	case ENOMEM:
		return "the system refused memory for a new process (ENOMEM): `ulimit -v` or the "
		       "job's memory limit is too small for cohort and its workers; raise it or start "
		       "fewer workers";
	case ENOENT:
		return "the command was not found (ENOENT): check its path, or that it is on PATH on "
		       "this node; for a script, that its #! interpreter exists";
	case EACCES:
	case EPERM:
		return "the command may not be executed (EACCES): check its permissions (chmod +x) and "
		       "that its file system is not mounted noexec";
	case ENOEXEC:
		return "the file is not an executable this node can run (ENOEXEC): a script without "
		       "its #! line, or a program built for another architecture";
	case E2BIG:
		return "the command line and environment are too long (E2BIG): pass the arguments in "
		       "a file instead";
	case ETXTBSY:
		return "the program is being written (ETXTBSY): wait until its build or copy is done";
	}
	return NULL;
}

/*
 * A worker that could not be started: cohort stops the ones already running
 * and starts no more. One finding names the cause (the errno's meaning and
 * its fix) and which ranks were stopped because of it.
 */
static void spawn_failed(struct list *l, const struct cohort_recording *r)
{
	const struct cohort_rec_event *e = spawn_failure(r);
	struct cohort_finding *f;
	bool *stopped, *unstarted;
	char sw[256], uw[256], rest[600] = "";
	const char *fix;
	unsigned nstopped, nunstarted;
	int err;

	if (!e || e->rank < 0)
		return;
	stopped = calloc(r->nworkers, sizeof(bool));
	unstarted = calloc(r->nworkers, sizeof(bool));
	if (!stopped || !unstarted) {
		l->error = -ENOMEM;
		goto out;
	}
	for (unsigned k = 0; k < r->nworkers; k++) {
		if ((int)k == e->rank)
			continue;
		stopped[k] = stop_reason(r, &r->workers[k]) == STOP_SPAWN_FAILED;
		unstarted[k] = never_started(&r->workers[k]);
	}
	nstopped = rank_words(r, stopped, r->nworkers, sw, sizeof(sw));
	nunstarted = rank_words(r, unstarted, r->nworkers, uw, sizeof(uw));
	if (nstopped)
		SAY(rest, "; so cohort stopped %s, already started (%s not crash)", sw,
		    nstopped == 1 ? "it did" : "they did");
	if (nunstarted) {
		size_t len = strlen(rest);

		snprintf(rest + len, sizeof(rest) - len, "%s%s %s not started", nstopped ? ", and " :
		         "; ", uw, nunstarted == 1 ? "was" : "were");
	}
	if (!(f = add(l, r, COHORT_FINDING_SPAWN_FAILED, e->rank, e->t)))
		goto out;
	if (!f->pid && e->pid > 0)
		f->pid = e->pid;     /* the child whose exec failed */
	err = (int)cohort_rec_event_num(e, "errno", 0);
	SAY(f->message, "rank %d could not be started at %.1f s: %s%s", GR(r, e->rank), e->t,
	    e->message[0] ? e->message : "the recording does not say why", rest);
	fix = err > 0 ? spawn_fix(err) : NULL;
	SAY(f->fix, "%s", fix ? fix : "check the command (its path and permissions); when the error "
	    "says something ran out (open files, processes, memory), raise that limit of the "
	    "supervisor (ulimit -n, ulimit -u, ulimit -v) or start fewer workers");
	if (err > 0)
		evidence(f, "errno", err, "");
	evidence(f, "stopped_workers", nstopped, "");
	evidence(f, "unstarted_workers", nunstarted, "");
out:
	free(stopped);
	free(unstarted);
}

/* "from pid 4242 (uid 1000)", or what the lack of a sender means for this signal. */
static void sender_words(const struct cohort_recording *r, char *buf, size_t size)
{
	if (r->signal_sender_pid > 0 && r->signal_sender_uid >= 0)
		snprintf(buf, size, " from pid %ld (uid %ld)", r->signal_sender_pid, r->signal_sender_uid);
	else if (r->signal_sender_pid > 0)
		snprintf(buf, size, " from pid %ld", r->signal_sender_pid);
	else if (r->signal == SIGINT)
		snprintf(buf, size, " from the terminal (^C: no process sent it)");
	else if (r->signal == SIGHUP)
		snprintf(buf, size, " from the terminal (its session ended: no process sent it)");
	else
		buf[0] = '\0';
}

/*
 * The supervisor got a signal (SIGTERM from SLURM at the time limit or on
 * scancel, ^C, kill): one finding for the job that says who sent it, how
 * each worker ended after it (by the signal passed on, killed with SIGKILL
 * after the grace or at a second signal, exited on its own), and a fix
 * that fits where it ran.
 */
static void signalled(struct list *l, const struct cohort_recording *r)
{
	struct cohort_finding *f;
	double sig_t, second_t = -1;
	const char *name;
	bool *by_sig = NULL, *grace = NULL, *second = NULL, *own = NULL, *running = NULL;
	char from[96], w1[200], w2[200], w3[200], w4[200], w5[200], own_code[48] = "";
	unsigned n1, n2, n3, n4, n5, nw = r->nworkers;
	int code = -1;
	size_t len;

	if (!supervisor_signal(r, &sig_t, &name))
		return;
	/* A second signal makes cohort send SIGKILL at once. */
	for (size_t i = 0; i < r->nevents; i++)
		if (strcmp(r->events[i].kind, "signal") == 0 && r->events[i].t > sig_t) {
			second_t = r->events[i].t;
			break;
		}
	by_sig = calloc(nw ? nw : 1, sizeof(bool));
	grace = calloc(nw ? nw : 1, sizeof(bool));
	second = calloc(nw ? nw : 1, sizeof(bool));
	own = calloc(nw ? nw : 1, sizeof(bool));
	running = calloc(nw ? nw : 1, sizeof(bool));
	if (!by_sig || !grace || !second || !own || !running) {
		l->error = -ENOMEM;
		goto out;
	}
	for (unsigned k = 0; k < nw; k++) {
		const struct cohort_rec_worker *w = &r->workers[k];

		if (!w->ended) {
			running[k] = w->pid > 0;
			continue;
		}
		if (w->end < sig_t)
			continue;   /* it had ended before: its own finding, if any */
		if (stop_reason(r, w) == STOP_SIGNAL) {
			if (w->signal == SIGKILL && r->signal != SIGKILL) {
				if (second_t >= 0 && w->end >= second_t)
					second[k] = true;
				else
					grace[k] = true;
			} else {
				by_sig[k] = true;
			}
		} else if (!w->signal) {
			own[k] = true;
			if (code < 0)
				code = w->exit_code;
		}
	}
	n1 = rank_words(r, by_sig, nw, w1, sizeof(w1));
	n2 = rank_words(r, grace, nw, w2, sizeof(w2));
	n3 = rank_words(r, second, nw, w3, sizeof(w3));
	n4 = rank_words(r, own, nw, w4, sizeof(w4));
	n5 = rank_words(r, running, nw, w5, sizeof(w5));
	if (!(f = add(l, r, COHORT_FINDING_SIGNALLED, -1, sig_t)))
		goto out;
	sender_words(r, from, sizeof(from));
	len = (size_t)SAY(f->message, "cohort got %s%s at %.1f s and passed it to the workers",
	                  name, from, sig_t);
#define MORE(...) do { if (len < sizeof(f->message)) \
	len += (size_t)snprintf(f->message + len, sizeof(f->message) - len, __VA_ARGS__); } while (0)
	if (second_t >= 0)
		MORE(", and got a second signal at %.1f s, on which it killed them with SIGKILL", second_t);
	if (n1)
		MORE("; %s ended by it", w1);
	if (n2)
		MORE("; %s ignored it and %s killed with SIGKILL after the grace", w2, n2 == 1 ? "was" : "were");
	if (n3)
		MORE("; %s %s killed with SIGKILL at the second signal", w3, n3 == 1 ? "was" : "were");
	if (n4) {
		if (code >= 0)
			snprintf(own_code, sizeof(own_code), n4 == 1 ? " (status %d)" : " (the first with status %d)",
			         code);
		MORE("; %s exited on %s own%s", w4, n4 == 1 ? "its" : "their", own_code);
	}
	if (n5)
		MORE("; %s still ran when the recording ends", w5);
#undef MORE
	/* Who sends such a signal, where the job ran; then what the workers could do with it. */
	if (r->slurm && (r->signal == SIGTERM || r->signal <= 0))
		len = (size_t)SAY(f->fix, "under SLURM a SIGTERM usually means the job reached its time "
		                  "limit (--time) or was cancelled (scancel) or preempted: `sacct -j %s "
		                  "-o State,Elapsed,Timelimit` says which; at the time limit, ask for more "
		                  "time or have the workers checkpoint when SIGTERM comes (SLURM sends "
		                  "SIGKILL KillWait seconds later; `sbatch --signal=<sig>@<seconds>` warns "
		                  "earlier)", r->slurm_job[0] ? r->slurm_job : "JOBID");
	else if (r->signal == SIGINT && r->signal_sender_pid <= 0)
		len = (size_t)SAY(f->fix, "^C at the terminal: the run was stopped by its user; nothing "
		                  "to change unless that was not meant");
	else if (r->signal == SIGHUP)
		len = (size_t)SAY(f->fix, "the terminal or session that ran cohort went away: run it "
		                  "under tmux, screen or nohup, or as a batch job");
	else if (r->signal_sender_pid > 0)
		len = (size_t)SAY(f->fix, "the run was stopped on purpose by pid %ld: a user's kill, a "
		                  "timeout wrapper, a scheduler, systemd at shutdown, or a daemon such as "
		                  "earlyoom or systemd-oomd; nothing to change in the workers if it was "
		                  "meant", r->signal_sender_pid);
	else
		len = (size_t)SAY(f->fix, "the run was stopped on purpose (a user's kill, a timeout, a "
		                  "scheduler, a shutdown); nothing to change in the workers if it was meant");
	if ((n2 || n3) && len < sizeof(f->fix))
		snprintf(f->fix + len, sizeof(f->fix) - len, "; %s that did not end on %s lost what %s "
		         "had not saved: make %s save and exit when it comes (a handler for it), or "
		         "give %s a longer --grace", n2 + n3 == 1 ? "the worker" : "the workers", name,
		         n2 + n3 == 1 ? "it" : "they", n2 + n3 == 1 ? "it" : "them",
		         n2 + n3 == 1 ? "it" : "them");
	evidence(f, "signal", r->signal > 0 ? r->signal : 0, "");
	evidence(f, "sender_pid", (double)r->signal_sender_pid, "");
	evidence(f, "sender_uid", (double)r->signal_sender_uid, "");
	evidence(f, "ended_by_signal", n1, "");
	evidence(f, "killed_after_grace", n2, "");
	evidence(f, "killed_at_second_signal", n3, "");
	evidence(f, "exited_on_their_own", n4, "");
	if (second_t >= 0)
		evidence(f, "second_signal_s", second_t, "s");
out:
	free(by_sig);
	free(grace);
	free(second);
	free(own);
	free(running);
}

/*
 * Whether a worker still grew when it was stopped at t: its RSS (read every
 * sample) rising at each of its last steps up to t (up to three), by more
 * than 4 MiB and a twentieth in all. *ret_rate gets the rate (0 when it did
 * not grow) and *ret_s the time it spans.
 */
#define GROWTH_SAMPLES 4   /* three steps */

static void growth(const struct cohort_recording *r, int rank, double t, double *ret_rate,
                   double *ret_s)
{
	size_t idx[GROWTH_SAMPLES];
	int n = 0;
	uint64_t first, last;

	*ret_rate = 0;
	*ret_s = 0;
	if (rank < 0 || (unsigned)rank >= r->nworkers)
		return;
	/* The worker's own series: only the samples that listed it. */
	const struct cohort_rec_worker *w = &r->workers[rank];
	uint64_t rss[GROWTH_SAMPLES];

	for (size_t i = w->nseries; i-- > 0 && n < GROWTH_SAMPLES;) {
		const struct cohort_rec_point *p = &w->series[i];

		if (p->sample >= r->nsamples || r->samples[p->sample].t > t + 0.05)
			continue;
		if (!p->rss)
			continue;   /* no figure for the worker in that sample */
		rss[n] = p->rss;
		idx[n++] = p->sample;
	}
	/* The run of rising steps that ends at the last sample: none when the last step is flat. */
	int m = 0;

	while (m + 1 < n && rss[m] > rss[m + 1])
		m++;
	if (m == 0)
		return;
	last = rss[0];
	first = rss[m];
	if (last < first + 4 * MiB || last < first + first / 20 ||
	    r->samples[idx[0]].t <= r->samples[idx[m]].t)
		return;
	*ret_s = r->samples[idx[0]].t - r->samples[idx[m]].t;
	*ret_rate = (double)(last - first) / *ret_s;
}

/*
 * The process of the worker's tree that did it, when the watcher named one
 * that is not the worker's root: "; most of it is pid 7482 (python3), a
 * process rank 0 started, which grew by 120.0 MiB", appended to msg.
 */
static void name_process(const struct cohort_recording *r, char *msg, size_t size,
                         struct cohort_finding *f, const struct cohort_rec_event *e)
{
	double pid = cohort_rec_event_num(e, "process_pid", 0);
	size_t len = strlen(msg);
	char a[32], who[200];

	if (pid <= 0 || !e->process[0] || len >= size)
		return;
	if (cohort_rec_event_num(e, "process_child", -1) >= 1)
		snprintf(msg + len, size - len, "; most of it is %s, which grew by %s",
		         event_who(r, e, who, sizeof(who)), sz(num_bytes(e, "process_growth_bytes", 0), a));
	else
		snprintf(msg + len, size - len, "; most of it is pid %.0f (%s), a process rank %d started, "
		         "which grew by %s", pid, e->process, f->global_rank,
		         sz(num_bytes(e, "process_growth_bytes", 0), a));
	process_evidence(f, e);
	/* The finding's process is the one that did it. */
	f->pid = (pid_t)pid;
	evidence(f, "process_growth_bytes", (double)num_bytes(e, "process_growth_bytes", 0), "B");
}

/* The oom_kill event of a worker's root itself (not of a process below it), or NULL. */
static const struct cohort_rec_event *find_root_oom(const struct cohort_recording *r, int rank)
{
	size_t from, to;

	cohort_rec_events_of(r, "oom_kill", rank, &from, &to);
	for (size_t i = from; i < to; i++)
		if (!below_root(&r->events[r->by_kind_rank[i]]))
			return &r->events[r->by_kind_rank[i]];
	return NULL;
}

/* How the watcher found an OOM kill's victim, in words. */
static const char *evidence_words(const char *ev)
{
	if (strcmp(ev, "kernel_log") == 0)
		return "the kernel log names it";
	if (strcmp(ev, "reaper_status") == 0)
		return "its parent reaped it killed by SIGKILL as the kill was counted";
	if (strcmp(ev, "vanished") == 0)
		return "it vanished as the kill was counted";
	return "the recording does not say how it was found";
}

/*
 * The kernel's OOM killer killed processes below a worker's root (pool or
 * DataLoader workers, MPI ranks under mpirun, stress-ng's workers that it
 * restarts): one finding per worker with the count and the first victim.
 * When the root itself was killed too (root_killed), the words go to tail
 * for its finding instead. A recording without such events (older ones)
 * still has the kernel's notifications: the count without the victims.
 */
static void oom_below(struct list *l, const struct cohort_recording *r, const struct cohort_rec_worker *w,
                      bool root_killed, char *tail, size_t tsize)
{
	const struct cohort_rec_event *first = NULL, *k = NULL;
	double kills = 0, count = 0, by_log = 0, by_reaper = 0, by_vanish = 0;
	uint64_t peak = 0;
	struct cohort_finding *f;
	char a[32], who[200], also[96] = "";

	/* The worker's kernel and oom_kill events only, from the reader's index. */
	size_t from, to;

	cohort_rec_events_of(r, "kernel", w->rank, &from, &to);
	for (size_t i = from; i < to; i++) {
		const struct cohort_rec_event *e = &r->events[r->by_kind_rank[i]];

		if (cohort_rec_event_num(e, "oom_kill_new", 0) > 0) {
			if (!k)
				k = e;
			kills += cohort_rec_event_num(e, "oom_kill_new", 0);
		}
	}
	cohort_rec_events_of(r, "oom_kill", w->rank, &from, &to);
	for (size_t i = from; i < to; i++) {
		const struct cohort_rec_event *e = &r->events[r->by_kind_rank[i]];
		/* count: the kills so far, the total in a summary; an event without it is one. */
		double c;

		if (!below_root(e))
			continue;
		c = count_of(e, count + 1);
		if (!first)
			first = e;
		if (c > count)
			count = c;
		if (cohort_rec_event_num(e, "summary", 0) > 0)
			continue;
		if (strcmp(e->evidence, "kernel_log") == 0)
			by_log++;
		else if (strcmp(e->evidence, "reaper_status") == 0)
			by_reaper++;
		else if (strcmp(e->evidence, "vanished") == 0)
			by_vanish++;
	}
	if (!first) {
		if (!k || root_killed)
			return;
		/* An older recording: the kernel's count, no victim. */
		if ((f = add(l, r, COHORT_FINDING_OOM_KILL, w->rank, k->t)) != NULL) {
			peak = num_bytes(k, "peak_bytes", 0);

			SAY(f->message, "the kernel's OOM killer killed %.0f process%s in rank %d's cgroup, "
			    "from %.1f s: not the worker's own process (pid %d), one it started%s%s",
			    kills, kills == 1 ? "" : "es", GR(r, w->rank), k->t, (int)w->pid,
			    peak ? "; the cgroup's peak was " : "", peak ? sz(peak, a) : "");
			SAY(f->fix, "give each worker more memory (cohort run --mem-per-worker, or a larger "
			    "--mem for the job), start fewer processes per worker (pool or DataLoader "
			    "workers, MPI ranks), or make each need less");
			evidence(f, "oom_kills", kills, "");
			if (peak)
				evidence(f, "peak_cgroup_bytes", (double)peak, "B");
			evidence(f, "peak_pss_bytes", (double)w->peak_pss, "B");
		}
		return;
	}
	event_who(r, first, who, sizeof(who));
	/* The worker cgroup's exact peak, else the largest the kernel's notifications quoted. */
	peak = w->peak_cgroup;
	cohort_rec_events_of(r, "kernel", w->rank, &from, &to);
	for (size_t i = from; !peak && k && i < to; i++)
		if (num_bytes(&r->events[r->by_kind_rank[i]], "peak_bytes", 0) > peak)
			peak = num_bytes(&r->events[i], "peak_bytes", 0);
	/* The kernel counted more than the watcher could name (a victim that left no trace). */
	if (kills > count)
		SAY(also, " (the kernel counted %.0f kills in the worker's cgroup)", kills);
	if (root_killed) {
		snprintf(tail, tsize, "; before it, the kernel OOM-killed %.0f process%s below it%s, %s%s",
		         count, count == 1 ? "" : "es", also, count == 1 ? "" : "the first ", who);
		return;
	}
	if (!(f = add(l, r, COHORT_FINDING_OOM_KILL, w->rank, first->t)))
		return;
	f->pid = (pid_t)cohort_rec_event_num(first, "process_pid", 0);
	SAY(f->message, "the kernel OOM-killed %.0f process%s of rank %d%s, %s%s at %.1f s "
	    "(%s): not the worker's own process (pid %d), one it started%s%s", count,
	    count == 1 ? "" : "es", GR(r, w->rank), also, count == 1 ? "" : "the first ", who, first->t,
	    evidence_words(first->evidence),
	    (int)w->pid, peak ? "; the worker's cgroup peaked at " : "", peak ? sz(peak, a) : "");
	SAY(f->fix, "give each worker more memory (cohort run --mem-per-worker, or a larger --mem "
	    "for the job), start fewer processes per worker (pool or DataLoader workers, MPI ranks, "
	    "stressors), or make each need less; a program that restarts its killed processes "
	    "keeps hitting the limit until then");
	evidence(f, "oom_kills", count, "");
	if (peak)
		evidence(f, "peak_cgroup_bytes", (double)peak, "B");
	process_evidence(f, first);
	if (by_log)
		evidence(f, "kernel_log", by_log, "");
	if (by_reaper)
		evidence(f, "reaper_status", by_reaper, "");
	if (by_vanish)
		evidence(f, "vanished", by_vanish, "");
	if (kills)
		evidence(f, "kernel_oom_kills", kills, "");
}

/*
 * The least /dev/shm had free in the samples up to t (and half a second
 * after: the sample that catches a fill may follow the death it caused),
 * and when: a DataLoader's or a pool's shared memory fills it for a moment,
 * and is freed when the process that mapped it dies. Returns 0 without
 * such a sample.
 */
static int shm_low(const struct cohort_recording *r, double t, uint64_t *ret_free, double *ret_t)
{
	const struct cohort_rec_sample *low = NULL;

	for (size_t i = 0; i < r->nsamples && r->samples[i].t <= t + 0.5; i++)
		if (r->shm_size && (!low || r->samples[i].shm_free < low->shm_free))
			low = &r->samples[i];
	if (!low)
		return 0;
	*ret_free = low->shm_free;
	*ret_t = low->t;
	return 1;
}

/* A child_exit event of pid in rank, or NULL. */
static const struct cohort_rec_event *find_child_exit(const struct cohort_recording *r, int rank, pid_t pid)
{
	size_t from, to;

	cohort_rec_events_of(r, "child_exit", rank, &from, &to);
	for (size_t i = from; i < to; i++)
		if ((pid_t)cohort_rec_event_num(&r->events[r->by_kind_rank[i]], "process_pid", 0) == pid)
			return &r->events[r->by_kind_rank[i]];
	return NULL;
}

/*
 * Processes below a worker's root that died of a fault signal (the segfaulting
 * pool child, the DataLoader worker's SIGBUS): their parent's wait told the
 * crash shim (child_exit), or only the shim's crash record is there
 * (crash_info of a pid that is not the root). One finding per worker and
 * signal, with the count and the first: segfault, bus_error (shm_exhausted
 * when /dev/shm was full, as for a root), crash for the others.
 */
static void child_crashes(struct list *l, const struct cohort_recording *r, const struct cohort_rec_worker *w)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGSYS, SIGTRAP };
	const struct cohort_rec_sample *last = last_sample(r);

	for (size_t si = 0; si < sizeof(sigs) / sizeof(sigs[0]); si++) {
		const struct cohort_rec_event *first = NULL, *cr = NULL;
		double count = 0, told = 0;
		pid_t pid = 0;
		struct cohort_finding *f;
		enum cohort_finding_kind kind;
		char who[200], d[512], reaper[96] = "", many[128] = "", a[32], b[32], c[32];
		uint64_t low_free = 0;
		double low_t = 0;
		bool have_low;

		size_t from, to, first_at = SIZE_MAX;

		/* The worker's child_exit and crash_info events, from the reader's index; first: in file order. */
		cohort_rec_events_of(r, "child_exit", w->rank, &from, &to);
		for (size_t i = from; i < to; i++) {
			const struct cohort_rec_event *e = &r->events[r->by_kind_rank[i]];

			if (below_root(e) && cohort_rec_event_num(e, "signal", 0) == sigs[si]) {
				double n = count_of(e, told + 1);

				if (!first) {
					first = e;
					first_at = r->by_kind_rank[i];
				}
				if (n > count)
					count = n;
				told++;
			}
		}
		cohort_rec_events_of(r, "crash_info", w->rank, &from, &to);
		for (size_t i = from; i < to; i++) {
			const struct cohort_rec_event *e = &r->events[r->by_kind_rank[i]];
			pid_t cp = (pid_t)cohort_rec_event_num(e, "crashed_pid", 0);

			if (cohort_rec_event_num(e, "signal", 0) != sigs[si])
				continue;
			/* A crash whose reaping nobody told: counted here (the root's is its own finding). */
			if (cp > 0 && cp != w->pid && !find_child_exit(r, w->rank, cp)) {
				if (!first || r->by_kind_rank[i] < first_at) {
					first = e;
					first_at = r->by_kind_rank[i];
				}
				count++;
			}
		}
		if (!first)
			continue;
		if (strcmp(first->kind, "child_exit") == 0) {
			pid = (pid_t)cohort_rec_event_num(first, "process_pid", 0);
			event_who(r, first, who, sizeof(who));
			if (cohort_rec_event_num(first, "reaper_pid", 0) > 0)
				SAY(reaper, "; its parent, pid %.0f, reaped it",
				    cohort_rec_event_num(first, "reaper_pid", 0));
		} else {
			pid = (pid_t)cohort_rec_event_num(first, "crashed_pid", 0);
			SAY(who, "pid %d, a process of rank %d", (int)pid, GR(r, w->rank));
		}
		cr = find_crash(r, pid);
		if (count > 1)
			SAY(many, "; %.0f processes of rank %d died of it, this one first", count, GR(r, w->rank));
		kind = sigs[si] == SIGSEGV ? COHORT_FINDING_SEGFAULT : sigs[si] == SIGBUS ?
		       COHORT_FINDING_BUS_ERROR : COHORT_FINDING_CRASH;
		/* /dev/shm full when the process died (its lowest sample then), or the fault in a /dev/shm file. */
		have_low = shm_low(r, first->t, &low_free, &low_t);
		if (sigs[si] == SIGBUS && ((have_low && low_free < r->shm_size / 50) ||
		                           (last && r->shm_size && last->shm_free < r->shm_size / 50) ||
		                           (cr && strstr(cr->where, "/dev/shm"))))
			kind = COHORT_FINDING_SHM_EXHAUSTED;
		if (!(f = add(l, r, kind, w->rank, first->t)))
			return;
		f->pid = pid;
		crash_details(f, cr, d, sizeof(d));
		if (kind == COHORT_FINDING_SHM_EXHAUSTED) {
			uint64_t free_now = have_low ? low_free : last ? last->shm_free : 0;
			char when[48] = " near the end";

			if (have_low)
				SAY(when, " at %.1f s", low_t);
			SAY(f->message, "%s died of SIGBUS (bus error)%s%s%s: /dev/shm had %s free of %s at the "
			    "start and %s%s; pages of shared memory (a segment, a DataLoader's tensors, "
			    "multiprocessing's) are only taken when first written, and a write that finds "
			    "/dev/shm full is a SIGBUS", who, d, reaper, many, sz(r->shm_free_start, a),
			    sz(r->shm_size, b), sz(free_now, c), when);
			SAY(f->fix, "make /dev/shm hold what the processes share (a larger /dev/shm, e.g. "
			    "docker --shm-size, or a node with more memory), pass less through it (smaller "
			    "batches, fewer DataLoader workers), remove leftover segments (cohort shm gc), and "
			    "reserve a segment's pages when creating it (posix_fallocate, as "
			    "cohort_seg_create does) so that a full /dev/shm is an error at once");
			evidence(f, "shm_free_start_bytes", (double)r->shm_free_start, "B");
			evidence(f, "shm_free_end_bytes", (double)free_now, "B");
		} else {
			SAY(f->message, "%s, not the worker's root (pid %d), died of signal %d (SIG%s)%s%s%s",
			    who, (int)w->pid, sigs[si], sigabbrev_np(sigs[si]) ? sigabbrev_np(sigs[si]) : "?",
			    d, reaper, many);
			if (sigs[si] == SIGBUS && r->shm_size) {
				/*
				 * No sample saw /dev/shm full, but one may have been
				 * between samples: a loader's or a pool's tensors fill it
				 * and are freed in well under a second.
				 */
				uint64_t lowest = have_low ? low_free : r->shm_free_start;

				SAY(f->fix, "if the process wrote shared memory (a DataLoader's tensors, "
				    "multiprocessing's, a segment), /dev/shm may have filled between two samples: "
				    "it is %s and %s %s free; a write that finds it full "
				    "is a SIGBUS, so run once with a larger /dev/shm (or smaller batches, fewer "
				    "workers) to tell; otherwise a bad pointer or a mapped file cut short: run the "
				    "process under gdb, valgrind or AddressSanitizer%s", sz(r->shm_size, a),
				    have_low ? "the sample nearest its death saw" : "it had at the start",
				    sz(lowest, b), cr && cr->backtrace[0] ? " (the backtrace shows where)" : "");
			} else if (sigs[si] == SIGSEGV || sigs[si] == SIGBUS) {
				SAY(f->fix, "%s in a process the worker started: run that process under gdb, "
				    "valgrind or AddressSanitizer%s; a pool that replaces its dead workers hides the "
				    "crash, not its cause", sigs[si] == SIGBUS ? "a mapped file cut short, or a bad "
				    "pointer," : "a bad pointer", cr && cr->backtrace[0] ? " (the backtrace shows where)" : "");
			}
			else
				SAY(f->fix, "%s", sigs[si] == SIGABRT ? "the process aborted itself (a failed "
				    "assert, or a library detecting heap corruption): its stderr says why" :
				    "see the process's output for what it did; the backtrace shows where");
		}
		evidence(f, "signal", sigs[si], "");
		evidence(f, "deaths", count, "");
		if (strcmp(first->kind, "child_exit") == 0)
			process_evidence(f, first);
		else
			evidence(f, "process_pid", pid, "");
	}
}

/* What one worker's end says. */
static void worker_end(struct list *l, const struct cohort_recording *r, const struct cohort_rec_worker *w)
{
	const struct cohort_rec_event *e;
	const struct cohort_rec_sample *last = last_sample(r);
	const struct cohort_rec_event *root_oom;
	struct cohort_finding *f;
	char a[32], b[32], c[32], d[512], below[600] = "";

	/* A worker that never ran: the spawn_failed finding tells why. */
	if (find_event(r, "spawn_failed", w->rank) || never_started(w))
		return;
	root_oom = find_root_oom(r, w->rank);
	oom_below(l, r, w, root_oom && w->ended, below, sizeof(below));
	child_crashes(l, r, w);
	if (!w->ended)
		return;
	if ((e = root_oom) != NULL) {
		uint64_t limit = num_bytes(e, "limit_bytes", 0);
		uint64_t est = num_bytes(e, "last_est", w->last_est);
		uint64_t last_cg = num_bytes(e, "last_cgroup", 0);
		/* The worker's own cgroup's count when it has one: what the kernel killed by. */
		uint64_t used = last_cg ? last_cg : num_bytes(e, "last_used", est);
		uint64_t shm = last && last->has_cgroup ? last->cg_shmem : 0;

		if (!(f = add(l, r, COHORT_FINDING_OOM_KILL, w->rank, e->t)))
			return;
		/* Killed before a sample saw it grow: the estimate says nothing, the cgroup's peak does. */
		SAY(f->message, "rank %d (pid %d) was killed by the kernel's OOM killer at %.1f s: its "
		    "memory limit is %s%s%s%s%s%s%s", GR(r, w->rank), (int)w->pid, e->t,
		    limit ? sz(limit, a) : "not in the recording",
		    !used ? "" : last_cg ? " and its cgroup last held " : " and it last used about ",
		    used ? sz(used, b) : "", !used ? "" : last_cg ? " (cgroup)" : " (estimate)",
		    shm ? "; the job's cgroup also held " : "",
		    shm ? sz(shm, c) : "", shm ? " of /dev/shm pages, which count against the same limit" : "");
		SAY(f->fix, "give each worker more memory (cohort run --mem-per-worker, or a larger "
		    "--mem for the job), run fewer workers, or make the worker need less; cohort run "
		    "--enforce watch stops the worker before the kernel does and says so");
		if (w->peak_cgroup) {
			size_t len = strlen(f->message);

			snprintf(f->message + len, sizeof(f->message) - len, "; its cgroup's peak was %s",
			         sz(w->peak_cgroup, a));
		}
		if (below[0]) {
			size_t len = strlen(f->message);

			snprintf(f->message + len, sizeof(f->message) - len, "%s", below);
		}
		evidence(f, "limit_bytes", (double)limit, "B");
		evidence(f, "last_est_bytes", (double)est, "B");
		evidence(f, "last_used_bytes", (double)used, "B");
		if (last_cg)
			evidence(f, "last_cgroup_bytes", (double)last_cg, "B");
		evidence(f, "peak_pss_bytes", (double)w->peak_pss, "B");
		if (w->peak_cgroup)
			evidence(f, "peak_cgroup_bytes", (double)w->peak_cgroup, "B");
		if (shm)
			evidence(f, "cgroup_shmem_bytes", (double)shm, "B");
		return;
	}
	if (w->stopped_by_cohort && (e = find_event(r, "limit", w->rank)) != NULL) {
		uint64_t est = num_bytes(e, "est_bytes", 0);
		uint64_t limit = num_bytes(e, "limit_bytes", 0);

		double grow_rate, grow_s;
		size_t len;
		double total = cohort_rec_event_num(e, "total_bytes", -1) >= 0 ?
		               (double)num_bytes(e, "total_bytes", 0) : -1;

		if (!(f = add(l, r, COHORT_FINDING_BUDGET_KILL, w->rank, e->t)))
			return;
		/* The figure judged: the cgroup's count when it was the larger. */
		const char *src = strcmp(e->source, "cgroup") == 0 ? " (cgroup)" :
		                  strcmp(e->source, "estimate") == 0 ? " (estimate)" : "";

		if (total >= 0)
			SAY(f->message, "the workers used %s together at %.1f s, above the %s budget: "
			    "cohort stopped the largest, rank %d (pid %d, %s%s)", sz((uint64_t)total, c), e->t,
			    sz(limit, b), GR(r, w->rank), (int)w->pid, sz(est, a), src);
		else
			SAY(f->message, "rank %d (pid %d) used %s%s at %.1f s, above its %s budget: "
			    "stopped by cohort before the kernel's OOM killer picked a victim", GR(r, w->rank),
			    (int)w->pid, sz(est, a), src, e->t, sz(limit, b));
		name_process(r, f->message, sizeof(f->message), f, e);
		growth(r, w->rank, e->t, &grow_rate, &grow_s);
		len = (size_t)SAY(f->fix, "if the worker really needs that much, give it at least %s "
		                  "and a margin (--mem-per-worker %lluM or more, fewer workers, or a larger "
		                  "allocation)", sz(est, a), (unsigned long long)((est + est / 5) / MiB + 1));
		if (grow_rate > 0 && len < sizeof(f->fix))
			len += (size_t)snprintf(f->fix + len, sizeof(f->fix) - len, "; it was still "
			                        "growing when stopped (%s/s over its last %.1f s), so it "
			                        "needs more than that: run it once with a much larger "
			                        "limit to see its peak", sz((uint64_t)grow_rate, b), grow_s);
		if (len < sizeof(f->fix))
			len += (size_t)snprintf(f->fix + len, sizeof(f->fix) - len, "; if it should not "
			                        "need that much, see what grows%s",
			                        find_event(r, "leak", w->rank) ? " (the leak finding of this "
			                        "rank)" : find_growth(r, w->rank, "cow") ? " (the "
			                        "copy-on-write finding of this rank)" : ": a heap profiler "
			                        "(heaptrack, memray) shows what holds the memory");
		evidence(f, "est_bytes", (double)est, "B");
		if (cohort_rec_event_num(e, "cgroup_bytes", -1) >= 0)
			evidence(f, "cgroup_bytes", (double)num_bytes(e, "cgroup_bytes", 0), "B");
		evidence(f, "limit_bytes", (double)limit, "B");
		if (total >= 0)
			evidence(f, "total_bytes", total, "B");
		evidence(f, "peak_bytes", (double)worker_peak(w), "B");
		if (grow_rate > 0)
			evidence(f, "growth_bytes_per_s", grow_rate, "B/s");
		return;
	}
	if (w->signal == SIGSEGV) {
		const struct cohort_rec_event *cr = find_crash(r, w->pid);

		if (!(f = add(l, r, COHORT_FINDING_SEGFAULT, w->rank, w->end)))
			return;
		crash_details(f, cr, d, sizeof(d));
		SAY(f->message, "rank %d (pid %d) crashed with SIGSEGV (segmentation fault)%s", GR(r, w->rank),
		    (int)w->pid, d);
		if (cr && cr->in_guard)
			SAY(f->fix, "the worker wrote past the end of a shared segment: check the index "
			    "arithmetic against the segment's size; the backtrace shows where");
		else
			SAY(f->fix, "a bad pointer in the worker: run it under gdb, valgrind or "
			    "AddressSanitizer%s", cr && cr->backtrace[0] ? "; the backtrace shows where" : "");
		return;
	}
	if (w->signal == SIGBUS) {
		const struct cohort_rec_event *cr = find_crash(r, w->pid);
		bool shm_full = (last && r->shm_size && last->shm_free < r->shm_size / 50) ||
		                (cr && strstr(cr->where, "/dev/shm")) || (!cr && r->shm_free_start &&
		                last && last->shm_free && last->shm_free < 4 * MiB);

		if (shm_full) {
			uint64_t free_now = last ? last->shm_free : 0;

			if (!(f = add(l, r, COHORT_FINDING_SHM_EXHAUSTED, w->rank, w->end)))
				return;
			crash_details(f, cr, d, sizeof(d));
			SAY(f->message, "rank %d (pid %d) died of SIGBUS (bus error)%s: /dev/shm had %s free "
			    "of %s at the start and %s near the end; a segment's pages are only taken "
			    "when first written, and a write that finds /dev/shm full is a SIGBUS, long "
			    "after the segment was created", GR(r, w->rank), (int)w->pid, d, sz(r->shm_free_start, a),
			    sz(r->shm_size, b), sz(free_now, c));
			SAY(f->fix, "reserve the segment's pages when creating it (posix_fallocate, as "
			    "cohort_seg_create does) so that a full /dev/shm is an error at creation; "
			    "remove leftover segments (cohort shm gc); make the segments smaller or ask "
			    "for a node with a larger /dev/shm");
			evidence(f, "shm_free_start_bytes", (double)r->shm_free_start, "B");
			evidence(f, "shm_free_end_bytes", (double)free_now, "B");
			evidence(f, "shm_size_bytes", (double)r->shm_size, "B");
			if (last && last->has_cgroup)
				evidence(f, "cgroup_shmem_bytes", (double)last->cg_shmem, "B");
		} else {
			if (!(f = add(l, r, COHORT_FINDING_BUS_ERROR, w->rank, w->end)))
				return;
			crash_details(f, cr, d, sizeof(d));
			SAY(f->message, "rank %d (pid %d) died of SIGBUS (bus error)%s", GR(r, w->rank),
			    (int)w->pid, d);
			SAY(f->fix, "an access to a mapped file beyond its end (a file truncated while "
			    "mapped, or mapped past its size) or a misaligned access; check the mapping's "
			    "size against the file's");
		}
		return;
	}
	/* Ended by cohort because of something else (a signal it got, a failed start): not a crash. */
	if (stop_reason(r, w) != STOP_NONE)
		return;
	/*
	 * SIGTERM, SIGINT and SIGHUP are how jobs are asked to stop, but cohort
	 * did not send this one: another process stopped the worker.
	 */
	if (w->signal == SIGTERM || w->signal == SIGINT || w->signal == SIGHUP) {
		if (!(f = add(l, r, COHORT_FINDING_SIGNALLED, w->rank, w->end)))
			return;
		SAY(f->message, "rank %d (pid %d) was ended by SIG%s at %.1f s, which cohort did not send "
		    "(it got no signal itself): another process stopped the worker", GR(r, w->rank), (int)w->pid,
		    sigabbrev_np(w->signal), w->end);
		SAY(f->fix, "see who sends it: a user's kill or pkill, a timeout wrapper, a parent "
		    "process, or a daemon such as earlyoom or systemd-oomd (its log says); under SLURM, "
		    "signal the whole job (scancel) rather than a worker");
		evidence(f, "signal", w->signal, "");
		return;
	}
	if (w->signal) {
		if (!(f = add(l, r, COHORT_FINDING_CRASH, w->rank, w->end)))
			return;
		crash_details(f, find_crash(r, w->pid), d, sizeof(d));
		SAY(f->message, "rank %d (pid %d) was killed by signal %d (%s)%s%s", GR(r, w->rank), (int)w->pid,
		    w->signal, strsignal(w->signal), d,
		    w->signal == SIGKILL ? "; not by the kernel's OOM killer (no oom_kill was "
		    "counted) nor by cohort: by another process, or SLURM at a limit" : "");
		SAY(f->fix, "%s", w->signal == SIGABRT ? "the worker aborted itself (a failed assert, "
		    "or a library such as glibc detecting heap corruption): its stderr says why" :
		    "see the worker's output and the node's logs for who sent the signal");
		evidence(f, "signal", w->signal, "");
		return;
	}
	if (w->exit_code > 0) {
		double sig_t;
		const char *sig_name;

		/* Stopping on the signal cohort passed on: the signalled finding names it. */
		if (supervisor_signal(r, &sig_t, &sig_name) && w->end >= sig_t)
			return;
		if (!(f = add(l, r, COHORT_FINDING_EXIT_NONZERO, w->rank, w->end)))
			return;
		SAY(f->message, "rank %d (pid %d) exited with status %d after %.1f s", GR(r, w->rank),
		    (int)w->pid, w->exit_code, w->end - w->start);
		SAY(f->fix, "see the worker's own messages (cohort run -l labels each line with its "
		    "rank)%s", strcmp(r->enforce, "rlimit") == 0 ? "; under --enforce rlimit an "
		    "allocation above the worker's limit fails inside it, which many programs report "
		    "as an error exit" : "");
		evidence(f, "exit_code", w->exit_code, "");
	}
}

/*
 * The recording cannot tell writes to the data from reference counts
 * touching it: the fix for copy-on-write names both, each with its remedy.
 */
static void cow_fix(struct cohort_finding *f, uint64_t total)
{
	char c[32];

	SAY(f->fix, "each copy is real memory, and the workers' processes copy what they "
	    "write: if they write the data they share after fork, budget for the copies "
	    "(here %s for this worker's processes, and as much again for each worker "
	    "that does the same), partition the data so each process touches only its "
	    "part, or put it in memory mapped shared (a cohort segment, "
	    "multiprocessing.shared_memory, a file mmap'd MAP_SHARED) so that writes go "
	    "to one copy; if they only read it, the copies come from reference counts "
	    "of many small Python objects: keep the data in flat arrays (numpy, array), "
	    "load it after forking, or start the workers with spawn", sz(total, c));
}

/* Shared memory (tmpfs, /dev/shm) that a worker's cgroup was charged for. Returns 0 out of memory. */
static int shmem_charged(struct list *l, const struct cohort_recording *r, const struct cohort_rec_event *e)
{
	const struct cohort_rec_worker *w = &r->workers[e->rank];
	uint64_t shmem = num_bytes(e, "cgroup_shmem_bytes", 0), limit = num_bytes(e, "limit_bytes", 0);
	uint64_t shm_size = num_bytes(e, "shm_size_bytes", r->shm_size);
	uint64_t shm_free = num_bytes(e, "shm_free_bytes", 0);
	struct cohort_finding *f;
	char a[32], b[32], c[32], d[32], g[32];

	if (!(f = add(l, r, COHORT_FINDING_SHMEM_CHARGED, e->rank, e->t)))
		return 0;
	SAY(f->message, "rank %d (pid %d): %s of shared memory (files in /dev/shm or another tmpfs, "
	    "shared anonymous mappings) was charged to its cgroup at %.1f s (%s at its first "
	    "sample), against its %s limit%s%s%s%s%s: the kernel charges these pages to the cgroup "
	    "that first wrote them, whether or not a process still maps them, and RSS shows them "
	    "only while mapped", GR(r, e->rank), (int)w->pid, sz(shmem, a), e->t,
	    sz(shmem - (shmem > num_bytes(e, "shmem_growth_bytes", 0) ?
	                num_bytes(e, "shmem_growth_bytes", 0) : shmem), b),
	    limit ? sz(limit, c) : "(none set)",
	    shm_size ? "; /dev/shm is " : "", shm_size ? sz(shm_size, d) : "",
	    shm_size ? " with " : "", shm_size ? sz(shm_free, g) : "", shm_size ? " free" : "");
	SAY(f->fix, "size the segments against both /dev/shm (%s) and the worker's memory limit "
	    "(%s): here they take %s of it; give the limit room for them (--mem-per-worker), make "
	    "them smaller, or remove those no longer needed (unlink them when done; cohort shm gc "
	    "removes leftovers of dead jobs)", shm_size ? sz(shm_size, d) : "size not recorded",
	    limit ? sz(limit, c) : "none set", sz(shmem, a));
	evidence(f, "cgroup_shmem_bytes", (double)shmem, "B");
	evidence(f, "shmem_growth_bytes", (double)num_bytes(e, "shmem_growth_bytes", 0), "B");
	evidence(f, "cgroup_usage_bytes", (double)num_bytes(e, "cgroup_usage_bytes", 0), "B");
	evidence(f, "rss_sum_bytes", (double)num_bytes(e, "rss_sum_bytes", 0), "B");
	evidence(f, "limit_bytes", (double)limit, "B");
	if (shm_size)
		evidence(f, "shm_size_bytes", (double)shm_size, "B");
	evidence(f, "first_seen_s", e->t, "s");
	return 1;
}

/* Page cache that made up a worker cgroup's usage near its limit. Returns 0 out of memory. */
static int page_cache(struct list *l, const struct cohort_recording *r, const struct cohort_rec_event *e)
{
	const struct cohort_rec_worker *w = &r->workers[e->rank];
	uint64_t cache = num_bytes(e, "page_cache_bytes", 0), limit = num_bytes(e, "limit_bytes", 0);
	uint64_t usage = num_bytes(e, "cgroup_usage_bytes", 0);
	uint64_t inactive = num_bytes(e, "inactive_file_bytes", 0);
	struct cohort_finding *f;
	char a[32], b[32], c[32], d[32], g[32];

	if (!(f = add(l, r, COHORT_FINDING_PAGE_CACHE, e->rank, e->t)))
		return 0;
	SAY(f->message, "rank %d (pid %d): at %.1f s its cgroup's usage, %s of its %s limit, included "
	    "%s of page cache (files it read or wrote), %s of it inactive; without the inactive part "
	    "it used %s", GR(r, e->rank), (int)w->pid, e->t, sz(usage, a), sz(limit, b), sz(cache, c),
	    sz(inactive, d), sz(num_bytes(e, "cgroup_bytes", usage > inactive ? usage - inactive : 0), g));
	SAY(f->fix, "page cache is reclaimable: the kernel drops it before it OOM-kills, so it "
	    "counts against the limit only when it cannot be dropped (dirty pages not yet written "
	    "back, pages kept active by repeated reads, files mapped by the workers); nothing to "
	    "fix unless the worker stalled or was killed near its limit: then write less at once "
	    "(fsync large outputs as they are written), read large inputs once, or give it more "
	    "memory");
	evidence(f, "page_cache_bytes", (double)cache, "B");
	evidence(f, "inactive_file_bytes", (double)inactive, "B");
	evidence(f, "cgroup_usage_bytes", (double)usage, "B");
	evidence(f, "limit_bytes", (double)limit, "B");
	evidence(f, "first_seen_s", e->t, "s");
	return 1;
}

/*
 * The leak and copy-on-write events are notices of when a trend was first
 * seen; the findings quote the figures at the end (the exit event's, or the
 * last sample's when the recording was cut before the worker ended), with
 * the time first seen as the evidence first_seen_s and as finding->t.
 */
static void trends(struct list *l, const struct cohort_recording *r)
{
	char a[32], b[32], c[32], d[32], d2[32];

	for (size_t i = 0; i < r->nevents; i++) {
		const struct cohort_rec_event *e = &r->events[i];
		struct cohort_finding *f;

		if (e->rank < 0)
			continue;
		const struct cohort_rec_worker *w = &r->workers[e->rank];

		/* One finding per worker and trend (and kind of growth): the supervisor notices each once. */
		if (strcmp(e->kind, "cow_unshare") == 0 ? find_growth(r, e->rank, growth_of(e)) != e :
		    find_event(r, e->kind, e->rank) != e)
			continue;
		if (strcmp(e->kind, "leak") == 0) {
			double rate = cohort_rec_event_num(e, "rate_bytes_per_s", 0);
			double window = cohort_rec_event_num(e, "window_s", 0);

			/* A rate or window below zero is an edited file: no such thing. */
			rate = rate > 0 ? (rate < 1.8e19 ? rate : 1.8e19) : 0;
			window = window > 0 ? window : 0;
			/* A worker never sampled after the notice: the notice's own figure. */
			uint64_t now = w->last_est ? w->last_est :
			               num_bytes(e, "current_bytes", 0);
			/* The last estimate may be above the sampled peaks (RSS moved since the walk). */
			uint64_t peak = worker_peak(w) > now ? worker_peak(w) : now;

			if (!(f = add(l, r, COHORT_FINDING_LEAK, e->rank, e->t)))
				return;
			/*
			 * The watcher's rate is the floors' rise over the time between
			 * the centres of the spans they were taken in, which is less
			 * than the window: quote the rise, the rate and that time, so
			 * that the figures agree (rise = rate x time).
			 */
			uint64_t ff = num_bytes(e, "floor_first_bytes", 0), fl = num_bytes(e, "floor_last_bytes", 0);
			char how[200];

			if (fl > ff && rate > 0)
				SAY(how, "its memory floor rose from %s to %s, by %s in %.1f s (%s/s, measured "
				    "in a %.0f s window", sz(ff, a), sz(fl, b), sz(fl - ff, c),
				    (double)(fl - ff) / rate, sz((uint64_t)rate, d), window);
			else
				SAY(how, "its memory floor rose at %s/s (measured in a %.0f s window",
				    sz((uint64_t)rate, a), window);
			SAY(f->message, "rank %d (pid %d) leaks: %s; first seen at %.1f s); %s %s, peak %s%s",
			    GR(r, e->rank), (int)w->pid, how, e->t,
			    w->ended ? "it ended using" : "it used", sz(now, b), sz(peak, c),
			    w->peak_cgroup && peak == w->peak_cgroup ? " (its cgroup's exact peak)" : "");
			name_process(r, f->message, sizeof(f->message), f, e);
			SAY(f->fix, "the worker keeps memory it never gives back: objects kept in a list, "
			    "cache, dict or global that only grows; find it with heaptrack or valgrind "
			    "(C), memray or tracemalloc (Python); freeing is not the question, dropping "
			    "the last reference is");
			evidence(f, "rate_bytes_per_s", rate, "B/s");
			evidence(f, "window_s", window, "s");
			if (fl > ff && rate > 0)
				evidence(f, "floor_rise_bytes", (double)(fl - ff), "B");
			evidence(f, "current_bytes", (double)now, "B");
			evidence(f, "peak_bytes", (double)peak, "B");
			/* When it was first seen, at that rate, the worker would reach its budget. */
			evidence(f, "eta_s", cohort_rec_event_num(e, "eta_s", 0) > 0 ?
			         cohort_rec_event_num(e, "eta_s", 0) : 0, "s");
			evidence(f, "first_seen_s", e->t, "s");
		} else if (strcmp(e->kind, "cow_unshare") == 0 && strcmp(growth_of(e), "shmem") == 0) {
			if (!shmem_charged(l, r, e))
				return;
		} else if (strcmp(e->kind, "cow_unshare") == 0 && strcmp(growth_of(e), "page_cache") == 0) {
			if (!page_cache(l, r, e))
				return;
		} else if (strcmp(e->kind, "cow_unshare") == 0 && strcmp(e->source, "cgroup") == 0) {
			uint64_t first = num_bytes(e, "copied_bytes", 0);
			uint64_t total = w->cow_copied > first ? w->cow_copied : first;

			if (!(f = add(l, r, COHORT_FINDING_COW_UNSHARE, e->rank, e->t)))
				return;
			SAY(f->message, "rank %d (pid %d): copy-on-write, by its cgroup's count: its cgroup held up "
			    "to %s of anonymous memory beyond what its processes allocated (first seen at "
			    "%.1f s, when the cgroup held %s of anonymous memory and %s in all while its "
			    "processes' RSS sum was %s): every write to a page shared after fork, reference "
			    "counts included, makes a private copy that the kernel charges to the worker "
			    "and RSS does not show; nothing leaks (peak USS %s)", GR(r, e->rank), (int)w->pid,
			    sz(total, a), e->t, sz(num_bytes(e, "cgroup_anon_bytes", 0), b),
			    sz(num_bytes(e, "cgroup_usage_bytes", 0), c),
			    sz(num_bytes(e, "rss_sum_bytes", 0), d), sz(w->peak_uss, d2));
			cow_fix(f, total);
			evidence(f, "copied_bytes", (double)total, "B");
			evidence(f, "cgroup_anon_bytes", (double)num_bytes(e, "cgroup_anon_bytes", 0), "B");
			evidence(f, "cgroup_usage_bytes", (double)num_bytes(e, "cgroup_usage_bytes", 0), "B");
			evidence(f, "rss_sum_bytes", (double)num_bytes(e, "rss_sum_bytes", 0), "B");
			evidence(f, "allocated_bytes", (double)num_bytes(e, "allocated_bytes", 0), "B");
			evidence(f, "peak_uss_bytes", (double)w->peak_uss, "B");
			evidence(f, "first_seen_s", e->t, "s");
		} else if (strcmp(e->kind, "cow_unshare") == 0) {
			uint64_t first = num_bytes(e, "copied_bytes", 0);
			/* A total below the notice's own figure is an edited file: the notice stands. */
			uint64_t total = w->cow_copied > first ? w->cow_copied : first;

			if (!(f = add(l, r, COHORT_FINDING_COW_UNSHARE, e->rank, e->t)))
				return;
			SAY(f->message, "rank %d (pid %d): its processes copied %s of memory they shared "
			    "after fork (copy-on-write; first seen at %.1f s): every write to a shared page, "
			    "reference counts included, makes a private copy, so private memory grows while "
			    "nothing leaks (peak USS %s)", GR(r, e->rank), (int)w->pid, sz(total, a), e->t,
			    sz(w->peak_uss, b));
			cow_fix(f, total);
			evidence(f, "copied_bytes", (double)total, "B");
			evidence(f, "peak_uss_bytes", (double)w->peak_uss, "B");
			evidence(f, "first_seen_s", e->t, "s");
		}
	}
}

/*
 * Whether SLURM charged the job the sum of its processes' RSS, by the one
 * rule, cohort_slurm_sums_rss(), on the configuration the header recorded.
 * When the header has no slurm_config (scontrol show config could not be
 * read), that rule assumes jobacct_gather/linux without UsePss, as the
 * supervisor does when it warns: *ret_assumed is then true, and the
 * finding says so.
 */
static bool slurm_sums_rss(const struct cohort_recording *r, bool *ret_assumed)
{
	*ret_assumed = !r->jobacct[0];
	return sums_rss(r);
}

/*
 * Under SLURM with jobacct_gather/linux, the RSS sum over the job's limit
 * while the PSS sum fits. A job killed early (the recording cut, or the
 * supervisor got a signal) is judged on the last sample, which may be the
 * only one: that is what SLURM saw when it killed. Otherwise the sample of
 * the largest RSS sum, or the supervisor's slurm_rss_risk notice when the
 * sum never passed the limit. Both sides judge by cohort_slurm_rss_level().
 */
static bool rss_over(const struct cohort_rec_sample *s, uint64_t limit)
{
	return cohort_slurm_rss_level(s->rss_sum, s->pss_sum, limit) == COHORT_SLURM_RSS_OVER;
}

static void slurm_overcount(struct list *l, const struct cohort_recording *r)
{
	const struct cohort_rec_sample *last = last_sample(r), *at = NULL;
	const struct cohort_rec_event *risk = find_event(r, "slurm_rss_risk", -2);
	struct cohort_finding *f;
	char a[32], b[32], c[32], how[192];
	double sig_t = -1, first = -1;
	const char *sig_name = NULL;
	bool assumed, killed, got_signal;
	uint64_t rss, pss;

	if (!r->slurm || !r->mem_limit || !slurm_sums_rss(r, &assumed))
		return;
	got_signal = supervisor_signal(r, &sig_t, &sig_name);
	killed = !r->ended || got_signal;
	if (killed && last && rss_over(last, r->mem_limit)) {
		at = last;
	} else {
		for (size_t i = 0; i < r->nsamples; i++)
			if (!at || r->samples[i].rss_sum > at->rss_sum)
				at = &r->samples[i];
		if (at && !rss_over(at, r->mem_limit) && !risk)
			return;
	}
	if (!at && !risk)
		return;
	rss = at ? at->rss_sum : num_bytes(risk, "rss_sum_bytes", 0);
	pss = at ? at->pss_sum : num_bytes(risk, "pss_sum_bytes", 0);
	/* When the sum first passed the limit, else when the supervisor warned of it. */
	for (size_t i = 0; i < r->nsamples && first < 0; i++)
		if (rss_over(&r->samples[i], r->mem_limit))
			first = r->samples[i].t;
	if (risk && (first < 0 || risk->t < first))
		first = risk->t;
	if (first < 0)
		first = at ? at->t : 0;

	if (rss <= r->mem_limit)
		SAY(how, "would kill the job as the sum grows");
	else if (!r->ended)
		SAY(how, "killed this one (the recording was cut when SLURM ended the step)");
	else if (got_signal)
		SAY(how, "stopped this one (cohort got %s at %.1f s)", sig_name, sig_t);
	else
		SAY(how, "kills such a job");
	if (!(f = add(l, r, COHORT_FINDING_SLURM_RSS_OVERCOUNT, -1, first)))
		return;
	SAY(f->message, "the workers' RSS sum %s %s against the job's %s limit (%s) while their PSS "
	    "sum, what they really use, was %s: SLURM's %s adds up the RSS of every process, "
	    "charging pages they share once per process, and with OverMemoryKill %s",
	    at == last && killed ? "was, at the last sample," : "reached", sz(rss, a),
	    sz(r->mem_limit, b), r->mem_limit_source[0] ? r->mem_limit_source : "unknown source",
	    sz(pss, c), assumed ? "jobacct_gather/linux (assumed: the recording does not have "
	    "SLURM's configuration)" : "jobacct_gather/linux", how);
	/* UsePss is not set (else no finding): say what would change it. */
	SAY(f->fix, "ask the cluster's administrators for JobAcctGatherParams=UsePss (or "
	    "jobacct_gather/cgroup with ConstrainRAMSpace=yes), which count shared pages once; "
	    "meanwhile request --mem=%lluM, the RSS sum and a tenth, or share less per process",
	    (unsigned long long)((rss + rss / 10) / MiB + 1));
	evidence(f, "rss_sum_bytes", (double)rss, "B");
	evidence(f, "pss_sum_bytes", (double)pss, "B");
	evidence(f, "limit_bytes", (double)r->mem_limit, "B");
	evidence(f, "first_seen_s", first, "s");
	if (at)
		evidence(f, "sample_t_s", at->t, "s");
}

static void job_level(struct list *l, const struct cohort_recording *r, size_t first)
{
	struct cohort_finding *f;
	char a[32], b[32], c[32];
	double psi_peak = -1, t_psi = -1, sig_t = -1;
	const char *sig_name = NULL;
	uint64_t swap_first = 0, swap_peak = 0, cg_swap_first = 0, cg_swap_peak = 0;
	double fill = 0;     /* the largest use of the limit, as a fraction */
	bool cg_seen = false;

	for (size_t i = 0; i < r->nsamples; i++) {
		const struct cohort_rec_sample *s = &r->samples[i];
		uint64_t used = s->pss_sum > s->est_sum ? s->pss_sum : s->est_sum;

		if (s->psi_some10 > psi_peak) {
			psi_peak = s->psi_some10;
			t_psi = s->t;
		}
		if (i == 0)
			swap_first = s->swap_used;
		if (s->swap_used > swap_peak)
			swap_peak = s->swap_used;
		if (s->has_cgroup) {
			if (!cg_seen) {
				cg_swap_first = s->cg_swap;
				cg_seen = true;
			}
			if (s->cg_swap > cg_swap_peak)
				cg_swap_peak = s->cg_swap;
			if (s->cg_limit && s->cg_limit < UINT64_MAX / 2 &&
			    (double)s->cg_usage / (double)s->cg_limit > fill)
				fill = (double)s->cg_usage / (double)s->cg_limit;
		}
		if (r->mem_limit && (double)used / (double)r->mem_limit > fill)
			fill = (double)used / (double)r->mem_limit;
	}

	slurm_overcount(l, r);

	/*
	 * The workers were short of memory: stalls in reclaim (PSI), the job's
	 * own pages going to swap (its cgroup's swap), or the node's swap
	 * growing while the job filled its limit. The node's swap growing while
	 * the job used little of its limit is another process's doing: no
	 * finding blames the job for it.
	 */
	bool stalled = psi_peak >= 10.0;
	bool cg_swapped = cg_swap_peak > cg_swap_first + 64 * MiB;
	bool node_swapped = swap_peak > swap_first + 64 * MiB && fill >= 0.9;

	if (stalled || cg_swapped || node_swapped) {
		if ((f = add(l, r, COHORT_FINDING_OVERSUBSCRIBED, -1, stalled ? t_psi : -1)) != NULL) {
			char stall[96] = "", swap[200] = "", node[200] = "";

			if (stalled)
				SAY(stall, "tasks stalled waiting for memory %.0f%% of the time (PSI some avg10)",
				    psi_peak);
			if (cg_swapped)
				SAY(swap, "%s%s of the job's memory went to swap (its cgroup's swap rose from "
				    "%s to %s)", stall[0] ? "; " : "", sz(cg_swap_peak - cg_swap_first, a),
				    sz(cg_swap_first, b), sz(cg_swap_peak, c));
			if (node_swapped)
				SAY(node, "%sthey used up to %.0f%% of their limit while the node's swap in use "
				    "rose by %s (from %s to %s)", stall[0] || swap[0] ? "; " : "", fill * 100,
				    sz(swap_peak - swap_first, a), sz(swap_first, b), sz(swap_peak, c));
			SAY(f->message, "the workers were short of memory while they ran: %s%s%s; they slow "
			    "down by orders of magnitude instead of failing", stall, swap, node);
			SAY(f->fix, "give the workers the memory they use, so that nothing has to swap: "
			    "fewer workers or more memory per worker (--mem, --mem-per-worker; cohort check "
			    "says what fits), and an explicit --mem so SLURM does not pack other jobs beside "
			    "this one on the node");
			evidence(f, "psi_some_avg10_pct", psi_peak, "%");
			evidence(f, "swap_growth_bytes", (double)(swap_peak > swap_first ? swap_peak - swap_first : 0), "B");
			evidence(f, "cgroup_swap_growth_bytes", (double)(cg_swap_peak > cg_swap_first ?
			         cg_swap_peak - cg_swap_first : 0), "B");
			evidence(f, "limit_fill_pct", fill * 100, "%");
		}
	}

	if (!r->ended && (f = add(l, r, COHORT_FINDING_CUT, -1, r->duration)) != NULL) {
		char got[160] = "";

		if (supervisor_signal(r, &sig_t, &sig_name)) {
			if (r->signal_sender_pid > 0)
				SAY(got, "; it had got %s from pid %ld at %.1f s", sig_name,
				    r->signal_sender_pid, sig_t);
			else
				SAY(got, "; it had got %s at %.1f s", sig_name, sig_t);
		}
		SAY(f->message, "the recording %s ends at %.1f s without cohort run's last line: the "
		    "supervisor itself was killed%s, so workers still running then were killed with it%s",
		    r->path, r->duration, r->slurm ? " (SLURM ends a step this way at its time or "
		    "memory limit, or on scancel)" : " (SIGKILL, or its machine went down)", got);
		SAY(f->fix, "%s%s", r->slurm ? "see `sacct -j JOBID` and slurmstepd's messages for "
		    "why SLURM ended the step" : "nothing to change in the workers for this",
		    l->n - 1 > first ? "; the findings above tell what the workers were doing" :
		    "; the recording shows nothing wrong with the workers until then");
		evidence(f, "duration_s", r->duration, "s");
	}
}

/*
 * The order of the kinds in a report, most important first. New kinds are
 * appended to the enum (its numbers are in JSON and in programs), so the
 * order is this table's: a worker that never started first (the others
 * were stopped because of it), then kills and crashes, then the job
 * stopped by a signal (what ended it, after what broke inside it), then
 * trends, then the rest.
 */
static int importance(enum cohort_finding_kind kind)
{
	static const enum cohort_finding_kind order[] = {
		COHORT_FINDING_SPAWN_FAILED, COHORT_FINDING_OOM_KILL, COHORT_FINDING_BUDGET_KILL,
		COHORT_FINDING_SLURM_RSS_OVERCOUNT, COHORT_FINDING_SHM_EXHAUSTED, COHORT_FINDING_SEGFAULT,
		COHORT_FINDING_BUS_ERROR, COHORT_FINDING_SIGNALLED, COHORT_FINDING_LEAK,
		COHORT_FINDING_COW_UNSHARE, COHORT_FINDING_OVERSUBSCRIBED, COHORT_FINDING_NODE_IMBALANCE,
		COHORT_FINDING_CRASH,
		COHORT_FINDING_SHMEM_CHARGED, COHORT_FINDING_EXIT_NONZERO, COHORT_FINDING_CUT,
		COHORT_FINDING_PAGE_CACHE,
	};

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if (order[i] == kind)
			return (int)i;
	return (int)(sizeof(order) / sizeof(order[0]));
}

static int cmp(const void *pa, const void *pb)
{
	const struct cohort_finding *a = pa, *b = pb;

	if (a->kind != b->kind)
		return importance(a->kind) - importance(b->kind);
	if (a->t != b->t)
		return a->t < b->t ? -1 : 1;
	return a->global_rank - b->global_rank;
}

/*
 * One node's tasks using several times what the other nodes' tasks use
 * (data split unevenly, a rank that gathers everything): `--mem` is per
 * node, so the job is sized for its heaviest node, which is the one that
 * dies first, while the others leave theirs unused. Per node, the mean of
 * its tasks' peaks (a task's peak: its workers' peaks added up); said
 * when the heaviest node's mean is at least IMBALANCE_RATIO times the
 * next node's and IMBALANCE_MIN more.
 */
#define IMBALANCE_RATIO 2.0
#define IMBALANCE_MIN (64 * MiB)

struct node_use {
	const char *name;
	const struct cohort_recording *first;  /* its first task's recording */
	uint64_t sum;                           /* its tasks' peaks added up */
	unsigned ntasks;
};

static double node_mean(const struct node_use *u)
{
	return u->ntasks ? (double)u->sum / u->ntasks : 0;
}

static void node_imbalance(struct list *l, struct cohort_recording *const *recs, size_t nrecs)
{
	struct node_use *u = calloc(nrecs ? nrecs : 1, sizeof(*u));
	size_t nn = 0, hi = 0, next = 0, ntasks = 0;
	char a[32], b[32], others[COHORT_MSG_MAX / 2] = "";
	struct cohort_finding *f;
	size_t len = 0;

	if (!u) {
		l->error = -ENOMEM;
		return;
	}
	for (size_t i = 0; i < nrecs; i++) {
		const struct cohort_recording *r = recs[i];
		uint64_t peak = 0;
		size_t k;

		if (!r->task.known || !r->task.node[0])
			continue;
		for (unsigned w = 0; w < r->nworkers; w++)
			peak += worker_peak(&r->workers[w]);
		for (k = 0; k < nn && strcmp(u[k].name, r->task.node) != 0; k++)
			;
		if (k == nn)
			u[nn++] = (struct node_use){ r->task.node, r, 0, 0 };
		u[k].sum += peak;
		u[k].ntasks++;
		ntasks++;
	}
	if (nn < 2)
		goto out;
	for (size_t k = 1; k < nn; k++)
		if (node_mean(&u[k]) > node_mean(&u[hi]))
			hi = k;
	next = hi == 0 ? 1 : 0;
	for (size_t k = 0; k < nn; k++)
		if (k != hi && node_mean(&u[k]) > node_mean(&u[next]))
			next = k;
	if (node_mean(&u[hi]) < IMBALANCE_RATIO * node_mean(&u[next]) ||
	    node_mean(&u[hi]) < node_mean(&u[next]) + IMBALANCE_MIN)
		goto out;
	/* The other nodes, in the order recorded, four at most. */
	for (size_t k = 0, shown = 0; k < nn && len + 64 < sizeof(others); k++) {
		if (k == hi)
			continue;
		if (shown == 4) {
			len += (size_t)snprintf(others + len, sizeof(others) - len, ", ...");
			break;
		}
		len += (size_t)snprintf(others + len, sizeof(others) - len, "%s%s %s", shown ? ", " : "",
		                        u[k].name, sz((uint64_t)node_mean(&u[k]), a));
		shown++;
	}
	if (!(f = add(l, u[hi].first, COHORT_FINDING_NODE_IMBALANCE, -1, -1)))
		goto out;
	f->task = -1;
	SAY(f->message, "node %s's %u task%s peaked at %s each on average, %.1fx those of the next node, %s (%s); "
	    "the other nodes' tasks: %s (%zu nodes, %zu tasks; a task's peak is its workers' peaks added up)",
	    u[hi].name, u[hi].ntasks, u[hi].ntasks == 1 ? "" : "s", sz((uint64_t)node_mean(&u[hi]), a),
	    node_mean(&u[hi]) / node_mean(&u[next]), u[next].name, sz((uint64_t)node_mean(&u[next]), b), others,
	    nn, ntasks);
	SAY(f->fix, "spread the data or the work evenly over the ranks; --mem is per node, so the job is "
	    "sized for %s while the other nodes leave most of theirs unused; or give the heavy ranks a "
	    "node of their own with more memory (a heterogeneous job, srun --mem ... : --mem ...)", u[hi].name);
	evidence(f, "node_task_peak_mean", node_mean(&u[hi]), "B");
	evidence(f, "next_node_task_peak_mean", node_mean(&u[next]), "B");
	evidence(f, "ratio", node_mean(&u[hi]) / node_mean(&u[next]), "x");
	evidence(f, "nodes", (double)nn, "");
out:
	free(u);
}

/*
 * The MPI rank of worker pid when the worker is itself an MPI process
 * (srun --mpi=pmix cohort run -- ./mpi_prog: PMIX_RANK in its own
 * environment, as the watcher read it into the events that name it), or
 * -1 when no event names it so.
 */
static long own_mpi_rank(const struct cohort_recording *r, pid_t pid)
{
	for (size_t i = 0; pid > 0 && i < r->nevents; i++) {
		const struct cohort_rec_event *e = &r->events[i];
		double m;

		if (e->pid != pid || (pid_t)cohort_rec_event_num(e, "process_pid", 0) != pid)
			continue;
		m = cohort_rec_event_num(e, "process_mpi_rank", -1);
		if (m >= 0 && m < 1e9)
			return (long)m;
	}
	return -1;
}

static bool has_evidence(const struct cohort_finding *f, const char *name)
{
	for (int i = 0; i < f->nevidence; i++)
		if (strcmp(f->evidence[i].name, name) == 0)
			return true;
	return false;
}

/*
 * The recording of one MPI rank (mpirun ... cohort run), or of a SLURM
 * task whose worker is an MPI rank (srun --mpi=pmix cohort run): its
 * findings' "rank R (pid P" become "rank R (MPI rank M, pid P", or
 * "(worker K of MPI rank M, pid P" with several workers per rank, so that
 * the rank a user knows from mpirun or MPI_Comm_rank is in the words. A
 * SLURM task's MPI rank is in the evidence too (process_mpi_rank).
 */
static void mpi_words(struct cohort_finding *f, size_t n, const struct cohort_recording *r)
{
	bool by_task;

	if (!r->task.known)
		return;
	by_task = strcmp(r->task.source, "mpi") == 0;
	if (!by_task && strcmp(r->task.source, "slurm") != 0)
		return;
	for (size_t i = 0; i < n; i++) {
		char from[48], to[96], buf[sizeof(f[i].message)], *at;
		long m;
		size_t len;

		if (f[i].rank < 0)
			continue;
		m = by_task ? r->task.id : own_mpi_rank(r, f[i].pid);
		if (m < 0)
			continue;
		snprintf(from, sizeof(from), "rank %d (pid ", f[i].global_rank);
		if (by_task && r->nworkers > 1)
			snprintf(to, sizeof(to), "rank %d (worker %d of MPI rank %ld, pid ", f[i].global_rank,
			         f[i].rank, m);
		else
			snprintf(to, sizeof(to), "rank %d (MPI rank %ld, pid ", f[i].global_rank, m);
		if (!by_task && !has_evidence(&f[i], "process_mpi_rank"))
			evidence(&f[i], "process_mpi_rank", (double)m, "");
		at = strstr(f[i].message, from);
		if (!at)
			continue;
		len = (size_t)(at - f[i].message);
		snprintf(buf, sizeof(buf), "%.*s%s%s", (int)len, f[i].message, to, at + strlen(from));
		cohort__strlcpy(f[i].message, buf, sizeof(f[i].message));
	}
}

void cohort_findings_free(struct cohort_finding *findings)
{
	free(findings);
}

int cohort_diagnose(struct cohort_recording *const *recs, size_t nrecs,
                    struct cohort_finding **ret, size_t *ret_n)
{
	struct list l = { 0 };

	for (size_t i = 0; i < nrecs && !l.error; i++) {
		const struct cohort_recording *r = recs[i];

		size_t first = l.n;

		spawn_failed(&l, r);
		for (unsigned k = 0; k < r->nworkers && !l.error; k++)
			worker_end(&l, r, &r->workers[k]);
		if (!l.error)
			signalled(&l, r);
		if (!l.error)
			trends(&l, r);
		if (!l.error)
			job_level(&l, r, first);
		if (!l.error)
			mpi_words(l.f + first, l.n - first, r);
	}
	if (!l.error)
		node_imbalance(&l, recs, nrecs);
	if (l.error) {
		free(l.f);
		return l.error;
	}
	if (l.n)
		qsort(l.f, l.n, sizeof(*l.f), cmp);
	*ret = l.f;
	*ret_n = l.n;
	return 0;
}
