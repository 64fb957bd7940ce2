/*
 * vmbc-cli.c: the command table, the connection to vmbcd, and the helpers the
 * verbs share (errors, JSON members, sizes, tables).
 *
 * The connection is made with a plain connect(2) so that the user sees the
 * system's reason ("No such file or directory", "Permission denied") and the
 * socket path, then handed to the QMP client for the greeting and
 * capabilities.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmbc-cli.h"
#include "vmbc-error.h"
#include "vmbc-size.h"

const gchar *const vmbc_cli_resources[] = {"physpages", "vmguarpages", "vmmpages", NULL};

const VmbcCommand vmbc_commands[] = {
	{"list", "", "list the domains vmbcd accounts, with their physpages use",
	 "Columns: id, name, balloon driver state, balloon size, reclaim state, and the\n"
	 "physpages held, limit and failcnt. Sizes like 1.5G; --pages or --bytes for numbers.",
	 vmbc_cmd_list},
	{"ubc", "", "print the beancounters as /proc/user_beancounters did",
	 "One row per beancounter and resource, the host (uid 0) first, with the VM's\n"
	 "name after failcnt on its first row. Values are pages of the host page size, as\n"
	 "OpenVZ printed them; with -h sizes like 512M, with --bytes bytes. Unlimited is\n"
	 "printed as 9223372036854775807 (\"unlimited\" with -h). Ids stay with a VM's\n"
	 "name across restarts of vmbcd.",
	 vmbc_cmd_ubc},
	{"dominfo", "DOM", "show everything vmbcd knows about a domain", NULL, vmbc_cmd_dominfo},
	{"setlimit", "DOM RES BARRIER[:LIMIT]|default [--persist]",
	 "set the barrier and limit of a resource",
	 "RES is physpages, vmguarpages or vmmpages. Sizes: 512M, 2G, 1000p (pages),\n"
	 "80% (of the domain's maximum memory) or unlimited; a single value sets both.\n"
	 "Waits until vmbcd brought the domain under the new limit (up to 60 s), and\n"
	 "answers in the units given. With --persist (libvirt domains) the limit is also\n"
	 "written to the domain's metadata, so that it goes with the domain. default\n"
	 "forgets the limits set at run time: vmbc.conf's apply again (for the host\n"
	 "without [host] limits, the budget it measures).",
	 vmbc_cmd_setlimit},
	{"guarantee", "DOM SIZE", "set the memory the balloon never takes from a domain",
	 "SIZE as for setlimit.", vmbc_cmd_guarantee},
	{"reclaim", "DOM SIZE", "take SIZE from a domain with its balloon now",
	 "SIZE as for setlimit. Waits for the balloon (up to 60 s).", vmbc_cmd_reclaim},
	{"resetcnt", "DOM", "reset the failcnt and maxheld counters of a domain (or host)", NULL,
	 vmbc_cmd_resetcnt},
	{"events", "[DOM]", "follow vmbcd's events until Ctrl-C",
	 "Each event is a line \"TIMESTAMP EVENT domain: message\"; with --json one JSON\n"
	 "object per line. With DOM only that domain's events are shown.",
	 vmbc_cmd_events},
	{"top", "[-n N] [-d SECONDS]", "show the domains by memory held, refreshed every second",
	 "Runs until Ctrl-C, or for N refreshes with -n N; -d sets the refresh interval.",
	 vmbc_cmd_top},
	{"help", "[COMMAND]", "show the commands, or the usage of one", NULL, vmbc_cmd_help},
	{NULL, NULL, NULL, NULL, NULL},
};

const VmbcCommand *
vmbc_cli_find_command(const gchar *name)
{
	for (const VmbcCommand *c = vmbc_commands; c->name != NULL; c++) {
		if (g_strcmp0(c->name, name) == 0)
			return c;
	}
	return NULL;
}

gint
vmbc_cli_run(VmbcCli *cli, gint argc, gchar **argv)
{
	g_autoptr(GPtrArray) args = g_ptr_array_new();
	const VmbcCommand *c;
	gboolean json = cli->json;
	VmbcUnits units = cli->units;
	gboolean options_done = FALSE;
	gint rc;

	g_return_val_if_fail(argc >= 1, VMBC_EXIT_USAGE);

	c = vmbc_cli_find_command(argv[0]);
	if (c == NULL)
		return vmbc_cli_usage_error("unknown command '%s' (see 'vmbc help')", argv[0]);
	for (gint i = 0; i < argc; i++) {
		if (i > 0 && !options_done && g_strcmp0(argv[i], "--") == 0)
			options_done = TRUE;
		else if (i > 0 && !options_done && g_strcmp0(argv[i], "--json") == 0)
			cli->json = TRUE;
		else if (i > 0 && !options_done && vmbc_cli_parse_units(argv[i], &cli->units))
			continue;
		else
			g_ptr_array_add(args, argv[i]);
	}
	g_ptr_array_add(args, NULL);
	vmbc_cli_begin_command(cli);
	rc = c->run(cli, (gint)args->len - 1, (gchar **)args->pdata);
	cli->json = json;
	cli->units = units;
	return rc;
}

gboolean
vmbc_cli_parse_units(const gchar *arg, VmbcUnits *units)
{
	if (g_strcmp0(arg, "-h") == 0 || g_strcmp0(arg, "--human") == 0)
		*units = VMBC_UNITS_HUMAN;
	else if (g_strcmp0(arg, "--pages") == 0)
		*units = VMBC_UNITS_PAGES;
	else if (g_strcmp0(arg, "--bytes") == 0)
		*units = VMBC_UNITS_BYTES;
	else
		return FALSE;
	return TRUE;
}

VmbcCli *
vmbc_cli_new(const gchar *socket_path)
{
	VmbcCli *cli = g_new0(VmbcCli, 1);
	const gchar *env = g_getenv("VMBC_SOCKET");

	if (socket_path != NULL)
		cli->socket_path = g_strdup(socket_path);
	else if (env != NULL && *env != '\0')
		cli->socket_path = g_strdup(env);
	else
		cli->socket_path = g_strdup(VMBC_CLI_DEFAULT_SOCKET);
	cli->cancellable = g_cancellable_new();
	return cli;
}

void
vmbc_cli_free(VmbcCli *cli)
{
	if (cli == NULL)
		return;
	if (cli->client != NULL)
		qmp_client_close(cli->client);
	g_clear_object(&cli->client);
	g_clear_object(&cli->cancellable);
	g_free(cli->socket_path);
	g_free(cli);
}

void
vmbc_cli_begin_command(VmbcCli *cli)
{
	g_clear_object(&cli->cancellable);
	cli->cancellable = g_cancellable_new();
}

void
vmbc_cli_interrupt(VmbcCli *cli)
{
	g_cancellable_cancel(cli->cancellable);
}

/* connect(2) to @path; returns the fd or -1 with the system's reason. */
static gint
vmbc_cli_open_socket(const gchar *path, GError **error)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	gint fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FILENAME_TOO_LONG,
			    "socket path is longer than %zu bytes", sizeof(sa.sun_path) - 1);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		gint saved = errno;
		g_set_error_literal(error, G_IO_ERROR, g_io_error_from_errno(saved),
				    g_strerror(saved));
		return -1;
	}
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		gint saved = errno;
		if (saved == EINTR)
			continue;
		close(fd);
		g_set_error_literal(error, G_IO_ERROR, g_io_error_from_errno(saved),
				    g_strerror(saved));
		return -1;
	}
	return fd;
}

