/*
 * vmbc-cmd-resetcnt.c: "vmbc resetcnt DOM", zeroes the failcnt and maxheld
 * counters of a domain, or of the host with "host".
 */
#include "vmbc-cli.h"

gint
vmbc_cmd_resetcnt(VmbcCli *cli, gint argc, gchar **argv)
{
	g_autoptr(JsonObject) args = json_object_new();
	g_autoptr(JsonObject) reply = NULL;
	gint rc;

	if (!vmbc_cli_check_args(argv[0], argc, 2, 2))
		return VMBC_EXIT_USAGE;
	json_object_set_string_member(args, "domain", argv[1]);
	reply = vmbc_cli_query(cli, "reset-counters", args, VMBC_CLI_TIMEOUT_MS, &rc);
	if (reply == NULL)
		return rc;
	g_print("%s: counters reset\n", argv[1]);
	return VMBC_EXIT_OK;
}
