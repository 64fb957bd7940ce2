/*
 * vmbc-config.c: loading and checking vmbc.conf (see vmbc-config.h).
 *
 * The [daemon] keys of vmbcd itself are listed here; those of a backend are
 * declared by the backend (VmbcBackendClass.settings) and checked through
 * its declaration, so this file names none of them.
 *
 * GKeyFile parses the syntax; everything else is checked here, key by key,
 * and the line of the offending key is found in the text so that an operator
 * reads "vmbc.conf:12: key 'limit' in [domain web1]: invalid size '1Q'".
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "vmbc-backend.h"
#include "vmbc-config.h"
#include "vmbc-error.h"
#include "vmbc-plugin-table.h"
#include "vmbc-size.h"

#define USEC_PER_SEC G_GINT64_CONSTANT(1000000)

static const gchar *const daemon_keys[] = {
	"backends",
	"control-socket",
	"admin-group",
	"state-dir",
	"metrics-listen",
	"tick",
	"reclaim-timeout",
	"escalation",
	"margin",
	"margin-percent",
	"barrier-step",
	"deflate-step",
	"min-step",
	"pressure-available",
	"idle-tax",
	"balloon-stall-rate",
	/* how seldom a VM far from its bounds is read */
	"growth-ceiling",
	NULL,
};
static const gchar *const host_keys[] = {
	"barrier",	 "limit",	   "cgroup",
	"reserve",	 "pressure",	   "psi-target",
	"psi-window",	 "margin-percent", "hysteresis-percent",
	"step",		 "interval",	   "giveback-delay",
	"giveback-step", "idle-assumed",   NULL,
};
static const gchar *const limit_keys[] = {"barrier", "limit",	    "guarantee", "vmm-limit",
					  "shares",  "trust-guest", NULL};

static void
limit_spec_clear(VmbcLimitSpec *spec)
{
	g_clear_pointer(&spec->barrier, g_free);
	g_clear_pointer(&spec->limit, g_free);
	g_clear_pointer(&spec->guarantee, g_free);
	g_clear_pointer(&spec->vmm_limit, g_free);
	spec->shares = -1;
	spec->trust_guest = -1;
}

static void
limit_spec_free(gpointer data)
{
	VmbcLimitSpec *spec = data;
	limit_spec_clear(spec);
	g_free(spec);
}

static gchar *
dir_from_env(const gchar *env, const gchar *fallback)
{
	const gchar *v = g_getenv(env);
	if (v != NULL && *v != '\0') {
		/* systemd may pass several, colon separated: the first is ours */
		g_auto(GStrv) parts = g_strsplit(v, ":", 2);
		return g_strdup(parts[0]);
	}
	return g_strdup(fallback);
}

/* Every compiled-in backend's keys, with their defaults. */
static void
declare_backend_settings(VmbcSettings *settings)
{
	const VmbcPluginEntry *table = vmbc_plugin_table();

	for (guint i = 0; table[i].name != NULL; i++) {
		VmbcBackendClass *klass = g_type_class_ref(table[i].get_type());

		vmbc_settings_declare(settings, klass->settings);
		g_type_class_unref(klass);
	}
}

VmbcConfig *
vmbc_config_new_default(void)
{
	VmbcConfig *config = g_new0(VmbcConfig, 1);
	g_autofree gchar *rundir = dir_from_env("RUNTIME_DIRECTORY", "/run/vmbc");

	config->backends = g_strsplit("qmp", ",", -1);
	config->control_socket = g_build_filename(rundir, "vmbcd.sock", NULL);
	config->admin_group = NULL;
	config->state_dir = dir_from_env("STATE_DIRECTORY", "/var/lib/vmbc");
	config->metrics_listen = g_strdup("127.0.0.1:9786");
	config->settings = vmbc_settings_new();
	declare_backend_settings(config->settings);
	vmbc_engine_config_init(&config->engine);
	config->host_cgroup = g_strdup("auto");
	config->host_reserve = g_strdup("5%");
	config->host_pressure = g_strdup("auto");
	config->psi_window_usec = USEC_PER_SEC;
	config->defaults.shares = -1;
	config->defaults.trust_guest = -1;
	config->domains = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, limit_spec_free);
	return config;
}

