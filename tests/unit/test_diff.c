/* Semantic diff: what counts as drift and what does not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tg/diff.h"
#include "tg/marker.h"

#include <openssl/evp.h>

static size_t diff_count(const char *desired, const char *actual, enum tg_kind kind,
			 struct tg_changes *out, const struct tg_secrets *secrets)
{
	cJSON *d = cJSON_Parse(desired), *a = cJSON_Parse(actual);

	assert_non_null(d);
	assert_non_null(a);
	tg_diff_objects(out, kind, d, a, secrets);
	cJSON_Delete(d);
	cJSON_Delete(a);
	return out->len;
}

static void test_diff__finds_the_one_change_in_wide_objects(void **state)
{
	cJSON *d = cJSON_CreateObject(), *a = cJSON_CreateObject();
	struct tg_changes c = { 0 };
	char key[32];

	(void)state;
	/* Insertion orders differ, so neither side's walk lines up with the other's. */
	for (int i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		cJSON_AddNumberToObject(d, key, i);
		snprintf(key, sizeof(key), "k%d", 1999 - i);
		cJSON_AddNumberToObject(a, key, 1999 - i == 1234 ? -1 : 1999 - i);
	}
	cJSON_AddStringToObject(a, "only_on_gateway", "x");
	tg_diff_objects(&c, TG_KIND_API, d, a, NULL);
	assert_int_equal(c.len, 2);
	assert_string_equal(c.items[0].path, "k1234");
	assert_string_equal(c.items[0].before, "-1");
	assert_string_equal(c.items[0].after, "1234");
	assert_string_equal(c.items[1].path, "only_on_gateway");
	assert_null(c.items[1].after);
	tg_changes_release(&c);
	cJSON_Delete(d);
	cJSON_Delete(a);
}

static void test_diff__ignores_key_order_and_number_format(void **state)
{
	struct tg_changes c = { 0 };

	(void)state;
	assert_int_equal(diff_count("{\"a\":1,\"b\":{\"x\":\"y\",\"n\":2.0}}",
				    "{\"b\":{\"n\":2,\"x\":\"y\"},\"a\":1.0}", TG_KIND_API, &c,
				    NULL),
			 0);
	tg_changes_release(&c);
}

static void test_diff__ignores_gateway_defaults(void **state)
{
	struct tg_changes c = { 0 };

	(void)state;
	assert_int_equal(
		diff_count("{\"api_id\":\"a\"}",
			   "{\"api_id\":\"a\",\"use_oauth2\":false,\"slug\":\"\",\"tags\":null,"
			   "\"auth\":{\"name\":\"\",\"use_param\":false},\"list\":[],\"n\":0}",
			   TG_KIND_API, &c, NULL),
		0);
	tg_changes_release(&c);
}

static void test_diff__ignores_fields_the_gateway_dropped(void **state)
{
	struct tg_changes c = { 0 };

	(void)state;
	assert_int_equal(diff_count("{\"api_id\":\"a\",\"future_field\":{\"x\":1}}",
				    "{\"api_id\":\"a\"}", TG_KIND_API, &c, NULL),
			 0);
	tg_changes_release(&c);
}

static void test_diff__ignores_oas_servers_the_gateway_adds(void **state)
{
	struct tg_changes c = { 0 };

	(void)state;
	assert_int_equal(
		diff_count("{\"openapi\":\"3.0.3\"}",
			   "{\"openapi\":\"3.0.3\",\"servers\":[{\"url\":\"http://gw/x/\"}]}",
			   TG_KIND_OAS_API, &c, NULL),
		0);
	tg_changes_release(&c);
}

static void test_diff__ignores_marker(void **state)
{
	struct tg_changes c = { 0 };

	(void)state;
	assert_int_equal(
		diff_count(
			"{\"id\":\"p\"}",
			"{\"id\":\"p\",\"meta_data\":{\"tyk_gitops\":{\"sync\":\"s\",\"commit\":\"abc\"}}}",
			TG_KIND_POLICY, &c, NULL),
		0);
	tg_changes_release(&c);
}

