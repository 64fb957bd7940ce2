/*
 * test-qmp-ram-reply.c: the readers of what QEMU says about guest RAM
 * (plugins/qmp/vmbc-qmp-ram-reply.c), on replies recorded from QEMU 7.2
 * (qmp72-memkinds.json: -m 512M,maxmem=2G,slots=2, two NUMA nodes backed by
 * m0 and m1, a virtio-mem device vm0 on vmem0, a memfd DIMM d0) and on
 * replies QEMU never sends.
 */
#include "vmbc-qmp-ram-reply.h"

#define MIB (1024 * 1024)

static JsonObject *
fixture(void)
{
	g_autofree gchar *path = g_test_build_filename(G_TEST_DIST, "qmp72-memkinds.json", NULL);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *text = NULL;
	g_autoptr(JsonNode) root = NULL;

	g_file_get_contents(path, &text, NULL, &error);
	g_assert_no_error(error);
	root = json_from_string(text, &error);
	g_assert_no_error(error);
	return json_object_ref(json_node_get_object(root));
}

static const gchar *
text_of(JsonObject *rec, const gchar *key)
{
	return json_object_get_string_member(rec, key);
}

static void
test_memdev(void)
{
	g_autoptr(JsonObject) rec = fixture();
	g_autoptr(GPtrArray) devs =
		vmbc_qmp_reply_memdevs(json_object_get_member(rec, "query-memdev"));
	VmbcQmpMemdev *d0;

	g_assert_nonnull(devs);
	g_assert_cmpuint(devs->len, ==, 4);
	g_assert_cmpstr(((VmbcQmpMemdev *)g_ptr_array_index(devs, 0))->id, ==, "vmem0");
	g_assert_cmpuint(((VmbcQmpMemdev *)g_ptr_array_index(devs, 0))->size, ==, 512 * MIB);
	d0 = g_ptr_array_index(devs, 2);
	g_assert_cmpstr(d0->id, ==, "d0");
	g_assert_true(d0->share);
	g_assert_cmpuint(d0->size, ==, 128 * MIB);
}

static void
test_memdev_bad(void)
{
	g_autoptr(JsonNode) obj = json_from_string("{\"id\": \"m0\"}", NULL);
	g_autoptr(JsonNode) bad = json_from_string(
		"[{\"id\": \"\", \"size\": 4096}, {\"id\": \"x\", \"size\": -1}, "
		"{\"id\": 3, \"size\": 4096}, 7, {\"id\": \"ok\", \"size\": 4096}]",
		NULL);
	g_autoptr(GPtrArray) devs = NULL;

	g_assert_null(vmbc_qmp_reply_memdevs(obj));
	g_assert_null(vmbc_qmp_reply_memdevs(NULL));
	devs = vmbc_qmp_reply_memdevs(bad);
	g_assert_cmpuint(devs->len, ==, 1);
	g_assert_cmpstr(((VmbcQmpMemdev *)g_ptr_array_index(devs, 0))->id, ==, "ok");
}

static void
test_mtree(void)
{
	g_autoptr(JsonObject) rec = fixture();
	const gchar *mtree = text_of(rec, "info mtree -f");
	guint64 gpa = 0;
	guint64 off = 0;

	/* node 0 from 0 (its first line: below the VGA hole, offset 0) */
	g_assert_true(vmbc_qmp_reply_mtree_ram(mtree, "m0", &gpa, &off));
	g_assert_cmphex(gpa, ==, 0);
	g_assert_cmphex(off, ==, 0);
	/* node 1 after it */
	g_assert_true(vmbc_qmp_reply_mtree_ram(mtree, "m1", &gpa, &off));
	g_assert_cmphex(gpa, ==, 0x10000000);
	g_assert_cmphex(off, ==, 0);
	/* the memory devices above 4 GiB */
	g_assert_true(vmbc_qmp_reply_mtree_ram(mtree, "vmem0", &gpa, &off));
	g_assert_cmphex(gpa, ==, 0x100000000ULL);
	g_assert_true(vmbc_qmp_reply_mtree_ram(mtree, "d0", &gpa, &off));
	g_assert_cmphex(gpa, ==, 0x120000000ULL);
	/* ROMs are not RAM; an unknown backend is not mapped */
	g_assert_false(vmbc_qmp_reply_mtree_ram(mtree, "pc.bios", &gpa, &off));
	g_assert_false(vmbc_qmp_reply_mtree_ram(mtree, "nosuch", &gpa, &off));
	g_assert_false(vmbc_qmp_reply_mtree_ram(NULL, "m0", &gpa, &off));
}

