/*
 * test-statm-batch.c: a tick's statm reads together through io_uring
 * (src/host/vmbc-statm-batch.c) against real processes, this one and a
 * child: what the batch hands a sampler is what /proc/PID/statm said between
 * just before the ring read it and just after the sampler took it; the pread
 * path asked for, a ring that cannot be set up, a read that fails and a
 * process that is gone all leave the samplers reading as before.
 *
 * A child that holds still is not quite still: the kernel may collapse its
 * pages into a huge one or reclaim some (3567 became 3571 pages once between
 * two reads under AddressSanitizer). So the child asks for no huge pages, and
 * every check brackets the reading by the truth read before and after it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmbc-error.h"
#include "vmbc-procfs.h"
#include "vmbc-statm-batch.h"
#include "statm-oracle.h"

#define CHILD_TOUCH_MIB 9

/*
 * A child that makes CHILD_TOUCH_MIB resident and then holds still until
 * killed, or until this process dies: a failed assertion here must not leave
 * it holding the test's output open.
 */
static pid_t
child_start(void)
{
	pid_t parent = getpid();
	int ready[2];
	pid_t pid;
	char c = 0;

	g_assert_cmpint(pipe(ready), ==, 0);
	pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		gsize len = (gsize)CHILD_TOUCH_MIB << 20;
		char *p;

		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(1);
		(void)prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			_exit(1);
		for (gsize i = 0; i < len; i += 4096)
			p[i] = 1;
		if (write(ready[1], &c, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(ready[1]);
	g_assert_cmpint(read(ready[0], &c, 1), ==, 1);
	close(ready[0]);
	return pid;
}

static void
child_stop(pid_t pid)
{
	g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
	g_assert_cmpint(waitpid(pid, NULL, 0), ==, pid);
}

/* What statm said of a process just before and just after a reading was taken. */
typedef struct {
	gint64 lo;
	gint64 hi;
} Bracket;

static void
bracket_open(Bracket *br, pid_t pid)
{
	br->lo = br->hi = statm_oracle_resident(pid);
}

static void
bracket_close(Bracket *br, pid_t pid)
{
	gint64 now = statm_oracle_resident(pid);

	br->lo = MIN(br->lo, now);
	br->hi = MAX(br->hi, now);
}

/* @got lies within @br widened by @slack pages on each side. */
static void
assert_in_bracket(gint64 got, const Bracket *br, gint64 slack)
{
	g_assert_cmpint(got, >=, br->lo - slack);
	g_assert_cmpint(got, <=, br->hi + slack);
}

/* One sample of @s at @now: resident pages (guest + VMM, no hugetlb here). */
static gint64
sample_resident(VmbcProcSampler *s, gint64 now)
{
	g_autoptr(GError) error = NULL;
	gint64 guest = -1;
	gint64 vmm = -1;

	g_assert_true(vmbc_proc_sampler_read(s, FALSE, now, &guest, &vmm, &error));
	g_assert_no_error(error);
	return guest + vmm;
}

static VmbcStatmBatch *
uring_batch_or_skip(void)
{
	VmbcStatmBatch *b = vmbc_statm_batch_new(VMBC_STATM_READS_URING);

	if (vmbc_statm_batch_get_path(b) != VMBC_STATM_READS_URING) {
		vmbc_statm_batch_free(b);
		g_test_skip("io_uring is not built in or not allowed here");
		return NULL;
	}
	return b;
}

/* The child's and this process's statm through the ring agree with pread, tick after tick. */
static void
test_agrees(void)
{
	g_autoptr(VmbcStatmBatch) b = uring_batch_or_skip();
	g_autoptr(VmbcProcSampler) self = NULL;
	g_autoptr(VmbcProcSampler) kid = NULL;
	pid_t pid;
	gint64 now = 1000000;

	if (b == NULL)
		return;
	pid = child_start();
	self = vmbc_proc_sampler_new(getpid(), 64 << 20);
	kid = vmbc_proc_sampler_new(pid, 64 << 20);
	/* the first reads open statm: nothing to batch before */
	g_assert_false(vmbc_statm_batch_add(b, kid));
	(void)sample_resident(self, now);
	(void)sample_resident(kid, now);
	g_assert_cmpint(vmbc_proc_sampler_get_statm_fd(kid), >=, 0);
	for (guint tick = 1; tick <= 5; tick++) {
		Bracket br_self;
		Bracket br_kid;
		gint64 got_self;
		gint64 got_kid;

		now += G_USEC_PER_SEC;
		bracket_open(&br_kid, pid);
		bracket_open(&br_self, getpid());
		g_assert_true(vmbc_statm_batch_add(b, self));
		g_assert_true(vmbc_statm_batch_add(b, kid));
		g_assert_cmpuint(vmbc_statm_batch_get_pending(b), ==, 2);
		g_assert_cmpuint(vmbc_statm_batch_run(b, now), ==, 2);
		g_assert_cmpuint(vmbc_statm_batch_get_pending(b), ==, 0);
		got_kid = sample_resident(kid, now);
		got_self = sample_resident(self, now);
		bracket_close(&br_self, getpid());
		bracket_close(&br_kid, pid);
		g_assert_cmpuint(vmbc_proc_sampler_get_statm_taken(kid), ==, tick);
		g_assert_cmpuint(vmbc_proc_sampler_get_statm_taken(self), ==, tick);
		/* the child holds still but for the kernel: within what statm said around it */
		assert_in_bracket(got_kid, &br_kid, 0);
		g_assert_cmpint(got_kid, >=,
				(CHILD_TOUCH_MIB << 20) / (gint64)sysconf(_SC_PAGESIZE));
		/* this process allocates a little while it reads and samples */
		assert_in_bracket(got_self, &br_self, 64);
	}
	g_assert_true(vmbc_statm_batch_get_path(b) == VMBC_STATM_READS_URING);
	child_stop(pid);
}

/* More samplers than the ring holds: several submissions, every one handed its reading. */
static void
test_many(void)
{
	g_autoptr(VmbcStatmBatch) b = uring_batch_or_skip();
	g_autoptr(GPtrArray) samplers =
		g_ptr_array_new_with_free_func((GDestroyNotify)vmbc_proc_sampler_free);
	struct rlimit saved;
	struct rlimit rl;
	const guint n = 5000;
	g_autofree gint64 *got = g_new0(gint64, n);
	Bracket br;
	pid_t pid;

	if (b == NULL)
		return;
	g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &saved), ==, 0);
	if (saved.rlim_max != RLIM_INFINITY && saved.rlim_max < n + 512) {
		g_test_skip("the open-file limit is too low for 5000 statm descriptors");
		return;
	}
	rl = saved;
	rl.rlim_cur = MAX(saved.rlim_cur, (rlim_t)n + 512);
	g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &rl), ==, 0);
	vmbc_proc_set_statm_budget((gint)n);
	pid = child_start();
	for (guint i = 0; i < n; i++) {
		VmbcProcSampler *s = vmbc_proc_sampler_new(pid, 64 << 20);

		vmbc_proc_sampler_set_smaps_interval(s, G_GINT64_CONSTANT(3600) * G_USEC_PER_SEC);
		(void)sample_resident(s, 1);
		g_ptr_array_add(samplers, s);
		g_assert_true(vmbc_statm_batch_add(b, s));
	}
	bracket_open(&br, pid);
	g_assert_cmpuint(vmbc_statm_batch_run(b, 2), ==, n);
	for (guint i = 0; i < n; i++)
		got[i] = sample_resident(g_ptr_array_index(samplers, i), 2);
	bracket_close(&br, pid);
	for (guint i = 0; i < n; i++) {
		assert_in_bracket(got[i], &br, 0);
		g_assert_cmpuint(vmbc_proc_sampler_get_statm_taken(g_ptr_array_index(samplers, i)),
				 ==, 1);
	}
	g_ptr_array_set_size(samplers, 0);
	child_stop(pid);
	vmbc_proc_set_statm_budget(-1);
	g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &saved), ==, 0);
}

