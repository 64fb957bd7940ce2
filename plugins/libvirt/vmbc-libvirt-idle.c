/*
 * vmbc-libvirt-idle.c: idle memory measured by the host for libvirt domains:
 * virDomainStartDirtyRateCalc() (QEMU's calc-dirty-rate, page sampling, one
 * second) in a worker, its result read with the balloon statistics
 * (VIR_DOMAIN_STATS_DIRTYRATE, vmbc-libvirt-sample.c). Each domain is
 * measured once an idle-interval, less often while its measures agree
 * (vmbc_engine_idle_measure_due()), and at most VMBC_BACKEND_IDLE_PER_TICK
 * measures start in one tick, the domains that waited longest first.
 */
#include "vmbc-libvirt-private.h"

/* seconds QEMU samples for */
#define CALC_SECONDS 1

static void
job_calc_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	Job *job = data;

	if (virDomainStartDirtyRateCalc(job->dom, CALC_SECONDS, 0) < 0) {
		job->error = vmbc_libvirt_last_error(&job->code);
		g_task_return_boolean(task, FALSE);
		return;
	}
	g_task_return_boolean(task, TRUE);
}

static void
job_calc_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(source);
	Job *job = g_task_get_task_data(G_TASK(res));
	VmbcLibvirtVm *vm = g_hash_table_lookup(self->vms, job->vm_uuid);

	/* free to measure again, also when the connection changed meanwhile */
	if (vm != NULL)
		vm->idle_busy = FALSE;
	/*
	 * started: its result comes with the stats asked of this domain once QEMU has sampled
	 * for CALC_SECONDS, not before (a read while it measures is a wasted call to libvirtd
	 * and to QEMU)
	 */
	if (vm != NULL && job->error == NULL) {
		vm->idle_pending = TRUE;
		vm->idle_ready = vmbc_libvirt_vm_now(vm) + CALC_SECONDS * G_USEC_PER_SEC;
	}
	if (vm == NULL || vmbc_libvirt_job_current(self, res) == NULL || job->error == NULL)
		return;
	if (job->code == VIR_ERR_NO_SUPPORT || job->code == VIR_ERR_OPERATION_UNSUPPORTED ||
	    job->code == VIR_ERR_ARGUMENT_UNSUPPORTED) {
		g_info("domain '%s': libvirt cannot measure its dirty rate (%s); its idle memory "
		       "is the guest's word",
		       vm->name, job->error);
		vm->idle_unsupported = TRUE;
		return;
	}
	g_debug("domain '%s': virDomainStartDirtyRateCalc: %s", vm->name, job->error);
}

static gint
by_started(gconstpointer a, gconstpointer b)
{
	const VmbcLibvirtVm *x = *(VmbcLibvirtVm *const *)a;
	const VmbcLibvirtVm *y = *(VmbcLibvirtVm *const *)b;
	return x->idle_started < y->idle_started ? -1 : x->idle_started > y->idle_started;
}

void
vmbc_libvirt_backend_measure_idle(VmbcLibvirtBackend *self, gint64 now)
{
	g_autoptr(GPtrArray) due = NULL;
	GHashTableIter iter;
	gpointer value;

	if (self->idle_usec <= 0 || self->conn == NULL || self->read_only)
		return;
	due = g_ptr_array_new();
	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		VmbcLibvirtVm *vm = value;

		if (vm->bc == NULL || vm->dom == NULL || vm->idle_busy || vm->idle_unsupported ||
		    !vmbc_engine_idle_measure_due(vmbc_libvirt_vm_engine(vm), vm->bc,
						  vm->idle_started, self->idle_usec, now))
			continue;
		g_ptr_array_add(due, vm);
	}
	g_ptr_array_sort(due, by_started);
	for (guint i = 0; i < due->len && i < VMBC_BACKEND_IDLE_PER_TICK; i++) {
		VmbcLibvirtVm *vm = g_ptr_array_index(due, i);
		Job *job = vmbc_libvirt_job_new(self, vm->dom);

		job->vm_uuid = g_strdup(vm->uuid);
		vm->idle_busy = TRUE;
		vm->idle_started = now;
		vmbc_libvirt_job_run(self, job, job_calc_thread, job_calc_done);
	}
}
