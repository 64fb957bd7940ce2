/*
 * vmbc-procfs.c: host-side measurement of a VMM process through /proc (see
 * vmbc-procfs.h): a cheap statm read every tick, the guest-RAM mapping's own
 * resident pages from pagemap when statm moved, the whole split from smaps now
 * and then.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "vmbc-error.h"
#include "vmbc-procfs.h"
#include "vmbc-size.h"

/* QEMU aligns guest RAM; a mapping this much larger than RAM still counts as RAM. */
#define GUEST_RAM_SLACK (2 * 1024 * 1024)

/*
 * A sampler keeps its statm open, one pread() a tick. Kept descriptors come
 * out of the open-file limit the QMP sockets also need, so only so many are
 * kept (half the soft limit, less a reserve, unless set); past that a sampler
 * opens statm for each read.
 */
#define STATM_RESERVE 256
static gint statm_budget = -1; /* -1: not computed yet */
static gint statm_kept;

/*
 * PAGEMAP_SCAN (Linux 6.7, <linux/fs.h>): the kernel walks the page tables of
 * one range of another process and returns runs of pages by category, so the
 * guest-RAM mapping's resident pages cost one walk of that range (15-30 us
 * for a 1 GiB TCG guest) instead of a walk and a text rendering of all ~300
 * mappings (smaps, ~1.5 ms). Declared here, as the kernel's uapi does, so that
 * the build does not depend on the headers' age; an older kernel answers
 * ENOTTY or EINVAL, and smaps does the work instead.
 */
typedef struct {
	guint64 start;
	guint64 end;
	guint64 categories;
} PmRegion;

typedef struct {
	guint64 size;
	guint64 flags;
	guint64 start;
	guint64 end;
	guint64 walk_end;
	guint64 vec;
	guint64 vec_len;
	guint64 max_pages;
	guint64 category_inverted;
	guint64 category_mask;
	guint64 category_anyof_mask;
	guint64 return_mask;
} PmScanArg;

#define PM_SCAN_IOCTL	   _IOWR('f', 16, PmScanArg)
#define PM_PAGE_IS_PRESENT (1 << 3)
#define PM_PAGE_IS_PFNZERO (1 << 5)
#define PM_SCAN_VEC_LEN	   128
static gboolean range_scan = TRUE; /* FALSE once the kernel refused PAGEMAP_SCAN, or for tests */

/*
 * Between two exact reads guest RAM is resident - the VMM's share at the last
 * one. Its error is what the VMM grew or shrank since, which statm shows
 * unless the guest moved the other way by as much. So the guest mapping is
 * read again (pagemap) as soon as statm moved by more than EXACT_MOVE_PERCENT
 * of the guest estimate (at least EXACT_MOVE_FLOOR_BYTES, so that a tiny
 * guest does not cost a walk for every page the VMM touches), and at the
 * latest after exact_period, which starts short (QEMU's own memory grows most
 * right after it starts), doubles up to EXACT_PERIOD_MAX while the reads find
 * the VMM's share steady and halves when they find it moved.
 */
#define EXACT_MOVE_PERCENT     1
#define EXACT_MOVE_FLOOR_BYTES (256 * 1024)
#define EXACT_PERIOD_MIN       G_USEC_PER_SEC
#define EXACT_PERIOD_MAX       (30 * G_USEC_PER_SEC)

/*
 * The walk costs about 10 ns per resident small page (2.7 ms for 1 GiB
 * resident without huge pages, 25 us with them): a VM whose statm moves every
 * tick is read again at most once per RANGE_COST_FACTOR times what its last
 * walk took, so that no VM spends more than 1 % of a core on it.
 */
#define RANGE_COST_FACTOR 100

