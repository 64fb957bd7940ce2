/*
 * vmbc-qmp-vmem.c: a VM's virtio-mem device as an actuator beside its
 * balloon. The engine asks for a guest-visible size (set_balloon); where the
 * VM has a virtio-mem device, whole blocks are unplugged or plugged back
 * through its requested-size (qom-set /machine/peripheral/ID), and the
 * balloon holds only what is finer than a block (vmbc-virtio-mem.h). The
 * device's size is the progress: it is read every tick while it differs from
 * what was requested; when it holds still for VMEM_STALL_USEC short of it
 * (the guest cannot offline the blocks), the request is taken back to where
 * the device is, the balloon takes the rest, and the stall is counted.
 */
#include "vmbc-qmp-private.h"
#include "vmbc-qmp-ram-reply.h"
#include "vmbc-qmp-reply.h"
#include "vmbc-size.h"

#define PERIPHERAL "/machine/peripheral/"

/* A device that has not moved toward its requested size for this long has stalled. */
#define VMEM_STALL_USEC (5 * G_USEC_PER_SEC)

static gint64
to_pages(guint64 bytes)
{
	return vmbc_qmp_bytes_to_pages((gint64)MIN(bytes, (guint64)G_MAXINT64));
}

void
vmbc_qmp_vm_vmem_adopt(VmbcQmpVm *vm)
{
	VmbcBeancounter *bc = vm->bc;
	VmbcQmpVirtioMem *d;

	bc->has_vmem = FALSE;
	if (vm->vmems == NULL || vm->vmems->len == 0)
		return;
	d = g_ptr_array_index(vm->vmems, 0);
	/* what the guest sees besides this device: base RAM, DIMMs, other virtio-mem */
	bc->vmem.other = to_pages(vm->max_bytes - MIN(d->size, vm->max_bytes));
	bc->vmem.size = to_pages(d->size);
	/* what it had when adopted: vmbcd gives back up to that, it does not add memory */
	bc->vmem.max = to_pages(d->size);
	bc->vmem.block = MAX(to_pages(d->block_size), 1);
	bc->vmem.requested = to_pages(d->requested_size);
	g_free(bc->vmem_id);
	bc->vmem_id = g_strdup(d->id);
	bc->has_vmem = TRUE;
	vm->vmem_target = -1;
	if (vm->vmems->len > 1)
		g_info("VM '%s': %u virtio-mem devices: only '%s' is resized", vm->name,
		       vm->vmems->len, d->id);
}

static void
on_qom_set(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	if (!vmbc_qmp_vm_reply(vm, source, res, NULL, &ret, &error) || vm->bc == NULL)
		return;
	if (error != NULL)
		g_warning("VM '%s': cannot resize virtio-mem '%s': %s", vm->name, vm->bc->vmem_id,
			  error->message);
}

static void
on_balloon(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	if (!vmbc_qmp_vm_reply(vm, source, res, NULL, &ret, &error) || vm->bc == NULL)
		return;
	if (g_error_matches(error, QMP_ERROR, QMP_ERROR_DEVICE_NOT_ACTIVE))
		vmbc_engine_balloon_failed(vmbc_qmp_vm_engine(vm), vm->bc, VMBC_BALLOON_NO_DEVICE,
					   error, vmbc_qmp_vm_now(vm));
	else if (error != NULL)
		g_warning("VM '%s': balloon request failed: %s", vm->name, error->message);
}

static void
send_requested(VmbcQmpVm *vm, gint64 pages)
{
	g_autofree gchar *path = g_strconcat(PERIPHERAL, vm->bc->vmem_id, NULL);
	g_autoptr(JsonObject) args =
		vmbc_qmp_args_qom_set_int(path, "requested-size", pages * (gint64)vmbc_page_size());

	vm->bc->vmem.requested = pages;
	vm->vmem_moved_at = g_get_monotonic_time();
	vmbc_qmp_vm_execute(vm, "qom-set", args, on_qom_set);
}

