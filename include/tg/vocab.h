/*
 * Enumerations the configuration shares with the modules it configures, so
 * that config.h depends on none of them.
 */
#ifndef TG_VOCAB_H
#define TG_VOCAB_H

/* What a sync's ref names (gitsrc). */
enum tg_ref_type { TG_REF_BRANCH, TG_REF_TAG, TG_REF_COMMIT };

/* What a pass does with a hand edit on the gateway (plan). */
enum tg_drift_policy { TG_DRIFT_CORRECT, TG_DRIFT_WARN };

#endif
