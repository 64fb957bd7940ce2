/*
 * test-qmp-server.c: QmpServer against a raw peer, and QmpClient against
 * QmpServer over a UNIX socket in a temporary directory.
 */
#include <glib/gstdio.h>
#include <unistd.h>

#include "qmp-client.h"
#include "qmp-server.h"
#include "qmp-test-peer.h"

typedef struct {
	QmpServer *server;
	QmpTestPeer *peer;
	QmpServerConnection *conn;
	GPtrArray *received; /* JsonNode * from the server */
	GPtrArray *held;     /* QmpRequest * kept by the "hold" handler */
	guint opened;
	guint closed;
	gchar *tmpdir;
} Fixture;

static void
on_peer_message(QmpTestPeer *peer, const gchar *text, gpointer user_data)
{
	Fixture *fx = user_data;
	g_ptr_array_add(fx->received, qmp_test_parse(text));
}

static void
on_opened(QmpServer *server, QmpServerConnection *conn, gpointer user_data)
{
	((Fixture *)user_data)->opened++;
}

static void
on_closed(QmpServer *server, QmpServerConnection *conn, gpointer user_data)
{
	((Fixture *)user_data)->closed++;
}

/* Answers "echo" with its arguments, "fail" with DeviceNotActive, holds "hold". */
static gboolean
on_command(QmpServer *server, QmpServerConnection *conn, const gchar *name, JsonObject *args,
	   QmpRequest *req, gpointer user_data)
{
	Fixture *fx = user_data;

	g_assert_cmpstr(qmp_request_get_command(req), ==, name);
	g_assert_true(qmp_request_get_connection(req) == conn);
	if (g_strcmp0(name, "echo") == 0) {
		JsonNode *node = json_node_new(JSON_NODE_OBJECT);
		json_node_take_object(node,
				      args != NULL ? json_object_ref(args) : json_object_new());
		qmp_request_return(req, node);
		return TRUE;
	}
	if (g_strcmp0(name, "fail") == 0) {
		qmp_request_error(req, QMP_ERROR_DEVICE_NOT_ACTIVE,
				  "No balloon device has been activated");
		return TRUE;
	}
	if (g_strcmp0(name, "hold") == 0) {
		g_ptr_array_add(fx->held, req);
		return TRUE;
	}
	if (g_strcmp0(name, "bye") == 0) {
		/* answer, then hang up at once: the answer must still arrive */
		qmp_request_return(req, NULL);
		qmp_server_connection_close(conn);
		return TRUE;
	}
	return FALSE;
}

static void
fixture_setup(Fixture *fx, gconstpointer data)
{
	g_autoptr(GIOStream) stream = NULL;
	g_autoptr(GSocket) peer_sock = NULL;
	g_autoptr(JsonObject) greeting = json_object_new();
	JsonObject *version = json_object_new();

	json_object_set_string_member(version, "package", "vmbc");
	json_object_set_object_member(greeting, "version", version);
	json_object_set_array_member(greeting, "capabilities", json_array_new());
	fx->server = qmp_server_new(greeting);
	fx->received = g_ptr_array_new_with_free_func((GDestroyNotify)json_node_unref);
	fx->held = g_ptr_array_new();
	g_signal_connect(fx->server, "command", G_CALLBACK(on_command), fx);
	g_signal_connect(fx->server, "connection-opened", G_CALLBACK(on_opened), fx);
	g_signal_connect(fx->server, "connection-closed", G_CALLBACK(on_closed), fx);
	fx->tmpdir = g_dir_make_tmp("vmbc-qmp-XXXXXX", NULL);
	g_assert_nonnull(fx->tmpdir);
	if (GPOINTER_TO_INT(data) == 1)
		return; /* the test connects by itself */
	qmp_test_socketpair(&stream, &peer_sock);
	fx->conn = qmp_server_add_stream(fx->server, stream);
	fx->peer = qmp_test_peer_new(g_steal_pointer(&peer_sock), on_peer_message, fx);
}

