/*
 * Desired state: a config directory to classic APIs, Tyk OAS APIs and
 * policies (see include/tg/desired.h).
 *
 * Every problem in the input is collected and loading carries on, so that
 * `validate` lists all of them at once.  An object with a problem that
 * makes it unusable (no id, invalid id, a duplicate) is left out of the
 * result; the caller must not apply a commit with errors anyway.
 *
 * Layout: files under apis/ and policies/ (recursively, hidden files and
 * directories skipped), loaded in byte order of their paths so that "first
 * defined" is stable.  A .tyk.json manifest at the root (tyk-sync, read by
 * manifest.c) replaces the scan: only the files it lists are loaded.
 *
 * Each document goes through the same steps: unwrapped when it is a
 * Dashboard export (manifest.h), its ${VAR} filled in (placeholders.h),
 * read into an object and checked (validate.h); once every file is loaded,
 * the checks across objects (validate.h) drop duplicates.
 *
 * Symbolic links: a repository decides what its links point at, so a link
 * could make the controller read, and publish, any file it can read.  Below
 * the trusted root (opts->root) every path is therefore opened one component
 * at a time with openat(O_NOFOLLOW), never through "..", and files are read
 * through the descriptor that was checked (a file's directory, opened that
 * way, stays open for the files after it in the same directory).  Every link is refused, even one
 * that stays inside the repository: that needs no resolving and leaves no
 * case to get wrong.  A link the directory scan meets is skipped with a
 * warning; a link on the way to something the repository asks for by name
 * (the sync path, apis/, policies/, .tyk.json and the files it lists) is an
 * error, so that a commit never silently publishes less than it says.
 *
 * A checkout of a commit may come with a memo of what earlier loads found
 * in each file, by the id of its content (opts->memo, loadmemo.h): a file
 * whose content is unchanged is then taken from it instead of being read,
 * and counts towards the budgets below as if it had been read; the checks
 * across objects run over everything, as for a fresh load.
 *
 * Limits: files larger than TG_DESIRED_MAX_FILE_SIZE (8 MiB) are reported
 * and skipped; directories nested deeper than TG_DESIRED_MAX_DIR_DEPTH are
 * not walked; nesting is bounded by the readers (yaml.h, json.h), and so is
 * YAML alias expansion, with one budget for all the files of a load; values
 * filled in by ${VAR} are bounded relative to the size of the files too.
 */
#include "tg/desired.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tg/json.h"
#include "tg/loadmemo.h"
#include "tg/manifest.h"
#include "tg/placeholders.h"
#include "tg/posmap.h"
#include "tg/validate.h"
#include "tg/yaml.h"
#include "tg/banned.h"

struct loader {
	const struct tg_load_opts *opts;
	struct tg_problems *problems;
	struct tg_desired *d;
	char *prefix;  /* root relative to repo_root, "" or "dir/" */
	size_t n_seen; /* files and documents seen, usable or not */
	int dirfd;     /* the directory holding apis/ and policies/; -1 for buffers */
	/* The directory of the last file opened, kept open for the next:
	 * files load in byte order of their paths, so a directory's files
	 * come one after another (see open_file). */
	char *cur_dir;
	int cur_fd;                   /* -1 when cur_dir could not be opened */
	int refused;                  /* the layout itself was refused: "empty" would be noise */
	struct tg_yaml_budget budget; /* alias expansion, for all files together */
	struct tg_placeholders ph;    /* ${VAR}: its limit grows with the bytes read */
};

const char *tg_kind_name(enum tg_kind kind)
{
	switch (kind) {
	case TG_KIND_API: return "api";
	case TG_KIND_OAS_API: return "oas";
	case TG_KIND_POLICY: return "policy";
	}
	return "unknown";
}

static void src_release(struct tg_src *src)
{
	free(src->field);
	src->field = NULL;
}

/* ------------------------------------------------------------------ */
/* Objects.                                                            */

/* cJSON_Parse gives true a valueint of 1, cJSON_CreateTrue (the readers')
 * of 0: the nodes are made the same as a fresh load's. */