void
vmbc_config_free(VmbcConfig *config)
{
	if (config == NULL)
		return;
	g_free(config->path);
	g_strfreev(config->backends);
	vmbc_settings_free(config->settings);
	g_free(config->control_socket);
	g_free(config->admin_group);
	g_free(config->state_dir);
	g_free(config->metrics_listen);
	g_free(config->host_barrier);
	g_free(config->host_limit);
	g_free(config->host_cgroup);
	g_free(config->host_reserve);
	g_free(config->host_pressure);
	limit_spec_clear(&config->defaults);
	g_hash_table_unref(config->domains);
	g_free(config);
}

/* The 1-based line of KEY in [GROUP] in @text, or of the group header if @key is NULL. */
static guint
find_line(const gchar *text, const gchar *group, const gchar *key)
{
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	gboolean in_group = FALSE;
	guint group_line = 0;

	for (guint i = 0; lines[i] != NULL; i++) {
		g_autofree gchar *line = g_strstrip(g_strdup(lines[i]));
		if (line[0] == '[') {
			g_autofree gchar *want = g_strdup_printf("[%s]", group);
			in_group = g_strcmp0(line, want) == 0;
			if (in_group && group_line == 0)
				group_line = i + 1;
			continue;
		}
		if (!in_group || key == NULL || line[0] == '#')
			continue;
		{
			const gchar *eq = strchr(line, '=');
			g_autofree gchar *k = NULL;
			if (eq == NULL)
				continue;
			k = g_strstrip(g_strndup(line, (gsize)(eq - line)));
			if (g_strcmp0(k, key) == 0)
				return i + 1;
		}
	}
	return group_line;
}

typedef struct {
	const gchar *path;
	const gchar *text;
	GKeyFile *kf;
} Loader;

static gboolean fail_key(Loader *ld, const gchar *group, const gchar *key, GError **error,
			 const gchar *fmt, ...) G_GNUC_PRINTF(5, 6);

static gboolean
fail_key(Loader *ld, const gchar *group, const gchar *key, GError **error, const gchar *fmt, ...)
{
	g_autofree gchar *reason = NULL;
	va_list args;
	guint line = find_line(ld->text, group, key);

	va_start(args, fmt);
	reason = g_strdup_vprintf(fmt, args);
	va_end(args);
	if (key != NULL)
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID, "%s:%u: key '%s' in [%s]: %s",
			    ld->path, line, key, group, reason);
	else
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID, "%s:%u: [%s]: %s", ld->path,
			    line, group, reason);
	return FALSE;
}

static gchar *
get_string(Loader *ld, const gchar *group, const gchar *key)
{
	g_autofree gchar *v = g_key_file_get_value(ld->kf, group, key, NULL);
	if (v == NULL)
		return NULL;
	return g_strstrip(g_steal_pointer(&v));
}

static gboolean
load_duration_in(Loader *ld, const gchar *group, const gchar *key, gint64 min_usec, gint64 max_usec,
		 gint64 *out, GError **error)
{
	g_autofree gchar *v = get_string(ld, group, key);
	g_autoptr(GError) local = NULL;
	gint64 usec = 0;

	if (v == NULL)
		return TRUE;
	/* a duration that may be 0 takes it written plainly */
	if (min_usec == 0 && g_strcmp0(v, "0") == 0) {
		*out = 0;
		return TRUE;
	}
	if (!vmbc_duration_parse(v, &usec, &local))
		return fail_key(ld, group, key, error, "%s", local->message);
	if (usec < min_usec || usec > max_usec)
		return fail_key(ld, group, key, error, "'%s' is out of range (%.3g s to %.3g s)", v,
				(gdouble)min_usec / 1e6, (gdouble)max_usec / 1e6);
	*out = usec;
	return TRUE;
}

static gboolean
load_duration(Loader *ld, const gchar *key, gint64 min_usec, gint64 max_usec, gint64 *out,
	      GError **error)
{
	return load_duration_in(ld, "daemon", key, min_usec, max_usec, out, error);
}

