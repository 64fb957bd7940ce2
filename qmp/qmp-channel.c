/*
 * qmp-channel.c: reading, framing and ordered writing of QMP messages on one
 * connected socket. Shared by the client and the server so that both bound,
 * frame and queue the same way.
 *
 * The channels of one main context share one epoll poller: see qmp-poller.c.
 *
 * Writes go out at once, without blocking; what the socket does not take is
 * kept, in order, and written when epoll says the socket is writable. A
 * write error is reported from the poller's dispatch, never from inside
 * qmp_channel_send(), so that the owner's callbacks never run in the middle
 * of its own call.
 */
#include "qmp-channel.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qmp-error.h"
#include "qmp-framer.h"
#include "qmp-poller.h"

/* One read; small, since a fake QEMU may run thousands of servers at once. */
#define QMP_CHANNEL_READ_SIZE 4096
/* Reads per channel per dispatch, so that one chatty peer cannot starve the others. */
#define QMP_CHANNEL_READS_PER_DISPATCH 16

struct _QmpChannel {
	grefcount ref;
	GIOStream *stream;
	GSocket *socket;
	int fd;
	QmpFramer *framer;
	gchar *name;
	QmpChannelFuncs funcs;
	gpointer user_data;
	gboolean has_funcs; /* cleared when the owner must not be called any more */
	GQueue out_queue;   /* GBytes; out_offset bytes of the head are written */
	gsize out_offset;
	GError *write_error; /* a failed write, reported from the poller */
	gboolean write_failed;
	gboolean reading; /* started and not stopped */
	gboolean close_when_flushed;
	gboolean closed;
	QmpPoller *poller;	  /* set while a member of it */
	QmpPollerWatch watch;	  /* how the poller calls us */
	GIOCondition poll_events; /* what is registered with the poller */
	gboolean deferred;	  /* in the poller's deferred list */
	gboolean have_creds;
	pid_t peer_pid;
	uid_t peer_uid;
	gid_t peer_gid;
	gchar read_buf[QMP_CHANNEL_READ_SIZE];
};

static void qmp_channel_flush(QmpChannel *self);
static void qmp_channel_read_ready(QmpChannel *self);
static void qmp_channel_report_write_error(QmpChannel *self);
static void qmp_channel_report_broken(QmpChannel *self, const GError *reason);

/* --- membership of the context's poller ---------------------------------------- */

static gpointer
qmp_channel_poller_ref(gpointer member)
{
	return qmp_channel_ref(member);
}

static void
qmp_channel_poller_unref(gpointer member)
{
	qmp_channel_unref(member);
}

/* From the poller's dispatch: the socket is ready; write first, then read. */
static void
qmp_channel_poller_ready(gpointer member, GIOCondition condition)
{
	QmpChannel *self = member;

	if (!self->closed && (condition & (G_IO_OUT | G_IO_ERR | G_IO_HUP)) != 0 &&
	    !g_queue_is_empty(&self->out_queue))
		qmp_channel_flush(self);
	if (!self->closed && self->reading && (condition & (G_IO_IN | G_IO_ERR | G_IO_HUP)) != 0)
		qmp_channel_read_ready(self);
}

/* From the poller's dispatch: a write error seen by qmp_channel_send() is reported now. */
static void
qmp_channel_poller_deferred(gpointer member)
{
	QmpChannel *self = member;

	self->deferred = FALSE;
	qmp_channel_report_write_error(self);
}

static const QmpPollerFuncs qmp_channel_poller_funcs = {
	.ref = qmp_channel_poller_ref,
	.unref = qmp_channel_poller_unref,
	.ready = qmp_channel_poller_ready,
	.deferred = qmp_channel_poller_deferred,
};

gboolean
qmp_channel_prepare_context(GError **error)
{
	return qmp_poller_prepare_context(error);
}

typedef struct {
	QmpChannel *channel;
	GError *reason;
} QmpChannelFailure;

