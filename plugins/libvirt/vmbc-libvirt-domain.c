/*
 * vmbc-libvirt-domain.c: domain facts from the live XML and the domain's
 * QEMU process (see vmbc-libvirt-domain.h). The XML is read with
 * GMarkup: only a handful of elements matter, and libvirt's output is plain
 * well-formed XML without a DTD.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmbc-error.h"
#include "vmbc-libvirt-domain.h"
#include "vmbc-libvirt-units.h"

void
vmbc_libvirt_domain_info_clear(VmbcLibvirtDomainInfo *info)
{
	g_clear_pointer(&info->name, g_free);
	g_clear_pointer(&info->uuid, g_free);
	g_clear_pointer(&info->balloon_model, g_free);
	info->memory_kib = -1;
	info->current_kib = -1;
	info->has_balloon = FALSE;
	info->free_page_reporting = -1;
	info->stats_period = 0;
	vmbc_libvirt_ram_clear(&info->ram);
	g_clear_pointer(&info->ram_error, g_free);
}

typedef enum {
	TEXT_NONE,
	TEXT_NAME,
	TEXT_UUID,
	TEXT_MEMORY,
	TEXT_CURRENT,
} TextTarget;

typedef struct {
	VmbcLibvirtDomainInfo *info;
	guint depth; /* 1 inside <domain> */
	gboolean in_devices;
	gboolean in_balloon;
	TextTarget text;
	GString *buf;
	gchar *unit; /* unit= of the size element being read */
	gboolean seen_domain;
} ParseState;

static void
on_start(GMarkupParseContext *context, const gchar *element, const gchar **names,
	 const gchar **values, gpointer user_data, GError **error)
{
	ParseState *st = user_data;
	VmbcLibvirtDomainInfo *info = st->info;

	st->depth++;
	if (st->depth == 1) {
		if (g_strcmp0(element, "domain") != 0) {
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "expected a <domain> document, got <%s>", element);
			return;
		}
		st->seen_domain = TRUE;
		return;
	}
	if (st->depth == 2) {
		st->text = TEXT_NONE;
		if (g_strcmp0(element, "name") == 0)
			st->text = TEXT_NAME;
		else if (g_strcmp0(element, "uuid") == 0)
			st->text = TEXT_UUID;
		else if (g_strcmp0(element, "memory") == 0)
			st->text = TEXT_MEMORY;
		else if (g_strcmp0(element, "currentMemory") == 0)
			st->text = TEXT_CURRENT;
		else if (g_strcmp0(element, "devices") == 0)
			st->in_devices = TRUE;
		if (st->text != TEXT_NONE) {
			g_string_truncate(st->buf, 0);
			g_free(st->unit);
			st->unit = g_strdup(vmbc_libvirt_xml_attr(names, values, "unit"));
		}
		return;
	}
	if (st->depth == 3 && st->in_devices && g_strcmp0(element, "memballoon") == 0 &&
	    info->balloon_model == NULL) {
		const gchar *model = vmbc_libvirt_xml_attr(names, values, "model");
		const gchar *fpr = vmbc_libvirt_xml_attr(names, values, "freePageReporting");

		st->in_balloon = TRUE;
		info->balloon_model = g_strdup(model != NULL ? model : "");
		info->has_balloon = model != NULL && g_strcmp0(model, "none") != 0;
		if (info->has_balloon)
			info->free_page_reporting = g_strcmp0(fpr, "on") == 0 ? 1 : 0;
		return;
	}
	if (st->depth == 4 && st->in_balloon && g_strcmp0(element, "stats") == 0) {
		const gchar *period = vmbc_libvirt_xml_attr(names, values, "period");
		guint64 v = 0;

		if (period != NULL && g_ascii_string_to_unsigned(period, 10, 0, G_MAXINT, &v, NULL))
			info->stats_period = (gint)v;
	}
}

static void
on_end(GMarkupParseContext *context, const gchar *element, gpointer user_data, GError **error)
{
	ParseState *st = user_data;
	VmbcLibvirtDomainInfo *info = st->info;

	if (st->depth == 2) {
		switch (st->text) {
		case TEXT_NAME:
			g_free(info->name);
			info->name = g_strstrip(g_strdup(st->buf->str));
			break;
		case TEXT_UUID:
			g_free(info->uuid);
			info->uuid = g_ascii_strdown(g_strstrip(st->buf->str), -1);
			break;
		case TEXT_MEMORY:
			if (!vmbc_libvirt_size_to_kib(st->buf->str, st->unit, &info->memory_kib,
						      error))
				g_prefix_error(error, "<memory>: ");
			break;
		case TEXT_CURRENT:
			if (!vmbc_libvirt_size_to_kib(st->buf->str, st->unit, &info->current_kib,
						      error))
				g_prefix_error(error, "<currentMemory>: ");
			break;
		case TEXT_NONE:
		default:
			break;
		}
		st->text = TEXT_NONE;
		if (g_strcmp0(element, "devices") == 0)
			st->in_devices = FALSE;
	} else if (st->depth == 3 && g_strcmp0(element, "memballoon") == 0) {
		st->in_balloon = FALSE;
	}
	st->depth--;
}

static void
on_text(GMarkupParseContext *context, const gchar *text, gsize len, gpointer user_data,
	GError **error)
{
	ParseState *st = user_data;

	if (st->depth == 2 && st->text != TEXT_NONE)
		g_string_append_len(st->buf, text, (gssize)len);
}

