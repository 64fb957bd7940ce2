/*
 * qmp-client.c: an asynchronous QMP client on GIO.
 *
 * Layers, bottom up: QmpChannel frames the byte stream and queues writes;
 * qmp_message_parse() types each message; this file routes greeting, return,
 * error and event to the connect task, the pending call with the same id, or
 * the "event" signal. The user sees "unable to execute QMP command 'X': desc"
 * and the whole message goes to g_debug.
 *
 * Timeouts: a host daemon keeps thousands of clients, each with a command or
 * a few in flight, so a client has one timer, not one per command. Pending
 * calls with a deadline sit in a queue sorted by deadline (sent + timeout:
 * each new call goes at the tail, as the deadlines grow in the order sent);
 * the timer, a GSource that lives only while the queue is not empty, is armed
 * for the head. When it fires, every call past its deadline times out and the
 * timer is armed for the next.
 */
#include "qmp-client.h"

#include "qmp-channel.h"
#include "qmp-message.h"

typedef enum {
	QMP_CLIENT_STATE_IDLE,	      /* never connected, or closed */
	QMP_CLIENT_STATE_CONNECTING,  /* socket connect in progress */
	QMP_CLIENT_STATE_GREETING,    /* waiting for {"QMP": ...} */
	QMP_CLIENT_STATE_NEGOTIATING, /* qmp_capabilities sent */
	QMP_CLIENT_STATE_READY,
} QmpClientState;

/* Ids of calls given up (timeout, cancel) kept so their late reply is expected. */
#define QMP_CLIENT_MAX_ABANDONED 4096

typedef struct {
	QmpClient *client; /* borrowed: the pending table owns the call */
	gchar *id;
	gchar *command;
	GTask *task; /* NULL for our own qmp_capabilities */
	GSource *cancel_source;
	gint64 deadline;  /* monotonic µs, in QmpClient.deadlines while queued */
	guint timeout_ms; /* the timeout the deadline was set with, for the message */
	gboolean queued;  /* .link is in QmpClient.deadlines */
	GList link;	  /* .data is the call */
} QmpPendingCall;

/* The one timer of a client (see the top of the file). */
typedef struct {
	GSource source;
	QmpClient *client; /* borrowed: the client destroys its timer */
} QmpClientTimer;

struct _QmpClient {
	GObject parent_instance;
	gsize max_message;
	guint timeout_ms;
	QmpClientState state;
	gchar *name; /* socket path for messages */
	QmpChannel *channel;
	GTask *connect_task;
	GSource *connect_timeout_source;
	GSource *connect_cancel_source;
	JsonObject *greeting;
	GHashTable *pending;   /* id -> QmpPendingCall */
	GQueue deadlines;      /* QmpPendingCall with a deadline, soonest first */
	GSource *timer;	       /* QmpClientTimer while deadlines is not empty */
	GHashTable *abandoned; /* id set */
	guint64 next_id;
	pid_t peer_pid;
};

G_DEFINE_TYPE(QmpClient, qmp_client, G_TYPE_OBJECT)

enum {
	SIGNAL_EVENT,
	SIGNAL_DISCONNECTED,
	SIGNAL_LAST,
};

static guint signals[SIGNAL_LAST] = {0};

static void qmp_client_unqueue(QmpClient *self, QmpPendingCall *call);

static void
qmp_pending_call_free(QmpPendingCall *call)
{
	qmp_client_unqueue(call->client, call);
	if (call->cancel_source != NULL) {
		g_source_destroy(call->cancel_source);
		g_source_unref(call->cancel_source);
	}
	g_clear_object(&call->task);
	g_free(call->id);
	g_free(call->command);
	g_free(call);
}

static void
qmp_client_destroy_timer(QmpClient *self)
{
	if (self->timer == NULL)
		return;
	g_source_destroy(self->timer);
	g_clear_pointer(&self->timer, g_source_unref);
}

/* Arms the timer for the head of the queue, or destroys it if the queue is empty. */
static void
qmp_client_rearm(QmpClient *self)
{
	QmpPendingCall *head = g_queue_peek_head(&self->deadlines);

	if (head == NULL) {
		qmp_client_destroy_timer(self);
		return;
	}
	if (self->timer != NULL)
		g_source_set_ready_time(self->timer, head->deadline);
}

