/*
 * Fuzz target for the list reply scanner (gateway replies are outside
 * input).  Beyond not crashing: every range it returns is one '{...}'
 * inside the input, in order and apart; and when every range parses, the
 * whole reply parses to exactly those elements, so reading a list range by
 * range never sees something a whole parse would not.  Fed in pieces, the
 * scanner finds the same ranges and the same verdict as in one piece.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tg/listscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The reply arriving step bytes at a time must split as it does whole,
 * also when the bytes done are let go after each step (let_go). */
static void check_fed_in_pieces(const char *s, size_t size, const struct tg_listscan *whole,
				int whole_rc, size_t step, int let_go)
{
	struct tg_listscan_feed f;
	struct tg_listscan_range r;
	size_t avail = 0, got = 0, base = 0;
	int rc;

	tg_listscan_feed_init(&f);
	for (;;) {
		int final = avail == size;

		while ((rc = tg_listscan_next(&f, s + base, avail - base, final, &r)) == 1) {
			if (got >= whole->len || base + r.off != whole->items[got].off ||
			    r.len != whole->items[got].len)
				abort();
			got++;
		}
		if (final || rc)
			break;
		if (let_go) {
			size_t done = tg_listscan_feed_done(&f);

			tg_listscan_feed_shift(&f, done);
			base += done;
		}
		avail = avail + step < size ? avail + step : size;
	}
	if (rc != whole_rc || (!rc && got != whole->len))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct tg_listscan ls = { NULL, 0, 0 };
	cJSON *whole = NULL, *el;
	size_t end = 0, i = 0;
	int all_parse = 1, rc = tg_listscan_split(&ls, s, size);

	check_fed_in_pieces(s, size, &ls, rc, 1 + size % 61, size % 2);
	if (rc)
		goto out;
	for (size_t k = 0; k < ls.len; k++) {
		const struct tg_listscan_range *r = &ls.items[k];

		if (r->off < end || r->len < 2 || r->off + r->len > size || s[r->off] != '{' ||
		    s[r->off + r->len - 1] != '}')
			abort();
		end = r->off + r->len;
	}
	whole = cJSON_ParseWithLength(s, size);
	for (size_t k = 0; k < ls.len && all_parse; k++) {
		cJSON *one = cJSON_ParseWithLength(s + ls.items[k].off, ls.items[k].len);

		all_parse = one != NULL;
		cJSON_Delete(one);
	}
	if (!all_parse)
		goto out;
	if (!whole)
		abort();
	if (cJSON_IsNull(whole)) {
		if (ls.len)
			abort();
		goto out;
	}
	if (!cJSON_IsArray(whole) || (size_t)cJSON_GetArraySize(whole) != ls.len)
		abort();
	/* Compared as printed: cJSON_Compare looks members up by name, so an
	 * object with a duplicate key is not even equal to itself there. */
	cJSON_ArrayForEach(el, whole)
	{
		cJSON *one = cJSON_ParseWithLength(s + ls.items[i].off, ls.items[i].len);
		char *a = cJSON_PrintUnformatted(one), *b = cJSON_PrintUnformatted(el);

		if (!a || !b || strcmp(a, b))
			abort();
		free(a);
		free(b);
		cJSON_Delete(one);
		i++;
	}
out:
	cJSON_Delete(whole);
	tg_listscan_release(&ls);
	return 0;
}
