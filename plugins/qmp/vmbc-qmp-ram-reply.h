/*
 * vmbc-qmp-ram-reply.h: readers of what QEMU says about a guest's RAM: its
 * memory backends (query-memdev), where each is in guest-physical memory (HMP
 * "info mtree -f"), where a guest-physical address is in QEMU's own address
 * space (HMP "gpa2hva"), and its virtio-mem devices (query-memory-devices).
 * No I/O: replies recorded from QEMU 7.2 test them directly.
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* One memory backend (query-memdev). */
typedef struct {
	gchar *id;
	guint64 size;
	gboolean share;
} VmbcQmpMemdev;

void vmbc_qmp_memdev_free(VmbcQmpMemdev *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbcQmpMemdev, vmbc_qmp_memdev_free)

/*
 * The backends of a query-memdev reply, in order (of VmbcQmpMemdev, owned),
 * those without an id or a positive size left out; NULL if @ret is not a list.
 */
GPtrArray *vmbc_qmp_reply_memdevs(JsonNode *ret);

/*
 * Where the backend @id's memory region is mapped in the guest-physical
 * address space, from the text of HMP "info mtree -f" (QEMU names a
 * backend's region after its id, or "/objects/ID" with
 * x-use-canonical-path-for-ramblock-id): the first RAM line naming it,
 * "  START-END (prio N, ram): ID[ @OFFSET]", gives the guest-physical @gpa of
 * the region's byte @offset. FALSE if no line names it (the backend is not
 * guest RAM: nothing maps it) or the text does not parse.
 */
gboolean vmbc_qmp_reply_mtree_ram(const gchar *text, const gchar *id, guint64 *gpa,
				  guint64 *offset);

/*
 * The host virtual address of HMP "gpa2hva @gpa"'s answer ("Host virtual
 * address for 0x%x (%s) is %p"), and the name of the region (may be NULL);
 * FALSE if the text says something else (no RAM there, an error).
 */
gboolean vmbc_qmp_reply_gpa2hva(const gchar *text, guint64 gpa, guint64 *hva, gchar **region);

/* One virtio-mem device (query-memory-devices, type "virtio-mem"). Sizes in bytes. */
typedef struct {
	gchar *id;     /* the device's id: /machine/peripheral/ID */
	gchar *memdev; /* its backend's QOM path ("/objects/vmem0") */
	guint64 memaddr;
	guint64 block_size;
	guint64 size; /* plugged now: the progress of a resize */
	guint64 max_size;
	guint64 requested_size;
} VmbcQmpVirtioMem;

void vmbc_qmp_virtio_mem_free(VmbcQmpVirtioMem *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbcQmpVirtioMem, vmbc_qmp_virtio_mem_free)

/*
 * The virtio-mem devices of a query-memory-devices reply, in order (of
 * VmbcQmpVirtioMem, owned; DIMMs and others left out, as is a device without
 * an id, which cannot be addressed, or with a block size that is not a power
 * of two); NULL if @ret is not a list.
 */
GPtrArray *vmbc_qmp_reply_virtio_mem(JsonNode *ret);

G_END_DECLS
