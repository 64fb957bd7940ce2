/*
 * test-qmp-client.c: QmpClient against a scripted fake QEMU on a socketpair.
 */
#include <glib/gstdio.h>
#include <unistd.h>

#include "qmp-client.h"
#include "qmp-test-fake.h"

#define CAPS_OK "{\"return\": {}, \"id\": @ID@}"

typedef struct {
	QmpClient *client;
	QmpTestFake *fake;
	GIOStream *stream;
	GPtrArray *events; /* "NAME DATA TIMESTAMP" */
	guint disconnected;
	GError *disconnect_reason;
} Fixture;

typedef struct {
	gboolean done;
	JsonNode *node;
	GError *error;
} Result;

static void
result_clear(Result *r)
{
	g_clear_pointer(&r->node, json_node_unref);
	g_clear_error(&r->error);
	r->done = FALSE;
}

static void
on_event(QmpClient *client, const gchar *name, JsonObject *data, gint64 ts, gpointer user_data)
{
	Fixture *fx = user_data;
	g_autofree gchar *data_json = NULL;

	if (data != NULL) {
		g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
		json_node_set_object(node, data);
		data_json = json_to_string(node, FALSE);
	}
	g_ptr_array_add(fx->events, g_strdup_printf("%s %s %" G_GINT64_FORMAT, name,
						    data_json != NULL ? data_json : "NULL", ts));
}

static void
on_disconnected(QmpClient *client, const GError *reason, gpointer user_data)
{
	Fixture *fx = user_data;

	fx->disconnected++;
	g_clear_error(&fx->disconnect_reason);
	fx->disconnect_reason = g_error_copy(reason);
}

static void
fixture_setup(Fixture *fx, gconstpointer data)
{
	g_autoptr(GSocket) peer_sock = NULL;

	qmp_test_socketpair(&fx->stream, &peer_sock);
	fx->fake = qmp_test_fake_new(g_steal_pointer(&peer_sock), data);
	fx->client = qmp_client_new();
	fx->events = g_ptr_array_new_with_free_func(g_free);
	g_signal_connect(fx->client, "event", G_CALLBACK(on_event), fx);
	g_signal_connect(fx->client, "disconnected", G_CALLBACK(on_disconnected), fx);
}

static void
fixture_teardown(Fixture *fx, gconstpointer data)
{
	qmp_test_fake_assert_ok(fx->fake);
	g_signal_handlers_disconnect_by_data(fx->client, fx);
	g_clear_object(&fx->client);
	g_clear_object(&fx->stream);
	qmp_test_fake_free(fx->fake);
	g_ptr_array_unref(fx->events);
	g_clear_error(&fx->disconnect_reason);
	/* let cancelled I/O finish so nothing is left for the next test */
	while (g_main_context_iteration(NULL, FALSE))
		;
}

static void
on_connected(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Result *r = user_data;
	qmp_client_connect_finish(QMP_CLIENT(source), res, &r->error);
	r->done = TRUE;
}

static void
on_executed(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Result *r = user_data;
	r->node = qmp_client_execute_finish(QMP_CLIENT(source), res, &r->error);
	r->done = TRUE;
}

/* Connects over the socketpair, asserting success. */
static void
fixture_connect(Fixture *fx)
{
	Result r = {0};

	qmp_test_fake_expect(fx->fake, "qmp_capabilities", CAPS_OK);
	qmp_client_connect_stream_async(fx->client, fx->stream, NULL, on_connected, &r);
	qmp_test_wait_for(&r.done);
	g_assert_no_error(r.error);
	g_assert_true(qmp_client_is_connected(fx->client));
}

static void
execute(Fixture *fx, const gchar *command, JsonObject *args, GCancellable *cancellable, Result *r)
{
	qmp_client_execute_async(fx->client, command, args, cancellable, on_executed, r);
}

static void
test_connect(Fixture *fx, gconstpointer data)
{
	JsonObject *greeting;
	JsonNode *sent;

	g_assert_null(qmp_client_get_greeting(fx->client));
	fixture_connect(fx);
	greeting = qmp_client_get_greeting(fx->client);
	g_assert_nonnull(greeting);
	g_assert_true(json_object_has_member(greeting, "version"));
	g_assert_cmpuint(fx->fake->received->len, ==, 1);
	sent = g_ptr_array_index(fx->fake->received, 0);
	g_assert_cmpstr(json_object_get_string_member(json_node_get_object(sent), "execute"), ==,
			"qmp_capabilities");
	/* the id is the client's own */
	g_assert_true(g_str_has_prefix(
		json_object_get_string_member(json_node_get_object(sent), "id"), "vmbc-"));
}

static void
test_peer_pid(Fixture *fx, gconstpointer data)
{
	fixture_connect(fx);
	g_assert_cmpint(qmp_client_get_peer_pid(fx->client), ==, getpid());
}

static void
test_execute(Fixture *fx, gconstpointer data)
{
	Result r = {0};
	g_autoptr(JsonObject) args = json_object_new();
	JsonObject *sent;

	fixture_connect(fx);
	qmp_test_fake_expect(fx->fake, "query-balloon",
			     "{\"return\": {\"actual\": 536870912}, \"id\": @ID@}");
	execute(fx, "query-balloon", NULL, NULL, &r);
	qmp_test_wait_for(&r.done);
	g_assert_no_error(r.error);
	g_assert_true(JSON_NODE_HOLDS_OBJECT(r.node));
	g_assert_cmpint(json_object_get_int_member(json_node_get_object(r.node), "actual"), ==,
			536870912);
	result_clear(&r);

	json_object_set_int_member(args, "value", 268435456);
	qmp_test_fake_expect(fx->fake, "balloon", "{\"return\": {}, \"id\": @ID@}");
	execute(fx, "balloon", args, NULL, &r);
	qmp_test_wait_for(&r.done);
	g_assert_no_error(r.error);
	sent = json_node_get_object(g_ptr_array_index(fx->fake->received, 2));
	g_assert_cmpint(json_object_get_int_member(json_object_get_object_member(sent, "arguments"),
						   "value"),
			==, 268435456);
	/* arguments are not consumed */
	g_assert_cmpint(json_object_get_int_member(args, "value"), ==, 268435456);
	result_clear(&r);
}

