/*
 * vmbc-cli.h: what the verbs of the vmbc command-line tool share.
 *
 * A VmbcCli holds the options of one run (socket, --json, the units) and the
 * connection to vmbcd, opened on first use and reopened after the daemon went
 * away (the interactive shell lives longer than one connection). Helpers here
 * turn daemon replies into tables and sizes, and parse sizes from the command
 * line with messages that name the argument. Every verb is a VmbcCommand in
 * the table of vmbc-cli.c and returns an exit code.
 */
#pragma once

#include <stdio.h>

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "qmp-client.h"

G_BEGIN_DECLS

/* Exit codes of vmbc and of every verb. */
typedef enum {
	VMBC_EXIT_OK = 0,
	VMBC_EXIT_FAILED = 1, /* refused or failed: daemon error, no connection */
	VMBC_EXIT_USAGE = 2,  /* unknown command, wrong arguments, bad size */
} VmbcExit;

/* Reply timeouts: commands that wait for a reclaim get longer. */
#define VMBC_CLI_TIMEOUT_MS	    10000
#define VMBC_CLI_TIMEOUT_RECLAIM_MS 60000

#define VMBC_CLI_DEFAULT_SOCKET "/run/vmbc/vmbcd.sock"

/*
 * How sizes are printed. By default each verb prints sizes people read
 * ("1.5G", "unlimited"), except ubc, which keeps OpenVZ's pages; -h, --pages
 * and --bytes choose for every verb. --json is exact whatever the units.
 */
typedef enum {
	VMBC_UNITS_DEFAULT = 0,
	VMBC_UNITS_HUMAN, /* -h, --human: 512M, 1.5G, unlimited */
	VMBC_UNITS_PAGES, /* --pages: pages of the host page size; unlimited is 2^63-1 */
	VMBC_UNITS_BYTES, /* --bytes: bytes; unlimited is 2^63-1 */
} VmbcUnits;

typedef struct {
	gchar *socket_path;
	gboolean json;
	VmbcUnits units;

	QmpClient *client; /* NULL until the first command that needs the daemon */
	gint64 page_size;  /* from query-version, 0 until asked */

	/* Cancelled by SIGINT; replaced before each command by vmbc_cli_begin_command(). */
	GCancellable *cancellable;
} VmbcCli;

typedef struct {
	const gchar *name;
	const gchar *synopsis; /* arguments, e.g. "DOM RES BARRIER[:LIMIT]" */
	const gchar *summary;  /* one line for the command list */
	const gchar *help;     /* further paragraphs for "help COMMAND", may be NULL */
	/* @argv[0] is the command name; returns a VmbcExit. */
	gint (*run)(VmbcCli *cli, gint argc, gchar **argv);
} VmbcCommand;

/* The resources vmbcd accounts per VM, NULL-terminated, for validation and completion. */
extern const gchar *const vmbc_cli_resources[];

/* The command table, terminated by an entry with name NULL. */
extern const VmbcCommand vmbc_commands[];

/*
 * Parses @arg as a units option (-h, --human, --pages, --bytes) into @units;
 * FALSE if it is none of them.
 */
gboolean vmbc_cli_parse_units(const gchar *arg, VmbcUnits *units);

/*
 * Runs one command line, @argv[0] being the command. --json and the units
 * options may also follow the command; they apply to this command only. Returns a
 * VmbcExit: VMBC_EXIT_USAGE for an unknown command.
 */
gint vmbc_cli_run(VmbcCli *cli, gint argc, gchar **argv);

/* The command called @name, or NULL. */
const VmbcCommand *vmbc_cli_find_command(const gchar *name);

/*
 * A new context for @socket_path (NULL: $VMBC_SOCKET, else the default). Does
 * not connect.
 */
VmbcCli *vmbc_cli_new(const gchar *socket_path);

void vmbc_cli_free(VmbcCli *cli);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbcCli, vmbc_cli_free)

/*
 * Called before each command: gives it a fresh cancellable so that a Ctrl-C
 * during the previous one does not cancel this one.
 */
void vmbc_cli_begin_command(VmbcCli *cli);

/* Called from the SIGINT handler: cancels the command in progress. */
void vmbc_cli_interrupt(VmbcCli *cli);

/*
 * Connects to vmbcd unless already connected. On error the message reads
 * "cannot connect to vmbcd at SOCKET: REASON (is vmbcd running?)".
 */
gboolean vmbc_cli_connect(VmbcCli *cli, GError **error);

/*
 * Runs @command with @arguments (may be NULL, not consumed) and waits at most
 * @timeout_ms for the reply, connecting first if needed. Returns the "return"
 * member, or NULL with the daemon's desc (or the transport error) in @error.
 */
JsonNode *vmbc_cli_execute(VmbcCli *cli, const gchar *command, JsonObject *arguments,
			   guint timeout_ms, GError **error);

/*
 * Runs @command for a verb that prints its reply. Returns the reply object (a
 * new reference) for the verb to render. Returns NULL when there is nothing
 * left to do, with the verb's exit code in @exit_out: after printing the
 * reply as JSON with --json (VMBC_EXIT_OK), or after printing the error.
 */
