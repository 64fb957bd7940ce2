/*
 * qmp-channel.c: asynchronous reading, framing and ordered writing of QMP
 * messages on one connected stream. Shared by the client and the server so
 * that both bound, frame and queue the same way.
 */
#include "qmp-channel.h"

#include <string.h>
#include <sys/socket.h>

#include "qmp-error.h"
#include "qmp-framer.h"

/* One read; small, since a fake QEMU may run thousands of servers at once. */
#define QMP_CHANNEL_READ_SIZE 4096

struct _QmpChannel {
	grefcount ref;
	GIOStream *stream;
	GInputStream *in;
	GOutputStream *out;
	QmpFramer *framer;
	gchar *name;
	GCancellable *read_cancellable;
	GCancellable *write_cancellable;
	QmpChannelFuncs funcs;
	gpointer user_data;
	gboolean has_funcs; /* cleared when the owner must not be called any more */
	GQueue out_queue;   /* GBytes, the head is being written */
	gboolean writing;
	gboolean write_failed;
	gboolean reading_stopped;
	gboolean close_when_flushed;
	gboolean closed;
	gboolean have_creds;
	pid_t peer_pid;
	uid_t peer_uid;
	gid_t peer_gid;
	gchar read_buf[QMP_CHANNEL_READ_SIZE];
};

static void
qmp_channel_read_credentials(QmpChannel *self)
{
	GSocket *sock;
	g_autoptr(GCredentials) creds = NULL;
	g_autoptr(GError) error = NULL;
	struct ucred *uc;

	self->peer_pid = -1;
	self->peer_uid = (uid_t)-1;
	self->peer_gid = (gid_t)-1;
	if (!G_IS_SOCKET_CONNECTION(self->stream))
		return;
	sock = g_socket_connection_get_socket(G_SOCKET_CONNECTION(self->stream));
	if (g_socket_get_family(sock) != G_SOCKET_FAMILY_UNIX)
		return;
	creds = g_socket_get_credentials(sock, &error);
	if (creds == NULL) {
		g_debug("no peer credentials on QMP socket '%s': %s", self->name, error->message);
		return;
	}
	uc = g_credentials_get_native(creds, G_CREDENTIALS_TYPE_LINUX_UCRED);
	if (uc == NULL)
		return;
	self->have_creds = TRUE;
	self->peer_pid = uc->pid;
	self->peer_uid = uc->uid;
	self->peer_gid = uc->gid;
}

QmpChannel *
qmp_channel_new(GIOStream *stream, gsize max_message, const gchar *name)
{
	QmpChannel *self;

	g_return_val_if_fail(G_IS_IO_STREAM(stream), NULL);

	self = g_new0(QmpChannel, 1);
	g_ref_count_init(&self->ref);
	self->stream = g_object_ref(stream);
	self->in = g_io_stream_get_input_stream(stream);
	self->out = g_io_stream_get_output_stream(stream);
	self->framer = qmp_framer_new(max_message);
	self->name = g_strdup(name != NULL ? name : "(stream)");
	self->read_cancellable = g_cancellable_new();
	self->write_cancellable = g_cancellable_new();
	g_queue_init(&self->out_queue);
	qmp_channel_read_credentials(self);
	return self;
}

QmpChannel *
qmp_channel_ref(QmpChannel *self)
{
	g_return_val_if_fail(self != NULL, NULL);
	g_ref_count_inc(&self->ref);
	return self;
}

void
qmp_channel_unref(QmpChannel *self)
{
	if (self == NULL)
		return;
	if (!g_ref_count_dec(&self->ref))
		return;
	/* every pending operation holds a reference, so none is left here */
	if (!self->closed)
		g_io_stream_close(self->stream, NULL, NULL);
	g_queue_clear_full(&self->out_queue, (GDestroyNotify)g_bytes_unref);
	g_object_unref(self->read_cancellable);
	g_object_unref(self->write_cancellable);
	qmp_framer_free(self->framer);
	g_object_unref(self->stream);
	g_free(self->name);
	g_free(self);
}

