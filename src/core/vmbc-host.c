/*
 * vmbc-host.c: the root beancounter "host" and its pressure controller.
 *
 * The host holds the sum of its children's physpages (charged in
 * vmbc_engine_sample()). Its limit is the VMs' budget as the host kernel
 * gives it (the VMs' cgroup, or host RAM less a reserve; see
 * vmbc_engine_set_host_signals()) unless vmbc.conf sets one; its barrier is
 * that budget less host-margin.
 *
 * The control law, once a tick (and at once when the kernel's PSI trigger
 * fires):
 *
 *   pressure = held > limit (LIMIT), held > barrier (BARRIER), memory "some"
 *              stall since the last tick >= psi-target or a PSI trigger within
 *              the last host-interval (PSI), the host swapping out (SWAP).
 *   under pressure, at most one step per host-interval: take from the VM
 *              whose pages are cheapest by ESX's rule with an idle memory tax,
 *              rho = shares / (P * (f + k * (1 - f))), k = 1 / (1 - tau), with P
 *              the pages held and f the active fraction (1 - idle; idle
 *              measured by the host where it can be, see
 *              vmbc_engine_idle_fraction()). Over the limit anything above the
 *              guarantee may go; otherwise what the guest says it can spare
 *              or its idle pages (idle fraction times held), whichever is
 *              more. Over the barrier (or the limit) a step is the excess
 *              over the barrier; under PSI or swap pressure, host-step.
 *   no pressure for giveback-delay, held under the barrier less
 *              host-hysteresis of the budget: give back to VMs the host took
 *              from, the dearest first, at most giveback-step per
 *              host-interval and never past the room under that mark, toward
 *              the size each had before the host took from it.
 *
 * The band between the barrier and the give-back mark, and the delay, keep a
 * host from oscillating between taking and giving.
 */
#include "vmbc-engine-private.h"

const gchar *
vmbc_budget_source_to_string(VmbcBudgetSource source)
{
	switch (source) {
	case VMBC_BUDGET_CONFIG:
		return "config";
	case VMBC_BUDGET_CGROUP_V2:
		return "cgroup-v2";
	case VMBC_BUDGET_CGROUP_V1:
		return "cgroup-v1";
	case VMBC_BUDGET_HOST_RAM:
		return "host-ram";
	case VMBC_BUDGET_NONE:
	default:
		return "none";
	}
}

const gchar *
vmbc_idle_source_to_string(VmbcIdleSource source)
{
	switch (source) {
	case VMBC_IDLE_HOST:
		return "host";
	case VMBC_IDLE_GUEST:
		return "guest";
	case VMBC_IDLE_NONE:
	default:
		return "none";
	}
}

const gchar *
vmbc_pressure_reason_to_string(VmbcPressureReason reason)
{
	switch (reason) {
	case VMBC_PRESSURE_LIMIT:
		return "limit";
	case VMBC_PRESSURE_BARRIER:
		return "barrier";
	case VMBC_PRESSURE_PSI:
		return "psi";
	case VMBC_PRESSURE_SWAP:
		return "swap";
	case VMBC_PRESSURE_NONE:
	default:
		return "none";
	}
}

static void
host_config_init(VmbcEngineConfig *config)
{
	gint64 mib = (gint64)((1 << 20) / vmbc_page_size());

	config->host_margin = 0.05;
	config->host_hysteresis = 0.05;
	config->host_step_pages = 64 * mib;
	config->host_interval_usec = G_USEC_PER_SEC;
	config->giveback_delay_usec = 3 * G_USEC_PER_SEC;
	config->giveback_step_pages = 128 * mib;
	config->psi_target = 5.0;
	config->idle_assumed = 0.5;
	config->idle_max_age_usec = 5 * 60 * G_USEC_PER_SEC;
}

