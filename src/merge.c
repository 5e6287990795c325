/*
 * merge.c - the recordings of one job's tasks as one job: `srun -n 4
 * cohort run` and `mpirun -np 4 cohort run` leave one recording per task
 * (docs/recording.md); cohort report shows them as one job, each worker
 * by its rank in the whole job, and says what is missing.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tasks listed one by one as missing; past this, a count. */
#define MISSING_LISTED 64

struct slot {
	struct cohort_recording *r;
	size_t given;                    /* its place among the recordings given */
};

static bool same_step(const struct cohort_recording *a, const struct cohort_recording *b)
{
	return strcmp(a->task.job, b->task.job) == 0 && strcmp(a->task.step, b->task.step) == 0;
}

/* The job a recording belongs to: its task's, else its header's ("" when neither says). */
static const char *job_of(const struct cohort_recording *r)
{
	return r->task.known ? r->task.job : r->job;
}

/* Tasks first, by job, step and id; then the recordings that name no task, as given. */
static int by_task(const void *pa, const void *pb)
{
	const struct slot *a = pa, *b = pb;
	int c;

	if (a->r->task.known != b->r->task.known)
		return a->r->task.known ? -1 : 1;
	if (a->r->task.known) {
		if ((c = strcmp(a->r->task.job, b->r->task.job)) != 0)
			return c;
		if ((c = strcmp(a->r->task.step, b->r->task.step)) != 0)
			return c;
		if (a->r->task.id != b->r->task.id)
			return a->r->task.id < b->r->task.id ? -1 : 1;
	}
	return a->given < b->given ? -1 : a->given > b->given;
}

static struct cohort_merge_problem *problem(struct cohort_job *j, size_t *cap,
                                            enum cohort_merge_problem_kind kind, long task)
{
	struct cohort_merge_problem *p;

	if (j->nproblems == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;

		p = realloc(j->problems, ncap * sizeof(*p));
		if (!p)
			return NULL;
		j->problems = p;
		*cap = ncap;
	}
	p = &j->problems[j->nproblems++];
	memset(p, 0, sizeof(*p));
	p->kind = kind;
	p->task = task;
	return p;
}

/*
 * The tasks per node when every recording of ref's step shows SLURM's
 * block distribution (the default: node index = task id / tasks per
 * node, the same count on every node), else 0. Only then can a task with
 * no recording be placed on a node.
 */
static long block_tasks_per_node(const struct cohort_job *j, const struct cohort_recording *ref)
{
	long tpn = 0;

	for (size_t i = 0; i < j->nrecs; i++) {
		const struct cohort_task *t = &j->recs[i]->task;

		if (!t->known || !same_step(j->recs[i], ref))
			continue;
		if (strcmp(t->source, "slurm") != 0 || t->node_id < 0 || t->tasks_on_node <= 0 ||
		    (tpn && t->tasks_on_node != tpn) || t->id / t->tasks_on_node != t->node_id)
			return 0;
		tpn = t->tasks_on_node;
	}
	return tpn;
}

/* Where task id ran, as far as the other recordings tell, in buf ("" when not known). */
static void place_of(const struct cohort_job *j, const struct cohort_recording *ref, long tpn, long id,
                     char *buf, size_t size)
{
	buf[0] = '\0';
	/* A step on one node: the node adds nothing. */
	if (!tpn || tpn >= j->ntasks)
		return;
	for (size_t i = 0; i < j->nrecs; i++) {
		const struct cohort_task *t = &j->recs[i]->task;

		if (t->known && same_step(j->recs[i], ref) && t->node_id == id / tpn && t->node[0]) {
			snprintf(buf, size, " on node %s (its other tasks have theirs)", t->node);
			return;
		}
	}
	snprintf(buf, size, " on the step's node %ld (by block distribution), from which no recording came", id / tpn);
}

