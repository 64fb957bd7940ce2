/*
 * vmbc-shell.c: the interactive shell that "vmbc" without a command starts,
 * as virsh does: prompt "vmbc # ", history kept across runs, Tab completion
 * of commands, resources and domain names (asked from vmbcd).
 *
 * readline runs in its callback mode inside the GLib main loop, so that the
 * connection to vmbcd is serviced while the user types (events are read and
 * dropped, a daemon restart is noticed). While a command runs, stdin is not
 * watched: the command iterates the same main context, and readline must not
 * be entered again under it. Typeahead stays in the terminal until the
 * prompt is back. Without a terminal on stdin, lines are read plainly, with
 * no prompt, so that "vmbc < script" works.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib/gstdio.h>
#include <readline/history.h>
#include <readline/readline.h>

#include "vmbc-cli.h"

#define SHELL_PROMPT	    "vmbc # "
#define SHELL_HISTORY_LINES 1000
/* Completion must not hang the terminal when vmbcd is slow. */
#define SHELL_COMPLETION_TIMEOUT_MS 2000

typedef struct {
	VmbcCli *cli;
	gchar *line; /* the line readline handed over, until it ran */
	gboolean got_line;
	gboolean eof;
	gboolean at_prompt; /* readline owns the terminal */
	guint stdin_watch;
} ShellState;

/* readline's callbacks take no user data. */
static ShellState *shell_state;

/* Candidates for the completion generator, set before rl_completion_matches(). */
static GPtrArray *shell_candidates;

static gchar *
shell_history_path(void)
{
	const gchar *state = g_getenv("XDG_STATE_HOME");

	if (state != NULL && g_path_is_absolute(state)) {
		g_autofree gchar *dir = g_build_filename(state, "vmbc", NULL);
		if (g_mkdir_with_parents(dir, 0700) == 0)
			return g_build_filename(dir, "history", NULL);
	}
	return g_build_filename(g_get_home_dir(), ".vmbc_history", NULL);
}

static void
shell_on_line(char *line)
{
	ShellState *st = shell_state;

	/* no prompt until the command ran and printed */
	rl_callback_handler_remove();
	st->at_prompt = FALSE;
	if (line == NULL) {
		st->eof = TRUE;
		g_print("\n");
		return;
	}
	st->line = g_strdup(line);
	st->got_line = TRUE;
	free(line);
}

static gboolean
shell_on_stdin(gint fd, GIOCondition cond, gpointer user_data)
{
	rl_callback_read_char();
	return G_SOURCE_CONTINUE;
}

static void
shell_prompt(ShellState *st)
{
	st->at_prompt = TRUE;
	rl_callback_handler_install(SHELL_PROMPT, shell_on_line);
	st->stdin_watch =
		g_unix_fd_add(STDIN_FILENO, G_IO_IN | G_IO_HUP | G_IO_ERR, shell_on_stdin, st);
}

static void
shell_unwatch_stdin(ShellState *st)
{
	if (st->stdin_watch != 0) {
		g_source_remove(st->stdin_watch);
		st->stdin_watch = 0;
	}
}

/* Ctrl-C: at the prompt drops the line, in a command interrupts it. */
static gboolean
shell_on_sigint(gpointer user_data)
{
	ShellState *st = user_data;

	if (!st->at_prompt) {
		vmbc_cli_interrupt(st->cli);
		return G_SOURCE_CONTINUE;
	}
	rl_callback_sigcleanup();
	rl_replace_line("", 0);
	rl_crlf();
	rl_on_new_line();
	rl_redisplay();
	return G_SOURCE_CONTINUE;
}

static gboolean
shell_on_sigwinch(gpointer user_data)
{
	ShellState *st = user_data;

	if (st->at_prompt)
		rl_resize_terminal();
	return G_SOURCE_CONTINUE;
}

static char *
shell_complete_next(const char *text, int state)
{
	static guint next;

	if (state == 0)
		next = 0;
	while (shell_candidates != NULL && next < shell_candidates->len) {
		const gchar *c = g_ptr_array_index(shell_candidates, next++);
		if (g_str_has_prefix(c, text))
			return strdup(c);
	}
	return NULL;
}

