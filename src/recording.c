/*
 * recording.c - the recording of a run (docs/recording.md): the reader,
 * and at the end of the file the writer.
 *
 * The reader trusts nothing: a line may be cut (the supervisor was
 * killed), edited, or not JSON at all; numbers may be negative, huge or
 * strings; ranks may be out of range. Whatever is odd is skipped and
 * counted, never followed.
 */
#include "internal.h"
#include "json.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FORMAT_KNOWN COHORT_RECORDING_FORMAT
#define MAX_WORKERS 65536
#define MAX_LINE (64u << 20)

static void seterr(char *why, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void seterr(char *why, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (!why || !size)
		return;
	va_start(ap, fmt);
	vsnprintf(why, size, fmt, ap);
	va_end(ap);
}

static uint64_t get_u64(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	double d;

	if (json_is_integer(v))
		return json_integer_value(v) < 0 ? 0 : (uint64_t)json_integer_value(v);
	if (json_is_real(v)) {
		d = json_real_value(v);
		return (d > 0 && d < 1.8e19) ? (uint64_t)d : 0;
	}
	return 0;
}

static double get_num(json_t *o, const char *key, double def)
{
	json_t *v = json_object_get(o, key);
	double d;

	if (!json_is_number(v))
		return def;
	d = json_number_value(v);
	return isfinite(d) ? d : def;
}

/* Whether the field is there as a number (a null or a missing field is not). */
static bool has_num(json_t *o, const char *key)
{
	return json_is_number(json_object_get(o, key));
}

static long get_long(json_t *o, const char *key, long def)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v))
		return def;
	if (json_integer_value(v) < -(1LL << 40) || json_integer_value(v) > (1LL << 40))
		return def;
	return (long)json_integer_value(v);
}

static void get_str(json_t *o, const char *key, char *dst, size_t size)
{
	const char *v = json_string_value(json_object_get(o, key));

	cohort__strlcpy(dst, v ? v : "", size);
}

static int read_header(struct cohort_recording *r, json_t *h, char *why, size_t why_size)
{
	json_t *alloc, *slurm, *cmd, *cfg, *a;
	size_t i;

	r->format = (int)get_long(h, "format", 0);
	if (r->format < 1 || r->format > FORMAT_KNOWN) {
		seterr(why, why_size, "%s: recording format %d, this cohort reads format %d (upgrade cohort)",
		       r->path, r->format, FORMAT_KNOWN);
		return COHORT_EBADREC;
	}
	get_str(h, "host", r->host, sizeof(r->host));
	get_str(h, "job", r->job, sizeof(r->job));
	r->start = get_num(h, "start", 0);
	cmd = json_object_get(h, "command");
	json_array_foreach(cmd, i, a) {
		const char *w = json_string_value(a);
		size_t len = strlen(r->command);

		if (!w || len + 2 >= sizeof(r->command))
			break;
		snprintf(r->command + len, sizeof(r->command) - len, "%s%s", len ? " " : "", w);
	}
	long n = get_long(h, "workers", 0);
	if (n < 1 || n > MAX_WORKERS) {
		seterr(why, why_size, "%s: the header says %ld workers", r->path, n);
		return COHORT_EBADREC;
	}
	r->nworkers = (unsigned)n;
	cohort__rec_read_task(r, h);
	r->budget = get_u64(h, "budget_bytes");
	r->mem_per_worker = get_u64(h, "mem_per_worker_bytes");
	get_str(h, "enforce", r->enforce, sizeof(r->enforce));
	r->interval = get_num(h, "interval_s", 1);
	alloc = json_object_get(h, "allocation");
	r->mem_limit = get_u64(alloc, "mem_limit_bytes");
	get_str(alloc, "mem_limit_source", r->mem_limit_source, sizeof(r->mem_limit_source));
	r->shm_free_start = get_u64(alloc, "shm_free_bytes");
	r->shm_size = get_u64(alloc, "shm_size_bytes");
	slurm = json_object_get(alloc, "slurm");
	r->slurm_proc = -1;
	if (json_is_object(slurm)) {
		r->slurm = 1;
		get_str(slurm, "job_id", r->slurm_job, sizeof(r->slurm_job));
		get_str(slurm, "step_id", r->slurm_step, sizeof(r->slurm_step));
		r->slurm_proc = get_long(slurm, "proc_id", -1);
	}
	cfg = json_object_get(h, "slurm_config");
	if (json_is_object(cfg)) {
		get_str(cfg, "jobacct_gather_type", r->jobacct, sizeof(r->jobacct));
		get_str(cfg, "jobacct_gather_params", r->jobacct_params, sizeof(r->jobacct_params));
	}
	r->workers = calloc(r->nworkers, sizeof(*r->workers));
	if (!r->workers)
		return -ENOMEM;
	for (unsigned k = 0; k < r->nworkers; k++) {
		r->workers[k].rank = (int)k;
		r->workers[k].exit_code = -1;
	}
	return 0;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t ncap;
	void *np;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 256;
	while (ncap < need)
		ncap *= 2;
	np = realloc(*p, ncap * elem);
	if (!np)
		return -ENOMEM;
	memset((char *)np + *cap * elem, 0, (ncap - *cap) * elem);
	*p = np;
	*cap = ncap;
	return 0;
}

