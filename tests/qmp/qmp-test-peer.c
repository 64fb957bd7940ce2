/*
 * qmp-test-peer.c: a raw, non-blocking QMP peer for the unit tests.
 */
#include "qmp-test-peer.h"

#include <string.h>
#include <sys/socket.h>

#include "qmp-framer.h"

struct _QmpTestPeer {
	GSocket *sock;
	QmpFramer *framer;
	QmpTestPeerMessageFunc func;
	gpointer user_data;
	GSource *in_source;
	GSource *out_source;
	GByteArray *out;
	gboolean close_after_flush;
	gboolean closed;
	gboolean eof;
};

static void qmp_test_peer_update_out(QmpTestPeer *peer);

static void
qmp_test_peer_shutdown(QmpTestPeer *peer)
{
	if (peer->closed)
		return;
	peer->closed = TRUE;
	if (peer->in_source != NULL) {
		g_source_destroy(peer->in_source);
		g_clear_pointer(&peer->in_source, g_source_unref);
	}
	if (peer->out_source != NULL) {
		g_source_destroy(peer->out_source);
		g_clear_pointer(&peer->out_source, g_source_unref);
	}
	g_socket_close(peer->sock, NULL);
}

static gboolean
qmp_test_peer_on_in(GSocket *sock, GIOCondition cond, gpointer user_data)
{
	QmpTestPeer *peer = user_data;
	gchar buf[4096];
	g_autoptr(GError) error = NULL;
	gssize n = g_socket_receive(sock, buf, sizeof(buf), NULL, &error);
	gchar *text;

	if (n < 0 && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
		return G_SOURCE_CONTINUE;
	if (n <= 0) {
		peer->eof = TRUE;
		g_clear_pointer(&peer->in_source, g_source_unref);
		return G_SOURCE_REMOVE;
	}
	/* a peer that is sent garbage simply stops framing: tests look at eof */
	if (!qmp_framer_push(peer->framer, buf, (gsize)n, NULL))
		return G_SOURCE_CONTINUE;
	while ((text = qmp_framer_pop(peer->framer)) != NULL) {
		if (peer->func != NULL && !peer->closed)
			peer->func(peer, text, peer->user_data);
		g_free(text);
	}
	return G_SOURCE_CONTINUE;
}

static gboolean
qmp_test_peer_on_out(GSocket *sock, GIOCondition cond, gpointer user_data)
{
	QmpTestPeer *peer = user_data;
	g_autoptr(GError) error = NULL;
	gssize n;

	n = g_socket_send(sock, (const gchar *)peer->out->data, peer->out->len, NULL, &error);
	if (n < 0 && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
		return G_SOURCE_CONTINUE;
	if (n < 0) {
		g_byte_array_set_size(peer->out, 0);
	} else {
		g_byte_array_remove_range(peer->out, 0, (guint)n);
	}
	if (peer->out->len > 0)
		return G_SOURCE_CONTINUE;
	g_clear_pointer(&peer->out_source, g_source_unref);
	if (peer->close_after_flush)
		qmp_test_peer_shutdown(peer);
	return G_SOURCE_REMOVE;
}

static void
qmp_test_peer_update_out(QmpTestPeer *peer)
{
	if (peer->closed || peer->out_source != NULL || peer->out->len == 0)
		return;
	peer->out_source = g_socket_create_source(peer->sock, G_IO_OUT, NULL);
	g_source_set_callback(peer->out_source, G_SOURCE_FUNC(qmp_test_peer_on_out), peer, NULL);
	g_source_attach(peer->out_source, g_main_context_get_thread_default());
}

QmpTestPeer *
qmp_test_peer_new(GSocket *sock, QmpTestPeerMessageFunc func, gpointer user_data)
{
	QmpTestPeer *peer = g_new0(QmpTestPeer, 1);

	peer->sock = sock;
	g_socket_set_blocking(sock, FALSE);
	peer->framer = qmp_framer_new(64 * 1024 * 1024);
	peer->func = func;
	peer->user_data = user_data;
	peer->out = g_byte_array_new();
	peer->in_source = g_socket_create_source(sock, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
	g_source_set_callback(peer->in_source, G_SOURCE_FUNC(qmp_test_peer_on_in), peer, NULL);
	g_source_attach(peer->in_source, g_main_context_get_thread_default());
	return peer;
}

void
qmp_test_peer_free(QmpTestPeer *peer)
{
	if (peer == NULL)
		return;
	qmp_test_peer_shutdown(peer);
	g_object_unref(peer->sock);
	qmp_framer_free(peer->framer);
	g_byte_array_unref(peer->out);
	g_free(peer);
}

void
qmp_test_peer_send(QmpTestPeer *peer, const gchar *data, gsize len)
{
	g_byte_array_append(peer->out, (const guint8 *)data, (guint)len);
	qmp_test_peer_update_out(peer);
}

void
qmp_test_peer_send_line(QmpTestPeer *peer, const gchar *text)
{
	qmp_test_peer_send(peer, text, strlen(text));
	qmp_test_peer_send(peer, "\r\n", 2);
}

void
qmp_test_peer_close(QmpTestPeer *peer)
{
	peer->close_after_flush = TRUE;
	if (peer->out->len == 0)
		qmp_test_peer_shutdown(peer);
}

gboolean
qmp_test_peer_saw_eof(QmpTestPeer *peer)
{
	return peer->eof;
}

void
qmp_test_peer_flush(QmpTestPeer *peer)
{
	gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

	while (peer->out->len > 0 && !peer->closed) {
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		g_main_context_iteration(NULL, TRUE);
	}
}

void
qmp_test_socketpair(GIOStream **client_stream, GSocket **peer_sock)
{
	int fds[2];
	g_autoptr(GError) error = NULL;
	g_autoptr(GSocket) client_sock = NULL;

	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
	client_sock = g_socket_new_from_fd(fds[0], &error);
	g_assert_no_error(error);
	*peer_sock = g_socket_new_from_fd(fds[1], &error);
	g_assert_no_error(error);
	*client_stream = G_IO_STREAM(g_socket_connection_factory_create_connection(client_sock));
}

void
qmp_test_wait_for(gboolean *flag)
{
	gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

	while (!*flag) {
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		g_main_context_iteration(NULL, TRUE);
	}
}

static gboolean
qmp_test_on_spin_done(gpointer user_data)
{
	*(gboolean *)user_data = TRUE;
	return G_SOURCE_REMOVE;
}

void
qmp_test_spin(guint ms)
{
	gboolean done = FALSE;

	g_timeout_add(ms, qmp_test_on_spin_done, &done);
	qmp_test_wait_for(&done);
}

JsonNode *
qmp_test_parse(const gchar *text)
{
	g_autoptr(GError) error = NULL;
	JsonNode *node = json_from_string(text, &error);

	g_assert_no_error(error);
	g_assert_nonnull(node);
	g_assert_true(JSON_NODE_HOLDS_OBJECT(node));
	return node;
}
