/*
 * qmp-server.c: the server side of QMP on GIO.
 *
 * Each connection gets a QmpChannel (framing, size bound, ordered writes),
 * a greeting, and capabilities negotiation handled here; every other command
 * goes to the "command" signal as a QmpRequest. Kept small: the test fake
 * QEMU runs thousands of processes, each with one server.
 */
#include "qmp-server.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <sys/stat.h>

#include "qmp-channel.h"
#include "qmp-message.h"

struct _QmpServer {
	GObject parent_instance;
	JsonObject *greeting; /* the "QMP" member */
	gsize max_message;
	GSocketService *service;
	gchar *socket_path; /* created by us, removed on close */
	dev_t socket_dev;   /* which file it is, so a replaced one is left alone */
	ino_t socket_ino;
	GPtrArray *connections;
};

struct _QmpServerConnection {
	GObject parent_instance;
	QmpServer *server; /* borrowed; NULL once the connection is closed */
	QmpChannel *channel;
	gboolean negotiated;
	gboolean closed;
};

struct _QmpRequest {
	QmpServerConnection *conn; /* a reference, so a late answer is safe */
	JsonNode *id;		   /* echoed in the reply, NULL if the command had none */
	gchar *command;
};

G_DEFINE_TYPE(QmpServer, qmp_server, G_TYPE_OBJECT)
G_DEFINE_TYPE(QmpServerConnection, qmp_server_connection, G_TYPE_OBJECT)

enum {
	SIGNAL_COMMAND,
	SIGNAL_CONNECTION_OPENED,
	SIGNAL_CONNECTION_CLOSED,
	SIGNAL_LAST,
};

static guint signals[SIGNAL_LAST] = {0};

static void
qmp_server_connection_send_node(QmpServerConnection *conn, JsonNode *root)
{
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autofree gchar *text = NULL;
	gsize len = 0;

	if (conn->closed)
		return;
	json_generator_set_root(gen, root);
	text = json_generator_to_data(gen, &len);
	qmp_channel_send_message(conn->channel, text, len);
}

static void
qmp_server_connection_send_object(QmpServerConnection *conn, JsonObject *obj)
{
	g_autoptr(JsonNode) root = json_node_new(JSON_NODE_OBJECT);

	json_node_take_object(root, obj);
	qmp_server_connection_send_node(conn, root);
}

/* {"return": @value, "id": @id}; takes @value. */
static void
qmp_server_connection_send_return(QmpServerConnection *conn, JsonNode *id, JsonNode *value)
{
	JsonObject *obj = json_object_new();

	if (value == NULL) {
		value = json_node_new(JSON_NODE_OBJECT);
		json_node_take_object(value, json_object_new());
	}
	json_object_set_member(obj, "return", value);
	if (id != NULL)
		json_object_set_member(obj, "id", json_node_copy(id));
	qmp_server_connection_send_object(conn, obj);
}

static void
qmp_server_connection_send_error(QmpServerConnection *conn, JsonNode *id, QmpError code,
				 const gchar *desc)
{
	JsonObject *obj = json_object_new();
	JsonObject *err = json_object_new();

	if (id != NULL)
		json_object_set_member(obj, "id", json_node_copy(id));
	json_object_set_string_member(err, "class", qmp_error_to_class(code));
	json_object_set_string_member(err, "desc", desc);
	json_object_set_object_member(obj, "error", err);
	qmp_server_connection_send_object(conn, obj);
}

static void
qmp_request_free(QmpRequest *req)
{
	g_clear_object(&req->conn);
	g_clear_pointer(&req->id, json_node_unref);
	g_free(req->command);
	g_free(req);
}

void
qmp_request_return(QmpRequest *req, JsonNode *value)
{
	g_return_if_fail(req != NULL);

	if (!req->conn->closed)
		qmp_server_connection_send_return(req->conn, req->id, value);
	else if (value != NULL)
		json_node_unref(value);
	qmp_request_free(req);
}

void
qmp_request_error(QmpRequest *req, QmpError code, const gchar *format, ...)
{
	g_autofree gchar *desc = NULL;
	va_list args;

	g_return_if_fail(req != NULL);
	g_return_if_fail(format != NULL);

	va_start(args, format);
	desc = g_strdup_vprintf(format, args);
	va_end(args);
	if (!req->conn->closed)
		qmp_server_connection_send_error(req->conn, req->id, code, desc);
	qmp_request_free(req);
}

QmpServerConnection *
qmp_request_get_connection(QmpRequest *req)
{
	g_return_val_if_fail(req != NULL, NULL);
	return req->conn->closed ? NULL : req->conn;
}

