/*
 * test-metrics.c: unit tests of the /metrics endpoint: the page (families,
 * HELP/TYPE, units, escaping, omitted series, the reclaim histogram, the cost
 * with thousands of VMs) and the HTTP answers, served on loopback by a daemon
 * that is created but not started (no backend, no tick).
 */
#include "config.h"

#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <string.h>

#include "vmbc-daemon.h"
#include "vmbc-metrics.h"
#include "vmbc-size.h"

typedef struct {
	gchar *dir;
	VmbcDaemon *daemon;
	VmbcEngine *engine;
	VmbcMetrics *metrics;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	VmbcConfig *config;

	f->dir = g_dir_make_tmp("vmbc-metrics-XXXXXX", &error);
	g_assert_no_error(error);
	config = vmbc_config_new_default();
	g_free(config->state_dir);
	config->state_dir = g_build_filename(f->dir, "state", NULL);
	g_free(config->control_socket);
	config->control_socket = g_build_filename(f->dir, "vmbcd.sock", NULL);
	f->daemon = vmbc_daemon_new(config);
	f->engine = vmbc_daemon_get_engine(f->daemon);
	f->metrics = vmbc_metrics_new(f->daemon);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	g_clear_pointer(&f->metrics, vmbc_metrics_free);
	g_clear_pointer(&f->daemon, vmbc_daemon_free);
	g_rmdir(f->dir);
	g_free(f->dir);
}

static VmbcBeancounter *
add_vm(Fixture *f, const gchar *name, gint64 max_pages)
{
	g_autoptr(GError) error = NULL;
	VmbcBeancounter *bc = vmbc_engine_add(f->engine, name, max_pages, &error);

	g_assert_no_error(error);
	g_assert_nonnull(bc);
	vmbc_daemon_emit_domain_event(f->daemon, bc, TRUE);
	return bc;
}

static gchar *
render(Fixture *f)
{
	GString *out = g_string_new(NULL);
	vmbc_metrics_render(f->metrics, out);
	return g_string_free(out, FALSE);
}

/* The sample line "NAME{LABELS} " is present and its value is @value. */
static void
assert_sample(const gchar *page, const gchar *series, const gchar *value)
{
	g_autofree gchar *line = g_strdup_printf("\n%s %s\n", series, value);
	if (strstr(page, line) == NULL)
		g_error("no line '%s %s' in:\n%s", series, value, page);
}

static void
assert_no_series(const gchar *page, const gchar *series)
{
	g_autofree gchar *prefix = g_strdup_printf("\n%s ", series);
	if (strstr(page, prefix) != NULL)
		g_error("unexpected series '%s' in:\n%s", series, page);
}

static gchar *
bytes_str(gint64 pages)
{
	return g_strdup_printf("%" G_GINT64_FORMAT, pages * (gint64)vmbc_page_size());
}

static void
test_label_escape(void)
{
	g_autoptr(GString) out = g_string_new(NULL);

	vmbc_metrics_append_label_value(out, "a\"b\\c\nd");
	g_assert_cmpstr(out->str, ==, "a\\\"b\\\\c\\nd");
	g_string_truncate(out, 0);
	vmbc_metrics_append_label_value(out, "ok-vm_1.x");
	g_assert_cmpstr(out->str, ==, "ok-vm_1.x");
	g_string_truncate(out, 0);
	vmbc_metrics_append_label_value(out, "bad\xff");
	g_assert_true(g_utf8_validate(out->str, -1, NULL));
	g_assert_true(g_str_has_prefix(out->str, "bad"));
}