static void
vmbc_cli_on_connected(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GAsyncResult **out = user_data;
	*out = g_object_ref(res);
}

/* Hands a connected stream to a new QMP client and waits for capabilities. */
static QmpClient *
vmbc_cli_start_client(VmbcCli *cli, gint fd, GError **error)
{
	g_autoptr(QmpClient) client = qmp_client_new();
	g_autoptr(GSocket) sock = NULL;
	g_autoptr(GSocketConnection) conn = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	JsonObject *greeting;
	JsonObject *version;

	sock = g_socket_new_from_fd(fd, error);
	if (sock == NULL) {
		close(fd);
		return NULL;
	}
	conn = g_socket_connection_factory_create_connection(sock);
	qmp_client_set_timeout(client, VMBC_CLI_TIMEOUT_MS);
	qmp_client_connect_stream_async(client, G_IO_STREAM(conn), cli->cancellable,
					vmbc_cli_on_connected, &res);
	while (res == NULL)
		g_main_context_iteration(NULL, TRUE);
	if (!qmp_client_connect_finish(client, res, error))
		return NULL;

	/* a QEMU monitor socket also speaks QMP: say so rather than fail later */
	greeting = qmp_client_get_greeting(client);
	version = greeting != NULL ? vmbc_cli_json_object(greeting, "version") : NULL;
	if (version == NULL || !json_object_has_member(version, "vmbc")) {
		g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
				    "the socket speaks QMP but is not vmbcd's control socket");
		qmp_client_close(client);
		return NULL;
	}
	return g_steal_pointer(&client);
}