static void test_diff__reports_changed_value_with_path(void **state)
{
	struct tg_changes c = { 0 };

	(void)state;
	assert_int_equal(diff_count("{\"proxy\":{\"target_url\":\"http://new\"}}",
				    "{\"proxy\":{\"target_url\":\"http://old\",\"x\":false}}",
				    TG_KIND_API, &c, NULL),
			 1);
	assert_string_equal(c.items[0].path, "proxy.target_url");
	assert_string_equal(c.items[0].before, "\"http://old\"");
	assert_string_equal(c.items[0].after, "\"http://new\"");
	tg_changes_release(&c);
}

static void test_diff__reports_non_default_field_added_by_hand(void **state)
{
	struct tg_changes c = { 0 };

	(void)state;
	assert_int_equal(diff_count("{\"a\":1}", "{\"a\":1,\"extra\":\"set by hand\"}", TG_KIND_API,
				    &c, NULL),
			 1);
	assert_string_equal(c.items[0].path, "extra");
	assert_null(c.items[0].after);
	tg_changes_release(&c);
}

static void test_diff__reports_array_element_change(void **state)
{
	struct tg_changes c = { 0 };

	(void)state;
	assert_int_equal(
		diff_count("{\"v\":[\"a\",\"b\"]}", "{\"v\":[\"a\",\"c\"]}", TG_KIND_API, &c, NULL),
		1);
	assert_string_equal(c.items[0].path, "v[1]");
	tg_changes_release(&c);
}

static void test_diff__redacts_secrets_in_both_values(void **state)
{
	const char *const values[] = { "hunter2" };
	struct tg_secrets secrets = { values, 1 };
	struct tg_changes c = { 0 };

	(void)state;
	assert_int_equal(diff_count("{\"u\":\"http://x/hunter2\"}",
				    "{\"u\":\"http://x/old-hunter2-z\"}", TG_KIND_API, &c,
				    &secrets),
			 1);
	assert_string_equal(c.items[0].before, "\"***\"");
	assert_string_equal(c.items[0].after, "\"***\"");
	tg_changes_release(&c);
}

static void test_diff__hash_ignores_key_order_and_marker(void **state)
{
	cJSON *a = cJSON_Parse("{\"a\":1,\"b\":{\"c\":2,\"d\":3}}");
	cJSON *b = cJSON_Parse(
		"{\"b\":{\"d\":3,\"c\":2},\"a\":1,\"config_data\":{\"tyk_gitops\":{\"x\":1}}}");
	cJSON *c = cJSON_Parse("{\"b\":{\"d\":4,\"c\":2},\"a\":1}");
	char ha[65], hb[65], hc[65];

	(void)state;
	tg_diff_hash(ha, TG_KIND_API, a);
	tg_diff_hash(hb, TG_KIND_API, b);
	tg_diff_hash(hc, TG_KIND_API, c);
	assert_string_equal(ha, hb);
	assert_string_not_equal(ha, hc);
	assert_int_equal(strlen(ha), 64);
	cJSON_Delete(a);
	cJSON_Delete(b);
	cJSON_Delete(c);
}

/* --- tg_diff_hash against the way it was first computed ---------------- */

static int ref_cmp_keys(const void *a, const void *b)
{
	const cJSON *const *x = a, *const *y = b;

	return strcmp((*x)->string, (*y)->string);
}

/* Stable, as glibc's qsort (a merge sort) was for the original. */
static void ref_sort_keys(cJSON *v)
{
	cJSON **items = NULL, *c;
	size_t n = 0, i, j;

	for (c = v ? v->child : NULL; c; c = c->next) {
		ref_sort_keys(c);
		n++;
	}
	if (!cJSON_IsObject(v) || n < 2)
		return;
	items = calloc(n, sizeof(*items));
	for (c = v->child, i = 0; c; c = c->next)
		items[i++] = c;
	for (i = 1; i < n; i++) /* insertion sort: stable */
		for (j = i; j > 0 && ref_cmp_keys(&items[j - 1], &items[j]) > 0; j--) {
			cJSON *t = items[j];

			items[j] = items[j - 1];
			items[j - 1] = t;
		}
	for (i = 0; i < n; i++) {
		items[i]->prev = i ? items[i - 1] : items[n - 1];
		items[i]->next = i + 1 < n ? items[i + 1] : NULL;
	}
	v->child = items[0];
	free(items);
}

