/* Unit tests for controller/yaml.c: YAML to cJSON, scalar rules, aliases and their budget. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "tg/buf.h"
#include "tg/common.h"
#include "tg/yaml.h"

struct parsed {
	struct tg_docs docs;
	struct tg_problems problems;
	int rc;
};

static void parse_yaml(struct parsed *p, const char *text)
{
	memset(p, 0, sizeof(*p));
	tg_problems_init(&p->problems);
	p->rc = tg_yaml_parse(&p->docs, text, strlen(text), "x.yaml", &p->problems);
}

static void release(struct parsed *p)
{
	tg_docs_release(&p->docs);
	tg_problems_release(&p->problems);
}

/* The first document printed compactly; caller frees. */
static char *print0(struct parsed *p)
{
	assert_true(p->docs.len >= 1);
	return cJSON_PrintUnformatted(p->docs.items[0].json);
}

static void assert_yaml_json(const char *yaml, const char *json)
{
	struct parsed p;
	char *s;

	parse_yaml(&p, yaml);
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.problems.len, 0);
	s = print0(&p);
	assert_string_equal(s, json);
	free(s);
	release(&p);
}

static void test_yaml__quoted_on_stays_string(void **state)
{
	(void)state;
	assert_yaml_json("a: \"on\"\nb: 'on'\nc: on\n", "{\"a\":\"on\",\"b\":\"on\",\"c\":\"on\"}");
}

static void test_yaml__plain_yes_no_stay_strings(void **state)
{
	(void)state;
	assert_yaml_json("a: yes\nb: no\nc: off\nd: Y\n",
			 "{\"a\":\"yes\",\"b\":\"no\",\"c\":\"off\",\"d\":\"Y\"}");
}

static void test_yaml__quoted_numbers_stay_strings(void **state)
{
	(void)state;
	assert_yaml_json(
		"mode: \"0755\"\nexp: '1e3'\nn: \"42\"\nt: \"true\"\nz: \"null\"\n",
		"{\"mode\":\"0755\",\"exp\":\"1e3\",\"n\":\"42\",\"t\":\"true\",\"z\":\"null\"}");
}

static void test_yaml__plain_scalars_follow_core_schema(void **state)
{
	(void)state;
	assert_yaml_json(
		"i: 42\nneg: -7\nf: 1.5\ne: 1e3\nt: true\nF: False\nn: null\nt2: ~\nempty:\n"
		"hex: 0x1F\noct: 0o17\nlead: 007\n",
		"{\"i\":42,\"neg\":-7,\"f\":1.5,\"e\":1000,\"t\":true,\"F\":false,\"n\":null,"
		"\"t2\":null,\"empty\":null,\"hex\":31,\"oct\":15,\"lead\":7}");
}

static void test_yaml__inf_and_nan_stay_strings(void **state)
{
	(void)state;
	assert_yaml_json("a: .inf\nb: .nan\n", "{\"a\":\".inf\",\"b\":\".nan\"}");
}

static void test_yaml__big_integers_are_not_rounded(void **state)
{
	(void)state;
	assert_yaml_json(
		"a: 12345678901234567890123\nb: -9007199254740993\nc: 9007199254740992\n",
		"{\"a\":12345678901234567890123,\"b\":-9007199254740993,\"c\":9007199254740992}");
}

static void test_yaml__explicit_tags_are_honoured(void **state)
{
	(void)state;
	assert_yaml_json("a: !!str 123\nb: !!int \"5\"\nc: !!bool \"true\"\n",
			 "{\"a\":\"123\",\"b\":5,\"c\":true}");
}

static void test_yaml__unknown_tag_is_an_error(void **state)
{
	struct parsed p;

	(void)state;
	parse_yaml(&p, "a: !Ref foo\n");
	assert_int_equal(p.rc, TG_EINVALID);
	assert_int_equal(p.problems.len, 1);
	assert_string_equal(p.problems.items[0].msg, "unsupported tag '!Ref'");
	assert_string_equal(p.problems.items[0].field, "a");
	release(&p);
}

