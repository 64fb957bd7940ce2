/*
 * vmbc-vmguarpages.c: the vmguarpages resource — guest-visible memory.
 *
 * held is the balloon's actual size; the barrier is the guarantee, the floor
 * under which vmbcd never inflates the balloon. Every other policy asks for
 * balloon targets through vmbc_engine_set_balloon(), which clamps to it; here
 * the floor is restored when the balloon sits below it (the guarantee was
 * raised, or the balloon was set from outside vmbcd).
 */
#include "vmbc-engine-private.h"

static void
restore_floor(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now)
{
	g_autoptr(GError) error = NULL;
	gint64 guarantee = vmbc_beancounter_guarantee(bc);

	if (guarantee <= 0 || bc->balloon_actual < 0 || bc->balloon_actual >= guarantee)
		return;
	if (bc->balloon == VMBC_BALLOON_NO_DEVICE || bc->balloon == VMBC_BALLOON_NO_DRIVER)
		return;
	/* already asked; the guest is on its way */
	if (bc->balloon_target >= guarantee)
		return;
	if (!vmbc_engine_set_balloon(engine, bc, guarantee, &error)) {
		g_warning("%s", error->message);
		return;
	}
	{
		g_autofree gchar *from = vmbc_engine_fmt(bc->balloon_actual);
		g_autofree gchar *to = vmbc_engine_fmt(guarantee);
		vmbc_engine_emit(engine, VMBC_EVENT_DEFLATE, bc, VMBC_RES_VMGUARPAGES, guarantee,
				 VMBC_ERROR_FAILED,
				 "'%s' is below its guarantee: growing it from %s to %s", bc->name,
				 from, to);
	}
}

static gboolean
vmguarpages_change(VmbcEngine *engine, VmbcBeancounter *bc, gint64 barrier, gint64 limit,
		   gint64 now, VmbcChangeFunc done, gpointer user_data, GError **error)
{
	VmbcParm *parm = &bc->parm[VMBC_RES_VMGUARPAGES];

	if (barrier != VMBC_UNLIMITED && bc->max_pages > 0 && barrier > bc->max_pages) {
		g_autofree gchar *g = vmbc_engine_fmt(barrier);
		g_autofree gchar *m = vmbc_engine_fmt(bc->max_pages);
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "guarantee %s of '%s' is above its maximum memory %s", g, bc->name, m);
		return FALSE;
	}
	parm->barrier = barrier;
	parm->limit = limit;
	restore_floor(engine, bc, now);
	if (done != NULL)
		done(bc, NULL, user_data);
	return TRUE;
}

static void
vmguarpages_tick(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now)
{
	restore_floor(engine, bc, now);
}

const VmbcResourceOps vmbc_vmguarpages_ops = {
	.id = VMBC_RES_VMGUARPAGES,
	.change = vmguarpages_change,
	.limit_hit = NULL,
	.barrier_hit = NULL,
	.under_barrier = vmguarpages_tick,
};
