/*
 * vmbc-qmp-private.h: what the files of the qmp backend share: the backend's
 * instance, the record of one VM (a QEMU behind one QMP socket), and the
 * functions each file offers the others.
 *
 * Each socket found by the globs gets a VmbcQmpVm: connect, probe (name,
 * RAM size, balloon device, stats polling, free page reporting, balloon
 * actual), adopt (vmbc_backend_add_vm), then sample every tick.
 */
#pragma once

#include <sys/types.h>

#include "qmp-client.h"
#include "vmbc-procfs.h"
#include "vmbc-qmp-command.h"
#include "vmbc-qmp-backend.h"

G_BEGIN_DECLS

typedef enum {
	VM_NEW,
	VM_CONNECTING,
	VM_PROBING,
	VM_ADOPTED,
	VM_FAILED, /* retried on the next rescan */
} VmState;

typedef struct _VmbcQmpVm VmbcQmpVm;

struct _VmbcQmpVm {
	VmbcQmpBackend *backend; /* borrowed; NULL once the backend let go of this VM */
	gchar *socket_path;
	dev_t sock_dev;
	ino_t sock_ino;
	VmState state;
	QmpClient *client; /* the current connection; replies from older ones are dropped */
	gulong event_handler;
	gulong disconnected_handler;
	void (*connected)(VmbcQmpVm *vm); /* what follows the connection (the probe) */
	gchar *last_warning;		  /* the same failure is warned about once */

	/* what the probe found */
	gchar *name;
	pid_t pid;
	guint64 ram_bytes;     /* base-memory: the size of the guest-RAM mapping */
	guint64 max_bytes;     /* base-memory + plugged-memory */
	gboolean list_anon;    /* the qom-list in flight is of peripheral-anon */
	gchar *balloon_path;   /* NULL: no balloon device found */
	gint fpr;	       /* free page reporting: -1 unknown, 0 off, 1 on */
	gint64 actual;	       /* pages, -1 unknown */
	GError *balloon_error; /* query-balloon's DeviceNotActive */
	GArray *ram_ranges;    /* of VmbcRamRange: every backend the guest sees; empty: by size */
	GPtrArray *vmems;      /* of VmbcQmpVirtioMem, as last read; NULL none known */

	/* while guest RAM is probed (vmbc-qmp-ram.c) */
	GPtrArray *ram_memdevs; /* of VmbcQmpMemdev */
	gchar *ram_mtree;	/* HMP info mtree -f */
	guint ram_index;	/* the backend asked about */
	guint64 ram_gpa;	/* its region's first guest-physical address in the mtree */
	guint64 ram_offset;	/* the region's offset there */
	void (*ram_next_step)(struct _VmbcQmpVm *vm);

	/* the virtio-mem device resized with the balloon (vmbc-qmp-vmem.c); bc->has_vmem */
	gboolean vmem_busy;   /* a query-memory-devices in flight */
	gint64 vmem_moved_at; /* monotonic usec: its size last moved, or was asked to */
	gint64 vmem_target;   /* the last guest-visible size asked for, pages */

	/* once adopted */
	VmbcBeancounter *bc; /* borrowed: the daemon owns it and tells us when it goes */
	VmbcProcSampler *sampler;
	gboolean stats_busy;
	gboolean query_busy;
	gint64 next_stats;
	gboolean sample_failed;
	/* the host's measure of its idle memory (vmbc-qmp-idle.c) */
	gboolean idle_busy;	  /* a calc-dirty-rate runs */
	gboolean idle_query_busy; /* a query-dirty-rate is in flight */
	gboolean idle_unsupported;
	gint64 idle_started; /* monotonic usec of the last measure's start, 0 never */
};

struct _VmbcQmpBackend {
	VmbcBackend parent_instance;
	GHashTable *vms; /* socket path -> VmbcQmpVm (a reference) */
	gchar **globs;
	gint64 rescan_usec;
	gint64 smaps_usec;
	guint stats_sec;
	gint64 idle_usec;   /* each VM's dirty rate measured this often; 0 never */
	gchar *cgroup_root; /* where cgroupfs is mounted (vmbc.conf cgroup-root) */
	guint rescan_id;
	gboolean started;
	gboolean up; /* the last rescan could read every directory the globs name */
	/*
	 * The directories the last full scan read, with their mtime (path ->
	 * gint64 ns): while none of them changed, what it found stands, and a
	 * rescan neither globs nor stat()s every socket (vmbc-qmp-discovery.c).
	 */
	GHashTable *scan_dirs;
	gchar *scan_globs;   /* the globs the cache is for, joined */
	gint64 scan_full_at; /* real usec of the last full scan */
};

/* --- the record (vmbc-qmp-vm.c) --------------------------------------------- */

/* A VM of @backend behind the socket @path, not connected yet; one reference. */
VmbcQmpVm *vmbc_qmp_vm_new(VmbcQmpBackend *backend, const gchar *path);
/* A reference more; the record lives while anything holds one. */
VmbcQmpVm *vmbc_qmp_vm_ref(VmbcQmpVm *vm);
void vmbc_qmp_vm_unref(VmbcQmpVm *vm);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbcQmpVm, vmbc_qmp_vm_unref)

/* The backend_data free function of the VM's beancounter: the daemon dropped it. */
void vmbc_qmp_vm_detach_bc(gpointer data);
/* The name for messages: the VM's once known, else its socket. */
const gchar *vmbc_qmp_vm_label(VmbcQmpVm *vm);
VmbcEngine *vmbc_qmp_vm_engine(VmbcQmpVm *vm);
gint64 vmbc_qmp_vm_now(VmbcQmpVm *vm);