static void
test_mtree_offset(void)
{
	/* a region first seen at an offset (its start below hidden by a higher-priority one) */
	const gchar *text =
		"FlatView #0\n"
		" AS \"memory\", root: system\n"
		" Root memory region: system\n"
		"  00000000000c0000-00000000000dffff (prio 1, rom): pc.rom\n"
		"  0000000000100000-000000001fffffff (prio 0, ram): /objects/r0 @0000000000100000\n"
		"  garbage-line (prio 0, ram): r0\n";
	guint64 gpa = 0;
	guint64 off = 0;

	g_assert_true(vmbc_qmp_reply_mtree_ram(text, "r0", &gpa, &off));
	g_assert_cmphex(gpa, ==, 0x100000);
	g_assert_cmphex(off, ==, 0x100000);
}

static void
test_gpa2hva(void)
{
	g_autoptr(JsonObject) rec = fixture();
	g_autofree gchar *region = NULL;
	guint64 hva = 0;

	g_assert_true(vmbc_qmp_reply_gpa2hva(text_of(rec, "gpa2hva 0x0"), 0, &hva, &region));
	g_assert_cmphex(hva, ==, 0x7f83a3e00000ULL);
	g_assert_cmpstr(region, ==, "m0");
	g_assert_true(
		vmbc_qmp_reply_gpa2hva(text_of(rec, "gpa2hva 0x10000000"), 0x10000000, &hva, NULL));
	g_assert_cmphex(hva, ==, 0x7f8393c00000ULL);
	/* nothing there, or the answer for another address */
	g_assert_false(vmbc_qmp_reply_gpa2hva(text_of(rec, "gpa2hva 0x200000000"), 0x200000000,
					      &hva, NULL));
	g_assert_false(vmbc_qmp_reply_gpa2hva(text_of(rec, "gpa2hva 0x0"), 0x1000, &hva, NULL));
	g_assert_false(
		vmbc_qmp_reply_gpa2hva("Host virtual address for 0x0 (m0) is", 0, &hva, NULL));
	g_assert_false(vmbc_qmp_reply_gpa2hva(NULL, 0, &hva, NULL));
}

static void
test_virtio_mem(void)
{
	g_autoptr(JsonObject) rec = fixture();
	g_autoptr(GPtrArray) devs =
		vmbc_qmp_reply_virtio_mem(json_object_get_member(rec, "query-memory-devices"));
	VmbcQmpVirtioMem *d;

	/* the DIMM is left out */
	g_assert_cmpuint(devs->len, ==, 1);
	d = g_ptr_array_index(devs, 0);
	g_assert_cmpstr(d->id, ==, "vm0");
	g_assert_cmpstr(d->memdev, ==, "/objects/vmem0");
	g_assert_cmphex(d->memaddr, ==, 0x100000000ULL);
	g_assert_cmpuint(d->block_size, ==, 2 * MIB);
	g_assert_cmpuint(d->size, ==, 0);
	g_assert_cmpuint(d->max_size, ==, 512 * MIB);
	g_assert_cmpuint(d->requested_size, ==, 0);
}

static void
test_virtio_mem_bad(void)
{
	g_autoptr(JsonNode) bad = json_from_string(
		"[{\"type\": \"virtio-mem\", \"data\": {\"memaddr\": 0, \"block-size\": 2097152, "
		"\"size\": 0, \"max-size\": 0, \"requested-size\": 0}},"
		" {\"type\": \"virtio-mem\", \"data\": {\"id\": \"b\", \"memaddr\": 0, "
		"\"block-size\": 3000000, \"size\": 0, \"max-size\": 0, \"requested-size\": 0}},"
		" {\"type\": \"virtio-mem\", \"data\": {\"id\": \"c\", \"memaddr\": 0}},"
		" {\"type\": \"virtio-mem\"}, 5]",
		NULL);
	g_autoptr(GPtrArray) devs = vmbc_qmp_reply_virtio_mem(bad);

	g_assert_cmpuint(devs->len, ==, 0);
	g_assert_null(vmbc_qmp_reply_virtio_mem(NULL));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/vmbc/qmp-ram-reply/memdev", test_memdev);
	g_test_add_func("/vmbc/qmp-ram-reply/memdev-bad", test_memdev_bad);
	g_test_add_func("/vmbc/qmp-ram-reply/mtree", test_mtree);
	g_test_add_func("/vmbc/qmp-ram-reply/mtree-offset", test_mtree_offset);
	g_test_add_func("/vmbc/qmp-ram-reply/gpa2hva", test_gpa2hva);
	g_test_add_func("/vmbc/qmp-ram-reply/virtio-mem", test_virtio_mem);
	g_test_add_func("/vmbc/qmp-ram-reply/virtio-mem-bad", test_virtio_mem_bad);
	return g_test_run();
}