static void true_as_created(cJSON *v)
{
	for (; v; v = v->next) {
		if (cJSON_IsTrue(v))
			v->valueint = 0;
		true_as_created(v->child);
	}
}

cJSON *tg_object_body(const struct tg_object *o)
{
	struct tg_object *mut = (struct tg_object *)o;

	if (o->body || !o->body_text)
		return o->body;
	mut->body = cJSON_Parse(o->body_text);
	if (!cJSON_IsObject(mut->body)) {
		/* The memo wrote it and its file ends in its own digest. */
		fprintf(stderr, "{\"level\":\"error\",\"msg\":\"cannot parse a desired object "
				"kept as text: out of memory or a damaged cache\"}\n");
		abort();
	}
	true_as_created(mut->body->child);
	free(mut->body_text);
	mut->body_text = NULL;
	return mut->body;
}

void tg_object_release(struct tg_object *o)
{
	size_t i;

	free(o->id);
	free(o->name);
	free(o->file);
	cJSON_Delete(o->body);
	free(o->body_text);
	free(o->listen_path);
	free(o->domain);
	for (i = 0; i < o->n_api_refs; i++) {
		free(o->api_refs[i]);
		if (o->api_ref_srcs)
			src_release(&o->api_ref_srcs[i]);
	}
	free(o->api_refs);
	free(o->api_ref_srcs);
	src_release(&o->id_src);
	src_release(&o->listen_path_src);
	tg_pos_map_free(o->pos);
	free(o->pos_base);
}

/* A wrapper's object (a Dashboard export's "api_definition") taken out as
 * a document of its own, without the key it had. */
static void detach_body(cJSON *root, cJSON *body)
{
	cJSON_DetachItemViaPointer(root, body);
	if (!(body->type & cJSON_StringIsConst))
		cJSON_free(body->string);
	body->string = NULL;
}

static void handle_doc(struct loader *ld, const char *file, struct tg_doc *doc, enum tg_family fam,
		       int may_subst)
{
	struct tg_doc_at c = { ld->problems, file, doc, "" };
	cJSON *root = doc->json, *body;
	size_t n_before;

	if (!root || cJSON_IsNull(root))
		return; /* an empty YAML document, e.g. after a trailing '---' */
	ld->n_seen++;
	if (!cJSON_IsObject(root)) {
		tg_validate_problem(&c, TG_SEV_ERROR, "", "document is not an object");
		return;
	}
	body = fam == TG_FAMILY_API ? tg_manifest_unwrap(root, &c.base) : root;
	if (body == root)
		doc->json = NULL;
	else
		detach_body(root, body);

	if (may_subst)
		tg_placeholders_fill(&ld->ph, &c, body);

	n_before = ld->d->len;
	if (fam == TG_FAMILY_POLICY)
		tg_validate_add_policy(ld->d, &c, body);
	else
		tg_validate_add_api(ld->d, &c, body);
	/* Rules report at the offending field, after loading: the object
	 * takes its document's positions over. */
	if (ld->opts->keep_positions && ld->d->len > n_before) {
		struct tg_object *o = &ld->d->objects[ld->d->len - 1];

		o->pos = doc->pos;
		doc->pos = NULL;
		o->pos_base = tg_xstrdup(c.base);
	}
}

void tg_object_locate(const struct tg_object *o, const char *field, int *line, int *column)
{
	char *tmp;
	char *dot;

	*line = o->line;
	*column = o->column;
	if (!o->pos || !field)
		return;
	tmp = o->pos_base && *o->pos_base ? tg_xasprintf("%s.%s", o->pos_base, field)
					  : tg_xstrdup(field);
	/* The nearest ancestor that has a position: a missing field is
	 * reported where it should have been. */
	for (;;) {
		if (!tg_pos_lookup(o->pos, tmp, line, column))
			break;
		dot = strrchr(tmp, '.');
		if (!dot) {
			*line = o->line;
			*column = o->column;
			break;
		}
		*dot = '\0';
	}
	free(tmp);
}