const gchar *
qmp_request_get_command(QmpRequest *req)
{
	g_return_val_if_fail(req != NULL, NULL);
	return req->command;
}

/* Marks @conn closed and drops the server's reference; @flush writes queued output first. */
static void
qmp_server_connection_shutdown(QmpServerConnection *conn, gboolean flush)
{
	g_autoptr(QmpServerConnection) keep = g_object_ref(conn);
	QmpServer *server = conn->server;

	if (conn->closed)
		return;
	conn->closed = TRUE;
	if (flush)
		qmp_channel_close_after_flush(conn->channel);
	else
		qmp_channel_close(conn->channel);
	conn->server = NULL;
	if (server != NULL) {
		g_signal_emit(server, signals[SIGNAL_CONNECTION_CLOSED], 0, conn);
		g_ptr_array_remove_fast(server->connections, conn);
	}
}

static void
qmp_server_connection_dispatch(QmpServerConnection *conn, QmpCommand *cmd)
{
	QmpServer *server = conn->server;
	QmpRequest *req;
	gboolean handled = FALSE;

	if (g_strcmp0(cmd->execute, "qmp_capabilities") == 0) {
		if (conn->negotiated) {
			qmp_server_connection_send_error(
				conn, cmd->id, QMP_ERROR_COMMAND_NOT_FOUND,
				"Capabilities negotiation is already complete, command ignored");
			return;
		}
		conn->negotiated = TRUE;
		qmp_server_connection_send_return(conn, cmd->id, NULL);
		return;
	}
	if (!conn->negotiated) {
		qmp_server_connection_send_error(
			conn, cmd->id, QMP_ERROR_COMMAND_NOT_FOUND,
			"Expecting capabilities negotiation with 'qmp_capabilities'");
		return;
	}
	if (server == NULL)
		return;

	req = g_new0(QmpRequest, 1);
	req->conn = g_object_ref(conn);
	req->id = cmd->id != NULL ? json_node_copy(cmd->id) : NULL;
	req->command = g_strdup(cmd->execute);
	g_signal_emit(server, signals[SIGNAL_COMMAND], 0, conn, cmd->execute, cmd->arguments, req,
		      &handled);
	if (!handled)
		qmp_request_error(req, QMP_ERROR_COMMAND_NOT_FOUND,
				  "The command %s has not been found", cmd->execute);
}

static void
qmp_server_connection_on_message(QmpChannel *channel, const gchar *text, gsize len,
				 gpointer user_data)
{
	QmpServerConnection *conn = user_data;
	g_autoptr(QmpServerConnection) keep = g_object_ref(conn);
	g_autoptr(GError) error = NULL;
	QmpCommand cmd;

	g_debug("QMP server '%s' <- %s", qmp_channel_get_name(channel), text);
	if (!qmp_command_parse(text, len, &cmd, &error))
		qmp_server_connection_send_error(conn, cmd.id, QMP_ERROR_GENERIC_ERROR,
						 error->message);
	else
		qmp_server_connection_dispatch(conn, &cmd);
	qmp_command_clear(&cmd);
}

static void
qmp_server_connection_on_broken(QmpChannel *channel, const GError *reason, gpointer user_data)
{
	QmpServerConnection *conn = user_data;

	if (g_error_matches(reason, QMP_ERROR, QMP_ERROR_TOO_LARGE) ||
	    g_error_matches(reason, QMP_ERROR, QMP_ERROR_PROTOCOL)) {
		/* the peer is still there: tell it why before hanging up */
		g_debug("closing QMP connection: %s", reason->message);
		qmp_server_connection_send_error(conn, NULL, QMP_ERROR_GENERIC_ERROR,
						 reason->message);
		qmp_server_connection_shutdown(conn, TRUE);
		return;
	}
	g_debug("QMP connection ended: %s", reason->message);
	qmp_server_connection_shutdown(conn, FALSE);
}

static const QmpChannelFuncs qmp_server_channel_funcs = {
	.message = qmp_server_connection_on_message,
	.broken = qmp_server_connection_on_broken,
};

QmpServerConnection *
qmp_server_add_stream(QmpServer *self, GIOStream *stream)
{
	QmpServerConnection *conn;
	g_autoptr(JsonObject) greeting = json_object_new();

	g_return_val_if_fail(QMP_IS_SERVER(self), NULL);
	g_return_val_if_fail(G_IS_SOCKET_CONNECTION(stream), NULL);

	conn = g_object_new(QMP_TYPE_SERVER_CONNECTION, NULL);
	conn->server = self;
	conn->channel = qmp_channel_new(stream, self->max_message, self->socket_path);
	g_ptr_array_add(self->connections, conn);

	json_object_set_object_member(greeting, "QMP", json_object_ref(self->greeting));
	qmp_server_connection_send_object(conn, g_steal_pointer(&greeting));
	qmp_channel_start(conn->channel, &qmp_server_channel_funcs, conn);
	g_signal_emit(self, signals[SIGNAL_CONNECTION_OPENED], 0, conn);
	return conn;
}

