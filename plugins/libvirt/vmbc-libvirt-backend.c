/*
 * vmbc-libvirt-backend.c: the "libvirt" backend (see vmbc-libvirt-backend.h).
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
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <libvirt-glib/libvirt-glib.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "vmbc-libvirt-backend.h"
#include "vmbc-libvirt-domain.h"
#include "vmbc-procfs.h"
#include "vmbc-size.h"

typedef struct {
	gint ref_count;
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
	gint64 next_stats;
	gboolean started;
	gboolean warned_read_only;
};

G_DEFINE_TYPE(VmbcLibvirtBackend, vmbc_libvirt_backend, VMBC_TYPE_BACKEND)

static void backend_connect(VmbcLibvirtBackend *self);
static void backend_list_domains(VmbcLibvirtBackend *self);

/* --- libvirt errors ----------------------------------------------------------- */

/* libvirt prints every error on stderr by default; vmbcd reports them itself. */
static void
silent_error_func(void *user_data, virErrorPtr error)
{
}

/* The calling thread's last libvirt error as text, and its code. */
static gchar *
last_error_message(gint *code)
{
	virErrorPtr err = virGetLastError();

	if (code != NULL)
		*code = err != NULL ? err->code : VIR_ERR_INTERNAL_ERROR;
	if (err == NULL || err->message == NULL)
		return g_strdup("unknown libvirt error");
	return g_strdup(err->message);
}

/* Errors after which opening read-only is worth a try. */
static gboolean
is_permission_error(gint code, gint int1)
{
	return code == VIR_ERR_AUTH_FAILED || code == VIR_ERR_AUTH_CANCELLED ||
	       code == VIR_ERR_AUTH_UNAVAILABLE || code == VIR_ERR_OPERATION_DENIED ||
	       code == VIR_ERR_ACCESS_DENIED ||
	       (code == VIR_ERR_SYSTEM_ERROR && (int1 == EACCES || int1 == EPERM));
}

static gint64
kib_to_pages(gint64 kib)
{
	return kib * 1024 / (gint64)vmbc_page_size();
}

/* --- the per-VM record ------------------------------------------------------------ */

static VmbcLibvirtVm *
vm_new(VmbcLibvirtBackend *backend, const gchar *uuid)
{
	VmbcLibvirtVm *vm = g_new0(VmbcLibvirtVm, 1);

	vm->ref_count = 1;
	vm->backend = backend;
	vm->uuid = g_strdup(uuid);
	vm->pid = -1;
	vm->pending_target = -1;
	vmbc_libvirt_domain_info_clear(&vm->info);
	return vm;
}

static VmbcLibvirtVm *
vm_ref(VmbcLibvirtVm *vm)
{
	vm->ref_count++;
	return vm;
}

static void
vm_unref(VmbcLibvirtVm *vm)
{
	g_assert(vm->ref_count > 0);
	if (--vm->ref_count > 0)
		return;
	g_clear_pointer(&vm->dom, virDomainFree);
	g_clear_pointer(&vm->sampler, vmbc_proc_sampler_free);
	vmbc_libvirt_domain_info_clear(&vm->info);
	g_free(vm->uuid);
	g_free(vm->name);
	g_free(vm->last_warning);
	g_free(vm);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbcLibvirtVm, vm_unref)

/* The backend_data free function: the daemon dropped the beancounter. */
static void
vm_detach_bc(gpointer data)
{
	VmbcLibvirtVm *vm = data;

	vm->bc = NULL;
	vm_unref(vm);
}

static VmbcEngine *
vm_engine(VmbcLibvirtVm *vm)
{
	return vmbc_backend_get_engine(VMBC_BACKEND(vm->backend));
}

static gint64
vm_now(VmbcLibvirtVm *vm)
{
	return vmbc_backend_now(VMBC_BACKEND(vm->backend));
}

/* The domain went away (stopped, crashed, migrated, vanished): forget it. */
static void
vm_remove(VmbcLibvirtBackend *self, VmbcLibvirtVm *vm, const gchar *why)
{
	g_autoptr(VmbcLibvirtVm) keep = vm_ref(vm);

	g_info("domain '%s' is gone: %s", vm->name, why);
	g_hash_table_remove(self->vms, vm->uuid);
	if (vm->bc != NULL)
		vmbc_backend_remove_vm(VMBC_BACKEND(self), vm->bc);
	vm->backend = NULL;
}

/* --- jobs: blocking libvirt calls in worker threads ------------------------------------ */

/* What a worker learned about one domain. */
typedef struct {
	virDomainPtr dom;
	gchar *uuid;
	VmbcLibvirtDomainInfo info;
	pid_t pid;
	gchar *error;	     /* the XML could not be read or parsed: not adopted */
	gchar *pid_error;    /* no QEMU process found: adopted, not measured */
	gchar *period_error; /* the stats period could not be turned on */
	gboolean period_set;
} DomainFacts;

static void
domain_facts_free(DomainFacts *f)
{
	g_clear_pointer(&f->dom, virDomainFree);
	vmbc_libvirt_domain_info_clear(&f->info);
	g_free(f->uuid);
	g_free(f->error);
	g_free(f->pid_error);
	g_free(f->period_error);
	g_free(f);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomainFacts, domain_facts_free)

/* Runs in a worker: XML, QEMU pid, and the stats period where the domain has none. */
static DomainFacts *
domain_facts_collect(virDomainPtr dom, const gchar *uri, guint stats_sec, gboolean read_only)
{
	DomainFacts *f = g_new0(DomainFacts, 1);
	gchar uuid[VIR_UUID_STRING_BUFLEN] = {0};
	g_autoptr(GError) error = NULL;
	g_autofree gchar *xml = NULL;

	virDomainRef(dom);
	f->dom = dom;
	f->pid = -1;
	vmbc_libvirt_domain_info_clear(&f->info);
	if (virDomainGetUUIDString(dom, uuid) == 0)
		f->uuid = g_ascii_strdown(uuid, -1);
	if (virDomainIsActive(dom) != 1) {
		/* stopped again before we got here: its STOPPED event came or comes */
		f->error = g_strdup("the domain is not running");
		return f;
	}
	xml = virDomainGetXMLDesc(dom, 0);
	if (xml == NULL) {
		g_autofree gchar *msg = last_error_message(NULL);
		f->error = g_strdup_printf("cannot read the domain XML: %s", msg);
		return f;
	}
	if (!vmbc_libvirt_domain_info_parse(xml, &f->info, &error)) {
		f->error = g_strdup(error->message);
		return f;
	}
	if (f->uuid == NULL)
		f->uuid = g_strdup(f->info.uuid);
	if (f->uuid == NULL) {
		f->error = g_strdup("the domain has no UUID");
		return f;
	}
	f->pid = vmbc_libvirt_find_qemu_pid(uri, f->info.name, f->uuid, &error);
	if (f->pid < 0)
		f->pid_error = g_strdup(error->message);
	if (f->info.has_balloon && f->info.stats_period == 0 && stats_sec > 0 && !read_only) {
		if (virDomainSetMemoryStatsPeriod(dom, (int)stats_sec, VIR_DOMAIN_AFFECT_LIVE) == 0)
			f->period_set = TRUE;
		else
			f->period_error = last_error_message(NULL);
	}
	return f;
}

