/* Write-ahead audit trail (see include/tg/audit.h). */
#include "tg/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "tg/buf.h"
#include "tg/marker.h"
#include "tg/banned.h"

/* A line longer than this is not one of ours: skipped on replay. */
#define MAX_LINE ((size_t)1024 * 1024)

struct tg_audit {
	char *path;
	int fd;                  /* unbuffered: a failed write must not linger in a buffer */
	int is_regular;          /* only a regular file can be synced and read back */
	int torn;                /* the last append may have left a partial line */
	struct tg_audit_op *ops; /* open operations; op[0] == '\0' marks a closed slot */
	size_t n_ops, alloc_ops, n_closed;
};

static const char *const result_names[] = { "pending", "applied", "failed", "not_applied" };
static const char *const phase_names[] = { "intent", "outcome" };

const char *tg_audit_result_name(enum tg_audit_result r)
{
	return result_names[r];
}

const char *tg_audit_path(const struct tg_audit *a)
{
	return a->path;
}

void tg_audit_new_op(char out[TG_AUDIT_OP_MAX], long long wall_ms, unsigned long seq)
{
	snprintf(out, TG_AUDIT_OP_MAX, "%lld-%ld-%lu", wall_ms, (long)getpid(), seq);
}

/* --- open operations ---------------------------------------------------- */

static char *dup_or_empty(const char *s)
{
	return tg_xstrdup(s ? s : "");
}

static void op_release(struct tg_audit_op *op)
{
	free(op->sync);
	free(op->commit);
	free(op->author);
	free(op->author_name);
	free(op->author_email);
	free(op->trigger);
	free(op->actor);
	free(op->id);
	free(op->before_hash);
	free(op->after_hash);
	memset(op, 0, sizeof(*op));
}

static struct tg_audit_op *find_op(struct tg_audit *a, const char *op)
{
	for (size_t i = 0; i < a->n_ops; i++)
		if (a->ops[i].op[0] && !strcmp(a->ops[i].op, op))
			return &a->ops[i];
	return NULL;
}

/* Drops closed slots once they are the majority, keeping the order. */
static void compact(struct tg_audit *a)
{
	size_t j = 0;

	if (a->n_closed * 2 < a->n_ops)
		return;
	for (size_t i = 0; i < a->n_ops; i++)
		if (a->ops[i].op[0])
			a->ops[j++] = a->ops[i];
	a->n_ops = j;
	a->n_closed = 0;
}

static void open_op(struct tg_audit *a, const struct tg_audit_record *r)
{
	struct tg_audit_op *op = find_op(a, r->op);

	if (op) /* a repeated intent: keep the first */
		return;
	if (a->n_ops == a->alloc_ops) {
		a->alloc_ops = a->alloc_ops ? a->alloc_ops * 2 : 16;
		a->ops = tg_xreallocarray(a->ops, a->alloc_ops, sizeof(*a->ops));
	}
	op = &a->ops[a->n_ops++];
	memset(op, 0, sizeof(*op));
	snprintf(op->op, sizeof(op->op), "%s", r->op);
	op->sync = dup_or_empty(r->sync);
	op->commit = dup_or_empty(r->commit);
	op->author = dup_or_empty(r->author);
	op->author_name = dup_or_empty(r->author_name);
	op->author_email = dup_or_empty(r->author_email);
	op->trigger = dup_or_empty(r->trigger);
	op->actor = dup_or_empty(r->actor);
	op->kind = r->kind;
	op->id = dup_or_empty(r->id);
	op->action = r->action;
	op->before_hash = dup_or_empty(r->before_hash);
	op->after_hash = dup_or_empty(r->after_hash);
}

/* An outcome closes its operation unless the gateway holds a write that
 * may still go live. */
static void track(struct tg_audit *a, const struct tg_audit_record *r)
{
	struct tg_audit_op *op;

	if (!r->op[0])
		return;
	if (r->phase == TG_AUDIT_INTENT) {
		open_op(a, r);
		return;
	}
	if (r->result == TG_AUDIT_FAILED && r->written)
		return;
	op = find_op(a, r->op);
	if (!op)
		return;
	op_release(op);
	a->n_closed++;
	compact(a);
}

const struct tg_audit_op **tg_audit_open_ops(const struct tg_audit *a, const char *sync, size_t *n)
{
	const struct tg_audit_op **out = tg_xcalloc(a->n_ops ? a->n_ops : 1, sizeof(*out));

	*n = 0;
	for (size_t i = 0; i < a->n_ops; i++)
		if (a->ops[i].op[0] && !strcmp(a->ops[i].sync, sync))
			out[(*n)++] = &a->ops[i];
	return out;
}

