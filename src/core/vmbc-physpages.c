/*
 * vmbc-physpages.c: the physpages resource — guest RAM resident on the host.
 *
 * This is where a VM is held to its budget (SPEC §3):
 *  - over the limit: set the balloon so the guest cannot keep more than the
 *    limit minus a margin (never below the guarantee) and follow progress. The
 *    guest's word may make the first step gentler, never the last one (unless
 *    the operator chose to trust it). No progress within reclaim_timeout
 *    counts in failcnt, gives back the inflation that did not lower held,
 *    emits an event and escalates; the reclaim is retried after as long again,
 *    from where the balloon was given back to, so retries never ratchet. A
 *    balloon that moves slower than balloon-stall-rate fails it at once
 *    (balloon_stalled());
 *  - over the barrier: take back gently, at most what the guest says it can
 *    spare, one step a tick;
 *  - well under the barrier with a pressured guest: give memory back, up to the
 *    limit.
 * The seed's bc_phys_change is physpages_change(): lowering the limit below
 * held runs the same reclaim and answers when it finished. The operator's
 * reclaim (physpages_reclaim(), "vmbc reclaim DOM SIZE") is started and
 * followed here too, so that this file alone moves the reclaim state.
 */
#include "vmbc-physpages-private.h"

/* Ends a limit or manual reclaim successfully and answers whoever waited. */
static void
reclaim_done(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now)
{
	VmbcPhyspagesState *ps = phys(bc);
	VmbcParm *parm = &bc->parm[VMBC_RES_PHYSPAGES];
	g_autofree gchar *held = vmbc_engine_fmt(parm->held);
	g_autofree gchar *limit = vmbc_engine_fmt(parm->limit);
	gdouble secs = (gdouble)(now - ps->reclaim_started) / 1e6;

	ps->counters.done++;
	ps->counters.seconds_last = secs;
	if (ps->reclaim == VMBC_RECLAIM_MANUAL) {
		g_autofree gchar *actual = vmbc_engine_fmt(actual_or_max(bc));
		vmbc_engine_emit(engine, VMBC_EVENT_RECLAIM_DONE, bc, VMBC_RES_PHYSPAGES,
				 bc->balloon_target, VMBC_ERROR_FAILED,
				 "'%s': reclaim done in %.1f s, size now %s, held %s", bc->name,
				 secs, actual, held);
	} else {
		vmbc_engine_emit(engine, VMBC_EVENT_RECLAIM_DONE, bc, VMBC_RES_PHYSPAGES,
				 bc->balloon_target, VMBC_ERROR_FAILED,
				 "'%s' physpages: held %s back within limit %s after %.1f s",
				 bc->name, held, limit, secs);
	}
	ps->reclaim = VMBC_RECLAIM_IDLE;
	vmbc_engine_complete_pending(engine, bc, NULL);
}

/* Builds the error that says why held could not be brought under the limit. */
static GError *
limit_error(VmbcEngine *engine, VmbcBeancounter *bc, VmbcError reason)
{
	VmbcPhyspagesState *ps = phys(bc);
	VmbcParm *parm = &bc->parm[VMBC_RES_PHYSPAGES];
	g_autofree gchar *held = vmbc_engine_fmt(parm->held);
	g_autofree gchar *limit = vmbc_engine_fmt(parm->limit);
	g_autofree gchar *guarantee = vmbc_engine_fmt(vmbc_beancounter_guarantee(bc));
	g_autofree gchar *actual = vmbc_engine_fmt(actual_or_max(bc));
	g_autofree gchar *why = NULL;

	switch (reason) {
	case VMBC_ERROR_GUARANTEE:
		why = g_strdup_printf("the guarantee %s keeps the balloon from going lower "
				      "(guest size %s)",
				      guarantee, actual);
		break;
	case VMBC_ERROR_NO_BALLOON:
		why = g_strdup(
			bc->balloon == VMBC_BALLOON_NO_DEVICE
				? "it has no balloon device"
				: "its guest has no balloon driver (the balloon never moved)");
		break;
	case VMBC_ERROR_STALLED: {
		g_autofree gchar *rate = vmbc_engine_fmt(engine->config.balloon_stall_pages);
		g_autofree gchar *moved =
			vmbc_engine_fmt(MAX(ps->reclaim_start_actual - actual_or_max(bc), 0));
		g_autofree gchar *target = vmbc_engine_fmt(MAX(bc->balloon_target, 0));
		why = g_strdup_printf("its balloon stalled: it moved %s since the reclaim "
				      "started, slower than %s a second (guest size %s, "
				      "sent to %s)",
				      moved, rate, actual, target);
		break;
	}
	case VMBC_ERROR_NO_PROGRESS:
	default:
		if (ps->reclaim_starved) {
			g_autofree gchar *avail = vmbc_engine_fmt(MAX(bc->stats.available, 0));
			why = g_strdup_printf("no progress in %.0f s: the guest uses what it has "
					      "(guest size %s, %s available) and ballooning "
					      "further would run it out of memory",
					      (gdouble)engine->config.reclaim_timeout_usec / 1e6,
					      actual, avail);
		} else {
			why = g_strdup_printf("no progress in %.0f s (guest size %s, the guest "
					      "keeps its memory)",
					      (gdouble)engine->config.reclaim_timeout_usec / 1e6,
					      actual);
		}
		break;
	}
	return g_error_new(VMBC_ERROR, reason,
			   "cannot bring '%s' under its physpages limit %s: held %s, and %s",
			   bc->name, limit, held, why);
}

