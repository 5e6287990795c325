/*
 * record.c - the recording of a run: newline-delimited JSON, see
 * docs/recording.md. Every line goes out in one write(2) on an O_APPEND
 * descriptor, so a SIGKILL of the supervisor cuts at most the line being
 * written, and readers skip a cut last line.
 */
#include "supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <string.h>
#include <unistd.h>

int recorder_open(struct recorder *rec, const char *path)
{
	memset(rec, 0, sizeof(*rec));
	rec->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (rec->fd < 0)
		return -errno;
	snprintf(rec->path, sizeof(rec->path), "%s", path);
	return 0;
}

int recorder_open_anon(struct recorder *rec)
{
	memset(rec, 0, sizeof(*rec));
	rec->fd = memfd_create("cohort-recording", MFD_CLOEXEC);
	if (rec->fd < 0)
		return -errno;
	snprintf(rec->path, sizeof(rec->path), "(not recorded)");
	rec->anon = true;
	return 0;
}

int recorder_write(struct recorder *rec, json_t *obj)
{
	char *text;
	size_t len, off = 0;

	if (rec->fd < 0 || rec->error) {
		json_decref(obj);
		return 0;
	}
	text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(obj);
	if (!text) {
		rec->error = ENOMEM;
		return -ENOMEM;
	}
	len = strlen(text);
	text[len++] = '\n';   /* json_dumps leaves room: it wrote a NUL there */
	while (off < len) {
		ssize_t n = write(rec->fd, text + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rec->error = n < 0 ? errno : EIO;
			free(text);
			return -rec->error;
		}
		off += (size_t)n;
	}
	free(text);
	return 0;
}

void recorder_close(struct recorder *rec)
{
	if (rec->fd >= 0)
		close(rec->fd);
	rec->fd = -1;
}
