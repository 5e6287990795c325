/*
 * workqueue: one producer and N consumers over a cohort_queue in a
 * segment. The producer sends ITEMS messages of varying size; each
 * consumer adds a checksum of every message it takes into its own slot.
 * The sum of the slots must equal the checksum the producer computed.
 *
 *   workqueue [CONSUMERS [ITEMS]]
 */
#include <cohort.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define QUEUE_BYTES (256 * 1024)

struct shared {
	uint64_t sum[64];       /* per consumer */
	uint64_t count[64];
	_Alignas(64) unsigned char queue[];
};

static uint64_t checksum(const unsigned char *p, size_t n)
{
	uint64_t x = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++)
		x = (x ^ p[i]) * 0x100000001b3ULL;
	return x;
}

int main(int argc, char **argv)
{
	int consumers = argc > 1 ? atoi(argv[1]) : 3;
	long items = argc > 2 ? atol(argv[2]) : 200000;
	struct cohort_seg_options opt = { 0 };
	struct cohort_seg *seg;
	cohort_queue_t *q;
	size_t qsize = cohort_queue_footprint(QUEUE_BYTES);
	char why[512] = "";
	unsigned char msg[1024];
	int r;

	if (consumers < 1 || consumers > 64 || items < 1) {
		fprintf(stderr, "usage: workqueue [CONSUMERS (1-64) [ITEMS]]\n");
		return 2;
	}
	opt.why = why;
	opt.why_size = sizeof(why);
	r = cohort_seg_create("workqueue", sizeof(struct shared) + qsize, &opt, &seg);
	if (r < 0) {
		fprintf(stderr, "workqueue: %s\n", why[0] ? why : cohort_strerror(r));
		return 1;
	}
	cohort_seg_unlink("workqueue", &opt);
	struct shared *s = cohort_seg_data(seg);
	r = cohort_queue_init(s->queue, qsize, &q);
	if (r < 0) {
		fprintf(stderr, "workqueue: %s\n", cohort_strerror(r));
		return 1;
	}

	for (int c = 0; c < consumers; c++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			for (;;) {
				int n = cohort_queue_recv(q, msg, sizeof(msg), 30000);

				if (n < 0) {
					fprintf(stderr, "workqueue: consumer %d: %s\n", c, cohort_strerror(n));
					_exit(1);
				}
				if (n == 1 && msg[0] == 0)   /* the stop message */
					_exit(0);
				s->sum[c] += checksum(msg, (size_t)n);
				s->count[c]++;
			}
		}
	}

	uint64_t expected = 0;
	for (long i = 0; i < items; i++) {
		size_t n = 8 + (size_t)(i * 7919 % 1000);

		for (size_t k = 0; k < n; k++)
			msg[k] = (unsigned char)(i + (long)k * 31);
		msg[0] |= 1;   /* never the stop message */
		expected += checksum(msg, n);
		r = cohort_queue_send(q, msg, n, 30000);
		if (r < 0) {
			fprintf(stderr, "workqueue: producer: %s\n", cohort_strerror(r));
			return 1;
		}
	}
	msg[0] = 0;
	for (int c = 0; c < consumers; c++)
		cohort_queue_send(q, msg, 1, 30000);
	int status, failed = 0;
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed = 1;

	uint64_t got = 0, count = 0;
	for (int c = 0; c < consumers; c++) {
		got += s->sum[c];
		count += s->count[c];
	}
	printf("%ld items, %d consumers: %" PRIu64 " received, checksum expected %016" PRIx64
	       ", got %016" PRIx64 ": %s\n", items, consumers, count, expected, got,
	       !failed && got == expected && count == (uint64_t)items ? "match" : "MISMATCH");
	cohort_queue_close(q);
	cohort_seg_close(seg);
	return !failed && got == expected && count == (uint64_t)items ? 0 : 1;
}