/*
 * A limit reclaim that failed gives back what it took for nothing: of what the
 * balloon took since the reclaim started, only as much as held came down (by
 * at least the MiB that counts as progress) is kept; the rest is let out
 * again, so the guest is back where it was but for what bought the host
 * memory. Also stops a balloon still on its way down. Fills @kept and @given
 * (pages) and returns the size the balloon was sent to, or -1 when it was not
 * sent (no usable balloon, nothing known).
 */
static gint64
give_back(VmbcEngine *engine, VmbcBeancounter *bc, gint64 *kept, gint64 *given)
{
	VmbcPhyspagesState *ps = phys(bc);
	VmbcParm *parm = &bc->parm[VMBC_RES_PHYSPAGES];
	g_autoptr(GError) error = NULL;
	gint64 actual = bc->balloon_actual;
	gint64 inflated, lowered, to;

	*kept = 0;
	*given = 0;
	if (balloon_unusable(bc) || actual < 0 || ps->reclaim_start_actual < 0 ||
	    bc->balloon_target < 0)
		return -1;
	inflated = MAX(ps->reclaim_start_actual - actual, 0);
	lowered = MAX(ps->reclaim_start_held - parm->held, 0);
	/* less than what counts as progress is the sampling's noise, not what the balloon bought */
	if (lowered < page_mib())
		lowered = 0;
	*kept = MIN(lowered, inflated);
	to = ps->reclaim_start_actual - *kept;
	if (to != bc->balloon_target && !vmbc_engine_set_balloon(engine, bc, to, &error)) {
		g_debug("%s", error->message);
		return -1;
	}
	/* the guarantee may have been raised meanwhile: set_balloon clamps to it */
	*given = MAX(bc->balloon_target - actual, 0);
	return bc->balloon_target;
}

/*
 * UBC's failure path: failcnt++, the inflation that bought nothing given back,
 * an event that says what was kept and given back, the escalation, an answer
 * to waiters.
 */
static void
limit_reclaim_fail(VmbcEngine *engine, VmbcBeancounter *bc, VmbcError reason, gint64 now)
{
	VmbcPhyspagesState *ps = phys(bc);
	VmbcParm *parm = &bc->parm[VMBC_RES_PHYSPAGES];
	g_autoptr(GError) error = limit_error(engine, bc, reason);
	g_autoptr(GError) esc_error = NULL;
	g_autofree gchar *what = NULL;
	gint64 kept = 0, given = 0;
	gboolean escalated;
	gint64 to;

	parm->failcnt++;
	ps->counters.failed++;
	to = give_back(engine, bc, &kept, &given);
	if (to >= 0) {
		g_autofree gchar *kept_s = vmbc_engine_fmt(kept);
		g_autofree gchar *given_s = vmbc_engine_fmt(given);
		g_autofree gchar *to_s = vmbc_engine_fmt(to);
		what = g_strdup_printf("; kept %s of the balloon (what held came down by), "
				       "gave %s back: guest size back to %s",
				       kept_s, given_s, to_s);
	}
	ps->reclaim = VMBC_RECLAIM_FAILED;
	ps->reclaim_retry_at = now + engine->config.reclaim_timeout_usec;
	if (reason == VMBC_ERROR_STALLED)
		ps->counters.stalls++;
	/* run first, so that the event can say why nothing holds the VM when none could */
	escalated = vmbc_engine_escalate(engine, bc, &esc_error);
	vmbc_engine_emit(engine, VMBC_EVENT_RECLAIM_FAILED, bc, VMBC_RES_PHYSPAGES,
			 bc->balloon_target, reason, "%s%s%s%s", error->message,
			 what != NULL ? what : "", esc_error != NULL ? "; nothing holds it: " : "",
			 esc_error != NULL ? esc_error->message : "");
	if (escalated)
		vmbc_engine_escalated(engine, bc, reason);
	vmbc_engine_complete_pending(engine, bc, error);
}

/*
 * What a limit reclaim leaves a guest of @actual pages: the configured reserve,
 * or 1/32 of a large guest, but never more than 1/8 of a small one.
 */
gint64
vmbc_physpages_guest_reserve(VmbcEngine *engine, gint64 actual)
{
	return MIN(MAX(engine->config.guest_reserve_pages, actual / 32), actual / 8);
}

