/*
 * vmbc-budget.h: what the host has for its VMs — the VMs' cgroup (libvirt's
 * machine.slice, or one configured) with its usage and limit, host RAM
 * (/proc/meminfo) and swap activity (/proc/vmstat).
 *
 * Read only, small synchronous reads of cgroupfs and procfs. The daemon turns
 * these into the host beancounter's budget (VmbcHostSignals).
 */
#pragma once

#include <glib.h>

#include "vmbc-kernel-file.h"

G_BEGIN_DECLS

/*
 * The VMs' cgroup under @cgroup_root (cgroup-root in vmbc.conf): @configured
 * NULL or "auto" looks for libvirt's, in this order: machine.slice on a
 * cgroup v2 tree (memory.current), the same under unified/ of a hybrid host,
 * then on the v1 memory hierarchy memory/machine.slice and memory/machine
 * (memory.usage_in_bytes); none there is NULL without an error. Otherwise
 * @configured is the cgroup's directory, absolute or under @cgroup_root, and
 * must have a memory controller (NULL with an error saying what is missing).
 * @version gets 1 or 2.
 */
gchar *vmbc_budget_find_cgroup(const gchar *cgroup_root, const gchar *configured, gint *version,
			       GError **error);

/*
 * What the cgroup @dir charges now and what it may, in bytes: v2
 * memory.current and the lower of memory.high and memory.max; v1
 * memory.usage_in_bytes and memory.limit_in_bytes. @limit is -1 when there is
 * none (max, or v1's "unlimited" of 2^63 rounded to pages).
 */
gboolean vmbc_budget_read_cgroup(const gchar *dir, gint version, gint64 *usage, gint64 *limit,
				 GError **error);

/*
 * The files of the VMs' cgroup @dir (of cgroup @version, 1 or 2) that
 * vmbc_budget_read_cgroup() reads, kept open for a read every tick.
 */
typedef struct _VmbcBudgetCgroup VmbcBudgetCgroup;
VmbcBudgetCgroup *vmbc_budget_cgroup_new(const gchar *dir, gint version);
void vmbc_budget_cgroup_free(VmbcBudgetCgroup *cg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbcBudgetCgroup, vmbc_budget_cgroup_free)
/* What vmbc_budget_read_cgroup() says, from the files kept open. */
gboolean vmbc_budget_cgroup_read(VmbcBudgetCgroup *cg, gint64 *usage, gint64 *limit,
				 GError **error);
/*
 * MemTotal and MemAvailable in the text of /proc/meminfo, in bytes; FALSE
 * with an error when either is missing. @swap_total (may be NULL): SwapTotal,
 * -1 when missing.
 */
gboolean vmbc_budget_parse_meminfo(const gchar *text, gint64 *total, gint64 *available,
				   gint64 *swap_total, GError **error);
/* pswpin and pswpout in the text of /proc/vmstat, -1 each when missing. */
void vmbc_budget_parse_swap(const gchar *text, gint64 *swap_in, gint64 *swap_out);

/*
 * Where memory PSI is for VMs in @cgroup_dir (NULL: none): the cgroup's own
 * memory.pressure on cgroup v2, otherwise the host's @proc_pressure
 * (/proc/pressure/memory); NULL when neither exists (a kernel without PSI).
 */
gchar *vmbc_budget_pressure_file(const gchar *cgroup_dir, gint version, const gchar *proc_pressure);

G_END_DECLS
