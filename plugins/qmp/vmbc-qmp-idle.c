/*
 * vmbc-qmp-idle.c: idle memory measured by the host, through QEMU's own
 * dirty-rate sampling: calc-dirty-rate (page sampling: QEMU hashes a sample
 * of guest pages, 512 per GiB, and hashes them again after calc-time; works
 * under KVM and TCG, and the guest has no say in it), then query-dirty-rate.
 *
 * The cost is bounded: each VM is measured once an idle-interval, less often
 * while its measures agree (vmbc_engine_idle_measure_due()), and at most
 * VMBC_BACKEND_IDLE_PER_TICK measurements start in one tick, the VMs that
 * waited longest first, so a thousand VMs are measured in turn, not at once.
 */
#include "vmbc-qmp-command.h"
#include "vmbc-qmp-private.h"
#include "vmbc-qmp-reply.h"

/* calc-dirty-rate's calc-time, seconds: QEMU 7.2 takes whole seconds */
#define CALC_SECONDS 1

static void
vm_on_query_dirty_rate(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	gboolean measuring = FALSE;
	gint64 rate;

	if (!vmbc_qmp_vm_reply(vm, source, res, &vm->idle_query_busy, &ret, &error) ||
	    vm->bc == NULL)
		return;
	if (error != NULL) {
		g_debug("VM '%s': query-dirty-rate: %s", vm->name, error->message);
		vm->idle_busy = FALSE;
		return;
	}
	rate = vmbc_qmp_reply_dirty_rate(ret, &measuring);
	if (measuring)
		return; /* asked again at the next tick */
	vm->idle_busy = FALSE;
	if (rate < 0) {
		g_debug("VM '%s': query-dirty-rate gave no rate", vm->name);
		return;
	}
	g_debug("VM '%s': dirty rate %" G_GINT64_FORMAT " bytes/s", vm->name, rate);
	vmbc_engine_set_dirty_rate(vmbc_qmp_vm_engine(vm), vm->bc, rate, vmbc_qmp_vm_now(vm));
}

static void
vm_on_calc_dirty_rate(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	if (!vmbc_qmp_vm_reply(vm, source, res, NULL, &ret, &error))
		return;
	if (error == NULL)
		return;
	vm->idle_busy = FALSE;
	if (g_error_matches(error, QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND)) {
		g_info("VM '%s': this QEMU cannot measure its dirty rate; its idle memory is "
		       "the guest's word",
		       vm->name);
		vm->idle_unsupported = TRUE;
		return;
	}
	g_debug("VM '%s': calc-dirty-rate: %s", vm->name, error->message);
}

static void
vm_start_measure(VmbcQmpVm *vm, gint64 now)
{
	g_autoptr(JsonObject) args = json_object_new();

	json_object_set_int_member(args, "calc-time", CALC_SECONDS);
	vm->idle_busy = TRUE;
	vm->idle_started = now;
	vmbc_qmp_vm_execute(vm, "calc-dirty-rate", args, vm_on_calc_dirty_rate);
}

static gint
by_started(gconstpointer a, gconstpointer b)
{
	const VmbcQmpVm *x = *(VmbcQmpVm *const *)a;
	const VmbcQmpVm *y = *(VmbcQmpVm *const *)b;
	return x->idle_started < y->idle_started ? -1 : x->idle_started > y->idle_started;
}

void
vmbc_qmp_backend_measure_idle(VmbcQmpBackend *self, gint64 now)
{
	g_autoptr(GPtrArray) due = NULL;
	GHashTableIter iter;
	gpointer value;

	if (self->idle_usec <= 0)
		return;
	due = g_ptr_array_new();
	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		VmbcQmpVm *vm = value;

		if (vm->state != VM_ADOPTED || vm->bc == NULL || vm->idle_unsupported)
			continue;
		if (vm->idle_busy) {
			/* the measure is done calc-time after it started: ask for it */
			if (!vm->idle_query_busy &&
			    now - vm->idle_started >= CALC_SECONDS * G_USEC_PER_SEC) {
				vm->idle_query_busy = TRUE;
				vmbc_qmp_vm_execute(vm, "query-dirty-rate", NULL,
						    vm_on_query_dirty_rate);
			}
			/* a measure never answered (QEMU busy with another) is given up */
			if (now - vm->idle_started > 10 * CALC_SECONDS * G_USEC_PER_SEC)
				vm->idle_busy = FALSE;
			continue;
		}
		if (vmbc_engine_idle_measure_due(vmbc_qmp_vm_engine(vm), vm->bc, vm->idle_started,
						 self->idle_usec, now))
			g_ptr_array_add(due, vm);
	}
	g_ptr_array_sort(due, by_started);
	for (guint i = 0; i < due->len && i < VMBC_BACKEND_IDLE_PER_TICK; i++)
		vm_start_measure(g_ptr_array_index(due, i), now);
}