static void test_yaml__anchors_and_aliases_are_copied(void **state)
{
	(void)state;
	assert_yaml_json(
		"base: &b {x: 1, y: [a, b]}\ncopy: *b\nname: &n hello\nagain: *n\n",
		"{\"base\":{\"x\":1,\"y\":[\"a\",\"b\"]},\"copy\":{\"x\":1,\"y\":[\"a\",\"b\"]},"
		"\"name\":\"hello\",\"again\":\"hello\"}");
}

static void test_yaml__merge_keys_let_explicit_keys_win(void **state)
{
	(void)state;
	assert_yaml_json("defaults: &d {a: 1, b: 2}\nother: &o {b: 3, c: 4}\n"
			 "x:\n  a: 9\n  <<: [*d, *o]\n",
			 "{\"defaults\":{\"a\":1,\"b\":2},\"other\":{\"b\":3,\"c\":4},"
			 "\"x\":{\"a\":9,\"b\":2,\"c\":4}}");
}

static void test_yaml__anchor_on_inline_merge_source_survives(void **state)
{
	(void)state;
	assert_yaml_json("x:\n  <<: &m {a: 1}\n  b: 2\ny: *m\n",
			 "{\"x\":{\"b\":2,\"a\":1},\"y\":{\"a\":1}}");
}

static void test_yaml__undefined_alias_is_an_error(void **state)
{
	struct parsed p;

	(void)state;
	parse_yaml(&p, "a: 1\nb: *nope\n");
	assert_int_equal(p.rc, TG_EINVALID);
	assert_int_equal(p.docs.len, 0);
	assert_true(p.problems.len >= 1);
	assert_string_equal(p.problems.items[0].msg, "undefined alias 'nope'");
	assert_int_equal(p.problems.items[0].line, 2);
	assert_int_equal(p.problems.items[0].column, 4);
	release(&p);
}

static void test_yaml__billion_laughs_is_stopped(void **state)
{
	struct tg_buf b = TG_BUF_INIT;
	struct parsed p;
	int i, j;

	(void)state;
	tg_buf_puts(&b, "a0: &a0 [\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"]\n");
	for (i = 1; i < 30; i++) {
		tg_buf_printf(&b, "a%d: &a%d [", i, i);
		for (j = 0; j < 10; j++)
			tg_buf_printf(&b, "%s*a%d", j ? "," : "", i - 1);
		tg_buf_puts(&b, "]\n");
	}
	parse_yaml(&p, tg_buf_cstr(&b));
	assert_int_equal(p.rc, TG_EINVALID);
	assert_int_equal(p.docs.len, 0);
	assert_non_null(strstr(p.problems.items[0].msg, "expands to more than"));
	release(&p);
	tg_buf_release(&b);
}

/* Peak resident memory of the process so far, in KiB. */
static long peak_rss_kb(void)
{
	struct rusage ru;

	assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
	return ru.ru_maxrss;
}

/* A document whose 100 aliases copy 100 numbers each: 808,000 bytes. */
static void put_copying_doc(struct tg_buf *b)
{
	int i;

	tg_buf_puts(b, "---\na: &a [1");
	for (i = 1; i < 100; i++)
		tg_buf_puts(b, ",1");
	tg_buf_puts(b, "]\nb:\n");
	for (i = 0; i < 100; i++)
		tg_buf_puts(b, "- *a\n");
}

