/*
 * vmbc-procfs.h: host-side measurement of a VMM process through /proc.
 *
 * held is host-side truth (SPEC §2): how many of a VM's guest-RAM pages the
 * host maps now, and how many other pages its VMM process keeps resident.
 * Reading /proc/PID/smaps for one QEMU costs about 2 ms, /proc/PID/statm
 * about 10 us, so a VmbcProcSampler reads statm every tick and finds the
 * guest-RAM mapping with smaps only now and then (SPEC §6 "Reading /proc");
 * in between, when statm moves, it reads that one mapping's resident pages
 * through /proc/PID/pagemap (PAGEMAP_SCAN, 15-30 us), so that what QEMU's own
 * memory does is never charged to the guest for long.
 *
 * Nothing here needs a main loop or GObject; the backends call it from their
 * sample vfunc.
 */
#pragma once

#include <glib.h>
#include <sys/types.h>

#include "vmbc-engine.h"
#include "vmbc-smaps.h"

G_BEGIN_DECLS

/* How often the split is re-derived from smaps unless told otherwise (vmbc.conf smaps-interval). */
#define VMBC_PROC_DEFAULT_SMAPS_INTERVAL (300 * G_USEC_PER_SEC)

typedef struct _VmbcProcSampler VmbcProcSampler;

/*
 * A sampler for the process @pid whose guest has @guest_ram_bytes of RAM.
 * Opens nothing yet: the first vmbc_proc_sampler_read() does, and always
 * reads smaps.
 */
VmbcProcSampler *vmbc_proc_sampler_new(pid_t pid, guint64 guest_ram_bytes);

void vmbc_proc_sampler_free(VmbcProcSampler *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbcProcSampler, vmbc_proc_sampler_free)

/*
 * How many samplers may keep /proc/PID/statm open (one descriptor each);
 * the others open it for every read. By default half the open-file soft
 * limit at the first read, less a reserve, so that the QMP sockets (one a
 * VM) always have room. For tests.
 */
void vmbc_proc_set_statm_budget(gint n);

/* How often smaps is read (usec, > 0); a small random jitter spreads many VMs apart. */
void vmbc_proc_sampler_set_smaps_interval(VmbcProcSampler *s, gint64 interval_usec);

pid_t vmbc_proc_sampler_get_pid(VmbcProcSampler *s);

/*
 * Measures the process now (@now_usec: monotonic). @guest_pages is the
 * guest RAM resident on the host, @vmm_pages the rest of the process's
 * resident pages, both in pages of the host page size.
 *
 * On most calls only statm is read (with pread on a descriptor kept open, or
 * taken from a batch that read it for this @now_usec, vmbc-statm-batch.h):
 * guest = resident - the VMM's share at the last exact read. smaps is read
 * again when @full is TRUE, when the smaps interval has passed, or when the
 * estimate is implausible (negative, above the guest's RAM). In between, the
 * guest mapping alone is read again exactly (PAGEMAP_SCAN of its range; smaps
 * at most once a second on kernels before 6.7) when statm moved by more than
 * 1 % of the guest estimate (at least 256 KiB) since the last exact read, when
 * the estimate is above the confirm threshold (at most once a second), and
 * at the latest every 1-30 s (short while the VMM's share moves, as right
 * after QEMU starts; longer while it holds still); but not again before 100
 * times what the last walk took (about 10 ns per resident small page, so 25 us
 * with huge pages, 2.7 ms for 1 GiB without). So guest is within 1 % of the
 * mapping's Rss unless, within that period, the guest and the VMM moved by
 * about as much in opposite directions, or a guest of many small pages moved
 * faster than its walk may be repeated.
 *
 * If no mapping looks like guest RAM, every resident page is counted as
 * guest (charging too much rather than too little) and
 * vmbc_proc_sampler_get_split() says so.
 *
 * Returns FALSE with VMBC_ERROR_VANISHED ("process 1234 is gone") once the
 * process has exited (a kept statm descriptor stays tied to the first process
 * with that PID, and where statm is opened for each read the process's start
 * time is checked, so a reused PID is never measured instead); other read errors
 * are VMBC_ERROR_FAILED naming the file. The outputs are untouched on error.
 */
