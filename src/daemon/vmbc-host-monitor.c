/*
 * vmbc-host-monitor.c: the host's signals for the root beancounter (see
 * vmbc-host-monitor.h).
 *
 * The VMs' budget in guest pages: the cgroup's limit less what the cgroup
 * charges besides the VMs' guest RAM (QEMU's own memory, page cache), since
 * the root holds guest RAM only; or host RAM: what the VMs hold plus
 * MemAvailable, less the reserve. The lower of the two where both exist.
 */
#include <unistd.h>

#include "vmbc-budget.h"
#include "vmbc-host-monitor.h"
#include "vmbc-ksm.h"
#include "vmbc-psi.h"

#define PROC_MEMINFO  "/proc/meminfo"
#define PROC_VMSTAT   "/proc/vmstat"
#define PROC_PRESSURE "/proc/pressure/memory"

struct _VmbcHostMonitor {
	VmbcEngine *engine;
	gchar *cgroup;
	gint version;
	gchar *psi_file;
	VmbcPsiTrigger *trigger;
	gboolean fixed;
	gint64 reserve; /* pages */
	VmbcHostInfo info;
	gchar *warned;	    /* the last read failure warned, not repeated every tick */
	gint64 ksm_read_at; /* monotonic usec of the last read of KSM's counters, 0 never */
	/* read every tick: kept open (vmbc-kernel-file.h) */
	VmbcBudgetCgroup *cgroup_files; /* NULL without a cgroup */
	VmbcKernelFile *meminfo;
	VmbcKernelFile *vmstat;
	VmbcKernelFile *psi; /* NULL without a PSI file */
};

VmbcHostMonitor *
vmbc_host_monitor_new(VmbcEngine *engine)
{
	VmbcHostMonitor *m = g_new0(VmbcHostMonitor, 1);

	m->engine = engine;
	m->info.cgroup_usage = m->info.cgroup_limit = -1;
	m->info.mem_total = m->info.mem_available = -1;
	m->meminfo = vmbc_kernel_file_new(PROC_MEMINFO);
	m->vmstat = vmbc_kernel_file_new(PROC_VMSTAT);
	return m;
}

void
vmbc_host_monitor_free(VmbcHostMonitor *m)
{
	if (m == NULL)
		return;
	g_clear_pointer(&m->trigger, vmbc_psi_trigger_free);
	vmbc_budget_cgroup_free(m->cgroup_files);
	vmbc_kernel_file_free(m->meminfo);
	vmbc_kernel_file_free(m->vmstat);
	vmbc_kernel_file_free(m->psi);
	g_free(m->cgroup);
	g_free(m->psi_file);
	g_free(m->warned);
	g_free(m);
}

static void
on_trigger(VmbcPsiTrigger *trigger, gpointer user_data)
{
	VmbcHostMonitor *m = user_data;
	gint64 now = g_get_monotonic_time();

	g_debug("PSI trigger on %s fired", vmbc_psi_trigger_get_path(trigger));
	vmbc_host_monitor_refresh(m, now);
	vmbc_engine_host_pressure(m->engine, now);
}

void
vmbc_host_monitor_configure(VmbcHostMonitor *m, const VmbcConfig *config, const gchar *cgroup_root,
			    gboolean fixed)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *cgroup = NULL;
	g_autofree gchar *psi = NULL;
	gint64 host_pages = (gint64)sysconf(_SC_PHYS_PAGES);
	gint version = 0;

	m->fixed = fixed;
	m->reserve = 0;
	if (!vmbc_size_parse(config->host_reserve, vmbc_page_size(), host_pages, &m->reserve,
			     NULL) ||
	    m->reserve == VMBC_UNLIMITED)
		m->reserve = 0;
	if (g_strcmp0(config->host_cgroup, "none") != 0) {
		cgroup =
			vmbc_budget_find_cgroup(cgroup_root, config->host_cgroup, &version, &error);
		if (error != NULL)
			g_warning("[host] cgroup: %s; the VMs' budget comes from host RAM",
				  error->message);
	}
	if (g_strcmp0(cgroup, m->cgroup) != 0)
		g_info("the VMs' cgroup: %s", cgroup != NULL ? cgroup : "none (host RAM)");
	g_free(m->cgroup);
	m->cgroup = g_steal_pointer(&cgroup);
	m->version = version;
	g_clear_pointer(&m->cgroup_files, vmbc_budget_cgroup_free);
	if (m->cgroup != NULL)
		m->cgroup_files = vmbc_budget_cgroup_new(m->cgroup, m->version);

	if (g_strcmp0(config->host_pressure, "off") == 0)
		psi = NULL;
	else if (g_strcmp0(config->host_pressure, "auto") == 0)
		psi = vmbc_budget_pressure_file(m->cgroup, m->version, PROC_PRESSURE);
	else
		psi = g_strdup(config->host_pressure);
	g_clear_pointer(&m->trigger, vmbc_psi_trigger_free);
	g_free(m->psi_file);
	m->psi_file = g_steal_pointer(&psi);
	g_clear_pointer(&m->psi, vmbc_kernel_file_free);
	if (m->psi_file != NULL)
		m->psi = vmbc_kernel_file_new(m->psi_file);
	if (m->psi_file != NULL) {
		gint64 window = config->psi_window_usec;
		gint64 stall =
			MAX((gint64)((gdouble)window * config->engine.psi_target / 100.0), 1);
		g_clear_error(&error);
		m->trigger = vmbc_psi_trigger_new(m->psi_file, FALSE, stall, window, on_trigger, m,
						  &error);
		if (m->trigger == NULL)
			g_warning("no PSI trigger, memory stalls are seen at the next tick only: "
				  "%s",
				  error->message);
		else
			g_info("PSI trigger on %s: '%s' (stall and window in us)", m->psi_file,
			       vmbc_psi_trigger_get_spec(m->trigger));
	}
	m->info.cgroup = m->cgroup;
	m->info.cgroup_version = m->version;
	m->info.reserve = m->reserve;
	m->info.psi_file = m->psi_file;
	m->info.trigger = m->trigger != NULL;
}