static gboolean
load_pages_in(Loader *ld, const gchar *group, const gchar *key, gint64 *out, GError **error)
{
	g_autofree gchar *v = get_string(ld, group, key);
	g_autoptr(GError) local = NULL;
	gint64 pages = 0;

	if (v == NULL)
		return TRUE;
	if (!vmbc_size_parse(v, vmbc_page_size(), 0, &pages, &local))
		return fail_key(ld, group, key, error, "%s", local->message);
	if (pages == VMBC_UNLIMITED)
		return fail_key(ld, group, key, error, "must be a size, not unlimited");
	*out = pages;
	return TRUE;
}

/* A size a second ("1M" or "1M/s") in pages; not unlimited. */
static gboolean
load_rate(Loader *ld, const gchar *key, gint64 *out, GError **error)
{
	g_autofree gchar *v = get_string(ld, "daemon", key);
	g_autoptr(GError) local = NULL;
	gint64 pages = 0;

	if (v == NULL)
		return TRUE;
	if (g_str_has_suffix(v, "/s"))
		v[strlen(v) - 2] = '\0';
	if (!vmbc_size_parse(v, vmbc_page_size(), 0, &pages, &local))
		return fail_key(ld, "daemon", key, error, "%s", local->message);
	if (pages == VMBC_UNLIMITED)
		return fail_key(ld, "daemon", key, error, "must be a size a second, not unlimited");
	*out = pages;
	return TRUE;
}

static gboolean
load_pages(Loader *ld, const gchar *key, gint64 *out, GError **error)
{
	return load_pages_in(ld, "daemon", key, out, error);
}

static gboolean
load_number(Loader *ld, const gchar *group, const gchar *key, gdouble min, gdouble max,
	    gdouble *out, GError **error)
{
	g_autofree gchar *v = get_string(ld, group, key);
	gchar *end = NULL;
	gdouble d;

	if (v == NULL)
		return TRUE;
	errno = 0;
	d = g_ascii_strtod(v, &end);
	if (errno != 0 || end == v || *end != '\0' || d < min || d > max)
		return fail_key(ld, group, key, error, "'%s' is not a number from %g to %g", v, min,
				max);
	*out = d;
	return TRUE;
}

/* A boolean key: @out is left alone when the key is not there, else 0 or 1. */
static gboolean
load_boolean(Loader *ld, const gchar *group, const gchar *key, gint *out, GError **error)
{
	g_autofree gchar *v = get_string(ld, group, key);

	if (v == NULL)
		return TRUE;
	if (g_strcmp0(v, "true") == 0 || g_strcmp0(v, "yes") == 0 || g_strcmp0(v, "1") == 0) {
		*out = 1;
		return TRUE;
	}
	if (g_strcmp0(v, "false") == 0 || g_strcmp0(v, "no") == 0 || g_strcmp0(v, "0") == 0) {
		*out = 0;
		return TRUE;
	}
	return fail_key(ld, group, key, error, "'%s' is not a boolean (true or false)", v);
}

/* A size check without a maximum: "%" is allowed (resolved per VM later). */
static gboolean
check_size(Loader *ld, const gchar *group, const gchar *key, const gchar *v, GError **error)
{
	g_autoptr(GError) local = NULL;
	gint64 pages = 0;

	/* a stand-in maximum lets percentages through syntax checking */
	if (!vmbc_size_parse(v, vmbc_page_size(), 1000000, &pages, &local))
		return fail_key(ld, group, key, error, "%s", local->message);
	return TRUE;
}

static gboolean
load_limit_spec(Loader *ld, const gchar *group, VmbcLimitSpec *spec, GError **error)
{
	const gchar *keys[] = {"barrier", "limit", "guarantee", "vmm-limit"};
	gchar **slots[] = {&spec->barrier, &spec->limit, &spec->guarantee, &spec->vmm_limit};

	for (guint i = 0; i < G_N_ELEMENTS(keys); i++) {
		g_autofree gchar *v = get_string(ld, group, keys[i]);
		if (v == NULL)
			continue;
		if (!check_size(ld, group, keys[i], v, error))
			return FALSE;
		g_free(*slots[i]);
		*slots[i] = g_steal_pointer(&v);
	}
	{
		gdouble shares = -1;
		if (!load_number(ld, group, "shares", 1, 1000000, &shares, error))
			return FALSE;
		if (shares >= 1)
			spec->shares = (gint)shares;
	}
	if (!load_boolean(ld, group, "trust-guest", &spec->trust_guest, error))
		return FALSE;
	/* barrier > limit is refused when both are plain sizes (percentages: per VM) */
	if (spec->barrier != NULL && spec->limit != NULL && strchr(spec->barrier, '%') == NULL &&
	    strchr(spec->limit, '%') == NULL) {
		gint64 b = 0, l = 0;
		vmbc_size_parse(spec->barrier, vmbc_page_size(), 0, &b, NULL);
		vmbc_size_parse(spec->limit, vmbc_page_size(), 0, &l, NULL);
		if (b > l)
			return fail_key(ld, group, "barrier", error, "barrier %s is above limit %s",
					spec->barrier, spec->limit);
	}
	return TRUE;
}

