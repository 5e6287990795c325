/*
 * test-workcg.c - the worker-cgroup calls (include/cohort/workcg.h) on a
 * fake cgroup tree in the test's directory: what they write, make and
 * remove, and what they refuse. A plain directory has none of the files
 * the kernel makes in a new cgroup, which is how the failure paths are
 * reached; the real cgroup tree is exercised by test-cgevent.c and
 * test-run.c.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *path_in(char *buf, size_t size, const char *rel)
{
	snprintf(buf, size, "%s/%s", test_tmpdir(), rel);
	return buf;
}

static bool is_dir(const char *rel)
{
	char p[4096];
	struct stat st;

	return stat(path_in(p, sizeof(p), rel), &st) == 0 && S_ISDIR(st.st_mode);
}

static void mkdir_in(const char *rel)
{
	char p[4096];

	CHECK_MSG(mkdir(path_in(p, sizeof(p), rel), 0755) == 0, "mkdir %s: %s", rel, strerror(errno));
}

static void file_in(const char *rel, const char *text)
{
	char p[4096];

	write_file(path_in(p, sizeof(p), rel), "%s", text);
}

static char *text_of(const char *rel)
{
	char p[4096];
	char *t = read_file(path_in(p, sizeof(p), rel));

	CHECK_MSG(t != NULL, "cannot read %s", rel);
	return t;
}

TEST(workcg_create_on_a_fake_v2_tree)
{
	struct cohort_workcg cg, again;
	char parent[4096], want[4096];
	char *t;

	mkdir_in("v2");
	file_in("v2/cgroup.controllers", "cpu io memory pids\n");
	file_in("v2/cgroup.subtree_control", "cpu\n");
	path_in(parent, sizeof(parent), "v2");

	/* Names that are not one directory entry are refused before anything is written. */
	CHECK_EQ(cohort_workcg_create(NULL, parent, "", 0, &cg), -EINVAL);
	CHECK_EQ(cohort_workcg_create(NULL, parent, NULL, 0, &cg), -EINVAL);
	CHECK_EQ(cohort_workcg_create(NULL, parent, "a/b", 0, &cg), -EINVAL);
	CHECK_EQ(cohort_workcg_create(NULL, parent, "..", 0, &cg), -EINVAL);
	t = text_of("v2/cgroup.subtree_control");
	CHECK_STREQ(t, "cpu\n");
	free(t);

	/* No limit: the memory controller is enabled in the parent, the directory made. */
	CHECK_OK(cohort_workcg_create(NULL, parent, "rank-0", 0, &cg));
	CHECK_EQ(cg.version, 2);
	snprintf(want, sizeof(want), "%s/rank-0", parent);
	CHECK_STREQ(cg.dir, want);
	CHECK(is_dir("v2/rank-0"));
	t = text_of("v2/cgroup.subtree_control");
	CHECK_MSG(strncmp(t, "+memory", 7) == 0, "subtree_control: '%s'", t);
	free(t);
	CHECK_EQ(cohort_workcg_create(NULL, parent, "rank-0", 0, &again), -EEXIST);

	/* Already enabled: subtree_control is left as it is. */
	file_in("v2/cgroup.subtree_control", "cpu memory\n");
	CHECK_OK(cohort_workcg_create(NULL, parent, "rank-1", 0, &cg));
	t = text_of("v2/cgroup.subtree_control");
	CHECK_STREQ(t, "cpu memory\n");
	free(t);

	/* A limit that cannot be written (no memory.max in a plain directory): nothing is left. */
	memset(&again, 0x5a, sizeof(again));
	CHECK_EQ(cohort_workcg_create(NULL, parent, "rank-2", 64 << 20, &again), -ENOENT);
	CHECK(!is_dir("v2/rank-2"));
	CHECK_EQ(again.version, 0x5a5a5a5a);   /* *ret written only on success */
}

TEST(workcg_create_on_a_fake_v1_tree)
{
	struct cohort_workcg cg;
	char parent[4096];

	mkdir_in("v1");
	path_in(parent, sizeof(parent), "v1");
	/* No memory.limit_in_bytes: not a memory cgroup. */
	CHECK_EQ(cohort_workcg_create(NULL, parent, "rank-0", 0, &cg), COHORT_ENOCGROUP);
	CHECK(!is_dir("v1/rank-0"));
	file_in("v1/memory.limit_in_bytes", "9223372036854771712\n");
	CHECK_OK(cohort_workcg_create(NULL, parent, "rank-0", 0, &cg));
	CHECK_EQ(cg.version, 1);
	CHECK(is_dir("v1/rank-0"));
	CHECK_EQ(cohort_workcg_create(NULL, "/nonexistent/cgroup", "rank-0", 0, &cg), COHORT_ENOCGROUP);
}

TEST(workcg_attach_writes_the_pid)
{
	struct cohort_workcg cg = { .version = 2 };
	char want[32];
	char *t;

	mkdir_in("cg");
	path_in(cg.dir, sizeof(cg.dir), "cg");
	/* No cgroup.procs (not a cgroup): the error, not a file made. */
	CHECK_EQ(cohort_workcg_add_pid(&cg, 1234), -ENOENT);
	file_in("cg/cgroup.procs", "");
	CHECK_OK(cohort_workcg_add_pid(&cg, 1234));
	t = text_of("cg/cgroup.procs");
	CHECK_STREQ(t, "1234");
	free(t);
	file_in("cg/cgroup.procs", "");
	CHECK_OK(cohort_workcg_add_pid(&cg, 0));
	snprintf(want, sizeof(want), "%d", (int)getpid());
	t = text_of("cg/cgroup.procs");
	CHECK_STREQ(t, want);
	free(t);
}

