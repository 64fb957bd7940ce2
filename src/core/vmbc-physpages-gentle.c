/*
 * vmbc-physpages-gentle.c: the gentle side of physpages (SPEC §3, steps 3 and
 * 4): over the barrier, take back at most what the guest says it can spare,
 * one step a tick; well under it, give memory back to a guest that shows
 * pressure, earlier and faster the faster it falls. Guest statistics steer
 * both: here they are hints that can only ever make vmbcd gentler or give
 * more back, never decide whether a limit holds (vmbc-physpages.c).
 */
#include "vmbc-physpages-private.h"

void
vmbc_physpages_barrier_hit(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now)
{
	VmbcPhyspagesState *ps = phys(bc);
	VmbcParm *parm = &bc->parm[VMBC_RES_PHYSPAGES];
	g_autoptr(GError) error = NULL;
	gint64 spare, step, target, actual, guarantee;

	vmbc_physpages_limit_settled(engine, bc, now);
	if (vmbc_physpages_manual_follow(engine, bc, now))
		return;
	if (ps->reclaim == VMBC_RECLAIM_IDLE) {
		g_autofree gchar *held = vmbc_engine_fmt(parm->held);
		g_autofree gchar *barrier = vmbc_engine_fmt(parm->barrier);
		ps->reclaim = VMBC_RECLAIM_BARRIER;
		ps->reclaim_clamped = FALSE;
		vmbc_engine_emit(engine, VMBC_EVENT_BARRIER_HIT, bc, VMBC_RES_PHYSPAGES, -1,
				 VMBC_ERROR_FAILED, "'%s' physpages: held %s over barrier %s",
				 bc->name, held, barrier);
	}
	if (balloon_unusable(bc) || bc->balloon_actual < 0)
		return;
	if (now - ps->barrier_last_step < engine->config.tick_usec || step_in_flight(engine, bc))
		return;

	spare = vmbc_beancounter_spare(bc);
	step = MIN(parm->held - parm->barrier, spare);
	step = MIN(step, engine->config.barrier_step_pages);
	if (step < min_step(engine, bc))
		return; /* nothing the guest can spare, or not worth a balloon change */

	actual = bc->balloon_actual;
	guarantee = vmbc_beancounter_guarantee(bc);
	target = actual - step;
	if (target < guarantee) {
		if (!ps->reclaim_clamped) {
			ps->reclaim_clamped = TRUE;
			bc->parm[VMBC_RES_VMGUARPAGES].failcnt++;
			vmbc_engine_emit(engine, VMBC_EVENT_GUARANTEE_REFUSED, bc,
					 VMBC_RES_VMGUARPAGES, guarantee, VMBC_ERROR_GUARANTEE,
					 "'%s': the guarantee stops a barrier reclaim", bc->name);
		}
		target = guarantee;
	}
	if (actual - target < min_step(engine, bc))
		return;
	if (!vmbc_engine_set_balloon(engine, bc, target, &error)) {
		g_warning("%s", error->message);
		return;
	}
	ps->barrier_last_step = now;
}

/*
 * Swap-in and major faults per second above which a guest is thrashing rather
 * than touching a page of swap or a cold mapped file now and then: 64 pages a
 * second (256 KiB/s of 4 KiB pages) of swap-in is a working set that no longer
 * fits, sustained; 256 major faults a second is past a program starting up or
 * a cron job waking and is what a page cache being thrown out looks like.
 */
#define VMBC_PRESSURE_SWAP_IN_RATE     64
#define VMBC_PRESSURE_MAJOR_FAULT_RATE 256

/*
 * How fast the guest's available memory fell between its last two reports, in
 * pages per report interval (0 when it did not, or when either report is
 * missing). What the balloon took between them is not the guest's doing and
 * is left out (MemTotal falls with it), so a barrier reclaim that just ended
 * does not read as pressure. Sets @secs to the interval (at least 1).
 */
static gint64
available_fall(VmbcBeancounter *bc, gint64 *secs)
{
	const VmbcGuestStats *s = &bc->stats;
	const VmbcGuestStats *p = &phys(bc)->stats_prev;
	/* no report of a guest is larger than its maximum: a lying one overflows nothing */
	gint64 cap = MAX(bc->max_pages, 0);
	gint64 fall;

	*secs = 1;
	if (s->last_update == 0 || p->last_update == 0 || s->available < 0 || p->available < 0)
		return 0;
	*secs = MAX(s->last_update - p->last_update, 1);
	fall = MIN(p->available, cap) - MIN(s->available, cap);
	if (s->total > 0 && p->total > s->total)
		fall -= MIN(p->total, cap) - MIN(s->total, cap);
	return MAX(fall, 0);
}

/*
 * How much a cumulative counter of the guest rose per second between its last
 * two reports; 0 when either report lacks it or it went back (a reboot).
 */
static gint64
counter_rate(gint64 now_count, gint64 prev_count, gint64 secs)
{
	if (now_count < 0 || prev_count < 0 || now_count <= prev_count)
		return 0;
	return (now_count - prev_count) / secs;
}

