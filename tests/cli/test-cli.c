/*
 * test-cli.c: runs the vmbc binary against a fake control socket.
 *
 * The fake (fake-vmbcd.c) lives in this process and is served by the same
 * main context that waits for the vmbc child, so every test is one process
 * plus the child, and the child is always reaped. The binary comes from
 * $VMBC_CLI (meson sets it).
 */
#include <signal.h>
#include <string.h>

#include <glib/gstdio.h>

#include "fake-vmbcd.h"

typedef struct {
	gchar *tmpdir;
	gchar *socket_path;
	FakeVmbcd *fake;
} Fixture;

typedef struct {
	gint status;
	gchar *out;
	gchar *err;
} Run;

static void
run_clear(Run *run)
{
	g_clear_pointer(&run->out, g_free);
	g_clear_pointer(&run->err, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Run, run_clear)

static void
fixture_setup(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	fx->tmpdir = g_dir_make_tmp("vmbc-cli-XXXXXX", &error);
	g_assert_no_error(error);
	fx->socket_path = g_build_filename(fx->tmpdir, "vmbcd.sock", NULL);
	fx->fake = fake_vmbcd_new(NULL);
	fake_vmbcd_listen(fx->fake, fx->socket_path, &error);
	g_assert_no_error(error);
}

static void
fixture_teardown(Fixture *fx, gconstpointer data)
{
	g_autoptr(GDir) dir = NULL;
	const gchar *name;

	g_clear_pointer(&fx->fake, fake_vmbcd_free);
	dir = g_dir_open(fx->tmpdir, 0, NULL);
	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *path = g_build_filename(fx->tmpdir, name, NULL);
		g_unlink(path);
	}
	g_rmdir(fx->tmpdir);
	g_free(fx->tmpdir);
	g_free(fx->socket_path);
}

typedef struct {
	gboolean done;
	gchar *out;
	gchar *err;
	GError *error;
} Wait;

static void
on_communicated(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Wait *w = user_data;

	g_subprocess_communicate_utf8_finish(G_SUBPROCESS(source), res, &w->out, &w->err,
					     &w->error);
	w->done = TRUE;
}

static gboolean
on_send_sigint(gpointer user_data)
{
	g_subprocess_send_signal(user_data, SIGINT);
	return G_SOURCE_REMOVE;
}

/*
 * Runs vmbc with @argv (no program name), @input on stdin if not NULL, and
 * SIGINT after @sigint_ms if > 0; the fake is served meanwhile.
 */
static void
run_vmbc_full(Run *run, const gchar *const *argv, const gchar *input, guint sigint_ms,
	      const gchar *socket_env)
{
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GPtrArray) args = g_ptr_array_new();
	g_autoptr(GError) error = NULL;
	const gchar *bin = g_getenv("VMBC_CLI");
	Wait w = {FALSE};
	guint timer = 0;

	g_assert_nonnull(bin);
	g_ptr_array_add(args, (gpointer)bin);
	for (guint i = 0; argv[i] != NULL; i++)
		g_ptr_array_add(args, (gpointer)argv[i]);
	g_ptr_array_add(args, NULL);

	launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE |
					     G_SUBPROCESS_FLAGS_STDERR_PIPE |
					     G_SUBPROCESS_FLAGS_STDIN_PIPE);
	if (socket_env != NULL)
		g_subprocess_launcher_setenv(launcher, "VMBC_SOCKET", socket_env, TRUE);
	else
		g_subprocess_launcher_unsetenv(launcher, "VMBC_SOCKET");
	g_subprocess_launcher_setenv(launcher, "LC_ALL", "C", TRUE);
	proc = g_subprocess_launcher_spawnv(launcher, (const gchar *const *)args->pdata, &error);
	g_assert_no_error(error);
	g_subprocess_communicate_utf8_async(proc, input != NULL ? input : "", NULL, on_communicated,
					    &w);
	if (sigint_ms > 0)
		timer = g_timeout_add(sigint_ms, on_send_sigint, proc);
	while (!w.done)
		g_main_context_iteration(NULL, TRUE);
	g_assert_no_error(w.error);
	/* communicate ends at EOF on both pipes; the exit follows */
	g_subprocess_wait(proc, NULL, &error);
	g_assert_no_error(error);
	if (timer != 0 && g_main_context_find_source_by_id(NULL, timer) != NULL)
		g_source_remove(timer);
	g_assert_true(g_subprocess_get_if_exited(proc));
	run->status = g_subprocess_get_exit_status(proc);
	run->out = w.out;
	run->err = w.err;
	if (g_test_verbose())
		g_printerr("status %d\nstdout:\n%s\nstderr:\n%s\n", run->status, run->out,
			   run->err);
}