struct _VmbcProcSampler {
	pid_t pid;
	guint64 guest_ram_bytes;
	gint64 smaps_interval;
	gint statm_fd;	     /* -1 while not kept open */
	guint64 start_time;  /* /proc/PID/stat starttime at the first unkept open, 0 unknown */
	gint64 next_smaps;   /* monotonic usec; 0 means now */
	gint64 vmm_estimate; /* pages: resident minus guest RAM at the last exact read */
	gboolean guest_found;
	guint smaps_reads;
	gint64 ksm_pages;      /* pages KSM merged at the last smaps read, -1 unknown */
	gint64 confirm_above;  /* guest pages above which an estimate is confirmed, -1 never */
	gint64 last_smaps;     /* monotonic usec of the last smaps read */
	gint64 last_exact;     /* monotonic usec of the last exact read (smaps or pagemap) */
	gint64 exact_resident; /* statm's resident pages at the last exact read */
	gint64 exact_period;   /* usec between exact reads when statm holds still */
	gint64 next_exact;     /* monotonic usec */
	gint64 next_range;     /* monotonic usec: not before, for what the last walk cost */
	guint range_reads;
	VmbcSmapsSplit split;
	GArray *ranges;	   /* of VmbcRamRange: guest RAM as QEMU named it; NULL: by size */
	gint64 huge_pages; /* guest RAM resident in hugetlb pages at the last exact read */
	gint64 ksm_saved;  /* pages: guest Rss - Pss at the last Pss read (KSM's sharers) */
	gint64 next_pss;   /* monotonic usec: the next Pss read while KSM merges */
	guint pss_reads;
	gboolean taken;	  /* statm was read for the read at taken_now (a batch) */
	gint64 taken_now; /* monotonic usec */
	gint64 taken_resident;
	guint statm_taken;
};

VmbcProcSampler *
vmbc_proc_sampler_new(pid_t pid, guint64 guest_ram_bytes)
{
	VmbcProcSampler *s;

	g_return_val_if_fail(pid > 0, NULL);

	s = g_new0(VmbcProcSampler, 1);
	s->pid = pid;
	s->guest_ram_bytes = guest_ram_bytes;
	s->smaps_interval = VMBC_PROC_DEFAULT_SMAPS_INTERVAL;
	s->statm_fd = -1;
	s->ksm_pages = -1;
	s->confirm_above = -1;
	s->exact_period = EXACT_PERIOD_MIN;
	return s;
}

void
vmbc_proc_sampler_free(VmbcProcSampler *s)
{
	if (s == NULL)
		return;
	if (s->statm_fd >= 0) {
		close(s->statm_fd);
		statm_kept--;
	}
	vmbc_smaps_split_clear(&s->split);
	g_clear_pointer(&s->ranges, g_array_unref);
	g_free(s);
}

void
vmbc_proc_set_statm_budget(gint n)
{
	statm_budget = n;
}

static gboolean
statm_may_keep(void)
{
	if (statm_budget < 0) {
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
			statm_budget = G_MAXINT / 2;
		else
			statm_budget = (gint)MAX(0, (gint64)MIN(rl.rlim_cur, (rlim_t)G_MAXINT) / 2 -
							    STATM_RESERVE);
	}
	return statm_kept < statm_budget;
}

void
vmbc_proc_sampler_set_smaps_interval(VmbcProcSampler *s, gint64 interval_usec)
{
	g_return_if_fail(s != NULL);
	g_return_if_fail(interval_usec > 0);
	s->smaps_interval = interval_usec;
}

pid_t
vmbc_proc_sampler_get_pid(VmbcProcSampler *s)
{
	return s->pid;
}

const VmbcSmapsSplit *
vmbc_proc_sampler_get_split(VmbcProcSampler *s)
{
	return &s->split;
}

void
vmbc_proc_sampler_set_confirm_above(VmbcProcSampler *s, gint64 pages)
{
	s->confirm_above = pages;
}

gboolean
vmbc_proc_sampler_sample(VmbcProcSampler *s, VmbcBeancounter *bc, gint64 now_usec,
			 VmbcSample *sample, GError **error)
{
	gint64 bound = vmbc_parm_first_bound(&bc->parm[VMBC_RES_PHYSPAGES]);

	gsize page_size = vmbc_page_size();

	*sample = (VmbcSample){.physpages = -1,
			       .vmmpages = -1,
			       .balloon_actual = -1,
			       .ksm_pages = -1,
			       .hugetlb_pages = -1,
			       .ram_pages = -1,
			       .ram_hugetlb_pages = -1,
			       .ksm_saved = -1};
	vmbc_proc_sampler_set_confirm_above(s, bound == VMBC_UNLIMITED ? -1 : bound);
	if (!vmbc_proc_sampler_read(s, FALSE, now_usec, &sample->physpages, &sample->vmmpages,
				    error))
		return FALSE; /* it assigns nothing on error: the sample stays all -1 */
	sample->ksm_pages = s->ksm_pages;
	sample->hugetlb_pages = s->huge_pages;
	if (s->split.found) {
		sample->ram_pages = (gint64)(s->split.guest_size / page_size);
		sample->ram_hugetlb_pages = (gint64)(s->split.guest_hugetlb_size / page_size);
		/* Pss is exact where QEMU named guest RAM; by size, the global average stays */
		if (s->ranges != NULL) {
			sample->ksm_saved = MIN(s->ksm_saved, sample->physpages);
			sample->ksm_exact = TRUE;
		}
	}
	return TRUE;
}

