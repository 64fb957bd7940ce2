/*
 * vmbc.c: main of the vmbc command-line tool. Parses the global options, then
 * runs one command, or the interactive shell when none is given (as virsh).
 *
 * Global options come before the command; the first word that is not an
 * option is the command and everything after it belongs to the command.
 */
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <glib-unix.h>

#include "vmbc-cli.h"

typedef struct {
	const gchar *socket_path;
	gboolean json;
	VmbcUnits units;
	gint command_index; /* argv index of the command, argc if none */
} VmbcOptions;

static gboolean
vmbc_on_sigint(gpointer user_data)
{
	vmbc_cli_interrupt(user_data);
	return G_SOURCE_CONTINUE;
}

static gint
vmbc_unknown_option(const gchar *arg)
{
	return vmbc_cli_usage_error("unknown option '%s' (see 'vmbc --help')", arg);
}

/*
 * Parses the options before the command into @opts. Returns -1 to go on, or
 * the exit code when done (--help, --version) or wrong.
 */
static gint
vmbc_parse_options(gint argc, gchar **argv, VmbcOptions *opts)
{
	gint i;

	for (i = 1; i < argc; i++) {
		const gchar *arg = argv[i];
		const gchar *value = NULL;

		if (g_strcmp0(arg, "--") == 0) {
			i++;
			break;
		}
		if (arg[0] != '-' || arg[1] == '\0')
			break;
		if (g_strcmp0(arg, "--help") == 0) {
			vmbc_cli_print_usage(stdout);
			return VMBC_EXIT_OK;
		}
		if (g_strcmp0(arg, "--version") == 0 || g_strcmp0(arg, "-V") == 0) {
			g_print("vmbc %s\n", VMBC_VERSION);
			return VMBC_EXIT_OK;
		}
		if (g_strcmp0(arg, "--json") == 0) {
			opts->json = TRUE;
			continue;
		}
		if (vmbc_cli_parse_units(arg, &opts->units))
			continue;
		if (g_strcmp0(arg, "-c") == 0 || g_strcmp0(arg, "--connect") == 0)
			value = i + 1 < argc ? argv[++i] : NULL;
		else if (g_str_has_prefix(arg, "--connect="))
			value = arg + strlen("--connect=");
		else if (g_str_has_prefix(arg, "-c"))
			value = arg + 2;
		else
			return vmbc_unknown_option(arg);
		if (value == NULL || *value == '\0')
			return vmbc_cli_usage_error("option '%s' needs a SOCKET path", arg);
		opts->socket_path = value;
	}
	opts->command_index = i;
	return -1;
}

int
main(int argc, char **argv)
{
	g_autoptr(VmbcCli) cli = NULL;
	VmbcOptions opts = {NULL};
	gint rc;
	guint sigint_id;

	setlocale(LC_ALL, "");

	rc = vmbc_parse_options(argc, argv, &opts);
	if (rc >= 0)
		return rc;
	cli = vmbc_cli_new(opts.socket_path);
	cli->json = opts.json;
	cli->units = opts.units;

	if (opts.command_index >= argc)
		return vmbc_shell_run(cli);

	/* Ctrl-C ends "events" and "top" cleanly and interrupts a waiting command */
	sigint_id = g_unix_signal_add(SIGINT, vmbc_on_sigint, cli);
	rc = vmbc_cli_run(cli, argc - opts.command_index, argv + opts.command_index);
	g_source_remove(sigint_id);
	return rc;
}
