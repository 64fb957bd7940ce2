/*
 * vmbc-resource.h: the ledger of one resource of one beancounter.
 *
 * This is the part of UBC that only counts: charge, uncharge, the watermarks
 * and failcnt. What to do when held passes the barrier or the limit is policy
 * and lives with each resource (vmbc-physpages.c, vmbc-vmguarpages.c,
 * vmbc-vmmpages.c), driven by the engine.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
	VMBC_RES_PHYSPAGES,   /* guest RAM resident on the host */
	VMBC_RES_VMGUARPAGES, /* guest-visible memory (balloon actual); barrier = guarantee */
	VMBC_RES_VMMPAGES,    /* the VMM process's own resident pages */
	VMBC_RES_COUNT,
} VmbcResourceId;

/* All values in pages; barrier and limit may be VMBC_UNLIMITED. */
typedef struct {
	gint64 held;
	gint64 maxheld;
	gint64 minheld;
	gint64 barrier;
	gint64 limit;
	guint64 failcnt;
} VmbcParm;

/* "physpages", "vmguarpages", "vmmpages". */
const gchar *vmbc_resource_name(VmbcResourceId id);

/* Looks up a resource by name; on error names the bad value and the valid ones. */
gboolean vmbc_resource_from_name(const gchar *name, VmbcResourceId *id_out, GError **error);

/* A fresh ledger: nothing held, unlimited barrier and limit, no failures. */
void vmbc_parm_init(VmbcParm *parm);

/* Called when @pages more are in use. Raises maxheld as needed. */
void vmbc_parm_charge(VmbcParm *parm, gint64 pages);

/*
 * Called when @pages are given back. Uncharging more than is held is a
 * bookkeeping bug of the caller: held is clamped at zero and a warning logged,
 * as UBC's "uncharging too much" did.
 */
void vmbc_parm_uncharge(VmbcParm *parm, gint64 pages);

/* Charges or uncharges the difference between @held and the current held. */
void vmbc_parm_set_held(VmbcParm *parm, gint64 held);

/* Starts a new observation window: maxheld = minheld = held, failcnt = 0. */
void vmbc_parm_reset(VmbcParm *parm);

/*
 * Starts counting at @held without charging the way there: for a VM adopted
 * while running. minheld restarts at @held, maxheld only rises to it (a value
 * restored from saved state stays); failcnt is kept.
 */
void vmbc_parm_adopt(VmbcParm *parm, gint64 held);

/* The lower of barrier and limit: where held starts to matter. VMBC_UNLIMITED if neither is set. */
gint64 vmbc_parm_first_bound(const VmbcParm *parm);

/* TRUE if held is above the limit / the barrier. */
gboolean vmbc_parm_over_limit(const VmbcParm *parm);
gboolean vmbc_parm_over_barrier(const VmbcParm *parm);

G_END_DECLS
