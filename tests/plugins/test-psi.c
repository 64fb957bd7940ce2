/*
 * test-psi.c: the host's pressure and budget readers (src/host/vmbc-psi.c,
 * vmbc-budget.c): PSI text as the kernel writes it, the VMs' cgroup found and
 * read in v1 and v2 trees made in a temp dir, /proc/meminfo and /proc/vmstat
 * of this machine; and a PSI trigger really registered with the kernel that
 * wakes the main loop when a child thrashes in a small memory cgroup this test
 * makes (and removes). That case skips (77) only where PSI or a cgroup memory
 * controller is not there, or without the rights to use them.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "vmbc-budget.h"
#include "vmbc-error.h"
#include "vmbc-psi.h"

#define PROC_PRESSURE "/proc/pressure/memory"
#define V1_MEMORY     "/sys/fs/cgroup/memory"

static void
test_parse(void)
{
	VmbcPsi psi;
	g_autoptr(GError) error = NULL;

	g_assert_true(vmbc_psi_parse("some avg10=1.50 avg60=0.25 avg300=0.00 total=123456\n"
				     "full avg10=0.75 avg60=0.00 avg300=0.00 total=789\n",
				     &psi, &error));
	g_assert_no_error(error);
	g_assert_cmpfloat(psi.some_avg10, ==, 1.5);
	g_assert_cmpfloat(psi.some_avg60, ==, 0.25);
	g_assert_cmpint(psi.some_total, ==, 123456);
	g_assert_cmpfloat(psi.full_avg10, ==, 0.75);
	g_assert_cmpint(psi.full_total, ==, 789);
	/* a kernel that has no "full" line (cpu before 5.13) */
	g_assert_true(
		vmbc_psi_parse("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", &psi, NULL));
	g_assert_cmpint(psi.full_total, ==, -1);
	g_assert_false(vmbc_psi_parse("", &psi, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_INVALID);
	g_clear_error(&error);
	g_assert_false(vmbc_psi_parse("some avg10=x avg60=0 total=1\n", &psi, NULL));
	g_assert_false(vmbc_psi_parse("some avg10=0.00 avg60=0.00 avg300=0.00\n", &psi, NULL));
	/* this machine's, when it has PSI */
	if (g_file_test(PROC_PRESSURE, G_FILE_TEST_EXISTS)) {
		g_assert_true(vmbc_psi_read(PROC_PRESSURE, &psi, &error));
		g_assert_no_error(error);
		g_assert_cmpint(psi.some_total, >=, 0);
	}
	g_assert_false(vmbc_psi_read("/nonexistent/memory.pressure", &psi, &error));
	g_assert_nonnull(strstr(error->message, "/nonexistent/memory.pressure"));
}

static void
put(const gchar *dir, const gchar *name, const gchar *text)
{
	g_autofree gchar *path = g_build_filename(dir, name, NULL);
	g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

static void
rm_rf(const gchar *path)
{
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	const gchar *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *child = g_build_filename(path, name, NULL);
		if (g_file_test(child, G_FILE_TEST_IS_DIR))
			rm_rf(child);
		else
			g_unlink(child);
	}
	g_rmdir(path);
}