static void
test_execute_sync(Fixture *fx, gconstpointer data)
{
	g_autoptr(JsonNode) node = NULL;
	g_autoptr(GError) error = NULL;

	fixture_connect(fx);
	qmp_test_fake_expect(
		fx->fake, "query-status",
		"{\"return\": {\"status\": \"running\", \"running\": true}, \"id\": @ID@}");
	node = qmp_client_execute_sync(fx->client, "query-status", NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(json_object_get_boolean_member(json_node_get_object(node), "running"));
}

/* The fake's own check: a wrong command is reported, not silently answered. */
static void
test_fake_detects_wrong_command(Fixture *fx, gconstpointer data)
{
	Result r = {0};

	fixture_connect(fx);
	qmp_test_fake_expect(fx->fake, "query-balloon", "{\"return\": {}, \"id\": @ID@}");
	execute(fx, "query-status", NULL, NULL, &r);
	qmp_test_wait_for(&r.done);
	g_assert_cmpuint(fx->fake->failures->len, ==, 1);
	g_assert_cmpstr(g_ptr_array_index(fx->fake->failures, 0), ==,
			"expected command 'query-balloon' got 'query-status'");
	g_ptr_array_set_size(fx->fake->failures, 0);
	result_clear(&r);
}

static void
test_error_classes(Fixture *fx, gconstpointer data)
{
	const struct {
		const gchar *klass;
		QmpError code;
	} cases[] = {
		{"DeviceNotActive", QMP_ERROR_DEVICE_NOT_ACTIVE},
		{"CommandNotFound", QMP_ERROR_COMMAND_NOT_FOUND},
		{"DeviceNotFound", QMP_ERROR_DEVICE_NOT_FOUND},
		{"KVMMissingCap", QMP_ERROR_KVM_MISSING_CAP},
		{"GenericError", QMP_ERROR_GENERIC_ERROR},
		{"SomethingNew", QMP_ERROR_GENERIC_ERROR},
	};

	fixture_connect(fx);
	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		Result r = {0};
		g_autofree gchar *reply = g_strdup_printf(
			"{\"id\": @ID@, \"error\": {\"class\": \"%s\", \"desc\": \"No balloon "
			"device has been activated\"}}",
			cases[i].klass);

		qmp_test_fake_expect(fx->fake, "balloon", reply);
		execute(fx, "balloon", NULL, NULL, &r);
		qmp_test_wait_for(&r.done);
		g_assert_error(r.error, QMP_ERROR, (gint)cases[i].code);
		g_assert_cmpstr(r.error->message, ==,
				"unable to execute QMP command 'balloon': No balloon device has "
				"been activated");
		g_assert_null(r.node);
		result_clear(&r);
	}
	/* an error reply is not a broken connection */
	g_assert_true(qmp_client_is_connected(fx->client));
}

static void
test_error_class_mapping(void)
{
	g_assert_cmpint(qmp_error_from_class("DeviceNotActive"), ==, QMP_ERROR_DEVICE_NOT_ACTIVE);
	g_assert_cmpint(qmp_error_from_class("KVMMissingCap"), ==, QMP_ERROR_KVM_MISSING_CAP);
	g_assert_cmpint(qmp_error_from_class(NULL), ==, QMP_ERROR_GENERIC_ERROR);
	g_assert_cmpint(qmp_error_from_class("nope"), ==, QMP_ERROR_GENERIC_ERROR);
	g_assert_cmpstr(qmp_error_to_class(QMP_ERROR_DEVICE_NOT_FOUND), ==, "DeviceNotFound");
	g_assert_cmpstr(qmp_error_to_class(QMP_ERROR_COMMAND_NOT_FOUND), ==, "CommandNotFound");
	g_assert_cmpstr(qmp_error_to_class(QMP_ERROR_TIMEOUT), ==, "GenericError");
	g_assert_cmpstr(qmp_error_to_class(QMP_ERROR_PROTOCOL), ==, "GenericError");
}

static void
test_events(Fixture *fx, gconstpointer data)
{
	Result r = {0};

	fixture_connect(fx);
	qmp_test_peer_send_line(
		fx->fake->peer,
		"{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 123456}, \"event\": "
		"\"BALLOON_CHANGE\", \"data\": {\"actual\": 402653184}}");
	qmp_test_peer_send_line(fx->fake->peer, "{\"timestamp\": {\"seconds\": 1700000001, "
						"\"microseconds\": 5}, \"event\": \"STOP\"}");
	qmp_test_peer_send_line(
		fx->fake->peer,
		"{\"timestamp\": {\"seconds\": -1, \"microseconds\": -1}, \"event\": \"RESUME\"}");
	/* a round trip after the events makes sure they were all read */
	qmp_test_fake_expect(fx->fake, "query-status", "{\"return\": {}, \"id\": @ID@}");
	execute(fx, "query-status", NULL, NULL, &r);
	qmp_test_wait_for(&r.done);
	g_assert_no_error(r.error);
	result_clear(&r);
	g_assert_cmpuint(fx->events->len, ==, 3);
	g_assert_cmpstr(g_ptr_array_index(fx->events, 0), ==,
			"BALLOON_CHANGE {\"actual\":402653184} 1700000000123456");
	g_assert_cmpstr(g_ptr_array_index(fx->events, 1), ==, "STOP NULL 1700000001000005");
	g_assert_cmpstr(g_ptr_array_index(fx->events, 2), ==, "RESUME NULL -1");
}

