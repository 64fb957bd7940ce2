/*
 * fake-guest.h: the memory model of the fake QEMU's pretend guest.
 *
 * Guest RAM is a real anonymous mapping of exactly the guest's size, so the
 * host sees it in /proc/PID/smaps as it sees a real QEMU's guest RAM, and its
 * Rss is what the model says is resident. The guest's pages are counted in
 * host pages and kept in four contiguous zones, in this order:
 *
 *   [ used (anon + cache) | free, resident | free, discarded | balloon ]
 *
 * so every transition is a boundary move plus, where pages enter or leave the
 * host, a write to each new page or one madvise(MADV_DONTNEED) on a range.
 * "anon" is memory the guest cannot give up (anonymous memory, tmpfs, no swap);
 * "cache" is page cache it drops when the balloon or anon needs the pages.
 * Free page reporting, when on, discards the resident free pages on the next
 * step; the balloon moves toward its target by at most a given number of pages
 * a step, taking discarded free pages first, then resident free pages, then
 * cache, and never anon.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
	FAKE_MEM_ANON,
	FAKE_MEM_CACHE,
} FakeMemKind;

typedef struct _FakeGuest FakeGuest;

/* A snapshot of the model, in pages of fake_guest_get_page_size(). */
typedef struct {
	guint64 ram;	       /* the guest's RAM */
	guint64 anon;	       /* used, not reclaimable */
	guint64 cache;	       /* used, dropped when needed */
	guint64 free_resident; /* freed but not (yet) reported: still on the host */
	guint64 free_clean;    /* never touched, reported or deflated: not on the host */
	guint64 balloon;       /* given to the host */
	guint64 balloon_target;
	guint64 touched_total; /* every page the guest ever touched: its minor faults */
} FakeGuestState;

gsize fake_guest_get_page_size(void);

/*
 * Maps @ram_mib MiB of guest RAM (nothing resident yet). Fails with a
 * G_IO_ERROR for a size of 0 or a mapping the kernel refuses.
 */
FakeGuest *fake_guest_new(guint64 ram_mib, GError **error);

/* Unmaps the guest RAM. */
void fake_guest_free(FakeGuest *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FakeGuest, fake_guest_free)

/* The guest RAM mapping: for tests that look for it in /proc. */
gpointer fake_guest_get_ram(FakeGuest *self, gsize *size);

/*
 * The guest uses @pages more pages of @kind: free pages first (resident ones
 * before discarded ones, which are written to make them resident); anon may
 * also take the place of cache. Returns how many pages it got, less than
 * @pages when the guest is out of memory.
 */
guint64 fake_guest_touch(FakeGuest *self, FakeMemKind kind, guint64 pages);

/*
 * The guest frees up to @pages pages of @kind; they stay resident until free
 * page reporting discards them. Returns how many it freed.
 */
guint64 fake_guest_release(FakeGuest *self, FakeMemKind kind, guint64 pages);

void fake_guest_set_free_page_reporting(FakeGuest *self, gboolean enabled);
gboolean fake_guest_get_free_page_reporting(FakeGuest *self);

/* The balloon size the guest moves toward, clamped to the RAM. */
void fake_guest_set_balloon_target(FakeGuest *self, guint64 pages);

/*
 * One step of the guest: reports resident free pages when free page reporting
 * is on, and moves the balloon toward its target by at most @max_balloon_pages
 * (0 leaves the balloon alone, as a guest without a balloon driver does).
 * Returns TRUE if another step could still change something.
 */
gboolean fake_guest_step(FakeGuest *self, guint64 max_balloon_pages);

void fake_guest_get_state(FakeGuest *self, FakeGuestState *state);

/* Pages of the guest RAM resident on the host, measured with mincore(2). */
guint64 fake_guest_measure_resident(FakeGuest *self, GError **error);

G_END_DECLS
