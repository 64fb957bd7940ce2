/*
 * vmbc-qmp-ram.c: where a VM's guest RAM is, asked of QEMU while the VM is
 * probed: its memory backends (query-memdev), which of them the guest sees
 * and where (HMP "info mtree -f"), where QEMU maps each one (HMP "gpa2hva" at
 * the region's guest-physical start), and its virtio-mem devices
 * (query-memory-devices). The ranges go to the VM's sampler, so that every
 * backend is charged (main RAM, NUMA nodes, DIMMs, virtio-mem, memfd, file,
 * hugetlbfs) and nothing else is; a QEMU that cannot say leaves them empty,
 * and the sampler finds guest RAM by its size as before.
 */
#include "vmbc-qmp-private.h"
#include "vmbc-qmp-ram-reply.h"

static void ram_next_backend(VmbcQmpVm *vm);

static void
ram_finish(VmbcQmpVm *vm)
{
	VmbcQmpVmProbeFunc next = vm->ram_next_step;

	g_clear_pointer(&vm->ram_memdevs, g_ptr_array_unref);
	g_clear_pointer(&vm->ram_mtree, g_free);
	vm->ram_next_step = NULL;
	next(vm);
}

static void
on_memory_devices(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	if (!vmbc_qmp_vm_reply(vm, source, res, NULL, &ret, &error))
		return;
	g_clear_pointer(&vm->vmems, g_ptr_array_unref);
	if (error == NULL)
		vm->vmems = vmbc_qmp_reply_virtio_mem(ret);
	else
		g_debug("VM '%s': query-memory-devices: %s", vm->name, error->message);
	ram_finish(vm);
}

static void
ram_done(VmbcQmpVm *vm)
{
	vmbc_qmp_vm_execute(vm, "query-memory-devices", NULL, on_memory_devices);
}

/* Gives up on the ranges: the sampler finds guest RAM by its size. */
static void
ram_by_size(VmbcQmpVm *vm, const gchar *why)
{
	g_info("VM '%s': guest RAM found by its size (%s)", vm->name, why);
	g_array_set_size(vm->ram_ranges, 0);
	ram_done(vm);
}

static void
on_gpa2hva(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	VmbcQmpMemdev *m = g_ptr_array_index(vm->ram_memdevs, vm->ram_index);
	g_autofree gchar *msg = NULL;
	guint64 hva = 0;

	if (!vmbc_qmp_vm_reply(vm, source, res, NULL, &ret, &error))
		return;
	if (error != NULL || !JSON_NODE_HOLDS_VALUE(ret) ||
	    json_node_get_value_type(ret) != G_TYPE_STRING ||
	    !vmbc_qmp_reply_gpa2hva(json_node_get_string(ret), vm->ram_gpa, &hva, NULL) ||
	    hva < vm->ram_offset) {
		msg = g_strdup_printf("gpa2hva 0x%" G_GINT64_MODIFIER "x of backend '%s': %s",
				      vm->ram_gpa, m->id,
				      error != NULL ? error->message : "no host address");
		ram_by_size(vm, msg);
		return;
	}
	{
		VmbcRamRange r = {.start = hva - vm->ram_offset, .size = m->size};
		g_array_append_val(vm->ram_ranges, r);
	}
	vm->ram_index++;
	ram_next_backend(vm);
}

/* The next backend the guest sees: where QEMU maps it. */
static void
ram_next_backend(VmbcQmpVm *vm)
{
	for (; vm->ram_index < vm->ram_memdevs->len; vm->ram_index++) {
		VmbcQmpMemdev *m = g_ptr_array_index(vm->ram_memdevs, vm->ram_index);
		g_autofree gchar *line = NULL;
		g_autoptr(JsonObject) args = NULL;

		if (!vmbc_qmp_reply_mtree_ram(vm->ram_mtree, m->id, &vm->ram_gpa,
					      &vm->ram_offset)) {
			g_debug("VM '%s': backend '%s' is not mapped into the guest", vm->name,
				m->id);
			continue;
		}
		line = g_strdup_printf("gpa2hva 0x%" G_GINT64_MODIFIER "x", vm->ram_gpa);
		args = vmbc_qmp_args_hmp(line);
		vmbc_qmp_vm_execute(vm, "human-monitor-command", args, on_gpa2hva);
		return;
	}
	if (vm->ram_ranges->len == 0) {
		ram_by_size(vm, "no memory backend is mapped into the guest");
		return;
	}
	ram_done(vm);
}

static void
on_mtree(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	if (!vmbc_qmp_vm_reply(vm, source, res, NULL, &ret, &error))
		return;
	if (error != NULL || !JSON_NODE_HOLDS_VALUE(ret) ||
	    json_node_get_value_type(ret) != G_TYPE_STRING) {
		ram_by_size(vm, error != NULL ? error->message : "info mtree: not text");
		return;
	}
	g_free(vm->ram_mtree);
	vm->ram_mtree = g_strdup(json_node_get_string(ret));
	vm->ram_index = 0;
	ram_next_backend(vm);
}

static void
on_memdev(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	g_autoptr(JsonObject) args = NULL;

	if (!vmbc_qmp_vm_reply(vm, source, res, NULL, &ret, &error))
		return;
	g_clear_pointer(&vm->ram_memdevs, g_ptr_array_unref);
	if (error == NULL)
		vm->ram_memdevs = vmbc_qmp_reply_memdevs(ret);
	if (vm->ram_memdevs == NULL || vm->ram_memdevs->len == 0) {
		ram_by_size(vm, error != NULL ? error->message : "query-memdev names no backend");
		return;
	}
	args = vmbc_qmp_args_hmp("info mtree -f");
	vmbc_qmp_vm_execute(vm, "human-monitor-command", args, on_mtree);
}

void
vmbc_qmp_vm_probe_ram(VmbcQmpVm *vm, VmbcQmpVmProbeFunc next)
{
	vm->ram_next_step = next;
	/* what a probe cut short by a lost connection left */
	g_clear_pointer(&vm->ram_memdevs, g_ptr_array_unref);
	g_clear_pointer(&vm->ram_mtree, g_free);
	if (vm->ram_ranges == NULL)
		vm->ram_ranges = g_array_new(FALSE, FALSE, sizeof(VmbcRamRange));
	g_array_set_size(vm->ram_ranges, 0);
	vmbc_qmp_vm_execute(vm, "query-memdev", NULL, on_memdev);
}
