/*
 * vmbc-libvirt-private.h: what the files of the libvirt backend share: the
 * backend's instance, the record of one domain, the job that runs a blocking
 * libvirt call, and the functions each file offers the others.
 *
 * One connection (self->conn) per backend. Each domain is a VmbcLibvirtVm
 * keyed by its UUID; it keeps its beancounter and its /proc sampler across
 * libvirtd restarts, and loses only its virDomainPtr while disconnected.
 *
 * Blocking libvirt calls run as "jobs" in GTask worker threads. A job holds
 * its own references (virConnectRef, virDomainRef) and the connection
 * generation it was started on; its result is applied on the main loop only
 * if the backend still runs that generation, so a reply that arrives after a
 * reconnect or a stop is dropped.
 */
#pragma once

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "vmbc-libvirt-backend.h"
#include "vmbc-libvirt-domain.h"
#include "vmbc-procfs.h"

G_BEGIN_DECLS

typedef struct {
	VmbcLibvirtBackend *backend; /* borrowed; NULL once the backend let go of this VM */
	gchar *uuid;
	gchar *name;
	virDomainPtr dom; /* on the current connection; NULL while disconnected */
	VmbcLibvirtDomainInfo info;
	pid_t pid;
	guint64 link_seq; /* the job sequence number that last linked this VM */

	VmbcBeancounter *bc; /* borrowed: the daemon owns it and tells us when it goes */
	VmbcProcSampler *sampler;
	gboolean sample_failed;
	gboolean balloon_busy; /* a virDomainSetMemoryFlags is in flight */
	gint64 pending_target; /* pages to send once it returns, -1 none */
	gchar *last_warning;   /* the same balloon failure is warned about once */
	/* the host's measure of its idle memory (vmbc-libvirt-idle.c) */
	gboolean idle_busy; /* virDomainStartDirtyRateCalc is in flight */
	gboolean idle_unsupported;
	gint64 idle_started;	/* monotonic usec the last measure started, 0 never */
	gint64 idle_seen_start; /* dirtyrate.calc_start_time of the last measure taken in */
	/* a measure was started and its result is still to be taken in with the stats */
	gboolean idle_pending;
	gint64 idle_ready; /* monotonic usec: QEMU has measured by then; its stats are read */
	gint64 next_stats; /* monotonic usec: its stats are asked for from then; 0 never asked */
	/* the virtio-mem device resized with the balloon (vmbc-libvirt-vmem.c); bc->has_vmem */
	gint64 balloon_pages;  /* the balloon's actual as libvirt last said, -1 not yet */
	gboolean vmem_busy;    /* an update of the device and the balloon is in flight */
	gint64 vmem_pending;   /* the guest-visible size to ask for once it returns, -1 none */
	gboolean vmem_polling; /* the live XML is being read for the device's size */
	gint64 vmem_moved_at;  /* monotonic usec: its size last moved, or was asked to */
	gint64 vmem_target;    /* the last guest-visible size asked for, pages, -1 none */
} VmbcLibvirtVm;

struct _VmbcLibvirtBackend {
	VmbcBackend parent_instance;
	gchar *uri;
	guint stats_sec;
	gint64 smaps_usec;
	gboolean force_read_only;

	virConnectPtr conn; /* NULL while disconnected */
	gboolean read_only;
	guint generation; /* bumped on every connect and disconnect */
	gint lifecycle_id;
	gint balloon_id;
	gint metadata_id;
	gint vmem_event_id; /* memory device size change */
	gboolean connecting;
	guint reconnect_id;
	guint lost_id;
	guint backoff_ms;
	gchar *last_connect_error;
	gint64 lost_at; /* monotonic usec the connection was lost, 0 if never */
	guint n_connects;

	GHashTable *vms; /* uuid -> VmbcLibvirtVm (a reference) */
	guint64 seq;	 /* job sequence numbers */
	gboolean stats_busy;
	gint64 idle_usec; /* idle-interval; 0 never */
	gboolean started;
	gboolean warned_read_only;
	/* the domains running at start were listed and adopted, or libvirt was not there */
	gboolean first_pass_done;
};