void
vmbc_proc_sampler_set_ranges(VmbcProcSampler *s, const VmbcRamRange *ranges, guint n)
{
	g_return_if_fail(s != NULL);
	g_return_if_fail(n == 0 || ranges != NULL);

	g_clear_pointer(&s->ranges, g_array_unref);
	if (n > 0) {
		s->ranges = g_array_sized_new(FALSE, FALSE, sizeof(VmbcRamRange), n);
		g_array_append_vals(s->ranges, ranges, n);
	}
	s->next_smaps = 0;
	s->huge_pages = 0;
	s->ksm_saved = 0;
	/* nothing is known of the new ranges until smaps was read */
	s->smaps_reads = 0;
}

guint
vmbc_proc_sampler_get_pss_reads(VmbcProcSampler *s)
{
	return s->pss_reads;
}

guint
vmbc_proc_sampler_get_smaps_reads(VmbcProcSampler *s)
{
	return s->smaps_reads;
}

guint
vmbc_proc_sampler_get_range_reads(VmbcProcSampler *s)
{
	return s->range_reads;
}

void
vmbc_proc_set_range_scan(gboolean enabled)
{
	range_scan = enabled;
}

static void
set_vanished(VmbcProcSampler *s, GError **error)
{
	g_set_error(error, VMBC_ERROR, VMBC_ERROR_VANISHED, "process %d is gone", (int)s->pid);
}

static gboolean
errno_vanished(int err)
{
	return err == ESRCH || err == ENOENT;
}

/* The process's start time (clock ticks after boot, field 22 of /proc/PID/stat); 0 if gone. */
static guint64
read_start_time(pid_t pid)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/stat", (int)pid);
	g_autofree gchar *text = NULL;
	g_auto(GStrv) fields = NULL;
	const gchar *rparen;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return 0;
	/* the command name may hold spaces and parentheses: fields follow the last ')' */
	rparen = strrchr(text, ')');
	if (rparen == NULL)
		return 0;
	fields = g_strsplit(rparen + 1, " ", 24);
	/* fields[0] is empty (the space after ')'), [1] the state (field 3): field 22 is [20] */
	if (g_strv_length(fields) < 21)
		return 0;
	return g_ascii_strtoull(fields[20], NULL, 10);
}

/*
 * Resident pages from the text of statm ("size resident shared text lib data
 * dt"), read from the process @pid.
 */
static gboolean
parse_statm(pid_t pid, gchar *buf, gint64 *resident, GError **error)
{
	gchar *end = NULL;
	const gchar *p;
	guint64 size;
	guint64 res;

	size = g_ascii_strtoull(buf, &end, 10);
	if (end == buf || *end != ' ') {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED,
			    "cannot parse /proc/%d/statm: '%s'", (int)pid, g_strchomp(buf));
		return FALSE;
	}
	p = end + 1;
	res = g_ascii_strtoull(p, &end, 10);
	if (end == p || res > G_MAXINT64) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED,
			    "cannot parse /proc/%d/statm: '%s'", (int)pid, g_strchomp(buf));
		return FALSE;
	}
	/* An exited process that is not reaped yet has no memory at all. */
	if (size == 0) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_VANISHED, "process %d is gone", (int)pid);
		return FALSE;
	}
	*resident = (gint64)res;
	return TRUE;
}