/* Every family: HELP then TYPE, samples only of that family, each family once. */
static void
check_format(const gchar *page)
{
	g_auto(GStrv) lines = g_strsplit(page, "\n", -1);
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autofree gchar *current = NULL;
	g_autofree gchar *type = NULL;
	guint n = g_strv_length(lines);

	g_assert_true(g_str_has_suffix(page, "\n"));
	for (guint i = 0; i + 1 < n; i++) {
		const gchar *l = lines[i];
		if (g_str_has_prefix(l, "# HELP ")) {
			const gchar *name = l + 7;
			const gchar *sp = strchr(name, ' ');
			g_assert_nonnull(sp);
			g_free(current);
			current = g_strndup(name, (gsize)(sp - name));
			g_assert_true(g_str_has_prefix(current, "vmbc_"));
			g_assert_false(g_hash_table_contains(seen, current));
			g_hash_table_add(seen, g_strdup(current));
			g_assert_true(i + 1 < n && g_str_has_prefix(lines[i + 1], "# TYPE "));
			g_assert_true(g_str_has_prefix(lines[i + 1] + 7, current));
			g_free(type);
			type = g_strdup(lines[i + 1] + 7 + strlen(current) + 1);
			if (g_str_equal(type, "counter"))
				g_assert_true(g_str_has_suffix(current, "_total"));
			i++;
			continue;
		}
		g_assert_nonnull(current);
		g_assert_true(g_str_has_prefix(l, current));
		if (g_str_equal(type, "histogram")) {
			const gchar *rest = l + strlen(current);
			g_assert_true(g_str_has_prefix(rest, "_bucket{") ||
				      g_str_has_prefix(rest, "_sum") ||
				      g_str_has_prefix(rest, "_count"));
		} else {
			gchar c = l[strlen(current)];
			g_assert_true(c == '{' || c == ' ');
		}
	}
}

static void
test_render_families(Fixture *f, gconstpointer data)
{
	VmbcBeancounter *bc = add_vm(f, "vm1", 1000);
	VmbcBeancounter *odd = add_vm(f, "we\"ird\\vm\nname", 500);
	VmbcBeancounter *host = vmbc_engine_get_host(f->engine);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *page = NULL;
	g_autofree gchar *b300 = bytes_str(300);
	g_autofree gchar *b800 = bytes_str(800);
	g_autofree gchar *b900 = bytes_str(900);
	g_autofree gchar *b1000 = bytes_str(1000);
	g_autofree gchar *b700 = bytes_str(700);
	g_autofree gchar *b100 = bytes_str(100);
	g_autofree gchar *b50 = bytes_str(50);

	VmbcSample s = {.physpages = 300, .vmmpages = 50, .balloon_actual = 1000};
	vmbc_engine_sample(f->engine, bc, &s, 1);
	g_assert_true(vmbc_engine_set_limits(f->engine, bc, VMBC_RES_PHYSPAGES, 800, 900, 2, NULL,
					     NULL, &error));
	g_assert_no_error(error);
	bc->parm[VMBC_RES_PHYSPAGES].failcnt = 3;
	bc->free_page_reporting = 1;
	bc->stats.available = 700;
	bc->stats.free = 100;
	bc->stats.caches = 50;
	vmbc_physpages_set_counters(bc,
				    &(VmbcReclaimCounters){.started = 5, .done = 4, .failed = 1});
	odd->free_page_reporting = 0;

	page = render(f);
	check_format(page);
	assert_sample(page, "vmbc_held_bytes{domain=\"vm1\",resource=\"physpages\"}", b300);
	assert_sample(page, "vmbc_held_bytes{domain=\"vm1\",resource=\"vmmpages\"}", b50);
	assert_sample(page, "vmbc_held_bytes{domain=\"vm1\",resource=\"vmguarpages\"}", b1000);
	assert_sample(page, "vmbc_maxheld_bytes{domain=\"vm1\",resource=\"physpages\"}", b300);
	assert_sample(page, "vmbc_barrier_bytes{domain=\"vm1\",resource=\"physpages\"}", b800);
	assert_sample(page, "vmbc_limit_bytes{domain=\"vm1\",resource=\"physpages\"}", b900);
	/* unlimited: no series */
	assert_no_series(page, "vmbc_limit_bytes{domain=\"vm1\",resource=\"vmmpages\"}");
	assert_sample(page, "vmbc_failcnt_total{domain=\"vm1\",resource=\"physpages\"}", "3");
	assert_sample(page, "vmbc_failcnt_total{domain=\"vm1\",resource=\"vmmpages\"}", "0");
	assert_sample(page, "vmbc_memory_max_bytes{domain=\"vm1\"}", b1000);
	assert_sample(page, "vmbc_balloon_actual_bytes{domain=\"vm1\"}", b1000);
	assert_no_series(page, "vmbc_balloon_target_bytes{domain=\"vm1\"}");
	assert_sample(page, "vmbc_guest_available_bytes{domain=\"vm1\"}", b700);
	assert_sample(page, "vmbc_guest_unused_bytes{domain=\"vm1\"}", b100);
	assert_sample(page, "vmbc_guest_caches_bytes{domain=\"vm1\"}", b50);
	assert_no_series(page, "vmbc_guest_total_bytes{domain=\"vm1\"}");
	assert_sample(page, "vmbc_free_page_reporting{domain=\"vm1\"}", "1");
	assert_sample(page, "vmbc_reclaims_started_total{domain=\"vm1\"}", "5");
	assert_sample(page, "vmbc_reclaims_total{domain=\"vm1\",outcome=\"done\"}", "4");
	assert_sample(page, "vmbc_reclaims_total{domain=\"vm1\",outcome=\"failed\"}", "1");
	assert_sample(page, "vmbc_reclaim_duration_seconds_bucket{domain=\"vm1\",le=\"+Inf\"}",
		      "0");
	/* the odd name, escaped */
	assert_sample(page, "vmbc_free_page_reporting{domain=\"we\\\"ird\\\\vm\\nname\"}", "0");
	/* the host: the sum of its children, no domain label */
	assert_sample(page, "vmbc_host_held_bytes{resource=\"physpages\"}", b300);
	g_assert_cmpint(host->parm[VMBC_RES_PHYSPAGES].held, ==, 300);
	assert_sample(page, "vmbc_vms", "2");
	assert_sample(page, "vmbc_build_info{version=\"" VMBC_VERSION "\"}", "1");
	assert_sample(page, "vmbc_tick_duration_seconds_count", "0");
	assert_sample(page, "vmbc_tick_duration_seconds_bucket{le=\"+Inf\"}", "0");
	assert_sample(page, "vmbc_tick_duration_seconds_bucket{le=\"0.0005\"}", "0");
	g_assert_nonnull(strstr(page, "# TYPE vmbc_backend_up gauge\n"));
}

