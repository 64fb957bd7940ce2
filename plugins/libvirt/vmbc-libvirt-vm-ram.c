/*
 * vmbc-libvirt-vm-ram.c: a domain's guest RAM as its sampler counts it. The
 * live XML names the memory backends (vmbc-libvirt-ram.h) but not where QEMU
 * maps them, and asking QEMU through libvirt's monitor passthrough would
 * mark the domain tainted; so each backend is found among the QEMU process's
 * mappings by its kind and size (vmbc-ram-maps.h in src/host). When one
 * cannot be found, the sampler falls back to the one mapping of the guest's
 * RAM size, as for a domain whose XML says nothing of its backends.
 */
#include "vmbc-libvirt-private.h"
#include "vmbc-ram-maps.h"

void
vmbc_libvirt_vm_find_ram(VmbcLibvirtVm *vm)
{
	const VmbcLibvirtRam *ram = &vm->info.ram;
	g_autoptr(GArray) ranges = g_array_new(FALSE, FALSE, sizeof(VmbcRamRange));
	g_autoptr(GError) error = NULL;

	if (vm->sampler == NULL)
		return;
	if (ram->backends == NULL || ram->backends->len == 0) {
		g_info("domain '%s': guest RAM found by its size (%s)", vm->name,
		       vm->info.ram_error != NULL ? vm->info.ram_error
						  : "the XML names no memory backend");
		return;
	}
	if (!vmbc_ram_maps_find(vm->pid, (const VmbcRamBackend *)(gpointer)ram->backends->data,
				ram->backends->len, ranges, &error)) {
		g_info("domain '%s': guest RAM found by its size (%s)", vm->name, error->message);
		return;
	}
	for (guint i = 0; i < ram->backends->len; i++) {
		const VmbcRamBackend *b = &g_array_index(ram->backends, VmbcRamBackend, i);
		const VmbcRamRange *r = &g_array_index(ranges, VmbcRamRange, i);

		g_debug("domain '%s': backend '%s' (%s, %" G_GUINT64_FORMAT
			" KiB) at 0x%" G_GINT64_MODIFIER "x",
			vm->name, b->id != NULL ? b->id : "?", vmbc_ram_kind_to_string(b->kind),
			b->size / 1024, r->start);
	}
	vmbc_proc_sampler_set_ranges(vm->sampler, (const VmbcRamRange *)(gpointer)ranges->data,
				     ranges->len);
	g_info("domain '%s': guest RAM is %u memory backends", vm->name, ranges->len);
}