typedef struct {
	virConnectPtr conn;
	guint generation;
	guint64 seq;
	gchar *uri;
	guint stats_sec;
	gboolean read_only;
	virDomainPtr dom;

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
} Job;

static void
job_free(Job *job)
{
	if (job->conn != NULL)
		virConnectClose(job->conn);
	g_clear_pointer(&job->dom, virDomainFree);
	g_clear_pointer(&job->facts, g_ptr_array_unref);
	g_clear_pointer(&job->stats, g_array_unref);
	g_free(job->uri);
	g_free(job->error);
	g_free(job);
}

static Job *
job_new(VmbcLibvirtBackend *self, virDomainPtr dom)
{
	Job *job = g_new0(Job, 1);

	if (self->conn != NULL) {
		virConnectRef(self->conn);
		job->conn = self->conn;
	}
	if (dom != NULL) {
		virDomainRef(dom);
		job->dom = dom;
	}
	job->generation = self->generation;
	job->seq = ++self->seq;
	job->uri = g_strdup(self->uri);
	job->stats_sec = self->stats_sec;
	job->read_only = self->read_only;
	return job;
}

static void
job_run(VmbcLibvirtBackend *self, Job *job, GTaskThreadFunc func, GAsyncReadyCallback done)
{
	g_autoptr(GTask) task = g_task_new(self, NULL, done, NULL);

	g_task_set_task_data(task, job, (GDestroyNotify)job_free);
	g_task_run_in_thread(task, func);
}

/* The job of a finished task if its result still matters, else NULL. */
static Job *
job_current(VmbcLibvirtBackend *self, GAsyncResult *res)
{
	Job *job = g_task_get_task_data(G_TASK(res));

	if (!self->started || job->generation != self->generation)
		return NULL;
	return job;
}

/* --- adopting domains ---------------------------------------------------------------- */

static void
vm_set_sampler(VmbcLibvirtVm *vm)
{
	VmbcLibvirtBackend *self = vm->backend;

	g_clear_pointer(&vm->sampler, vmbc_proc_sampler_free);
	if (vm->pid <= 0 || vm->info.memory_kib <= 0)
		return;
	vm->sampler = vmbc_proc_sampler_new(vm->pid, (guint64)vm->info.memory_kib * 1024);
	vmbc_proc_sampler_set_smaps_interval(vm->sampler, self->smaps_usec);
	vm->sample_failed = FALSE;
}

/* What the XML says about the balloon, told to the engine and the operator. */
static void
vm_report_balloon(VmbcLibvirtVm *vm, gboolean first)
{
	g_autoptr(GError) error = NULL;

	vm->bc->free_page_reporting = vm->info.free_page_reporting;
	if (!vm->info.has_balloon) {
		g_set_error(&error, VMBC_ERROR, VMBC_ERROR_NO_BALLOON,
			    "domain '%s' has no balloon device (<memballoon model='%s'>): vmbcd "
			    "can measure it but not reclaim from it",
			    vm->name, vm->info.balloon_model != NULL ? vm->info.balloon_model : "");
		if (first)
			g_warning("%s", error->message);
		vmbc_engine_balloon_failed(vm_engine(vm), vm->bc, VMBC_BALLOON_NO_DEVICE, error,
					   vm_now(vm));
		return;
	}
	if (vm->info.current_kib > 0)
		vmbc_engine_balloon_actual(vm_engine(vm), vm->bc,
					   kib_to_pages(vm->info.current_kib), vm_now(vm));
	if (first && vm->info.free_page_reporting == 0)
		g_warning("domain '%s': free page reporting is off: pages its guest frees stay "
			  "charged (add freePageReporting='on' to its <memballoon model='%s'>)",
			  vm->name, vm->info.balloon_model);
}

/* Applies what a worker learned: a new domain is adopted, a known one linked again. */
static void
backend_adopt(VmbcLibvirtBackend *self, DomainFacts *f, guint64 seq)
{
	VmbcLibvirtVm *vm = g_hash_table_lookup(self->vms, f->uuid);
	g_autoptr(GError) error = NULL;
	gint64 max_pages;
	gboolean known = vm != NULL;

	if (f->error != NULL) {
		g_warning("libvirt domain %s not adopted: %s", f->uuid != NULL ? f->uuid : "?",
			  f->error);
		return;
	}
	if (f->period_error != NULL)
		g_warning("domain '%s': cannot turn on balloon statistics (period %u s): %s",
			  f->info.name, self->stats_sec, f->period_error);
	else if (f->period_set)
		g_info("domain '%s': balloon statistics turned on every %u s", f->info.name,
		       self->stats_sec);
	if (f->pid_error != NULL)
		g_warning("domain '%s': held cannot be measured: %s", f->info.name, f->pid_error);

	if (known) {
		/* re-adopted after a reconnect, or an event raced the listing */
		gboolean new_process = vm->pid != f->pid;

		g_clear_pointer(&vm->dom, virDomainFree);
		vm->dom = g_steal_pointer(&f->dom);
		vmbc_libvirt_domain_info_clear(&vm->info);
		vm->info = f->info;
		memset(&f->info, 0, sizeof(f->info));
		vm->link_seq = MAX(vm->link_seq, seq);
		if (new_process) {
			vm->pid = f->pid;
			vm_set_sampler(vm);
		}
		if (vm->bc != NULL)
			vm_report_balloon(vm, FALSE);
		g_debug("domain '%s' linked again (pid %d)", vm->name, (int)vm->pid);
		return;
	}

	vm = vm_new(self, f->uuid);
	vm->name = g_strdup(f->info.name);
	vm->dom = g_steal_pointer(&f->dom);
	vm->info = f->info;
	memset(&f->info, 0, sizeof(f->info));
	vm->pid = f->pid;
	vm->link_seq = seq;
	max_pages = vm->info.memory_kib > 0 ? kib_to_pages(vm->info.memory_kib) : 0;
	vm->bc = vmbc_backend_add_vm(VMBC_BACKEND(self), vm->name, max_pages, vm_ref(vm),
				     vm_detach_bc, &error);
	if (vm->bc == NULL) {
		g_warning("domain '%s' not adopted: %s", vm->name, error->message);
		vm->backend = NULL;
		vm_unref(vm);
		return;
	}
	g_hash_table_insert(self->vms, vm->uuid, vm);
	vm_set_sampler(vm);
	vm_report_balloon(vm, TRUE);
	g_info("domain '%s' adopted: pid %d, %" G_GINT64_FORMAT " MiB, balloon %s, free page "
	       "reporting %s",
	       vm->name, (int)vm->pid, vm->info.memory_kib / 1024,
	       vm->info.balloon_model != NULL ? vm->info.balloon_model : "missing",
	       vm->info.free_page_reporting > 0 ? "on" : "off");
}