static void
test_reclaim_histogram(Fixture *f, gconstpointer data)
{
	VmbcBeancounter *bc = add_vm(f, "vm1", 1000);
	VmbcBeancounter *other = add_vm(f, "vm2", 1000);
	g_autofree gchar *page = NULL;
	g_autofree gchar *page2 = NULL;

	vmbc_metrics_observe_reclaim(f->metrics, bc, 0.3);
	vmbc_metrics_observe_reclaim(f->metrics, bc, 4.0);
	vmbc_metrics_observe_reclaim(f->metrics, bc, 500.0);
	page = render(f);
	check_format(page);
	assert_sample(page, "vmbc_reclaim_duration_seconds_bucket{domain=\"vm1\",le=\"0.25\"}",
		      "0");
	assert_sample(page, "vmbc_reclaim_duration_seconds_bucket{domain=\"vm1\",le=\"0.5\"}", "1");
	assert_sample(page, "vmbc_reclaim_duration_seconds_bucket{domain=\"vm1\",le=\"5\"}", "2");
	assert_sample(page, "vmbc_reclaim_duration_seconds_bucket{domain=\"vm1\",le=\"120\"}", "2");
	assert_sample(page, "vmbc_reclaim_duration_seconds_bucket{domain=\"vm1\",le=\"+Inf\"}",
		      "3");
	assert_sample(page, "vmbc_reclaim_duration_seconds_count{domain=\"vm1\"}", "3");
	assert_sample(page, "vmbc_reclaim_duration_seconds_sum{domain=\"vm1\"}", "504.3");

	vmbc_metrics_observe_reclaim(f->metrics, other, 1.5);
	/* the VM goes away: its histogram goes with it, and a new VM of that name starts at 0 */
	vmbc_daemon_emit_domain_event(f->daemon, bc, FALSE);
	vmbc_engine_remove(f->engine, bc);
	bc = add_vm(f, "vm1", 1000);
	page2 = render(f);
	check_format(page2);
	assert_sample(page2, "vmbc_reclaim_duration_seconds_count{domain=\"vm1\"}", "0");
	assert_sample(page2, "vmbc_reclaim_duration_seconds_count{domain=\"vm2\"}", "1");
	assert_sample(page2, "vmbc_reclaim_duration_seconds_bucket{domain=\"vm2\",le=\"1\"}", "0");
	assert_sample(page2, "vmbc_reclaim_duration_seconds_bucket{domain=\"vm2\",le=\"2.5\"}",
		      "1");
	assert_sample(page2, "vmbc_vms", "2");
}

