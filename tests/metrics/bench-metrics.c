/*
 * bench-metrics.c: what one /metrics page costs with many VMs. Creates N
 * beancounters with every series present (guest stats, balloon, limits,
 * reclaim histograms) and prints the best and median render time; with
 * --http, also serves the page on loopback and scrapes it from a client
 * thread: the scrape's time to the first byte and to the last, the main
 * thread's CPU time per scrape, and the process's resident memory.
 *
 * Usage: bench-metrics [--http] [--dump FILE] [N ...]   (default: 1000 5000 10000)
 */
#include "config.h"

#include <arpa/inet.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vmbc-daemon.h"
#include "vmbc-metrics.h"

#define SCRAPES 11

static gboolean opt_http = FALSE;
static gchar *opt_dump = NULL;

static gint
cmp_i64(gconstpointer a, gconstpointer b)
{
	gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;
	return x < y ? -1 : x > y;
}

static gint64
thread_cpu_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (gint64)ts.tv_sec * G_USEC_PER_SEC + ts.tv_nsec / 1000;
}

/* "VmRSS" or "VmHWM" of this process, in KiB. */
static gint64
status_kib(const gchar *key)
{
	g_autofree gchar *text = NULL;
	g_auto(GStrv) lines = NULL;

	if (!g_file_get_contents("/proc/self/status", &text, NULL, NULL))
		return -1;
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		if (g_str_has_prefix(lines[i], key) && lines[i][strlen(key)] == ':')
			return g_ascii_strtoll(lines[i] + strlen(key) + 1, NULL, 10);
	}
	return -1;
}

typedef struct {
	guint16 port;
	gint64 first_usec; /* from the request sent to the first byte */
	gint64 total_usec; /* to the connection's end */
	gsize bytes;
	gint done;
} Scrape;

/* One GET /metrics with a blocking socket, in its own thread. */
static gpointer
scrape_thread(gpointer data)
{
	Scrape *s = data;
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(s->port)};
	static const gchar req[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
	g_autofree gchar *buf = g_malloc(1 << 18);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	gint64 t0;
	gssize n;

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
		g_error("cannot connect to the metrics port: %s", g_strerror(errno));
	t0 = g_get_monotonic_time();
	if (write(fd, req, sizeof(req) - 1) != (gssize)sizeof(req) - 1)
		g_error("cannot send the request");
	while ((n = read(fd, buf, 1 << 18)) > 0) {
		if (s->bytes == 0)
			s->first_usec = g_get_monotonic_time() - t0;
		s->bytes += (gsize)n;
	}
	s->total_usec = g_get_monotonic_time() - t0;
	close(fd);
	g_atomic_int_set(&s->done, 1);
	g_main_context_wakeup(NULL);
	return NULL;
}

static void
bench_http(VmbcMetrics *m, guint n)
{
	g_autoptr(GError) error = NULL;
	gint64 first[SCRAPES], total[SCRAPES], cpu[SCRAPES];
	gint64 rss0 = status_kib("VmRSS");
	gint64 hwm0 = status_kib("VmHWM");
	gsize bytes = 0;

	if (!vmbc_metrics_listen(m, "127.0.0.1:0", &error))
		g_error("%s", error->message);
	for (guint i = 0; i < SCRAPES; i++) {
		Scrape s = {.port = vmbc_metrics_get_port(m)};
		g_autoptr(GThread) thread = NULL;
		gint64 c0 = thread_cpu_usec();

		thread = g_thread_new("scrape", scrape_thread, &s);
		while (!g_atomic_int_get(&s.done))
			g_main_context_iteration(NULL, TRUE);
		/* what the server still does after the last byte (closing) */
		while (g_main_context_iteration(NULL, FALSE))
			;
		cpu[i] = thread_cpu_usec() - c0;
		first[i] = s.first_usec;
		total[i] = s.total_usec;
		bytes = s.bytes;
	}
	qsort(first, SCRAPES, sizeof(gint64), cmp_i64);
	qsort(total, SCRAPES, sizeof(gint64), cmp_i64);
	qsort(cpu, SCRAPES, sizeof(gint64), cmp_i64);
	g_print("%6u VMs: scrape of %zu bytes (headers included): first byte %.2f ms, "
		"last %.2f ms median (max %.2f); main thread CPU %.2f ms median; "
		"RSS %.1f MiB (%+.1f MiB over the scrapes), peak %+.1f MiB\n",
		n, bytes, (gdouble)first[SCRAPES / 2] / 1000.0,
		(gdouble)total[SCRAPES / 2] / 1000.0, (gdouble)total[SCRAPES - 1] / 1000.0,
		(gdouble)cpu[SCRAPES / 2] / 1000.0, (gdouble)status_kib("VmRSS") / 1024.0,
		(gdouble)(status_kib("VmRSS") - rss0) / 1024.0,
		(gdouble)(status_kib("VmHWM") - MAX(hwm0, rss0)) / 1024.0);
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
	/* first, so that the peak resident memory is the scrapes' */
	if (opt_http)
		bench_http(m, n);
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
	if (opt_dump != NULL) {
		g_autoptr(GError) error = NULL;
		if (!g_file_set_contents(opt_dump, out->str, (gssize)out->len, &error))
			g_error("%s", error->message);
	}
	g_clear_pointer(&m, vmbc_metrics_free);
	g_clear_pointer(&daemon, vmbc_daemon_free);
	g_rmdir(dir);
}

int
main(int argc, char **argv)
{
	const GOptionEntry entries[] = {
		{"http", 0, 0, G_OPTION_ARG_NONE, &opt_http,
		 "Also scrape the page over HTTP on loopback", NULL},
		{"dump", 0, 0, G_OPTION_ARG_FILENAME, &opt_dump, "Write the (last) page to FILE",
		 "FILE"},
		{NULL},
	};
	g_autoptr(GOptionContext) ctx = g_option_context_new("[N ...]");
	g_autoptr(GError) error = NULL;

	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
		g_printerr("%s\n", error->message);
		return 2;
	}
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
