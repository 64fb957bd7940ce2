/*
 * vmbc-schedule.c: the headroom schedule of held reads (see vmbc-schedule.h).
 */
#include "vmbc-schedule.h"
#include "vmbc-size.h"

/* How far @held is below the nearest finite bound of @parm; 0 at or over one. */
static gint64
parm_headroom(const VmbcParm *parm)
{
	gint64 bound = vmbc_parm_first_bound(parm);

	if (bound == VMBC_UNLIMITED)
		return G_MAXINT64;
	return bound > parm->held ? bound - parm->held : 0;
}

gint64
vmbc_schedule_headroom(const VmbcScheduleParams *params, const VmbcBeancounter *bc)
{
	gint64 h = parm_headroom(&bc->parm[VMBC_RES_PHYSPAGES]);

	/* the VMM's own pages come from the same read */
	h = MIN(h, parm_headroom(&bc->parm[VMBC_RES_VMMPAGES]));
	/*
	 * The host's headroom shared by its VMs: when every VM is read before it
	 * grew its share, the host cannot pass its barrier unseen by more than
	 * one tick of everybody's growth either.
	 */
	if (params->host_headroom >= 0)
		h = MIN(h, params->host_headroom / MAX(params->vms, 1));
	return h;
}

gdouble
vmbc_schedule_rate(const VmbcScheduleParams *params, const VmbcBeancounter *bc, gint64 now)
{
	gdouble peak = bc->schedule.peak_rate;
	gint64 since = now - bc->schedule.peak_at;

	if (since > 0 && peak > 0)
		peak /= (gdouble)(1 << MIN(since / VMBC_SCHEDULE_PEAK_HALFLIFE_USEC, 30));
	return MAX((gdouble)params->ceiling_pages, peak);
}

void
vmbc_schedule_sampled(const VmbcScheduleParams *params, VmbcBeancounter *bc, gint64 now)
{
	VmbcSampleSchedule *s = &bc->schedule;
	gint64 held = bc->parm[VMBC_RES_PHYSPAGES].held;
	gint64 headroom;
	gdouble rate, wait_usec;

	/* the fastest growth seen: a guest that outgrows the ceiling is watched at its own pace */
	if (s->last_at > 0 && now > s->last_at && held > s->last_held) {
		gdouble grew = (gdouble)(held - s->last_held) * 1e6 / (gdouble)(now - s->last_at);
		if (grew > vmbc_schedule_rate(params, bc, now)) {
			s->peak_rate = grew;
			s->peak_at = now;
		}
	}
	if (s->peak_rate > 0 && now - s->peak_at >= VMBC_SCHEDULE_PEAK_HALFLIFE_USEC) {
		s->peak_rate = vmbc_schedule_rate(params, bc, now);
		s->peak_at = now;
		if (s->peak_rate <= (gdouble)params->ceiling_pages)
			s->peak_rate = 0;
	}
	s->last_at = now;
	s->last_held = held;
	s->touched = TRUE;
	s->next_at = 0;
	if (params->ceiling_pages <= 0)
		return;
	headroom = vmbc_schedule_headroom(params, bc);
	rate = vmbc_schedule_rate(params, bc, now);
	/*
	 * Held can reach the nearest bound no sooner than headroom / rate from now;
	 * the first tick at or after that reads it, at most a tick later.
	 */
	wait_usec = headroom == G_MAXINT64 ? (gdouble)VMBC_SCHEDULE_MAX_USEC
					   : (gdouble)headroom * 1e6 / rate;
	if (wait_usec < (gdouble)params->tick_usec)
		return;
	s->next_at = now + (gint64)MIN(wait_usec, (gdouble)VMBC_SCHEDULE_MAX_USEC);
}

gboolean
vmbc_schedule_due(const VmbcBeancounter *bc, gint64 now)
{
	return now >= bc->schedule.next_at;
}

void
vmbc_schedule_wake(VmbcBeancounter *bc)
{
	bc->schedule.next_at = 0;
	bc->schedule.touched = TRUE;
}
