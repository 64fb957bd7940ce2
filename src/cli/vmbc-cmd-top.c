/*
 * vmbc-cmd-top.c: "vmbc top [-n N] [-d SECONDS]", the domains sorted by the
 * memory they hold, refreshed every second until Ctrl-C (or N times).
 *
 * The screen is cleared with plain ANSI codes, and only on a terminal: with
 * -n and a pipe the output is a sequence of tables a script can read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "vmbc-cli.h"

static gint64
top_held(JsonObject *dom)
{
	return vmbc_cli_json_int(vmbc_cli_find_resource(dom, "physpages"), "held", 0);
}

static gint
top_compare(gconstpointer a, gconstpointer b)
{
	gint64 ha = top_held(*(JsonObject *const *)a);
	gint64 hb = top_held(*(JsonObject *const *)b);
	return ha < hb ? 1 : ha > hb ? -1 : 0;
}

/* The host line above the table; the host is beancounter 0. */
static gchar *
top_host_line(VmbcCli *cli)
{
	g_autoptr(JsonNode) ret = NULL;
	JsonArray *bcs;

	ret = vmbc_cli_execute(cli, "query-beancounters", NULL, VMBC_CLI_TIMEOUT_MS, NULL);
	if (ret == NULL || !JSON_NODE_HOLDS_OBJECT(ret))
		return g_strdup("host: unknown");
	bcs = vmbc_cli_json_array(json_node_get_object(ret), "beancounters");
	for (guint i = 0; bcs != NULL && i < json_array_get_length(bcs); i++) {
		JsonNode *node = json_array_get_element(bcs, i);
		JsonObject *phys;
		g_autofree gchar *held = NULL;
		g_autofree gchar *limit = NULL;
		if (!JSON_NODE_HOLDS_OBJECT(node) ||
		    vmbc_cli_json_int(json_node_get_object(node), "id", -1) != 0)
			continue;
		phys = vmbc_cli_find_resource(json_node_get_object(node), "physpages");
		held = vmbc_cli_format_pages(cli, vmbc_cli_json_int(phys, "held", -1));
		limit = vmbc_cli_format_pages(cli, vmbc_cli_json_int(phys, "limit", -1));
		return g_strdup_printf("host: held %s, limit %s, failcnt %" G_GINT64_FORMAT, held,
				       limit, vmbc_cli_json_int(phys, "failcnt", 0));
	}
	return g_strdup("host: unknown");
}

/* One refresh; FALSE after printing an error. */
static gboolean
top_show(VmbcCli *cli, gboolean clear, gint *rc)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	g_autoptr(GPtrArray) doms = g_ptr_array_new();
	g_autoptr(VmbcTable) table = NULL;
	g_autoptr(GDateTime) now = g_date_time_new_now_local();
	g_autofree gchar *clock = g_date_time_format(now, "%T");
	g_autofree gchar *host = NULL;
	g_autofree gchar *text = NULL;
	JsonArray *domains;

	ret = vmbc_cli_execute(cli, "query-domains", NULL, VMBC_CLI_TIMEOUT_MS, &error);
	if (ret == NULL) {
		*rc = vmbc_cli_fail(error);
		return FALSE;
	}
	if (cli->json) {
		vmbc_cli_print_json(ret);
		fflush(stdout);
		return TRUE;
	}
	domains = JSON_NODE_HOLDS_OBJECT(ret)
			  ? vmbc_cli_json_array(json_node_get_object(ret), "domains")
			  : NULL;
	for (guint i = 0; domains != NULL && i < json_array_get_length(domains); i++) {
		JsonNode *node = json_array_get_element(domains, i);
		if (JSON_NODE_HOLDS_OBJECT(node))
			g_ptr_array_add(doms, json_node_get_object(node));
	}
	g_ptr_array_sort(doms, top_compare);

	table = vmbc_table_new("Name", VMBC_ALIGN_LEFT, "Held", VMBC_ALIGN_RIGHT, "Limit",
			       VMBC_ALIGN_RIGHT, "Failcnt", VMBC_ALIGN_RIGHT, "Balloon",
			       VMBC_ALIGN_RIGHT, "Target", VMBC_ALIGN_RIGHT, "Reclaim",
			       VMBC_ALIGN_LEFT, NULL);
	for (guint i = 0; i < doms->len; i++) {
		JsonObject *dom = g_ptr_array_index(doms, i);
		JsonObject *phys = vmbc_cli_find_resource(dom, "physpages");
		g_autofree gchar *held =
			vmbc_cli_format_pages(cli, vmbc_cli_json_int(phys, "held", -1));
		g_autofree gchar *limit =
			vmbc_cli_format_pages(cli, vmbc_cli_json_int(phys, "limit", -1));
		g_autofree gchar *failcnt =
			g_strdup_printf("%" G_GINT64_FORMAT, vmbc_cli_json_int(phys, "failcnt", 0));
		g_autofree gchar *actual =
			vmbc_cli_format_pages(cli, vmbc_cli_json_int(dom, "actual", -1));
		g_autofree gchar *target =
			vmbc_cli_format_pages(cli, vmbc_cli_json_int(dom, "target", -1));
		vmbc_table_add_row(table, (const gchar *const[]){
						  vmbc_cli_json_string(dom, "name", "?"),
						  held,
						  limit,
						  failcnt,
						  actual,
						  target,
						  vmbc_cli_json_string(dom, "reclaim", "-"),
					  });
	}
	host = top_host_line(cli);
	text = vmbc_table_render(table);
	if (clear)
		g_print("\033[H\033[2J");
	g_print("vmbc top - %s, %u domain%s, %s\n\n%s", clock, doms->len, doms->len == 1 ? "" : "s",
		host, text);
	if (!clear)
		g_print("\n");
	fflush(stdout);
	return TRUE;
}

