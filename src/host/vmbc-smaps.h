/*
 * vmbc-smaps.h: the reader of /proc/PID/smaps text that tells a VMM's guest
 * RAM from the rest of its memory.
 *
 * Guest RAM is what QEMU says it is: every RAM backend it maps (main RAM,
 * NUMA nodes, DIMMs, virtio-mem, memfd, file and hugetlbfs backends), given
 * as host address ranges (VmbcRamRange) that the backend asked QEMU for.
 * Where QEMU could not say (no such command, an old QEMU, a fake one), the
 * one mapping of the guest's RAM size stands in for it, as before.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* One RAM backend as QEMU maps it in its own address space. */
typedef struct {
	guint64 start; /* host virtual address of the backend's first byte */
	guint64 size;  /* bytes */
} VmbcRamRange;

/* What smaps said of one guest-RAM range (or of the mapping found by size). */
typedef struct {
	guint64 start;
	guint64 size;
	guint64 rss;	 /* bytes in small pages and THP (what statm counts) */
	guint64 pss;	 /* their proportional share (KSM, other sharers) */
	guint64 hugetlb; /* bytes in hugetlb pages (Private_ + Shared_Hugetlb; not in Rss) */
	gboolean huge;	 /* hugetlb-backed: KernelPageSize above the base page */
	guint vmas;	 /* how many mappings of smaps lie in it */
} VmbcRamSpan;

/* What one pass over smaps found. Sizes in bytes. */
typedef struct {
	guint64 total_rss;	    /* Rss of every mapping */
	gboolean found;		    /* guest RAM was found (by range or by size) */
	guint64 guest_start;	    /* the first span's start */
	guint64 guest_size;	    /* the spans' summed size */
	guint64 guest_rss;	    /* the spans' summed Rss (small pages and THP) */
	guint64 guest_pss;	    /* the spans' summed Pss */
	guint64 guest_hugetlb;	    /* the spans' resident hugetlb bytes */
	guint64 guest_hugetlb_size; /* the summed size of hugetlb-backed spans */
	gchar *guest_name;	    /* the first span's path column: "" for anonymous memory */
	GArray *spans;		    /* of VmbcRamSpan; NULL when nothing was found */
	guint mappings;		    /* how many mappings were read */
} VmbcSmapsSplit;

void vmbc_smaps_split_clear(VmbcSmapsSplit *split);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(VmbcSmapsSplit, vmbc_smaps_split_clear)

/*
 * Parses the text of a /proc/PID/smaps file and finds the guest-RAM mapping
 * of a VM with @guest_ram_bytes of RAM: a readable, writable, non-executable
 * mapping that is plain anonymous memory (no path), a memfd ("/memfd:...")
 * or a named anonymous one ("[anon:...]"), whose size is @guest_ram_bytes or
 * up to 2 MiB more (alignment). When several match, the largest wins (then
 * the one with more Rss). QEMU 7.2 with -m 512 maps "7f..-7f.. rw-p 00000000
 * 00:00 0" of exactly 512 MiB; with memory-backend-memfd,
 * "/memfd:memory-backend-memfd (deleted)", rw-s. TCG's code buffer is rwx
 * and so never mistaken for guest RAM.
 *
 * @split is filled (and must be cleared by the caller); no match is not an
 * error (@split->found is FALSE). Returns FALSE with VMBC_ERROR_INVALID if the
 * text is not smaps (a header or an Rss line that does not parse).
 */
gboolean vmbc_smaps_parse(const gchar *text, gsize len, guint64 guest_ram_bytes,
			  VmbcSmapsSplit *split, GError **error);

/*
 * Like vmbc_smaps_parse(), but guest RAM is the @n_ranges ranges QEMU named:
 * every mapping that starts inside one is counted to it (the kernel splits a
 * backend's mapping where madvise or mprotect changed part of it; a backend's
 * own mmap never reaches past it). @split->spans has one entry per range, in
 * order, even for a range with no mapping (then it has no VMAs and found is
 * FALSE if no range has one). A mapping whose KernelPageSize is above
 * @base_page_size is hugetlb: its pages are in Private_Hugetlb and
 * Shared_Hugetlb, never in Rss.
 */
gboolean vmbc_smaps_parse_ranges(const gchar *text, gsize len, const VmbcRamRange *ranges,
				 guint n_ranges, gsize base_page_size, VmbcSmapsSplit *split,
				 GError **error);

G_END_DECLS
