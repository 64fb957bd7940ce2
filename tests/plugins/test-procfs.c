/*
 * test-procfs.c: the /proc sampler (plugins/procfs/vmbc-procfs.c), against
 * smaps text recorded from QEMU 7.2 under TCG and against a real child
 * process that maps and touches a known amount of memory.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmbc-error.h"
#include "vmbc-procfs.h"

#define MIB (1024 * 1024)

static gchar *
load_fixture(const gchar *name, gsize *len)
{
	g_autofree gchar *path = g_test_build_filename(G_TEST_DIST, name, NULL);
	g_autoptr(GError) error = NULL;
	gchar *text = NULL;

	g_file_get_contents(path, &text, len, &error);
	g_assert_no_error(error);
	return text;
}

static void
test_smaps_qemu_anon(void)
{
	g_auto(VmbcSmapsSplit) split = {0};
	g_autoptr(GError) error = NULL;
	gsize len = 0;
	g_autofree gchar *text = load_fixture("smaps-qemu72-tcg-512m.txt", &len);

	/* -m 512: one rw-p anonymous mapping of exactly 512 MiB, beside TCG's rwxp buffer */
	g_assert_true(vmbc_smaps_parse(text, len, 512ULL * MIB, &split, &error));
	g_assert_no_error(error);
	g_assert_true(split.found);
	g_assert_cmphex(split.guest_start, ==, 0x7f707be00000ULL);
	g_assert_cmpuint(split.guest_size, ==, 512ULL * MIB);
	g_assert_cmpuint(split.guest_rss, ==, 6144ULL * 1024);
	g_assert_cmpstr(split.guest_name, ==, "");
	g_assert_cmpuint(split.total_rss, ==, 20856ULL * 1024);
	g_assert_cmpuint(split.mappings, ==, 19);
}

static void
test_smaps_qemu_memfd(void)
{
	g_auto(VmbcSmapsSplit) split = {0};
	g_autoptr(GError) error = NULL;
	gsize len = 0;
	g_autofree gchar *text = load_fixture("smaps-qemu72-tcg-memfd-513m.txt", &len);

	/* memory-backend-memfd: a shared memfd mapping, named and "(deleted)" */
	g_assert_true(vmbc_smaps_parse(text, len, 513ULL * MIB, &split, &error));
	g_assert_no_error(error);
	g_assert_true(split.found);
	g_assert_cmphex(split.guest_start, ==, 0x7feb87eff000ULL);
	g_assert_cmpuint(split.guest_size, ==, 513ULL * MIB);
	g_assert_cmpuint(split.guest_rss, ==, 1068ULL * 1024);
	g_assert_cmpstr(split.guest_name, ==, "/memfd:memory-backend-memfd (deleted)");
	g_assert_cmpuint(split.total_rss, ==, 15368ULL * 1024);
}

static void
test_smaps_no_match(void)
{
	g_auto(VmbcSmapsSplit) split = {0};
	g_autoptr(GError) error = NULL;
	gsize len = 0;
	g_autofree gchar *text = load_fixture("smaps-qemu72-tcg-512m.txt", &len);

	/* 1 GiB of RAM: TCG's 1 GiB - 4 KiB rwx buffer must not be taken for it */
	g_assert_true(vmbc_smaps_parse(text, len, 1024ULL * MIB, &split, &error));
	g_assert_no_error(error);
	g_assert_false(split.found);
	g_assert_null(split.guest_name);
	g_assert_cmpuint(split.total_rss, ==, 20856ULL * 1024);

	/* 1 GiB - 4 KiB: same size as the code buffer, which is executable */
	g_assert_true(vmbc_smaps_parse(text, len, 1024ULL * MIB - 4096, &split, &error));
	g_assert_false(split.found);
}

/* One smaps record with only the fields the parser reads, and one it skips. */
static void
append_mapping(GString *s, guint64 start, guint64 size, const gchar *perms, const gchar *name,
	       guint64 rss_kb)
{
	g_string_append_printf(s,
			       "%" G_GINT64_MODIFIER "x-%" G_GINT64_MODIFIER "x %s 00000000 "
			       "00:00 0 %s\n",
			       start, start + size, perms, name);
	g_string_append_printf(s, "Size:           %" G_GUINT64_FORMAT " kB\n", size / 1024);
	g_string_append_printf(s, "Rss:            %" G_GUINT64_FORMAT " kB\n", rss_kb);
	g_string_append(s, "VmFlags: rd wr mr mw me ac sd\n");
}