static gboolean
qmp_channel_on_fail_later(gpointer user_data)
{
	QmpChannelFailure *f = user_data;

	if (!f->channel->closed && f->channel->has_funcs)
		qmp_channel_report_broken(f->channel, f->reason);
	qmp_channel_unref(f->channel);
	g_error_free(f->reason);
	g_free(f);
	return G_SOURCE_REMOVE;
}

/*
 * The channel cannot be polled (no descriptor left for epoll, say): it is
 * broken, and its owner hears so from the main loop, as from a dead peer.
 */
static void
qmp_channel_fail_later(QmpChannel *self, const gchar *why)
{
	QmpChannelFailure *f = g_new0(QmpChannelFailure, 1);
	g_autoptr(GSource) idle = g_idle_source_new();

	f->channel = qmp_channel_ref(self);
	f->reason = g_error_new(QMP_ERROR, QMP_ERROR_DISCONNECTED, "QMP socket '%s': %s",
				self->name, why);
	g_source_set_callback(idle, qmp_channel_on_fail_later, f, NULL);
	/* where the channel's callbacks run, as for everything else it reports */
	g_source_attach(idle, self->poller != NULL ? qmp_poller_get_context(self->poller)
						   : g_main_context_get_thread_default());
}

/*
 * A channel is a member of its context's poller (holding a reference on the
 * channel and counting in the poller's members) while it is registered with
 * the poller or has a write error waiting to be reported.
 */
static gboolean
qmp_channel_join_poller(QmpChannel *self)
{
	g_autoptr(GError) error = NULL;

	if (self->poller != NULL)
		return TRUE;
	self->poller = qmp_poller_acquire(&error);
	if (self->poller == NULL) {
		qmp_channel_fail_later(self, error->message);
		return FALSE;
	}
	qmp_channel_ref(self);
	return TRUE;
}

/* Leaves the poller if nothing keeps the channel in it. May drop the last reference. */
static void
qmp_channel_maybe_leave_poller(QmpChannel *self)
{
	QmpPoller *poller = self->poller;

	if (poller == NULL || self->poll_events != 0 || self->deferred)
		return;
	self->poller = NULL;
	qmp_poller_release(poller);
	qmp_channel_unref(self);
}

/*
 * Registers with the poller what the channel waits for now: input while it
 * reads, writability while output is waiting. A closed channel is always
 * taken out of the poller here, before its descriptor is closed: a descriptor
 * number closed while registered may come back as another connection's.
 */
static void
qmp_channel_update_poll(QmpChannel *self)
{
	GIOCondition want = 0;
	g_autoptr(GError) error = NULL;
	gboolean ok;

	if (!self->closed) {
		if (self->reading)
			want |= G_IO_IN;
		if (!g_queue_is_empty(&self->out_queue) && self->write_error == NULL)
			want |= G_IO_OUT;
	}
	if (want == self->poll_events) {
		qmp_channel_maybe_leave_poller(self);
		return;
	}
	if (want == 0) {
		qmp_poller_remove_fd(self->poller, self->fd);
		self->poll_events = 0;
		qmp_channel_maybe_leave_poller(self);
		return;
	}
	if (!qmp_channel_join_poller(self))
		return;
	if (self->poll_events == 0)
		ok = qmp_poller_add_fd(self->poller, self->fd, want, &self->watch, &error);
	else
		ok = qmp_poller_modify_fd(self->poller, self->fd, want, &self->watch, &error);
	if (!ok) {
		g_autofree gchar *why = g_strdup_printf("cannot poll it: %s", error->message);

		qmp_channel_fail_later(self, why);
		qmp_channel_maybe_leave_poller(self);
		return;
	}
	self->poll_events = want;
}

/* --- channels ------------------------------------------------------------------ */

