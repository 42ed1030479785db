/* base64 for SSH material and base64url for JWTs: what each accepts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "tg/base64.h"
#include "tg/common.h"

static void test_base64__accepts_what_openssh_writes_and_nothing_else(void **state)
{
	unsigned char *out;
	size_t n;

	(void)state;
	assert_int_equal(tg_base64_decode(&out, &n, "aGVs bG8=\n", 10), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(out, "hello", 5);
	free(out);
	assert_int_equal(tg_base64_decode(&out, &n, "", 0), 0);
	assert_int_equal(n, 0);
	free(out);
	assert_int_equal(tg_base64_decode(&out, &n, "a", 1), TG_EINVALID);
	assert_null(out);
	assert_int_equal(tg_base64_decode(&out, &n, "aGVs!", 5), TG_EINVALID);
	assert_int_equal(tg_base64_decode(&out, &n, "aG=Vs", 5), TG_EINVALID);
}

static void test_base64url__is_strict(void **state)
{
	unsigned char *out = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(tg_base64url_decode(&out, &n, "aGk", 3), 0);
	assert_int_equal(n, 2);
	assert_memory_equal(out, "hi", 2);
	free(out);
	assert_int_equal(tg_base64url_decode(&out, &n, "", 0), 0);
	assert_int_equal(n, 0);
	free(out);
	assert_int_equal(tg_base64url_decode(&out, &n, "_-8", 3), 0);
	free(out);
	assert_int_not_equal(tg_base64url_decode(&out, &n, "aGk=", 4), 0); /* padding */
	assert_int_not_equal(tg_base64url_decode(&out, &n, "a+k", 3), 0);  /* base64, not url */
	assert_int_not_equal(tg_base64url_decode(&out, &n, "aGl", 3), 0);  /* non-zero spare bits */
	assert_int_not_equal(tg_base64url_decode(&out, &n, "aGkha", 5), 0); /* 4n+1 */
	assert_null(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64__accepts_what_openssh_writes_and_nothing_else),
		cmocka_unit_test(test_base64url__is_strict),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