/* vmbc -c SOCKET ARGS... */
static void run_vmbc(Fixture *fx, Run *run, const gchar *first, ...) G_GNUC_NULL_TERMINATED;

static void
run_vmbc(Fixture *fx, Run *run, const gchar *first, ...)
{
	g_autoptr(GPtrArray) args = g_ptr_array_new();
	va_list ap;

	g_ptr_array_add(args, (gpointer) "-c");
	g_ptr_array_add(args, fx->socket_path);
	va_start(ap, first);
	for (const gchar *a = first; a != NULL; a = va_arg(ap, const gchar *))
		g_ptr_array_add(args, (gpointer)a);
	va_end(ap);
	g_ptr_array_add(args, NULL);
	run_vmbc_full(run, (const gchar *const *)args->pdata, NULL, 0, NULL);
}

static void
test_help(Fixture *fx, gconstpointer data)
{
	g_auto(Run) run = {0};
	g_auto(Run) run2 = {0};
	g_auto(Run) run3 = {0};
	g_auto(Run) run4 = {0};

	run_vmbc_full(&run, (const gchar *const[]){"--help", NULL}, NULL, 0, NULL);
	g_assert_cmpint(run.status, ==, 0);
	g_assert_true(g_str_has_prefix(run.out, "Usage: vmbc"));
	for (const gchar *const *c =
		     (const gchar *const[]){"list", "ubc", "dominfo", "setlimit", "guarantee",
					    "reclaim", "resetcnt", "events", "top", "help", NULL};
	     *c != NULL; c++) {
		g_autofree gchar *line = g_strdup_printf("\n  %s ", *c);
		g_assert_nonnull(strstr(run.out, line));
	}

	run_vmbc(fx, &run2, "help", "setlimit", NULL);
	g_assert_cmpint(run2.status, ==, 0);
	g_assert_nonnull(strstr(
		run2.out, "usage: vmbc setlimit DOM RES BARRIER[:LIMIT]|default [--persist]"));

	run_vmbc(fx, &run3, "help", "frobnicate", NULL);
	g_assert_cmpint(run3.status, ==, 2);
	g_assert_nonnull(strstr(run3.err, "'frobnicate'"));

	run_vmbc_full(&run4, (const gchar *const[]){"--version", NULL}, NULL, 0, NULL);
	g_assert_cmpint(run4.status, ==, 0);
	g_assert_true(g_str_has_prefix(run4.out, "vmbc "));
}

static void
test_usage(Fixture *fx, gconstpointer data)
{
	g_auto(Run) unknown = {0};
	g_auto(Run) count = {0};
	g_auto(Run) option = {0};
	g_auto(Run) res = {0};
	g_auto(Run) top = {0};

	run_vmbc(fx, &unknown, "frobnicate", NULL);
	g_assert_cmpint(unknown.status, ==, 2);
	g_assert_nonnull(strstr(unknown.err, "unknown command 'frobnicate'"));

	run_vmbc(fx, &count, "dominfo", NULL);
	g_assert_cmpint(count.status, ==, 2);
	g_assert_nonnull(strstr(count.err, "usage: vmbc dominfo DOM"));

	run_vmbc_full(&option, (const gchar *const[]){"--frob", "list", NULL}, NULL, 0, NULL);
	g_assert_cmpint(option.status, ==, 2);
	g_assert_nonnull(strstr(option.err, "'--frob'"));

	run_vmbc(fx, &res, "setlimit", "web1", "rsspages", "1G", NULL);
	g_assert_cmpint(res.status, ==, 2);
	g_assert_nonnull(strstr(res.err, "unknown resource 'rsspages'"));

	run_vmbc(fx, &top, "top", "-n", "zero", NULL);
	g_assert_cmpint(top.status, ==, 2);
	g_assert_nonnull(strstr(top.err, "'zero'"));

	/* nothing reached the daemon */
	g_assert_cmpuint(fake_vmbcd_count(fx->fake, "set-limit"), ==, 0);
	g_assert_cmpuint(fake_vmbcd_count(fx->fake, "query-domain"), ==, 0);
}

/* Every line of @text as long as the first: right aligned columns line up. */
static void
assert_lines_aligned(gchar **lines)
{
	gsize width = strlen(lines[0]);

	for (guint i = 1; lines[i] != NULL && *lines[i] != '\0'; i++)
		g_assert_cmpuint(strlen(lines[i]), ==, width);
}

/*
 * The ubc table: the right aligned columns up to failcnt end at the same place
 * in every line, and a name follows only the rows that have a uid.
 */
