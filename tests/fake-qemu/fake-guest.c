/*
 * fake-guest.c: the memory model of the fake QEMU's pretend guest.
 *
 * See fake-guest.h for the zones. The invariant kept by every function here:
 * pages [0, anon + cache + free_resident) of the mapping are resident and the
 * rest are not, so the mapping's Rss in smaps is exactly what the model says.
 */
#include "fake-guest.h"

#include <errno.h>
#include <gio/gio.h>
#include <sys/mman.h>
#include <unistd.h>

struct _FakeGuest {
	guint8 *ram;
	gsize ram_bytes;
	gsize page_size;
	FakeGuestState st;
	gboolean fpr;
};

gsize
fake_guest_get_page_size(void)
{
	static gsize page_size;

	if (page_size == 0)
		page_size = (gsize)sysconf(_SC_PAGESIZE);
	return page_size;
}

FakeGuest *
fake_guest_new(guint64 ram_mib, GError **error)
{
	g_autoptr(FakeGuest) self = g_new0(FakeGuest, 1);
	void *ram;

	if (ram_mib == 0 || ram_mib > G_MAXSIZE / (1024 * 1024)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "invalid guest RAM size %" G_GUINT64_FORMAT " MiB", ram_mib);
		return NULL;
	}
	self->page_size = fake_guest_get_page_size();
	self->ram_bytes = (gsize)ram_mib * 1024 * 1024;
	ram = mmap(NULL, self->ram_bytes, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ram == MAP_FAILED) {
		int saved = errno;
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved),
			    "cannot map %" G_GUINT64_FORMAT " MiB of guest RAM: %s", ram_mib,
			    g_strerror(saved));
		return NULL;
	}
	self->ram = ram;
	/*
	 * No transparent huge pages: Rss then moves page by page as the model
	 * does, and the distinct VMA flag keeps the kernel from merging the
	 * mapping with a neighbouring anonymous one (malloc's), so it stays
	 * exactly the guest's size.
	 */
	(void)madvise(self->ram, self->ram_bytes, MADV_NOHUGEPAGE);
	self->st.ram = self->ram_bytes / self->page_size;
	self->st.free_clean = self->st.ram;
	self->fpr = TRUE;
	return g_steal_pointer(&self);
}

void
fake_guest_free(FakeGuest *self)
{
	if (self == NULL)
		return;
	if (self->ram != NULL)
		munmap(self->ram, self->ram_bytes);
	g_free(self);
}

gpointer
fake_guest_get_ram(FakeGuest *self, gsize *size)
{
	if (size != NULL)
		*size = self->ram_bytes;
	return self->ram;
}

static guint64
resident_end(FakeGuest *self)
{
	return self->st.anon + self->st.cache + self->st.free_resident;
}

/* Makes pages [first, first + n) resident by writing to each. */
static void
populate(FakeGuest *self, guint64 first, guint64 n)
{
	for (guint64 i = first; i < first + n; i++)
		self->ram[i * self->page_size] = 0x5a;
}

/* Gives pages [first, first + n) back to the host. */
static void
discard(FakeGuest *self, guint64 first, guint64 n)
{
	if (n == 0)
		return;
	if (madvise(self->ram + first * self->page_size, n * self->page_size, MADV_DONTNEED) != 0)
		g_warning("madvise(MADV_DONTNEED) of %" G_GUINT64_FORMAT " guest pages failed: %s",
			  n, g_strerror(errno));
}

guint64
fake_guest_touch(FakeGuest *self, FakeMemKind kind, guint64 pages)
{
	guint64 *count = kind == FAKE_MEM_ANON ? &self->st.anon : &self->st.cache;
	guint64 want = pages;
	guint64 n;

	/* Resident free pages: already on the host, only relabelled. */
	n = MIN(want, self->st.free_resident);
	self->st.free_resident -= n;
	*count += n;
	want -= n;

	/* Discarded free pages: the first write faults each one in. */
	n = MIN(want, self->st.free_clean);
	if (n > 0) {
		populate(self, resident_end(self), n);
		self->st.free_clean -= n;
		*count += n;
		want -= n;
	}

	/* Out of free memory, anonymous memory pushes the page cache out. */
	if (kind == FAKE_MEM_ANON) {
		n = MIN(want, self->st.cache);
		self->st.cache -= n;
		self->st.anon += n;
		want -= n;
	}

	self->st.touched_total += pages - want;
	return pages - want;
}

guint64
fake_guest_release(FakeGuest *self, FakeMemKind kind, guint64 pages)
{
	guint64 *count = kind == FAKE_MEM_ANON ? &self->st.anon : &self->st.cache;
	guint64 n = MIN(pages, *count);

	*count -= n;
	self->st.free_resident += n;
	return n;
}

void
fake_guest_set_free_page_reporting(FakeGuest *self, gboolean enabled)
{
	self->fpr = enabled;
}

gboolean
fake_guest_get_free_page_reporting(FakeGuest *self)
{
	return self->fpr;
}

void
fake_guest_set_balloon_target(FakeGuest *self, guint64 pages)
{
	self->st.balloon_target = MIN(pages, self->st.ram);
}

/* Takes up to @want pages into the balloon; returns how many it took. */
static guint64
inflate(FakeGuest *self, guint64 want)
{
	guint64 got = 0;
	guint64 n;

	/* Discarded free pages sit right below the balloon: a boundary move. */
	n = MIN(want - got, self->st.free_clean);
	self->st.free_clean -= n;
	got += n;

	/* Then resident free pages, from the top of the resident zone. */
	n = MIN(want - got, self->st.free_resident);
	if (n > 0) {
		discard(self, resident_end(self) - n, n);
		self->st.free_resident -= n;
		got += n;
	}

	/* Then the guest drops caches; anon stays, so the balloon stops there. */
	n = MIN(want - got, self->st.cache);
	if (n > 0) {
		discard(self, resident_end(self) - n, n);
		self->st.cache -= n;
		got += n;
	}

	self->st.balloon += got;
	return got;
}

gboolean
fake_guest_step(FakeGuest *self, guint64 max_balloon_pages)
{
	if (self->fpr && self->st.free_resident > 0) {
		guint64 used = self->st.anon + self->st.cache;
		discard(self, used, self->st.free_resident);
		self->st.free_clean += self->st.free_resident;
		self->st.free_resident = 0;
	}

	if (max_balloon_pages == 0)
		return FALSE;

	if (self->st.balloon < self->st.balloon_target) {
		guint64 want = MIN(self->st.balloon_target - self->st.balloon, max_balloon_pages);
		guint64 got = inflate(self, want);
		/* Blocked by anon: nothing more until the guest frees some. */
		if (got < want)
			return FALSE;
	} else if (self->st.balloon > self->st.balloon_target) {
		/* Deflated pages come back discarded; the guest faults them in on use. */
		guint64 n = MIN(self->st.balloon - self->st.balloon_target, max_balloon_pages);
		self->st.balloon -= n;
		self->st.free_clean += n;
	}
	return self->st.balloon != self->st.balloon_target;
}

void
fake_guest_get_state(FakeGuest *self, FakeGuestState *state)
{
	*state = self->st;
}

guint64
fake_guest_measure_resident(FakeGuest *self, GError **error)
{
	g_autofree guint8 *vec = g_malloc(self->st.ram);
	guint64 resident = 0;

	if (mincore(self->ram, self->ram_bytes, vec) != 0) {
		int saved = errno;
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved), "mincore failed: %s",
			    g_strerror(saved));
		return 0;
	}
	for (guint64 i = 0; i < self->st.ram; i++)
		resident += vec[i] & 1;
	return resident;
}
