/*
 * fake-vmbcd.c: a stand-in for vmbcd's control socket (see fake-vmbcd.h).
 *
 * Sizes in set-limit, set-guarantee and reclaim are resolved with
 * vmbc_size_parse() against the domain's maximum, as the daemon does, so a
 * test sees what "80%" became.
 */
#include "fake-vmbcd.h"

#include "vmbc-size.h"

/* clang-format off */
#define FAKE_RES(name, held, maxheld, barrier, limit, failcnt)                                     \
	"{\"resource\": \"" name "\", \"held\": " #held ", \"maxheld\": " #maxheld                 \
	", \"minheld\": 0, \"barrier\": " #barrier ", \"limit\": " #limit                          \
	", \"failcnt\": " #failcnt "}"

#define FAKE_HOST_RES FAKE_RES("physpages", 1048576, 1200000, 9223372036854775807,              \
			       9223372036854775807, 0)
#define FAKE_WEB1_RES                                                                              \
	"[" FAKE_RES("physpages", 98304, 131072, 131072, 131072, 3) ", "                           \
	FAKE_RES("vmguarpages", 98304, 131072, 65536, 9223372036854775807, 0) ", "                 \
	FAKE_RES("vmmpages", 262144, 262144, 262144, 262144, 0) "]"
#define FAKE_DB2_RES                                                                               \
	"[" FAKE_RES("physpages", 200000, 210000, 9223372036854775807,                             \
		     9223372036854775807, 0) ", "                                                  \
	FAKE_RES("vmguarpages", 200000, 210000, 0, 9223372036854775807, 0) ", "                    \
	FAKE_RES("vmmpages", 524288, 524288, 524288, 524288, 0) "]"

const gchar fake_vmbcd_beancounters[] =
	"{\"page-size\": 4096, \"beancounters\": ["
	"{\"id\": 0, \"name\": \"host\", \"resources\": [" FAKE_HOST_RES "]}, "
	"{\"id\": 1, \"name\": \"web1\", \"resources\": " FAKE_WEB1_RES "}, "
	"{\"id\": 2, \"name\": \"db2\", \"resources\": " FAKE_DB2_RES "}]}";

const gchar fake_vmbcd_domains[] =
	"{\"domains\": ["
	"{\"name\": \"web1\", \"id\": 1, \"backend\": \"qmp\", \"max\": 262144, "
	"\"balloon\": \"ok\", \"free-page-reporting\": true, \"actual\": 196608, "
	"\"target\": 196608, \"guarantee\": 32768, \"shares\": 1000, \"reclaim\": \"idle\", "
	"\"stats\": {\"available\": 40000, \"free\": 20000, \"caches\": 15000, "
	"\"total\": 190000, \"swap-in\": 0, \"major-faults\": 12, \"last-update\": 1700000000}, "
	"\"reclaims\": {\"started\": 4, \"done\": 3, \"failed\": 1, \"last-seconds\": 0.4}, "
	"\"resources\": " FAKE_WEB1_RES ", "
	"\"pid\": 4242, \"qmp-socket\": \"/run/vmbc-test/web1.qmp\"}, "
	"{\"name\": \"db2\", \"id\": 2, \"backend\": \"qmp\", \"max\": 524288, "
	"\"balloon\": \"no-driver\", \"free-page-reporting\": null, \"actual\": -1, "
	"\"target\": -1, \"guarantee\": 0, \"shares\": 1000, \"reclaim\": \"failed\", "
	"\"stats\": {\"available\": -1, \"free\": -1, \"caches\": -1, \"total\": -1, "
	"\"swap-in\": -1, \"major-faults\": -1, \"last-update\": 0}, "
	"\"reclaims\": {\"started\": 1, \"done\": 0, \"failed\": 1, \"last-seconds\": 0}, "
	"\"resources\": " FAKE_DB2_RES ", "
	"\"pid\": 4243, \"qmp-socket\": \"/run/vmbc-test/db2.qmp\"}]}";
/* clang-format on */

typedef struct {
	gchar *reply; /* JSON text, or NULL */
	gchar *error; /* desc, or NULL */
	GStrv events_after;
	gboolean close_after;
	guint count;
	gchar *last_arguments;
} FakeCommand;

struct _FakeVmbcd {
	QmpServer *server;
	GHashTable *commands; /* name -> FakeCommand */
};

static void
fake_command_free(FakeCommand *c)
{
	g_free(c->reply);
	g_free(c->error);
	g_strfreev(c->events_after);
	g_free(c->last_arguments);
	g_free(c);
}

static FakeCommand *
fake_vmbcd_command(FakeVmbcd *fake, const gchar *name)
{
	FakeCommand *c = g_hash_table_lookup(fake->commands, name);

	if (c == NULL) {
		c = g_new0(FakeCommand, 1);
		g_hash_table_insert(fake->commands, g_strdup(name), c);
	}
	return c;
}

