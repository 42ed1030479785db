/* Verified list elements: which bytes may skip the parse and the diff, and
 * which must not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tg/common.h"
#include "tg/diff.h"
#include "tg/marker.h"
#include "tg/plan.h"
#include "tg/safety.h"
#include "tg/tykobj.h"
#include "tg/verified.h"

#define API_A "{\"api_id\":\"a\",\"name\":\"A\",\"proxy\":{\"target_url\":\"http://up/\"}}"
#define POL_P "{\"id\":\"p\",\"rate\":10,\"access_rights\":{\"a\":{\"api_id\":\"a\"}}}"

struct fixture {
	struct tg_desired *d;
	char (*hashes)[65];
	struct tg_verified *v;
	char *path;
};

static void add_desired(struct tg_desired *d, enum tg_kind kind, const char *id, const char *json)
{
	struct tg_object *o;

	d->objects = tg_xreallocarray(d->objects, d->len + 1, sizeof(*d->objects));
	o = &d->objects[d->len++];
	memset(o, 0, sizeof(*o));
	o->kind = kind;
	o->id = tg_xstrdup(id);
	o->name = tg_xstrdup(id);
	o->file = tg_xasprintf("%s.json", id);
	o->body = cJSON_Parse(json);
	assert_non_null(o->body);
}

static void rehash(struct fixture *f)
{
	free(f->hashes);
	f->hashes = tg_xcalloc(f->d->len + 1, sizeof(*f->hashes));
	for (size_t i = 0; i < f->d->len; i++)
		tg_diff_hash(f->hashes[i], f->d->objects[i].kind, f->d->objects[i].body);
}

/* The gateway's copy of json as sync owner stamped it (marker hash of
 * hash_of, or of json itself). */
static cJSON *stamped(enum tg_kind kind, const char *json, const char *owner, const char *hash_of)
{
	cJSON *obj = cJSON_Parse(json), *h = cJSON_Parse(hash_of ? hash_of : json);
	struct tg_marker m = { 0 };
	char hash[65];

	tg_diff_hash(hash, kind, h);
	cJSON_Delete(h);
	m.sync = (char *)owner;
	m.commit = (char *)"c0ffee";
	m.file = (char *)"x.json";
	m.hash = hash;
	tg_marker_stamp(obj, kind, &m);
	return obj;
}

/* A list reply: the elements printed, as the gateway sends them. */
static char *reply(cJSON *a, cJSON *b, cJSON *c)
{
	cJSON *list = cJSON_CreateArray();
	char *text;

	if (a)
		cJSON_AddItemToArray(list, a);
	if (b)
		cJSON_AddItemToArray(list, b);
	if (c)
		cJSON_AddItemToArray(list, c);
	text = cJSON_Print(list);
	cJSON_Delete(list);
	return text;
}

struct pass_result {
	struct tg_plan plan;
	cJSON *actual[TG_KIND_COUNT];
	size_t skeletons, parsed;
};

/* The rest of a pass once its lists are read: plan, record, counts. */
static void plan_and_record(struct fixture *f, struct tg_verified_pass *p, struct pass_result *r,
			    const char *const *secrets, size_t n_secrets)
{
	struct tg_plan_opts opts = { 0 };

	opts.sync_name = "prod";
	opts.prune = 1;
	opts.desired_hashes = (const char(*)[65])f->hashes;
	opts.in_sync = tg_verified_in_sync;
	opts.in_sync_ctx = p;
	tg_plan_build(&r->plan, f->d, r->actual, &opts);
	tg_verified_record(p, &r->plan, secrets, n_secrets);
	tg_verified_pass_counts(p, &r->skeletons, &r->parsed);
	tg_verified_pass_free(p);
}

/* One pass as tg_syncer_run makes it: lists through the cache, plan,
 * record. */
static void run_pass(struct fixture *f, struct pass_result *r, const char *const replies[3],
		     const char *const *secrets, size_t n_secrets)
{
	struct tg_verified_pass *p;

	memset(r, 0, sizeof(*r));
	rehash(f);
	p = tg_verified_pass_new(f->v, f->d, (const char(*)[65])f->hashes);
	for (int k = 0; k < TG_KIND_COUNT; k++)
		assert_int_equal(tg_verified_list(p, (enum tg_kind)k, replies[k],
						  strlen(replies[k]), &r->actual[k]),
				 0);
	plan_and_record(f, p, r, secrets, n_secrets);
}