/*
 * Whether the guest's last report still describes it: measured no more than
 * VMBC_HELD_HISTORY seconds ago (a few stats intervals: a guest whose driver
 * stopped reporting leaves QEMU showing its last word for ever), and not
 * contradicted by what the host measured since. A guest that claims to use
 * more than the host sees it holding, plus the reserve, is not describing
 * itself, whatever the reason (it under-reports, or it let memory go after
 * it measured); its word then counts for nothing.
 */
static gboolean
stats_current(VmbcEngine *engine, VmbcBeancounter *bc)
{
	const VmbcGuestStats *s = &bc->stats;
	gint64 size, in_use;

	if (s->last_update == 0 || s->available < 0 || bc->balloon_actual <= 0)
		return FALSE;
	if (engine->wall_usec > 0) {
		if (engine->wall_usec / G_USEC_PER_SEC - s->last_update > VMBC_HELD_HISTORY)
			return FALSE;
	} else if (bc->sampled_at - bc->stats_seen_at > VMBC_HELD_HISTORY * G_USEC_PER_SEC) {
		return FALSE;
	}
	size = bc->stats_actual > 0 ? bc->stats_actual : bc->balloon_actual;
	if (s->total > 0)
		size = MIN(size, s->total);
	in_use = size - MIN(s->available, size);
	return in_use <=
	       bc->parm[VMBC_RES_PHYSPAGES].held + vmbc_physpages_guest_reserve(engine, size);
}

/*
 * The guest says it is about to run out while the balloon is still inflating:
 * stop the balloon where it is and give back up to the reserve, at once rather
 * than after the reclaim timeout. Only for a guest the operator trusts
 * (trust-guest): for any other the limit is reached whatever it says. Returns
 * TRUE if it did.
 */
static gboolean
stop_starving(VmbcEngine *engine, VmbcBeancounter *bc)
{
	VmbcPhyspagesState *ps = phys(bc);
	gint64 actual = bc->balloon_actual;
	gint64 reserve, target;
	g_autoptr(GError) error = NULL;

	if (!bc->trust_guest || !stats_current(engine, bc))
		return FALSE;
	if (actual <= 0 || bc->balloon_target < 0 || bc->stats.last_update == 0 ||
	    bc->stats.available < 0 || bc->stats.last_update <= ps->reclaim_stats_stamp)
		return FALSE;
	reserve = vmbc_physpages_guest_reserve(engine, actual);
	if (bc->stats.available >= reserve / 2 || bc->balloon_target >= actual)
		return FALSE;
	target = actual + (reserve - bc->stats.available);
	if (bc->max_pages > 0)
		target = MIN(target, bc->max_pages);
	if (!vmbc_engine_set_balloon(engine, bc, target, &error)) {
		g_warning("%s", error->message);
		return FALSE;
	}
	ps->reclaim_stats_stamp = bc->stats.last_update;
	ps->reclaim_starved = TRUE;
	g_warning("'%s' reports only %" G_GINT64_FORMAT
		  " pages available: balloon stopped before the guest runs out of memory",
		  bc->name, bc->stats.available);
	return TRUE;
}

/*
 * The smallest size the guest can be ballooned to without running out of
 * memory, by its own word: what it reports in use plus a reserve. 0 when
 * unknown. Only ever read where floor_applies() allows it.
 */
static gint64
guest_floor(VmbcEngine *engine, VmbcBeancounter *bc)
{
	gint64 actual = bc->balloon_actual;
	gint64 available, reserve;

	if (bc->stats.last_update == 0 || bc->stats.available < 0 || actual <= 0)
		return 0;
	available = MIN(bc->stats.available, actual);
	/* the stats are up to a polling interval old: what the guest touched since came out of
	 * what it had available then, and so did what the balloon took since */
	if (bc->parm[VMBC_RES_PHYSPAGES].held > bc->stats_held)
		available =
			MAX(available - (bc->parm[VMBC_RES_PHYSPAGES].held - bc->stats_held), 0);
	if (bc->stats_actual > actual)
		available = MAX(available - (bc->stats_actual - actual), 0);
	reserve = vmbc_physpages_guest_reserve(engine, actual);
	return MAX(actual - available + reserve, 0);
}

/*
 * Whether what the guest says it needs may hold a limit reclaim above the
 * limit. Guest statistics are hints (SPEC §2): they never decide whether the
 * limit is reached, nor pace the reclaim, whose first request asks for the
 * limit in the tick that saw the crossing. Only a VM whose operator chose
 * trust-guest keeps the guest's floor. Stale or contradicted statistics
 * (stats_current()) count for nothing either way.
 */
static gboolean
floor_applies(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now)
{
	return bc->trust_guest && stats_current(engine, bc);
}

/*
 * The target a limit reclaim aims for at @now: the limit minus a margin,
 * raised to the guarantee (*clamped is then set), and, where floor_applies(),
 * to what the guest says it needs (*starved is then set). A NULL @starved asks
 * for the target without the guest's word.
 */
