/*
 * vmbc-daemon-private.h: what the backend base class and the control socket
 * need from the daemon beyond its public API.
 */
#pragma once

#include "vmbc-daemon.h"

G_BEGIN_DECLS

VmbcBeancounter *vmbc_daemon_add_vm(VmbcDaemon *daemon, VmbcBackend *backend, const gchar *name,
				    gint64 max_pages, gpointer backend_data,
				    GDestroyNotify free_func, GError **error);
void vmbc_daemon_remove_vm(VmbcDaemon *daemon, VmbcBeancounter *bc);

G_END_DECLS
