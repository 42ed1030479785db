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
#include "tg/bitbucket.h"
#include "tg/buf.h"
#include "tg/config.h"
#include "tg/daemon.h"
#include "tg/desired.h"
#include "tg/insights.h"
#include "tg/history.h"
#include "tg/log.h"
#include "tg/notifier.h"
#include "tg/problems.h"
#include "tg/reconcile.h"
#include "tg/report.h"
#include "tg/rules.h"
#include "tg/banned.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_CHANGES = 2, EXIT_USAGE = 2 };

struct cli {
	const char *command;
	const char *config_file;
	const char *format; /* text or json */
	int dry_run, force, help;
	struct tg_config_overrides ov; /* flags laid over the file (also on SIGHUP) */
	char *validate_dir;
	/* report: where the Code Insights report goes (flags > config > Pipelines env) */
	struct {
		const char *sha, *api, *url, *workspace, *project, *slug, *token_file, *email,
			*proxy, *ca_file, *output, *id, *link;
	} rep;
	const char *rollback_to; /* rollback --to */
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
	"  report           validate (and diff) the commit being built and publish it as a\n"
	"                   Bitbucket Code Insights report (exit code as validate/diff)\n"
	"  history          the commits each sync applied, with outcome and health\n"
	"  rollback --to SHA  apply an earlier commit and hold it until a new one arrives\n"
	"  run              the controller: reconcile continuously, serve HTTP\n"
	"  version          print the version\n"
	"\n"
	"options:\n"
	"  -c, --config FILE       configuration file (YAML); validate takes the\n"
	"                          rules and path of the sync it names from it\n"
	"  -s, --sync NAME         only this sync\n"
	"      --format text|json  output format\n"
	"      --dry-run           plan only, change nothing\n"
	"      --force             apply even past max_delete and max_changes\n"
	"      --to SHA            rollback: the commit to apply (or a prefix in the history)\n"
	"      --dir DIR           use a local directory instead of git\n"
	"  single-sync flags (override the file):\n"
	"      --name NAME --repo URL --branch B | --tag T | --commit SHA --path P\n"
	"      --gateway URL --secret-file FILE --cache-dir DIR --secrets-dir DIR\n"
	"      --adopt --no-prune --allow-empty --audit FILE|-\n"
	"      --log-format json|text --log-level debug|info|warn|error\n"
	"  report (defaults from Bitbucket Pipelines' environment and the sync's bitbucket:):\n"
	"      --sha SHA (BITBUCKET_COMMIT) --report-id ID --link URL\n"
	"      --api cloud|datacenter --bitbucket-url URL --workspace W (BITBUCKET_WORKSPACE)\n"
	"      --project KEY --repo-slug S (BITBUCKET_REPO_SLUG) --token-file FILE --email E\n"
	"      --proxy URL (in Pipelines: http://localhost:29418, no token) --ca-file FILE\n"
	"      --format markdown --output FILE  also write a pull-request comment summary\n"
	"  leader election (run; enable with leader_election.enabled):\n"
	"      --kube-api URL --kube-token-file FILE --kube-ca-file FILE\n"
	"      --lease-identity ID --advertise-url URL\n"
	"  -h, --help              this help\n";

static int usage(FILE *f, int code)
{
	fputs(usage_text, f);
	return code;
}

static int known_command(const char *command)
{
	static const char *const commands[] = {
		"validate", "diff", "sync",   "status",  "run",
		"version",  "help", "report", "history", "rollback"
	};

	for (size_t i = 0; i < TG_ARRAY_SIZE(commands); i++)
		if (!strcmp(command, commands[i]))
			return 1;
	return 0;
}

static int parse_args(struct cli *cli, int argc, char **argv)
{
	enum {
		O_FORMAT = 256,
		O_DRY,
		O_FORCE,
		O_DIR,
		O_NAME,
		O_REPO,
		O_BRANCH,
		O_TAG,
		O_COMMIT,
		O_PATH,
		O_GATEWAY,
		O_SECRET,
		O_CACHE,
		O_SECRETS,
		O_ADOPT,
		O_NOPRUNE,
		O_EMPTY,
		O_AUDIT,
		O_LOGF,
		O_LOGL,
		O_SHA,
		O_API,
		O_BBURL,
		O_WS,
		O_PROJECT,
		O_SLUG,
		O_TOKEN,
		O_EMAIL,
		O_PROXY,
		O_CA,
		O_OUTPUT,
		O_RID,
		O_LINK,
		O_KAPI,
		O_KTOKEN,
		O_KCA,
		O_LID,
		O_ADDR,
		O_TO
	};
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "sync", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "format", required_argument, NULL, O_FORMAT },
		{ "dry-run", no_argument, NULL, O_DRY },
		{ "force", no_argument, NULL, O_FORCE },
		{ "dir", required_argument, NULL, O_DIR },
		{ "name", required_argument, NULL, O_NAME },
		{ "repo", required_argument, NULL, O_REPO },
		{ "branch", required_argument, NULL, O_BRANCH },
		{ "tag", required_argument, NULL, O_TAG },
		{ "commit", required_argument, NULL, O_COMMIT },
		{ "path", required_argument, NULL, O_PATH },
		{ "gateway", required_argument, NULL, O_GATEWAY },
		{ "secret-file", required_argument, NULL, O_SECRET },
		{ "cache-dir", required_argument, NULL, O_CACHE },
		{ "secrets-dir", required_argument, NULL, O_SECRETS },
		{ "adopt", no_argument, NULL, O_ADOPT },
		{ "no-prune", no_argument, NULL, O_NOPRUNE },
		{ "allow-empty", no_argument, NULL, O_EMPTY },
		{ "audit", required_argument, NULL, O_AUDIT },
		{ "log-format", required_argument, NULL, O_LOGF },
		{ "log-level", required_argument, NULL, O_LOGL },
		{ "sha", required_argument, NULL, O_SHA },
		{ "api", required_argument, NULL, O_API },
		{ "bitbucket-url", required_argument, NULL, O_BBURL },
		{ "workspace", required_argument, NULL, O_WS },
		{ "project", required_argument, NULL, O_PROJECT },
		{ "repo-slug", required_argument, NULL, O_SLUG },
		{ "token-file", required_argument, NULL, O_TOKEN },
		{ "email", required_argument, NULL, O_EMAIL },
		{ "proxy", required_argument, NULL, O_PROXY },
		{ "ca-file", required_argument, NULL, O_CA },
		{ "output", required_argument, NULL, O_OUTPUT },
		{ "report-id", required_argument, NULL, O_RID },
		{ "link", required_argument, NULL, O_LINK },
		{ "kube-api", required_argument, NULL, O_KAPI },
		{ "kube-token-file", required_argument, NULL, O_KTOKEN },
		{ "kube-ca-file", required_argument, NULL, O_KCA },
		{ "lease-identity", required_argument, NULL, O_LID },
		{ "advertise-url", required_argument, NULL, O_ADDR },
		{ "to", required_argument, NULL, O_TO },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:s:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': cli->config_file = optarg; break;
		case 's': cli->ov.sync = optarg; break;
		case 'h': cli->help = 1; break;
		case O_FORMAT: cli->format = optarg; break;
		case O_DRY: cli->dry_run = 1; break;
		case O_FORCE: cli->force = 1; break;
		case O_DIR: cli->ov.local_dir = optarg; break;
		case O_NAME: cli->ov.name = optarg; break;
		case O_REPO: cli->ov.repo = optarg; break;
		case O_BRANCH: cli->ov.branch = optarg; break;
		case O_TAG: cli->ov.tag = optarg; break;
		case O_COMMIT: cli->ov.commit = optarg; break;
		case O_PATH: cli->ov.path = optarg; break;
		case O_GATEWAY: cli->ov.gateway = optarg; break;
		case O_SECRET: cli->ov.secret_file = optarg; break;
		case O_CACHE: cli->ov.cache_dir = optarg; break;
		case O_SECRETS: cli->ov.secrets_dir = optarg; break;
		case O_ADOPT: cli->ov.adopt = 1; break;
		case O_NOPRUNE: cli->ov.no_prune = 1; break;
		case O_EMPTY: cli->ov.allow_empty = 1; break;
		case O_AUDIT: cli->ov.audit = optarg; break;
		case O_LOGF: cli->ov.log_format = optarg; break;
		case O_LOGL: cli->ov.log_level = optarg; break;
		case O_SHA: cli->rep.sha = optarg; break;
		case O_API: cli->rep.api = optarg; break;
		case O_BBURL: cli->rep.url = optarg; break;
		case O_WS: cli->rep.workspace = optarg; break;
		case O_PROJECT: cli->rep.project = optarg; break;
		case O_SLUG: cli->rep.slug = optarg; break;
		case O_TOKEN: cli->rep.token_file = optarg; break;
		case O_EMAIL: cli->rep.email = optarg; break;
		case O_PROXY: cli->rep.proxy = optarg; break;
		case O_CA: cli->rep.ca_file = optarg; break;
		case O_OUTPUT: cli->rep.output = optarg; break;
		case O_RID: cli->rep.id = optarg; break;
		case O_LINK: cli->rep.link = optarg; break;
		case O_KAPI: cli->ov.kube_api = optarg; break;
		case O_KTOKEN: cli->ov.kube_token_file = optarg; break;
		case O_KCA: cli->ov.kube_ca_file = optarg; break;
		case O_LID: cli->ov.lease_identity = optarg; break;
		case O_ADDR: cli->ov.advertise_url = optarg; break;
		case O_TO: cli->rollback_to = optarg; break;
		default: return usage(stderr, EXIT_FAIL);
		}
	}
	if (optind >= argc)
		return cli->help ? usage(stdout, -2) : usage(stderr, EXIT_FAIL);
	cli->command = argv[optind++];
	if (!known_command(cli->command)) {
		fprintf(stderr, "tyk-gitops: unknown command '%s'\n", cli->command);
		return usage(stderr, EXIT_USAGE);
	}
	if (cli->help)
		return usage(stdout, -2);
	if (optind < argc && !strcmp(cli->command, "validate"))
		cli->validate_dir = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "tyk-gitops: unexpected argument '%s'\n", argv[optind]);
		return EXIT_FAIL;
	}
	if (!strcmp(cli->command, "rollback") && !cli->rollback_to) {
		fprintf(stderr, "tyk-gitops: rollback needs --to SHA\n");
		return EXIT_FAIL;
	}
	if (cli->format && !strcmp(cli->command, "report")) {
		if (strcmp(cli->format, "text") && strcmp(cli->format, "markdown")) {
			fprintf(stderr, "tyk-gitops: report --format must be text or markdown\n");
			return EXIT_FAIL;
		}
	} else if (cli->format && strcmp(cli->format, "text") && strcmp(cli->format, "json")) {
		fprintf(stderr, "tyk-gitops: --format must be text or json\n");
		return EXIT_FAIL;
	}
	if (cli->rep.api && strcmp(cli->rep.api, "cloud") && strcmp(cli->rep.api, "datacenter")) {
		fprintf(stderr, "tyk-gitops: --api must be cloud or datacenter\n");
		return EXIT_FAIL;
	}
	return 0;
}