gboolean
vmbc_cli_connect(VmbcCli *cli, GError **error)
{
	g_autoptr(GError) local = NULL;
	gint fd;

	if (cli->client != NULL && qmp_client_is_connected(cli->client))
		return TRUE;
	/* the daemon went away since the last command (shell): start over */
	g_clear_object(&cli->client);
	cli->page_size = 0;

	fd = vmbc_cli_open_socket(cli->socket_path, &local);
	if (fd >= 0)
		cli->client = vmbc_cli_start_client(cli, fd, &local);
	if (cli->client == NULL) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED,
			    "cannot connect to vmbcd at %s: %s (is vmbcd running?)",
			    cli->socket_path, local->message);
		return FALSE;
	}
	return TRUE;
}

JsonNode *
vmbc_cli_execute(VmbcCli *cli, const gchar *command, JsonObject *arguments, guint timeout_ms,
		 GError **error)
{
	g_autoptr(GError) local = NULL;
	JsonNode *ret;

	if (!vmbc_cli_connect(cli, error))
		return NULL;
	qmp_client_set_timeout(cli->client, timeout_ms);
	ret = qmp_client_execute_sync(cli->client, command, arguments, cli->cancellable, &local);
	if (ret != NULL)
		return ret;

	if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED, "interrupted");
		return NULL;
	}
	if (local->domain == QMP_ERROR && local->code <= QMP_ERROR_KVM_MISSING_CAP) {
		/* a refusal by the daemon: its desc is a complete sentence */
		g_autofree gchar *prefix =
			g_strdup_printf("unable to execute QMP command '%s': ", command);
		const gchar *msg = local->message;
		if (g_str_has_prefix(msg, prefix))
			msg += strlen(prefix);
		g_set_error_literal(error, VMBC_ERROR, VMBC_ERROR_FAILED, msg);
		return NULL;
	}
	g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED, "vmbcd at %s: %s", cli->socket_path,
		    local->message);
	return NULL;
}

JsonObject *
vmbc_cli_query(VmbcCli *cli, const gchar *command, JsonObject *arguments, guint timeout_ms,
	       gint *exit_out)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	ret = vmbc_cli_execute(cli, command, arguments, timeout_ms, &error);
	if (ret == NULL) {
		*exit_out = vmbc_cli_fail(error);
		return NULL;
	}
	if (cli->json) {
		vmbc_cli_print_json(ret);
		*exit_out = VMBC_EXIT_OK;
		return NULL;
	}
	if (!JSON_NODE_HOLDS_OBJECT(ret)) {
		g_autoptr(GError) bad = g_error_new(VMBC_ERROR, VMBC_ERROR_FAILED,
						    "unexpected reply to '%s' from vmbcd: "
						    "not an object",
						    command);
		*exit_out = vmbc_cli_fail(bad);
		return NULL;
	}
	*exit_out = VMBC_EXIT_OK;
	return json_object_ref(json_node_get_object(ret));
}