/* Resident pages from statm, read now. */
static gboolean
read_statm(VmbcProcSampler *s, gint64 *resident, GError **error)
{
	gchar buf[VMBC_PROC_STATM_MAX + 1];
	ssize_t n;
	gint fd;

	fd = s->statm_fd;
	if (fd < 0) {
		g_autofree gchar *path = g_strdup_printf("/proc/%d/statm", (int)s->pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			int err = errno;
			if (errno_vanished(err)) {
				set_vanished(s, error);
				return FALSE;
			}
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED, "cannot open %s: %s",
				    path, g_strerror(err));
			return FALSE;
		}
		if (statm_may_keep()) {
			s->statm_fd = fd;
			statm_kept++;
		} else if (s->start_time == 0) {
			/* who the PID is now, for the reads that open statm again */
			s->start_time = read_start_time(s->pid);
		}
	}
	do {
		n = pread(fd, buf, sizeof(buf) - 1, 0);
	} while (n < 0 && errno == EINTR);
	if (fd != s->statm_fd) {
		int saved = errno;
		close(fd);
		/*
		 * A kept descriptor stays tied to its process; a fresh open follows
		 * the PID, which may be another process's by now.
		 */
		if (s->start_time != 0 && read_start_time(s->pid) != s->start_time) {
			set_vanished(s, error);
			return FALSE;
		}
		errno = saved;
	}
	if (n < 0) {
		int err = errno;
		if (errno_vanished(err)) {
			set_vanished(s, error);
			return FALSE;
		}
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED, "cannot read /proc/%d/statm: %s",
			    (int)s->pid, g_strerror(err));
		return FALSE;
	}
	buf[n] = '\0';
	return parse_statm(s->pid, buf, resident, error);
}

gint
vmbc_proc_sampler_get_statm_fd(VmbcProcSampler *s)
{
	g_return_val_if_fail(s != NULL, -1);
	return s->statm_fd;
}

void
vmbc_proc_sampler_take_statm(VmbcProcSampler *s, const gchar *text, gsize len, gint64 now_usec)
{
	gchar buf[VMBC_PROC_STATM_MAX + 1];

	g_return_if_fail(s != NULL && text != NULL);

	s->taken = FALSE;
	if (len == 0 || len > VMBC_PROC_STATM_MAX)
		return;
	memcpy(buf, text, len);
	buf[len] = '\0';
	/* what does not parse is read again, and that read says what is wrong */
	if (!parse_statm(s->pid, buf, &s->taken_resident, NULL))
		return;
	s->taken = TRUE;
	s->taken_now = now_usec;
}

guint
vmbc_proc_sampler_get_statm_taken(VmbcProcSampler *s)
{
	return s->statm_taken;
}

static gboolean
read_smaps(VmbcProcSampler *s, GError **error)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/smaps", (int)s->pid);
	g_autofree gchar *text = NULL;
	g_autoptr(GError) error_local = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &text, &len, &error_local)) {
		/* ESRCH has no GFileError of its own: ask whether the process is there. */
		g_autofree gchar *dir = g_strdup_printf("/proc/%d", (int)s->pid);
		if (g_error_matches(error_local, G_FILE_ERROR, G_FILE_ERROR_NOENT) ||
		    !g_file_test(dir, G_FILE_TEST_EXISTS)) {
			set_vanished(s, error);
			return FALSE;
		}
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED, "%s", error_local->message);
		return FALSE;
	}
	s->smaps_reads++;
	if (s->ranges != NULL
		    ? !vmbc_smaps_parse_ranges(text, len,
					       (const VmbcRamRange *)(gpointer)s->ranges->data,
					       s->ranges->len, vmbc_page_size(), &s->split, error)
		    : !vmbc_smaps_parse(text, len, s->guest_ram_bytes, &s->split, error)) {
		g_prefix_error(error, "%s: ", path);
		return FALSE;
	}
	/* only guest RAM is mergeable in QEMU: what KSM saves is its Rss less its Pss */
	s->ksm_pages = vmbc_proc_ksm_merging_pages(s->pid);
	s->ksm_saved =
		s->ksm_pages > 0 && s->split.guest_rss > s->split.guest_pss
			? (gint64)((s->split.guest_rss - s->split.guest_pss) / vmbc_page_size())
			: 0;
	return TRUE;
}