static int has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

static int known_extension(const char *name)
{
	return has_suffix(name, ".json") || has_suffix(name, ".yaml") || has_suffix(name, ".yml");
}

static void load_data(struct loader *ld, const char *file, const char *data, size_t len,
		      enum tg_family fam)
{
	struct tg_docs docs = { NULL, 0, 0 };
	/* A string value can hold "${" only when the file does, or spells it
	 * with an escape (JSON "\u0024", YAML "\x24", a YAML escaped line
	 * break): without either, no walk building a path per node. */
	int may_subst = memmem(data, len, "${", 2) || memchr(data, '\\', len);
	size_t i;

	ld->n_seen++;
	if (__builtin_add_overflow(ld->ph.input, len, &ld->ph.input))
		ld->ph.input = SIZE_MAX;
	if (has_suffix(file, ".json"))
		tg_json_parse(&docs, data, len, file, ld->problems);
	else
		tg_yaml_parse_budgeted(&docs, &ld->budget, data, len, file, ld->problems);
	for (i = 0; i < docs.len; i++)
		handle_doc(ld, file, &docs.items[i], fam, may_subst);
	tg_docs_release(&docs);
}

/* ------------------------------------------------------------------ */
/* Files below the root, without following links.                     */

#define LINK_REFUSED "links are not followed: they could point outside the repository"

