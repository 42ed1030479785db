/*
 * tyk-gitops: command line entry point.
 *
 * Data flow: config -> git source -> desired state -> gateway client ->
 * plan/diff -> apply -> report.  Each command builds a configuration (file,
 * then flags on top), then drives one or more syncers.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <git2.h>

#include "tg/audit.h"
#include "tg/buf.h"
#include "tg/config.h"
#include "tg/daemon.h"
#include "tg/desired.h"
#include "tg/log.h"
#include "tg/marker.h"
#include "tg/problems.h"
#include "tg/reconcile.h"
#include "tg/banned.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_CHANGES = 2 };

struct cli {
	const char *command;
	const char *config_file;
	const char *sync_name;
	const char *format;      /* text or json */
	const char *local_dir;
	int dry_run, force;
	/* single-sync flags, applied over the file */
	const char *name, *repo, *branch, *tag, *commit, *path, *gateway, *secret_file;
	const char *cache_dir, *secrets_dir, *audit, *log_format, *log_level;
	int adopt, no_prune, allow_empty;
	char *validate_dir;
};

static const char usage_text[] =
	"usage: tyk-gitops <command> [options]\n"
	"\n"
	"Make a Tyk Gateway's APIs and policies match a git repository.\n"
	"\n"
	"commands:\n"
	"  validate [DIR]   check a config repository offline (exit 1 on problems)\n"
	"  diff             show what a sync would change (exit 0 in sync, 2 changes, 1 error)\n"
	"  sync             apply one pass (--dry-run: plan only)\n"
	"  status           list every owned object with its commit and state\n"
	"  run              the controller: reconcile continuously, serve HTTP\n"
	"  version          print the version\n"
	"\n"
	"options:\n"
	"  -c, --config FILE       configuration file (YAML)\n"
	"  -s, --sync NAME         only this sync\n"
	"      --format text|json  output format\n"
	"      --dry-run           plan only, change nothing\n"
	"      --force             apply even past max_delete\n"
	"      --dir DIR           use a local directory instead of git\n"
	"  single-sync flags (override the file):\n"
	"      --name NAME --repo URL --branch B | --tag T | --commit SHA --path P\n"
	"      --gateway URL --secret-file FILE --cache-dir DIR --secrets-dir DIR\n"
	"      --adopt --no-prune --allow-empty --audit FILE|-\n"
	"      --log-format json|text --log-level debug|info|warn|error\n"
	"  -h, --help              this help\n";

static int usage(FILE *f, int code)
{
	fputs(usage_text, f);
	return code;
}

static int parse_args(struct cli *cli, int argc, char **argv)
{
	enum { O_FORMAT = 256, O_DRY, O_FORCE, O_DIR, O_NAME, O_REPO, O_BRANCH, O_TAG, O_COMMIT, O_PATH,
	       O_GATEWAY, O_SECRET, O_CACHE, O_SECRETS, O_ADOPT, O_NOPRUNE, O_EMPTY, O_AUDIT, O_LOGF,
	       O_LOGL };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' }, { "sync", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' }, { "format", required_argument, NULL, O_FORMAT },
		{ "dry-run", no_argument, NULL, O_DRY }, { "force", no_argument, NULL, O_FORCE },
		{ "dir", required_argument, NULL, O_DIR }, { "name", required_argument, NULL, O_NAME },
		{ "repo", required_argument, NULL, O_REPO }, { "branch", required_argument, NULL, O_BRANCH },
		{ "tag", required_argument, NULL, O_TAG }, { "commit", required_argument, NULL, O_COMMIT },
		{ "path", required_argument, NULL, O_PATH }, { "gateway", required_argument, NULL, O_GATEWAY },
		{ "secret-file", required_argument, NULL, O_SECRET },
		{ "cache-dir", required_argument, NULL, O_CACHE },
		{ "secrets-dir", required_argument, NULL, O_SECRETS },
		{ "adopt", no_argument, NULL, O_ADOPT }, { "no-prune", no_argument, NULL, O_NOPRUNE },
		{ "allow-empty", no_argument, NULL, O_EMPTY }, { "audit", required_argument, NULL, O_AUDIT },
		{ "log-format", required_argument, NULL, O_LOGF },
		{ "log-level", required_argument, NULL, O_LOGL }, { NULL, 0, NULL, 0 }
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:s:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': cli->config_file = optarg; break;
		case 's': cli->sync_name = optarg; break;
		case 'h': return usage(stdout, -2);
		case O_FORMAT: cli->format = optarg; break;
		case O_DRY: cli->dry_run = 1; break;
		case O_FORCE: cli->force = 1; break;
		case O_DIR: cli->local_dir = optarg; break;
		case O_NAME: cli->name = optarg; break;
		case O_REPO: cli->repo = optarg; break;
		case O_BRANCH: cli->branch = optarg; break;
		case O_TAG: cli->tag = optarg; break;
		case O_COMMIT: cli->commit = optarg; break;
		case O_PATH: cli->path = optarg; break;
		case O_GATEWAY: cli->gateway = optarg; break;
		case O_SECRET: cli->secret_file = optarg; break;
		case O_CACHE: cli->cache_dir = optarg; break;
		case O_SECRETS: cli->secrets_dir = optarg; break;
		case O_ADOPT: cli->adopt = 1; break;
		case O_NOPRUNE: cli->no_prune = 1; break;
		case O_EMPTY: cli->allow_empty = 1; break;
		case O_AUDIT: cli->audit = optarg; break;
		case O_LOGF: cli->log_format = optarg; break;
		case O_LOGL: cli->log_level = optarg; break;
		default: return usage(stderr, EXIT_FAIL);
		}
	}
	if (optind >= argc)
		return usage(stderr, EXIT_FAIL);
	cli->command = argv[optind++];
	if (optind < argc && !strcmp(cli->command, "validate"))
		cli->validate_dir = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "tyk-gitops: unexpected argument '%s'\n", argv[optind]);
		return EXIT_FAIL;
	}
	if (cli->format && strcmp(cli->format, "text") && strcmp(cli->format, "json")) {
		fprintf(stderr, "tyk-gitops: --format must be text or json\n");
		return EXIT_FAIL;
	}
	return 0;
}

