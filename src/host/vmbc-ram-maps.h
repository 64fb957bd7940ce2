/*
 * vmbc-ram-maps.h: where a VMM maps the RAM backends it was told to have,
 * found in /proc/PID/maps by what a backend is (its size, and whether it is
 * anonymous memory, a memfd or a file) rather than asked of the VMM.
 *
 * The libvirt backend knows a domain's memory backends from its XML but not
 * their host addresses, and asking QEMU through libvirt's monitor passthrough
 * taints the domain; the mappings QEMU 7.2 makes for them are told apart well
 * enough by kind and size: one read-write, non-executable mapping of the
 * backend's size (up to 2 MiB more for alignment), anonymous for
 * memory-backend-ram, "/memfd:memory-backend-memfd (deleted)" for every
 * memfd backend (QEMU names them all alike), a file for memory-backend-file
 * ("qemu_back_mem.ID.XXXXXX (deleted)" in a hugetlbfs directory, or the file
 * libvirt named after the backend).
 */
#pragma once

#include <glib.h>
#include <sys/types.h>

#include "vmbc-smaps.h"

G_BEGIN_DECLS

typedef enum {
	VMBC_RAM_ANON,	/* memory-backend-ram: anonymous memory */
	VMBC_RAM_MEMFD, /* memory-backend-memfd */
	VMBC_RAM_FILE,	/* memory-backend-file: a file, hugetlbfs or not */
} VmbcRamKind;

/* One RAM backend a VMM was told to have. */
typedef struct {
	gchar *id;    /* the backend's id ("pc.ram", "ram-node0", "memvirtiomem0"), may be NULL */
	guint64 size; /* bytes */
	VmbcRamKind kind;
} VmbcRamBackend;

/* The clear function of a GArray of VmbcRamBackend. */
void vmbc_ram_backend_clear(gpointer data);

/* "anonymous", "memfd", "file". */
const gchar *vmbc_ram_kind_to_string(VmbcRamKind kind);

/*
 * Finds in the text of a /proc/PID/maps file the mapping of each of the
 * @n backends and appends its range to @ranges (a GArray of VmbcRamRange),
 * in the order of @backends. A mapping is taken once: two backends of the
 * same size and kind get two mappings. A file backend prefers a mapping whose
 * file is named after its id. Returns FALSE with VMBC_ERROR_NOT_FOUND naming
 * the first backend no mapping fits (then @ranges is as it was), or
 * VMBC_ERROR_INVALID when a line is not a maps line.
 */
gboolean vmbc_ram_maps_match(const gchar *text, gsize len, const VmbcRamBackend *backends, guint n,
			     GArray *ranges, GError **error);

/* vmbc_ram_maps_match() on /proc/@pid/maps. */
gboolean vmbc_ram_maps_find(pid_t pid, const VmbcRamBackend *backends, guint n, GArray *ranges,
			    GError **error);

G_END_DECLS