TEST(workcg_destroy_removes_depth_first)
{
	struct cohort_workcg cg = { .version = 2 };
	char deep[4096];

	CHECK_OK(cohort_workcg_remove(NULL));
	mkdir_in("top");
	mkdir_in("top/rank-0");
	mkdir_in("top/rank-0/sub");
	mkdir_in("top/rank-1");
	path_in(cg.dir, sizeof(cg.dir), "top");
	CHECK_OK(cohort_workcg_remove(&cg));
	CHECK(!is_dir("top"));
	/* Gone already: nothing to do. */
	CHECK_OK(cohort_workcg_remove(&cg));
	/* A directory that is not empty of files (a cgroup never is so): the error, and what could go went. */
	mkdir_in("top");
	mkdir_in("top/rank-0");
	mkdir_in("top/rank-1");
	file_in("top/rank-1/stray", "x");
	CHECK_EQ(cohort_workcg_remove(&cg), -ENOTEMPTY);
	CHECK(!is_dir("top/rank-0"));
	CHECK(is_dir("top/rank-1"));
	/* Deeper than any supervisor makes: refused, never a runaway recursion. */
	snprintf(deep, sizeof(deep), "deep");
	mkdir_in(deep);
	for (int i = 0; i < 18; i++) {
		strcat(deep, "/d");
		mkdir_in(deep);
	}
	path_in(cg.dir, sizeof(cg.dir), "deep");
	CHECK_EQ(cohort_workcg_remove(&cg), -ELOOP);
}

TEST(workcg_hold_and_orphans_on_a_fake_tree)
{
	static const char *dirs[] = { "cohort-500-777", "cohort-500-778", "cohort-501-1", "cohort-501",
	                              "cohort-500", "cohort-502-1", "cohort-0-1", "cohort-x", "other" };
	struct cohort_probe p = { 0 };
	struct cohort_workcg held = { .version = 2 };
	struct cohort_workcg_orphan *o = NULL;
	char proc[4096], parent[4096], name[64], want[64];
	size_t n = 0;
	bool seen[3] = { false, false, false };
	int fd;

	/* A fake /proc where pid 500 lives since tick 777 and 501 and 502 do not. */
	mkdir_in("proc");
	mkdir_in("proc/500");
	file_in("proc/500/stat", "500 (cohort) S 1 500 500 0 -1 4194304 98 0 0 0 0 0 0 0 20 0 1 0 "
	        "777 3133440 365 18446744073709551615 0 0 0\n");
	p.proc_root = path_in(proc, sizeof(proc), "proc");
	mkdir_in("cg");
	file_in("cg/cgroup.controllers", "memory\n");
	path_in(parent, sizeof(parent), "cg");
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(name, sizeof(name), "cg/%s", dirs[i]);
		mkdir_in(name);
	}
	/* cohort-502-1's supervisor is dead by its name, but someone holds it. */
	path_in(held.dir, sizeof(held.dir), "cg/cohort-502-1");
	fd = cohort_workcg_hold(&held);
	CHECK_OK(fd);
	CHECK_EQ(cohort_workcg_hold(&held), -EWOULDBLOCK);

	CHECK_OK(cohort_workcg_orphans(&p, parent, &o, &n));
	CHECK_EQ(n, 3);
	for (size_t i = 0; i < n; i++) {
		const char *base = strrchr(o[i].cg.dir, '/') + 1;

		CHECK_EQ(o[i].cg.version, 2);
		CHECK(o[i].lock_fd >= 0);
		if (strcmp(base, "cohort-500-778") == 0 && o[i].supervisor == 500)
			seen[0] = true;
		else if (strcmp(base, "cohort-501-1") == 0 && o[i].supervisor == 501)
			seen[1] = true;
		else if (strcmp(base, "cohort-501") == 0 && o[i].supervisor == 501)
			seen[2] = true;
		else
			CHECK_MSG(false, "listed %s (supervisor %d)", base, (int)o[i].supervisor);
	}
	CHECK(seen[0] && seen[1] && seen[2]);
	/* The orphans are held by the caller while listed: a second caller gets none of them. */
	{
		struct cohort_workcg_orphan *o2 = NULL;
		size_t n2 = 99;

		CHECK_OK(cohort_workcg_orphans(&p, parent, &o2, &n2));
		CHECK_EQ(n2, 0);
		cohort_workcg_orphans_free(o2, n2);
	}
	cohort_workcg_orphans_free(o, n);
	cohort_workcg_orphans_free(NULL, 0);
	close(fd);

	/* The name a supervisor gives its cgroup: its pid and start time. */
	CHECK_EQ(cohort_workcg_supervisor_name(&p, name, sizeof(name)), -ESRCH);
	uint64_t start = 0;
	CHECK_OK(cohort_workcg_supervisor_name(NULL, name, sizeof(name)));
	{
		FILE *f;
		char stat[1024];

		snprintf(want, sizeof(want), "/proc/%d/stat", (int)getpid());
		f = fopen(want, "r");
		CHECK(f && fgets(stat, sizeof(stat), f));
		fclose(f);
		const char *q = strrchr(stat, ')') + 2;
		for (int field = 3; field < 22; field++)
			q = strchr(q, ' ') + 1;
		start = strtoull(q, NULL, 10);
	}
	snprintf(want, sizeof(want), "cohort-%d-%llu", (int)getpid(), (unsigned long long)start);
	CHECK_STREQ(name, want);
	CHECK_EQ(cohort_workcg_supervisor_name(NULL, name, 8), -ENAMETOOLONG);
}
