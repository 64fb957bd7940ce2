/*
 * bench-metrics.c: what one /metrics page costs the main loop with many VMs.
 * Creates N beancounters with every series present (guest stats, balloon,
 * limits, reclaim histograms) and prints the best and median render time.
 *
 * Usage: bench-metrics [N ...]   (default: 1000 5000 10000)
 */
#include "config.h"

#include <glib/gstdio.h>
#include <stdlib.h>

#include "vmbc-daemon.h"
#include "vmbc-metrics.h"

static gint
cmp_i64(gconstpointer a, gconstpointer b)
{
	gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;
	return x < y ? -1 : x > y;
}

static void
bench(guint n)
{
	g_autofree gchar *dir = g_dir_make_tmp("vmbc-bench-XXXXXX", NULL);
	VmbcConfig *config = vmbc_config_new_default();
	g_autoptr(VmbcDaemon) daemon = NULL;
	g_autoptr(VmbcMetrics) m = NULL;
	g_autoptr(GString) out = g_string_new(NULL);
	VmbcEngine *engine;
	gint64 times[21];

	g_free(config->state_dir);
	config->state_dir = g_build_filename(dir, "state", NULL);
	daemon = vmbc_daemon_new(config);
	engine = vmbc_daemon_get_engine(daemon);
	m = vmbc_metrics_new(daemon);
	for (guint i = 0; i < n; i++) {
		g_autofree gchar *name = g_strdup_printf("guest-%06u.example", i);
		VmbcBeancounter *bc = vmbc_engine_add(engine, name, 1048576, NULL);
		VmbcSample s = {
			.physpages = 200000 + i, .vmmpages = 30000, .balloon_actual = 900000};
		vmbc_daemon_emit_domain_event(daemon, bc, TRUE);
		vmbc_engine_sample(engine, bc, &s, 1);
		vmbc_engine_set_limits(engine, bc, VMBC_RES_PHYSPAGES, 600000, 700000, 2, NULL,
				       NULL, NULL);
		bc->stats.available = 300000;
		bc->stats.free = 100000;
		bc->stats.caches = 150000;
		bc->balloon_target = 900000;
		bc->free_page_reporting = 1;
		vmbc_metrics_observe_reclaim(m, bc, 0.1 * (i % 50));
	}
	for (guint r = 0; r < G_N_ELEMENTS(times); r++) {
		gint64 t0;
		g_string_truncate(out, 0);
		t0 = g_get_monotonic_time();
		vmbc_metrics_render(m, out);
		times[r] = g_get_monotonic_time() - t0;
	}
	qsort(times, G_N_ELEMENTS(times), sizeof(times[0]), cmp_i64);
	g_print("%6u VMs: %8zu bytes, %7.2f ms best, %7.2f ms median (%.2f us per VM)\n", n,
		out->len, (gdouble)times[0] / 1000.0,
		(gdouble)times[G_N_ELEMENTS(times) / 2] / 1000.0,
		(gdouble)times[G_N_ELEMENTS(times) / 2] / n);
	g_clear_pointer(&m, vmbc_metrics_free);
	g_clear_pointer(&daemon, vmbc_daemon_free);
	g_rmdir(dir);
}

int
main(int argc, char **argv)
{
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			bench((guint)g_ascii_strtoull(argv[i], NULL, 10));
	} else {
		bench(1000);
		bench(5000);
		bench(10000);
	}
	return 0;
}
