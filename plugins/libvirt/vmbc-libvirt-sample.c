/*
 * vmbc-libvirt-sample.c: every tick of the libvirt backend: each domain's
 * QEMU measured host-side (vmbc-procfs.h), and the guest statistics (with the
 * balloon's size) of the domains whose policies use them now, in one
 * virDomainListGetStats() call in a worker. Every other domain is asked
 * seldom: libvirtd queries each QEMU it is asked about, so asking for every
 * domain every second costs it more than vmbcd costs itself. Balloon sizes
 * otherwise come from libvirt's balloon-change event.
 */
#include "vmbc-backend-vm.h"
#include "vmbc-libvirt-private.h"

/*
 * Guest stats are read every stats interval while the engine's policies use
 * them (vmbc_engine_wants_stats()), this many times less often otherwise.
 */
#define STATS_IDLE_FACTOR 120

typedef struct {
	gchar *uuid;
	gint64 current_kib; /* -1: not reported */
	VmbcGuestStats gs;
	gint64 dirty_rate;  /* bytes/s of a measured dirty rate, -1 none */
	gint64 dirty_start; /* when that measure started (libvirt's calc_start_time) */
} StatsRow;

static void
stats_row_clear(gpointer data)
{
	StatsRow *row = data;
	g_free(row->uuid);
}

static gint64
param_kib_pages(virTypedParameterPtr params, int n, const char *name)
{
	unsigned long long v = 0;

	if (virTypedParamsGetULLong(params, n, name, &v) != 1 || v > (guint64)G_MAXINT64 / 1024)
		return -1;
	return vmbc_libvirt_kib_to_pages((gint64)v);
}

/* Runs in a worker: the stats of @doms (NULL-terminated) as rows of @out; FALSE on error. */
static gboolean
read_stats(Job *job, virDomainPtr *doms, unsigned int stats, GArray *out)
{
	virDomainStatsRecordPtr *records = NULL;
	int n;

	n = virDomainListGetStats(doms, stats, &records, VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT);
	if (n < 0) {
		job->error = vmbc_libvirt_last_error(&job->code);
		return FALSE;
	}
	for (int i = 0; i < n; i++) {
		virDomainStatsRecordPtr r = records[i];
		gchar uuid[VIR_UUID_STRING_BUFLEN] = {0};
		unsigned long long v = 0;
		StatsRow row = {0};

		if (virDomainGetUUIDString(r->dom, uuid) != 0)
			continue;
		row.uuid = g_ascii_strdown(uuid, -1);
		row.current_kib = -1;
		if (virTypedParamsGetULLong(r->params, r->nparams, "balloon.current", &v) == 1 &&
		    v <= (guint64)G_MAXINT64)
			row.current_kib = (gint64)v;
		row.gs.available = param_kib_pages(r->params, r->nparams, "balloon.usable");
		row.gs.free = param_kib_pages(r->params, r->nparams, "balloon.unused");
		row.gs.caches = param_kib_pages(r->params, r->nparams, "balloon.disk_caches");
		row.gs.total = param_kib_pages(r->params, r->nparams, "balloon.available");
		row.gs.swap_in = param_kib_pages(r->params, r->nparams, "balloon.swap_in");
		row.gs.major_faults = -1;
		if (virTypedParamsGetULLong(r->params, r->nparams, "balloon.major_fault", &v) ==
			    1 &&
		    v <= (guint64)G_MAXINT64)
			row.gs.major_faults = (gint64)v;
		row.dirty_rate = -1;
		{
			int status = 0;
			long long mbps = 0, start = 0;
			if (virTypedParamsGetInt(r->params, r->nparams, "dirtyrate.calc_status",
						 &status) == 1 &&
			    status == VIR_DOMAIN_DIRTYRATE_MEASURED &&
			    virTypedParamsGetLLong(r->params, r->nparams,
						   "dirtyrate.megabytes_per_second", &mbps) == 1 &&
			    mbps >= 0 && mbps < G_MAXINT64 / (1 << 20)) {
				row.dirty_rate = (gint64)mbps << 20;
				(void)virTypedParamsGetLLong(r->params, r->nparams,
							     "dirtyrate.calc_start_time", &start);
				row.dirty_start = start;
			}
		}
		row.gs.last_update = 0;
		if (virTypedParamsGetULLong(r->params, r->nparams, "balloon.last-update", &v) ==
			    1 &&
		    v <= (guint64)G_MAXINT64)
			row.gs.last_update = (gint64)v;
		g_array_append_val(out, row);
	}
	virDomainStatsRecordListFree(records);
	return TRUE;
}