void tg_audit_record_from_op(struct tg_audit_record *rec, const struct tg_audit_op *op)
{
	memset(rec, 0, sizeof(*rec));
	snprintf(rec->op, sizeof(rec->op), "%s", op->op);
	rec->phase = TG_AUDIT_OUTCOME;
	rec->sync = op->sync;
	rec->commit = op->commit;
	rec->author = op->author;
	rec->author_name = op->author_name;
	rec->author_email = op->author_email;
	rec->trigger = op->trigger;
	rec->actor = op->actor;
	rec->kind = op->kind;
	rec->id = op->id;
	rec->action = op->action;
	rec->before_hash = op->before_hash;
	rec->after_hash = op->after_hash;
	rec->recovered = 1;
}

enum tg_audit_result tg_audit_judge(const struct tg_audit_op *op, const cJSON *on_gateway)
{
	const char *owner, *hash;

	if (op->action == TG_ACTION_DELETE)
		return on_gateway ? TG_AUDIT_NOT_APPLIED : TG_AUDIT_APPLIED;
	if (!on_gateway)
		return TG_AUDIT_NOT_APPLIED;
	owner = tg_marker_get(op->kind, on_gateway, "sync");
	hash = tg_marker_get(op->kind, on_gateway, "hash");
	if (!owner || strcmp(owner, op->sync))
		return TG_AUDIT_NOT_APPLIED;
	/* The tombstone policy carries no hash. */
	if (strcmp(hash ? hash : "", op->after_hash))
		return TG_AUDIT_NOT_APPLIED;
	return TG_AUDIT_APPLIED;
}

/* --- replay ------------------------------------------------------------- */

static int name_index(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++)
		if (!strcmp(names[i], s))
			return (int)i;
	return -1;
}

static const char *str_field(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int kind_from_name(const char *s)
{
	for (int k = 0; s && k < TG_KIND_COUNT; k++)
		if (!strcmp(tg_kind_name((enum tg_kind)k), s))
			return k;
	return -1;
}

static int action_from_name(const char *s)
{
	for (int i = TG_ACTION_NONE; s && i <= TG_ACTION_CONFLICT; i++)
		if (!strcmp(tg_action_name((enum tg_action)i), s))
			return i;
	return -1;
}

/* Turns one line back into a record; 0 when it is a record of ours. */
static int parse_line(struct tg_audit_record *r, const cJSON *o)
{
	const char *op = str_field(o, "op");
	int phase = name_index(phase_names, TG_ARRAY_SIZE(phase_names), str_field(o, "phase"));
	int result = name_index(result_names, TG_ARRAY_SIZE(result_names), str_field(o, "result"));
	int kind = kind_from_name(str_field(o, "kind"));
	int action = action_from_name(str_field(o, "action"));

	if (!op || phase < 0 || result < 0 || kind < 0 || action < 0)
		return -1;
	memset(r, 0, sizeof(*r));
	snprintf(r->op, sizeof(r->op), "%s", op);
	r->phase = (enum tg_audit_phase)phase;
	r->result = (enum tg_audit_result)result;
	r->sync = str_field(o, "sync");
	r->commit = str_field(o, "commit");
	r->author = str_field(o, "author");
	r->author_name = str_field(o, "author_name");
	r->author_email = str_field(o, "author_email");
	r->trigger = str_field(o, "trigger");
	r->actor = str_field(o, "actor");
	r->kind = (enum tg_kind)kind;
	r->id = str_field(o, "id");
	r->action = (enum tg_action)action;
	r->before_hash = str_field(o, "before_hash");
	r->after_hash = str_field(o, "after_hash");
	r->written = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "written"));
	return 0;
}

static int replay(struct tg_audit *a, struct tg_err *err)
{
	FILE *in = fopen(a->path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	if (!in)
		return errno == ENOENT
			       ? 0
			       : tg_err_set(err, TG_ERROR, "cannot read audit file '%s': %s",
					    a->path, strerror(errno));
	while ((len = getline(&line, &cap, in)) >= 0) {
		struct tg_audit_record r;
		cJSON *o;

		/* Records written before the trail was write-ahead have no
		 * phase and can be skipped without parsing. */
		if ((size_t)len > MAX_LINE || !strstr(line, "\"phase\":"))
			continue;
		o = cJSON_ParseWithLength(line, (size_t)len);
		if (o && !parse_line(&r, o))
			track(a, &r);
		cJSON_Delete(o);
	}
	free(line);
	fclose(in);
	return 0;
}

int tg_audit_open(struct tg_audit **out, const char *path, struct tg_err *err)
{
	struct tg_audit *a = tg_xcalloc(1, sizeof(*a));
	struct stat sb;
	int rc = 0;

	*out = NULL;
	a->fd = -1;
	a->path = tg_xstrdup(path);
	if (!strcmp(path, "-")) {
		a->fd = STDOUT_FILENO;
	} else {
		/* A FIFO or device would block or lose the trail. */
		if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
			rc = tg_err_set(err, TG_ERROR,
					"cannot use audit file '%s': not a regular file", path);
			goto fail;
		}
		if ((rc = replay(a, err)) < 0)
			goto fail;
		a->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (a->fd < 0) {
			rc = tg_err_set(err, TG_ERROR, "cannot open audit file '%s': %s", path,
					strerror(errno));
			goto fail;
		}
		a->is_regular = 1;
	}
	*out = a;
	return 0;
fail:
	tg_audit_free(a);
	return rc;
}