gboolean vmbc_proc_sampler_read(VmbcProcSampler *s, gboolean full, gint64 now_usec,
				gint64 *guest_pages, gint64 *vmm_pages, GError **error);

/* The longest statm text read: seven numbers of at most 20 digits and their spaces. */
#define VMBC_PROC_STATM_MAX 255

/*
 * The descriptor of @s's /proc/PID/statm while it keeps one open, else -1
 * (not read yet, or past the descriptor budget: then every read opens it).
 * For vmbc-statm-batch.c, which reads it on the sampler's behalf; the sampler
 * still owns it.
 */
gint vmbc_proc_sampler_get_statm_fd(VmbcProcSampler *s);

/*
 * @len bytes of @text are what a read of @s's kept statm descriptor returned
 * for the tick at @now_usec (vmbc-statm-batch.c): the next
 * vmbc_proc_sampler_read() at that same @now_usec takes them instead of
 * reading statm itself; a read at any other time reads, and forgets them.
 * Text that does not parse (or says the process is gone) is dropped, so that
 * the read reads again and reports what is wrong as it always does.
 */
void vmbc_proc_sampler_take_statm(VmbcProcSampler *s, const gchar *text, gsize len,
				  gint64 now_usec);

/* How many reads took statm from vmbc_proc_sampler_take_statm(), for tests and debugging. */
guint vmbc_proc_sampler_get_statm_taken(VmbcProcSampler *s);

/* What the last smaps read found (borrowed; found is FALSE before the first one). */
const VmbcSmapsSplit *vmbc_proc_sampler_get_split(VmbcProcSampler *s);

/*
 * Guest RAM is the @n ranges QEMU named (copied; vmbc-smaps.h): from the next
 * read on, which reads smaps, they are counted instead of the one mapping of
 * the guest's RAM size, each walked through pagemap, hugetlb-backed ones
 * apart (statm does not count hugetlb pages; they are added to guest RAM). @n
 * 0 goes back to the size. With ranges, the sample also says what KSM's
 * sharers pay for (guest Rss less Pss, exact) rather than leaving the engine
 * to charge KSM's global average.
 */
void vmbc_proc_sampler_set_ranges(VmbcProcSampler *s, const VmbcRamRange *ranges, guint n);

/* How many smaps reads were for the Pss of a VM KSM merges, for tests and debugging. */
guint vmbc_proc_sampler_get_pss_reads(VmbcProcSampler *s);

/* How many times smaps was read, for tests and debugging. */
guint vmbc_proc_sampler_get_smaps_reads(VmbcProcSampler *s);

/* How many times the guest mapping alone was read through pagemap, for tests and debugging. */
guint vmbc_proc_sampler_get_range_reads(VmbcProcSampler *s);

/*
 * FALSE makes every sampler read smaps where it would scan pagemap, as on a
 * kernel without PAGEMAP_SCAN (which turns it off by itself). For tests.
 */
void vmbc_proc_set_range_scan(gboolean enabled);

/*
 * Between smaps reads guest RAM is estimated from statm, taking the VMM's own
 * memory as unchanged. Where the estimate decides something (it is above the
 * VM's barrier or limit), it is confirmed with smaps, at most once a second:
 * an estimate above @pages triggers an exact read. -1 turns this off.
 */
void vmbc_proc_sampler_set_confirm_above(VmbcProcSampler *s, gint64 pages);

/*
 * One tick's sample of the VM of @bc: guest RAM, the VMM's pages and KSM's
 * merged pages, with estimates above the VM's first bound (barrier or limit)
 * confirmed by smaps. balloon_actual is left at -1. On error FALSE is returned,
 * @sample is all -1, and the error is VMBC_ERROR_VANISHED if the process is gone.
 */
gboolean vmbc_proc_sampler_sample(VmbcProcSampler *s, VmbcBeancounter *bc, gint64 now_usec,
				  VmbcSample *sample, GError **error);

/*
 * /proc/PID/ksm_merging_pages: the process's pages merged by KSM, or -1 if
 * the kernel does not have the file (before 6.1) or it cannot be read.
 */
gint64 vmbc_proc_ksm_merging_pages(pid_t pid);

G_END_DECLS
