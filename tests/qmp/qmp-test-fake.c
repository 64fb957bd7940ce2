/*
 * qmp-test-fake.c: a scripted fake QMP server for client tests.
 */
#include "qmp-test-fake.h"

typedef struct {
	gchar *command;
	gchar *reply;
} QmpTestStep;

static void
qmp_test_step_free(QmpTestStep *step)
{
	g_free(step->command);
	g_free(step->reply);
	g_free(step);
}

gchar *
qmp_test_fake_fill(const gchar *templ, const gchar *id_json)
{
	g_auto(GStrv) parts = g_strsplit(templ, "@ID@", -1);
	return g_strjoinv(id_json, parts);
}

static void
qmp_test_fake_on_message(QmpTestPeer *peer, const gchar *text, gpointer user_data)
{
	QmpTestFake *fake = user_data;
	g_autoptr(JsonNode) root = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *id_json = NULL;
	JsonObject *obj;
	JsonNode *id;
	const gchar *execute = "(none)";
	QmpTestStep *step;

	root = json_from_string(text, &error);
	if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
		g_ptr_array_add(fake->failures, g_strdup_printf("not a JSON object: %s", text));
		return;
	}
	obj = json_node_get_object(root);
	if (json_object_has_member(obj, "execute"))
		execute = json_object_get_string_member(obj, "execute");
	id = json_object_get_member(obj, "id");
	id_json = id != NULL ? json_to_string(id, FALSE) : g_strdup("null");
	g_ptr_array_add(fake->received, json_node_ref(root));

	step = g_queue_pop_head(&fake->steps);
	if (step == NULL) {
		g_ptr_array_add(fake->failures,
				g_strdup_printf("expected no command got '%s'", execute));
		return;
	}
	if (g_strcmp0(step->command, execute) != 0)
		g_ptr_array_add(fake->failures, g_strdup_printf("expected command '%s' got '%s'",
								step->command, execute));
	if (step->reply != NULL) {
		g_autofree gchar *reply = qmp_test_fake_fill(step->reply, id_json);
		qmp_test_peer_send_line(fake->peer, reply);
	} else {
		g_ptr_array_add(fake->held_ids, g_steal_pointer(&id_json));
	}
	qmp_test_step_free(step);
}

QmpTestFake *
qmp_test_fake_new(GSocket *sock, const gchar *greeting)
{
	QmpTestFake *fake = g_new0(QmpTestFake, 1);

	g_queue_init(&fake->steps);
	fake->failures = g_ptr_array_new_with_free_func(g_free);
	fake->held_ids = g_ptr_array_new_with_free_func(g_free);
	fake->received = g_ptr_array_new_with_free_func((GDestroyNotify)json_node_unref);
	fake->peer = qmp_test_peer_new(sock, qmp_test_fake_on_message, fake);
	if (greeting == NULL)
		greeting = QMP_TEST_GREETING;
	if (greeting[0] != '\0')
		qmp_test_peer_send_line(fake->peer, greeting);
	return fake;
}

void
qmp_test_fake_free(QmpTestFake *fake)
{
	if (fake == NULL)
		return;
	qmp_test_peer_free(fake->peer);
	g_queue_clear_full(&fake->steps, (GDestroyNotify)qmp_test_step_free);
	g_ptr_array_unref(fake->failures);
	g_ptr_array_unref(fake->held_ids);
	g_ptr_array_unref(fake->received);
	g_free(fake);
}

void
qmp_test_fake_expect(QmpTestFake *fake, const gchar *command, const gchar *reply)
{
	QmpTestStep *step = g_new0(QmpTestStep, 1);

	step->command = g_strdup(command);
	step->reply = g_strdup(reply);
	g_queue_push_tail(&fake->steps, step);
}

void
qmp_test_fake_reply_held(QmpTestFake *fake, guint index, const gchar *reply)
{
	g_autofree gchar *text = NULL;

	g_assert_cmpuint(index, <, fake->held_ids->len);
	text = qmp_test_fake_fill(reply, g_ptr_array_index(fake->held_ids, index));
	qmp_test_peer_send_line(fake->peer, text);
}

void
qmp_test_fake_assert_ok(QmpTestFake *fake)
{
	for (guint i = 0; i < fake->failures->len; i++)
		g_test_message("fake QMP server: %s",
			       (const gchar *)g_ptr_array_index(fake->failures, i));
	g_assert_cmpuint(fake->failures->len, ==, 0);
}