void tg_audit_free(struct tg_audit *a)
{
	if (!a)
		return;
	if (a->fd > STDERR_FILENO)
		close(a->fd);
	for (size_t i = 0; i < a->n_ops; i++)
		op_release(&a->ops[i]);
	free(a->ops);
	free(a->path);
	free(a);
}

/* --- writing ------------------------------------------------------------ */

static void put_field(struct tg_buf *b, const char *key, const char *value)
{
	tg_buf_printf(b, ",\"%s\":\"", key);
	tg_buf_put_json_escaped(b, value ? value : "");
	tg_buf_puts(b, "\"");
}

static void format_record(struct tg_buf *b, const struct tg_audit_record *r, const char *when)
{
	tg_buf_printf(b, "{\"time\":\"%s\"", when);
	put_field(b, "sync", r->sync);
	put_field(b, "commit", r->commit);
	put_field(b, "author", r->author);
	put_field(b, "author_name", r->author_name);
	put_field(b, "author_email", r->author_email);
	put_field(b, "trigger", r->trigger);
	put_field(b, "actor", r->actor);
	put_field(b, "kind", tg_kind_name(r->kind));
	put_field(b, "id", r->id);
	put_field(b, "action", tg_action_name(r->action));
	put_field(b, "before_hash", r->before_hash);
	put_field(b, "after_hash", r->after_hash);
	put_field(b, "result", tg_audit_result_name(r->result));
	if (r->error)
		put_field(b, "error", r->error);
	put_field(b, "op", r->op);
	put_field(b, "phase", phase_names[r->phase]);
	if (r->phase == TG_AUDIT_OUTCOME)
		tg_buf_printf(b, ",\"written\":%s", r->written ? "true" : "false");
	if (r->recovered)
		tg_buf_puts(b, ",\"recovered\":true");
	tg_buf_puts(b, "}\n");
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int tg_audit_append(struct tg_audit *a, const struct tg_audit_record *recs, size_t n,
		    struct tg_err *err)
{
	struct tg_buf b = TG_BUF_INIT;
	char when[TG_TIME_MAX];
	int rc = 0;

	if (!n)
		return 0;
	tg_buf_init(&b, SIZE_MAX);
	tg_rfc3339(when, tg_wall_ms(), 1);
	if (a->torn)
		tg_buf_puts(&b, "\n"); /* so the next record starts a line of its own */
	for (size_t i = 0; i < n; i++)
		format_record(&b, &recs[i], when);
	if (write_all(a->fd, b.ptr, b.len) < 0 || (a->is_regular && fdatasync(a->fd) != 0)) {
		rc = tg_err_set(err, TG_ERROR, "cannot write audit file '%s': %s", a->path,
				strerror(errno));
		a->torn = 1;
		goto out;
	}
	a->torn = 0;
	/* Only what reached the file changes what is open. */
	for (size_t i = 0; i < n; i++)
		track(a, &recs[i]);
out:
	tg_buf_release(&b);
	return rc;
}

int tg_audit_append_event(struct tg_audit *a, const struct tg_audit_event *ev, struct tg_err *err)
{
	struct tg_buf b = TG_BUF_INIT;
	char when[TG_TIME_MAX];
	int rc = 0;

	tg_buf_init(&b, SIZE_MAX);
	tg_rfc3339(when, tg_wall_ms(), 1);
	if (a->torn)
		tg_buf_puts(&b, "\n");
	tg_buf_printf(&b, "{\"time\":\"%s\"", when);
	put_field(&b, "event", ev->event);
	put_field(&b, "sync", ev->sync);
	put_field(&b, "commit", ev->commit);
	put_field(&b, "author", ev->author);
	put_field(&b, "trigger", ev->trigger);
	put_field(&b, "actor", ev->actor);
	if (ev->rule)
		put_field(&b, "rule", ev->rule);
	if (ev->from_commit)
		put_field(&b, "from_commit", ev->from_commit);
	if (ev->error)
		put_field(&b, "error", ev->error);
	tg_buf_puts(&b, "}\n");
	if (write_all(a->fd, b.ptr, b.len) < 0 || (a->is_regular && fdatasync(a->fd) != 0)) {
		rc = tg_err_set(err, TG_ERROR, "cannot write audit file '%s': %s", a->path,
				strerror(errno));
		a->torn = 1;
	} else {
		a->torn = 0;
	}
	tg_buf_release(&b);
	return rc;
}
