/*
 * fuzz-identity.c - who a process is, from hostile bytes: the input as a
 * process's environment block (cohort_environ_ranks), as a record of the
 * kernel log (the OOM victim parser), and as /proc/PID/{stat,cmdline,environ}
 * of a private tree read by cohort_proc_identity_read(), split at the
 * first two 0xff bytes.
 */
#include "cohort.h"
#include "fuzz-tree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int cohort__kmsg_oom(const char *rec, size_t len, pid_t *ret_pid, char *comm, size_t comm_size,
                     char *memcg, size_t memcg_size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const files[] = { "4242/stat", "4242/cmdline", "4242/environ" };
	struct cohort_probe pr = { 0 };
	struct cohort_proc_identity id;
	char comm[16], memcg[256], words[200];
	int mpi, procid, localid;
	size_t start = 0, k = 0;
	pid_t pid = 0;

	if (cohort_environ_ranks((const char *)data, size, &mpi, &procid, &localid) < 0 ||
	    mpi < -1 || procid < -1 || localid < -1)
		abort();
	if (cohort__kmsg_oom((const char *)data, size, &pid, comm, sizeof(comm), memcg, sizeof(memcg)) &&
	    (pid <= 0 || strlen(comm) >= sizeof(comm) || strlen(memcg) >= sizeof(memcg)))
		abort();
	tree_init((const char *const[]){ "4242", NULL });
	/* Split at 0xff, not NUL: environ and cmdline are NUL-separated themselves. */
	for (size_t i = 0; i <= size && k < 3; i++)
		if (i == size || data[i] == 0xff) {
			tree_put(files[k++], data + start, i - start);
			start = i + 1;
		}
	while (k < 3)
		tree_put(files[k++], data, 0);
	pr.proc_root = tree_root;
	if (cohort_proc_identity_read(&pr, 4242, &id) == 0) {
		if (strlen(id.cmdline) >= sizeof(id.cmdline) || strlen(id.comm) >= sizeof(id.comm))
			abort();
		id.rank = 0;
		id.child = 3;
		cohort_proc_identity_describe(&id, words, sizeof(words));
	}
	return 0;
}
