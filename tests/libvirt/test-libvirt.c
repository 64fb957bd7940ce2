/*
 * test-libvirt.c: the libvirt backend (plugins/libvirt) without libvirtd:
 * the domain XML parser, the QEMU process finder, and the backend against
 * libvirt's in-process test driver (test:///default), whose domains start
 * and stop with real lifecycle events. The backend is given the test
 * implementation of its host interface (tests/backend-host.c), as in
 * test-qmp-backend.c, so only the backend's contract is exercised. The e2e tests
 * (test_libvirt_e2e.py) cover a real libvirtd with real guests.
 */
#include <libvirt/libvirt.h>
#include <string.h>
#include <unistd.h>

#include "backend-host.h"
#include "vmbc-libvirt-backend.h"
#include "vmbc-libvirt-domain.h"

#define WAIT_MS 10000

/* The backend's warnings are expected here (no QEMU process for test-driver domains). */
static gboolean
on_fatal_log(const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer user_data)
{
	return (level & G_LOG_LEVEL_WARNING) == 0 ||
	       (g_strcmp0(domain, "vmbc-libvirt-backend") != 0 &&
		g_strcmp0(domain, "vmbc-core") != 0);
}

/* Expected warnings become TAP comments (GLib's own handler would print "Bail out!"). */
static void
log_as_comment(const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer user_data)
{
	g_test_message("%s-%s: %s", domain, (level & G_LOG_LEVEL_WARNING) != 0 ? "WARNING" : "INFO",
		       message);
}

static gboolean
wait_until(gboolean (*pred)(gpointer), gpointer data)
{
	gint64 deadline = g_get_monotonic_time() + WAIT_MS * 1000;

	while (!pred(data)) {
		if (g_get_monotonic_time() > deadline)
			return FALSE;
		g_main_context_iteration(NULL, FALSE);
		g_usleep(1000);
	}
	return TRUE;
}

/* --- the domain XML -------------------------------------------------------------- */

static const gchar *xml_full =
	"<domain type='qemu' id='3'>\n"
	"  <name>web1</name>\n"
	"  <uuid>6A2B6F8E-1111-2222-3333-444455556666</uuid>\n"
	"  <memory unit='KiB'>524288</memory>\n"
	"  <currentMemory unit='KiB'>262144</currentMemory>\n"
	"  <os><type arch='x86_64'>hvm</type><cmdline>console=ttyS0</cmdline></os>\n"
	"  <devices>\n"
	"    <serial type='unix'><source mode='bind' path='/tmp/s'/></serial>\n"
	"    <memballoon model='virtio' freePageReporting='on'>\n"
	"      <stats period='5'/>\n"
	"      <alias name='balloon0'/>\n"
	"    </memballoon>\n"
	"  </devices>\n"
	"  <seclabel type='none'><label>x</label></seclabel>\n"
	"</domain>\n";

static void
test_parse_full(void)
{
	g_auto(VmbcLibvirtDomainInfo) info = {0};
	g_autoptr(GError) error = NULL;

	g_assert_true(vmbc_libvirt_domain_info_parse(xml_full, &info, &error));
	g_assert_no_error(error);
	g_assert_cmpstr(info.name, ==, "web1");
	g_assert_cmpstr(info.uuid, ==, "6a2b6f8e-1111-2222-3333-444455556666");
	g_assert_cmpint(info.memory_kib, ==, 524288);
	g_assert_cmpint(info.current_kib, ==, 262144);
	g_assert_cmpstr(info.balloon_model, ==, "virtio");
	g_assert_true(info.has_balloon);
	g_assert_cmpint(info.free_page_reporting, ==, 1);
	g_assert_cmpint(info.stats_period, ==, 5);
}