/* File first, then flags (tg_config_build); then logging as configured. */
static int build_config(struct tg_config **out, const struct cli *cli)
{
	struct tg_problems problems;
	struct tg_err err = { 0, "" };
	struct tg_buf text = TG_BUF_INIT;
	int rc;

	tg_problems_init(&problems);
	rc = tg_config_build(out, cli->config_file, &cli->ov, &problems, &err);
	if (rc) {
		tg_problems_format_text(&problems, &text);
		fprintf(stderr, "tyk-gitops: %s\n%s", err.msg, tg_buf_cstr(&text));
	} else {
		tg_log_setup((*out)->log_level, (*out)->log_format);
	}
	tg_buf_release(&text);
	tg_problems_release(&problems);
	return rc;
}

static int cmd_version(void)
{
	printf("tyk-gitops %s (libgit2 %s, %s)\n", TG_VERSION, LIBGIT2_VERSION, curl_version());
	return EXIT_OK;
}

/*
 * validate --config FILE [--sync NAME]: the sync's rules, path, secrets
 * directory and allow_empty come from the file (flags still win), so a
 * pull request is checked against the rules the controller will apply.
 * Only the file is read: no repository, gateway or secret is needed.
 */
static int validate_sync(struct tg_config **cfg, const struct tg_sync_config **sc,
			 const struct cli *cli)
{
	struct tg_problems problems;
	struct tg_err err = { 0, "" };
	struct tg_buf text = TG_BUF_INIT;
	int rc = 0;

	*cfg = NULL;
	*sc = NULL;
	if (!cli->config_file)
		return 0;
	tg_problems_init(&problems);
	if (tg_config_load(cfg, cli->config_file, &problems, &err)) {
		tg_problems_format_text(&problems, &text);
		fprintf(stderr, "tyk-gitops: %s\n%s", err.msg, tg_buf_cstr(&text));
		rc = -1;
	} else if (cli->ov.sync) {
		*sc = tg_config_find_sync(*cfg, cli->ov.sync);
		if (!*sc) {
			fprintf(stderr, "tyk-gitops: no sync named '%s' in '%s'\n", cli->ov.sync,
				cli->config_file);
			rc = -1;
		}
	} else if ((*cfg)->n_syncs == 1) {
		*sc = &(*cfg)->syncs[0];
	} else {
		fprintf(stderr, "tyk-gitops: '%s' has %zu syncs: name one with --sync\n",
			cli->config_file, (*cfg)->n_syncs);
		rc = -1;
	}
	tg_buf_release(&text);
	tg_problems_release(&problems);
	return rc;
}

