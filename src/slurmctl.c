/*
 * slurmctl.c - what SLURM's controller knows, through scontrol.
 *
 * scontrol is the one interface every SLURM site has (libslurm's ABI
 * changes with each release, and slurmrestd is rarely run). Its output is
 * parsed here, once, so that the CLI never matches strings of it.
 *
 * The library may be loaded into a process with threads (slurmstepd
 * plugins, Python), so scontrol is started with posix_spawn, whose child
 * runs no code of ours between fork and exec; and it is bounded in time
 * and in output, since a hung controller must not hang a job's start.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SCONTROL_TIMEOUT_MS 3000
#define SCONTROL_OUTPUT_MAX (256 * 1024)

/* ------------------------------------------------------------------------
 * Running scontrol
 * ------------------------------------------------------------------------ */

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * Wait until pid has ended or deadline (CLOCK_MONOTONIC ms) has passed,
 * without reaping it: while it is a zombie its pid, and so its process
 * group's id, cannot be taken by another process, and the group can be
 * killed safely. A short poll rather than SIGCHLD: the library must not
 * touch the host's signal dispositions. Returns 0, COHORT_ETIMEDOUT or -errno
 * (-ECHILD: someone else reaped it).
 */
static int wait_until(pid_t pid, uint64_t deadline)
{
	for (;;) {
		siginfo_t si;

		si.si_pid = 0;
		if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0) {
			if (si.si_pid == pid)
				return 0;
		} else if (errno != EINTR) {
			return -errno;
		}
		if (cohort__now_ms() >= deadline)
			return COHORT_ETIMEDOUT;
		sleep_ms(5);
	}
}

/*
 * Kill the child's process group (it and whatever it started) and reap
 * the child. Returns its wait status.
 */
static int kill_and_reap(pid_t pid)
{
	int st = 0;

	kill(-pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return st;
}

/*
 * Run argv (argv[0] searched in PATH unless it holds a '/') with stdin
 * from /dev/null, stderr to /dev/null and stdout into *ret_out (malloc'd,
 * NUL-terminated; the caller frees it). Returns 0, COHORT_ETIMEDOUT, -EFBIG,
 * COHORT_ECOMMAND, or -errno (-ENOENT: no such command).
 */
static int run_capture(char *const argv[], char **ret_out)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int pipefd[2] = { -1, -1 }, r, st = 0;
	bool fa_init = false, attr_init = false;
	size_t len = 0;
	char *buf = NULL;
	pid_t pid = -1;
	uint64_t deadline = cohort__now_ms() + SCONTROL_TIMEOUT_MS;

	buf = malloc(SCONTROL_OUTPUT_MAX + 1);
	if (!buf)
		return -ENOMEM;
	/* O_CLOEXEC: a child another thread spawns meanwhile must not hold our pipe. */
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		r = -errno;
		goto out;
	}
	if ((r = -posix_spawn_file_actions_init(&fa)) < 0)
		goto out;
	fa_init = true;
	if ((r = -posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) < 0 ||
	    (r = -posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1)) < 0 ||
	    (r = -posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0)) < 0)
		goto out;
	if ((r = -posix_spawnattr_init(&attr)) < 0)
		goto out;
	attr_init = true;
	/*
	 * The host may block signals (a supervisor that reads them from a
	 * signalfd) or ignore SIGPIPE; scontrol gets neither. Its own process
	 * group lets a timeout kill whatever it started too.
	 */
	sigemptyset(&none);
	sigfillset(&all);
	if ((r = -posix_spawnattr_setsigmask(&attr, &none)) < 0 ||
	    (r = -posix_spawnattr_setsigdefault(&attr, &all)) < 0 ||
	    (r = -posix_spawnattr_setpgroup(&attr, 0)) < 0 ||
	    (r = -posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
	                                          POSIX_SPAWN_SETPGROUP)) < 0)
		goto out;
	r = -posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
	if (r < 0) {
		pid = -1;
		goto out;
	}
	close(pipefd[1]);
	pipefd[1] = -1;

	for (;;) {
		struct pollfd pfd = { .fd = pipefd[0], .events = POLLIN };
		int left = cohort__ms_left(deadline, -1);
		ssize_t n;

		if (left <= 0) {
			r = COHORT_ETIMEDOUT;
			goto out;
		}
		n = poll(&pfd, 1, left);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto out;
		}
		if (n == 0)
			continue;
		if (len == SCONTROL_OUTPUT_MAX) {
			/* One more byte would be past the bound: that is too much. */
			char c;

			n = read(pipefd[0], &c, 1);
			if (n < 0 && errno == EINTR)
				continue;
			if (n > 0) {
				r = -EFBIG;
				goto out;
			}
		} else {
			n = read(pipefd[0], buf + len, SCONTROL_OUTPUT_MAX - len);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
		}
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';

	r = wait_until(pid, deadline);
	if (r == -ECHILD) {
		/* The host reaped it (waitpid(-1) elsewhere): the output is whole, the status lost. */
		pid = -1;
		goto done;
	}
	if (r < 0)
		goto out;
	st = kill_and_reap(pid);
	pid = -1;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		r = COHORT_ECOMMAND;
		goto out;
	}
