/*
 * qmp-message.c: turns the text of one framed QMP message into a typed view.
 *
 * Everything here treats its input as hostile: it comes from a socket. Every
 * member read is type-checked and a wrong type is an error, never an abort.
 */
#include "qmp-message.h"

#include <string.h>

static JsonNode *
qmp_message_load(const gchar *text, gsize len, QmpError code, GError **error)
{
	g_autoptr(JsonParser) parser = NULL;
	g_autoptr(GError) error_local = NULL;
	JsonNode *root;

	if (!g_utf8_validate_len(text, len, NULL)) {
		g_set_error_literal(error, QMP_ERROR, code, "QMP message is not valid UTF-8");
		return NULL;
	}
	if (len > G_MAXSSIZE) {
		g_set_error_literal(error, QMP_ERROR, code, "QMP message too long");
		return NULL;
	}
	parser = json_parser_new();
	if (!json_parser_load_from_data(parser, text, (gssize)len, &error_local)) {
		g_set_error(error, QMP_ERROR, code, "JSON parse error, %s", error_local->message);
		return NULL;
	}
	root = json_parser_get_root(parser);
	if (root == NULL) {
		g_set_error_literal(error, QMP_ERROR, code, "JSON parse error, empty message");
		return NULL;
	}
	return json_node_ref(root);
}

static gboolean
qmp_node_is_int(JsonNode *node)
{
	return node != NULL && JSON_NODE_HOLDS_VALUE(node) &&
	       json_node_get_value_type(node) == G_TYPE_INT64;
}

static gboolean
qmp_message_parse_timestamp(QmpMessage *msg, JsonObject *obj, GError **error)
{
	JsonNode *node = json_object_get_member(obj, "timestamp");
	JsonObject *ts;
	JsonNode *sec;
	JsonNode *usec;
	gint64 s;
	gint64 us;

	msg->timestamp_usec = -1;
	if (node == NULL)
		return TRUE;
	if (!JSON_NODE_HOLDS_OBJECT(node)) {
		g_set_error_literal(error, QMP_ERROR, QMP_ERROR_PROTOCOL,
				    "QMP event member 'timestamp' is not an object");
		return FALSE;
	}
	ts = json_node_get_object(node);
	sec = json_object_get_member(ts, "seconds");
	usec = json_object_get_member(ts, "microseconds");
	if (!qmp_node_is_int(sec) || !qmp_node_is_int(usec)) {
		g_set_error_literal(
			error, QMP_ERROR, QMP_ERROR_PROTOCOL,
			"QMP event timestamp lacks integer 'seconds' and 'microseconds'");
		return FALSE;
	}
	s = json_node_get_int(sec);
	us = json_node_get_int(usec);
	/* QEMU sends -1/-1 when it could not read the clock */
	if (s < 0 || us < 0 || us >= G_USEC_PER_SEC || s > G_MAXINT64 / G_USEC_PER_SEC - 1)
		return TRUE;
	msg->timestamp_usec = s * G_USEC_PER_SEC + us;
	return TRUE;
}

