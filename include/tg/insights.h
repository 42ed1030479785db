/*
 * Code Insights: a pass's problems and plan as a Bitbucket report with
 * annotations, and as a pull-request-sized Markdown summary.  Pure: takes
 * a plan-only struct tg_reconcile_result (or problems alone) and returns
 * JSON documents; `tyk-gitops report` sends them.
 *
 * Documented shapes and limits this follows:
 *   Cloud  PUT  /2.0/repositories/{ws}/{slug}/commit/{sha}/reports/{reportId}
 *               {"title","details","report_type","reporter","result":
 *                "PASSED"|"FAILED","data":[{"title","type":"NUMBER","value"}]}
 *          POST …/reports/{reportId}/annotations  [ {"external_id",
 *               "annotation_type":"BUG"|"CODE_SMELL"|"VULNERABILITY","summary",
 *               "details","path","line","severity":"LOW"|"MEDIUM"|"HIGH"|
 *               "CRITICAL","result":"PASSED"|"FAILED"} ]
 *          at most 100 annotations per POST and 1000 per report
 *          (developer.atlassian.com/cloud/bitbucket/rest/api-group-reports/).
 *   DC     PUT  {base}/rest/insights/1.0/projects/{key}/repos/{slug}/commits/{sha}/reports/{key}
 *               {"title","details","result":"PASS"|"FAIL","reporter",
 *                "data":[{"title","type":"NUMBER","value"}]} with at most 6 data
 *          POST …/reports/{key}/annotations {"annotations":[{"externalId",
 *               "path","line","message","severity":"LOW"|"MEDIUM"|"HIGH",
 *               "type":"BUG"|"CODE_SMELL"|"VULNERABILITY"}]}, at most 1000
 *               annotations per report
 *          (developer.atlassian.com/server/bitbucket/how-tos/code-insights/).
 *   Text limits kept for both: title 450, details 2000, annotation summary
 *   450 (Cloud) and message 2000 (DC).
 */
#ifndef TG_INSIGHTS_H
#define TG_INSIGHTS_H

#include <cjson/cJSON.h>

#include "tg/bitbucket.h"
#include "tg/buf.h"
#include "tg/reconcile.h"

#define TG_INSIGHTS_MAX_ANNOTATIONS 1000
#define TG_INSIGHTS_CLOUD_BATCH 100
#define TG_INSIGHTS_DC_BATCH 1000
#define TG_INSIGHTS_TITLE_MAX 450
#define TG_INSIGHTS_DETAILS_MAX 2000
#define TG_INSIGHTS_SUMMARY_MAX 450

struct tg_insights_input {
	const char *sync;                      /* for the title */
	const char *link;                      /* the report's link, or NULL */
	const char *path;                      /* the sync's path in the repository: file names in
	                      problems and the plan are relative to it */
	int gateway;                           /* the plan came from a live gateway (diff ran) */
	const struct tg_reconcile_result *res; /* plan-only result: problems, plan, outcome */
	size_t max_annotations;                /* 0: TG_INSIGHTS_MAX_ANNOTATIONS */
};

struct tg_insights {
	cJSON *report;   /* the report document */
	cJSON **batches; /* annotation request bodies, in order */
	size_t n_batches;
	size_t n_annotations; /* in the batches */
	size_t n_found;       /* every problem and planned change */
	int passed;           /* result PASSED / PASS */
};

/* Builds the report and its annotation batches for api.  Release with
 * tg_insights_release. */
void tg_insights_build(struct tg_insights *out, enum tg_bb_api api,
		       const struct tg_insights_input *in);
void tg_insights_release(struct tg_insights *ins);

/* The report's and its annotations' URLs (report_id is escaped here).
 * Caller frees. */
char *tg_insights_report_url(const struct tg_bb_target *t, const char *sha, const char *report_id);
char *tg_insights_annotations_url(const struct tg_bb_target *t, const char *sha,
				  const char *report_id);

/* The plan as Markdown for a pull-request comment: a headline, the counts,
 * the problems and changes as lists, cut to at most max bytes with a line
 * saying how many were left out. */
void tg_insights_markdown(struct tg_buf *out, const struct tg_insights_input *in, size_t max);

#endif