/* Takes @call out of the deadline queue, if it is there, and re-arms the timer. */
static void
qmp_client_unqueue(QmpClient *self, QmpPendingCall *call)
{
	gboolean was_head;

	if (!call->queued)
		return;
	was_head = self->deadlines.head == &call->link;
	g_queue_unlink(&self->deadlines, &call->link);
	call->queued = FALSE;
	if (was_head || self->deadlines.length == 0)
		qmp_client_rearm(self);
}

static gboolean qmp_client_on_timer(gpointer user_data);

static gboolean
qmp_client_timer_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
	return qmp_client_on_timer(((QmpClientTimer *)source)->client);
}

static GSourceFuncs qmp_client_timer_funcs = {
	.dispatch = qmp_client_timer_dispatch,
};

/*
 * Puts @call, whose task is returned in @context, in the deadline queue:
 * from the tail back to the first call due no later (the tail itself but
 * where the timeout was lowered meanwhile), and makes sure the timer is armed.
 */
static void
qmp_client_enqueue(QmpClient *self, QmpPendingCall *call, GMainContext *context)
{
	GList *before = self->deadlines.tail;

	while (before != NULL && ((QmpPendingCall *)before->data)->deadline > call->deadline)
		before = before->prev;
	call->link.data = call;
	if (before == NULL)
		g_queue_push_head_link(&self->deadlines, &call->link);
	else
		g_queue_insert_after_link(&self->deadlines, before, &call->link);
	call->queued = TRUE;
	if (self->timer == NULL) {
		self->timer = g_source_new(&qmp_client_timer_funcs, sizeof(QmpClientTimer));
		((QmpClientTimer *)self->timer)->client = self;
		g_source_set_static_name(self->timer, "QmpClient timer");
		g_source_attach(self->timer, context);
	}
	if (self->deadlines.head == &call->link)
		g_source_set_ready_time(self->timer, call->deadline);
}

QmpClient *
qmp_client_new(void)
{
	return g_object_new(QMP_TYPE_CLIENT, NULL);
}

void
qmp_client_set_max_message_size(QmpClient *self, gsize max_bytes)
{
	g_return_if_fail(QMP_IS_CLIENT(self));
	g_return_if_fail(max_bytes > 0);
	self->max_message = max_bytes;
}

void
qmp_client_set_timeout(QmpClient *self, guint timeout_ms)
{
	g_return_if_fail(QMP_IS_CLIENT(self));
	self->timeout_ms = timeout_ms;
}

static void
qmp_client_clear_connect_sources(QmpClient *self)
{
	if (self->connect_timeout_source != NULL) {
		g_source_destroy(self->connect_timeout_source);
		g_clear_pointer(&self->connect_timeout_source, g_source_unref);
	}
	if (self->connect_cancel_source != NULL) {
		g_source_destroy(self->connect_cancel_source);
		g_clear_pointer(&self->connect_cancel_source, g_source_unref);
	}
}

/*
 * The one way down: closes the channel, fails the connect task and every
 * pending call with @reason (its code, the command named in the message),
 * and emits "disconnected" if the connection had been ready.
 */
static void
qmp_client_fail(QmpClient *self, const GError *reason)
{
	g_autoptr(QmpClient) keep = g_object_ref(self);
	g_autoptr(GHashTable) pending = NULL;
	g_autoptr(GTask) connect_task = NULL;
	GHashTableIter iter;
	gpointer value;
	gboolean was_ready = self->state == QMP_CLIENT_STATE_READY;

	if (self->state == QMP_CLIENT_STATE_IDLE)
		return;
	self->state = QMP_CLIENT_STATE_IDLE;
	if (self->channel != NULL)
		qmp_channel_close(self->channel);
	g_clear_pointer(&self->channel, qmp_channel_unref);
	qmp_client_clear_connect_sources(self);
	g_hash_table_remove_all(self->abandoned);
	/* the calls leave the queue as they are freed, with the old table */
	while (self->deadlines.head != NULL) {
		QmpPendingCall *call = self->deadlines.head->data;

		g_queue_unlink(&self->deadlines, &call->link);
		call->queued = FALSE;
	}
	qmp_client_destroy_timer(self);

	/* taken before any callback runs: a callback may connect again */
	connect_task = g_steal_pointer(&self->connect_task);
	pending = g_steal_pointer(&self->pending);
	self->pending = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
					      (GDestroyNotify)qmp_pending_call_free);
	g_hash_table_iter_init(&iter, pending);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		QmpPendingCall *call = value;

		if (call->task == NULL)
			continue;
		g_task_return_new_error(call->task, reason->domain, reason->code,
					"unable to execute QMP command '%s': %s", call->command,
					reason->message);
	}

	if (connect_task != NULL)
		g_task_return_error(connect_task, g_error_copy(reason));

	if (was_ready) {
		g_info("QMP connection to '%s' lost: %s", self->name, reason->message);
		g_signal_emit(self, signals[SIGNAL_DISCONNECTED], 0, reason);
	}
}