/* Events and replies in one write, events before and after the reply. */
static void
test_events_interleaved(Fixture *fx, gconstpointer data)
{
	Result r1 = {0};
	Result r2 = {0};
	g_autofree gchar *text = NULL;

	fixture_connect(fx);
	qmp_test_fake_expect(fx->fake, "stop", NULL);
	qmp_test_fake_expect(fx->fake, "cont", NULL);
	execute(fx, "stop", NULL, NULL, &r1);
	execute(fx, "cont", NULL, NULL, &r2);
	while (fx->fake->held_ids->len < 2)
		g_main_context_iteration(NULL, TRUE);
	text = g_strdup_printf(
		"{\"timestamp\": {\"seconds\": 1, \"microseconds\": 0}, \"event\": \"STOP\"}\r\n"
		"{\"return\": {}, \"id\": %s}\r\n"
		"{\"timestamp\": {\"seconds\": 2, \"microseconds\": 0}, \"event\": \"RESUME\"}"
		"{\"return\": {\"x\": 1}, \"id\": %s}"
		"{\"timestamp\": {\"seconds\": 3, \"microseconds\": 0}, \"event\": \"X\", "
		"\"data\": {}}\r\n",
		(const gchar *)g_ptr_array_index(fx->fake->held_ids, 0),
		(const gchar *)g_ptr_array_index(fx->fake->held_ids, 1));
	qmp_test_peer_send(fx->fake->peer, text, strlen(text));
	qmp_test_wait_for(&r1.done);
	qmp_test_wait_for(&r2.done);
	g_assert_no_error(r1.error);
	g_assert_no_error(r2.error);
	g_assert_cmpint(json_object_get_int_member(json_node_get_object(r2.node), "x"), ==, 1);
	while (fx->events->len < 3)
		g_main_context_iteration(NULL, TRUE);
	g_assert_cmpstr(g_ptr_array_index(fx->events, 0), ==, "STOP NULL 1000000");
	g_assert_cmpstr(g_ptr_array_index(fx->events, 1), ==, "RESUME NULL 2000000");
	g_assert_cmpstr(g_ptr_array_index(fx->events, 2), ==, "X {} 3000000");
	result_clear(&r1);
	result_clear(&r2);
}

static void
test_out_of_order(Fixture *fx, gconstpointer data)
{
	Result r[3] = {{0}};

	fixture_connect(fx);
	for (guint i = 0; i < 3; i++)
		qmp_test_fake_expect(fx->fake, "query-balloon", NULL);
	for (guint i = 0; i < 3; i++)
		execute(fx, "query-balloon", NULL, NULL, &r[i]);
	while (fx->fake->held_ids->len < 3)
		g_main_context_iteration(NULL, TRUE);
	qmp_test_fake_reply_held(fx->fake, 2, "{\"return\": 2, \"id\": @ID@}");
	qmp_test_fake_reply_held(fx->fake, 0, "{\"return\": 0, \"id\": @ID@}");
	qmp_test_wait_for(&r[2].done);
	qmp_test_wait_for(&r[0].done);
	g_assert_false(r[1].done);
	qmp_test_fake_reply_held(fx->fake, 1, "{\"id\": @ID@, \"return\": 1}");
	qmp_test_wait_for(&r[1].done);
	for (guint i = 0; i < 3; i++) {
		g_assert_no_error(r[i].error);
		g_assert_cmpint(json_node_get_int(r[i].node), ==, i);
		result_clear(&r[i]);
	}
}