struct caps {
	size_t samples, events;
};

/*
 * Add a sample's figures to a worker's series: one point per sample (a
 * rank listed twice in one sample keeps its last figures). The array
 * doubles when its length reaches a power of two.
 */
static int add_point(struct cohort_rec_worker *wk, size_t sample, uint64_t pss, uint64_t uss,
                     uint64_t rss)
{
	size_t n = wk->nseries;

	if (n && wk->series[n - 1].sample == sample) {
		wk->series[n - 1] = (struct cohort_rec_point){ sample, pss, uss, rss };
		return 0;
	}
	if ((n & (n - 1)) == 0) {
		void *np = realloc(wk->series, (n ? 2 * n : 1) * sizeof(*wk->series));

		if (!np)
			return -ENOMEM;
		wk->series = np;
	}
	wk->series[n] = (struct cohort_rec_point){ sample, pss, uss, rss };
	wk->nseries = n + 1;
	return 0;
}

static int read_sample(struct cohort_recording *r, struct caps *c, json_t *o)
{
	struct cohort_rec_sample *s;
	json_t *tot, *cg, *psi, *shm, *ws, *w;
	size_t i, n = r->nsamples;

	if (grow((void **)&r->samples, &c->samples, n + 1, sizeof(*r->samples)) < 0)
		return -ENOMEM;
	s = &r->samples[n];
	memset(s, 0, sizeof(*s));
	s->t = get_num(o, "t", 0);
	tot = json_object_get(o, "totals");
	s->rss_sum = get_u64(tot, "rss_sum");
	s->pss_sum = get_u64(tot, "pss_sum");
	s->uss_sum = get_u64(tot, "uss_sum");
	s->est_sum = get_u64(tot, "pss_est_sum");
	cg = json_object_get(o, "cgroup");
	if (json_is_object(cg)) {
		s->has_cgroup = 1;
		s->cg_usage = get_u64(cg, "usage");
		s->cg_limit = get_u64(cg, "limit");
		s->cg_shmem = get_u64(cg, "shmem");
		s->cg_swap = get_u64(cg, "swap");
		s->cg_oom_kill = get_u64(cg, "oom_kill");
	}
	psi = json_object_get(o, "psi");
	s->psi_some10 = get_num(psi, "some_avg10", -1);
	s->psi_full10 = get_num(psi, "full_avg10", -1);
	/* Percentages: outside 0-100 they are not PSI figures. */
	if (s->psi_some10 < 0 || s->psi_some10 > 100)
		s->psi_some10 = -1;
	if (s->psi_full10 < 0 || s->psi_full10 > 100)
		s->psi_full10 = -1;
	shm = json_object_get(o, "shm");
	s->shm_free = get_u64(shm, "free");
	s->swap_used = get_u64(o, "swap_used");
	ws = json_object_get(o, "workers");
	json_array_foreach(ws, i, w) {
		long rank = get_long(w, "rank", -1);
		struct cohort_rec_worker *wk;
		uint64_t pss, uss, rss, est;

		if (rank < 0 || rank >= (long)r->nworkers)
			continue;
		wk = &r->workers[rank];
		pss = get_u64(w, "pss");
		uss = get_u64(w, "uss");
		rss = get_u64(w, "rss");
		est = get_u64(w, "pss_est");
		if (add_point(wk, n, pss, uss, rss) < 0)
			return -ENOMEM;
		if (pss > wk->peak_pss) wk->peak_pss = pss;
		if (uss > wk->peak_uss) wk->peak_uss = uss;
		if (rss > wk->peak_rss) wk->peak_rss = rss;
		if (est > wk->peak_est) wk->peak_est = est;
		if (get_u64(w, "used") > wk->peak_used) wk->peak_used = get_u64(w, "used");
		/*
		 * The figures at the end: the last sample's, until the exit event
		 * gives the worker's own (a sample that lists a rank after its exit
		 * is an edited file: it changes no final figure). cow_copied is
		 * cumulative: the last value is the total so far.
		 */
		if (!wk->ended) {
			if (has_num(w, "pss_est"))
				wk->last_est = est;
			if (has_num(w, "rss"))
				wk->last_rss = rss;
			if (has_num(w, "cow_copied"))
				wk->cow_copied = get_u64(w, "cow_copied");
			if (has_num(w, "used")) {
				wk->last_used = get_u64(w, "used");
				const char *src = json_string_value(json_object_get(w, "source"));

				wk->used_by_cgroup = src && strcmp(src, "cgroup") == 0;
			}
			if (json_is_object(json_object_get(w, "cgroup")))
				wk->last_cgroup = get_u64(json_object_get(w, "cgroup"), "usage");
		}
		if (!wk->pid)
			wk->pid = (pid_t)get_long(w, "pid", 0);
	}
	r->nsamples++;
	return 0;
}