static gboolean
check_keys(Loader *ld, const gchar *group, const gchar *const *allowed, GError **error)
{
	g_auto(GStrv) keys = g_key_file_get_keys(ld->kf, group, NULL, NULL);

	for (guint i = 0; keys != NULL && keys[i] != NULL; i++) {
		if (!g_strv_contains(allowed, keys[i])) {
			g_autofree gchar *list = g_strjoinv(", ", (gchar **)allowed);
			return fail_key(ld, group, keys[i], error, "unknown key (known: %s)", list);
		}
	}
	return TRUE;
}

static gboolean
backend_is_built(const gchar *name)
{
	const VmbcPluginEntry *table = vmbc_plugin_table();

	for (guint i = 0; table[i].name != NULL; i++) {
		if (g_strcmp0(table[i].name, name) == 0)
			return TRUE;
	}
	return FALSE;
}

static gchar *
built_backends(void)
{
	const VmbcPluginEntry *table = vmbc_plugin_table();
	g_autoptr(GString) s = g_string_new(NULL);

	for (guint i = 0; table[i].name != NULL; i++)
		g_string_append_printf(s, "%s%s", i > 0 ? ", " : "", table[i].name);
	return g_string_free(g_steal_pointer(&s), FALSE);
}

/* The [daemon] keys the backends declared, each checked as its declaration says. */
static gboolean
load_backend_settings(Loader *ld, VmbcSettings *settings, GError **error)
{
	g_autofree const gchar **keys = vmbc_settings_get_keys(settings);

	for (guint i = 0; keys[i] != NULL; i++) {
		g_autofree gchar *v = get_string(ld, "daemon", keys[i]);
		g_autoptr(GError) local = NULL;

		if (v != NULL && !vmbc_settings_set(settings, keys[i], v, &local))
			return fail_key(ld, "daemon", keys[i], error, "%s", local->message);
	}
	return TRUE;
}

