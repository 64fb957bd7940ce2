/*
 * vmbc-libvirt-ram.h: a domain's guest RAM as its live XML describes it: the
 * memory backends libvirt gives QEMU (main RAM or one per NUMA cell, one per
 * <memory model='dimm'|'virtio-mem'> device), each with its size and kind
 * (<memoryBacking>: anonymous, memfd, file, hugepages), and its virtio-mem
 * device, if it has one, with the XML to resize it.
 *
 * Kept apart from the backend so that it is tested without libvirtd. Where
 * QEMU maps each backend is found by src/host (vmbc-ram-maps.h).
 */
#pragma once

#include <glib.h>

#include "vmbc-ram-maps.h"

G_BEGIN_DECLS

/* A <memory model='virtio-mem'> device of the live XML. Sizes in KiB. */
typedef struct {
	gchar *alias;	      /* <alias name>, "virtiomem0"; NULL: the domain has none */
	gint64 size_kib;      /* <target><size>: the most it can plug */
	gint64 block_kib;     /* <target><block> */
	gint64 requested_kib; /* <target><requested> */
	gint64 current_kib;   /* <target><current>: plugged now, -1 when not said */
	gchar *xml_template;  /* the element as libvirt wrote it, <current> left out, with
				 "@REQUESTED@" in place of <requested>'s value */
} VmbcLibvirtVmemDev;

/* What the XML says of guest RAM. */
typedef struct {
	GArray *backends;   /* of VmbcRamBackend, main RAM (or NUMA cells) first, then devices */
	gboolean hugepages; /* <memoryBacking><hugepages/> */
	VmbcLibvirtVmemDev vmem;
	guint n_vmem; /* virtio-mem devices (only the first one is resized) */
} VmbcLibvirtRam;

void vmbc_libvirt_ram_clear(VmbcLibvirtRam *ram);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(VmbcLibvirtRam, vmbc_libvirt_ram_clear)

/*
 * Reads the guest RAM of a domain XML document into @ram (zeroed or
 * cleared). Main RAM is <memory> less every memory device's size, or one
 * backend per NUMA cell ("ram-nodeN") when there are cells. Returns FALSE with
 * VMBC_ERROR_INVALID when the text does not parse, a size does not, or main
 * RAM comes to nothing or less; @ram must be cleared by the caller either way.
 */
gboolean vmbc_libvirt_ram_parse(const gchar *xml, VmbcLibvirtRam *ram, GError **error);

/*
 * The device XML that sets the virtio-mem device's <requested> to
 * @requested_kib, for virDomainUpdateDeviceFlags(), or NULL when the domain
 * has no virtio-mem device.
 */
gchar *vmbc_libvirt_ram_vmem_xml(const VmbcLibvirtRam *ram, gint64 requested_kib);

G_END_DECLS
