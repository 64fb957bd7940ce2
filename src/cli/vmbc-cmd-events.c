/*
 * vmbc-cmd-events.c: "vmbc events [DOM]", follows vmbcd's events until Ctrl-C
 * or until the daemon goes away.
 *
 * vmbcd sends every event to every connection past capabilities, so following
 * is only listening. Lines are flushed one by one so that a pipe into grep or
 * a log sees each event as it happens.
 */
#include <stdio.h>

#include "vmbc-cli.h"

typedef struct {
	VmbcCli *cli;
	const gchar *domain; /* filter, or NULL */
	gboolean closed;
	gchar *reason;
} EventsState;

static gchar *
events_format_time(gint64 usec)
{
	g_autoptr(GDateTime) dt = NULL;
	g_autofree gchar *base = NULL;

	if (usec < 0)
		usec = g_get_real_time();
	dt = g_date_time_new_from_unix_local(usec / G_USEC_PER_SEC);
	if (dt == NULL)
		return g_strdup("?");
	base = g_date_time_format(dt, "%F %T");
	return g_strdup_printf("%s.%03d", base, (gint)((usec % G_USEC_PER_SEC) / 1000));
}

static void
events_print_json(const gchar *name, JsonObject *data, gint64 usec)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonNode) root = NULL;
	g_autofree gchar *text = NULL;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "event");
	json_builder_add_string_value(b, name);
	if (data != NULL) {
		JsonNode *d = json_node_new(JSON_NODE_OBJECT);
		json_node_set_object(d, data);
		json_builder_set_member_name(b, "data");
		json_builder_add_value(b, d);
	}
	if (usec >= 0) {
		json_builder_set_member_name(b, "timestamp");
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "seconds");
		json_builder_add_int_value(b, usec / G_USEC_PER_SEC);
		json_builder_set_member_name(b, "microseconds");
		json_builder_add_int_value(b, usec % G_USEC_PER_SEC);
		json_builder_end_object(b);
	}
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	text = json_to_string(root, FALSE);
	g_print("%s\n", text);
}

static void
events_on_event(QmpClient *client, const gchar *name, JsonObject *data, gint64 usec,
		gpointer user_data)
{
	EventsState *st = user_data;
	const gchar *domain = vmbc_cli_json_string(data, "domain", NULL);

	if (st->domain != NULL && g_strcmp0(domain, st->domain) != 0)
		return;
	if (st->cli->json) {
		events_print_json(name, data, usec);
	} else {
		g_autofree gchar *when = events_format_time(usec);
		const gchar *message = vmbc_cli_json_string(data, "message", NULL);
		g_print("%s %s %s:%s%s\n", when, name, domain != NULL ? domain : "-",
			message != NULL ? " " : "", message != NULL ? message : "");
	}
	fflush(stdout);
}

static void
events_on_disconnected(QmpClient *client, const GError *reason, gpointer user_data)
{
	EventsState *st = user_data;

	st->closed = TRUE;
	if (st->reason == NULL)
		st->reason = g_strdup(reason != NULL ? reason->message : "connection closed");
}

gint
vmbc_cmd_events(VmbcCli *cli, gint argc, gchar **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) version = NULL;
	EventsState st = {.cli = cli};
	gulong event_id;
	gulong disc_id;
	gint rc = VMBC_EXIT_OK;

	if (!vmbc_cli_check_args(argv[0], argc, 1, 2))
		return VMBC_EXIT_USAGE;
	st.domain = argc > 1 ? argv[1] : NULL;

	if (!vmbc_cli_connect(cli, &error))
		return vmbc_cli_fail(error);
	/* before any round trip: events may come in the same read as a reply */
	event_id = g_signal_connect(cli->client, "event", G_CALLBACK(events_on_event), &st);
	disc_id = g_signal_connect(cli->client, "disconnected", G_CALLBACK(events_on_disconnected),
				   &st);
	/* a round trip, so that a daemon that cannot answer fails now, not silently */
	version = vmbc_cli_execute(cli, "query-version", NULL, VMBC_CLI_TIMEOUT_MS, &error);
	if (version == NULL) {
		rc = g_cancellable_is_cancelled(cli->cancellable) ? VMBC_EXIT_OK
								  : vmbc_cli_fail(error);
	}
	while (version != NULL && !st.closed && !g_cancellable_is_cancelled(cli->cancellable))
		g_main_context_iteration(NULL, TRUE);
	g_signal_handler_disconnect(cli->client, event_id);
	g_signal_handler_disconnect(cli->client, disc_id);

	if (version != NULL && st.closed) {
		g_printerr("vmbc: lost the connection to vmbcd at %s: %s\n", cli->socket_path,
			   st.reason);
		rc = VMBC_EXIT_FAILED;
	}
	g_free(st.reason);
	return rc;
}