void
vmbc_engine_set_host_signals(VmbcEngine *engine, const VmbcHostSignals *signals, gint64 now)
{
	VmbcHostState *st = &engine->host_state;
	VmbcParm *parm = &engine->host->parm[VMBC_RES_PHYSPAGES];
	gint64 barrier, limit;

	st->stall_percent = 0;
	if (st->signals_known && now > st->signals_at && signals->psi_some_total >= 0 &&
	    st->prev_stall_total >= 0 && signals->psi_some_total >= st->prev_stall_total)
		st->stall_percent = 100.0 *
				    (gdouble)(signals->psi_some_total - st->prev_stall_total) /
				    (gdouble)(now - st->signals_at);
	st->swapping = st->signals_known && signals->swap_out >= 0 && st->prev_swap_out >= 0 &&
		       signals->swap_out > st->prev_swap_out;
	st->prev_stall_total = signals->psi_some_total;
	st->prev_swap_out = signals->swap_out;
	st->signals = *signals;
	st->signals_known = TRUE;
	st->signals_at = now;

	if (signals->source == VMBC_BUDGET_CONFIG)
		return;
	limit = signals->budget;
	if (signals->source == VMBC_BUDGET_NONE || limit < 0)
		limit = VMBC_UNLIMITED;
	barrier = limit;
	if (limit != VMBC_UNLIMITED)
		barrier = MAX(limit - (gint64)((gdouble)limit * engine->config.host_margin), 0);
	if (parm->barrier != barrier || parm->limit != limit) {
		parm->barrier = barrier;
		parm->limit = limit;
	}
}

const VmbcHostState *
vmbc_engine_get_host_state(VmbcEngine *engine)
{
	return &engine->host_state;
}

/* The idle share (0..1) a dirty rate of @rate bytes/s means for a VM holding @held pages. */
static gdouble
host_idle_share(gint64 rate, gint64 held)
{
	gdouble bytes = (gdouble)MAX(held, 1) * (gdouble)vmbc_page_size();
	gdouble active = (gdouble)rate * VMBC_IDLE_ACTIVE_WINDOW_SEC / bytes;

	return 1.0 - CLAMP(active, 0.0, 1.0);
}

/* Whether held moved by more than a sixteenth since @then. */
static gboolean
held_moved(gint64 then, gint64 held)
{
	return ABS(held - then) > then / 16;
}

/* Whether a measure of @rate at @held agrees with the one that began @bc's run. */
static gboolean
measures_agree(const VmbcBeancounter *bc, gint64 rate, gint64 held)
{
	gdouble then, share;

	if (bc->idle_anchor_rate < 0 || held_moved(bc->idle_held, held))
		return FALSE;
	if (ABS(rate - bc->idle_anchor_rate) <= VMBC_IDLE_RATE_RESOLUTION)
		return TRUE;
	then = host_idle_share(bc->idle_anchor_rate, bc->idle_held);
	share = host_idle_share(rate, held);
	return ABS(share - then) <= VMBC_IDLE_SETTLED_SHARE;
}

void
vmbc_engine_set_dirty_rate(VmbcEngine *engine, VmbcBeancounter *bc, gint64 dirty_bytes_per_sec,
			   gint64 now)
{
	gint64 held = bc->parm[VMBC_RES_PHYSPAGES].held;
	gint64 rate = dirty_bytes_per_sec < 0 ? -1 : dirty_bytes_per_sec;

	if (rate >= 0 && measures_agree(bc, rate, held)) {
		bc->idle_settled = MIN(bc->idle_settled + 1, VMBC_IDLE_MAX_SETTLED);
	} else {
		/* a new run begins here */
		bc->idle_settled = 0;
		bc->idle_anchor_rate = rate;
		bc->idle_held = held;
	}
	bc->dirty_rate = rate;
	bc->dirty_rate_at = now;
}

guint
vmbc_engine_idle_measure_spacing(VmbcEngine *engine, const VmbcBeancounter *bc)
{
	if (bc->idle_anchor_rate < 0 || engine->host_state.reason != VMBC_PRESSURE_NONE ||
	    held_moved(bc->idle_held, bc->parm[VMBC_RES_PHYSPAGES].held))
		return 1;
	return 1u << MIN(bc->idle_settled, VMBC_IDLE_MAX_SETTLED);
}

gboolean
vmbc_engine_idle_measure_due(VmbcEngine *engine, const VmbcBeancounter *bc, gint64 started,
			     gint64 interval, gint64 now)
{
	gint64 span = interval * vmbc_engine_idle_measure_spacing(engine, bc);

	if (started == 0)
		return TRUE;
	/* the measure stays fresh: it is taken in a second or two after it starts */
	if (span > interval)
		span = MAX(MIN(span, engine->config.idle_max_age_usec - 2 * interval), interval);
	return now - started >= span;
}