static gint64
limit_target(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now, gboolean *clamped,
	     gboolean *starved)
{
	VmbcParm *parm = &bc->parm[VMBC_RES_PHYSPAGES];
	gint64 margin = vmbc_engine_margin(engine, parm->limit);
	gint64 target = parm->limit > margin ? parm->limit - margin : 0;
	gint64 guarantee = vmbc_beancounter_guarantee(bc);

	*clamped = FALSE;
	if (starved != NULL)
		*starved = FALSE;
	if (target < guarantee) {
		target = guarantee;
		*clamped = TRUE;
	}
	if (starved != NULL && floor_applies(engine, bc, now)) {
		gint64 floor = guest_floor(engine, bc);
		if (floor > target) {
			target = floor;
			*starved = TRUE;
		}
	}
	return target;
}

static void
limit_reclaim_start(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now)
{
	VmbcPhyspagesState *ps = phys(bc);
	VmbcParm *parm = &bc->parm[VMBC_RES_PHYSPAGES];
	g_autoptr(GError) error = NULL;
	g_autofree gchar *held = vmbc_engine_fmt(parm->held);
	g_autofree gchar *limit = vmbc_engine_fmt(parm->limit);
	g_autofree gchar *target_s = NULL;
	gboolean clamped = FALSE;
	gboolean starved = FALSE;
	gboolean sent;
	gint64 target;

	ps->reclaim = VMBC_RECLAIM_LIMIT;
	ps->reclaim_started = now;
	ps->reclaim_progress = now;
	ps->reclaim_best_held = parm->held;
	ps->reclaim_best_actual = actual_or_max(bc);
	/*
	 * Where a failure gives the balloon back to: where it was, or where it was
	 * going back to (a retry starts while the last give-back is under way).
	 */
	ps->reclaim_start_actual = bc->balloon_actual;
	if (bc->balloon_actual >= 0 && bc->balloon_target > bc->balloon_actual)
		ps->reclaim_start_actual = bc->balloon_target;
	ps->reclaim_start_held = parm->held;
	target = limit_target(engine, bc, now, &clamped, &starved);
	target_s = vmbc_engine_fmt(target);
	ps->reclaim_clamped = clamped;
	ps->reclaim_starved = starved && bc->trust_guest;
	ps->reclaim_stats_stamp = bc->stats.last_update;
	ps->counters.started++;
	if (clamped) {
		g_autofree gchar *g = vmbc_engine_fmt(vmbc_beancounter_guarantee(bc));
		bc->parm[VMBC_RES_VMGUARPAGES].failcnt++;
		vmbc_engine_emit(engine, VMBC_EVENT_GUARANTEE_REFUSED, bc, VMBC_RES_VMGUARPAGES,
				 target, VMBC_ERROR_GUARANTEE,
				 "'%s': the guarantee %s stops the balloon above the limit",
				 bc->name, g);
	}
	/*
	 * The request goes out first; the event, delivered right after it, carries
	 * when the sample was taken, so that its receiver can tell how long after
	 * the sample the request went.
	 */
	sent = !balloon_unusable(bc) && vmbc_engine_set_balloon(engine, bc, target, &error);
	if (bc->sampled_at > 0)
		engine->emit_sampled_at = bc->sampled_at;
	vmbc_engine_emit(engine, VMBC_EVENT_LIMIT_HIT, bc, VMBC_RES_PHYSPAGES, target,
			 VMBC_ERROR_FAILED,
			 "'%s' physpages: held %s over limit %s, ballooning the guest to %s",
			 bc->name, held, limit, target_s);
	if (sent)
		return;
	if (error != NULL) {
		g_warning("%s", error->message);
		if (error->domain == VMBC_ERROR && error->code == VMBC_ERROR_NO_BALLOON &&
		    bc->balloon == VMBC_BALLOON_UNKNOWN)
			bc->balloon = VMBC_BALLOON_NO_DEVICE;
	}
	limit_reclaim_fail(engine, bc,
			   balloon_unusable(bc) ? VMBC_ERROR_NO_BALLOON : VMBC_ERROR_NO_PROGRESS,
			   now);
}

/*
 * Sends the next step of a limit reclaim when @target is a step below the
 * balloon's. A @paced target (raised to what the guest says it needs) waits
 * until the guest reported since the last step, or a stale MemAvailable would
 * push it past what it can give; guest_floor() accounts for what the guest
 * touched and what the balloon took since it measured, so a step need not wait
 * for the balloon to settle. Any other target goes at once. Returns TRUE if a
 * new target was sent.
 */
static gboolean
retarget(VmbcEngine *engine, VmbcBeancounter *bc, gint64 target, gboolean paced)
{
	VmbcPhyspagesState *ps = phys(bc);
	g_autoptr(GError) error = NULL;

	if (bc->balloon_target < 0 || balloon_unusable(bc) ||
	    target + min_step(engine, bc) >= bc->balloon_target)
		return FALSE;
	if (paced && bc->stats.last_update <= ps->reclaim_stats_stamp)
		return FALSE;
	if (!vmbc_engine_set_balloon(engine, bc, target, &error)) {
		g_warning("%s", error->message);
		return FALSE;
	}
	ps->reclaim_stats_stamp = bc->stats.last_update;
	return TRUE;
}