QmpMessage *
qmp_message_parse(const gchar *text, gsize len, GError **error)
{
	g_autoptr(QmpMessage) msg = g_new0(QmpMessage, 1);
	JsonObject *obj;
	JsonNode *node;

	g_return_val_if_fail(text != NULL || len == 0, NULL);

	msg->timestamp_usec = -1;
	msg->root = qmp_message_load(text, len, QMP_ERROR_PROTOCOL, error);
	if (msg->root == NULL)
		return NULL;
	if (!JSON_NODE_HOLDS_OBJECT(msg->root)) {
		g_set_error_literal(error, QMP_ERROR, QMP_ERROR_PROTOCOL,
				    "QMP message is not a JSON object");
		return NULL;
	}
	obj = json_node_get_object(msg->root);
	msg->id = json_object_get_member(obj, "id");

	if ((node = json_object_get_member(obj, "QMP")) != NULL) {
		if (!JSON_NODE_HOLDS_OBJECT(node)) {
			g_set_error_literal(error, QMP_ERROR, QMP_ERROR_PROTOCOL,
					    "QMP greeting member 'QMP' is not an object");
			return NULL;
		}
		msg->kind = QMP_MESSAGE_GREETING;
		msg->greeting = json_node_get_object(node);
		return g_steal_pointer(&msg);
	}

	if ((node = json_object_get_member(obj, "return")) != NULL) {
		msg->kind = QMP_MESSAGE_RETURN;
		msg->ret = node;
		return g_steal_pointer(&msg);
	}

	if ((node = json_object_get_member(obj, "error")) != NULL) {
		JsonObject *err;
		JsonNode *klass;
		JsonNode *desc;

		if (!JSON_NODE_HOLDS_OBJECT(node)) {
			g_set_error_literal(error, QMP_ERROR, QMP_ERROR_PROTOCOL,
					    "QMP error member 'error' is not an object");
			return NULL;
		}
		err = json_node_get_object(node);
		klass = json_object_get_member(err, "class");
		desc = json_object_get_member(err, "desc");
		if (klass == NULL || json_node_get_value_type(klass) != G_TYPE_STRING ||
		    desc == NULL || json_node_get_value_type(desc) != G_TYPE_STRING) {
			g_set_error_literal(error, QMP_ERROR, QMP_ERROR_PROTOCOL,
					    "QMP error lacks string 'class' and 'desc'");
			return NULL;
		}
		msg->kind = QMP_MESSAGE_ERROR;
		msg->error_class = json_node_get_string(klass);
		msg->error_desc = json_node_get_string(desc);
		return g_steal_pointer(&msg);
	}

	if ((node = json_object_get_member(obj, "event")) != NULL) {
		JsonNode *data;

		if (json_node_get_value_type(node) != G_TYPE_STRING) {
			g_set_error_literal(error, QMP_ERROR, QMP_ERROR_PROTOCOL,
					    "QMP event member 'event' is not a string");
			return NULL;
		}
		msg->kind = QMP_MESSAGE_EVENT;
		msg->event = json_node_get_string(node);
		data = json_object_get_member(obj, "data");
		if (data != NULL) {
			if (!JSON_NODE_HOLDS_OBJECT(data)) {
				g_set_error(error, QMP_ERROR, QMP_ERROR_PROTOCOL,
					    "QMP event '%s' member 'data' is not an object",
					    msg->event);
				return NULL;
			}
			msg->event_data = json_node_get_object(data);
		}
		if (!qmp_message_parse_timestamp(msg, obj, error))
			return NULL;
		return g_steal_pointer(&msg);
	}

	g_set_error_literal(error, QMP_ERROR, QMP_ERROR_PROTOCOL,
			    "QMP message is none of greeting, return, error or event");
	return NULL;
}

void
qmp_message_free(QmpMessage *msg)
{
	if (msg == NULL)
		return;
	g_clear_pointer(&msg->root, json_node_unref);
	g_free(msg);
}

/* The wording follows QEMU's own replies, so a client sees the same text from both. */
gboolean
qmp_command_parse(const gchar *text, gsize len, QmpCommand *cmd, GError **error)
{
	JsonObject *obj;
	JsonNode *node;

	g_return_val_if_fail(cmd != NULL, FALSE);
	g_return_val_if_fail(text != NULL || len == 0, FALSE);

	memset(cmd, 0, sizeof(*cmd));
	cmd->root = qmp_message_load(text, len, QMP_ERROR_GENERIC_ERROR, error);
	if (cmd->root == NULL)
		return FALSE;
	if (!JSON_NODE_HOLDS_OBJECT(cmd->root)) {
		g_set_error_literal(error, QMP_ERROR, QMP_ERROR_GENERIC_ERROR,
				    "QMP input must be a JSON object");
		return FALSE;
	}
	obj = json_node_get_object(cmd->root);
	cmd->id = json_object_get_member(obj, "id");

	node = json_object_get_member(obj, "execute");
	if (node == NULL) {
		g_set_error_literal(error, QMP_ERROR, QMP_ERROR_GENERIC_ERROR,
				    "QMP input lacks member 'execute'");
		return FALSE;
	}
	if (json_node_get_value_type(node) != G_TYPE_STRING) {
		g_set_error_literal(error, QMP_ERROR, QMP_ERROR_GENERIC_ERROR,
				    "QMP input member 'execute' must be a string");
		return FALSE;
	}
	cmd->execute = json_node_get_string(node);

	node = json_object_get_member(obj, "arguments");
	if (node != NULL) {
		if (!JSON_NODE_HOLDS_OBJECT(node)) {
			g_set_error_literal(error, QMP_ERROR, QMP_ERROR_GENERIC_ERROR,
					    "QMP input member 'arguments' must be an object");
			return FALSE;
		}
		cmd->arguments = json_node_get_object(node);
	}
	return TRUE;
}

void
qmp_command_clear(QmpCommand *cmd)
{
	if (cmd == NULL)
		return;
	g_clear_pointer(&cmd->root, json_node_unref);
	cmd->id = NULL;
	cmd->execute = NULL;
	cmd->arguments = NULL;
}

JsonObject *
qmp_message_timestamp_new(gint64 usec)
{
	JsonObject *ts = json_object_new();

	json_object_set_int_member(ts, "seconds", usec / G_USEC_PER_SEC);
	json_object_set_int_member(ts, "microseconds", usec % G_USEC_PER_SEC);
	return ts;
}