static void
job_adopt_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	Job *job = data;

	job->facts = g_ptr_array_new_with_free_func((GDestroyNotify)domain_facts_free);
	g_ptr_array_add(job->facts,
			domain_facts_collect(job->dom, job->uri, job->stats_sec, job->read_only));
	g_task_return_boolean(task, TRUE);
}

static void
job_adopt_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(source);
	Job *job = job_current(self, res);

	if (job == NULL)
		return;
	for (guint i = 0; i < job->facts->len; i++)
		backend_adopt(self, g_ptr_array_index(job->facts, i), job->seq);
}

static void
job_list_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	Job *job = data;
	virDomainPtr *doms = NULL;
	int n;

	n = virConnectListAllDomains(job->conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
	if (n < 0) {
		job->error = last_error_message(&job->code);
		g_task_return_boolean(task, FALSE);
		return;
	}
	job->facts = g_ptr_array_new_with_free_func((GDestroyNotify)domain_facts_free);
	for (int i = 0; i < n; i++) {
		g_ptr_array_add(job->facts, domain_facts_collect(doms[i], job->uri, job->stats_sec,
								 job->read_only));
		virDomainFree(doms[i]);
	}
	free(doms);
	g_task_return_boolean(task, TRUE);
}

static void
job_list_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(source);
	Job *job = job_current(self, res);
	g_autoptr(GPtrArray) gone = g_ptr_array_new_with_free_func((GDestroyNotify)vm_unref);
	g_autoptr(GHashTable) listed = g_hash_table_new(g_str_hash, g_str_equal);
	GHashTableIter iter;
	gpointer value;

	if (job == NULL)
		return;
	if (job->facts == NULL) {
		/* the connection is probably going away; its close callback reconnects */
		g_warning("cannot list the domains of %s: %s", self->uri, job->error);
		return;
	}
	for (guint i = 0; i < job->facts->len; i++) {
		DomainFacts *f = g_ptr_array_index(job->facts, i);

		if (f->uuid != NULL)
			g_hash_table_add(listed, f->uuid);
		backend_adopt(self, f, job->seq);
	}
	/* domains that stopped while we were not connected (not those adopted since) */
	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		VmbcLibvirtVm *vm = value;

		if (!g_hash_table_contains(listed, vm->uuid) && vm->link_seq < job->seq)
			g_ptr_array_add(gone, vm_ref(vm));
	}
	for (guint i = 0; i < gone->len; i++)
		vm_remove(self, g_ptr_array_index(gone, i), "no longer running in libvirt");
	g_info("%s: %u domains", self->uri, g_hash_table_size(self->vms));
}

static void
backend_list_domains(VmbcLibvirtBackend *self)
{
	job_run(self, job_new(self, NULL), job_list_thread, job_list_done);
}

/* --- events ---------------------------------------------------------------------------- */

static VmbcLibvirtVm *
vm_for_domain(VmbcLibvirtBackend *self, virDomainPtr dom)
{
	gchar uuid[VIR_UUID_STRING_BUFLEN] = {0};
	g_autofree gchar *lower = NULL;

	if (virDomainGetUUIDString(dom, uuid) != 0)
		return NULL;
	lower = g_ascii_strdown(uuid, -1);
	return g_hash_table_lookup(self->vms, lower);
}

static const gchar *
stopped_detail(int detail)
{
	switch (detail) {
	case VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN:
		return "stopped (shut down)";
	case VIR_DOMAIN_EVENT_STOPPED_DESTROYED:
		return "stopped (destroyed)";
	case VIR_DOMAIN_EVENT_STOPPED_CRASHED:
		return "stopped (crashed)";
	case VIR_DOMAIN_EVENT_STOPPED_MIGRATED:
		return "stopped (migrated away)";
	case VIR_DOMAIN_EVENT_STOPPED_SAVED:
		return "stopped (saved)";
	case VIR_DOMAIN_EVENT_STOPPED_FAILED:
		return "stopped (failed)";
	case VIR_DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT:
		return "stopped (snapshot)";
	default:
		return "stopped";
	}
}

static int
on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
	VmbcLibvirtBackend *self = opaque;
	VmbcLibvirtVm *vm;

	if (!self->started || conn != self->conn)
		return 0;
	switch (event) {
	case VIR_DOMAIN_EVENT_STARTED:
		g_debug("domain '%s' started (detail %d)", virDomainGetName(dom), detail);
		job_run(self, job_new(self, dom), job_adopt_thread, job_adopt_done);
		break;
	case VIR_DOMAIN_EVENT_STOPPED:
		vm = vm_for_domain(self, dom);
		if (vm != NULL)
			vm_remove(self, vm, stopped_detail(detail));
		break;
	case VIR_DOMAIN_EVENT_CRASHED:
		vm = vm_for_domain(self, dom);
		if (vm != NULL)
			vm_remove(self, vm, "crashed");
		break;
	default:
		break;
	}
	return 0;
}

static void
on_balloon_change(virConnectPtr conn, virDomainPtr dom, unsigned long long actual, void *opaque)
{
	VmbcLibvirtBackend *self = opaque;
	VmbcLibvirtVm *vm;

	if (!self->started || conn != self->conn)
		return;
	vm = vm_for_domain(self, dom);
	if (vm == NULL || vm->bc == NULL || actual == 0 || actual > G_MAXINT64 / 1024)
		return;
	vmbc_engine_balloon_actual(vm_engine(vm), vm->bc, kib_to_pages((gint64)actual), vm_now(vm));
}

/* --- the connection ------------------------------------------------------------------ */