static void pass_release(struct pass_result *r)
{
	tg_plan_release(&r->plan);
	for (int k = 0; k < TG_KIND_COUNT; k++)
		cJSON_Delete(r->actual[k]);
}

static const struct tg_plan_item *find(const struct tg_plan *p, const char *id)
{
	for (size_t i = 0; i < p->len; i++)
		if (!strcmp(p->items[i].id, id))
			return &p->items[i];
	fail_msg("no plan item '%s'", id);
	return NULL;
}

static int setup(void **state)
{
	struct fixture *f = tg_xcalloc(1, sizeof(*f));
	char tmpl[] = "/tmp/tg-verified-XXXXXX";

	assert_non_null(mkdtemp(tmpl));
	f->path = tg_xasprintf("%s/verified", tmpl);
	f->d = tg_xcalloc(1, sizeof(*f->d));
	f->v = tg_verified_new("prod", f->path);
	add_desired(f->d, TG_KIND_API, "a", API_A);
	add_desired(f->d, TG_KIND_POLICY, "p", POL_P);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char *tmp = tg_xasprintf("%s.tmp", f->path), *dir = tg_xstrdup(f->path);

	unlink(f->path);
	unlink(tmp);
	*strrchr(dir, '/') = '\0';
	rmdir(dir);
	free(dir);
	free(tmp);
	tg_verified_free(f->v);
	tg_desired_free(f->d);
	free(f->hashes);
	free(f->path);
	free(f);
	return 0;
}

/* The gateway's lists: a in sync, another sync's API, an OAS API in the
 * classic list, p in sync. */
struct lists {
	char *r[3];
};

static void make_lists(struct lists *l, const char *a_json)
{
	cJSON *oas_in_classic = cJSON_Parse("{\"api_id\":\"o\",\"is_oas\":true}");

	l->r[TG_KIND_API] = reply(stamped(TG_KIND_API, a_json, "prod", API_A),
				  stamped(TG_KIND_API, "{\"api_id\":\"other\"}", "staging", NULL),
				  oas_in_classic);
	l->r[TG_KIND_OAS_API] = tg_xstrdup("null");
	l->r[TG_KIND_POLICY] = reply(stamped(TG_KIND_POLICY, POL_P, "prod", NULL), NULL, NULL);
}

static void lists_release(struct lists *l)
{
	for (int k = 0; k < 3; k++)
		free(l->r[k]);
}

static void test_verified__second_pass_parses_nothing_and_plans_the_same(void **state)
{
	struct fixture *f = *state;
	struct pass_result one, two;
	struct tg_idset refs1 = { 0 }, refs2 = { 0 };
	struct lists l;
	int written[4] = { 0 };

	make_lists(&l, API_A);
	run_pass(f, &one, (const char *const *)l.r, NULL, 0);
	assert_int_equal(one.skeletons, 0);
	assert_int_equal(one.parsed, 4);
	assert_int_equal(find(&one.plan, "a")->action, TG_ACTION_NONE);
	assert_int_equal(find(&one.plan, "p")->action, TG_ACTION_NONE);
	/* a and p in sync, "other" foreign, the OAS copy dropped. */
	assert_int_equal(tg_verified_count(f->v), 4);

	run_pass(f, &two, (const char *const *)l.r, NULL, 0);
	assert_int_equal(two.skeletons, 4);
	assert_int_equal(two.parsed, 0);
	assert_int_equal(two.plan.len, one.plan.len);
	for (size_t i = 0; i < one.plan.len; i++) {
		assert_string_equal(two.plan.items[i].id, one.plan.items[i].id);
		assert_int_equal(two.plan.items[i].action, one.plan.items[i].action);
		assert_string_equal(two.plan.items[i].desired_hash, one.plan.items[i].desired_hash);
	}
	assert_int_equal(two.plan.owned, one.plan.owned);
	assert_int_equal(cJSON_GetArraySize(two.actual[TG_KIND_API]), 2);
	/* What the safety rules and status rows read is all there. */
	assert_string_equal(tg_marker_get(TG_KIND_API, find(&two.plan, "a")->actual, "commit"),
			    "c0ffee");
	tg_safety_referenced_apis(&refs1, &one.plan, written, one.actual);
	tg_safety_referenced_apis(&refs2, &two.plan, written, two.actual);
	assert_int_equal(refs2.len, refs1.len);
	assert_true(tg_idset_has(&refs2, "a"));
	tg_idset_release(&refs1);
	tg_idset_release(&refs2);
	pass_release(&one);
	pass_release(&two);
	lists_release(&l);
}

