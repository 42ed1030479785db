/* A sync's apply history (see include/tg/history.h). */
#include "tg/history.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tg/banned.h"

void tg_history_init(struct tg_history *h)
{
	memset(h, 0, sizeof(*h));
}

static void entry_release(struct tg_history_entry *e)
{
	free(e->author);
	free(e->summary);
	free(e->trigger);
	free(e->actor);
	free(e->error);
}

void tg_history_release(struct tg_history *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->len; i++)
		entry_release(&h->items[i]);
	free(h->items);
	tg_history_init(h);
}

static char *dup_or_null(const char *s)
{
	return s ? tg_xstrdup(s) : NULL;
}

void tg_history_add(struct tg_history *h, const struct tg_history_entry *e)
{
	struct tg_history_entry *n;

	if (h->len == TG_HISTORY_MAX) {
		entry_release(&h->items[0]);
		memmove(h->items, h->items + 1, (h->len - 1) * sizeof(*h->items));
		h->len--;
	}
	h->items = tg_xreallocarray(h->items, h->len + 1, sizeof(*h->items));
	n = &h->items[h->len++];
	*n = *e;
	n->author = dup_or_null(e->author);
	n->summary = dup_or_null(e->summary);
	n->trigger = dup_or_null(e->trigger);
	n->actor = dup_or_null(e->actor);
	n->error = dup_or_null(e->error);
}

struct tg_history_entry *tg_history_find(struct tg_history *h, const char *commit)
{
	for (size_t i = h->len; i-- > 0;)
		if (!strcmp(h->items[i].commit, commit))
			return &h->items[i];
	return NULL;
}

const struct tg_history_entry *tg_history_last_healthy(const struct tg_history *h,
						       const char *except)
{
	for (size_t i = h->len; i-- > 0;) {
		const struct tg_history_entry *e = &h->items[i];

		if (!strcmp(e->health, "healthy") && !e->rolled_back &&
		    (!except || strcmp(e->commit, except)))
			return e;
	}
	return NULL;
}

/* --- JSON ------------------------------------------------------------------- */

static void add_str(cJSON *o, const char *k, const char *v)
{
	if (v)
		cJSON_AddStringToObject(o, k, v);
	else
		cJSON_AddNullToObject(o, k);
}

static cJSON *entry_json(const struct tg_history_entry *e)
{
	cJSON *o = cJSON_CreateObject();
	char when[TG_TIME_MAX];

	tg_rfc3339(when, e->wall_ms, 1);
	cJSON_AddStringToObject(o, "commit", e->commit);
	cJSON_AddStringToObject(o, "kind", e->kind);
	add_str(o, "from_commit", e->from_commit[0] ? e->from_commit : NULL);
	cJSON_AddStringToObject(o, "outcome", e->outcome);
	cJSON_AddStringToObject(o, "health", e->health);
	cJSON_AddBoolToObject(o, "rolled_back", e->rolled_back);
	cJSON_AddStringToObject(o, "time", when);
	cJSON_AddNumberToObject(o, "time_ms", (double)e->wall_ms);
	add_str(o, "author", e->author);
	add_str(o, "summary", e->summary);
	add_str(o, "trigger", e->trigger);
	add_str(o, "actor", e->actor);
	add_str(o, "error", e->error);
	cJSON_AddNumberToObject(o, "created", (double)e->created);
	cJSON_AddNumberToObject(o, "updated", (double)e->updated);
	cJSON_AddNumberToObject(o, "deleted", (double)e->deleted);
	cJSON_AddNumberToObject(o, "failed", (double)e->failed);
	return o;
}

cJSON *tg_history_json(const struct tg_history *h, size_t max)
{
	cJSON *root = cJSON_CreateObject(), *list;

	add_str(root, "pin", h->pin[0] ? h->pin : NULL);
	add_str(root, "pin_head", h->pin_head[0] ? h->pin_head : NULL);
	list = cJSON_AddArrayToObject(root, "entries");
	for (size_t i = h->len, k = 0; i-- > 0 && k < max; k++)
		cJSON_AddItemToArray(list, entry_json(&h->items[i]));
	return root;
}