static void
qmp_client_fail_literal(QmpClient *self, GQuark domain, gint code, const gchar *message)
{
	g_autoptr(GError) reason = g_error_new_literal(domain, code, message);
	qmp_client_fail(self, reason);
}

/* Takes @call out of the table and frees it; its task is the caller's to return. */
static GTask *
qmp_client_take_call(QmpClient *self, QmpPendingCall *call, gboolean abandon)
{
	GTask *task = g_steal_pointer(&call->task);

	if (abandon) {
		if (g_hash_table_size(self->abandoned) >= QMP_CLIENT_MAX_ABANDONED)
			g_hash_table_remove_all(self->abandoned);
		g_hash_table_add(self->abandoned, g_strdup(call->id));
	}
	g_hash_table_remove(self->pending, call->id);
	return task;
}

/*
 * The timer fired: every call past its deadline times out (its id kept so
 * that a late reply is expected) and the timer is armed for the next, or
 * goes. The tasks are returned last, once the client is consistent: a
 * callback may send, close or drop the client.
 */
static gboolean
qmp_client_on_timer(gpointer user_data)
{
	QmpClient *self = user_data;
	g_autoptr(QmpClient) keep = g_object_ref(self);
	g_autoptr(GPtrArray) expired = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) tasks = g_ptr_array_new_with_free_func(g_object_unref);
	gint64 now = g_get_monotonic_time();
	QmpPendingCall *call;

	while ((call = g_queue_peek_head(&self->deadlines)) != NULL && call->deadline <= now) {
		g_debug("QMP command '%s' on '%s' timed out after %u ms", call->command, self->name,
			call->timeout_ms);
		g_ptr_array_add(expired,
				g_strdup_printf("unable to execute QMP command '%s': no reply "
						"within %u ms",
						call->command, call->timeout_ms));
		g_ptr_array_add(tasks, qmp_client_take_call(self, call, TRUE));
	}
	qmp_client_rearm(self);
	for (guint i = 0; i < tasks->len; i++)
		g_task_return_new_error(g_ptr_array_index(tasks, i), QMP_ERROR, QMP_ERROR_TIMEOUT,
					"%s", (const gchar *)g_ptr_array_index(expired, i));
	return G_SOURCE_CONTINUE;
}

static gboolean
qmp_client_on_call_cancelled(GCancellable *cancellable, gpointer user_data)
{
	QmpPendingCall *call = user_data;
	g_autofree gchar *command = g_strdup(call->command);
	g_autoptr(GTask) task = NULL;

	g_source_destroy(call->cancel_source);
	g_clear_pointer(&call->cancel_source, g_source_unref);
	task = qmp_client_take_call(call->client, call, TRUE);
	g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
				"unable to execute QMP command '%s': operation was cancelled",
				command);
	return G_SOURCE_REMOVE;
}

static gchar *
qmp_client_send_command(QmpClient *self, const gchar *command, JsonObject *arguments)
{
	g_autoptr(JsonNode) root = json_node_new(JSON_NODE_OBJECT);
	g_autoptr(JsonGenerator) gen = json_generator_new();
	JsonObject *obj = json_object_new();
	g_autofree gchar *text = NULL;
	gchar *id = g_strdup_printf("vmbc-%" G_GUINT64_FORMAT, ++self->next_id);
	gsize len = 0;

	json_object_set_string_member(obj, "execute", command);
	if (arguments != NULL)
		json_object_set_object_member(obj, "arguments", json_object_ref(arguments));
	json_object_set_string_member(obj, "id", id);
	json_node_take_object(root, obj);
	json_generator_set_root(gen, root);
	text = json_generator_to_data(gen, &len);
	g_debug("QMP '%s' <- %s", self->name, text);
	qmp_channel_send_message(self->channel, text, len);
	return id;
}