/* Reading is over for good: tell the owner once. */
static void
qmp_channel_report_broken(QmpChannel *self, const GError *reason)
{
	self->reading_stopped = TRUE;
	g_cancellable_cancel(self->read_cancellable);
	if (self->has_funcs) {
		self->has_funcs = FALSE;
		self->funcs.broken(self, reason, self->user_data);
	}
}

static void qmp_channel_read_next(QmpChannel *self);

/* Hands every complete message up; FALSE if the owner stopped or closed us meanwhile. */
static gboolean
qmp_channel_deliver(QmpChannel *self)
{
	gchar *text;

	while (self->has_funcs && (text = qmp_framer_pop(self->framer)) != NULL) {
		self->funcs.message(self, text, strlen(text), self->user_data);
		g_free(text);
	}
	return self->has_funcs && !self->reading_stopped && !self->closed;
}

static void
qmp_channel_on_read(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QmpChannel) self = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) reason = NULL;
	gssize n;

	n = g_input_stream_read_finish(G_INPUT_STREAM(source), res, &error);
	if (self->closed || self->reading_stopped || !self->has_funcs)
		return;
	/* a peer that dies with our bytes unread resets the connection: that is a close too */
	if (n < 0 && (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED) ||
		      g_error_matches(error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE)))
		n = 0;
	if (n < 0) {
		reason = g_error_new(QMP_ERROR, QMP_ERROR_DISCONNECTED,
				     "error reading from QMP socket '%s': %s", self->name,
				     error->message);
		qmp_channel_report_broken(self, reason);
		return;
	}
	if (n == 0) {
		gsize partial = qmp_framer_get_partial_size(self->framer);

		if (partial > 0)
			reason = g_error_new(QMP_ERROR, QMP_ERROR_DISCONNECTED,
					     "connection to QMP socket '%s' closed in the middle "
					     "of a message (%" G_GSIZE_FORMAT " bytes received)",
					     self->name, partial);
		else
			reason = g_error_new(QMP_ERROR, QMP_ERROR_DISCONNECTED,
					     "connection to QMP socket '%s' closed", self->name);
		qmp_channel_report_broken(self, reason);
		return;
	}
	if (!qmp_framer_push(self->framer, self->read_buf, (gsize)n, &error)) {
		/* what was complete before the bad bytes is still good */
		if (!qmp_channel_deliver(self))
			return;
		reason =
			g_error_new(QMP_ERROR, error->code, "invalid data from QMP socket '%s': %s",
				    self->name, error->message);
		qmp_channel_report_broken(self, reason);
		return;
	}
	if (qmp_channel_deliver(self))
		qmp_channel_read_next(self);
}

static void
qmp_channel_read_next(QmpChannel *self)
{
	g_input_stream_read_async(self->in, self->read_buf, sizeof(self->read_buf),
				  G_PRIORITY_DEFAULT, self->read_cancellable, qmp_channel_on_read,
				  qmp_channel_ref(self));
}

void
qmp_channel_start(QmpChannel *self, const QmpChannelFuncs *funcs, gpointer user_data)
{
	g_return_if_fail(self != NULL);
	g_return_if_fail(funcs != NULL && funcs->message != NULL && funcs->broken != NULL);
	g_return_if_fail(!self->has_funcs && !self->closed);

	self->funcs = *funcs;
	self->user_data = user_data;
	self->has_funcs = TRUE;
	qmp_channel_read_next(self);
}

static void qmp_channel_write_next(QmpChannel *self);