static void
assert_ubc_aligned(gchar **lines)
{
	gsize end = (gsize)(strstr(lines[0], "failcnt") - lines[0]) + strlen("failcnt");

	for (guint i = 1; lines[i] != NULL && *lines[i] != '\0'; i++) {
		gboolean has_uid = strchr(lines[i], ':') != NULL;
		g_assert_cmpuint(strlen(lines[i]), >=, end);
		g_assert_cmpint(lines[i][end - 1], !=, ' ');
		if (has_uid)
			g_assert_cmpint(lines[i][end], ==, ' ');
		else
			g_assert_cmpint(lines[i][end], ==, '\0');
	}
}

static void
test_ubc(Fixture *fx, gconstpointer data)
{
	g_auto(Run) run = {0};
	g_auto(GStrv) lines = NULL;
	g_auto(GStrv) header = NULL;
	gsize held_end;
	g_autofree gchar *header_line = NULL;
	g_autofree gchar *host_line = NULL;

	run_vmbc(fx, &run, "ubc", NULL);
	g_assert_cmpint(run.status, ==, 0);
	g_assert_cmpstr(run.err, ==, "");
	lines = g_strsplit(run.out, "\n", -1);
	g_assert_cmpstr(lines[0], ==, "Version: 2.5");
	header_line = g_strstrip(g_strdup(lines[1]));
	header = g_strsplit_set(header_line, " ", -1);
	{
		/* the header words, whatever the padding */
		g_autofree gchar *joined = NULL;
		g_autoptr(GPtrArray) words = g_ptr_array_new();
		for (guint i = 0; header[i] != NULL; i++) {
			if (*header[i] != '\0')
				g_ptr_array_add(words, header[i]);
		}
		g_ptr_array_add(words, NULL);
		joined = g_strjoinv(" ", (gchar **)words->pdata);
		g_assert_cmpstr(joined, ==, "uid resource held maxheld barrier limit failcnt name");
	}
	/* header + host (1) + web1 (3) + db2 (3) */
	g_assert_cmpuint(g_strv_length(lines), ==, 2 + 7 + 1);
	assert_ubc_aligned(lines + 1);
	host_line = g_strchug(g_strdup(lines[2]));
	g_assert_true(g_str_has_prefix(host_line, "0:  physpages"));
	g_assert_nonnull(strstr(lines[2], "9223372036854775807"));
	g_assert_nonnull(strstr(lines[3], "1:  physpages"));
	g_assert_nonnull(strstr(lines[4], "vmguarpages"));
	g_assert_null(strstr(lines[4], ":"));
	/* the held column ends at the same place in every row */
	held_end = (gsize)(strstr(lines[1], "held") - lines[1]) + strlen("held");
	g_assert_cmpint(lines[3][held_end - 1], ==, '4'); /* 98304 */
	g_assert_cmpint(lines[3][held_end], ==, ' ');
	{
		g_autoptr(GRegex) re = g_regex_new("^ +1: +physpages +98304 +131072 +131072 "
						   "+131072 +3  web1$",
						   0, 0, NULL);
		g_autoptr(GRegex) host = g_regex_new(" +0$", 0, 0, NULL);
		g_assert_true(g_regex_match(re, lines[3], 0, NULL));
		g_assert_true(g_str_has_suffix(lines[2], "  host"));
		g_assert_true(g_str_has_suffix(lines[6], "  db2"));
		/* the name only where the uid is */
		g_assert_true(g_regex_match(host, lines[4], 0, NULL));
	}
}

static void
test_ubc_bytes(Fixture *fx, gconstpointer data)
{
	g_auto(Run) run = {0};
	g_auto(GStrv) lines = NULL;

	run_vmbc(fx, &run, "ubc", "--bytes", NULL);
	g_assert_cmpint(run.status, ==, 0);
	lines = g_strsplit(run.out, "\n", -1);
	/* web1 physpages: held 98304 pages of 4096 bytes */
	g_assert_nonnull(strstr(lines[3], " 402653184 "));
	g_assert_nonnull(strstr(lines[3], " 536870912 "));
	assert_ubc_aligned(lines + 1);
}

static void
test_ubc_human(Fixture *fx, gconstpointer data)
{
	g_auto(Run) run = {0};
	g_auto(GStrv) lines = NULL;

	run_vmbc(fx, &run, "-h", "ubc", NULL);
	g_assert_cmpint(run.status, ==, 0);
	lines = g_strsplit(run.out, "\n", -1);
	g_assert_cmpstr(lines[0], ==, "Version: 2.5");
	assert_ubc_aligned(lines + 1);
	g_assert_true(g_str_has_suffix(lines[3], "  web1"));
	g_assert_nonnull(strstr(lines[2], "unlimited"));
	g_assert_null(strstr(run.out, "9223372036854775807"));
	/* web1 physpages: held 384M, barrier = limit = 512M */
	g_assert_nonnull(strstr(lines[3], "384M"));
	g_assert_nonnull(strstr(lines[3], "512M"));
}