static void
shell_add_domains(ShellState *st, GPtrArray *out)
{
	g_autoptr(JsonNode) ret = NULL;
	JsonArray *domains;
	gboolean at_prompt = st->at_prompt;

	/* the query iterates the main loop: Ctrl-C must not touch readline meanwhile */
	st->at_prompt = FALSE;
	vmbc_cli_begin_command(st->cli);
	ret = vmbc_cli_execute(st->cli, "query-domains", NULL, SHELL_COMPLETION_TIMEOUT_MS, NULL);
	st->at_prompt = at_prompt;
	if (ret == NULL || !JSON_NODE_HOLDS_OBJECT(ret))
		return;
	domains = vmbc_cli_json_array(json_node_get_object(ret), "domains");
	for (guint i = 0; domains != NULL && i < json_array_get_length(domains); i++) {
		JsonNode *node = json_array_get_element(domains, i);
		const gchar *name;
		if (!JSON_NODE_HOLDS_OBJECT(node))
			continue;
		name = vmbc_cli_json_string(json_node_get_object(node), "name", NULL);
		if (name != NULL)
			g_ptr_array_add(out, g_strdup(name));
	}
}

/* Which word of the line the cursor is in, and the first word. */
static guint
shell_word_index(gint start, gchar **first_word)
{
	g_autofree gchar *before = g_strndup(rl_line_buffer, (gsize)start);
	g_auto(GStrv) words = g_strsplit_set(g_strstrip(before), " \t", -1);
	guint n = 0;

	for (guint i = 0; words[i] != NULL; i++) {
		if (*words[i] == '\0')
			continue;
		if (n == 0)
			*first_word = g_strdup(words[i]);
		n++;
	}
	return n;
}

static char **
shell_complete(const char *text, int start, int end)
{
	ShellState *st = shell_state;
	g_autoptr(GPtrArray) candidates = g_ptr_array_new_with_free_func(g_free);
	g_autofree gchar *command = NULL;
	guint word = shell_word_index(start, &command);
	char **matches;

	/* never fall back to file names */
	rl_attempted_completion_over = 1;

	if (word == 0 || (word == 1 && g_strcmp0(command, "help") == 0)) {
		for (const VmbcCommand *c = vmbc_commands; c->name != NULL; c++)
			g_ptr_array_add(candidates, g_strdup(c->name));
		if (word == 0) {
			g_ptr_array_add(candidates, g_strdup("quit"));
			g_ptr_array_add(candidates, g_strdup("exit"));
		}
	} else if (text[0] == '-') {
		g_ptr_array_add(candidates, g_strdup("--json"));
		g_ptr_array_add(candidates, g_strdup("--human"));
		g_ptr_array_add(candidates, g_strdup("--pages"));
		g_ptr_array_add(candidates, g_strdup("--bytes"));
		if (g_strcmp0(command, "setlimit") == 0)
			g_ptr_array_add(candidates, g_strdup("--persist"));
	} else if (word == 1 &&
		   (g_strcmp0(command, "dominfo") == 0 || g_strcmp0(command, "setlimit") == 0 ||
		    g_strcmp0(command, "guarantee") == 0 || g_strcmp0(command, "reclaim") == 0 ||
		    g_strcmp0(command, "resetcnt") == 0 || g_strcmp0(command, "events") == 0)) {
		shell_add_domains(st, candidates);
		if (g_strcmp0(command, "resetcnt") == 0 || g_strcmp0(command, "setlimit") == 0 ||
		    g_strcmp0(command, "dominfo") == 0)
			g_ptr_array_add(candidates, g_strdup("host"));
	} else if (word == 2 && g_strcmp0(command, "setlimit") == 0) {
		for (guint i = 0; vmbc_cli_resources[i] != NULL; i++)
			g_ptr_array_add(candidates, g_strdup(vmbc_cli_resources[i]));
	} else if (word == 3 && g_strcmp0(command, "setlimit") == 0) {
		/* the two words a size can be; sizes themselves are the user's to type */
		g_ptr_array_add(candidates, g_strdup("default"));
		g_ptr_array_add(candidates, g_strdup("unlimited"));
	}

	shell_candidates = candidates;
	matches = rl_completion_matches(text, shell_complete_next);
	shell_candidates = NULL;
	return matches;
}