static void replace(char **dst, const char *src)
{
	if (!src)
		return;
	free(*dst);
	*dst = tg_xstrdup(src);
}

static int single_sync_flags(const struct cli *cli)
{
	return cli->name || cli->repo || cli->branch || cli->tag || cli->commit || cli->path ||
	       cli->gateway || cli->secret_file || cli->secrets_dir || cli->adopt || cli->no_prune ||
	       cli->allow_empty;
}

/* File first, then flags: a flag names one sync (the only one, --sync, or
 * a new one when there is no file). */
static int build_config(struct tg_config **out, const struct cli *cli)
{
	struct tg_problems problems;
	struct tg_err err = { 0, "" };
	struct tg_config *cfg = NULL;
	struct tg_sync_config *s = NULL;
	int rc = 0;

	tg_problems_init(&problems);
	if (cli->config_file) {
		rc = tg_config_load(&cfg, cli->config_file, &problems, &err);
		if (rc) {
			struct tg_buf text = TG_BUF_INIT;

			tg_problems_format_text(&problems, &text);
			fprintf(stderr, "tyk-gitops: %s\n%s", err.msg, tg_buf_cstr(&text));
			tg_buf_release(&text);
			goto out;
		}
	} else {
		cfg = tg_config_new();
	}
	if (cli->cache_dir)
		replace(&cfg->cache_dir, cli->cache_dir);
	else if (!cli->config_file) {
		char *home = getenv("HOME");

		free(cfg->cache_dir);
		cfg->cache_dir = tg_xasprintf("%s/.cache/tyk-gitops/syncs", home ? home : "/tmp");
	}
	replace(&cfg->audit, cli->audit);
	if (cli->log_format && tg_log_parse_format(&cfg->log_format, cli->log_format)) {
		fprintf(stderr, "tyk-gitops: --log-format must be json or text\n");
		rc = TG_EINVALID;
		goto out;
	}
	if (cli->log_level && tg_log_parse_level(&cfg->log_level, cli->log_level)) {
		fprintf(stderr, "tyk-gitops: --log-level must be debug, info, warn or error\n");
		rc = TG_EINVALID;
		goto out;
	}
	if (single_sync_flags(cli)) {
		if (cli->sync_name)
			s = tg_config_find_sync(cfg, cli->sync_name);
		else if (cfg->n_syncs == 1)
			s = &cfg->syncs[0];
		else if (cfg->n_syncs == 0)
			s = tg_config_add_sync(cfg);
		if (!s) {
			fprintf(stderr, "tyk-gitops: flags for one sync need --sync NAME when the file has several\n");
			rc = TG_EINVALID;
			goto out;
		}
		replace(&s->name, cli->name);
		replace(&s->repo_url, cli->repo);
		if (cli->branch || cli->tag || cli->commit) {
			s->ref_type = cli->commit ? TG_REF_COMMIT : cli->tag ? TG_REF_TAG : TG_REF_BRANCH;
			replace(&s->ref, cli->commit ? cli->commit : cli->tag ? cli->tag : cli->branch);
		}
		replace(&s->path, cli->path);
		replace(&s->gateway_url, cli->gateway);
		replace(&s->gateway_secret_file, cli->secret_file);
		replace(&s->secrets_dir, cli->secrets_dir);
		s->adopt |= cli->adopt;
		if (cli->no_prune)
			s->prune = 0;
		s->allow_empty |= cli->allow_empty;
	}
	if (cli->local_dir)
		for (size_t i = 0; i < cfg->n_syncs; i++)
			if (!cfg->syncs[i].repo_url)
				cfg->syncs[i].repo_url = tg_xstrdup(cli->local_dir);
	if (tg_config_check(cfg, &problems)) {
		struct tg_buf text = TG_BUF_INIT;

		tg_problems_format_text(&problems, &text);
		fprintf(stderr, "tyk-gitops: invalid configuration\n%s", tg_buf_cstr(&text));
		tg_buf_release(&text);
		rc = TG_EINVALID;
		goto out;
	}
	tg_log_setup(cfg->log_level, cfg->log_format);
out:
	tg_problems_release(&problems);
	if (rc) {
		tg_config_free(cfg);
		return rc;
	}
	*out = cfg;
	return 0;
}