static void read_crash(struct cohort_rec_event *e, json_t *o)
{
	json_t *bt = json_object_get(o, "backtrace"), *f;
	const char *addr = json_string_value(json_object_get(o, "fault_addr"));
	size_t i;

	if (addr)
		e->fault_addr = strtoull(addr, NULL, 16);
	e->in_guard = json_is_true(json_object_get(o, "in_guard"));
	get_str(o, "where", e->where, sizeof(e->where));
	json_array_foreach(bt, i, f) {
		const char *line = json_string_value(f);
		size_t len = strlen(e->backtrace);

		if (!line || len + strlen(line) + 2 >= sizeof(e->backtrace))
			break;
		snprintf(e->backtrace + len, sizeof(e->backtrace) - len, "%s\n", line);
	}
}

static int read_event(struct cohort_recording *r, struct caps *c, json_t *o)
{
	struct cohort_rec_event *e;
	const char *key;
	json_t *v;
	long rank;

	if (grow((void **)&r->events, &c->events, r->nevents + 1, sizeof(*r->events)) < 0)
		return -ENOMEM;
	e = &r->events[r->nevents];
	memset(e, 0, sizeof(*e));
	e->t = get_num(o, "t", 0);
	get_str(o, "kind", e->kind, sizeof(e->kind));
	get_str(o, "message", e->message, sizeof(e->message));
	rank = get_long(o, "rank", -1);
	e->rank = rank >= 0 && rank < (long)r->nworkers ? (int)rank : -1;
	e->pid = (pid_t)get_long(o, "pid", 0);
	json_object_foreach(o, key, v) {
		if (!json_is_number(v) || strcmp(key, "t") == 0 || strcmp(key, "rank") == 0 ||
		    strcmp(key, "pid") == 0 || e->nnums == COHORT_EVENT_NUMS)
			continue;
		cohort__strlcpy(e->nums[e->nnums].name, key, sizeof(e->nums[0].name));
		e->nums[e->nnums].value = isfinite(json_number_value(v)) ? json_number_value(v) : 0;
		e->nnums++;
	}
	get_str(o, "process", e->process, sizeof(e->process));
	get_str(o, "source", e->source, sizeof(e->source));
	get_str(o, "kind_of_growth", e->growth, sizeof(e->growth));
	get_str(o, "process_cmdline", e->process_cmdline, sizeof(e->process_cmdline));
	get_str(o, "evidence", e->evidence, sizeof(e->evidence));
	if (strcmp(e->kind, "crash_info") == 0)
		read_crash(e, o);
	if (e->rank >= 0 && strcmp(e->kind, "exit") == 0) {
		struct cohort_rec_worker *w = &r->workers[e->rank];
		json_t *code = json_object_get(o, "exit_code"), *sig = json_object_get(o, "signal");

		w->ended = 1;
		w->end = e->t;
		if (!w->pid && e->pid > 0)
			w->pid = e->pid;     /* a recording without the spawn line */
		/* An exit code is 0-255 and a signal 1-127: anything else is not one. */
		w->exit_code = json_is_integer(code) ? (int)get_long(o, "exit_code", -1) : -1;
		if (w->exit_code < 0 || w->exit_code > 255)
			w->exit_code = -1;
		w->signal = json_is_integer(sig) ? (int)get_long(o, "signal", 0) : 0;
		if (w->signal < 0 || w->signal > 127)
			w->signal = 0;
		w->stopped_by_cohort = json_is_true(json_object_get(o, "stopped_by_cohort"));
		if (get_u64(o, "peak_pss") > w->peak_pss) w->peak_pss = get_u64(o, "peak_pss");
		if (get_u64(o, "peak_uss") > w->peak_uss) w->peak_uss = get_u64(o, "peak_uss");
		if (get_u64(o, "peak_rss") > w->peak_rss) w->peak_rss = get_u64(o, "peak_rss");
		/* The worker's final figures, when the exit event has them. */
		if (has_num(o, "cow_copied"))
			w->cow_copied = get_u64(o, "cow_copied");
		if (has_num(o, "last_est"))
			w->last_est = get_u64(o, "last_est");
		if (has_num(o, "last_used")) {
			w->last_used = get_u64(o, "last_used");
			w->used_by_cgroup = strcmp(e->source, "cgroup") == 0;
		}
		if (get_u64(o, "peak_used") > w->peak_used) w->peak_used = get_u64(o, "peak_used");
		w->peak_cgroup = get_u64(o, "peak_cgroup");
	}
	if (strcmp(e->kind, "signal") == 0) {
		long sig = get_long(o, "signal", 0);

		get_str(o, "signal_name", e->signal_name, sizeof(e->signal_name));
		/* The first one is why the job stopped; a second one only hurries it. */
		if (!r->signal) {
			/* -1: a signal whose number the recording lacks (or is not one). */
			r->signal = sig > 0 && sig < 128 ? (int)sig : -1;
			if (!e->signal_name[0] && r->signal > 0 && sigabbrev_np(r->signal))
				snprintf(e->signal_name, sizeof(e->signal_name), "SIG%s", sigabbrev_np(r->signal));
			cohort__strlcpy(r->signal_name, e->signal_name, sizeof(r->signal_name));
			r->signal_t = e->t;
			r->signal_sender_pid = get_long(o, "sender_pid", -1);
			r->signal_sender_uid = get_long(o, "sender_uid", -1);
		}
	}
	if (e->rank >= 0 && strcmp(e->kind, "spawn") == 0) {
		r->workers[e->rank].pid = e->pid;
		r->workers[e->rank].start = e->t;
	}
	r->nevents++;
	return 0;
}

