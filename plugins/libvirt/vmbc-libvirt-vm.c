/*
 * vmbc-libvirt-vm.c: one domain of the libvirt backend (see
 * vmbc-libvirt-private.h): its record, kept across libvirtd restarts with its
 * beancounter and its /proc sampler, and its removal when it goes away.
 */
#include "vmbc-libvirt-private.h"

VmbcLibvirtVm *
vmbc_libvirt_vm_new(VmbcLibvirtBackend *backend, const gchar *uuid)
{
	VmbcLibvirtVm *vm = g_rc_box_new0(VmbcLibvirtVm);

	vm->backend = backend;
	vm->uuid = g_strdup(uuid);
	vm->pid = -1;
	vm->pending_target = -1;
	vm->balloon_pages = -1;
	vm->vmem_pending = -1;
	vm->vmem_target = -1;
	vmbc_libvirt_domain_info_clear(&vm->info);
	return vm;
}

/* What a record holds, let go of with its last reference. */
static void
vm_clear(VmbcLibvirtVm *vm)
{
	g_clear_pointer(&vm->dom, virDomainFree);
	g_clear_pointer(&vm->sampler, vmbc_proc_sampler_free);
	vmbc_libvirt_domain_info_clear(&vm->info);
	g_free(vm->uuid);
	g_free(vm->name);
	g_free(vm->last_warning);
}

VmbcLibvirtVm *
vmbc_libvirt_vm_ref(VmbcLibvirtVm *vm)
{
	return g_rc_box_acquire(vm);
}

void
vmbc_libvirt_vm_unref(VmbcLibvirtVm *vm)
{
	g_rc_box_release_full(vm, (GDestroyNotify)vm_clear);
}

/* The backend_data free function: the daemon dropped the beancounter. */
void
vmbc_libvirt_vm_detach_bc(gpointer data)
{
	VmbcLibvirtVm *vm = data;

	vm->bc = NULL;
	vmbc_libvirt_vm_unref(vm);
}

VmbcEngine *
vmbc_libvirt_vm_engine(VmbcLibvirtVm *vm)
{
	return vmbc_backend_get_engine(VMBC_BACKEND(vm->backend));
}

gint64
vmbc_libvirt_vm_now(VmbcLibvirtVm *vm)
{
	return vmbc_backend_now(VMBC_BACKEND(vm->backend));
}

/* The domain went away (stopped, crashed, migrated, vanished): forget it. */
void
vmbc_libvirt_vm_remove(VmbcLibvirtBackend *self, VmbcLibvirtVm *vm, const gchar *why)
{
	g_autoptr(VmbcLibvirtVm) keep = vmbc_libvirt_vm_ref(vm);

	g_info("domain '%s' is gone: %s", vm->name, why);
	g_hash_table_remove(self->vms, vm->uuid);
	if (vm->bc != NULL)
		vmbc_backend_remove_vm(VMBC_BACKEND(self), vm->bc);
	vm->backend = NULL;
}

void
vmbc_libvirt_vm_set_sampler(VmbcLibvirtVm *vm)
{
	VmbcLibvirtBackend *self = vm->backend;

	g_clear_pointer(&vm->sampler, vmbc_proc_sampler_free);
	if (vm->pid <= 0 || vm->info.memory_kib <= 0)
		return;
	vm->sampler = vmbc_proc_sampler_new(vm->pid, (guint64)vm->info.memory_kib * 1024);
	vmbc_proc_sampler_set_smaps_interval(vm->sampler, self->smaps_usec);
	vm->sample_failed = FALSE;
	vmbc_libvirt_vm_find_ram(vm);
}

VmbcLibvirtVm *
vmbc_libvirt_vm_for_domain(VmbcLibvirtBackend *self, virDomainPtr dom)
{
	gchar uuid[VIR_UUID_STRING_BUFLEN] = {0};
	g_autofree gchar *lower = NULL;

	if (virDomainGetUUIDString(dom, uuid) != 0)
		return NULL;
	lower = g_ascii_strdown(uuid, -1);
	return g_hash_table_lookup(self->vms, lower);
}