gdouble
vmbc_engine_idle_fraction(VmbcEngine *engine, const VmbcBeancounter *bc, VmbcIdleSource *source)
{
	gdouble assumed = CLAMP(engine->config.idle_assumed, 0.0, 1.0);
	gdouble guest;

	if (bc->dirty_rate >= 0 &&
	    bc->sampled_at - bc->dirty_rate_at <= engine->config.idle_max_age_usec) {
		if (source != NULL)
			*source = VMBC_IDLE_HOST;
		return host_idle_share(bc->dirty_rate, bc->parm[VMBC_RES_PHYSPAGES].held);
	}
	guest = vmbc_beancounter_idle_fraction(bc);
	if (guest >= 0) {
		if (source != NULL)
			*source = VMBC_IDLE_GUEST;
		/* the guest's word may make it cheaper, never dearer than one nobody knows */
		return MAX(guest, assumed);
	}
	if (source != NULL)
		*source = VMBC_IDLE_NONE;
	return assumed;
}

static gboolean
balloon_settled(VmbcEngine *engine, const VmbcBeancounter *bc)
{
	if (!bc->sampled || bc->balloon_actual < 0)
		return FALSE;
	if (bc->balloon == VMBC_BALLOON_NO_DEVICE || bc->balloon == VMBC_BALLOON_NO_DRIVER)
		return FALSE;
	return bc->balloon_target < 0 ||
	       ABS(bc->balloon_actual - bc->balloon_target) <= engine->config.min_step_pages;
}

static gboolean
can_give(VmbcEngine *engine, VmbcBeancounter *bc, gboolean hard, gint64 *pages_out)
{
	gint64 room, pages, idle;
	VmbcReclaimState reclaim;

	if (!balloon_settled(engine, bc))
		return FALSE;
	/* a VM busy with its own reclaim is left to it */
	reclaim = vmbc_physpages_get_reclaim(bc);
	if (reclaim != VMBC_RECLAIM_IDLE && reclaim != VMBC_RECLAIM_BARRIER)
		return FALSE;
	room = bc->balloon_actual - vmbc_beancounter_guarantee(bc);
	/*
	 * What the guest says it can spare, or its idle pages as the host's
	 * reclaim counts them, whichever is more: a guest that says it has
	 * nothing to spare is not spared for that alone.
	 */
	idle = (gint64)(vmbc_engine_idle_fraction(engine, bc, NULL) *
			(gdouble)bc->parm[VMBC_RES_PHYSPAGES].held);
	pages = hard ? room : MIN(room, MAX(vmbc_beancounter_spare(bc), idle));
	if (pages < engine->config.min_step_pages)
		return FALSE;
	*pages_out = pages;
	return TRUE;
}

static gdouble
rho(VmbcEngine *engine, VmbcBeancounter *bc)
{
	gdouble active = 1.0 - vmbc_engine_idle_fraction(engine, bc, NULL);
	gdouble tau = CLAMP(engine->config.idle_tax, 0.0, 0.99);
	gdouble k = 1.0 / (1.0 - tau);
	gdouble pages = (gdouble)MAX(bc->parm[VMBC_RES_PHYSPAGES].held, 1);

	return (gdouble)MAX(bc->shares, 1u) / (pages * (active + k * (1.0 - active)));
}

static VmbcPressureReason
pressure_now(VmbcEngine *engine, gint64 now)
{
	VmbcHostState *st = &engine->host_state;
	VmbcParm *parm = &engine->host->parm[VMBC_RES_PHYSPAGES];

	if (vmbc_parm_over_limit(parm))
		return VMBC_PRESSURE_LIMIT;
	if (vmbc_parm_over_barrier(parm))
		return VMBC_PRESSURE_BARRIER;
	if (st->stall_percent >= engine->config.psi_target && st->stall_percent > 0)
		return VMBC_PRESSURE_PSI;
	if (st->trigger_at != 0 && now - st->trigger_at < engine->config.host_interval_usec)
		return VMBC_PRESSURE_PSI;
	if (st->swapping)
		return VMBC_PRESSURE_SWAP;
	return VMBC_PRESSURE_NONE;
}