static void
test_parse_balloon_variants(void)
{
	g_auto(VmbcLibvirtDomainInfo) info = {0};
	g_autoptr(GError) error = NULL;

	/* no freePageReporting, no stats, sizes in MiB */
	g_assert_true(vmbc_libvirt_domain_info_parse(
		"<domain><name>a</name><memory unit='MiB'>512</memory><devices>"
		"<memballoon model='virtio-non-transitional'/></devices></domain>",
		&info, &error));
	g_assert_no_error(error);
	g_assert_cmpint(info.memory_kib, ==, 524288);
	g_assert_cmpint(info.current_kib, ==, -1);
	g_assert_cmpstr(info.balloon_model, ==, "virtio-non-transitional");
	g_assert_true(info.has_balloon);
	g_assert_cmpint(info.free_page_reporting, ==, 0);
	g_assert_cmpint(info.stats_period, ==, 0);

	/* model none: no balloon, reporting not applicable */
	g_assert_true(vmbc_libvirt_domain_info_parse(
		"<domain><name>b</name><memory>1048576</memory><devices>"
		"<memballoon model='none'/></devices></domain>",
		&info, &error));
	g_assert_cmpint(info.memory_kib, ==, 1048576);
	g_assert_cmpstr(info.balloon_model, ==, "none");
	g_assert_false(info.has_balloon);
	g_assert_cmpint(info.free_page_reporting, ==, -1);

	/* no element at all; a <memballoon> outside <devices> does not count */
	g_assert_true(vmbc_libvirt_domain_info_parse(
		"<domain><name>c</name><memballoon model='virtio'/><devices/></domain>", &info,
		&error));
	g_assert_null(info.balloon_model);
	g_assert_false(info.has_balloon);
}

static void
test_parse_bad(void)
{
	const gchar *bad[] = {
		"",
		"<domain><name>x</name>",
		"<network><name>x</name></network>",
		"<domain><memory>1</memory></domain>",
		"<domain><name>x</name><memory unit='parsecs'>1</memory></domain>",
		"<domain><name>x</name><memory>lots</memory></domain>",
		"<domain><name>x</name><memory>-5</memory></domain>",
		"<domain><name>x</name><memory unit='TiB'>99999999999999</memory></domain>",
	};

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_auto(VmbcLibvirtDomainInfo) info = {0};
		g_autoptr(GError) error = NULL;

		g_assert_false(vmbc_libvirt_domain_info_parse(bad[i], &info, &error));
		g_assert_error(error, VMBC_ERROR, VMBC_ERROR_INVALID);
	}
}

/* --- finding QEMU ----------------------------------------------------------------- */

static void
test_cmdline(void)
{
	static const gchar cmd[] = "/usr/bin/qemu-system-x86_64\0-name\0guest=web1,debug-threads=on"
				   "\0-uuid\0be1bcd3c-4ec5-4f2c-9a55-6c2e4e1d0a1b\0-m\0512";
	static const gchar comma[] = "qemu\0-name\0guest=a,,b,debug-threads=on";
	gsize len = sizeof(cmd);

	g_assert_true(vmbc_libvirt_cmdline_matches(cmd, len, "web1", NULL));
	g_assert_false(vmbc_libvirt_cmdline_matches(cmd, len, "web", NULL));
	g_assert_false(vmbc_libvirt_cmdline_matches(cmd, len, "web10", NULL));
	g_assert_true(vmbc_libvirt_cmdline_matches(cmd, len, "web1",
						   "BE1BCD3C-4EC5-4F2C-9A55-6C2E4E1D0A1B"));
	/* with a uuid the name does not decide */
	g_assert_false(vmbc_libvirt_cmdline_matches(cmd, len, "web1",
						    "00000000-4ec5-4f2c-9a55-6c2e4e1d0a1b"));
	g_assert_false(vmbc_libvirt_cmdline_matches(comma, sizeof(comma), "a", NULL));
	/* a cmdline cut in the middle of an argument */
	g_assert_false(vmbc_libvirt_cmdline_matches(cmd, 30, "web1", NULL));
}

