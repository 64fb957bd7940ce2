/*
 * qmp-channel.h: the wire under a QMP client or server connection (private
 * to libvmbc-qmp).
 *
 * A channel owns a connected socket (a GSocketConnection). It reads when the
 * socket is readable, frames the bytes into messages with a QmpFramer and
 * hands each message text up; it writes outgoing messages in order without
 * blocking, keeping what a slow peer does not take yet, so the main loop
 * never blocks. The channels of one main context share one epoll-based
 * GSource, so an idle connection costs a main-loop iteration nothing. It
 * knows nothing of what a message means.
 */
#pragma once

#include <gio/gio.h>
#include <sys/types.h>

G_BEGIN_DECLS

typedef struct _QmpChannel QmpChannel;

typedef struct {
	/* One complete message; the text is only valid during the call. */
	void (*message)(QmpChannel *channel, const gchar *text, gsize len, gpointer user_data);
	/*
	 * Reading stopped (end of stream, a read or write error, a message too
	 * large or garbage); called at most once. The owner decides whether to
	 * close now or after the queued output has been written.
	 */
	void (*broken)(QmpChannel *channel, const GError *reason, gpointer user_data);
} QmpChannelFuncs;

/* @stream must be a GSocketConnection; @name says which peer in error messages, e.g. the socket
 * path. */
QmpChannel *qmp_channel_new(GIOStream *stream, gsize max_message, const gchar *name);
QmpChannel *qmp_channel_ref(QmpChannel *self);

/*
 * Makes sure the thread-default main context can poll channels (its epoll
 * descriptor), before a connection takes the last free descriptor. For the
 * global default context this is done once and kept; other contexts make
 * theirs with their first channel. FALSE with @error if it cannot.
 */
gboolean qmp_channel_prepare_context(GError **error);
void qmp_channel_unref(QmpChannel *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QmpChannel, qmp_channel_unref)

/* Starts reading; callbacks run in the thread-default main context of this call. */
void qmp_channel_start(QmpChannel *self, const QmpChannelFuncs *funcs, gpointer user_data);

/*
 * Writes @len bytes (copied), now or, what the socket does not take, when it
 * can. Ignored once the channel is closed. A write error reaches the owner's
 * broken callback later, from the main loop, never from inside this call.
 */
void qmp_channel_send(QmpChannel *self, const gchar *data, gsize len);

/*
 * Closes the stream now, dropping queued output. No callback runs after this;
 * the owner may free its user_data.
 */
void qmp_channel_close(QmpChannel *self);

/* Stops reading, writes what is queued, then closes. Callbacks stop now. */
void qmp_channel_close_after_flush(QmpChannel *self);

/* Queues @len bytes of one message followed by CRLF, as QEMU ends its messages. */
void qmp_channel_send_message(QmpChannel *self, const gchar *text, gsize len);

gboolean qmp_channel_is_closed(QmpChannel *self);

const gchar *qmp_channel_get_name(QmpChannel *self);

/* Peer credentials from SO_PEERCRED; FALSE if the stream is not a UNIX socket. */
gboolean qmp_channel_get_peer_credentials(QmpChannel *self, pid_t *pid, uid_t *uid, gid_t *gid);

G_END_DECLS