typedef struct {
	virConnectPtr conn;
	guint generation;
	guint64 seq;
	gchar *uri;
	guint stats_sec;
	gboolean read_only;
	virDomainPtr dom;
	GPtrArray *doms; /* virDomainPtr (references): the domains whose stats are asked for */
	GPtrArray *doms_dirty; /* the same, with their dirty rate (a measure is to be read) */

	/* results */
	GPtrArray *facts; /* DomainFacts */
	GArray *stats;	  /* StatsRow */
	gchar *error;
	gint code;
	gboolean vanished;
	gint64 arg;	     /* the job's argument: KiB for balloon and soft limit */
	gboolean raise_only; /* soft limit: only raise it, and leave it if lifted by hand */
	gboolean lifted;     /* raise_only found it unlimited */
	gboolean left;	     /* raise_only found it at or above arg */
	gchar *vm_uuid;	     /* the domain's record the job is for, if any */
	gchar *text;	     /* the policy XML read or to be written, NULL: none */
} Job;

/* --- the record of a domain (vmbc-libvirt-vm.c) ------------------------------------ */

/* A domain of @backend with @uuid, not adopted yet; one reference. */
VmbcLibvirtVm *vmbc_libvirt_vm_new(VmbcLibvirtBackend *backend, const gchar *uuid);
/* A reference more; the record lives while anything holds one. */
VmbcLibvirtVm *vmbc_libvirt_vm_ref(VmbcLibvirtVm *vm);
void vmbc_libvirt_vm_unref(VmbcLibvirtVm *vm);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbcLibvirtVm, vmbc_libvirt_vm_unref)

/* The backend_data free function of the domain's beancounter: the daemon dropped it. */
void vmbc_libvirt_vm_detach_bc(gpointer data);
VmbcEngine *vmbc_libvirt_vm_engine(VmbcLibvirtVm *vm);
gint64 vmbc_libvirt_vm_now(VmbcLibvirtVm *vm);

/* The domain went away (stopped, crashed, migrated, vanished): forget it. */
void vmbc_libvirt_vm_remove(VmbcLibvirtBackend *self, VmbcLibvirtVm *vm, const gchar *why);

/* A new /proc sampler for the domain's QEMU process, or none without a pid. */
void vmbc_libvirt_vm_set_sampler(VmbcLibvirtVm *vm);

/*
 * Where the domain's QEMU maps each memory backend of its XML
 * (vmbc-libvirt-vm-ram.c): given to its sampler as guest RAM's ranges, or
 * none (guest RAM found by its size) when a backend has no mapping.
 */
void vmbc_libvirt_vm_find_ram(VmbcLibvirtVm *vm);

/* The adopted domain @dom is, or NULL. */
VmbcLibvirtVm *vmbc_libvirt_vm_for_domain(VmbcLibvirtBackend *self, virDomainPtr dom);

/* --- jobs (vmbc-libvirt-job.c) ---------------------------------------------------- */

/* The calling thread's last libvirt error as text, and its code (@code may be NULL). */
gchar *vmbc_libvirt_last_error(gint *code);

/* KiB, as libvirt counts, in pages of the host page size. */
gint64 vmbc_libvirt_kib_to_pages(gint64 kib);

/* A job on the current connection (if any) and @dom (may be NULL), with its own references. */
Job *vmbc_libvirt_job_new(VmbcLibvirtBackend *self, virDomainPtr dom);
void vmbc_libvirt_job_free(Job *job);
/* Runs @func in a worker with @job (consumed); @done gets the task on the main loop. */
void vmbc_libvirt_job_run(VmbcLibvirtBackend *self, Job *job, GTaskThreadFunc func,
			  GAsyncReadyCallback done);
/* The job of a finished task if its result still matters, else NULL. */
Job *vmbc_libvirt_job_current(VmbcLibvirtBackend *self, GAsyncResult *res);

/* --- the connection (vmbc-libvirt-connection.c) ---------------------------------- */

/* Connects in a worker unless connected or connecting; the domains are listed once it is up. */
void vmbc_libvirt_backend_connect(VmbcLibvirtBackend *self);
/* Lets go of the connection; the domains, their counters and samplers stay. */
void vmbc_libvirt_backend_drop_connection(VmbcLibvirtBackend *self);
/* --- finding domains (vmbc-libvirt-discovery.c) ---------------------------------- */