static void
fixture_teardown(Fixture *fx, gconstpointer data)
{
	g_assert_cmpuint(fx->held->len, ==, 0);
	g_signal_handlers_disconnect_by_data(fx->server, fx);
	qmp_server_close(fx->server);
	g_clear_object(&fx->server);
	g_clear_pointer(&fx->peer, qmp_test_peer_free);
	g_ptr_array_unref(fx->received);
	g_ptr_array_unref(fx->held);
	while (g_main_context_iteration(NULL, FALSE))
		;
	g_assert_cmpint(g_rmdir(fx->tmpdir), ==, 0);
	g_free(fx->tmpdir);
}

/* Waits for the @n-th message (1-based) from the server and returns it. */
static JsonObject *
wait_message(Fixture *fx, guint n)
{
	gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

	while (fx->received->len < n) {
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		g_main_context_iteration(NULL, TRUE);
	}
	return json_node_get_object(g_ptr_array_index(fx->received, n - 1));
}

static void
assert_error(JsonObject *msg, const gchar *klass, const gchar *desc)
{
	JsonObject *err = json_object_get_object_member(msg, "error");

	g_assert_nonnull(err);
	g_assert_cmpstr(json_object_get_string_member(err, "class"), ==, klass);
	if (!g_pattern_match_simple(desc, json_object_get_string_member(err, "desc")))
		g_error("desc '%s' does not match '%s'", json_object_get_string_member(err, "desc"),
			desc);
}

static void
negotiate(Fixture *fx)
{
	JsonObject *msg;

	qmp_test_peer_send_line(fx->peer, "{\"execute\": \"qmp_capabilities\", \"id\": \"c\"}");
	msg = wait_message(fx, 2);
	g_assert_true(json_object_has_member(msg, "return"));
	g_assert_cmpstr(json_object_get_string_member(msg, "id"), ==, "c");
}

static void
test_greeting(Fixture *fx, gconstpointer data)
{
	JsonObject *msg = wait_message(fx, 1);
	JsonObject *qmp = json_object_get_object_member(msg, "QMP");

	g_assert_nonnull(qmp);
	g_assert_cmpstr(json_object_get_string_member(json_object_get_object_member(qmp, "version"),
						      "package"),
			==, "vmbc");
	g_assert_cmpuint(fx->opened, ==, 1);
}

static void
test_refuse_before_capabilities(Fixture *fx, gconstpointer data)
{
	qmp_test_peer_send_line(fx->peer, "{\"execute\": \"echo\", \"id\": 5}");
	assert_error(wait_message(fx, 2), "CommandNotFound",
		     "Expecting capabilities negotiation with 'qmp_capabilities'");
	g_assert_cmpint(json_object_get_int_member(wait_message(fx, 2), "id"), ==, 5);
	qmp_test_peer_send_line(fx->peer, "{\"execute\": \"qmp_capabilities\"}");
	g_assert_true(json_object_has_member(wait_message(fx, 3), "return"));
	g_assert_false(json_object_has_member(wait_message(fx, 3), "id"));
	qmp_test_peer_send_line(fx->peer, "{\"execute\": \"qmp_capabilities\", \"id\": 6}");
	assert_error(wait_message(fx, 4), "CommandNotFound",
		     "Capabilities negotiation is already complete, command ignored");
}

static void
test_id_echo(Fixture *fx, gconstpointer data)
{
	const gchar *ids[] = {"\"s\"", "7", "{\"a\":[1,2]}", "null", "1.5"};

	negotiate(fx);
	for (guint i = 0; i < G_N_ELEMENTS(ids); i++) {
		g_autofree gchar *cmd = g_strdup_printf(
			"{\"execute\": \"echo\", \"arguments\": {\"n\": %u}, \"id\": %s}", i,
			ids[i]);
		g_autofree gchar *got = NULL;
		JsonObject *msg;

		qmp_test_peer_send_line(fx->peer, cmd);
		msg = wait_message(fx, 3 + i);
		got = json_to_string(json_object_get_member(msg, "id"), FALSE);
		g_assert_cmpstr(got, ==, ids[i]);
		g_assert_cmpint(json_object_get_int_member(
					json_object_get_object_member(msg, "return"), "n"),
				==, i);
	}
}

