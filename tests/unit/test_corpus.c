/*
 * Corpus tests for the desired-state loader: every repository under
 * tests/corpus/good must load without errors, and every one under
 * tests/corpus/bad must produce exactly the text in its expect.txt
 * (tg_problems_format_text after tg_desired_check_refs and sorting).
 * Run from the repository root.  TG_CORPUS_WRITE=1 rewrites expect.txt
 * files from the current output, for review with git diff.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>

#include <cmocka.h>

#include "tg/buf.h"
#include "tg/common.h"
#include "tg/desired.h"

#define CORPUS "tests/corpus"

/* A fixed environment, so results do not depend on the caller's. */
static const char *fake_getenv(const char *name, void *ctx)
{
	(void)ctx;
	if (!strcmp(name, "TG_TEST_SET"))
		return "s3cret-value";
	if (!strcmp(name, "UPSTREAM_HOST"))
		return "upstream.internal";
	return NULL;
}

static void list_cases(const char *dir, char ***out, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	assert_non_null(d);
	*out = NULL;
	*n = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		*out = realloc(*out, (*n + 1) * sizeof(**out));
		(*out)[(*n)++] = tg_xasprintf("%s/%s", dir, de->d_name);
	}
	closedir(d);
}

static void free_cases(char **cases, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(cases[i]);
	free(cases);
}

static void load_case(const char *root, struct tg_buf *text, size_t *errors)
{
	struct tg_load_opts opts = { 0 };
	struct tg_problems problems;
	struct tg_desired *d = NULL;
	struct tg_err err = { 0, "" };

	opts.root = root;
	opts.getenv_fn = fake_getenv;
	tg_problems_init(&problems);
	assert_int_equal(tg_desired_load(&d, &problems, &opts, &err), 0);
	tg_desired_check_refs(d, NULL, 0, &problems);
	tg_problems_sort(&problems);
	tg_problems_format_text(&problems, text);
	*errors = problems.errors;
	tg_problems_release(&problems);
	tg_desired_free(d);
}

static void test_corpus__good_repositories_load_without_errors(void **state)
{
	char **cases;
	size_t n, i, errors;

	(void)state;
	list_cases(CORPUS "/good", &cases, &n);
	assert_true(n >= 3);
	for (i = 0; i < n; i++) {
		struct tg_buf text = TG_BUF_INIT;

		load_case(cases[i], &text, &errors);
		if (errors)
			fprintf(stderr, "%s:\n%s", cases[i], tg_buf_cstr(&text));
		assert_int_equal(errors, 0);
		tg_buf_release(&text);
	}
	free_cases(cases, n);
}

static void test_corpus__bad_repositories_report_expected_problems(void **state)
{
	char **cases;
	size_t n, i, errors, failures = 0;
	const char *write = getenv("TG_CORPUS_WRITE");

	(void)state;
	list_cases(CORPUS "/bad", &cases, &n);
	assert_true(n >= 8);
	for (i = 0; i < n; i++) {
		struct tg_buf text = TG_BUF_INIT;
		struct tg_err err = { 0, "" };
		char *path = tg_xasprintf("%s/expect.txt", cases[i]);
		char *want = NULL;

		load_case(cases[i], &text, &errors);
		if (write && !strcmp(write, "1")) {
			FILE *f = fopen(path, "w");

			assert_non_null(f);
			fputs(tg_buf_cstr(&text), f);
			fclose(f);
		}
		if (tg_read_file(&want, NULL, path, 1 << 20, &err)) {
			fprintf(stderr, "%s: %s\n", cases[i], err.msg);
			failures++;
		} else if (strcmp(want, tg_buf_cstr(&text))) {
			fprintf(stderr, "%s: problems differ\n--- want\n%s--- got\n%s", cases[i],
				want, tg_buf_cstr(&text));
			failures++;
		}
		if (!errors) {
			fprintf(stderr, "%s: no errors reported\n", cases[i]);
			failures++;
		}
		free(want);
		free(path);
		tg_buf_release(&text);
	}
	free_cases(cases, n);
	assert_int_equal(failures, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus__good_repositories_load_without_errors),
		cmocka_unit_test(test_corpus__bad_repositories_report_expected_problems),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