static void test_yaml__alias_budget_covers_every_document_of_a_file(void **state)
{
	struct tg_buf b = TG_BUF_INIT;
	struct parsed p;
	int i;

	(void)state;
	for (i = 0; i < 4; i++)
		put_copying_doc(&b);
	parse_yaml(&p, tg_buf_cstr(&b));
	assert_int_equal(p.rc, TG_EINVALID);
	/* Two documents fit in the file's 2 MiB; the third crosses it at its
	 * 60th alias, and the fourth finds nothing left. */
	assert_int_equal(p.docs.len, 2);
	assert_int_equal(p.problems.len, 2);
	assert_int_equal(p.problems.items[0].line, 1 + 2 * 103 + 3 + 59);
	assert_int_equal(p.problems.items[0].column, 3);
	assert_string_equal(p.problems.items[0].field, "b.59");
	assert_non_null(
		strstr(p.problems.items[0].msg,
		       "document expands to more than 2097152 bytes through aliases (the limit "
		       "for the whole file: 64 times its "));
	assert_int_equal(p.problems.items[1].line, 1 + 3 * 103 + 3);
	assert_string_equal(p.problems.items[1].field, "b.0");
	release(&p);
	tg_buf_release(&b);
}

static void test_yaml__alias_budget_is_shared_by_the_files_of_a_pass(void **state)
{
	struct tg_yaml_budget budget = TG_YAML_BUDGET_INIT;
	struct tg_buf b = TG_BUF_INIT;
	struct parsed p;

	(void)state;
	put_copying_doc(&b);
	/* Alone, the file is fine. */
	parse_yaml(&p, tg_buf_cstr(&b));
	assert_int_equal(p.rc, 0);
	release(&p);
	/* After other files used all but 50 copies' worth, it is not. */
	budget.expanded = TG_YAML_PASS_EXPANSION_FLOOR - 50 * 8080;
	memset(&p, 0, sizeof(p));
	tg_problems_init(&p.problems);
	p.rc = tg_yaml_parse_budgeted(&p.docs, &budget, b.ptr, b.len, "x.yaml", &p.problems);
	assert_int_equal(p.rc, TG_EINVALID);
	assert_int_equal(p.docs.len, 0);
	assert_int_equal(p.problems.len, 1);
	assert_string_equal(p.problems.items[0].field, "b.50");
	assert_non_null(strstr(p.problems.items[0].msg, "the limit shared by all files of a pass"));
	assert_int_equal(budget.input, b.len);
	release(&p);
	tg_buf_release(&b);
}

static void test_yaml__sixteen_bombs_in_a_small_file_stay_small(void **state)
{
	struct tg_buf b = TG_BUF_INIT;
	struct parsed p;
	long before = peak_rss_kb();
	int d, i, j;

	(void)state;
	/* Each document stays under the old 64 MiB per-document cap. */
	for (d = 0; d < 16; d++) {
		tg_buf_printf(
			&b,
			"---\napi_id: b%d\na0: &a0 {k0: '',k1: '',k2: '',k3: '',k4: '',k5: '',"
			"k6: ''}\n",
			d);
		for (i = 1; i < 9; i++) {
			tg_buf_printf(&b, "a%d: &a%d [", i, i);
			for (j = 0; j < 4; j++)
				tg_buf_printf(&b, "%s*a%d", j ? "," : "", i - 1);
			tg_buf_puts(&b, "]\n");
		}
	}
	assert_true(b.len < 6000);
	parse_yaml(&p, tg_buf_cstr(&b));
	assert_int_equal(p.rc, TG_EINVALID);
	assert_int_equal(p.docs.len, 0);
	assert_int_equal(p.problems.len, 16);
	for (i = 0; i < 16; i++)
		assert_non_null(strstr(p.problems.items[i].msg, "through aliases"));
	/* 2 MiB of copies at most; sanitizers and valgrind add their own. */
	assert_true(peak_rss_kb() - before < 64 * 1024);
	release(&p);
	tg_buf_release(&b);
}

static void test_yaml__nested_anchors_are_not_copied(void **state)
{
	struct tg_buf b = TG_BUF_INIT;
	struct parsed p;
	long before = peak_rss_kb();
	int i;

	(void)state;
	/* No alias at all: a copy per anchor would build 200 times the leaf. */
	tg_buf_puts(&b, "api_id: a\n");
	for (i = 0; i < 200; i++)
		tg_buf_printf(&b, "%*sk%d: &n%d\n", 2 * i, "", i, i);
	tg_buf_printf(&b, "%*sleaf: [1", 400, "");
	for (i = 1; i < 20000; i++)
		tg_buf_puts(&b, ",1");
	tg_buf_puts(&b, "]\n");
	parse_yaml(&p, tg_buf_cstr(&b));
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.problems.len, 0);
	assert_true(peak_rss_kb() - before < 64 * 1024);
	release(&p);
	tg_buf_release(&b);
}

