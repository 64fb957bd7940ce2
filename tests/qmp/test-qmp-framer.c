/*
 * test-qmp-framer.c: the wire layer (QmpFramer) and the message parser
 * (qmp_message_parse, qmp_command_parse), with no sockets at all.
 */
#include "qmp-error.h"
#include "qmp-framer.h"
#include "qmp-message.h"

/* Pushes @text in pieces of @step bytes and returns every message, joined by '|'. */
static gchar *
frame_all(const gchar *text, gsize step, GError **error)
{
	g_autoptr(QmpFramer) framer = qmp_framer_new(0);
	g_autoptr(GString) out = g_string_new(NULL);
	gsize len = strlen(text);

	for (gsize off = 0; off < len; off += step) {
		gchar *msg;

		if (!qmp_framer_push(framer, text + off, MIN(step, len - off), error))
			return NULL;
		while ((msg = qmp_framer_pop(framer)) != NULL) {
			if (out->len > 0)
				g_string_append_c(out, '|');
			g_string_append(out, msg);
			g_free(msg);
		}
	}
	g_assert_cmpuint(qmp_framer_get_partial_size(framer), ==, 0);
	return g_string_free(g_steal_pointer(&out), FALSE);
}

static void
test_single(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *out = frame_all("{\"return\": {}, \"id\": 1}\r\n", 4096, &error);

	g_assert_no_error(error);
	g_assert_cmpstr(out, ==, "{\"return\": {}, \"id\": 1}");
}

static void
test_several_per_push(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *out = frame_all(
		"{\"a\": 1}\r\n{\"b\": {\"c\": [1, {\"d\": 2}]}}{\"e\": 3}\n", 4096, &error);

	g_assert_no_error(error);
	g_assert_cmpstr(out, ==, "{\"a\": 1}|{\"b\": {\"c\": [1, {\"d\": 2}]}}|{\"e\": 3}");
}

/* Every piece size from one byte up gives the same messages. */
static void
test_fragments(void)
{
	const gchar *text = "{\"QMP\": {\"version\": {}, \"capabilities\": [\"oob\"]}}\r\n"
			    "{\"return\": {\"s\": \"}{\\\"\\\\\"}, \"id\": \"vmbc-1\"}\r\n"
			    "{\"event\": \"X\", \"data\": {\"k\": \"\\\\\"}}";
	const gchar *expected = "{\"QMP\": {\"version\": {}, \"capabilities\": [\"oob\"]}}|"
				"{\"return\": {\"s\": \"}{\\\"\\\\\"}, \"id\": \"vmbc-1\"}|"
				"{\"event\": \"X\", \"data\": {\"k\": \"\\\\\"}}";

	for (gsize step = 1; step <= strlen(text); step++) {
		g_autoptr(GError) error = NULL;
		g_autofree gchar *out = frame_all(text, step, &error);

		g_assert_no_error(error);
		g_assert_cmpstr(out, ==, expected);
	}
}

static void
test_strings_with_braces(void)
{
	g_autoptr(GError) error = NULL;
	/* braces, an escaped quote, an escaped backslash right before the closing quote */
	g_autofree gchar *out =
		frame_all("{\"desc\": \"a } b { \\\" } \\\\\"}{\"x\": \"{\"}", 3, &error);

	g_assert_no_error(error);
	g_assert_cmpstr(out, ==, "{\"desc\": \"a } b { \\\" } \\\\\"}|{\"x\": \"{\"}");
}

static void
test_partial(void)
{
	g_autoptr(QmpFramer) framer = qmp_framer_new(0);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *msg = NULL;

	g_assert_true(qmp_framer_push(framer, "\r\n  {\"return\": ", 15, &error));
	g_assert_no_error(error);
	g_assert_null(qmp_framer_pop(framer));
	g_assert_cmpuint(qmp_framer_get_partial_size(framer), ==, 11);
	g_assert_true(qmp_framer_push(framer, "{}}\r\n", 5, &error));
	msg = qmp_framer_pop(framer);
	g_assert_cmpstr(msg, ==, "{\"return\": {}}");
	g_assert_cmpuint(qmp_framer_get_partial_size(framer), ==, 0);
}