/* A VM removed from the engine without the daemon's event is not served stale. */
static void
test_removed_without_event(Fixture *f, gconstpointer data)
{
	VmbcBeancounter *bc = add_vm(f, "gone", 1000);
	g_autofree gchar *page = NULL;

	vmbc_metrics_observe_reclaim(f->metrics, bc, 1.0);
	vmbc_engine_remove(f->engine, bc);
	page = render(f);
	g_assert_null(strstr(page, "domain=\"gone\""));
	assert_sample(page, "vmbc_vms", "0");
}

/* A page with hundreds of VMs is complete and well formed. */
static void
test_render_scale(Fixture *f, gconstpointer data)
{
	const guint n = 300;
	gint64 best = G_MAXINT64;
	g_autoptr(GString) out = g_string_new(NULL);

	for (guint i = 0; i < n; i++) {
		g_autofree gchar *name = g_strdup_printf("vm-%05u", i);
		VmbcBeancounter *bc = add_vm(f, name, 262144);
		VmbcSample s = {.physpages = 1000 + i, .vmmpages = 100, .balloon_actual = 262144};
		vmbc_engine_sample(f->engine, bc, &s, 1);
		bc->stats.available = 1000;
		bc->stats.free = 500;
		bc->stats.caches = 200;
		bc->free_page_reporting = 1;
	}
	for (guint round = 0; round < 5; round++) {
		gint64 t0;
		g_string_truncate(out, 0);
		t0 = g_get_monotonic_time();
		vmbc_metrics_render(f->metrics, out);
		best = MIN(best, g_get_monotonic_time() - t0);
	}
	check_format(out->str);
	/* every VM is on the page (timing is for tools/bench and bench-metrics, not a test) */
	g_assert_nonnull(strstr(out->str, "domain=\"vm-00000\""));
	g_assert_nonnull(strstr(out->str, "domain=\"vm-00299\""));
	g_test_message("%u VMs: page of %zu bytes rendered in %.2f ms (best of 5)", n, out->len,
		       (gdouble)best / 1000.0);
}

/* @page without the line of vmbc_metrics_render_seconds, which differs from page to page. */
static gchar *
without_render_seconds(const gchar *page)
{
	g_auto(GStrv) lines = g_strsplit(page, "\n", -1);
	g_autoptr(GString) out = g_string_new(NULL);

	for (guint i = 0; lines[i] != NULL; i++) {
		if (g_str_has_prefix(lines[i], "vmbc_metrics_render_seconds "))
			continue;
		g_string_append(out, lines[i]);
		if (lines[i + 1] != NULL)
			g_string_append_c(out, '\n');
	}
	return g_string_free(g_steal_pointer(&out), FALSE);
}