static const char *str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static size_t count(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e12
		       ? (size_t)v->valuedouble
		       : 0;
}

static int is_sha(const char *s)
{
	size_t i;

	for (i = 0; s && s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s && i == 40;
}

/* Copies a short word (kind, outcome, health); 0 when it fits. */
static int word(char *out, size_t size, const char *s)
{
	if (!s || strlen(s) >= size)
		return -1;
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

int tg_history_parse(struct tg_history *h, const char *data, size_t len)
{
	cJSON *root = cJSON_ParseWithLength(data, len), *e;
	const cJSON *list;
	const char *pin, *pin_head;
	size_t n;

	tg_history_release(h);
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return TG_EINVALID;
	}
	pin = str(root, "pin");
	pin_head = str(root, "pin_head");
	if (is_sha(pin) && is_sha(pin_head)) {
		memcpy(h->pin, pin, 41);
		memcpy(h->pin_head, pin_head, 41);
	}
	list = cJSON_GetObjectItemCaseSensitive(root, "entries");
	n = cJSON_IsArray(list) ? (size_t)cJSON_GetArraySize(list) : 0;
	/* Stored newest first: walk backwards to add the oldest first. */
	for (size_t i = n; i-- > 0;) {
		struct tg_history_entry x;
		const cJSON *t;
		const char *from;

		e = cJSON_GetArrayItem(list, (int)i);
		memset(&x, 0, sizeof(x));
		if (!cJSON_IsObject(e) || !is_sha(str(e, "commit")) ||
		    word(x.kind, sizeof(x.kind), str(e, "kind")) ||
		    word(x.outcome, sizeof(x.outcome), str(e, "outcome")) ||
		    word(x.health, sizeof(x.health), str(e, "health")))
			continue;
		memcpy(x.commit, str(e, "commit"), 41);
		from = str(e, "from_commit");
		if (is_sha(from))
			memcpy(x.from_commit, from, 41);
		x.rolled_back = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "rolled_back"));
		t = cJSON_GetObjectItemCaseSensitive(e, "time_ms");
		/* Checked before the conversion: a double past long long's
		 * range has no defined conversion. */
		x.wall_ms = cJSON_IsNumber(t) && t->valuedouble >= 0 &&
					    t->valuedouble <= (double)TG_WALL_MS_MAX
				    ? (long long)t->valuedouble
				    : 0;
		x.author = (char *)str(e, "author");
		x.summary = (char *)str(e, "summary");
		x.trigger = (char *)str(e, "trigger");
		x.actor = (char *)str(e, "actor");
		x.error = (char *)str(e, "error");
		x.created = count(e, "created");
		x.updated = count(e, "updated");
		x.deleted = count(e, "deleted");
		x.failed = count(e, "failed");
		tg_history_add(h, &x); /* copies the strings */
	}
	cJSON_Delete(root);
	return 0;
}

int tg_history_load(struct tg_history *h, const char *path, struct tg_err *err)
{
	char *data = NULL;
	size_t len = 0;
	int rc;

	tg_history_release(h);
	rc = tg_read_file(&data, &len, path, TG_HISTORY_MAX_FILE, err);
	if (rc == TG_ENOTFOUND) {
		tg_err_clear(err);
		return 0;
	}
	if (rc)
		return rc;
	rc = tg_history_parse(h, data, len);
	free(data);
	if (rc)
		return tg_err_set(err, TG_EINVALID, "history file '%s' is not a history", path);
	return 0;
}

int tg_history_save(const struct tg_history *h, const char *path, struct tg_err *err)
{
	cJSON *root = tg_history_json(h, TG_HISTORY_MAX);
	char *text = cJSON_PrintUnformatted(root);
	char *tmp = tg_xasprintf("%s.tmp", path);
	size_t len = text ? strlen(text) : 0, off = 0;
	int fd = -1, rc = 0;

	cJSON_Delete(root);
	if (!text) {
		rc = tg_err_set(err, TG_ERROR, "cannot render the history");
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		off += (size_t)w;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto fail;
	goto out;
fail:
	rc = tg_err_set(err, TG_ERROR, "cannot write history file '%s': %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	unlink(tmp);
out:
	free(tmp);
	free(text);
	return rc;
}