static void
test_json(Fixture *fx, gconstpointer data)
{
	g_auto(Run) run = {0};
	g_auto(Run) run2 = {0};
	g_autoptr(JsonNode) got = NULL;
	g_autoptr(JsonNode) want = NULL;
	g_autoptr(JsonNode) got2 = NULL;
	g_autoptr(JsonNode) want2 = NULL;
	g_autoptr(GError) error = NULL;

	run_vmbc(fx, &run, "--json", "ubc", NULL);
	g_assert_cmpint(run.status, ==, 0);
	got = json_from_string(run.out, &error);
	g_assert_no_error(error);
	want = json_from_string(fake_vmbcd_beancounters, &error);
	g_assert_no_error(error);
	g_assert_true(json_node_equal(got, want));
	/* pretty: more than one line */
	{
		g_auto(GStrv) lines = g_strsplit(run.out, "\n", 3);
		g_assert_cmpuint(g_strv_length(lines), ==, 3);
	}

	/* --json after the command applies to it */
	run_vmbc(fx, &run2, "list", "--json", NULL);
	g_assert_cmpint(run2.status, ==, 0);
	got2 = json_from_string(run2.out, &error);
	g_assert_no_error(error);
	want2 = json_from_string(fake_vmbcd_domains, &error);
	g_assert_no_error(error);
	g_assert_true(json_node_equal(got2, want2));
}

static void
test_list(Fixture *fx, gconstpointer data)
{
	g_auto(Run) run = {0};
	g_auto(Run) pages = {0};
	g_auto(Run) bytes = {0};
	g_auto(GStrv) lines = NULL;
	g_autoptr(GRegex) web1 =
		g_regex_new("^ +1  web1 +ok +768M +idle +384M +512M +3$", 0, 0, NULL);
	g_autoptr(GRegex) db2 =
		g_regex_new("^ +2  db2 +no-driver +- +failed +781.2M +unlimited +0$", 0, 0, NULL);

	/* sizes people read by default */
	run_vmbc(fx, &run, "list", NULL);
	g_assert_cmpint(run.status, ==, 0);
	lines = g_strsplit(run.out, "\n", -1);
	g_assert_cmpuint(g_strv_length(lines), ==, 4);
	g_assert_nonnull(strstr(lines[0], "Id"));
	g_assert_nonnull(strstr(lines[0], "Failcnt"));
	g_assert_true(g_regex_match(web1, lines[1], 0, NULL));
	g_assert_true(g_regex_match(db2, lines[2], 0, NULL));
	g_assert_null(strstr(run.out, "9223372036854775807"));
	assert_lines_aligned(lines);

	/* numbers on request */
	run_vmbc(fx, &pages, "list", "--pages", NULL);
	g_assert_cmpint(pages.status, ==, 0);
	g_assert_nonnull(strstr(pages.out, " 196608 "));
	g_assert_nonnull(strstr(pages.out, " 9223372036854775807 "));
	run_vmbc(fx, &bytes, "--bytes", "list", NULL);
	g_assert_cmpint(bytes.status, ==, 0);
	g_assert_nonnull(strstr(bytes.out, " 805306368 "));
	g_assert_nonnull(strstr(bytes.out, " 402653184 "));
}

static void
test_dominfo(Fixture *fx, gconstpointer data)
{
	g_auto(Run) run = {0};
	g_auto(Run) db2 = {0};
	g_auto(Run) missing = {0};

	run_vmbc(fx, &run, "-h", "dominfo", "web1", NULL);
	g_assert_cmpint(run.status, ==, 0);
	g_assert_cmpstr(fake_vmbcd_last_arguments(fx->fake, "query-domain"), ==,
			"{\"domain\":\"web1\"}");
	for (const gchar *const *l = (const gchar *const[]){"Name:",
							    "web1",
							    "Backend:",
							    "qmp",
							    "Pid:",
							    "4242",
							    "Max memory:",
							    "1G",
							    "Balloon actual:",
							    "768M",
							    "Guarantee:",
							    "128M",
							    "Free page reporting:  on",
							    "Balloon driver:",
							    "Reclaim state:",
							    "idle",
							    "physpages:",
							    "held 384M",
							    "failcnt 3",
							    "vmguarpages:",
							    "limit unlimited",
							    "vmmpages:",
							    "Guest available:",
							    "Guest stats updated:",
							    NULL};
	     *l != NULL; l++) {
		if (strstr(run.out, *l) == NULL)
			g_printerr("'%s' missing in:\n%s", *l, run.out);
		g_assert_nonnull(strstr(run.out, *l));
	}

	run_vmbc(fx, &db2, "dominfo", "db2", NULL);
	g_assert_cmpint(db2.status, ==, 0);
	g_assert_nonnull(strstr(db2.out, "Free page reporting:  unknown"));
	g_assert_nonnull(strstr(db2.out, "Balloon actual:       unknown"));
	g_assert_nonnull(strstr(db2.out, "Guest stats updated:  never"));

	run_vmbc(fx, &missing, "dominfo", "web9", NULL);
	g_assert_cmpint(missing.status, ==, 1);
	g_assert_cmpstr(missing.err, ==, "vmbc: no domain named 'web9'\n");
}