static gboolean
qmp_server_on_incoming(GSocketService *service, GSocketConnection *connection,
		       GObject *source_object, gpointer user_data)
{
	qmp_server_add_stream(QMP_SERVER(user_data), G_IO_STREAM(connection));
	return TRUE;
}

QmpServer *
qmp_server_new(JsonObject *greeting)
{
	QmpServer *self = g_object_new(QMP_TYPE_SERVER, NULL);

	if (greeting != NULL) {
		self->greeting = json_object_ref(greeting);
	} else {
		self->greeting = json_object_new();
		json_object_set_array_member(self->greeting, "capabilities", json_array_new());
	}
	return self;
}

void
qmp_server_set_max_message_size(QmpServer *self, gsize max_bytes)
{
	g_return_if_fail(QMP_IS_SERVER(self));
	g_return_if_fail(max_bytes > 0);
	self->max_message = max_bytes;
}

gboolean
qmp_server_listen_unix(QmpServer *self, const gchar *path, GError **error)
{
	g_autoptr(GSocketAddress) addr = NULL;
	GStatBuf st;

	g_return_val_if_fail(QMP_IS_SERVER(self), FALSE);
	g_return_val_if_fail(path != NULL, FALSE);

	if (g_lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && g_unlink(path) != 0) {
		gint errsv = errno;
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv),
			    "cannot replace socket '%s': %s", path, g_strerror(errsv));
		return FALSE;
	}
	if (self->service == NULL) {
		self->service = g_socket_service_new();
		g_signal_connect(self->service, "incoming", G_CALLBACK(qmp_server_on_incoming),
				 self);
	}
	addr = g_unix_socket_address_new(path);
	if (!g_socket_listener_add_address(G_SOCKET_LISTENER(self->service), addr,
					   G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, NULL,
					   NULL, error)) {
		g_prefix_error(error, "cannot listen on QMP socket '%s': ", path);
		return FALSE;
	}
	g_free(self->socket_path);
	self->socket_path = g_strdup(path);
	if (g_lstat(path, &st) == 0) {
		self->socket_dev = st.st_dev;
		self->socket_ino = st.st_ino;
	}
	g_socket_service_start(self->service);
	return TRUE;
}

void
qmp_server_close(QmpServer *self)
{
	g_autoptr(GPtrArray) conns = NULL;

	g_return_if_fail(QMP_IS_SERVER(self));

	if (self->service != NULL) {
		g_socket_service_stop(self->service);
		g_socket_listener_close(G_SOCKET_LISTENER(self->service));
		g_signal_handlers_disconnect_by_data(self->service, self);
		g_clear_object(&self->service);
	}
	if (self->socket_path != NULL) {
		GStatBuf st;

		if (g_lstat(self->socket_path, &st) == 0 && st.st_dev == self->socket_dev &&
		    st.st_ino == self->socket_ino)
			g_unlink(self->socket_path);
		g_clear_pointer(&self->socket_path, g_free);
	}
	/* shutting down removes each connection from the array, so walk a copy */
	conns = g_ptr_array_new_with_free_func(g_object_unref);
	for (guint i = 0; i < self->connections->len; i++)
		g_ptr_array_add(conns, g_object_ref(g_ptr_array_index(self->connections, i)));
	for (guint i = 0; i < conns->len; i++)
		qmp_server_connection_shutdown(g_ptr_array_index(conns, i), FALSE);
}

static JsonObject *
qmp_event_new(const gchar *name, JsonObject *data)
{
	JsonObject *obj = json_object_new();

	json_object_set_object_member(obj, "timestamp",
				      qmp_message_timestamp_new(g_get_real_time()));
	json_object_set_string_member(obj, "event", name);
	if (data != NULL)
		json_object_set_object_member(obj, "data", json_object_ref(data));
	return obj;
}

void
qmp_server_broadcast_event(QmpServer *self, const gchar *name, JsonObject *data)
{
	g_autoptr(JsonNode) root = NULL;

	g_return_if_fail(QMP_IS_SERVER(self));
	g_return_if_fail(name != NULL);

	root = json_node_new(JSON_NODE_OBJECT);
	json_node_take_object(root, qmp_event_new(name, data));
	for (guint i = 0; i < self->connections->len; i++) {
		QmpServerConnection *conn = g_ptr_array_index(self->connections, i);
		if (conn->negotiated)
			qmp_server_connection_send_node(conn, root);
	}
}

