/*
 * vmbc-libvirt-units.h: the sizes and attributes of libvirt's domain XML, read
 * by the domain facts (vmbc-libvirt-domain.c) and the guest RAM
 * (vmbc-libvirt-ram.c).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * A size of the domain XML (@text in @unit, KiB when NULL) in KiB; FALSE with
 * VMBC_ERROR_INVALID for an unknown unit or a value that does not parse.
 */
gboolean vmbc_libvirt_size_to_kib(const gchar *text, const gchar *unit, gint64 *out,
				  GError **error);

/* The value of attribute @want among a GMarkup start element's, NULL when absent. */
const gchar *vmbc_libvirt_xml_attr(const gchar **names, const gchar **values, const gchar *want);

G_END_DECLS
