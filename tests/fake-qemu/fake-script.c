/*
 * fake-script.c: parses the fake QEMU's timed script; see fake-script.h.
 */
#include "fake-script.h"

#include <gio/gio.h>

void
fake_script_line_free(FakeScriptLine *line)
{
	if (line == NULL)
		return;
	g_free(line->verb);
	g_strfreev(line->args);
	g_free(line);
}

gboolean
fake_script_parse_kind(const gchar *text, gboolean *is_anon)
{
	if (g_strcmp0(text, "anon") == 0) {
		*is_anon = TRUE;
		return TRUE;
	}
	if (g_strcmp0(text, "cache") == 0) {
		*is_anon = FALSE;
		return TRUE;
	}
	return FALSE;
}

static gboolean
is_size(const gchar *text)
{
	guint64 v;

	return g_ascii_string_to_unsigned(text, 10, 0, G_MAXUINT32, &v, NULL);
}

/* Checks the arguments of one verb; returns NULL if fine, else what is wrong. */
static gchar *
check_line(const FakeScriptLine *line)
{
	guint n = g_strv_length(line->args);
	gboolean is_anon;

	if (g_strcmp0(line->verb, "touch") == 0 || g_strcmp0(line->verb, "free") == 0) {
		if (n != 2 || !fake_script_parse_kind(line->args[0], &is_anon) ||
		    !is_size(line->args[1]))
			return g_strdup_printf("expected '%s anon|cache MIB'", line->verb);
		return NULL;
	}
	if (g_strcmp0(line->verb, "balloon") == 0) {
		if (n != 1 || !is_size(line->args[0]))
			return g_strdup("expected 'balloon MIB'");
		return NULL;
	}
	if (g_strcmp0(line->verb, "set") == 0) {
		if (n != 2)
			return g_strdup("expected 'set KEY VALUE'");
		return NULL;
	}
	if (g_strcmp0(line->verb, "exit") == 0) {
		if (n != 0)
			return g_strdup("expected 'exit' alone");
		return NULL;
	}
	return g_strdup_printf("unknown action '%s'", line->verb);
}

static gint
compare_lines(gconstpointer a, gconstpointer b)
{
	const FakeScriptLine *la = *(FakeScriptLine *const *)a;
	const FakeScriptLine *lb = *(FakeScriptLine *const *)b;

	if (la->at != lb->at)
		return la->at < lb->at ? -1 : 1;
	return la->line < lb->line ? -1 : la->line > lb->line;
}

GPtrArray *
fake_script_parse(const gchar *filename, const gchar *text, GError **error)
{
	g_autoptr(GPtrArray) lines =
		g_ptr_array_new_with_free_func((GDestroyNotify)fake_script_line_free);
	g_auto(GStrv) raw = g_strsplit(text, "\n", -1);

	for (guint i = 0; raw[i] != NULL; i++) {
		g_autoptr(FakeScriptLine) line = g_new0(FakeScriptLine, 1);
		g_autofree gchar *problem = NULL;
		g_auto(GStrv) words = NULL;
		GPtrArray *kept;
		gchar *end = NULL;
		gchar *stripped = g_strstrip(raw[i]);

		if (*stripped == '\0' || *stripped == '#')
			continue;
		line->line = i + 1;
		words = g_strsplit_set(stripped, " \t", -1);
		kept = g_ptr_array_new();
		for (guint j = 0; words[j] != NULL; j++) {
			if (*words[j] != '\0')
				g_ptr_array_add(kept, g_strdup(words[j]));
		}
		g_ptr_array_add(kept, NULL);
		g_strfreev(words);
		words = (GStrv)g_ptr_array_free(kept, FALSE);

		if (g_strv_length(words) < 3 || g_strcmp0(words[0], "at") != 0) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
				    "%s:%u: expected 'at SECONDS ACTION ...', got '%s'", filename,
				    line->line, stripped);
			return NULL;
		}
		line->at = g_ascii_strtod(words[1], &end);
		if (end == words[1] || *end != '\0' || !(line->at >= 0 && line->at < 1e7)) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
				    "%s:%u: invalid time '%s'", filename, line->line, words[1]);
			return NULL;
		}
		line->verb = g_strdup(words[2]);
		line->args = g_strdupv(words + 3);
		problem = check_line(line);
		if (problem != NULL) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s:%u: %s",
				    filename, line->line, problem);
			return NULL;
		}
		g_ptr_array_add(lines, g_steal_pointer(&line));
	}
	g_ptr_array_sort(lines, compare_lines);
	return g_steal_pointer(&lines);
}