/* A reading handed for one tick is not taken at another: that read reads. */
static void
test_other_tick(void)
{
	g_autoptr(VmbcStatmBatch) b = uring_batch_or_skip();
	g_autoptr(VmbcProcSampler) s = NULL;

	if (b == NULL)
		return;
	s = vmbc_proc_sampler_new(getpid(), 64 << 20);
	(void)sample_resident(s, 1);
	g_assert_true(vmbc_statm_batch_add(b, s));
	g_assert_cmpuint(vmbc_statm_batch_run(b, 2), ==, 1);
	(void)sample_resident(s, 3);
	g_assert_cmpuint(vmbc_proc_sampler_get_statm_taken(s), ==, 0);
	/* and it is forgotten: not taken later at its own tick either */
	(void)sample_resident(s, 2);
	g_assert_cmpuint(vmbc_proc_sampler_get_statm_taken(s), ==, 0);
}

/* Asked for pread: nothing is batched, the samplers read as they always did. */
static void
test_pread_asked(void)
{
	g_autoptr(VmbcStatmBatch) b = vmbc_statm_batch_new(VMBC_STATM_READS_PREAD);
	g_autoptr(VmbcProcSampler) s = vmbc_proc_sampler_new(getpid(), 64 << 20);
	Bracket br;
	gint64 got;

	g_assert_true(vmbc_statm_batch_get_asked(b) == VMBC_STATM_READS_PREAD);
	g_assert_true(vmbc_statm_batch_get_path(b) == VMBC_STATM_READS_PREAD);
	(void)sample_resident(s, 1);
	g_assert_false(vmbc_statm_batch_add(b, s));
	g_assert_cmpuint(vmbc_statm_batch_run(b, 2), ==, 0);
	bracket_open(&br, getpid());
	got = sample_resident(s, 2);
	bracket_close(&br, getpid());
	assert_in_bracket(got, &br, 64);
	g_assert_cmpuint(vmbc_proc_sampler_get_statm_taken(s), ==, 0);
}