static QmpPendingCall *
qmp_client_add_call(QmpClient *self, const gchar *command, JsonObject *arguments, GTask *task,
		    GCancellable *cancellable)
{
	QmpPendingCall *call = g_new0(QmpPendingCall, 1);

	call->client = self;
	call->command = g_strdup(command);
	call->task = task != NULL ? g_object_ref(task) : NULL;
	call->id = qmp_client_send_command(self, command, arguments);
	g_hash_table_insert(self->pending, call->id, call);

	if (task != NULL && self->timeout_ms > 0) {
		call->timeout_ms = self->timeout_ms;
		call->deadline = g_get_monotonic_time() + (gint64)self->timeout_ms * 1000;
		qmp_client_enqueue(self, call, g_task_get_context(task));
	}
	if (task != NULL && cancellable != NULL) {
		call->cancel_source = g_cancellable_source_new(cancellable);
		g_source_set_callback(call->cancel_source,
				      G_SOURCE_FUNC(qmp_client_on_call_cancelled), call, NULL);
		g_source_attach(call->cancel_source, g_task_get_context(task));
	}
	return call;
}

static void
qmp_client_handle_greeting(QmpClient *self, QmpMessage *msg)
{
	if (self->state != QMP_CLIENT_STATE_GREETING) {
		qmp_client_fail_literal(self, QMP_ERROR, QMP_ERROR_PROTOCOL,
					"unexpected QMP greeting after the first message");
		return;
	}
	g_clear_pointer(&self->greeting, json_object_unref);
	self->greeting = json_object_ref(msg->greeting);
	self->state = QMP_CLIENT_STATE_NEGOTIATING;
	qmp_client_add_call(self, "qmp_capabilities", NULL, NULL, NULL);
}

static void
qmp_client_handle_reply(QmpClient *self, QmpMessage *msg, const gchar *text)
{
	QmpPendingCall *call = NULL;
	const gchar *id = NULL;
	g_autoptr(GTask) task = NULL;
	g_autofree gchar *command = NULL;

	if (msg->id != NULL && json_node_get_value_type(msg->id) == G_TYPE_STRING)
		id = json_node_get_string(msg->id);
	if (msg->kind == QMP_MESSAGE_ERROR && msg->id == NULL) {
		g_autoptr(GError) reason = g_error_new(
			QMP_ERROR, QMP_ERROR_PROTOCOL, "QMP error without id from '%s': %s: %s",
			self->name, msg->error_class, msg->error_desc);
		qmp_client_fail(self, reason);
		return;
	}
	if (id != NULL)
		call = g_hash_table_lookup(self->pending, id);
	if (call == NULL) {
		if (id != NULL && g_hash_table_remove(self->abandoned, id))
			g_debug("dropping late QMP reply for abandoned command: %s", text);
		else
			g_warning("dropping QMP reply with unknown id from '%s': %s", self->name,
				  text);
		return;
	}

	if (call->task == NULL) {
		/* our own qmp_capabilities */
		g_hash_table_remove(self->pending, call->id);
		if (msg->kind == QMP_MESSAGE_ERROR) {
			g_autoptr(GError) reason = g_error_new(
				QMP_ERROR, qmp_error_from_class(msg->error_class),
				"unable to execute QMP command 'qmp_capabilities' on '%s': %s",
				self->name, msg->error_desc);
			qmp_client_fail(self, reason);
			return;
		}
		self->state = QMP_CLIENT_STATE_READY;
		qmp_client_clear_connect_sources(self);
		g_info("QMP connection to '%s' ready", self->name);
		if (self->connect_task != NULL) {
			g_autoptr(GTask) connect_task = g_steal_pointer(&self->connect_task);
			g_task_return_boolean(connect_task, TRUE);
		}
		return;
	}

	command = g_strdup(call->command);
	task = qmp_client_take_call(self, call, FALSE);
	if (msg->kind == QMP_MESSAGE_ERROR) {
		g_task_return_new_error(task, QMP_ERROR, qmp_error_from_class(msg->error_class),
					"unable to execute QMP command '%s': %s", command,
					msg->error_desc);
		return;
	}
	g_task_return_pointer(task, json_node_ref(msg->ret), (GDestroyNotify)json_node_unref);
}