gboolean
vmbc_libvirt_domain_info_parse(const gchar *xml, VmbcLibvirtDomainInfo *info, GError **error)
{
	static const GMarkupParser parser = {on_start, on_end, on_text, NULL, NULL};
	g_autoptr(GMarkupParseContext) ctx = NULL;
	g_autoptr(GString) buf = g_string_new(NULL);
	ParseState st = {0};
	gboolean ok;

	g_return_val_if_fail(xml != NULL, FALSE);
	g_return_val_if_fail(info != NULL, FALSE);

	vmbc_libvirt_domain_info_clear(info);
	st.info = info;
	st.buf = buf;
	ctx = g_markup_parse_context_new(&parser, 0, &st, NULL);
	ok = g_markup_parse_context_parse(ctx, xml, -1, error) &&
	     g_markup_parse_context_end_parse(ctx, error);
	g_free(st.unit);
	if (!ok) {
		if (error != NULL && *error != NULL && (*error)->domain != VMBC_ERROR) {
			g_autofree gchar *msg = g_strdup((*error)->message);
			g_clear_error(error);
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "domain XML does not parse: %s", msg);
		}
		return FALSE;
	}
	if (!st.seen_domain) {
		g_set_error_literal(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "domain XML has no <domain> element");
		return FALSE;
	}
	if (info->name == NULL || *info->name == '\0') {
		g_set_error_literal(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "domain XML has no <name>");
		return FALSE;
	}
	/* guest RAM by backend; without it, the sampler finds guest RAM by its size */
	{
		g_autoptr(GError) ram_error = NULL;

		if (!vmbc_libvirt_ram_parse(xml, &info->ram, &ram_error)) {
			vmbc_libvirt_ram_clear(&info->ram);
			info->ram_error = g_strdup(ram_error->message);
		}
	}
	return TRUE;
}

gchar *
vmbc_libvirt_pidfile_path(const gchar *uri, const gchar *name)
{
	g_autoptr(GUri) parsed = NULL;
	const gchar *scheme;
	const gchar *host;
	const gchar *path;

	if (uri == NULL || name == NULL || strchr(name, '/') != NULL)
		return NULL;
	parsed = g_uri_parse(uri, G_URI_FLAGS_NONE, NULL);
	if (parsed == NULL)
		return NULL;
	scheme = g_uri_get_scheme(parsed);
	host = g_uri_get_host(parsed);
	path = g_uri_get_path(parsed);
	if (g_strcmp0(scheme, "qemu") != 0 && g_strcmp0(scheme, "qemu+unix") != 0)
		return NULL;
	if (host != NULL && *host != '\0')
		return NULL;
	if (g_strcmp0(path, "/system") == 0) {
		g_autofree gchar *file = g_strdup_printf("%s.pid", name);
		return g_build_filename("/run/libvirt/qemu", file, NULL);
	}
	if (g_strcmp0(path, "/session") == 0) {
		const gchar *run = g_getenv("XDG_RUNTIME_DIR");
		g_autofree gchar *file = g_strdup_printf("%s.pid", name);

		if (run == NULL || *run == '\0')
			return NULL;
		return g_build_filename(run, "libvirt", "qemu", "run", file, NULL);
	}
	return NULL;
}

gboolean
vmbc_libvirt_cmdline_matches(const gchar *cmdline, gsize len, const gchar *name, const gchar *uuid)
{
	const gchar *end = cmdline + len;
	const gchar *prev = NULL;

	for (const gchar *arg = cmdline; arg < end; arg += strnlen(arg, (gsize)(end - arg)) + 1) {
		if (prev != NULL && strcmp(prev, "-uuid") == 0 && uuid != NULL)
			return g_ascii_strcasecmp(arg, uuid) == 0;
		if (prev != NULL && strcmp(prev, "-name") == 0 && uuid == NULL && name != NULL) {
			const gchar *v = g_str_has_prefix(arg, "guest=") ? arg + 6 : arg;
			gsize n = strlen(name);

			/* libvirt escapes a ',' in the name as ",," */
			if (strncmp(v, name, n) == 0 &&
			    (v[n] == '\0' || (v[n] == ',' && v[n + 1] != ',')))
				return TRUE;
		}
		prev = arg;
	}
	return FALSE;
}

static gboolean
pid_matches(pid_t pid, const gchar *name, const gchar *uuid)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/cmdline", (int)pid);
	g_autofree gchar *text = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &text, &len, NULL))
		return FALSE;
	return vmbc_libvirt_cmdline_matches(text, len, name, uuid);
}

pid_t
vmbc_libvirt_find_qemu_pid(const gchar *uri, const gchar *name, const gchar *uuid, GError **error)
{
	g_autofree gchar *pidfile = vmbc_libvirt_pidfile_path(uri, name);
	g_autoptr(GDir) dir = NULL;
	const gchar *entry;

	if (pidfile != NULL) {
		g_autofree gchar *text = NULL;
		guint64 v = 0;

		if (g_file_get_contents(pidfile, &text, NULL, NULL) &&
		    g_ascii_string_to_unsigned(g_strstrip(text), 10, 1, G_MAXINT, &v, NULL) &&
		    pid_matches((pid_t)v, name, uuid))
			return (pid_t)v;
	}
	dir = g_dir_open("/proc", 0, NULL);
	while (dir != NULL && (entry = g_dir_read_name(dir)) != NULL) {
		guint64 v = 0;

		if (!g_ascii_string_to_unsigned(entry, 10, 1, G_MAXINT, &v, NULL))
			continue;
		if (pid_matches((pid_t)v, name, uuid))
			return (pid_t)v;
	}
	g_set_error(error, VMBC_ERROR, VMBC_ERROR_NOT_FOUND,
		    "no QEMU process found for domain '%s' (uuid %s): %s%s%s no process in /proc "
		    "has it on its command line",
		    name, uuid != NULL ? uuid : "unknown", pidfile != NULL ? "pidfile " : "",
		    pidfile != NULL ? pidfile : "no local pidfile for this URI",
		    pidfile != NULL ? " does not name it, and" : ",");
	return -1;
}