static void
qmp_channel_on_written(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QmpChannel) self = user_data;
	g_autoptr(GError) error = NULL;

	self->writing = FALSE;
	if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), res, NULL, &error)) {
		g_autoptr(GError) reason = NULL;

		if (self->closed)
			return;
		self->write_failed = TRUE;
		g_queue_clear_full(&self->out_queue, (GDestroyNotify)g_bytes_unref);
		if (self->close_when_flushed) {
			qmp_channel_close(self);
			return;
		}
		reason = g_error_new(QMP_ERROR, QMP_ERROR_DISCONNECTED,
				     "error writing to QMP socket '%s': %s", self->name,
				     error->message);
		qmp_channel_report_broken(self, reason);
		return;
	}
	if (self->closed)
		return;
	g_bytes_unref(g_queue_pop_head(&self->out_queue));
	if (!g_queue_is_empty(&self->out_queue))
		qmp_channel_write_next(self);
	else if (self->close_when_flushed)
		qmp_channel_close(self);
}

static void
qmp_channel_write_next(QmpChannel *self)
{
	GBytes *bytes = g_queue_peek_head(&self->out_queue);
	gsize size = 0;
	gconstpointer data = g_bytes_get_data(bytes, &size);

	self->writing = TRUE;
	g_output_stream_write_all_async(self->out, data, size, G_PRIORITY_DEFAULT,
					self->write_cancellable, qmp_channel_on_written,
					qmp_channel_ref(self));
}

void
qmp_channel_send(QmpChannel *self, const gchar *data, gsize len)
{
	g_return_if_fail(self != NULL);
	g_return_if_fail(data != NULL || len == 0);

	if (self->closed || self->close_when_flushed || self->write_failed || len == 0)
		return;
	g_queue_push_tail(&self->out_queue, g_bytes_new(data, len));
	if (!self->writing)
		qmp_channel_write_next(self);
}

void
qmp_channel_send_message(QmpChannel *self, const gchar *text, gsize len)
{
	gchar *buf;

	g_return_if_fail(self != NULL);
	g_return_if_fail(text != NULL);

	if (self->closed || self->close_when_flushed || self->write_failed)
		return;
	buf = g_malloc(len + 2);
	memcpy(buf, text, len);
	buf[len] = '\r';
	buf[len + 1] = '\n';
	g_queue_push_tail(&self->out_queue, g_bytes_new_take(buf, len + 2));
	if (!self->writing)
		qmp_channel_write_next(self);
}

void
qmp_channel_close(QmpChannel *self)
{
	g_return_if_fail(self != NULL);

	if (self->closed)
		return;
	self->closed = TRUE;
	self->has_funcs = FALSE;
	self->reading_stopped = TRUE;
	g_cancellable_cancel(self->read_cancellable);
	g_cancellable_cancel(self->write_cancellable);
	g_queue_clear_full(&self->out_queue, (GDestroyNotify)g_bytes_unref);
	/* errors (e.g. an operation still pending on a plain stream) change nothing here */
	g_io_stream_close(self->stream, NULL, NULL);
}

void
qmp_channel_close_after_flush(QmpChannel *self)
{
	g_return_if_fail(self != NULL);

	if (self->closed)
		return;
	self->has_funcs = FALSE;
	self->reading_stopped = TRUE;
	self->close_when_flushed = TRUE;
	g_cancellable_cancel(self->read_cancellable);
	if (!self->writing || self->write_failed)
		qmp_channel_close(self);
}

gboolean
qmp_channel_is_closed(QmpChannel *self)
{
	g_return_val_if_fail(self != NULL, TRUE);
	return self->closed;
}

const gchar *
qmp_channel_get_name(QmpChannel *self)
{
	g_return_val_if_fail(self != NULL, NULL);
	return self->name;
}

gboolean
qmp_channel_get_peer_credentials(QmpChannel *self, pid_t *pid, uid_t *uid, gid_t *gid)
{
	g_return_val_if_fail(self != NULL, FALSE);

	if (pid != NULL)
		*pid = self->peer_pid;
	if (uid != NULL)
		*uid = self->peer_uid;
	if (gid != NULL)
		*gid = self->peer_gid;
	return self->have_creds;
}