/*
 * The guest shows memory pressure in what it reports: its available memory is
 * low, or falls fast enough to be low within about two reports, or it swaps in
 * or faults pages in from disk faster than now and then. A hint only: it can
 * only make vmbcd give memory back (up to the limit, the guest's budget), so a
 * lying guest gains at most what it was allowed anyway.
 */
static gboolean
guest_pressured(VmbcEngine *engine, VmbcBeancounter *bc)
{
	const VmbcGuestStats *s = &bc->stats;
	const VmbcGuestStats *p = &phys(bc)->stats_prev;
	gint64 total = s->total > 0 ? s->total : bc->balloon_actual;
	gint64 low, fall, secs;

	if (s->last_update == 0 || total <= 0)
		return FALSE;
	/*
	 * A report from no later than the second the balloon last grew says what
	 * the guest had before vmbcd took from it, or while it took: the fall it
	 * shows is vmbcd's own doing, not the guest's, and giving it back would
	 * undo a reclaim that just ended. Wait for a report made after it.
	 */
	if (bc->inflated_wall_sec > 0 && s->last_update <= bc->inflated_wall_sec + 1)
		return FALSE;
	/* short of memory relative to its size, or below the reserve a limit reclaim leaves */
	low = MAX((gint64)(engine->config.pressure_available * (gdouble)total),
		  vmbc_physpages_guest_reserve(engine, total));
	if (s->available >= 0 && s->available < low)
		return TRUE;
	/* falling faster than 1/8 of its size a second, or to the low mark within two reports */
	fall = available_fall(bc, &secs);
	if (p->last_update <= bc->inflated_wall_sec + 1)
		fall = 0; /* the previous report was made before the balloon grew */
	if (fall > 0 && (fall / secs > total / 8 || s->available - 2 * fall < low))
		return TRUE;
	if (p->last_update == 0)
		return FALSE;
	if (counter_rate(s->swap_in, p->swap_in, secs) > VMBC_PRESSURE_SWAP_IN_RATE)
		return TRUE;
	/* a burst of major faults: the page cache is being thrashed */
	if (counter_rate(s->major_faults, p->major_faults, secs) > VMBC_PRESSURE_MAJOR_FAULT_RATE)
		return TRUE;
	return FALSE;
}

void
vmbc_physpages_under_barrier(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now)
{
	VmbcPhyspagesState *ps = phys(bc);
	VmbcParm *parm = &bc->parm[VMBC_RES_PHYSPAGES];
	g_autoptr(GError) error = NULL;
	gint64 ceiling, well_under, target, fall, secs, step;
	VmbcParm *host = &engine->host->parm[VMBC_RES_PHYSPAGES];

	vmbc_physpages_limit_settled(engine, bc, now);
	if (vmbc_physpages_manual_follow(engine, bc, now))
		return;
	if (ps->reclaim == VMBC_RECLAIM_BARRIER)
		ps->reclaim = VMBC_RECLAIM_IDLE;
	if (ps->reclaim != VMBC_RECLAIM_IDLE || balloon_unusable(bc) || bc->balloon_actual < 0)
		return;

	/* deflate only well under the barrier, and never while the host is short */
	well_under = parm->barrier == VMBC_UNLIMITED
			     ? parm->limit
			     : parm->barrier - vmbc_engine_margin(engine, parm->barrier);
	if (well_under != VMBC_UNLIMITED && parm->held > well_under)
		return;
	if (vmbc_parm_over_barrier(host))
		return;
	if (!guest_pressured(engine, bc))
		return;

	ceiling = bc->max_pages;
	if (parm->limit != VMBC_UNLIMITED)
		ceiling = MIN(ceiling, parm->limit);
	if (bc->balloon_actual + min_step(engine, bc) > ceiling)
		return;
	if (now - ps->deflate_last_step < engine->config.tick_usec || step_in_flight(engine, bc))
		return;
	/* outrun a guest that fills its memory fast: twice what it used in its last report
	 * interval, so that the next report finds it with more available, not less */
	fall = available_fall(bc, &secs);
	step = MAX(engine->config.deflate_step_pages, 2 * fall);
	target = MIN(bc->balloon_actual + step, ceiling);
	if (!vmbc_engine_set_balloon(engine, bc, target, &error)) {
		g_warning("%s", error->message);
		return;
	}
	ps->deflate_last_step = now;
	{
		g_autofree gchar *from = vmbc_engine_fmt(bc->balloon_actual);
		g_autofree gchar *to = vmbc_engine_fmt(target);
		vmbc_engine_emit(engine, VMBC_EVENT_DEFLATE, bc, VMBC_RES_PHYSPAGES, target,
				 VMBC_ERROR_FAILED,
				 "'%s' is under memory pressure: growing it from %s to %s",
				 bc->name, from, to);
	}
}

gint64
vmbc_physpages_get_last_step(const VmbcBeancounter *bc)
{
	return phys(bc)->barrier_last_step;
}

void
vmbc_physpages_set_last_step(VmbcBeancounter *bc, gint64 now)
{
	phys(bc)->barrier_last_step = now;
}