static void
qmp_client_on_message(QmpChannel *channel, const gchar *text, gsize len, gpointer user_data)
{
	QmpClient *self = user_data;
	g_autoptr(QmpClient) keep = g_object_ref(self);
	g_autoptr(QmpMessage) msg = NULL;
	g_autoptr(GError) error = NULL;

	g_debug("QMP '%s' -> %s", self->name, text);
	msg = qmp_message_parse(text, len, &error);
	if (msg == NULL) {
		g_prefix_error(&error, "invalid message from QMP socket '%s': ", self->name);
		qmp_client_fail(self, error);
		return;
	}
	if (self->state == QMP_CLIENT_STATE_GREETING && msg->kind != QMP_MESSAGE_GREETING) {
		qmp_client_fail_literal(self, QMP_ERROR, QMP_ERROR_PROTOCOL,
					"QMP peer did not start with a greeting");
		return;
	}
	switch (msg->kind) {
	case QMP_MESSAGE_GREETING:
		qmp_client_handle_greeting(self, msg);
		break;
	case QMP_MESSAGE_RETURN:
	case QMP_MESSAGE_ERROR:
		qmp_client_handle_reply(self, msg, text);
		break;
	case QMP_MESSAGE_EVENT:
		g_signal_emit(self, signals[SIGNAL_EVENT], 0, msg->event, msg->event_data,
			      msg->timestamp_usec);
		break;
	default:
		g_assert_not_reached();
	}
}

static void
qmp_client_on_broken(QmpChannel *channel, const GError *reason, gpointer user_data)
{
	qmp_client_fail(QMP_CLIENT(user_data), reason);
}

static const QmpChannelFuncs qmp_client_channel_funcs = {
	.message = qmp_client_on_message,
	.broken = qmp_client_on_broken,
};

static gboolean
qmp_client_on_connect_timeout(gpointer user_data)
{
	QmpClient *self = user_data;
	g_autoptr(GError) reason =
		g_error_new(QMP_ERROR, QMP_ERROR_TIMEOUT,
			    "no QMP greeting and capabilities from '%s' within %u ms", self->name,
			    self->timeout_ms);

	qmp_client_fail(self, reason);
	return G_SOURCE_REMOVE;
}

static gboolean
qmp_client_on_connect_cancelled(GCancellable *cancellable, gpointer user_data)
{
	QmpClient *self = user_data;
	g_autoptr(GError) reason = NULL;

	reason = g_error_new(G_IO_ERROR, G_IO_ERROR_CANCELLED,
			     "connecting to QMP socket '%s' was cancelled", self->name);
	qmp_client_fail(self, reason);
	return G_SOURCE_REMOVE;
}

/* Common start of both connect calls; FALSE (task returned) if already busy. */
static gboolean
qmp_client_begin_connect(QmpClient *self, GTask *task, const gchar *name, GCancellable *cancellable)
{
	if (self->state != QMP_CLIENT_STATE_IDLE) {
		g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_BUSY,
					"QMP client already connected or connecting to '%s'",
					self->name);
		return FALSE;
	}
	g_free(self->name);
	self->name = g_strdup(name);
	g_clear_pointer(&self->greeting, json_object_unref);
	self->peer_pid = -1;
	self->state = QMP_CLIENT_STATE_CONNECTING;
	self->connect_task = g_object_ref(task);
	if (self->timeout_ms > 0) {
		self->connect_timeout_source = g_timeout_source_new(self->timeout_ms);
		g_source_set_callback(self->connect_timeout_source, qmp_client_on_connect_timeout,
				      self, NULL);
		g_source_attach(self->connect_timeout_source, g_task_get_context(task));
	}
	if (cancellable != NULL) {
		self->connect_cancel_source = g_cancellable_source_new(cancellable);
		g_source_set_callback(self->connect_cancel_source,
				      G_SOURCE_FUNC(qmp_client_on_connect_cancelled), self, NULL);
		g_source_attach(self->connect_cancel_source, g_task_get_context(task));
	}
	return TRUE;
}

static void
qmp_client_attach_stream(QmpClient *self, GIOStream *stream)
{
	self->channel = qmp_channel_new(stream, self->max_message, self->name);
	qmp_channel_get_peer_credentials(self->channel, &self->peer_pid, NULL, NULL);
	self->state = QMP_CLIENT_STATE_GREETING;
	qmp_channel_start(self->channel, &qmp_client_channel_funcs, self);
}

