/*
 * test-qmp-backend.c: the qmp backend (plugins/qmp) against the real
 * fake-qemu ($FAKE_QEMU). The backend is given the test implementation of
 * its host interface (tests/backend-host.c): a bare engine, its own settings
 * and the clock, so these tests need nothing of vmbcd but that contract.
 */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qmp-client.h"
#include "backend-host.h"
#include "statm-oracle.h"
#include "vmbc-cgroup.h"
#include "vmbc-qmp-backend.h"

#define MIB	 (1024 * 1024)
#define WAIT_MS	 10000
#define PAGES(m) ((gint64)(m)*MIB / (gint64)vmbc_page_size())

/* --- warnings the tests provoke -------------------------------------------- */

static GPtrArray *warnings; /* "domain: message" */
static GPtrArray *infos;    /* the backend's state changes, "message" */

/* The backend's, the engine's and the QMP library's warnings are expected, recorded and checked. */
static void
on_warning(const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer user_data)
{
	g_ptr_array_add(warnings, g_strdup_printf("%s: %s", domain, message));
	g_log_default_handler(domain, level & ~G_LOG_FLAG_FATAL, message, user_data);
}

static void
on_info(const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer user_data)
{
	g_ptr_array_add(infos, g_strdup(message));
	g_log_default_handler(domain, level, message, user_data);
}

static guint
count_infos(const gchar *needle)
{
	guint n = 0;

	for (guint i = 0; i < infos->len; i++)
		if (strstr(g_ptr_array_index(infos, i), needle) != NULL)
			n++;
	return n;
}

static guint
count_warnings(const gchar *needle1, const gchar *needle2)
{
	guint n = 0;

	for (guint i = 0; i < warnings->len; i++) {
		const gchar *w = g_ptr_array_index(warnings, i);
		if (strstr(w, needle1) != NULL && (needle2 == NULL || strstr(w, needle2) != NULL))
			n++;
	}
	return n;
}

/* --- fixture --------------------------------------------------------------- */

typedef struct {
	GSubprocess *proc;
	GDataInputStream *out;
	pid_t pid;
	gchar *sock;
	QmpClient *client; /* the test's own connection, to drive the pretend guest */
} Fake;

typedef struct {
	gchar *tmpdir;
	BackendHost host;
	VmbcQmpBackend *backend;
	GPtrArray *fakes;
} Fixture;

static void
fake_free(Fake *fake)
{
	if (fake->client != NULL) {
		qmp_client_close(fake->client);
		g_clear_object(&fake->client);
	}
	if (fake->proc != NULL) {
		g_subprocess_send_signal(fake->proc, SIGTERM);
		g_subprocess_wait(fake->proc, NULL, NULL);
		g_clear_object(&fake->proc);
	}
	g_clear_object(&fake->out);
	if (fake->sock != NULL)
		(void)g_unlink(fake->sock);
	g_free(fake->sock);
	g_free(fake);
}

static void
fixture_setup(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	VmbcEngineConfig ecfg;

	fx->tmpdir = g_dir_make_tmp("vmbc-qmp-backend-XXXXXX", &error);
	g_assert_no_error(error);
	fx->fakes = g_ptr_array_new_with_free_func((GDestroyNotify)fake_free);
	vmbc_engine_config_init(&ecfg);
	/* these tests measure at every sample they ask for; test-schedule.c tests the schedule */
	ecfg.growth_ceiling_pages = 0;
	fx->backend = g_object_new(VMBC_TYPE_QMP_BACKEND, NULL);
	backend_host_init(&fx->host, VMBC_BACKEND(fx->backend), "qmp", &ecfg);
	{
		g_autofree gchar *globs =
			g_strdup_printf("%s/*.qmp;%s/*/qmp.sock", fx->tmpdir, fx->tmpdir);
		g_autofree gchar *cgroup = g_build_filename(fx->tmpdir, "cgroup", NULL);

		backend_host_set(&fx->host, "qmp-sockets", globs);
		backend_host_set(&fx->host, "smaps-interval", "10s");
		backend_host_set(&fx->host, "stats-interval", "1");
		backend_host_set(&fx->host, "rescan-interval", "60s"); /* tests rescan by hand */
		/* memory.high is only ever written in a tree the test builds (fake_cgroup()) */
		backend_host_set(&fx->host, "cgroup-root", cgroup);
	}
	g_ptr_array_set_size(warnings, 0);
	g_ptr_array_set_size(infos, 0);
}

static void
rm_rf(const gchar *path)
{
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	const gchar *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *child = g_build_filename(path, name, NULL);
		if (g_file_test(child, G_FILE_TEST_IS_DIR) &&
		    !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
			rm_rf(child);
		else
			(void)g_unlink(child);
	}
	(void)g_rmdir(path);
}

static void
fixture_teardown(Fixture *fx, gconstpointer data)
{
	vmbc_backend_stop(VMBC_BACKEND(fx->backend));
	g_clear_object(&fx->backend);
	g_ptr_array_unref(fx->fakes);
	backend_host_clear(&fx->host);
	/* let closed connections finish their callbacks */
	while (g_main_context_iteration(NULL, FALSE))
		;
	rm_rf(fx->tmpdir);
	g_free(fx->tmpdir);
}

