/*
 * vmbc-backend.h: the interface every backend plugin implements.
 *
 * A backend finds VMs (QEMU QMP sockets, libvirt domains), measures them
 * host-side, and acts on their balloons. As in fwupd, a backend is a GObject
 * subclass whose class_init assigns only the vfuncs it needs; every fallible
 * vfunc returns gboolean with a GError. Backends are compiled in and listed in
 * one table (vmbc-plugin-table.c).
 *
 * The daemon owns the engine; a backend reaches it through the helpers below,
 * and tells the daemon about VMs with vmbc_backend_add_vm() and
 * vmbc_backend_remove_vm() so that configured and saved limits are applied.
 */
#pragma once

#include <glib-object.h>
#include <json-glib/json-glib.h>

#include "vmbc-config.h"
#include "vmbc-engine.h"

G_BEGIN_DECLS

#define VMBC_TYPE_BACKEND (vmbc_backend_get_type())
G_DECLARE_DERIVABLE_TYPE(VmbcBackend, vmbc_backend, VMBC, BACKEND, GObject)

typedef struct _VmbcDaemon VmbcDaemon;

struct _VmbcBackendClass {
	GObjectClass parent_class;

	/* Start finding VMs (connect, watch sockets); called once, with a main loop. */
	gboolean (*start)(VmbcBackend *self, GError **error);
	/* Stop: close connections. Balloons are left as they are. */
	void (*stop)(VmbcBackend *self);
	/* The configuration was reloaded (SIGHUP); counters are kept. */
	gboolean (*reload)(VmbcBackend *self, const VmbcConfig *config, GError **error);
	/*
	 * Called every tick before the engine runs: measure held host-side for every
	 * VM of this backend and feed vmbc_engine_sample(). Must be cheap (statm, not
	 * smaps, on most ticks) and must not block on a VM: QMP traffic is async.
	 */
	void (*sample)(VmbcBackend *self, gint64 now);
	/* Ask the VM's balloon for a logical size of @target_pages (async; see VmbcActuator). */
	gboolean (*set_balloon)(VmbcBackend *self, VmbcBeancounter *bc, gint64 target_pages,
				GError **error);
	/* Run an escalation (pause, memory.high) on the VM. */
	gboolean (*escalate)(VmbcBackend *self, VmbcBeancounter *bc, VmbcEscalation how,
			     GError **error);
	/* Add backend facts about a VM to a JSON object being built (pid, socket, ...). */
	void (*describe)(VmbcBackend *self, VmbcBeancounter *bc, JsonBuilder *builder);
	/* TRUE while the backend has a working connection to its source (metrics: backend up). */
	gboolean (*is_up)(VmbcBackend *self);

	gpointer padding[8];
};

/* The backend's name from the table: "qmp", "libvirt". */
const gchar *vmbc_backend_get_name(VmbcBackend *self);

VmbcDaemon *vmbc_backend_get_daemon(VmbcBackend *self);
VmbcEngine *vmbc_backend_get_engine(VmbcBackend *self);
const VmbcConfig *vmbc_backend_get_config(VmbcBackend *self);

/*
 * A VM appeared (or was re-adopted after a restart). The daemon creates its
 * beancounter, applies [defaults], [domain NAME] and saved limits, and returns
 * it (borrowed; valid until vmbc_backend_remove_vm()). @backend_data is stored
 * in bc->backend_data and freed with @free_func when the VM is removed.
 * Returns NULL with an error if a VM of that name exists already.
 */
VmbcBeancounter *vmbc_backend_add_vm(VmbcBackend *self, const gchar *name, gint64 max_pages,
				     gpointer backend_data, GDestroyNotify free_func,
				     GError **error);

/* The VM went away: its beancounter is dropped and its pending requests fail. */
void vmbc_backend_remove_vm(VmbcBackend *self, VmbcBeancounter *bc);

/* The current monotonic time in usec, as the engine sees it. */
gint64 vmbc_backend_now(VmbcBackend *self);

/* Used by the daemon only. */
void vmbc_backend_setup(VmbcBackend *self, const gchar *name, VmbcDaemon *daemon);

gboolean vmbc_backend_start(VmbcBackend *self, GError **error);
void vmbc_backend_stop(VmbcBackend *self);
gboolean vmbc_backend_reload(VmbcBackend *self, const VmbcConfig *config, GError **error);
void vmbc_backend_sample(VmbcBackend *self, gint64 now);
gboolean vmbc_backend_set_balloon(VmbcBackend *self, VmbcBeancounter *bc, gint64 target_pages,
				  GError **error);
gboolean vmbc_backend_escalate(VmbcBackend *self, VmbcBeancounter *bc, VmbcEscalation how,
			       GError **error);
void vmbc_backend_describe(VmbcBackend *self, VmbcBeancounter *bc, JsonBuilder *builder);
gboolean vmbc_backend_is_up(VmbcBackend *self);

G_END_DECLS