/*
 * New guest stats during a limit reclaim: take the next step now, not at the
 * next tick. The engine gives no time here: the last sample's is used.
 */
static void
physpages_stats_arrived(VmbcEngine *engine, VmbcBeancounter *bc)
{
	VmbcPhyspagesState *ps = phys(bc);
	gboolean clamped = FALSE;
	gboolean starved = FALSE;
	gint64 target;

	ps->stats_prev = ps->stats_last;
	ps->stats_last = bc->stats;
	if (ps->reclaim != VMBC_RECLAIM_LIMIT)
		return;
	target = limit_target(engine, bc, bc->sampled_at, &clamped, &starved);
	if (stop_starving(engine, bc))
		return;
	retarget(engine, bc, target, starved);
}

/*
 * How long a limit reclaim gives its balloon before it may be called stalled:
 * three ticks, and never under three seconds, since what reports the balloon's
 * progress may lag a second behind it (QEMU rate-limits BALLOON_CHANGE to one a
 * second, and libvirt follows those events).
 */
#define VMBC_STALL_GRACE_TICKS 3
#define VMBC_STALL_GRACE_USEC  (3 * G_USEC_PER_SEC)

/*
 * Whether the balloon of a running limit reclaim is stalled at @now: after the
 * grace above, it has moved (or held has come down)
 * less than balloon-stall-rate a second on average since the reclaim started,
 * while it still has a step to go. Averaged over the reclaim, not one tick:
 * QEMU reports the balloon at most once a second and a guest may pause between
 * steps. A balloon never seen to move on a guest not yet probed is left to the
 * no-driver check at the reclaim timeout, which names that cause.
 */
static gboolean
balloon_stalled(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now)
{
	VmbcPhyspagesState *ps = phys(bc);
	gint64 rate = engine->config.balloon_stall_pages;
	gint64 elapsed = now - ps->reclaim_started;
	gint64 moved, lowered;

	if (rate <= 0 || balloon_unusable(bc) || bc->balloon_actual < 0 || bc->balloon_target < 0 ||
	    ps->reclaim_start_actual < 0)
		return FALSE;
	if (elapsed < MAX(VMBC_STALL_GRACE_TICKS * engine->config.tick_usec, VMBC_STALL_GRACE_USEC))
		return FALSE;
	if (bc->balloon_actual <= bc->balloon_target + min_step(engine, bc))
		return FALSE; /* there: nothing left to move */
	if (bc->balloon == VMBC_BALLOON_UNKNOWN &&
	    ps->reclaim_best_actual >= ps->reclaim_start_actual)
		return FALSE;
	moved = MAX(ps->reclaim_start_actual - bc->balloon_actual, 0);
	lowered = MAX(ps->reclaim_start_held - bc->parm[VMBC_RES_PHYSPAGES].held, 0);
	return (gdouble)MAX(moved, lowered) < (gdouble)rate * (gdouble)elapsed / 1e6;
}

/*
 * Follows a running limit reclaim; fails it when its balloon stalled, or when
 * progress stopped for too long.
 */
static void
limit_reclaim_follow(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now)
{
	VmbcPhyspagesState *ps = phys(bc);
	VmbcParm *parm = &bc->parm[VMBC_RES_PHYSPAGES];
	gint64 actual = actual_or_max(bc);
	gboolean clamped = FALSE;
	gboolean starved = FALSE;
	gint64 target = limit_target(engine, bc, now, &clamped, &starved);
	VmbcError reason;

	/*
	 * The next step: the guest found memory to spare since the last one, or
	 * the gentle first step is over and the limit is what is aimed for.
	 */
	if (stop_starving(engine, bc))
		starved = TRUE;
	else if (retarget(engine, bc, target, starved))
		ps->reclaim_progress = now;
	ps->reclaim_clamped = clamped;
	ps->reclaim_starved = bc->trust_guest && (ps->reclaim_starved || starved);

	if (parm->held + page_mib() <= ps->reclaim_best_held) {
		ps->reclaim_best_held = parm->held;
		ps->reclaim_progress = now;
	}
	if (balloon_stalled(engine, bc, now)) {
		limit_reclaim_fail(engine, bc, VMBC_ERROR_STALLED, now);
		return;
	}
	if (now - ps->reclaim_progress < engine->config.reclaim_timeout_usec)
		return;

	if (balloon_unusable(bc)) {
		reason = VMBC_ERROR_NO_BALLOON;
	} else if (ps->reclaim_clamped &&
		   actual <= vmbc_beancounter_guarantee(bc) + min_step(engine, bc)) {
		/* a real balloon stops within a step of where it was sent */
		reason = VMBC_ERROR_GUARANTEE;
	} else if (bc->balloon == VMBC_BALLOON_UNKNOWN && bc->balloon_target >= 0 &&
		   actual > bc->balloon_target + page_mib() && ps->reclaim_best_actual >= actual) {
		/* asked to move, never moved, never sent stats: there is no driver */
		bc->balloon = VMBC_BALLOON_NO_DRIVER;
		g_warning("'%s': the balloon did not move in %.0f s: no balloon driver in the "
			  "guest?",
			  bc->name, (gdouble)engine->config.reclaim_timeout_usec / 1e6);
		reason = VMBC_ERROR_NO_BALLOON;
	} else {
		reason = VMBC_ERROR_NO_PROGRESS;
	}
	limit_reclaim_fail(engine, bc, reason, now);
}