static int cmd_validate(const struct cli *cli)
{
	struct tg_problems problems;
	struct tg_load_opts opts = { 0 };
	struct tg_desired *d = NULL;
	struct tg_err err = { 0, "" };
	struct tg_buf out = TG_BUF_INIT;
	struct tg_config *cfg = NULL;
	const struct tg_sync_config *sc = NULL;
	int json = cli->format && !strcmp(cli->format, "json");
	int rc;

	if (validate_sync(&cfg, &sc, cli)) {
		tg_config_free(cfg);
		return EXIT_FAIL;
	}
	tg_problems_init(&problems);
	opts.root = cli->validate_dir ? cli->validate_dir : ".";
	opts.secrets_dir = cli->ov.secrets_dir;
	opts.allow_empty = cli->ov.allow_empty;
	if (sc) {
		opts.path = cli->ov.path ? cli->ov.path : sc->path;
		if (!opts.secrets_dir)
			opts.secrets_dir = sc->secrets_dir;
		opts.allow_empty |= sc->allow_empty;
		opts.keep_positions = sc->rules != NULL;
	} else {
		opts.path = cli->ov.path;
	}
	rc = tg_desired_load(&d, &problems, &opts, &err);
	if (rc) {
		fprintf(stderr, "tyk-gitops: %s\n", err.msg);
		tg_problems_release(&problems);
		tg_config_free(cfg);
		return EXIT_FAIL;
	}
	tg_desired_check_refs(d, NULL, 0, &problems);
	/* max_changes needs a plan against the gateway: diff checks it. */
	tg_rules_check(sc ? sc->rules : NULL, d, &problems);
	tg_problems_redact(&problems, (const char *const *)d->secrets, d->n_secrets);
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
	tg_config_free(cfg);
	return rc;
}

