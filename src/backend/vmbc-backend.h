/*
 * vmbc-backend.h: the interface every backend plugin implements.
 *
 * A backend finds VMs (QEMU QMP sockets, libvirt domains), measures them
 * host-side, and acts on their balloons. As in fwupd, a backend is a GObject
 * subclass whose class_init assigns only the vfuncs it needs; every fallible
 * vfunc returns gboolean with a GError. Backends are compiled in and listed in
 * one table (vmbc-plugin-table.c).
 *
 * A backend sees the program that runs it only through a VmbcBackendHost
 * (vmbc-backend-host.h), reached through the helpers below: the engine, the
 * clock, and vmbc_backend_add_vm() / vmbc_backend_remove_vm() so that
 * configured and saved limits are applied. The [daemon] keys of vmbc.conf it
 * reads it declares in its class (settings) and reads from a VmbcSettings.
 */
#pragma once

#include <glib-object.h>
#include <json-glib/json-glib.h>

#include "vmbc-backend-host.h"
#include "vmbc-engine.h"
#include "vmbc-settings.h"
#include "vmbc-statm-batch.h"

G_BEGIN_DECLS

#define VMBC_TYPE_BACKEND (vmbc_backend_get_type())
G_DECLARE_DERIVABLE_TYPE(VmbcBackend, vmbc_backend, VMBC, BACKEND, GObject)

/*
 * Keys more than one backend reads, declared alike by each: how often a VM's
 * smaps is read to split guest RAM from the VMM's own memory, and the guest
 * statistics polling interval asked of QEMU (whole seconds, as QEMU has it).
 */
#define VMBC_BACKEND_SETTING_SMAPS_INTERVAL                                                        \
	{                                                                                          \
		"smaps-interval", VMBC_SETTING_DURATION, "5m", 100000,                             \
			G_GINT64_CONSTANT(3600) * G_USEC_PER_SEC                                   \
	}
#define VMBC_BACKEND_SETTING_STATS_INTERVAL                                                        \
	{                                                                                          \
		"stats-interval", VMBC_SETTING_SECONDS, "1", 1, 3600                               \
	}
/* How often each VM's idle memory is measured from the host (dirty-rate sampling); 0 off. */
#define VMBC_BACKEND_SETTING_IDLE_INTERVAL                                                         \
	{                                                                                          \
		"idle-interval", VMBC_SETTING_DURATION, "30s", 0,                                  \
			G_GINT64_CONSTANT(3600) * G_USEC_PER_SEC                                   \
	}
/*
 * How a tick's statm reads are made (vmbc-statm-batch.h): one pread() per VM,
 * or together through io_uring where it works. pread by default: through
 * io_uring the reads cost more CPU, in io-wq workers (docs/performance.md,
 * "statm through io_uring").
 */
#define VMBC_BACKEND_SETTING_STATM_READS                                                           \
	{                                                                                          \
		"statm-reads", VMBC_SETTING_CHOICE, "pread", 0, 0, "uring|pread"                   \
	}
/* Most idle measures a backend starts in one tick: few, the VMs that waited longest. */
#define VMBC_BACKEND_IDLE_PER_TICK 4

struct _VmbcBackendClass {
	GObjectClass parent_class;

	/* The [daemon] keys this backend reads, terminated by a NULL key. */
	const VmbcSettingSpec *settings;

