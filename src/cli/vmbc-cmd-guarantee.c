/*
 * vmbc-cmd-guarantee.c: "vmbc guarantee DOM SIZE", the memory below which
 * vmbcd never inflates a domain's balloon. SIZE is checked here and sent as
 * written, so that "50%" is resolved by the daemon.
 */
#include "vmbc-cli.h"

gint
vmbc_cmd_guarantee(VmbcCli *cli, gint argc, gchar **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) args = json_object_new();
	g_autoptr(JsonObject) reply = NULL;
	g_autofree gchar *g = NULL;
	gint rc;

	if (!vmbc_cli_check_args(argv[0], argc, 3, 3))
		return VMBC_EXIT_USAGE;
	if (!vmbc_cli_parse_size(argv[2], "SIZE", &error))
		return vmbc_cli_fail(error);

	json_object_set_string_member(args, "domain", argv[1]);
	json_object_set_string_member(args, "size", argv[2]);
	reply = vmbc_cli_query(cli, "set-guarantee", args, VMBC_CLI_TIMEOUT_MS, &rc);
	if (reply == NULL)
		return rc;
	g = vmbc_cli_format_like(cli, vmbc_cli_json_int(reply, "guarantee", -1), argv[2]);
	g_print("%s: guarantee %s\n", vmbc_cli_json_string(reply, "domain", argv[1]), g);
	return VMBC_EXIT_OK;
}
