/*
 * vmbc-control.h: the control socket (docs/control-protocol.md), QMP on the
 * project's own QMP server: queries for anyone, changes for root and the
 * admin group, events for every client.
 */
#pragma once

#include <glib.h>

#include "vmbc-daemon.h"

G_BEGIN_DECLS

typedef struct _VmbcControl VmbcControl;

VmbcControl *vmbc_control_new(VmbcDaemon *daemon);
void vmbc_control_free(VmbcControl *control);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbcControl, vmbc_control_free)

/* Creates the socket's directory if needed and listens (mode 0666: rights are checked per command).
 */
gboolean vmbc_control_listen(VmbcControl *control, const gchar *path, GError **error);

G_END_DECLS
