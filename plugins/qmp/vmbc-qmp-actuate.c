/*
 * vmbc-qmp-actuate.c: what the qmp backend does to a VM when the engine asks:
 * move its balloon (QMP "balloon"), and escalate: pause it (QMP "stop") or
 * set memory.high of its cgroup (vmbc-cgroup.h).
 */
#include "vmbc-cgroup.h"
#include "vmbc-qmp-command.h"
#include "vmbc-qmp-private.h"

/* The adopted VM behind @bc, or NULL with an error. */
static VmbcQmpVm *
vm_for_bc(VmbcQmpBackend *self, VmbcBeancounter *bc, GError **error)
{
	VmbcQmpVm *vm = bc->backend_data;

	if (vm == NULL || vm->backend != self || vm->state != VM_ADOPTED || vm->client == NULL) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_VANISHED,
			    "VM '%s' is not connected over QMP", bc->name);
		return NULL;
	}
	return vm;
}

static void
vm_on_balloon_set(GObject *source, GAsyncResult *res, gpointer user_data)
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

gboolean
vmbc_qmp_backend_set_balloon(VmbcBackend *backend, VmbcBeancounter *bc, gint64 target_pages,
			     GError **error)
{
	VmbcQmpVm *vm = vm_for_bc(VMBC_QMP_BACKEND(backend), bc, error);
	g_autoptr(JsonObject) args = NULL;

	if (vm == NULL)
		return FALSE;
	if (target_pages <= 0 || target_pages > G_MAXINT64 / (gint64)vmbc_page_size()) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "VM '%s': invalid balloon target %" G_GINT64_FORMAT " pages", bc->name,
			    target_pages);
		return FALSE;
	}
	if (bc->has_vmem) {
		vmbc_qmp_vm_vmem_set(vm, target_pages);
		vmbc_qmp_vm_poll_stats(vm, g_get_monotonic_time());
		return TRUE;
	}
	args = vmbc_qmp_args_balloon(target_pages * (gint64)vmbc_page_size());
	g_debug("VM '%s': balloon to %" G_GINT64_FORMAT " pages", vm->name, target_pages);
	vmbc_qmp_vm_execute(vm, "balloon", args, vm_on_balloon_set);
	/* the policy that moved the balloon steps on the guest's word: get it fresh now */
	vmbc_qmp_vm_poll_stats(vm, g_get_monotonic_time());
	return TRUE;
}

static void
vm_on_stop(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	if (!vmbc_qmp_vm_reply(vm, source, res, NULL, &ret, &error))
		return;
	if (error != NULL)
		g_warning("VM '%s': cannot pause: %s", vm->name, error->message);
	else
		g_info("VM '%s' paused", vm->name);
}

/*
 * Sets memory.high of the VM's cgroup to its physpages limit plus what the
 * VMM holds, or max without a limit. @raise_only: the limit went up after an
 * escalation; only raise the value, and leave one lifted by hand (max).
 */
static gboolean
write_memory_high(VmbcQmpVm *vm, gboolean raise_only, GError **error)
{
	VmbcParm *phys = &vm->bc->parm[VMBC_RES_PHYSPAGES];
	g_autofree gchar *file = NULL;
	g_autofree gchar *value = NULL;
	gboolean changed = FALSE;

	/*
	 * memory.high covers the whole QEMU process: the guest limit plus what the
	 * VMM itself holds now, so the backstop does not squeeze QEMU's own heap.
	 */
	if (phys->limit == VMBC_UNLIMITED)
		value = g_strdup("max");
	else
		value = g_strdup_printf(
			"%" G_GINT64_FORMAT,
			(phys->limit + MAX(vm->bc->parm[VMBC_RES_VMMPAGES].held, 0)) *
				(gint64)vmbc_page_size());
	if (!vmbc_cgroup_set_memory_high(vm->backend->cgroup_root, vm->pid, value, raise_only,
					 &file, &changed, error)) {
		g_prefix_error(error, "VM '%s': ", vm->name);
		return FALSE;
	}
	if (changed)
		g_info("VM '%s': %s set to %s", vm->name, file, value);
	else
		g_debug("VM '%s': %s is not below %s: left as it is", vm->name, file, value);
	return TRUE;
}

gboolean
vmbc_qmp_backend_escalate(VmbcBackend *backend, VmbcBeancounter *bc, VmbcEscalation how,
			  GError **error)
{
	VmbcQmpVm *vm = vm_for_bc(VMBC_QMP_BACKEND(backend), bc, error);

	if (vm == NULL)
		return FALSE;
	switch (how) {
	case VMBC_ESCALATE_NONE:
		return TRUE;
	case VMBC_ESCALATE_PAUSE:
		vmbc_qmp_vm_execute(vm, "stop", NULL, vm_on_stop);
		return TRUE;
	case VMBC_ESCALATE_AUTO:
		/* memory-high where it can hold the VM; otherwise why nothing can, loudly */
		if (!vmbc_cgroup_has_memory_high(vm->backend->cgroup_root, vm->pid, error)) {
			g_prefix_error(error, "VM '%s': ", vm->name);
			return FALSE;
		}
		return write_memory_high(vm, FALSE, error);
	case VMBC_ESCALATE_MEMORY_HIGH:
	case VMBC_ESCALATE_MEMORY_HIGH_RAISE:
		return write_memory_high(vm, how == VMBC_ESCALATE_MEMORY_HIGH_RAISE, error);
	default:
		break;
	}
	g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID, "VM '%s': unknown escalation %d",
		    bc->name, (int)how);
	return FALSE;
}