static void
qmp_channel_read_credentials(QmpChannel *self)
{
	g_autoptr(GCredentials) creds = NULL;
	g_autoptr(GError) error = NULL;
	struct ucred *uc;

	self->peer_pid = -1;
	self->peer_uid = (uid_t)-1;
	self->peer_gid = (gid_t)-1;
	if (g_socket_get_family(self->socket) != G_SOCKET_FAMILY_UNIX)
		return;
	creds = g_socket_get_credentials(self->socket, &error);
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

	g_return_val_if_fail(G_IS_SOCKET_CONNECTION(stream), NULL);

	self = g_new0(QmpChannel, 1);
	g_ref_count_init(&self->ref);
	self->stream = g_object_ref(stream);
	self->socket = g_socket_connection_get_socket(G_SOCKET_CONNECTION(stream));
	self->fd = g_socket_get_fd(self->socket);
	self->framer = qmp_framer_new(max_message);
	self->name = g_strdup(name != NULL ? name : "(stream)");
	g_queue_init(&self->out_queue);
	self->watch.funcs = &qmp_channel_poller_funcs;
	self->watch.member = self;
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
	/* a registration holds a reference, so the poller has forgotten us */
	if (!self->closed)
		g_io_stream_close(self->stream, NULL, NULL);
	g_queue_clear_full(&self->out_queue, (GDestroyNotify)g_bytes_unref);
	g_clear_error(&self->write_error);
	qmp_framer_free(self->framer);
	g_object_unref(self->stream);
	g_free(self->name);
	g_free(self);
}

/* Reading is over for good: tell the owner once. */
static void
qmp_channel_report_broken(QmpChannel *self, const GError *reason)
{
	self->reading = FALSE;
	qmp_channel_update_poll(self);
	if (self->has_funcs) {
		self->has_funcs = FALSE;
		self->funcs.broken(self, reason, self->user_data);
	}
}

/* Hands every complete message up; FALSE if the owner stopped or closed us meanwhile. */
static gboolean
qmp_channel_deliver(QmpChannel *self)
{
	gchar *text;

	while (self->has_funcs && (text = qmp_framer_pop(self->framer)) != NULL) {
		self->funcs.message(self, text, strlen(text), self->user_data);
		g_free(text);
	}
	return self->has_funcs && self->reading && !self->closed;
}

/* The socket is readable (or hung up): read what is there, a bounded amount. */
static void
qmp_channel_read_ready(QmpChannel *self)
{
	for (guint i = 0; i < QMP_CHANNEL_READS_PER_DISPATCH; i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GError) reason = NULL;
		gssize n = recv(self->fd, self->read_buf, sizeof(self->read_buf), MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		/* a peer that dies with our bytes unread resets the connection: that is a close too
		 */
		if (n < 0 && (errno == ECONNRESET || errno == EPIPE))
			n = 0;
		if (n < 0) {
			reason = g_error_new(QMP_ERROR, QMP_ERROR_DISCONNECTED,
					     "error reading from QMP socket '%s': %s", self->name,
					     g_strerror(errno));
			qmp_channel_report_broken(self, reason);
			return;
		}
		if (n == 0) {
			gsize partial = qmp_framer_get_partial_size(self->framer);

			if (partial > 0)
				reason = g_error_new(QMP_ERROR, QMP_ERROR_DISCONNECTED,
						     "connection to QMP socket '%s' closed in the "
						     "middle of a message (%" G_GSIZE_FORMAT
						     " bytes received)",
						     self->name, partial);
			else
				reason = g_error_new(QMP_ERROR, QMP_ERROR_DISCONNECTED,
						     "connection to QMP socket '%s' closed",
						     self->name);
			qmp_channel_report_broken(self, reason);
			return;
		}
		if (!qmp_framer_push(self->framer, self->read_buf, (gsize)n, &error)) {
			/* what was complete before the bad bytes is still good */
			if (!qmp_channel_deliver(self))
				return;
			reason = g_error_new(QMP_ERROR, error->code,
					     "invalid data from QMP socket '%s': %s", self->name,
					     error->message);
			qmp_channel_report_broken(self, reason);
			return;
		}
		if (!qmp_channel_deliver(self))
			return;
	}
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
	self->reading = TRUE;
	qmp_channel_update_poll(self);
}

/* A write failed: drop the output, then close (if only flushing) or tell the owner. */
static void
qmp_channel_report_write_error(QmpChannel *self)
{
	g_autoptr(GError) reason = NULL;
	g_autoptr(GError) error = g_steal_pointer(&self->write_error);

	if (self->closed || error == NULL) {
		qmp_channel_update_poll(self);
		return;
	}
	if (self->close_when_flushed) {
		qmp_channel_close(self);
		return;
	}
	reason = g_error_new(QMP_ERROR, QMP_ERROR_DISCONNECTED,
			     "error writing to QMP socket '%s': %s", self->name, error->message);
	qmp_channel_report_broken(self, reason);
}