/*
 * The resident bytes in [@start, @end) of the open pagemap @fd, as smaps
 * would count them (present, not the shared zero page, small or huge, hugetlb
 * too). FALSE with @*unsupported set if the kernel has no PAGEMAP_SCAN; FALSE
 * with @error on other failures.
 */
static gboolean
scan_range(VmbcProcSampler *s, gint fd, guint64 start, guint64 end, guint64 *bytes,
	   gboolean *unsupported, GError **error)
{
	PmRegion vec[PM_SCAN_VEC_LEN];

	/* a full vector stops the walk at walk_end: go on from there */
	while (start < end) {
		PmScanArg arg = {
			.size = sizeof(arg),
			.start = start,
			.end = end,
			.vec = (guint64)(guintptr)vec,
			.vec_len = G_N_ELEMENTS(vec),
			/* present and, inverted, not the zero page: what smaps counts in Rss */
			.category_mask = PM_PAGE_IS_PRESENT | PM_PAGE_IS_PFNZERO,
			.category_inverted = PM_PAGE_IS_PFNZERO,
			.return_mask = PM_PAGE_IS_PRESENT,
		};
		long n;

		do {
			n = ioctl(fd, PM_SCAN_IOCTL, &arg);
		} while (n < 0 && errno == EINTR);
		if (n < 0) {
			int err = errno;
			if (err == ENOTTY || err == EINVAL || err == EOPNOTSUPP) {
				*unsupported = TRUE;
				return FALSE;
			}
			if (errno_vanished(err)) {
				set_vanished(s, error);
				return FALSE;
			}
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED,
				    "cannot scan /proc/%d/pagemap: %s", (int)s->pid,
				    g_strerror(err));
			return FALSE;
		}
		for (long i = 0; i < n && i < (long)G_N_ELEMENTS(vec); i++)
			*bytes += vec[i].end - vec[i].start;
		if (arg.walk_end <= start || arg.walk_end > end)
			break;
		start = arg.walk_end;
	}
	return TRUE;
}

/*
 * The resident pages of the guest RAM found by the last smaps read, every
 * span through PAGEMAP_SCAN of its range: @guest_pages in small pages and THP
 * (what statm counts), @huge_pages in hugetlb pages (what it does not). FALSE
 * with @*unsupported set if the kernel has no PAGEMAP_SCAN; FALSE with @error
 * on other failures.
 */
static gboolean
read_guest_range(VmbcProcSampler *s, gint64 *guest_pages, gint64 *huge_pages, gboolean *unsupported,
		 GError **error)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/pagemap", (int)s->pid);
	guint64 small = 0;
	guint64 huge = 0;
	gint fd;

	*unsupported = FALSE;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;
		if (errno_vanished(err)) {
			set_vanished(s, error);
			return FALSE;
		}
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED, "cannot open %s: %s", path,
			    g_strerror(err));
		return FALSE;
	}
	for (guint i = 0; s->split.spans != NULL && i < s->split.spans->len; i++) {
		const VmbcRamSpan *span = &g_array_index(s->split.spans, VmbcRamSpan, i);

		if (!scan_range(s, fd, span->start, span->start + span->size,
				span->huge ? &huge : &small, unsupported, error)) {
			close(fd);
			return FALSE;
		}
	}
	close(fd);
	s->range_reads++;
	*guest_pages = (gint64)(small / vmbc_page_size());
	*huge_pages = (gint64)(huge / vmbc_page_size());
	return TRUE;
}

/*
 * KSM merges and unmerges a VM's pages slowly (pages_to_scan every
 * sleep_millisecs); what its sharers pay for (guest Rss less Pss) can only be
 * read from smaps, a hundred times the cost of a pagemap walk. While KSM merges
 * pages of the VM (ksm_merging_pages, read with every exact read), smaps is
 * read again every KSM_PSS_PERIOD, and not before PSS_COST_FACTOR times what
 * the last read took (0.5 % of a core per merged VM at most).
 */
#define KSM_PSS_PERIOD	(5 * G_USEC_PER_SEC)
#define PSS_COST_FACTOR 200

/* How far statm may move from the last exact read before the guest mapping is read again. */
static gint64
exact_move_tolerance(gint64 guest_estimate)
{
	gint64 floor_pages = (gint64)(EXACT_MOVE_FLOOR_BYTES / vmbc_page_size());

	return MAX(MAX(guest_estimate, 0) * EXACT_MOVE_PERCENT / 100, MAX(floor_pages, 1));
}