JsonObject *vmbc_cli_query(VmbcCli *cli, const gchar *command, JsonObject *arguments,
			   guint timeout_ms, gint *exit_out);

/*
 * Prints @error as "vmbc: MESSAGE" on stderr and returns VMBC_EXIT_FAILED, or
 * VMBC_EXIT_USAGE for VMBC_ERROR_INVALID.
 */
gint vmbc_cli_fail(const GError *error);

/* Prints "vmbc: MESSAGE" on stderr and returns VMBC_EXIT_USAGE. */
gint vmbc_cli_usage_error(const gchar *format, ...) G_GNUC_PRINTF(1, 2);

/*
 * Checks that @argc (command name included) is between @min and @max; else
 * prints the command's synopsis and returns FALSE.
 */
gboolean vmbc_cli_check_args(const gchar *command, gint argc, gint min, gint max);

/* The host page size the daemon uses: query-version, falling back to ours. */
gint64 vmbc_cli_page_size(VmbcCli *cli);

/* Prints @node as indented JSON on stdout, with a newline. */
void vmbc_cli_print_json(JsonNode *node);

/*
 * Formats a page count in the units chosen: by default (and with -h) a size
 * like "512M", "1.5G" or "unlimited"; with --pages the number of pages; with
 * --bytes the number of bytes. Negative values (unknown) print as "-".
 */
gchar *vmbc_cli_format_pages(VmbcCli *cli, gint64 pages);

/*
 * As vmbc_cli_format_pages(), but when no units were chosen, in the units of
 * @given, a size as the user wrote it: "1000p" answers in pages ("98304p"),
 * a plain byte count in bytes, "1536M" in M ("1536M", "418.8M"), "2G" in G;
 * "unlimited" and percentages as sizes people read.
 */
gchar *vmbc_cli_format_like(VmbcCli *cli, gint64 pages, const gchar *given);

/*
 * Parses a size argument as vmbc_size_parse() does, with a percentage
 * checked only for its form (the daemon resolves it against the VM's
 * maximum). On error the message names @what:
 * "invalid size '12Q' for LIMIT: unknown unit 'Q' ...".
 */
gboolean vmbc_cli_parse_size(const gchar *text, const gchar *what, GError **error);

/* Typed members of a reply object, with a fallback when missing or of another type. */
gint64 vmbc_cli_json_int(JsonObject *obj, const gchar *member, gint64 fallback);
gboolean vmbc_cli_json_bool(JsonObject *obj, const gchar *member, gboolean fallback);
const gchar *vmbc_cli_json_string(JsonObject *obj, const gchar *member, const gchar *fallback);
JsonArray *vmbc_cli_json_array(JsonObject *obj, const gchar *member);
JsonObject *vmbc_cli_json_object(JsonObject *obj, const gchar *member);

/* The RES object for @resource in a "resources" array, or NULL. */
JsonObject *vmbc_cli_find_resource(JsonObject *bc_or_domain, const gchar *resource);

/*
 * A text table: columns right aligned (numbers) or left aligned (names),
 * each as wide as its widest cell, separated by two spaces.
 */
typedef struct _VmbcTable VmbcTable;

typedef enum {
	VMBC_ALIGN_LEFT,
	VMBC_ALIGN_RIGHT,
} VmbcAlign;

/* Columns as (title, VmbcAlign) pairs, terminated by NULL. */
VmbcTable *vmbc_table_new(const gchar *first_title, ...) G_GNUC_NULL_TERMINATED;

/* Appends a row of as many cells as there are columns (copied). */
void vmbc_table_add_row(VmbcTable *table, const gchar *const *cells);

/* Sets the gap between columns (default 2). */
void vmbc_table_set_gap(VmbcTable *table, guint gap);

/* The table with a header line and one line per row, each ending in '\n'. */
gchar *vmbc_table_render(VmbcTable *table);

void vmbc_table_free(VmbcTable *table);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbcTable, vmbc_table_free)

/* Per-verb entry points, one file each (vmbc-cmd-VERB.c). */
gint vmbc_cmd_list(VmbcCli *cli, gint argc, gchar **argv);
gint vmbc_cmd_ubc(VmbcCli *cli, gint argc, gchar **argv);
gint vmbc_cmd_dominfo(VmbcCli *cli, gint argc, gchar **argv);
gint vmbc_cmd_setlimit(VmbcCli *cli, gint argc, gchar **argv);
gint vmbc_cmd_guarantee(VmbcCli *cli, gint argc, gchar **argv);
gint vmbc_cmd_reclaim(VmbcCli *cli, gint argc, gchar **argv);
gint vmbc_cmd_resetcnt(VmbcCli *cli, gint argc, gchar **argv);
gint vmbc_cmd_events(VmbcCli *cli, gint argc, gchar **argv);
gint vmbc_cmd_top(VmbcCli *cli, gint argc, gchar **argv);
gint vmbc_cmd_help(VmbcCli *cli, gint argc, gchar **argv);

/* Prints the general usage (options and command list) to @out. */
void vmbc_cli_print_usage(FILE *out);

/*
 * The interactive shell (vmbc-shell.c). Returns 0 when run on a terminal;
 * with a script on stdin, the exit code of the last command.
 */
gint vmbc_shell_run(VmbcCli *cli);

G_END_DECLS
