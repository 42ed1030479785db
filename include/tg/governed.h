/*
 * Governance around one pass (the pass itself is reconcile.c's): the audit
 * event of a commit the guardrail rules refused, the post-apply health
 * check, the apply history, automatic rollback of an unhealthy commit and
 * the rollback pin (history.h).
 *
 * This module implements, of reconcile.h, tg_syncer_run (a pass, its
 * health check, its history entry and any rollback), tg_syncer_pin,
 * tg_syncer_history_json and tg_syncer_remote_changed (which honours the
 * pin).  Below are its calls for the other files behind reconcile.h.
 */
#ifndef TG_GOVERNED_H
#define TG_GOVERNED_H

#include "tg/reconcile.h"

/* Re-reads the sync's apply history from its cache directory (nothing
 * without a repository).  A history that cannot be read is started afresh,
 * with a warning: it records, it does not decide what is safe to apply. */
void tg_governed_load_history(struct tg_syncer *s);

/* Records in the audit trail (when the syncer has one and the pass is not
 * a dry run) that the guardrail rules refused res's commit, naming the
 * rules.  Nothing when no rule refused it. */
void tg_governed_audit_refusal(struct tg_syncer *s, const struct tg_reconcile_opts *opts,
			       struct tg_reconcile_result *res);

#endif
