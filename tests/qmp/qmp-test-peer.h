/*
 * qmp-test-peer.h: the raw other end of a QMP connection for tests.
 *
 * A peer wraps one end of a socketpair (or an accepted socket) without any
 * of libvmbc-qmp's own code above the framer: it frames what it receives,
 * hands each message to a callback, and writes raw bytes without blocking,
 * so a test can play QEMU (or a client) byte for byte, including garbage.
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

typedef struct _QmpTestPeer QmpTestPeer;

typedef void (*QmpTestPeerMessageFunc)(QmpTestPeer *peer, const gchar *text, gpointer user_data);

/* Takes @sock; callbacks run in the thread-default main context. */
QmpTestPeer *qmp_test_peer_new(GSocket *sock, QmpTestPeerMessageFunc func, gpointer user_data);
void qmp_test_peer_free(QmpTestPeer *peer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QmpTestPeer, qmp_test_peer_free)

/* Queues raw bytes. */
void qmp_test_peer_send(QmpTestPeer *peer, const gchar *data, gsize len);
/* Queues @text followed by CRLF. */
void qmp_test_peer_send_line(QmpTestPeer *peer, const gchar *text);
/* Closes once everything queued is written. */
void qmp_test_peer_close(QmpTestPeer *peer);
gboolean qmp_test_peer_saw_eof(QmpTestPeer *peer);
/* Runs the default context until the output queue is empty. */
void qmp_test_peer_flush(QmpTestPeer *peer);

/*
 * A socketpair as two GSockets: @client_stream gets a GSocketConnection for
 * the side under test, @peer_sock the raw side.
 */
void qmp_test_socketpair(GIOStream **client_stream, GSocket **peer_sock);

/* Iterates the default main context until *@flag is TRUE (fails after 10 s). */
void qmp_test_wait_for(gboolean *flag);
/* Iterates the default main context for @ms milliseconds. */
void qmp_test_spin(guint ms);

/* Parses @text into an object node, asserting that it is one. */
JsonNode *qmp_test_parse(const gchar *text);

G_END_DECLS