/* Lists the running domains in a worker: adopts new ones, removes those gone. */
void vmbc_libvirt_backend_list_domains(VmbcLibvirtBackend *self);
/* The lifecycle and balloon change event callbacks of the connection. */
int vmbc_libvirt_on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail,
			      void *opaque);
void vmbc_libvirt_on_balloon_change(virConnectPtr conn, virDomainPtr dom, unsigned long long actual,
				    void *opaque);

/* --- the policy in a domain's metadata (vmbc-libvirt-policy.c) ------------------- */

/*
 * Runs in a worker: the vmbc policy element of @dom's live metadata, NULL
 * when it has none (and NULL with *@error_out set when it cannot be read).
 */
gchar *vmbc_libvirt_read_policy(virDomainPtr dom, gchar **error_out);
/* Hands the policy @xml of @vm's metadata to the daemon, or says what is wrong with it. */
void vmbc_libvirt_vm_apply_policy(VmbcLibvirtVm *vm, const gchar *xml);
/* The metadata change event callback of the connection. */
void vmbc_libvirt_on_metadata_change(virConnectPtr conn, virDomainPtr dom, int type,
				     const char *nsuri, void *opaque);
/* The persist and persist_finish vfuncs. */
void vmbc_libvirt_backend_persist(VmbcBackend *backend, VmbcBeancounter *bc,
				  const VmbcPolicy *policy, GAsyncReadyCallback done,
				  gpointer user_data);
gboolean vmbc_libvirt_backend_persist_finish(VmbcBackend *backend, GAsyncResult *res,
					     GError **error);

/* --- every tick (vmbc-libvirt-sample.c) ------------------------------------------ */

/* The sample vfunc. */
void vmbc_libvirt_backend_sample(VmbcBackend *backend, gint64 now);
void vmbc_libvirt_backend_sample_vm(VmbcBackend *backend, VmbcBeancounter *bc, gint64 now);
/* Every domain's guest stats are asked for at the next tick (a new connection or interval). */
void vmbc_libvirt_backend_reset_stats(VmbcLibvirtBackend *self);

/* --- acting on domains (vmbc-libvirt-actuate.c) ---------------------------------- */

/* The set_balloon vfunc. */
gboolean vmbc_libvirt_backend_set_balloon(VmbcBackend *backend, VmbcBeancounter *bc,
					  gint64 target_pages, GError **error);
/* The escalate vfunc. */
gboolean vmbc_libvirt_backend_escalate(VmbcBackend *backend, VmbcBeancounter *bc,
				       VmbcEscalation how, GError **error);

/* --- virtio-mem beside the balloon (vmbc-libvirt-vmem.c) ---------------------------- */

/*
 * The most guest-visible memory of a domain at adoption, KiB: <memory>, where
 * a virtio-mem device counts with what it has (or was asked to have), not its
 * whole size, as the qmp backend counts it; so that percentages and what
 * vmbcd gives back are of what the guest had.
 */
gint64 vmbc_libvirt_domain_max_kib(const VmbcLibvirtDomainInfo *info);
/* At adoption: the domain's first virtio-mem device becomes the one resized (bc->has_vmem). */
void vmbc_libvirt_vm_vmem_adopt(VmbcLibvirtVm *vm);
/* The set_balloon vfunc for a domain with virtio-mem: blocks of the device, the balloon the rest.
 */
void vmbc_libvirt_vm_vmem_set(VmbcLibvirtVm *vm, gint64 target_pages);
/* The balloon's actual (pages, as libvirt says it) to the engine, plus virtio-mem's size. */
void vmbc_libvirt_vm_balloon_actual(VmbcLibvirtVm *vm, gint64 actual_pages);
/* The memory device size change event callback of the connection. */
void vmbc_libvirt_on_memory_device_size_change(virConnectPtr conn, virDomainPtr dom,
					       const char *alias, unsigned long long size,
					       void *opaque);
/* Once a tick: the size of each device short of its request, from the live XML; stalls. */
void vmbc_libvirt_backend_vmem_tick(VmbcLibvirtBackend *self, gint64 now);

/* Starts the due measures of idle memory (vmbc-libvirt-idle.c); once a tick. */
void vmbc_libvirt_backend_measure_idle(VmbcLibvirtBackend *self, gint64 now);

G_END_DECLS
