/* Unit tests for controller/posmap.c: JSON path -> line/column, its cap, and documents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "tg/buf.h"
#include "tg/common.h"
#include "tg/json.h"
#include "tg/posmap.h"
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

static void parse_json(struct parsed *p, const char *text)
{
	memset(p, 0, sizeof(*p));
	tg_problems_init(&p->problems);
	p->rc = tg_json_parse(&p->docs, text, strlen(text), "x.json", &p->problems);
}

static void release(struct parsed *p)
{
	tg_docs_release(&p->docs);
	tg_problems_release(&p->problems);
}

/* Peak resident memory of the process so far, in KiB. */
static long peak_rss_kb(void)
{
	struct rusage ru;

	assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
	return ru.ru_maxrss;
}

/* A 100 KB key above 5,000 members: every member's path repeats it. */
static void put_long_key_doc(struct tg_buf *b, int json)
{
	int i;

	tg_buf_puts(b, json ? "{\"api_id\": \"a\", \"" : "api_id: a\n? ");
	for (i = 0; i < 100000; i++)
		tg_buf_puts(b, "k");
	tg_buf_puts(b, json ? "\": {" : "\n:\n");
	for (i = 0; i < 5000; i++)
		tg_buf_printf(b, json ? "%s\"m%d\": 1" : "%s  m%d: 1\n", json && i ? ", " : "", i);
	tg_buf_puts(b, json ? ", \"m0\": 2}}" : "  m0: 2\n");
}

static void test_posmap__long_keys_do_not_multiply_positions_or_problems(void **state)
{
	struct tg_buf b = TG_BUF_INIT;
	struct parsed p;
	long before = peak_rss_kb();
	int line = 0, col = 0, json;

	(void)state;
	for (json = 0; json < 2; json++) {
		tg_buf_release(&b);
		put_long_key_doc(&b, json);
		if (json)
			parse_json(&p, tg_buf_cstr(&b));
		else
			parse_yaml(&p, tg_buf_cstr(&b));
		/* The duplicate m0 is reported with a clipped field. */
		assert_int_equal(p.rc, TG_EINVALID);
		assert_int_equal(p.problems.len, 1);
		assert_int_equal(strlen(p.problems.items[0].field), 256 + 3);
		assert_string_equal(p.problems.items[0].field + 256, "...");
		assert_true(strlen(p.problems.items[0].msg) < 600);
		release(&p);
		/* Without the duplicate, it loads; early positions are kept. */
		b.len -= strlen(json ? ", \"m0\": 2}}" : "  m0: 2\n");
		tg_buf_puts(&b, json ? "}}" : "");
		if (json)
			parse_json(&p, tg_buf_cstr(&b));
		else
			parse_yaml(&p, tg_buf_cstr(&b));
		assert_int_equal(p.rc, 0);
		assert_int_equal(tg_pos_lookup(p.docs.items[0].pos, "api_id", &line, &col), 0);
		release(&p);
	}
	/* 5,000 copies of the key would be 500 MB. */
	assert_true(peak_rss_kb() - before < 64 * 1024);
	tg_buf_release(&b);
}

static void test_posmap__first_position_of_a_path_wins(void **state)
{
	size_t left = tg_pos_budget(0);
	struct tg_pos_map *m = tg_pos_map_new(&left);
	int line = 0, col = 0;

	(void)state;
	tg_pos_put(m, "info.id", 7, 3, 5);
	tg_pos_put(m, "info.id", 7, 9, 9);
	/* Only len bytes of the path count. */
	tg_pos_put(m, "info.name-and-more", 9, 4, 5);
	assert_int_equal(tg_pos_lookup(m, "info.id", &line, &col), 0);
	assert_int_equal(line, 3);
	assert_int_equal(col, 5);
	assert_int_equal(tg_pos_lookup(m, "info.name", &line, &col), 0);
	assert_int_equal(line, 4);
	assert_int_equal(tg_pos_lookup(m, "info", &line, &col), TG_ENOTFOUND);
	assert_int_equal(tg_pos_lookup(m, "info.name-and-more", &line, &col), TG_ENOTFOUND);
	tg_pos_map_free(m);
}

static void test_posmap__lookups_without_a_map_or_path_find_nothing(void **state)
{
	size_t left = tg_pos_budget(0);
	struct tg_pos_map *m = tg_pos_map_new(&left);
	int line = 7, col = 7;

	(void)state;
	assert_int_equal(tg_pos_lookup(NULL, "a", &line, &col), TG_ENOTFOUND);
	assert_int_equal(tg_pos_lookup(m, "", &line, &col), TG_ENOTFOUND); /* empty map */
	tg_pos_put(m, "", 0, 1, 1);
	assert_int_equal(tg_pos_lookup(m, NULL, &line, &col), TG_ENOTFOUND);
	assert_int_equal(line, 7);
	assert_int_equal(tg_pos_lookup(m, "", &line, &col), 0);
	assert_int_equal(line, 1);
	tg_pos_put(NULL, "a", 1, 1, 1); /* nothing to record into */
	tg_pos_map_free(m);
	tg_pos_map_free(NULL);
}

static void test_posmap__table_grows_and_keeps_every_path(void **state)
{
	size_t left = tg_pos_budget(0);
	struct tg_pos_map *m = tg_pos_map_new(&left);
	struct tg_buf path = TG_BUF_INIT;
	int i, line, col;

	(void)state;
	for (i = 0; i < 5000; i++) {
		tg_buf_clear(&path);
		tg_buf_printf(&path, "paths./p%d.get", i);
		tg_pos_put(m, path.ptr, path.len, i + 1, 3);
	}
	for (i = 0; i < 5000; i++) {
		tg_buf_clear(&path);
		tg_buf_printf(&path, "paths./p%d.get", i);
		assert_int_equal(tg_pos_lookup(m, path.ptr, &line, &col), 0);
		assert_int_equal(line, i + 1);
	}
	tg_buf_release(&path);
	tg_pos_map_free(m);
}

