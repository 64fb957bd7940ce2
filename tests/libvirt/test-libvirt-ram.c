/*
 * test-libvirt-ram.c: guest RAM of a libvirt domain: its memory backends and
 * virtio-mem device read from domain XML as libvirt 9.0 writes it live
 * (vmbc-libvirt-ram.c), and each backend found among a QEMU 7.2 process's
 * mappings by kind and size (src/host/vmbc-ram-maps.c).
 */
#include <string.h>
#include <unistd.h>

#include "vmbc-error.h"
#include "vmbc-libvirt-ram.h"
#include "vmbc-ram-maps.h"

#define MIB (G_GUINT64_CONSTANT(1) << 20)

/* The live XML of the e2e test's domain (trimmed): a NUMA cell and a virtio-mem device. */
static const gchar *xml_vmem =
	"<domain type='qemu' id='1'>\n"
	"  <name>gv</name>\n"
	"  <maxMemory slots='2' unit='KiB'>2097152</maxMemory>\n"
	"  <memory unit='KiB'>1441792</memory>\n"
	"  <currentMemory unit='KiB'>393216</currentMemory>\n"
	"  <vcpu placement='static'>1</vcpu>\n"
	"  <cpu mode='custom' match='exact' check='none'>\n"
	"    <model fallback='forbid'>qemu64</model>\n"
	"    <numa>\n"
	"      <cell id='0' cpus='0' memory='393216' unit='KiB'/>\n"
	"    </numa>\n"
	"  </cpu>\n"
	"  <devices>\n"
	"    <memballoon model='virtio' freePageReporting='off'>\n"
	"      <stats period='1'/>\n"
	"      <alias name='balloon0'/>\n"
	"    </memballoon>\n"
	"    <memory model='virtio-mem'>\n"
	"      <target>\n"
	"        <size unit='KiB'>1048576</size>\n"
	"        <node>0</node>\n"
	"        <block unit='KiB'>2048</block>\n"
	"        <requested unit='KiB'>655360</requested>\n"
	"        <current unit='KiB'>131072</current>\n"
	"      </target>\n"
	"      <alias name='virtiomem0'/>\n"
	"      <address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/>\n"
	"    </memory>\n"
	"  </devices>\n"
	"</domain>\n";

static const VmbcRamBackend *
backend(const VmbcLibvirtRam *ram, guint i)
{
	g_assert_nonnull(ram->backends);
	g_assert_cmpuint(i, <, ram->backends->len);
	return &g_array_index(ram->backends, VmbcRamBackend, i);
}