static void
test_setlimit_bad_size(Fixture *fx, gconstpointer data)
{
	g_auto(Run) run = {0};
	g_auto(Run) order = {0};
	g_auto(Run) pct = {0};
	g_auto(Run) persist = {0};

	run_vmbc(fx, &run, "setlimit", "web1", "physpages", "1G:12Q", NULL);
	g_assert_cmpint(run.status, ==, 2);
	g_assert_true(g_str_has_prefix(run.err, "vmbc: invalid size '12Q' for LIMIT: "
						"unknown unit 'Q'"));

	run_vmbc(fx, &order, "setlimit", "web1", "physpages", "2G:1G", NULL);
	g_assert_cmpint(order.status, ==, 2);
	g_assert_nonnull(strstr(order.err, "barrier 2G is above limit 1G"));

	run_vmbc(fx, &pct, "setlimit", "web1", "physpages", "150%", NULL);
	g_assert_cmpint(pct.status, ==, 2);
	g_assert_nonnull(strstr(pct.err, "'150%'"));

	/* default forgets what was set at run time: there is nothing for --persist to keep */
	run_vmbc(fx, &persist, "setlimit", "web1", "physpages", "default", "--persist", NULL);
	g_assert_cmpint(persist.status, ==, 2);
	g_assert_nonnull(strstr(persist.err, "'default' forgets the limits set at run time"));

	g_assert_cmpuint(fake_vmbcd_count(fx->fake, "set-limit"), ==, 0);
	g_assert_cmpuint(fake_vmbcd_count(fx->fake, "reset-limit"), ==, 0);
}

static void
test_setlimit(Fixture *fx, gconstpointer data)
{
	g_auto(Run) run = {0};
	g_auto(Run) single = {0};
	g_auto(Run) in_pages = {0};
	g_auto(Run) in_bytes = {0};
	g_auto(Run) in_g = {0};
	g_auto(Run) forced = {0};
	g_auto(Run) persist = {0};

	run_vmbc(fx, &run, "setlimit", "web1", "physpages", "50%:600M", NULL);
	g_assert_cmpint(run.status, ==, 0);
	g_assert_cmpstr(fake_vmbcd_last_arguments(fx->fake, "set-limit"), ==,
			"{\"domain\":\"web1\",\"resource\":\"physpages\",\"barrier\":\"50%\","
			"\"limit\":\"600M\"}");
	/* answered in the units given: a percentage as the size it came to */
	g_assert_cmpstr(run.out, ==,
			"web1 physpages: barrier 512M, limit 600M (held 384M, failcnt 3)\n");

	run_vmbc(fx, &in_pages, "setlimit", "web1", "physpages", "1000p:2000p", NULL);
	g_assert_cmpint(in_pages.status, ==, 0);
	g_assert_cmpstr(in_pages.out, ==,
			"web1 physpages: barrier 1000p, limit 2000p (held 98304p, failcnt 3)\n");

	run_vmbc(fx, &in_bytes, "setlimit", "web1", "physpages", "1073741824", NULL);
	g_assert_cmpint(in_bytes.status, ==, 0);
	g_assert_cmpstr(in_bytes.out, ==,
			"web1 physpages: barrier 1073741824, limit 1073741824 (held 402653184, "
			"failcnt 3)\n");

	run_vmbc(fx, &in_g, "setlimit", "web1", "physpages", "1536M:2G", NULL);
	g_assert_cmpint(in_g.status, ==, 0);
	g_assert_cmpstr(in_g.out, ==,
			"web1 physpages: barrier 1536M, limit 2G (held 384M, failcnt 3)\n");

	run_vmbc(fx, &forced, "setlimit", "--pages", "web1", "physpages", "1536M:2G", NULL);
	g_assert_cmpint(forced.status, ==, 0);
	g_assert_cmpstr(forced.out, ==,
			"web1 physpages: barrier 393216, limit 524288 (held 98304, failcnt 3)\n");

	run_vmbc(fx, &persist, "setlimit", "web1", "physpages", "1G", "--persist", NULL);
	g_assert_cmpint(persist.status, ==, 0);
	g_assert_cmpstr(fake_vmbcd_last_arguments(fx->fake, "set-limit"), ==,
			"{\"domain\":\"web1\",\"resource\":\"physpages\",\"barrier\":\"1G\","
			"\"limit\":\"1G\",\"persist\":true}");
	g_assert_cmpstr(persist.out, ==,
			"web1 physpages: barrier 1G, limit 1G (held 384M, failcnt 3), kept in the "
			"domain's metadata\n");

	run_vmbc(fx, &single, "-h", "setlimit", "web1", "vmmpages", "unlimited", NULL);
	g_assert_cmpint(single.status, ==, 0);
	g_assert_cmpstr(fake_vmbcd_last_arguments(fx->fake, "set-limit"), ==,
			"{\"domain\":\"web1\",\"resource\":\"vmmpages\",\"barrier\":\"unlimited\","
			"\"limit\":\"unlimited\"}");
	g_assert_cmpstr(
		single.out, ==,
		"web1 vmmpages: barrier unlimited, limit unlimited (held 384M, failcnt 3)\n");
}

