/* report-util.c - loading cohort report's JSON and finding things in it; see report-util.h. */
#include "harness.h"
#include "report-util.h"

json_t *report_json(const char *files)
{
	struct cmd_result r;
	json_error_t err;
	json_t *j;

	cmd_run(&r, "cd %s && %s/cohort report --json %s", test_tmpdir(), test_build_dir(), files);
	CHECK_MSG(r.status == 0, "cohort report --json %s exited %d: %s", files, r.status, r.err);
	j = json_loads(r.out, 0, &err);
	CHECK_MSG(j != NULL, "the report of %s is not JSON (%s):\n%s", files, err.text, r.out);
	cmd_free(&r);
	return j;
}

static bool rank_is(json_t *f, int rank)
{
	json_t *r = json_object_get(f, "rank");

	return rank == REPORT_ANY_RANK || (rank == -1 ? json_is_null(r) : json_integer_value(r) == rank);
}

static bool kind_is(json_t *f, const char *kind)
{
	const char *k = json_string_value(json_object_get(f, "kind"));

	return k && strcmp(k, kind) == 0;
}

json_t *report_finding(json_t *rep, const char *kind, int rank)
{
	json_t *d = json_object_get(rep, "diagnosis"), *f;
	size_t i;

	json_array_foreach(d, i, f)
		if (kind_is(f, kind) && rank_is(f, rank))
			return f;
	return NULL;
}

json_t *report_need(json_t *rep, const char *kind, int rank)
{
	json_t *f = report_finding(rep, kind, rank);

	if (!f)
		test_fail(__FILE__, __LINE__, "no %s finding%s in:\n%s", kind,
		          rank == REPORT_ANY_RANK ? "" : " for that rank",
		          json_dumps(json_object_get(rep, "diagnosis"), JSON_INDENT(1)));
	return f;
}

int report_count(json_t *rep, const char *kind)
{
	json_t *d = json_object_get(rep, "diagnosis"), *f;
	size_t i;
	int n = 0;

	json_array_foreach(d, i, f)
		n += kind_is(f, kind);
	return n;
}

long long report_ev(json_t *f, const char *name)
{
	json_t *v = json_object_get(json_object_get(f, "evidence"), name);

	CHECK_MSG(json_is_number(v), "no evidence '%s'", name);
	return (long long)json_number_value(v);
}