/* Runs one line; FALSE when the shell should end. */
static gboolean
shell_execute(ShellState *st, const gchar *line, gint *rc)
{
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) argv = NULL;
	g_autofree gchar *text = g_strstrip(g_strdup(line));
	gint argc = 0;

	if (*text == '\0' || *text == '#')
		return TRUE;
	if (!g_shell_parse_argv(text, &argc, &argv, &error)) {
		*rc = vmbc_cli_usage_error("cannot parse the line: %s", error->message);
		return TRUE;
	}
	if (g_strcmp0(argv[0], "quit") == 0 || g_strcmp0(argv[0], "exit") == 0)
		return FALSE;
	*rc = vmbc_cli_run(st->cli, argc, argv);
	/* the terminal echoed ^C: the prompt goes on a line of its own */
	if (g_cancellable_is_cancelled(st->cli->cancellable))
		g_print("\n");
	fflush(stdout);
	return TRUE;
}

/* Without a terminal: lines from stdin, no prompt, no history. */
static gint
shell_run_plain(ShellState *st)
{
	g_autofree gchar *buf = NULL;
	gsize cap = 0;
	gssize len;
	gint rc = VMBC_EXIT_OK;

	while ((len = getline(&buf, &cap, stdin)) >= 0) {
		if (!shell_execute(st, buf, &rc))
			break;
	}
	return rc;
}

static gint
shell_run_readline(ShellState *st)
{
	g_autofree gchar *history = shell_history_path();
	gint rc = VMBC_EXIT_OK;
	gboolean go_on = TRUE;

	rl_readline_name = "vmbc";
	rl_attempted_completion_function = shell_complete;
	/* GLib's signal sources handle SIGINT and SIGWINCH */
	rl_catch_signals = 0;
	rl_catch_sigwinch = 0;
	using_history();
	stifle_history(SHELL_HISTORY_LINES);
	if (read_history(history) != 0 && errno != ENOENT)
		g_debug("cannot read history from %s: %s", history, g_strerror(errno));

	g_print("Welcome to vmbc %s, the interactive shell for vmbcd at %s.\n"
		"Type 'help' for the commands, 'quit' to leave.\n\n",
		VMBC_VERSION, st->cli->socket_path);
	while (go_on) {
		shell_prompt(st);
		while (!st->got_line && !st->eof)
			g_main_context_iteration(NULL, TRUE);
		shell_unwatch_stdin(st);
		if (st->eof)
			break;
		if (*g_strstrip(st->line) != '\0') {
			HIST_ENTRY *last = history_length > 0
						   ? history_get(history_base + history_length - 1)
						   : NULL;
			if (last == NULL || g_strcmp0(last->line, st->line) != 0)
				add_history(st->line);
		}
		go_on = shell_execute(st, st->line, &rc);
		g_clear_pointer(&st->line, g_free);
		st->got_line = FALSE;
	}
	rl_callback_handler_remove();
	if (write_history(history) != 0)
		g_debug("cannot write history to %s: %s", history, g_strerror(errno));
	return VMBC_EXIT_OK;
}

gint
vmbc_shell_run(VmbcCli *cli)
{
	ShellState st = {.cli = cli};
	guint sigint_id;
	guint sigwinch_id;
	gint rc;

	shell_state = &st;
	sigint_id = g_unix_signal_add(SIGINT, shell_on_sigint, &st);
	sigwinch_id = g_unix_signal_add(SIGWINCH, shell_on_sigwinch, &st);
	if (isatty(STDIN_FILENO))
		rc = shell_run_readline(&st);
	else
		rc = shell_run_plain(&st);
	g_source_remove(sigint_id);
	g_source_remove(sigwinch_id);
	shell_state = NULL;
	g_free(st.line);
	return rc;
}
