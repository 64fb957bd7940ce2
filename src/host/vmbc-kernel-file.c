/*
 * vmbc-kernel-file.c: a kernel file kept open and read whole with pread()
 * (see vmbc-kernel-file.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "vmbc-error.h"
#include "vmbc-kernel-file.h"

/* /proc/meminfo and a PSI file fit; /proc/vmstat (about 5 KiB) grows it once */
#define INITIAL_SIZE 4096

struct _VmbcKernelFile {
	gchar *path;
	int fd; /* -1: not open */
	gchar *buf;
	gsize size; /* of buf */
};

VmbcKernelFile *
vmbc_kernel_file_new(const gchar *path)
{
	VmbcKernelFile *file = g_new0(VmbcKernelFile, 1);

	g_return_val_if_fail(path != NULL, NULL);
	file->path = g_strdup(path);
	file->fd = -1;
	return file;
}

static void
kernel_file_close(VmbcKernelFile *file)
{
	if (file->fd >= 0)
		close(file->fd);
	file->fd = -1;
}

void
vmbc_kernel_file_free(VmbcKernelFile *file)
{
	if (file == NULL)
		return;
	kernel_file_close(file);
	g_free(file->buf);
	g_free(file->path);
	g_free(file);
}

const gchar *
vmbc_kernel_file_get_path(VmbcKernelFile *file)
{
	g_return_val_if_fail(file != NULL, NULL);
	return file->path;
}

const gchar *
vmbc_kernel_file_read(VmbcKernelFile *file, gsize *len, GError **error)
{
	gsize off = 0;

	g_return_val_if_fail(file != NULL, NULL);
	if (file->fd < 0) {
		file->fd = open(file->path, O_RDONLY | O_CLOEXEC);
		if (file->fd < 0) {
			int saved = errno;
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED, "cannot open %s: %s",
				    file->path, g_strerror(saved));
			return NULL;
		}
	}
	if (file->buf == NULL) {
		file->size = INITIAL_SIZE;
		file->buf = g_malloc(file->size);
	}
	/* procfs and kernfs render the file again for a read at offset 0: one call, whole */
	for (;;) {
		ssize_t n = pread(file->fd, file->buf + off, file->size - 1 - off, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int saved = errno;
			kernel_file_close(file);
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED, "cannot read %s: %s",
				    file->path, g_strerror(saved));
			return NULL;
		}
		if (n == 0)
			break;
		off += (gsize)n;
		if (off == file->size - 1) {
			file->size *= 2;
			file->buf = g_realloc(file->buf, file->size);
		}
	}
	file->buf[off] = '\0';
	if (len != NULL)
		*len = off;
	return file->buf;
}