/* VMs with every kind of series and value the page has. */
static void
add_varied_vms(Fixture *f, guint n)
{
	for (guint i = 0; i < n; i++) {
		g_autofree gchar *name = g_strdup_printf(i % 7 == 0 ? "odd\"%u\\\n" : "vm-%05u", i);
		VmbcBeancounter *bc = add_vm(f, name, 262144);
		VmbcSample s = {.physpages = 1000 + i, .vmmpages = 100, .balloon_actual = 262144};

		vmbc_engine_sample(f->engine, bc, &s, 1);
		if (i % 2 == 0)
			vmbc_engine_set_limits(f->engine, bc, VMBC_RES_PHYSPAGES, 2000, 3000, 2,
					       NULL, NULL, NULL);
		if (i % 3 == 0) {
			bc->stats.available = 1000;
			bc->stats.free = 500;
			bc->stats.caches = 200;
		}
		bc->free_page_reporting = (gint)(i % 3) - 1;
		bc->has_vmem = i % 5 == 0;
		bc->vmem.size = 4096 * i;
		bc->vmem.requested = 8192;
		bc->parm[VMBC_RES_VMMPAGES].failcnt = i;
		if (i % 4 == 0)
			vmbc_metrics_observe_reclaim(f->metrics, bc, 0.07 * i);
	}
}

/* A page rendered in pieces of any size is the page rendered at once. */
static void
test_render_pieces(Fixture *f, gconstpointer data)
{
	g_autoptr(VmbcMetricsRenderer) r = vmbc_metrics_renderer_new(f->daemon);
	const gsize sizes[] = {1, 100, 4096, 65536};
	g_autofree gchar *whole = NULL;

	add_varied_vms(f, 60);
	{
		g_autoptr(GString) out = g_string_new(NULL);
		vmbc_metrics_renderer_render(r, NULL, out);
		check_format(out->str);
		whole = without_render_seconds(out->str);
	}
	for (guint k = 0; k < G_N_ELEMENTS(sizes); k++) {
		g_autoptr(VmbcMetricsPage) page = vmbc_metrics_renderer_begin(r, NULL);
		g_autoptr(GString) out = g_string_new(NULL);
		g_autofree gchar *pieced = NULL;
		guint pieces = 0;
		gboolean more;

		do {
			gsize before = out->len;
			more = vmbc_metrics_page_next(page, out, sizes[k]);
			pieces++;
			/* at least what was asked for, but the last */
			if (more)
				g_assert_cmpuint(out->len - before, >=, sizes[k]);
		} while (more);
		g_assert_false(vmbc_metrics_page_next(page, out, sizes[k]));
		pieced = without_render_seconds(out->str);
		g_assert_cmpstr(pieced, ==, whole);
		if (sizes[k] < 65536)
			g_assert_cmpuint(pieces, >, 1);
	}
}

/* VMs that come and go while a page is in pieces: the gone are left out, nothing stale. */
static void
test_render_pieces_vm_gone(Fixture *f, gconstpointer data)
{
	g_autoptr(VmbcMetricsRenderer) r = vmbc_metrics_renderer_new(f->daemon);
	g_autoptr(VmbcMetricsPage) page = NULL;
	g_autoptr(GString) out = g_string_new(NULL);
	VmbcBeancounter *gone;
	gsize at;

	add_varied_vms(f, 20);
	gone = add_vm(f, "gone", 1000);
	page = vmbc_metrics_renderer_begin(r, NULL);
	/* into the first family: the VMs before "gone" */
	g_assert_true(vmbc_metrics_page_next(page, out, 2000));
	g_assert_null(strstr(out->str, "domain=\"gone\""));
	at = out->len;
	vmbc_metrics_observe_reclaim(f->metrics, gone, 1.0);
	vmbc_daemon_emit_domain_event(f->daemon, gone, FALSE);
	vmbc_engine_remove(f->engine, gone);
	add_vm(f, "late", 1000);
	while (vmbc_metrics_page_next(page, out, 1000))
		;
	check_format(out->str);
	g_assert_null(strstr(out->str + at, "domain=\"gone\""));
	/* a VM that came after the page began is on the next one */
	g_assert_null(strstr(out->str, "domain=\"late\""));
	assert_sample(out->str, "vmbc_vms", "21");
	g_clear_pointer(&page, vmbc_metrics_page_free);
	g_string_truncate(out, 0);
	vmbc_metrics_renderer_render(r, NULL, out);
	g_assert_nonnull(strstr(out->str, "domain=\"late\""));
	g_assert_null(strstr(out->str, "domain=\"gone\""));
}