/* A ring that cannot be set up (io_uring disabled): the pread path, and the same readings. */
static void
test_ring_fails(void)
{
	g_autoptr(VmbcStatmBatch) b = NULL;
	g_autoptr(VmbcProcSampler) s = NULL;
	pid_t pid = child_start();
	Bracket br;
	gint64 got;

	vmbc_statm_batch_set_ring_fails(TRUE);
	b = vmbc_statm_batch_new(VMBC_STATM_READS_URING);
	vmbc_statm_batch_set_ring_fails(FALSE);
	g_assert_true(vmbc_statm_batch_get_asked(b) == VMBC_STATM_READS_URING);
	g_assert_true(vmbc_statm_batch_get_path(b) == VMBC_STATM_READS_PREAD);
	s = vmbc_proc_sampler_new(pid, 64 << 20);
	(void)sample_resident(s, 1);
	g_assert_false(vmbc_statm_batch_add(b, s));
	g_assert_cmpuint(vmbc_statm_batch_run(b, 2), ==, 0);
	bracket_open(&br, pid);
	got = sample_resident(s, 2);
	bracket_close(&br, pid);
	assert_in_bracket(got, &br, 0);
	g_assert_cmpuint(vmbc_proc_sampler_get_statm_taken(s), ==, 0);
	child_stop(pid);
}