static void
host_failed(VmbcEngine *engine, gint64 now)
{
	VmbcBeancounter *host = engine->host;
	VmbcParm *parm = &host->parm[VMBC_RES_PHYSPAGES];
	g_autofree gchar *held = NULL;
	g_autofree gchar *limit = NULL;

	if (now - engine->host_last_fail < engine->config.reclaim_timeout_usec)
		return;
	held = vmbc_engine_fmt(parm->held);
	limit = vmbc_engine_fmt(parm->limit);
	parm->failcnt++;
	engine->host_last_fail = now;
	vmbc_engine_emit(engine, VMBC_EVENT_RECLAIM_FAILED, host, VMBC_RES_PHYSPAGES, -1,
			 VMBC_ERROR_GUARANTEE,
			 "host: guests hold %s, over the host limit %s, and no VM can give more "
			 "above its guarantee",
			 held, limit);
}

/* Under pressure: one step from the cheapest VM, at most one per host-interval. */
static void
take(VmbcEngine *engine, VmbcPressureReason reason, gint64 now)
{
	VmbcHostState *st = &engine->host_state;
	VmbcParm *parm = &engine->host->parm[VMBC_RES_PHYSPAGES];
	gboolean hard = reason == VMBC_PRESSURE_LIMIT;
	VmbcBeancounter *victim = NULL;
	gint64 victim_pages = 0, step, target;
	gdouble victim_rho = G_MAXDOUBLE;
	VmbcIdleSource idle_source = VMBC_IDLE_NONE;
	g_autoptr(GError) error = NULL;

	if (st->last_take_at != 0 && now - st->last_take_at < engine->config.host_interval_usec)
		return;
	for (guint i = 0; i < engine->vms->len; i++) {
		VmbcBeancounter *bc = g_ptr_array_index(engine->vms, i);
		gint64 pages = 0;
		gdouble r;
		if (now - vmbc_physpages_get_last_step(bc) < engine->config.tick_usec)
			continue;
		if (!can_give(engine, bc, hard, &pages))
			continue;
		r = rho(engine, bc);
		if (r < victim_rho) {
			victim = bc;
			victim_rho = r;
			victim_pages = pages;
		}
	}
	if (victim == NULL) {
		if (hard)
			host_failed(engine, now);
		return;
	}
	/*
	 * Over the budget's barrier the excess is an overdraft that grows as fast
	 * as the guests touch memory: all of it at once, as far as this VM can
	 * give. A stall or swapping says nothing of how much: a step.
	 */
	if (reason == VMBC_PRESSURE_LIMIT || reason == VMBC_PRESSURE_BARRIER)
		step = MIN(victim_pages,
			   MAX(parm->held - parm->barrier, engine->config.min_step_pages));
	else
		step = MIN(victim_pages, engine->config.host_step_pages);
	if (step < engine->config.min_step_pages)
		return;
	target = victim->balloon_actual - step;
	if (!vmbc_engine_set_balloon(engine, victim, target, &error)) {
		g_warning("%s", error->message);
		return;
	}
	vmbc_physpages_set_last_step(victim, now);
	st->last_take_at = now;
	st->takes++;
	st->taken_pages += step;
	{
		g_autofree gchar *held = vmbc_engine_fmt(parm->held);
		g_autofree gchar *barrier = vmbc_engine_fmt(parm->barrier);
		g_autofree gchar *amount = vmbc_engine_fmt(step);
		gdouble idle = vmbc_engine_idle_fraction(engine, victim, &idle_source);
		g_autofree gchar *why = NULL;

		if (reason == VMBC_PRESSURE_PSI)
			why = g_strdup_printf("memory stall %.1f%% (psi-target %.1f%%)",
					      st->stall_percent, engine->config.psi_target);
		else if (reason == VMBC_PRESSURE_SWAP)
			why = g_strdup("the host swaps out");
		else
			why = g_strdup_printf("over the host %s %s", hard ? "limit" : "barrier",
					      barrier);
		vmbc_engine_emit(engine, VMBC_EVENT_HOST_RECLAIM, victim, VMBC_RES_PHYSPAGES,
				 target, VMBC_ERROR_FAILED,
				 "host: pressure (%s): guests hold %s, %s: taking %s from '%s' "
				 "(shares %u, %.0f%% idle by %s)",
				 vmbc_pressure_reason_to_string(reason), held, why, amount,
				 victim->name, victim->shares, idle * 100.0,
				 vmbc_idle_source_to_string(idle_source));
	}
}