/* Follows an operator's reclaim: done once the balloon reached its target. */
gboolean
vmbc_physpages_manual_follow(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now)
{
	VmbcPhyspagesState *ps = phys(bc);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *actual_s = NULL;
	g_autofree gchar *target_s = NULL;
	gint64 actual = actual_or_max(bc);

	if (ps->reclaim != VMBC_RECLAIM_MANUAL)
		return FALSE;
	if (actual <= ps->manual_target + page_mib()) {
		reclaim_done(engine, bc, now);
		return TRUE;
	}
	if (now - ps->reclaim_progress < engine->config.reclaim_timeout_usec &&
	    !balloon_unusable(bc))
		return TRUE;
	actual_s = vmbc_engine_fmt(actual);
	target_s = vmbc_engine_fmt(ps->manual_target);
	error = g_error_new(
		VMBC_ERROR, balloon_unusable(bc) ? VMBC_ERROR_NO_BALLOON : VMBC_ERROR_NO_PROGRESS,
		"reclaim from '%s' stopped: guest size %s, target %s, %s", bc->name, actual_s,
		target_s, balloon_unusable(bc) ? "no balloon driver" : "no progress");
	ps->counters.failed++;
	ps->reclaim = VMBC_RECLAIM_IDLE;
	vmbc_engine_emit(engine, VMBC_EVENT_RECLAIM_FAILED, bc, VMBC_RES_PHYSPAGES,
			 ps->manual_target, (VmbcError)error->code, "%s", error->message);
	vmbc_engine_complete_pending(engine, bc, error);
	return TRUE;
}

static void
physpages_limit_hit(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now)
{
	VmbcPhyspagesState *ps = phys(bc);
	switch (ps->reclaim) {
	case VMBC_RECLAIM_LIMIT:
		limit_reclaim_follow(engine, bc, now);
		break;
	case VMBC_RECLAIM_FAILED:
		if (now >= ps->reclaim_retry_at)
			limit_reclaim_start(engine, bc, now);
		break;
	case VMBC_RECLAIM_IDLE:
	case VMBC_RECLAIM_BARRIER:
	case VMBC_RECLAIM_MANUAL:
	default:
		limit_reclaim_start(engine, bc, now);
		break;
	}
}

void
vmbc_physpages_limit_settled(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now)
{
	VmbcPhyspagesState *ps = phys(bc);
	if (ps->reclaim == VMBC_RECLAIM_LIMIT || ps->reclaim == VMBC_RECLAIM_FAILED) {
		gboolean clamped = FALSE, starved = FALSE;
		gint64 target = limit_target(engine, bc, now, &clamped, &starved);
		g_autoptr(GError) error = NULL;

		/* held got under before the balloon did: still cap the guest at the limit (§3) */
		if (!balloon_unusable(bc) && bc->balloon_target >= 0 &&
		    target + min_step(engine, bc) < bc->balloon_target &&
		    !vmbc_engine_set_balloon(engine, bc, target, &error))
			g_warning("%s", error->message);
		reclaim_done(engine, bc, now);
	}
}

/*
 * The operator raised the limit: a balloon that the old limit held down is let
 * out to the new one (the guest's size was capped by the limit, not chosen).
 */
static void
release_to_limit(VmbcEngine *engine, VmbcBeancounter *bc)
{
	VmbcPhyspagesState *ps = phys(bc);
	VmbcParm *parm = &bc->parm[VMBC_RES_PHYSPAGES];
	g_autoptr(GError) error = NULL;
	gint64 ceiling = bc->max_pages;

	if (parm->limit != VMBC_UNLIMITED)
		ceiling = MIN(ceiling, parm->limit);
	if (ps->reclaim != VMBC_RECLAIM_IDLE || balloon_unusable(bc) || bc->balloon_target < 0 ||
	    bc->balloon_actual < 0 || bc->balloon_actual + min_step(engine, bc) > ceiling) {
		g_debug("VM '%s': limit raised, balloon left alone (reclaim %s, at "
			"%" G_GINT64_FORMAT " pages)",
			bc->name, vmbc_reclaim_state_to_string(ps->reclaim), bc->balloon_actual);
		return;
	}
	if (!vmbc_engine_set_balloon(engine, bc, ceiling, &error)) {
		g_warning("%s", error->message);
		return;
	}
	{
		g_autofree gchar *from = vmbc_engine_fmt(bc->balloon_actual);
		g_autofree gchar *to = vmbc_engine_fmt(ceiling);
		vmbc_engine_emit(engine, VMBC_EVENT_DEFLATE, bc, VMBC_RES_PHYSPAGES, ceiling,
				 VMBC_ERROR_FAILED, "'%s': limit raised, growing it from %s to %s",
				 bc->name, from, to);
	}
}