static void test_verified__hand_edit_changes_the_bytes_and_is_found(void **state)
{
	struct fixture *f = *state;
	struct pass_result one, two;
	struct lists l, edited;
	const struct tg_plan_item *it;

	make_lists(&l, API_A);
	run_pass(f, &one, (const char *const *)l.r, NULL, 0);
	make_lists(&edited,
		   "{\"api_id\":\"a\",\"name\":\"A\",\"proxy\":{\"target_url\":\"http://evil/\"}}");
	run_pass(f, &two, (const char *const *)edited.r, NULL, 0);
	assert_int_equal(two.parsed, 1);
	it = find(&two.plan, "a");
	assert_int_equal(it->action, TG_ACTION_UPDATE);
	assert_true(it->drifted);
	assert_string_equal(it->changes.items[0].path, "proxy.target_url");
	pass_release(&one);
	pass_release(&two);
	lists_release(&l);
	lists_release(&edited);
}

static void test_verified__changed_desired_object_is_diffed_again(void **state)
{
	struct fixture *f = *state;
	struct pass_result one, two;
	struct lists l;
	const struct tg_plan_item *it;

	make_lists(&l, API_A);
	run_pass(f, &one, (const char *const *)l.r, NULL, 0);
	cJSON_ReplaceItemInObject(f->d->objects[0].body, "name", cJSON_CreateString("B"));
	run_pass(f, &two, (const char *const *)l.r, NULL, 0);
	it = find(&two.plan, "a");
	assert_int_equal(it->action, TG_ACTION_UPDATE);
	assert_false(it->drifted);
	assert_string_equal(it->changes.items[0].path, "name");
	assert_int_equal(two.parsed, 1);
	pass_release(&one);
	pass_release(&two);
	lists_release(&l);
}

static void test_verified__foreign_object_now_desired_is_a_conflict(void **state)
{
	struct fixture *f = *state;
	struct pass_result one, two;
	struct lists l;

	make_lists(&l, API_A);
	run_pass(f, &one, (const char *const *)l.r, NULL, 0);
	add_desired(f->d, TG_KIND_API, "other", "{\"api_id\":\"other\"}");
	run_pass(f, &two, (const char *const *)l.r, NULL, 0);
	assert_int_equal(find(&two.plan, "other")->action, TG_ACTION_CONFLICT);
	assert_int_equal(two.parsed, 1);
	pass_release(&one);
	pass_release(&two);
	lists_release(&l);
}

static void test_verified__removed_from_git_is_parsed_and_pruned(void **state)
{
	struct fixture *f = *state;
	struct pass_result one, two;
	struct lists l;

	make_lists(&l, API_A);
	run_pass(f, &one, (const char *const *)l.r, NULL, 0);
	/* p leaves the repository. */
	f->d->len = 1;
	run_pass(f, &two, (const char *const *)l.r, NULL, 0);
	f->d->len = 2;
	assert_int_equal(find(&two.plan, "p")->action, TG_ACTION_DELETE);
	pass_release(&one);
	pass_release(&two);
	lists_release(&l);
}

static void test_verified__file_round_trip_and_refusals(void **state)
{
	struct fixture *f = *state;
	struct pass_result one, two;
	struct tg_err err = { 0, "" };
	struct lists l;
	FILE *fp;

	make_lists(&l, API_A);
	run_pass(f, &one, (const char *const *)l.r, NULL, 0);
	assert_int_equal(tg_verified_save(f->v, &err), 0);
	tg_verified_free(f->v);
	f->v = tg_verified_new("prod", f->path);
	tg_verified_load(f->v);
	assert_int_equal(tg_verified_count(f->v), 4);
	run_pass(f, &two, (const char *const *)l.r, NULL, 0);
	assert_int_equal(two.parsed, 0);
	pass_release(&two);

	/* Another sync's file is not used. */
	tg_verified_free(f->v);
	f->v = tg_verified_new("staging", f->path);
	tg_verified_load(f->v);
	assert_int_equal(tg_verified_count(f->v), 0);

	/* Nor a damaged one. */
	fp = fopen(f->path, "a");
	assert_non_null(fp);
	fputs("0 s zz\n", fp);
	fclose(fp);
	tg_verified_free(f->v);
	f->v = tg_verified_new("prod", f->path);
	tg_verified_load(f->v);
	assert_int_equal(tg_verified_count(f->v), 0);
	pass_release(&one);
	lists_release(&l);
}