	/* Start finding VMs (connect, watch sockets); called once, with a main loop. */
	gboolean (*start)(VmbcBackend *self, GError **error);
	/*
	 * Stop: close connections. Balloons are left as they are. Also run when
	 * the backend is disposed, so it may be called more than once.
	 */
	void (*stop)(VmbcBackend *self);
	/* The configuration was reloaded (SIGHUP); counters are kept. */
	gboolean (*reload)(VmbcBackend *self, const VmbcSettings *settings, GError **error);
	/*
	 * Called every tick before the engine runs: measure held host-side for every
	 * VM of this backend and feed vmbc_engine_sample(). Must be cheap (statm, not
	 * smaps, on most ticks) and must not block on a VM: QMP traffic is async.
	 */
	void (*sample)(VmbcBackend *self, gint64 now);
	/*
	 * Between ticks, for a VM of this backend that the engine follows (a
	 * reclaim or a change under way, vmbc_engine_is_following()): measure it
	 * now as sample does, and follow its balloon. Optional.
	 */
	void (*sample_vm)(VmbcBackend *self, VmbcBeancounter *bc, gint64 now);
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
	/*
	 * TRUE once the first adoption pass is over: every VM there was at start
	 * is adopted or known to have failed (and the source was reached, or the
	 * first attempt to reach it failed). vmbcd tells systemd it is ready then.
	 */
	gboolean (*first_pass_done)(VmbcBackend *self);
	/*
	 * Writes @policy (@bc's, as it is now) where it goes with the VM: a
	 * libvirt domain's metadata, live and in its persistent definition.
	 * Asynchronous: @done is called on the main loop, with the backend as
	 * source, for persist_finish(). NULL for a backend whose VMs carry
	 * nothing.
	 */
	void (*persist)(VmbcBackend *self, VmbcBeancounter *bc, const VmbcPolicy *policy,
			GAsyncReadyCallback done, gpointer user_data);
	gboolean (*persist_finish)(VmbcBackend *self, GAsyncResult *res, GError **error);

	gpointer padding[4];
};

/* The backend's name from the table: "qmp", "libvirt". */
const gchar *vmbc_backend_get_name(VmbcBackend *self);

VmbcEngine *vmbc_backend_get_engine(VmbcBackend *self);

/* The checked values of the [daemon] keys (those the class declares among them). */
const VmbcSettings *vmbc_backend_get_settings(VmbcBackend *self);

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
/* The VM carries @policy in its own metadata (at adoption, or changed since). */
void vmbc_backend_apply_policy(VmbcBackend *self, VmbcBeancounter *bc, const VmbcPolicy *policy);

/*
 * The batch of statm reads of this backend's VMs due at a tick, made at the
 * first call as statm-reads says (pread where the backend declares no such
 * key), and again at the first call after a reload changed it. For
 * vmbc-backend-vm.c.
 */
VmbcStatmBatch *vmbc_backend_get_statm_batch(VmbcBackend *self);

/* The current monotonic time in usec, as the engine sees it. */
gint64 vmbc_backend_now(VmbcBackend *self);

/*
 * Used by the program that runs the backend only. @host and @settings are
 * borrowed and must outlive the backend (or the next setup or reload).
 */
void vmbc_backend_setup(VmbcBackend *self, const gchar *name, VmbcBackendHost *host,
			const VmbcSettings *settings);

gboolean vmbc_backend_start(VmbcBackend *self, GError **error);
void vmbc_backend_stop(VmbcBackend *self);
/* The settings were reloaded: on success the backend uses @settings from now on. */
gboolean vmbc_backend_reload(VmbcBackend *self, const VmbcSettings *settings, GError **error);
void vmbc_backend_sample(VmbcBackend *self, gint64 now);
/* The sample_vm vfunc, where the backend has one. */
void vmbc_backend_sample_vm(VmbcBackend *self, VmbcBeancounter *bc, gint64 now);
gboolean vmbc_backend_set_balloon(VmbcBackend *self, VmbcBeancounter *bc, gint64 target_pages,
				  GError **error);
gboolean vmbc_backend_escalate(VmbcBackend *self, VmbcBeancounter *bc, VmbcEscalation how,
			       GError **error);
void vmbc_backend_describe(VmbcBackend *self, VmbcBeancounter *bc, JsonBuilder *builder);
gboolean vmbc_backend_is_up(VmbcBackend *self);
/* The first_pass_done vfunc; TRUE for a backend without one. */
gboolean vmbc_backend_first_pass_done(VmbcBackend *self);
/* TRUE if the backend can persist a VM's policy with the VM. */
gboolean vmbc_backend_can_persist(VmbcBackend *self);
/* The persist vfunc; the backend must have one (vmbc_backend_can_persist()). */
void vmbc_backend_persist(VmbcBackend *self, VmbcBeancounter *bc, const VmbcPolicy *policy,
			  GAsyncReadyCallback done, gpointer user_data);
gboolean vmbc_backend_persist_finish(VmbcBackend *self, GAsyncResult *res, GError **error);

G_END_DECLS
