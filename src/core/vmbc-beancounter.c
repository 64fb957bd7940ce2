/*
 * vmbc-beancounter.c: creation, reference counting and the derived values of a
 * beancounter that the policies read. Guest statistics are hints from an
 * untrusted party: everything derived from them is clamped to what the host
 * knows to be possible, so a lying guest can only make itself reclaimed more.
 */
#include "vmbc-beancounter.h"
#include "vmbc-size.h"

VmbcBeancounter *
vmbc_beancounter_new(const gchar *name, guint id)
{
	VmbcBeancounter *bc = g_new0(VmbcBeancounter, 1);

	g_return_val_if_fail(name != NULL, NULL);

	bc->ref_count = 1;
	bc->name = g_strdup(name);
	bc->id = id;
	for (guint i = 0; i < VMBC_RES_COUNT; i++)
		vmbc_parm_init(&bc->parm[i]);
	bc->shares = VMBC_DEFAULT_SHARES;
	bc->balloon = VMBC_BALLOON_UNKNOWN;
	bc->free_page_reporting = -1;
	bc->balloon_actual = -1;
	bc->balloon_target = -1;
	bc->dirty_rate = -1;
	bc->idle_anchor_rate = -1;
	bc->balloon_claim = (VmbcBalloonClaim){-1, -1, VMBC_UNLIMITED, VMBC_BALLOON_FOR_LIMIT};
	bc->max_pages = 0;
	bc->stats = (VmbcGuestStats){-1, -1, -1, -1, -1, -1, 0};
	return bc;
}

VmbcBeancounter *
vmbc_beancounter_ref(VmbcBeancounter *bc)
{
	g_return_val_if_fail(bc != NULL, NULL);
	g_atomic_int_inc(&bc->ref_count);
	return bc;
}

void
vmbc_beancounter_unref(VmbcBeancounter *bc)
{
	if (bc == NULL)
		return;
	if (!g_atomic_int_dec_and_test(&bc->ref_count))
		return;
	/* pending changes hold a reference, so none can be left here */
	g_warn_if_fail(bc->pending == NULL);
	for (guint i = 0; i < VMBC_RES_COUNT; i++) {
		if (bc->res_state_free[i] != NULL && bc->res_state[i] != NULL)
			bc->res_state_free[i](bc->res_state[i]);
	}
	if (bc->backend_data_free != NULL && bc->backend_data != NULL)
		bc->backend_data_free(bc->backend_data);
	g_free(bc->escalation_failure);
	g_free(bc->name);
	g_free(bc->vmem_id);
	g_free(bc);
}

gint64
vmbc_beancounter_guarantee(const VmbcBeancounter *bc)
{
	gint64 g = bc->parm[VMBC_RES_VMGUARPAGES].barrier;
	if (g == VMBC_UNLIMITED || g < 0)
		return 0;
	return g;
}

static gint64
clamp_hint(gint64 v, gint64 max)
{
	if (v < 0)
		return 0;
	if (max > 0 && v > max)
		return max;
	return v;
}

gint64
vmbc_beancounter_spare(const VmbcBeancounter *bc)
{
	gint64 max = bc->balloon_actual > 0 ? bc->balloon_actual : bc->max_pages;
	gint64 free_pages, caches, spare;

	if (bc->stats.last_update == 0 || bc->stats.free < 0)
		return 0;
	free_pages = clamp_hint(bc->stats.free, max);
	caches = clamp_hint(bc->stats.caches, max);
	spare = free_pages + caches / 2;
	/* never more than MemAvailable says, if the guest reports it */
	if (bc->stats.available >= 0)
		spare = MIN(spare, clamp_hint(bc->stats.available, max));
	return clamp_hint(spare, max);
}

gdouble
vmbc_beancounter_idle_fraction(const VmbcBeancounter *bc)
{
	gint64 total = bc->stats.total > 0 ? bc->stats.total : bc->balloon_actual;
	if (bc->stats.last_update == 0 || bc->stats.available < 0 || total <= 0)
		return -1.0;
	return CLAMP((gdouble)bc->stats.available / (gdouble)total, 0.0, 1.0);
}

void
vmbc_beancounter_reset(VmbcBeancounter *bc)
{
	for (guint i = 0; i < VMBC_RES_COUNT; i++)
		vmbc_parm_reset(&bc->parm[i]);
}

const gchar *
vmbc_balloon_state_to_string(VmbcBalloonState state)
{
	switch (state) {
	case VMBC_BALLOON_OK:
		return "ok";
	case VMBC_BALLOON_NO_DEVICE:
		return "no-device";
	case VMBC_BALLOON_NO_DRIVER:
		return "no-driver";
	case VMBC_BALLOON_UNKNOWN:
	default:
		return "unknown";
	}
}

gboolean
vmbc_balloon_state_from_string(const gchar *text, VmbcBalloonState *out)
{
	static const VmbcBalloonState all[] = {VMBC_BALLOON_UNKNOWN, VMBC_BALLOON_OK,
					       VMBC_BALLOON_NO_DEVICE, VMBC_BALLOON_NO_DRIVER};

	for (guint i = 0; i < G_N_ELEMENTS(all); i++) {
		if (g_strcmp0(text, vmbc_balloon_state_to_string(all[i])) == 0) {
			*out = all[i];
			return TRUE;
		}
	}
	return FALSE;
}

VmbcBalloonOwner
vmbc_beancounter_balloon_owner(const VmbcBeancounter *bc)
{
	gint64 mib = (gint64)((1 << 20) / vmbc_page_size());

	if (bc->balloon_claim.target >= 0 && !bc->balloon_claim_unconfirmed)
		return VMBC_BALLOON_OWNER_VMBCD;
	if (bc->balloon_actual >= 0 && bc->max_pages > 0 &&
	    bc->balloon_actual + mib < bc->max_pages)
		return VMBC_BALLOON_OWNER_OTHER;
	return VMBC_BALLOON_OWNER_NONE;
}

const gchar *
vmbc_balloon_owner_to_string(VmbcBalloonOwner owner)
{
	switch (owner) {
	case VMBC_BALLOON_OWNER_VMBCD:
		return "vmbcd";
	case VMBC_BALLOON_OWNER_OTHER:
		return "other";
	case VMBC_BALLOON_OWNER_NONE:
	default:
		return "none";
	}
}

const gchar *
vmbc_balloon_reason_to_string(VmbcBalloonReason reason)
{
	switch (reason) {
	case VMBC_BALLOON_FOR_BARRIER:
		return "barrier";
	case VMBC_BALLOON_FOR_RECLAIM:
		return "reclaim";
	case VMBC_BALLOON_FOR_HOST:
		return "host";
	case VMBC_BALLOON_FOR_DEFLATE:
		return "deflate";
	case VMBC_BALLOON_FOR_LIMIT:
	default:
		return "limit";
	}
}

gboolean
vmbc_balloon_reason_from_string(const gchar *text, VmbcBalloonReason *out)
{
	static const VmbcBalloonReason all[] = {VMBC_BALLOON_FOR_LIMIT, VMBC_BALLOON_FOR_BARRIER,
						VMBC_BALLOON_FOR_RECLAIM, VMBC_BALLOON_FOR_HOST,
						VMBC_BALLOON_FOR_DEFLATE};

	for (guint i = 0; i < G_N_ELEMENTS(all); i++) {
		if (g_strcmp0(text, vmbc_balloon_reason_to_string(all[i])) == 0) {
			*out = all[i];
			return TRUE;
		}
	}
	return FALSE;
}
