/*
 * vmbc-cmd-ubc.c: "vmbc ubc", the beancounters as /proc/user_beancounters
 * printed them (Version 2.5), so that scripts written for OpenVZ read them.
 *
 * Each beancounter's uid (its id, the host is 0) is printed with a colon on
 * its first resource row only, as the kernel did, and the VM's name after
 * failcnt on that row: the seven columns stay where OpenVZ's scripts read
 * them. Values are pages unless units were asked for (-h, --bytes).
 */
#include "vmbc-cli.h"

static const gchar *const ubc_fields[] = {"held", "maxheld", "barrier", "limit", "failcnt"};

static void
ubc_add_rows(VmbcCli *cli, VmbcTable *table, JsonObject *bc)
{
	JsonArray *resources = vmbc_cli_json_array(bc, "resources");
	g_autofree gchar *uid =
		g_strdup_printf("%" G_GINT64_FORMAT ":", vmbc_cli_json_int(bc, "id", -1));
	gboolean first = TRUE;

	if (resources == NULL)
		return;
	for (guint i = 0; i < json_array_get_length(resources); i++) {
		JsonNode *node = json_array_get_element(resources, i);
		JsonObject *res;
		gchar *cells[8] = {NULL};

		if (!JSON_NODE_HOLDS_OBJECT(node))
			continue;
		res = json_node_get_object(node);
		cells[0] = g_strdup(first ? uid : "");
		cells[1] = g_strdup(vmbc_cli_json_string(res, "resource", "?"));
		for (guint f = 0; f < G_N_ELEMENTS(ubc_fields); f++) {
			gint64 v = vmbc_cli_json_int(res, ubc_fields[f], -1);
			/* failcnt is a count, never a size */
			if (f == G_N_ELEMENTS(ubc_fields) - 1)
				cells[2 + f] = g_strdup_printf("%" G_GINT64_FORMAT, v);
			else
				cells[2 + f] = vmbc_cli_format_pages(cli, v);
		}
		cells[7] = g_strdup(first ? vmbc_cli_json_string(bc, "name", "") : "");
		vmbc_table_add_row(table, (const gchar *const *)cells);
		for (guint c = 0; c < G_N_ELEMENTS(cells); c++)
			g_clear_pointer(&cells[c], g_free);
		first = FALSE;
	}
}

gint
vmbc_cmd_ubc(VmbcCli *cli, gint argc, gchar **argv)
{
	g_autoptr(JsonObject) reply = NULL;
	g_autoptr(VmbcTable) table = NULL;
	g_autofree gchar *text = NULL;
	JsonArray *bcs;
	gint rc;

	if (!vmbc_cli_check_args(argv[0], argc, 1, 1))
		return VMBC_EXIT_USAGE;
	reply = vmbc_cli_query(cli, "query-beancounters", NULL, VMBC_CLI_TIMEOUT_MS, &rc);
	if (reply == NULL)
		return rc;
	if (vmbc_cli_json_int(reply, "page-size", 0) > 0)
		cli->page_size = vmbc_cli_json_int(reply, "page-size", 0);

	/* OpenVZ's table is in pages: sizes only when asked for */
	if (cli->units == VMBC_UNITS_DEFAULT)
		cli->units = VMBC_UNITS_PAGES;
	table = vmbc_table_new("uid", VMBC_ALIGN_RIGHT, "resource", VMBC_ALIGN_LEFT, "held",
			       VMBC_ALIGN_RIGHT, "maxheld", VMBC_ALIGN_RIGHT, "barrier",
			       VMBC_ALIGN_RIGHT, "limit", VMBC_ALIGN_RIGHT, "failcnt",
			       VMBC_ALIGN_RIGHT, "name", VMBC_ALIGN_LEFT, NULL);
	bcs = vmbc_cli_json_array(reply, "beancounters");
	for (guint i = 0; bcs != NULL && i < json_array_get_length(bcs); i++) {
		JsonNode *node = json_array_get_element(bcs, i);
		if (JSON_NODE_HOLDS_OBJECT(node))
			ubc_add_rows(cli, table, json_node_get_object(node));
	}
	text = vmbc_table_render(table);
	g_print("Version: 2.5\n%s", text);
	return VMBC_EXIT_OK;
}