/* --- HTTP ---------------------------------------------------------------- */

typedef struct {
	guint status;
	GBytes *body;
	gchar *content_type;
	gboolean done;
} Reply;

static void
on_sent(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Reply *r = user_data;
	SoupMessage *msg = soup_session_get_async_result_message(SOUP_SESSION(source), res);
	g_autoptr(GError) error = NULL;

	r->body = soup_session_send_and_read_finish(SOUP_SESSION(source), res, &error);
	g_assert_no_error(error);
	r->status = soup_message_get_status(msg);
	r->content_type = g_strdup(soup_message_headers_get_content_type(
		soup_message_get_response_headers(msg), NULL));
	r->done = TRUE;
}

static void
request(Fixture *f, const gchar *method, const gchar *path, Reply *r)
{
	g_autoptr(SoupSession) session = soup_session_new();
	g_autofree gchar *uri =
		g_strdup_printf("http://127.0.0.1:%u%s", vmbc_metrics_get_port(f->metrics), path);
	g_autoptr(SoupMessage) msg = soup_message_new(method, uri);

	memset(r, 0, sizeof(*r));
	soup_session_send_and_read_async(session, msg, G_PRIORITY_DEFAULT, NULL, on_sent, r);
	while (!r->done)
		g_main_context_iteration(NULL, TRUE);
}

static void
reply_clear(Reply *r)
{
	g_clear_pointer(&r->body, g_bytes_unref);
	g_clear_pointer(&r->content_type, g_free);
}

/*
 * The page @r served is @want_page (without its render-seconds line) up to the scrape
 * counter, which says @scrapes there.
 */
static void
assert_served_page(const Reply *r, const gchar *want_page, guint scrapes)
{
	g_autofree gchar *body =
		g_strndup(g_bytes_get_data(r->body, NULL), g_bytes_get_size(r->body));
	g_autofree gchar *got = without_render_seconds(body);
	g_autofree gchar *line = g_strdup_printf("\nvmbc_metrics_scrapes_total %u\n", scrapes);

	g_assert_nonnull(strstr(got, line));
	g_assert_cmpuint(strlen(got), ==, strlen(want_page));
	g_assert_cmpint(strncmp(got, want_page, strstr(got, "vmbc_metrics_scrapes_total") - got),
			==, 0);
}

static void
test_http(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	Reply r;
	gsize len;
	const gchar *text;

	add_vm(f, "vm1", 1000);
	g_assert_true(vmbc_metrics_listen(f->metrics, "127.0.0.1:0", &error));
	g_assert_no_error(error);
	g_assert_cmpuint(vmbc_metrics_get_port(f->metrics), >, 0);

	request(f, "GET", "/metrics", &r);
	g_assert_cmpuint(r.status, ==, 200);
	g_assert_cmpstr(r.content_type, ==, "text/plain");
	text = g_bytes_get_data(r.body, &len);
	g_assert_cmpuint(len, >, 0);
	g_assert_nonnull(g_strstr_len(text, (gssize)len, "vmbc_held_bytes{domain=\"vm1\""));
	reply_clear(&r);

	/* a page of several pieces, over HTTP, is the page */
	{
		g_autofree gchar *want = NULL;
		g_autofree gchar *want_page = NULL;

		add_varied_vms(f, 400);
		request(f, "GET", "/metrics", &r);
		g_assert_cmpuint(r.status, ==, 200);
		g_assert_cmpuint(g_bytes_get_size(r.body), >, 3 * 256 * 1024);
		want = render(f);
		/* the page rendered here counts the scrape above; the one served did not yet */
		want_page = without_render_seconds(want);
		g_assert_nonnull(strstr(want_page, "\nvmbc_metrics_scrapes_total 2\n"));
		assert_served_page(&r, want_page, 1);
		reply_clear(&r);
		/* again: the pieces' buffers, kept from the scrape before, carry nothing over */
		request(f, "GET", "/metrics", &r);
		g_assert_cmpuint(r.status, ==, 200);
		assert_served_page(&r, want_page, 2);
		reply_clear(&r);
	}

	request(f, "HEAD", "/metrics", &r);
	g_assert_cmpuint(r.status, ==, 200);
	g_assert_cmpuint(g_bytes_get_size(r.body), ==, 0);
	reply_clear(&r);

	request(f, "GET", "/healthz", &r);
	g_assert_cmpuint(r.status, ==, 200);
	reply_clear(&r);

	request(f, "GET", "/", &r);
	g_assert_cmpuint(r.status, ==, 404);
	reply_clear(&r);
	request(f, "GET", "/metrics/x", &r);
	g_assert_cmpuint(r.status, ==, 404);
	reply_clear(&r);
	request(f, "POST", "/metrics", &r);
	g_assert_cmpuint(r.status, ==, 405);
	reply_clear(&r);
	request(f, "DELETE", "/healthz", &r);
	g_assert_cmpuint(r.status, ==, 405);
	reply_clear(&r);

	/* the scrape counter saw exactly the three GETs and the one HEAD of /metrics */
	{
		g_autofree gchar *page = render(f);
		assert_sample(page, "vmbc_metrics_scrapes_total", "4");
	}
}