/* diff and sync: one pass per selected sync. */
static int cmd_pass(const struct cli *cli, struct tg_config *cfg)
{
	int json = cli->format && !strcmp(cli->format, "json");
	int is_diff = !strcmp(cli->command, "diff");
	int is_rollback = !strcmp(cli->command, "rollback");
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
		struct tg_report_ctx ctx = { 0 };
		struct tg_reconcile_result res;
		struct tg_syncer *s = NULL;
		struct tg_err err = { 0, "" };

		if (cli->ov.sync && strcmp(cli->ov.sync, sc->name))
			continue;
		if (is_rollback && !cli->ov.sync && cfg->n_syncs > 1) {
			fprintf(stderr,
				"tyk-gitops: rollback needs --sync NAME when there are several syncs\n");
			worst = EXIT_FAIL;
			break;
		}
		ran++;
		if (tg_syncer_new(&s, sc, cfg->cache_dir, &err)) {
			fprintf(stderr, "tyk-gitops: sync '%s': %s\n", sc->name, err.msg);
			worst = EXIT_FAIL;
			continue;
		}
		tg_syncer_set_audit(s, audit);
		/* A suspended sync neither applies nor prunes: it only plans. */
		opts.dry_run = is_diff || cli->dry_run || sc->suspended;
		opts.force = cli->force;
		opts.trigger = is_rollback ? "rollback" : "cli";
		opts.rollback_to = is_rollback ? cli->rollback_to : NULL;
		opts.local_dir = cli->ov.local_dir;
		ctx.sync = sc->name;
		ctx.trigger = opts.trigger;
		ctx.started_wall_ms = tg_wall_ms();
		ctx.plan_only = opts.dry_run;
		tg_syncer_run(s, &opts, &res);
		if (json)
			cJSON_AddItemToArray(all, tg_report_json(&ctx, &res));
		else
			tg_report_text(stdout, stderr, &ctx, &res);
		if (res.outcome != TG_OUTCOME_SUCCESS)
			worst = EXIT_FAIL;
		else if (is_diff && tg_report_has_changes(&res) && worst == EXIT_OK)
			worst = EXIT_CHANGES;
		tg_reconcile_result_release(&res);
		tg_syncer_free(s);
	}
	if (!ran && worst == EXIT_OK) {
		fprintf(stderr, "tyk-gitops: no sync named '%s'\n", cli->ov.sync);
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
	opts.local_dir = cli->ov.local_dir;
	tg_syncer_run(s, &opts, &res);
	if (res.outcome != TG_OUTCOME_SUCCESS)
		fprintf(stderr, "tyk-gitops: sync '%s': %s\n", sc->name, res.error);
	if (json_out)
		tg_report_status_json(json_out, sc->name, &res);
	else
		tg_report_status_text(stdout, sc->name, &res);
	tg_reconcile_result_release(&res);
}