static gboolean
load_daemon(Loader *ld, VmbcConfig *config, GError **error)
{
	const gchar *g = "daemon";
	g_autofree gchar *v = NULL;
	gdouble d;

	{
		g_autofree const gchar **declared = vmbc_settings_get_keys(config->settings);
		g_autoptr(GStrvBuilder) known = g_strv_builder_new();
		g_auto(GStrv) allowed = NULL;

		g_strv_builder_addv(known, (const gchar **)daemon_keys);
		g_strv_builder_addv(known, declared);
		allowed = g_strv_builder_end(known);
		if (!check_keys(ld, g, (const gchar *const *)allowed, error))
			return FALSE;
	}

	if ((v = get_string(ld, g, "backends")) != NULL) {
		g_auto(GStrv) list = g_key_file_get_string_list(ld->kf, g, "backends", NULL, NULL);
		if (list == NULL || list[0] == NULL)
			return fail_key(ld, g, "backends", error, "no backend named");
		for (guint i = 0; list[i] != NULL; i++) {
			g_strstrip(list[i]);
			if (!backend_is_built(list[i])) {
				g_autofree gchar *built = built_backends();
				return fail_key(ld, g, "backends", error,
						"unknown backend '%s' (built in: %s)", list[i],
						built);
			}
		}
		g_strfreev(config->backends);
		config->backends = g_steal_pointer(&list);
	}
	g_clear_pointer(&v, g_free);
	if ((v = get_string(ld, g, "control-socket")) != NULL) {
		if (!g_path_is_absolute(v))
			return fail_key(ld, g, "control-socket", error,
					"'%s' is not an absolute path", v);
		g_free(config->control_socket);
		config->control_socket = g_steal_pointer(&v);
	}
	if ((v = get_string(ld, g, "admin-group")) != NULL) {
		g_free(config->admin_group);
		config->admin_group = *v != '\0' ? g_steal_pointer(&v) : NULL;
	}
	g_clear_pointer(&v, g_free);
	if ((v = get_string(ld, g, "state-dir")) != NULL) {
		if (!g_path_is_absolute(v))
			return fail_key(ld, g, "state-dir", error, "'%s' is not an absolute path",
					v);
		g_free(config->state_dir);
		config->state_dir = g_steal_pointer(&v);
	}
	if ((v = get_string(ld, g, "metrics-listen")) != NULL) {
		if (*v != '\0' && g_strcmp0(v, "off") != 0) {
			const gchar *colon = strrchr(v, ':');
			gchar *end = NULL;
			guint64 port;
			if (colon == NULL)
				return fail_key(ld, g, "metrics-listen", error,
						"'%s' is not ADDRESS:PORT", v);
			port = g_ascii_strtoull(colon + 1, &end, 10);
			if (end == colon + 1 || *end != '\0' || port == 0 || port > 65535)
				return fail_key(ld, g, "metrics-listen", error,
						"'%s' has no valid port (1-65535)", v);
		}
		g_free(config->metrics_listen);
		config->metrics_listen = g_steal_pointer(&v);
	}
	if (!load_duration(ld, "tick", 100000, 60 * USEC_PER_SEC, &config->engine.tick_usec, error))
		return FALSE;
	if (!load_duration(ld, "reclaim-timeout", 100000, 3600 * USEC_PER_SEC,
			   &config->engine.reclaim_timeout_usec, error))
		return FALSE;
	if ((v = get_string(ld, g, "escalation")) != NULL) {
		g_autoptr(GError) local = NULL;
		if (!vmbc_escalation_from_string(v, &config->engine.escalation, &local))
			return fail_key(ld, g, "escalation", error, "%s", local->message);
	}
	g_clear_pointer(&v, g_free);
	/* a size a second: "1M" or "1M/s"; 0 never calls a balloon stalled */
	if (!load_rate(ld, "balloon-stall-rate", &config->engine.balloon_stall_pages, error))
		return FALSE;
	/* 0 reads every VM every tick */
	if (!load_rate(ld, "growth-ceiling", &config->engine.growth_ceiling_pages, error))
		return FALSE;
	if (!load_pages(ld, "margin", &config->engine.margin_min_pages, error))
		return FALSE;
	d = config->engine.margin_fraction * 100.0;
	if (!load_number(ld, g, "margin-percent", 0, 50, &d, error))
		return FALSE;
	config->engine.margin_fraction = d / 100.0;
	if (!load_pages(ld, "barrier-step", &config->engine.barrier_step_pages, error))
		return FALSE;
	if (!load_pages(ld, "deflate-step", &config->engine.deflate_step_pages, error))
		return FALSE;
	if (!load_pages(ld, "min-step", &config->engine.min_step_pages, error))
		return FALSE;
	d = config->engine.pressure_available * 100.0;
	if (!load_number(ld, g, "pressure-available", 0, 100, &d, error))
		return FALSE;
	config->engine.pressure_available = d / 100.0;
	if (!load_number(ld, g, "idle-tax", 0, 0.99, &config->engine.idle_tax, error))
		return FALSE;
	return load_backend_settings(ld, config->settings, error);
}

/* "auto", "none"/"off" or an absolute path (a relative one, for cgroup, under cgroup-root). */
static gboolean
load_choice(Loader *ld, const gchar *key, const gchar *off, gboolean relative_ok, gchar **out,
	    GError **error)
{
	g_autofree gchar *v = get_string(ld, "host", key);

	if (v == NULL)
		return TRUE;
	if (g_strcmp0(v, "auto") != 0 && g_strcmp0(v, off) != 0 && *v != '/' &&
	    (!relative_ok || *v == '\0' || strstr(v, "..") != NULL))
		return fail_key(ld, "host", key, error, "'%s' is neither auto, %s nor %s path", v,
				off, relative_ok ? "a cgroup" : "an absolute");
	g_free(*out);
	*out = g_steal_pointer(&v);
	return TRUE;
}