/* The tasks of ref's step that no recording has. */
static int missing(struct cohort_job *j, size_t *cap, const struct cohort_recording *ref)
{
	size_t listed = 0, more = 0;
	long next = 0, tpn;

	if (j->ntasks <= 0)
		return 0;
	tpn = block_tasks_per_node(j, ref);
	for (size_t i = 0; i <= j->nrecs; i++) {
		const struct cohort_recording *r = i < j->nrecs ? j->recs[i] : NULL;
		long upto = j->ntasks;

		if (r && (!r->task.known || !same_step(r, ref)))
			continue;
		if (r)
			upto = r->task.id < j->ntasks ? r->task.id : j->ntasks;
		for (; next < upto; next++) {
			struct cohort_merge_problem *p;
			struct cohort_task t = ref->task;
			char name[COHORT_PATH_MAX], where[160];

			if (listed == MISSING_LISTED) {
				more++;
				continue;
			}
			t.id = next;
			if (cohort_recording_name(NULL, &t, name, sizeof(name)) < 0)
				snprintf(name, sizeof(name), "(no name)");
			if (!(p = problem(j, cap, COHORT_MERGE_MISSING, next)))
				return -ENOMEM;
			place_of(j, ref, tpn, next, where, sizeof(where));
			snprintf(p->message, sizeof(p->message), "task %ld of %ld%s: no recording (expected %s)",
			         next, j->ntasks, where, name);
			listed++;
		}
		if (r && r->task.id >= next)
			next = r->task.id + 1;
	}
	if (more) {
		struct cohort_merge_problem *p = problem(j, cap, COHORT_MERGE_MISSING, -1);

		if (!p)
			return -ENOMEM;
		snprintf(p->message, sizeof(p->message), "and %zu more tasks of %ld without a recording",
		         more, j->ntasks);
	}
	return 0;
}

/*
 * The recordings of ref's step that end without their end line: their
 * supervisor was killed, or their node was lost (its slurmd and the
 * job's processes there gone), while the others went on.
 */
static int cut(struct cohort_job *j, size_t *cap, const struct cohort_recording *ref)
{
	double longest = 0;

	for (size_t i = 0; i < j->nrecs; i++)
		if (j->recs[i]->task.known && same_step(j->recs[i], ref) && j->recs[i]->duration > longest)
			longest = j->recs[i]->duration;
	for (size_t i = 0; i < j->nrecs; i++) {
		const struct cohort_recording *r = j->recs[i];
		struct cohort_merge_problem *p;

		if (!r->task.known || !same_step(r, ref) || r->ended)
			continue;
		if (!(p = problem(j, cap, COHORT_MERGE_CUT, r->task.id)))
			return -ENOMEM;
		snprintf(p->message, sizeof(p->message), "task %ld on node %s: its recording %s is cut short at "
		         "%.1f s (the step's longest runs %.1f s): its supervisor was killed or its node lost",
		         r->task.id, r->task.node[0] ? r->task.node : r->host, r->path, r->duration, longest);
	}
	return 0;
}

/*
 * Every worker of a task gets one rank in the job: the task's offset
 * (its id x its workers, as the task wrote it) + its own rank. Tasks that
 * ran different numbers of workers overlap: then they are numbered in task
 * order instead, and that is said.
 */
static int ranks(struct cohort_job *j, size_t *cap)
{
	bool overlap = false;
	long next = 0;

	for (size_t a = 0; a < j->nrecs && !overlap; a++)
		for (size_t b = a + 1; b < j->nrecs && !overlap; b++) {
			const struct cohort_task *x = &j->recs[a]->task, *y = &j->recs[b]->task;

			if (!x->known || !y->known)
				continue;
			overlap = x->rank_offset < y->rank_offset + (long)j->recs[b]->nworkers &&
			          y->rank_offset < x->rank_offset + (long)j->recs[a]->nworkers;
		}
	if (!overlap)
		return 0;
	for (size_t i = 0; i < j->nrecs; i++) {
		if (!j->recs[i]->task.known)
			continue;
		j->recs[i]->task.rank_offset = next;
		next += (long)j->recs[i]->nworkers;
	}
	struct cohort_merge_problem *p = problem(j, cap, COHORT_MERGE_RENUMBERED, -1);

	if (!p)
		return -ENOMEM;
	snprintf(p->message, sizeof(p->message), "the tasks' ranks overlap (tasks with different "
	         "numbers of workers, or duplicates): ranks are numbered in task order instead, "
	         "0-%ld", next - 1);
	return 0;
}

int cohort_job_merge(struct cohort_recording *const *recs, size_t n, unsigned flags,
                     struct cohort_job **ret, char *why, size_t why_size)
{
	const struct cohort_recording *ref = NULL;
	struct cohort_job *j = NULL;
	struct slot *slots = NULL;
	size_t cap = 0;
	int rc = -ENOMEM;

