/*
 * vmbc-qmp-sample.c: every tick of the qmp backend: each adopted VM measured
 * host-side (vmbc-procfs.h), and its guest's statistics and a moving
 * balloon asked of QEMU, one query of each kind in flight per VM at most.
 */
#include "vmbc-backend-vm.h"
#include "vmbc-physpages.h"
#include "vmbc-qmp-command.h"
#include "vmbc-qmp-private.h"
#include "vmbc-qmp-reply.h"

/* A balloon within this many pages of its target has arrived; events are enough then. */
#define BALLOON_SETTLED_PAGES 256
/*
 * Guest stats are read every stats interval while the engine's policies use
 * them (vmbc_engine_wants_stats()), this many times less often otherwise.
 */
#define STATS_IDLE_FACTOR 120

static void
vm_on_guest_stats(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	VmbcGuestStats gs;

	if (!vmbc_qmp_vm_reply(vm, source, res, &vm->stats_busy, &ret, &error) || vm->bc == NULL)
		return;
	if (error != NULL) {
		g_debug("VM '%s': guest-stats: %s", vm->name, error->message);
		return;
	}
	if (!vmbc_qmp_reply_guest_stats(ret, &gs))
		return; /* the guest has not reported yet */
	vmbc_engine_set_guest_stats(vmbc_qmp_vm_engine(vm), vm->bc, &gs);
}

static void
vm_on_query_balloon(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	gint64 actual;

	if (!vmbc_qmp_vm_reply(vm, source, res, &vm->query_busy, &ret, &error) || vm->bc == NULL)
		return;
	if (g_error_matches(error, QMP_ERROR, QMP_ERROR_DEVICE_NOT_ACTIVE)) {
		vmbc_engine_balloon_failed(vmbc_qmp_vm_engine(vm), vm->bc, VMBC_BALLOON_NO_DEVICE,
					   error, vmbc_qmp_vm_now(vm));
		return;
	}
	if (error != NULL) {
		g_warning("VM '%s': query-balloon failed: %s", vm->name, error->message);
		return;
	}
	actual = vmbc_qmp_reply_balloon_actual(vmbc_qmp_reply_object(ret));
	if (actual >= 0)
		vmbc_qmp_vm_balloon_actual(vm, actual);
}

/* BALLOON_CHANGE is rate-limited to one a second: follow a moving balloon by asking. */
static gboolean
vm_balloon_moving(VmbcQmpVm *vm)
{
	VmbcBeancounter *bc = vm->bc;

	if (bc->balloon == VMBC_BALLOON_NO_DEVICE)
		return FALSE;
	if (vmbc_physpages_get_reclaim(bc) != VMBC_RECLAIM_IDLE)
		return TRUE;
	return bc->balloon_target >= 0 && bc->balloon_actual >= 0 &&
	       ABS(bc->balloon_actual - bc->balloon_target) > BALLOON_SETTLED_PAGES;
}

/* Asks QEMU for the guest's statistics (one query in flight at most). */
void
vmbc_qmp_vm_poll_stats(VmbcQmpVm *vm, gint64 now)
{
	g_autoptr(JsonObject) args = NULL;
	gint64 phase = 0;

	if (vm->balloon_path == NULL || vm->stats_busy)
		return;
	args = vmbc_qmp_args_qom_get(vm->balloon_path, "guest-stats");
	vm->stats_busy = TRUE;
	/*
	 * The first poll, at adoption, puts the idle polls that follow at a random phase, so that
	 * VMs adopted together do not all poll in the same tick from then on.
	 */
	if (vm->next_stats == 0)
		phase = (gint64)g_random_int_range(
				0,
				(gint32)MAX((STATS_IDLE_FACTOR - 1) * vm->backend->stats_sec, 1) *
					1000) *
			1000;
	vm->next_stats = now + (gint64)vm->backend->stats_sec * G_USEC_PER_SEC - phase;
	vmbc_qmp_vm_execute(vm, "qom-get", args, vm_on_guest_stats);
}

/* Returns FALSE if the process is gone. */
static gboolean
vm_sample(VmbcQmpVm *vm, gint64 now)
{
	if (!vmbc_backend_vm_sample(VMBC_BACKEND(vm->backend), vm->bc, vm->sampler,
				    &vm->sample_failed, now, G_LOG_DOMAIN, "VM"))
		return FALSE;
	/* whether the policies want stats is asked only once the interval is over */
	if (vm->balloon_path != NULL && vm->backend->stats_sec > 0 && !vm->stats_busy &&
	    now >= vm->next_stats &&
	    (now >= vm->next_stats + (gint64)(STATS_IDLE_FACTOR - 1) * vm->backend->stats_sec *
					     G_USEC_PER_SEC ||
	     vmbc_engine_wants_stats(vmbc_qmp_vm_engine(vm), vm->bc)))
		vmbc_qmp_vm_poll_stats(vm, now);
	vmbc_qmp_vm_vmem_tick(vm, now);
	if (!vm->query_busy && vm_balloon_moving(vm)) {
		vm->query_busy = TRUE;
		vmbc_qmp_vm_execute(vm, "query-balloon", NULL, vm_on_query_balloon);
	}
	return TRUE;
}

void
vmbc_qmp_backend_sample_vm(VmbcBackend *backend, VmbcBeancounter *bc, gint64 now)
{
	g_autoptr(VmbcQmpVm) vm = NULL;

	if (bc->backend_data == NULL)
		return;
	vm = vmbc_qmp_vm_ref(bc->backend_data);
	if (vm->state != VM_ADOPTED || vm->bc == NULL || vm_sample(vm, now))
		return;
	g_info("VM '%s' is gone: process %d exited", vm->name, (int)vm->pid);
	vmbc_qmp_vm_drop(vm);
}

void
vmbc_qmp_backend_sample(VmbcBackend *backend, gint64 now)
{
	VmbcQmpBackend *self = VMBC_QMP_BACKEND(backend);
	g_autoptr(GPtrArray) gone =
		g_ptr_array_new_with_free_func((GDestroyNotify)vmbc_qmp_vm_unref);
	GHashTableIter iter;
	gpointer value;

	/* the statm of every VM due, read together first; each sample below takes its own */
	if (vmbc_backend_vm_batch_wanted(backend)) {
		g_hash_table_iter_init(&iter, self->vms);
		while (g_hash_table_iter_next(&iter, NULL, &value)) {
			VmbcQmpVm *vm = value;

			if (vm->state == VM_ADOPTED && vm->bc != NULL)
				vmbc_backend_vm_batch_add(backend, vm->bc, vm->sampler, now);
		}
		vmbc_backend_vm_batch_read(backend, now);
	}
	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		VmbcQmpVm *vm = value;

		if (vm->state != VM_ADOPTED || vm->bc == NULL)
			continue;
		if (!vm_sample(vm, now))
			g_ptr_array_add(gone, vmbc_qmp_vm_ref(vm));
	}
	for (guint i = 0; i < gone->len; i++) {
		VmbcQmpVm *vm = g_ptr_array_index(gone, i);

		g_info("VM '%s' is gone: process %d exited", vm->name, (int)vm->pid);
		vmbc_qmp_vm_drop(vm);
	}
	vmbc_qmp_backend_measure_idle(self, now);
}
