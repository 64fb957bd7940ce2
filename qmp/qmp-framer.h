/*
 * qmp-framer.h: splits a byte stream into QMP messages.
 *
 * QMP sends one JSON object per message, usually followed by CRLF, but a peer
 * may split a message over many reads or put several in one. The framer tracks
 * brace depth outside strings (with escapes) so it needs no newline, and it
 * enforces a bound on the size of one message. No I/O, no main loop: this is
 * what the fuzz target drives.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _QmpFramer QmpFramer;

/* A framer bounding one message to @max_message bytes (0: the 10 MiB default). */
QmpFramer *qmp_framer_new(gsize max_message);
void qmp_framer_free(QmpFramer *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QmpFramer, qmp_framer_free)

/*
 * Appends @len bytes. Returns FALSE with QMP_ERROR_TOO_LARGE once a message
 * grows past the bound, or QMP_ERROR_PROTOCOL for bytes that cannot start a
 * message (anything but whitespace outside an object); the framer is then
 * unusable.
 */
gboolean qmp_framer_push(QmpFramer *self, const gchar *data, gsize len, GError **error);

/* Pops the next complete message text (without trailing whitespace), or NULL. */
gchar *qmp_framer_pop(QmpFramer *self);

/*
 * Bytes of a message begun but not finished, 0 between messages. A stream
 * that ends while this is non-zero ended with a truncated message.
 */
gsize qmp_framer_get_partial_size(QmpFramer *self);

G_END_DECLS