	if (why && why_size)
		why[0] = '\0';
	if (!recs || !n || !ret)
		return -EINVAL;
	j = calloc(1, sizeof(*j));
	slots = calloc(n, sizeof(*slots));
	if (!j || !slots || !(j->recs = calloc(n, sizeof(*j->recs))))
		goto out;
	for (size_t i = 0; i < n; i++) {
		slots[i] = (struct slot){ recs[i], i };
		if (!ref && recs[i]->task.known)
			ref = recs[i];
	}
	/*
	 * Every recording names its job (a task's job, else the header's: a
	 * local run's local-<pid>); one of another job is refused, whether or
	 * not it names its task. Tasks are also of one step. A recording from
	 * before the header named a job ("") is taken as of any job.
	 */
	for (size_t i = 0; i < n; i++) {
		const struct cohort_recording *r = recs[i], *first = ref ? ref : recs[0];
		const char *rj = job_of(r), *refj = job_of(first);
		struct cohort_merge_problem *p;

		if (r == first)
			continue;
		if (r->task.known && first->task.known) {
			if (same_step(r, first))
				continue;
		} else if (!rj[0] || !refj[0] || strcmp(rj, refj) == 0)
			continue;
		if (!(flags & COHORT_MERGE_FORCE)) {
			if (why && why_size && r->task.known && first->task.known)
				snprintf(why, why_size, "%s is task %ld of job %s step %s, but %s is of job %s step %s: "
				         "recordings of different jobs or steps do not merge into one job",
				         r->path, r->task.id, r->task.job, r->task.step, first->path, first->task.job,
				         first->task.step);
			else if (why && why_size)
				snprintf(why, why_size, "%s is of job %s, but %s is of job %s: "
				         "recordings of different jobs do not merge into one job",
				         r->path, rj, first->path, refj);
			rc = COHORT_EMIXEDJOB;
			goto out;
		}
		if (!(p = problem(j, &cap, COHORT_MERGE_MIXED, r->task.known ? r->task.id : -1)))
			goto out;
		if (r->task.known && first->task.known)
			snprintf(p->message, sizeof(p->message), "%s is of job %s step %s, not job %s step %s: "
			         "merged anyway", r->path, r->task.job, r->task.step, first->task.job, first->task.step);
		else
			snprintf(p->message, sizeof(p->message), "%s is of job %s, not job %s: merged anyway",
			         r->path, rj, refj);
	}
	qsort(slots, n, sizeof(*slots), by_task);
	j->ntasks = -1;
	for (size_t i = 0; i < n; i++) {
		struct cohort_recording *r = slots[i].r;

		j->recs[j->nrecs++] = r;
		j->nworkers += r->nworkers;
		if (ref && r->task.known && same_step(r, ref) && r->task.ntasks > j->ntasks)
			j->ntasks = r->task.ntasks;
		if (i > 0 && r->task.known && slots[i - 1].r->task.known && same_step(r, slots[i - 1].r) &&
		    r->task.id == slots[i - 1].r->task.id) {
			struct cohort_merge_problem *p = problem(j, &cap, COHORT_MERGE_DUPLICATE, r->task.id);

			if (!p)
				goto out;
			snprintf(p->message, sizeof(p->message), "task %ld of job %s step %s is in two "
			         "recordings, %s and %s: both are shown", r->task.id, r->task.job, r->task.step,
			         slots[i - 1].r->path, r->path);
		}
	}
	cohort__strlcpy(j->job, ref ? ref->task.job : recs[0]->job, sizeof(j->job));
	cohort__strlcpy(j->step, ref ? ref->task.step : recs[0]->slurm_step, sizeof(j->step));
	if (ref && (rc = missing(j, &cap, ref)) < 0)
		goto out;
	if (ref && (rc = cut(j, &cap, ref)) < 0)
		goto out;
	if ((rc = ranks(j, &cap)) < 0)
		goto out;
	rc = 0;
	*ret = j;
	j = NULL;
out:
	if (rc == -ENOMEM && why && why_size)
		snprintf(why, why_size, "out of memory merging %zu recordings", n);
	free(slots);
	cohort_job_free(j);
	return rc;
}

void cohort_job_free(struct cohort_job *j)
{
	if (!j)
		return;
	free(j->recs);
	free(j->problems);
	free(j);
}