/* A read that fails in the ring is read again by the sampler, which says what went wrong. */
static void
test_read_fails(void)
{
	g_autoptr(VmbcStatmBatch) b = uring_batch_or_skip();
	g_autoptr(VmbcProcSampler) s = NULL;
	g_autoptr(GError) error = NULL;
	gint64 guest = -1;
	gint64 vmm = -1;
	int dir;

	if (b == NULL)
		return;
	s = vmbc_proc_sampler_new(getpid(), 64 << 20);
	(void)sample_resident(s, 1);
	/* the kept descriptor now reads a directory: EISDIR, in the ring and out of it */
	dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	g_assert_cmpint(dir, >=, 0);
	g_assert_cmpint(dup3(dir, vmbc_proc_sampler_get_statm_fd(s), O_CLOEXEC), >=, 0);
	close(dir);
	g_assert_true(vmbc_statm_batch_add(b, s));
	g_assert_cmpuint(vmbc_statm_batch_run(b, 2), ==, 0);
	g_assert_false(vmbc_proc_sampler_read(s, FALSE, 2, &guest, &vmm, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_FAILED);
	g_assert_cmpint(guest, ==, -1);
	g_assert_cmpuint(vmbc_proc_sampler_get_statm_taken(s), ==, 0);
	/* one failed read does not close the ring */
	g_assert_true(vmbc_statm_batch_get_path(b) == VMBC_STATM_READS_URING);
}

/* A process gone (not reaped yet): nothing handed, and the sampler's read says it is gone. */
static void
test_gone(void)
{
	g_autoptr(VmbcStatmBatch) b = uring_batch_or_skip();
	g_autoptr(VmbcProcSampler) s = NULL;
	g_autoptr(GError) error = NULL;
	gint64 guest = -1;
	gint64 vmm = -1;
	siginfo_t info = {0};
	pid_t pid;

	if (b == NULL)
		return;
	pid = child_start();
	s = vmbc_proc_sampler_new(pid, 64 << 20);
	(void)sample_resident(s, 1);
	g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
	/* a zombie: dead, its statm all zeros until it is reaped */
	g_assert_cmpint(waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT), ==, 0);
	g_assert_true(vmbc_statm_batch_add(b, s));
	g_assert_cmpuint(vmbc_statm_batch_run(b, 2), ==, 1);
	g_assert_false(vmbc_proc_sampler_read(s, FALSE, 2, &guest, &vmm, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_VANISHED);
	g_assert_cmpuint(vmbc_proc_sampler_get_statm_taken(s), ==, 0);
	g_assert_cmpint(waitpid(pid, NULL, 0), ==, pid);
}

/* A sampler past the descriptor budget keeps no statm open and is never batched. */
static void
test_unkept(void)
{
	g_autoptr(VmbcStatmBatch) b = uring_batch_or_skip();
	g_autoptr(VmbcProcSampler) s = NULL;

	if (b == NULL)
		return;
	vmbc_proc_set_statm_budget(0);
	s = vmbc_proc_sampler_new(getpid(), 64 << 20);
	(void)sample_resident(s, 1);
	g_assert_cmpint(vmbc_proc_sampler_get_statm_fd(s), ==, -1);
	g_assert_false(vmbc_statm_batch_add(b, s));
	(void)sample_resident(s, 2);
	g_assert_cmpuint(vmbc_proc_sampler_get_statm_taken(s), ==, 0);
	vmbc_proc_set_statm_budget(-1);
}

static void
test_from_string(void)
{
	VmbcStatmReads how = VMBC_STATM_READS_PREAD;

	g_assert_true(vmbc_statm_reads_from_string("uring", &how));
	g_assert_true(how == VMBC_STATM_READS_URING);
	g_assert_true(vmbc_statm_reads_from_string("pread", &how));
	g_assert_true(how == VMBC_STATM_READS_PREAD);
	g_assert_false(vmbc_statm_reads_from_string("aio", &how));
	g_assert_false(vmbc_statm_reads_from_string(NULL, &how));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/vmbc/statm-batch/agrees", test_agrees);
	g_test_add_func("/vmbc/statm-batch/many", test_many);
	g_test_add_func("/vmbc/statm-batch/other-tick", test_other_tick);
	g_test_add_func("/vmbc/statm-batch/pread-asked", test_pread_asked);
	g_test_add_func("/vmbc/statm-batch/ring-fails", test_ring_fails);
	g_test_add_func("/vmbc/statm-batch/read-fails", test_read_fails);
	g_test_add_func("/vmbc/statm-batch/gone", test_gone);
	g_test_add_func("/vmbc/statm-batch/unkept", test_unkept);
	g_test_add_func("/vmbc/statm-batch/from-string", test_from_string);
	return g_test_run();
}
