/*
 * vmbc-physpages-private.h: what the two files of the physpages resource share:
 * its per-VM state and the small helpers both use. vmbc-physpages.c holds the
 * limit reclaim and the operator's changes, vmbc-physpages-gentle.c the barrier
 * reclaim and the deflate on guest pressure. Nothing else includes this.
 */
#pragma once

#include "vmbc-engine-private.h"
#include "vmbc-physpages.h"

G_BEGIN_DECLS

/*
 * The reclaim state machine of one beancounter, private to the physpages
 * files (vmbc-physpages.c, vmbc-physpages-gentle.c): others see it through
 * vmbc-physpages.h. Times are monotonic usec.
 */
typedef struct {
	VmbcReclaimState reclaim;
	gint64 reclaim_started;
	gint64 reclaim_progress;  /* the last progress seen */
	gint64 reclaim_best_held; /* lowest held since progress was last seen */
	gint64 reclaim_best_actual;
	gint64 reclaim_start_actual; /* guest size before this limit reclaim (-1 unknown) */
	gint64 reclaim_start_held;   /* held when it started */
	gint64 reclaim_retry_at;     /* when FAILED: when to try again */
	gboolean reclaim_clamped;    /* the target was raised to the guarantee */
	gboolean reclaim_starved;    /* the target was raised to what the guest needs */
	gint64 reclaim_stats_stamp;  /* stats last_update when the target was last set */
	gint64 manual_target;	     /* actual we aim for in a manual reclaim */
	gint64 barrier_last_step;    /* the last gentle step, ours or the host's */
	gint64 deflate_last_step;
	/* the guest's report before its current one (bc->stats), for the trend */
	VmbcGuestStats stats_prev;
	VmbcGuestStats stats_last; /* a copy of the current one, to become stats_prev */
	VmbcReclaimCounters counters;
} VmbcPhyspagesState;

/* Set by physpages_init() for every beancounter the engine added. */
static inline VmbcPhyspagesState *
phys(const VmbcBeancounter *bc)
{
	return bc->res_state[VMBC_RES_PHYSPAGES];
}

/*
 * The smallest balloon change worth a VM exit storm: min-step, or 1/64 of a
 * small guest (a 64 MiB VM over its limit by 1 MiB still needs that 1 MiB).
 */
static inline gint64
min_step(VmbcEngine *engine, VmbcBeancounter *bc)
{
	return MIN(engine->config.min_step_pages, MAX(bc->max_pages / 64, 1));
}

static inline gint64
page_mib(void)
{
	return (gint64)((1 << 20) / vmbc_page_size());
}

static inline gboolean
balloon_unusable(VmbcBeancounter *bc)
{
	return bc->balloon == VMBC_BALLOON_NO_DEVICE || bc->balloon == VMBC_BALLOON_NO_DRIVER;
}

static inline gint64
actual_or_max(VmbcBeancounter *bc)
{
	return bc->balloon_actual >= 0 ? bc->balloon_actual : bc->max_pages;
}

/* The previous balloon step is still under way. */
static inline gboolean
step_in_flight(VmbcEngine *engine, VmbcBeancounter *bc)
{
	return bc->balloon_target >= 0 && bc->balloon_actual >= 0 &&
	       ABS(bc->balloon_actual - bc->balloon_target) > min_step(engine, bc);
}

/* The memory a limit reclaim leaves a guest of @actual pages. */
gint64 vmbc_physpages_guest_reserve(VmbcEngine *engine, gint64 actual);
/* Follows the operator's reclaim, if one runs; TRUE while it does (vmbc_engine_reclaim()). */
gboolean vmbc_physpages_manual_follow(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now);
/* Held is within the limit: a limit reclaim (or a failed one) is over. */
void vmbc_physpages_limit_settled(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now);

/* The table hooks of vmbc-physpages-gentle.c. */
void vmbc_physpages_barrier_hit(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now);
void vmbc_physpages_under_barrier(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now);

G_END_DECLS
