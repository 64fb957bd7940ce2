/*
 * test-procfs.c: the /proc sampler (src/host/vmbc-procfs.c), against
 * smaps text recorded from QEMU 7.2 under TCG and against a real child
 * process that maps and touches a known amount of memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
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

/* One record with the fields the range reader keeps: Rss, Pss, KernelPageSize, hugetlb. */
static void
append_full(GString *s, guint64 start, guint64 size, const gchar *perms, const gchar *name,
	    guint64 rss_kb, guint64 pss_kb, guint64 kernel_kb, guint64 huge_kb)
{
	g_string_append_printf(s,
			       "%" G_GINT64_MODIFIER "x-%" G_GINT64_MODIFIER "x %s 00000000 "
			       "00:00 0 %s\n",
			       start, start + size, perms, name);
	g_string_append_printf(s, "Size:           %" G_GUINT64_FORMAT " kB\n", size / 1024);
	g_string_append_printf(s, "KernelPageSize: %" G_GUINT64_FORMAT " kB\n", kernel_kb);
	g_string_append_printf(s, "Rss:            %" G_GUINT64_FORMAT " kB\n", rss_kb);
	g_string_append_printf(s, "Pss:            %" G_GUINT64_FORMAT " kB\n", pss_kb);
	g_string_append(s, "Pss_Anon:       0 kB\n");
	g_string_append_printf(s, "Shared_Hugetlb: %" G_GUINT64_FORMAT " kB\n", huge_kb / 2);
	g_string_append_printf(s, "Private_Hugetlb: %" G_GUINT64_FORMAT " kB\n",
			       huge_kb - huge_kb / 2);
	g_string_append(s, "VmFlags: rd wr mr mw me ac sd\n");
}