/*
 * Writes queued output until it is all written or the socket is full. Returns
 * FALSE on a write error, which is then in self->write_error.
 */
static gboolean
qmp_channel_write_queued(QmpChannel *self)
{
	GBytes *bytes;

	while ((bytes = g_queue_peek_head(&self->out_queue)) != NULL) {
		gsize size = 0;
		const gchar *data = g_bytes_get_data(bytes, &size);
		gssize n = send(self->fd, data + self->out_offset, size - self->out_offset,
				MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return TRUE;
		if (n < 0) {
			int saved = errno;

			self->write_failed = TRUE;
			g_queue_clear_full(&self->out_queue, (GDestroyNotify)g_bytes_unref);
			self->out_offset = 0;
			g_set_error_literal(&self->write_error, G_IO_ERROR,
					    g_io_error_from_errno(saved), g_strerror(saved));
			return FALSE;
		}
		self->out_offset += (gsize)n;
		if (self->out_offset == size) {
			g_bytes_unref(g_queue_pop_head(&self->out_queue));
			self->out_offset = 0;
		}
	}
	return TRUE;
}

/* From the poller: the socket is writable. */
static void
qmp_channel_flush(QmpChannel *self)
{
	if (!qmp_channel_write_queued(self)) {
		qmp_channel_report_write_error(self);
		return;
	}
	if (g_queue_is_empty(&self->out_queue) && self->close_when_flushed) {
		qmp_channel_close(self);
		return;
	}
	qmp_channel_update_poll(self);
}

/* Output was queued by the owner: write now what the socket takes. */
static void
qmp_channel_queued(QmpChannel *self)
{
	g_autoptr(QmpChannel) keep = qmp_channel_ref(self);

	if (self->out_queue.length > 1 || self->out_offset > 0)
		return; /* already waiting for the socket; order is kept */
	if (!qmp_channel_write_queued(self)) {
		/* report it from the poller, not from inside the owner's call */
		if (!qmp_channel_join_poller(self))
			return; /* reported broken from an idle callback instead */
		self->deferred = TRUE;
		qmp_poller_defer(self->poller, &self->watch);
	}
	qmp_channel_update_poll(self);
}

void
qmp_channel_send(QmpChannel *self, const gchar *data, gsize len)
{
	g_return_if_fail(self != NULL);
	g_return_if_fail(data != NULL || len == 0);

	if (self->closed || self->close_when_flushed || self->write_failed || len == 0)
		return;
	g_queue_push_tail(&self->out_queue, g_bytes_new(data, len));
	qmp_channel_queued(self);
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
	qmp_channel_queued(self);
}

void
qmp_channel_close(QmpChannel *self)
{
	g_autoptr(QmpChannel) keep = NULL;

	g_return_if_fail(self != NULL);

	if (self->closed)
		return;
	keep = qmp_channel_ref(self); /* leaving the poller drops its reference */
	self->closed = TRUE;
	self->has_funcs = FALSE;
	self->reading = FALSE;
	g_queue_clear_full(&self->out_queue, (GDestroyNotify)g_bytes_unref);
	self->out_offset = 0;
	/* the poller forgets the descriptor before it is closed */
	qmp_channel_update_poll(self);
	g_io_stream_close(self->stream, NULL, NULL);
}

void
qmp_channel_close_after_flush(QmpChannel *self)
{
	g_autoptr(QmpChannel) keep = NULL;

	g_return_if_fail(self != NULL);

	if (self->closed)
		return;
	keep = qmp_channel_ref(self);
	self->has_funcs = FALSE;
	self->reading = FALSE;
	self->close_when_flushed = TRUE;
	if (g_queue_is_empty(&self->out_queue) || self->write_failed)
		qmp_channel_close(self);
	else
		qmp_channel_update_poll(self);
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