/* A VM the host took from, that may have it back now: how much, 0 none. */
static gint64
can_take_back(VmbcEngine *engine, VmbcBeancounter *bc)
{
	const VmbcBalloonClaim *c = &bc->balloon_claim;
	gint64 want, limit = bc->parm[VMBC_RES_PHYSPAGES].limit;

	if (c->target < 0 || bc->balloon_claim_unconfirmed || c->reason != VMBC_BALLOON_FOR_HOST)
		return 0;
	if (!balloon_settled(engine, bc) || vmbc_physpages_get_reclaim(bc) != VMBC_RECLAIM_IDLE)
		return 0;
	want = c->before;
	/* never past its own limit: that would only start its own reclaim */
	if (limit != VMBC_UNLIMITED)
		want = MIN(want, MAX(limit, bc->balloon_actual));
	return MAX(want - bc->balloon_actual, 0);
}

/* No pressure for giveback-delay: one step back to the dearest VM the host took from. */
static void
give_back(VmbcEngine *engine, gint64 now)
{
	VmbcHostState *st = &engine->host_state;
	VmbcParm *parm = &engine->host->parm[VMBC_RES_PHYSPAGES];
	VmbcBeancounter *best = NULL;
	gint64 best_pages = 0, room, step, target;
	gdouble best_rho = -1;
	g_autoptr(GError) error = NULL;

	if (st->pressure_seen_at != 0 &&
	    now - st->pressure_seen_at < engine->config.giveback_delay_usec)
		return;
	if (st->last_give_at != 0 && now - st->last_give_at < engine->config.host_interval_usec)
		return;
	room = G_MAXINT64;
	if (parm->barrier != VMBC_UNLIMITED) {
		gint64 band = (gint64)((gdouble)parm->limit * engine->config.host_hysteresis);
		room = parm->barrier - band - parm->held;
	}
	if (room < engine->config.min_step_pages)
		return;
	for (guint i = 0; i < engine->vms->len; i++) {
		VmbcBeancounter *bc = g_ptr_array_index(engine->vms, i);
		gint64 pages = can_take_back(engine, bc);
		gdouble r;
		if (pages < engine->config.min_step_pages)
			continue;
		r = rho(engine, bc);
		if (r > best_rho) {
			best = bc;
			best_rho = r;
			best_pages = pages;
		}
	}
	if (best == NULL)
		return;
	step = MIN(MIN(best_pages, engine->config.giveback_step_pages), room);
	target = best->balloon_actual + step;
	if (!vmbc_engine_set_balloon(engine, best, target, &error)) {
		g_warning("%s", error->message);
		return;
	}
	st->last_give_at = now;
	st->gives++;
	st->given_pages += step;
	{
		g_autofree gchar *held = vmbc_engine_fmt(parm->held);
		g_autofree gchar *amount = vmbc_engine_fmt(step);
		g_autofree gchar *calm = g_strdup_printf(
			"%.1f s", st->pressure_seen_at == 0
					  ? 0.0
					  : (gdouble)(now - st->pressure_seen_at) / 1e6);
		vmbc_engine_emit(engine, VMBC_EVENT_HOST_GIVEBACK, best, VMBC_RES_PHYSPAGES, target,
				 VMBC_ERROR_FAILED,
				 "host: no pressure for %s, guests hold %s: giving %s back to '%s' "
				 "(taken under pressure)",
				 calm, held, amount, best->name);
	}
}

/* Runs after every VM ticked: the control law above. */
static void
host_tick(VmbcEngine *engine, gint64 now)
{
	VmbcHostState *st = &engine->host_state;
	VmbcPressureReason reason = pressure_now(engine, now);

	st->reason = reason;
	if (reason != VMBC_PRESSURE_NONE) {
		st->pressure_seen_at = now;
		take(engine, reason, now);
	} else {
		give_back(engine, now);
	}
}

void
vmbc_engine_host_pressure(VmbcEngine *engine, gint64 now)
{
	VmbcHostState *st = &engine->host_state;

	st->trigger_at = now;
	st->triggers++;
	/* memory may have moved anywhere: every VM is read at the next tick */
	vmbc_engine_wake_all(engine);
	engine->acting_for = VMBC_BALLOON_FOR_HOST;
	host_tick(engine, now);
	engine->acting_for = -1;
}

const VmbcHostOps vmbc_host_ops = {
	.tick = host_tick,
	.config_init = host_config_init,
};
