/*
 * vmbc-kernel-file.h: a small file of procfs, sysfs or cgroupfs that vmbcd
 * reads again and again (/proc/meminfo, /proc/vmstat, a PSI file, a cgroup's
 * memory.current): opened once and read whole from its start with pread()
 * into a buffer kept between reads, so that a read every tick costs one
 * system call and no allocation.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _VmbcKernelFile VmbcKernelFile;

/* A reader of @path; nothing is opened before the first read. */
VmbcKernelFile *vmbc_kernel_file_new(const gchar *path);
void vmbc_kernel_file_free(VmbcKernelFile *file);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbcKernelFile, vmbc_kernel_file_free)

const gchar *vmbc_kernel_file_get_path(VmbcKernelFile *file);

/*
 * The whole text of the file now, NUL-terminated (@len, if not NULL, gets
 * its length); it stays valid until the next read or the free. Opens the file
 * at the first read and again after a read that failed (a cgroup removed and
 * made again is found again). On error, NULL with VMBC_ERROR_FAILED naming
 * the path, and the file is closed.
 */
const gchar *vmbc_kernel_file_read(VmbcKernelFile *file, gsize *len, GError **error);

G_END_DECLS