static void
test_bad_messages(Fixture *fx, gconstpointer data)
{
	const struct {
		const gchar *text;
		const gchar *desc;
	} cases[] = {
		{"{\"id\": 1}", "QMP input lacks member 'execute'"},
		{"{\"execute\": 1, \"id\": 1}", "QMP input member 'execute' must be a string"},
		{"{\"execute\": \"echo\", \"arguments\": 3, \"id\": 1}",
		 "QMP input member 'arguments' must be an object"},
		{"{\"execute\" \"x\"}", "JSON parse error*"},
		{"{\"execute\": \"nosuch\", \"id\": 1}", "The command nosuch has not been found"},
	};
	JsonObject *msg;

	negotiate(fx);
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		qmp_test_peer_send_line(fx->peer, cases[i].text);
		msg = wait_message(fx, 3 + i);
		assert_error(msg, i == 4 ? "CommandNotFound" : "GenericError", cases[i].desc);
	}
	/* the connection survives all of that */
	qmp_test_peer_send_line(fx->peer, "{\"execute\": \"fail\", \"id\": 9}");
	assert_error(wait_message(fx, 3 + G_N_ELEMENTS(cases)), "DeviceNotActive",
		     "No balloon device has been activated");
	g_assert_cmpuint(fx->closed, ==, 0);
}

/* Not an object at all: an error, then the connection is closed. */
static void
test_not_object(Fixture *fx, gconstpointer data)
{
	negotiate(fx);
	qmp_test_peer_send_line(fx->peer, "[1, 2]");
	assert_error(wait_message(fx, 3), "GenericError", "*unexpected byte*");
	while (!qmp_test_peer_saw_eof(fx->peer))
		g_main_context_iteration(NULL, TRUE);
	g_assert_cmpuint(fx->closed, ==, 1);
}

static void
test_oversized(Fixture *fx, gconstpointer data)
{
	g_autoptr(GString) big = g_string_new("{\"execute\": \"echo\", \"arguments\": {\"x\": \"");

	qmp_server_set_max_message_size(fx->server, 1024);
	/* the limit applies to connections made after it is set */
	g_clear_pointer(&fx->peer, qmp_test_peer_free);
	while (fx->closed < 1)
		g_main_context_iteration(NULL, TRUE);
	{
		g_autoptr(GIOStream) stream = NULL;
		g_autoptr(GSocket) peer_sock = NULL;

		qmp_test_socketpair(&stream, &peer_sock);
		qmp_server_add_stream(fx->server, stream);
		fx->peer = qmp_test_peer_new(g_steal_pointer(&peer_sock), on_peer_message, fx);
	}
	g_ptr_array_set_size(fx->received, 0);
	negotiate(fx);
	for (guint i = 0; i < 4096; i++)
		g_string_append_c(big, 'z');
	g_string_append(big, "\"}}");
	qmp_test_peer_send_line(fx->peer, big->str);
	assert_error(wait_message(fx, 3), "GenericError", "*larger than 1024 bytes*");
	while (!qmp_test_peer_saw_eof(fx->peer))
		g_main_context_iteration(NULL, TRUE);
	g_assert_cmpuint(fx->closed, ==, 2);
}

static void
test_fragmented(Fixture *fx, gconstpointer data)
{
	const gchar *text =
		"{\"execute\": \"echo\", \"arguments\": {\"s\": \"}{\\\"\"}, \"id\": 1}";

	negotiate(fx);
	for (gsize i = 0; text[i] != '\0'; i++) {
		qmp_test_peer_send(fx->peer, text + i, 1);
		qmp_test_peer_flush(fx->peer);
		while (g_main_context_iteration(NULL, FALSE))
			;
	}
	g_assert_cmpstr(json_object_get_string_member(
				json_object_get_object_member(wait_message(fx, 3), "return"), "s"),
			==, "}{\"");
}

/* Handlers run in order; the first to return TRUE owns the request. */
static gboolean
on_command_first(QmpServer *server, QmpServerConnection *conn, const gchar *name, JsonObject *args,
		 QmpRequest *req, gpointer user_data)
{
	guint *calls = user_data;

	(*calls)++;
	if (g_strcmp0(name, "mine") != 0)
		return FALSE;
	qmp_request_return(req, json_node_init_string(json_node_alloc(), "first"));
	return TRUE;
}

