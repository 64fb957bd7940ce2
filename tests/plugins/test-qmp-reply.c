/*
 * test-qmp-reply.c: the qmp backend's readers of QEMU's replies
 * (plugins/qmp/vmbc-qmp-reply.c) on replies in the shape QEMU sends them,
 * without a connection.
 */
#include "vmbc-qmp-reply.h"
#include "vmbc-size.h"

static JsonNode *
parse(const gchar *json)
{
	g_autoptr(GError) error = NULL;
	JsonNode *node = json_from_string(json, &error);

	g_assert_no_error(error);
	return node;
}

static gint64
pages(gint64 bytes)
{
	return bytes / (gint64)vmbc_page_size();
}

/* qom-get of guest-stats from a guest that has reported, one stat "not reported" */
static void
test_guest_stats(void)
{
	g_autoptr(JsonNode) ret =
		parse("{\"stats\": {\"stat-available-memory\": 268435456, "
		      "\"stat-free-memory\": 134217728, \"stat-disk-caches\": 67108864, "
		      "\"stat-total-memory\": 536870912, \"stat-swap-in\": 0, "
		      "\"stat-major-faults\": 18446744073709551615}, \"last-update\": 1700000000}");
	VmbcGuestStats gs;

	g_assert_true(vmbc_qmp_reply_guest_stats(ret, &gs));
	g_assert_cmpint(gs.last_update, ==, 1700000000);
	g_assert_cmpint(gs.available, ==, pages(268435456));
	g_assert_cmpint(gs.free, ==, pages(134217728));
	g_assert_cmpint(gs.caches, ==, pages(67108864));
	g_assert_cmpint(gs.total, ==, pages(536870912));
	g_assert_cmpint(gs.swap_in, ==, 0);
	g_assert_cmpint(gs.major_faults, ==, -1);
}

/* before the guest's first report: last-update 0, or no stats at all */
static void
test_guest_stats_not_yet(void)
{
	const gchar *replies[] = {
		"{\"stats\": {\"stat-free-memory\": 18446744073709551615}, \"last-update\": 0}",
		"{\"last-update\": 1700000000}",
		"{\"stats\": 1, \"last-update\": 1700000000}",
		"[]",
	};
	VmbcGuestStats none;

	for (guint i = 0; i < G_N_ELEMENTS(replies); i++) {
		g_autoptr(JsonNode) ret = parse(replies[i]);
		VmbcGuestStats gs = {7, 7, 7, 7, 7, 7, 7};

		g_test_message("%s", replies[i]);
		g_assert_false(vmbc_qmp_reply_guest_stats(ret, &gs));
		g_assert_cmpint(gs.available, ==, 7); /* untouched */
	}
	g_assert_false(vmbc_qmp_reply_guest_stats(NULL, &none));
}

/* query-balloon's reply and BALLOON_CHANGE's data */
static void
test_balloon_actual(void)
{
	g_autoptr(JsonNode) ok = parse("{\"actual\": 536870912}");
	g_autoptr(JsonNode) unknown = parse("{\"actual\": 18446744073709551615}");
	g_autoptr(JsonNode) text = parse("{\"actual\": \"512M\"}");

	g_assert_cmpint(vmbc_qmp_reply_balloon_actual(vmbc_qmp_reply_object(ok)), ==,
			pages(536870912));
	g_assert_cmpint(vmbc_qmp_reply_balloon_actual(vmbc_qmp_reply_object(unknown)), ==, -1);
	g_assert_cmpint(vmbc_qmp_reply_balloon_actual(vmbc_qmp_reply_object(text)), ==, -1);
	g_assert_cmpint(vmbc_qmp_reply_balloon_actual(NULL), ==, -1);
}

/* qom-list of /machine/peripheral-anon: the balloon among other devices */
static void
test_balloon_child(void)
{
	g_autoptr(JsonNode) with =
		parse("[{\"name\": \"type\", \"type\": \"string\"}, "
		      "{\"name\": \"device[0]\", \"type\": \"child<virtio-net-pci>\"}, "
		      "{\"name\": \"device[1]\", \"type\": \"child<virtio-balloon-pci>\"}]");
	g_autoptr(JsonNode) without = parse("[{\"name\": \"type\", \"type\": \"string\"}, 3]");
	g_autoptr(JsonNode) not_list = parse("{\"name\": \"x\"}");
	g_autofree gchar *path = vmbc_qmp_reply_balloon_child(with, "/machine/peripheral-anon");

	g_assert_cmpstr(path, ==, "/machine/peripheral-anon/device[1]");
	g_assert_null(vmbc_qmp_reply_balloon_child(without, "/machine/peripheral-anon"));
	g_assert_null(vmbc_qmp_reply_balloon_child(not_list, "/machine/peripheral-anon"));
}

/* query-dirty-rate as QEMU 7.2 answered it for a real TCG guest (tests/e2e, page sampling) */
static void
test_dirty_rate(void)
{
	g_autoptr(JsonNode) measured =
		parse("{\"status\": \"measured\", \"sample-pages\": 512, \"dirty-rate\": 26, "
		      "\"mode\": \"page-sampling\", \"start-time\": 387, \"calc-time\": 1}");
	g_autoptr(JsonNode) measuring =
		parse("{\"status\": \"measuring\", \"sample-pages\": 512, \"mode\": "
		      "\"page-sampling\", \"start-time\": 388, \"calc-time\": 1}");
	g_autoptr(JsonNode) unstarted = parse("{\"status\": \"unstarted\"}");
	g_autoptr(JsonNode) bad = parse("{\"status\": \"measured\", \"dirty-rate\": -3}");
	g_autoptr(JsonNode) huge =
		parse("{\"status\": \"measured\", \"dirty-rate\": 9223372036854775807}");
	g_autoptr(JsonNode) array = parse("[]");
	gboolean busy = TRUE;

	g_assert_cmpint(vmbc_qmp_reply_dirty_rate(measured, &busy), ==, 26 << 20);
	g_assert_false(busy);
	g_assert_cmpint(vmbc_qmp_reply_dirty_rate(measuring, &busy), ==, -1);
	g_assert_true(busy);
	g_assert_cmpint(vmbc_qmp_reply_dirty_rate(unstarted, &busy), ==, -1);
	g_assert_false(busy);
	g_assert_cmpint(vmbc_qmp_reply_dirty_rate(bad, &busy), ==, -1);
	g_assert_cmpint(vmbc_qmp_reply_dirty_rate(huge, &busy), ==, -1);
	g_assert_cmpint(vmbc_qmp_reply_dirty_rate(array, &busy), ==, -1);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/vmbc/qmp-reply/guest-stats", test_guest_stats);
	g_test_add_func("/vmbc/qmp-reply/guest-stats/not-yet", test_guest_stats_not_yet);
	g_test_add_func("/vmbc/qmp-reply/balloon-actual", test_balloon_actual);
	g_test_add_func("/vmbc/qmp-reply/balloon-child", test_balloon_child);
	g_test_add_func("/vmbc/qmp-reply/dirty-rate", test_dirty_rate);
	return g_test_run();
}
