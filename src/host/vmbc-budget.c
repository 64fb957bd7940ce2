/*
 * vmbc-budget.c: the VMs' cgroup, host RAM and swap (see vmbc-budget.h).
 */
#include <string.h>

#include "vmbc-budget.h"
#include "vmbc-error.h"

/* v1 writes "unlimited" as the largest page-aligned signed 64-bit value */
#define V1_UNLIMITED_FROM (G_GINT64_CONSTANT(1) << 62)

static gboolean
has_file(const gchar *dir, const gchar *name)
{
	g_autofree gchar *path = g_build_filename(dir, name, NULL);
	return g_file_test(path, G_FILE_TEST_EXISTS);
}

/* The memory controller's version in @dir, 0 none. */
static gint
memory_version(const gchar *dir)
{
	if (has_file(dir, "memory.current"))
		return 2;
	if (has_file(dir, "memory.usage_in_bytes"))
		return 1;
	return 0;
}

gchar *
vmbc_budget_find_cgroup(const gchar *cgroup_root, const gchar *configured, gint *version,
			GError **error)
{
	static const gchar *const auto_dirs[] = {
		"machine.slice",
		"unified/machine.slice",
		"memory/machine.slice",
		"memory/machine",
	};
	g_autofree gchar *dir = NULL;

	if (configured == NULL || g_strcmp0(configured, "auto") == 0) {
		for (guint i = 0; i < G_N_ELEMENTS(auto_dirs); i++) {
			g_autofree gchar *cand = g_build_filename(cgroup_root, auto_dirs[i], NULL);
			gint v = memory_version(cand);
			if (v != 0) {
				*version = v;
				return g_steal_pointer(&cand);
			}
		}
		return NULL;
	}
	dir = g_path_is_absolute(configured) ? g_strdup(configured)
					     : g_build_filename(cgroup_root, configured, NULL);
	if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_NOT_FOUND,
			    "the VMs' cgroup %s does not exist", dir);
		return NULL;
	}
	*version = memory_version(dir);
	if (*version == 0) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED,
			    "the VMs' cgroup %s has no memory controller (neither memory.current "
			    "nor memory.usage_in_bytes)",
			    dir);
		return NULL;
	}
	return g_steal_pointer(&dir);
}

/* A file of one number in bytes, or "max" (-1). */
static gboolean
read_bytes(const gchar *dir, const gchar *name, gint64 *out, GError **error)
{
	g_autofree gchar *path = g_build_filename(dir, name, NULL);
	g_autofree gchar *text = NULL;
	g_autoptr(GError) local = NULL;
	guint64 v;

	if (!g_file_get_contents(path, &text, NULL, &local)) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED, "cannot read %s: %s", path,
			    local->message);
		return FALSE;
	}
	g_strstrip(text);
	if (g_strcmp0(text, "max") == 0) {
		*out = -1;
		return TRUE;
	}
	if (!g_ascii_string_to_unsigned(text, 10, 0, G_MAXUINT64, &v, NULL)) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED,
			    "%s holds '%.40s', not a size in bytes", path, text);
		return FALSE;
	}
	*out = v >= (guint64)V1_UNLIMITED_FROM ? -1 : (gint64)v;
	return TRUE;
}

gboolean
vmbc_budget_read_cgroup(const gchar *dir, gint version, gint64 *usage, gint64 *limit,
			GError **error)
{
	gint64 high = -1;

	if (version == 1)
		return read_bytes(dir, "memory.usage_in_bytes", usage, error) &&
		       read_bytes(dir, "memory.limit_in_bytes", limit, error);
	if (!read_bytes(dir, "memory.current", usage, error) ||
	    !read_bytes(dir, "memory.max", limit, error))
		return FALSE;
	/* memory.high throttles and reclaims the cgroup: as good as a limit for its VMs */
	if (has_file(dir, "memory.high") && !read_bytes(dir, "memory.high", &high, error))
		return FALSE;
	if (high >= 0 && (*limit < 0 || high < *limit))
		*limit = high;
	return TRUE;
}

/* "Key:   123 kB" or "key 123" lines: the values of @keys, -1 when absent. */
static gboolean
read_keyed(const gchar *path, const gchar *const *keys, gint64 *values, GError **error)
{
	g_autofree gchar *text = NULL;
	g_autoptr(GError) local = NULL;
	g_auto(GStrv) lines = NULL;

	if (!g_file_get_contents(path, &text, NULL, &local)) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED, "cannot read %s: %s", path,
			    local->message);
		return FALSE;
	}
	for (guint k = 0; keys[k] != NULL; k++)
		values[k] = -1;
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		for (guint k = 0; keys[k] != NULL; k++) {
			gsize len = strlen(keys[k]);
			const gchar *p = lines[i] + len;
			g_autofree gchar *num = NULL;
			guint64 v;
			if (strncmp(lines[i], keys[k], len) != 0 || (*p != ':' && *p != ' '))
				continue;
			p += strspn(p, ": ");
			num = g_strndup(p, strcspn(p, " "));
			if (g_ascii_string_to_unsigned(num, 10, 0, G_MAXINT64, &v, NULL))
				values[k] = (gint64)v;
		}
	}
	return TRUE;
}

gboolean
vmbc_budget_read_meminfo(const gchar *path, gint64 *total, gint64 *available, GError **error)
{
	static const gchar *const keys[] = {"MemTotal", "MemAvailable", NULL};
	gint64 v[2];

	if (!read_keyed(path, keys, v, error))
		return FALSE;
	if (v[0] < 0 || v[1] < 0) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED,
			    "%s has no MemTotal or no MemAvailable", path);
		return FALSE;
	}
	*total = v[0] * 1024;
	*available = v[1] * 1024;
	return TRUE;
}

gboolean
vmbc_budget_read_swap(const gchar *path, gint64 *swap_in, gint64 *swap_out, GError **error)
{
	static const gchar *const keys[] = {"pswpin", "pswpout", NULL};
	gint64 v[2];

	if (!read_keyed(path, keys, v, error))
		return FALSE;
	*swap_in = v[0];
	*swap_out = v[1];
	return TRUE;
}

gchar *
vmbc_budget_pressure_file(const gchar *cgroup_dir, gint version, const gchar *proc_pressure)
{
	if (cgroup_dir != NULL && version == 2 && has_file(cgroup_dir, "memory.pressure"))
		return g_build_filename(cgroup_dir, "memory.pressure", NULL);
	if (proc_pressure != NULL && g_file_test(proc_pressure, G_FILE_TEST_EXISTS))
		return g_strdup(proc_pressure);
	return NULL;
}