/*
 * Runs in a worker: the balloon stats of job->doms, and with their dirty
 * rate those of job->doms_dirty (a measure of their idle memory is due), in
 * one call each: libvirtd asks each QEMU one command more for the dirty rate.
 */
static void
job_stats_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	Job *job = data;
	gboolean ok = TRUE;

	job->stats = g_array_new(FALSE, TRUE, sizeof(StatsRow));
	g_array_set_clear_func(job->stats, stats_row_clear);
	/* virDomainListGetStats() wants NULL at the end */
	if (job->doms->len > 0) {
		g_ptr_array_add(job->doms, NULL);
		ok = read_stats(job, (virDomainPtr *)job->doms->pdata, VIR_DOMAIN_STATS_BALLOON,
				job->stats);
	}
	if (ok && job->doms_dirty->len > 0) {
		g_ptr_array_add(job->doms_dirty, NULL);
		ok = read_stats(job, (virDomainPtr *)job->doms_dirty->pdata,
				VIR_DOMAIN_STATS_BALLOON | VIR_DOMAIN_STATS_DIRTYRATE, job->stats);
	}
	if (!ok)
		g_clear_pointer(&job->stats, g_array_unref);
	g_task_return_boolean(task, ok);
}

static void
job_stats_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(source);
	Job *job = vmbc_libvirt_job_current(self, res);

	if (job == NULL)
		return;
	self->stats_busy = FALSE;
	if (job->stats == NULL) {
		g_debug("%s: domain stats: %s", self->uri, job->error);
		return;
	}
	for (guint i = 0; i < job->stats->len; i++) {
		StatsRow *row = &g_array_index(job->stats, StatsRow, i);
		VmbcLibvirtVm *vm = g_hash_table_lookup(self->vms, row->uuid);

		if (vm == NULL || vm->bc == NULL || !vm->info.has_balloon)
			continue;
		/*
		 * balloon.current counts virtio-mem's size as libvirt last heard it, which
		 * may not be the size vmbcd heard last: where there is such a device, the
		 * balloon's own size comes from the balloon-change event (and the XML) alone
		 */
		if (row->current_kib > 0 && !vm->bc->has_vmem)
			vmbc_libvirt_vm_balloon_actual(vm,
						       vmbc_libvirt_kib_to_pages(row->current_kib));
		if (row->gs.last_update > 0)
			vmbc_engine_set_guest_stats(vmbc_libvirt_vm_engine(vm), vm->bc, &row->gs);
		/* a measure the host made of its idle memory, taken in once */
		if (row->dirty_rate >= 0 && row->dirty_start != vm->idle_seen_start) {
			vm->idle_seen_start = row->dirty_start;
			vm->idle_pending = FALSE;
			vmbc_engine_set_dirty_rate(vmbc_libvirt_vm_engine(vm), vm->bc,
						   row->dirty_rate, vmbc_libvirt_vm_now(vm));
		}
	}
}

void
vmbc_libvirt_backend_reset_stats(VmbcLibvirtBackend *self)
{
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		((VmbcLibvirtVm *)value)->next_stats = 0;
}

/* Whether @vm's measure of its idle memory is done and to be read at @now. */
static gboolean
idle_due(VmbcLibvirtVm *vm, gint64 now)
{
	return vm->idle_pending && now >= vm->idle_ready;
}