static void
test_oversize(void)
{
	g_autoptr(QmpFramer) framer = qmp_framer_new(10);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *msg = NULL;

	/* exactly at the bound is fine, whitespace between messages does not count */
	g_assert_true(qmp_framer_push(framer, "  {\"a\": 12}\r\n\r\n", 15, &error));
	g_assert_no_error(error);
	msg = qmp_framer_pop(framer);
	g_assert_cmpstr(msg, ==, "{\"a\": 12}");
	g_assert_true(qmp_framer_push(framer, "{\"a\": 1", 7, &error));
	g_assert_false(qmp_framer_push(framer, "234}", 4, &error));
	g_assert_error(error, QMP_ERROR, QMP_ERROR_TOO_LARGE);
	g_clear_error(&error);
	/* unusable afterwards */
	g_assert_false(qmp_framer_push(framer, "{}", 2, &error));
	g_assert_error(error, QMP_ERROR, QMP_ERROR_PROTOCOL);
}

static void
test_oversize_one_push(void)
{
	g_autoptr(QmpFramer) framer = qmp_framer_new(1024);
	g_autoptr(GString) big = g_string_new("{\"x\": \"");
	g_autoptr(GError) error = NULL;

	for (guint i = 0; i < 5000; i++)
		g_string_append_c(big, 'y');
	g_string_append(big, "\"}");
	g_assert_false(qmp_framer_push(framer, big->str, big->len, &error));
	g_assert_error(error, QMP_ERROR, QMP_ERROR_TOO_LARGE);
	g_assert_null(qmp_framer_pop(framer));
}

static void
test_garbage(void)
{
	const gchar *cases[] = {"hello", "[1]", "}", "\"s\"", "1", "\x01", "{}x", "{} ]"};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(QmpFramer) framer = qmp_framer_new(0);
		g_autoptr(GError) error = NULL;

		g_assert_false(qmp_framer_push(framer, cases[i], strlen(cases[i]), &error));
		g_assert_error(error, QMP_ERROR, QMP_ERROR_PROTOCOL);
	}
}

/* Complete messages before garbage in the same push are still delivered. */
static void
test_garbage_after_message(void)
{
	g_autoptr(QmpFramer) framer = qmp_framer_new(0);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *msg = NULL;

	g_assert_false(qmp_framer_push(framer, "{\"a\": 1}\r\nxyz", 13, &error));
	g_assert_error(error, QMP_ERROR, QMP_ERROR_PROTOCOL);
	msg = qmp_framer_pop(framer);
	g_assert_cmpstr(msg, ==, "{\"a\": 1}");
}

static void
test_crlf(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *out = frame_all("\r\n{\"a\":\r\n1}\r\n\r\n{\"b\":2}\r\n", 1, &error);

	g_assert_no_error(error);
	g_assert_cmpstr(out, ==, "{\"a\":\r\n1}|{\"b\":2}");
}

static void
test_nesting_bound(void)
{
	g_autoptr(QmpFramer) framer = qmp_framer_new(0);
	g_autoptr(GString) deep = g_string_new("{\"a\":");
	g_autoptr(GError) error = NULL;

	for (guint i = 0; i < 5000; i++)
		g_string_append_c(deep, '[');
	g_assert_false(qmp_framer_push(framer, deep->str, deep->len, &error));
	g_assert_error(error, QMP_ERROR, QMP_ERROR_PROTOCOL);
}