/* The balloon to hold @pages: QEMU counts it against base RAM and DIMMs alone. */
static void
send_balloon(VmbcQmpVm *vm, gint64 pages)
{
	VmbcVirtioMem *d = &vm->bc->vmem;
	g_autoptr(JsonObject) args =
		vmbc_qmp_args_balloon(MAX(d->other - pages, 1) * (gint64)vmbc_page_size());

	if (vm->balloon_path != NULL)
		vmbc_qmp_vm_execute(vm, "balloon", args, on_balloon);
}

void
vmbc_qmp_vm_vmem_set(VmbcQmpVm *vm, gint64 target_pages)
{
	VmbcVirtioMem *d = &vm->bc->vmem;
	gint64 requested = 0;
	gint64 balloon = 0;
	gint64 value = 0;

	vmbc_virtio_mem_plan(d, target_pages, &requested, &balloon, &value);
	g_debug("VM '%s': to %" G_GINT64_FORMAT " pages: virtio-mem '%s' %" G_GINT64_FORMAT
		" -> %" G_GINT64_FORMAT " pages, balloon %" G_GINT64_FORMAT " pages",
		vm->name, target_pages, vm->bc->vmem_id, d->size, requested, balloon);
	vm->vmem_target = target_pages;
	if (requested != d->requested)
		send_requested(vm, requested);
	send_balloon(vm, balloon);
}

/* What query-memory-devices says of the device now. */
static void
on_memory_devices(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	g_autoptr(GPtrArray) devs = NULL;
	VmbcVirtioMem *d;
	gint64 now = g_get_monotonic_time();

	if (!vmbc_qmp_vm_reply(vm, source, res, &vm->vmem_busy, &ret, &error) || vm->bc == NULL ||
	    !vm->bc->has_vmem)
		return;
	if (error != NULL) {
		g_debug("VM '%s': query-memory-devices: %s", vm->name, error->message);
		return;
	}
	devs = vmbc_qmp_reply_virtio_mem(ret);
	d = &vm->bc->vmem;
	for (guint i = 0; devs != NULL && i < devs->len; i++) {
		VmbcQmpVirtioMem *r = g_ptr_array_index(devs, i);
		gint64 size;

		if (g_strcmp0(r->id, vm->bc->vmem_id) != 0)
			continue;
		size = to_pages(r->size);
		if (size != d->size)
			vm->vmem_moved_at = now;
		d->size = size;
	}
	if (vm->actual >= 0)
		vmbc_qmp_vm_balloon_actual(vm, vm->actual);
	if (d->requested >= 0 && d->size != d->requested &&
	    now - vm->vmem_moved_at >= VMEM_STALL_USEC) {
		/* the guest does not follow: the device stays where it is, the balloon does the
		 * rest */
		vm->bc->vmem_stalls++;
		g_warning("VM '%s': virtio-mem '%s' stayed at %" G_GINT64_FORMAT
			  " MiB for %d s, not %" G_GINT64_FORMAT " MiB: the balloon takes the rest",
			  vm->name, vm->bc->vmem_id, d->size * (gint64)vmbc_page_size() >> 20,
			  (int)(VMEM_STALL_USEC / G_USEC_PER_SEC),
			  d->requested * (gint64)vmbc_page_size() >> 20);
		send_requested(vm, d->size);
		if (vm->vmem_target >= 0)
			send_balloon(vm, MAX(d->other + d->size - vm->vmem_target, 0));
	}
}

void
vmbc_qmp_vm_vmem_tick(VmbcQmpVm *vm, gint64 now)
{
	VmbcVirtioMem *d = &vm->bc->vmem;

	if (!vm->bc->has_vmem || vm->vmem_busy)
		return;
	if (d->requested < 0 || d->requested == d->size)
		return;
	vm->vmem_busy = TRUE;
	vmbc_qmp_vm_execute(vm, "query-memory-devices", NULL, on_memory_devices);
	(void)now;
}