/*
 * The operator's "reclaim DOM SIZE": inflate the balloon by @pages now (never
 * below the guarantee) and follow it in vmbc_physpages_manual_follow(). @done runs when the
 * balloon got there or the reclaim failed; a limit reclaim that is running
 * keeps priority and answers it.
 */
static gboolean
physpages_reclaim(VmbcEngine *engine, VmbcBeancounter *bc, gint64 pages, gint64 now,
		  VmbcChangeFunc done, gpointer user_data, GError **error)
{
	VmbcPhyspagesState *ps = phys(bc);
	gint64 guarantee = vmbc_beancounter_guarantee(bc);
	gint64 actual = actual_or_max(bc);
	gint64 target;

	if (pages <= 0 || pages == VMBC_UNLIMITED) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "reclaim from '%s': the amount must be a positive size", bc->name);
		return FALSE;
	}
	if (balloon_unusable(bc)) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_NO_BALLOON,
			    "cannot reclaim from '%s': %s", bc->name,
			    bc->balloon == VMBC_BALLOON_NO_DEVICE
				    ? "it has no balloon device"
				    : "its guest has no balloon driver");
		return FALSE;
	}
	target = actual > pages ? actual - pages : 0;
	if (target < guarantee) {
		g_autofree gchar *g = vmbc_engine_fmt(guarantee);
		g_autofree gchar *a = vmbc_engine_fmt(actual);
		bc->parm[VMBC_RES_VMGUARPAGES].failcnt++;
		if (actual <= guarantee) {
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_GUARANTEE,
				    "cannot reclaim from '%s': its size %s is already at its "
				    "guarantee %s",
				    bc->name, a, g);
			return FALSE;
		}
		target = guarantee;
		ps->reclaim_clamped = TRUE;
		vmbc_engine_emit(engine, VMBC_EVENT_GUARANTEE_REFUSED, bc, VMBC_RES_VMGUARPAGES,
				 target, VMBC_ERROR_GUARANTEE,
				 "reclaim from '%s' stops at its guarantee %s", bc->name, g);
	} else {
		ps->reclaim_clamped = FALSE;
	}
	if (!vmbc_engine_set_balloon(engine, bc, target, error))
		return FALSE;
	/* a running limit reclaim keeps priority: it answers its own waiters */
	ps->manual_target = target;
	if (ps->reclaim != VMBC_RECLAIM_LIMIT) {
		ps->reclaim = VMBC_RECLAIM_MANUAL;
		ps->reclaim_started = now;
		ps->reclaim_progress = now;
		ps->reclaim_best_actual = actual;
		ps->reclaim_best_held = bc->parm[VMBC_RES_PHYSPAGES].held;
		ps->counters.started++;
	}
	if (done != NULL)
		vmbc_engine_add_pending(engine, bc, VMBC_RES_VMGUARPAGES, now, done, user_data);
	return TRUE;
}

static gboolean
physpages_change(VmbcEngine *engine, VmbcBeancounter *bc, gint64 barrier, gint64 limit, gint64 now,
		 VmbcChangeFunc done, gpointer user_data, GError **error)
{
	VmbcPhyspagesState *ps = phys(bc);
	VmbcParm *parm = &bc->parm[VMBC_RES_PHYSPAGES];
	gboolean clamped = FALSE;
	gint64 old_limit = parm->limit;
	gint64 target;

	parm->barrier = barrier;
	parm->limit = limit;
	if (limit > old_limit)
		vmbc_engine_follow_memory_high(engine, bc);

	if (!vmbc_parm_over_limit(parm)) {
		vmbc_physpages_limit_settled(engine, bc, now);
		/* a barrier reclaim the new barrier ends: the balloon is the new limit's */
		if (ps->reclaim == VMBC_RECLAIM_BARRIER && !vmbc_parm_over_barrier(parm))
			ps->reclaim = VMBC_RECLAIM_IDLE;
		if (limit > old_limit)
			release_to_limit(engine, bc);
		if (done != NULL)
			done(bc, NULL, user_data);
		return TRUE;
	}

	/* held is over the new limit: the seed's bc_phys_change, run to the end */
	target = limit_target(engine, bc, now, &clamped, NULL);
	if (clamped && actual_or_max(bc) <= target + page_mib()) {
		g_autoptr(GError) err = limit_error(engine, bc, VMBC_ERROR_GUARANTEE);
		parm->failcnt++;
		bc->parm[VMBC_RES_VMGUARPAGES].failcnt++;
		vmbc_engine_emit(engine, VMBC_EVENT_RECLAIM_FAILED, bc, VMBC_RES_PHYSPAGES, target,
				 VMBC_ERROR_GUARANTEE, "%s", err->message);
		ps->reclaim = VMBC_RECLAIM_FAILED;
		ps->reclaim_retry_at = now + engine->config.reclaim_timeout_usec;
		if (done != NULL)
			done(bc, err, user_data);
		return TRUE;
	}
	if (done != NULL)
		vmbc_engine_add_pending(engine, bc, VMBC_RES_PHYSPAGES, now, done, user_data);
	limit_reclaim_start(engine, bc, now);
	return TRUE;
}