static int cmd_status(const struct cli *cli, struct tg_config *cfg)
{
	int json = cli->format && !strcmp(cli->format, "json");
	cJSON *all = json ? cJSON_CreateArray() : NULL;
	int rc = EXIT_OK;

	if (!json)
		tg_report_status_header(stdout);
	for (size_t i = 0; i < cfg->n_syncs; i++) {
		struct tg_syncer *s = NULL;
		struct tg_err err = { 0, "" };

		if (cli->ov.sync && strcmp(cli->ov.sync, cfg->syncs[i].name))
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

/* --- report ------------------------------------------------------------------ */

static const char *flag_env(const char *flag, const char *env)
{
	const char *v = flag ? flag : getenv(env);

	return v && *v ? v : NULL;
}

/*
 * Where the report goes: the sync's `bitbucket:` settings (when a config
 * names one), the flags over them, and Bitbucket Pipelines' environment
 * for what is still missing.  sc is borrowed, nothing here is freed.
 */
static int report_target(struct tg_bb_target *t, const struct cli *cli,
			 const struct tg_sync_config *sc, struct tg_err *err)
{
	struct tg_sync_config c;
	int rc;

	if (sc)
		c = *sc;
	else
		memset(&c, 0, sizeof(c));
#define OVER(field, value)                         \
	do {                                       \
		if (value)                         \
			c.field = (char *)(value); \
	} while (0)
	OVER(bb_api, cli->rep.api);
	OVER(bb_url, cli->rep.url);
	OVER(bb_workspace, cli->rep.workspace);
	OVER(bb_project, cli->rep.project);
	OVER(bb_repo_slug, cli->rep.slug);
	OVER(bb_token_file, cli->rep.token_file);
	OVER(bb_email, cli->rep.email);
	OVER(bb_proxy, cli->rep.proxy);
	OVER(bb_ca_file, cli->rep.ca_file);
	/* In a Pipelines step the repository is Cloud and named by these. */
	if (!c.bb_workspace && !c.bb_project && getenv("BITBUCKET_WORKSPACE")) {
		OVER(bb_workspace, flag_env(NULL, "BITBUCKET_WORKSPACE"));
		if (!c.bb_api)
			c.bb_api = (char *)"cloud";
	}
	if (!c.bb_repo_slug)
		OVER(bb_repo_slug, flag_env(NULL, "BITBUCKET_REPO_SLUG"));
#undef OVER
	rc = tg_bb_target_resolve(t, &c, err);
	/* Pipelines' local proxy takes plain http to api.bitbucket.org and
	 * adds the step's credentials itself (Atlassian's Code Insights
	 * guide): no token travels in the step. */
	if (!rc && t->proxy && t->api == TG_BB_CLOUD &&
	    !strcmp(t->base_url, "https://api.bitbucket.org")) {
		free(t->base_url);
		t->base_url = tg_xstrdup("http://api.bitbucket.org");
	}
	return rc;
}

static int bb_call(void *curl, const struct tg_bb_target *t, const char *token, const char *method,
		   const char *url, const cJSON *doc, int ok_404)
{
	struct tg_bb_reply rep;
	char *body = doc ? cJSON_PrintUnformatted(doc) : NULL;
	char msg[256] = "";
	int rc = 0;

	if (tg_bb_send(curl, t, token, method, url, body, &rep, NULL)) {
		fprintf(stderr, "tyk-gitops: report: %s %s: %s\n", method, url, rep.error);
		rc = -1;
	} else if (!(rep.http >= 200 && rep.http < 300) && !(ok_404 && rep.http == 404)) {
		tg_bb_reply_error(msg, sizeof(msg), rep.body, rep.len);
		fprintf(stderr, "tyk-gitops: report: %s %s: HTTP %ld%s%s\n", method, url, rep.http,
			msg[0] ? ": " : "", msg);
		rc = -1;
	}
	tg_bb_reply_release(&rep);
	free(body);
	return rc;
}

/* DELETE (a rerun replaces the report and all its annotations), PUT the
 * report, POST the annotations in batches. */
static int publish_report(const struct tg_bb_target *t, const char *sha, const char *id,
			  const struct tg_insights *ins)
{
	struct tg_err err = { 0, "" };
	char *token = NULL, *rurl = tg_insights_report_url(t, sha, id),
	     *aurl = tg_insights_annotations_url(t, sha, id);
	void *curl = curl_easy_init();
	int rc = -1;

	if (t->token_file && tg_read_secret_file(&token, t->token_file, &err)) {
		fprintf(stderr, "tyk-gitops: report: %s\n", err.msg);
		goto out;
	}
	if (!curl || bb_call(curl, t, token, "DELETE", rurl, NULL, 1) ||
	    bb_call(curl, t, token, "PUT", rurl, ins->report, 0))
		goto out;
	for (size_t i = 0; i < ins->n_batches; i++)
		if (bb_call(curl, t, token, "POST", aurl, ins->batches[i], 0))
			goto out;
	rc = 0;
out:
	if (curl)
		curl_easy_cleanup(curl);
	tg_secret_free(token);
	free(rurl);
	free(aurl);
	return rc;
}

/* validate only: a result with the problems and no plan. */
static int report_validate(struct tg_reconcile_result *res, const struct cli *cli,
			   const struct tg_sync_config *sc)
{
	struct tg_load_opts opts = { 0 };
	struct tg_err err = { 0, "" };

	memset(res, 0, sizeof(*res));
	tg_problems_init(&res->problems);
	opts.root = cli->ov.local_dir ? cli->ov.local_dir : ".";
	opts.path = sc ? sc->path : cli->ov.path;
	if (opts.path && !*opts.path)
		opts.path = NULL;
	opts.secrets_dir = sc ? sc->secrets_dir : cli->ov.secrets_dir;
	opts.allow_empty = sc ? sc->allow_empty : cli->ov.allow_empty;
	opts.keep_positions = sc && sc->rules;
	if (tg_desired_load(&res->desired, &res->problems, &opts, &err)) {
		fprintf(stderr, "tyk-gitops: %s\n", err.msg);
		return -1;
	}
	tg_desired_check_refs(res->desired, NULL, 0, &res->problems);
	/* The sync's guardrails, as validate applies them (max_changes needs
	 * a plan: with a gateway, the pass checks it). */
	tg_rules_check(sc ? sc->rules : NULL, res->desired, &res->problems);
	tg_problems_redact(&res->problems, (const char *const *)res->desired->secrets,
			   res->desired->n_secrets);
	res->outcome = res->problems.errors ? TG_OUTCOME_REFUSED : TG_OUTCOME_SUCCESS;
	if (res->problems.errors)
		snprintf(res->error, sizeof(res->error), "%zu problem(s)", res->problems.errors);
	return 0;
}

static int cmd_report(const struct cli *cli)
{
	struct tg_config *cfg = NULL;
	struct tg_sync_config *sc = NULL;
	struct tg_reconcile_result res;
	struct tg_insights_input in = { 0 };
	struct tg_insights ins = { 0 };
	struct tg_bb_target t = { 0 };
	struct tg_err err = { 0, "" };
	struct tg_syncer *syncer = NULL;
	struct tg_sync_config local; /* sc without its repository: the clone is here */
	const char *sha = flag_env(cli->rep.sha, "BITBUCKET_COMMIT");
	char key[TG_BB_KEY_MAX + 1];
	int gateway = 0, rc = EXIT_FAIL, have_res = 0;

	if (cli->config_file) {
		if (build_config(&cfg, cli))
			return EXIT_FAIL;
		for (size_t i = 0; i < cfg->n_syncs; i++)
			if (!cli->ov.sync || !strcmp(cli->ov.sync, cfg->syncs[i].name))
				sc = sc ? sc : &cfg->syncs[i];
		if (!sc) {
			fprintf(stderr, "tyk-gitops: no sync named '%s'\n",
				cli->ov.sync ? cli->ov.sync : "");
			goto out;
		}
	}
	if (!sha) {
		fprintf(stderr, "tyk-gitops: report needs the commit: --sha or BITBUCKET_COMMIT\n");
		goto out;
	}
	if (report_target(&t, cli, sc, &err)) {
		fprintf(stderr, "tyk-gitops: report: %s\n", err.msg);
		goto out;
	}
	gateway = sc && sc->gateway_url && *sc->gateway_url;
	if (gateway) {
		struct tg_reconcile_opts opts = { 0 };

		/* No git source, so no cache directory: a pipeline's
		 * filesystem may not have one. */
		local = *sc;
		local.repo_url = NULL;
		if (tg_syncer_new(&syncer, &local, cfg->cache_dir, &err)) {
			fprintf(stderr, "tyk-gitops: sync '%s': %s\n", sc->name, err.msg);
			goto out;
		}
		/* The pipeline's clone is the commit being built. */
		opts.dry_run = 1;
		opts.trigger = "cli";
		opts.local_dir = cli->ov.local_dir ? cli->ov.local_dir : ".";
		tg_syncer_run(syncer, &opts, &res);
	} else if (report_validate(&res, cli, sc)) {
		goto out;
	}
	have_res = 1;
	tg_problems_sort(&res.problems);
	tg_bb_status_key(key, sc ? sc->name : "report");
	in.sync = sc ? sc->name : NULL;
	in.link = cli->rep.link;
	in.path = sc ? sc->path : cli->ov.path;
	in.gateway = gateway;
	in.res = &res;
	tg_insights_build(&ins, t.api, &in);
	{
		struct tg_report_ctx ctx = { sc ? sc->name : "report", "cli", tg_wall_ms(), 1, 0 };

		tg_report_text(stdout, stderr, &ctx, &res);
	}
	if (cli->format && !strcmp(cli->format, "markdown")) {
		const char *path = cli->rep.output ? cli->rep.output : "tyk-gitops-report.md";
		struct tg_buf md = TG_BUF_INIT;
		FILE *f = fopen(path, "w");

		tg_insights_markdown(&md, &in, 32 * 1024);
		if (!f || fputs(tg_buf_cstr(&md), f) < 0) {
			fprintf(stderr, "tyk-gitops: cannot write '%s'\n", path);
			if (f)
				fclose(f);
			tg_buf_release(&md);
			goto out;
		}
		fclose(f);
		tg_buf_release(&md);
	}
	if (publish_report(&t, sha, cli->rep.id ? cli->rep.id : key, &ins))
		goto out;
	printf("report: %s, %zu annotation(s)%s on %.12s\n", ins.passed ? "PASSED" : "FAILED",
	       ins.n_annotations, ins.n_annotations < ins.n_found ? " (cut)" : "", sha);
	if (res.outcome != TG_OUTCOME_SUCCESS || res.problems.errors)
		rc = EXIT_FAIL;
	else if (gateway && tg_report_has_changes(&res))
		rc = EXIT_CHANGES;
	else
		rc = EXIT_OK;
out:
	tg_insights_release(&ins);
	if (have_res)
		tg_reconcile_result_release(&res);
	tg_syncer_free(syncer);
	tg_bb_target_release(&t);
	tg_config_free(cfg);
	return rc;
}

/* history: read from each sync's cache directory; no git or gateway. */
static int cmd_history(const struct cli *cli, struct tg_config *cfg)
{
	int json = cli->format && !strcmp(cli->format, "json");
	cJSON *all = json ? cJSON_CreateArray() : NULL;
	int rc = EXIT_OK, ran = 0;

	if (!json)
		printf("%-10s %-24s %-12s %-8s %-8s %-9s %-8s %-10s %s\n", "SYNC", "TIME", "COMMIT",
		       "KIND", "OUTCOME", "HEALTH", "TRIGGER", "FROM", "AUTHOR / SUMMARY");
	for (size_t i = 0; i < cfg->n_syncs; i++) {
		const struct tg_sync_config *sc = &cfg->syncs[i];
		struct tg_history h;
		struct tg_err err = { 0, "" };
		char *path;

		if (cli->ov.sync && strcmp(cli->ov.sync, sc->name))
			continue;
		ran++;
		tg_history_init(&h);
		path = tg_xasprintf("%s/%s/history.json", cfg->cache_dir, sc->name);
		if (tg_history_load(&h, path, &err)) {
			fprintf(stderr, "tyk-gitops: sync '%s': %s\n", sc->name, err.msg);
			rc = EXIT_FAIL;
		} else if (json) {
			cJSON *o = tg_history_json(&h, TG_HISTORY_MAX);

			cJSON_AddStringToObject(o, "sync", sc->name);
			cJSON_AddItemToArray(all, o);
		} else {
			for (size_t k = h.len; k-- > 0;) {
				const struct tg_history_entry *e = &h.items[k];
				char when[TG_TIME_MAX];
				char *who = tg_printable(e->author ? e->author : "");
				char *what = tg_printable(e->summary ? e->summary : "");

				tg_rfc3339(when, e->wall_ms, 0);
				printf("%-10s %-24s %-12.12s %-8s %-8s %-9s %-8s %-10.10s %s: %s%s\n",
				       sc->name, when, e->commit, e->kind, e->outcome, e->health,
				       e->trigger ? e->trigger : "",
				       e->from_commit[0] ? e->from_commit : "-", who, what,
				       e->rolled_back ? " [rolled back]" : "");
				free(who);
				free(what);
			}
			if (h.pin[0])
				printf("%-10s pinned at %.12s until the ref moves past %.12s\n",
				       sc->name, h.pin, h.pin_head);
		}
		tg_history_release(&h);
		free(path);
	}
	if (!ran) {
		fprintf(stderr, "tyk-gitops: no sync named '%s'\n", cli->ov.sync);
		rc = EXIT_FAIL;
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
	/* Library-wide initialisation, once, before anything else runs.
	 * cJSON allocates through tg_xmalloc, so out-of-memory is handled
	 * one way everywhere: a log line and abort. */
	cJSON_InitHooks(&(cJSON_Hooks){ tg_xmalloc, free });
	curl_global_init(CURL_GLOBAL_DEFAULT);
	git_libgit2_init();
	if (!strcmp(cli.command, "report"))
		rc = cmd_report(&cli);
	else if (build_config(&cfg, &cli))
		rc = EXIT_FAIL;
	else if (!strcmp(cli.command, "status"))
		rc = cmd_status(&cli, cfg);
	else if (!strcmp(cli.command, "history"))
		rc = cmd_history(&cli, cfg);
	else if (!strcmp(cli.command, "run"))
		rc = tg_daemon_run(cfg, cli.config_file, &cli.ov) ? EXIT_FAIL : EXIT_OK;
	else
		rc = cmd_pass(&cli, cfg);
	tg_config_free(cfg);
	git_libgit2_shutdown();
	curl_global_cleanup();
	return rc;
}