gint
vmbc_cli_fail(const GError *error)
{
	g_printerr("vmbc: %s\n", error->message);
	if (g_error_matches(error, VMBC_ERROR, VMBC_ERROR_INVALID))
		return VMBC_EXIT_USAGE;
	return VMBC_EXIT_FAILED;
}

gint
vmbc_cli_usage_error(const gchar *format, ...)
{
	va_list ap;
	g_autofree gchar *msg = NULL;

	va_start(ap, format);
	msg = g_strdup_vprintf(format, ap);
	va_end(ap);
	g_printerr("vmbc: %s\n", msg);
	return VMBC_EXIT_USAGE;
}

gboolean
vmbc_cli_check_args(const gchar *command, gint argc, gint min, gint max)
{
	const VmbcCommand *c = vmbc_cli_find_command(command);

	if (argc >= min && argc <= max)
		return TRUE;
	g_printerr("vmbc: %s: %s\nusage: vmbc %s%s%s\n", command,
		   argc < min ? "missing arguments" : "too many arguments", command,
		   c != NULL && *c->synopsis != '\0' ? " " : "", c != NULL ? c->synopsis : "");
	return FALSE;
}

gint64
vmbc_cli_page_size(VmbcCli *cli)
{
	g_autoptr(JsonNode) ret = NULL;

	if (cli->page_size > 0)
		return cli->page_size;
	ret = vmbc_cli_execute(cli, "query-version", NULL, VMBC_CLI_TIMEOUT_MS, NULL);
	if (ret != NULL && JSON_NODE_HOLDS_OBJECT(ret))
		cli->page_size = vmbc_cli_json_int(json_node_get_object(ret), "page-size", 0);
	if (cli->page_size <= 0)
		cli->page_size = (gint64)vmbc_page_size();
	return cli->page_size;
}

void
vmbc_cli_print_json(JsonNode *node)
{
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autofree gchar *text = NULL;

	json_generator_set_pretty(gen, TRUE);
	json_generator_set_indent(gen, 2);
	json_generator_set_root(gen, node);
	text = json_generator_to_data(gen, NULL);
	g_print("%s\n", text);
}

gchar *
vmbc_cli_format_pages(VmbcCli *cli, gint64 pages)
{
	if (pages < 0)
		return g_strdup("-");
	switch (cli->units) {
	case VMBC_UNITS_PAGES:
		return g_strdup_printf("%" G_GINT64_FORMAT, pages);
	case VMBC_UNITS_BYTES:
		return g_strdup_printf("%" G_GINT64_FORMAT,
				       vmbc_pages_to_bytes(pages, (gsize)vmbc_cli_page_size(cli)));
	case VMBC_UNITS_DEFAULT:
	case VMBC_UNITS_HUMAN:
	default:
		return vmbc_size_format_human(pages, (gsize)vmbc_cli_page_size(cli));
	}
}

