/*
 * bench-host-pressure.c: what the host's pressure controller costs vmbcd at N
 * VMs, run by tools/bench ("pressure N"; docs/performance.md).
 *
 * The core's part: an engine with N VMs of 1 GiB (held, guest statistics and
 * host-measured dirty rates spread over them), the host controller run alone
 * (vmbc_engine_host_pressure(), as the PSI trigger runs it) while the host is
 * calm, under pressure (a take every time) and giving back; and a whole
 * engine tick with the controller calm and pressured. The host's part: one
 * refresh of the host's signals (the VMs' cgroup, /proc/meminfo,
 * /proc/vmstat, memory PSI) on this machine, through the daemon's monitor.
 *
 * Prints "key value" lines (microseconds) for tools/bench.py.
 */
#include <stdlib.h>

#include "vmbc-host-monitor.h"

#define MIB ((gint64)((1 << 20) / vmbc_page_size()))

static gboolean
settle(VmbcEngine *engine, VmbcBeancounter *bc, gint64 target, gpointer user_data, GError **error)
{
	/* the balloon is where it was sent at once: the next call may pick it again */
	bc->balloon_actual = target;
	bc->balloon_target = target;
	return TRUE;
}

/* the events' log lines would measure the terminal: dropped, the events are still made */
static GLogWriterOutput
quiet(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
	if (level & (G_LOG_LEVEL_INFO | G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_MESSAGE))
		return G_LOG_WRITER_HANDLED;
	return g_log_writer_standard_streams(level, fields, n_fields, user_data);
}

static gdouble
per_call_us(gint64 start, guint calls)
{
	return (gdouble)(g_get_monotonic_time() - start) / (gdouble)calls;
}

static void
signals(VmbcEngine *engine, gint64 budget, gint64 now)
{
	VmbcHostSignals sig = {
		.budget = budget,
		.source = VMBC_BUDGET_CGROUP_V1,
		.psi_some_avg10 = 0,
		.psi_full_avg10 = 0,
		.psi_some_total = 0,
		.psi_full_total = 0,
		.swap_in = 0,
		.swap_out = 0,
	};
	vmbc_engine_set_host_signals(engine, &sig, now);
}

int
main(int argc, char **argv)
{
	guint n = argc > 1 ? (guint)atoi(argv[1]) : 1000;
	guint rounds = argc > 2 ? (guint)atoi(argv[2]) : 2000;
	const gchar *cgroup = argc > 3 ? argv[3] : "/sys/fs/cgroup/memory";
	VmbcEngineConfig config;
	VmbcActuator act = {settle, NULL};
	g_autoptr(VmbcEngine) engine = NULL;
	g_autoptr(VmbcConfig) daemon_config = vmbc_config_new_default();
	g_autoptr(VmbcHostMonitor) monitor = NULL;
	gint64 now = 1000 * G_USEC_PER_SEC, held = 0, start;
	GRand *rand = g_rand_new_with_seed(42);

	g_log_set_writer_func(quiet, NULL, NULL);
	vmbc_engine_config_init(&config);
	config.escalation = VMBC_ESCALATE_NONE;
	config.host_interval_usec = 1; /* every call may act: the cost of an action */
	config.giveback_delay_usec = 0;
	engine = vmbc_engine_new(&config);
	vmbc_engine_set_actuator(engine, &act, NULL);
	for (guint i = 0; i < n; i++) {
		g_autofree gchar *name = g_strdup_printf("vm%05u", i);
		VmbcBeancounter *bc = vmbc_engine_add(engine, name, 1024 * MIB, NULL);
		gint64 h = g_rand_int_range(rand, 200, 800) * MIB;
		VmbcSample s = {.physpages = h, .vmmpages = 20 * MIB, .balloon_actual = 1024 * MIB};
		VmbcGuestStats st = {.available = g_rand_int_range(rand, 50, 900) * MIB,
				     .free = g_rand_int_range(rand, 50, 500) * MIB,
				     .caches = 100 * MIB,
				     .total = 1024 * MIB,
				     .swap_in = 0,
				     .major_faults = 0,
				     .last_update = 5};

		vmbc_engine_sample(engine, bc, &s, now);
		vmbc_engine_set_guest_stats(engine, bc, &st);
		bc->balloon = VMBC_BALLOON_OK;
		/* a third measured by the host, as rotation leaves them */
		if (i % 3 == 0)
			vmbc_engine_set_dirty_rate(engine, bc, g_rand_int_range(rand, 0, 64) << 20,
						   now);
		held += h;
	}
	g_print("vms %u\n", n);

	/* calm, nothing taken yet: the controller finds no pressure and nothing to give back */
	signals(engine, held * 2, now);
	start = g_get_monotonic_time();
	for (guint i = 0; i < rounds / 10; i++) {
		now += G_USEC_PER_SEC;
		vmbc_engine_tick(engine, now);
	}
	g_print("engine-tick-calm-us %.2f\n", per_call_us(start, rounds / 10));
	/* the controller alone, as the PSI trigger runs it: a scan of every VM and a take */
	signals(engine, held * 2, now);
	start = g_get_monotonic_time();
	for (guint i = 0; i < rounds; i++)
		vmbc_engine_host_pressure(engine, now += 1000);
	g_print("controller-take-us %.2f\n", per_call_us(start, rounds));
	/* over the barrier every tick: a take each time */
	start = g_get_monotonic_time();
	for (guint i = 0; i < rounds / 10; i++) {
		now += G_USEC_PER_SEC;
		signals(engine, held / 2, now);
		vmbc_engine_tick(engine, now);
	}
	g_print("engine-tick-pressured-us %.2f\n", per_call_us(start, rounds / 10));
	/* calm again, with balloons to give back */
	start = g_get_monotonic_time();
	for (guint i = 0; i < rounds / 10; i++) {
		now += G_USEC_PER_SEC;
		signals(engine, held * 4, now);
		vmbc_engine_tick(engine, now);
	}
	g_print("engine-tick-giving-back-us %.2f\n", per_call_us(start, rounds / 10));
	g_print("taken-steps %" G_GUINT64_FORMAT "\n", vmbc_engine_get_host_state(engine)->takes);
	g_print("given-steps %" G_GUINT64_FORMAT "\n", vmbc_engine_get_host_state(engine)->gives);

	/* the host's signals on this machine, as the daemon reads them every tick */
	g_free(daemon_config->host_cgroup);
	daemon_config->host_cgroup = g_strdup(cgroup);
	monitor = vmbc_host_monitor_new(engine);
	vmbc_host_monitor_configure(monitor, daemon_config, "/sys/fs/cgroup", FALSE);
	start = g_get_monotonic_time();
	for (guint i = 0; i < rounds; i++)
		vmbc_host_monitor_refresh(monitor, now += 1000);
	g_print("refresh-us %.2f\n", per_call_us(start, rounds));
	g_print("refresh-cgroup %s\n", vmbc_host_monitor_get_info(monitor)->cgroup != NULL
					       ? vmbc_host_monitor_get_info(monitor)->cgroup
					       : "none");
	g_print("refresh-psi %s\n", vmbc_host_monitor_get_info(monitor)->psi_file != NULL
					    ? vmbc_host_monitor_get_info(monitor)->psi_file
					    : "none");
	g_rand_free(rand);
	return 0;
}