static void
physpages_init(VmbcBeancounter *bc)
{
	VmbcPhyspagesState *ps = g_new0(VmbcPhyspagesState, 1);

	ps->reclaim = VMBC_RECLAIM_IDLE;
	ps->reclaim_best_actual = -1;
	ps->reclaim_best_held = -1;
	ps->reclaim_start_actual = -1;
	ps->stats_prev = (VmbcGuestStats){-1, -1, -1, -1, -1, -1, 0};
	ps->stats_last = ps->stats_prev;
	bc->res_state[VMBC_RES_PHYSPAGES] = ps;
	bc->res_state_free[VMBC_RES_PHYSPAGES] = g_free;
}

/* The balloon moved: a new lowest size is progress for a reclaim that follows it. */
static void
physpages_balloon_moved(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now)
{
	VmbcPhyspagesState *ps = phys(bc);

	if (ps->reclaim_best_actual < 0 || bc->balloon_actual < ps->reclaim_best_actual) {
		ps->reclaim_best_actual = bc->balloon_actual;
		ps->reclaim_progress = now;
	}
}

static void
physpages_balloon_failed(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now)
{
	VmbcPhyspagesState *ps = phys(bc);

	/* a reclaim waiting on this balloon cannot make progress: end it now */
	if (ps->reclaim == VMBC_RECLAIM_LIMIT || ps->reclaim == VMBC_RECLAIM_MANUAL)
		ps->reclaim_progress = now - engine->config.reclaim_timeout_usec;
}

/* The reason a balloon target sent during this resource's reclaim is smaller. */
static gint
physpages_balloon_reason(const VmbcBeancounter *bc)
{
	switch (phys(bc)->reclaim) {
	case VMBC_RECLAIM_LIMIT:
	case VMBC_RECLAIM_FAILED:
		return VMBC_BALLOON_FOR_LIMIT;
	case VMBC_RECLAIM_BARRIER:
		return VMBC_BALLOON_FOR_BARRIER;
	case VMBC_RECLAIM_MANUAL:
		return VMBC_BALLOON_FOR_RECLAIM;
	case VMBC_RECLAIM_IDLE:
	default:
		return -1;
	}
}

static gboolean
physpages_busy(const VmbcBeancounter *bc)
{
	return phys(bc)->reclaim != VMBC_RECLAIM_IDLE;
}

static gboolean
physpages_following(const VmbcBeancounter *bc)
{
	return phys(bc)->reclaim == VMBC_RECLAIM_LIMIT || phys(bc)->reclaim == VMBC_RECLAIM_MANUAL;
}

VmbcReclaimState
vmbc_physpages_get_reclaim(const VmbcBeancounter *bc)
{
	g_return_val_if_fail(bc != NULL, VMBC_RECLAIM_IDLE);
	if (phys(bc) == NULL)
		return VMBC_RECLAIM_IDLE;
	return phys(bc)->reclaim;
}

void
vmbc_physpages_get_counters(const VmbcBeancounter *bc, VmbcReclaimCounters *out)
{
	g_return_if_fail(bc != NULL && out != NULL);
	if (phys(bc) == NULL) {
		*out = (VmbcReclaimCounters){0};
		return;
	}
	*out = phys(bc)->counters;
}

void
vmbc_physpages_set_counters(VmbcBeancounter *bc, const VmbcReclaimCounters *counters)
{
	g_return_if_fail(bc != NULL && counters != NULL && phys(bc) != NULL);
	phys(bc)->counters = *counters;
}

const gchar *
vmbc_reclaim_state_to_string(VmbcReclaimState state)
{
	switch (state) {
	case VMBC_RECLAIM_BARRIER:
		return "barrier";
	case VMBC_RECLAIM_LIMIT:
		return "limit";
	case VMBC_RECLAIM_MANUAL:
		return "manual";
	case VMBC_RECLAIM_FAILED:
		return "failed";
	case VMBC_RECLAIM_IDLE:
	default:
		return "idle";
	}
}

const VmbcResourceOps vmbc_physpages_ops = {
	.id = VMBC_RES_PHYSPAGES,
	.init = physpages_init,
	.change = physpages_change,
	.limit_hit = physpages_limit_hit,
	.barrier_hit = vmbc_physpages_barrier_hit,
	.under_barrier = vmbc_physpages_under_barrier,
	.stats_arrived = physpages_stats_arrived,
	.reclaim = physpages_reclaim,
	.balloon_moved = physpages_balloon_moved,
	.balloon_failed = physpages_balloon_failed,
	.balloon_reason = physpages_balloon_reason,
	.busy = physpages_busy,
	.following = physpages_following,
};
