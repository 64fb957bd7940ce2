/*
 * vmbc-backend-vm.h: what every backend does for each VM it measures on the
 * host: one tick's sample of its VMM process through a VmbcProcSampler
 * (vmbc-procfs.h), fed to the engine, with read failures told once.
 */
#pragma once

#include "vmbc-backend.h"
#include "vmbc-procfs.h"

G_BEGIN_DECLS

/*
 * Called from the sample vfunc, every tick, for each VM of @self: measures
 * the VM of @bc through @sampler and feeds vmbc_engine_sample(), when the
 * engine says it is due (vmbc_engine_sample_due(): a VM far from its bounds
 * is read less often). A sample
 * that cannot be read feeds nothing, so the engine keeps what it last knew
 * rather than take a tick of nothing for a measurement; the first failure in
 * a row is warned about ("@noun 'NAME': cannot measure: ..."), the first
 * success after it logged, both in @log_domain (the backend's G_LOG_DOMAIN:
 * they are the backend's messages). @failed is the VM's own flag for that,
 * FALSE for a new sampler. A NULL @sampler (nothing to measure: no process
 * known) is not an error.
 *
 * Returns FALSE once the process is gone (VMBC_ERROR_VANISHED, seen at a
 * read): the caller removes the VM. TRUE otherwise, measured or not.
 */
gboolean vmbc_backend_vm_sample(VmbcBackend *self, VmbcBeancounter *bc, VmbcProcSampler *sampler,
				gboolean *failed, gint64 now, const gchar *log_domain,
				const gchar *noun);

/*
 * The first pass of a tick's sample, before vmbc_backend_vm_sample() is called
 * for each VM: adds @sampler to the backend's batch of statm reads
 * (vmbc_backend_get_statm_batch()) when the engine says the VM of @bc is due at
 * @now. Nothing for a NULL @sampler, or where the batch reads nothing (pread).
 */
void vmbc_backend_vm_batch_add(VmbcBackend *self, VmbcBeancounter *bc, VmbcProcSampler *sampler,
			       gint64 now);

/*
 * After the first pass: reads the statm of every sampler added, together, so
 * that vmbc_backend_vm_sample() at the same @now takes what was read. Samplers
 * must not be freed between the first pass and this call.
 */
void vmbc_backend_vm_batch_read(VmbcBackend *self, gint64 now);

/* Whether the first pass is worth making: FALSE where the batch reads nothing. */
gboolean vmbc_backend_vm_batch_wanted(VmbcBackend *self);

G_END_DECLS