/*
 * After an exact read that found the VMM's share @vmm_before -> @vmm_after:
 * the next one unless statm moves first. The period adapts to how fast the
 * VMM's own memory moves while statm cannot tell it from the guest's.
 */
static void
schedule_exact(VmbcProcSampler *s, gint64 now, gint64 vmm_before, gint64 vmm_after, gint64 guest)
{
	if (ABS(vmm_after - vmm_before) * 2 > exact_move_tolerance(guest))
		s->exact_period = MAX(s->exact_period / 2, EXACT_PERIOD_MIN);
	else
		s->exact_period = MIN(s->exact_period * 2, EXACT_PERIOD_MAX);
	s->next_exact = now + s->exact_period;
}

/* The next smaps read, a little early at random so that VMs adopted together spread out. */
static void
schedule_smaps(VmbcProcSampler *s, gint64 now)
{
	gint64 jitter = s->smaps_interval / 8;

	s->next_smaps = now + s->smaps_interval;
	if (jitter > 0)
		s->next_smaps -= g_random_int_range(0, (gint32)MIN(jitter, G_MAXINT32));
}

/* An estimate over the confirm threshold is checked with smaps at most this often. */
#define CONFIRM_INTERVAL_USEC G_USEC_PER_SEC

/* Where pagemap cannot be scanned, smaps stands in for it, at most this often. */
#define SMAPS_EXACT_INTERVAL_USEC G_USEC_PER_SEC

/*
 * Whether guest = @resident - the VMM's last share may be off by more than
 * the tolerance: statm moved that far since the last exact read, the estimate
 * decides something (above the confirm threshold), or the period is over.
 */
static gboolean
exact_due(VmbcProcSampler *s, gint64 resident, gint64 guest, gint64 now)
{
	if (s->confirm_above >= 0 && guest + s->huge_pages > s->confirm_above &&
	    now - s->last_exact >= CONFIRM_INTERVAL_USEC)
		return TRUE;
	if (now < s->next_range)
		return FALSE;
	if (ABS(resident - s->exact_resident) > exact_move_tolerance(guest))
		return TRUE;
	return now >= s->next_exact;
}

/* smaps, then statm again; the split, the VMM's share and the schedules from what it found. */
static gboolean
split_with_smaps(VmbcProcSampler *s, gint64 now_usec, gint64 *resident, gint64 *guest,
		 GError **error)
{
	gsize page_size = vmbc_page_size();
	gint64 vmm_before = s->vmm_estimate;
	gint64 guest_rss;
	gint64 t0 = g_get_monotonic_time();

	if (!read_smaps(s, error))
		return FALSE;
	/* while KSM merges this VM, its Pss is read again at most this often */
	s->next_pss =
		now_usec + MAX(KSM_PSS_PERIOD, (g_get_monotonic_time() - t0) * PSS_COST_FACTOR);
	if (s->ksm_pages > 0)
		s->pss_reads++;
	/* statm again: the pair should describe one moment. */
	if (!read_statm(s, resident, error))
		return FALSE;
	s->guest_found = s->split.found;
	guest_rss = (gint64)(s->split.guest_rss / page_size);
	s->huge_pages = (gint64)(s->split.guest_hugetlb / page_size);
	if (s->guest_found) {
		/*
		 * The estimate is taken against statm, not the smaps total,
		 * so that between smaps reads guest = resident - estimate
		 * continues where smaps left off.
		 */
		s->vmm_estimate = MAX(*resident - guest_rss, 0);
		*guest = MIN(guest_rss, *resident);
	} else {
		s->vmm_estimate = 0;
		*guest = *resident;
	}
	schedule_smaps(s, now_usec);
	s->last_smaps = now_usec;
	s->last_exact = now_usec;
	s->exact_resident = *resident;
	if (s->smaps_reads == 1)
		s->next_exact = now_usec + s->exact_period; /* a young VMM: nothing to adapt to */
	else
		schedule_exact(s, now_usec, vmm_before, s->vmm_estimate, *guest);
	return TRUE;
}