static void
test_error_reply(Fixture *fx, gconstpointer data)
{
	static const gchar desc[] = "cannot bring 'web1' under its physpages limit 256M: held "
				    "400M, and the guarantee 512M keeps the balloon from going "
				    "lower (guest size 512M)";
	g_auto(Run) run = {0};
	g_auto(Run) denied = {0};

	fake_vmbcd_set_error(fx->fake, "set-limit", desc);
	run_vmbc(fx, &run, "setlimit", "web1", "physpages", "256M", NULL);
	g_assert_cmpint(run.status, ==, 1);
	g_assert_cmpstr(run.out, ==, "");
	g_assert_true(g_str_has_prefix(run.err, "vmbc: "));
	g_assert_nonnull(strstr(run.err, desc));
	g_assert_null(strstr(run.err, "QMP"));

	fake_vmbcd_set_error(fx->fake, "reset-counters",
			     "permission denied: reset-counters needs root or group vmbc");
	run_vmbc(fx, &denied, "--json", "resetcnt", "web1", NULL);
	g_assert_cmpint(denied.status, ==, 1);
	g_assert_cmpstr(denied.err, ==,
			"vmbc: permission denied: reset-counters needs root or group vmbc\n");
}

static void
test_changes(Fixture *fx, gconstpointer data)
{
	g_auto(Run) guarantee = {0};
	g_auto(Run) reclaim = {0};
	g_auto(Run) reset = {0};
	g_auto(Run) host = {0};
	g_auto(Run) bad = {0};

	run_vmbc(fx, &guarantee, "-h", "guarantee", "web1", "25%", NULL);
	g_assert_cmpint(guarantee.status, ==, 0);
	g_assert_cmpstr(fake_vmbcd_last_arguments(fx->fake, "set-guarantee"), ==,
			"{\"domain\":\"web1\",\"size\":\"25%\"}");
	g_assert_cmpstr(guarantee.out, ==, "web1: guarantee 256M\n");

	run_vmbc(fx, &reclaim, "reclaim", "web1", "256M", NULL);
	g_assert_cmpint(reclaim.status, ==, 0);
	g_assert_cmpstr(fake_vmbcd_last_arguments(fx->fake, "reclaim"), ==,
			"{\"domain\":\"web1\",\"size\":\"256M\"}");
	g_assert_cmpstr(reclaim.out, ==, "web1: balloon actual 768M, held 384M\n");

	run_vmbc(fx, &reset, "resetcnt", "db2", NULL);
	g_assert_cmpint(reset.status, ==, 0);
	g_assert_cmpstr(reset.out, ==, "db2: counters reset\n");

	run_vmbc(fx, &host, "resetcnt", "host", NULL);
	g_assert_cmpint(host.status, ==, 0);
	g_assert_cmpstr(fake_vmbcd_last_arguments(fx->fake, "reset-counters"), ==,
			"{\"domain\":\"host\"}");

	run_vmbc(fx, &bad, "reclaim", "web1", "-5M", NULL);
	g_assert_cmpint(bad.status, ==, 2);
	g_assert_nonnull(strstr(bad.err, "invalid size '-5M' for SIZE"));
	g_assert_cmpuint(fake_vmbcd_count(fx->fake, "reclaim"), ==, 1);
}

static void
test_no_socket(Fixture *fx, gconstpointer data)
{
	g_auto(Run) run = {0};
	g_auto(Run) env = {0};
	g_autofree gchar *missing = g_build_filename(fx->tmpdir, "missing.sock", NULL);
	g_autofree gchar *want = g_strdup_printf("vmbc: cannot connect to vmbcd at %s: No such "
						 "file or directory (is vmbcd running?)\n",
						 missing);

	run_vmbc_full(&run, (const gchar *const[]){"-c", missing, "list", NULL}, NULL, 0, NULL);
	g_assert_cmpint(run.status, ==, 1);
	g_assert_cmpstr(run.err, ==, want);
	g_assert_cmpstr(run.out, ==, "");

	/* $VMBC_SOCKET is the default */
	run_vmbc_full(&env, (const gchar *const[]){"list", NULL}, NULL, 0, missing);
	g_assert_cmpint(env.status, ==, 1);
	g_assert_cmpstr(env.err, ==, want);
}