static void
test_many_in_flight(Fixture *fx, gconstpointer data)
{
	enum { N = 300 };
	g_autofree Result *r = g_new0(Result, N);
	g_autoptr(GRand) rand = g_rand_new_with_seed(42);
	g_autofree guint *order = g_new(guint, N);

	fixture_connect(fx);
	for (guint i = 0; i < N; i++)
		qmp_test_fake_expect(fx->fake, "query-balloon", NULL);
	for (guint i = 0; i < N; i++)
		execute(fx, "query-balloon", NULL, NULL, &r[i]);
	while (fx->fake->held_ids->len < N)
		g_main_context_iteration(NULL, TRUE);
	for (guint i = 0; i < N; i++)
		order[i] = i;
	for (guint i = N - 1; i > 0; i--) {
		guint j = (guint)g_rand_int_range(rand, 0, (gint32)i + 1);
		guint t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (guint i = 0; i < N; i++) {
		g_autofree gchar *reply =
			g_strdup_printf("{\"return\": {\"n\": %u}, \"id\": @ID@}", order[i]);
		qmp_test_fake_reply_held(fx->fake, order[i], reply);
	}
	for (guint i = 0; i < N; i++) {
		qmp_test_wait_for(&r[i].done);
		g_assert_no_error(r[i].error);
		g_assert_cmpint(json_object_get_int_member(json_node_get_object(r[i].node), "n"),
				==, i);
		result_clear(&r[i]);
	}
}

static void
test_disconnect_pending(Fixture *fx, gconstpointer data)
{
	Result r[3] = {{0}};

	fixture_connect(fx);
	for (guint i = 0; i < 3; i++)
		qmp_test_fake_expect(fx->fake, "balloon", NULL);
	for (guint i = 0; i < 3; i++)
		execute(fx, "balloon", NULL, NULL, &r[i]);
	while (fx->fake->held_ids->len < 3)
		g_main_context_iteration(NULL, TRUE);
	qmp_test_peer_close(fx->fake->peer);
	for (guint i = 0; i < 3; i++) {
		qmp_test_wait_for(&r[i].done);
		g_assert_error(r[i].error, QMP_ERROR, QMP_ERROR_DISCONNECTED);
		g_assert_cmpstr(r[i].error->message, ==,
				"unable to execute QMP command 'balloon': connection to QMP "
				"socket '(stream)' closed");
		result_clear(&r[i]);
	}
	g_assert_cmpuint(fx->disconnected, ==, 1);
	g_assert_error(fx->disconnect_reason, QMP_ERROR, QMP_ERROR_DISCONNECTED);
	g_assert_false(qmp_client_is_connected(fx->client));

	/* later commands fail at once, without a hang */
	execute(fx, "balloon", NULL, NULL, &r[0]);
	qmp_test_wait_for(&r[0].done);
	g_assert_error(r[0].error, QMP_ERROR, QMP_ERROR_DISCONNECTED);
	result_clear(&r[0]);
}

/* Sends @bytes while a command is pending; returns the command's error. */
static GError *
fail_pending_with(Fixture *fx, const gchar *bytes, gsize len, gboolean then_close)
{
	Result r = {0};
	GError *error;

	fixture_connect(fx);
	qmp_test_fake_expect(fx->fake, "query-balloon", NULL);
	execute(fx, "query-balloon", NULL, NULL, &r);
	while (fx->fake->held_ids->len < 1)
		g_main_context_iteration(NULL, TRUE);
	qmp_test_peer_send(fx->fake->peer, bytes, len);
	if (then_close)
		qmp_test_peer_close(fx->fake->peer);
	qmp_test_wait_for(&r.done);
	g_assert_null(r.node);
	error = g_steal_pointer(&r.error);
	g_assert_nonnull(error);
	g_assert_cmpuint(fx->disconnected, ==, 1);
	g_assert_false(qmp_client_is_connected(fx->client));
	return error;
}

static void
test_garbage(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = fail_pending_with(fx, "hello\r\n", 7, FALSE);

	g_assert_error(error, QMP_ERROR, QMP_ERROR_PROTOCOL);
	g_assert_true(strstr(error->message, "query-balloon") != NULL);
	g_assert_true(strstr(error->message, "unexpected byte 0x68") != NULL);
}

static void
test_not_json(Fixture *fx, gconstpointer data)
{
	const gchar *text = "{\"return\": , \"id\": 1}\r\n";
	g_autoptr(GError) error = fail_pending_with(fx, text, strlen(text), FALSE);

	g_assert_error(error, QMP_ERROR, QMP_ERROR_PROTOCOL);
	g_assert_true(strstr(error->message, "JSON parse error") != NULL);
}

static void
test_bad_error_fields(Fixture *fx, gconstpointer data)
{
	g_autofree gchar *text = NULL;
	g_autoptr(GError) error = NULL;

	text = g_strdup_printf(
		"{\"id\": \"vmbc-2\", \"error\": {\"class\": 7, \"desc\": \"x\"}}\r\n");
	error = fail_pending_with(fx, text, strlen(text), FALSE);
	g_assert_error(error, QMP_ERROR, QMP_ERROR_PROTOCOL);
	g_assert_true(strstr(error->message, "'class' and 'desc'") != NULL);
}

static void
test_error_without_id(Fixture *fx, gconstpointer data)
{
	const gchar *text = "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse "
			    "error, invalid keyword 'x'\"}}\r\n";
	g_autoptr(GError) error = fail_pending_with(fx, text, strlen(text), FALSE);

	g_assert_error(error, QMP_ERROR, QMP_ERROR_PROTOCOL);
	g_assert_true(strstr(error->message, "without id") != NULL);
}

static void
test_oversized(Fixture *fx, gconstpointer data)
{
	g_autoptr(GString) big = g_string_new("{\"return\": \"");
	g_autoptr(GError) error = NULL;

	qmp_client_set_max_message_size(fx->client, 4096);
	for (guint i = 0; i < 8192; i++)
		g_string_append_c(big, 'a');
	g_string_append(big, "\", \"id\": \"vmbc-2\"}\r\n");
	error = fail_pending_with(fx, big->str, big->len, FALSE);
	g_assert_error(error, QMP_ERROR, QMP_ERROR_TOO_LARGE);
	g_assert_true(strstr(error->message, "larger than 4096 bytes") != NULL);
	g_assert_error(fx->disconnect_reason, QMP_ERROR, QMP_ERROR_TOO_LARGE);
}

static void
test_truncated(Fixture *fx, gconstpointer data)
{
	const gchar *text = "{\"return\": {\"actual\": 5368";
	g_autoptr(GError) error = fail_pending_with(fx, text, strlen(text), TRUE);

	g_assert_error(error, QMP_ERROR, QMP_ERROR_DISCONNECTED);
	g_assert_true(strstr(error->message, "in the middle of a message") != NULL);
}

static void
test_fragmented(Fixture *fx, gconstpointer data)
{
	Result r = {0};
	g_autofree gchar *text = NULL;

	fixture_connect(fx);
	qmp_test_fake_expect(fx->fake, "query-balloon", NULL);
	execute(fx, "query-balloon", NULL, NULL, &r);
	while (fx->fake->held_ids->len < 1)
		g_main_context_iteration(NULL, TRUE);
	text = g_strdup_printf("{\"return\": {\"s\": \"}{\\\"\\\\\"}, \"id\": %s}\r\n",
			       (const gchar *)g_ptr_array_index(fx->fake->held_ids, 0));
	for (gsize i = 0; text[i] != '\0'; i++) {
		qmp_test_peer_send(fx->fake->peer, text + i, 1);
		qmp_test_peer_flush(fx->fake->peer);
		/* give the client a chance to read each byte on its own */
		while (g_main_context_iteration(NULL, FALSE))
			;
		if (i + 3 < strlen(text))
			g_assert_false(r.done);
	}
	qmp_test_wait_for(&r.done);
	g_assert_no_error(r.error);
	g_assert_cmpstr(json_object_get_string_member(json_node_get_object(r.node), "s"), ==,
			"}{\"\\");
	result_clear(&r);
}

static void
test_separators(Fixture *fx, gconstpointer data)
{
	Result r[3] = {{0}};
	g_autofree gchar *text = NULL;

	fixture_connect(fx);
	for (guint i = 0; i < 3; i++)
		qmp_test_fake_expect(fx->fake, "query-balloon", NULL);
	for (guint i = 0; i < 3; i++)
		execute(fx, "query-balloon", NULL, NULL, &r[i]);
	while (fx->fake->held_ids->len < 3)
		g_main_context_iteration(NULL, TRUE);
	/* CRLF, LF, nothing at all, and stray whitespace */
	text = g_strdup_printf("{\"return\": 0, \"id\": %s}\r\n{\"return\": 1, \"id\": %s}\n"
			       "{\"return\": 2, \"id\": %s}  \t\r\n\r\n",
			       (const gchar *)g_ptr_array_index(fx->fake->held_ids, 0),
			       (const gchar *)g_ptr_array_index(fx->fake->held_ids, 1),
			       (const gchar *)g_ptr_array_index(fx->fake->held_ids, 2));
	qmp_test_peer_send(fx->fake->peer, text, strlen(text));
	for (guint i = 0; i < 3; i++) {
		qmp_test_wait_for(&r[i].done);
		g_assert_no_error(r[i].error);
		g_assert_cmpint(json_node_get_int(r[i].node), ==, i);
		result_clear(&r[i]);
	}
}

static void
test_timeout(Fixture *fx, gconstpointer data)
{
	Result r = {0};
	g_autoptr(GTimer) timer = g_timer_new();

	fixture_connect(fx);
	qmp_client_set_timeout(fx->client, 100);
	qmp_test_fake_expect(fx->fake, "balloon", NULL);
	execute(fx, "balloon", NULL, NULL, &r);
	qmp_test_wait_for(&r.done);
	g_assert_error(r.error, QMP_ERROR, QMP_ERROR_TIMEOUT);
	g_assert_cmpstr(r.error->message, ==,
			"unable to execute QMP command 'balloon': no reply within 100 ms");
	g_assert_cmpfloat(g_timer_elapsed(timer, NULL), >=, 0.09);
	result_clear(&r);

	/* the late reply is dropped quietly and the connection goes on */
	qmp_test_fake_reply_held(fx->fake, 0, "{\"return\": {}, \"id\": @ID@}");
	qmp_test_fake_expect(fx->fake, "query-balloon", "{\"return\": 7, \"id\": @ID@}");
	execute(fx, "query-balloon", NULL, NULL, &r);
	qmp_test_wait_for(&r.done);
	g_assert_no_error(r.error);
	g_assert_cmpint(json_node_get_int(r.node), ==, 7);
	g_assert_true(qmp_client_is_connected(fx->client));
	result_clear(&r);
}

static void
test_cancel(Fixture *fx, gconstpointer data)
{
	Result r1 = {0};
	Result r2 = {0};
	g_autoptr(GCancellable) cancellable = g_cancellable_new();

	fixture_connect(fx);
	qmp_test_fake_expect(fx->fake, "balloon", NULL);
	qmp_test_fake_expect(fx->fake, "query-balloon", NULL);
	execute(fx, "balloon", NULL, cancellable, &r1);
	execute(fx, "query-balloon", NULL, NULL, &r2);
	while (fx->fake->held_ids->len < 2)
		g_main_context_iteration(NULL, TRUE);
	g_cancellable_cancel(cancellable);
	qmp_test_wait_for(&r1.done);
	g_assert_error(r1.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
	g_assert_true(strstr(r1.error->message, "'balloon'") != NULL);
	g_assert_false(r2.done);
	/* the late reply to the cancelled command is dropped */
	qmp_test_fake_reply_held(fx->fake, 0, "{\"return\": {}, \"id\": @ID@}");
	qmp_test_fake_reply_held(fx->fake, 1, "{\"return\": 1, \"id\": @ID@}");
	qmp_test_wait_for(&r2.done);
	g_assert_no_error(r2.error);
	g_assert_cmpint(json_node_get_int(r2.node), ==, 1);
	result_clear(&r1);
	result_clear(&r2);
}

/* Holds @n commands named @name, sent @gap_ms apart, into @r. */
static void
execute_held(Fixture *fx, const gchar *name, guint n, guint gap_ms, GCancellable **cancellables,
	     Result *r)
{
	guint held = fx->fake->held_ids->len;

	for (guint i = 0; i < n; i++) {
		if (i > 0 && gap_ms > 0)
			qmp_test_spin(gap_ms);
		qmp_test_fake_expect(fx->fake, name, NULL);
		execute(fx, name, NULL, cancellables != NULL ? cancellables[i] : NULL, &r[i]);
	}
	while (fx->fake->held_ids->len < held + n)
		g_main_context_iteration(NULL, TRUE);
}

/*
 * Three calls pending with one timer: the first times out at its own
 * deadline, the second is answered, the third times out at its own.
 */
static void
test_timeout_first_of_several(Fixture *fx, gconstpointer data)
{
	Result r[3] = {{0}};
	g_autoptr(GTimer) timer = NULL;

	fixture_connect(fx);
	qmp_client_set_timeout(fx->client, 200);
	timer = g_timer_new();
	execute_held(fx, "query-balloon", 3, 100, NULL, r);
	qmp_test_wait_for(&r[0].done);
	g_assert_error(r[0].error, QMP_ERROR, QMP_ERROR_TIMEOUT);
	g_assert_cmpstr(r[0].error->message, ==,
			"unable to execute QMP command 'query-balloon': no reply within 200 ms");
	g_assert_cmpfloat(g_timer_elapsed(timer, NULL), >=, 0.19);
	g_assert_false(r[1].done);
	g_assert_false(r[2].done);

	/* the late reply to the first is dropped; the second is still answered */
	qmp_test_fake_reply_held(fx->fake, 0, "{\"return\": 0, \"id\": @ID@}");
	qmp_test_fake_reply_held(fx->fake, 1, "{\"return\": 1, \"id\": @ID@}");
	qmp_test_wait_for(&r[1].done);
	g_assert_no_error(r[1].error);
	g_assert_cmpint(json_node_get_int(r[1].node), ==, 1);
	g_assert_false(r[2].done);

	/* the third has its own deadline, 200 ms after it was sent */
	qmp_test_wait_for(&r[2].done);
	g_assert_error(r[2].error, QMP_ERROR, QMP_ERROR_TIMEOUT);
	g_assert_cmpfloat(g_timer_elapsed(timer, NULL), >=, 0.39);
	g_assert_true(qmp_client_is_connected(fx->client));
	for (guint i = 0; i < 3; i++)
		result_clear(&r[i]);
}

/*
 * The oldest call answered, the timer is armed again for the next one's
 * deadline: not the answered one's, and not never.
 */
static void
test_timeout_rearm(Fixture *fx, gconstpointer data)
{
	Result r[2] = {{0}};
	Result late = {0};
	g_autoptr(GTimer) timer = NULL;

	fixture_connect(fx);
	qmp_client_set_timeout(fx->client, 300);
	timer = g_timer_new();
	execute_held(fx, "query-balloon", 2, 150, NULL, r);
	qmp_test_fake_reply_held(fx->fake, 0, "{\"return\": 0, \"id\": @ID@}");
	qmp_test_wait_for(&r[0].done);
	g_assert_no_error(r[0].error);

	/* past the first one's deadline the second is still pending */
	qmp_test_spin(200);
	g_assert_cmpfloat(g_timer_elapsed(timer, NULL), >=, 0.3);
	g_assert_false(r[1].done);
	qmp_test_wait_for(&r[1].done);
	g_assert_error(r[1].error, QMP_ERROR, QMP_ERROR_TIMEOUT);
	g_assert_cmpfloat(g_timer_elapsed(timer, NULL), >=, 0.44);

	/* nothing pending, then a new call: the timer comes back for it */
	g_timer_start(timer);
	execute_held(fx, "balloon", 1, 0, NULL, &late);
	qmp_test_wait_for(&late.done);
	g_assert_error(late.error, QMP_ERROR, QMP_ERROR_TIMEOUT);
	g_assert_cmpfloat(g_timer_elapsed(timer, NULL), >=, 0.29);
	result_clear(&r[0]);
	result_clear(&r[1]);
	result_clear(&late);
}

/*
 * A call cancelled between two others leaves the queue; the others keep
 * their deadlines, and its late reply is dropped quietly.
 */
static void
test_cancel_middle(Fixture *fx, gconstpointer data)
{
	Result r[3] = {{0}};
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	GCancellable *cancellables[3] = {NULL, cancellable, NULL};
	g_autoptr(GTimer) timer = NULL;

	fixture_connect(fx);
	qmp_client_set_timeout(fx->client, 300);
	timer = g_timer_new();
	execute_held(fx, "query-balloon", 3, 50, cancellables, r);
	g_cancellable_cancel(cancellable);
	qmp_test_wait_for(&r[1].done);
	g_assert_error(r[1].error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
	g_assert_false(r[0].done);
	g_assert_false(r[2].done);

	qmp_test_fake_reply_held(fx->fake, 1, "{\"return\": 1, \"id\": @ID@}");
	qmp_test_fake_reply_held(fx->fake, 2, "{\"return\": 2, \"id\": @ID@}");
	qmp_test_wait_for(&r[2].done);
	g_assert_no_error(r[2].error);
	g_assert_cmpint(json_node_get_int(r[2].node), ==, 2);
	g_assert_false(r[0].done);

	qmp_test_wait_for(&r[0].done);
	g_assert_error(r[0].error, QMP_ERROR, QMP_ERROR_TIMEOUT);
	g_assert_cmpfloat(g_timer_elapsed(timer, NULL), >=, 0.29);
	g_assert_true(qmp_client_is_connected(fx->client));
	for (guint i = 0; i < 3; i++)
		result_clear(&r[i]);
}

/* A timeout lowered between two calls: the later call, due first, times out first. */
static void
test_timeout_lowered(Fixture *fx, gconstpointer data)
{
	Result r[2] = {{0}};

	fixture_connect(fx);
	qmp_client_set_timeout(fx->client, 5000);
	execute_held(fx, "balloon", 1, 0, NULL, &r[0]);
	qmp_client_set_timeout(fx->client, 100);
	execute_held(fx, "query-balloon", 1, 0, NULL, &r[1]);
	qmp_test_wait_for(&r[1].done);
	g_assert_error(r[1].error, QMP_ERROR, QMP_ERROR_TIMEOUT);
	g_assert_cmpstr(r[1].error->message, ==,
			"unable to execute QMP command 'query-balloon': no reply within 100 ms");
	g_assert_false(r[0].done);
	qmp_test_fake_reply_held(fx->fake, 0, "{\"return\": 0, \"id\": @ID@}");
	qmp_test_wait_for(&r[0].done);
	g_assert_no_error(r[0].error);
	result_clear(&r[0]);
	result_clear(&r[1]);
}

/* A timeout whose callback closes the client: the calls due with it fail as disconnected. */
static void
on_executed_then_close_client(GObject *source, GAsyncResult *res, gpointer user_data)
{
	on_executed(source, res, user_data);
	qmp_client_close(QMP_CLIENT(source));
}

static void
test_timeout_close_in_callback(Fixture *fx, gconstpointer data)
{
	Result r[2] = {{0}};

	fixture_connect(fx);
	qmp_client_set_timeout(fx->client, 100);
	qmp_test_fake_expect(fx->fake, "balloon", NULL);
	qmp_test_fake_expect(fx->fake, "query-balloon", NULL);
	qmp_client_execute_async(fx->client, "balloon", NULL, NULL, on_executed_then_close_client,
				 &r[0]);
	execute(fx, "query-balloon", NULL, NULL, &r[1]);
	qmp_test_wait_for(&r[0].done);
	qmp_test_wait_for(&r[1].done);
	g_assert_error(r[0].error, QMP_ERROR, QMP_ERROR_TIMEOUT);
	/* timed out with the first or closed under it: either way answered once */
	g_assert_nonnull(r[1].error);
	g_assert_false(qmp_client_is_connected(fx->client));
	result_clear(&r[0]);
	result_clear(&r[1]);
}

static void
test_cancel_before(Fixture *fx, gconstpointer data)
{
	Result r = {0};
	g_autoptr(GCancellable) cancellable = g_cancellable_new();

	fixture_connect(fx);
	g_cancellable_cancel(cancellable);
	execute(fx, "balloon", NULL, cancellable, &r);
	qmp_test_wait_for(&r.done);
	g_assert_error(r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
	qmp_test_spin(20);
	/* nothing was sent beyond qmp_capabilities */
	g_assert_cmpuint(fx->fake->received->len, ==, 1);
	result_clear(&r);
}

static void
test_unknown_id(Fixture *fx, gconstpointer data)
{
	Result r = {0};

	fixture_connect(fx);
	g_test_expect_message("vmbc-qmp", G_LOG_LEVEL_WARNING, "*unknown id*");
	qmp_test_peer_send_line(fx->fake->peer, "{\"return\": {}, \"id\": \"nobody\"}");
	g_test_expect_message("vmbc-qmp", G_LOG_LEVEL_WARNING, "*unknown id*");
	qmp_test_peer_send_line(fx->fake->peer, "{\"return\": {}}");
	qmp_test_fake_expect(fx->fake, "query-balloon", "{\"return\": 3, \"id\": @ID@}");
	execute(fx, "query-balloon", NULL, NULL, &r);
	qmp_test_wait_for(&r.done);
	g_test_assert_expected_messages();
	g_assert_no_error(r.error);
	g_assert_true(qmp_client_is_connected(fx->client));
	result_clear(&r);
}

static void
test_no_greeting(Fixture *fx, gconstpointer data)
{
	Result r = {0};

	qmp_client_connect_stream_async(fx->client, fx->stream, NULL, on_connected, &r);
	qmp_test_wait_for(&r.done);
	g_assert_error(r.error, QMP_ERROR, QMP_ERROR_PROTOCOL);
	g_assert_false(qmp_client_is_connected(fx->client));
	/* "disconnected" is for connections that were up */
	g_assert_cmpuint(fx->disconnected, ==, 0);
	result_clear(&r);
}

static void
test_capabilities_refused(Fixture *fx, gconstpointer data)
{
	Result r = {0};

	qmp_test_fake_expect(fx->fake, "qmp_capabilities",
			     "{\"id\": @ID@, \"error\": {\"class\": \"CommandNotFound\", \"desc\": "
			     "\"nope\"}}");
	qmp_client_connect_stream_async(fx->client, fx->stream, NULL, on_connected, &r);
	qmp_test_wait_for(&r.done);
	g_assert_error(r.error, QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND);
	g_assert_true(strstr(r.error->message, "qmp_capabilities") != NULL);
	g_assert_false(qmp_client_is_connected(fx->client));
	result_clear(&r);
}

static void
test_connect_timeout(Fixture *fx, gconstpointer data)
{
	Result r = {0};

	qmp_client_set_timeout(fx->client, 50);
	qmp_client_connect_stream_async(fx->client, fx->stream, NULL, on_connected, &r);
	qmp_test_wait_for(&r.done);
	g_assert_error(r.error, QMP_ERROR, QMP_ERROR_TIMEOUT);
	result_clear(&r);
}

static void
test_connect_cancel(Fixture *fx, gconstpointer data)
{
	Result r = {0};
	g_autoptr(GCancellable) cancellable = g_cancellable_new();

	qmp_client_connect_stream_async(fx->client, fx->stream, cancellable, on_connected, &r);
	g_cancellable_cancel(cancellable);
	qmp_test_wait_for(&r.done);
	g_assert_error(r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
	result_clear(&r);
}

static void
test_connect_missing_socket(void)
{
	g_autoptr(QmpClient) client = qmp_client_new();
	g_autoptr(GError) error = NULL;
	g_autofree gchar *dir = g_dir_make_tmp("vmbc-qmp-XXXXXX", NULL);
	g_autofree gchar *path = g_build_filename(dir, "nosuch.sock", NULL);

	g_assert_false(qmp_client_connect_sync(client, path, NULL, &error));
	g_assert_error(error, QMP_ERROR, QMP_ERROR_DISCONNECTED);
	g_assert_true(strstr(error->message, path) != NULL);
	g_assert_false(qmp_client_is_connected(client));
	g_assert_cmpint(g_rmdir(dir), ==, 0);
}

static void
test_not_connected(void)
{
	g_autoptr(QmpClient) client = qmp_client_new();
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) node = NULL;

	node = qmp_client_execute_sync(client, "query-balloon", NULL, NULL, &error);
	g_assert_null(node);
	g_assert_error(error, QMP_ERROR, QMP_ERROR_DISCONNECTED);
	g_assert_cmpint(qmp_client_get_peer_pid(client), ==, -1);
}

static void
test_close(Fixture *fx, gconstpointer data)
{
	Result r = {0};

	fixture_connect(fx);
	qmp_test_fake_expect(fx->fake, "balloon", NULL);
	execute(fx, "balloon", NULL, NULL, &r);
	while (fx->fake->held_ids->len < 1)
		g_main_context_iteration(NULL, TRUE);
	qmp_client_close(fx->client);
	qmp_test_wait_for(&r.done);
	g_assert_error(r.error, QMP_ERROR, QMP_ERROR_DISCONNECTED);
	g_assert_cmpuint(fx->disconnected, ==, 1);
	/* the fake sees the socket close */
	while (!qmp_test_peer_saw_eof(fx->fake->peer))
		g_main_context_iteration(NULL, TRUE);
	qmp_client_close(fx->client);
	g_assert_cmpuint(fx->disconnected, ==, 1);
	result_clear(&r);
}

/* Closing or dropping the client from a completion callback is safe. */
static void
on_executed_then_close(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Result *r = user_data;
	r->node = qmp_client_execute_finish(QMP_CLIENT(source), res, &r->error);
	qmp_client_close(QMP_CLIENT(source));
	r->done = TRUE;
}

static void
test_close_in_callback(Fixture *fx, gconstpointer data)
{
	Result r1 = {0};
	Result r2 = {0};
	g_autofree gchar *text = NULL;

	fixture_connect(fx);
	qmp_test_fake_expect(fx->fake, "a", NULL);
	qmp_test_fake_expect(fx->fake, "b", NULL);
	qmp_client_execute_async(fx->client, "a", NULL, NULL, on_executed_then_close, &r1);
	execute(fx, "b", NULL, NULL, &r2);
	while (fx->fake->held_ids->len < 2)
		g_main_context_iteration(NULL, TRUE);
	/* both replies in one read: the second arrives after the close */
	text = g_strdup_printf("{\"return\": 1, \"id\": %s}{\"return\": 2, \"id\": %s}",
			       (const gchar *)g_ptr_array_index(fx->fake->held_ids, 0),
			       (const gchar *)g_ptr_array_index(fx->fake->held_ids, 1));
	qmp_test_peer_send(fx->fake->peer, text, strlen(text));
	qmp_test_wait_for(&r1.done);
	qmp_test_wait_for(&r2.done);
	g_assert_no_error(r1.error);
	g_assert_nonnull(r2.node != NULL ? r2.node : (gpointer)r2.error);
	result_clear(&r1);
	result_clear(&r2);
}

static void
test_reconnect(Fixture *fx, gconstpointer data)
{
	g_autoptr(GIOStream) stream2 = NULL;
	g_autoptr(GSocket) peer_sock = NULL;
	g_autoptr(QmpTestFake) fake2 = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) node = NULL;
	Result r = {0};

	fixture_connect(fx);
	qmp_client_close(fx->client);
	qmp_test_socketpair(&stream2, &peer_sock);
	fake2 = qmp_test_fake_new(g_steal_pointer(&peer_sock), NULL);
	qmp_test_fake_expect(fake2, "qmp_capabilities", CAPS_OK);
	qmp_test_fake_expect(fake2, "query-status", "{\"return\": \"again\", \"id\": @ID@}");
	qmp_client_connect_stream_async(fx->client, stream2, NULL, on_connected, &r);
	qmp_test_wait_for(&r.done);
	g_assert_no_error(r.error);
	node = qmp_client_execute_sync(fx->client, "query-status", NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(json_node_get_string(node), ==, "again");
	qmp_test_fake_assert_ok(fake2);
	qmp_client_close(fx->client);
}

#define ADD(path, func, greeting)                                                                  \
	g_test_add("/vmbc/qmp/client/" path, Fixture, greeting, fixture_setup, func,               \
		   fixture_teardown)

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);

	ADD("connect", test_connect, NULL);
	ADD("peer-pid", test_peer_pid, NULL);
	ADD("execute", test_execute, NULL);
	ADD("execute-sync", test_execute_sync, NULL);
	ADD("fake-detects-wrong-command", test_fake_detects_wrong_command, NULL);
	ADD("error-classes", test_error_classes, NULL);
	g_test_add_func("/vmbc/qmp/client/error-class-mapping", test_error_class_mapping);
	ADD("events", test_events, NULL);
	ADD("events-interleaved", test_events_interleaved, NULL);
	ADD("out-of-order", test_out_of_order, NULL);
	ADD("many-in-flight", test_many_in_flight, NULL);
	ADD("disconnect-pending", test_disconnect_pending, NULL);
	ADD("garbage", test_garbage, NULL);
	ADD("not-json", test_not_json, NULL);
	ADD("bad-error-fields", test_bad_error_fields, NULL);
	ADD("error-without-id", test_error_without_id, NULL);
	ADD("oversized", test_oversized, NULL);
	ADD("truncated", test_truncated, NULL);
	ADD("fragmented", test_fragmented, NULL);
	ADD("separators", test_separators, NULL);
	ADD("timeout", test_timeout, NULL);
	ADD("cancel", test_cancel, NULL);
	ADD("timeout/first-of-several", test_timeout_first_of_several, NULL);
	ADD("timeout/rearm", test_timeout_rearm, NULL);
	ADD("timeout/lowered", test_timeout_lowered, NULL);
	ADD("timeout/close-in-callback", test_timeout_close_in_callback, NULL);
	ADD("cancel/middle", test_cancel_middle, NULL);
	ADD("cancel-before-send", test_cancel_before, NULL);
	ADD("unknown-id", test_unknown_id, NULL);
	ADD("no-greeting", test_no_greeting, "{\"return\": {}}");
	ADD("capabilities-refused", test_capabilities_refused, NULL);
	ADD("connect-timeout", test_connect_timeout, "");
	ADD("connect-cancel", test_connect_cancel, "");
	g_test_add_func("/vmbc/qmp/client/connect-missing-socket", test_connect_missing_socket);
	g_test_add_func("/vmbc/qmp/client/not-connected", test_not_connected);
	ADD("close", test_close, NULL);
	ADD("close-in-callback", test_close_in_callback, NULL);
	ADD("reconnect", test_reconnect, NULL);
	return g_test_run();
}