static JsonNode *
fake_parse(const gchar *text)
{
	g_autoptr(GError) error = NULL;
	JsonNode *node = json_from_string(text, &error);

	g_assert_no_error(error);
	return node;
}

/* The canned DOMAIN object named @name (a new reference), or NULL. */
static JsonObject *
fake_find_domain(const gchar *name)
{
	g_autoptr(JsonNode) root = fake_parse(fake_vmbcd_domains);
	JsonArray *domains = json_object_get_array_member(json_node_get_object(root), "domains");

	for (guint i = 0; name != NULL && i < json_array_get_length(domains); i++) {
		JsonObject *dom = json_array_get_object_element(domains, i);
		if (g_strcmp0(json_object_get_string_member(dom, "name"), name) == 0)
			return json_object_ref(dom);
	}
	return NULL;
}

static const gchar *
fake_arg_string(JsonObject *args, const gchar *member)
{
	JsonNode *node = args != NULL ? json_object_get_member(args, member) : NULL;

	if (node == NULL || json_node_get_value_type(node) != G_TYPE_STRING)
		return NULL;
	return json_node_get_string(node);
}

/* The built-in reply to @name, or NULL with the error to answer. */
static JsonNode *
fake_default_reply(const gchar *name, JsonObject *args, GError **error)
{
	g_autoptr(JsonObject) dom = NULL;
	g_autoptr(JsonObject) out = json_object_new();
	const gchar *domain = fake_arg_string(args, "domain");
	JsonNode *node;

	if (g_strcmp0(name, "query-version") == 0)
		return fake_parse("{\"version\": \"0.1.0\", \"page-size\": 4096, "
				  "\"backends\": [\"qmp\"], \"tick-ms\": 1000}");
	if (g_strcmp0(name, "query-beancounters") == 0)
		return fake_parse(fake_vmbcd_beancounters);
	if (g_strcmp0(name, "query-domains") == 0)
		return fake_parse(fake_vmbcd_domains);
	if (g_strcmp0(name, "reset-counters") == 0 && g_strcmp0(domain, "host") == 0)
		return fake_parse("{}");

	if (g_strcmp0(name, "query-domain") != 0 && g_strcmp0(name, "set-limit") != 0 &&
	    g_strcmp0(name, "set-guarantee") != 0 && g_strcmp0(name, "reclaim") != 0 &&
	    g_strcmp0(name, "reset-counters") != 0) {
		g_set_error(error, QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND,
			    "The command %s has not been found", name);
		return NULL;
	}
	dom = fake_find_domain(domain);
	if (dom == NULL) {
		g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC_ERROR, "no domain named '%s'",
			    domain != NULL ? domain : "");
		return NULL;
	}
	if (g_strcmp0(name, "query-domain") == 0) {
		node = json_node_new(JSON_NODE_OBJECT);
		json_node_set_object(node, dom);
		return node;
	}
	if (g_strcmp0(name, "reset-counters") == 0)
		return fake_parse("{}");

	json_object_set_string_member(out, "domain", domain);
	if (g_strcmp0(name, "set-limit") == 0) {
		gint64 max = json_object_get_int_member(dom, "max");
		gint64 barrier = 0;
		gint64 limit = 0;
		if (!vmbc_size_parse(fake_arg_string(args, "barrier"), FAKE_VMBCD_PAGE_SIZE, max,
				     &barrier, error) ||
		    !vmbc_size_parse(fake_arg_string(args, "limit"), FAKE_VMBCD_PAGE_SIZE, max,
				     &limit, error))
			return NULL;
		json_object_set_string_member(out, "resource", fake_arg_string(args, "resource"));
		json_object_set_int_member(out, "held", 98304);
		json_object_set_int_member(out, "barrier", barrier);
		json_object_set_int_member(out, "limit", limit);
		json_object_set_int_member(out, "failcnt", 3);
		if (json_object_has_member(args, "persist"))
			json_object_set_boolean_member(out, "persisted", TRUE);
	} else {
		gint64 max = json_object_get_int_member(dom, "max");
		gint64 size = 0;
		if (!vmbc_size_parse(fake_arg_string(args, "size"), FAKE_VMBCD_PAGE_SIZE, max,
				     &size, error))
			return NULL;
		if (g_strcmp0(name, "set-guarantee") == 0) {
			json_object_set_int_member(out, "guarantee", size);
		} else {
			json_object_set_int_member(out, "actual", max - size);
			json_object_set_int_member(out, "held", MIN(98304, max - size));
		}
	}
	node = json_node_new(JSON_NODE_OBJECT);
	json_node_set_object(node, out);
	return node;
}

/*
 * Closing right after queueing would lose the queue: the connection is
 * finalized once the server drops it, and that closes the channel without
 * the flush qmp_server_connection_close() promises. So close a little later.
 */