/* Order of by_kind_rank: kind, then rank, then the file's order. */
static int cmp_event(const void *a, const void *b, void *arg)
{
	const struct cohort_recording *r = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	const struct cohort_rec_event *x = &r->events[i], *y = &r->events[j];
	int c = strcmp(x->kind, y->kind);

	if (c)
		return c;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return i < j ? -1 : i > j;
}

/* Order of by_kind: kind, then the file's order. */
static int cmp_kind(const void *a, const void *b, void *arg)
{
	const struct cohort_recording *r = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	int c = strcmp(r->events[i].kind, r->events[j].kind);

	if (c)
		return c;
	return i < j ? -1 : i > j;
}

/*
 * Index the events by kind and rank, so that finding a worker's events
 * costs a binary search instead of a walk over every event: with the
 * walk, a diagnosis cost workers x events.
 */
static int index_events(struct cohort_recording *r)
{
	size_t n = r->nevents ? r->nevents : 1;

	r->by_kind_rank = malloc(n * sizeof(size_t));
	r->by_kind = malloc(n * sizeof(size_t));
	if (!r->by_kind_rank || !r->by_kind)
		return -ENOMEM;
	for (size_t i = 0; i < r->nevents; i++)
		r->by_kind_rank[i] = r->by_kind[i] = i;
	qsort_r(r->by_kind_rank, r->nevents, sizeof(size_t), cmp_event, r);
	qsort_r(r->by_kind, r->nevents, sizeof(size_t), cmp_kind, r);
	return 0;
}

