/*
 * vmbc-cmd-reclaim.c: "vmbc reclaim DOM SIZE", an operator's reclaim: vmbcd
 * inflates the balloon by SIZE and replies when the balloon got there (or
 * refuses, e.g. because of the guarantee), hence the long timeout.
 */
#include "vmbc-cli.h"

gint
vmbc_cmd_reclaim(VmbcCli *cli, gint argc, gchar **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) args = json_object_new();
	g_autoptr(JsonObject) reply = NULL;
	g_autofree gchar *actual = NULL;
	g_autofree gchar *held = NULL;
	gint rc;

	if (!vmbc_cli_check_args(argv[0], argc, 3, 3))
		return VMBC_EXIT_USAGE;
	if (!vmbc_cli_parse_size(argv[2], "SIZE", &error))
		return vmbc_cli_fail(error);

	json_object_set_string_member(args, "domain", argv[1]);
	json_object_set_string_member(args, "size", argv[2]);
	reply = vmbc_cli_query(cli, "reclaim", args, VMBC_CLI_TIMEOUT_RECLAIM_MS, &rc);
	if (reply == NULL)
		return rc;
	actual = vmbc_cli_format_like(cli, vmbc_cli_json_int(reply, "actual", -1), argv[2]);
	held = vmbc_cli_format_like(cli, vmbc_cli_json_int(reply, "held", -1), argv[2]);
	g_print("%s: balloon actual %s, held %s\n", vmbc_cli_json_string(reply, "domain", argv[1]),
		actual, held);
	return VMBC_EXIT_OK;
}