static void test_verified__keeps_no_filled_in_value(void **state)
{
	struct fixture *f = *state;
	struct pass_result one;
	const char *secrets[] = { "A" }; /* the name of api a came from ${VAR} */
	struct lists l;

	make_lists(&l, API_A);
	run_pass(f, &one, (const char *const *)l.r, secrets, 1);
	/* a (its skeleton holds the name) is not recorded; the others are. */
	assert_int_equal(tg_verified_count(f->v), 3);
	pass_release(&one);
	lists_release(&l);
}

/* A classic list long enough to be scanned while it arrives: the usual
 * three elements, then many foreign APIs. */
static char *long_api_reply(void)
{
	cJSON *list = cJSON_CreateArray();
	char pad[600], json[800];
	char *text;

	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	cJSON_AddItemToArray(list, stamped(TG_KIND_API, API_A, "prod", API_A));
	cJSON_AddItemToArray(list, cJSON_Parse("{\"api_id\":\"o\",\"is_oas\":true}"));
	for (int i = 0; i < 300; i++) {
		snprintf(json, sizeof(json), "{\"api_id\":\"f%d\",\"pad\":\"%s\"}", i, pad);
		cJSON_AddItemToArray(list, stamped(TG_KIND_API, json, "staging", NULL));
	}
	text = cJSON_PrintUnformatted(list);
	cJSON_Delete(list);
	assert_true(strlen(text) > 3 * 64 * 1024);
	return text;
}

/* What a feed has not let go of reply[0..len): the next call's data
 * starts at *off, as the gateway client's does. */
static void feed_to(struct tg_verified_feed *f, const char *reply, size_t *off, size_t len)
{
	*off += tg_verified_feed_progress(f, reply + *off, len - *off);
}

/* One pass's lists fed as the gateway client feeds them: the three side by
 * side, the classic one cut off and started over (a retry) after some of
 * its elements were handled, each feed letting go of what it handled. */
static void run_fed_pass(struct fixture *f, struct pass_result *r, const char *const replies[3])
{
	struct tg_verified_feed *feeds[TG_KIND_COUNT];
	struct tg_verified_pass *p;
	size_t api_len = strlen(replies[TG_KIND_API]), off[TG_KIND_COUNT] = { 0, 0, 0 };

	memset(r, 0, sizeof(*r));
	rehash(f);
	p = tg_verified_pass_new(f->v, f->d, (const char(*)[65])f->hashes);
	for (int k = 0; k < TG_KIND_COUNT; k++) {
		feeds[k] = tg_verified_feed_new(p, (enum tg_kind)k);
		tg_verified_feed_progress(feeds[k], NULL, 0);
	}
	feed_to(feeds[TG_KIND_API], replies[TG_KIND_API], &off[TG_KIND_API], api_len / 2);
	assert_true(off[TG_KIND_API] > 0); /* what it handled is let go */
	feed_to(feeds[TG_KIND_POLICY], replies[TG_KIND_POLICY], &off[TG_KIND_POLICY],
		strlen(replies[TG_KIND_POLICY]));
	tg_verified_feed_progress(feeds[TG_KIND_API], NULL, 0);
	off[TG_KIND_API] = 0;
	for (size_t at = 1000; at < api_len; at += 70 * 1024)
		feed_to(feeds[TG_KIND_API], replies[TG_KIND_API], &off[TG_KIND_API], at);
	for (int k = TG_KIND_COUNT - 1; k >= 0; k--)
		assert_int_equal(tg_verified_feed_finish(feeds[k], replies[k] + off[k],
							 strlen(replies[k]) - off[k],
							 &r->actual[k]),
				 0);
	plan_and_record(f, p, r, NULL, 0);
}

