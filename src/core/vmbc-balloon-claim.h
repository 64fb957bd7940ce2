/*
 * vmbc-balloon-claim.h: the claim vmbcd keeps on a balloon it made smaller
 * (VmbcBalloonClaim in vmbc-beancounter.h). Each function returns TRUE when
 * the claim changed, so that the caller saves it.
 */
#pragma once

#include "vmbc-beancounter.h"

G_BEGIN_DECLS

/* The claim ends: nothing of the balloon is vmbcd's. Always TRUE. */
gboolean vmbc_balloon_claim_drop(VmbcBeancounter *bc);

/*
 * The balloon's first size after a restart arrived (bc->balloon_actual): within
 * @slack pages of the saved target, the balloon is vmbcd's again and its target
 * is restored; anywhere else somebody else set it, and the claim is dropped.
 */
gboolean vmbc_balloon_claim_confirm(VmbcBeancounter *bc, gint64 slack);

/*
 * vmbcd sent @target, for @reason: the claim follows it. It starts with the
 * first target below the guest's full size (remembering the size before), and
 * ends when vmbcd gives the guest everything back.
 */
gboolean vmbc_balloon_claim_record(VmbcBeancounter *bc, gint64 target, VmbcBalloonReason reason);

G_END_DECLS
