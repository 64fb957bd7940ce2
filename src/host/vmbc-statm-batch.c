/*
 * vmbc-statm-batch.c: a tick's /proc/PID/statm reads through one io_uring
 * (see vmbc-statm-batch.h).
 *
 * procfs files do not support non-blocking reads, so io_uring hands each of
 * these reads to its io-wq workers (kernel threads of vmbcd): what a batch
 * saves in system calls it may spend in those threads and in waking them.
 * docs/performance.md ("statm through io_uring") has what it costs here.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#if VMBC_HAVE_LIBURING
#include <liburing.h>
#endif

#include "vmbc-statm-batch.h"

/*
 * Reads submitted at once: one submission for up to this many VMs, several
 * for more. The ring takes 64 bytes a slot and its completions 32.
 */
#define RING_ENTRIES 4096
/* What a statm read may return; the sampler takes at most VMBC_PROC_STATM_MAX. */
#define SLOT_SIZE (VMBC_PROC_STATM_MAX + 1)

static gboolean ring_fails;

struct _VmbcStatmBatch {
	VmbcStatmReads asked;
	VmbcStatmReads path;
	GPtrArray *pending; /* of VmbcProcSampler, borrowed until the next run */
	gchar *slots;	    /* SLOT_SIZE bytes per read in flight */
	guint n_slots;
#if VMBC_HAVE_LIBURING
	struct io_uring ring;
	guint ring_entries;
#endif
};

gboolean
vmbc_statm_reads_from_string(const gchar *text, VmbcStatmReads *out)
{
	if (g_strcmp0(text, "uring") == 0)
		*out = VMBC_STATM_READS_URING;
	else if (g_strcmp0(text, "pread") == 0)
		*out = VMBC_STATM_READS_PREAD;
	else
		return FALSE;
	return TRUE;
}

void
vmbc_statm_batch_set_ring_fails(gboolean fails)
{
	ring_fails = fails;
}

#if VMBC_HAVE_LIBURING
/* A ring that can read, or FALSE with the reason in @why. */
static gboolean
ring_setup(VmbcStatmBatch *b, gchar **why)
{
	struct io_uring_probe *probe;
	gboolean can_read;
	int r;

	if (ring_fails) {
		*why = g_strdup("io_uring_queue_init: refused for a test");
		return FALSE;
	}
	r = io_uring_queue_init(RING_ENTRIES, &b->ring, 0);
	if (r < 0) {
		*why = g_strdup_printf("io_uring_queue_init: %s", g_strerror(-r));
		return FALSE;
	}
	b->ring_entries = b->ring.sq.ring_entries;
	/* IORING_OP_READ came with Linux 5.6 */
	probe = io_uring_get_probe_ring(&b->ring);
	can_read = probe != NULL && io_uring_opcode_supported(probe, IORING_OP_READ);
	if (probe != NULL)
		io_uring_free_probe(probe);
	if (!can_read) {
		io_uring_queue_exit(&b->ring);
		*why = g_strdup("the kernel's io_uring has no IORING_OP_READ");
		return FALSE;
	}
	return TRUE;
}
#endif

VmbcStatmBatch *
vmbc_statm_batch_new(VmbcStatmReads how)
{
	VmbcStatmBatch *b = g_new0(VmbcStatmBatch, 1);
	g_autofree gchar *why = NULL;

	b->asked = how;
	b->path = VMBC_STATM_READS_PREAD;
	b->pending = g_ptr_array_new();
	if (how == VMBC_STATM_READS_PREAD) {
		g_info("statm reads: one pread() per VM (statm-reads = pread)");
		return b;
	}
#if VMBC_HAVE_LIBURING
	if (ring_setup(b, &why)) {
		b->path = VMBC_STATM_READS_URING;
		g_info("statm reads: together through io_uring (%u at a time)", b->ring_entries);
		return b;
	}
#else
	why = g_strdup("vmbcd was built without liburing");
#endif
	g_info("statm reads: one pread() per VM (%s)", why);
	return b;
}

void
vmbc_statm_batch_free(VmbcStatmBatch *b)
{
	if (b == NULL)
		return;
#if VMBC_HAVE_LIBURING
	/* nothing is in flight between runs: the ring may go with its slots */
	if (b->path == VMBC_STATM_READS_URING)
		io_uring_queue_exit(&b->ring);
#endif
	g_ptr_array_unref(b->pending);
	g_free(b->slots);
	g_free(b);
}

VmbcStatmReads
vmbc_statm_batch_get_asked(VmbcStatmBatch *b)
{
	return b->asked;
}

VmbcStatmReads
vmbc_statm_batch_get_path(VmbcStatmBatch *b)
{
	return b->path;
}