/* Whether @vm's guest stats are to be asked for at @now; if so, when next. */
static gboolean
stats_due(VmbcLibvirtBackend *self, VmbcLibvirtVm *vm, gint64 now)
{
	gint64 interval = (gint64)self->stats_sec * G_USEC_PER_SEC;
	gint64 phase = 0;

	if (vm->bc == NULL || vm->dom == NULL || !vm->info.has_balloon)
		return FALSE;
	/* a dirty-rate measure to take in comes with the stats, as policies that use them do */
	if (vm->next_stats != 0 && !idle_due(vm, now) &&
	    now < vm->next_stats + (vmbc_engine_wants_stats(vmbc_libvirt_vm_engine(vm), vm->bc)
					    ? 0
					    : (STATS_IDLE_FACTOR - 1) * interval))
		return FALSE;
	/*
	 * The first ask, at adoption, puts the idle ones that follow at a random phase, so that
	 * domains adopted together are not all asked in the same tick from then on.
	 */
	if (vm->next_stats == 0)
		phase = (gint64)g_random_int_range(
				0,
				(gint32)MAX((STATS_IDLE_FACTOR - 1) * self->stats_sec, 1) * 1000) *
			1000;
	vm->next_stats = now + interval - phase;
	return TRUE;
}

/* One call for the stats of every domain that is due, if any. */
static void
ask_stats(VmbcLibvirtBackend *self, gint64 now)
{
	Job *job = NULL;
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		VmbcLibvirtVm *vm = value;

		if (!stats_due(self, vm, now))
			continue;
		if (job == NULL) {
			job = vmbc_libvirt_job_new(self, NULL);
			job->doms = g_ptr_array_new_with_free_func((GDestroyNotify)virDomainFree);
			job->doms_dirty =
				g_ptr_array_new_with_free_func((GDestroyNotify)virDomainFree);
		}
		virDomainRef(vm->dom);
		g_ptr_array_add(idle_due(vm, now) ? job->doms_dirty : job->doms, vm->dom);
	}
	if (job == NULL)
		return;
	self->stats_busy = TRUE;
	vmbc_libvirt_job_run(self, job, job_stats_thread, job_stats_done);
}

void
vmbc_libvirt_backend_sample_vm(VmbcBackend *backend, VmbcBeancounter *bc, gint64 now)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(backend);
	g_autoptr(VmbcLibvirtVm) vm = NULL;
	g_autofree gchar *why = NULL;

	if (bc->backend_data == NULL)
		return;
	vm = vmbc_libvirt_vm_ref(bc->backend_data);
	if (vm->bc == NULL ||
	    vmbc_backend_vm_sample(backend, vm->bc, vm->sampler, &vm->sample_failed, now,
				   G_LOG_DOMAIN, "domain"))
		return;
	why = g_strdup_printf("its QEMU process %d exited", (int)vm->pid);
	if (vm->backend != NULL)
		vmbc_libvirt_vm_remove(self, vm, why);
}

void
vmbc_libvirt_backend_sample(VmbcBackend *backend, gint64 now)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(backend);
	g_autoptr(GPtrArray) gone =
		g_ptr_array_new_with_free_func((GDestroyNotify)vmbc_libvirt_vm_unref);
	GHashTableIter iter;
	gpointer value;

	/* the statm of every domain due, read together first; each sample below takes its own */
	if (vmbc_backend_vm_batch_wanted(backend)) {
		g_hash_table_iter_init(&iter, self->vms);
		while (g_hash_table_iter_next(&iter, NULL, &value)) {
			VmbcLibvirtVm *vm = value;

			if (vm->bc != NULL)
				vmbc_backend_vm_batch_add(backend, vm->bc, vm->sampler, now);
		}
		vmbc_backend_vm_batch_read(backend, now);
	}
	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		VmbcLibvirtVm *vm = value;

		if (vm->bc != NULL &&
		    !vmbc_backend_vm_sample(backend, vm->bc, vm->sampler, &vm->sample_failed, now,
					    G_LOG_DOMAIN, "domain"))
			g_ptr_array_add(gone, vmbc_libvirt_vm_ref(vm));
	}
	for (guint i = 0; i < gone->len; i++) {
		VmbcLibvirtVm *vm = g_ptr_array_index(gone, i);
		g_autofree gchar *why = g_strdup_printf("its QEMU process %d exited", (int)vm->pid);

		if (vm->backend != NULL)
			vmbc_libvirt_vm_remove(self, vm, why);
	}
	if (self->conn != NULL && self->stats_sec > 0 && !self->stats_busy)
		ask_stats(self, now);
	vmbc_libvirt_backend_measure_idle(self, now);
	vmbc_libvirt_backend_vmem_tick(self, now);
}
