/* json.c - JSON pieces the commands share (jansson). */
#include "cli.h"
#include "json.h"


json_t *cli_json_size(uint64_t v)
{
	return cohort__json_size(v);
}

json_t *cli_json_alloc(const struct cohort_alloc *a)
{
	return cohort__json_alloc(a);
}

int cli_json_print(json_t *root)
{
	char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	json_decref(root);
	if (!text) {
		cli_error("out of memory writing JSON");
		return -1;
	}
	puts(text);
	free(text);
	return 0;
}