/* What follows a connection that works: the probe (vmbc_qmp_vm_probe()). */
typedef void (*VmbcQmpVmConnectedFunc)(VmbcQmpVm *vm);

/* (Re)connects to the VM's socket; @connected runs once it is up and its peer known. */
void vmbc_qmp_vm_connect(VmbcQmpVm *vm, VmbcQmpVmConnectedFunc connected);
/* Closes the connection, if any; its late replies and signals are ignored. */
void vmbc_qmp_vm_forget_client(VmbcQmpVm *vm);
/* Closes the connection, drops the VM from the daemon; a rescan may connect again. */
void vmbc_qmp_vm_drop(VmbcQmpVm *vm);
/* A failure that drops the VM: warned about once per distinct reason. */
void vmbc_qmp_vm_fail(VmbcQmpVm *vm, const gchar *reason);

/*
 * Sends @command (@args borrowed, may be NULL) on the VM's connection;
 * @callback gets a reference to @vm as its user data and opens with
 * vmbc_qmp_vm_reply().
 */
void vmbc_qmp_vm_execute(VmbcQmpVm *vm, const gchar *command, JsonObject *args,
			 GAsyncReadyCallback callback);

/*
 * The opening of every reply callback: finishes the call on @source, clears
 * @busy (if not NULL) when the reply belongs to the VM's current connection,
 * and drops the VM on a wire error. Returns TRUE when the callback should go
 * on, with the reply in @ret or the command's own error (QEMU said no) in
 * @cmd_error; FALSE when the reply no longer matters or the VM was dropped.
 */
gboolean vmbc_qmp_vm_reply(VmbcQmpVm *vm, GObject *source, GAsyncResult *res, gboolean *busy,
			   JsonNode **ret, GError **cmd_error);

/* --- probing and adoption (vmbc-qmp-probe.c) ------------------------------- */

/* Starts probing a VM just connected; it is adopted, or failed, at the end. */
void vmbc_qmp_vm_probe(VmbcQmpVm *vm);

typedef void (*VmbcQmpVmProbeFunc)(VmbcQmpVm *vm);

/*
 * Asks QEMU where the VM's guest RAM is (vmbc-qmp-ram.c): fills ram_ranges
 * (left empty where QEMU cannot say) and vmems, then calls @next.
 */
void vmbc_qmp_vm_probe_ram(VmbcQmpVm *vm, VmbcQmpVmProbeFunc next);

/* Sets how often the guest reports its statistics to the balloon (probe and reload). */
static inline void
vm_send_stats_interval(VmbcQmpVm *vm, guint seconds, GAsyncReadyCallback callback)
{
	g_autoptr(JsonObject) args = vmbc_qmp_args_qom_set_int(
		vm->balloon_path, "guest-stats-polling-interval", seconds);

	vmbc_qmp_vm_execute(vm, "qom-set", args, callback);
}

/* --- idle memory (vmbc-qmp-idle.c) ------------------------------------------ */

/* Starts the due measures of idle memory, asks for those done; once a tick. */
void vmbc_qmp_backend_measure_idle(VmbcQmpBackend *self, gint64 now);

/* --- every tick (vmbc-qmp-sample.c) ----------------------------------------- */

/* Asks QEMU for the guest's statistics now (one query in flight at most). */
void vmbc_qmp_vm_poll_stats(VmbcQmpVm *vm, gint64 now);
/* The sample vfunc: measures every adopted VM, drops those whose process exited. */
void vmbc_qmp_backend_sample(VmbcBackend *backend, gint64 now);
void vmbc_qmp_backend_sample_vm(VmbcBackend *backend, VmbcBeancounter *bc, gint64 now);

/* --- finding sockets (vmbc-qmp-discovery.c) -------------------------------- */

/* (Re)arms the rescan timer at the configured interval. */
void vmbc_qmp_backend_arm_rescan(VmbcQmpBackend *self);

/* --- acting on VMs (vmbc-qmp-actuate.c) ------------------------------------ */

/* The set_balloon vfunc. */
gboolean vmbc_qmp_backend_set_balloon(VmbcBackend *backend, VmbcBeancounter *bc,
				      gint64 target_pages, GError **error);
/*
 * vmbc-qmp-vmem.c. At adoption: takes the first virtio-mem device of vm->vmems
 * as the one to resize (bc->has_vmem). set_balloon of such a VM: requested-size
 * in whole blocks and the balloon for the rest. Every tick while the device
 * moves: its size (query-memory-devices), and a resize it does not follow
 * given to the balloon.
 */
void vmbc_qmp_vm_vmem_adopt(VmbcQmpVm *vm);
void vmbc_qmp_vm_vmem_set(VmbcQmpVm *vm, gint64 target_pages);
void vmbc_qmp_vm_vmem_tick(VmbcQmpVm *vm, gint64 now);
/*
 * QEMU's balloon counts base RAM and DIMMs, not virtio-mem: the engine is told
 * the guest-visible size, the balloon's @actual (pages, kept in vm->actual)
 * plus what the virtio-mem device has plugged.
 */
void vmbc_qmp_vm_balloon_actual(VmbcQmpVm *vm, gint64 actual);

/* The escalate vfunc. */
gboolean vmbc_qmp_backend_escalate(VmbcBackend *backend, VmbcBeancounter *bc, VmbcEscalation how,
				   GError **error);

G_END_DECLS
