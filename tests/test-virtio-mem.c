/*
 * test-virtio-mem.c: how a guest-visible size is split between virtio-mem
 * blocks and the balloon (src/core/vmbc-virtio-mem.c).
 */
#include "vmbc-virtio-mem.h"

/* 4 KiB pages: 2 MiB blocks are 512 pages, 1 MiB 256 */
#define BLOCK 512
#define MIB   256

/* 384 MiB of base RAM, 640 MiB plugged of a device that had 640 MiB at adoption */
static const VmbcVirtioMem dev = {.other = 384 * MIB,
				  .size = 640 * MIB,
				  .max = 640 * MIB,
				  .block = BLOCK,
				  .requested = 640 * MIB};

static void
test_unplug_blocks(void)
{
	gint64 req = -1;
	gint64 balloon = -1;
	gint64 value = -1;

	/* 549 MiB visible: 165 MiB of the device -> 166 MiB (83 blocks), the balloon 1 MiB */
	vmbc_virtio_mem_plan(&dev, 549 * MIB, &req, &balloon, &value);
	g_assert_cmpint(req, ==, 166 * MIB);
	g_assert_cmpint(req % BLOCK, ==, 0);
	g_assert_cmpint(balloon, ==, 1 * MIB);
	g_assert_cmpint(balloon, <, BLOCK);
	/* QEMU's balloon counts the base RAM only */
	g_assert_cmpint(value, ==, 383 * MIB);
	g_assert_cmpint(dev.other + req - balloon, ==, 549 * MIB);

	/* a whole number of blocks: no balloon */
	vmbc_virtio_mem_plan(&dev, 512 * MIB, &req, &balloon, &value);
	g_assert_cmpint(req, ==, 128 * MIB);
	g_assert_cmpint(balloon, ==, 0);
	g_assert_cmpint(value, ==, 384 * MIB);
}

static void
test_below_base(void)
{
	gint64 req = -1;
	gint64 balloon = -1;
	gint64 value = -1;

	/* below what the device does not hold: all blocks out, the balloon takes the rest */
	vmbc_virtio_mem_plan(&dev, 300 * MIB, &req, &balloon, &value);
	g_assert_cmpint(req, ==, 0);
	g_assert_cmpint(balloon, ==, 84 * MIB);
	g_assert_cmpint(value, ==, 300 * MIB);
}

static void
test_give_back(void)
{
	VmbcVirtioMem small = dev;
	gint64 req = -1;
	gint64 balloon = -1;
	gint64 value = -1;

	small.size = small.requested = 166 * MIB;
	/* back to the full size: the blocks it had, never more, the balloon empty */
	vmbc_virtio_mem_plan(&small, 1024 * MIB, &req, &balloon, &value);
	g_assert_cmpint(req, ==, 640 * MIB);
	g_assert_cmpint(balloon, ==, 0);
	g_assert_cmpint(value, ==, 384 * MIB);
	/* asked for more than it ever had: still what it had */
	vmbc_virtio_mem_plan(&small, 4096 * MIB, &req, &balloon, &value);
	g_assert_cmpint(req, ==, 640 * MIB);
	g_assert_cmpint(balloon, ==, 0);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/vmbc/virtio-mem/unplug-blocks", test_unplug_blocks);
	g_test_add_func("/vmbc/virtio-mem/below-base", test_below_base);
	g_test_add_func("/vmbc/virtio-mem/give-back", test_give_back);
	return g_test_run();
}