static int cmd_version(void)
{
	printf("tyk-gitops %s (libgit2 %s, %s)\n", TG_VERSION, LIBGIT2_VERSION, curl_version());
	return EXIT_OK;
}

static int cmd_validate(const struct cli *cli)
{
	struct tg_problems problems;
	struct tg_load_opts opts = { 0 };
	struct tg_desired *d = NULL;
	struct tg_err err = { 0, "" };
	struct tg_buf out = TG_BUF_INIT;
	int json = cli->format && !strcmp(cli->format, "json");
	int rc;

	tg_problems_init(&problems);
	opts.root = cli->validate_dir ? cli->validate_dir : ".";
	opts.secrets_dir = cli->secrets_dir;
	opts.allow_empty = cli->allow_empty;
	rc = tg_desired_load(&d, &problems, &opts, &err);
	if (rc) {
		fprintf(stderr, "tyk-gitops: %s\n", err.msg);
		tg_problems_release(&problems);
		return EXIT_FAIL;
	}
	tg_desired_check_refs(d, NULL, 0, &problems);
	tg_problems_sort(&problems);
	if (json) {
		tg_problems_format_json(&problems, &out);
		printf("%s\n", tg_buf_cstr(&out));
	} else {
		tg_problems_format_text(&problems, &out);
		fputs(tg_buf_cstr(&out), problems.errors ? stderr : stdout);
		if (!problems.errors)
			printf("valid: %zu objects, %zu warnings\n", d->len, problems.len);
		else
			fprintf(stderr, "invalid: %zu errors, %zu warnings\n", problems.errors,
				problems.len - problems.errors);
	}
	rc = problems.errors ? EXIT_FAIL : EXIT_OK;
	tg_buf_release(&out);
	tg_desired_free(d);
	tg_problems_release(&problems);
	return rc;
}

static void print_problems(const struct tg_reconcile_result *res)
{
	struct tg_buf text = TG_BUF_INIT;

	tg_problems_format_text(&res->problems, &text);
	fputs(tg_buf_cstr(&text), stderr);
	tg_buf_release(&text);
}

static void print_item_text(const struct tg_plan_item *it)
{
	static const char *const sign[] = { "=", "+", "~", "-", "!" };

	printf("%s %s '%s'%s%s%s\n", sign[it->action], tg_kind_name(it->kind), it->id,
	       it->desired ? " (" : "", it->desired ? it->desired->file : "", it->desired ? ")" : "");
	if (it->action == TG_ACTION_CONFLICT)
		printf("    exists on the gateway and is not owned by this sync (set adopt: true to take it over)\n");
	if (it->drifted)
		printf("    drifted: changed on the gateway%s\n", it->warn_only ? " (policy warn: left in place)" : "");
	for (size_t c = 0; c < it->changes.len; c++)
		printf("    %s: %s -> %s\n", it->changes.items[c].path,
		       it->changes.items[c].before ? it->changes.items[c].before : "(absent)",
		       it->changes.items[c].after ? it->changes.items[c].after : "(absent)");
}