static void
test_env_socket(Fixture *fx, gconstpointer data)
{
	g_auto(Run) run = {0};

	run_vmbc_full(&run, (const gchar *const[]){"list", NULL}, NULL, 0, fx->socket_path);
	g_assert_cmpint(run.status, ==, 0);
	g_assert_nonnull(strstr(run.out, "web1"));
}

static void
test_not_vmbcd(Fixture *fx, gconstpointer data)
{
	g_autoptr(FakeVmbcd) qemu = fake_vmbcd_new("{\"version\": {\"qemu\": {\"major\": 7, "
						   "\"minor\": 2, \"micro\": 0}}, "
						   "\"capabilities\": []}");
	g_autofree gchar *path = g_build_filename(fx->tmpdir, "qemu.qmp", NULL);
	g_autoptr(GError) error = NULL;
	g_auto(Run) run = {0};

	fake_vmbcd_listen(qemu, path, &error);
	g_assert_no_error(error);
	run_vmbc_full(&run, (const gchar *const[]){"-c", path, "ubc", NULL}, NULL, 0, NULL);
	g_assert_cmpint(run.status, ==, 1);
	g_assert_nonnull(strstr(run.err, "is not vmbcd's control socket"));
}

static const gchar *const test_events_list[] = {
	"{\"event\": \"VMBC_LIMIT_HIT\", \"data\": {\"domain\": \"web1\", \"resource\": "
	"\"physpages\", \"held\": 131100, \"barrier\": 131072, \"limit\": 131072, \"target\": "
	"190000, \"reason\": null, \"message\": \"physpages over limit 512M: reclaiming\"}}",
	"{\"event\": \"VMBC_RECLAIM_DONE\", \"data\": {\"domain\": \"db2\", \"resource\": "
	"\"physpages\", \"held\": 1000, \"barrier\": 2000, \"limit\": 2000, \"target\": -1, "
	"\"reason\": null, \"message\": \"back under the limit\"}}",
	NULL,
};

static void
test_events(Fixture *fx, gconstpointer data)
{
	g_auto(Run) run = {0};
	g_auto(Run) filtered = {0};
	g_auto(GStrv) lines = NULL;
	GRegex *re;

	/* the fake sends two events after the CLI's first command, then hangs up */
	fake_vmbcd_set_events_after(fx->fake, "query-version", test_events_list, TRUE);
	run_vmbc(fx, &run, "events", NULL);
	g_assert_cmpint(run.status, ==, 1);
	g_assert_nonnull(strstr(run.err, "lost the connection to vmbcd"));
	lines = g_strsplit(run.out, "\n", -1);
	g_assert_cmpuint(g_strv_length(lines), ==, 3);
	re = g_regex_new("^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d{3} VMBC_LIMIT_HIT web1: "
			 "physpages over limit 512M: reclaiming$",
			 0, 0, NULL);
	g_assert_true(g_regex_match(re, lines[0], 0, NULL));
	g_regex_unref(re);
	g_assert_true(g_str_has_suffix(lines[1], " VMBC_RECLAIM_DONE db2: back under the limit"));

	run_vmbc(fx, &filtered, "events", "db2", NULL);
	g_assert_cmpint(filtered.status, ==, 1);
	g_assert_null(strstr(filtered.out, "web1"));
	g_assert_nonnull(strstr(filtered.out, "VMBC_RECLAIM_DONE db2"));
}

static void
test_events_json(Fixture *fx, gconstpointer data)
{
	g_auto(Run) run = {0};
	g_auto(GStrv) lines = NULL;

	fake_vmbcd_set_events_after(fx->fake, "query-version", test_events_list, TRUE);
	run_vmbc(fx, &run, "--json", "events", NULL);
	g_assert_cmpint(run.status, ==, 1);
	lines = g_strsplit(run.out, "\n", -1);
	g_assert_cmpuint(g_strv_length(lines), ==, 3);
	for (guint i = 0; i < 2; i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonNode) got = json_from_string(lines[i], &error);
		g_autoptr(JsonNode) want = json_from_string(test_events_list[i], &error);
		JsonObject *obj;
		g_assert_no_error(error);
		obj = json_node_get_object(got);
		g_assert_true(json_node_equal(
			json_object_get_member(obj, "data"),
			json_object_get_member(json_node_get_object(want), "data")));
		g_assert_cmpstr(json_object_get_string_member(obj, "event"), ==,
				json_object_get_string_member(json_node_get_object(want), "event"));
		g_assert_true(json_object_has_member(obj, "timestamp"));
	}
}

