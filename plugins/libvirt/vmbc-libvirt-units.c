/*
 * vmbc-libvirt-units.c: a size of libvirt's domain XML, with its unit, in KiB,
 * and an element's attribute (see vmbc-libvirt-units.h).
 */
#include "vmbc-error.h"
#include "vmbc-libvirt-units.h"

/* "524288" with unit "KiB" (libvirt's live XML always says KiB) -> KiB. */
gboolean
vmbc_libvirt_size_to_kib(const gchar *text, const gchar *unit, gint64 *out, GError **error)
{
	static const struct {
		const gchar *unit;
		guint64 factor; /* bytes */
	} units[] = {
		{"b", 1},
		{"bytes", 1},
		{"KB", 1000},
		{"k", 1024},
		{"KiB", 1024},
		{"MB", 1000 * 1000},
		{"M", 1024 * 1024},
		{"MiB", 1024 * 1024},
		{"GB", 1000 * 1000 * 1000},
		{"G", 1024 * 1024 * 1024},
		{"GiB", 1024 * 1024 * 1024},
		{"T", G_GUINT64_CONSTANT(1024) * 1024 * 1024 * 1024},
		{"TiB", G_GUINT64_CONSTANT(1024) * 1024 * 1024 * 1024},
	};
	g_autofree gchar *stripped = g_strstrip(g_strdup(text));
	guint64 factor = 0;
	guint64 value = 0;

	if (unit == NULL)
		unit = "KiB";
	for (guint i = 0; i < G_N_ELEMENTS(units); i++) {
		if (g_strcmp0(units[i].unit, unit) == 0)
			factor = units[i].factor;
	}
	if (factor == 0) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID, "unknown memory unit '%s'",
			    unit);
		return FALSE;
	}
	if (!g_ascii_string_to_unsigned(stripped, 10, 0, G_MAXINT64 / 2, &value, NULL) ||
	    value > (guint64)G_MAXINT64 / factor) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID, "invalid memory size '%s %s'",
			    stripped, unit);
		return FALSE;
	}
	*out = (gint64)(value * factor / 1024);
	return TRUE;
}

const gchar *
vmbc_libvirt_xml_attr(const gchar **names, const gchar **values, const gchar *want)
{
	for (guint i = 0; names[i] != NULL; i++) {
		if (g_strcmp0(names[i], want) == 0)
			return values[i];
	}
	return NULL;
}
