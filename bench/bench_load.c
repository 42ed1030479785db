/*
 * Benchmark driver: loads a config directory with tg_desired_load, checks
 * references, and prints files, objects, problems, seconds and peak RSS.
 * Usage: bench_load DIR
 */
#include <stdio.h>
#include <sys/resource.h>

#include "tg/common.h"
#include "tg/desired.h"

int main(int argc, char **argv)
{
	struct tg_load_opts opts = { 0 };
	struct tg_problems problems;
	struct tg_desired *d = NULL;
	struct tg_err err = { 0, "" };
	struct rusage ru;
	long long start, ms;

	if (argc != 2) {
		fprintf(stderr, "usage: bench_load DIR\n");
		return 2;
	}
	opts.root = argv[1];
	tg_problems_init(&problems);
	start = tg_now_ms();
	if (tg_desired_load(&d, &problems, &opts, &err)) {
		fprintf(stderr, "bench_load: %s\n", err.msg);
		return 1;
	}
	tg_desired_check_refs(d, NULL, 0, &problems);
	ms = tg_now_ms() - start;
	getrusage(RUSAGE_SELF, &ru);
	printf("objects=%zu problems=%zu errors=%zu seconds=%.3f peak_rss_kb=%ld\n", d->len,
	       problems.len, problems.errors, ms / 1000.0, ru.ru_maxrss);
	tg_desired_free(d);
	tg_problems_release(&problems);
	return problems.errors ? 1 : 0;
}