static void
test_budget_cgroup(void)
{
	g_autofree gchar *root = g_dir_make_tmp("vmbc-budget-XXXXXX", NULL);
	g_autofree gchar *v1 = g_build_filename(root, "memory", "machine", NULL);
	g_autofree gchar *v2 = g_build_filename(root, "machine.slice", NULL);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *found = NULL;
	g_autofree gchar *psi = NULL;
	gint64 usage = 0, limit = 0;
	gint version = 0;

	/* nothing there: no cgroup, and no error */
	g_assert_null(vmbc_budget_find_cgroup(root, "auto", &version, &error));
	g_assert_no_error(error);
	/* libvirt without systemd on a v1 host */
	g_assert_cmpint(g_mkdir_with_parents(v1, 0755), ==, 0);
	put(v1, "memory.usage_in_bytes", "104857600\n");
	put(v1, "memory.limit_in_bytes", "9223372036854771712\n");
	found = vmbc_budget_find_cgroup(root, NULL, &version, &error);
	g_assert_cmpstr(found, ==, v1);
	g_assert_cmpint(version, ==, 1);
	g_assert_true(vmbc_budget_read_cgroup(found, version, &usage, &limit, &error));
	g_assert_cmpint(usage, ==, 104857600);
	g_assert_cmpint(limit, ==, -1);
	put(v1, "memory.limit_in_bytes", "536870912\n");
	g_assert_true(vmbc_budget_read_cgroup(found, version, &usage, &limit, &error));
	g_assert_cmpint(limit, ==, 536870912);
	/* v1 has no memory.pressure: the host's PSI */
	psi = vmbc_budget_pressure_file(found, version, "/proc/self/status");
	g_assert_cmpstr(psi, ==, "/proc/self/status");
	g_clear_pointer(&psi, g_free);
	g_clear_pointer(&found, g_free);
	/* systemd's machine.slice on a v2 host comes first; memory.high counts */
	g_assert_cmpint(g_mkdir_with_parents(v2, 0755), ==, 0);
	put(v2, "memory.current", "2097152\n");
	put(v2, "memory.max", "max\n");
	put(v2, "memory.high", "max\n");
	put(v2, "memory.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
	found = vmbc_budget_find_cgroup(root, "auto", &version, &error);
	g_assert_cmpstr(found, ==, v2);
	g_assert_cmpint(version, ==, 2);
	g_assert_true(vmbc_budget_read_cgroup(found, version, &usage, &limit, &error));
	g_assert_cmpint(usage, ==, 2097152);
	g_assert_cmpint(limit, ==, -1);
	put(v2, "memory.max", "4194304\n");
	put(v2, "memory.high", "3145728\n");
	g_assert_true(vmbc_budget_read_cgroup(found, version, &usage, &limit, &error));
	g_assert_cmpint(limit, ==, 3145728);
	psi = vmbc_budget_pressure_file(found, version, "/proc/self/status");
	g_assert_true(g_str_has_suffix(psi, "machine.slice/memory.pressure"));
	/* garbage is an error naming the file */
	put(v2, "memory.current", "lots\n");
	g_assert_false(vmbc_budget_read_cgroup(found, version, &usage, &limit, &error));
	g_assert_nonnull(strstr(error->message, "memory.current"));
	g_clear_error(&error);
	/* a configured one, relative to the root or absolute; one without a controller fails */
	g_clear_pointer(&found, g_free);
	found = vmbc_budget_find_cgroup(root, "memory/machine", &version, &error);
	g_assert_cmpstr(found, ==, v1);
	g_clear_pointer(&found, g_free);
	g_assert_null(vmbc_budget_find_cgroup(root, root, &version, &error));
	g_assert_nonnull(strstr(error->message, "no memory controller"));
	g_clear_error(&error);
	g_assert_null(vmbc_budget_find_cgroup(root, "/nonexistent/vms", &version, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_NOT_FOUND);
	rm_rf(root);
}

static void
test_meminfo_vmstat(void)
{
	g_autoptr(GError) error = NULL;
	gint64 total = 0, available = 0, in = 0, out = 0;
	g_autofree gchar *meminfo = NULL;
	g_autofree gchar *vmstat = NULL;
	g_autofree gchar *status = NULL;

	/* this machine's own files, as the host monitor reads them every tick */
	g_assert_true(g_file_get_contents("/proc/meminfo", &meminfo, NULL, NULL));
	g_assert_true(vmbc_budget_parse_meminfo(meminfo, &total, &available, NULL, &error));
	g_assert_no_error(error);
	g_assert_cmpint(total, ==, (gint64)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE));
	g_assert_cmpint(available, >, 0);
	g_assert_cmpint(available, <=, total);
	g_assert_true(g_file_get_contents("/proc/vmstat", &vmstat, NULL, NULL));
	vmbc_budget_parse_swap(vmstat, &in, &out);
	g_assert_cmpint(in, >=, 0);
	g_assert_cmpint(out, >=, 0);
	g_assert_true(g_file_get_contents("/proc/self/status", &status, NULL, NULL));
	g_assert_false(vmbc_budget_parse_meminfo(status, &total, &available, NULL, &error));
	g_assert_nonnull(strstr(error->message, "MemAvailable"));
	g_clear_error(&error);
	/* SwapTotal, which says whether /proc/vmstat's swap counters are worth a read */
	{
		gint64 swap = 0;
		g_assert_true(vmbc_budget_parse_meminfo("MemTotal:  2048 kB\nMemFree: 1 kB\n"
							"MemAvailable: 1024 kB\nSwapTotal:  0 kB\n",
							&total, &available, &swap, &error));
		g_assert_cmpint(total, ==, 2048 * 1024);
		g_assert_cmpint(available, ==, 1024 * 1024);
		g_assert_cmpint(swap, ==, 0);
		g_assert_true(vmbc_budget_parse_meminfo("MemAvailable: 1024 kB\nSwapTotal: 4 kB\n"
							"MemTotal:  2048 kB\n",
							&total, &available, &swap, &error));
		g_assert_cmpint(swap, ==, 4096);
		g_assert_true(vmbc_budget_parse_meminfo("MemTotal: 2048 kB\nMemAvailable: 1 kB\n",
							&total, &available, &swap, &error));
		g_assert_cmpint(swap, ==, -1);
		g_assert_no_error(error);
	}
}

/* cgroupfs takes a write, not a rename over the file (as g_file_set_contents() does) */
static gboolean
write_file(const gchar *path, const gchar *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	gboolean ok;

	if (fd < 0)
		return FALSE;
	ok = write(fd, text, strlen(text)) == (gssize)strlen(text);
	close(fd);
	return ok;
}

static void
on_fired(VmbcPsiTrigger *trigger, gpointer user_data)
{
	GMainLoop *loop = user_data;
	g_main_loop_quit(loop);
}

static gboolean
on_timeout(gpointer user_data)
{
	g_main_loop_quit(user_data);
	return G_SOURCE_REMOVE;
}

/* The child: joins @cgroup, then reads @file (larger than the cgroup's limit) over and over. */
static void G_GNUC_NORETURN
thrash(const gchar *cgroup, const gchar *file)
{
	g_autofree gchar *procs = g_build_filename(cgroup, "cgroup.procs", NULL);
	g_autofree gchar *pid = g_strdup_printf("%d", (int)getpid());
	static gchar buf[1 << 20];

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	alarm(60);
	if (!write_file(procs, pid))
		_exit(3);
	for (;;) {
		int fd = open(file, O_RDONLY);
		if (fd < 0)
			_exit(4);
		while (read(fd, buf, sizeof(buf)) > 0)
			;
		close(fd);
	}
}

/* @file: @mib MiB on disk, out of the page cache (so that the child's reads are its own). */
static gboolean
make_file(const gchar *file, guint mib)
{
	static gchar buf[1 << 20];
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0)
		return FALSE;
	for (gsize i = 0; i < sizeof(buf); i++)
		buf[i] = (gchar)(i * 7 + 1);
	for (guint i = 0; i < mib; i++) {
		if (write(fd, buf, sizeof(buf)) != (gssize)sizeof(buf)) {
			close(fd);
			return FALSE;
		}
	}
	fsync(fd);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
	return TRUE;
}