static void backend_schedule_reconnect(VmbcLibvirtBackend *self);
static void on_close(virConnectPtr conn, int reason, void *opaque);

/* Lets go of the connection; the domains, their counters and samplers stay. */
static void
backend_drop_connection(VmbcLibvirtBackend *self)
{
	GHashTableIter iter;
	gpointer value;

	self->generation++;
	self->stats_busy = FALSE;
	if (self->conn != NULL) {
		/* on a dead connection these fail; the local registrations are freed anyway */
		if (self->lifecycle_id >= 0)
			virConnectDomainEventDeregisterAny(self->conn, self->lifecycle_id);
		if (self->balloon_id >= 0)
			virConnectDomainEventDeregisterAny(self->conn, self->balloon_id);
		virConnectUnregisterCloseCallback(self->conn, on_close);
		virConnectClose(self->conn);
		self->conn = NULL;
	}
	self->lifecycle_id = -1;
	self->balloon_id = -1;
	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		VmbcLibvirtVm *vm = value;

		g_clear_pointer(&vm->dom, virDomainFree);
		vm->balloon_busy = FALSE;
		vm->pending_target = -1;
	}
}

static const gchar *
close_reason(int reason)
{
	switch (reason) {
	case VIR_CONNECT_CLOSE_REASON_ERROR:
		return "a socket error";
	case VIR_CONNECT_CLOSE_REASON_EOF:
		return "libvirtd closed it";
	case VIR_CONNECT_CLOSE_REASON_KEEPALIVE:
		return "libvirtd stopped answering keepalives";
	case VIR_CONNECT_CLOSE_REASON_CLIENT:
		return "closed here";
	default:
		return "unknown reason";
	}
}

static gboolean
on_lost_idle(gpointer user_data)
{
	VmbcLibvirtBackend *self = user_data;

	self->lost_id = 0;
	if (!self->started)
		return G_SOURCE_REMOVE;
	backend_drop_connection(self);
	backend_schedule_reconnect(self);
	return G_SOURCE_REMOVE;
}

static void
on_close(virConnectPtr conn, int reason, void *opaque)
{
	VmbcLibvirtBackend *self = opaque;

	if (conn != self->conn || !self->started)
		return;
	g_warning("lost the libvirt connection to %s (%s): keeping %u domains and their counters, "
		  "reconnecting",
		  self->uri, close_reason(reason), g_hash_table_size(self->vms));
	self->lost_at = g_get_monotonic_time();
	self->backoff_ms = VMBC_LIBVIRT_RECONNECT_MIN_MS;
	/* the connection is closed and freed from the main loop, not inside libvirt's callback */
	if (self->lost_id == 0)
		self->lost_id = g_idle_add(on_lost_idle, self);
}

static void
job_connect_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	Job *job = data;
	virErrorPtr err;

	if (!job->read_only) {
		job->conn = virConnectOpen(job->uri);
		if (job->conn != NULL) {
			g_task_return_boolean(task, TRUE);
			return;
		}
		err = virGetLastError();
		if (err == NULL || !is_permission_error(err->code, err->int1)) {
			job->error = last_error_message(&job->code);
			g_task_return_boolean(task, FALSE);
			return;
		}
		/* may not write: a read-only connection still lets vmbcd measure and report */
		job->error = last_error_message(&job->code);
	}
	job->conn = virConnectOpenReadOnly(job->uri);
	if (job->conn == NULL) {
		g_autofree gchar *ro = last_error_message(&job->code);
		if (job->error == NULL)
			job->error = g_steal_pointer(&ro);
		g_task_return_boolean(task, FALSE);
		return;
	}
	job->vanished = !job->read_only; /* "fell back to read-only" */
	job->read_only = TRUE;
	g_task_return_boolean(task, TRUE);
}

static void
job_connect_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(source);
	Job *job = g_task_get_task_data(G_TASK(res));

	self->connecting = FALSE;
	if (!self->started || job->generation != self->generation || self->conn != NULL)
		return;
	if (job->conn == NULL) {
		if (g_strcmp0(self->last_connect_error, job->error) != 0)
			g_warning("cannot connect to libvirt at %s: %s; trying again in %.1f s",
				  self->uri, job->error, self->backoff_ms / 1000.0);
		else
			g_debug("still cannot connect to %s: %s", self->uri, job->error);
		g_free(self->last_connect_error);
		self->last_connect_error = g_strdup(job->error);
		backend_schedule_reconnect(self);
		return;
	}
	self->conn = g_steal_pointer(&job->conn);
	self->read_only = job->read_only;
	self->generation++;
	self->n_connects++;
	g_clear_pointer(&self->last_connect_error, g_free);
	self->backoff_ms = VMBC_LIBVIRT_RECONNECT_MIN_MS;
	if (self->read_only && !self->warned_read_only) {
		self->warned_read_only = TRUE;
		g_warning(
			"the libvirt connection to %s is read-only%s%s%s: vmbcd measures and "
			"reports "
			"its domains but cannot set their balloons or stats periods; run vmbcd as "
			"root (or a user libvirt allows to write) to enforce limits",
			self->uri, job->vanished ? " (" : "", job->vanished ? job->error : "",
			job->vanished ? ")" : "");
	}
	if (virConnectSetKeepAlive(self->conn, 5, 3) < 0) {
		g_autofree gchar *msg = last_error_message(NULL);
		g_debug("%s: no keepalive: %s", self->uri, msg);
	}
	if (virConnectRegisterCloseCallback(self->conn, on_close, self, NULL) < 0) {
		g_autofree gchar *msg = last_error_message(NULL);
		g_debug("%s: no close callback: %s", self->uri, msg);
	}
	self->lifecycle_id = virConnectDomainEventRegisterAny(
		self->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
		VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), self, NULL);
	if (self->lifecycle_id < 0) {
		g_autofree gchar *msg = last_error_message(NULL);
		g_warning("%s: cannot follow domain lifecycle events: %s; reconnecting", self->uri,
			  msg);
		backend_drop_connection(self);
		backend_schedule_reconnect(self);
		return;
	}
	self->balloon_id = virConnectDomainEventRegisterAny(
		self->conn, NULL, VIR_DOMAIN_EVENT_ID_BALLOON_CHANGE,
		VIR_DOMAIN_EVENT_CALLBACK(on_balloon_change), self, NULL);
	if (self->balloon_id < 0) {
		g_autofree gchar *msg = last_error_message(NULL);
		g_debug("%s: no balloon change events: %s", self->uri, msg);
	}
	if (self->lost_at > 0)
		g_info("reconnected to libvirt at %s after %.1f s; adopting its domains again",
		       self->uri, (g_get_monotonic_time() - self->lost_at) / 1e6);
	else
		g_info("connected to libvirt at %s%s", self->uri,
		       self->read_only ? " (read-only)" : "");
	self->next_stats = 0;
	backend_list_domains(self);
}

