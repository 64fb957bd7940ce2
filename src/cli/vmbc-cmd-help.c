/*
 * vmbc-cmd-help.c: "vmbc help [COMMAND]" and the usage text that --help and
 * the shell's "help" print.
 */
#include <stdio.h>

#include "vmbc-cli.h"

void
vmbc_cli_print_usage(FILE *out)
{
	fprintf(out, "Usage: vmbc [-c SOCKET] [--json] [-h|--pages|--bytes] COMMAND [ARGS...]\n"
		     "       vmbc [-c SOCKET] [--json] [-h|--pages|--bytes]   (interactive shell)\n"
		     "\n"
		     "Shows and sets the memory beancounters that vmbcd keeps for each VM.\n"
		     "\n"
		     "Options:\n"
		     "  -c, --connect SOCKET  vmbcd's control socket (default: $VMBC_SOCKET,\n"
		     "                        else " VMBC_CLI_DEFAULT_SOCKET ")\n"
		     "      --json            print the daemon's replies as JSON\n"
		     "  -h, --human           print sizes like 512M (the default, but for ubc)\n"
		     "      --pages           print sizes as pages of the host page size\n"
		     "      --bytes           print sizes as bytes\n"
		     "      --help            show this help\n"
		     "      --version         show the version\n"
		     "\n"
		     "Commands:\n");
	for (const VmbcCommand *c = vmbc_commands; c->name != NULL; c++) {
		g_autofree gchar *head = g_strdup_printf("%s %s", c->name, c->synopsis);
		fprintf(out, "  %-34s %s\n", head, c->summary);
	}
	fprintf(out, "\n"
		     "Sizes: 512M, 2G, 1000p (pages), 80%% (of the VM's maximum), unlimited.\n"
		     "Exit status: 0 ok, 1 refused or failed, 2 usage error.\n");
}

gint
vmbc_cmd_help(VmbcCli *cli, gint argc, gchar **argv)
{
	const VmbcCommand *c;

	if (!vmbc_cli_check_args(argv[0], argc, 1, 2))
		return VMBC_EXIT_USAGE;
	if (argc == 1) {
		vmbc_cli_print_usage(stdout);
		return VMBC_EXIT_OK;
	}
	c = vmbc_cli_find_command(argv[1]);
	if (c == NULL)
		return vmbc_cli_usage_error("help: unknown command '%s' (see 'vmbc help')",
					    argv[1]);
	g_print("usage: vmbc %s%s%s\n\n  %s\n", c->name, *c->synopsis != '\0' ? " " : "",
		c->synopsis, c->summary);
	if (c->help != NULL) {
		g_auto(GStrv) lines = g_strsplit(c->help, "\n", -1);
		g_print("\n");
		for (guint i = 0; lines[i] != NULL; i++)
			g_print("  %s\n", lines[i]);
	}
	return VMBC_EXIT_OK;
}
