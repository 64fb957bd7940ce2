/*
 * qmp-server.h: the server side of QMP on GIO.
 *
 * Used by vmbcd's control socket and by the test fake QEMU. The server sends
 * the greeting, answers qmp_capabilities itself (and refuses any other command
 * before it, as QEMU does), frames and bounds incoming messages, and hands each
 * command to the "command" signal as a QmpRequest that is answered later,
 * possibly asynchronously, with qmp_request_return() or qmp_request_error().
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <sys/types.h>

#include "qmp-error.h"

G_BEGIN_DECLS

#define QMP_TYPE_SERVER (qmp_server_get_type())
G_DECLARE_FINAL_TYPE(QmpServer, qmp_server, QMP, SERVER, GObject)

#define QMP_TYPE_SERVER_CONNECTION (qmp_server_connection_get_type())
G_DECLARE_FINAL_TYPE(QmpServerConnection, qmp_server_connection, QMP, SERVER_CONNECTION, GObject)

typedef struct _QmpRequest QmpRequest;

/* Default bound on one incoming command: commands are small. */
#define QMP_SERVER_DEFAULT_MAX_MESSAGE (1024 * 1024)

/*
 * @version_greeting: the "QMP" member of the greeting, e.g.
 * {"version": {...}, "capabilities": []}; a reference is taken. NULL gives a
 * minimal greeting.
 */
QmpServer *qmp_server_new(JsonObject *greeting);

void qmp_server_set_max_message_size(QmpServer *self, gsize max_bytes);

/* Creates, binds and listens on a UNIX socket at @path (an existing socket file is replaced). */
gboolean qmp_server_listen_unix(QmpServer *self, const gchar *path, GError **error);

/* Serves an already connected socket, a GSocketConnection (tests, socketpair, activation). */
QmpServerConnection *qmp_server_add_stream(QmpServer *self, GIOStream *stream);

/* Stops listening and closes every connection. */
void qmp_server_close(QmpServer *self);

/* Sends an event to every connection past capabilities negotiation. @data may be NULL. */
void qmp_server_broadcast_event(QmpServer *self, const gchar *name, JsonObject *data);

/* Per-connection: peer credentials from SO_PEERCRED (-1 / (uid_t)-1 if unknown). */
pid_t qmp_server_connection_get_peer_pid(QmpServerConnection *conn);
uid_t qmp_server_connection_get_peer_uid(QmpServerConnection *conn);
gid_t qmp_server_connection_get_peer_gid(QmpServerConnection *conn);

void qmp_server_connection_send_event(QmpServerConnection *conn, const gchar *name,
				      JsonObject *data);

/* Writes raw bytes, unframed: only for fault injection in tests. */
void qmp_server_connection_send_raw(QmpServerConnection *conn, const gchar *data, gsize len);

/*
 * Stops reading, writes what is already queued (e.g. the reply to "quit"),
 * then closes; "connection-closed" is emitted at once.
 */
void qmp_server_connection_close(QmpServerConnection *conn);

/*
 * Signals on QmpServer:
 *   "command" (QmpServerConnection *conn, const gchar *name, JsonObject *arguments (nullable),
 *              QmpRequest *request) -> gboolean handled
 *        Return TRUE and answer @request (now or later); returning FALSE from
 *        every handler answers CommandNotFound.
 *   "connection-opened" (QmpServerConnection *conn)
 *   "connection-closed" (QmpServerConnection *conn)
 */

/* A request is answered exactly once; each of these frees it. */
void qmp_request_return(QmpRequest *req, JsonNode *value /* transfer full, NULL means {} */);
void qmp_request_error(QmpRequest *req, QmpError code, const gchar *format, ...)
	G_GNUC_PRINTF(3, 4);

/* The connection the request came on (borrowed; NULL if it closed since). */
QmpServerConnection *qmp_request_get_connection(QmpRequest *req);

const gchar *qmp_request_get_command(QmpRequest *req);

G_END_DECLS