static gboolean
top_on_tick(gpointer user_data)
{
	gboolean *done = user_data;
	*done = TRUE;
	return G_SOURCE_REMOVE;
}

gint
vmbc_cmd_top(VmbcCli *cli, gint argc, gchar **argv)
{
	gint64 iterations = -1;
	gdouble delay = 1.0;
	gboolean clear = !cli->json && isatty(STDOUT_FILENO);
	gint rc = VMBC_EXIT_OK;

	/* options come in pairs: -n N, -d SECONDS */
	for (gint i = 1; i < argc; i += 2) {
		const gchar *value = NULL;
		gchar *end = NULL;
		if ((g_strcmp0(argv[i], "-n") == 0 || g_strcmp0(argv[i], "-d") == 0) &&
		    i + 1 < argc)
			value = argv[i + 1];
		if (value == NULL) {
			gboolean known =
				g_strcmp0(argv[i], "-n") == 0 || g_strcmp0(argv[i], "-d") == 0;
			return vmbc_cli_usage_error(
				"top: %s '%s'\n"
				"usage: vmbc top [-n N] [-d SECONDS]",
				known ? "missing the value of" : "unexpected argument", argv[i]);
		}
		if (argv[i][1] == 'n') {
			iterations = g_ascii_strtoll(value, &end, 10);
			if (*value == '\0' || *end != '\0' || iterations < 1)
				return vmbc_cli_usage_error(
					"top: invalid count '%s' for -n: expected a whole "
					"number of at least 1",
					value);
		} else {
			delay = g_ascii_strtod(value, &end);
			if (*value == '\0' || *end != '\0' || !(delay >= 0.1 && delay <= 3600))
				return vmbc_cli_usage_error("top: invalid delay '%s' for -d: "
							    "expected seconds from 0.1 to 3600",
							    value);
		}
	}

	for (gint64 n = 0; iterations < 0 || n < iterations; n++) {
		gboolean done = FALSE;
		guint tick;
		if (!top_show(cli, clear, &rc))
			return g_cancellable_is_cancelled(cli->cancellable) ? VMBC_EXIT_OK : rc;
		if (iterations > 0 && n + 1 == iterations)
			break;
		tick = g_timeout_add((guint)(delay * 1000), top_on_tick, &done);
		while (!done && !g_cancellable_is_cancelled(cli->cancellable))
			g_main_context_iteration(NULL, TRUE);
		if (!done)
			g_source_remove(tick);
		if (g_cancellable_is_cancelled(cli->cancellable))
			break;
	}
	return VMBC_EXIT_OK;
}
