/* json.c - the allocation and sizes as JSON (jansson). */
#include "json.h"

#include <limits.h>

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
