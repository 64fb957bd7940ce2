/*
 * vmbc-host.c: the root beancounter "host".
 *
 * The host holds the sum of its children's physpages (charged in
 * vmbc_engine_sample()). Over its barrier it takes memory from the VM whose
 * pages are cheapest to take, by ESX's share-based rule with an idle memory
 * tax: rho = shares / (P * (f + k * (1 - f))), k = 1 / (1 - tau), with P the
 * pages held and f the active fraction (1 - what the guest reports idle). The
 * lowest rho gives first. Over the barrier only what the guest reports it can
 * spare is taken; over the limit anything above the guarantee.
 */
#include "vmbc-engine-private.h"

static gboolean
can_give(VmbcEngine *engine, VmbcBeancounter *bc, gboolean hard, gint64 *pages_out)
{
	gint64 room, pages;
	VmbcReclaimState reclaim;

	if (!bc->sampled || bc->balloon_actual < 0)
		return FALSE;
	if (bc->balloon == VMBC_BALLOON_NO_DEVICE || bc->balloon == VMBC_BALLOON_NO_DRIVER)
		return FALSE;
	/* a VM busy with its own reclaim is left to it */
	reclaim = vmbc_physpages_get_reclaim(bc);
	if (reclaim != VMBC_RECLAIM_IDLE && reclaim != VMBC_RECLAIM_BARRIER)
		return FALSE;
	if (bc->balloon_target >= 0 &&
	    ABS(bc->balloon_actual - bc->balloon_target) > engine->config.min_step_pages)
		return FALSE;
	room = bc->balloon_actual - vmbc_beancounter_guarantee(bc);
	pages = hard ? room : MIN(room, vmbc_beancounter_spare(bc));
	if (pages < engine->config.min_step_pages)
		return FALSE;
	*pages_out = pages;
	return TRUE;
}

static gdouble
rho(VmbcEngine *engine, VmbcBeancounter *bc)
{
	gdouble idle = vmbc_beancounter_idle_fraction(bc);
	gdouble active = idle < 0 ? 1.0 : 1.0 - idle;
	gdouble tau = CLAMP(engine->config.idle_tax, 0.0, 0.99);
	gdouble k = 1.0 / (1.0 - tau);
	gdouble pages = (gdouble)MAX(bc->parm[VMBC_RES_PHYSPAGES].held, 1);

	return (gdouble)MAX(bc->shares, 1u) / (pages * (active + k * (1.0 - active)));
}

/* Runs after every VM ticked: over the host barrier, one step from the cheapest VM. */
static void
host_tick(VmbcEngine *engine, gint64 now)
{
	VmbcBeancounter *host = engine->host;
	VmbcParm *parm = &host->parm[VMBC_RES_PHYSPAGES];
	VmbcBeancounter *victim = NULL;
	gint64 victim_pages = 0;
	gdouble victim_rho = G_MAXDOUBLE;
	gboolean hard;
	gint64 excess, step, target;
	g_autoptr(GError) error = NULL;

	if (!vmbc_parm_over_barrier(parm))
		return;
	hard = vmbc_parm_over_limit(parm);
	excess = parm->held - parm->barrier;

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
		if (hard && now - engine->host_last_fail >= engine->config.reclaim_timeout_usec) {
			g_autofree gchar *held = vmbc_engine_fmt(parm->held);
			g_autofree gchar *limit = vmbc_engine_fmt(parm->limit);
			parm->failcnt++;
			engine->host_last_fail = now;
			vmbc_engine_emit(engine, VMBC_EVENT_RECLAIM_FAILED, host,
					 VMBC_RES_PHYSPAGES, -1, VMBC_ERROR_GUARANTEE,
					 "host: guests hold %s, over the host limit %s, and no VM "
					 "can give more above its guarantee",
					 held, limit);
		}
		return;
	}

	step = MIN(excess, victim_pages);
	step = MIN(step, hard ? 2 * engine->config.barrier_step_pages
			      : engine->config.barrier_step_pages);
	if (step < engine->config.min_step_pages)
		return;
	target = victim->balloon_actual - step;
	if (!vmbc_engine_set_balloon(engine, victim, target, &error)) {
		g_warning("%s", error->message);
		return;
	}
	vmbc_physpages_set_last_step(victim, now);
	{
		g_autofree gchar *held = vmbc_engine_fmt(parm->held);
		g_autofree gchar *barrier = vmbc_engine_fmt(parm->barrier);
		g_autofree gchar *amount = vmbc_engine_fmt(step);
		vmbc_engine_emit(engine, VMBC_EVENT_HOST_RECLAIM, victim, VMBC_RES_PHYSPAGES,
				 target, VMBC_ERROR_FAILED,
				 "host: guests hold %s, over the host barrier %s: taking %s from "
				 "'%s'",
				 held, barrier, amount, victim->name);
	}
}

const VmbcHostOps vmbc_host_ops = {
	.tick = host_tick,
};
