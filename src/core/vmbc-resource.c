/*
 * vmbc-resource.c: the ledger (see vmbc-resource.h). No policy here.
 */
#include "vmbc-error.h"
#include "vmbc-resource.h"
#include "vmbc-size.h"

static const gchar *const resource_names[VMBC_RES_COUNT] = {
	[VMBC_RES_PHYSPAGES] = "physpages",
	[VMBC_RES_VMGUARPAGES] = "vmguarpages",
	[VMBC_RES_VMMPAGES] = "vmmpages",
};

const gchar *
vmbc_resource_name(VmbcResourceId id)
{
	g_return_val_if_fail(id < VMBC_RES_COUNT, "unknown");
	return resource_names[id];
}

gboolean
vmbc_resource_from_name(const gchar *name, VmbcResourceId *id_out, GError **error)
{
	for (guint i = 0; i < VMBC_RES_COUNT; i++) {
		if (g_strcmp0(name, resource_names[i]) == 0) {
			*id_out = (VmbcResourceId)i;
			return TRUE;
		}
	}
	g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
		    "unknown resource '%s' (expected physpages, vmguarpages or vmmpages)",
		    name != NULL ? name : "");
	return FALSE;
}

void
vmbc_parm_init(VmbcParm *parm)
{
	parm->held = 0;
	parm->maxheld = 0;
	parm->minheld = 0;
	parm->barrier = VMBC_UNLIMITED;
	parm->limit = VMBC_UNLIMITED;
	parm->failcnt = 0;
}

void
vmbc_parm_charge(VmbcParm *parm, gint64 pages)
{
	g_return_if_fail(pages >= 0);
	if (parm->held > G_MAXINT64 - pages)
		parm->held = G_MAXINT64;
	else
		parm->held += pages;
	if (parm->held > parm->maxheld)
		parm->maxheld = parm->held;
}

void
vmbc_parm_uncharge(VmbcParm *parm, gint64 pages)
{
	g_return_if_fail(pages >= 0);
	if (pages > parm->held) {
		g_warning("uncharging too much: %" G_GINT64_FORMAT " pages, held %" G_GINT64_FORMAT,
			  pages, parm->held);
		pages = parm->held;
	}
	parm->held -= pages;
	if (parm->held < parm->minheld)
		parm->minheld = parm->held;
}

void
vmbc_parm_set_held(VmbcParm *parm, gint64 held)
{
	if (held < 0)
		held = 0;
	if (held >= parm->held)
		vmbc_parm_charge(parm, held - parm->held);
	else
		vmbc_parm_uncharge(parm, parm->held - held);
}

void
vmbc_parm_reset(VmbcParm *parm)
{
	parm->maxheld = parm->held;
	parm->minheld = parm->held;
	parm->failcnt = 0;
}

void
vmbc_parm_adopt(VmbcParm *parm, gint64 held)
{
	parm->held = MAX(held, 0);
	/* a maxheld restored from saved state is kept if it is higher */
	parm->maxheld = MAX(parm->maxheld, parm->held);
	parm->minheld = parm->held;
}

gint64
vmbc_parm_first_bound(const VmbcParm *parm)
{
	return MIN(parm->barrier, parm->limit);
}

gboolean
vmbc_parm_over_limit(const VmbcParm *parm)
{
	return parm->limit != VMBC_UNLIMITED && parm->held > parm->limit;
}

gboolean
vmbc_parm_over_barrier(const VmbcParm *parm)
{
	return parm->barrier != VMBC_UNLIMITED && parm->held > parm->barrier;
}