static gboolean
load_host(Loader *ld, VmbcConfig *config, GError **error)
{
	const gchar *g = "host";
	VmbcEngineConfig *e = &config->engine;
	gint64 host_pages = (gint64)sysconf(_SC_PHYS_PAGES);
	gdouble d;

	if (!check_keys(ld, g, host_keys, error))
		return FALSE;
	g_free(config->host_barrier);
	config->host_barrier = get_string(ld, g, "barrier");
	g_free(config->host_limit);
	config->host_limit = get_string(ld, g, "limit");
	if (config->host_barrier != NULL &&
	    !check_size(ld, g, "barrier", config->host_barrier, error))
		return FALSE;
	if (config->host_limit != NULL && !check_size(ld, g, "limit", config->host_limit, error))
		return FALSE;
	if (config->host_barrier != NULL && config->host_limit != NULL) {
		gint64 b = 0, l = 0;
		vmbc_size_parse(config->host_barrier, vmbc_page_size(), host_pages, &b, NULL);
		vmbc_size_parse(config->host_limit, vmbc_page_size(), host_pages, &l, NULL);
		if (b > l)
			return fail_key(ld, g, "barrier", error, "barrier %s is above limit %s",
					config->host_barrier, config->host_limit);
	}
	if (!load_choice(ld, "cgroup", "none", TRUE, &config->host_cgroup, error) ||
	    !load_choice(ld, "pressure", "off", FALSE, &config->host_pressure, error))
		return FALSE;
	{
		g_autofree gchar *v = get_string(ld, g, "reserve");
		g_autoptr(GError) local = NULL;
		gint64 pages = 0;
		if (v != NULL) {
			if (!vmbc_size_parse(v, vmbc_page_size(), host_pages, &pages, &local))
				return fail_key(ld, g, "reserve", error, "%s", local->message);
			if (pages == VMBC_UNLIMITED || pages >= host_pages)
				return fail_key(ld, g, "reserve", error,
						"'%s' leaves the VMs nothing of the host's RAM", v);
			g_free(config->host_reserve);
			config->host_reserve = g_steal_pointer(&v);
		}
	}
	if (!load_number(ld, g, "psi-target", 0.1, 99, &e->psi_target, error) ||
	    !load_duration_in(ld, g, "psi-window", 500000, 10 * USEC_PER_SEC,
			      &config->psi_window_usec, error))
		return FALSE;
	d = e->host_margin * 100.0;
	if (!load_number(ld, g, "margin-percent", 0, 50, &d, error))
		return FALSE;
	e->host_margin = d / 100.0;
	d = e->host_hysteresis * 100.0;
	if (!load_number(ld, g, "hysteresis-percent", 0, 50, &d, error))
		return FALSE;
	e->host_hysteresis = d / 100.0;
	if (!load_pages_in(ld, g, "step", &e->host_step_pages, error) ||
	    !load_pages_in(ld, g, "giveback-step", &e->giveback_step_pages, error) ||
	    !load_duration_in(ld, g, "interval", 100000, 60 * USEC_PER_SEC, &e->host_interval_usec,
			      error) ||
	    !load_duration_in(ld, g, "giveback-delay", 0, 3600 * USEC_PER_SEC,
			      &e->giveback_delay_usec, error) ||
	    !load_number(ld, g, "idle-assumed", 0, 1, &e->idle_assumed, error))
		return FALSE;
	if (e->host_step_pages <= 0)
		return fail_key(ld, g, "step", error, "must be more than 0");
	if (e->giveback_step_pages <= 0)
		return fail_key(ld, g, "giveback-step", error, "must be more than 0");
	return TRUE;
}