static cJSON *item_json(const struct tg_plan_item *it)
{
	cJSON *o = cJSON_CreateObject(), *changes = cJSON_AddArrayToObject(o, "changes");

	cJSON_AddStringToObject(o, "kind", tg_kind_name(it->kind));
	cJSON_AddStringToObject(o, "id", it->id);
	cJSON_AddStringToObject(o, "action", tg_action_name(it->action));
	if (it->desired)
		cJSON_AddStringToObject(o, "file", it->desired->file);
	cJSON_AddBoolToObject(o, "drifted", it->drifted);
	for (size_t c = 0; c < it->changes.len; c++) {
		cJSON *ch = cJSON_CreateObject();

		cJSON_AddStringToObject(ch, "path", it->changes.items[c].path);
		cJSON_AddItemToObject(ch, "before", it->changes.items[c].before ?
				      cJSON_Parse(it->changes.items[c].before) : cJSON_CreateNull());
		cJSON_AddItemToObject(ch, "after", it->changes.items[c].after ?
				      cJSON_Parse(it->changes.items[c].after) : cJSON_CreateNull());
		cJSON_AddItemToArray(changes, ch);
	}
	return o;
}

static int plan_has_changes(const struct tg_plan *plan)
{
	return plan->counts[TG_ACTION_CREATE] + plan->counts[TG_ACTION_UPDATE] +
	       plan->counts[TG_ACTION_DELETE] + plan->counts[TG_ACTION_CONFLICT] > 0;
}

static void report_text(const char *command, const char *sync, const struct tg_reconcile_result *res)
{
	char summary[256];

	if (res->outcome == TG_OUTCOME_ERROR || res->outcome == TG_OUTCOME_REFUSED) {
		print_problems(res);
		fprintf(stderr, "tyk-gitops: sync '%s': %s\n", sync, res->error);
		return;
	}
	for (size_t i = 0; i < res->plan.len; i++)
		if (res->plan.items[i].action != TG_ACTION_NONE || res->plan.items[i].drifted)
			print_item_text(&res->plan.items[i]);
	for (size_t i = 0; i < res->n_objects; i++)
		if (res->objects[i].error)
			fprintf(stderr, "tyk-gitops: %s '%s' failed: %s\n", tg_kind_name(res->objects[i].kind),
				res->objects[i].id, res->objects[i].error);
	if (res->outcome == TG_OUTCOME_PARTIAL)
		fprintf(stderr, "tyk-gitops: sync '%s': %s\n", sync, res->error);
	if (!strcmp(command, "sync") && res->n_objects) {
		tg_reconcile_summary(res, summary, sizeof(summary));
		printf("sync '%s' at %.12s: %s\n", sync, res->commit[0] ? res->commit : "(local)", summary);
	} else if (!plan_has_changes(&res->plan)) {
		printf("sync '%s' at %.12s: in sync (%zu objects)\n", sync,
		       res->commit[0] ? res->commit : "(local)", res->plan.counts[TG_ACTION_NONE]);
	} else {
		printf("sync '%s' at %.12s: %zu to create, %zu to update, %zu to delete, %zu conflicts\n",
		       sync, res->commit[0] ? res->commit : "(local)", res->plan.counts[TG_ACTION_CREATE],
		       res->plan.counts[TG_ACTION_UPDATE], res->plan.counts[TG_ACTION_DELETE],
		       res->plan.counts[TG_ACTION_CONFLICT]);
	}
}

