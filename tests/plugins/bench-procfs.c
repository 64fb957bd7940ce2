/*
 * bench-procfs.c: what one VM's host-side sample costs (src/host/vmbc-procfs.c),
 * on a real process: a tick that reads statm alone, a tick that also reads the
 * guest-RAM mapping through pagemap (statm moved, or the period is over), and
 * a full smaps read. Run by hand (docs/performance.md):
 *
 *   bench-procfs PID GUEST_MIB [ROUNDS]   a running QEMU with GUEST_MIB of RAM
 *   bench-procfs --self GUEST_MIB [ROUNDS] a mapping of this process, touched in
 *                                          small pages (no THP): the walk's worst case
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmbc-procfs.h"

#define MIB (1024 * 1024)

/* Microseconds per vmbc_proc_sampler_read() with @full, @now moving by @step each round. */
static gdouble
time_reads(VmbcProcSampler *s, guint rounds, gboolean full, gint64 step, guint *range_reads,
	   guint *smaps_reads)
{
	g_autoptr(GError) error = NULL;
	static gint64 now = G_USEC_PER_SEC;
	guint range0 = vmbc_proc_sampler_get_range_reads(s);
	guint smaps0 = vmbc_proc_sampler_get_smaps_reads(s);
	gint64 guest = 0;
	gint64 vmm = 0;
	gint64 t0 = g_get_monotonic_time();

	for (guint i = 0; i < rounds; i++) {
		now += step;
		if (!vmbc_proc_sampler_read(s, full, now, &guest, &vmm, &error)) {
			g_printerr("read: %s\n", error->message);
			exit(1);
		}
	}
	*range_reads = vmbc_proc_sampler_get_range_reads(s) - range0;
	*smaps_reads = vmbc_proc_sampler_get_smaps_reads(s) - smaps0;
	return (gdouble)(g_get_monotonic_time() - t0) / rounds;
}

int
main(int argc, char **argv)
{
	g_autoptr(VmbcProcSampler) s = NULL;
	const VmbcSmapsSplit *split;
	guint rounds = 2000;
	guint64 guest_mib;
	guint ranges, smaps;
	gdouble us;
	pid_t pid;

	if (argc < 3) {
		g_printerr("usage: %s PID|--self GUEST_MIB [ROUNDS]\n", argv[0]);
		return 2;
	}
	guest_mib = g_ascii_strtoull(argv[2], NULL, 10);
	if (argc > 3)
		rounds = (guint)g_ascii_strtoull(argv[3], NULL, 10);
	if (strcmp(argv[1], "--self") == 0) {
		gsize len = guest_mib * MIB;
		gchar *p =
			mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return 1;
		(void)madvise(p, len, MADV_NOHUGEPAGE);
		memset(p, 1, len);
		pid = getpid();
	} else {
		pid = (pid_t)atoi(argv[1]);
	}

	s = vmbc_proc_sampler_new(pid, guest_mib * MIB);
	/* only the paths measured here read smaps */
	vmbc_proc_sampler_set_smaps_interval(s, G_MAXINT64 / 4);
	us = time_reads(s, 1, TRUE, 0, &ranges, &smaps);
	split = vmbc_proc_sampler_get_split(s);
	if (!split->found) {
		g_printerr("no mapping of %" G_GUINT64_FORMAT " MiB in process %d\n", guest_mib,
			   (int)pid);
		return 1;
	}
	g_print("process %d: guest mapping %" G_GUINT64_FORMAT " MiB, Rss %" G_GUINT64_FORMAT
		" MiB, %u mappings\n",
		(int)pid, split->guest_size / MIB, split->guest_rss / MIB, split->mappings);

	/* ticks 250 ms apart: statm alone unless statm moves */
	us = time_reads(s, rounds, FALSE, G_USEC_PER_SEC / 4, &ranges, &smaps);
	g_print("tick, statm alone:        %8.1f us  (%u of %u also read the mapping)\n", us,
		ranges, rounds);
	/* ticks 31 s apart: the period is over at every one, so each reads the mapping */
	us = time_reads(s, rounds, FALSE, 31 * G_USEC_PER_SEC, &ranges, &smaps);
	g_print("tick, statm + pagemap:    %8.1f us  (%u of %u read the mapping)\n", us, ranges,
		rounds);
	us = time_reads(s, MAX(rounds / 20, 1), TRUE, 0, &ranges, &smaps);
	g_print("full read, smaps + statm: %8.1f us  (%u reads)\n", us, smaps);
	return 0;
}