/* Brackets inside strings do not count toward the nesting bound. */
static void
test_nesting_in_string(void)
{
	g_autoptr(GString) text = g_string_new("{\"a\": \"");
	g_autoptr(GError) error = NULL;
	g_autofree gchar *out = NULL;

	for (guint i = 0; i < 5000; i++)
		g_string_append(text, "[{");
	g_string_append(text, "\"}");
	out = frame_all(text->str, 777, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(out, ==, text->str);
}

static void
test_parse_greeting(void)
{
	const gchar *text = "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, "
			    "\"major\": 7}, \"package\": \"\"}, \"capabilities\": [\"oob\"]}}";
	g_autoptr(GError) error = NULL;
	g_autoptr(QmpMessage) msg = qmp_message_parse(text, strlen(text), &error);

	g_assert_no_error(error);
	g_assert_cmpint(msg->kind, ==, QMP_MESSAGE_GREETING);
	g_assert_true(json_object_has_member(msg->greeting, "capabilities"));
}

static void
test_parse_return(void)
{
	const gchar *text = "{\"return\": [1, 2], \"id\": \"vmbc-7\"}";
	g_autoptr(GError) error = NULL;
	g_autoptr(QmpMessage) msg = qmp_message_parse(text, strlen(text), &error);

	g_assert_no_error(error);
	g_assert_cmpint(msg->kind, ==, QMP_MESSAGE_RETURN);
	g_assert_true(JSON_NODE_HOLDS_ARRAY(msg->ret));
	g_assert_cmpstr(json_node_get_string(msg->id), ==, "vmbc-7");
}

/* QEMU reports unset guest stats as 2^64-1: the message must still parse. */
static void
test_parse_unset_stat(void)
{
	const gchar *text = "{\"return\": {\"stats\": {\"stat-free-memory\": "
			    "18446744073709551615}, \"last-update\": 0}, \"id\": \"vmbc-1\"}";
	g_autoptr(GError) error = NULL;
	g_autoptr(QmpMessage) msg = qmp_message_parse(text, strlen(text), &error);

	g_assert_no_error(error);
	g_assert_cmpint(msg->kind, ==, QMP_MESSAGE_RETURN);
}

static void
test_parse_error(void)
{
	const gchar *text = "{\"id\": \"vmbc-2\", \"error\": {\"class\": \"DeviceNotActive\", "
			    "\"desc\": \"No balloon device has been activated\"}}";
	g_autoptr(GError) error = NULL;
	g_autoptr(QmpMessage) msg = qmp_message_parse(text, strlen(text), &error);

	g_assert_no_error(error);
	g_assert_cmpint(msg->kind, ==, QMP_MESSAGE_ERROR);
	g_assert_cmpstr(msg->error_class, ==, "DeviceNotActive");
	g_assert_cmpstr(msg->error_desc, ==, "No balloon device has been activated");
}

static void
test_parse_event(void)
{
	const gchar *text = "{\"timestamp\": {\"seconds\": 1795737392, \"microseconds\": 63976}, "
			    "\"event\": \"BALLOON_CHANGE\", \"data\": {\"actual\": 1}}";
	g_autoptr(GError) error = NULL;
	g_autoptr(QmpMessage) msg = qmp_message_parse(text, strlen(text), &error);

	g_assert_no_error(error);
	g_assert_cmpint(msg->kind, ==, QMP_MESSAGE_EVENT);
	g_assert_cmpstr(msg->event, ==, "BALLOON_CHANGE");
	g_assert_cmpint(json_object_get_int_member(msg->event_data, "actual"), ==, 1);
	g_assert_cmpint(msg->timestamp_usec, ==, G_GINT64_CONSTANT(1795737392063976));
}

static void
test_parse_bad(void)
{
	const gchar *cases[] = {
		"",
		"[1]",
		"\"x\"",
		"{",
		"{\"foo\": 1}",
		"{\"QMP\": 1}",
		"{\"error\": \"x\", \"id\": 1}",
		"{\"error\": {\"class\": 1, \"desc\": \"x\"}}",
		"{\"error\": {\"class\": \"GenericError\"}}",
		"{\"error\": {\"class\": \"GenericError\", \"desc\": null}}",
		"{\"error\": {\"class\": \"GenericError\", \"desc\": {}}}",
		"{\"event\": 5}",
		"{\"event\": \"X\", \"data\": []}",
		"{\"event\": \"X\", \"timestamp\": 5}",
		"{\"event\": \"X\", \"timestamp\": {\"seconds\": \"1\", \"microseconds\": 0}}",
		"{\"event\": \"X\", \"timestamp\": {\"seconds\": 1}}",
		"{\"return\": 1, \"id\": \"\xff\xfe\"}",
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(QmpMessage) msg = qmp_message_parse(cases[i], strlen(cases[i]), &error);

		g_assert_null(msg);
		g_assert_error(error, QMP_ERROR, QMP_ERROR_PROTOCOL);
	}
}

static void
test_command_parse(void)
{
	const gchar *text =
		"{\"execute\": \"balloon\", \"arguments\": {\"value\": 1}, \"id\": [1]}";
	g_autoptr(GError) error = NULL;
	QmpCommand cmd;

	g_assert_true(qmp_command_parse(text, strlen(text), &cmd, &error));
	g_assert_no_error(error);
	g_assert_cmpstr(cmd.execute, ==, "balloon");
	g_assert_cmpint(json_object_get_int_member(cmd.arguments, "value"), ==, 1);
	g_assert_true(JSON_NODE_HOLDS_ARRAY(cmd.id));
	qmp_command_clear(&cmd);
}

static void
test_command_parse_bad(void)
{
	const struct {
		const gchar *text;
		const gchar *desc;
		gboolean has_id;
	} cases[] = {
		{"[1]", "QMP input must be a JSON object", FALSE},
		{"{\"id\": 3}", "QMP input lacks member 'execute'", TRUE},
		{"{\"execute\": 1, \"id\": 3}", "QMP input member 'execute' must be a string",
		 TRUE},
		{"{\"execute\": \"x\", \"arguments\": [], \"id\": 3}",
		 "QMP input member 'arguments' must be an object", TRUE},
		{"{\"execute\" 1}", "JSON parse error, *", FALSE},
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		QmpCommand cmd;

		g_assert_false(
			qmp_command_parse(cases[i].text, strlen(cases[i].text), &cmd, &error));
		g_assert_error(error, QMP_ERROR, QMP_ERROR_GENERIC_ERROR);
		g_assert_true(g_pattern_match_simple(cases[i].desc, error->message));
		g_assert_cmpint(cmd.id != NULL, ==, cases[i].has_id);
		qmp_command_clear(&cmd);
	}
}

static void
test_timestamp_new(void)
{
	g_autoptr(JsonObject) ts = qmp_message_timestamp_new(G_GINT64_CONSTANT(1700000000123456));

	g_assert_cmpint(json_object_get_int_member(ts, "seconds"), ==, 1700000000);
	g_assert_cmpint(json_object_get_int_member(ts, "microseconds"), ==, 123456);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);

	g_test_add_func("/vmbc/qmp/framer/single", test_single);
	g_test_add_func("/vmbc/qmp/framer/several-per-push", test_several_per_push);
	g_test_add_func("/vmbc/qmp/framer/fragments", test_fragments);
	g_test_add_func("/vmbc/qmp/framer/strings-with-braces", test_strings_with_braces);
	g_test_add_func("/vmbc/qmp/framer/partial", test_partial);
	g_test_add_func("/vmbc/qmp/framer/oversize", test_oversize);
	g_test_add_func("/vmbc/qmp/framer/oversize-one-push", test_oversize_one_push);
	g_test_add_func("/vmbc/qmp/framer/garbage", test_garbage);
	g_test_add_func("/vmbc/qmp/framer/garbage-after-message", test_garbage_after_message);
	g_test_add_func("/vmbc/qmp/framer/crlf", test_crlf);
	g_test_add_func("/vmbc/qmp/framer/nesting-bound", test_nesting_bound);
	g_test_add_func("/vmbc/qmp/framer/nesting-in-string", test_nesting_in_string);
	g_test_add_func("/vmbc/qmp/message/greeting", test_parse_greeting);
	g_test_add_func("/vmbc/qmp/message/return", test_parse_return);
	g_test_add_func("/vmbc/qmp/message/unset-stat", test_parse_unset_stat);
	g_test_add_func("/vmbc/qmp/message/error", test_parse_error);
	g_test_add_func("/vmbc/qmp/message/event", test_parse_event);
	g_test_add_func("/vmbc/qmp/message/bad", test_parse_bad);
	g_test_add_func("/vmbc/qmp/message/command", test_command_parse);
	g_test_add_func("/vmbc/qmp/message/command-bad", test_command_parse_bad);
	g_test_add_func("/vmbc/qmp/message/timestamp", test_timestamp_new);
	return g_test_run();
}