/* Starts fake-qemu on @sock_name in the temp dir; NULL-terminated extra arguments. */
static Fake *
spawn(Fixture *fx, const gchar *sock_name, gint64 mem_mib, ...)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_autofree gchar *line = NULL;
	g_autofree gchar *dir = NULL;
	const gchar *exe = g_getenv("FAKE_QEMU");
	Fake *fake = g_new0(Fake, 1);
	const gchar *arg;
	va_list ap;

	g_assert_nonnull(exe);
	fake->sock = g_build_filename(fx->tmpdir, sock_name, NULL);
	dir = g_path_get_dirname(fake->sock);
	g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
	g_ptr_array_add(argv, g_strdup(exe));
	g_ptr_array_add(argv, g_strdup("--qmp"));
	g_ptr_array_add(argv, g_strdup(fake->sock));
	g_ptr_array_add(argv, g_strdup("--mem-mib"));
	g_ptr_array_add(argv, g_strdup_printf("%" G_GINT64_FORMAT, mem_mib));
	/* a test that aborts takes its fakes with it */
	g_ptr_array_add(argv, g_strdup("--die-with-parent"));
	va_start(ap, mem_mib);
	while ((arg = va_arg(ap, const gchar *)) != NULL)
		g_ptr_array_add(argv, g_strdup(arg));
	va_end(ap);
	g_ptr_array_add(argv, NULL);

	fake->proc = g_subprocess_newv((const gchar *const *)argv->pdata,
				       G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
	g_assert_no_error(error);
	g_ptr_array_add(fx->fakes, fake);
	fake->out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(fake->proc));
	line = g_data_input_stream_read_line(fake->out, NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_nonnull(line);
	g_assert_true(g_str_has_suffix(line, " ready"));
	fake->pid = (pid_t)g_ascii_strtoll(line, NULL, 10);

	fake->client = qmp_client_new();
	qmp_client_set_timeout(fake->client, WAIT_MS);
	g_assert_true(qmp_client_connect_sync(fake->client, fake->sock, NULL, &error));
	g_assert_no_error(error);
	return fake;
}

static JsonNode *
fake_execute(Fake *fake, const gchar *command, const gchar *args_json)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) args = NULL;
	JsonNode *ret;

	if (args_json != NULL) {
		args = json_from_string(args_json, &error);
		g_assert_no_error(error);
	}
	ret = qmp_client_execute_sync(fake->client, command,
				      args != NULL ? json_node_get_object(args) : NULL, NULL,
				      &error);
	g_assert_no_error(error);
	return ret;
}

static gint64
fake_state(Fake *fake, const gchar *member)
{
	g_autoptr(JsonNode) ret = fake_execute(fake, "x-fake-state", NULL);
	return json_object_get_int_member(json_node_get_object(ret), member);
}

typedef gboolean (*CondFunc)(Fixture *fx, gpointer data);

static gboolean
on_wake(gpointer user_data)
{
	*(gboolean *)user_data = TRUE;
	return G_SOURCE_REMOVE;
}

/* Runs the main loop, sampling every 100 ms as the daemon's tick would, until @cond holds. */
static gboolean
run_until(Fixture *fx, CondFunc cond, gpointer data, guint timeout_ms)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

	while (!cond(fx, data)) {
		gboolean woke = FALSE;
		guint id;

		if (g_get_monotonic_time() > deadline)
			return FALSE;
		id = g_timeout_add(100, on_wake, &woke);
		while (!woke && !cond(fx, data))
			g_main_context_iteration(NULL, TRUE);
		if (!woke)
			g_source_remove(id);
		vmbc_backend_sample(VMBC_BACKEND(fx->backend), g_get_monotonic_time());
	}
	return TRUE;
}

static gboolean
n_vms_is(Fixture *fx, gpointer data)
{
	return vmbc_qmp_backend_get_n_vms(fx->backend) == GPOINTER_TO_UINT(data);
}

static void
wait_vms(Fixture *fx, guint n)
{
	g_assert_true(run_until(fx, n_vms_is, GUINT_TO_POINTER(n), WAIT_MS));
}

static void
start(Fixture *fx)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(vmbc_backend_start(VMBC_BACKEND(fx->backend), &error));
	g_assert_no_error(error);
}

static JsonObject *
describe(Fixture *fx, VmbcBeancounter *bc)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonNode) root = NULL;

	json_builder_begin_object(b);
	vmbc_backend_describe(VMBC_BACKEND(fx->backend), bc, b);
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	return json_object_ref(json_node_get_object(root));
}

/* Runs the main loop until @n VMs are adopted, without sampling: the test samples them itself. */
static void
wait_vms_unsampled(Fixture *fx, guint n)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)WAIT_MS * 1000;

	while (vmbc_qmp_backend_get_n_vms(fx->backend) != n) {
		gboolean woke = FALSE;
		guint id = g_timeout_add(100, on_wake, &woke);

		while (!woke && vmbc_qmp_backend_get_n_vms(fx->backend) != n)
			g_main_context_iteration(NULL, TRUE);
		if (!woke)
			g_source_remove(id);
		g_assert_cmpint(g_get_monotonic_time(), <=, deadline);
	}
}

