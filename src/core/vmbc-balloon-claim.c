/*
 * vmbc-balloon-claim.c: what vmbcd set on a VM's balloon (VmbcBalloonClaim),
 * so that raising or removing a limit gives the guest back what vmbcd took,
 * also after a restart: the claim follows every target vmbcd sends, and a
 * restarted vmbcd confirms it against the balloon's first size, or drops it
 * when somebody else set the balloon meanwhile. Functions of the beancounter
 * alone; the engine calls them and counts the changes for the state file.
 */
#include "vmbc-balloon-claim.h"
#include "vmbc-size.h"

gboolean
vmbc_balloon_claim_drop(VmbcBeancounter *bc)
{
	bc->balloon_claim = (VmbcBalloonClaim){-1, -1, VMBC_UNLIMITED, VMBC_BALLOON_FOR_LIMIT};
	bc->balloon_claim_unconfirmed = FALSE;
	return TRUE;
}

gboolean
vmbc_balloon_claim_confirm(VmbcBeancounter *bc, gint64 slack)
{
	VmbcBalloonClaim *c = &bc->balloon_claim;
	g_autofree gchar *actual = vmbc_size_format_human(bc->balloon_actual, vmbc_page_size());
	g_autofree gchar *target = vmbc_size_format_human(c->target, vmbc_page_size());

	if (ABS(bc->balloon_actual - c->target) <= slack) {
		bc->balloon_claim_unconfirmed = FALSE;
		bc->balloon_target = c->target;
		/*
		 * virtio-mem blocks vmbcd unplugged are not in the size QEMU
		 * reports after a restart: the VM's maximum is what it was then
		 */
		if (bc->has_vmem && c->before > bc->max_pages) {
			bc->vmem.max += c->before - bc->max_pages;
			bc->max_pages = c->before;
		}
		g_info("VM '%s': balloon at %s, as vmbcd set it (for %s): vmbcd's again", bc->name,
		       actual, vmbc_balloon_reason_to_string(c->reason));
		return FALSE;
	}
	g_info("VM '%s': balloon at %s, but vmbcd had set %s: somebody else set it since, it "
	       "is left alone",
	       bc->name, actual, target);
	return vmbc_balloon_claim_drop(bc);
}

gboolean
vmbc_balloon_claim_record(VmbcBeancounter *bc, gint64 target, VmbcBalloonReason reason)
{
	VmbcBalloonClaim *c = &bc->balloon_claim;
	gboolean fresh = c->target < 0 || bc->balloon_claim_unconfirmed;

	if (bc->max_pages > 0 && target >= bc->max_pages)
		return c->target >= 0 && vmbc_balloon_claim_drop(bc);
	if (fresh) {
		c->before = bc->balloon_actual >= 0 ? bc->balloon_actual : bc->max_pages;
		bc->balloon_claim_unconfirmed = FALSE;
	}
	if (fresh || target < c->target) {
		c->reason = reason;
		c->limit = bc->parm[VMBC_RES_PHYSPAGES].limit;
	}
	if (fresh || target != c->target) {
		c->target = target;
		return TRUE;
	}
	return FALSE;
}