gchar *
vmbc_cli_format_like(VmbcCli *cli, gint64 pages, const gchar *given)
{
	static const struct {
		const gchar *suffix;
		const gchar *print;
		guint shift;
	} units[] = {
		{"k", "K", 10}, {"kib", "K", 10}, {"m", "M", 20}, {"mib", "M", 20},
		{"g", "G", 30}, {"gib", "G", 30}, {"t", "T", 40}, {"tib", "T", 40},
	};
	g_autofree gchar *suffix = NULL;
	const gchar *p = given;
	gint64 bytes;

	if (cli->units != VMBC_UNITS_DEFAULT || given == NULL || pages < 0 ||
	    pages == VMBC_UNLIMITED)
		return vmbc_cli_format_pages(cli, pages);
	while (g_ascii_isdigit(*p) || *p == '.')
		p++;
	if (p == given)
		return vmbc_cli_format_pages(cli, pages);
	suffix = g_ascii_strdown(p, -1);
	if (g_strcmp0(suffix, "p") == 0)
		return g_strdup_printf("%" G_GINT64_FORMAT "p", pages);
	bytes = vmbc_pages_to_bytes(pages, (gsize)vmbc_cli_page_size(cli));
	if (*suffix == '\0' || g_strcmp0(suffix, "b") == 0)
		return g_strdup_printf("%" G_GINT64_FORMAT, bytes);
	for (guint i = 0; i < G_N_ELEMENTS(units); i++) {
		gdouble v;
		if (g_strcmp0(suffix, units[i].suffix) != 0)
			continue;
		if (bytes % ((gint64)1 << units[i].shift) == 0)
			return g_strdup_printf("%" G_GINT64_FORMAT "%s", bytes >> units[i].shift,
					       units[i].print);
		v = (gdouble)bytes / (gdouble)((gint64)1 << units[i].shift);
		return g_strdup_printf("%.1f%s", v, units[i].print);
	}
	/* a percentage: the size it came to */
	return vmbc_cli_format_pages(cli, pages);
}

gboolean
vmbc_cli_parse_size(const gchar *text, const gchar *what, GError **error)
{
	g_autoptr(GError) local = NULL;
	g_autofree gchar *prefix = NULL;
	gint64 pages = 0;

	/*
	 * Any maximum will do to check the form of a percentage: the daemon
	 * resolves it against the VM's real maximum.
	 */
	if (vmbc_size_parse(text, vmbc_page_size(), G_MAXINT32, &pages, &local))
		return TRUE;
	prefix = g_strdup_printf("invalid size '%s'", text);
	if (g_str_has_prefix(local->message, prefix)) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID, "%s for %s%s", prefix, what,
			    local->message + strlen(prefix));
	} else {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID, "%s: %s", what, local->message);
	}
	return FALSE;
}

gint64
vmbc_cli_json_int(JsonObject *obj, const gchar *member, gint64 fallback)
{
	JsonNode *node = obj != NULL ? json_object_get_member(obj, member) : NULL;

	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node))
		return fallback;
	if (json_node_get_value_type(node) == G_TYPE_INT64)
		return json_node_get_int(node);
	if (json_node_get_value_type(node) == G_TYPE_DOUBLE)
		return (gint64)json_node_get_double(node);
	return fallback;
}

gboolean
vmbc_cli_json_bool(JsonObject *obj, const gchar *member, gboolean fallback)
{
	JsonNode *node = obj != NULL ? json_object_get_member(obj, member) : NULL;

	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) ||
	    json_node_get_value_type(node) != G_TYPE_BOOLEAN)
		return fallback;
	return json_node_get_boolean(node);
}

const gchar *
vmbc_cli_json_string(JsonObject *obj, const gchar *member, const gchar *fallback)
{
	JsonNode *node = obj != NULL ? json_object_get_member(obj, member) : NULL;

	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) ||
	    json_node_get_value_type(node) != G_TYPE_STRING)
		return fallback;
	return json_node_get_string(node);
}

JsonArray *
vmbc_cli_json_array(JsonObject *obj, const gchar *member)
{
	JsonNode *node = obj != NULL ? json_object_get_member(obj, member) : NULL;

	if (node == NULL || !JSON_NODE_HOLDS_ARRAY(node))
		return NULL;
	return json_node_get_array(node);
}

JsonObject *
vmbc_cli_json_object(JsonObject *obj, const gchar *member)
{
	JsonNode *node = obj != NULL ? json_object_get_member(obj, member) : NULL;

	if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node))
		return NULL;
	return json_node_get_object(node);
}

JsonObject *
vmbc_cli_find_resource(JsonObject *bc_or_domain, const gchar *resource)
{
	JsonArray *resources = vmbc_cli_json_array(bc_or_domain, "resources");

	if (resources == NULL)
		return NULL;
	for (guint i = 0; i < json_array_get_length(resources); i++) {
		JsonNode *node = json_array_get_element(resources, i);
		JsonObject *res;
		if (!JSON_NODE_HOLDS_OBJECT(node))
			continue;
		res = json_node_get_object(node);
		if (g_strcmp0(vmbc_cli_json_string(res, "resource", NULL), resource) == 0)
			return res;
	}
	return NULL;
}