/* What statm said of a process just before and just after a sample. */
typedef struct {
	gint64 lo;
	gint64 hi;
} Bracket;

/*
 * Samples every VM once, reading @pid's resident pages right before and right
 * after: the sampler's own statm read lies between the two. A fake's memory
 * only moves while it handles a command, and the only one the test has not
 * waited for is the stats poll a sample sends after it has read /proc; if the
 * fake handles it during a bracket, the sampler's read is still between the
 * bracket's two (before or after that handling, whose allocations are done by
 * the time it answers).
 */
static void
sample_bracketed(Fixture *fx, pid_t pid, Bracket *resident)
{
	gint64 before = statm_oracle_resident(pid);
	gint64 after;

	vmbc_backend_sample(VMBC_BACKEND(fx->backend), g_get_monotonic_time());
	after = statm_oracle_resident(pid);
	resident->lo = MIN(before, after);
	resident->hi = MAX(before, after);
}

/* --- tests ----------------------------------------------------------------- */

static void
test_adopt(Fixture *fx, gconstpointer data)
{
	Fake *fake = spawn(fx, "web1.qmp", 256, "--anon-mib", "48", "--actual-mib", "200", NULL);
	g_autoptr(JsonObject) desc = NULL;
	VmbcBeancounter *bc;
	gint64 page = (gint64)vmbc_page_size();
	/* the guest mapping's Rss as the fake measures it (mincore): still until the touch */
	gint64 guest0 = fake_state(fake, "rss-measured") / page;
	gint64 guest1;
	gint64 held0, vmm0;
	Bracket at0, at1;
	gint64 target_before = fake_state(fake, "balloon-target");

	start(fx);
	wait_vms_unsampled(fx, 1);
	bc = vmbc_engine_lookup(fx->host.engine, "web1");
	g_assert_nonnull(bc);
	g_assert_cmpint(bc->max_pages, ==, PAGES(256));
	g_assert_cmpint(bc->free_page_reporting, ==, 1);
	g_assert_cmpint(bc->balloon, !=, VMBC_BALLOON_NO_DEVICE);

	/* adopted as it is: actual read, no balloon request sent */
	g_assert_cmpint(bc->balloon_actual, ==, PAGES(200));
	g_assert_cmpint(bc->balloon_target, ==, -1);
	g_assert_cmpuint(fx->host.actuator_calls, ==, 0);
	g_assert_cmpint(fake_state(fake, "balloon-target"), ==, target_before);

	desc = describe(fx, bc);
	g_assert_cmpint(json_object_get_int_member(desc, "pid"), ==, fake->pid);
	g_assert_cmpstr(json_object_get_string_member(desc, "qmp-socket"), ==, fake->sock);
	g_assert_cmpstr(json_object_get_string_member(desc, "balloon-device"), ==,
			"/machine/peripheral/balloon0");
	g_assert_true(vmbc_backend_is_up(VMBC_BACKEND(fx->backend)));

	/*
	 * held comes from /proc: the guest's resident pages, apart from the VMM's.
	 * The first sample splits with smaps: held is the guest mapping's own Rss
	 * exactly, and the rest of what statm says is the VMM's.
	 */
	sample_bracketed(fx, fake->pid, &at0);
	held0 = bc->parm[VMBC_RES_PHYSPAGES].held;
	vmm0 = bc->parm[VMBC_RES_VMMPAGES].held;
	g_assert_cmpint(held0, ==, guest0);
	g_assert_cmpint(vmm0, >=, at0.lo - guest0);
	g_assert_cmpint(vmm0, <=, at0.hi - guest0);
	g_assert_cmpint(vmm0, >, 0);

	{
		g_autoptr(JsonNode) ret =
			fake_execute(fake, "x-fake-touch", "{\"mib\": 32, \"kind\": \"cache\"}");
		guest1 = json_object_get_int_member(json_node_get_object(ret), "rss-measured") /
			 page;
	}
	g_assert_cmpint(guest1, >=, PAGES(80));
	sample_bracketed(fx, fake->pid, &at1);
	/*
	 * statm moved by far more than 1 % of the guest, so the sampler read the
	 * guest mapping alone again (pagemap): held is its Rss exactly, whatever
	 * the VMM grew meanwhile (the fake's allocator and, in a sanitizer build,
	 * the sanitizer's shadow memory and quarantine), and that growth is the
	 * VMM's: its share lies within the statm bracket less the guest's.
	 */
	g_test_message("guest %" G_GINT64_FORMAT " -> %" G_GINT64_FORMAT
		       " pages; the VMM %" G_GINT64_FORMAT " -> %" G_GINT64_FORMAT,
		       guest0, guest1, vmm0, bc->parm[VMBC_RES_VMMPAGES].held);
	g_assert_cmpint(bc->parm[VMBC_RES_PHYSPAGES].held, ==, guest1);
	g_assert_cmpint(bc->parm[VMBC_RES_VMMPAGES].held, >=, at1.lo - guest1);
	g_assert_cmpint(bc->parm[VMBC_RES_VMMPAGES].held, <=, at1.hi - guest1);

	/* the stats polling interval was set on the device */
	{
		g_autoptr(JsonNode) ret =
			fake_execute(fake, "qom-get",
				     "{\"path\": \"/machine/peripheral/balloon0\", "
				     "\"property\": \"guest-stats-polling-interval\"}");
		g_assert_cmpint(json_node_get_int(ret), ==, 1);
	}
	g_assert_cmpuint(warnings->len, ==, 0);
}

