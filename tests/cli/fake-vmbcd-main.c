/*
 * fake-vmbcd-main.c: the fake control socket as a program, to try the CLI and
 * its shell by hand: fake-vmbcd SOCKET [EVENT_SECONDS].
 *
 * Serves until SIGINT or SIGTERM; every EVENT_SECONDS (default 5, 0 for
 * none) it broadcasts a VMBC_LIMIT_HIT for web1.
 */
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdlib.h>

#include "fake-vmbcd.h"

static gboolean
on_quit(gpointer user_data)
{
	g_main_loop_quit(user_data);
	return G_SOURCE_REMOVE;
}

static gboolean
on_tick(gpointer user_data)
{
	fake_vmbcd_broadcast(user_data, "VMBC_LIMIT_HIT",
			     "{\"domain\": \"web1\", \"resource\": \"physpages\", "
			     "\"held\": 131100, \"barrier\": 131072, \"limit\": 131072, "
			     "\"target\": 190000, \"reason\": null, \"message\": "
			     "\"physpages held 512.1M over limit 512M: balloon to 742.2M\"}");
	return G_SOURCE_CONTINUE;
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(FakeVmbcd) fake = NULL;
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	guint seconds = argc > 2 ? (guint)atoi(argv[2]) : 5;

	if (argc < 2) {
		g_printerr("usage: fake-vmbcd SOCKET [EVENT_SECONDS]\n");
		return 2;
	}
	fake = fake_vmbcd_new(NULL);
	if (!fake_vmbcd_listen(fake, argv[1], &error)) {
		g_printerr("fake-vmbcd: %s\n", error->message);
		return 1;
	}
	g_unix_signal_add(SIGINT, on_quit, loop);
	g_unix_signal_add(SIGTERM, on_quit, loop);
	if (seconds > 0)
		g_timeout_add_seconds(seconds, on_tick, fake);
	g_main_loop_run(loop);
	g_unlink(argv[1]);
	return 0;
}