static cJSON *report_json(const char *sync, const struct tg_reconcile_result *res)
{
	cJSON *o = cJSON_CreateObject(), *items = NULL, *failures;
	struct tg_buf problems = TG_BUF_INIT;

	cJSON_AddStringToObject(o, "sync", sync);
	cJSON_AddStringToObject(o, "commit", res->commit);
	cJSON_AddStringToObject(o, "outcome", tg_outcome_name(res->outcome));
	if (res->error[0])
		cJSON_AddStringToObject(o, "error", res->error);
	tg_problems_format_json(&res->problems, &problems);
	cJSON_AddItemToObject(o, "validation", cJSON_Parse(tg_buf_cstr(&problems)));
	tg_buf_release(&problems);
	items = cJSON_AddArrayToObject(o, "items");
	for (size_t i = 0; i < res->plan.len; i++)
		cJSON_AddItemToArray(items, item_json(&res->plan.items[i]));
	cJSON_AddNumberToObject(o, "created", (double)res->created);
	cJSON_AddNumberToObject(o, "updated", (double)res->updated);
	cJSON_AddNumberToObject(o, "deleted", (double)res->deleted);
	cJSON_AddNumberToObject(o, "failed", (double)res->failed);
	failures = cJSON_AddArrayToObject(o, "failures");
	for (size_t i = 0; i < res->n_objects; i++)
		if (res->objects[i].error) {
			cJSON *f = cJSON_CreateObject();

			cJSON_AddStringToObject(f, "kind", tg_kind_name(res->objects[i].kind));
			cJSON_AddStringToObject(f, "id", res->objects[i].id);
			cJSON_AddStringToObject(f, "error", res->objects[i].error);
			cJSON_AddItemToArray(failures, f);
		}
	return o;
}

/* diff and sync: one pass per selected sync. */
static int cmd_pass(const struct cli *cli, struct tg_config *cfg)
{
	int json = cli->format && !strcmp(cli->format, "json");
	int is_diff = !strcmp(cli->command, "diff");
	cJSON *all = json ? cJSON_CreateArray() : NULL;
	struct tg_audit *audit = NULL;
	int worst = EXIT_OK, ran = 0;

	/* No change without a record: a sync whose trail cannot be opened
	 * changes nothing. */
	if (cfg->audit && !is_diff && !cli->dry_run) {
		struct tg_err err = { 0, "" };

		if (tg_audit_open(&audit, cfg->audit, &err)) {
			fprintf(stderr, "tyk-gitops: %s; nothing was applied\n", err.msg);
			cJSON_Delete(all);
			return EXIT_FAIL;
		}
	}

	for (size_t i = 0; i < cfg->n_syncs; i++) {
		struct tg_sync_config *sc = &cfg->syncs[i];
		struct tg_reconcile_opts opts = { 0 };
		struct tg_reconcile_result res;
		struct tg_syncer *s = NULL;
		struct tg_err err = { 0, "" };

		if (cli->sync_name && strcmp(cli->sync_name, sc->name))
			continue;
		ran++;
		if (tg_syncer_new(&s, sc, cfg->cache_dir, &err)) {
			fprintf(stderr, "tyk-gitops: sync '%s': %s\n", sc->name, err.msg);
			worst = EXIT_FAIL;
			continue;
		}
		tg_syncer_set_audit(s, audit);
		opts.dry_run = is_diff || cli->dry_run;
		opts.force = cli->force;
		opts.trigger = "cli";
		opts.local_dir = cli->local_dir;
		tg_syncer_run(s, &opts, &res);
		if (json)
			cJSON_AddItemToArray(all, report_json(sc->name, &res));
		else
			report_text(is_diff || cli->dry_run ? "diff" : "sync", sc->name, &res);
		if (res.outcome != TG_OUTCOME_SUCCESS)
			worst = EXIT_FAIL;
		else if (is_diff && plan_has_changes(&res.plan) && worst == EXIT_OK)
			worst = EXIT_CHANGES;
		tg_reconcile_result_release(&res);
		tg_syncer_free(s);
	}
	if (!ran) {
		fprintf(stderr, "tyk-gitops: no sync named '%s'\n", cli->sync_name);
		worst = EXIT_FAIL;
	}
	if (json) {
		char *text = cJSON_Print(all);

		printf("%s\n", text);
		free(text);
		cJSON_Delete(all);
	}
	tg_audit_free(audit);
	return worst;
}