static gboolean
actual_is(Fixture *fx, gpointer data)
{
	VmbcBeancounter *bc = vmbc_engine_lookup(fx->host.engine, "vm1");
	return bc != NULL && bc->balloon_actual == *(gint64 *)data;
}

static gboolean
stats_came(Fixture *fx, gpointer data)
{
	VmbcBeancounter *bc = vmbc_engine_lookup(fx->host.engine, "vm1");
	return bc != NULL && bc->stats.last_update > 0;
}

static void
test_balloon_and_stats(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	VmbcBeancounter *bc;
	gint64 want = PAGES(160);

	spawn(fx, "vm1.qmp", 256, "--anon-mib", "40", "--cache-mib", "20", NULL);
	start(fx);
	wait_vms(fx, 1);
	bc = vmbc_engine_lookup(fx->host.engine, "vm1");
	g_assert_cmpint(bc->balloon_actual, ==, PAGES(256));

	g_assert_true(vmbc_backend_set_balloon(VMBC_BACKEND(fx->backend), bc, want, &error));
	g_assert_no_error(error);
	g_assert_true(run_until(fx, actual_is, &want, WAIT_MS));
	g_assert_cmpint(bc->balloon, ==, VMBC_BALLOON_OK);

	g_assert_true(run_until(fx, stats_came, NULL, WAIT_MS));
	g_assert_cmpint(bc->stats.total, >, 0);
	g_assert_cmpint(bc->stats.total, <=, PAGES(256));
	g_assert_cmpint(bc->stats.available, >, 0);
	g_assert_cmpint(bc->stats.caches, >=, 0);

	/* an invalid target is refused before anything is sent */
	g_assert_false(vmbc_backend_set_balloon(VMBC_BACKEND(fx->backend), bc, 0, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_INVALID);
	g_assert_cmpuint(warnings->len, ==, 0);
}

static gboolean
stats_unset_seen(Fixture *fx, gpointer data)
{
	return g_get_monotonic_time() > *(gint64 *)data;
}

static void
test_stats_unset(Fixture *fx, gconstpointer data)
{
	VmbcBeancounter *bc;
	gint64 until;

	spawn(fx, "vm1.qmp", 128, "--stats-unset", NULL);
	start(fx);
	wait_vms(fx, 1);
	bc = vmbc_engine_lookup(fx->host.engine, "vm1");
	until = g_get_monotonic_time() + 2500 * 1000;
	g_assert_true(run_until(fx, stats_unset_seen, &until, WAIT_MS));
	/* 18446744073709551615 everywhere is "not reported", never a number */
	g_assert_cmpint(bc->stats.available, ==, -1);
	g_assert_cmpint(bc->stats.total, ==, -1);
	g_assert_cmpint(bc->stats.free, ==, -1);
	g_assert_cmpuint(count_warnings("vm1", NULL), ==, 0);
}

static gboolean
balloon_state_is(Fixture *fx, gpointer data)
{
	VmbcBeancounter *bc = vmbc_engine_lookup(fx->host.engine, "nb");
	return bc != NULL && bc->balloon == (VmbcBalloonState)GPOINTER_TO_INT(data);
}

static void
test_no_balloon_device(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) desc = NULL;
	VmbcBeancounter *bc;

	spawn(fx, "nb.qmp", 64, "--no-balloon-device", NULL);
	start(fx);
	wait_vms(fx, 1);
	bc = vmbc_engine_lookup(fx->host.engine, "nb");
	g_assert_nonnull(bc);
	g_assert_cmpint(bc->balloon, ==, VMBC_BALLOON_NO_DEVICE);
	g_assert_cmpint(bc->balloon_actual, ==, -1);
	g_assert_cmpint(bc->free_page_reporting, ==, -1);
	desc = describe(fx, bc);
	g_assert_true(json_object_get_null_member(desc, "balloon-device"));
	g_assert_cmpuint(count_warnings("vmbc-core", "no-device"), ==, 1);

	/* a request is sent; QEMU's DeviceNotActive comes back asynchronously */
	bc->balloon = VMBC_BALLOON_UNKNOWN;
	g_assert_true(vmbc_backend_set_balloon(VMBC_BACKEND(fx->backend), bc, PAGES(32), &error));
	g_assert_no_error(error);
	g_assert_true(
		run_until(fx, balloon_state_is, GINT_TO_POINTER(VMBC_BALLOON_NO_DEVICE), WAIT_MS));
}

static gboolean
vm_gone(Fixture *fx, gpointer data)
{
	return vmbc_engine_lookup(fx->host.engine, data) == NULL;
}