static void
qmp_client_on_socket_connected(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	QmpClient *self = g_task_get_source_object(task);
	g_autoptr(GSocketConnection) conn = NULL;
	g_autoptr(GError) error = NULL;

	conn = g_socket_client_connect_finish(G_SOCKET_CLIENT(source), res, &error);
	/* a timeout, cancel or close while connecting already answered the task */
	if (self->connect_task != task || self->state != QMP_CLIENT_STATE_CONNECTING)
		return;
	if (conn == NULL) {
		g_autoptr(GError) reason = g_error_new(QMP_ERROR, QMP_ERROR_DISCONNECTED,
						       "unable to connect to QMP socket '%s': %s",
						       self->name, error->message);
		qmp_client_fail(self, reason);
		return;
	}
	qmp_client_attach_stream(self, G_IO_STREAM(conn));
}

void
qmp_client_connect_async(QmpClient *self, const gchar *path, GCancellable *cancellable,
			 GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(GSocketClient) sc = NULL;
	g_autoptr(GSocketAddress) addr = NULL;

	g_return_if_fail(QMP_IS_CLIENT(self));
	g_return_if_fail(path != NULL);

	task = g_task_new(self, NULL, callback, user_data);
	g_task_set_source_tag(task, qmp_client_connect_async);
	if (!qmp_client_begin_connect(self, task, path, cancellable))
		return;
	{
		g_autoptr(GError) error = NULL;

		if (!qmp_channel_prepare_context(&error)) {
			g_autoptr(GError) reason =
				g_error_new(QMP_ERROR, QMP_ERROR_DISCONNECTED,
					    "unable to connect to QMP socket '%s': %s", self->name,
					    error->message);
			qmp_client_fail(self, reason);
			return;
		}
	}
	sc = g_socket_client_new();
	addr = g_unix_socket_address_new(path);
	/*
	 * Our own source answers a cancel, so the cancellable is not passed on:
	 * a UNIX connect does not block, and its late result is then ignored.
	 */
	g_socket_client_connect_async(sc, G_SOCKET_CONNECTABLE(addr), NULL,
				      qmp_client_on_socket_connected, g_object_ref(task));
}

void
qmp_client_connect_stream_async(QmpClient *self, GIOStream *stream, GCancellable *cancellable,
				GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autofree gchar *name = NULL;

	g_return_if_fail(QMP_IS_CLIENT(self));
	g_return_if_fail(G_IS_SOCKET_CONNECTION(stream));

	task = g_task_new(self, NULL, callback, user_data);
	g_task_set_source_tag(task, qmp_client_connect_stream_async);
	if (G_IS_SOCKET_CONNECTION(stream)) {
		g_autoptr(GSocketAddress) addr =
			g_socket_connection_get_remote_address(G_SOCKET_CONNECTION(stream), NULL);
		if (G_IS_UNIX_SOCKET_ADDRESS(addr) &&
		    g_unix_socket_address_get_path_len(G_UNIX_SOCKET_ADDRESS(addr)) > 0)
			name = g_strdup(
				g_unix_socket_address_get_path(G_UNIX_SOCKET_ADDRESS(addr)));
	}
	if (!qmp_client_begin_connect(self, task, name != NULL ? name : "(stream)", cancellable))
		return;
	qmp_client_attach_stream(self, stream);
}

gboolean
qmp_client_connect_finish(QmpClient *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(QMP_IS_CLIENT(self), FALSE);
	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

static void
qmp_client_on_sync_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GAsyncResult **out = user_data;
	*out = g_object_ref(res);
}

gboolean
qmp_client_connect_sync(QmpClient *self, const gchar *path, GCancellable *cancellable,
			GError **error)
{
	g_autoptr(GMainContext) ctx = g_main_context_ref_thread_default();
	g_autoptr(GAsyncResult) res = NULL;

	g_return_val_if_fail(QMP_IS_CLIENT(self), FALSE);

	qmp_client_connect_async(self, path, cancellable, qmp_client_on_sync_done, &res);
	while (res == NULL)
		g_main_context_iteration(ctx, TRUE);
	return qmp_client_connect_finish(self, res, error);
}

void
qmp_client_execute_async(QmpClient *self, const gchar *command, JsonObject *arguments,
			 GCancellable *cancellable, GAsyncReadyCallback callback,
			 gpointer user_data)
{
	g_autoptr(GTask) task = NULL;

	g_return_if_fail(QMP_IS_CLIENT(self));
	g_return_if_fail(command != NULL);

	task = g_task_new(self, NULL, callback, user_data);
	g_task_set_source_tag(task, qmp_client_execute_async);
	if (self->state != QMP_CLIENT_STATE_READY) {
		g_task_return_new_error(task, QMP_ERROR, QMP_ERROR_DISCONNECTED,
					"unable to execute QMP command '%s': not connected to "
					"QMP socket '%s'",
					command, self->name != NULL ? self->name : "(none)");
		return;
	}
	if (cancellable != NULL && g_cancellable_is_cancelled(cancellable)) {
		g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
					"unable to execute QMP command '%s': operation was "
					"cancelled",
					command);
		return;
	}
	qmp_client_add_call(self, command, arguments, task, cancellable);
}