static void
backend_connect(VmbcLibvirtBackend *self)
{
	Job *job;

	if (self->connecting || self->conn != NULL || !self->started)
		return;
	self->connecting = TRUE;
	job = job_new(self, NULL);
	job->read_only = self->force_read_only;
	job_run(self, job, job_connect_thread, job_connect_done);
}

static gboolean
on_reconnect(gpointer user_data)
{
	VmbcLibvirtBackend *self = user_data;

	self->reconnect_id = 0;
	backend_connect(self);
	return G_SOURCE_REMOVE;
}

static void
backend_schedule_reconnect(VmbcLibvirtBackend *self)
{
	if (!self->started || self->reconnect_id != 0)
		return;
	self->reconnect_id = g_timeout_add(self->backoff_ms, on_reconnect, self);
	self->backoff_ms = MIN(self->backoff_ms * 2, VMBC_LIBVIRT_RECONNECT_MAX_MS);
}

/* --- every tick ------------------------------------------------------------------------- */

typedef struct {
	gchar *uuid;
	gint64 current_kib; /* -1: not reported */
	VmbcGuestStats gs;
} StatsRow;

static void
stats_row_clear(gpointer data)
{
	StatsRow *row = data;
	g_free(row->uuid);
}

static gint64
param_kib_pages(virTypedParameterPtr params, int n, const char *name)
{
	unsigned long long v = 0;

	if (virTypedParamsGetULLong(params, n, name, &v) != 1 || v > (guint64)G_MAXINT64 / 1024)
		return -1;
	return kib_to_pages((gint64)v);
}

static void
job_stats_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	Job *job = data;
	virDomainStatsRecordPtr *records = NULL;
	int n;

	n = virConnectGetAllDomainStats(job->conn, VIR_DOMAIN_STATS_BALLOON, &records,
					VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE |
						VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT);
	if (n < 0) {
		job->error = last_error_message(&job->code);
		g_task_return_boolean(task, FALSE);
		return;
	}
	job->stats = g_array_sized_new(FALSE, TRUE, sizeof(StatsRow), (guint)n);
	g_array_set_clear_func(job->stats, stats_row_clear);
	for (int i = 0; i < n; i++) {
		virDomainStatsRecordPtr r = records[i];
		gchar uuid[VIR_UUID_STRING_BUFLEN] = {0};
		unsigned long long v = 0;
		StatsRow row = {0};

		if (virDomainGetUUIDString(r->dom, uuid) != 0)
			continue;
		row.uuid = g_ascii_strdown(uuid, -1);
		row.current_kib = -1;
		if (virTypedParamsGetULLong(r->params, r->nparams, "balloon.current", &v) == 1 &&
		    v <= (guint64)G_MAXINT64)
			row.current_kib = (gint64)v;
		row.gs.available = param_kib_pages(r->params, r->nparams, "balloon.usable");
		row.gs.free = param_kib_pages(r->params, r->nparams, "balloon.unused");
		row.gs.caches = param_kib_pages(r->params, r->nparams, "balloon.disk_caches");
		row.gs.total = param_kib_pages(r->params, r->nparams, "balloon.available");
		row.gs.swap_in = param_kib_pages(r->params, r->nparams, "balloon.swap_in");
		row.gs.major_faults = -1;
		if (virTypedParamsGetULLong(r->params, r->nparams, "balloon.major_fault", &v) ==
			    1 &&
		    v <= (guint64)G_MAXINT64)
			row.gs.major_faults = (gint64)v;
		row.gs.last_update = 0;
		if (virTypedParamsGetULLong(r->params, r->nparams, "balloon.last-update", &v) ==
			    1 &&
		    v <= (guint64)G_MAXINT64)
			row.gs.last_update = (gint64)v;
		g_array_append_val(job->stats, row);
	}
	virDomainStatsRecordListFree(records);
	g_task_return_boolean(task, TRUE);
}

static void
job_stats_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(source);
	Job *job = job_current(self, res);

	if (job == NULL)
		return;
	self->stats_busy = FALSE;
	if (job->stats == NULL) {
		g_debug("%s: domain stats: %s", self->uri, job->error);
		return;
	}
	for (guint i = 0; i < job->stats->len; i++) {
		StatsRow *row = &g_array_index(job->stats, StatsRow, i);
		VmbcLibvirtVm *vm = g_hash_table_lookup(self->vms, row->uuid);

		if (vm == NULL || vm->bc == NULL || !vm->info.has_balloon)
			continue;
		if (row->current_kib > 0)
			vmbc_engine_balloon_actual(vm_engine(vm), vm->bc,
						   kib_to_pages(row->current_kib), vm_now(vm));
		if (row->gs.last_update > 0)
			vmbc_engine_set_guest_stats(vm_engine(vm), vm->bc, &row->gs);
	}
}

/* Returns FALSE if the domain's QEMU process is gone. */
static gboolean
vm_sample(VmbcLibvirtVm *vm, gint64 now)
{
	VmbcSample sample;
	g_autoptr(GError) error = NULL;

	if (vm->sampler == NULL)
		return TRUE;
	if (!vmbc_proc_sampler_sample(vm->sampler, vm->bc, now, &sample, &error)) {
		if (g_error_matches(error, VMBC_ERROR, VMBC_ERROR_VANISHED))
			return FALSE;
		if (!vm->sample_failed)
			g_warning("domain '%s': cannot measure: %s", vm->name, error->message);
		vm->sample_failed = TRUE;
		return TRUE;
	}
	if (vm->sample_failed)
		g_info("domain '%s': measuring again", vm->name);
	vm->sample_failed = FALSE;
	vmbc_engine_sample(vm_engine(vm), vm->bc, &sample, now);
	return TRUE;
}