done:
	*ret_out = buf;
	buf = NULL;
	r = 0;
out:
	if (pid > 0)
		kill_and_reap(pid);
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	if (fa_init)
		posix_spawn_file_actions_destroy(&fa);
	if (attr_init)
		posix_spawnattr_destroy(&attr);
	free(buf);
	return r;
}

/*
 * Run scontrol (probe->scontrol, else "scontrol" in PATH) with args
 * (NULL-terminated, at most 7), as run_capture() does.
 */
static int run_scontrol(const struct cohort_probe *probe, const char *const *args, char **ret_out)
{
	const char *cmd = probe && probe->scontrol && probe->scontrol[0] ? probe->scontrol : "scontrol";
	char store[8][COHORT_PATH_MAX];
	char *argv[9];
	size_t n = 0;

	/* posix_spawn takes char *const argv[]: copies, not casts that drop const. */
	if (strlen(cmd) >= sizeof(store[0]))
		return -ENAMETOOLONG;
	cohort__strlcpy(store[n], cmd, sizeof(store[0]));
	argv[n] = store[n];
	n++;
	for (; *args && n < COHORT_ARRAY_SIZE(store); args++, n++) {
		if (strlen(*args) >= sizeof(store[0]))
			return -ENAMETOOLONG;
		cohort__strlcpy(store[n], *args, sizeof(store[0]));
		argv[n] = store[n];
	}
	argv[n] = NULL;
	return run_capture(argv, ret_out);
}

/* ------------------------------------------------------------------------
 * scontrol show config
 * ------------------------------------------------------------------------ */