void
vmbc_host_monitor_stop(VmbcHostMonitor *m)
{
	g_clear_pointer(&m->trigger, vmbc_psi_trigger_free);
	m->info.trigger = FALSE;
}

void
vmbc_host_monitor_set_fixed(VmbcHostMonitor *m, gboolean fixed)
{
	m->fixed = fixed;
}

static void
warn_once(VmbcHostMonitor *m, const GError *error)
{
	if (g_strcmp0(m->warned, error->message) == 0)
		return;
	g_warning("%s", error->message);
	g_free(m->warned);
	m->warned = g_strdup(error->message);
}

void
vmbc_host_monitor_refresh(VmbcHostMonitor *m, gint64 now)
{
	VmbcBeancounter *host = vmbc_engine_get_host(m->engine);
	gint64 held = host->parm[VMBC_RES_PHYSPAGES].held;
	gint64 ps = (gint64)vmbc_page_size();
	VmbcHostSignals sig = {
		.budget = VMBC_UNLIMITED,
		.source = VMBC_BUDGET_NONE,
		.psi_some_avg10 = -1,
		.psi_full_avg10 = -1,
		.psi_some_total = -1,
		.psi_full_total = -1,
		.swap_in = -1,
		.swap_out = -1,
	};
	g_autoptr(GError) error = NULL;
	const gchar *text;
	gint64 swap_total = -1;
	VmbcPsi psi;

	m->info.cgroup_usage = m->info.cgroup_limit = -1;
	if (m->cgroup_files != NULL) {
		if (vmbc_budget_cgroup_read(m->cgroup_files, &m->info.cgroup_usage,
					    &m->info.cgroup_limit, &error)) {
			if (m->info.cgroup_limit >= 0) {
				gint64 besides = MAX(m->info.cgroup_usage / ps - held, 0);
				sig.budget = MAX(m->info.cgroup_limit / ps - besides, 0);
				sig.source = m->version == 2 ? VMBC_BUDGET_CGROUP_V2
							     : VMBC_BUDGET_CGROUP_V1;
			}
		} else {
			warn_once(m, error);
			g_clear_error(&error);
		}
	}
	text = vmbc_kernel_file_read(m->meminfo, NULL, &error);
	if (text != NULL &&
	    !vmbc_budget_parse_meminfo(text, &m->info.mem_total, &m->info.mem_available,
				       &swap_total, &error)) {
		g_prefix_error(&error, "%s: ", PROC_MEMINFO);
		text = NULL;
	}
	if (text != NULL) {
		gint64 ram = MAX(held + m->info.mem_available / ps - m->reserve, 0);
		if (sig.budget == VMBC_UNLIMITED || ram < sig.budget) {
			sig.budget = ram;
			sig.source = VMBC_BUDGET_HOST_RAM;
		}
	} else {
		warn_once(m, error);
		g_clear_error(&error);
	}
	/* set by hand: that is the budget the controller works to, and what is shown */
	if (m->fixed) {
		sig.source = VMBC_BUDGET_CONFIG;
		sig.budget = host->parm[VMBC_RES_PHYSPAGES].limit;
	}
	if (m->psi != NULL) {
		text = vmbc_kernel_file_read(m->psi, NULL, &error);
		if (text != NULL && !vmbc_psi_parse(text, &psi, &error)) {
			g_prefix_error(&error, "%s: ", m->psi_file);
			text = NULL;
		}
		if (text != NULL) {
			sig.psi_some_avg10 = psi.some_avg10;
			sig.psi_full_avg10 = psi.full_total >= 0 ? psi.full_avg10 : -1;
			sig.psi_some_total = psi.some_total;
			sig.psi_full_total = psi.full_total;
		} else {
			warn_once(m, error);
			g_clear_error(&error);
		}
	}
	/*
	 * Swap activity, where there is swap: /proc/vmstat is the dearest file of
	 * the tick (the kernel sums every counter over every CPU to write it), and
	 * a host without swap has none to tell. SwapTotal unknown: read it.
	 */
	text = swap_total != 0 ? vmbc_kernel_file_read(m->vmstat, NULL, &error) : NULL;
	if (text != NULL) {
		vmbc_budget_parse_swap(text, &sig.swap_in, &sig.swap_out);
	} else if (error != NULL) {
		warn_once(m, error);
		g_clear_error(&error);
	}
	vmbc_engine_set_host_signals(m->engine, &sig, now);
}

void
vmbc_host_monitor_refresh_ksm(VmbcHostMonitor *m, gint64 now)
{
	gint64 shared, sharing;

	if (m->ksm_read_at != 0 && now - m->ksm_read_at < VMBC_HOST_MONITOR_KSM_USEC)
		return;
	m->ksm_read_at = now;
	vmbc_ksm_read(vmbc_ksm_dir(), &shared, &sharing);
	vmbc_engine_set_ksm(m->engine, shared, sharing);
}

const VmbcHostInfo *
vmbc_host_monitor_get_info(VmbcHostMonitor *m)
{
	return &m->info;
}
