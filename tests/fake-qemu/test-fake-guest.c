/*
 * test-fake-guest.c: unit tests of the fake QEMU's guest memory model,
 * checking the model's counts against what mincore(2) sees in the mapping.
 */
#include <gio/gio.h>

#include "fake-guest.h"

#define MIB(n) ((guint64)(n)*1024 * 1024 / fake_guest_get_page_size())

static void
assert_resident(FakeGuest *guest)
{
	g_autoptr(GError) error = NULL;
	FakeGuestState st;
	guint64 measured;

	fake_guest_get_state(guest, &st);
	measured = fake_guest_measure_resident(guest, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(measured, ==, st.anon + st.cache + st.free_resident);
	g_assert_cmpuint(st.anon + st.cache + st.free_resident + st.free_clean + st.balloon, ==,
			 st.ram);
}

static void
test_new(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(FakeGuest) guest = fake_guest_new(16, &error);
	g_autoptr(FakeGuest) bad = NULL;
	FakeGuestState st;
	gsize size = 0;

	g_assert_no_error(error);
	g_assert_nonnull(fake_guest_get_ram(guest, &size));
	g_assert_cmpuint(size, ==, 16 * 1024 * 1024);
	fake_guest_get_state(guest, &st);
	g_assert_cmpuint(st.ram, ==, MIB(16));
	g_assert_cmpuint(st.free_clean, ==, MIB(16));
	g_assert_true(fake_guest_get_free_page_reporting(guest));
	assert_resident(guest);

	bad = fake_guest_new(0, &error);
	g_assert_null(bad);
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
}

static void
test_touch_release(void)
{
	g_autoptr(FakeGuest) guest = fake_guest_new(32, NULL);
	FakeGuestState st;

	fake_guest_set_free_page_reporting(guest, FALSE);
	g_assert_cmpuint(fake_guest_touch(guest, FAKE_MEM_ANON, MIB(8)), ==, MIB(8));
	g_assert_cmpuint(fake_guest_touch(guest, FAKE_MEM_CACHE, MIB(4)), ==, MIB(4));
	assert_resident(guest);

	/* Without free page reporting freed pages stay resident. */
	g_assert_cmpuint(fake_guest_release(guest, FAKE_MEM_ANON, MIB(2)), ==, MIB(2));
	fake_guest_step(guest, 0);
	fake_guest_get_state(guest, &st);
	g_assert_cmpuint(st.free_resident, ==, MIB(2));
	assert_resident(guest);

	/* Touching again reuses them before new pages. */
	fake_guest_touch(guest, FAKE_MEM_CACHE, MIB(3));
	fake_guest_get_state(guest, &st);
	g_assert_cmpuint(st.free_resident, ==, 0);
	g_assert_cmpuint(st.cache, ==, MIB(7));
	assert_resident(guest);

	/* Freeing more than there is frees what there is. */
	g_assert_cmpuint(fake_guest_release(guest, FAKE_MEM_ANON, MIB(100)), ==, MIB(6));

	/* With reporting on, the next step discards them. */
	fake_guest_set_free_page_reporting(guest, TRUE);
	g_assert_false(fake_guest_step(guest, 0));
	fake_guest_get_state(guest, &st);
	g_assert_cmpuint(st.free_resident, ==, 0);
	g_assert_cmpuint(st.anon, ==, 0);
	assert_resident(guest);
}

static void
test_out_of_memory(void)
{
	g_autoptr(FakeGuest) guest = fake_guest_new(16, NULL);
	FakeGuestState st;

	g_assert_cmpuint(fake_guest_touch(guest, FAKE_MEM_CACHE, MIB(12)), ==, MIB(12));
	/* Cache only gets free pages. */
	g_assert_cmpuint(fake_guest_touch(guest, FAKE_MEM_CACHE, MIB(8)), ==, MIB(4));
	/* Anon pushes cache out. */
	g_assert_cmpuint(fake_guest_touch(guest, FAKE_MEM_ANON, MIB(10)), ==, MIB(10));
	fake_guest_get_state(guest, &st);
	g_assert_cmpuint(st.anon, ==, MIB(10));
	g_assert_cmpuint(st.cache, ==, MIB(6));
	g_assert_cmpuint(fake_guest_touch(guest, FAKE_MEM_ANON, MIB(10)), ==, MIB(6));
	g_assert_cmpuint(st.touched_total + MIB(6), ==, MIB(32));
	assert_resident(guest);
}

static void
test_balloon(void)
{
	g_autoptr(FakeGuest) guest = fake_guest_new(64, NULL);
	FakeGuestState st;
	guint steps = 0;

	fake_guest_set_free_page_reporting(guest, FALSE);
	fake_guest_touch(guest, FAKE_MEM_ANON, MIB(16));
	fake_guest_touch(guest, FAKE_MEM_CACHE, MIB(32));
	fake_guest_release(guest, FAKE_MEM_CACHE, MIB(8));
	assert_resident(guest);

	/* 40 MiB: 16 never touched, 8 resident free, then 16 of cache. */
	fake_guest_set_balloon_target(guest, MIB(40));
	while (fake_guest_step(guest, MIB(3))) {
		assert_resident(guest);
		steps++;
	}
	g_assert_cmpuint(steps, ==, 13);
	fake_guest_get_state(guest, &st);
	g_assert_cmpuint(st.balloon, ==, MIB(40));
	g_assert_cmpuint(st.cache, ==, MIB(8));
	g_assert_cmpuint(st.free_resident + st.free_clean, ==, 0);
	assert_resident(guest);

	/* The balloon stops at anon: RAM − anon. */
	fake_guest_set_balloon_target(guest, MIB(64));
	g_assert_false(fake_guest_step(guest, MIB(64)));
	fake_guest_get_state(guest, &st);
	g_assert_cmpuint(st.balloon, ==, MIB(48));
	g_assert_cmpuint(st.cache, ==, 0);
	assert_resident(guest);

	/* Anon freed: the balloon goes on. */
	fake_guest_release(guest, FAKE_MEM_ANON, MIB(4));
	g_assert_true(fake_guest_step(guest, MIB(2)));
	while (fake_guest_step(guest, MIB(2)))
		;
	fake_guest_get_state(guest, &st);
	g_assert_cmpuint(st.balloon, ==, MIB(52));
	assert_resident(guest);

	/* Deflate: pages come back discarded. */
	fake_guest_set_balloon_target(guest, 0);
	while (fake_guest_step(guest, MIB(16)))
		;
	fake_guest_get_state(guest, &st);
	g_assert_cmpuint(st.balloon, ==, 0);
	g_assert_cmpuint(st.free_clean + st.free_resident, ==, MIB(52));
	assert_resident(guest);

	/* A target beyond RAM is clamped; a step of 0 never moves it. */
	fake_guest_set_balloon_target(guest, MIB(1000));
	g_assert_false(fake_guest_step(guest, 0));
	fake_guest_get_state(guest, &st);
	g_assert_cmpuint(st.balloon_target, ==, MIB(64));
	g_assert_cmpuint(st.balloon, ==, 0);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/vmbc/fake-qemu/guest/new", test_new);
	g_test_add_func("/vmbc/fake-qemu/guest/touch-release", test_touch_release);
	g_test_add_func("/vmbc/fake-qemu/guest/out-of-memory", test_out_of_memory);
	g_test_add_func("/vmbc/fake-qemu/guest/balloon", test_balloon);
	return g_test_run();
}