static void
test_pidfile_path(void)
{
	g_autofree gchar *sys = vmbc_libvirt_pidfile_path("qemu:///system", "web1");
	g_autofree gchar *unix_sys = vmbc_libvirt_pidfile_path("qemu+unix:///system", "web1");
	g_autofree gchar *session = NULL;
	g_autofree gchar *old = g_strdup(g_getenv("XDG_RUNTIME_DIR"));

	g_assert_cmpstr(sys, ==, "/run/libvirt/qemu/web1.pid");
	g_assert_cmpstr(unix_sys, ==, "/run/libvirt/qemu/web1.pid");
	g_setenv("XDG_RUNTIME_DIR", "/tmp/xdg-run", TRUE);
	session = vmbc_libvirt_pidfile_path("qemu:///session?socket=/tmp/x/libvirt-sock", "web1");
	g_assert_cmpstr(session, ==, "/tmp/xdg-run/libvirt/qemu/run/web1.pid");
	g_assert_null(vmbc_libvirt_pidfile_path("qemu+ssh://host/system", "web1"));
	g_assert_null(vmbc_libvirt_pidfile_path("test:///default", "web1"));
	g_assert_null(vmbc_libvirt_pidfile_path("qemu:///system", "../../etc/x"));
	g_assert_null(vmbc_libvirt_pidfile_path("not a uri", "web1"));
	if (old != NULL)
		g_setenv("XDG_RUNTIME_DIR", old, TRUE);
	else
		g_unsetenv("XDG_RUNTIME_DIR");
}

static void
test_find_pid_self(void)
{
	g_autoptr(GError) error = NULL;
	pid_t pid;

	/* nothing runs with this uuid */
	pid = vmbc_libvirt_find_qemu_pid("qemu:///system", "no-such-domain-here",
					 "00000000-0000-0000-0000-00000000dead", &error);
	g_assert_cmpint(pid, ==, -1);
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_NOT_FOUND);
	g_assert_nonnull(strstr(error->message, "no-such-domain-here"));
}

/* --- the backend on the test driver ------------------------------------------------ */

typedef struct {
	BackendHost host;
	VmbcBackend *backend;
	virConnectPtr conn; /* the test's own connection to the same test driver */
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	VmbcEngineConfig ec;

	/* reset by GTest before every case */
	g_test_log_set_fatal_handler(on_fatal_log, NULL);
	vmbc_engine_config_init(&ec);
	f->backend = g_object_new(VMBC_TYPE_LIBVIRT_BACKEND, NULL);
	backend_host_init(&f->host, f->backend, "libvirt", &ec);
	backend_host_set(&f->host, "libvirt-uri", "test:///default");
	backend_host_set(&f->host, "stats-interval", "1");
	backend_host_set(&f->host, "smaps-interval", "1s");
	f->conn = virConnectOpen("test:///default");
	g_assert_nonnull(f->conn);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	vmbc_backend_stop(f->backend);
	g_clear_object(&f->backend);
	virConnectClose(f->conn);
	backend_host_clear(&f->host);
}

static gboolean
has_n_vms_1(gpointer data)
{
	Fixture *f = data;
	return vmbc_libvirt_backend_get_n_vms(VMBC_LIBVIRT_BACKEND(f->backend)) == 1;
}

static gboolean
has_n_vms_2(gpointer data)
{
	Fixture *f = data;
	return vmbc_libvirt_backend_get_n_vms(VMBC_LIBVIRT_BACKEND(f->backend)) == 2;
}

static const gchar *xml_extra =
	"<domain type='test'><name>extra</name><memory unit='MiB'>256</memory>"
	"<os><type>hvm</type></os><devices><memballoon model='none'/></devices></domain>";

