/*
 * statm-oracle.c: /proc/PID/statm read with GLib's own file reader, nothing
 * of the code under test.
 */
#include "statm-oracle.h"

gint64
statm_oracle_resident(pid_t pid)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/statm", (int)pid);
	g_autofree gchar *text = NULL;
	g_auto(GStrv) fields = NULL;

	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	fields = g_strsplit(text, " ", 3);
	g_assert_cmpuint(g_strv_length(fields), >=, 2);
	return (gint64)g_ascii_strtoll(fields[1], NULL, 10);
}
