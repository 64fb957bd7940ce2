/*
 * vmbc-daemon-follow.h: between ticks, the VMs the engine follows (a reclaim
 * or a change under way) read again and their policies run, so that the end
 * of a reclaim is seen when the balloon gets there, not at the next tick.
 */
#pragma once

#include "vmbc-backend.h"
#include "vmbc-engine.h"

G_BEGIN_DECLS

/*
 * Called by the daemon's follow timer, every tenth of a tick while it runs:
 * each VM vmbc_engine_is_following() is measured again by the backend that
 * @owner (VmbcBeancounter -> VmbcBackend) gives for it
 * (vmbc_backend_sample_vm()) and vmbc_engine_follow() runs. Returns FALSE,
 * having done nothing, once the engine follows nobody: the timer stops.
 */
gboolean vmbc_daemon_follow(VmbcEngine *engine, GHashTable *owner);

G_END_DECLS