static void
test_backend_events(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	virDomainPtr dom;
	VmbcBeancounter *bc;
	VmbcBeancounter *extra;

	g_assert_true(vmbc_backend_start(f->backend, &error));
	g_assert_no_error(error);
	/* the test driver's running domain "test" is adopted from the listing */
	g_assert_true(wait_until(has_n_vms_1, f));
	g_assert_true(vmbc_backend_is_up(f->backend));
	bc = vmbc_engine_lookup(f->host.engine, "test");
	g_assert_nonnull(bc);
	g_assert_cmpint(bc->max_pages, >, 0);

	/* a domain started afterwards arrives by its event */
	dom = virDomainCreateXML(f->conn, xml_extra, 0);
	g_assert_nonnull(dom);
	g_assert_true(wait_until(has_n_vms_2, f));
	extra = vmbc_engine_lookup(f->host.engine, "extra");
	g_assert_nonnull(extra);
	g_assert_cmpint(extra->max_pages, ==, 256 * 1024 * 1024 / (gint64)vmbc_page_size());
	g_assert_cmpint(extra->balloon, ==, VMBC_BALLOON_NO_DEVICE);

	/* no balloon: refused at once with a clear error */
	g_assert_false(vmbc_backend_set_balloon(f->backend, extra, 1000, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_NO_BALLOON);
	g_assert_nonnull(strstr(error->message, "model='none'"));
	g_clear_error(&error);

	/* a tick without a QEMU process to measure does nothing harmful */
	vmbc_backend_sample(f->backend, g_get_monotonic_time());

	/* destroyed: gone by its event */
	g_assert_cmpint(virDomainDestroy(dom), ==, 0);
	virDomainFree(dom);
	g_assert_true(wait_until(has_n_vms_1, f));
	g_assert_null(vmbc_engine_lookup(f->host.engine, "extra"));
	g_assert_cmpuint(f->host.removed, ==, 1);
	g_assert_cmpuint(vmbc_libvirt_backend_get_n_connects(VMBC_LIBVIRT_BACKEND(f->backend)), ==,
			 1);
}

static const gchar *xml_ballooned =
	"<domain type='test'><name>gone</name><memory unit='MiB'>256</memory>"
	"<os><type>hvm</type></os><devices><memballoon model='virtio'/></devices></domain>";

static gboolean
gone_is_gone(gpointer data)
{
	Fixture *f = data;
	return vmbc_engine_lookup(f->host.engine, "gone") == NULL;
}

/*
 * A domain destroyed while its balloon request is on the way: it is removed once (by its
 * STOPPED event or by the failed call, whichever comes first) and the late answer is dropped.
 */
static void
test_backend_vanish_mid_call(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	virDomainPtr dom;
	VmbcBeancounter *bc;

	g_assert_true(vmbc_backend_start(f->backend, &error));
	g_assert_true(wait_until(has_n_vms_1, f));
	dom = virDomainCreateXML(f->conn, xml_ballooned, 0);
	g_assert_nonnull(dom);
	g_assert_true(wait_until(has_n_vms_2, f));
	bc = vmbc_engine_lookup(f->host.engine, "gone");
	g_assert_nonnull(bc);
	/* destroyed before the backend hears of it: the request goes to a vanished domain */
	g_assert_cmpint(virDomainDestroy(dom), ==, 0);
	virDomainFree(dom);
	g_assert_true(vmbc_backend_set_balloon(f->backend, bc, 1000, &error));
	g_assert_no_error(error);
	g_assert_true(wait_until(gone_is_gone, f));
	g_assert_true(wait_until(has_n_vms_1, f));
	g_assert_cmpuint(f->host.removed, ==, 1);
}

static void
test_backend_read_only(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	VmbcBeancounter *bc;

	vmbc_libvirt_backend_set_read_only(VMBC_LIBVIRT_BACKEND(f->backend), TRUE);
	g_assert_true(vmbc_backend_start(f->backend, &error));
	g_assert_true(wait_until(has_n_vms_1, f));
	g_assert_true(vmbc_libvirt_backend_is_read_only(VMBC_LIBVIRT_BACKEND(f->backend)));
	bc = vmbc_engine_lookup(f->host.engine, "test");
	g_assert_nonnull(bc);
	g_assert_false(vmbc_backend_set_balloon(f->backend, bc, 1000, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_PERMISSION);
	g_assert_nonnull(strstr(error->message, "read-only"));
	g_assert_nonnull(strstr(error->message, "test:///default"));
	g_clear_error(&error);
	g_assert_false(vmbc_backend_escalate(f->backend, bc, VMBC_ESCALATE_PAUSE, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_PERMISSION);
}

static void
test_backend_describe(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonNode) root = NULL;
	g_autofree gchar *text = NULL;
	VmbcBeancounter *bc;

	g_assert_true(vmbc_backend_start(f->backend, &error));
	g_assert_true(wait_until(has_n_vms_1, f));
	bc = vmbc_engine_lookup(f->host.engine, "test");
	json_builder_begin_object(b);
	vmbc_backend_describe(f->backend, bc, b);
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	text = json_to_string(root, FALSE);
	g_assert_nonnull(strstr(text, "\"uri\":\"test:///default\""));
	g_assert_nonnull(strstr(text, "\"uuid\":\"6695eb01-f6a4-8304-79aa-97f2502e193f\""));
	g_assert_nonnull(strstr(text, "\"connected\":true"));
	g_assert_nonnull(strstr(text, "\"balloon-model\""));
}

static void
test_backend_bad_uri(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	backend_host_set(&f->host, "libvirt-uri", "qemu+unix:///system?socket=/nonexistent/sock");
	/* not fatal: vmbcd waits for libvirtd and says why it cannot connect */
	g_assert_true(vmbc_backend_start(f->backend, &error));
	g_assert_no_error(error);
	for (guint i = 0; i < 300; i++) {
		g_main_context_iteration(NULL, FALSE);
		g_usleep(1000);
	}
	g_assert_false(vmbc_backend_is_up(f->backend));
	g_assert_cmpuint(vmbc_libvirt_backend_get_n_vms(VMBC_LIBVIRT_BACKEND(f->backend)), ==, 0);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	/* the backend's warnings are part of what is tested; criticals stay fatal */
	g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
	g_log_set_handler("vmbc-libvirt-backend", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE,
			  log_as_comment, NULL);
	g_log_set_handler("vmbc-core", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE, log_as_comment,
			  NULL);

	g_test_add_func("/vmbc/libvirt/domain/parse-full", test_parse_full);
	g_test_add_func("/vmbc/libvirt/domain/parse-balloon-variants", test_parse_balloon_variants);
	g_test_add_func("/vmbc/libvirt/domain/parse-bad", test_parse_bad);
	g_test_add_func("/vmbc/libvirt/domain/cmdline", test_cmdline);
	g_test_add_func("/vmbc/libvirt/domain/pidfile-path", test_pidfile_path);
	g_test_add_func("/vmbc/libvirt/domain/find-pid-none", test_find_pid_self);
	g_test_add("/vmbc/libvirt/backend/events", Fixture, NULL, fixture_setup,
		   test_backend_events, fixture_teardown);
	g_test_add("/vmbc/libvirt/backend/stop-mid-call", Fixture, NULL, fixture_setup,
		   test_backend_vanish_mid_call, fixture_teardown);
	g_test_add("/vmbc/libvirt/backend/read-only", Fixture, NULL, fixture_setup,
		   test_backend_read_only, fixture_teardown);
	g_test_add("/vmbc/libvirt/backend/describe", Fixture, NULL, fixture_setup,
		   test_backend_describe, fixture_teardown);
	g_test_add("/vmbc/libvirt/backend/no-libvirtd", Fixture, NULL, fixture_setup,
		   test_backend_bad_uri, fixture_teardown);
	return g_test_run();
}