static void test_posmap__budget_is_a_factor_of_the_input_with_a_floor(void **state)
{
	(void)state;
	assert_int_equal(tg_pos_budget(0), TG_POS_FLOOR);
	assert_int_equal(tg_pos_budget(1000), TG_POS_FLOOR);
	assert_int_equal(tg_pos_budget((size_t)1 << 20), (size_t)TG_POS_FACTOR << 20);
	assert_true(tg_pos_budget(SIZE_MAX / 2) == SIZE_MAX);
}

static void test_posmap__positions_past_the_budget_are_not_recorded(void **state)
{
	size_t left = 200;
	struct tg_pos_map *a = tg_pos_map_new(&left), *b = tg_pos_map_new(&left);
	char path[16];
	int i, line, col;

	(void)state;
	/* The maps of a file share its budget; each position costs at least
	 * twice its path. */
	tg_pos_put(a, "a", 1, 1, 1);
	assert_true(left < 200);
	for (i = 0; i < 100; i++) {
		snprintf(path, sizeof(path), "p%d", i);
		tg_pos_put(b, path, strlen(path), i + 1, 1);
	}
	assert_int_equal(tg_pos_lookup(a, "a", &line, &col), 0);
	assert_int_equal(tg_pos_lookup(b, "p0", &line, &col), 0);
	assert_int_equal(tg_pos_lookup(b, "p99", &line, &col), TG_ENOTFOUND);
	assert_true(left < 200 / 4);
	tg_pos_map_free(a);
	tg_pos_map_free(b);
}

static void test_posmap__paths_join_keys_and_indexes_with_dots(void **state)
{
	struct tg_buf path = TG_BUF_INIT;
	size_t saved;

	(void)state;
	tg_buf_put(&path, "", 0);
	tg_pos_path_push(&path, "info", 4);
	saved = path.len;
	tg_pos_path_push(&path, "tags", 4);
	tg_pos_path_push_index(&path, 12);
	tg_pos_path_push(&path, "a.b", 3); /* unescaped */
	assert_string_equal(path.ptr, "info.tags.12.a.b");
	tg_pos_path_truncate(&path, saved);
	assert_string_equal(path.ptr, "info");
	tg_pos_path_truncate(&path, 0);
	tg_pos_path_push_index(&path, 0);
	assert_string_equal(path.ptr, "0");
	tg_buf_release(&path);
}

static void test_posmap__long_fields_are_clipped_at_a_utf8_boundary(void **state)
{
	char buf[TG_POS_FIELD_MAX + 4], field[TG_POS_FIELD_MAX + 10];
	const char *c;

	(void)state;
	assert_null(tg_pos_field_clip(NULL, buf));
	assert_string_equal(tg_pos_field_clip("a.b", buf), "a.b");
	/* 255 ASCII bytes, then a two-byte character across the cut. */
	memset(field, 'k', TG_POS_FIELD_MAX - 1);
	memcpy(field + TG_POS_FIELD_MAX - 1, "\xc3\xa9xyz", 6);
	c = tg_pos_field_clip(field, buf);
	assert_ptr_equal(c, buf);
	assert_int_equal(strlen(c), TG_POS_FIELD_MAX - 1 + 3);
	assert_string_equal(c + TG_POS_FIELD_MAX - 1, "...");
	/* Exactly at the limit: kept whole. */
	field[TG_POS_FIELD_MAX] = '\0';
	field[TG_POS_FIELD_MAX - 1] = 'k';
	assert_ptr_equal(tg_pos_field_clip(field, buf), field);
}

static void test_posmap__docs_own_their_values_and_maps(void **state)
{
	struct tg_docs docs = { NULL, 0, 0 };
	size_t left = tg_pos_budget(0);
	int i, line, col;

	(void)state;
	for (i = 0; i < 9; i++) {
		struct tg_pos_map *m = tg_pos_map_new(&left);

		tg_pos_put(m, "", 0, i + 1, 1);
		tg_docs_push(&docs, cJSON_CreateNumber(i), i + 1, 1, m);
	}
	assert_int_equal(docs.len, 9);
	assert_int_equal(docs.items[8].line, 9);
	assert_int_equal(tg_pos_lookup(docs.items[8].pos, "", &line, &col), 0);
	assert_int_equal(line, 9);
	tg_docs_release(&docs);
	assert_null(docs.items);
	assert_int_equal(docs.len, 0);
	tg_docs_release(&docs);
	tg_docs_release(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_posmap__long_keys_do_not_multiply_positions_or_problems),
		cmocka_unit_test(test_posmap__first_position_of_a_path_wins),
		cmocka_unit_test(test_posmap__lookups_without_a_map_or_path_find_nothing),
		cmocka_unit_test(test_posmap__table_grows_and_keeps_every_path),
		cmocka_unit_test(test_posmap__budget_is_a_factor_of_the_input_with_a_floor),
		cmocka_unit_test(test_posmap__positions_past_the_budget_are_not_recorded),
		cmocka_unit_test(test_posmap__paths_join_keys_and_indexes_with_dots),
		cmocka_unit_test(test_posmap__long_fields_are_clipped_at_a_utf8_boundary),
		cmocka_unit_test(test_posmap__docs_own_their_values_and_maps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
