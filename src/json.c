/* json.c - the allocation and sizes as JSON (jansson). */
#include "json.h"
#include "internal.h"

#include <limits.h>
#include <string.h>

json_t *cohort__json_size(uint64_t v)
{
	return json_integer(v > (uint64_t)LLONG_MAX ? LLONG_MAX : (json_int_t)v);
}

static json_t *long_or_null(long v)
{
	return v < 0 ? json_null() : json_integer(v);
}

json_t *cohort__json_alloc(const struct cohort_alloc *a)
{
	json_t *o = json_object(), *slurm = json_null(), *cg = json_null();

	json_object_set_new(o, "cpus", json_integer(a->cpus));
	json_object_set_new(o, "cpus_source", json_string(cohort_source_name(a->cpus_source)));
	json_object_set_new(o, "mem_limit_bytes", cohort__json_size(a->mem_limit));
	json_object_set_new(o, "mem_limit_source", json_string(cohort_source_name(a->mem_limit_source)));
	json_object_set_new(o, "mem_limit_where", json_string(a->mem_limit_where));
	json_object_set_new(o, "task_share_bytes", a->task_share ? cohort__json_size(a->task_share) : json_null());
	if (a->cgroup_version) {
		cg = json_object();
		json_object_set_new(cg, "version", json_integer(a->cgroup_version));
		json_object_set_new(cg, "path", json_string(a->cgroup_path));
		json_object_set_new(cg, "usage_bytes",
		                    a->cgroup_usage_known ? cohort__json_size(a->cgroup_usage) : json_null());
	}
	json_object_set_new(o, "cgroup", cg);
	json_object_set_new(o, "ram_total_bytes", cohort__json_size(a->ram_total));
	json_object_set_new(o, "ram_available_bytes", cohort__json_size(a->ram_available));
	json_object_set_new(o, "swap_total_bytes", cohort__json_size(a->swap_total));
	json_object_set_new(o, "swap_free_bytes", cohort__json_size(a->swap_free));
	json_object_set_new(o, "shm_size_bytes", a->shm_known ? cohort__json_size(a->shm_size) : json_null());
	json_object_set_new(o, "shm_free_bytes", a->shm_known ? cohort__json_size(a->shm_free) : json_null());
	if (a->slurm.present) {
		slurm = json_object();
		json_object_set_new(slurm, "job_id", json_string(a->slurm.job_id));
		json_object_set_new(slurm, "step_id",
		                    a->slurm.step_id[0] ? json_string(a->slurm.step_id) : json_null());
		json_object_set_new(slurm, "node",
		                    a->slurm.node[0] ? json_string(a->slurm.node) : json_null());
		json_object_set_new(slurm, "local_id", long_or_null(a->slurm.local_id));
		json_object_set_new(slurm, "proc_id", long_or_null(a->slurm.proc_id));
		json_object_set_new(slurm, "ntasks", long_or_null(a->slurm.ntasks));
		json_object_set_new(slurm, "cpus_on_node", long_or_null(a->slurm.cpus_on_node));
		json_object_set_new(slurm, "tasks_on_node", long_or_null(a->slurm.tasks_on_node));
		json_object_set_new(slurm, "mem_per_node_bytes",
		                    a->slurm.mem_per_node ? cohort__json_size(a->slurm.mem_per_node) : json_null());
		json_object_set_new(slurm, "mem_per_cpu_bytes",
		                    a->slurm.mem_per_cpu ? cohort__json_size(a->slurm.mem_per_cpu) : json_null());
	}
	json_object_set_new(o, "slurm", slurm);
	return o;
}

/* ---- the header's "task" ---- */

json_t *cohort__json_task(const struct cohort_task *t)
{
	json_t *o;

	if (!t || !t->known)
		return json_null();
	o = json_object();
	json_object_set_new(o, "source", json_string(t->source));
	json_object_set_new(o, "job", json_string(t->job));
	json_object_set_new(o, "step", json_string(t->step));
	json_object_set_new(o, "id", json_integer(t->id));
	json_object_set_new(o, "ntasks", long_or_null(t->ntasks));
	json_object_set_new(o, "node", t->node[0] ? json_string(t->node) : json_null());
	json_object_set_new(o, "node_id", long_or_null(t->node_id));
	json_object_set_new(o, "tasks_on_node", long_or_null(t->tasks_on_node));
	json_object_set_new(o, "local_id", long_or_null(t->local_id));
	json_object_set_new(o, "rank_offset", json_integer(t->rank_offset));
	return o;
}

/* A count or id from a header: an integer from 0 to 10^8, else -1. */
static long get_id(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 100000000)
		return -1;
	return (long)json_integer_value(v);
}

static void get_token(json_t *o, const char *key, char *dst, size_t size)
{
	const char *v = json_string_value(json_object_get(o, key));

	cohort__name_token(dst, v ? v : "", size);
}

void cohort__rec_read_task(struct cohort_recording *r, json_t *header)
{
	json_t *t = json_object_get(header, "task");
	json_t *alloc = json_object_get(header, "allocation");
	json_t *slurm = json_object_get(alloc, "slurm");
	struct cohort_task *k = &r->task;

	memset(k, 0, sizeof(*k));
	k->id = k->ntasks = k->node_id = k->tasks_on_node = k->local_id = -1;
	r->task_from_header = json_is_object(t);
	if (json_is_object(t)) {
		get_token(t, "source", k->source, sizeof(k->source));
		get_token(t, "job", k->job, sizeof(k->job));
		get_token(t, "step", k->step, sizeof(k->step));
		k->id = get_id(t, "id");
		k->ntasks = get_id(t, "ntasks");
		get_token(t, "node", k->node, sizeof(k->node));
		k->node_id = get_id(t, "node_id");
		k->tasks_on_node = get_id(t, "tasks_on_node");
		k->local_id = get_id(t, "local_id");
		k->rank_offset = get_id(t, "rank_offset");
		if (k->rank_offset < 0)
			k->rank_offset = 0;
	} else if (json_is_object(slurm)) {
		/* Older recordings: what their SLURM ids say, task id x workers for the offset. */
		cohort__strlcpy(k->source, "slurm", sizeof(k->source));
		get_token(slurm, "job_id", k->job, sizeof(k->job));
		get_token(slurm, "step_id", k->step, sizeof(k->step));
		k->id = get_id(slurm, "proc_id");
		k->ntasks = get_id(slurm, "ntasks");
		get_token(slurm, "node", k->node, sizeof(k->node));
		k->tasks_on_node = get_id(slurm, "tasks_on_node");
		k->local_id = get_id(slurm, "local_id");
		if (k->id >= 0 && (unsigned long)k->id <= 100000000UL / (r->nworkers ? r->nworkers : 1))
			k->rank_offset = k->id * (long)r->nworkers;
	}
	if (!k->node[0])
		cohort__name_token(k->node, r->host, sizeof(k->node));
	k->known = k->id >= 0 && k->job[0] && k->step[0];
	if (!k->known)
		k->rank_offset = 0;
}