static void test_yaml__merges_copy_only_what_they_take_and_leave_anchors_intact(void **state)
{
	(void)state;
	assert_yaml_json("x: {<<: &l [{a: 1}, {b: 2}], c: 3}\ny: *l\n",
			 "{\"x\":{\"c\":3,\"a\":1,\"b\":2},\"y\":[{\"a\":1},{\"b\":2}]}");
	assert_yaml_json("m: &m {a: 1, b: {c: 2}}\nx: {<<: *m, a: 9}\ny: *m\n",
			 "{\"m\":{\"a\":1,\"b\":{\"c\":2}},\"x\":{\"a\":9,\"b\":{\"c\":2}},"
			 "\"y\":{\"a\":1,\"b\":{\"c\":2}}}");
	assert_yaml_json("&k key: 1\nother: *k\nlist: [&v 5, *v]\n",
			 "{\"key\":1,\"other\":\"key\",\"list\":[5,5]}");
	/* An anchored value thrown away with its duplicate key still resolves. */
	{
		struct parsed p;
		char *s;

		parse_yaml(&p, "a: 1\na: &d {z: 1}\nb: *d\n---\nc: 2\n");
		assert_int_equal(p.rc, TG_EINVALID);
		assert_int_equal(p.problems.len, 1);
		assert_string_equal(p.problems.items[0].msg, "duplicate key 'a'");
		assert_int_equal(p.docs.len, 1);
		s = print0(&p);
		assert_string_equal(s, "{\"c\":2}");
		free(s);
		release(&p);
	}
}

static void test_yaml__deep_nesting_is_rejected(void **state)
{
	struct tg_buf b = TG_BUF_INIT;
	struct parsed p;
	int i;

	(void)state;
	for (i = 0; i < 10000; i++)
		tg_buf_puts(&b, "[");
	parse_yaml(&p, tg_buf_cstr(&b));
	assert_int_equal(p.rc, TG_EINVALID);
	release(&p);
	tg_buf_release(&b);
}

static void test_yaml__multiple_documents_each_parsed(void **state)
{
	struct parsed p;

	(void)state;
	parse_yaml(&p, "a: 1\n---\nb: 2\n---\n");
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.docs.len, 3);
	assert_int_equal(cJSON_GetObjectItem(p.docs.items[1].json, "b")->valueint, 2);
	assert_int_equal(p.docs.items[1].line, 3);
	assert_true(cJSON_IsNull(p.docs.items[2].json));
	release(&p);
}

static void test_yaml__positions_point_at_keys(void **state)
{
	struct parsed p;
	int line = 0, col = 0;

	(void)state;
	parse_yaml(&p, "info:\n  id: abc\n  tags:\n    - one\n    - two\n");
	assert_int_equal(p.rc, 0);
	assert_int_equal(tg_pos_lookup(p.docs.items[0].pos, "info.id", &line, &col), 0);
	assert_int_equal(line, 2);
	assert_int_equal(col, 3);
	assert_int_equal(tg_pos_lookup(p.docs.items[0].pos, "info.tags.1", &line, &col), 0);
	assert_int_equal(line, 5);
	assert_int_equal(col, 7);
	assert_int_equal(tg_pos_lookup(p.docs.items[0].pos, "info.nope", &line, &col),
			 TG_ENOTFOUND);
	release(&p);
}

static void test_yaml__syntax_error_has_line_and_column(void **state)
{
	struct parsed p;

	(void)state;
	parse_yaml(&p, "a: 1\nb: [1, 2\nc: 3\n");
	assert_int_equal(p.rc, TG_EINVALID);
	assert_int_equal(p.problems.len, 1);
	assert_int_equal(p.problems.items[0].line, 3);
	assert_non_null(strstr(p.problems.items[0].msg, "invalid yaml: "));
	release(&p);
}

