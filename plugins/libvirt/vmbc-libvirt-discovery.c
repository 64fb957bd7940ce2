/*
 * vmbc-libvirt-discovery.c: how the libvirt backend finds its domains: the
 * list read on each connect, lifecycle and balloon events while connected,
 * and the facts a worker gathers about each one (XML, QEMU pid, stats
 * period) before it is adopted, or linked again after a reconnect.
 */
#include <stdlib.h>
#include <string.h>

#include "vmbc-libvirt-private.h"

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
	gchar *policy;	     /* the vmbc policy in its metadata, NULL: none */
	gchar *policy_error; /* the metadata could not be read */
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
	g_free(f->policy);
	g_free(f->policy_error);
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
		g_autofree gchar *msg = vmbc_libvirt_last_error(NULL);
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
	f->policy = vmbc_libvirt_read_policy(dom, &f->policy_error);
	f->pid = vmbc_libvirt_find_qemu_pid(uri, f->info.name, f->uuid, &error);
	if (f->pid < 0)
		f->pid_error = g_strdup(error->message);
	if (f->info.has_balloon && f->info.stats_period == 0 && stats_sec > 0 && !read_only) {
		if (virDomainSetMemoryStatsPeriod(dom, (int)stats_sec, VIR_DOMAIN_AFFECT_LIVE) == 0)
			f->period_set = TRUE;
		else
			f->period_error = vmbc_libvirt_last_error(NULL);
	}
	return f;
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
		vmbc_engine_balloon_failed(vmbc_libvirt_vm_engine(vm), vm->bc,
					   VMBC_BALLOON_NO_DEVICE, error, vmbc_libvirt_vm_now(vm));
		return;
	}
	if (vm->info.current_kib > 0) {
		gint64 kib = vm->info.current_kib;
		gint64 vmem_kib = vm->info.ram.vmem.current_kib;

		/*
		 * libvirt's <currentMemory> counts the virtio-mem device's <current> of the same
		 * XML with the balloon; vmbcd adds the device's size it follows itself
		 */
		if (vm->bc->has_vmem && vmem_kib > 0 && vmem_kib < kib)
			kib -= vmem_kib;
		vmbc_libvirt_vm_balloon_actual(vm, vmbc_libvirt_kib_to_pages(kib));
	}
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
	if (f->policy_error != NULL)
		g_warning("domain '%s': the vmbc policy in its metadata cannot be read: %s",
			  f->info.name, f->policy_error);

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
			vmbc_libvirt_vm_set_sampler(vm);
		}
		if (vm->bc != NULL)
			vm_report_balloon(vm, FALSE);
		/* changed while libvirtd was away: the daemon applies only what is new */
		if (vm->bc != NULL && f->policy != NULL)
			vmbc_libvirt_vm_apply_policy(vm, f->policy);
		g_debug("domain '%s' linked again (pid %d)", vm->name, (int)vm->pid);
		return;
	}

	vm = vmbc_libvirt_vm_new(self, f->uuid);
	vm->name = g_strdup(f->info.name);
	vm->dom = g_steal_pointer(&f->dom);
	vm->info = f->info;
	memset(&f->info, 0, sizeof(f->info));
	vm->pid = f->pid;
	vm->link_seq = seq;
	max_pages = vm->info.memory_kib > 0
			    ? vmbc_libvirt_kib_to_pages(vmbc_libvirt_domain_max_kib(&vm->info))
			    : 0;
	vm->bc = vmbc_backend_add_vm(VMBC_BACKEND(self), vm->name, max_pages,
				     vmbc_libvirt_vm_ref(vm), vmbc_libvirt_vm_detach_bc, &error);
	if (vm->bc == NULL) {
		g_warning("domain '%s' not adopted: %s", vm->name, error->message);
		vm->backend = NULL;
		vmbc_libvirt_vm_unref(vm);
		return;
	}
	g_hash_table_insert(self->vms, vm->uuid, vm);
	vmbc_libvirt_vm_set_sampler(vm);
	vmbc_libvirt_vm_vmem_adopt(vm);
	vm_report_balloon(vm, TRUE);
	/* the policy that came with the domain, over the configured and saved limits */
	if (f->policy != NULL)
		vmbc_libvirt_vm_apply_policy(vm, f->policy);
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
	Job *job = vmbc_libvirt_job_current(self, res);

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
		job->error = vmbc_libvirt_last_error(&job->code);
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
	Job *job = vmbc_libvirt_job_current(self, res);
	g_autoptr(GPtrArray) gone =
		g_ptr_array_new_with_free_func((GDestroyNotify)vmbc_libvirt_vm_unref);
	g_autoptr(GHashTable) listed = g_hash_table_new(g_str_hash, g_str_equal);
	GHashTableIter iter;
	gpointer value;

	if (job == NULL)
		return;
	self->first_pass_done = TRUE;
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
			g_ptr_array_add(gone, vmbc_libvirt_vm_ref(vm));
	}
	for (guint i = 0; i < gone->len; i++)
		vmbc_libvirt_vm_remove(self, g_ptr_array_index(gone, i),
				       "no longer running in libvirt");
	g_info("%s: %u domains", self->uri, g_hash_table_size(self->vms));
}

void
vmbc_libvirt_backend_list_domains(VmbcLibvirtBackend *self)
{
	vmbc_libvirt_job_run(self, vmbc_libvirt_job_new(self, NULL), job_list_thread,
			     job_list_done);
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

int
vmbc_libvirt_on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
	VmbcLibvirtBackend *self = opaque;
	VmbcLibvirtVm *vm;

	if (!self->started || conn != self->conn)
		return 0;
	switch (event) {
	case VIR_DOMAIN_EVENT_STARTED:
		g_debug("domain '%s' started (detail %d)", virDomainGetName(dom), detail);
		vmbc_libvirt_job_run(self, vmbc_libvirt_job_new(self, dom), job_adopt_thread,
				     job_adopt_done);
		break;
	case VIR_DOMAIN_EVENT_STOPPED:
		vm = vmbc_libvirt_vm_for_domain(self, dom);
		if (vm != NULL)
			vmbc_libvirt_vm_remove(self, vm, stopped_detail(detail));
		break;
	case VIR_DOMAIN_EVENT_CRASHED:
		vm = vmbc_libvirt_vm_for_domain(self, dom);
		if (vm != NULL)
			vmbc_libvirt_vm_remove(self, vm, "crashed");
		break;
	default:
		break;
	}
	return 0;
}

void
vmbc_libvirt_on_balloon_change(virConnectPtr conn, virDomainPtr dom, unsigned long long actual,
			       void *opaque)
{
	VmbcLibvirtBackend *self = opaque;
	VmbcLibvirtVm *vm;

	if (!self->started || conn != self->conn)
		return;
	vm = vmbc_libvirt_vm_for_domain(self, dom);
	if (vm == NULL || vm->bc == NULL || actual == 0 || actual > G_MAXINT64 / 1024)
		return;
	vmbc_libvirt_vm_balloon_actual(vm, vmbc_libvirt_kib_to_pages((gint64)actual));
}