static void
vmbc_libvirt_backend_sample(VmbcBackend *backend, gint64 now)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(backend);
	g_autoptr(GPtrArray) gone = g_ptr_array_new_with_free_func((GDestroyNotify)vm_unref);
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		VmbcLibvirtVm *vm = value;

		if (vm->bc != NULL && !vm_sample(vm, now))
			g_ptr_array_add(gone, vm_ref(vm));
	}
	for (guint i = 0; i < gone->len; i++) {
		VmbcLibvirtVm *vm = g_ptr_array_index(gone, i);
		g_autofree gchar *why = g_strdup_printf("its QEMU process %d exited", (int)vm->pid);

		if (vm->backend != NULL)
			vm_remove(self, vm, why);
	}
	if (self->conn != NULL && self->stats_sec > 0 && !self->stats_busy &&
	    now >= self->next_stats && g_hash_table_size(self->vms) > 0) {
		self->stats_busy = TRUE;
		self->next_stats = now + (gint64)self->stats_sec * G_USEC_PER_SEC;
		job_run(self, job_new(self, NULL), job_stats_thread, job_stats_done);
	}
}

/* --- balloons and escalation ------------------------------------------------------------- */

/* The VM behind @bc with a domain on the current connection, or NULL with an error. */
static VmbcLibvirtVm *
vm_for_bc(VmbcLibvirtBackend *self, VmbcBeancounter *bc, gboolean write, GError **error)
{
	VmbcLibvirtVm *vm = bc->backend_data;

	if (vm == NULL || vm->backend != self) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_VANISHED,
			    "domain '%s' is not a libvirt domain of %s", bc->name, self->uri);
		return NULL;
	}
	if (self->conn == NULL || vm->dom == NULL) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED,
			    "not connected to libvirt at %s (reconnecting): domain '%s' cannot be "
			    "changed now",
			    self->uri, bc->name);
		return NULL;
	}
	if (write && self->read_only) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_PERMISSION,
			    "the libvirt connection to %s is read-only: vmbcd cannot change domain "
			    "'%s' (run vmbcd as root or as a user libvirt lets write)",
			    self->uri, bc->name);
		return NULL;
	}
	return vm;
}

static gboolean
domain_vanished(virDomainPtr dom, gint code)
{
	if (code == VIR_ERR_NO_DOMAIN)
		return TRUE;
	/* "domain is not running" is OPERATION_INVALID too: ask */
	if (code == VIR_ERR_OPERATION_INVALID || code == VIR_ERR_OPERATION_FAILED) {
		int active = virDomainIsActive(dom);
		if (active == 0)
			return TRUE;
		if (active < 0) {
			virErrorPtr err = virGetLastError();
			return err != NULL && err->code == VIR_ERR_NO_DOMAIN;
		}
	}
	return FALSE;
}

static void
job_balloon_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	Job *job = data;

	if (virDomainSetMemoryFlags(job->dom, (unsigned long)job->arg, VIR_DOMAIN_AFFECT_LIVE) ==
	    0) {
		g_task_return_boolean(task, TRUE);
		return;
	}
	job->error = last_error_message(&job->code);
	job->vanished = domain_vanished(job->dom, job->code);
	g_task_return_boolean(task, FALSE);
}

static void vm_send_balloon(VmbcLibvirtVm *vm, gint64 target_pages);

static void
job_balloon_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(source);
	g_autoptr(VmbcLibvirtVm) vm = user_data;
	Job *job = job_current(self, res);
	gint64 next;

	if (job == NULL || vm->backend != self || vm->bc == NULL)
		return;
	vm->balloon_busy = FALSE;
	if (job->error != NULL) {
		if (job->vanished) {
			vm_remove(self, vm, "it vanished while its balloon was being set");
			return;
		}
		if (job->code == VIR_ERR_OPERATION_DENIED || job->code == VIR_ERR_ACCESS_DENIED) {
			g_autoptr(GError) error = NULL;
			g_set_error(
				&error, VMBC_ERROR, VMBC_ERROR_PERMISSION,
				"libvirt refused to set the balloon of '%s' (%s): the connection "
				"to %s may not write",
				vm->name, job->error, self->uri);
			if (g_strcmp0(vm->last_warning, job->error) != 0)
				g_warning("%s", error->message);
		} else if (!vm->info.has_balloon || job->code == VIR_ERR_OPERATION_INVALID) {
			g_autoptr(GError) error = NULL;
			g_set_error(&error, VMBC_ERROR, VMBC_ERROR_NO_BALLOON,
				    "domain '%s' cannot balloon: %s", vm->name, job->error);
			vmbc_engine_balloon_failed(vm_engine(vm), vm->bc, VMBC_BALLOON_NO_DEVICE,
						   error, vm_now(vm));
		} else if (g_strcmp0(vm->last_warning, job->error) != 0) {
			g_warning("domain '%s': balloon request failed: %s", vm->name, job->error);
		}
		g_free(vm->last_warning);
		vm->last_warning = g_strdup(job->error);
	} else {
		g_clear_pointer(&vm->last_warning, g_free);
	}
	next = vm->pending_target;
	vm->pending_target = -1;
	if (next > 0 && vm->dom != NULL)
		vm_send_balloon(vm, next);
}

static void
vm_send_balloon(VmbcLibvirtVm *vm, gint64 target_pages)
{
	VmbcLibvirtBackend *self = vm->backend;
	g_autoptr(GTask) task = g_task_new(self, NULL, job_balloon_done, vm_ref(vm));
	Job *job = job_new(self, vm->dom);

	job->arg = target_pages * (gint64)vmbc_page_size() / 1024;
	vm->balloon_busy = TRUE;
	g_debug("domain '%s': balloon to %" G_GINT64_FORMAT " KiB", vm->name, job->arg);
	g_task_set_task_data(task, job, (GDestroyNotify)job_free);
	g_task_run_in_thread(task, job_balloon_thread);
}

static gboolean
vmbc_libvirt_backend_set_balloon(VmbcBackend *backend, VmbcBeancounter *bc, gint64 target_pages,
				 GError **error)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(backend);
	VmbcLibvirtVm *vm = vm_for_bc(self, bc, TRUE, error);

	if (vm == NULL)
		return FALSE;
	if (!vm->info.has_balloon) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_NO_BALLOON,
			    "domain '%s' has no balloon device (<memballoon model='%s'>)", bc->name,
			    vm->info.balloon_model != NULL ? vm->info.balloon_model : "");
		return FALSE;
	}
	if (target_pages <= 0 || target_pages > (gint64)G_MAXLONG / (gint64)vmbc_page_size()) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "domain '%s': invalid balloon target %" G_GINT64_FORMAT " pages",
			    bc->name, target_pages);
		return FALSE;
	}
	if (vm->balloon_busy) {
		/* one call in flight per domain; the newest target wins */
		vm->pending_target = target_pages;
		return TRUE;
	}
	vm_send_balloon(vm, target_pages);
	return TRUE;
}