static gboolean
fake_close_later(gpointer user_data)
{
	qmp_server_connection_close(user_data);
	return G_SOURCE_REMOVE;
}

static void
fake_send_events(QmpServerConnection *conn, FakeCommand *c)
{
	for (guint i = 0; c->events_after != NULL && c->events_after[i] != NULL; i++) {
		g_autoptr(JsonNode) ev = fake_parse(c->events_after[i]);
		JsonObject *obj = json_node_get_object(ev);
		JsonObject *data = json_object_has_member(obj, "data")
					   ? json_object_get_object_member(obj, "data")
					   : NULL;
		qmp_server_connection_send_event(conn, json_object_get_string_member(obj, "event"),
						 data);
	}
	if (c->close_after)
		g_timeout_add_full(G_PRIORITY_DEFAULT, 100, fake_close_later, g_object_ref(conn),
				   g_object_unref);
}

static gboolean
fake_on_command(QmpServer *server, QmpServerConnection *conn, const gchar *name, JsonObject *args,
		QmpRequest *req, gpointer user_data)
{
	FakeVmbcd *fake = user_data;
	FakeCommand *c = fake_vmbcd_command(fake, name);
	g_autoptr(GError) error = NULL;
	JsonNode *reply = NULL;

	c->count++;
	g_free(c->last_arguments);
	c->last_arguments = NULL;
	if (args != NULL) {
		g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
		json_node_set_object(node, args);
		c->last_arguments = json_to_string(node, FALSE);
	}

	if (c->error != NULL) {
		qmp_request_error(req, QMP_ERROR_GENERIC_ERROR, "%s", c->error);
	} else {
		reply = c->reply != NULL ? fake_parse(c->reply)
					 : fake_default_reply(name, args, &error);
		if (reply != NULL)
			qmp_request_return(req, reply);
		else
			qmp_request_error(req, (QmpError)error->code, "%s", error->message);
	}
	fake_send_events(conn, c);
	return TRUE;
}

FakeVmbcd *
fake_vmbcd_new(const gchar *greeting_json)
{
	FakeVmbcd *fake = g_new0(FakeVmbcd, 1);
	g_autoptr(JsonNode) greeting =
		fake_parse(greeting_json != NULL
				   ? greeting_json
				   : "{\"version\": {\"vmbc\": \"0.1.0\"}, \"capabilities\": []}");

	fake->server = qmp_server_new(json_node_get_object(greeting));
	fake->commands = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					       (GDestroyNotify)fake_command_free);
	g_signal_connect(fake->server, "command", G_CALLBACK(fake_on_command), fake);
	return fake;
}

void
fake_vmbcd_free(FakeVmbcd *fake)
{
	if (fake == NULL)
		return;
	g_signal_handlers_disconnect_by_data(fake->server, fake);
	qmp_server_close(fake->server);
	g_object_unref(fake->server);
	g_hash_table_unref(fake->commands);
	g_free(fake);
}

gboolean
fake_vmbcd_listen(FakeVmbcd *fake, const gchar *socket_path, GError **error)
{
	return qmp_server_listen_unix(fake->server, socket_path, error);
}

void
fake_vmbcd_set_reply(FakeVmbcd *fake, const gchar *command, const gchar *json_return)
{
	FakeCommand *c = fake_vmbcd_command(fake, command);

	g_free(c->reply);
	c->reply = g_strdup(json_return);
}

void
fake_vmbcd_set_error(FakeVmbcd *fake, const gchar *command, const gchar *desc)
{
	FakeCommand *c = fake_vmbcd_command(fake, command);

	g_free(c->error);
	c->error = g_strdup(desc);
}

void
fake_vmbcd_set_events_after(FakeVmbcd *fake, const gchar *command, const gchar *const *events,
			    gboolean close)
{
	FakeCommand *c = fake_vmbcd_command(fake, command);

	g_strfreev(c->events_after);
	c->events_after = g_strdupv((gchar **)events);
	c->close_after = close;
}

void
fake_vmbcd_broadcast(FakeVmbcd *fake, const gchar *name, const gchar *data_json)
{
	g_autoptr(JsonNode) data = data_json != NULL ? fake_parse(data_json) : NULL;

	qmp_server_broadcast_event(fake->server, name,
				   data != NULL ? json_node_get_object(data) : NULL);
}

guint
fake_vmbcd_count(FakeVmbcd *fake, const gchar *command)
{
	FakeCommand *c = g_hash_table_lookup(fake->commands, command);
	return c != NULL ? c->count : 0;
}

const gchar *
fake_vmbcd_last_arguments(FakeVmbcd *fake, const gchar *command)
{
	FakeCommand *c = g_hash_table_lookup(fake->commands, command);
	return c != NULL ? c->last_arguments : NULL;
}
