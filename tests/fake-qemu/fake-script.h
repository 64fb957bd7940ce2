/*
 * fake-script.h: the fake QEMU's timed script (--script FILE).
 *
 * One action a line, "at SECONDS VERB ARGS...", times counted from when the
 * fake QEMU is listening; blank lines and lines starting with '#' are skipped:
 *
 *   at 2.0 touch anon 64      the guest uses 64 MiB more (anon or cache)
 *   at 5.0 free anon 64       the guest frees 64 MiB
 *   at 6 balloon 512          as the QMP balloon command, in MiB of guest size
 *   at 7 set fpr false        as x-fake-set {"fpr": false}
 *   at 9 exit                 the guest shuts down (exit status 0)
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
	guint line;   /* 1-based, for messages */
	gdouble at;   /* seconds from start */
	gchar *verb;  /* touch, free, balloon, set, exit */
	gchar **args; /* the rest of the line, split on white space */
} FakeScriptLine;

void fake_script_line_free(FakeScriptLine *line);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FakeScriptLine, fake_script_line_free)

/*
 * Parses @text and checks each verb's number and form of arguments. Returns
 * the lines sorted by time (a GPtrArray of FakeScriptLine), or NULL with a
 * G_IO_ERROR_INVALID_DATA naming @filename, the line and what is wrong.
 */
GPtrArray *fake_script_parse(const gchar *filename, const gchar *text, GError **error);

/* Parses "anon" or "cache"; returns FALSE for anything else. */
gboolean fake_script_parse_kind(const gchar *text, gboolean *is_anon);

G_END_DECLS
