/*
 * vmbc-backend-vm.c: one VM's host-side sample each tick, shared by the
 * backends (see vmbc-backend-vm.h).
 */
#include "vmbc-backend-vm.h"
#include "vmbc-error.h"

gboolean
vmbc_backend_vm_sample(VmbcBackend *self, VmbcBeancounter *bc, VmbcProcSampler *sampler,
		       gboolean *failed, gint64 now, const gchar *log_domain, const gchar *noun)
{
	VmbcSample sample;
	g_autoptr(GError) error = NULL;

	g_return_val_if_fail(VMBC_IS_BACKEND(self), TRUE);
	g_return_val_if_fail(bc != NULL && failed != NULL && noun != NULL, TRUE);

	if (sampler == NULL)
		return TRUE;
	/* far enough from every bound: what it last held stands until its headroom runs out */
	if (!vmbc_engine_sample_due(vmbc_backend_get_engine(self), bc, now))
		return TRUE;
	if (!vmbc_proc_sampler_sample(sampler, bc, now, &sample, &error)) {
		if (g_error_matches(error, VMBC_ERROR, VMBC_ERROR_VANISHED))
			return FALSE;
		if (!*failed)
			g_log(log_domain, G_LOG_LEVEL_WARNING, "%s '%s': cannot measure: %s", noun,
			      bc->name, error->message);
		*failed = TRUE;
		return TRUE;
	}
	if (*failed)
		g_log(log_domain, G_LOG_LEVEL_INFO, "%s '%s': measuring again", noun, bc->name);
	*failed = FALSE;
	vmbc_engine_sample(vmbc_backend_get_engine(self), bc, &sample, now);
	return TRUE;
}

gboolean
vmbc_backend_vm_batch_wanted(VmbcBackend *self)
{
	g_return_val_if_fail(VMBC_IS_BACKEND(self), FALSE);
	return vmbc_statm_batch_get_path(vmbc_backend_get_statm_batch(self)) ==
	       VMBC_STATM_READS_URING;
}

void
vmbc_backend_vm_batch_add(VmbcBackend *self, VmbcBeancounter *bc, VmbcProcSampler *sampler,
			  gint64 now)
{
	g_return_if_fail(VMBC_IS_BACKEND(self));
	g_return_if_fail(bc != NULL);

	if (sampler == NULL || !vmbc_engine_sample_due(vmbc_backend_get_engine(self), bc, now))
		return;
	(void)vmbc_statm_batch_add(vmbc_backend_get_statm_batch(self), sampler);
}

void
vmbc_backend_vm_batch_read(VmbcBackend *self, gint64 now)
{
	VmbcStatmBatch *batch;
	guint pending;
	guint handed;

	g_return_if_fail(VMBC_IS_BACKEND(self));
	batch = vmbc_backend_get_statm_batch(self);
	pending = vmbc_statm_batch_get_pending(batch);
	if (pending == 0)
		return;
	handed = vmbc_statm_batch_run(batch, now);
	if (handed < pending)
		g_debug("statm reads: %u of %u read together, the others alone", handed, pending);
}