static void
test_smaps_ranges(void)
{
	g_auto(VmbcSmapsSplit) split = {0};
	g_autoptr(GError) error = NULL;
	g_autoptr(GString) s = g_string_new(NULL);
	/* two NUMA nodes (256 MiB each), a hugetlb DIMM (128 MiB) and one range with nothing */
	const VmbcRamRange ranges[] = {
		{0x7f0000000000ULL, 256ULL * MIB},
		{0x7f0010000000ULL, 256ULL * MIB},
		{0x7f0020000000ULL, 128ULL * MIB},
		{0x7f0030000000ULL, 64ULL * MIB},
	};
	const VmbcRamSpan *sp;

	append_full(s, 0x7efff0000000ULL, 256ULL * MIB, "rwxp", "", 9000, 9000, 4, 0);
	/* node 0 split in two VMAs by madvise; KSM halves some of it */
	append_full(s, 0x7f0000000000ULL, 128ULL * MIB, "rw-p", "", 1000, 600, 4, 0);
	append_full(s, 0x7f0008000000ULL, 128ULL * MIB, "rw-p", "", 3000, 3000, 4, 0);
	append_full(s, 0x7f0010000000ULL, 256ULL * MIB, "rw-p", "", 2000, 2000, 4, 0);
	/* hugetlb: nothing in Rss, 40 MiB in hugetlb pages */
	append_full(s, 0x7f0020000000ULL, 128ULL * MIB, "rw-s", "/memfd:hp (deleted)", 0, 0, 2048,
		    40960);
	/* QEMU's heap right after: not guest RAM */
	append_full(s, 0x7f0040000000ULL, 16ULL * MIB, "rw-p", "", 5000, 5000, 4, 0);

	g_assert_true(vmbc_smaps_parse_ranges(s->str, s->len, ranges, G_N_ELEMENTS(ranges), 4096,
					      &split, &error));
	g_assert_no_error(error);
	g_assert_true(split.found);
	g_assert_cmpuint(split.total_rss, ==, (9000 + 1000 + 3000 + 2000 + 5000) * 1024ULL);
	g_assert_cmpuint(split.guest_size, ==, 704ULL * MIB);
	g_assert_cmpuint(split.guest_rss, ==, 6000 * 1024ULL);
	g_assert_cmpuint(split.guest_pss, ==, 5600 * 1024ULL);
	g_assert_cmpuint(split.guest_hugetlb, ==, 40ULL * MIB);
	g_assert_cmpuint(split.guest_hugetlb_size, ==, 128ULL * MIB);
	g_assert_cmpuint(split.spans->len, ==, 4);
	sp = &g_array_index(split.spans, VmbcRamSpan, 0);
	g_assert_cmpuint(sp->vmas, ==, 2);
	g_assert_cmpuint(sp->rss, ==, 4000 * 1024ULL);
	g_assert_false(sp->huge);
	sp = &g_array_index(split.spans, VmbcRamSpan, 2);
	g_assert_true(sp->huge);
	g_assert_cmpuint(sp->rss, ==, 0);
	sp = &g_array_index(split.spans, VmbcRamSpan, 3);
	g_assert_cmpuint(sp->vmas, ==, 0);

	/* no range holds a mapping: nothing found */
	{
		const VmbcRamRange none = {0x1000, 4096};
		g_assert_true(
			vmbc_smaps_parse_ranges(s->str, s->len, &none, 1, 4096, &split, &error));
		g_assert_false(split.found);
		g_assert_cmpuint(split.guest_rss, ==, 0);
	}
	/* a bad hugetlb line is refused like a bad Rss line */
	{
		const gchar *bad = "1000-2000 rw-p 00000000 00:00 0\nShared_Hugetlb: x kB\n";
		g_clear_error(&error);
		g_assert_false(
			vmbc_smaps_parse_ranges(bad, strlen(bad), ranges, 1, 4096, &split, &error));
		g_assert_error(error, VMBC_ERROR, VMBC_ERROR_INVALID);
	}
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
#define CHILD_GROW_MIB	32 /* what the VMM may grow by, in steps, after the first split */

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

typedef struct {
	pid_t pid;
	int cmd;       /* write end: commands to the child */
	int reply;     /* read end: one byte per command done */
	guint64 guest; /* start address of the child's guest RAM mapping */
} Child;

/*
 * Makes [p, p + len) resident through the kernel rather than by the child's
 * own stores: under a sanitizer an instrumented memset() may also touch the
 * sanitizer's shadow of the range, and that is the VMM's memory, not the
 * guest's. The test's oracle does not rely on it (it measures the VMM's share
 * too); it only keeps the two apart where they can be.
 */
static gboolean
child_populate(gchar *p, gsize len)
{
	long fd;

	if (syscall(SYS_madvise, p, len, MADV_POPULATE_WRITE) == 0)
		return TRUE;
	/* older kernels: read(2) from /dev/zero writes every page from the kernel side */
	fd = syscall(SYS_openat, AT_FDCWD, "/dev/zero", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return FALSE;
	while (len > 0) {
		long n = syscall(SYS_read, fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		p += n;
		len -= (gsize)n;
	}
	syscall(SYS_close, fd);
	return len == 0;
}

/* The child: only raw system calls after fork(). */
static G_NORETURN void
child_main(int cmd, int reply)
{
	gsize guest_len = (gsize)CHILD_GUEST_MIB * MIB;
	gsize vmm_len = (gsize)CHILD_VMM_MIB * MIB;
	gsize grow_len = (gsize)CHILD_GROW_MIB * MIB;
	gsize step = (gsize)CHILD_STEP_MIB * MIB;
	gsize touched = 0;
	gsize grown = 0;
	guint64 addr;
	gchar *guest;
	gchar *vmm;
	gchar *grow;
	gchar c;

	/*
	 * Guest RAM between two inaccessible pages, so that the kernel never
	 * merges it with the next anonymous mapping (the VMM's) into one VMA
	 * whose size is not the guest's.
	 */
	gsize page = (gsize)sysconf(_SC_PAGESIZE);
	gchar *area;

	/*
	 * No huge pages anywhere in the child, what it inherited included: a
	 * collapse between the test's measure and the sampler's read would move
	 * Rss while the child holds still.
	 */
	(void)prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
	area = mmap(NULL, guest_len + 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED || mprotect(area + page, guest_len, PROT_READ | PROT_WRITE) != 0)
		_exit(2);
	guest = area + page;
	vmm = mmap(NULL, vmm_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	/* the VMM's own memory that grows while the guest runs (QEMU's heap, TCG's code) */
	grow = mmap(NULL, grow_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vmm == MAP_FAILED || grow == MAP_FAILED)
		_exit(2);
	/* huge pages would make Rss overshoot what was touched */
	(void)madvise(guest, guest_len, MADV_NOHUGEPAGE);
	(void)madvise(vmm, vmm_len, MADV_NOHUGEPAGE);
	(void)madvise(grow, grow_len, MADV_NOHUGEPAGE);
	if (!child_populate(vmm, vmm_len))
		_exit(2);
	/* where the guest RAM is, so that the test finds it in smaps by address, not by size */
	addr = (guint64)(guintptr)guest;
	if (write(reply, &addr, sizeof(addr)) != sizeof(addr))
		_exit(1);
	for (;;) {
		ssize_t n = read(cmd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(0);
		if (c == 'g' && touched + step <= guest_len) {
			if (!child_populate(guest + touched, step))
				_exit(2);
			touched += step;
		} else if (c == 'v' && vmm != NULL) {
			munmap(vmm, vmm_len);
			vmm = NULL;
		} else if (c == 'w' && grown + step <= grow_len) {
			/* the VMM grows by a step */
			if (!child_populate(grow + grown, step))
				_exit(2);
			grown += step;
		} else if (c == 'x' && touched >= step && grown + step <= grow_len) {
			/*
			 * the guest gives a step back (free page reporting discards it)
			 * while the VMM grows by as much: statm does not move
			 */
			if (madvise(guest + touched - step, step, MADV_DONTNEED) != 0 ||
			    !child_populate(grow + grown, step))
				_exit(2);
			touched -= step;
			grown += step;
		} else if (c == 'z') {
			/* the guest reads its last step untouched: the shared zero page, not Rss */
			volatile gchar sum = 0;
			for (gsize off = guest_len - step; off < guest_len; off += page)
				sum += guest[off];
			(void)sum;
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
	g_assert_cmpint(read(child->reply, &child->guest, sizeof(child->guest)), ==,
			sizeof(child->guest));
	g_assert_cmphex(child->guest, !=, 0);
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

/*
 * The test's own measurement of the child, in pages, taken while the child
 * waits for its next command and so holds still: what the sampler reads at
 * that moment is what this reads.
 */
typedef struct {
	gint64 guest;	 /* Rss of the mapping at the child's guest address, from smaps */
	gint64 resident; /* the process's resident pages, from statm (the sampler's total) */
} Measure;

/* The VMM's share: everything resident that is not the guest mapping. */
static gint64
measure_vmm(const Measure *m)
{
	return m->resident - m->guest;
}

/*
 * Reads /proc/PID/smaps and /proc/PID/statm. The guest mapping is the one that
 * starts at @guest_start, whatever its size; a parser of its own, so that the
 * sampler's is not checked against itself.
 */
static void
measure(pid_t pid, guint64 guest_start, Measure *m)
{
	g_autofree gchar *smaps_path = g_strdup_printf("/proc/%d/smaps", (int)pid);
	g_autofree gchar *statm_path = g_strdup_printf("/proc/%d/statm", (int)pid);
	g_autofree gchar *text = NULL;
	g_autofree gchar *statm = NULL;
	g_auto(GStrv) lines = NULL;
	g_auto(GStrv) fields = NULL;
	gint64 page = sysconf(_SC_PAGESIZE);
	gboolean in_guest = FALSE;
	guint found = 0;

	m->guest = -1;
	g_assert_true(g_file_get_contents(smaps_path, &text, NULL, NULL));
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		unsigned long long start, end, kib;

		/* field lines never have "hex-hex" in front: "Anonymous:" stops at the 'n' */
		if (sscanf(lines[i], "%llx-%llx ", &start, &end) == 2) {
			in_guest = start == guest_start;
			found += in_guest;
		} else if (in_guest && sscanf(lines[i], "Rss: %llu kB", &kib) == 1) {
			m->guest = (gint64)kib * 1024 / page;
		}
	}
	g_assert_cmpuint(found, ==, 1);
	g_assert_cmpint(m->guest, >=, 0);

	g_assert_true(g_file_get_contents(statm_path, &statm, NULL, NULL));
	fields = g_strsplit(statm, " ", -1);
	g_assert_cmpuint(g_strv_length(fields), >=, 2);
	m->resident = g_ascii_strtoll(fields[1], NULL, 10);
	g_assert_cmpint(m->resident, >, m->guest);
}

/*
 * A read that split with smaps (@m taken just before it): guest RAM is the
 * guest mapping's own Rss, the rest of the process is the VMM's.
 */
static void
assert_split_read(const Measure *m, gint64 guest, gint64 vmm)
{
	g_assert_cmpint(guest, ==, m->guest);
	g_assert_cmpint(vmm, ==, measure_vmm(m));
}

/*
 * A read from statm alone (@now taken just before it, @split at the last
 * smaps read): the VMM is taken as unchanged, so guest RAM is the mapping's
 * Rss plus whatever the VMM grew since (by design, until smaps is read again),
 * and the VMM is what it was at the split. Both bounded by what was measured,
 * not by what the child was asked to touch: its runtime (a sanitizer's shadow
 * memory, an allocator) may grow with it.
 */
static void
assert_statm_read(const Measure *split, const Measure *now, gint64 guest, gint64 vmm)
{
	g_assert_cmpint(guest, ==, now->guest + (measure_vmm(now) - measure_vmm(split)));
	g_assert_cmpint(vmm, ==, measure_vmm(split));
}

/*
 * Guest RAM given as ranges (as QEMU names its backends): the child's guest
 * mapping as two backends of half its size each. smaps counts both, the
 * pagemap walk reads both, and the result is what the whole mapping holds.
 */
static void
test_sampler_ranges(void)
{
	Child child = {0};
	g_autoptr(VmbcProcSampler) s = NULL;
	g_autoptr(GError) error = NULL;
	gint64 guest = -1;
	gint64 vmm = -1;
	gint64 now = 1000000;
	guint64 half = (guint64)CHILD_GUEST_MIB * MIB / 2 / 4096 * 4096;
	VmbcRamRange ranges[2];
	const VmbcSmapsSplit *split;
	Measure m;

	child_start(&child);
	child_do(&child, 'g');
	ranges[0] = (VmbcRamRange){child.guest, half};
	ranges[1] = (VmbcRamRange){child.guest + half, (guint64)CHILD_GUEST_MIB * MIB - half};
	/* a size nothing matches: only the ranges can find guest RAM */
	s = vmbc_proc_sampler_new(child.pid, 3 * MIB);
	vmbc_proc_sampler_set_smaps_interval(s, 10 * G_USEC_PER_SEC);
	vmbc_proc_sampler_set_ranges(s, ranges, G_N_ELEMENTS(ranges));

	measure(child.pid, child.guest, &m);
	g_assert_true(vmbc_proc_sampler_read(s, FALSE, now, &guest, &vmm, &error));
	g_assert_no_error(error);
	split = vmbc_proc_sampler_get_split(s);
	g_assert_true(split->found);
	g_assert_cmpuint(split->spans->len, ==, 2);
	g_assert_cmpuint(split->guest_size, ==, (guint64)CHILD_GUEST_MIB * MIB);
	assert_split_read(&m, guest, vmm);

	/* past the first half: the walk reads both ranges */
	child_do(&child, 'g');
	child_do(&child, 'g');
	child_do(&child, 'g');
	child_do(&child, 'g');
	child_do(&child, 'g');
	now += G_USEC_PER_SEC / 4;
	measure(child.pid, child.guest, &m);
	g_assert_cmpint(m.guest, >, (gint64)(half / 4096));
	g_assert_true(vmbc_proc_sampler_read(s, FALSE, now, &guest, &vmm, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(vmbc_proc_sampler_get_smaps_reads(s), ==, 1);
	g_assert_cmpuint(vmbc_proc_sampler_get_range_reads(s), ==, 1);
	assert_split_read(&m, guest, vmm);

	child_kill(&child, TRUE);
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
	Measure at_split;
	Measure m;

	child_start(&child);
	child_do(&child, 'g'); /* 8 MiB of "guest RAM" */
	child_do(&child, 'g'); /* 16 MiB */

	s = vmbc_proc_sampler_new(child.pid, (guint64)CHILD_GUEST_MIB * MIB);
	g_assert_cmpint(vmbc_proc_sampler_get_pid(s), ==, child.pid);
	vmbc_proc_sampler_set_smaps_interval(s, 10 * G_USEC_PER_SEC);

	/* the first read always splits with smaps, and finds the guest RAM where it is */
	measure(child.pid, child.guest, &at_split);
	g_assert_cmpint(at_split.guest, >=, pages(16)); /* what the child touched is resident */
	g_assert_true(vmbc_proc_sampler_read(s, FALSE, now, &guest, &vmm, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(vmbc_proc_sampler_get_smaps_reads(s), ==, 1);
	split = vmbc_proc_sampler_get_split(s);
	g_assert_true(split->found);
	g_assert_cmphex(split->guest_start, ==, child.guest);
	g_assert_cmpuint(split->guest_size, ==, (guint64)CHILD_GUEST_MIB * MIB);
	g_assert_cmpstr(split->guest_name, ==, "");
	assert_split_read(&at_split, guest, vmm);
	g_assert_cmpint(vmm, >=, pages(CHILD_VMM_MIB));

	/*
	 * more guest memory: statm moved by more than the tolerance, so the guest
	 * mapping alone is read again (pagemap), not smaps; pages the guest only
	 * read (the shared zero page) are in neither count
	 */
	child_do(&child, 'z');
	child_do(&child, 'g');
	now += G_USEC_PER_SEC / 4;
	measure(child.pid, child.guest, &m);
	g_assert_cmpint(m.guest - at_split.guest, >=, pages(CHILD_STEP_MIB));
	g_assert_true(vmbc_proc_sampler_read(s, FALSE, now, &guest, &vmm, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(vmbc_proc_sampler_get_smaps_reads(s), ==, 1);
	g_assert_cmpuint(vmbc_proc_sampler_get_range_reads(s), ==, 1);
	assert_split_read(&m, guest, vmm);
	at_split = m;

	/* nothing moved: statm alone */
	now += G_USEC_PER_SEC / 4;
	measure(child.pid, child.guest, &m);
	g_assert_true(vmbc_proc_sampler_read(s, FALSE, now, &guest, &vmm, &error));
	g_assert_cmpuint(vmbc_proc_sampler_get_range_reads(s), ==, 1);
	assert_statm_read(&at_split, &m, guest, vmm);

	/* the VMM frees 48 MiB: the estimate goes negative, so smaps is read at once */
	child_do(&child, 'v');
	now += G_USEC_PER_SEC;
	measure(child.pid, child.guest, &m);
	/* the step does what it says: statm fell below the VMM's share at the split */
	g_assert_cmpint(m.resident, <, measure_vmm(&at_split));
	g_assert_true(vmbc_proc_sampler_read(s, FALSE, now, &guest, &vmm, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(vmbc_proc_sampler_get_smaps_reads(s), ==, 2);
	assert_split_read(&m, guest, vmm);
	g_assert_cmpint(vmm, <, measure_vmm(&at_split));
	at_split = m;

	/* asked for a full read */
	measure(child.pid, child.guest, &m);
	g_assert_true(vmbc_proc_sampler_read(s, TRUE, now, &guest, &vmm, &error));
	g_assert_cmpuint(vmbc_proc_sampler_get_smaps_reads(s), ==, 3);
	assert_split_read(&m, guest, vmm);
	at_split = m;

	/* the interval passed (jitter only makes it earlier) */
	now += 10 * G_USEC_PER_SEC;
	measure(child.pid, child.guest, &m);
	g_assert_true(vmbc_proc_sampler_read(s, FALSE, now, &guest, &vmm, &error));
	g_assert_cmpuint(vmbc_proc_sampler_get_smaps_reads(s), ==, 4);
	assert_split_read(&m, guest, vmm);
	at_split = m;
	now += G_USEC_PER_SEC;
	measure(child.pid, child.guest, &m);
	g_assert_true(vmbc_proc_sampler_read(s, FALSE, now, &guest, &vmm, &error));
	g_assert_cmpuint(vmbc_proc_sampler_get_smaps_reads(s), ==, 4);
	assert_statm_read(&at_split, &m, guest, vmm);

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

/*
 * What the sampler promises between smaps reads: guest within 1 % of the
 * guest mapping's Rss (at least 256 KiB), measured by the test's own oracle.
 */
static void
assert_within_bound(const Measure *m, gint64 guest, gint64 vmm)
{
	gint64 tol = MAX(m->guest / 100, (gint64)(256 * 1024 / sysconf(_SC_PAGESIZE)));

	g_assert_cmpint(guest, >=, m->guest - tol);
	g_assert_cmpint(guest, <=, m->guest + tol);
	g_assert_cmpint(guest + vmm, ==, m->resident);
}

/*
 * The VMM's own memory grows between smaps reads: with smaps every 5 minutes
 * the growth used to be charged to the guest until the next one. Now it is
 * caught at the next read, in steps of 2 % of the guest down to the tolerance.
 */
static void
test_sampler_vmm_growth(void)
{
	Child child = {0};
	g_autoptr(VmbcProcSampler) s = NULL;
	g_autoptr(GError) error = NULL;
	gint64 guest = -1;
	gint64 vmm = -1;
	gint64 now = 1000000;
	guint ranges;
	Measure m;

	child_start(&child);
	for (guint i = 0; i < 6; i++)
		child_do(&child, 'g'); /* 48 MiB of guest RAM */
	s = vmbc_proc_sampler_new(child.pid, (guint64)CHILD_GUEST_MIB * MIB);
	measure(child.pid, child.guest, &m);
	g_assert_true(vmbc_proc_sampler_read(s, FALSE, now, &guest, &vmm, &error));
	g_assert_no_error(error);
	assert_split_read(&m, guest, vmm);

	/* the VMM grows by 8 MiB (17 % of the guest) within a tick */
	child_do(&child, 'w');
	now += G_USEC_PER_SEC / 4;
	measure(child.pid, child.guest, &m);
	g_assert_cmpint(m.resident - m.guest - vmm, >=, pages(CHILD_STEP_MIB));
	g_assert_true(vmbc_proc_sampler_read(s, FALSE, now, &guest, &vmm, &error));
	g_assert_no_error(error);
	assert_within_bound(&m, guest, vmm);
	g_assert_cmpuint(vmbc_proc_sampler_get_smaps_reads(s), ==, 1);
	g_assert_cmpuint(vmbc_proc_sampler_get_range_reads(s), ==, 1);

	/*
	 * The guest frees 8 MiB while the VMM grows 8 MiB: statm holds still, so
	 * the estimate is off by that much (the one case statm cannot tell) until
	 * the periodic read, at most EXACT_PERIOD_MAX (30 s) later.
	 */
	child_do(&child, 'x');
	ranges = vmbc_proc_sampler_get_range_reads(s);
	now += G_USEC_PER_SEC / 4;
	measure(child.pid, child.guest, &m);
	g_assert_true(vmbc_proc_sampler_read(s, FALSE, now, &guest, &vmm, &error));
	if (vmbc_proc_sampler_get_range_reads(s) == ranges)
		g_assert_cmpint(guest - m.guest, >, pages(CHILD_STEP_MIB) / 2);
	for (guint i = 0; i < 31 * 4 && vmbc_proc_sampler_get_range_reads(s) == ranges; i++) {
		now += G_USEC_PER_SEC / 4;
		g_assert_true(vmbc_proc_sampler_read(s, FALSE, now, &guest, &vmm, &error));
	}
	g_assert_cmpuint(vmbc_proc_sampler_get_range_reads(s), ==, ranges + 1);
	measure(child.pid, child.guest, &m);
	assert_within_bound(&m, guest, vmm);
	g_assert_cmpuint(vmbc_proc_sampler_get_smaps_reads(s), ==, 1);

	child_kill(&child, TRUE);
}

/* Without PAGEMAP_SCAN (Linux < 6.7), smaps does the exact reads, at most once a second. */
static void
test_sampler_vmm_growth_smaps(void)
{
	Child child = {0};
	g_autoptr(VmbcProcSampler) s = NULL;
	g_autoptr(GError) error = NULL;
	gint64 guest = -1;
	gint64 vmm = -1;
	gint64 now = 1000000;
	Measure at_split;
	Measure m;

	vmbc_proc_set_range_scan(FALSE);
	child_start(&child);
	for (guint i = 0; i < 6; i++)
		child_do(&child, 'g');
	s = vmbc_proc_sampler_new(child.pid, (guint64)CHILD_GUEST_MIB * MIB);
	measure(child.pid, child.guest, &at_split);
	g_assert_true(vmbc_proc_sampler_read(s, FALSE, now, &guest, &vmm, &error));
	assert_split_read(&at_split, guest, vmm);

	/* within the second: the estimate, growth and all */
	child_do(&child, 'w');
	now += G_USEC_PER_SEC / 2;
	measure(child.pid, child.guest, &m);
	g_assert_true(vmbc_proc_sampler_read(s, FALSE, now, &guest, &vmm, &error));
	g_assert_cmpuint(vmbc_proc_sampler_get_smaps_reads(s), ==, 1);
	assert_statm_read(&at_split, &m, guest, vmm);

	/* a second after the last smaps read: smaps again */
	now += G_USEC_PER_SEC / 2;
	measure(child.pid, child.guest, &m);
	g_assert_true(vmbc_proc_sampler_read(s, FALSE, now, &guest, &vmm, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(vmbc_proc_sampler_get_smaps_reads(s), ==, 2);
	g_assert_cmpuint(vmbc_proc_sampler_get_range_reads(s), ==, 0);
	assert_split_read(&m, guest, vmm);

	child_kill(&child, TRUE);
	vmbc_proc_set_range_scan(TRUE);
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
	gint64 guest_kept = -1, guest_opened = -1, vmm_kept = -1, vmm_opened = -1;
	Measure at_split;
	Measure m;
	guint fds;

	child_start(&child);
	child_do(&child, 'g'); /* 8 MiB */
	vmbc_proc_set_statm_budget(1);
	kept = vmbc_proc_sampler_new(child.pid, (guint64)CHILD_GUEST_MIB * MIB);
	opened = vmbc_proc_sampler_new(child.pid, (guint64)CHILD_GUEST_MIB * MIB);

	fds = count_fds();
	measure(child.pid, child.guest, &at_split);
	g_assert_true(vmbc_proc_sampler_read(kept, FALSE, 1000000, &guest_kept, &vmm_kept, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(count_fds(), ==, fds + 1); /* the first one keeps its statm open */
	g_assert_true(
		vmbc_proc_sampler_read(opened, FALSE, 1000000, &guest_opened, &vmm_opened, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(count_fds(), ==, fds + 1); /* the second one is over the budget */
	assert_split_read(&at_split, guest_kept, vmm_kept);
	assert_split_read(&at_split, guest_opened, vmm_opened);
	g_assert_cmpint(guest_opened, >=, pages(8));

	/* statm only (no smaps before the interval): both follow the child's growth */
	child_do(&child, 'g'); /* 16 MiB */
	measure(child.pid, child.guest, &m);
	g_assert_true(vmbc_proc_sampler_read(kept, FALSE, 2000000, &guest_kept, &vmm_kept, &error));
	g_assert_true(
		vmbc_proc_sampler_read(opened, FALSE, 2000000, &guest_opened, &vmm_opened, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(vmbc_proc_sampler_get_smaps_reads(kept), ==, 1);
	g_assert_cmpuint(vmbc_proc_sampler_get_smaps_reads(opened), ==, 1);
	assert_statm_read(&at_split, &m, guest_kept, vmm_kept);
	assert_statm_read(&at_split, &m, guest_opened, vmm_opened);
	g_assert_cmpint(guest_opened, >=, pages(16));

	child_kill(&child, TRUE);
	g_assert_false(
		vmbc_proc_sampler_read(opened, FALSE, 3000000, &guest_opened, &vmm_opened, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_VANISHED);
	g_clear_error(&error);
	g_assert_false(
		vmbc_proc_sampler_read(kept, FALSE, 3000000, &guest_kept, &vmm_kept, &error));
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
	g_test_add_func("/vmbc/procfs/smaps/ranges", test_smaps_ranges);
	g_test_add_func("/vmbc/procfs/sampler/child", test_sampler_child);
	g_test_add_func("/vmbc/procfs/sampler/ranges", test_sampler_ranges);
	g_test_add_func("/vmbc/procfs/sampler/gone", test_sampler_gone);
	g_test_add_func("/vmbc/procfs/sampler/statm-budget", test_sampler_statm_budget);
	g_test_add_func("/vmbc/procfs/sampler/vmm-growth", test_sampler_vmm_growth);
	g_test_add_func("/vmbc/procfs/sampler/vmm-growth-smaps", test_sampler_vmm_growth_smaps);
	g_test_add_func("/vmbc/procfs/sampler/no-guest-mapping", test_sampler_no_guest_mapping);
	g_test_add_func("/vmbc/procfs/ksm", test_ksm);
	return g_test_run();
}