static void
job_escalate_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	Job *job = data;
	int rc;

	if (job->arg < 0) {
		rc = virDomainSuspend(job->dom);
	} else {
		virTypedParameterPtr params = NULL;
		int n = 0;
		int max = 0;

		if (job->raise_only) {
			unsigned long long cur = 0;
			int have = 0;

			rc = virDomainGetMemoryParameters(job->dom, NULL, &have, 0);
			if (rc == 0 && have > 0) {
				params = g_new0(virTypedParameter, have);
				rc = virDomainGetMemoryParameters(job->dom, params, &have, 0);
				if (rc == 0 && virTypedParamsGetULLong(params, have,
								       VIR_DOMAIN_MEMORY_SOFT_LIMIT,
								       &cur) == 1) {
					/* unlimited while a limit is set: lifted by hand */
					job->lifted = cur >= VIR_DOMAIN_MEMORY_PARAM_UNLIMITED &&
						      (unsigned long long)job->arg <
							      VIR_DOMAIN_MEMORY_PARAM_UNLIMITED;
					job->left =
						!job->lifted && cur >= (unsigned long long)job->arg;
				}
				virTypedParamsClear(params, have);
				g_clear_pointer(&params, g_free);
			}
			if (rc < 0) {
				job->error = last_error_message(&job->code);
				g_task_return_boolean(task, FALSE);
				return;
			}
			if (job->lifted || job->left) {
				g_task_return_boolean(task, TRUE);
				return;
			}
		}
		/* libvirt writes the soft limit to cgroup v2's memory.high */
		rc = virTypedParamsAddULLong(&params, &n, &max, VIR_DOMAIN_MEMORY_SOFT_LIMIT,
					     (unsigned long long)job->arg);
		if (rc == 0)
			rc = virDomainSetMemoryParameters(job->dom, params, n,
							  VIR_DOMAIN_AFFECT_LIVE);
		virTypedParamsFree(params, n);
	}
	if (rc < 0) {
		job->error = last_error_message(&job->code);
		g_task_return_boolean(task, FALSE);
		return;
	}
	g_task_return_boolean(task, TRUE);
}

static void
job_escalate_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(source);
	g_autofree gchar *name = user_data;
	Job *job = job_current(self, res);

	if (job == NULL)
		return;
	if (job->error != NULL) {
		g_warning("domain '%s': %s failed: %s", name,
			  job->arg < 0 ? "escalation (pause)"
			  : job->raise_only
				  ? "raising memtune soft_limit (memory.high) with the limit"
				  : "escalation (memory.high)",
			  job->error);
	} else if (job->lifted) {
		VmbcLibvirtVm *vm = vm_for_domain(self, job->dom);
		g_info("domain '%s': memtune soft_limit was lifted by hand, and vmbcd leaves it",
		       name);
		if (vm != NULL && vm->bc != NULL)
			vmbc_engine_mark_memory_high(vm_engine(vm), vm->bc, FALSE);
	} else if (job->left) {
		g_debug("domain '%s': memtune soft_limit not below %" G_GINT64_FORMAT
			" KiB: left as it is",
			name, job->arg);
	} else if (job->arg < 0)
		g_info("domain '%s' paused", name);
	else
		g_info("domain '%s': memtune soft_limit (memory.high) set to %" G_GINT64_FORMAT
		       " KiB",
		       name, job->arg);
}

static gboolean
vmbc_libvirt_backend_escalate(VmbcBackend *backend, VmbcBeancounter *bc, VmbcEscalation how,
			      GError **error)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(backend);
	VmbcLibvirtVm *vm;
	VmbcParm *phys = &bc->parm[VMBC_RES_PHYSPAGES];
	g_autoptr(GTask) task = NULL;
	Job *job;

	if (how == VMBC_ESCALATE_NONE)
		return TRUE;
	if (how != VMBC_ESCALATE_PAUSE && how != VMBC_ESCALATE_MEMORY_HIGH &&
	    how != VMBC_ESCALATE_MEMORY_HIGH_RAISE) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "domain '%s': unknown escalation %d", bc->name, (int)how);
		return FALSE;
	}
	vm = vm_for_bc(self, bc, TRUE, error);
	if (vm == NULL)
		return FALSE;
	job = job_new(self, vm->dom);
	if (how == VMBC_ESCALATE_PAUSE) {
		job->arg = -1;
	} else {
		/* the whole QEMU: the guest limit plus what the VMM holds now */
		gint64 pages = phys->limit == VMBC_UNLIMITED
				       ? -1
				       : phys->limit + MAX(bc->parm[VMBC_RES_VMMPAGES].held, 0);
		job->arg = pages < 0 ? (gint64)VIR_DOMAIN_MEMORY_PARAM_UNLIMITED
				     : pages * (gint64)vmbc_page_size() / 1024;
		job->raise_only = how == VMBC_ESCALATE_MEMORY_HIGH_RAISE;
	}
	task = g_task_new(self, NULL, job_escalate_done, g_strdup(bc->name));
	g_task_set_task_data(task, job, (GDestroyNotify)job_free);
	g_task_run_in_thread(task, job_escalate_thread);
	return TRUE;
}

/* --- the vfuncs ---------------------------------------------------------------------------- */

/* The [daemon] keys of vmbc.conf this backend reads (see vmbc.conf(5)). */
static const VmbcSettingSpec vmbc_libvirt_backend_settings[] = {
	{"libvirt-uri", VMBC_SETTING_STRING, "qemu:///system", 0, 0},
	VMBC_BACKEND_SETTING_SMAPS_INTERVAL,
	VMBC_BACKEND_SETTING_STATS_INTERVAL,
	{NULL, 0, NULL, 0, 0},
};

static void
vmbc_libvirt_backend_apply_config(VmbcLibvirtBackend *self, const VmbcSettings *settings)
{
	g_free(self->uri);
	self->uri = g_strdup(vmbc_settings_get_string(settings, "libvirt-uri"));
	self->smaps_usec = vmbc_settings_get_usec(settings, "smaps-interval");
	self->stats_sec = vmbc_settings_get_seconds(settings, "stats-interval");
}

static gboolean
vmbc_libvirt_backend_start(VmbcBackend *backend, GError **error)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(backend);

	vmbc_libvirt_backend_apply_config(self, vmbc_backend_get_settings(backend));
	self->started = TRUE;
	self->backoff_ms = VMBC_LIBVIRT_RECONNECT_MIN_MS;
	/* a libvirtd that is not up yet is not fatal: vmbcd waits for it */
	backend_connect(self);
	return TRUE;
}

