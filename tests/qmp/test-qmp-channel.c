/*
 * test-qmp-channel.c: the wire under QMP clients and servers. Many idle
 * channels must cost the main loop one poll descriptor, not one each;
 * output larger than the socket buffer must arrive whole and in order; a
 * write error and a hang-up reach the owner from the main loop.
 */
#include <gio/gio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qmp-channel.h"
#include "qmp-error.h"
#include "qmp-test-peer.h"

typedef struct {
	GPtrArray *messages; /* gchar* */
	GError *broken;
	gboolean in_send; /* set while the test is inside qmp_channel_send() */
	gboolean broken_in_send;
} Owner;

static void
owner_on_message(QmpChannel *channel, const gchar *text, gsize len, gpointer user_data)
{
	Owner *owner = user_data;

	g_assert_cmpuint(strlen(text), ==, len);
	g_ptr_array_add(owner->messages, g_strdup(text));
}

static void
owner_on_broken(QmpChannel *channel, const GError *reason, gpointer user_data)
{
	Owner *owner = user_data;

	g_assert_null(owner->broken);
	owner->broken = g_error_copy(reason);
	owner->broken_in_send = owner->in_send;
}

static const QmpChannelFuncs owner_funcs = {
	.message = owner_on_message,
	.broken = owner_on_broken,
};

static void
owner_init(Owner *owner)
{
	memset(owner, 0, sizeof(*owner));
	owner->messages = g_ptr_array_new_with_free_func(g_free);
}

static void
owner_clear(Owner *owner)
{
	g_ptr_array_unref(owner->messages);
	g_clear_error(&owner->broken);
}

/* A channel on one end of a socketpair; the other end is returned, its descriptor to use raw. */
static int last_channel_fd; /* the descriptor under the last channel_pair() */

static QmpChannel *
channel_pair(GSocket **peer)
{
	g_autoptr(GIOStream) stream = NULL;
	QmpChannel *channel;

	qmp_test_socketpair(&stream, peer);
	last_channel_fd =
		g_socket_get_fd(g_socket_connection_get_socket(G_SOCKET_CONNECTION(stream)));
	channel = qmp_channel_new(stream, 1024 * 1024, "pair");
	g_assert_nonnull(channel);
	return channel;
}

static void
peer_close(GSocket *peer)
{
	g_assert_true(g_socket_close(peer, NULL));
	g_object_unref(peer);
}

/* How many descriptors the default main context would poll now. */
static gint
count_poll_fds(void)
{
	GMainContext *ctx = g_main_context_default();
	GPollFD fds[64];
	gint max_priority, timeout, n_fds;

	g_assert_true(g_main_context_acquire(ctx));
	g_main_context_prepare(ctx, &max_priority);
	n_fds = g_main_context_query(ctx, max_priority, &timeout, fds, G_N_ELEMENTS(fds));
	g_main_context_check(ctx, max_priority, fds, MIN(n_fds, (gint)G_N_ELEMENTS(fds)));
	g_main_context_release(ctx);
	return n_fds;
}

static void
iterate_until(gboolean (*cond)(gpointer), gpointer data)
{
	gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

	while (!cond(data)) {
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		g_main_context_iteration(NULL, FALSE);
		g_usleep(1000);
	}
}

static gboolean
has_messages(gpointer data)
{
	Owner *owner = data;
	return owner->messages->len > 0;
}

static gboolean
is_broken(gpointer data)
{
	Owner *owner = data;
	return owner->broken != NULL;
}