/* The first position in by_kind_rank not before (kind, rank): rank -2 is below every rank. */
static size_t lower_bound(const struct cohort_recording *r, const char *kind, int rank)
{
	size_t lo = 0, hi = r->nevents;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct cohort_rec_event *e = &r->events[r->by_kind_rank[mid]];
		int c = strcmp(e->kind, kind);

		if (c < 0 || (c == 0 && e->rank < rank))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

size_t cohort_rec_events_of(const struct cohort_recording *r, const char *kind, int rank,
                            size_t *ret_first, size_t *ret_end)
{
	size_t first = lower_bound(r, kind, rank), end = first;

	while (end < r->nevents && r->events[r->by_kind_rank[end]].rank == rank &&
	       strcmp(r->events[r->by_kind_rank[end]].kind, kind) == 0)
		end++;
	*ret_first = first;
	*ret_end = end;
	return end - first;
}

const struct cohort_rec_event *cohort_rec_find_event(const struct cohort_recording *r,
                                                     const char *kind, int rank)
{
	size_t first, end, lo = 0, hi;

	if (!r->by_kind_rank || !r->by_kind)
		return NULL;
	if (rank != -2) {
		if (!cohort_rec_events_of(r, kind, rank, &first, &end))
			return NULL;
		return &r->events[r->by_kind_rank[first]];
	}
	for (hi = r->nevents; lo < hi;) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(r->events[r->by_kind[mid]].kind, kind) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == r->nevents || strcmp(r->events[r->by_kind[lo]].kind, kind) != 0)
		return NULL;
	return &r->events[r->by_kind[lo]];
}

int cohort_recording_load(const char *path, struct cohort_recording **ret, char *why, size_t why_size)
{
	struct cohort_recording *r;
	struct caps caps = { 0 };
	FILE *f;
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t len;
	int rc = 0;

	if (why && why_size)
		why[0] = '\0';
	f = fopen(path, "re");
	if (!f) {
		rc = -errno;
		seterr(why, why_size, "cannot read %s: %s", path, strerror(errno));
		return rc;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		fclose(f);
		seterr(why, why_size, "cannot read %s: out of memory", path);
		return -ENOMEM;
	}
	cohort__strlcpy(r->path, path, sizeof(r->path));
	r->exit_status = -1;
	r->signal_sender_pid = -1;
	r->signal_sender_uid = -1;
	/* errno tells the end of the file from a failure (ENOMEM, EIO) of getline. */
	while ((errno = 0, len = getline(&line, &cap, f)) > 0) {
		json_error_t jerr;
		json_t *o;
		const char *type;

		lineno++;
		if (line[len - 1] != '\n') {
			r->cut = 1;    /* the supervisor died writing it */
			break;
		}
		if ((size_t)len > MAX_LINE) {
			r->bad_lines++;
			continue;
		}
		o = json_loadb(line, (size_t)len, JSON_REJECT_DUPLICATES, &jerr);
		type = json_string_value(json_object_get(o, "type"));
		if (lineno == 1) {
			if (!o || !type || strcmp(type, "header") != 0) {
				seterr(why, why_size, "%s is not a cohort recording: its first line is not "
				       "a cohort header", path);
				json_decref(o);
				rc = COHORT_EBADREC;
				goto out;
			}
			rc = read_header(r, o, why, why_size);
			json_decref(o);
			if (rc < 0)
				goto out;
			continue;
		}
		if (!o || !type) {
			r->bad_lines++;
		} else if (strcmp(type, "sample") == 0) {
			rc = read_sample(r, &caps, o);
			r->duration = get_num(o, "t", r->duration);
		} else if (strcmp(type, "event") == 0) {
			rc = read_event(r, &caps, o);
			r->duration = get_num(o, "t", r->duration);
		} else if (strcmp(type, "end") == 0) {
			r->ended = 1;
			r->exit_status = (int)get_long(o, "exit_status", -1);
			r->duration = get_num(o, "t", r->duration);
		} else {
			r->bad_lines++;
		}
		json_decref(o);
		if (rc < 0)
			goto out;
	}
	if (len < 0 && (errno != 0 || ferror(f))) {
		rc = errno ? -errno : -EIO;
		if (lineno)
			seterr(why, why_size, "cannot read %s after line %zu: %s", path, lineno, strerror(-rc));
		else
			seterr(why, why_size, "cannot read %s: %s", path, strerror(-rc));
		goto out;
	}
	if (lineno == 0 && !r->cut) {
		seterr(why, why_size, "%s is empty: not a cohort recording", path);
		rc = COHORT_EBADREC;
		goto out;
	}
	if (r->nworkers == 0) {
		seterr(why, why_size, "%s is not a cohort recording: it has no complete header line", path);
		rc = COHORT_EBADREC;
		goto out;
	}
	rc = index_events(r);
out:
	free(line);
	fclose(f);
	if (rc == -ENOMEM && why && why_size && !why[0])
		seterr(why, why_size, "cannot read %s: out of memory", path);
	if (rc < 0) {
		cohort_recording_free(r);
		return rc;
	}
	*ret = r;
	return 0;
}