static void
test_listen_errors(Fixture *f, gconstpointer data)
{
	const gchar *bad[] = {
		"nocolon",	    ":80",	"127.0.0.1:", "127.0.0.1:x", "127.0.0.1:70000",
		"example.com:9786", "[::1:9786"};

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(VmbcMetrics) m = vmbc_metrics_new(f->daemon);
		g_autoptr(GError) error = NULL;
		g_assert_false(vmbc_metrics_listen(m, bad[i], &error));
		g_assert_error(error, VMBC_ERROR, VMBC_ERROR_INVALID);
		g_assert_nonnull(strstr(error->message, bad[i]));
	}
	/* a port in use: the message names the address */
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(VmbcMetrics) m = vmbc_metrics_new(f->daemon);
		g_autofree gchar *addr = NULL;
		g_assert_true(vmbc_metrics_listen(f->metrics, "127.0.0.1:0", &error));
		addr = g_strdup_printf("127.0.0.1:%u", vmbc_metrics_get_port(f->metrics));
		g_assert_false(vmbc_metrics_listen(m, addr, &error));
		g_assert_nonnull(error);
		g_assert_nonnull(strstr(error->message, addr));
	}
	/* IPv6 loopback and "localhost" */
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(VmbcMetrics) m = vmbc_metrics_new(f->daemon);
		g_assert_true(vmbc_metrics_listen(m, "localhost:0", &error));
		g_assert_no_error(error);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/vmbc/metrics/label-escape", test_label_escape);
	g_test_add("/vmbc/metrics/render/families", Fixture, NULL, fixture_setup,
		   test_render_families, fixture_teardown);
	g_test_add("/vmbc/metrics/render/reclaim-histogram", Fixture, NULL, fixture_setup,
		   test_reclaim_histogram, fixture_teardown);
	g_test_add("/vmbc/metrics/render/removed-without-event", Fixture, NULL, fixture_setup,
		   test_removed_without_event, fixture_teardown);
	g_test_add("/vmbc/metrics/render/scale", Fixture, NULL, fixture_setup, test_render_scale,
		   fixture_teardown);
	g_test_add("/vmbc/metrics/render/pieces", Fixture, NULL, fixture_setup, test_render_pieces,
		   fixture_teardown);
	g_test_add("/vmbc/metrics/render/pieces-vm-gone", Fixture, NULL, fixture_setup,
		   test_render_pieces_vm_gone, fixture_teardown);
	g_test_add("/vmbc/metrics/http/answers", Fixture, NULL, fixture_setup, test_http,
		   fixture_teardown);
	g_test_add("/vmbc/metrics/listen/errors", Fixture, NULL, fixture_setup, test_listen_errors,
		   fixture_teardown);
	return g_test_run();
}