static void status_one(struct tg_syncer *s, const struct tg_sync_config *sc, const struct cli *cli,
		       cJSON *json_out)
{
	struct tg_reconcile_opts opts = { 0 };
	struct tg_reconcile_result res;

	/* A dry run gives both the owned objects and whether each has drifted. */
	opts.dry_run = 1;
	opts.trigger = "cli";
	opts.local_dir = cli->local_dir;
	tg_syncer_run(s, &opts, &res);
	if (res.outcome != TG_OUTCOME_SUCCESS)
		fprintf(stderr, "tyk-gitops: sync '%s': %s\n", sc->name, res.error);
	for (size_t i = 0; i < res.plan.len; i++) {
		const struct tg_plan_item *it = &res.plan.items[i];
		struct tg_marker m = { 0 };
		const char *state;

		if (!it->actual || tg_marker_read(&m, it->kind, it->actual) || !m.sync ||
		    strcmp(m.sync, sc->name)) {
			tg_marker_release(&m);
			continue;
		}
		state = it->action == TG_ACTION_NONE ? "in-sync" :
			it->action == TG_ACTION_DELETE ? "pruned-from-git" :
			it->drifted ? "drifted" : "out-of-date";
		if (json_out) {
			cJSON *o = cJSON_CreateObject();
			const cJSON *name = cJSON_GetObjectItemCaseSensitive(it->actual, "name");

			cJSON_AddStringToObject(o, "sync", sc->name);
			cJSON_AddStringToObject(o, "kind", tg_kind_name(it->kind));
			cJSON_AddStringToObject(o, "id", it->id);
			cJSON_AddStringToObject(o, "name", it->name ? it->name :
						cJSON_IsString(name) ? name->valuestring : "");
			cJSON_AddStringToObject(o, "commit", m.commit ? m.commit : "");
			cJSON_AddStringToObject(o, "file", m.file ? m.file : "");
			cJSON_AddStringToObject(o, "applied_at", m.applied_at ? m.applied_at : "");
			cJSON_AddStringToObject(o, "state", state);
			cJSON_AddItemToArray(json_out, o);
		} else {
			printf("%-8s %-6s %-30s %-12.12s %-40s %s\n", sc->name, tg_kind_name(it->kind), it->id,
			       m.commit ? m.commit : "", m.file ? m.file : "", state);
		}
		tg_marker_release(&m);
	}
	tg_reconcile_result_release(&res);
}

static int cmd_status(const struct cli *cli, struct tg_config *cfg)
{
	int json = cli->format && !strcmp(cli->format, "json");
	cJSON *all = json ? cJSON_CreateArray() : NULL;
	int rc = EXIT_OK;

	if (!json)
		printf("%-8s %-6s %-30s %-12s %-40s %s\n", "SYNC", "KIND", "ID", "COMMIT", "FILE", "STATE");
	for (size_t i = 0; i < cfg->n_syncs; i++) {
		struct tg_syncer *s = NULL;
		struct tg_err err = { 0, "" };

		if (cli->sync_name && strcmp(cli->sync_name, cfg->syncs[i].name))
			continue;
		if (tg_syncer_new(&s, &cfg->syncs[i], cfg->cache_dir, &err)) {
			fprintf(stderr, "tyk-gitops: sync '%s': %s\n", cfg->syncs[i].name, err.msg);
			rc = EXIT_FAIL;
			continue;
		}
		status_one(s, &cfg->syncs[i], cli, all);
		tg_syncer_free(s);
	}
	if (json) {
		char *text = cJSON_Print(all);

		printf("%s\n", text);
		free(text);
		cJSON_Delete(all);
	}
	return rc;
}

int main(int argc, char **argv)
{
	struct cli cli = { 0 };
	struct tg_config *cfg = NULL;
	int rc;

	signal(SIGPIPE, SIG_IGN);
	rc = parse_args(&cli, argc, argv);
	if (rc)
		return rc == -2 ? EXIT_OK : rc;
	if (!strcmp(cli.command, "version"))
		return cmd_version();
	if (!strcmp(cli.command, "help"))
		return usage(stdout, EXIT_OK);
	if (!strcmp(cli.command, "validate"))
		return cmd_validate(&cli);
	if (strcmp(cli.command, "diff") && strcmp(cli.command, "sync") && strcmp(cli.command, "status") &&
	    strcmp(cli.command, "run")) {
		fprintf(stderr, "tyk-gitops: unknown command '%s'\n", cli.command);
		return usage(stderr, EXIT_FAIL);
	}
	/* Library-wide initialisation, once, before anything else runs. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	git_libgit2_init();
	if (build_config(&cfg, &cli))
		rc = EXIT_FAIL;
	else if (!strcmp(cli.command, "status"))
		rc = cmd_status(&cli, cfg);
	else if (!strcmp(cli.command, "run"))
		rc = tg_daemon_run(cfg, cli.config_file) ? EXIT_FAIL : EXIT_OK;
	else
		rc = cmd_pass(&cli, cfg);
	tg_config_free(cfg);
	git_libgit2_shutdown();
	curl_global_cleanup();
	return rc;
}
