/*
 * vmbc-cmd-list.c: "vmbc list", one line per domain as virsh list does, with
 * the balloon and the physpages account that matter most at a glance.
 */
#include "vmbc-cli.h"

gint
vmbc_cmd_list(VmbcCli *cli, gint argc, gchar **argv)
{
	g_autoptr(JsonObject) reply = NULL;
	g_autoptr(VmbcTable) table = NULL;
	g_autofree gchar *text = NULL;
	JsonArray *domains;
	gint rc;

	if (!vmbc_cli_check_args(argv[0], argc, 1, 1))
		return VMBC_EXIT_USAGE;
	reply = vmbc_cli_query(cli, "query-domains", NULL, VMBC_CLI_TIMEOUT_MS, &rc);
	if (reply == NULL)
		return rc;

	table = vmbc_table_new("Id", VMBC_ALIGN_RIGHT, "Name", VMBC_ALIGN_LEFT, "Balloon",
			       VMBC_ALIGN_LEFT, "Actual", VMBC_ALIGN_RIGHT, "Reclaim",
			       VMBC_ALIGN_LEFT, "Held", VMBC_ALIGN_RIGHT, "Limit", VMBC_ALIGN_RIGHT,
			       "Failcnt", VMBC_ALIGN_RIGHT, NULL);
	domains = vmbc_cli_json_array(reply, "domains");
	for (guint i = 0; domains != NULL && i < json_array_get_length(domains); i++) {
		JsonNode *node = json_array_get_element(domains, i);
		JsonObject *dom;
		JsonObject *phys;
		g_autofree gchar *id = NULL;
		g_autofree gchar *actual = NULL;
		g_autofree gchar *held = NULL;
		g_autofree gchar *limit = NULL;
		g_autofree gchar *failcnt = NULL;

		if (!JSON_NODE_HOLDS_OBJECT(node))
			continue;
		dom = json_node_get_object(node);
		phys = vmbc_cli_find_resource(dom, "physpages");
		id = g_strdup_printf("%" G_GINT64_FORMAT, vmbc_cli_json_int(dom, "id", -1));
		actual = vmbc_cli_format_pages(cli, vmbc_cli_json_int(dom, "actual", -1));
		held = vmbc_cli_format_pages(cli, vmbc_cli_json_int(phys, "held", -1));
		limit = vmbc_cli_format_pages(cli, vmbc_cli_json_int(phys, "limit", -1));
		failcnt = phys != NULL ? g_strdup_printf("%" G_GINT64_FORMAT,
							 vmbc_cli_json_int(phys, "failcnt", 0))
				       : g_strdup("-");
		vmbc_table_add_row(table, (const gchar *const[]){
						  id,
						  vmbc_cli_json_string(dom, "name", "?"),
						  vmbc_cli_json_string(dom, "balloon", "unknown"),
						  actual,
						  vmbc_cli_json_string(dom, "reclaim", "-"),
						  held,
						  limit,
						  failcnt,
					  });
	}
	text = vmbc_table_render(table);
	g_print("%s", text);
	return VMBC_EXIT_OK;
}