static void
test_accumulator(Fixture *fx, gconstpointer data)
{
	guint calls = 0;

	g_signal_handlers_disconnect_by_func(fx->server, on_command, fx);
	g_signal_connect(fx->server, "command", G_CALLBACK(on_command_first), &calls);
	g_signal_connect(fx->server, "command", G_CALLBACK(on_command), fx);
	negotiate(fx);
	qmp_test_peer_send_line(fx->peer, "{\"execute\": \"mine\", \"id\": 1}");
	g_assert_cmpstr(json_object_get_string_member(wait_message(fx, 3), "return"), ==, "first");
	qmp_test_peer_send_line(fx->peer, "{\"execute\": \"echo\", \"id\": 2}");
	g_assert_true(json_object_has_member(wait_message(fx, 4), "return"));
	g_assert_cmpuint(calls, ==, 2);
	g_signal_handlers_disconnect_by_func(fx->server, on_command_first, &calls);
}

static void
test_async_reply(Fixture *fx, gconstpointer data)
{
	negotiate(fx);
	qmp_test_peer_send_line(fx->peer, "{\"execute\": \"hold\", \"id\": 1}");
	qmp_test_peer_send_line(fx->peer, "{\"execute\": \"hold\", \"id\": 2}");
	while (fx->held->len < 2)
		g_main_context_iteration(NULL, TRUE);
	qmp_test_spin(20);
	g_assert_cmpuint(fx->received->len, ==, 2);
	/* answered out of order, each with its own id */
	qmp_request_error(g_ptr_array_index(fx->held, 1), QMP_ERROR_GENERIC_ERROR, "late %d", 2);
	qmp_request_return(g_ptr_array_index(fx->held, 0), NULL);
	g_ptr_array_set_size(fx->held, 0);
	assert_error(wait_message(fx, 3), "GenericError", "late 2");
	g_assert_cmpint(json_object_get_int_member(wait_message(fx, 3), "id"), ==, 2);
	g_assert_cmpint(json_object_get_int_member(wait_message(fx, 4), "id"), ==, 1);
	g_assert_true(json_object_has_member(wait_message(fx, 4), "return"));
}

static void
test_reply_after_close(Fixture *fx, gconstpointer data)
{
	QmpRequest *req;

	negotiate(fx);
	qmp_test_peer_send_line(fx->peer, "{\"execute\": \"hold\", \"id\": 1}");
	while (fx->held->len < 1)
		g_main_context_iteration(NULL, TRUE);
	req = g_ptr_array_steal_index(fx->held, 0);
	qmp_test_peer_close(fx->peer);
	while (fx->closed < 1)
		g_main_context_iteration(NULL, TRUE);
	g_assert_null(qmp_request_get_connection(req));
	qmp_request_return(req, json_node_init_int(json_node_alloc(), 1));
}

static void
test_events(Fixture *fx, gconstpointer data)
{
	g_autoptr(JsonObject) payload = json_object_new();
	JsonObject *msg;
	JsonObject *ts;
	gint64 now = g_get_real_time();

	/* not yet negotiated: broadcast skips this connection */
	qmp_server_broadcast_event(fx->server, "EARLY", NULL);
	negotiate(fx);
	json_object_set_int_member(payload, "actual", 42);
	qmp_server_broadcast_event(fx->server, "BALLOON_CHANGE", payload);
	qmp_server_connection_send_event(fx->conn, "STOP", NULL);
	msg = wait_message(fx, 3);
	g_assert_cmpstr(json_object_get_string_member(msg, "event"), ==, "BALLOON_CHANGE");
	g_assert_cmpint(
		json_object_get_int_member(json_object_get_object_member(msg, "data"), "actual"),
		==, 42);
	ts = json_object_get_object_member(msg, "timestamp");
	g_assert_cmpint(json_object_get_int_member(ts, "seconds"), >=, now / G_USEC_PER_SEC);
	g_assert_cmpint(json_object_get_int_member(ts, "microseconds"), <, G_USEC_PER_SEC);
	msg = wait_message(fx, 4);
	g_assert_cmpstr(json_object_get_string_member(msg, "event"), ==, "STOP");
	g_assert_false(json_object_has_member(msg, "data"));
}

static void
test_peer_credentials(Fixture *fx, gconstpointer data)
{
	g_assert_cmpint(qmp_server_connection_get_peer_pid(fx->conn), ==, getpid());
	g_assert_cmpint(qmp_server_connection_get_peer_uid(fx->conn), ==, getuid());
	g_assert_cmpint(qmp_server_connection_get_peer_gid(fx->conn), ==, getgid());
}

