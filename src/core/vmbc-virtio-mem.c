/*
 * vmbc-virtio-mem.c: how a guest-visible size is split between virtio-mem
 * blocks and the balloon (see vmbc-virtio-mem.h).
 */
#include "vmbc-virtio-mem.h"

void
vmbc_virtio_mem_plan(const VmbcVirtioMem *dev, gint64 target, gint64 *requested,
		     gint64 *balloon_pages, gint64 *balloon_value)
{
	gint64 want = target - dev->other;
	gint64 req;
	gint64 balloon;

	g_return_if_fail(dev != NULL && dev->block > 0);
	g_return_if_fail(requested != NULL && balloon_pages != NULL && balloon_value != NULL);

	/* the blocks that keep @target visible: rounded up, the balloon takes the rest */
	if (want <= 0)
		req = 0;
	else
		req = (want / dev->block + (want % dev->block != 0 ? 1 : 0)) * dev->block;
	/* never past what it had: vmbcd gives back, it does not add memory */
	req = CLAMP(req, 0, (MAX(dev->max, 0) / dev->block) * dev->block);
	balloon = MAX(dev->other + req - target, 0);
	*requested = req;
	*balloon_pages = balloon;
	/* QMP balloon: QEMU's balloon counts base RAM and DIMMs, not virtio-mem */
	*balloon_value = MAX(dev->other - balloon, 1);
}
