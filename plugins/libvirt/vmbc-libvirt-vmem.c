/*
 * vmbc-libvirt-vmem.c: a domain's virtio-mem device as an actuator beside its
 * balloon, through libvirt. The engine asks for a guest-visible size
 * (set_balloon); where the domain has a <memory model='virtio-mem'> device,
 * whole blocks are unplugged or plugged back by changing its
 * <target><requested> (virDomainUpdateDeviceFlags, live), and the balloon
 * (virDomainSetMemoryFlags) holds only what is finer than a block: the split
 * is the core's (vmbc-virtio-mem.h). Progress is the device's current size,
 * from libvirt's memory-device-size-change event and, while the device is
 * short of its request, from the live XML. A device that holds still short of
 * its request for VMEM_STALL_USEC (the guest cannot offline the blocks) is
 * asked to stay where it is, the balloon takes the rest, and the stall is
 * counted. QEMU's balloon leaves virtio-mem out, and so does the size in
 * libvirt's balloon-change event; libvirt's <currentMemory> and
 * balloon.current add the device's size as libvirt last heard it. The engine
 * is told the balloon's own size plus the device's size vmbcd follows.
 */
#include "vmbc-libvirt-private.h"
#include "vmbc-size.h"

#define VMEM_STALL_USEC (5 * G_USEC_PER_SEC)

static gint64
kib_pages(gint64 kib)
{
	return vmbc_libvirt_kib_to_pages(MAX(kib, 0));
}

static gint64
pages_kib(gint64 pages)
{
	return pages * (gint64)vmbc_page_size() / 1024;
}

gint64
vmbc_libvirt_domain_max_kib(const VmbcLibvirtDomainInfo *info)
{
	const VmbcLibvirtVmemDev *v = &info->ram.vmem;
	gint64 current;

	if (v->alias == NULL || info->memory_kib <= 0 || info->memory_kib < v->size_kib)
		return info->memory_kib;
	current = v->current_kib >= 0 ? v->current_kib : v->requested_kib;
	return info->memory_kib - v->size_kib + MAX(current, v->requested_kib);
}

void
vmbc_libvirt_vm_vmem_adopt(VmbcLibvirtVm *vm)
{
	const VmbcLibvirtRam *ram = &vm->info.ram;
	const VmbcLibvirtVmemDev *v = &ram->vmem;
	VmbcBeancounter *bc = vm->bc;
	gint64 all_kib = 0;
	gint64 current;

	if (bc == NULL)
		return;
	bc->has_vmem = FALSE;
	if (v->alias == NULL || v->block_kib <= 0 || ram->backends == NULL)
		return;
	for (guint i = 0; i < ram->backends->len; i++)
		all_kib += (gint64)(g_array_index(ram->backends, VmbcRamBackend, i).size / 1024);
	current = v->current_kib >= 0 ? v->current_kib : v->requested_kib;
	/* what the guest sees besides this device: base RAM, DIMMs, other virtio-mem */
	bc->vmem.other = kib_pages(all_kib - v->size_kib);
	bc->vmem.size = kib_pages(current);
	/*
	 * what it had, or was asked to have, when adopted: vmbcd gives back up to that, it does
	 * not add memory. The XML's <current> follows QEMU's size event, which QEMU sends at
	 * most once a second, so right after a plug it may still say less than the guest has.
	 */
	bc->vmem.max = kib_pages(MAX(current, v->requested_kib));
	bc->vmem.block = MAX(kib_pages(v->block_kib), 1);
	bc->vmem.requested = kib_pages(v->requested_kib);
	g_free(bc->vmem_id);
	bc->vmem_id = g_strdup(v->alias);
	bc->has_vmem = TRUE;
	vm->vmem_target = -1;
	vm->vmem_moved_at = g_get_monotonic_time();
	if (ram->n_vmem > 1)
		g_info("domain '%s': %u virtio-mem devices: only '%s' is resized", vm->name,
		       ram->n_vmem, v->alias);
	g_info("domain '%s': virtio-mem '%s' (%" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
	       " MiB, blocks of %" G_GINT64_FORMAT " KiB) resized with the balloon",
	       vm->name, v->alias, current / 1024, v->size_kib / 1024, v->block_kib);
}