VmbcConfig *
vmbc_config_load(const gchar *path, GError **error)
{
	g_autoptr(VmbcConfig) config = vmbc_config_new_default();
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autofree gchar *text = NULL;
	g_autoptr(GError) local = NULL;
	g_auto(GStrv) groups = NULL;
	Loader ld;

	if (!g_file_get_contents(path, &text, NULL, &local)) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID, "cannot read %s: %s", path,
			    local->message);
		return NULL;
	}
	if (!g_key_file_load_from_data(kf, text, (gsize)-1, G_KEY_FILE_NONE, &local)) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID, "%s: %s", path, local->message);
		return NULL;
	}
	ld.path = path;
	ld.text = text;
	ld.kf = kf;
	config->path = g_strdup(path);

	groups = g_key_file_get_groups(kf, NULL);
	for (guint i = 0; groups[i] != NULL; i++) {
		const gchar *g = groups[i];
		if (g_strcmp0(g, "daemon") == 0) {
			if (!load_daemon(&ld, config, error))
				return NULL;
		} else if (g_strcmp0(g, "host") == 0) {
			if (!load_host(&ld, config, error))
				return NULL;
		} else if (g_strcmp0(g, "defaults") == 0) {
			if (!check_keys(&ld, g, limit_keys, error))
				return NULL;
			if (!load_limit_spec(&ld, g, &config->defaults, error))
				return NULL;
		} else if (g_str_has_prefix(g, "domain ")) {
			const gchar *name = g + strlen("domain ");
			VmbcLimitSpec *spec;
			if (*name == '\0' || g_strcmp0(name, "host") == 0) {
				fail_key(&ld, g, NULL, error, "a domain group needs a VM name");
				return NULL;
			}
			if (!check_keys(&ld, g, limit_keys, error))
				return NULL;
			spec = g_new0(VmbcLimitSpec, 1);
			spec->shares = -1;
			spec->trust_guest = -1;
			g_hash_table_replace(config->domains, g_strdup(name), spec);
			if (!load_limit_spec(&ld, g, spec, error))
				return NULL;
		} else {
			fail_key(&ld, g, NULL, error,
				 "unknown group (expected [daemon], [host], [defaults] or "
				 "[domain NAME])");
			return NULL;
		}
	}
	return g_steal_pointer(&config);
}

void
vmbc_config_get_spec(const VmbcConfig *config, const gchar *name, VmbcLimitSpec *out)
{
	const VmbcLimitSpec *dom = g_hash_table_lookup(config->domains, name);

	*out = config->defaults;
	if (dom == NULL)
		return;
	if (dom->barrier != NULL)
		out->barrier = dom->barrier;
	if (dom->limit != NULL)
		out->limit = dom->limit;
	if (dom->guarantee != NULL)
		out->guarantee = dom->guarantee;
	if (dom->vmm_limit != NULL)
		out->vmm_limit = dom->vmm_limit;
	if (dom->shares > 0)
		out->shares = dom->shares;
	if (dom->trust_guest >= 0)
		out->trust_guest = dom->trust_guest;
	/* a domain that sets only its limit takes it as barrier too, not the default barrier */
	if (dom->limit != NULL && dom->barrier == NULL)
		out->barrier = NULL;
}

gboolean
vmbc_config_resolve_limits(const VmbcLimitSpec *spec, gint64 max_pages, gint64 *barrier,
			   gint64 *limit, gint64 *guarantee, gint64 *vmm_limit, GError **error)
{
	gsize ps = vmbc_page_size();
	gint64 b = VMBC_UNLIMITED, l = VMBC_UNLIMITED, g = 0, v = VMBC_UNLIMITED;

	if (spec->limit != NULL && !vmbc_size_parse(spec->limit, ps, max_pages, &l, error))
		return FALSE;
	if (spec->barrier != NULL) {
		if (!vmbc_size_parse(spec->barrier, ps, max_pages, &b, error))
			return FALSE;
	} else {
		b = l;
	}
	if (spec->guarantee != NULL && !vmbc_size_parse(spec->guarantee, ps, max_pages, &g, error))
		return FALSE;
	if (g == VMBC_UNLIMITED)
		g = 0;
	if (spec->vmm_limit != NULL && !vmbc_size_parse(spec->vmm_limit, ps, max_pages, &v, error))
		return FALSE;
	if (b > l) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID, "barrier %s is above limit %s",
			    spec->barrier, spec->limit);
		return FALSE;
	}
	*barrier = b;
	*limit = l;
	*guarantee = g;
	*vmm_limit = v;
	return TRUE;
}