gboolean
vmbc_statm_batch_add(VmbcStatmBatch *b, VmbcProcSampler *s)
{
	g_return_val_if_fail(b != NULL && s != NULL, FALSE);

	if (b->path != VMBC_STATM_READS_URING || vmbc_proc_sampler_get_statm_fd(s) < 0)
		return FALSE;
	g_ptr_array_add(b->pending, s);
	return TRUE;
}

guint
vmbc_statm_batch_get_pending(VmbcStatmBatch *b)
{
	return b->pending->len;
}

#if VMBC_HAVE_LIBURING
/*
 * The ring failed (@what: the call, @err: its errno): closed once what is in
 * flight is back, and the samplers read for themselves from now on.
 */
static void
ring_give_up(VmbcStatmBatch *b, const gchar *what, int err)
{
	g_info("statm reads: %s: %s; one pread() per VM from now on", what, g_strerror(err));
	io_uring_queue_exit(&b->ring);
	b->path = VMBC_STATM_READS_PREAD;
}

/*
 * Reads the statm of @n samplers from @first through the ring and hands
 * each what it read. Returns how many were handed a reading; FALSE in @*ok
 * if the ring failed (it is closed then).
 */
static guint
run_chunk(VmbcStatmBatch *b, guint first, guint n, gint64 now_usec, gboolean *ok)
{
	guint handed = 0;
	guint queued = 0;
	guint submitted = 0;
	guint inflight;
	int submit_err = 0;
	int r;

	for (guint i = 0; i < n; i++) {
		VmbcProcSampler *s = g_ptr_array_index(b->pending, first + i);
		struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);

		if (sqe == NULL)
			break; /* n is at most the ring's size: cannot happen */
		io_uring_prep_read(sqe, vmbc_proc_sampler_get_statm_fd(s),
				   b->slots + (gsize)i * SLOT_SIZE, SLOT_SIZE, 0);
		io_uring_sqe_set_data64(sqe, i);
		queued++;
	}
	/* the kernel may take fewer than were queued, and the rest on the next call */
	while (submitted < queued) {
		r = io_uring_submit(&b->ring);
		if (r == -EINTR)
			continue;
		if (r <= 0) {
			submit_err = r < 0 ? -r : EAGAIN;
			break;
		}
		submitted += (guint)r;
	}
	/* what the kernel took comes back, whatever happens */
	inflight = submitted;
	while (inflight > 0) {
		struct io_uring_cqe *cqe = NULL;
		unsigned head;
		guint seen = 0;

		r = io_uring_wait_cqe(&b->ring, &cqe);
		if (r == -EINTR || r == -EAGAIN)
			continue;
		if (r < 0) {
			/* the slots may still be written into: keep them, lose the ring */
			b->slots = NULL;
			b->n_slots = 0;
			ring_give_up(b, "io_uring_wait_cqe", -r);
			*ok = FALSE;
			return handed;
		}
		io_uring_for_each_cqe(&b->ring, head, cqe)
		{
			guint64 i = io_uring_cqe_get_data64(cqe);

			seen++;
			if (i >= n || cqe->res <= 0)
				continue; /* the sampler reads for itself, and says why it cannot */
			vmbc_proc_sampler_take_statm(g_ptr_array_index(b->pending, first + i),
						     b->slots + i * SLOT_SIZE,
						     MIN((gsize)cqe->res, SLOT_SIZE - 1), now_usec);
			handed++;
		}
		io_uring_cq_advance(&b->ring, seen);
		inflight -= MIN(seen, inflight);
	}
	if (submit_err != 0) {
		/* the entries not taken die with the ring */
		ring_give_up(b, "io_uring_submit", submit_err);
		*ok = FALSE;
	}
	return handed;
}
#endif

guint
vmbc_statm_batch_run(VmbcStatmBatch *b, gint64 now_usec)
{
	guint handed = 0;

	g_return_val_if_fail(b != NULL, 0);

#if VMBC_HAVE_LIBURING
	if (b->path == VMBC_STATM_READS_URING && b->pending->len > 0) {
		guint chunk = MIN(b->pending->len, b->ring_entries);
		gboolean ok = TRUE;

		if (b->n_slots < chunk) {
			g_free(b->slots);
			b->slots = g_malloc((gsize)chunk * SLOT_SIZE);
			b->n_slots = chunk;
		}
		for (guint first = 0; ok && first < b->pending->len; first += chunk)
			handed += run_chunk(b, first, MIN(chunk, b->pending->len - first), now_usec,
					    &ok);
	}
#endif
	g_ptr_array_set_size(b->pending, 0);
	return handed;
}