void
vmbc_libvirt_vm_balloon_actual(VmbcLibvirtVm *vm, gint64 actual_pages)
{
	if (vm->bc == NULL)
		return;
	vm->balloon_pages = actual_pages;
	vmbc_engine_balloon_actual(vmbc_libvirt_vm_engine(vm), vm->bc,
				   actual_pages + (vm->bc->has_vmem ? vm->bc->vmem.size : 0),
				   vmbc_libvirt_vm_now(vm));
}

/* The device's size is now @kib (an event or the live XML). */
static void
vmem_size_is(VmbcLibvirtVm *vm, gint64 kib)
{
	VmbcVirtioMem *d = &vm->bc->vmem;
	gint64 size = kib_pages(kib);

	if (size == d->size)
		return;
	d->size = size;
	vm->vmem_moved_at = g_get_monotonic_time();
	if (vm->balloon_pages >= 0)
		vmbc_libvirt_vm_balloon_actual(vm, vm->balloon_pages);
}

static void
job_vmem_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	Job *job = data;

	if (job->text != NULL &&
	    virDomainUpdateDeviceFlags(job->dom, job->text, VIR_DOMAIN_AFFECT_LIVE) != 0) {
		job->error = vmbc_libvirt_last_error(&job->code);
		g_task_return_boolean(task, FALSE);
		return;
	}
	if (job->arg > 0 && virDomainSetMemoryFlags(job->dom, (unsigned long)job->arg,
						    VIR_DOMAIN_AFFECT_LIVE) != 0) {
		job->error = vmbc_libvirt_last_error(&job->code);
		g_task_return_boolean(task, FALSE);
		return;
	}
	g_task_return_boolean(task, TRUE);
}

static void vmem_send(VmbcLibvirtVm *vm, gint64 requested, gint64 balloon_pages);

static void
job_vmem_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(source);
	Job *job = vmbc_libvirt_job_current(self, res);
	VmbcLibvirtVm *vm;

	if (job == NULL)
		return;
	vm = g_hash_table_lookup(self->vms, job->vm_uuid);
	if (vm == NULL || vm->bc == NULL)
		return;
	vm->vmem_busy = FALSE;
	if (job->error != NULL)
		g_warning("domain '%s': cannot resize virtio-mem '%s' and the balloon: %s",
			  vm->name, vm->bc->vmem_id, job->error);
	if (vm->vmem_pending >= 0 && vm->dom != NULL) {
		gint64 target = vm->vmem_pending;

		vm->vmem_pending = -1;
		vmbc_libvirt_vm_vmem_set(vm, target);
	}
}

/* One job: the device to @requested pages (-1: leave it), the balloon to hold @balloon_pages. */
static void
vmem_send(VmbcLibvirtVm *vm, gint64 requested, gint64 balloon_pages)
{
	VmbcLibvirtBackend *self = vm->backend;
	VmbcVirtioMem *d = &vm->bc->vmem;
	Job *job = vmbc_libvirt_job_new(self, vm->dom);

	if (requested >= 0 && requested != d->requested) {
		job->text = vmbc_libvirt_ram_vmem_xml(&vm->info.ram, pages_kib(requested));
		d->requested = requested;
		vm->vmem_moved_at = g_get_monotonic_time();
	}
	/* libvirt's balloon, like QEMU's, counts base RAM and DIMMs alone */
	job->arg = vm->info.has_balloon ? pages_kib(MAX(d->other - balloon_pages, 1)) : 0;
	job->vm_uuid = g_strdup(vm->uuid);
	vm->vmem_busy = TRUE;
	g_debug("domain '%s': virtio-mem '%s' to %" G_GINT64_FORMAT
		" pages, balloon to %" G_GINT64_FORMAT " KiB",
		vm->name, vm->bc->vmem_id, d->requested, job->arg);
	vmbc_libvirt_job_run(self, job, job_vmem_thread, job_vmem_done);
}