/* The original: copy, strip the marker, sort, print, digest. */
static void ref_hash(char out[65], enum tg_kind kind, const cJSON *obj)
{
	cJSON *copy = cJSON_Duplicate(obj, 1);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char *text;

	tg_marker_strip(copy, kind);
	ref_sort_keys(copy);
	text = cJSON_PrintUnformatted(copy);
	EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL);
	for (unsigned int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	free(text);
	cJSON_Delete(copy);
}

static void test_diff__hash_text_is_the_sorted_stripped_print(void **state)
{
	static const char *const docs[] = {
		"{\"b\":1,\"a\":[{\"z\":0.1,\"y\":-0.0}],\"c\":{\"d\":1e300,\"e\":1.5}}",
		"{\"n\":[2147483648,-2147483649,1e-7,123456789012345678,0.30000000000000004,"
		"3.141592653589793,100,-1,1e21,5e-324]}",
		"{\"s\":\"q\\\"b\\\\c\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f\u00e9\\u2028\"}",
		"{\"k\":1,\"k\":2,\"a\":3,\"k\":0}",
		"{\"x\":true,\"y\":false,\"z\":null,\"e\":{},\"f\":[],\"g\":[[],{}]}",
		"{\"api_id\":\"a\",\"config_data\":{\"tyk_gitops\":{\"sync\":\"s\"}}}",
		"{\"api_id\":\"a\",\"config_data\":{\"tyk_gitops\":{\"h\":1},\"keep\":1}}",
		"{\"api_id\":\"a\",\"config_data\":{\"tyk_gitops\":1,\"tyk_gitops\":2}}",
		"{\"api_id\":\"a\",\"config_data\":[1],\"tyk_gitops\":{}}",
		"{\"id\":\"p\",\"meta_data\":{\"tyk_gitops\":{}},\"tyk_gitops\":1}",
		"{\"openapi\":\"3\",\"x-tyk-gitops\":{\"sync\":\"s\"},\"x-tyk-api-gateway\":"
		"{\"info\":{\"id\":\"o\",\"x-tyk-gitops\":1}}}",
		"{}",
	};
	const enum tg_kind kinds[] = { TG_KIND_API, TG_KIND_OAS_API, TG_KIND_POLICY };

	(void)state;
	for (size_t i = 0; i < TG_ARRAY_SIZE(docs); i++) {
		cJSON *doc = cJSON_Parse(docs[i]);

		assert_non_null(doc);
		for (size_t k = 0; k < TG_ARRAY_SIZE(kinds); k++) {
			char want[65], got[65];

			ref_hash(want, kinds[k], doc);
			tg_diff_hash(got, kinds[k], doc);
			if (strcmp(want, got))
				fail_msg("hash of document %zu as %s differs", i,
					 tg_kind_name(kinds[k]));
		}
		cJSON_Delete(doc);
	}
	/* A raw number (an integer too large for a double, from YAML) and a
	 * wide object (sorted on the heap). */
	{
		cJSON *doc = cJSON_CreateObject();
		char want[65], got[65], key[16];

		cJSON_AddRawToObject(doc, "big", "123456789012345678901234567890");
		for (int i = 100; i > 0; i--) {
			snprintf(key, sizeof(key), "k%03d", i % 37);
			cJSON_AddNumberToObject(doc, key, i);
		}
		ref_hash(want, TG_KIND_API, doc);
		tg_diff_hash(got, TG_KIND_API, doc);
		assert_string_equal(got, want);
		cJSON_Delete(doc);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_diff__hash_text_is_the_sorted_stripped_print),
		cmocka_unit_test(test_diff__ignores_key_order_and_number_format),
		cmocka_unit_test(test_diff__finds_the_one_change_in_wide_objects),
		cmocka_unit_test(test_diff__ignores_gateway_defaults),
		cmocka_unit_test(test_diff__ignores_fields_the_gateway_dropped),
		cmocka_unit_test(test_diff__ignores_oas_servers_the_gateway_adds),
		cmocka_unit_test(test_diff__ignores_marker),
		cmocka_unit_test(test_diff__reports_changed_value_with_path),
		cmocka_unit_test(test_diff__reports_non_default_field_added_by_hand),
		cmocka_unit_test(test_diff__reports_array_element_change),
		cmocka_unit_test(test_diff__redacts_secrets_in_both_values),
		cmocka_unit_test(test_diff__hash_ignores_key_order_and_marker),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