static void
test_smaps_candidates(void)
{
	g_auto(VmbcSmapsSplit) split = {0};
	g_autoptr(GError) error = NULL;
	g_autoptr(GString) s = g_string_new(NULL);
	guint64 ram = 100ULL * MIB;

	append_mapping(s, 0x100000000, ram, "rw-p", "/dev/shm/guest", 100);    /* file */
	append_mapping(s, 0x200000000, ram, "rwxp", "", 200);		       /* executable */
	append_mapping(s, 0x300000000, ram, "r--p", "", 300);		       /* read-only */
	append_mapping(s, 0x400000000, ram + 2 * MIB + 4096, "rw-p", "", 400); /* too big */
	append_mapping(s, 0x500000000, ram - 4096, "rw-p", "", 500);	       /* too small */
	append_mapping(s, 0x600000000, ram, "rw-p", "", 600);
	append_mapping(s, 0x700000000, ram + 2 * MIB, "rw-p", "[anon:guest-ram]", 70);
	append_mapping(s, 0x800000000, 4096, "rw-p", "[heap]", 4);

	/* the largest candidate wins even with less Rss */
	g_assert_true(vmbc_smaps_parse(s->str, s->len, ram, &split, &error));
	g_assert_no_error(error);
	g_assert_true(split.found);
	g_assert_cmphex(split.guest_start, ==, 0x700000000);
	g_assert_cmpstr(split.guest_name, ==, "[anon:guest-ram]");
	g_assert_cmpuint(split.guest_rss, ==, 70 * 1024);
	g_assert_cmpuint(split.total_rss, ==, (100 + 200 + 300 + 400 + 500 + 600 + 70 + 4) * 1024);
	g_assert_cmpuint(split.mappings, ==, 8);

	/* of two of the same size, the one with more Rss */
	g_string_truncate(s, 0);
	append_mapping(s, 0x100000000, ram, "rw-p", "", 10);
	append_mapping(s, 0x200000000, ram, "rw-p", "", 30);
	append_mapping(s, 0x300000000, ram, "rw-p", "", 20);
	g_assert_true(vmbc_smaps_parse(s->str, s->len, ram, &split, &error));
	g_assert_cmphex(split.guest_start, ==, 0x200000000);
	g_assert_cmpuint(split.guest_rss, ==, 30 * 1024);

	/* empty text: nothing found, no error */
	g_assert_true(vmbc_smaps_parse("", 0, ram, &split, &error));
	g_assert_no_error(error);
	g_assert_false(split.found);
	g_assert_cmpuint(split.mappings, ==, 0);
}

static void
test_smaps_garbage(void)
{
	static const gchar *const bad[] = {
		"7f00-7e junk\nRss: 4 kB\n",			   /* header cut short */
		"1000-2000 rw-p 00000000 00:00 0\nRss: lots kB\n", /* Rss not a number */
		"1000-2000 rw-p 00000000 00:00 0\nRss: 4 MB\n",	   /* wrong unit */
		"Rss: 4 kB\n",					   /* Rss before any mapping */
		"1000-2000 rw-p 00000000 00:00 0\nRss: 99999999999999999999 kB\n",
		"ffffffffffffffffff-1 rw-p 0 0 0\n",
	};

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_auto(VmbcSmapsSplit) split = {0};
		g_autoptr(GError) error = NULL;

		g_test_message("input %u", i);
		g_assert_false(vmbc_smaps_parse(bad[i], strlen(bad[i]), 4096, &split, &error));
		g_assert_error(error, VMBC_ERROR, VMBC_ERROR_INVALID);
		g_assert_nonnull(strstr(error->message, "smaps line"));
		g_assert_false(split.found);
	}
}

/* --- a real child process ------------------------------------------------ */

#define CHILD_GUEST_MIB 75 /* an unusual size, so nothing else in the child matches */
#define CHILD_STEP_MIB	8
#define CHILD_VMM_MIB	48

typedef struct {
	pid_t pid;
	int cmd;   /* write end: commands to the child */
	int reply; /* read end: one byte per command done */
} Child;

