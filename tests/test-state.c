/*
 * test-state.c: the state file's round trip for what survives a restart of
 * vmbcd: limits, counters, beancounter ids, the balloon driver state and what
 * vmbcd set on each balloon; and what a bad entry costs (only itself).
 */
#include <glib/gstdio.h>

#include "vmbc-state.h"

typedef struct {
	gchar *dir;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	f->dir = g_dir_make_tmp("vmbc-test-state-XXXXXX", &error);
	g_assert_no_error(error);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	g_autofree gchar *path = g_build_filename(f->dir, "state.json", NULL);

	g_unlink(path);
	g_rmdir(f->dir);
	g_free(f->dir);
}

static VmbcState *
load(Fixture *f)
{
	g_autoptr(GError) error = NULL;
	VmbcState *state = vmbc_state_new(f->dir);

	g_assert_true(vmbc_state_load(state, &error));
	g_assert_no_error(error);
	return state;
}

static void
test_round_trip(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VmbcState) state = vmbc_state_new(f->dir);
	g_autoptr(VmbcState) again = NULL;
	VmbcBalloonClaim claim = {.target = 100352,
				  .before = 262144,
				  .limit = 102400,
				  .reason = VMBC_BALLOON_FOR_LIMIT};
	VmbcBalloonClaim got;
	gint64 b, l;

	vmbc_state_set(state, "g2", VMBC_RES_PHYSPAGES, 102400, 102400);
	vmbc_state_set_id(state, "g1", 1);
	vmbc_state_set_id(state, "g2", 2);
	vmbc_state_set_balloon(state, "g1", VMBC_BALLOON_NO_DRIVER);
	g_assert_true(vmbc_state_set_balloon_claim(state, "g2", &claim));
	/* the same again is no change: no save needed */
	g_assert_false(vmbc_state_set_balloon_claim(state, "g2", &claim));
	g_assert_false(vmbc_state_set_balloon(state, "g1", VMBC_BALLOON_NO_DRIVER));
	g_assert_true(vmbc_state_save(state, &error));
	g_assert_no_error(error);

	again = load(f);
	g_assert_true(vmbc_state_get(again, "g2", VMBC_RES_PHYSPAGES, &b, &l));
	g_assert_cmpint(l, ==, 102400);
	g_assert_cmpuint(vmbc_state_get_id(again, "g1"), ==, 1);
	g_assert_cmpuint(vmbc_state_get_id(again, "g2"), ==, 2);
	g_assert_cmpuint(vmbc_state_get_id(again, "g3"), ==, 0);
	g_assert_cmpuint(vmbc_state_get_max_id(again), ==, 2);
	g_assert_cmpint(vmbc_state_get_balloon(again, "g1"), ==, VMBC_BALLOON_NO_DRIVER);
	g_assert_cmpint(vmbc_state_get_balloon(again, "g2"), ==, VMBC_BALLOON_UNKNOWN);
	g_assert_false(vmbc_state_get_balloon_claim(again, "g1", &got));
	g_assert_true(vmbc_state_get_balloon_claim(again, "g2", &got));
	g_assert_cmpint(got.target, ==, claim.target);
	g_assert_cmpint(got.before, ==, claim.before);
	g_assert_cmpint(got.limit, ==, claim.limit);
	g_assert_cmpint(got.reason, ==, claim.reason);

	/* the VM ended: its balloon with it; its id and limits stay */
	vmbc_state_forget_counters(again, "g2");
	g_assert_false(vmbc_state_get_balloon_claim(again, "g2", &got));
	vmbc_state_forget_counters(again, "g1");
	g_assert_cmpint(vmbc_state_get_balloon(again, "g1"), ==, VMBC_BALLOON_UNKNOWN);
	g_assert_cmpuint(vmbc_state_get_id(again, "g2"), ==, 2);
	g_assert_true(vmbc_state_get(again, "g2", VMBC_RES_PHYSPAGES, &b, &l));
	/* a claim given up */
	g_assert_true(vmbc_state_set_balloon_claim(again, "g1", &claim));
	g_assert_true(vmbc_state_set_balloon_claim(again, "g1", NULL));
	g_assert_false(vmbc_state_get_balloon_claim(again, "g1", &got));
}

/* A bad entry is named and ignored; the rest of the domain is kept. */
static void
test_bad_entries(Fixture *f, gconstpointer data)
{
	g_autofree gchar *path = g_build_filename(f->dir, "state.json", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(VmbcState) state = NULL;
	VmbcBalloonClaim got;

	g_assert_true(g_file_set_contents(
		path,
		"{\"version\": 1, \"domains\": {"
		"\"a\": {\"id\": -3, \"balloon\": \"sideways\", \"counters\": {},"
		"       \"balloon-set\": {\"target\": 5, \"before\": 9, \"limit\": 9,"
		"                         \"reason\": \"whim\"}},"
		"\"b\": {\"id\": 7, \"balloon\": \"ok\","
		"       \"balloon-set\": {\"target\": 5, \"before\": 9, \"limit\": 9,"
		"                         \"reason\": \"host\"}}}}",
		-1, &error));
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "*ignoring bad id of 'a'*");
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "*ignoring bad balloon of 'a'*");
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
			      "*ignoring bad balloon-set of 'a'*");
	state = load(f);
	g_test_assert_expected_messages();
	g_assert_cmpuint(vmbc_state_get_id(state, "a"), ==, 0);
	g_assert_cmpint(vmbc_state_get_balloon(state, "a"), ==, VMBC_BALLOON_UNKNOWN);
	g_assert_false(vmbc_state_get_balloon_claim(state, "a", &got));
	g_assert_cmpuint(vmbc_state_get_id(state, "b"), ==, 7);
	g_assert_cmpint(vmbc_state_get_balloon(state, "b"), ==, VMBC_BALLOON_OK);
	g_assert_true(vmbc_state_get_balloon_claim(state, "b", &got));
	g_assert_cmpint(got.reason, ==, VMBC_BALLOON_FOR_HOST);
}

