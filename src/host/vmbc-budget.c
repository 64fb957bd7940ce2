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

/* The text of a file of one number in bytes, or "max" (-1). */
static gboolean
parse_bytes(const gchar *path, const gchar *text, gint64 *out, GError **error)
{
	gchar buf[64];
	guint64 v;

	g_strlcpy(buf, text, sizeof(buf));
	g_strstrip(buf);
	if (strcmp(buf, "max") == 0) {
		*out = -1;
		return TRUE;
	}
	if (!g_ascii_string_to_unsigned(buf, 10, 0, G_MAXUINT64, &v, NULL)) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED,
			    "%s holds '%.40s', not a size in bytes", path, buf);
		return FALSE;
	}
	*out = v >= (guint64)V1_UNLIMITED_FROM ? -1 : (gint64)v;
	return TRUE;
}

static gboolean
read_bytes(VmbcKernelFile *file, gint64 *out, GError **error)
{
	const gchar *text = vmbc_kernel_file_read(file, NULL, error);

	return text != NULL && parse_bytes(vmbc_kernel_file_get_path(file), text, out, error);
}

struct _VmbcBudgetCgroup {
	gint version;
	VmbcKernelFile *usage;
	VmbcKernelFile *limit;
	VmbcKernelFile *high; /* v2 with memory.high; NULL otherwise */
};

VmbcBudgetCgroup *
vmbc_budget_cgroup_new(const gchar *dir, gint version)
{
	VmbcBudgetCgroup *cg = g_new0(VmbcBudgetCgroup, 1);
	g_autofree gchar *usage = NULL;
	g_autofree gchar *limit = NULL;

	cg->version = version;
	usage = g_build_filename(dir, version == 1 ? "memory.usage_in_bytes" : "memory.current",
				 NULL);
	limit = g_build_filename(dir, version == 1 ? "memory.limit_in_bytes" : "memory.max", NULL);
	cg->usage = vmbc_kernel_file_new(usage);
	cg->limit = vmbc_kernel_file_new(limit);
	if (version != 1 && has_file(dir, "memory.high")) {
		g_autofree gchar *high = g_build_filename(dir, "memory.high", NULL);
		cg->high = vmbc_kernel_file_new(high);
	}
	return cg;
}

void
vmbc_budget_cgroup_free(VmbcBudgetCgroup *cg)
{
	if (cg == NULL)
		return;
	vmbc_kernel_file_free(cg->usage);
	vmbc_kernel_file_free(cg->limit);
	vmbc_kernel_file_free(cg->high);
	g_free(cg);
}

gboolean
vmbc_budget_cgroup_read(VmbcBudgetCgroup *cg, gint64 *usage, gint64 *limit, GError **error)
{
	gint64 high = -1;

	if (!read_bytes(cg->usage, usage, error) || !read_bytes(cg->limit, limit, error))
		return FALSE;
	/* memory.high throttles and reclaims the cgroup: as good as a limit for its VMs */
	if (cg->high != NULL && !read_bytes(cg->high, &high, error))
		return FALSE;
	if (high >= 0 && (*limit < 0 || high < *limit))
		*limit = high;
	return TRUE;
}

gboolean
vmbc_budget_read_cgroup(const gchar *dir, gint version, gint64 *usage, gint64 *limit,
			GError **error)
{
	g_autoptr(VmbcBudgetCgroup) cg = vmbc_budget_cgroup_new(dir, version);

	return vmbc_budget_cgroup_read(cg, usage, limit, error);
}

/*
 * "Key:   123 kB" or "key 123" lines of @text: the values of @keys, -1 when
 * absent. Walks the text in place: it runs every tick on /proc/vmstat.
 */
static void
parse_keyed(const gchar *text, const gchar *const *keys, gint64 *values)
{
	const gchar *line = text;

	for (guint k = 0; keys[k] != NULL; k++)
		values[k] = -1;
	while (*line != '\0') {
		const gchar *eol = strchr(line, '\n');
		const gchar *next = eol != NULL ? eol + 1 : line + strlen(line);

		for (guint k = 0; keys[k] != NULL; k++) {
			gsize len = strlen(keys[k]);
			const gchar *p = line + len;
			guint64 v = 0;
			gboolean digits = FALSE;

			if (strncmp(line, keys[k], len) != 0 || (*p != ':' && *p != ' '))
				continue;
			p += strspn(p, ": ");
			for (; g_ascii_isdigit(*p) && v <= (guint64)G_MAXINT64 / 10; p++) {
				v = v * 10 + (guint64)(*p - '0');
				digits = TRUE;
			}
			if (digits && (*p == ' ' || *p == '\n' || *p == '\0') &&
			    v <= (guint64)G_MAXINT64)
				values[k] = (gint64)v;
			break;
		}
		line = next;
	}
}

gboolean
vmbc_budget_parse_meminfo(const gchar *text, gint64 *total, gint64 *available, gint64 *swap_total,
			  GError **error)
{
	static const gchar *const keys[] = {"MemTotal", "MemAvailable", "SwapTotal", NULL};
	gint64 v[3];

	parse_keyed(text, keys, v);
	if (v[0] < 0 || v[1] < 0) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED, "no MemTotal or no MemAvailable");
		return FALSE;
	}
	*total = v[0] * 1024;
	*available = v[1] * 1024;
	if (swap_total != NULL)
		*swap_total = v[2] < 0 ? -1 : v[2] * 1024;
	return TRUE;
}

void
vmbc_budget_parse_swap(const gchar *text, gint64 *swap_in, gint64 *swap_out)
{
	static const gchar *const keys[] = {"pswpin", "pswpout", NULL};
	gint64 v[2];

	parse_keyed(text, keys, v);
	*swap_in = v[0];
	*swap_out = v[1];
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
