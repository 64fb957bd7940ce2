/*
 * vmbc-physpages.h: what the physpages resource shows of itself.
 *
 * Its reclaim state machine (limit, barrier and the operator's reclaims) is
 * private to vmbc-physpages.c, as the seed's bcr_* table kept each resource's
 * policy to itself. The daemon, the control socket, the metrics and the
 * backends read it through these functions, between ticks.
 */
#pragma once

#include <glib.h>

#include "vmbc-beancounter.h"

G_BEGIN_DECLS

typedef enum {
	VMBC_RECLAIM_IDLE,
	VMBC_RECLAIM_BARRIER, /* gentle, toward the barrier */
	VMBC_RECLAIM_LIMIT,   /* hard, until held <= limit */
	VMBC_RECLAIM_MANUAL,  /* an operator's "reclaim DOM SIZE" */
	VMBC_RECLAIM_FAILED,  /* last limit reclaim failed; retried after a pause */
} VmbcReclaimState;

const gchar *vmbc_reclaim_state_to_string(VmbcReclaimState state);

/* Counters of a VM's reclaims, for the control socket and the metrics. */
typedef struct {
	guint64 started; /* limit, barrier-hit and manual */
	guint64 done;	 /* held back within the limit, or the manual size reached */
	guint64 failed;
	guint64 stalls;	      /* limit reclaims failed because the balloon stalled */
	gdouble seconds_last; /* how long the last one that was done took */
} VmbcReclaimCounters;

/* Where @bc's reclaim is; VMBC_RECLAIM_IDLE for a beancounter no engine added. */
VmbcReclaimState vmbc_physpages_get_reclaim(const VmbcBeancounter *bc);

/* Fills @out with @bc's counters; all zero for a beancounter no engine added. */
void vmbc_physpages_get_counters(const VmbcBeancounter *bc, VmbcReclaimCounters *out);

/*
 * Replaces @bc's counters, for a fixture that shows given values without
 * running the reclaims behind them. The state machine is left alone.
 */
void vmbc_physpages_set_counters(VmbcBeancounter *bc, const VmbcReclaimCounters *counters);

G_END_DECLS
