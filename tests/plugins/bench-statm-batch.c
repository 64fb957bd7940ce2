/*
 * bench-statm-batch.c: what a tick's statm reads cost one by one (pread) and
 * together (src/host/vmbc-statm-batch.c, io_uring), without the rest of a
 * tick: N samplers of real processes, each keeping its statm open, read ROUNDS
 * times both ways. Wall time per read, and this process's CPU per read, which
 * counts io_uring's io-wq workers (threads of this process, those that exited
 * too). Run by hand (docs/performance.md, "statm through io_uring"):
 *
 *   bench-statm-batch N [ROUNDS] [PID ...]   N samplers over the PIDs (this process if none)
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "vmbc-procfs.h"
#include "vmbc-statm-batch.h"

static gint64
cpu_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (gint64)ts.tv_sec * G_USEC_PER_SEC + ts.tv_nsec / 1000;
}

/* @rounds ticks of reading every sampler: through @batch, or each alone if it is NULL. */
static void
run(GPtrArray *samplers, VmbcStatmBatch *batch, guint rounds, gint64 *now, const gchar *what)
{
	gint64 wall0 = g_get_monotonic_time();
	gint64 cpu0 = cpu_usec();
	guint handed = 0;
	gdouble reads = (gdouble)rounds * samplers->len;

	for (guint r = 0; r < rounds; r++) {
		*now += G_USEC_PER_SEC;
		if (batch != NULL) {
			for (guint i = 0; i < samplers->len; i++)
				(void)vmbc_statm_batch_add(batch, g_ptr_array_index(samplers, i));
			handed += vmbc_statm_batch_run(batch, *now);
		}
		for (guint i = 0; i < samplers->len; i++) {
			g_autoptr(GError) error = NULL;
			gint64 guest;
			gint64 vmm;

			if (!vmbc_proc_sampler_read(g_ptr_array_index(samplers, i), FALSE, *now,
						    &guest, &vmm, &error)) {
				g_printerr("read: %s\n", error->message);
				exit(1);
			}
		}
	}
	g_print("%-6s %6u samplers: %6.2f us wall, %6.2f us CPU per read (%u handed by the "
		"batch)\n",
		what, samplers->len, (gdouble)(g_get_monotonic_time() - wall0) / reads,
		(gdouble)(cpu_usec() - cpu0) / reads, handed);
}

int
main(int argc, char **argv)
{
	g_autoptr(GPtrArray) samplers =
		g_ptr_array_new_with_free_func((GDestroyNotify)vmbc_proc_sampler_free);
	g_autoptr(VmbcStatmBatch) batch = NULL;
	struct rlimit rl;
	guint n;
	guint rounds = 20;
	gint64 now = G_USEC_PER_SEC;

	if (argc < 2) {
		g_printerr("usage: %s N [ROUNDS] [PID ...]\n", argv[0]);
		return 2;
	}
	n = (guint)g_ascii_strtoull(argv[1], NULL, 10);
	if (argc > 2)
		rounds = MAX((guint)g_ascii_strtoull(argv[2], NULL, 10), 1);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	vmbc_proc_set_statm_budget((gint)n);
	for (guint i = 0; i < n; i++) {
		pid_t pid = argc > 3 ? (pid_t)atoi(argv[3 + i % (guint)(argc - 3)]) : getpid();
		VmbcProcSampler *s = vmbc_proc_sampler_new(pid, 64 << 20);
		g_autoptr(GError) error = NULL;
		gint64 guest;
		gint64 vmm;

		/* smaps once, at this first read, which also opens statm; then statm alone */
		vmbc_proc_sampler_set_smaps_interval(s, G_MAXINT64 / 4);
		if (!vmbc_proc_sampler_read(s, FALSE, now, &guest, &vmm, &error)) {
			g_printerr("process %d: %s\n", (int)pid, error->message);
			return 1;
		}
		g_ptr_array_add(samplers, s);
	}
	batch = vmbc_statm_batch_new(VMBC_STATM_READS_URING);
	if (vmbc_statm_batch_get_path(batch) != VMBC_STATM_READS_URING) {
		g_printerr("io_uring cannot be used here\n");
		return 1;
	}
	/* alternately, so that both see the same machine */
	for (guint k = 0; k < 3; k++) {
		run(samplers, NULL, rounds, &now, "pread");
		run(samplers, batch, rounds, &now, "uring");
	}
	return 0;
}
