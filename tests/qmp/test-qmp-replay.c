/*
 * test-qmp-replay.c: drives the real QmpClient through transcripts recorded
 * from QEMU (tests/qmp/transcripts/NAME.replies).
 *
 * A transcript line is "> JSON" (client to QEMU) or "< JSON" (QEMU to
 * client), exactly as sent; "#" lines are comments. The fake server here
 * checks each command the client sends against the next "> " line, ignoring
 * the id, and answers with the "< " lines that follow it, the recorded id
 * replaced by the client's. The client's results must match the recorded
 * replies and its "event" signals the recorded events.
 */
#include "qmp-client.h"
#include "qmp-test-peer.h"

typedef struct {
	gchar *command; /* the "> " line */
	gchar *rec_id;	/* its recorded id as JSON text */
	GPtrArray *responses;
} ReplayStep;

typedef struct {
	GPtrArray *greeting; /* "< " lines before the first "> " */
	GPtrArray *steps;
	guint next;
	GPtrArray *failures;
	QmpTestPeer *peer;
} Replay;

static void
replay_step_free(ReplayStep *step)
{
	g_free(step->command);
	g_free(step->rec_id);
	g_ptr_array_unref(step->responses);
	g_free(step);
}

static gchar *
id_json_of(const gchar *text)
{
	g_autoptr(JsonNode) root = qmp_test_parse(text);
	JsonNode *id = json_object_get_member(json_node_get_object(root), "id");

	return id != NULL ? json_to_string(id, FALSE) : NULL;
}

static Replay *
replay_load(const gchar *path)
{
	g_autofree gchar *contents = NULL;
	g_auto(GStrv) lines = NULL;
	g_autoptr(GError) error = NULL;
	Replay *replay = g_new0(Replay, 1);
	ReplayStep *step = NULL;

	g_assert_true(g_file_get_contents(path, &contents, NULL, &error));
	g_assert_no_error(error);
	replay->greeting = g_ptr_array_new_with_free_func(g_free);
	replay->steps = g_ptr_array_new_with_free_func((GDestroyNotify)replay_step_free);
	replay->failures = g_ptr_array_new_with_free_func(g_free);
	lines = g_strsplit(contents, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		const gchar *line = lines[i];

		if (line[0] == '\0' || line[0] == '#')
			continue;
		g_assert_true(g_str_has_prefix(line, "> ") || g_str_has_prefix(line, "< "));
		if (line[0] == '>') {
			step = g_new0(ReplayStep, 1);
			step->command = g_strdup(line + 2);
			step->rec_id = id_json_of(line + 2);
			g_assert_nonnull(step->rec_id);
			step->responses = g_ptr_array_new_with_free_func(g_free);
			g_ptr_array_add(replay->steps, step);
		} else if (step == NULL) {
			g_ptr_array_add(replay->greeting, g_strdup(line + 2));
		} else {
			g_ptr_array_add(step->responses, g_strdup(line + 2));
		}
	}
	return replay;
}

static void
replay_free(Replay *replay)
{
	g_clear_pointer(&replay->peer, qmp_test_peer_free);
	g_ptr_array_unref(replay->greeting);
	g_ptr_array_unref(replay->steps);
	g_ptr_array_unref(replay->failures);
	g_free(replay);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Replay, replay_free)

/* @text as an object without its "id" member. */
static JsonNode *
without_id(const gchar *text)
{
	JsonNode *root = qmp_test_parse(text);

	json_object_remove_member(json_node_get_object(root), "id");
	return root;
}