void cohort_recording_free(struct cohort_recording *r)
{
	if (!r)
		return;
	for (unsigned k = 0; r->workers && k < r->nworkers; k++)
		free(r->workers[k].series);
	free(r->workers);
	free(r->samples);
	free(r->events);
	free(r->by_kind_rank);
	free(r->by_kind);
	free(r);
}

double cohort_rec_event_num(const struct cohort_rec_event *e, const char *name, double def)
{
	for (int i = 0; i < e->nnums; i++)
		if (strcmp(e->nums[i].name, name) == 0)
			return e->nums[i].value;
	return def;
}

/* ---- the writer ---------------------------------------------------- */

struct cohort_recorder {
	int fd;
	int error;                 /* the errno that stopped it, 0 while it records */
	int in_memory;
	char path[COHORT_PATH_MAX];
};

/*
 * Open path for the recording, once: O_NOFOLLOW (no symlink), O_NONBLOCK
 * (a FIFO planted at the name must not hold the supervisor in open(2)
 * until someone reads it: with no reader it fails with ENXIO, with one it
 * is refused below), then only a regular file the caller owns. The file
 * another user placed in a shared directory is never written: it could be
 * read by them, or be a hard link to a file of the caller's elsewhere.
 */
static int open_file(const char *path, unsigned flags)
{
	int oflags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;
	struct stat st;
	int fd, e;

	oflags |= (flags & COHORT_RECORDER_EXCL) ? O_EXCL : 0;
	fd = open(path, oflags, 0644);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		e = -errno;
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		e = -EISDIR;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		e = -EINVAL;
		goto fail;
	}
	if (st.st_uid != geteuid() || st.st_nlink != 1) {
		e = -EPERM;
		goto fail;
	}
	/* Ours: truncate only now, never a file that was refused. */
	if (!(flags & COHORT_RECORDER_EXCL) && ftruncate(fd, 0) < 0) {
		e = -errno;
		goto fail;
	}
	if (fcntl(fd, F_SETFL, O_WRONLY | O_APPEND) < 0) {
		e = -errno;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return e;
}

int cohort_recorder_open_flags(const char *path, unsigned flags, struct cohort_recorder **ret)
{
	struct cohort_recorder *r = calloc(1, sizeof(*r));
	int e;

	if (!r)
		return -ENOMEM;
	if (path) {
		r->fd = open_file(path, flags);
		if (r->fd < 0) {
			e = r->fd;
			free(r);
			return e;
		}
	} else {
		r->fd = memfd_create("cohort-recording", MFD_CLOEXEC);
		if (r->fd < 0) {
			e = -errno;
			free(r);
			return e;
		}
	}
	r->in_memory = !path;
	cohort__strlcpy(r->path, path ? path : "(not recorded)", sizeof(r->path));
	*ret = r;
	return 0;
}

int cohort_recorder_open(const char *path, struct cohort_recorder **ret)
{
	return cohort_recorder_open_flags(path, 0, ret);
}

void cohort_recorder_close(struct cohort_recorder *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	free(r);
}

int cohort_recorder_fd(const struct cohort_recorder *r)
{
	return r->fd;
}

const char *cohort_recorder_path(const struct cohort_recorder *r)
{
	return r->path;
}

int cohort_recorder_in_memory(const struct cohort_recorder *r)
{
	return r->in_memory;
}

int cohort_recorder_error(const struct cohort_recorder *r)
{
	return r->error;
}

