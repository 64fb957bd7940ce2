/*
 * vmbc-ram-maps.c: the mappings of a VMM's RAM backends in /proc/PID/maps
 * (see vmbc-ram-maps.h).
 */
#include <string.h>

#include "vmbc-error.h"
#include "vmbc-ram-maps.h"

/* Alignment QEMU may add to a backend's mapping. */
#define SLACK (2u << 20)

typedef struct {
	guint64 start;
	guint64 end;
	gboolean candidate; /* rw, not executable */
	const gchar *path;  /* into the text copy: "" for anonymous memory */
	gboolean taken;
} MapLine;

void
vmbc_ram_backend_clear(gpointer data)
{
	VmbcRamBackend *b = data;

	g_clear_pointer(&b->id, g_free);
}

const gchar *
vmbc_ram_kind_to_string(VmbcRamKind kind)
{
	switch (kind) {
	case VMBC_RAM_MEMFD:
		return "memfd";
	case VMBC_RAM_FILE:
		return "file";
	case VMBC_RAM_ANON:
	default:
		return "anonymous";
	}
}

/* Whether a mapping named @path can be a backend of @kind. */
static gboolean
kind_fits(VmbcRamKind kind, const gchar *path)
{
	switch (kind) {
	case VMBC_RAM_ANON:
		return *path == '\0' || g_str_has_prefix(path, "[anon:");
	case VMBC_RAM_MEMFD:
		return g_str_has_prefix(path, "/memfd:");
	case VMBC_RAM_FILE:
	default:
		return *path == '/' && !g_str_has_prefix(path, "/memfd:");
	}
}

/* Whether the file @path is the one QEMU or libvirt named after backend @id. */
static gboolean
file_named_after(const gchar *path, const gchar *id)
{
	const gchar *base = strrchr(path, '/');
	g_autofree gchar *prefix = NULL;
	gsize n;

	if (id == NULL || base == NULL)
		return FALSE;
	base++;
	prefix = g_strdup_printf("qemu_back_mem.%s.", id);
	if (g_str_has_prefix(base, prefix))
		return TRUE;
	n = strlen(id);
	return strncmp(base, id, n) == 0 && (base[n] == '\0' || base[n] == ' ');
}

/* Splits one line of maps; @line is modified (the path is cut at its end). */
static gboolean
parse_line(gchar *line, MapLine *out)
{
	gchar *p = line;
	gchar *end = NULL;
	guint field = 0;

	memset(out, 0, sizeof(*out));
	out->start = g_ascii_strtoull(p, &end, 16);
	if (end == p || *end != '-')
		return FALSE;
	p = end + 1;
	out->end = g_ascii_strtoull(p, &end, 16);
	if (end == p || *end != ' ' || out->end <= out->start)
		return FALSE;
	p = end + 1;
	if (strlen(p) < 4)
		return FALSE;
	out->candidate = p[0] == 'r' && p[1] == 'w' && p[2] != 'x';
	/* perms, offset, dev, inode, then the path after spaces */
	for (field = 0; field < 4; field++) {
		p = strchr(p, ' ');
		if (p == NULL)
			return field == 3;
		while (*p == ' ')
			p++;
	}
	g_strchomp(p);
	out->path = p;
	return TRUE;
}

gboolean
vmbc_ram_maps_match(const gchar *text, gsize len, const VmbcRamBackend *backends, guint n,
		    GArray *ranges, GError **error)
{
	g_autofree gchar *copy = NULL;
	g_auto(GStrv) lines = NULL;
	g_autoptr(GArray) maps = g_array_new(FALSE, TRUE, sizeof(MapLine));
	g_autoptr(GArray) found = g_array_new(FALSE, FALSE, sizeof(VmbcRamRange));

	g_return_val_if_fail(text != NULL || len == 0, FALSE);
	g_return_val_if_fail(backends != NULL || n == 0, FALSE);
	g_return_val_if_fail(ranges != NULL, FALSE);

	copy = g_strndup(text, len);
	lines = g_strsplit(copy, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		MapLine m;

		if (*lines[i] == '\0')
			continue;
		if (!parse_line(lines[i], &m)) {
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "maps line %u does not parse: '%.60s'", i + 1, lines[i]);
			return FALSE;
		}
		if (m.path == NULL)
			m.path = "";
		g_array_append_val(maps, m);
	}
	for (guint b = 0; b < n; b++) {
		const VmbcRamBackend *be = &backends[b];
		MapLine *best = NULL;

		for (guint i = 0; i < maps->len; i++) {
			MapLine *m = &g_array_index(maps, MapLine, i);
			guint64 size = m->end - m->start;

			if (m->taken || !m->candidate || size < be->size ||
			    size > be->size + SLACK || !kind_fits(be->kind, m->path))
				continue;
			if (be->kind == VMBC_RAM_FILE && file_named_after(m->path, be->id)) {
				best = m;
				break;
			}
			if (best == NULL)
				best = m;
		}
		if (best == NULL) {
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_NOT_FOUND,
				    "no %s mapping of %" G_GUINT64_FORMAT " KiB for backend '%s'",
				    vmbc_ram_kind_to_string(be->kind), be->size / 1024,
				    be->id != NULL ? be->id : "?");
			return FALSE;
		}
		best->taken = TRUE;
		{
			VmbcRamRange r = {.start = best->start, .size = be->size};
			g_array_append_val(found, r);
		}
	}
	g_array_append_vals(ranges, found->data, found->len);
	return TRUE;
}

gboolean
vmbc_ram_maps_find(pid_t pid, const VmbcRamBackend *backends, guint n, GArray *ranges,
		   GError **error)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/maps", (int)pid);
	g_autofree gchar *text = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &text, &len, error)) {
		g_prefix_error(error, "cannot read %s: ", path);
		return FALSE;
	}
	if (!vmbc_ram_maps_match(text, len, backends, n, ranges, error)) {
		g_prefix_error(error, "%s: ", path);
		return FALSE;
	}
	return TRUE;
}
