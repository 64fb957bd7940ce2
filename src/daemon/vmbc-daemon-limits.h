/*
 * vmbc-daemon-limits.h: the limits a beancounter starts with and goes back
 * to. vmbc.conf gives them ([defaults], [domain NAME], [host]); the limits an
 * operator set at run time are saved in the state file and win over the file
 * until they are reset to it (vmbc setlimit DOM RES default).
 */
#pragma once

#include "vmbc-config.h"
#include "vmbc-engine.h"
#include "vmbc-state.h"

G_BEGIN_DECLS

/*
 * Applies [defaults] and [domain NAME] to @bc, each resource only where no
 * runtime limit is saved for it, then (@runtime_too) the saved runtime limits.
 * What cannot be applied is logged and left as it was.
 */
void vmbc_limits_apply_vm(VmbcEngine *engine, const VmbcConfig *config, VmbcState *state,
			  VmbcBeancounter *bc, gboolean runtime_too, gint64 now);

/*
 * What vmbc.conf says of @res of the VM @bc, as set-limits takes it: the
 * barrier and limit of physpages and vmmpages, the guarantee (limit
 * unlimited) of vmguarpages; unlimited (guarantee 0) where it says nothing.
 */
gboolean vmbc_limits_configured_vm(const VmbcConfig *config, const VmbcBeancounter *bc,
				   VmbcResourceId res, gint64 *barrier, gint64 *limit,
				   GError **error);

/*
 * The host's [host] barrier and limit in pages of a host of @host_pages, if
 * vmbc.conf sets either: then they are the VMs' budget instead of the one the
 * host measures. A value that does not parse is logged and left unlimited.
 */
gboolean vmbc_limits_configured_host(const VmbcConfig *config, gint64 host_pages, gint64 *barrier,
				     gint64 *limit);

G_END_DECLS