static void
test_events_sigint(Fixture *fx, gconstpointer data)
{
	g_auto(Run) run = {0};

	fake_vmbcd_set_events_after(fx->fake, "query-version", test_events_list, FALSE);
	run_vmbc_full(&run, (const gchar *const[]){"-c", fx->socket_path, "events", NULL}, NULL,
		      500, NULL);
	g_assert_cmpint(run.status, ==, 0);
	g_assert_cmpstr(run.err, ==, "");
	g_assert_nonnull(strstr(run.out, "VMBC_RECLAIM_DONE"));
}

static void
test_top(Fixture *fx, gconstpointer data)
{
	g_auto(Run) run = {0};
	g_auto(GStrv) blocks = NULL;
	const gchar *db2;
	const gchar *web1;

	run_vmbc(fx, &run, "top", "-n", "2", "-d", "0.1", NULL);
	g_assert_cmpint(run.status, ==, 0);
	g_assert_null(strstr(run.out, "\033["));
	blocks = g_strsplit(run.out, "vmbc top - ", -1);
	g_assert_cmpuint(g_strv_length(blocks), ==, 3);
	g_assert_nonnull(strstr(blocks[1], "2 domains, host: held 4G, limit unlimited"));
	/* sorted by held: db2 (200000) before web1 (98304) */
	db2 = strstr(blocks[1], "\ndb2 ");
	web1 = strstr(blocks[1], "\nweb1 ");
	g_assert_nonnull(db2);
	g_assert_nonnull(web1);
	g_assert_true(db2 < web1);
	g_assert_cmpuint(fake_vmbcd_count(fx->fake, "query-domains"), ==, 2);
}

static void
test_shell_plain(Fixture *fx, gconstpointer data)
{
	g_auto(Run) run = {0};
	const gchar *list;
	const gchar *ubc;

	run_vmbc_full(&run, (const gchar *const[]){"-c", fx->socket_path, NULL},
		      "list\n\n# a comment\nfrobnicate\ndominfo 'web9'\nubc -h\nquit\nlist\n", 0,
		      NULL);
	/* errors do not end the shell; quit does, and the last status is kept */
	g_assert_cmpint(run.status, ==, 0);
	g_assert_nonnull(strstr(run.err, "unknown command 'frobnicate'"));
	g_assert_nonnull(strstr(run.err, "no domain named 'web9'"));
	list = strstr(run.out, "Failcnt");
	ubc = strstr(run.out, "Version: 2.5");
	g_assert_nonnull(list);
	g_assert_nonnull(ubc);
	g_assert_true(list < ubc);
	g_assert_nonnull(strstr(ubc, "unlimited"));
	/* the list after quit did not run */
	g_assert_null(strstr(ubc, "Failcnt"));
	g_assert_cmpuint(fake_vmbcd_count(fx->fake, "query-domains"), ==, 1);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);

	if (g_getenv("VMBC_CLI") == NULL) {
		g_printerr("VMBC_CLI is not set; run through meson test\n");
		return 77;
	}
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
	ADD("/vmbc/cli/help", test_help);
	ADD("/vmbc/cli/usage", test_usage);
	ADD("/vmbc/cli/ubc/table", test_ubc);
	ADD("/vmbc/cli/ubc/human", test_ubc_human);
	ADD("/vmbc/cli/ubc/bytes", test_ubc_bytes);
	ADD("/vmbc/cli/json", test_json);
	ADD("/vmbc/cli/list", test_list);
	ADD("/vmbc/cli/dominfo", test_dominfo);
	ADD("/vmbc/cli/setlimit/bad-size", test_setlimit_bad_size);
	ADD("/vmbc/cli/setlimit/sizes-as-strings", test_setlimit);
	ADD("/vmbc/cli/error-reply", test_error_reply);
	ADD("/vmbc/cli/changes", test_changes);
	ADD("/vmbc/cli/connect/no-socket", test_no_socket);
	ADD("/vmbc/cli/connect/env", test_env_socket);
	ADD("/vmbc/cli/connect/not-vmbcd", test_not_vmbcd);
	ADD("/vmbc/cli/events/lines", test_events);
	ADD("/vmbc/cli/events/json", test_events_json);
	ADD("/vmbc/cli/events/sigint", test_events_sigint);
	ADD("/vmbc/cli/top", test_top);
	ADD("/vmbc/cli/shell/plain", test_shell_plain);
#undef ADD
	return g_test_run();
}