JsonNode *
qmp_client_execute_finish(QmpClient *self, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(QMP_IS_CLIENT(self), NULL);
	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	return g_task_propagate_pointer(G_TASK(res), error);
}

JsonNode *
qmp_client_execute_sync(QmpClient *self, const gchar *command, JsonObject *arguments,
			GCancellable *cancellable, GError **error)
{
	g_autoptr(GMainContext) ctx = g_main_context_ref_thread_default();
	g_autoptr(GAsyncResult) res = NULL;

	g_return_val_if_fail(QMP_IS_CLIENT(self), NULL);

	qmp_client_execute_async(self, command, arguments, cancellable, qmp_client_on_sync_done,
				 &res);
	while (res == NULL)
		g_main_context_iteration(ctx, TRUE);
	return qmp_client_execute_finish(self, res, error);
}

void
qmp_client_close(QmpClient *self)
{
	g_autoptr(GError) reason = NULL;

	g_return_if_fail(QMP_IS_CLIENT(self));

	if (self->state == QMP_CLIENT_STATE_IDLE)
		return;
	reason = g_error_new(QMP_ERROR, QMP_ERROR_DISCONNECTED,
			     "connection to QMP socket '%s' closed by the client", self->name);
	qmp_client_fail(self, reason);
}

gboolean
qmp_client_is_connected(QmpClient *self)
{
	g_return_val_if_fail(QMP_IS_CLIENT(self), FALSE);
	return self->state == QMP_CLIENT_STATE_READY;
}

JsonObject *
qmp_client_get_greeting(QmpClient *self)
{
	g_return_val_if_fail(QMP_IS_CLIENT(self), NULL);
	return self->greeting;
}

pid_t
qmp_client_get_peer_pid(QmpClient *self)
{
	g_return_val_if_fail(QMP_IS_CLIENT(self), -1);
	return self->peer_pid;
}

static void
qmp_client_dispose(GObject *object)
{
	QmpClient *self = QMP_CLIENT(object);

	if (self->state != QMP_CLIENT_STATE_IDLE) {
		g_autoptr(GError) reason = g_error_new(QMP_ERROR, QMP_ERROR_DISCONNECTED,
						       "QMP client for '%s' destroyed", self->name);
		qmp_client_fail(self, reason);
	}
	G_OBJECT_CLASS(qmp_client_parent_class)->dispose(object);
}

static void
qmp_client_finalize(GObject *object)
{
	QmpClient *self = QMP_CLIENT(object);

	g_hash_table_unref(self->pending);
	qmp_client_destroy_timer(self);
	g_hash_table_unref(self->abandoned);
	g_clear_pointer(&self->greeting, json_object_unref);
	g_free(self->name);
	G_OBJECT_CLASS(qmp_client_parent_class)->finalize(object);
}

static void
qmp_client_class_init(QmpClientClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = qmp_client_dispose;
	object_class->finalize = qmp_client_finalize;

	/* (name, data or NULL, timestamp in microseconds since the epoch or -1) */
	signals[SIGNAL_EVENT] =
		g_signal_new("event", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
			     NULL, G_TYPE_NONE, 3, G_TYPE_STRING | G_SIGNAL_TYPE_STATIC_SCOPE,
			     JSON_TYPE_OBJECT | G_SIGNAL_TYPE_STATIC_SCOPE, G_TYPE_INT64);
	/* (reason): only after the connection was ready */
	signals[SIGNAL_DISCONNECTED] =
		g_signal_new("disconnected", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
			     NULL, NULL, G_TYPE_NONE, 1, G_TYPE_ERROR | G_SIGNAL_TYPE_STATIC_SCOPE);
}

static void
qmp_client_init(QmpClient *self)
{
	self->max_message = QMP_CLIENT_DEFAULT_MAX_MESSAGE;
	self->peer_pid = -1;
	g_queue_init(&self->deadlines);
	self->pending = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
					      (GDestroyNotify)qmp_pending_call_free);
	self->abandoned = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
}