void
qmp_server_connection_send_event(QmpServerConnection *conn, const gchar *name, JsonObject *data)
{
	g_return_if_fail(QMP_IS_SERVER_CONNECTION(conn));
	g_return_if_fail(name != NULL);
	/* as QEMU: no events before capabilities negotiation */
	if (!conn->negotiated)
		return;
	qmp_server_connection_send_object(conn, qmp_event_new(name, data));
}

void
qmp_server_connection_send_raw(QmpServerConnection *conn, const gchar *data, gsize len)
{
	g_return_if_fail(QMP_IS_SERVER_CONNECTION(conn));
	if (!conn->closed)
		qmp_channel_send(conn->channel, data, len);
}

void
qmp_server_connection_close(QmpServerConnection *conn)
{
	g_return_if_fail(QMP_IS_SERVER_CONNECTION(conn));
	qmp_server_connection_shutdown(conn, TRUE);
}

pid_t
qmp_server_connection_get_peer_pid(QmpServerConnection *conn)
{
	pid_t pid = -1;

	g_return_val_if_fail(QMP_IS_SERVER_CONNECTION(conn), -1);
	qmp_channel_get_peer_credentials(conn->channel, &pid, NULL, NULL);
	return pid;
}

uid_t
qmp_server_connection_get_peer_uid(QmpServerConnection *conn)
{
	uid_t uid = (uid_t)-1;

	g_return_val_if_fail(QMP_IS_SERVER_CONNECTION(conn), (uid_t)-1);
	qmp_channel_get_peer_credentials(conn->channel, NULL, &uid, NULL);
	return uid;
}

gid_t
qmp_server_connection_get_peer_gid(QmpServerConnection *conn)
{
	gid_t gid = (gid_t)-1;

	g_return_val_if_fail(QMP_IS_SERVER_CONNECTION(conn), (gid_t)-1);
	qmp_channel_get_peer_credentials(conn->channel, NULL, NULL, &gid);
	return gid;
}

static void
qmp_server_connection_finalize(GObject *object)
{
	QmpServerConnection *conn = QMP_SERVER_CONNECTION(object);

	/*
	 * A connection shut down with a flush has its channel closing once the
	 * queued output is written; the pending write holds the channel alive.
	 */
	if (conn->channel != NULL && !conn->closed)
		qmp_channel_close(conn->channel);
	g_clear_pointer(&conn->channel, qmp_channel_unref);
	G_OBJECT_CLASS(qmp_server_connection_parent_class)->finalize(object);
}

static void
qmp_server_connection_class_init(QmpServerConnectionClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = qmp_server_connection_finalize;
}

static void
qmp_server_connection_init(QmpServerConnection *conn)
{
}

static void
qmp_server_dispose(GObject *object)
{
	qmp_server_close(QMP_SERVER(object));
	G_OBJECT_CLASS(qmp_server_parent_class)->dispose(object);
}

static void
qmp_server_finalize(GObject *object)
{
	QmpServer *self = QMP_SERVER(object);

	g_ptr_array_unref(self->connections);
	g_clear_pointer(&self->greeting, json_object_unref);
	g_free(self->socket_path);
	G_OBJECT_CLASS(qmp_server_parent_class)->finalize(object);
}

static void
qmp_server_class_init(QmpServerClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = qmp_server_dispose;
	object_class->finalize = qmp_server_finalize;

	/* first handler returning TRUE owns the request */
	signals[SIGNAL_COMMAND] =
		g_signal_new("command", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
			     g_signal_accumulator_true_handled, NULL, NULL, G_TYPE_BOOLEAN, 4,
			     QMP_TYPE_SERVER_CONNECTION, G_TYPE_STRING | G_SIGNAL_TYPE_STATIC_SCOPE,
			     JSON_TYPE_OBJECT | G_SIGNAL_TYPE_STATIC_SCOPE, G_TYPE_POINTER);
	signals[SIGNAL_CONNECTION_OPENED] =
		g_signal_new("connection-opened", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
			     NULL, NULL, NULL, G_TYPE_NONE, 1, QMP_TYPE_SERVER_CONNECTION);
	signals[SIGNAL_CONNECTION_CLOSED] =
		g_signal_new("connection-closed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
			     NULL, NULL, NULL, G_TYPE_NONE, 1, QMP_TYPE_SERVER_CONNECTION);
}

static void
qmp_server_init(QmpServer *self)
{
	self->max_message = QMP_SERVER_DEFAULT_MAX_MESSAGE;
	self->connections = g_ptr_array_new_with_free_func(g_object_unref);
}