static void
test_connection_close(Fixture *fx, gconstpointer data)
{
	negotiate(fx);
	qmp_server_connection_send_event(fx->conn, "SHUTDOWN", NULL);
	qmp_server_connection_close(fx->conn);
	g_assert_cmpuint(fx->closed, ==, 1);
	/* what was queued before the close still arrives */
	g_assert_cmpstr(json_object_get_string_member(wait_message(fx, 3), "event"), ==,
			"SHUTDOWN");
	while (!qmp_test_peer_saw_eof(fx->peer))
		g_main_context_iteration(NULL, TRUE);
}

static void
test_reply_then_close(Fixture *fx, gconstpointer data)
{
	negotiate(fx);
	/* the server's only reference to the connection goes with the close */
	fx->conn = NULL;
	qmp_test_peer_send_line(fx->peer, "{\"execute\": \"bye\", \"id\": 9}");
	g_assert_cmpint(json_object_get_int_member(wait_message(fx, 3), "id"), ==, 9);
	while (!qmp_test_peer_saw_eof(fx->peer))
		g_main_context_iteration(NULL, TRUE);
	g_assert_cmpuint(fx->closed, ==, 1);
}

static void
test_send_raw(Fixture *fx, gconstpointer data)
{
	negotiate(fx);
	qmp_server_connection_send_raw(fx->conn, "{\"ra", 4);
	qmp_server_connection_send_raw(fx->conn, "w\": 1}", 6);
	g_assert_cmpint(json_object_get_int_member(wait_message(fx, 3), "raw"), ==, 1);
}

static void
on_client_event(QmpClient *client, const gchar *name, JsonObject *data, gint64 ts,
		gpointer user_data)
{
	g_assert_cmpstr(name, ==, "BALLOON_CHANGE");
	g_assert_cmpint(json_object_get_int_member(data, "actual"), ==, 1);
	g_assert_cmpint(ts, >, 0);
	(*(guint *)user_data)++;
}

static void
on_client_disconnected(QmpClient *client, const GError *reason, gpointer user_data)
{
	(*(guint *)user_data)++;
}

static void
on_executed(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GError **error = user_data;
	g_autoptr(JsonNode) node = qmp_client_execute_finish(QMP_CLIENT(source), res, error);
	g_assert_null(node);
}

/* The server going away fails the client's pending command and says so. */
static void
test_round_trip_disconnect(Fixture *fx, gconstpointer data)
{
	g_autofree gchar *path = g_build_filename(fx->tmpdir, "qmp.sock", NULL);
	g_autoptr(QmpClient) client = qmp_client_new();
	g_autoptr(GError) error = NULL;
	g_autofree gchar *expected = NULL;
	guint disconnected = 0;

	g_assert_true(qmp_server_listen_unix(fx->server, path, &error));
	g_assert_true(qmp_client_connect_sync(client, path, NULL, &error));
	g_assert_no_error(error);
	g_signal_connect(client, "disconnected", G_CALLBACK(on_client_disconnected), &disconnected);
	qmp_client_execute_async(client, "hold", NULL, NULL, on_executed, &error);
	while (fx->held->len < 1)
		g_main_context_iteration(NULL, TRUE);
	qmp_server_close(fx->server);
	/* the socket file is gone with the server */
	g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
	while (error == NULL)
		g_main_context_iteration(NULL, TRUE);
	g_assert_error(error, QMP_ERROR, QMP_ERROR_DISCONNECTED);
	expected = g_strdup_printf("unable to execute QMP command 'hold': connection to QMP "
				   "socket '%s' closed",
				   path);
	g_assert_cmpstr(error->message, ==, expected);
	g_assert_cmpuint(disconnected, ==, 1);
	/* the held request is answered after its connection closed: just freed */
	qmp_request_return(g_ptr_array_steal_index(fx->held, 0), NULL);
}