/* Copy a value, "(null)" read as empty, trailing blanks dropped. */
static void copy_value(char *dst, size_t size, const char *v, size_t n)
{
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r'))
		n--;
	if (n == 6 && memcmp(v, "(null)", 6) == 0)
		n = 0;
	if (n >= size)
		n = size - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

/* Is word one of the comma-separated tokens of list (case-insensitive, as SLURM reads them)? */
static bool has_token(const char *list, const char *word)
{
	size_t wl = strlen(word);

	for (const char *p = list; *p; ) {
		size_t n = strcspn(p, ",");

		while (n > 0 && p[n - 1] == ' ')
			n--;
		if (n == wl && strncasecmp(p, word, wl) == 0)
			return true;
		p += strcspn(p, ",");
		if (*p == ',')
			p++;
		while (*p == ' ')
			p++;
	}
	return false;
}

/* A bare number of seconds, or "task=N" among comma-separated tokens; -1 when neither. */
static long task_seconds(const char *freq)
{
	for (const char *p = freq; *p; ) {
		const char *num = NULL;
		uint64_t v;
		const char *end;

		if (strncasecmp(p, "task=", 5) == 0)
			num = p + 5;
		else if (*p >= '0' && *p <= '9')
			num = p;
		if (num && cohort__parse_u64(num, &v, &end) == 0 && (*end == '\0' || *end == ',') &&
		    v <= 1000000000ULL && *num >= '0' && *num <= '9')
			return (long)v;
		p += strcspn(p, ",");
		if (*p == ',')
			p++;
	}
	return -1;
}

void cohort__slurm_config_flags(struct cohort_slurm_config *c)
{
	c->use_pss = has_token(c->jobacct_gather_params, "UsePss");
	c->no_shared = has_token(c->jobacct_gather_params, "NoShared");
	c->over_memory_kill = has_token(c->jobacct_gather_params, "OverMemoryKill");
	c->jobacct_gather_task_s = task_seconds(c->jobacct_gather_frequency);
}

int cohort_slurm_config_parse(const char *text, struct cohort_slurm_config *ret)
{
	struct cohort_slurm_config c;
	char constrain[16] = "";
	int found = 0;
	struct {
		const char *key;
		char *dst;
		size_t size;
	} keys[] = {
		{ "JobAcctGatherType", c.jobacct_gather_type, sizeof(c.jobacct_gather_type) },
		{ "JobAcctGatherParams", c.jobacct_gather_params, sizeof(c.jobacct_gather_params) },
		{ "JobAcctGatherFrequency", c.jobacct_gather_frequency, sizeof(c.jobacct_gather_frequency) },
		{ "ProctrackType", c.proctrack_type, sizeof(c.proctrack_type) },
		{ "TaskPlugin", c.task_plugin, sizeof(c.task_plugin) },
		{ "SelectType", c.select_type, sizeof(c.select_type) },
		{ "ConstrainRAMSpace", constrain, sizeof(constrain) },
	};

	if (!text || !ret)
		return -EINVAL;
	memset(&c, 0, sizeof(c));
	for (const char *line = text; *line; ) {
		size_t n = strcspn(line, "\n");
		const char *eq = memchr(line, '=', n);

		if (eq && n <= 4096) {
			size_t kl = (size_t)(eq - line);
			const char *v = eq + 1;

			while (kl > 0 && (line[kl - 1] == ' ' || line[kl - 1] == '\t'))
				kl--;
			while (v < line + n && (*v == ' ' || *v == '\t'))
				v++;
			for (size_t i = 0; i < COHORT_ARRAY_SIZE(keys); i++)
				if (strlen(keys[i].key) == kl && memcmp(line, keys[i].key, kl) == 0) {
					copy_value(keys[i].dst, keys[i].size, v, (size_t)(line + n - v));
					found++;
					break;
				}
		}
		line += n;
		if (*line == '\n')
			line++;
	}
	if (!found)
		return COHORT_EPARSE;
	c.constrain_ram_space = strcasecmp(constrain, "yes") == 0 ? 1 :
	                        strcasecmp(constrain, "no") == 0 ? 0 : -1;
	cohort__slurm_config_flags(&c);
	*ret = c;
	return 0;
}

int cohort_slurm_config_read(const struct cohort_probe *probe, struct cohort_slurm_config *ret)
{
	static const char *const args[] = { "show", "config", NULL };
	char *out = NULL;
	int r;

	if (!ret)
		return -EINVAL;
	r = run_scontrol(probe, args, &out);
	if (r < 0)
		return r;
	r = cohort_slurm_config_parse(out, ret);
	free(out);
	return r;
}

int cohort_slurm_sums_rss(const struct cohort_slurm_config *cfg)
{
	const char *type;

	if (!cfg)
		return 1;
	if (cfg->use_pss)
		return 0;
	type = cfg->jobacct_gather_type;
	if (strstr(type, "cgroup") || strcmp(type, "jobacct_gather/none") == 0)
		return 0;
	/* jobacct_gather/linux, nothing, or a plugin cohort does not know: see the header. */
	return 1;
}

enum cohort_slurm_rss cohort_slurm_rss_level(uint64_t rss_sum, uint64_t pss_sum, uint64_t limit)
{
	if (!limit)
		return COHORT_SLURM_RSS_FITS;
	if (rss_sum > limit && pss_sum < limit)
		return COHORT_SLURM_RSS_OVER;
	/* limit / 100 * p: no overflow for any limit, exact enough at byte scale. */
	if (rss_sum > limit / 100 * COHORT_SLURM_RSS_NEAR_PERCENT &&
	    pss_sum < limit / 100 * COHORT_SLURM_PSS_NEAR_PERCENT)
		return COHORT_SLURM_RSS_NEAR;
	return COHORT_SLURM_RSS_FITS;
}

/* ------------------------------------------------------------------------
 * scontrol show job -o
 * ------------------------------------------------------------------------ */

/*
 * The value of the first token "Key=" of line (tokens are separated by
 * blanks), copied into dst. Returns false when absent.
 */
static bool token(const char *line, size_t len, const char *key, char *dst, size_t size)
{
	size_t kl = strlen(key);

	for (size_t i = 0; i + kl < len; i++) {
		if ((i > 0 && line[i - 1] != ' ' && line[i - 1] != '\t') ||
		    memcmp(line + i, key, kl) != 0 || line[i + kl] != '=')
			continue;
		const char *v = line + i + kl + 1;
		size_t n = 0;

		while (v + n < line + len && v[n] != ' ' && v[n] != '\t' && v[n] != '\r')
			n++;
		copy_value(dst, size, v, n);
		return true;
	}
	return false;
}

/* A size token: absent or "0" is 0. Errors of cohort_size_parse() pass up. */
static int size_token(const char *line, size_t len, const char *key, uint64_t *ret)
{
	char v[64];
	int r;

	*ret = 0;
	if (!token(line, len, key, v, sizeof(v)))
		return 0;
	r = cohort_size_parse(v, ret);
	return r == COHORT_ESIZE_SYNTAX || r == COHORT_ESIZE_FRACTION ? COHORT_EPARSE : r;
}

/* A count token: its leading number ("1-2" gives 1), -1 when absent or "N/A". */
static long count_token(const char *line, size_t len, const char *key)
{
	char v[64];
	uint64_t n;
	const char *end;

	if (!token(line, len, key, v, sizeof(v)) || v[0] < '0' || v[0] > '9' ||
	    cohort__parse_u64(v, &n, &end) < 0 || n > 0x7fffffffULL)
		return -1;
	return (long)n;
}

int cohort_slurm_job_parse(const char *text, struct cohort_slurm_job *ret)
{
	struct cohort_slurm_job j;
	const char *line = text;
	size_t len = 0;
	char tres[512];
	int r;

	if (!text || !ret)
		return -EINVAL;
	for (; *line; ) {
		len = strcspn(line, "\n");
		if (strncmp(line, "JobId=", 6) == 0)
			break;
		line += len;
		if (*line == '\n')
			line++;
	}
	if (!*line)
		return COHORT_EPARSE;

	memset(&j, 0, sizeof(j));
	token(line, len, "JobId", j.job_id, sizeof(j.job_id));
	if (!j.job_id[0])
		return COHORT_EPARSE;
	token(line, len, "JobState", j.job_state, sizeof(j.job_state));
	if ((r = size_token(line, len, "MinMemoryNode", &j.mem_per_node)) < 0 ||
	    (r = size_token(line, len, "MinMemoryCPU", &j.mem_per_cpu)) < 0)
		return r;
	if (token(line, len, "TRES", tres, sizeof(tres))) {
		/* "cpu=1,mem=1000M,node=1,billing=1" */
		for (const char *p = tres; *p; ) {
			size_t n = strcspn(p, ",");

			if (n > 4 && strncmp(p, "mem=", 4) == 0) {
				char v[64];

				if (n - 4 >= sizeof(v))
					return COHORT_EPARSE;
				memcpy(v, p + 4, n - 4);
				v[n - 4] = '\0';
				r = cohort_size_parse(v, &j.mem_tres);
				if (r < 0)
					return r == COHORT_ESIZE_RANGE ? r : COHORT_EPARSE;
				break;
			}
			p += n;
			if (*p == ',')
				p++;
		}
	}
	j.num_nodes = count_token(line, len, "NumNodes");
	j.num_cpus = count_token(line, len, "NumCPUs");
	j.num_tasks = count_token(line, len, "NumTasks");
	*ret = j;
	return 0;
}

/* SLURM job ids: 123, 123_4 (array task), 123+1 (heterogeneous component). */
static bool valid_job_id(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n >= COHORT_ID_MAX || id[0] < '0' || id[0] > '9')
		return false;
	return strspn(id, "0123456789_+") == n;
}

int cohort_slurm_job_read(const struct cohort_probe *probe, const char *job_id,
                          struct cohort_slurm_job *ret)
{
	const char *args[] = { "-o", "show", "job", job_id, NULL };
	char *out = NULL;
	int r;

	if (!ret || !valid_job_id(job_id))
		return -EINVAL;
	r = run_scontrol(probe, args, &out);
	if (r < 0)
		return r;
	r = cohort_slurm_job_parse(out, ret);
	free(out);
	return r;
}
