/*
 * vmbc-statm-batch.h: one tick's /proc/PID/statm reads, made together.
 *
 * Each VM's sampler (vmbc-procfs.h) reads statm with one pread() on a
 * descriptor it keeps open. A VmbcStatmBatch collects the samplers of the VMs
 * due at a tick, reads all their statm through io_uring (IORING_OP_READ at
 * offset 0 on the kept descriptors, as many in one submission as the ring
 * holds) and hands each sampler what it read; the sampler's own read at that
 * tick then takes it (vmbc_proc_sampler_take_statm()) and reads nothing.
 *
 * Where io_uring is not built in (meson -During=disabled, no liburing), cannot
 * be set up (kernel.io_uring_disabled, a seccomp filter, an old kernel) or
 * refuses the read, the batch does nothing and every sampler reads with
 * pread() as before; a single read that fails is read again that way.
 * Samplers without a kept descriptor (past the descriptor budget) are never
 * batched. The path taken is logged once, at info.
 */
#pragma once

#include <glib.h>

#include "vmbc-procfs.h"

G_BEGIN_DECLS

/* How the statm reads of a tick are made (vmbc.conf statm-reads). */
typedef enum {
	VMBC_STATM_READS_URING, /* together through io_uring where it works, else pread */
	VMBC_STATM_READS_PREAD, /* one pread() per VM, by each sampler */
} VmbcStatmReads;

typedef struct _VmbcStatmBatch VmbcStatmBatch;

/* "uring" or "pread" into @out; FALSE for anything else. */
gboolean vmbc_statm_reads_from_string(const gchar *text, VmbcStatmReads *out);

/*
 * A batch that reads as @how asks, where it can: with URING it sets up a
 * ring now, and falls back to PREAD (logged) if that fails.
 */
VmbcStatmBatch *vmbc_statm_batch_new(VmbcStatmReads how);

void vmbc_statm_batch_free(VmbcStatmBatch *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbcStatmBatch, vmbc_statm_batch_free)

/* What was asked for at vmbc_statm_batch_new(). */
VmbcStatmReads vmbc_statm_batch_get_asked(VmbcStatmBatch *b);

/* The path the reads take now: URING only while a ring works. */
VmbcStatmReads vmbc_statm_batch_get_path(VmbcStatmBatch *b);

/*
 * @s (borrowed until the next vmbc_statm_batch_run()) is due at this tick.
 * Nothing is added on the pread path or for a sampler that keeps no statm
 * descriptor. Returns whether it was added.
 */
gboolean vmbc_statm_batch_add(VmbcStatmBatch *b, VmbcProcSampler *s);

/* How many samplers wait for the next run. */
guint vmbc_statm_batch_get_pending(VmbcStatmBatch *b);

/*
 * Reads the statm of every sampler added since the last run and hands each
 * what it read for the tick at @now_usec; empties the batch. Returns how many
 * were handed a reading; the others read for themselves at their sample. A
 * ring that stops working (refused reads or submissions) is closed, and the
 * batch falls back to PREAD for good (logged).
 */
guint vmbc_statm_batch_run(VmbcStatmBatch *b, gint64 now_usec);

/*
 * TRUE makes every ring set up from now on fail, as a kernel with io_uring
 * disabled does. For tests.
 */
void vmbc_statm_batch_set_ring_fails(gboolean fails);

G_END_DECLS
