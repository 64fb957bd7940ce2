/*
 * vmbc-notify.h: what vmbcd tells the service manager (systemd's sd_notify
 * protocol): READY=1 once the first adoption pass is over, a STATUS= line
 * with the VMs it holds, and WATCHDOG=1 from the main loop while the tick
 * runs.
 *
 * Outside systemd (no $NOTIFY_SOCKET) nothing is sent and nothing is lost.
 */
#pragma once

#include <glib.h>

#include "vmbc-daemon.h"

G_BEGIN_DECLS

typedef struct _VmbcNotify VmbcNotify;

/*
 * READY=1 comes at most this long after the start even if a backend's first
 * pass is not over (a QEMU that does not answer its monitor): systemd would
 * otherwise fail the start of a vmbcd that works for every other VM.
 */
#define VMBC_NOTIFY_READY_TIMEOUT_SECONDS 30

/*
 * Starts following @daemon (borrowed; must outlive the result), which was
 * started. The watchdog is armed when systemd asks for one
 * ($WATCHDOG_USEC, sd_watchdog_enabled()).
 */
VmbcNotify *vmbc_notify_new(VmbcDaemon *daemon);

/* Sends STOPPING=1 and stops. */
void vmbc_notify_free(VmbcNotify *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbcNotify, vmbc_notify_free)

/* The STATUS= text for @summary, e.g. "3 VMs, 1 over limit, 0 failing". */
gchar *vmbc_notify_status_text(const VmbcDaemonSummary *summary);

G_END_DECLS