static void
test_faults(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	Fake *junk = spawn(fx, "junk.qmp", 64, NULL);
	Fake *dies = spawn(fx, "dies.qmp", 64, NULL);
	VmbcBeancounter *bc;

	spawn(fx, "ok.qmp", 64, "--anon-mib", "8", NULL);
	start(fx);
	wait_vms(fx, 3);

	/*
	 * Garbage on the backend's connection after its next command: a
	 * balloon request, or a stats poll if one goes out while the test
	 * waits for x-fake-set (then the VM may be gone already).
	 */
	{
		g_autoptr(JsonNode) ret =
			fake_execute(junk, "x-fake-set", "{\"fault\": \"garbage\"}");
	}
	bc = vmbc_engine_lookup(fx->host.engine, "junk");
	if (bc != NULL) {
		g_assert_true(
			vmbc_backend_set_balloon(VMBC_BACKEND(fx->backend), bc, PAGES(32), &error));
		g_assert_no_error(error);
	}
	g_assert_true(run_until(fx, vm_gone, (gpointer) "junk", WAIT_MS));
	g_assert_cmpuint(count_warnings("'junk'", "dropped"), ==, 1);

	/* QEMU exits in the middle of the balloon command */
	{
		g_autoptr(JsonNode) ret =
			fake_execute(dies, "x-fake-set", "{\"exit-on\": \"balloon\"}");
	}
	bc = vmbc_engine_lookup(fx->host.engine, "dies");
	g_assert_true(vmbc_backend_set_balloon(VMBC_BACKEND(fx->backend), bc, PAGES(32), &error));
	g_assert_no_error(error);
	g_assert_true(run_until(fx, vm_gone, (gpointer) "dies", WAIT_MS));
	g_assert_cmpuint(count_warnings("'dies'", "dropped"), ==, 1);
	g_assert_cmpint(g_subprocess_get_exit_status(
				(g_subprocess_wait(dies->proc, NULL, NULL), dies->proc)),
			==, 3);

	/* the others keep working */
	g_assert_nonnull(vmbc_engine_lookup(fx->host.engine, "ok"));
	vmbc_backend_sample(VMBC_BACKEND(fx->backend), g_get_monotonic_time());
	g_assert_cmpint(vmbc_engine_lookup(fx->host.engine, "ok")->parm[VMBC_RES_PHYSPAGES].held,
			>=, PAGES(8));

	/* the next rescan takes the sane socket back; the dead one's socket is gone */
	vmbc_qmp_backend_rescan(fx->backend);
	wait_vms(fx, 2);
	g_assert_nonnull(vmbc_engine_lookup(fx->host.engine, "junk"));
	g_assert_null(vmbc_engine_lookup(fx->host.engine, "dies"));
}

static void
test_vanish(Fixture *fx, gconstpointer data)
{
	Fake *fake = spawn(fx, "gone.qmp", 64, NULL);
	guint refused;

	spawn(fx, "stays.qmp", 64, NULL);
	start(fx);
	wait_vms(fx, 2);

	/* SIGKILL: no goodbye, the socket file stays behind */
	qmp_client_close(fake->client);
	g_subprocess_force_exit(fake->proc);
	g_subprocess_wait(fake->proc, NULL, NULL);
	g_assert_true(run_until(fx, vm_gone, (gpointer) "gone", WAIT_MS));
	g_assert_nonnull(vmbc_engine_lookup(fx->host.engine, "stays"));
	g_assert_true(g_file_test(fake->sock, G_FILE_TEST_EXISTS));

	/* the stale socket refuses connections: warned about once, not every rescan */
	vmbc_qmp_backend_rescan(fx->backend);
	run_until(fx, n_vms_is, GUINT_TO_POINTER(99), 500);
	refused = count_warnings("gone.qmp", "dropped");
	vmbc_qmp_backend_rescan(fx->backend);
	run_until(fx, n_vms_is, GUINT_TO_POINTER(99), 500);
	g_assert_cmpuint(count_warnings("gone.qmp", "dropped"), ==, refused);
	g_assert_cmpuint(vmbc_qmp_backend_get_n_vms(fx->backend), ==, 1);

	/* the socket file removed: forgotten */
	(void)g_unlink(fake->sock);
	vmbc_qmp_backend_rescan(fx->backend);
	g_assert_cmpuint(vmbc_qmp_backend_get_n_vms(fx->backend), ==, 1);
}

/*
 * Builds, under the configured cgroup root, the cgroup v2 directory of @pid as
 * the backend finds it: /proc/PID/cgroup's "0::/path" below the root, or below
 * root/unified for a hybrid layout (the root then has no cgroup.controllers).
 * Returns that directory's memory.high, holding "max", or NULL when @pid has no
 * cgroup v2 entry at all (a host with cgroup v1 only).
 */
