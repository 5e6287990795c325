/* findings.c - findings as `cohort run` and `cohort report` print them. */
#include "cli.h"

#include <string.h>

const char *cli_worker_status(const struct cohort_recording *r, const struct cohort_rec_worker *w,
                              char *buf, size_t size)
{
	if (!w->ended && w->pid <= 0)
		snprintf(buf, size, "not started");
	else if (!w->ended)
		snprintf(buf, size, "%s", r->ended ? "running, no exit recorded" :
		         "running at the end");
	else if (w->signal)
		snprintf(buf, size, "signal %d (%s)%s", w->signal, strsignal(w->signal),
		         w->stopped_by_cohort ? ", stopped by cohort" : "");
	else
		snprintf(buf, size, "exit %d", w->exit_code);
	return buf;
}

void cli_print_findings(FILE *out, const struct cohort_finding *f, size_t n, bool hosts, bool tasks)
{
	if (n == 0) {
		fprintf(out, "Findings: none: every worker ended well and nothing went wrong on the way.\n");
		return;
	}
	fprintf(out, "Findings, most important first:\n");
	for (size_t i = 0; i < n; i++) {
		char who[160] = "";
		bool on = hosts;

		/* A worker by its rank in the job; of a task of several, with its task and node. */
		if (f[i].rank >= 0 && f[i].task >= 0 && tasks) {
			snprintf(who, sizeof(who), ", rank %d (task %ld, node %s)", f[i].global_rank, f[i].task,
			         f[i].node);
			on = false;
		} else if (f[i].rank >= 0) {
			snprintf(who, sizeof(who), ", rank %d", f[i].global_rank);
		} else if (f[i].task >= 0 && tasks) {
			snprintf(who, sizeof(who), " (task %ld, node %s)", f[i].task, f[i].node);
			on = false;
		}
		fprintf(out, "  %zu. %s%s%s%s: %s\n     fix: %s\n", i + 1, cohort_finding_name(f[i].kind),
		        who, on ? " on " : "", on ? f[i].host : "", f[i].message, f[i].fix);
		if (f[i].backtrace[0]) {
			char bt[sizeof(f[i].backtrace)], *line, *save = NULL;

			memcpy(bt, f[i].backtrace, sizeof(bt));
			fprintf(out, "     backtrace:\n");
			for (line = strtok_r(bt, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
				fprintf(out, "       %s\n", line);
		}
	}
}

json_t *cli_json_findings(const struct cohort_finding *f, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object(), *ev = json_object();

		json_object_set_new(o, "kind", json_string(cohort_finding_name(f[i].kind)));
		/* rank: the worker's rank in the job; local_rank: in its task's recording. */
		json_object_set_new(o, "rank", f[i].rank >= 0 ? json_integer(f[i].global_rank) : json_null());
		json_object_set_new(o, "local_rank", f[i].rank >= 0 ? json_integer(f[i].rank) : json_null());
		json_object_set_new(o, "task", f[i].task >= 0 ? json_integer(f[i].task) : json_null());
		json_object_set_new(o, "pid", f[i].rank >= 0 ? json_integer(f[i].pid) : json_null());
		json_object_set_new(o, "host", json_string(f[i].host));
		json_object_set_new(o, "node", json_string(f[i].node));
		json_object_set_new(o, "t", f[i].t >= 0 ? json_real(f[i].t) : json_null());
		json_object_set_new(o, "message", json_string(f[i].message));
		json_object_set_new(o, "fix", json_string(f[i].fix));
		for (int k = 0; k < f[i].nevidence; k++) {
			double v = f[i].evidence[k].value;

			if (v == (double)(long long)v && v < 9.0e18 && v > -9.0e18)
				json_object_set_new(ev, f[i].evidence[k].name, json_integer((json_int_t)v));
			else
				json_object_set_new(ev, f[i].evidence[k].name, json_real(v));
		}
		json_object_set_new(o, "evidence", ev);
		if (f[i].backtrace[0]) {
			json_t *bt = json_array();
			char copy[sizeof(f[i].backtrace)], *line, *save = NULL;

			memcpy(copy, f[i].backtrace, sizeof(copy));
			for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
				json_array_append_new(bt, json_string(line));
			json_object_set_new(o, "backtrace", bt);
		}
		json_array_append_new(a, o);
	}
	return a;
}
