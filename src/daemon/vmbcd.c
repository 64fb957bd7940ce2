/*
 * vmbcd.c: main() of the daemon, and nothing else: options, logging, signals.
 * Everything it runs lives in the daemon library (vmbc-daemon.c) that the
 * tests link too.
 */
#include "config.h"

#include <errno.h>
#include <glib-unix.h>
#include <locale.h>
#include <malloc.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmbc-notify.h"
#include "vmbc-service.h"

static gboolean opt_verbose = FALSE;

static GLogWriterOutput
log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
	gboolean journald = GPOINTER_TO_INT(user_data);

	/*
	 * debug: everything with --verbose (g_log_set_debug_enabled()), else the domains
	 * G_MESSAGES_DEBUG names (or "all"), as GLib's own writer decides; info and up always
	 */
	if (level & G_LOG_LEVEL_DEBUG) {
		const gchar *domain = NULL;
		for (gsize i = 0; i < n_fields; i++) {
			if (g_strcmp0(fields[i].key, "GLIB_DOMAIN") == 0 && fields[i].length < 0)
				domain = fields[i].value;
		}
		if (g_log_writer_default_would_drop(G_LOG_LEVEL_DEBUG, domain))
			return G_LOG_WRITER_HANDLED;
	}
	if (journald &&
	    g_log_writer_journald(level, fields, n_fields, NULL) == G_LOG_WRITER_HANDLED)
		return G_LOG_WRITER_HANDLED;
	return g_log_writer_standard_streams(level, fields, n_fields, NULL);
}

/*
 * Two descriptors a VM (its QMP socket and its statm): the usual soft limit of
 * 1024 would stop vmbcd near 500 VMs. Raise it to the hard limit (systemd's
 * default hard limit is 524288).
 */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		g_warning("cannot raise the open file limit: %s", g_strerror(errno));
}

typedef struct {
	GMainLoop *loop;
	VmbcService *service;
} Ctx;

static gboolean
on_sigterm(gpointer user_data)
{
	Ctx *ctx = user_data;
	g_info("stopping (balloons are left as they are)");
	g_main_loop_quit(ctx->loop);
	return G_SOURCE_CONTINUE;
}

static gboolean
on_sighup(gpointer user_data)
{
	Ctx *ctx = user_data;
	g_autoptr(GError) error = NULL;
	if (!vmbc_service_reload(ctx->service, &error))
		g_warning("reload failed, keeping the running configuration: %s", error->message);
	return G_SOURCE_CONTINUE;
}

int
main(int argc, char **argv)
{
	g_autofree gchar *opt_config = NULL;
	gboolean opt_foreground = FALSE;
	gboolean opt_version = FALSE;
	gboolean opt_check = FALSE;
	const GOptionEntry entries[] = {
		{"config", 'c', 0, G_OPTION_ARG_FILENAME, &opt_config,
		 "Configuration file (default " VMBC_SYSCONFDIR "/vmbc/vmbc.conf)", "FILE"},
		{"foreground", 'f', 0, G_OPTION_ARG_NONE, &opt_foreground,
		 "Stay in the foreground (the only mode; for systemd and scripts)", NULL},
		{"verbose", 'v', 0, G_OPTION_ARG_NONE, &opt_verbose, "Log every tick (debug)",
		 NULL},
		{"version", 'V', 0, G_OPTION_ARG_NONE, &opt_version, "Print the version and exit",
		 NULL},
		{"check-config", 0, 0, G_OPTION_ARG_NONE, &opt_check,
		 "Check the configuration file and exit (0 if vmbcd would start on it)", NULL},
		{NULL},
	};
	g_autoptr(GOptionContext) octx = g_option_context_new("- VM beancounters for KVM hosts");
	g_autoptr(GError) error = NULL;
	g_autoptr(VmbcConfig) config = NULL;
	g_autoptr(GMainLoop) loop = NULL;
	VmbcService *service;
	VmbcNotify *notify;
	Ctx ctx;
	guint term_id, int_id, hup_id;

	setlocale(LC_ALL, "");
	/*
	 * Big short-lived buffers (a /metrics page, a QEMU's smaps) come from mmap
	 * and go back at free: glibc's sliding threshold would otherwise keep the
	 * largest one resident in the heap for the life of the daemon.
	 */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	raise_fd_limit();
	g_option_context_add_main_entries(octx, entries, NULL);
	g_option_context_set_description(
		octx, "vmbcd treats every VM as an OpenVZ-style beancounter: it charges the "
		      "guest RAM pages\nthe host maps, and holds each VM to its barrier and limit "
		      "with the virtio balloon.\nSee vmbcd(8), vmbc.conf(5) and vmbc(1).");
	if (!g_option_context_parse(octx, &argc, &argv, &error)) {
		g_printerr("vmbcd: %s\nTry 'vmbcd --help'.\n", error->message);
		return 2;
	}
	if (opt_version) {
		g_print("vmbcd %s\n", VMBC_VERSION);
		return 0;
	}
	if (argc > 1) {
		g_printerr("vmbcd: unexpected argument '%s'\nTry 'vmbcd --help'.\n", argv[1]);
		return 2;
	}
	g_log_set_debug_enabled(opt_verbose);
	g_log_set_writer_func(log_writer, GINT_TO_POINTER(g_log_writer_is_journald(fileno(stderr))),
			      NULL);

	if (opt_config == NULL) {
		const gchar *dir = g_getenv("CONFIGURATION_DIRECTORY");
		g_autofree gchar *def =
			dir != NULL ? g_build_filename(dir, "vmbc.conf", NULL)
				    : g_build_filename(VMBC_SYSCONFDIR, "vmbc", "vmbc.conf", NULL);
		if (g_file_test(def, G_FILE_TEST_EXISTS))
			opt_config = g_steal_pointer(&def);
	}
	if (opt_config != NULL)
		config = vmbc_config_load(opt_config, &error);
	else
		config = vmbc_config_new_default();
	if (config == NULL) {
		g_printerr("vmbcd: %s\n", error->message);
		return 1;
	}
	if (opt_check) {
		g_print("vmbcd: %s: configuration OK\n",
			config->path != NULL ? config->path : "(built-in defaults)");
		return 0;
	}

	loop = g_main_loop_new(NULL, FALSE);
	service = vmbc_service_new(g_steal_pointer(&config));
	ctx.loop = loop;
	ctx.service = service;
	term_id = g_unix_signal_add(SIGTERM, on_sigterm, &ctx);
	int_id = g_unix_signal_add(SIGINT, on_sigterm, &ctx);
	hup_id = g_unix_signal_add(SIGHUP, on_sighup, &ctx);

	if (!vmbc_service_start(service, &error)) {
		g_printerr("vmbcd: %s\n", error->message);
		vmbc_service_free(service);
		return 1;
	}
	g_info("vmbcd %s running (tick %.3f s)", VMBC_VERSION,
	       (gdouble)vmbc_daemon_get_config(vmbc_service_get_daemon(service))->engine.tick_usec /
		       1e6);
	/* READY=1 once the VMs that run now are adopted; the watchdog if systemd wants one */
	notify = vmbc_notify_new(vmbc_service_get_daemon(service));
	g_main_loop_run(loop);

	vmbc_notify_free(notify);
	g_source_remove(term_id);
	g_source_remove(int_id);
	g_source_remove(hup_id);
	vmbc_service_free(service);
	return 0;
}
