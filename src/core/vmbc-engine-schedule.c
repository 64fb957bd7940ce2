/*
 * vmbc-engine-schedule.c: the engine's side of the headroom schedule
 * (vmbc-schedule.h): which VMs a backend must read at a tick, and waking
 * them all.
 */
#include "vmbc-engine-private.h"
#include "vmbc-schedule.h"

/* physpages through its table, as the engine reaches it: its reclaim is what is followed */
static const VmbcResourceOps *const phys_ops = &vmbc_physpages_ops;

static void
schedule_params(VmbcEngine *engine, VmbcScheduleParams *params)
{
	const VmbcParm *host = &engine->host->parm[VMBC_RES_PHYSPAGES];
	gint64 bound = vmbc_parm_first_bound(host);

	params->ceiling_pages = engine->config.growth_ceiling_pages;
	params->tick_usec = engine->config.tick_usec;
	params->host_headroom = bound == VMBC_UNLIMITED ? -1 : MAX(bound - host->held, 0);
	/*
	 * A budget the host measures every tick (the VMs' cgroup, host RAM) is
	 * its real headroom however stale a VM's held is: the budget is the
	 * limit less what the host holds besides the held the engine knows, so
	 * budget - held is the limit less what the host really holds now. The
	 * host sees its own barrier at the tick it is crossed, and then every VM
	 * is read (vmbc_engine_sample_due()); a VM needs no share of it. Only a
	 * budget set by hand is watched through the VMs' reads.
	 */
	if (engine->host_state.signals_known &&
	    engine->host_state.signals.source != VMBC_BUDGET_CONFIG &&
	    engine->host_state.signals.source != VMBC_BUDGET_NONE)
		params->host_headroom = -1;
	params->vms = engine->vms->len;
}

void
vmbc_engine_schedule_sampled(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now)
{
	VmbcScheduleParams params;

	schedule_params(engine, &params);
	vmbc_schedule_sampled(&params, bc, now);
}

gboolean
vmbc_engine_sample_due(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now)
{
	g_return_val_if_fail(engine != NULL && bc != NULL, TRUE);

	if (!bc->sampled || bc->pending != NULL || engine->config.growth_ceiling_pages <= 0)
		return TRUE;
	/* a reclaim follows held every tick: its result is seen at the next */
	if (phys_ops->busy(bc))
		return TRUE;
	/* a balloon on its way moves held */
	if (bc->balloon_target >= 0 && bc->balloon_actual >= 0 &&
	    ABS(bc->balloon_actual - bc->balloon_target) > engine->config.min_step_pages)
		return TRUE;
	if (vmbc_parm_over_barrier(&engine->host->parm[VMBC_RES_PHYSPAGES]))
		return TRUE;
	return vmbc_schedule_due(bc, now);
}

void
vmbc_engine_wake_all(VmbcEngine *engine)
{
	g_return_if_fail(engine != NULL);

	for (guint i = 0; i < engine->vms->len; i++)
		vmbc_schedule_wake(g_ptr_array_index(engine->vms, i));
}

gboolean
vmbc_engine_tick_quiet(VmbcEngine *engine, VmbcBeancounter *bc)
{
	const VmbcParm *phys = &bc->parm[VMBC_RES_PHYSPAGES];
	const VmbcParm *vmm = &bc->parm[VMBC_RES_VMMPAGES];
	gint64 guarantee = vmbc_beancounter_guarantee(bc);

	if (bc->schedule.touched || bc->pending != NULL || engine->config.growth_ceiling_pages <= 0)
		return FALSE;
	if (phys_ops->busy(bc))
		return FALSE;
	if (vmbc_parm_over_barrier(phys) || vmbc_parm_over_limit(phys) ||
	    vmbc_parm_over_barrier(vmm) || vmbc_parm_over_limit(vmm))
		return FALSE;
	/*
	 * A balloon at the guest's full size gives nothing to deflate, one at or
	 * above the guarantee nothing to restore: with nothing changed since the
	 * last tick, every policy would find what it found then.
	 */
	if (bc->balloon_actual >= 0 && (bc->max_pages <= 0 || bc->balloon_actual < bc->max_pages))
		return FALSE;
	if (bc->balloon_actual >= 0 && guarantee > bc->balloon_actual)
		return FALSE;
	return bc->balloon_target < 0 || bc->balloon_target >= bc->max_pages;
}

gboolean
vmbc_engine_is_following(VmbcEngine *engine, VmbcBeancounter *bc)
{
	g_return_val_if_fail(engine != NULL && bc != NULL, FALSE);

	return bc->pending != NULL || phys_ops->following(bc);
}

void
vmbc_engine_note_following(VmbcEngine *engine, VmbcBeancounter *bc)
{
	if (bc != engine->host && vmbc_engine_is_following(engine, bc))
		g_hash_table_add(engine->followed, bc);
}

static gint
cmp_id(gconstpointer a, gconstpointer b)
{
	const VmbcBeancounter *x = *(VmbcBeancounter *const *)a;
	const VmbcBeancounter *y = *(VmbcBeancounter *const *)b;

	return x->id < y->id ? -1 : x->id > y->id;
}

GPtrArray *
vmbc_engine_get_following(VmbcEngine *engine)
{
	GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)vmbc_beancounter_unref);
	GHashTableIter iter;
	gpointer key;

	g_return_val_if_fail(engine != NULL, out);

	g_hash_table_iter_init(&iter, engine->followed);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		VmbcBeancounter *bc = key;

		if (!vmbc_engine_is_following(engine, bc)) {
			g_hash_table_iter_remove(&iter);
			continue;
		}
		g_ptr_array_add(out, vmbc_beancounter_ref(bc));
	}
	g_ptr_array_sort(out, cmp_id);
	return out;
}

gboolean
vmbc_engine_follows_any(VmbcEngine *engine)
{
	GHashTableIter iter;
	gpointer key;

	g_return_val_if_fail(engine != NULL, FALSE);

	g_hash_table_iter_init(&iter, engine->followed);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		if (vmbc_engine_is_following(engine, key))
			return TRUE;
	}
	return FALSE;
}
