/*
 * vmbc-qmp-discovery.c: how the qmp backend finds its VMs: the sockets its
 * globs match, rescanned every rescan interval; a new socket is connected
 * (vmbc-qmp-vm.c), one whose process is gone is dropped, and the backend is
 * down while a directory the globs name cannot be read.
 */
#include <errno.h>
#include <glob.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>

#include "vmbc-qmp-private.h"

static gboolean
socket_identity(const gchar *path, dev_t *dev, ino_t *ino)
{
	struct stat st;

	if (stat(path, &st) != 0 || !S_ISSOCK(st.st_mode))
		return FALSE;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return TRUE;
}

/*
 * The directory a glob starts from: its leading components up to the first
 * one with a wildcard (or an escape), without the file name: /run/vmbc/qmp
 * for the default glob, /srv/vms for a wildcard directory per VM below it.
 */
static gchar *
glob_base_dir(const gchar *pattern)
{
	g_auto(GStrv) parts = g_strsplit(pattern, "/", -1);
	guint n = g_strv_length(parts);
	g_autoptr(GString) dir = g_string_new(NULL);

	for (guint i = 0; i + 1 < n; i++) {
		if (strpbrk(parts[i], "*?[\\") != NULL)
			break;
		if (*parts[i] == '\0')
			continue;
		g_string_append_c(dir, '/');
		g_string_append(dir, parts[i]);
	}
	if (dir->len == 0)
		g_string_append_c(dir, '/');
	return g_string_free(g_steal_pointer(&dir), FALSE);
}

/*
 * Adds the sockets matching @pattern to @found. FALSE with an error when the
 * directory the pattern starts from cannot be read (missing, not a directory,
 * no permission) or glob itself fails: no VM there can be found, which
 * glob(3) alone would report as an empty match.
 */
static gboolean
glob_sockets(const gchar *pattern, GHashTable *found, GError **error)
{
	g_autofree gchar *base = glob_base_dir(pattern);
	g_autoptr(GDir) dir = NULL;
	g_autoptr(GError) error_local = NULL;
	glob_t g;
	int rc;

	dir = g_dir_open(base, 0, &error_local);
	if (dir == NULL) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED, "qmp-sockets '%s': %s", pattern,
			    error_local->message);
		return FALSE;
	}
	memset(&g, 0, sizeof(g));
	rc = glob(pattern, GLOB_NOSORT, NULL, &g);
	if (rc != 0) {
		globfree(&g);
		if (rc == GLOB_NOMATCH)
			return TRUE;
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED,
			    "qmp-sockets '%s': glob failed (%s)", pattern,
			    rc == GLOB_NOSPACE ? "out of memory" : "read error");
		return FALSE;
	}
	for (gsize i = 0; i < g.gl_pathc; i++) {
		dev_t dev;
		ino_t ino;

		if (socket_identity(g.gl_pathv[i], &dev, &ino))
			g_hash_table_add(found, g_strdup(g.gl_pathv[i]));
	}
	globfree(&g);
	return TRUE;
}

/* A full scan at least this often, whatever the directories' mtimes say. */
#define SCAN_FULL_USEC (60 * G_USEC_PER_SEC)
/*
 * A directory changed less than this before a scan may change again within
 * the same mtime (the kernel's coarse clock): it is not trusted to be unchanged.
 */
#define SCAN_RACY_USEC G_USEC_PER_SEC

