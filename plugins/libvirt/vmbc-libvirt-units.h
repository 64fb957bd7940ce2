/*
 * vmbc-libvirt-units.h: the sizes of libvirt's domain XML, read by the domain
 * facts (vmbc-libvirt-domain.c) and the guest RAM (vmbc-libvirt-ram.c).
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

G_END_DECLS
