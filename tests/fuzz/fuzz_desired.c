/*
 * libFuzzer target: the desired-state loader on one in-memory file.  The
 * first byte picks the file name (API or policy, YAML or JSON), the rest is
 * the content; problems are formatted as both outputs would be.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tg/buf.h"
#include "tg/desired.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *fuzz_getenv(const char *name, void *ctx)
{
	(void)ctx;
	return strcmp(name, "SET") ? NULL : "value";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const files[] = { "apis/x.yaml", "apis/x.json", "policies/p.yaml",
					     "policies/p.json" };
	struct tg_load_opts opts = { 0 };
	struct tg_problems problems;
	struct tg_desired *d = NULL;
	struct tg_buf out = TG_BUF_INIT;
	const char *known[] = { "known" };

	if (size < 1)
		return 0;
	opts.getenv_fn = fuzz_getenv;
	tg_problems_init(&problems);
	tg_desired_load_buffer(&d, &problems, &opts, files[data[0] % 4], (const char *)data + 1,
			       size - 1);
	tg_desired_check_refs(d, known, 1, &problems);
	tg_problems_sort(&problems);
	tg_problems_format_text(&problems, &out);
	tg_problems_format_json(&problems, &out);
	tg_buf_release(&out);
	tg_desired_free(d);
	tg_problems_release(&problems);
	return 0;
}