static int is_link_at(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

/*
 * Opens rel below dirfd, one component at a time, refusing symbolic links
 * and "..": a directory when want_dir, else anything that is not a link
 * (the caller checks that it is a regular file; O_NONBLOCK keeps a FIFO from
 * blocking the open).  Returns a descriptor, or a negative code with the
 * reason in err: TG_ENOTFOUND when something is missing, TG_EINVALID for a
 * link or "..", TG_ERROR otherwise.  shown prefixes rel in messages.
 */
static int open_below(int dirfd, const char *rel, int want_dir, const char *shown,
		      struct tg_err *err)
{
	const char *c, *next;
	size_t n, next_n = 0;
	int cur = dirfd, fd, rc = TG_ERROR;
	char *name = NULL;

	c = tg_path_next_component(rel, &n);
	if (!c) {
		if (!want_dir)
			return tg_err_set(err, TG_EINVALID, "not a file");
		fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			return tg_err_set(err, TG_ERROR, "%s", strerror(errno));
		return fd;
	}
	for (; c; c = next, n = next_n) {
		int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY;

		next = tg_path_next_component(c + n, &next_n);
		if (n == 2 && c[0] == '.' && c[1] == '.') {
			rc = tg_err_set(err, TG_EINVALID, "'..' would leave the repository");
			goto fail;
		}
		flags |= next || want_dir ? O_DIRECTORY : O_NONBLOCK;
		name = tg_xstrndup(c, n);
		fd = openat(cur, name, flags);
		if (fd < 0) {
			int e = errno;

			if ((e == ELOOP || e == ENOTDIR || e == EMLINK) && is_link_at(cur, name))
				rc = tg_err_set(err, TG_EINVALID,
						"'%s%.*s' is a symbolic link (%s)", shown,
						(int)(c + n - rel), rel, LINK_REFUSED);
			else
				rc = tg_err_set(err, e == ENOENT ? TG_ENOTFOUND : TG_ERROR, "%s",
						strerror(e));
			goto fail;
		}
		free(name);
		name = NULL;
		if (cur != dirfd)
			close(cur);
		cur = fd;
	}
	return cur;
fail:
	free(name);
	if (cur != dirfd)
		close(cur);
	return rc;
}

/* Reads the regular file open on fd (closed here) into *out; err holds a
 * whole message for the file. */
static int read_fd(int fd, char **out, size_t *out_len, struct tg_err *err)
{
	struct stat st;
	char *data = NULL;
	size_t len = 0, want;
	int rc = TG_ERROR;

	if (fstat(fd, &st) < 0) {
		rc = tg_err_set(err, TG_ERROR, "cannot read file: %s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = tg_err_set(err, TG_EINVALID, "cannot read file: not a regular file");
		goto out;
	}
	if ((unsigned long long)st.st_size > TG_DESIRED_MAX_FILE_SIZE) {
		rc = tg_err_set(err, TG_EINVALID, "file is larger than the %zu MiB limit",
				TG_DESIRED_MAX_FILE_SIZE / (1024 * 1024));
		goto out;
	}
	/* The size checked is the size read: a file that grows is cut there. */
	want = (size_t)st.st_size;
	data = tg_xmalloc(want + 1);
	while (len < want) {
		ssize_t r = read(fd, data + len, want - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = tg_err_set(err, TG_ERROR, "cannot read file: %s", strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	data[len] = '\0';
	*out = data;
	*out_len = len;
	data = NULL;
	rc = 0;
out:
	free(data);
	close(fd);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Files an earlier load read (loadmemo.h).                            */

static void add_size(size_t *total, size_t n)
{
	if (__builtin_add_overflow(*total, n, total))
		*total = SIZE_MAX;
}

/* What rel holds when the load has a memo to reuse files from, else NULL. */
static const char *content_id(const struct loader *ld, const char *rel)
{
	const struct tg_load_opts *o = ld->opts;

	if (!o->memo || !o->content_id || o->keep_positions)
		return NULL;
	return o->content_id(o->content_ctx, rel);
}

/* rel's objects from the memo, counted as reading it would count them;
 * 1 when the memo had them. */
static int take_file(struct loader *ld, const char *rel, const char *id)
{
	char *file;
	size_t bytes = 0, seen = 0;
	int ok;

	if (!id)
		return 0;
	file = tg_xasprintf("%s%s", ld->prefix, rel);
	ok = !tg_loadmemo_take(ld->opts->memo, file, id, ld->d, &bytes, &seen);
	if (ok) {
		ld->n_seen += seen;
		add_size(&ld->ph.input, bytes);
		if (!has_suffix(file, ".json"))
			add_size(&ld->budget.input, bytes);
	}
	free(file);
	return ok;
}

/* Where the load stood before a file: what the file added tells whether
 * the memo may keep it. */
struct mark {
	size_t problems, objects, seen, secrets, expanded;
	int used_vars;
};

static void mark_file(struct loader *ld, struct mark *mk)
{
	mk->problems = ld->problems->len;
	mk->objects = ld->d->len;
	mk->seen = ld->n_seen;
	mk->secrets = ld->d->n_secrets;
	mk->expanded = ld->budget.expanded;
	mk->used_vars = ld->d->used_vars;
	ld->d->used_vars = 0; /* this file's own, below */
}

/* Keeps what the file added, when it depends on the file alone: no
 * problem, no "${" (the environment and secrets count then), nothing drawn
 * from the alias budget (whether that suffices depends on the files before). */
static void record_file(struct loader *ld, const struct mark *mk, const char *file, const char *id,
			size_t len)
{
	int clean = ld->problems->len == mk->problems && !ld->d->used_vars &&
		    ld->d->n_secrets == mk->secrets && ld->budget.expanded == mk->expanded;

	ld->d->used_vars |= mk->used_vars;
	if (clean && id)
		tg_loadmemo_record(ld->opts->memo, file, id, len, ld->n_seen - mk->seen,
				   &ld->d->objects[mk->objects], ld->d->len - mk->objects);
}

/* Reads the file open on fd (closed here), rel relative to the root;
 * problems are reported at the file.  id: what it holds, for the memo. */
static void load_fd(struct loader *ld, int fd, const char *rel, enum tg_family fam, const char *id)
{
	struct tg_err err = { 0, "" };
	char *file = tg_xasprintf("%s%s", ld->prefix, rel), *data = NULL;
	struct mark mk;
	size_t len = 0;

	if (read_fd(fd, &data, &len, &err)) {
		tg_problems_add(ld->problems, TG_SEV_ERROR, file, 0, 0, NULL, "%s", err.msg);
	} else {
		mark_file(ld, &mk);
		load_data(ld, file, data, len, fam);
		record_file(ld, &mk, file, id, len);
	}
	free(data);
	free(file);
}

static void close_cur_dir(struct loader *ld)
{
	if (ld->cur_dir && ld->cur_fd >= 0)
		close(ld->cur_fd);
	free(ld->cur_dir);
	ld->cur_dir = NULL;
	ld->cur_fd = -1;
}

/*
 * open_below(ld->dirfd, rel) for a file, in one openat when rel is in the
 * directory of the file before: that directory stays open (opened by
 * open_below, so without links or ".." on the way) and the file is opened
 * in it with O_NOFOLLOW, as open_below opens a last component.  When that
 * fails, or the name is not a plain one, open_below walks the whole path
 * and words what is wrong exactly as it always has.
 */
static int open_file(struct loader *ld, const char *rel, struct tg_err *err)
{
	const char *slash = strrchr(rel, '/');
	const char *base = slash ? slash + 1 : NULL;
	size_t dlen = slash ? (size_t)(slash - rel) : 0;
	struct tg_err ignored = { 0, "" };
	int fd;

	if (!base || !*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return open_below(ld->dirfd, rel, 0, ld->prefix, err);
	if (!ld->cur_dir || strlen(ld->cur_dir) != dlen || memcmp(ld->cur_dir, rel, dlen)) {
		close_cur_dir(ld);
		ld->cur_dir = tg_xstrndup(rel, dlen);
		ld->cur_fd = open_below(ld->dirfd, ld->cur_dir, 1, ld->prefix, &ignored);
	}
	if (ld->cur_fd >= 0) {
		fd = openat(ld->cur_fd, base,
			    O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (fd >= 0)
			return fd;
	}
	return open_below(ld->dirfd, rel, 0, ld->prefix, err);
}

/* Opens rel without following links and loads it. */
static void load_path(struct loader *ld, const char *rel, enum tg_family fam)
{
	struct tg_err err = { 0, "" };
	const char *id = content_id(ld, rel);
	char *file;
	int fd;

	if (take_file(ld, rel, id))
		return;
	fd = open_file(ld, rel, &err);
	if (fd >= 0) {
		load_fd(ld, fd, rel, fam, id);
		return;
	}
	file = tg_xasprintf("%s%s", ld->prefix, rel);
	tg_problems_add(ld->problems, TG_SEV_ERROR, file, 0, 0, NULL, "cannot read file: %s",
			err.msg);
	free(file);
}

/* A file the manifest lists: opened without following links and loaded. */
static int load_listed(void *ctx, const char *name, enum tg_family fam, struct tg_err *err)
{
	struct loader *ld = ctx;
	const char *id = content_id(ld, name);
	int fd;

	if (take_file(ld, name, id))
		return 0;
	fd = open_file(ld, name, err);
	if (fd < 0)
		return fd;
	load_fd(ld, fd, name, fam, id);
	return 0;
}

struct strvec {
	char **v;
	size_t n, alloc;
};

static void strvec_push(struct strvec *sv, char *s)
{
	if (sv->n == sv->alloc) {
		sv->alloc = sv->alloc ? sv->alloc * 2 : 64;
		sv->v = tg_xreallocarray(sv->v, sv->alloc, sizeof(*sv->v));
	}
	sv->v[sv->n++] = s;
}

static void strvec_release(struct strvec *sv)
{
	size_t i;

	for (i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * What the scan needs of an entry (its type), from readdir's d_type when the
 * file system gives one: no system call per file.  Anything else (DT_UNKNOWN,
 * a device, a FIFO) gets lstat's answer, as every entry once did.
 */
static int entry_stat(int dirfd, const struct dirent *de, struct stat *st)
{
	switch (de->d_type) {
	case DT_REG: st->st_mode = S_IFREG; return 0;
	case DT_DIR: st->st_mode = S_IFDIR; return 0;
	case DT_LNK: st->st_mode = S_IFLNK; return 0;
	default: return fstatat(dirfd, de->d_name, st, AT_SYMLINK_NOFOLLOW);
	}
}

/* Walks the directory open on fd (closed here); rel is its path from the root. */
static void scan_dir(struct loader *ld, int fd, const char *rel, int depth, struct strvec *files)
{
	DIR *dir = NULL;
	struct dirent *de;
	char *shown = tg_xasprintf("%s%s", ld->prefix, rel);

	if (depth > TG_DESIRED_MAX_DIR_DEPTH) {
		tg_problems_add(ld->problems, TG_SEV_WARNING, shown, 0, 0, NULL,
				"directory nested deeper than %d levels is not read",
				TG_DESIRED_MAX_DIR_DEPTH);
		close(fd);
		goto out;
	}
	dir = fdopendir(fd);
	if (!dir) {
		tg_problems_add(ld->problems, TG_SEV_ERROR, shown, 0, 0, NULL,
				"cannot read directory: %s", strerror(errno));
		close(fd);
		goto out;
	}
	while ((de = readdir(dir))) {
		char *child, *child_shown;
		struct stat st;
		int cfd;

		/* ".", "..", and hidden files such as .gitkeep */
		if (de->d_name[0] == '.')
			continue;
		child = tg_xasprintf("%s/%s", rel, de->d_name);
		child_shown = tg_xasprintf("%s%s", ld->prefix, child);
		if (entry_stat(dirfd(dir), de, &st) < 0) {
			tg_problems_add(ld->problems, TG_SEV_ERROR, child_shown, 0, 0, NULL,
					"cannot read file: %s", strerror(errno));
			free(child);
		} else if (S_ISLNK(st.st_mode)) {
			tg_problems_add(ld->problems, TG_SEV_WARNING, child_shown, 0, 0, NULL,
					"ignoring symbolic link");
			free(child);
		} else if (S_ISDIR(st.st_mode)) {
			/* O_NOFOLLOW again: the entry may have changed since fstatat. */
			cfd = openat(dirfd(dir), de->d_name,
				     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (cfd < 0)
				tg_problems_add(ld->problems, TG_SEV_ERROR, child_shown, 0, 0, NULL,
						"cannot read directory: %s", strerror(errno));
			else
				scan_dir(ld, cfd, child, depth + 1, files);
			free(child);
		} else if (S_ISREG(st.st_mode) && known_extension(de->d_name)) {
			strvec_push(files, child);
		} else {
			tg_problems_add(ld->problems, TG_SEV_WARNING, child_shown, 0, 0, NULL,
					"ignoring file: not .json, .yaml or .yml");
			free(child);
		}
		free(child_shown);
	}
out:
	if (dir)
		closedir(dir);
	free(shown);
}

/* apis/ or policies/: missing is fine, a link is not (the repository asked
 * for that directory by its layout). */
static void scan_top(struct loader *ld, const char *name, struct strvec *files)
{
	struct tg_err err = { 0, "" };
	int fd = open_below(ld->dirfd, name, 1, ld->prefix, &err);
	char *shown;

	if (fd >= 0) {
		scan_dir(ld, fd, name, 0, files);
		return;
	}
	if (fd == TG_ENOTFOUND)
		return;
	shown = tg_xasprintf("%s%s", ld->prefix, name);
	tg_problems_add(ld->problems, TG_SEV_ERROR, shown, 0, 0, NULL, "cannot read directory: %s",
			err.msg);
	free(shown);
	if (fd == TG_EINVALID)
		ld->refused = 1;
}

/* ------------------------------------------------------------------ */
/* Checks across objects.                                              */

static void check_duplicates(struct loader *ld)
{
	struct tg_desired *d = ld->d;
	char *dead = NULL;
	size_t i, w;

	if (!d->len)
		return;
	dead = tg_xcalloc(d->len, 1);
	tg_validate_duplicate_ids(d, ld->problems, dead);
	/* Drop second occurrences so that lookups find the first one. */
	for (i = w = 0; i < d->len; i++) {
		if (dead[i])
			tg_object_release(&d->objects[i]);
		else
			d->objects[w++] = d->objects[i];
	}
	d->len = w;
	free(dead);
	tg_validate_listen_paths(d, ld->problems);
}

static void finish(struct loader *ld)
{
	check_duplicates(ld);
	/* Broken files already have problems of their own: only a repository
	 * with nothing in it at all is reported as empty. */
	if (!ld->n_seen && !ld->refused && !ld->opts->allow_empty)
		tg_problems_add(
			ld->problems, TG_SEV_ERROR, NULL, 0, 0, NULL,
			"no apis or policies found (expected files under apis/ and policies/)");
}

static char *make_prefix(const char *root, const char *repo_root)
{
	size_t n, m;

	if (!root || !repo_root)
		return tg_xstrdup("");
	n = strlen(repo_root);
	while (n > 1 && repo_root[n - 1] == '/')
		n--;
	if (strncmp(root, repo_root, n) || root[n] != '/')
		return tg_xstrdup("");
	root += n;
	while (*root == '/')
		root++;
	m = strlen(root);
	while (m > 0 && root[m - 1] == '/')
		m--;
	if (!m)
		return tg_xstrdup("");
	return tg_xasprintf("%.*s/", (int)m, root);
}

static int has_dotdot(const char *p)
{
	const char *c;
	size_t n;

	for (c = tg_path_next_component(p, &n); c; c = tg_path_next_component(c + n, &n))
		if (n == 2 && c[0] == '.' && c[1] == '.')
			return 1;
	return 0;
}

/*
 * The directory to load from: opts->root, trusted and opened as it is, then
 * opts->path below it, which the repository controls.  Returns a descriptor,
 * or a negative code: with err set when loading cannot start, or
 * TG_EINVALID with a problem added when the repository makes the path a
 * link (loading reports that and nothing else).
 */
static int open_load_dir(struct loader *ld, const char *dir, struct tg_err *err)
{
	const struct tg_load_opts *opts = ld->opts;
	struct tg_err ferr = { 0, "" };
	size_t n;
	int top, fd, e;

	top = open(opts->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (top < 0) {
		e = errno;
		if (e == ENOTDIR)
			return tg_err_set(err, TG_ENOTFOUND, "cannot open '%s': not a directory",
					  dir);
		return tg_err_set(err, e == ENOENT ? TG_ENOTFOUND : TG_ERROR,
				  "cannot open '%s': %s", dir, strerror(e));
	}
	if (!opts->path || !tg_path_next_component(opts->path, &n))
		return top;
	if (has_dotdot(opts->path)) {
		close(top);
		return tg_err_set(err, TG_EINVALID,
				  "cannot open '%s': the path must not contain '..'", dir);
	}
	fd = open_below(top, opts->path, 1, "", &ferr);
	close(top);
	if (fd == TG_EINVALID) {
		tg_problems_add(ld->problems, TG_SEV_ERROR, NULL, 0, 0, NULL,
				"cannot open the sync path '%s': %s", opts->path, ferr.msg);
		ld->refused = 1;
		return fd;
	}
	if (fd < 0)
		return tg_err_set(err, fd == TG_ENOTFOUND ? TG_ENOTFOUND : TG_ERROR,
				  "cannot open '%s': %s", dir, ferr.msg);
	return fd;
}

int tg_desired_load(struct tg_desired **out, struct tg_problems *problems,
		    const struct tg_load_opts *opts, struct tg_err *err)
{
	static const char *const dirs[] = { "apis", "policies" };
	struct loader ld;
	struct tg_err ferr = { 0, "" };
	struct strvec files = { NULL, 0, 0 };
	char *data = NULL, *dir = NULL, *shown = NULL;
	size_t len = 0, i;
	int rc = 0, fd;

	*out = NULL;
	memset(&ld, 0, sizeof(ld));
	ld.opts = opts;
	ld.problems = problems;
	ld.cur_fd = -1;
	dir = opts->path && *opts->path ? tg_xasprintf("%s/%s", opts->root, opts->path)
					: tg_xstrdup(opts->root);
	ld.dirfd = open_load_dir(&ld, dir, err);
	if (ld.dirfd < 0 && !ld.refused) {
		rc = ld.dirfd;
		goto out;
	}
	ld.d = tg_xcalloc(1, sizeof(*ld.d));
	ld.ph.opts = opts;
	ld.ph.d = ld.d;
	ld.prefix = make_prefix(dir, opts->repo_root);
	if (ld.refused)
		goto done;

	shown = tg_xasprintf("%s.tyk.json", ld.prefix);
	fd = open_below(ld.dirfd, ".tyk.json", 0, ld.prefix, &ferr);
	if (fd >= 0) {
		if (read_fd(fd, &data, &len, &ferr))
			tg_problems_add(problems, TG_SEV_ERROR, shown, 0, 0, NULL, "%s", ferr.msg);
		else
			tg_manifest_load(problems, shown, data, len, load_listed, &ld);
	} else if (fd != TG_ENOTFOUND) {
		/* Scanning instead would load what the manifest may leave out. */
		tg_problems_add(problems, TG_SEV_ERROR, shown, 0, 0, NULL, "cannot read file: %s",
				ferr.msg);
		ld.refused = fd == TG_EINVALID;
	} else {
		for (i = 0; i < TG_ARRAY_SIZE(dirs); i++)
			scan_top(&ld, dirs[i], &files);
		if (files.n) /* qsort(NULL, 0, ...) is undefined */
			qsort(files.v, files.n, sizeof(*files.v), cmp_str);
		for (i = 0; i < files.n; i++)
			load_path(&ld, files.v[i],
				  !strncmp(files.v[i], "policies/", 9) ? TG_FAMILY_POLICY
								       : TG_FAMILY_API);
	}
done:
	finish(&ld);
	*out = ld.d;
out:
	close_cur_dir(&ld);
	if (ld.dirfd >= 0)
		close(ld.dirfd);
	strvec_release(&files);
	free(data);
	free(shown);
	free(dir);
	free(ld.prefix);
	return rc;
}

int tg_desired_load_buffer(struct tg_desired **out, struct tg_problems *problems,
			   const struct tg_load_opts *opts, const char *file, const char *data,
			   size_t len)
{
	struct loader ld;

	memset(&ld, 0, sizeof(ld));
	ld.opts = opts;
	ld.problems = problems;
	ld.dirfd = -1;
	ld.cur_fd = -1;
	ld.d = tg_xcalloc(1, sizeof(*ld.d));
	ld.ph.opts = opts;
	ld.ph.d = ld.d;
	ld.prefix = tg_xstrdup("");
	load_data(&ld, file, data, len,
		  !strncmp(file, "policies/", 9) ? TG_FAMILY_POLICY : TG_FAMILY_API);
	finish(&ld);
	free(ld.prefix);
	*out = ld.d;
	return 0;
}

void tg_desired_check_refs(const struct tg_desired *d, const char *const *known_api_ids,
			   size_t n_known, struct tg_problems *problems)
{
	tg_validate_refs(d, known_api_ids, n_known, problems);
}

const struct tg_object *tg_desired_find(const struct tg_desired *d, enum tg_kind kind,
					const char *id)
{
	size_t i;

	for (i = 0; d && i < d->len; i++)
		if (d->objects[i].kind == kind && !strcmp(d->objects[i].id, id))
			return &d->objects[i];
	return NULL;
}

void tg_desired_ref(struct tg_desired *d)
{
	d->refs++;
}

void tg_desired_free(struct tg_desired *d)
{
	size_t i;

	if (!d)
		return;
	if (d->refs > 0) {
		d->refs--;
		return;
	}
	for (i = 0; i < d->len; i++)
		tg_object_release(&d->objects[i]);
	free(d->objects);
	for (i = 0; i < d->n_secrets; i++)
		tg_secret_free(d->secrets[i]);
	free(d->secrets);
	free(d);
}