static gchar *
fake_cgroup(Fixture *fx, pid_t pid, gboolean hybrid)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *proc = g_strdup_printf("/proc/%d/cgroup", (int)pid);
	g_autofree gchar *text = NULL;
	g_autofree gchar *top = NULL;
	g_autofree gchar *dir = NULL;
	g_autofree gchar *controllers = NULL;
	g_autofree gchar *file = NULL;
	g_auto(GStrv) lines = NULL;
	const gchar *path = NULL;

	g_assert_true(g_file_get_contents(proc, &text, NULL, &error));
	g_assert_no_error(error);
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL && path == NULL; i++)
		if (g_str_has_prefix(lines[i], "0::/"))
			path = lines[i] + 3;
	if (path == NULL)
		return NULL;

	rm_rf(vmbc_settings_get_string(fx->host.settings, "cgroup-root"));
	top = hybrid ? g_build_filename(vmbc_settings_get_string(fx->host.settings, "cgroup-root"),
					"unified", NULL)
		     : g_strdup(vmbc_settings_get_string(fx->host.settings, "cgroup-root"));
	dir = g_build_filename(top, path, NULL);
	g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
	/* a cgroup v2 mount has cgroup.controllers; a hybrid host's top (v1 mounts) has none */
	if (!hybrid) {
		controllers = g_build_filename(top, "cgroup.controllers", NULL);
		g_assert_true(g_file_set_contents(controllers, "cpu memory pids\n", -1, &error));
	}
	file = g_build_filename(dir, "memory.high", NULL);
	g_assert_true(g_file_set_contents(file, "max\n", -1, &error));
	g_assert_no_error(error);
	return g_steal_pointer(&file);
}

static gchar *
read_text(const gchar *path)
{
	g_autoptr(GError) error = NULL;
	gchar *text = NULL;

	g_assert_true(g_file_get_contents(path, &text, NULL, &error));
	g_assert_no_error(error);
	return text;
}

/* What memory.high must hold for @bc: its physpages limit plus what its VMM holds, in bytes. */
static gchar *
memory_high_for(VmbcBeancounter *bc)
{
	gint64 vmm = bc->parm[VMBC_RES_VMMPAGES].held;

	/* a VMM of 0 pages would not tell the limit alone from the sum */
	g_assert_cmpint(vmm, >, 0);
	return g_strdup_printf("%" G_GINT64_FORMAT, (bc->parm[VMBC_RES_PHYSPAGES].limit + vmm) *
							    (gint64)vmbc_page_size());
}

static gboolean
escalate(Fixture *fx, VmbcBeancounter *bc, VmbcEscalation how, GError **error)
{
	return vmbc_backend_escalate(VMBC_BACKEND(fx->backend), bc, how, error);
}