void
vmbc_libvirt_vm_vmem_set(VmbcLibvirtVm *vm, gint64 target_pages)
{
	VmbcVirtioMem *d = &vm->bc->vmem;
	gint64 requested = 0;
	gint64 balloon = 0;
	gint64 value = 0;

	vm->vmem_target = target_pages;
	if (vm->vmem_busy) {
		/* one call in flight per domain; the newest target wins */
		vm->vmem_pending = target_pages;
		return;
	}
	vmbc_virtio_mem_plan(d, target_pages, &requested, &balloon, &value);
	g_debug("domain '%s': to %" G_GINT64_FORMAT " pages: virtio-mem '%s' %" G_GINT64_FORMAT
		" -> %" G_GINT64_FORMAT " pages, balloon %" G_GINT64_FORMAT " pages",
		vm->name, target_pages, vm->bc->vmem_id, d->size, requested, balloon);
	vmem_send(vm, requested, balloon);
}

void
vmbc_libvirt_on_memory_device_size_change(virConnectPtr conn, virDomainPtr dom, const char *alias,
					  unsigned long long size, void *opaque)
{
	VmbcLibvirtBackend *self = opaque;
	VmbcLibvirtVm *vm = vmbc_libvirt_vm_for_domain(self, dom);

	if (vm == NULL || vm->bc == NULL || !vm->bc->has_vmem || alias == NULL ||
	    g_strcmp0(alias, vm->bc->vmem_id) != 0 || size > G_MAXINT64 / 1024)
		return;
	g_debug("domain '%s': virtio-mem '%s' is %llu KiB", vm->name, alias, size);
	vmem_size_is(vm, (gint64)size);
}

static void
job_vmem_xml_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	Job *job = data;
	g_autofree gchar *xml = virDomainGetXMLDesc(job->dom, 0);
	g_auto(VmbcLibvirtRam) ram = {0};

	job->arg = -1;
	if (xml == NULL) {
		job->error = vmbc_libvirt_last_error(&job->code);
		g_task_return_boolean(task, FALSE);
		return;
	}
	if (vmbc_libvirt_ram_parse(xml, &ram, NULL))
		job->arg = ram.vmem.current_kib;
	g_task_return_boolean(task, TRUE);
}

static void
job_vmem_xml_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(source);
	Job *job = vmbc_libvirt_job_current(self, res);
	VmbcLibvirtVm *vm;
	VmbcVirtioMem *d;

	if (job == NULL)
		return;
	vm = g_hash_table_lookup(self->vms, job->vm_uuid);
	if (vm == NULL || vm->bc == NULL || !vm->bc->has_vmem)
		return;
	vm->vmem_polling = FALSE;
	if (job->arg >= 0)
		vmem_size_is(vm, job->arg);
	d = &vm->bc->vmem;
	if (d->requested >= 0 && d->size != d->requested && !vm->vmem_busy &&
	    g_get_monotonic_time() - vm->vmem_moved_at >= VMEM_STALL_USEC) {
		/* the guest does not follow: the device stays where it is, the balloon does the
		 * rest */
		vm->bc->vmem_stalls++;
		g_warning("domain '%s': virtio-mem '%s' stayed at %" G_GINT64_FORMAT
			  " MiB for %d s, not %" G_GINT64_FORMAT " MiB: the balloon takes the rest",
			  vm->name, vm->bc->vmem_id, d->size * (gint64)vmbc_page_size() >> 20,
			  (int)(VMEM_STALL_USEC / G_USEC_PER_SEC),
			  d->requested * (gint64)vmbc_page_size() >> 20);
		vmem_send(vm, d->size,
			  vm->vmem_target >= 0 ? MAX(d->other + d->size - vm->vmem_target, 0)
					       : MAX(d->other - vm->balloon_pages, 0));
	}
}

void
vmbc_libvirt_backend_vmem_tick(VmbcLibvirtBackend *self, gint64 now)
{
	GHashTableIter iter;
	gpointer value;

	if (self->conn == NULL)
		return;
	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		VmbcLibvirtVm *vm = value;
		VmbcVirtioMem *d;
		Job *job;

		if (vm->bc == NULL || !vm->bc->has_vmem || vm->dom == NULL || vm->vmem_polling)
			continue;
		d = &vm->bc->vmem;
		if (d->requested < 0 || d->requested == d->size)
			continue;
		/* the event says when the guest acknowledged; the XML also when it is stuck */
		job = vmbc_libvirt_job_new(self, vm->dom);
		job->vm_uuid = g_strdup(vm->uuid);
		vm->vmem_polling = TRUE;
		vmbc_libvirt_job_run(self, job, job_vmem_xml_thread, job_vmem_xml_done);
	}
	(void)now;
}