/* The guest mapping through pagemap, then statm again; smaps where pagemap cannot be scanned. */
static gboolean
split_with_range(VmbcProcSampler *s, gint64 now_usec, gint64 *resident, gint64 *guest,
		 GError **error)
{
	gint64 vmm_before = s->vmm_estimate;
	gboolean unsupported = FALSE;
	gint64 guest_rss = 0;
	gint64 huge = 0;
	gint64 t0 = g_get_monotonic_time();

	if (!range_scan || !read_guest_range(s, &guest_rss, &huge, &unsupported, error)) {
		if (range_scan && !unsupported)
			return FALSE;
		if (unsupported) {
			g_info("PAGEMAP_SCAN is not available (Linux < 6.7?): guest RAM is "
			       "measured with /proc/PID/smaps, at most once a second per VM");
			range_scan = FALSE;
		}
		/* smaps costs a hundred times more: not more often than this */
		if (now_usec - s->last_smaps < SMAPS_EXACT_INTERVAL_USEC)
			return TRUE;
		return split_with_smaps(s, now_usec, resident, guest, error);
	}
	s->next_range = now_usec + (g_get_monotonic_time() - t0) * RANGE_COST_FACTOR;
	/* statm after the walk: it also tells whether the PID was still that process */
	if (!read_statm(s, resident, error))
		return FALSE;
	s->vmm_estimate = MAX(*resident - guest_rss, 0);
	*guest = MIN(guest_rss, *resident);
	s->huge_pages = huge;
	s->ksm_pages = vmbc_proc_ksm_merging_pages(s->pid);
	if (s->ksm_pages <= 0)
		s->ksm_saved = 0;
	s->last_exact = now_usec;
	s->exact_resident = *resident;
	schedule_exact(s, now_usec, vmm_before, s->vmm_estimate, *guest);
	return TRUE;
}

gboolean
vmbc_proc_sampler_read(VmbcProcSampler *s, gboolean full, gint64 now_usec, gint64 *guest_pages,
		       gint64 *vmm_pages, GError **error)
{
	gsize page_size = vmbc_page_size();
	gint64 ram_pages;
	gint64 resident = 0;
	gint64 guest;

	g_return_val_if_fail(s != NULL, FALSE);
	g_return_val_if_fail(guest_pages != NULL && vmm_pages != NULL, FALSE);

	ram_pages = (gint64)((s->guest_ram_bytes + GUEST_RAM_SLACK) / page_size);
	if (s->ranges != NULL)
		ram_pages = (gint64)(s->split.guest_size / page_size);
	if (s->taken && s->taken_now == now_usec) {
		resident = s->taken_resident;
		s->statm_taken++;
	} else if (!read_statm(s, &resident, error)) {
		s->taken = FALSE;
		return FALSE;
	}
	s->taken = FALSE;
	guest = resident - s->vmm_estimate;
	if (s->smaps_reads == 0 || full || now_usec >= s->next_smaps ||
	    (s->guest_found && s->ksm_pages > 0 && now_usec >= s->next_pss) ||
	    (s->guest_found && (guest < 0 || guest > ram_pages))) {
		if (!split_with_smaps(s, now_usec, &resident, &guest, error))
			return FALSE;
	} else if (s->guest_found && exact_due(s, resident, guest, now_usec)) {
		if (!split_with_range(s, now_usec, &resident, &guest, error))
			return FALSE;
	} else if (!s->guest_found && s->confirm_above >= 0 && guest > s->confirm_above &&
		   now_usec - s->last_smaps >= CONFIRM_INTERVAL_USEC) {
		/* no guest mapping known: only smaps can find one */
		if (!split_with_smaps(s, now_usec, &resident, &guest, error))
			return FALSE;
	}
	*guest_pages = CLAMP(guest, 0, resident) + s->huge_pages;
	*vmm_pages = resident - CLAMP(guest, 0, resident);
	return TRUE;
}

gint64
vmbc_proc_ksm_merging_pages(pid_t pid)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/ksm_merging_pages", (int)pid);
	g_autofree gchar *text = NULL;
	guint64 v = 0;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return -1;
	g_strstrip(text);
	if (!g_ascii_string_to_unsigned(text, 10, 0, G_MAXINT64, &v, NULL))
		return -1;
	return (gint64)v;
}