static void
replay_on_message(QmpTestPeer *peer, const gchar *text, gpointer user_data)
{
	Replay *replay = user_data;
	ReplayStep *step;
	g_autoptr(JsonNode) got = NULL;
	g_autoptr(JsonNode) want = NULL;
	g_autofree gchar *client_id = id_json_of(text);
	g_autofree gchar *rec_pattern = NULL;

	if (replay->next >= replay->steps->len) {
		g_ptr_array_add(replay->failures,
				g_strdup_printf("expected no command got %s", text));
		return;
	}
	step = g_ptr_array_index(replay->steps, replay->next++);
	got = without_id(text);
	want = without_id(step->command);
	if (!json_node_equal(got, want)) {
		const gchar *want_name =
			json_object_get_string_member(json_node_get_object(want), "execute");
		const gchar *got_name =
			json_object_get_string_member(json_node_get_object(got), "execute");
		g_ptr_array_add(replay->failures,
				g_strdup_printf("expected command '%s' got '%s' (%s)", want_name,
						got_name, text));
	}
	/* the recorded id as QEMU wrote it, replaced textually so the rest stays as sent */
	rec_pattern = g_strdup_printf("\"id\": %s", step->rec_id);
	for (guint i = 0; i < step->responses->len; i++) {
		const gchar *line = g_ptr_array_index(step->responses, i);
		g_auto(GStrv) parts = g_strsplit(line, rec_pattern, -1);
		g_autofree gchar *replacement = g_strdup_printf("\"id\": %s", client_id);
		g_autofree gchar *reply = g_strjoinv(replacement, parts);

		qmp_test_peer_send_line(peer, reply);
	}
}

static void
on_event(QmpClient *client, const gchar *name, JsonObject *data, gint64 ts, gpointer user_data)
{
	GPtrArray *events = user_data;
	JsonObject *obj = json_object_new();
	JsonNode *node = json_node_new(JSON_NODE_OBJECT);

	json_object_set_string_member(obj, "event", name);
	if (data != NULL)
		json_object_set_object_member(obj, "data", json_object_ref(data));
	json_object_set_int_member(obj, "usec", ts);
	json_node_take_object(node, obj);
	g_ptr_array_add(events, node);
}

/* What the client must report for a recorded event line. */
static JsonNode *
expected_event(const gchar *line)
{
	g_autoptr(JsonNode) root = qmp_test_parse(line);
	JsonObject *in = json_node_get_object(root);
	JsonObject *ts = json_object_get_object_member(in, "timestamp");
	JsonObject *obj = json_object_new();
	JsonNode *node = json_node_new(JSON_NODE_OBJECT);

	json_object_set_string_member(obj, "event", json_object_get_string_member(in, "event"));
	if (json_object_has_member(in, "data"))
		json_object_set_object_member(
			obj, "data", json_object_ref(json_object_get_object_member(in, "data")));
	json_object_set_int_member(obj, "usec",
				   json_object_get_int_member(ts, "seconds") * G_USEC_PER_SEC +
					   json_object_get_int_member(ts, "microseconds"));
	json_node_take_object(node, obj);
	return node;
}

static void
check_reply(ReplayStep *step, const gchar *command, JsonNode *result, const GError *error)
{
	for (guint i = 0; i < step->responses->len; i++) {
		const gchar *line = g_ptr_array_index(step->responses, i);
		g_autoptr(JsonNode) root = qmp_test_parse(line);
		JsonObject *obj = json_node_get_object(root);
		JsonNode *id = json_object_get_member(obj, "id");
		g_autofree gchar *id_json = id != NULL ? json_to_string(id, FALSE) : NULL;

		if (g_strcmp0(id_json, step->rec_id) != 0)
			continue;
		if (json_object_has_member(obj, "return")) {
			g_assert_no_error(error);
			g_assert_true(
				json_node_equal(result, json_object_get_member(obj, "return")));
		} else {
			JsonObject *err = json_object_get_object_member(obj, "error");
			g_autofree gchar *msg =
				g_strdup_printf("unable to execute QMP command '%s': %s", command,
						json_object_get_string_member(err, "desc"));

			g_assert_null(result);
			g_assert_error(error, QMP_ERROR,
				       (gint)qmp_error_from_class(
					       json_object_get_string_member(err, "class")));
			g_assert_cmpstr(error->message, ==, msg);
		}
		return;
	}
	g_assert_not_reached();
}

static void
on_connected(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GError **error = user_data;
	if (!qmp_client_connect_finish(QMP_CLIENT(source), res, error))
		g_assert_nonnull(*error);
	else
		*error = g_error_new_literal(G_IO_ERROR, 0, "ok");
}

