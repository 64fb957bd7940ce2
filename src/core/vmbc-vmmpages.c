/*
 * vmbc-vmmpages.c: the vmmpages resource — what the VMM process itself keeps
 * resident apart from guest RAM (QEMU's heap, TCG's code buffer, ...).
 *
 * Informational by default. With a limit set, each crossing of it counts once
 * in failcnt and emits an event: the balloon cannot shrink QEMU's own memory,
 * so there is nothing to reclaim, only something for the operator to see.
 */
#include "vmbc-engine-private.h"

static void
vmmpages_limit_hit(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now)
{
	VmbcParm *parm = &bc->parm[VMBC_RES_VMMPAGES];
	g_autofree gchar *held = NULL;
	g_autofree gchar *limit = NULL;

	if (bc->vmm_over_limit)
		return;
	bc->vmm_over_limit = TRUE;
	parm->failcnt++;
	held = vmbc_engine_fmt(parm->held);
	limit = vmbc_engine_fmt(parm->limit);
	vmbc_engine_emit(engine, VMBC_EVENT_RECLAIM_FAILED, bc, VMBC_RES_VMMPAGES, -1,
			 VMBC_ERROR_NO_PROGRESS,
			 "'%s' vmmpages: the VMM holds %s, over its limit %s (not reclaimable by "
			 "the balloon)",
			 bc->name, held, limit);
}

static void
vmmpages_within(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now)
{
	bc->vmm_over_limit = FALSE;
}

const VmbcResourceOps vmbc_vmmpages_ops = {
	.id = VMBC_RES_VMMPAGES,
	.change = NULL,
	.limit_hit = vmmpages_limit_hit,
	.barrier_hit = vmmpages_within,
	.under_barrier = vmmpages_within,
};