/* Many idle channels: the main context polls one more descriptor, not one each. */
static void
test_idle_channels_share_one_poll(void)
{
	enum { N = 400 };
	QmpChannel *channels[N];
	GSocket *peers[N];
	Owner owners[N];
	gint before = count_poll_fds(), during;

	for (guint i = 0; i < N; i++) {
		owner_init(&owners[i]);
		channels[i] = channel_pair(&peers[i]);
		qmp_channel_start(channels[i], &owner_funcs, &owners[i]);
	}
	during = count_poll_fds();
	g_test_message("%d poll descriptors with %d channels, %d without", during, N, before);
	g_assert_cmpint(during, ==, before + 1);

	/* and every one of them still hears its peer: a message to each, in reverse order */
	for (gint i = N - 1; i >= 0; i--) {
		g_autofree gchar *msg = g_strdup_printf("{\"return\": %d}\r\n", i);
		g_assert_cmpint(write(g_socket_get_fd(peers[i]), msg, strlen(msg)), ==,
				(gssize)strlen(msg));
	}
	for (guint i = 0; i < N; i++) {
		g_autofree gchar *want = g_strdup_printf("{\"return\": %u}", i);

		iterate_until(has_messages, &owners[i]);
		g_assert_cmpuint(owners[i].messages->len, ==, 1);
		g_assert_cmpstr(g_ptr_array_index(owners[i].messages, 0), ==, want);
	}
	for (guint i = 0; i < N; i++) {
		qmp_channel_close(channels[i]);
		qmp_channel_unref(channels[i]);
		peer_close(peers[i]);
		owner_clear(&owners[i]);
	}
	/* the default context keeps its poller (one descriptor) for the next channel */
	g_assert_cmpint(count_poll_fds(), ==, before + 1);
}

/* Reads everything @fd has until @want bytes came, iterating the main loop meanwhile. */
static GString *
drain(int fd, gsize want)
{
	GString *got = g_string_new(NULL);
	gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
	gchar buf[65536];

	while (got->len < want) {
		gssize n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		if (n > 0)
			g_string_append_len(got, buf, n);
		else
			g_main_context_iteration(NULL, FALSE);
	}
	return got;
}

/* Output far beyond the socket buffer goes out whole and in order, without blocking. */
static void
test_large_output_in_order(void)
{
	GSocket *peer;
	Owner owner;
	QmpChannel *channel = channel_pair(&peer);
	g_autoptr(GString) expect = g_string_new(NULL);
	g_autoptr(GString) got = NULL;
	gint64 before;

	owner_init(&owner);
	qmp_channel_start(channel, &owner_funcs, &owner);
	before = g_get_monotonic_time();
	for (guint i = 0; i < 64; i++) {
		/* 64 messages of 64 KiB: 4 MiB, far more than a socketpair buffers */
		g_autofree gchar *pad = g_strnfill(65536, 'a' + (i % 26));
		g_autofree gchar *msg = g_strdup_printf("{\"n\": %u, \"pad\": \"%s\"}", i, pad);

		qmp_channel_send_message(channel, msg, strlen(msg));
		g_string_append(expect, msg);
		g_string_append(expect, "\r\n");
	}
	/* none of the sends waited for the peer to read */
	g_assert_cmpint(g_get_monotonic_time() - before, <, 5 * G_USEC_PER_SEC);
	got = drain(g_socket_get_fd(peer), expect->len);
	g_assert_cmpuint(got->len, ==, expect->len);
	g_assert_true(memcmp(got->str, expect->str, expect->len) == 0);
	g_assert_null(owner.broken);

	qmp_channel_close(channel);
	qmp_channel_unref(channel);
	peer_close(peer);
	owner_clear(&owner);
}

/* A write to a peer that is gone fails; the owner hears it from the main loop. */
static void
test_write_error_reported_later(void)
{
	GSocket *peer;
	Owner owner;
	QmpChannel *channel = channel_pair(&peer);

	owner_init(&owner);
	qmp_channel_start(channel, &owner_funcs, &owner);
	peer_close(peer);
	owner.in_send = TRUE;
	qmp_channel_send(channel, "{}\r\n", 4);
	owner.in_send = FALSE;
	iterate_until(is_broken, &owner);
	g_assert_false(owner.broken_in_send);
	g_assert_error(owner.broken, QMP_ERROR, QMP_ERROR_DISCONNECTED);
	/* further sends are dropped quietly, and no second report comes */
	qmp_channel_send(channel, "{}\r\n", 4);
	for (guint i = 0; i < 10; i++)
		g_main_context_iteration(NULL, FALSE);

	qmp_channel_close(channel);
	qmp_channel_unref(channel);
	owner_clear(&owner);
}

/*
 * A channel closed while its write error waits to be reported leaves epoll
 * before its descriptor closes: the number may come back as the next
 * connection's, which must keep hearing its peer.
 */