static void
test_replay(gconstpointer data)
{
	const gchar *path = data;
	g_autoptr(Replay) replay = replay_load(path);
	g_autoptr(GIOStream) stream = NULL;
	g_autoptr(GSocket) peer_sock = NULL;
	g_autoptr(QmpClient) client = qmp_client_new();
	g_autoptr(GPtrArray) events =
		g_ptr_array_new_with_free_func((GDestroyNotify)json_node_unref);
	g_autoptr(GPtrArray) want_events =
		g_ptr_array_new_with_free_func((GDestroyNotify)json_node_unref);
	g_autoptr(GError) connect_error = NULL;
	gint64 deadline;

	qmp_test_socketpair(&stream, &peer_sock);
	replay->peer = qmp_test_peer_new(g_steal_pointer(&peer_sock), replay_on_message, replay);
	for (guint i = 0; i < replay->greeting->len; i++)
		qmp_test_peer_send_line(replay->peer, g_ptr_array_index(replay->greeting, i));
	for (guint i = 0; i < replay->steps->len; i++) {
		ReplayStep *step = g_ptr_array_index(replay->steps, i);
		for (guint j = 0; j < step->responses->len; j++) {
			const gchar *line = g_ptr_array_index(step->responses, j);
			if (strstr(line, "\"event\"") != NULL)
				g_ptr_array_add(want_events, expected_event(line));
		}
	}
	g_signal_connect(client, "event", G_CALLBACK(on_event), events);

	/* the first step is the client's own qmp_capabilities */
	qmp_client_connect_stream_async(client, stream, NULL, on_connected, &connect_error);
	while (connect_error == NULL)
		g_main_context_iteration(NULL, TRUE);
	g_assert_cmpint(connect_error->code, ==, 0);
	g_assert_cmpstr(connect_error->message, ==, "ok");
	g_assert_true(qmp_client_is_connected(client));
	g_assert_nonnull(qmp_client_get_greeting(client));

	for (guint i = 1; i < replay->steps->len; i++) {
		ReplayStep *step = g_ptr_array_index(replay->steps, i);
		g_autoptr(JsonNode) cmd = qmp_test_parse(step->command);
		JsonObject *obj = json_node_get_object(cmd);
		const gchar *name = json_object_get_string_member(obj, "execute");
		JsonObject *args = json_object_has_member(obj, "arguments")
					   ? json_object_get_object_member(obj, "arguments")
					   : NULL;
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonNode) result = NULL;

		result = qmp_client_execute_sync(client, name, args, NULL, &error);
		check_reply(step, name, result, error);
	}

	deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
	while (events->len < want_events->len && g_get_monotonic_time() < deadline)
		g_main_context_iteration(NULL, TRUE);
	g_assert_cmpuint(events->len, ==, want_events->len);
	for (guint i = 0; i < events->len; i++)
		g_assert_true(json_node_equal(g_ptr_array_index(events, i),
					      g_ptr_array_index(want_events, i)));

	for (guint i = 0; i < replay->failures->len; i++)
		g_test_message("replay: %s", (const gchar *)g_ptr_array_index(replay->failures, i));
	g_assert_cmpuint(replay->failures->len, ==, 0);
	g_assert_cmpuint(replay->next, ==, replay->steps->len);
	g_signal_handlers_disconnect_by_data(client, events);
	qmp_client_close(client);
	while (g_main_context_iteration(NULL, FALSE))
		;
}

static gint
compare_names(gconstpointer a, gconstpointer b)
{
	return g_strcmp0(*(const gchar *const *)a, *(const gchar *const *)b);
}

int
main(int argc, char **argv)
{
	g_autoptr(GDir) dir = NULL;
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
	const gchar *name;

	g_test_init(&argc, &argv, NULL);

	dir = g_dir_open(QMP_TRANSCRIPTS_DIR, 0, NULL);
	g_assert_nonnull(dir);
	while ((name = g_dir_read_name(dir)) != NULL) {
		if (g_str_has_suffix(name, ".replies"))
			g_ptr_array_add(names, g_strdup(name));
	}
	g_ptr_array_sort(names, compare_names);
	for (guint i = 0; i < names->len; i++) {
		const gchar *file = g_ptr_array_index(names, i);
		g_autofree gchar *base = g_strndup(file, strlen(file) - strlen(".replies"));
		g_autofree gchar *test = g_strdup_printf("/vmbc/qmp/replay/%s", base);
		gchar *path = g_build_filename(QMP_TRANSCRIPTS_DIR, file, NULL);

		g_ptr_array_add(paths, path);
		g_test_add_data_func(test, path, test_replay);
	}
	return g_test_run();
}
