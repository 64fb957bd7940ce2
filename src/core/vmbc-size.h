/*
 * vmbc-size.h: sizes as operators write them, and as vmbc prints them.
 *
 * Input: "unlimited", a byte count with an optional binary unit (K, M, G, T,
 * with or without "iB"), a page count with "p", or a percentage of a maximum
 * with "%". Everything is converted to pages of the host page size.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* UBC's "unlimited": LONG_MAX on 64-bit, printed as such in the ubc table. */
#define VMBC_UNLIMITED G_MAXINT64

/* The host page size in bytes (sysconf(_SC_PAGESIZE)), cached. */
gsize vmbc_page_size(void);

/*
 * Parses @text into pages of @page_size bytes. Byte sizes round down to whole
 * pages. "%" needs @max_pages > 0 (the VM's maximum memory), otherwise it is
 * refused. On error FALSE is returned, the message names @text and what was
 * wrong, and @pages_out is untouched.
 */
gboolean vmbc_size_parse(const gchar *text, gsize page_size, gint64 max_pages, gint64 *pages_out,
			 GError **error);

/*
 * Parses "BARRIER[:LIMIT]"; a single value sets both, as UBC did. Refuses a
 * barrier above the limit.
 */
gboolean vmbc_size_parse_pair(const gchar *text, gsize page_size, gint64 max_pages,
			      gint64 *barrier_out, gint64 *limit_out, GError **error);

/* "unlimited" or the byte count of @pages with a binary unit, e.g. "512M", "1.5G". */
gchar *vmbc_size_format_human(gint64 pages, gsize page_size);

/* Bytes for @pages, saturating at G_MAXINT64 (so "unlimited" stays unlimited). */
gint64 vmbc_pages_to_bytes(gint64 pages, gsize page_size);

/* Parses "1s", "250ms", "2m", "1h", or plain seconds; refuses garbage and <= 0. */
gboolean vmbc_duration_parse(const gchar *text, gint64 *usec_out, GError **error);

G_END_DECLS