/* A stale socket file from a previous run is replaced. */
static void
test_listen_replaces_socket(Fixture *fx, gconstpointer data)
{
	g_autofree gchar *path = g_build_filename(fx->tmpdir, "qmp.sock", NULL);
	g_autoptr(QmpServer) other = qmp_server_new(NULL);
	g_autoptr(QmpClient) client = qmp_client_new();
	g_autoptr(GError) error = NULL;

	g_assert_true(qmp_server_listen_unix(other, path, &error));
	g_assert_no_error(error);
	g_assert_true(qmp_server_listen_unix(fx->server, path, &error));
	g_assert_no_error(error);
	g_assert_true(qmp_client_connect_sync(client, path, NULL, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(fx->opened, ==, 1);
	qmp_client_close(client);
	/* closing the replaced server leaves the new socket in place */
	qmp_server_close(other);
	g_assert_true(g_file_test(path, G_FILE_TEST_EXISTS));
	qmp_server_close(fx->server);
	g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
}

/* The round trip: the real client against the real server over a socket path. */
static void
test_round_trip(Fixture *fx, gconstpointer data)
{
	g_autofree gchar *path = g_build_filename(fx->tmpdir, "qmp.sock", NULL);
	g_autoptr(QmpClient) client = qmp_client_new();
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) node = NULL;
	g_autoptr(JsonObject) args = json_object_new();
	g_autoptr(JsonObject) payload = json_object_new();
	guint events = 0;

	g_assert_true(qmp_server_listen_unix(fx->server, path, &error));
	g_assert_no_error(error);
	g_assert_true(qmp_client_connect_sync(client, path, NULL, &error));
	g_assert_no_error(error);
	g_assert_cmpint(qmp_client_get_peer_pid(client), ==, getpid());
	g_assert_cmpstr(
		json_object_get_string_member(
			json_object_get_object_member(qmp_client_get_greeting(client), "version"),
			"package"),
		==, "vmbc");
	g_assert_cmpuint(fx->opened, ==, 1);

	json_object_set_int_member(args, "value", 268435456);
	node = qmp_client_execute_sync(client, "echo", args, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpint(json_object_get_int_member(json_node_get_object(node), "value"), ==,
			268435456);
	g_clear_pointer(&node, json_node_unref);

	node = qmp_client_execute_sync(client, "fail", NULL, NULL, &error);
	g_assert_null(node);
	g_assert_error(error, QMP_ERROR, QMP_ERROR_DEVICE_NOT_ACTIVE);
	g_assert_cmpstr(error->message, ==,
			"unable to execute QMP command 'fail': No balloon device has been "
			"activated");
	g_clear_error(&error);

	node = qmp_client_execute_sync(client, "nosuch", NULL, NULL, &error);
	g_assert_error(error, QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND);
	g_clear_error(&error);

	g_signal_connect(client, "event", G_CALLBACK(on_client_event), &events);
	json_object_set_int_member(payload, "actual", 1);
	qmp_server_broadcast_event(fx->server, "BALLOON_CHANGE", payload);
	while (events < 1)
		g_main_context_iteration(NULL, TRUE);
	g_assert_cmpuint(events, ==, 1);
	qmp_client_close(client);
	while (fx->closed < 1)
		g_main_context_iteration(NULL, TRUE);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);

#define ADD(path, func, mode)                                                                      \
	g_test_add("/vmbc/qmp/server/" path, Fixture, GINT_TO_POINTER(mode), fixture_setup, func,  \
		   fixture_teardown)
	ADD("greeting", test_greeting, 0);
	ADD("refuse-before-capabilities", test_refuse_before_capabilities, 0);
	ADD("id-echo", test_id_echo, 0);
	ADD("bad-messages", test_bad_messages, 0);
	ADD("not-object", test_not_object, 0);
	ADD("oversized", test_oversized, 0);
	ADD("reply-then-close", test_reply_then_close, 0);
	ADD("fragmented", test_fragmented, 0);
	ADD("accumulator", test_accumulator, 0);
	ADD("async-reply", test_async_reply, 0);
	ADD("reply-after-close", test_reply_after_close, 0);
	ADD("events", test_events, 0);
	ADD("peer-credentials", test_peer_credentials, 0);
	ADD("connection-close", test_connection_close, 0);
	ADD("send-raw", test_send_raw, 0);
	ADD("round-trip", test_round_trip, 1);
	ADD("round-trip-disconnect", test_round_trip_disconnect, 1);
	ADD("listen-replaces-socket", test_listen_replaces_socket, 1);
	return g_test_run();
}