static void
test_escalate(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *file = NULL;
	g_autofree gchar *want = NULL;
	g_autofree gchar *text = NULL;
	Fake *fake;
	VmbcBeancounter *bc;
	VmbcParm *phys;

	fake = spawn(fx, "esc.qmp", 64, "--anon-mib", "8", NULL);
	start(fx);
	wait_vms(fx, 1);
	bc = vmbc_engine_lookup(fx->host.engine, "esc");
	phys = &bc->parm[VMBC_RES_PHYSPAGES];
	/* one sample: the VMM's pages are known from smaps */
	vmbc_backend_sample(VMBC_BACKEND(fx->backend), g_get_monotonic_time());

	/* fake-qemu has no "stop": the failure comes back asynchronously, named */
	g_assert_true(escalate(fx, bc, VMBC_ESCALATE_PAUSE, &error));
	g_assert_no_error(error);
	run_until(fx, n_vms_is, GUINT_TO_POINTER(99), 500);
	g_assert_cmpuint(count_warnings("'esc'", "cannot pause"), ==, 1);

	file = fake_cgroup(fx, fake->pid, FALSE);
	if (file == NULL) {
		/* the error still names what could not be done, and for which VM */
		phys->limit = PAGES(32);
		g_assert_false(escalate(fx, bc, VMBC_ESCALATE_MEMORY_HIGH, &error));
		g_assert_error(error, VMBC_ERROR, VMBC_ERROR_FAILED);
		g_assert_nonnull(strstr(error->message, "memory.high"));
		g_assert_nonnull(strstr(error->message, "'esc'"));
		g_test_skip("/proc/PID/cgroup has no cgroup v2 (0::) line on this host: "
			    "memory.high values not checked");
		return;
	}
	g_assert_true(g_str_has_prefix(file, fx->tmpdir));

	/* the escalation: the limit plus what the VMM holds now, in bytes */
	phys->limit = PAGES(32);
	want = memory_high_for(bc);
	g_assert_true(escalate(fx, bc, VMBC_ESCALATE_MEMORY_HIGH, &error));
	g_assert_no_error(error);
	text = read_text(file);
	g_assert_cmpstr(text, ==, want);

	/* the limit went up: the new value is written */
	phys->limit = PAGES(48);
	g_clear_pointer(&want, g_free);
	want = memory_high_for(bc);
	g_assert_true(escalate(fx, bc, VMBC_ESCALATE_MEMORY_HIGH_RAISE, &error));
	g_assert_no_error(error);
	g_clear_pointer(&text, g_free);
	text = read_text(file);
	g_assert_cmpstr(text, ==, want);

	/* a raise never lowers it: a lower limit leaves the value as it is */
	phys->limit = PAGES(16);
	g_assert_true(escalate(fx, bc, VMBC_ESCALATE_MEMORY_HIGH_RAISE, &error));
	g_assert_no_error(error);
	g_clear_pointer(&text, g_free);
	text = read_text(file);
	g_assert_cmpstr(text, ==, want);

	/* the limit removed: lifted to max */
	phys->limit = VMBC_UNLIMITED;
	g_assert_true(escalate(fx, bc, VMBC_ESCALATE_MEMORY_HIGH_RAISE, &error));
	g_assert_no_error(error);
	g_clear_pointer(&text, g_free);
	text = read_text(file);
	g_assert_cmpstr(text, ==, "max");

	/* lifted to max by hand: left alone, and the caller told so (NOT_FOUND) */
	g_assert_true(g_file_set_contents(file, "max\n", -1, &error));
	phys->limit = PAGES(40);
	g_assert_false(escalate(fx, bc, VMBC_ESCALATE_MEMORY_HIGH_RAISE, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_NOT_FOUND);
	g_assert_nonnull(strstr(error->message, "'esc'"));
	g_assert_nonnull(strstr(error->message, "memory.high"));
	g_clear_error(&error);
	g_clear_pointer(&text, g_free);
	text = read_text(file);
	g_assert_cmpstr(text, ==, "max\n");

	/* a hybrid host: the v2 tree is under unified/ */
	g_clear_pointer(&file, g_free);
	file = fake_cgroup(fx, fake->pid, TRUE);
	g_assert_nonnull(strstr(file, G_DIR_SEPARATOR_S "unified" G_DIR_SEPARATOR_S));
	g_clear_pointer(&want, g_free);
	want = memory_high_for(bc);
	g_assert_true(escalate(fx, bc, VMBC_ESCALATE_MEMORY_HIGH, &error));
	g_assert_no_error(error);
	g_clear_pointer(&text, g_free);
	text = read_text(file);
	g_assert_cmpstr(text, ==, want);

	/* auto, the default: memory-high where the cgroup has memory.high */
	g_assert_true(g_file_set_contents(file, "max\n", -1, &error));
	g_assert_true(escalate(fx, bc, VMBC_ESCALATE_AUTO, &error));
	g_assert_no_error(error);
	g_clear_pointer(&text, g_free);
	text = read_text(file);
	g_assert_cmpstr(text, ==, want);

	/* a cgroup without memory.high (no memory controller there): named, nothing created */
	g_assert_cmpint(g_unlink(file), ==, 0);
	/* auto says why nothing can hold the VM, and what the operator can choose */
	g_assert_false(escalate(fx, bc, VMBC_ESCALATE_AUTO, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_FAILED);
	g_assert_nonnull(strstr(error->message, "'esc'"));
	g_assert_nonnull(strstr(error->message, "no cgroup v2 memory controller for its QEMU"));
	g_assert_nonnull(strstr(error->message, "set escalation = pause"));
	g_clear_error(&error);
	g_assert_false(g_file_test(file, G_FILE_TEST_EXISTS));
	g_assert_false(escalate(fx, bc, VMBC_ESCALATE_MEMORY_HIGH, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_FAILED);
	g_assert_nonnull(strstr(error->message, "'esc'"));
	g_assert_nonnull(strstr(error->message, "memory.high"));
	g_assert_nonnull(strstr(error->message, "does not exist"));
	g_clear_error(&error);
	g_assert_false(g_file_test(file, G_FILE_TEST_EXISTS));
	g_assert_false(escalate(fx, bc, VMBC_ESCALATE_MEMORY_HIGH_RAISE, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_FAILED);
	g_assert_nonnull(strstr(error->message, "'esc'"));
	g_assert_nonnull(strstr(error->message, "memory.high"));
	g_assert_false(g_file_test(file, G_FILE_TEST_EXISTS));
}

/*
 * vmbc_backend_up{backend="qmp"}: up while every directory the globs start
 * from can be read at the last rescan. A missing one (also at start) or a
 * file in its place is down, said once; readable again, up, said once.
 * (Root reads a directory of mode 0000, so a removed one is the test here.)
 */
static void
test_up(Fixture *fx, gconstpointer data)
{
	VmbcBackend *backend = VMBC_BACKEND(fx->backend);
	g_autofree gchar *socks = g_build_filename(fx->tmpdir, "socks", NULL);

	{
		g_autofree gchar *globs = g_strdup_printf("%s/*.qmp;%s/*.qmp", fx->tmpdir, socks);
		backend_host_set(&fx->host, "qmp-sockets", globs);
	}

	/* missing at start: down, and the VMs of the other glob are still found */
	spawn(fx, "ok.qmp", 64, NULL);
	g_assert_true(vmbc_backend_is_up(backend));
	start(fx);
	g_assert_false(vmbc_backend_is_up(backend));
	g_assert_cmpuint(count_warnings("qmp backend is down", socks), ==, 1);
	wait_vms(fx, 1);

	/* the directory appears: up at the next rescan, and its VMs are found */
	spawn(fx, "socks/a.qmp", 64, NULL);
	vmbc_qmp_backend_rescan(fx->backend);
	g_assert_true(vmbc_backend_is_up(backend));
	g_assert_cmpuint(count_infos("qmp backend is up again"), ==, 1);
	wait_vms(fx, 2);

	/* removed: down, warned about once however many rescans see it */
	rm_rf(socks);
	vmbc_qmp_backend_rescan(fx->backend);
	g_assert_false(vmbc_backend_is_up(backend));
	vmbc_qmp_backend_rescan(fx->backend);
	g_assert_false(vmbc_backend_is_up(backend));
	g_assert_cmpuint(count_warnings("qmp backend is down", socks), ==, 2);
	/* an adopted VM keeps its connection without its socket file */
	g_assert_cmpuint(vmbc_qmp_backend_get_n_vms(fx->backend), ==, 2);

	/* a regular file where the directory was: still down */
	g_assert_true(g_file_set_contents(socks, "", 0, NULL));
	vmbc_qmp_backend_rescan(fx->backend);
	g_assert_false(vmbc_backend_is_up(backend));
	g_assert_cmpuint(count_warnings("qmp backend is down", socks), ==, 2);

	/* a directory again: up */
	g_assert_cmpint(g_unlink(socks), ==, 0);
	g_assert_cmpint(g_mkdir(socks, 0700), ==, 0);
	vmbc_qmp_backend_rescan(fx->backend);
	g_assert_true(vmbc_backend_is_up(backend));
	g_assert_cmpuint(count_infos("qmp backend is up again"), ==, 2);
	g_assert_cmpuint(count_warnings("qmp backend is down", NULL), ==, 2);
}

static void
test_name_clash(Fixture *fx, gconstpointer data)
{
	spawn(fx, "a/qmp.sock", 64, NULL);
	spawn(fx, "b/qmp.sock", 64, NULL);
	start(fx);
	wait_vms(fx, 2);
	g_assert_nonnull(vmbc_engine_lookup(fx->host.engine, "qmp"));
	g_assert_true(vmbc_engine_lookup(fx->host.engine, "a-qmp") != NULL ||
		      vmbc_engine_lookup(fx->host.engine, "b-qmp") != NULL);
}

static void
test_stop_leaves_balloon(Fixture *fx, gconstpointer data)
{
	Fake *fake = spawn(fx, "keep.qmp", 128, "--actual-mib", "100", NULL);
	gint64 target = fake_state(fake, "balloon-target");

	start(fx);
	wait_vms(fx, 1);
	vmbc_backend_stop(VMBC_BACKEND(fx->backend));
	g_assert_cmpuint(vmbc_qmp_backend_get_n_vms(fx->backend), ==, 0);
	/* a second daemon adopts it again, and nothing in the guest moved */
	start(fx);
	wait_vms(fx, 1);
	g_assert_cmpint(fake_state(fake, "balloon-target"), ==, target);
	g_assert_cmpint(fake_state(fake, "actual"), ==, 100 * MIB);
}

/* The limit went up after a memory.high escalation: what is raised, left, or refused. */
static void
test_memory_high_raises(void)
{
	static const struct {
		const gchar *now;
		const gchar *value;
		gboolean raises;
		gint code; /* -1: no error */
	} cases[] = {
		{"268435456\n", "536870912", TRUE, -1},
		{"536870912\n", "536870912", FALSE, -1},
		{"1073741824\n", "536870912", FALSE, -1}, /* set higher by hand: not lowered */
		{"268435456\n", "max", TRUE, -1},	  /* the limit was removed: lifted */
		{"max\n", "max", FALSE, -1},
		{"max\n", "536870912", FALSE, VMBC_ERROR_NOT_FOUND}, /* lifted by hand */
		{"garbage\n", "536870912", FALSE, VMBC_ERROR_FAILED},
		{"268435456\n", "", FALSE, VMBC_ERROR_INVALID},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		gboolean raises =
			vmbc_cgroup_memory_high_raises(cases[i].now, cases[i].value, &error);

		g_test_message("memory.high %s -> %s", cases[i].now, cases[i].value);
		g_assert_cmpint(raises, ==, cases[i].raises);
		if (cases[i].code < 0) {
			g_assert_no_error(error);
		} else {
			g_assert_error(error, VMBC_ERROR, cases[i].code);
			g_assert_nonnull(error->message);
		}
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	warnings = g_ptr_array_new_with_free_func(g_free);
	infos = g_ptr_array_new_with_free_func(g_free);
	/* warnings are checked by count_warnings(), criticals stay fatal */
	g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
	g_log_set_handler("vmbc-qmp-backend", G_LOG_LEVEL_WARNING, on_warning, NULL);
	g_log_set_handler("vmbc-core", G_LOG_LEVEL_WARNING, on_warning, NULL);
	g_log_set_handler("vmbc-qmp", G_LOG_LEVEL_WARNING, on_warning, NULL);
	g_log_set_handler("vmbc-qmp-backend", G_LOG_LEVEL_INFO, on_info, NULL);
	g_test_add_func("/vmbc/qmp-backend/memory-high-raises", test_memory_high_raises);
	if (g_getenv("FAKE_QEMU") == NULL) {
		g_printerr("FAKE_QEMU is not set\n");
		return 77;
	}

#define ADD(path, func)                                                                            \
	g_test_add("/vmbc/qmp-backend/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
	ADD("adopt", test_adopt);
	ADD("balloon-and-stats", test_balloon_and_stats);
	ADD("stats-unset", test_stats_unset);
	ADD("no-balloon-device", test_no_balloon_device);
	ADD("faults", test_faults);
	ADD("vanish", test_vanish);
	ADD("escalate", test_escalate);
	ADD("up", test_up);
	ADD("name-clash", test_name_clash);
	ADD("stop-leaves-balloon", test_stop_leaves_balloon);
	return g_test_run();
}