/* The child: only raw system calls after fork(). */
static G_NORETURN void
child_main(int cmd, int reply)
{
	gsize guest_len = (gsize)CHILD_GUEST_MIB * MIB;
	gsize vmm_len = (gsize)CHILD_VMM_MIB * MIB;
	gsize touched = 0;
	gchar *guest;
	gchar *vmm;
	gchar c;

	/*
	 * Guest RAM between two inaccessible pages, so that the kernel never
	 * merges it with the next anonymous mapping (the VMM's) into one VMA
	 * whose size is not the guest's.
	 */
	gsize page = (gsize)sysconf(_SC_PAGESIZE);
	gchar *area =
		mmap(NULL, guest_len + 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (area == MAP_FAILED || mprotect(area + page, guest_len, PROT_READ | PROT_WRITE) != 0)
		_exit(2);
	guest = area + page;
	vmm = mmap(NULL, vmm_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vmm == MAP_FAILED)
		_exit(2);
	/* huge pages would make Rss overshoot what was touched */
	(void)madvise(guest, guest_len, MADV_NOHUGEPAGE);
	(void)madvise(vmm, vmm_len, MADV_NOHUGEPAGE);
	memset(vmm, 1, vmm_len);
	for (;;) {
		ssize_t n = read(cmd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(0);
		if (c == 'g' && touched + CHILD_STEP_MIB * MIB <= guest_len) {
			memset(guest + touched, 1, (gsize)CHILD_STEP_MIB * MIB);
			touched += (gsize)CHILD_STEP_MIB * MIB;
		} else if (c == 'v' && vmm != NULL) {
			munmap(vmm, vmm_len);
			vmm = NULL;
		}
		if (write(reply, &c, 1) != 1)
			_exit(1);
	}
}

static void
child_start(Child *child)
{
	int to_child[2];
	int from_child[2];

	g_assert_cmpint(pipe(to_child), ==, 0);
	g_assert_cmpint(pipe(from_child), ==, 0);
	child->pid = fork();
	g_assert_cmpint(child->pid, >=, 0);
	if (child->pid == 0) {
		close(to_child[1]);
		close(from_child[0]);
		child_main(to_child[0], from_child[1]);
	}
	close(to_child[0]);
	close(from_child[1]);
	child->cmd = to_child[1];
	child->reply = from_child[0];
}

static void
child_do(Child *child, gchar c)
{
	gchar r = 0;

	g_assert_cmpint(write(child->cmd, &c, 1), ==, 1);
	g_assert_cmpint(read(child->reply, &r, 1), ==, 1);
	g_assert_cmpint(r, ==, c);
}

/* Kills the child by PID; @reap FALSE leaves a zombie for the caller to reap. */
static void
child_kill(Child *child, gboolean reap)
{
	if (child->pid <= 0)
		return;
	close(child->cmd);
	close(child->reply);
	kill(child->pid, SIGKILL);
	if (reap) {
		g_assert_cmpint(waitpid(child->pid, NULL, 0), ==, child->pid);
		child->pid = 0;
	}
}

static void
child_reap(Child *child)
{
	g_assert_cmpint(waitpid(child->pid, NULL, 0), ==, child->pid);
	child->pid = 0;
}

static gint64
pages(gint64 mib)
{
	return mib * MIB / sysconf(_SC_PAGESIZE);
}

static void
test_sampler_child(void)
{
	Child child = {0};
	g_autoptr(VmbcProcSampler) s = NULL;
	g_autoptr(GError) error = NULL;
	gint64 guest = -1;
	gint64 vmm = -1;
	gint64 now = 1000000;
	const VmbcSmapsSplit *split;

	child_start(&child);
	child_do(&child, 'g'); /* 8 MiB of "guest RAM" */
	child_do(&child, 'g'); /* 16 MiB */

	s = vmbc_proc_sampler_new(child.pid, (guint64)CHILD_GUEST_MIB * MIB);
	g_assert_cmpint(vmbc_proc_sampler_get_pid(s), ==, child.pid);
	vmbc_proc_sampler_set_smaps_interval(s, 10 * G_USEC_PER_SEC);

	/* the first read always splits with smaps */
	g_assert_true(vmbc_proc_sampler_read(s, FALSE, now, &guest, &vmm, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(vmbc_proc_sampler_get_smaps_reads(s), ==, 1);
	split = vmbc_proc_sampler_get_split(s);
	g_assert_true(split->found);
	g_assert_cmpuint(split->guest_size, ==, (guint64)CHILD_GUEST_MIB * MIB);
	g_assert_cmpstr(split->guest_name, ==, "");
	g_assert_cmpint(guest, ==, pages(16));
	g_assert_cmpint(vmm, >=, pages(CHILD_VMM_MIB));

	/* more guest memory: seen through statm alone */
	child_do(&child, 'g');
	now += G_USEC_PER_SEC;
	g_assert_true(vmbc_proc_sampler_read(s, FALSE, now, &guest, &vmm, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(vmbc_proc_sampler_get_smaps_reads(s), ==, 1);
	g_assert_cmpint(guest, ==, pages(24));

	/* the VMM frees 48 MiB: the estimate goes negative, so smaps is read at once */
	child_do(&child, 'v');
	now += G_USEC_PER_SEC;
	g_assert_true(vmbc_proc_sampler_read(s, FALSE, now, &guest, &vmm, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(vmbc_proc_sampler_get_smaps_reads(s), ==, 2);
	g_assert_cmpint(guest, ==, pages(24));
	g_assert_cmpint(vmm, <, pages(CHILD_VMM_MIB));

	/* asked for a full read */
	g_assert_true(vmbc_proc_sampler_read(s, TRUE, now, &guest, &vmm, &error));
	g_assert_cmpuint(vmbc_proc_sampler_get_smaps_reads(s), ==, 3);
	g_assert_cmpint(guest, ==, pages(24));

	/* the interval passed (jitter only makes it earlier) */
	now += 10 * G_USEC_PER_SEC;
	g_assert_true(vmbc_proc_sampler_read(s, FALSE, now, &guest, &vmm, &error));
	g_assert_cmpuint(vmbc_proc_sampler_get_smaps_reads(s), ==, 4);
	now += G_USEC_PER_SEC;
	g_assert_true(vmbc_proc_sampler_read(s, FALSE, now, &guest, &vmm, &error));
	g_assert_cmpuint(vmbc_proc_sampler_get_smaps_reads(s), ==, 4);

	/* killed, not yet reaped: a zombie has no memory and counts as gone */
	child_kill(&child, FALSE);
	{
		g_autofree gchar *want = g_strdup_printf("process %d is gone", (int)child.pid);
		gint64 g2 = -7;
		gint64 v2 = -7;

		/* SIGKILL takes a moment to tear the mm down */
		for (guint i = 0; i < 200; i++) {
			g_clear_error(&error);
			g2 = v2 = -7;
			if (!vmbc_proc_sampler_read(s, FALSE, now, &g2, &v2, &error))
				break;
			g_usleep(10000);
		}
		g_assert_error(error, VMBC_ERROR, VMBC_ERROR_VANISHED);
		g_assert_cmpstr(error->message, ==, want);
		g_assert_cmpint(g2, ==, -7);
		g_assert_cmpint(v2, ==, -7);

		/* reaped: the descriptor kept open still says gone */
		child_reap(&child);
		g_clear_error(&error);
		g_assert_false(vmbc_proc_sampler_read(s, FALSE, now, &g2, &v2, &error));
		g_assert_error(error, VMBC_ERROR, VMBC_ERROR_VANISHED);
	}
}

static guint
count_fds(void)
{
	g_autoptr(GDir) dir = g_dir_open("/proc/self/fd", 0, NULL);
	guint n = 0;

	g_assert_nonnull(dir);
	while (g_dir_read_name(dir) != NULL)
		n++;
	return n;
}

/* Past the descriptor budget a sampler opens statm for each read, and still sees the process go. */
static void
test_sampler_statm_budget(void)
{
	Child child = {0};
	g_autoptr(VmbcProcSampler) kept = NULL;
	g_autoptr(VmbcProcSampler) opened = NULL;
	g_autoptr(GError) error = NULL;
	gint64 guest_kept = -1, guest_opened = -1, vmm = -1;
	guint fds;

	child_start(&child);
	child_do(&child, 'g'); /* 8 MiB */
	vmbc_proc_set_statm_budget(1);
	kept = vmbc_proc_sampler_new(child.pid, (guint64)CHILD_GUEST_MIB * MIB);
	opened = vmbc_proc_sampler_new(child.pid, (guint64)CHILD_GUEST_MIB * MIB);

	fds = count_fds();
	g_assert_true(vmbc_proc_sampler_read(kept, FALSE, 1000000, &guest_kept, &vmm, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(count_fds(), ==, fds + 1); /* the first one keeps its statm open */
	g_assert_true(vmbc_proc_sampler_read(opened, FALSE, 1000000, &guest_opened, &vmm, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(count_fds(), ==, fds + 1); /* the second one is over the budget */
	g_assert_cmpint(guest_opened, ==, guest_kept);
	g_assert_cmpint(guest_opened, >=, pages(8));

	/* statm only (no smaps before the interval): both follow the child's growth */
	child_do(&child, 'g'); /* 16 MiB */
	g_assert_true(vmbc_proc_sampler_read(kept, FALSE, 2000000, &guest_kept, &vmm, &error));
	g_assert_true(vmbc_proc_sampler_read(opened, FALSE, 2000000, &guest_opened, &vmm, &error));
	g_assert_no_error(error);
	g_assert_cmpint(guest_opened, >=, pages(16));
	g_assert_cmpint(ABS(guest_opened - guest_kept), <, pages(1));

	child_kill(&child, TRUE);
	g_assert_false(vmbc_proc_sampler_read(opened, FALSE, 3000000, &guest_opened, &vmm, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_VANISHED);
	g_clear_error(&error);
	g_assert_false(vmbc_proc_sampler_read(kept, FALSE, 3000000, &guest_kept, &vmm, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_VANISHED);
	vmbc_proc_set_statm_budget(-1);
}

static void
test_sampler_gone(void)
{
	Child child = {0};
	g_autoptr(VmbcProcSampler) s = NULL;
	g_autoptr(GError) error = NULL;
	gint64 guest = -1;
	gint64 vmm = -1;
	pid_t pid;

	child_start(&child);
	pid = child.pid;
	child_kill(&child, TRUE);

	/* a fresh sampler for a PID that no longer exists */
	s = vmbc_proc_sampler_new(pid, 64 * MIB);
	g_assert_false(vmbc_proc_sampler_read(s, FALSE, 0, &guest, &vmm, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_VANISHED);
	g_assert_cmpint(guest, ==, -1);
	g_assert_cmpint(vmm, ==, -1);
}

static void
test_sampler_no_guest_mapping(void)
{
	g_autoptr(VmbcProcSampler) s = NULL;
	g_autoptr(GError) error = NULL;
	gint64 guest = -1;
	gint64 vmm = -1;

	/* this test process has no 7 GiB mapping: everything counts as guest */
	s = vmbc_proc_sampler_new(getpid(), 7ULL * 1024 * MIB);
	g_assert_true(vmbc_proc_sampler_read(s, FALSE, 0, &guest, &vmm, &error));
	g_assert_no_error(error);
	g_assert_false(vmbc_proc_sampler_get_split(s)->found);
	g_assert_cmpint(guest, >, 0);
	g_assert_cmpint(vmm, ==, 0);
	/* and that is not "implausible": no smaps read per tick */
	g_assert_true(vmbc_proc_sampler_read(s, FALSE, 1, &guest, &vmm, &error));
	g_assert_cmpuint(vmbc_proc_sampler_get_smaps_reads(s), ==, 1);
}

static void
test_ksm(void)
{
	gint64 v = vmbc_proc_ksm_merging_pages(getpid());

	if (g_file_test("/proc/self/ksm_merging_pages", G_FILE_TEST_EXISTS))
		g_assert_cmpint(v, >=, 0);
	else
		g_assert_cmpint(v, ==, -1);
	g_assert_cmpint(vmbc_proc_ksm_merging_pages(G_MAXINT32), ==, -1);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/vmbc/procfs/smaps/qemu-anon", test_smaps_qemu_anon);
	g_test_add_func("/vmbc/procfs/smaps/qemu-memfd", test_smaps_qemu_memfd);
	g_test_add_func("/vmbc/procfs/smaps/no-match", test_smaps_no_match);
	g_test_add_func("/vmbc/procfs/smaps/candidates", test_smaps_candidates);
	g_test_add_func("/vmbc/procfs/smaps/garbage", test_smaps_garbage);
	g_test_add_func("/vmbc/procfs/sampler/child", test_sampler_child);
	g_test_add_func("/vmbc/procfs/sampler/gone", test_sampler_gone);
	g_test_add_func("/vmbc/procfs/sampler/statm-budget", test_sampler_statm_budget);
	g_test_add_func("/vmbc/procfs/sampler/no-guest-mapping", test_sampler_no_guest_mapping);
	g_test_add_func("/vmbc/procfs/ksm", test_ksm);
	return g_test_run();
}