static void test_verified__lists_fed_side_by_side_with_a_retry_count_each_element_once(void **state)
{
	struct fixture *f = *state;
	struct pass_result one, two, three;
	struct lists l;
	size_t entries;

	make_lists(&l, API_A);
	free(l.r[TG_KIND_API]);
	l.r[TG_KIND_API] = long_api_reply();
	run_fed_pass(f, &one, (const char *const *)l.r);
	/* a, 300 foreign, the OAS copy dropped; p. */
	assert_int_equal(one.parsed, 303);
	assert_int_equal(one.skeletons, 0);
	assert_int_equal(cJSON_GetArraySize(one.actual[TG_KIND_API]), 301);
	entries = tg_verified_count(f->v);
	assert_int_equal(entries, 303);
	run_fed_pass(f, &two, (const char *const *)l.r);
	assert_int_equal(two.parsed, 0);
	assert_int_equal(two.skeletons, 303);
	assert_int_equal(cJSON_GetArraySize(two.actual[TG_KIND_API]), 301);
	assert_int_equal(find(&two.plan, "a")->action, TG_ACTION_NONE);
	assert_int_equal(two.plan.len, one.plan.len);
	assert_int_equal(tg_verified_count(f->v), entries);
	/* Whole lists give the same. */
	run_pass(f, &three, (const char *const *)l.r, NULL, 0);
	assert_int_equal(three.skeletons, 303);
	assert_int_equal(three.plan.len, one.plan.len);
	pass_release(&one);
	pass_release(&two);
	pass_release(&three);
	lists_release(&l);
}

/* A pass that finds what the cache holds keeps it as it is; one where an
 * element is gone drops its entry. */
static void test_verified__unchanged_lists_keep_the_cache_and_a_gone_element_leaves_it(void **state)
{
	struct fixture *f = *state;
	struct pass_result one, two, three;
	struct tg_err err = { 0, "" };
	struct lists l, fewer;
	struct stat before, after;

	make_lists(&l, API_A);
	run_pass(f, &one, (const char *const *)l.r, NULL, 0);
	assert_int_equal(tg_verified_save(f->v, &err), 0);
	assert_int_equal(stat(f->path, &before), 0);
	run_pass(f, &two, (const char *const *)l.r, NULL, 0);
	assert_int_equal(two.skeletons, 4);
	assert_int_equal(tg_verified_count(f->v), 4);
	/* Nothing changed: nothing to write either. */
	unlink(f->path);
	assert_int_equal(tg_verified_save(f->v, &err), 0);
	assert_int_not_equal(stat(f->path, &after), 0);
	make_lists(&fewer, API_A);
	free(fewer.r[TG_KIND_POLICY]);
	fewer.r[TG_KIND_POLICY] = tg_xstrdup("[]");
	run_pass(f, &three, (const char *const *)fewer.r, NULL, 0);
	assert_int_equal(tg_verified_count(f->v), 3);
	assert_int_equal(tg_verified_save(f->v, &err), 0);
	assert_int_equal(stat(f->path, &after), 0);
	pass_release(&one);
	pass_release(&two);
	pass_release(&three);
	lists_release(&l);
	lists_release(&fewer);
}

static void test_verified__reply_that_is_not_a_list_of_objects_is_refused(void **state)
{
	struct fixture *f = *state;
	struct tg_verified_pass *p;
	cJSON *out = NULL;

	rehash(f);
	p = tg_verified_pass_new(f->v, f->d, (const char(*)[65])f->hashes);
	assert_int_equal(tg_verified_list(p, TG_KIND_API, "[1]", 3, &out), TG_EINVALID);
	assert_null(out);
	assert_int_equal(tg_verified_list(p, TG_KIND_API, "[{\"a\":}]", 8, &out), TG_EINVALID);
	assert_null(out);
	tg_verified_pass_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_verified__second_pass_parses_nothing_and_plans_the_same, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_verified__hand_edit_changes_the_bytes_and_is_found, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_verified__changed_desired_object_is_diffed_again, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_verified__foreign_object_now_desired_is_a_conflict, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_verified__removed_from_git_is_parsed_and_pruned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verified__file_round_trip_and_refusals, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_verified__lists_fed_side_by_side_with_a_retry_count_each_element_once,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_verified__unchanged_lists_keep_the_cache_and_a_gone_element_leaves_it,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_verified__keeps_no_filled_in_value, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_verified__reply_that_is_not_a_list_of_objects_is_refused, setup,
			teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
