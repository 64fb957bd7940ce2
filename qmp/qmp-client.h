/*
 * qmp-client.h: an asynchronous QMP client on GIO.
 *
 * Connects to a UNIX socket (or takes a connected GIOStream), reads the
 * greeting, negotiates capabilities with qmp_capabilities, and then lets any
 * number of commands be in flight at once, each matched to its reply by id.
 * Asynchronous events are emitted as the "event" signal. A disconnect fails
 * every pending command with QMP_ERROR_DISCONNECTED and emits "disconnected".
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <sys/types.h>

#include "qmp-error.h"

G_BEGIN_DECLS

#define QMP_TYPE_CLIENT (qmp_client_get_type())
G_DECLARE_FINAL_TYPE(QmpClient, qmp_client, QMP, CLIENT, GObject)

/* Default bound on one incoming message, as libvirt's monitor uses. */
#define QMP_CLIENT_DEFAULT_MAX_MESSAGE (10 * 1024 * 1024)

QmpClient *qmp_client_new(void);

/*
 * Bound on one incoming message in bytes. A larger one fails every pending
 * command with QMP_ERROR_TOO_LARGE and closes the connection.
 */
void qmp_client_set_max_message_size(QmpClient *self, gsize max_bytes);

/*
 * Per-command timeout in milliseconds, 0 for none (the default). A command
 * that times out fails with QMP_ERROR_TIMEOUT; a late reply is dropped.
 */
void qmp_client_set_timeout(QmpClient *self, guint timeout_ms);

/*
 * Connects to the UNIX socket at @path, reads the greeting and sends
 * qmp_capabilities. Completes when the connection is ready for commands.
 */
void qmp_client_connect_async(QmpClient *self, const gchar *path, GCancellable *cancellable,
			      GAsyncReadyCallback callback, gpointer user_data);
gboolean qmp_client_connect_finish(QmpClient *self, GAsyncResult *res, GError **error);

/* As qmp_client_connect_async but on an already connected socket (a GSocketConnection). */
void qmp_client_connect_stream_async(QmpClient *self, GIOStream *stream, GCancellable *cancellable,
				     GAsyncReadyCallback callback, gpointer user_data);

/*
 * Blocking convenience for tools and tests: iterates the thread-default main
 * context until connected or failed.
 */
gboolean qmp_client_connect_sync(QmpClient *self, const gchar *path, GCancellable *cancellable,
				 GError **error);

/*
 * Sends {"execute": @command, "arguments": @arguments, "id": ...}.
 * @arguments may be NULL; it is not consumed (a reference is taken).
 * The result is the "return" member of the reply (a new reference), or an
 * error: QMP errors map to their class code with the desc as message.
 */
void qmp_client_execute_async(QmpClient *self, const gchar *command, JsonObject *arguments,
			      GCancellable *cancellable, GAsyncReadyCallback callback,
			      gpointer user_data);
JsonNode *qmp_client_execute_finish(QmpClient *self, GAsyncResult *res, GError **error);

/* Blocking convenience, as qmp_client_connect_sync. */
JsonNode *qmp_client_execute_sync(QmpClient *self, const gchar *command, JsonObject *arguments,
				  GCancellable *cancellable, GError **error);

/* Closes the connection; pending commands fail with QMP_ERROR_DISCONNECTED. */
void qmp_client_close(QmpClient *self);

gboolean qmp_client_is_connected(QmpClient *self);

/* The greeting's "QMP" object, or NULL before it arrived. */
JsonObject *qmp_client_get_greeting(QmpClient *self);

/* The peer's PID from SO_PEERCRED, or -1 if unknown (not a UNIX socket). */
pid_t qmp_client_get_peer_pid(QmpClient *self);

/*
 * Signals:
 *   "event" (const gchar *name, JsonObject *data (nullable), gint64 timestamp_usec)
 *   "disconnected" (const GError *reason)
 */

G_END_DECLS
