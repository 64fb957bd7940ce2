/*
 * vmbc-service.h: vmbcd as it runs: the daemon, with the control socket and
 * the metrics endpoint in front of it.
 *
 * The daemon (vmbc-daemon.h) owns the engine, the state and the backends;
 * the control socket and the metrics endpoint read and change it through its
 * API. This object owns all three, so that the daemon needs to know neither
 * of the two that use it.
 */
#pragma once

#include <glib.h>

#include "vmbc-config.h"
#include "vmbc-daemon.h"

G_BEGIN_DECLS

typedef struct _VmbcService VmbcService;

/* Takes ownership of @config. Nothing is opened yet. */
VmbcService *vmbc_service_new(VmbcConfig *config);

/* Stops it (balloons are left as they are) and frees it. */
void vmbc_service_free(VmbcService *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbcService, vmbc_service_free)

/*
 * Listens on the control socket and the metrics address (unless off), then
 * starts the daemon: state, backends, the tick. On error nothing is left
 * listening once the service is freed.
 */
gboolean vmbc_service_start(VmbcService *self, GError **error);

/* SIGHUP: the daemon's configuration is loaded again (vmbc_daemon_reload()). */
gboolean vmbc_service_reload(VmbcService *self, GError **error);

VmbcDaemon *vmbc_service_get_daemon(VmbcService *self);

G_END_DECLS