static void test_yaml__duplicate_key_in_a_wide_mapping_is_an_error(void **state)
{
	struct tg_buf text = TG_BUF_INIT;
	struct parsed p;

	(void)state;
	for (int i = 0; i < 500; i++)
		tg_buf_printf(&text, "k%d: %d\n", i, i);
	tg_buf_puts(&text, "k7: 0\n");
	parse_yaml(&p, tg_buf_cstr(&text));
	assert_int_equal(p.rc, TG_EINVALID);
	assert_int_equal(p.problems.len, 1);
	assert_string_equal(p.problems.items[0].msg, "duplicate key 'k7'");
	assert_int_equal(p.problems.items[0].line, 501);
	release(&p);
	tg_buf_release(&text);
}

static void test_yaml__duplicate_yaml_key_is_an_error(void **state)
{
	struct parsed p;

	(void)state;
	parse_yaml(&p, "a: 1\nb:\n  c: 1\n  c: 2\n");
	assert_int_equal(p.rc, TG_EINVALID);
	assert_int_equal(p.problems.len, 1);
	assert_string_equal(p.problems.items[0].msg, "duplicate key 'c'");
	assert_string_equal(p.problems.items[0].field, "b.c");
	assert_int_equal(p.problems.items[0].line, 4);
	assert_int_equal(p.problems.items[0].column, 3);
	release(&p);
}

static void test_yaml__complex_key_is_an_error(void **state)
{
	struct parsed p;

	(void)state;
	parse_yaml(&p, "? [a, b]\n: 1\nc: 2\n");
	assert_int_equal(p.rc, TG_EINVALID);
	assert_string_equal(p.problems.items[0].msg, "mapping keys must be scalars");
	release(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yaml__quoted_on_stays_string),
		cmocka_unit_test(test_yaml__plain_yes_no_stay_strings),
		cmocka_unit_test(test_yaml__quoted_numbers_stay_strings),
		cmocka_unit_test(test_yaml__plain_scalars_follow_core_schema),
		cmocka_unit_test(test_yaml__inf_and_nan_stay_strings),
		cmocka_unit_test(test_yaml__big_integers_are_not_rounded),
		cmocka_unit_test(test_yaml__explicit_tags_are_honoured),
		cmocka_unit_test(test_yaml__unknown_tag_is_an_error),
		cmocka_unit_test(test_yaml__anchors_and_aliases_are_copied),
		cmocka_unit_test(test_yaml__merge_keys_let_explicit_keys_win),
		cmocka_unit_test(test_yaml__anchor_on_inline_merge_source_survives),
		cmocka_unit_test(test_yaml__undefined_alias_is_an_error),
		cmocka_unit_test(test_yaml__billion_laughs_is_stopped),
		cmocka_unit_test(test_yaml__alias_budget_covers_every_document_of_a_file),
		cmocka_unit_test(test_yaml__alias_budget_is_shared_by_the_files_of_a_pass),
		cmocka_unit_test(test_yaml__sixteen_bombs_in_a_small_file_stay_small),
		cmocka_unit_test(test_yaml__nested_anchors_are_not_copied),
		cmocka_unit_test(
			test_yaml__merges_copy_only_what_they_take_and_leave_anchors_intact),
		cmocka_unit_test(test_yaml__deep_nesting_is_rejected),
		cmocka_unit_test(test_yaml__multiple_documents_each_parsed),
		cmocka_unit_test(test_yaml__positions_point_at_keys),
		cmocka_unit_test(test_yaml__syntax_error_has_line_and_column),
		cmocka_unit_test(test_yaml__duplicate_yaml_key_is_an_error),
		cmocka_unit_test(test_yaml__duplicate_key_in_a_wide_mapping_is_an_error),
		cmocka_unit_test(test_yaml__complex_key_is_an_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