static gint64
dir_mtime_ns(const gchar *path)
{
	struct stat st;

	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return -1;
	return (gint64)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

static void
remember_dir(GHashTable *dirs, const gchar *path)
{
	gint64 *mtime;

	if (g_hash_table_contains(dirs, path))
		return;
	mtime = g_new(gint64, 1);
	*mtime = dir_mtime_ns(path);
	g_hash_table_insert(dirs, g_strdup(path), mtime);
}

/*
 * Remembers every directory a scan of @pattern read: where it starts, and
 * each directory its wildcard components matched with their parents up to
 * there, so that a socket or a directory added or removed anywhere the glob
 * looks changes the mtime of one of them.
 */
static void
remember_glob_dirs(GHashTable *dirs, const gchar *pattern)
{
	g_autofree gchar *base = glob_base_dir(pattern);
	g_autofree gchar *dir_pattern = g_path_get_dirname(pattern);
	glob_t g;

	remember_dir(dirs, base);
	if (strpbrk(dir_pattern, "*?[\\") == NULL) {
		remember_dir(dirs, dir_pattern);
		return;
	}
	memset(&g, 0, sizeof(g));
	if (glob(dir_pattern, GLOB_NOSORT | GLOB_ONLYDIR, NULL, &g) == 0) {
		for (gsize i = 0; i < g.gl_pathc; i++) {
			g_autofree gchar *d = g_strdup(g.gl_pathv[i]);

			while (strlen(d) > strlen(base) && g_str_has_prefix(d, base)) {
				gchar *slash;

				remember_dir(dirs, d);
				slash = strrchr(d, '/');
				if (slash == NULL || slash == d)
					break;
				*slash = '\0';
			}
		}
	}
	globfree(&g);
}

/* Whether no directory of the last full scan changed since, and none too recently before it. */
static gboolean
scan_still_valid(VmbcQmpBackend *self, const gchar *globs_key, gint64 now)
{
	GHashTableIter iter;
	gpointer key, value;

	if (self->scan_dirs == NULL || !self->up || g_strcmp0(self->scan_globs, globs_key) != 0 ||
	    now - self->scan_full_at >= SCAN_FULL_USEC)
		return FALSE;
	g_hash_table_iter_init(&iter, self->scan_dirs);
	while (g_hash_table_iter_next(&iter, &key, &value)) {
		gint64 was = *(gint64 *)value;

		if (was < 0 || dir_mtime_ns(key) != was ||
		    was / 1000 + SCAN_RACY_USEC > self->scan_full_at)
			return FALSE;
	}
	return TRUE;
}

/* Says once when the globs stop being readable, and once when they are again. */
static void
vmbc_qmp_backend_set_up(VmbcQmpBackend *self, const GError *failure)
{
	if (failure != NULL && self->up)
		g_warning("the qmp backend is down: %s; no VM can be found there until it is "
			  "fixed (the globs are tried again every rescan)",
			  failure->message);
	else if (failure == NULL && !self->up)
		g_info("the qmp backend is up again: every qmp-sockets directory can be read");
	self->up = failure == NULL;
}

void
vmbc_qmp_backend_rescan(VmbcQmpBackend *self)
{
	g_autoptr(GHashTable) found = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GPtrArray) connect =
		g_ptr_array_new_with_free_func((GDestroyNotify)vmbc_qmp_vm_unref);
	GHashTableIter iter;
	gpointer key;
	gpointer value;
	g_autoptr(GError) failure = NULL;

	g_autofree gchar *globs_key = NULL;
	gint64 now = g_get_real_time();

	g_return_if_fail(VMBC_IS_QMP_BACKEND(self));

	globs_key = self->globs != NULL ? g_strjoinv("\n", self->globs) : g_strdup("");
	if (scan_still_valid(self, globs_key, now)) {
		/*
		 * Nothing was added or removed where the globs look: every socket found
		 * last time is still there, and only the VMs that failed are tried again.
		 */
		g_hash_table_iter_init(&iter, self->vms);
		while (g_hash_table_iter_next(&iter, &key, &value)) {
			VmbcQmpVm *vm = value;

			if (vm->state == VM_NEW || vm->state == VM_FAILED) {
				socket_identity(key, &vm->sock_dev, &vm->sock_ino);
				g_ptr_array_add(connect, vmbc_qmp_vm_ref(vm));
			}
		}
		for (guint i = 0; i < connect->len; i++)
			vmbc_qmp_vm_connect(g_ptr_array_index(connect, i), vmbc_qmp_vm_probe);
		return;
	} else {
		g_autoptr(GHashTable) dirs =
			g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);

		/* the directories first: a socket added during the scan changes one after */
		for (guint i = 0; self->globs != NULL && self->globs[i] != NULL; i++)
			remember_glob_dirs(dirs, self->globs[i]);
		for (guint i = 0; self->globs != NULL && self->globs[i] != NULL; i++) {
			g_autoptr(GError) error = NULL;

			/* the other globs are still scanned: their VMs are not lost with one
			 * directory */
			if (!glob_sockets(self->globs[i], found, &error) && failure == NULL)
				failure = g_steal_pointer(&error);
		}
		g_clear_pointer(&self->scan_dirs, g_hash_table_unref);
		self->scan_dirs = g_steal_pointer(&dirs);
		g_free(self->scan_globs);
		self->scan_globs = g_steal_pointer(&globs_key);
		self->scan_full_at = now;
		vmbc_qmp_backend_set_up(self, failure);
	}

	/* sockets that went away */
	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, &key, &value)) {
		VmbcQmpVm *vm = value;

		if (g_hash_table_contains(found, key))
			continue;
		if (vm->state == VM_FAILED || vm->state == VM_NEW) {
			vm->backend = NULL;
			g_hash_table_iter_remove(&iter);
		} else if (vm->state == VM_ADOPTED && vm->pid > 0 && kill(vm->pid, 0) != 0 &&
			   errno == ESRCH) {
			/* the process and its socket are gone; the connection may not know yet */
			g_ptr_array_add(connect, vmbc_qmp_vm_ref(vm));
		}
		/* an adopted VM whose socket file was removed keeps its connection */
	}
	for (guint i = 0; i < connect->len; i++) {
		VmbcQmpVm *vm = g_ptr_array_index(connect, i);

		g_info("VM '%s' is gone: socket %s and process %d vanished", vmbc_qmp_vm_label(vm),
		       vm->socket_path, (int)vm->pid);
		vmbc_qmp_vm_drop(vm);
		vm->backend = NULL;
		g_hash_table_remove(self->vms, vm->socket_path);
	}
	g_ptr_array_set_size(connect, 0);

	/* new sockets, and failed ones to try again */
	g_hash_table_iter_init(&iter, found);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		VmbcQmpVm *vm = g_hash_table_lookup(self->vms, key);

		if (vm == NULL) {
			vm = vmbc_qmp_vm_new(self, key);
			g_hash_table_insert(self->vms, vm->socket_path, vm);
		}
		if (vm->state == VM_NEW || vm->state == VM_FAILED) {
			socket_identity(key, &vm->sock_dev, &vm->sock_ino);
			g_ptr_array_add(connect, vmbc_qmp_vm_ref(vm));
		}
	}
	for (guint i = 0; i < connect->len; i++)
		vmbc_qmp_vm_connect(g_ptr_array_index(connect, i), vmbc_qmp_vm_probe);
}

guint
vmbc_qmp_backend_get_n_vms(VmbcQmpBackend *self)
{
	GHashTableIter iter;
	gpointer value;
	guint n = 0;

	g_return_val_if_fail(VMBC_IS_QMP_BACKEND(self), 0);

	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		VmbcQmpVm *vm = value;
		if (vm->state == VM_ADOPTED && vm->bc != NULL)
			n++;
	}
	return n;
}

static gboolean
vmbc_qmp_backend_on_rescan(gpointer user_data)
{
	vmbc_qmp_backend_rescan(VMBC_QMP_BACKEND(user_data));
	return G_SOURCE_CONTINUE;
}

void
vmbc_qmp_backend_arm_rescan(VmbcQmpBackend *self)
{
	guint ms = (guint)MAX(self->rescan_usec / 1000, 1);

	g_clear_handle_id(&self->rescan_id, g_source_remove);
	self->rescan_id = g_timeout_add(ms, vmbc_qmp_backend_on_rescan, self);
}