static void
test_parse_vmem(void)
{
	g_auto(VmbcLibvirtRam) ram = {0};
	g_autoptr(GError) error = NULL;
	g_autofree gchar *dev = NULL;

	g_assert_true(vmbc_libvirt_ram_parse(xml_vmem, &ram, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(ram.backends->len, ==, 2);
	g_assert_cmpstr(backend(&ram, 0)->id, ==, "ram-node0");
	g_assert_cmpuint(backend(&ram, 0)->size, ==, 384 * MIB);
	g_assert_cmpint(backend(&ram, 0)->kind, ==, VMBC_RAM_ANON);
	g_assert_cmpstr(backend(&ram, 1)->id, ==, "memvirtiomem0");
	g_assert_cmpuint(backend(&ram, 1)->size, ==, 1024 * MIB);
	g_assert_cmpint(backend(&ram, 1)->kind, ==, VMBC_RAM_ANON);
	g_assert_cmpuint(ram.n_vmem, ==, 1);
	g_assert_cmpstr(ram.vmem.alias, ==, "virtiomem0");
	g_assert_cmpint(ram.vmem.size_kib, ==, 1048576);
	g_assert_cmpint(ram.vmem.block_kib, ==, 2048);
	g_assert_cmpint(ram.vmem.requested_kib, ==, 655360);
	g_assert_cmpint(ram.vmem.current_kib, ==, 131072);

	/* the device as libvirt wrote it, <requested> changed, <current> (output only) left out */
	dev = vmbc_libvirt_ram_vmem_xml(&ram, 262144);
	g_assert_nonnull(dev);
	g_assert_true(g_str_has_prefix(dev, "<memory model='virtio-mem'>"));
	g_assert_nonnull(strstr(dev, "<requested unit='KiB'>262144</requested>"));
	g_assert_nonnull(strstr(dev, "<size unit='KiB'>1048576</size>"));
	g_assert_nonnull(strstr(dev, "<alias name='virtiomem0'></alias>"));
	g_assert_null(strstr(dev, "current"));
	g_assert_null(strstr(dev, "655360"));
	g_assert_true(g_str_has_suffix(dev, "</memory>"));
}

static void
test_parse_kinds(void)
{
	/* no NUMA: main RAM is <memory> less the DIMMs; memfd source; a DIMM in hugepages */
	static const gchar *xml_memfd =
		"<domain type='kvm'><name>d</name>"
		"<memory unit='KiB'>1572864</memory>"
		"<memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>"
		"<devices><memory model='dimm'><source><pagesize unit='KiB'>2048</pagesize>"
		"</source><target><size unit='KiB'>524288</size><node>0</node></target>"
		"<alias name='dimm0'/></memory>"
		"<memory model='nvdimm'><target><size unit='KiB'>1024</size></target></memory>"
		"</devices></domain>";
	/* hugepages without a source: memory-backend-file in hugetlbfs, two NUMA cells */
	static const gchar *xml_huge =
		"<domain type='kvm'><name>h</name><memory unit='MiB'>512</memory>"
		"<memoryBacking><hugepages/></memoryBacking>"
		"<cpu><numa><cell id='0' cpus='0' memory='256' unit='MiB'/>"
		"<cell id='1' cpus='1' memory='262144'/></numa></cpu></domain>";
	g_auto(VmbcLibvirtRam) ram = {0};
	g_autoptr(GError) error = NULL;

	g_assert_true(vmbc_libvirt_ram_parse(xml_memfd, &ram, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(ram.backends->len, ==, 2);
	g_assert_cmpstr(backend(&ram, 0)->id, ==, "pc.ram");
	g_assert_cmpuint(backend(&ram, 0)->size, ==, 1024 * MIB);
	g_assert_cmpint(backend(&ram, 0)->kind, ==, VMBC_RAM_MEMFD);
	g_assert_cmpstr(backend(&ram, 1)->id, ==, "memdimm0");
	g_assert_cmpint(backend(&ram, 1)->kind, ==, VMBC_RAM_MEMFD);
	g_assert_null(ram.vmem.alias);
	g_assert_null(vmbc_libvirt_ram_vmem_xml(&ram, 1024));

	g_assert_true(vmbc_libvirt_ram_parse(xml_huge, &ram, &error));
	g_assert_no_error(error);
	g_assert_true(ram.hugepages);
	g_assert_cmpuint(ram.backends->len, ==, 2);
	g_assert_cmpstr(backend(&ram, 1)->id, ==, "ram-node1");
	g_assert_cmpuint(backend(&ram, 1)->size, ==, 256 * MIB);
	g_assert_cmpint(backend(&ram, 0)->kind, ==, VMBC_RAM_FILE);
}

static void
test_parse_bad(void)
{
	static const struct {
		const gchar *xml;
		const gchar *msg;
	} cases[] = {
		{"<domain><name>x</name><memory unit='KiB'>1024</memory><devices>"
		 "<memory model='dimm'><target><size unit='KiB'>1024</size></target></memory>"
		 "</devices></domain>",
		 "leaves no main RAM"},
		{"<domain><name>x</name><memory unit='parsecs'>1</memory></domain>", "unit"},
		{"<domain><name>x</name><memory>1</memory><devices><memory model='virtio-mem'>"
		 "<target/></memory></devices></domain>",
		 "without a <target><size>"},
		{"<domain><name>x</name><memory>1", "does not parse"},
		{"<domain><name>x</name><cpu><numa><cell id='0' memory='x'/></numa></cpu></domain>",
		 "<cell>"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_auto(VmbcLibvirtRam) ram = {0};
		g_autoptr(GError) error = NULL;

		g_assert_false(vmbc_libvirt_ram_parse(cases[i].xml, &ram, &error));
		g_assert_error(error, VMBC_ERROR, VMBC_ERROR_INVALID);
		g_test_message("%s", error->message);
		g_assert_nonnull(strstr(error->message, cases[i].msg));
	}
}

/*
 * Mappings of a QEMU 7.2 with a 384 MiB NUMA cell and a 1 GiB virtio-mem backend
 * (the e2e domain), with TCG's 1 GiB code buffer (rwx), a memfd DIMM, a hugetlbfs
 * backend and a file libvirt named after its backend.
 */
static const gchar *maps_text =
	"55d0c1a00000-55d0c1c00000 r--p 00000000 fe:01 1234   /usr/bin/qemu-system-x86_64\n"
	"7f1000000000-7f1040000000 rwxp 00000000 00:00 0 \n"
	"7f1040000000-7f1040200000 ---p 00000000 00:00 0 \n"
	"7f1080000000-7f10c0000000 rw-p 00000000 00:00 0 \n"
	"7f10c0000000-7f10c0001000 ---p 00000000 00:00 0 \n"
	"7f10d0000000-7f10e8000000 rw-p 00000000 00:00 0 \n"
	"7f10f0000000-7f1100000000 rw-s 00000000 00:01 77     /memfd:memory-backend-memfd "
	"(deleted)\n"
	"7f1100000000-7f1110000000 rw-s 00000000 00:2f 88     "
	"/dev/hugepages/libvirt/qemu/1-h/qemu_back_mem.ram-node1.AbCdEf (deleted)\n"
	"7f1110000000-7f1120000000 rw-s 00000000 00:2f 89     "
	"/dev/hugepages/libvirt/qemu/1-h/qemu_back_mem.ram-node0.XyZ123 (deleted)\n"
	"7f1120000000-7f1130000000 rw-s 00000000 fe:01 90     "
	"/var/lib/libvirt/qemu/ram/2-f/pc.ram\n"
	"7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0      [stack]\n";

static void
test_maps_match(void)
{
	const VmbcRamBackend vmem[] = {
		{(gchar *)"ram-node0", 384 * MIB, VMBC_RAM_ANON},
		{(gchar *)"memvirtiomem0", 1024 * MIB, VMBC_RAM_ANON},
		{(gchar *)"memdimm0", 256 * MIB, VMBC_RAM_MEMFD},
	};
	const VmbcRamBackend huge[] = {
		{(gchar *)"ram-node0", 256 * MIB, VMBC_RAM_FILE},
		{(gchar *)"ram-node1", 256 * MIB, VMBC_RAM_FILE},
	};
	const VmbcRamBackend file[] = {{(gchar *)"pc.ram", 256 * MIB, VMBC_RAM_FILE}};
	g_autoptr(GArray) ranges = g_array_new(FALSE, FALSE, sizeof(VmbcRamRange));
	g_autoptr(GError) error = NULL;
	gsize len = strlen(maps_text);

	g_assert_true(vmbc_ram_maps_match(maps_text, len, vmem, 3, ranges, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(ranges->len, ==, 3);
	/* not TCG's buffer of the same size: it is executable */
	g_assert_cmphex(g_array_index(ranges, VmbcRamRange, 0).start, ==, 0x7f10d0000000);
	g_assert_cmphex(g_array_index(ranges, VmbcRamRange, 1).start, ==, 0x7f1080000000);
	g_assert_cmpuint(g_array_index(ranges, VmbcRamRange, 1).size, ==, 1024 * MIB);
	g_assert_cmphex(g_array_index(ranges, VmbcRamRange, 2).start, ==, 0x7f10f0000000);

	/* the file QEMU named after each backend, whatever the order of the mappings */
	g_array_set_size(ranges, 0);
	g_assert_true(vmbc_ram_maps_match(maps_text, len, huge, 2, ranges, &error));
	g_assert_cmphex(g_array_index(ranges, VmbcRamRange, 0).start, ==, 0x7f1110000000);
	g_assert_cmphex(g_array_index(ranges, VmbcRamRange, 1).start, ==, 0x7f1100000000);
	g_array_set_size(ranges, 0);
	g_assert_true(vmbc_ram_maps_match(maps_text, len, file, 1, ranges, &error));
	g_assert_cmphex(g_array_index(ranges, VmbcRamRange, 0).start, ==, 0x7f1120000000);
}

static void
test_maps_no_match(void)
{
	/* two 1 GiB anonymous backends, but one such mapping: the second has none */
	const VmbcRamBackend two[] = {
		{(gchar *)"ram-node0", 1024 * MIB, VMBC_RAM_ANON},
		{(gchar *)"ram-node1", 1024 * MIB, VMBC_RAM_ANON},
	};
	/* a memfd backend is not anonymous memory of its size */
	const VmbcRamBackend memfd[] = {{(gchar *)"pc.ram", 384 * MIB, VMBC_RAM_MEMFD}};
	g_autoptr(GArray) ranges = g_array_new(FALSE, FALSE, sizeof(VmbcRamRange));
	g_autoptr(GError) error = NULL;
	gsize len = strlen(maps_text);

	g_assert_false(vmbc_ram_maps_match(maps_text, len, two, 2, ranges, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_NOT_FOUND);
	g_assert_nonnull(strstr(error->message, "'ram-node1'"));
	g_assert_cmpuint(ranges->len, ==, 0);
	g_clear_error(&error);
	g_assert_false(vmbc_ram_maps_match(maps_text, len, memfd, 1, ranges, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_false(vmbc_ram_maps_match("garbage\n", 8, memfd, 1, ranges, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_INVALID);
	g_clear_error(&error);
	/* this process has no 1 GiB backend */
	g_assert_false(vmbc_ram_maps_find(getpid(), two, 1, ranges, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_NOT_FOUND);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/vmbc/libvirt/ram/parse-virtio-mem", test_parse_vmem);
	g_test_add_func("/vmbc/libvirt/ram/parse-kinds", test_parse_kinds);
	g_test_add_func("/vmbc/libvirt/ram/parse-bad", test_parse_bad);
	g_test_add_func("/vmbc/host/ram-maps/match", test_maps_match);
	g_test_add_func("/vmbc/host/ram-maps/no-match", test_maps_no_match);
	return g_test_run();
}