/*
 * A trigger on the host's memory PSI ("some 20 ms in 500 ms") wakes the main
 * loop when a child re-reads a 96 MiB file inside a 16 MiB v1 memory cgroup:
 * its page cache thrashes and the kernel counts the stall.
 */
static void
test_trigger_fires(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	g_autofree gchar *cgroup = NULL;
	g_autofree gchar *tmpdir = NULL;
	g_autofree gchar *file = NULL;
	g_autofree gchar *limit = NULL;
	VmbcPsiTrigger *trigger;
	guint64 fired;
	guint timeout_id;
	pid_t child;
	int status = 0;

	if (!g_file_test(PROC_PRESSURE, G_FILE_TEST_EXISTS)) {
		g_test_skip("no PSI on this kernel (" PROC_PRESSURE ")");
		return;
	}
	if (!g_file_test(V1_MEMORY "/memory.limit_in_bytes", G_FILE_TEST_EXISTS) ||
	    access(V1_MEMORY, W_OK) != 0) {
		g_test_skip("no writable cgroup v1 memory controller at " V1_MEMORY);
		return;
	}
	trigger = vmbc_psi_trigger_new(PROC_PRESSURE, FALSE, 20000, 500000, on_fired, loop, &error);
	if (trigger == NULL && error != NULL && strstr(error->message, "Permission") != NULL) {
		g_test_skip(error->message);
		return;
	}
	g_assert_no_error(error);
	g_assert_cmpstr(vmbc_psi_trigger_get_path(trigger), ==, PROC_PRESSURE);
	/* the kernel refuses what it cannot take; we refuse it first, naming it */
	g_assert_null(
		vmbc_psi_trigger_new(PROC_PRESSURE, FALSE, 20000, 100000, on_fired, loop, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_INVALID);
	g_clear_error(&error);

	tmpdir = g_dir_make_tmp("vmbc-psi-XXXXXX", NULL);
	file = g_build_filename(tmpdir, "thrash", NULL);
	if (!make_file(file, 96)) {
		g_unlink(file);
		g_rmdir(tmpdir);
		g_assert_not_reached();
	}
	cgroup = g_strdup_printf(V1_MEMORY "/vmbc-psi-test-%d", (int)getpid());
	g_assert_cmpint(g_mkdir(cgroup, 0755), ==, 0);
	limit = g_build_filename(cgroup, "memory.limit_in_bytes", NULL);
	if (!write_file(limit, "16777216")) {
		g_rmdir(cgroup);
		g_unlink(file);
		g_rmdir(tmpdir);
		g_assert_not_reached();
	}

	child = fork();
	g_assert_cmpint(child, >=, 0);
	if (child == 0)
		thrash(cgroup, file);
	timeout_id = g_timeout_add_seconds(20, on_timeout, loop);
	g_main_loop_run(loop);
	fired = vmbc_psi_trigger_get_fired(trigger);
	if (fired > 0)
		g_source_remove(timeout_id);

	/* leave the machine as found, then judge */
	kill(child, SIGKILL);
	waitpid(child, &status, 0);
	vmbc_psi_trigger_free(trigger);
	g_unlink(file);
	g_rmdir(tmpdir);
	for (guint i = 0; i < 50 && g_rmdir(cgroup) != 0; i++)
		g_usleep(100000);
	g_assert_false(g_file_test(cgroup, G_FILE_TEST_EXISTS));
	g_assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	g_assert_cmpuint(fired, >=, 1);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/vmbc/host/psi/parse", test_parse);
	g_test_add_func("/vmbc/host/budget/cgroup", test_budget_cgroup);
	g_test_add_func("/vmbc/host/budget/meminfo-vmstat", test_meminfo_vmstat);
	g_test_add_func("/vmbc/host/psi/trigger-fires", test_trigger_fires);
	return g_test_run();
}