struct _VmbcTable {
	GPtrArray *titles; /* gchar * */
	GArray *aligns;	   /* VmbcAlign */
	GPtrArray *rows;   /* GStrv, one cell per column */
	guint gap;
};

VmbcTable *
vmbc_table_new(const gchar *first_title, ...)
{
	VmbcTable *table = g_new0(VmbcTable, 1);
	va_list ap;

	table->titles = g_ptr_array_new_with_free_func(g_free);
	table->aligns = g_array_new(FALSE, FALSE, sizeof(VmbcAlign));
	table->rows = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
	table->gap = 2;
	va_start(ap, first_title);
	for (const gchar *title = first_title; title != NULL; title = va_arg(ap, const gchar *)) {
		VmbcAlign align = (VmbcAlign)va_arg(ap, gint);
		g_ptr_array_add(table->titles, g_strdup(title));
		g_array_append_val(table->aligns, align);
	}
	va_end(ap);
	return table;
}

void
vmbc_table_add_row(VmbcTable *table, const gchar *const *cells)
{
	gchar **row = g_new0(gchar *, table->titles->len + 1);

	for (guint i = 0; i < table->titles->len; i++)
		row[i] = g_strdup(cells[i] != NULL ? cells[i] : "");
	g_ptr_array_add(table->rows, row);
}

void
vmbc_table_set_gap(VmbcTable *table, guint gap)
{
	table->gap = gap;
}

static void
vmbc_table_render_line(VmbcTable *table, GString *out, const gchar *const *cells,
		       const guint *widths)
{
	guint ncols = table->titles->len;
	gsize start = out->len;

	for (guint i = 0; i < ncols; i++) {
		glong len = g_utf8_strlen(cells[i], -1);
		glong pad = (glong)widths[i] - len;
		if (i > 0)
			g_string_append_printf(out, "%*s", (gint)table->gap, "");
		if (g_array_index(table->aligns, VmbcAlign, i) == VMBC_ALIGN_RIGHT) {
			g_string_append_printf(out, "%*s%s", (gint)MAX(pad, 0), "", cells[i]);
		} else {
			g_string_append(out, cells[i]);
			if (i + 1 < ncols)
				g_string_append_printf(out, "%*s", (gint)MAX(pad, 0), "");
		}
	}
	/* a left aligned last column must not leave trailing blanks */
	while (out->len > start && out->str[out->len - 1] == ' ')
		g_string_truncate(out, out->len - 1);
	g_string_append_c(out, '\n');
}

gchar *
vmbc_table_render(VmbcTable *table)
{
	guint ncols = table->titles->len;
	g_autofree guint *widths = g_new0(guint, ncols);
	GString *out = g_string_new(NULL);

	for (guint i = 0; i < ncols; i++)
		widths[i] = (guint)g_utf8_strlen(g_ptr_array_index(table->titles, i), -1);
	for (guint r = 0; r < table->rows->len; r++) {
		gchar **row = g_ptr_array_index(table->rows, r);
		for (guint i = 0; i < ncols; i++)
			widths[i] = MAX(widths[i], (guint)g_utf8_strlen(row[i], -1));
	}
	vmbc_table_render_line(table, out, (const gchar *const *)table->titles->pdata, widths);
	for (guint r = 0; r < table->rows->len; r++)
		vmbc_table_render_line(table, out, g_ptr_array_index(table->rows, r), widths);
	return g_string_free(out, FALSE);
}

void
vmbc_table_free(VmbcTable *table)
{
	if (table == NULL)
		return;
	g_ptr_array_unref(table->titles);
	g_array_unref(table->aligns);
	g_ptr_array_unref(table->rows);
	g_free(table);
}
