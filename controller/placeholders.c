/*
 * ${VAR} placeholders in the desired state (see include/tg/placeholders.h).
 *
 * Values come from the environment or from a file named VAR in the secrets
 * directory; they are remembered as secrets so that reports can redact
 * them.  What they fill in is bounded relative to the input, like YAML
 * alias expansion: a short reference to a long secret repeated through a
 * file would otherwise multiply it without bound.
 */
#include "tg/placeholders.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tg/buf.h"
#include "tg/posmap.h"
#include "tg/banned.h"

static void add_secret(struct tg_desired *d, const char *value)
{
	size_t i;

	for (i = 0; i < d->n_secrets; i++)
		if (!strcmp(d->secrets[i], value))
			return;
	d->secrets = tg_xreallocarray(d->secrets, d->n_secrets + 1, sizeof(*d->secrets));
	d->secrets[d->n_secrets++] = tg_xstrdup(value);
}

static const char *default_getenv(const char *name, void *ctx)
{
	(void)ctx;
	return getenv(name);
}

static int valid_var_name(const char *s, size_t len)
{
	size_t i;

	if (!len || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (i = 0; i < len; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_'))
			return 0;
	}
	return 1;
}

/* The value of name (owned, wipe with tg_secret_free) or NULL when unset. */
static char *lookup_var(const struct tg_placeholders *ph, const struct tg_doc_at *at,
			const char *name, const char *field)
{
	const struct tg_load_opts *opts = ph->opts;
	tg_getenv_fn fn = opts->getenv_fn ? opts->getenv_fn : default_getenv;
	const char *v = fn(name, opts->getenv_ctx);
	struct tg_err err = { 0, "" };
	char *path = NULL, *value = NULL;
	int rc;

	if (v)
		return tg_xstrdup(v);
	if (!opts->secrets_dir)
		return NULL;
	/* name is [A-Za-z_][A-Za-z0-9_]*, so it cannot leave secrets_dir. */
	path = tg_xasprintf("%s/%s", opts->secrets_dir, name);
	rc = tg_read_secret_file(&value, path, &err);
	if (rc && rc != TG_ENOTFOUND)
		tg_validate_problem(at, TG_SEV_ERROR, field, "cannot read secret for '%s': %s",
				    name, err.msg);
	free(path);
	return rc ? NULL : value;
}

/*
 * What ${VAR} may fill in, relative to the input like alias expansion: a
 * short reference to a long secret (a certificate, 64 KiB from secrets_dir)
 * repeated through a file would otherwise multiply it without bound.
 */
static size_t fill_limit(const struct tg_placeholders *ph)
{
	size_t n;

	if (__builtin_mul_overflow(ph->input, (size_t)TG_DESIRED_FILL_FACTOR, &n))
		return SIZE_MAX;
	return n > TG_DESIRED_FILL_FLOOR ? n : TG_DESIRED_FILL_FLOOR;
}

/* 0, or -1 (reported, once) when value_len more bytes cross the limit. */
static int fill_charge(struct tg_placeholders *ph, const struct tg_doc_at *at, size_t value_len,
		       const char *field)
{
	size_t filled;

	if (!ph->over && !__builtin_add_overflow(ph->filled, value_len, &filled) &&
	    filled <= fill_limit(ph)) {
		ph->filled = filled;
		return 0;
	}
	if (!ph->over)
		tg_validate_problem(
			at, TG_SEV_ERROR, field,
			"values filled in by '${...}' add up to more than %zu bytes (the limit: %d "
			"times the %zu bytes of the files, at least %zu MiB)",
			fill_limit(ph), TG_DESIRED_FILL_FACTOR, ph->input,
			TG_DESIRED_FILL_FLOOR / (1024 * 1024));
	ph->over = 1;
	return -1;
}

/*
 * Expands ${VAR}, ${VAR:-default} and $${ (a literal "${") in s.  Shell
 * semantics for the default: used when VAR is unset or empty.  A default
 * ends at the first '}', so defaults cannot nest, and substituted values
 * are not expanded again.  Values from the environment or secret files go
 * into d->secrets; defaults do not, since they are written in the
 * repository and redacting short ones ("80", "true") would garble logs.
 * Once the values filled in reach fill_limit, nothing more is looked up.
 * Returns the new string (wipe with tg_secret_free), or NULL when nothing
 * changed or on an error (reported).
 */
static char *expand(struct tg_placeholders *ph, const struct tg_doc_at *at, const char *s,
		    const char *field)
{
	struct tg_buf b;
	int changed = 0, bad = 0;

	tg_buf_init(&b, 0);
	tg_buf_put(&b, "", 0);
	while (*s) {
		const char *end, *name, *def = NULL, *colon;
		size_t name_len, def_len = 0;
		char *nm, *value;

		if (s[0] == '$' && s[1] == '$' && s[2] == '{') {
			tg_buf_put(&b, "${", 2);
			s += 3;
			changed = 1;
			continue;
		}
		if (s[0] != '$' || s[1] != '{') {
			tg_buf_put(&b, s, 1);
			s++;
			continue;
		}
		changed = 1;
		if (ph->over) {
			bad = 1;
			break;
		}
		name = s + 2;
		end = strchr(name, '}');
		if (!end) {
			tg_validate_problem(at, TG_SEV_ERROR, field,
					    "unterminated '${' (write '$${' for a literal '${')");
			bad = 1;
			break;
		}
		colon = memmem(name, (size_t)(end - name), ":-", 2);
		name_len = (size_t)((colon ? colon : end) - name);
		if (colon) {
			def = colon + 2;
			def_len = (size_t)(end - def);
		}
		s = end + 1;
		nm = tg_xstrndup(name, name_len);
		if (!valid_var_name(name, name_len)) {
			char *p = tg_validate_printable(nm);

			tg_validate_problem(at, TG_SEV_ERROR, field,
					    "invalid variable name '%s' in '${...}'", p);
			free(p);
			free(nm);
			bad = 1;
			continue;
		}
		value = lookup_var(ph, at, nm, field);
		if ((!value || !*value) && def) {
			tg_buf_put(&b, def, def_len);
		} else if (!value) {
			tg_validate_problem(at, TG_SEV_ERROR, field,
					    "variable '%s' is not set and has no default", nm);
			bad = 1;
		} else if (fill_charge(ph, at, strlen(value), field)) {
			bad = 1;
		} else {
			tg_buf_puts(&b, value);
			if (*value)
				add_secret(ph->d, value);
		}
		tg_secret_free(value);
		free(nm);
	}
	if (bad || !changed) {
		if (b.ptr)
			tg_secret_free(tg_buf_detach(&b));
		return NULL;
	}
	return tg_buf_detach(&b);
}

static void subst_walk(struct tg_placeholders *ph, const struct tg_doc_at *at, cJSON *node,
		       struct tg_buf *path)
{
	size_t saved = path->len, i = 0;
	cJSON *child;

	if (cJSON_IsString(node) && strstr(node->valuestring, "${")) {
		char *v;

		ph->d->used_vars = 1;
		v = expand(ph, at, node->valuestring, path->ptr);

		if (v) {
			/* Relative to at->base, which tg_validate_problem adds back. */
			cJSON_SetValuestring(node, v);
			tg_secret_free(v);
		}
		return;
	}
	for (child = node->child; child; child = child->next, i++) {
		if (cJSON_IsObject(node))
			tg_pos_path_push(path, child->string, strlen(child->string));
		else
			tg_pos_path_push_index(path, i);
		subst_walk(ph, at, child, path);
		tg_pos_path_truncate(path, saved);
	}
}

void tg_placeholders_fill(struct tg_placeholders *ph, const struct tg_doc_at *at, cJSON *body)
{
	struct tg_buf path;

	tg_buf_init(&path, 0);
	tg_buf_put(&path, "", 0);
	subst_walk(ph, at, body, &path);
	tg_buf_release(&path);
}