/*
 * Every field, and names and a policy that JSON must escape (quotes,
 * backslashes, newlines, control characters, UTF-8), read back as written;
 * an empty state too.
 */
static void
test_round_trip_escapes(Fixture *f, gconstpointer data)
{
	const gchar *name = "we\"ird\\ n\u00e4me\n\t\x01";
	const gchar *policy = "<vmbc:policy xmlns:vmbc=\"urn:x-vmbc:policy:1\">\n"
			      "  <limit resource='physpages'>1G</limit>\r\n</vmbc:policy>";
	g_autoptr(GError) error = NULL;
	g_autoptr(VmbcState) empty = vmbc_state_new(f->dir);
	g_autoptr(VmbcState) state = vmbc_state_new(f->dir);
	g_autoptr(VmbcState) again = NULL;
	VmbcBalloonClaim claim = {
		.target = 5, .before = 9, .limit = 7, .reason = VMBC_BALLOON_FOR_HOST};
	VmbcBalloonClaim got;
	gint64 b, l, maxheld;
	guint64 failcnt;

	g_assert_true(vmbc_state_save(empty, &error));
	g_assert_no_error(error);
	again = load(f);
	g_assert_cmpuint(vmbc_state_get_max_id(again), ==, 0);
	g_clear_pointer(&again, vmbc_state_free);

	vmbc_state_set(state, name, VMBC_RES_PHYSPAGES, 100, 200);
	vmbc_state_set(state, name, VMBC_RES_VMGUARPAGES, 50, G_MAXINT64);
	vmbc_state_set_counters(state, name, VMBC_RES_PHYSPAGES, 300, G_MAXUINT64);
	vmbc_state_set_counters(state, name, VMBC_RES_VMMPAGES, 12, 3);
	vmbc_state_set_memory_high(state, name, TRUE);
	vmbc_state_set_id(state, name, 42);
	vmbc_state_set_policy(state, name, policy);
	vmbc_state_set_balloon(state, name, VMBC_BALLOON_OK);
	g_assert_true(vmbc_state_set_balloon_claim(state, name, &claim));
	vmbc_state_set_id(state, "plain", 43);
	g_assert_true(vmbc_state_save(state, &error));
	g_assert_no_error(error);

	again = load(f);
	g_assert_true(vmbc_state_get(again, name, VMBC_RES_PHYSPAGES, &b, &l));
	g_assert_cmpint(b, ==, 100);
	g_assert_cmpint(l, ==, 200);
	g_assert_true(vmbc_state_get(again, name, VMBC_RES_VMGUARPAGES, &b, &l));
	g_assert_cmpint(b, ==, 50);
	g_assert_cmpint(l, ==, G_MAXINT64);
	g_assert_false(vmbc_state_get(again, name, VMBC_RES_VMMPAGES, &b, &l));
	g_assert_true(vmbc_state_get_counters(again, name, VMBC_RES_PHYSPAGES, &maxheld, &failcnt));
	g_assert_cmpint(maxheld, ==, 300);
	g_assert_cmpuint(failcnt, ==, (guint64)G_MAXINT64);
	g_assert_true(vmbc_state_get_counters(again, name, VMBC_RES_VMMPAGES, &maxheld, &failcnt));
	g_assert_cmpint(maxheld, ==, 12);
	g_assert_cmpuint(failcnt, ==, 3);
	g_assert_true(vmbc_state_get_memory_high(again, name));
	g_assert_cmpuint(vmbc_state_get_id(again, name), ==, 42);
	g_assert_cmpstr(vmbc_state_get_policy(again, name), ==, policy);
	g_assert_cmpint(vmbc_state_get_balloon(again, name), ==, VMBC_BALLOON_OK);
	g_assert_true(vmbc_state_get_balloon_claim(again, name, &got));
	g_assert_cmpint(got.target, ==, 5);
	g_assert_cmpint(got.before, ==, 9);
	g_assert_cmpint(got.limit, ==, 7);
	g_assert_cmpint(got.reason, ==, VMBC_BALLOON_FOR_HOST);
	g_assert_cmpuint(vmbc_state_get_id(again, "plain"), ==, 43);
	g_assert_false(vmbc_state_get_memory_high(again, "plain"));
}

#define ADD(path, fn)                                                                              \
	g_test_add("/vmbc/state/" path, Fixture, NULL, fixture_setup, fn, fixture_teardown)

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	ADD("round-trip", test_round_trip);
	ADD("round-trip/escapes", test_round_trip_escapes);
	ADD("bad-entries", test_bad_entries);
	return g_test_run();
}