/* Lets go of every VM: the connection closed, balloons left as they are. */
static void
vmbc_libvirt_backend_release_all(VmbcLibvirtBackend *self)
{
	GHashTableIter iter;
	gpointer value;

	backend_drop_connection(self);
	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		VmbcLibvirtVm *vm = value;
		vm->backend = NULL;
	}
	g_hash_table_remove_all(self->vms);
}

static void
vmbc_libvirt_backend_stop(VmbcBackend *backend)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(backend);

	self->started = FALSE;
	g_clear_handle_id(&self->reconnect_id, g_source_remove);
	g_clear_handle_id(&self->lost_id, g_source_remove);
	vmbc_libvirt_backend_release_all(self);
}

static gboolean
vmbc_libvirt_backend_reload(VmbcBackend *backend, const VmbcSettings *settings, GError **error)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(backend);
	g_autofree gchar *old_uri = g_strdup(self->uri);
	guint old_stats = self->stats_sec;
	GHashTableIter iter;
	gpointer value;

	vmbc_libvirt_backend_apply_config(self, settings);
	if (g_strcmp0(old_uri, self->uri) != 0 && self->started) {
		/* another libvirt: its domains are other domains */
		g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func((GDestroyNotify)vm_unref);

		g_info("libvirt-uri changed from %s to %s: reconnecting", old_uri, self->uri);
		g_hash_table_iter_init(&iter, self->vms);
		while (g_hash_table_iter_next(&iter, NULL, &value))
			g_ptr_array_add(all, vm_ref(value));
		for (guint i = 0; i < all->len; i++)
			vm_remove(self, g_ptr_array_index(all, i), "libvirt-uri changed");
		backend_drop_connection(self);
		g_clear_handle_id(&self->reconnect_id, g_source_remove);
		self->lost_at = 0;
		self->backoff_ms = VMBC_LIBVIRT_RECONNECT_MIN_MS;
		backend_connect(self);
		return TRUE;
	}
	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		VmbcLibvirtVm *vm = value;
		if (vm->sampler != NULL)
			vmbc_proc_sampler_set_smaps_interval(vm->sampler, self->smaps_usec);
	}
	/* a new stats period reaches domains without one on their next adoption */
	if (self->stats_sec != old_stats)
		self->next_stats = 0;
	return TRUE;
}

static void
vmbc_libvirt_backend_describe(VmbcBackend *backend, VmbcBeancounter *bc, JsonBuilder *builder)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(backend);
	VmbcLibvirtVm *vm = bc->backend_data;

	if (vm == NULL)
		return;
	json_builder_set_member_name(builder, "uri");
	json_builder_add_string_value(builder, self->uri);
	json_builder_set_member_name(builder, "uuid");
	json_builder_add_string_value(builder, vm->uuid);
	json_builder_set_member_name(builder, "pid");
	json_builder_add_int_value(builder, vm->pid);
	json_builder_set_member_name(builder, "balloon-model");
	if (vm->info.balloon_model != NULL)
		json_builder_add_string_value(builder, vm->info.balloon_model);
	else
		json_builder_add_null_value(builder);
	json_builder_set_member_name(builder, "stats-period");
	json_builder_add_int_value(builder, vm->info.stats_period);
	json_builder_set_member_name(builder, "connected");
	json_builder_add_boolean_value(builder, vm->dom != NULL);
}

static gboolean
vmbc_libvirt_backend_is_up(VmbcBackend *backend)
{
	return VMBC_LIBVIRT_BACKEND(backend)->conn != NULL;
}

static void
vmbc_libvirt_backend_dispose(GObject *object)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(object);

	self->started = FALSE;
	g_clear_handle_id(&self->reconnect_id, g_source_remove);
	g_clear_handle_id(&self->lost_id, g_source_remove);
	if (self->vms != NULL)
		vmbc_libvirt_backend_release_all(self);
	G_OBJECT_CLASS(vmbc_libvirt_backend_parent_class)->dispose(object);
}

static void
vmbc_libvirt_backend_finalize(GObject *object)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(object);

	g_clear_pointer(&self->vms, g_hash_table_unref);
	g_free(self->uri);
	g_free(self->last_connect_error);
	G_OBJECT_CLASS(vmbc_libvirt_backend_parent_class)->finalize(object);
}

static void
vmbc_libvirt_backend_class_init(VmbcLibvirtBackendClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	VmbcBackendClass *backend_class = VMBC_BACKEND_CLASS(klass);

	/* once per process: libvirt's events and keepalives run on the GLib main loop */
	gvir_event_register();
	virSetErrorFunc(NULL, silent_error_func);

	object_class->dispose = vmbc_libvirt_backend_dispose;
	object_class->finalize = vmbc_libvirt_backend_finalize;
	backend_class->settings = vmbc_libvirt_backend_settings;
	backend_class->start = vmbc_libvirt_backend_start;
	backend_class->stop = vmbc_libvirt_backend_stop;
	backend_class->reload = vmbc_libvirt_backend_reload;
	backend_class->sample = vmbc_libvirt_backend_sample;
	backend_class->set_balloon = vmbc_libvirt_backend_set_balloon;
	backend_class->escalate = vmbc_libvirt_backend_escalate;
	backend_class->describe = vmbc_libvirt_backend_describe;
	backend_class->is_up = vmbc_libvirt_backend_is_up;
}

static void
vmbc_libvirt_backend_init(VmbcLibvirtBackend *self)
{
	self->vms = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)vm_unref);
	self->lifecycle_id = -1;
	self->balloon_id = -1;
	self->backoff_ms = VMBC_LIBVIRT_RECONNECT_MIN_MS;
}

void
vmbc_libvirt_backend_set_read_only(VmbcLibvirtBackend *self, gboolean read_only)
{
	g_return_if_fail(VMBC_IS_LIBVIRT_BACKEND(self));
	self->force_read_only = read_only;
}

gboolean
vmbc_libvirt_backend_is_read_only(VmbcLibvirtBackend *self)
{
	g_return_val_if_fail(VMBC_IS_LIBVIRT_BACKEND(self), FALSE);
	return self->conn != NULL && self->read_only;
}

guint
vmbc_libvirt_backend_get_n_vms(VmbcLibvirtBackend *self)
{
	g_return_val_if_fail(VMBC_IS_LIBVIRT_BACKEND(self), 0);
	return g_hash_table_size(self->vms);
}

guint
vmbc_libvirt_backend_get_n_connects(VmbcLibvirtBackend *self)
{
	g_return_val_if_fail(VMBC_IS_LIBVIRT_BACKEND(self), 0);
	return self->n_connects;
}
