/*
 * vmbc-qmp-reply.h: readers of the replies QEMU sends the qmp backend. Each
 * checks the type of what it reads and never aborts on what QEMU sent.
 */
#pragma once

#include <json-glib/json-glib.h>

#include "vmbc-beancounter.h"

G_BEGIN_DECLS

/* Bytes as whole pages of the host page size. */
gint64 vmbc_qmp_bytes_to_pages(gint64 bytes);

/*
 * An integer member of @obj (may be NULL). json-glib reads QEMU's
 * 18446744073709551615 ("not reported") as a negative int64 or as a double;
 * both come back as -1. FALSE if missing or not a number.
 */
gboolean vmbc_qmp_reply_int(JsonObject *obj, const gchar *name, gint64 *out);

/* A string member of @obj (may be NULL), or NULL if missing or of another type. */
const gchar *vmbc_qmp_reply_str(JsonObject *obj, const gchar *name);

/* @node's object, or NULL if @node is NULL or not an object. */
JsonObject *vmbc_qmp_reply_object(JsonNode *node);

/*
 * The path of the first child<virtio-balloon-*> in a qom-list reply of @base
 * ("@base/name"), or NULL if there is none.
 */
gchar *vmbc_qmp_reply_balloon_child(JsonNode *ret, const gchar *base);

/*
 * The balloon's actual size in pages from a query-balloon reply or a
 * BALLOON_CHANGE event's data, or -1 if missing or not valid.
 */
gint64 vmbc_qmp_reply_balloon_actual(JsonObject *obj);

/*
 * The guest's statistics from a qom-get of the balloon's guest-stats, sizes
 * in pages, -1 for each one not reported. FALSE (and @gs untouched) while
 * the guest has not reported yet (no stats, no last-update).
 */
gboolean vmbc_qmp_reply_guest_stats(JsonNode *ret, VmbcGuestStats *gs);

/*
 * query-dirty-rate's answer (QEMU 7.2: status, dirty-rate in MiB/s once
 * "measured"): the rate in bytes a second, or -1 while it is not measured
 * (@measuring TRUE when QEMU is still at it) or the reply is malformed.
 */
gint64 vmbc_qmp_reply_dirty_rate(JsonNode *ret, gboolean *measuring);

G_END_DECLS