static void
test_closed_with_pending_error_frees_its_number(void)
{
	GSocket *peer_a, *peer_b;
	Owner owner_a, owner_b;
	QmpChannel *a = channel_pair(&peer_a);
	QmpChannel *b;
	int fd_a = last_channel_fd;
	static const gchar text[] = "{\"return\": {}}\r\n";

	owner_init(&owner_a);
	owner_init(&owner_b);
	qmp_channel_start(a, &owner_funcs, &owner_a);
	peer_close(peer_a);
	qmp_channel_send(a, "{}\r\n", 4); /* fails: reported later */
	qmp_channel_close(a);		  /* before that report */
	qmp_channel_unref(a);

	b = channel_pair(&peer_b);
	g_test_message("first channel's descriptor %d, the next one's %d", fd_a, last_channel_fd);
	qmp_channel_start(b, &owner_funcs, &owner_b);
	for (guint i = 0; i < 10; i++)
		g_main_context_iteration(NULL, FALSE);
	g_assert_cmpint(write(g_socket_get_fd(peer_b), text, strlen(text)), ==,
			(gssize)strlen(text));
	iterate_until(has_messages, &owner_b);
	g_assert_cmpstr(g_ptr_array_index(owner_b.messages, 0), ==, "{\"return\": {}}");
	g_assert_null(owner_a.broken); /* closed by its owner: no callback after that */

	qmp_channel_close(b);
	qmp_channel_unref(b);
	peer_close(peer_b);
	owner_clear(&owner_a);
	owner_clear(&owner_b);
}

/* A hang-up in the middle of a message says so. */
static void
test_hangup_mid_message(void)
{
	GSocket *peer;
	Owner owner;
	QmpChannel *channel = channel_pair(&peer);
	static const gchar text[] = "{\"return\": {}}\r\n{\"event\": \"SHUTD";

	owner_init(&owner);
	qmp_channel_start(channel, &owner_funcs, &owner);
	g_assert_cmpint(write(g_socket_get_fd(peer), text, strlen(text)), ==, (gssize)strlen(text));
	peer_close(peer);
	iterate_until(is_broken, &owner);
	g_assert_cmpuint(owner.messages->len, ==, 1);
	g_assert_cmpstr(g_ptr_array_index(owner.messages, 0), ==, "{\"return\": {}}");
	g_assert_error(owner.broken, QMP_ERROR, QMP_ERROR_DISCONNECTED);
	g_assert_nonnull(strstr(owner.broken->message, "in the middle of a message"));

	qmp_channel_close(channel);
	qmp_channel_unref(channel);
	owner_clear(&owner);
}

/* close_after_flush: what was queued reaches the peer, then the peer sees the end. */
static void
test_close_after_flush(void)
{
	GSocket *peer;
	Owner owner;
	QmpChannel *channel = channel_pair(&peer);
	g_autofree gchar *big = g_strnfill(1024 * 1024, 'x');
	g_autoptr(GString) got = NULL;
	gchar c;

	owner_init(&owner);
	qmp_channel_start(channel, &owner_funcs, &owner);
	qmp_channel_send(channel, big, strlen(big));
	qmp_channel_close_after_flush(channel);
	/* the owner may let go at once: the channel lives until it has written */
	qmp_channel_unref(channel);
	got = drain(g_socket_get_fd(peer), strlen(big));
	g_assert_cmpuint(got->len, ==, strlen(big));
	for (guint i = 0; i < 1000 && recv(g_socket_get_fd(peer), &c, 1, MSG_DONTWAIT) != 0; i++) {
		g_main_context_iteration(NULL, FALSE);
		g_usleep(1000);
	}
	g_assert_cmpint(recv(g_socket_get_fd(peer), &c, 1, MSG_DONTWAIT), ==, 0);
	g_assert_null(owner.broken); /* callbacks stopped at close_after_flush */
	peer_close(peer);
	owner_clear(&owner);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/qmp/channel/idle-channels-share-one-poll",
			test_idle_channels_share_one_poll);
	g_test_add_func("/qmp/channel/large-output-in-order", test_large_output_in_order);
	g_test_add_func("/qmp/channel/write-error-reported-later", test_write_error_reported_later);
	g_test_add_func("/qmp/channel/closed-with-pending-error-frees-its-number",
			test_closed_with_pending_error_frees_its_number);
	g_test_add_func("/qmp/channel/hangup-mid-message", test_hangup_mid_message);
	g_test_add_func("/qmp/channel/close-after-flush", test_close_after_flush);
	return g_test_run();
}
