/*
 * vmbc-cgroup.c: memory.high of a VMM process's cgroup v2 (see vmbc-cgroup.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "vmbc-cgroup.h"
#include "vmbc-error.h"

gchar *
vmbc_cgroup_dir_of(const gchar *root, pid_t pid, GError **error)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/cgroup", (int)pid);
	g_autofree gchar *unified = g_build_filename(root, "unified", NULL);
	g_autofree gchar *controllers = g_build_filename(root, "cgroup.controllers", NULL);
	g_autofree gchar *text = NULL;
	g_auto(GStrv) lines = NULL;

	if (!g_file_get_contents(path, &text, NULL, error))
		return NULL;
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		if (!g_str_has_prefix(lines[i], "0::/"))
			continue;
		/* hybrid hierarchies mount the v2 tree at unified/ */
		if (g_file_test(unified, G_FILE_TEST_IS_DIR) &&
		    !g_file_test(controllers, G_FILE_TEST_EXISTS))
			return g_build_filename(unified, lines[i] + 3, NULL);
		return g_build_filename(root, lines[i] + 3, NULL);
	}
	g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED, "%s has no cgroup v2 entry (0::/...)",
		    path);
	return NULL;
}

gboolean
vmbc_cgroup_memory_high_raises(const gchar *now, const gchar *value, GError **error)
{
	g_autofree gchar *cur = g_strstrip(g_strdup(now));
	guint64 have, want;

	if (g_strcmp0(value, "max") == 0)
		return g_strcmp0(cur, "max") != 0;
	if (g_strcmp0(cur, "max") == 0) {
		g_set_error_literal(error, VMBC_ERROR, VMBC_ERROR_NOT_FOUND,
				    "is max: it was lifted by hand, and vmbcd leaves it");
		return FALSE;
	}
	if (!g_ascii_string_to_unsigned(value, 10, 0, G_MAXUINT64, &want, NULL)) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID, "cannot be set to '%s'", value);
		return FALSE;
	}
	if (!g_ascii_string_to_unsigned(cur, 10, 0, G_MAXUINT64, &have, NULL)) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED,
			    "holds '%s', which is neither max nor a size in bytes", cur);
		return FALSE;
	}
	return have < want;
}

gboolean
vmbc_cgroup_has_memory_high(const gchar *root, pid_t pid, GError **error)
{
	g_autoptr(GError) error_local = NULL;
	g_autofree gchar *dir = vmbc_cgroup_dir_of(root, pid, &error_local);
	g_autofree gchar *file = NULL;
	g_autofree gchar *v1 = g_build_filename(root, "memory", "memory.limit_in_bytes", NULL);
	const gchar *where;

	if (dir != NULL) {
		file = g_build_filename(dir, "memory.high", NULL);
		if (g_file_test(file, G_FILE_TEST_EXISTS))
			return TRUE;
	}
	/* the usual cause on a hybrid host: the controller is on its v1 hierarchy */
	where = g_file_test(v1, G_FILE_TEST_EXISTS)
			? "this host mounts the memory controller on cgroup v1"
			: "the memory controller is not enabled for its cgroup";
	g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED,
		    "no cgroup v2 memory controller for its QEMU (%s; %s%s); "
		    "set escalation = pause to pause it",
		    where, file != NULL ? file : error_local->message,
		    file != NULL ? " does not exist" : "");
	return FALSE;
}

/* A cgroup v2 directory without the file: no memory controller there. Always FALSE. */
static gboolean
memory_high_missing(const gchar *root, const gchar *file, GError **error)
{
	g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED,
		    "cannot set memory.high: %s does not exist (the memory controller is not "
		    "enabled for its cgroup, or cgroup-root %s is wrong)",
		    file, root);
	return FALSE;
}

/*
 * Whether @file, holding memory.high, is to be set to @value when only a
 * raise is wanted. FALSE without an error: leave it.
 */
static gboolean
memory_high_wants_raise(const gchar *root, const gchar *file, const gchar *value, gboolean *raise,
			GError **error)
{
	g_autoptr(GError) error_local = NULL;
	g_autofree gchar *now = NULL;

	if (!g_file_get_contents(file, &now, NULL, &error_local)) {
		if (g_error_matches(error_local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			return memory_high_missing(root, file, error);
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED, "cannot read %s: %s", file,
			    error_local->message);
		return FALSE;
	}
	*raise = vmbc_cgroup_memory_high_raises(now, value, &error_local);
	if (error_local != NULL) {
		g_set_error(error, VMBC_ERROR, error_local->code, "%s %s", file,
			    error_local->message);
		return FALSE;
	}
	return TRUE;
}

gboolean
vmbc_cgroup_set_memory_high(const gchar *root, pid_t pid, const gchar *value, gboolean raise_only,
			    gchar **file_out, gboolean *changed, GError **error)
{
	g_autoptr(GError) error_local = NULL;
	g_autofree gchar *dir = vmbc_cgroup_dir_of(root, pid, &error_local);
	g_autofree gchar *file = NULL;
	gboolean raise = TRUE;
	gssize n;
	int fd;

	*changed = FALSE;
	if (dir == NULL) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED,
			    "cannot set memory.high: cannot find its cgroup: %s",
			    error_local->message);
		return FALSE;
	}
	file = g_build_filename(dir, "memory.high", NULL);
	if (file_out != NULL)
		*file_out = g_strdup(file);
	if (raise_only && !memory_high_wants_raise(root, file, value, &raise, error))
		return FALSE;
	if (!raise)
		return TRUE;
	/*
	 * O_TRUNC as the shell's "echo max >" has it: cgroupfs takes each write
	 * whole either way, and a regular file standing in for it keeps no tail
	 * of a longer value before.
	 */
	fd = open(file, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return memory_high_missing(root, file, error);
	if (fd < 0) {
		int err = errno;
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED,
			    "cannot open %s to set memory.high: %s", file, g_strerror(err));
		return FALSE;
	}
	n = write(fd, value, strlen(value));
	if (n < 0 || (gsize)n != strlen(value)) {
		int err = n < 0 ? errno : EIO;
		close(fd);
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED, "cannot write '%s' to %s: %s",
			    value, file, g_strerror(err));
		return FALSE;
	}
	close(fd);
	*changed = TRUE;
	return TRUE;
}