/* Append obj as one line, and free it. */
static int put(struct cohort_recorder *r, json_t *obj)
{
	char *text;
	size_t len, off = 0;

	if (!obj)
		return r->error ? 0 : -ENOMEM;
	if (r->fd < 0 || r->error) {
		json_decref(obj);
		return 0;
	}
	text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(obj);
	if (!text) {
		r->error = ENOMEM;
		return -ENOMEM;
	}
	len = strlen(text);
	text[len++] = '\n';   /* json_dumps leaves room: it wrote a NUL there */
	while (off < len) {
		ssize_t n = write(r->fd, text + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r->error = n < 0 ? errno : EIO;
			free(text);
			return -r->error;
		}
		off += (size_t)n;
	}
	free(text);
	return 0;
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

int cohort_recorder_header(struct cohort_recorder *r, const struct cohort_rec_header_info *h)
{
	json_t *o = json_object(), *cmd = json_array(), *slurm = json_null();

	for (char *const *a = h->argv; a && *a; a++)
		json_array_append_new(cmd, json_string(*a));
	json_object_set_new(o, "type", json_string("header"));
	json_object_set_new(o, "format", json_integer(COHORT_RECORDING_FORMAT));
	json_object_set_new(o, "tool", json_string("cohort " COHORT_VERSION_STRING));
	json_object_set_new(o, "host", str_or_null(h->host));
	json_object_set_new(o, "start", json_real(h->start));
	json_object_set_new(o, "supervisor_pid", json_integer(h->supervisor_pid));
	json_object_set_new(o, "job", str_or_null(h->job));
	json_object_set_new(o, "command", cmd);
	json_object_set_new(o, "workers", json_integer(h->workers));
	json_object_set_new(o, "allocation", h->alloc ? cohort__json_alloc(h->alloc) : json_null());
	json_object_set_new(o, "budget_bytes", cohort__json_size(h->budget));
	json_object_set_new(o, "budget_source", str_or_null(h->budget_source));
	json_object_set_new(o, "mem_per_worker_bytes", cohort__json_size(h->mem_per_worker));
	json_object_set_new(o, "enforce", str_or_null(h->enforce));
	json_object_set_new(o, "soft_fraction", json_real(h->soft));
	json_object_set_new(o, "interval_s", json_real(h->interval));
	json_object_set_new(o, "pss_budget", json_real(h->pss_budget));
	json_object_set_new(o, "grace_s", json_real(h->grace));
	if (h->jobacct_type) {
		slurm = json_object();
		json_object_set_new(slurm, "jobacct_gather_type", json_string(h->jobacct_type));
		json_object_set_new(slurm, "jobacct_gather_params", str_or_null(h->jobacct_params));
	}
	json_object_set_new(o, "slurm_config", slurm);
	json_object_set_new(o, "job_cgroup", h->job_cgroup && *h->job_cgroup ?
	                    json_string(h->job_cgroup) : json_null());
	json_object_set_new(o, "task", cohort__json_task(h->task));
	json_object_set_new(o, "catch", json_boolean(h->catch_on));
	if (!h->catch_on)
		json_object_set_new(o, "catch_off", json_string(h->catch_off ? h->catch_off : "not available"));
	return put(r, o);
}

int cohort_recorder_sample(struct cohort_recorder *r, const struct cohort_watch *w)
{
	json_t *o = json_object(), *ws = json_array(), *tot = json_object();
	struct cohort_watch_totals t;
	struct cohort_worker_state s;

	cohort_watch_totals(w, &t);
	for (unsigned k = 0; cohort_watch_worker(w, k, &s) == 0; k++) {
		json_t *j;

		if (!s.running)
			continue;
		j = json_object();
		json_object_set_new(j, "rank", json_integer(s.rank));
		json_object_set_new(j, "pid", json_integer(s.pid));
		json_object_set_new(j, "nprocs", json_integer(s.nprocs));
		json_object_set_new(j, "rss", cohort__json_size(s.rss));
		json_object_set_new(j, "pss", cohort__json_size(s.pss));
		json_object_set_new(j, "pss_est", cohort__json_size(s.est));
		json_object_set_new(j, "pss_age_s", json_real(s.pss_age));
		json_object_set_new(j, "uss", cohort__json_size(s.uss));
		json_object_set_new(j, "shared", cohort__json_size(s.shared));
		json_object_set_new(j, "swap", cohort__json_size(s.swap));
		json_object_set_new(j, "shmem", cohort__json_size(s.shmem));
		json_object_set_new(j, "cow_copied", cohort__json_size(s.cow_copied));
		if (s.peak_cgroup)
			json_object_set_new(j, "peak_cgroup", cohort__json_size(s.peak_cgroup));
		json_object_set_new(j, "used", cohort__json_size(s.used));
		json_object_set_new(j, "source", json_string(s.used_by_cgroup ? "cgroup" : "estimate"));
		if (s.has_cgroup_usage) {
			json_t *c = json_object();

			json_object_set_new(c, "usage", cohort__json_size(s.cg_usage));
			json_object_set_new(c, "anon", cohort__json_size(s.cg_anon));
			json_object_set_new(c, "file", cohort__json_size(s.cg_file));
			json_object_set_new(c, "shmem", cohort__json_size(s.cg_shmem));
			json_object_set_new(c, "inactive_file", cohort__json_size(s.cg_inactive_file));
			json_object_set_new(j, "cgroup", c);
		}
		json_array_append_new(ws, j);
	}
	json_object_set_new(o, "type", json_string("sample"));
	json_object_set_new(o, "t", json_real(t.t < 0 ? 0 : t.t));
	json_object_set_new(o, "workers", ws);
	json_object_set_new(tot, "rss_sum", cohort__json_size(t.rss_sum));
	json_object_set_new(tot, "pss_sum", cohort__json_size(t.pss_sum));
	json_object_set_new(tot, "uss_sum", cohort__json_size(t.uss_sum));
	json_object_set_new(tot, "pss_est_sum", cohort__json_size(t.est_sum));
	json_object_set_new(o, "totals", tot);
	if (t.has_cgroup) {
		json_t *j = json_object();

		json_object_set_new(j, "usage", cohort__json_size(t.cg_usage));
		json_object_set_new(j, "peak", cohort__json_size(t.cg_peak));
		json_object_set_new(j, "limit", cohort__json_size(t.cg_limit));
		json_object_set_new(j, "shmem", cohort__json_size(t.cg_shmem));
		json_object_set_new(j, "swap", cohort__json_size(t.cg_swap));
		json_object_set_new(j, "oom_kill", cohort__json_size(t.cg_oom_kill));
		json_object_set_new(o, "cgroup", j);
	} else {
		json_object_set_new(o, "cgroup", json_null());
	}
	if (t.has_shm) {
		json_t *j = json_object();

		json_object_set_new(j, "free", cohort__json_size(t.shm_free));
		json_object_set_new(j, "size", cohort__json_size(t.shm_size));
		json_object_set_new(o, "shm", j);
	}
	if (t.has_swap)
		json_object_set_new(o, "swap_used", cohort__json_size(t.swap_used));
	if (t.has_psi) {
		json_t *j = json_object();

		json_object_set_new(j, "some_avg10", json_real(t.psi_some10));
		json_object_set_new(j, "full_avg10", json_real(t.psi_full10));
		json_object_set_new(o, "psi", j);
	}
	return put(r, o);
}

int cohort_recorder_event(struct cohort_recorder *r, const struct cohort_event *ev)
{
	json_t *o = json_object();

	json_object_set_new(o, "type", json_string("event"));
	json_object_set_new(o, "t", json_real(ev->t));
	json_object_set_new(o, "kind", json_string(cohort_event_name(ev->kind)));
	json_object_set_new(o, "rank", ev->rank >= 0 ? json_integer(ev->rank) : json_null());
	json_object_set_new(o, "pid", ev->rank >= 0 ? json_integer(ev->pid) : json_null());
	json_object_set_new(o, "message", json_string(ev->message));
	for (int i = 0; i < ev->nfields && i < COHORT_EVENT_FIELDS; i++) {
		const struct cohort_event_field *f = &ev->fields[i];
		json_t *v;

		switch (f->type) {
		case COHORT_FIELD_U64:  v = cohort__json_size(f->v.u); break;
		case COHORT_FIELD_I64:  v = json_integer(f->v.i); break;
		case COHORT_FIELD_F64:  v = json_real(isfinite(f->v.f) ? f->v.f : 0); break;
		case COHORT_FIELD_BOOL: v = json_boolean(f->v.b); break;
		case COHORT_FIELD_STR:  v = f->s ? json_string(f->s) : json_null(); break;
		default:                v = json_null(); break;
		}
		json_object_set_new(o, f->name, v ? v : json_null());
	}
	if (ev->kind == COHORT_EVENT_CRASH_INFO) {
		json_t *frames = json_array();
		const char *p = ev->backtrace;

		while (*p) {
			size_t n = strcspn(p, "\n");

			json_array_append_new(frames, json_stringn(p, n));
			p += n;
			if (*p == '\n')
				p++;
		}
		json_object_set_new(o, "backtrace", frames);
	}
	return put(r, o);
}

int cohort_recorder_end(struct cohort_recorder *r, const struct cohort_watch *w, int exit_status)
{
	json_t *o = json_object();
	struct cohort_watch_totals t;

	cohort_watch_totals(w, &t);
	json_object_set_new(o, "type", json_string("end"));
	json_object_set_new(o, "t", json_real(cohort_watch_now(w)));
	json_object_set_new(o, "exit_status", json_integer(exit_status));
	json_object_set_new(o, "sampler_cpu_s", json_real(t.sampler_cpu_s));
	json_object_set_new(o, "sampler_ticks", json_integer((json_int_t)t.ticks));
	return put(r, o);
}
