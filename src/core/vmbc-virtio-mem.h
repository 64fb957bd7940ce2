/*
 * vmbc-virtio-mem.h: a VM's guest-visible size set through virtio-mem as well
 * as the balloon. The engine asks for a guest-visible size (a balloon target,
 * in pages); where the VM has a virtio-mem device, whole blocks of it are
 * unplugged (or plugged back) by its requested-size, and the balloon takes
 * only what is finer than a block. Pure arithmetic: the backends send it.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* One virtio-mem device as last read, in pages of the host page size. */
typedef struct {
	gint64 other;	  /* guest-visible memory that is not this device's: base RAM, DIMMs */
	gint64 size;	  /* plugged now */
	gint64 max;	  /* the most it may plug: what it had when vmbcd adopted the VM */
	gint64 block;	  /* its block size (> 0) */
	gint64 requested; /* the requested size last set, -1 none */
} VmbcVirtioMem;

/*
 * For a guest-visible size of @target pages: the device's requested size
 * (@requested: whole blocks, between 0 and max, the fewest blocks that keep
 * @target visible) and what the balloon must then hold (@balloon_pages, less
 * than a block unless the device is at 0), and the value of QMP "balloon" that
 * asks for it (@balloon_value: QEMU 7.2 counts the balloon against base RAM
 * and DIMMs only; its actual leaves virtio-mem out too).
 */
void vmbc_virtio_mem_plan(const VmbcVirtioMem *dev, gint64 target, gint64 *requested,
			  gint64 *balloon_pages, gint64 *balloon_value);

G_END_DECLS
