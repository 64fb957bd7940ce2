/*
 * fake-qemu.c: a stand-in for QEMU 7.2 for integration tests, fault injection
 * and scale benchmarks: never instead of a real guest.
 *
 * It serves QMP on a UNIX socket with the same greeting, commands, replies,
 * errors and BALLOON_CHANGE events as QEMU 7.2 with
 * -device virtio-balloon-pci,id=balloon0, and keeps a pretend guest whose RAM
 * is a real anonymous mapping (fake-guest.c), so host-side numbers in /proc
 * are true. Tests script the guest with x-fake-* commands or --script, and
 * inject faults with flags or x-fake-set. On SIGTERM, quit or when its socket
 * file is removed it exits cleanly and removes the socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake-guest.h"
#include "fake-script.h"
#include "qmp-server.h"

#define BALLOON_PATH	 "/machine/peripheral/balloon0"
#define BALLOON_BACKEND	 "/machine/peripheral/balloon0/virtio-backend"
#define STAT_UNSET	 G_MAXUINT64
#define EVENT_RATE_MS	 1000
#define MIB		 (1024 * 1024)
#define EXIT_MID_COMMAND 3

/* In QEMU's order (VIRTIO_BALLOON_S_*). */
static const gchar *const stat_names[] = {
	"stat-swap-in",	     "stat-swap-out",	  "stat-major-faults",	   "stat-minor-faults",
	"stat-free-memory",  "stat-total-memory", "stat-available-memory", "stat-disk-caches",
	"stat-htlb-pgalloc", "stat-htlb-pgfail",
};
enum {
	STAT_SWAP_IN,
	STAT_SWAP_OUT,
	STAT_MAJFLT,
	STAT_MINFLT,
	STAT_MEMFREE,
	STAT_MEMTOT,
	STAT_AVAIL,
	STAT_CACHES,
	STAT_HTLB_PGALLOC,
	STAT_HTLB_PGFAIL,
	STAT_N,
};

typedef struct {
	gchar *qmp_path;
	dev_t sock_dev;
	ino_t sock_ino;
	FakeGuest *guest;
	QmpServer *server;
	GMainLoop *loop;
	gint exit_code;
	gboolean shutting_down;

	/* The model's clock. */
	guint tick_ms;
	guint tick_id;
	gint64 last_tick_us;
	gdouble balloon_credit; /* pages the balloon may still move this tick */
	guint64 rate_mib_s;

	/* Faults. */
	gboolean balloon_device;
	gboolean balloon_driver;
	gboolean lying_stats;
	gboolean under_reporting; /* fresh reports of nothing available or free */
	gboolean stats_unset;
	gint64 garbage_after; /* commands; 0 = after the greeting, -1 = never */
	gint64 exit_after;    /* commands; -1 = never */
	gchar *exit_on;	      /* a command name, or NULL */
	guint64 commands_seen;

	/* BALLOON_CHANGE, rate-limited as QEMU's monitor does. */
	guint64 reported_actual;
	guint event_timer_id;
	gboolean event_pending;
	guint64 event_actual;

	/* virtio-balloon stats, as last "reported by the guest". */
	gint64 stats_interval;
	guint stats_timer_id;
	guint64 stats[STAT_N];
	gint64 stats_last_update;

	guint housekeeping_id;
	GPtrArray *script;

	/* --balloon-log: one line per balloon command, for the scale benchmark; -1 off. */
	gint balloon_log_fd;

	/* calc-dirty-rate: the guest writes this many MiB a second; -1: no such command */
	gint64 dirty_mib_s;
	gint64 dirty_calc_start; /* monotonic usec of the last calc-dirty-rate, 0 never */
	gint64 dirty_calc_sec;
} FakeQemu;

static void fake_qemu_kick(FakeQemu *self);
static void fake_qemu_shutdown(FakeQemu *self, gboolean guest, const gchar *reason);

/* --- small helpers ------------------------------------------------------ */

static guint64
page_bytes(guint64 pages)
{
	return pages * fake_guest_get_page_size();
}

static guint64
current_actual(FakeQemu *self)
{
	FakeGuestState st;

	fake_guest_get_state(self->guest, &st);
	return page_bytes(st.ram - st.balloon);
}

static JsonNode *
node_from_object(JsonObject *obj)
{
	JsonNode *node = json_node_new(JSON_NODE_OBJECT);

	json_node_take_object(node, obj);
	return node;
}

/* The exit paths that skip the main loop still leave no socket file behind. */
static void
remove_socket(FakeQemu *self)
{
	struct stat sb;

	if (self->qmp_path == NULL)
		return;
	if (lstat(self->qmp_path, &sb) == 0 && sb.st_dev == self->sock_dev &&
	    sb.st_ino == self->sock_ino)
		(void)unlink(self->qmp_path);
}

/* --- argument checking, with QEMU's wording ----------------------------- */

static gboolean
check_args(JsonObject *args, const gchar *const *allowed, GError **error)
{
	g_autoptr(GList) members = NULL;

	if (args == NULL)
		return TRUE;
	members = json_object_get_members(args);
	for (GList *l = members; l != NULL; l = l->next) {
		if (allowed == NULL || !g_strv_contains(allowed, l->data)) {
			g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC_ERROR,
				    "Parameter '%s' is unexpected", (const gchar *)l->data);
			return FALSE;
		}
	}
	return TRUE;
}

static JsonNode *
get_arg(JsonObject *args, const gchar *name, gboolean required, GError **error)
{
	JsonNode *node = args != NULL ? json_object_get_member(args, name) : NULL;

	if (node == NULL && required)
		g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC_ERROR, "Parameter '%s' is missing",
			    name);
	return node;
}

static gboolean
node_is(JsonNode *node, GType type)
{
	return JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == type;
}

/* Reads an integer argument; FALSE with an error if it is missing (and required) or not one. */
static gboolean
get_int(JsonObject *args, const gchar *name, gboolean required, gint64 *value, GError **error)
{
	JsonNode *node = get_arg(args, name, required, error);

	if (node == NULL)
		return !required;
	if (!node_is(node, G_TYPE_INT64)) {
		g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC_ERROR,
			    "Invalid parameter type for '%s', expected: integer", name);
		return FALSE;
	}
	*value = json_node_get_int(node);
	return TRUE;
}

static gboolean
get_bool(JsonObject *args, const gchar *name, gboolean *value, GError **error)
{
	JsonNode *node = get_arg(args, name, FALSE, error);

	if (node == NULL)
		return TRUE;
	if (!node_is(node, G_TYPE_BOOLEAN)) {
		g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC_ERROR,
			    "Invalid parameter type for '%s', expected: boolean", name);
		return FALSE;
	}
	*value = json_node_get_boolean(node);
	return TRUE;
}

static gboolean
get_str(JsonObject *args, const gchar *name, gboolean required, const gchar **value, GError **error)
{
	JsonNode *node = get_arg(args, name, required, error);

	if (node == NULL)
		return !required;
	if (!node_is(node, G_TYPE_STRING)) {
		g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC_ERROR,
			    "Invalid parameter type for '%s', expected: string", name);
		return FALSE;
	}
	*value = json_node_get_string(node);
	return TRUE;
}

/* --- the balloon and its events ----------------------------------------- */

static gboolean
on_event_timer(gpointer user_data)
{
	FakeQemu *self = user_data;
	g_autoptr(JsonObject) data = NULL;

	if (!self->event_pending) {
		self->event_timer_id = 0;
		return G_SOURCE_REMOVE;
	}
	data = json_object_new();
	json_object_set_int_member(data, "actual", (gint64)self->event_actual);
	qmp_server_broadcast_event(self->server, "BALLOON_CHANGE", data);
	self->event_pending = FALSE;
	return G_SOURCE_CONTINUE;
}

/*
 * QEMU sends the first BALLOON_CHANGE at once, then holds later ones for the
 * rest of the second and sends only the newest when the second ends.
 */
static void
balloon_changed(FakeQemu *self, guint64 actual)
{
	if (self->event_timer_id != 0) {
		self->event_pending = TRUE;
		self->event_actual = actual;
		return;
	}
	self->event_pending = TRUE;
	self->event_actual = actual;
	on_event_timer(self);
	self->event_timer_id = g_timeout_add(EVENT_RATE_MS, on_event_timer, self);
}

static gboolean
on_tick(gpointer user_data)
{
	FakeQemu *self = user_data;
	gint64 now = g_get_monotonic_time();
	gdouble rate_pages = (gdouble)self->rate_mib_s * MIB / fake_guest_get_page_size();
	guint64 step_pages = 0;
	gboolean more;
	guint64 actual;
	FakeGuestState st;

	if (self->balloon_driver) {
		self->balloon_credit += rate_pages * (gdouble)(now - self->last_tick_us) / 1e6;
		step_pages = (guint64)self->balloon_credit;
		self->balloon_credit -= (gdouble)step_pages;
	}
	self->last_tick_us = now;

	more = fake_guest_step(self->guest, step_pages);
	fake_guest_get_state(self->guest, &st);
	if (step_pages == 0 && self->balloon_driver && st.balloon != st.balloon_target)
		more = TRUE;

	actual = page_bytes(st.ram - st.balloon);
	if (actual != self->reported_actual) {
		self->reported_actual = actual;
		balloon_changed(self, actual);
	}
	g_debug("tick: anon %" G_GUINT64_FORMAT " cache %" G_GUINT64_FORMAT
		" balloon %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT " pages",
		st.anon, st.cache, st.balloon, st.balloon_target);
	if (more)
		return G_SOURCE_CONTINUE;
	self->tick_id = 0;
	return G_SOURCE_REMOVE;
}

/* Runs the model's clock until the guest has nothing left to do; idle processes never wake. */
static void
fake_qemu_kick(FakeQemu *self)
{
	if (self->tick_id != 0)
		return;
	self->last_tick_us = g_get_monotonic_time();
	self->balloon_credit = 0;
	self->tick_id = g_timeout_add(self->tick_ms, on_tick, self);
}

/* --- guest statistics ---------------------------------------------------- */

static void
stats_reset(FakeQemu *self)
{
	for (guint i = 0; i < STAT_N; i++)
		self->stats[i] = STAT_UNSET;
}

/* What a Linux guest's balloon driver puts in its stats virtqueue. */
static void
stats_poll(FakeQemu *self)
{
	FakeGuestState st;
	guint64 free_bytes;

	/* No driver, or a driver that never answers: stats stay as they were. */
	if (!self->balloon_driver || self->stats_unset)
		return;
	fake_guest_get_state(self->guest, &st);
	free_bytes = page_bytes(st.free_resident + st.free_clean);
	stats_reset(self);
	self->stats[STAT_SWAP_IN] = 0;
	self->stats[STAT_SWAP_OUT] = 0;
	self->stats[STAT_MAJFLT] = 0;
	self->stats[STAT_MINFLT] = st.touched_total;
	self->stats[STAT_MEMFREE] = free_bytes;
	self->stats[STAT_MEMTOT] = page_bytes(st.ram - st.balloon);
	self->stats[STAT_AVAIL] = free_bytes + page_bytes(st.cache);
	self->stats[STAT_CACHES] = page_bytes(st.cache);
	self->stats[STAT_HTLB_PGALLOC] = 0;
	self->stats[STAT_HTLB_PGFAIL] = 0;
	if (self->lying_stats) {
		/* More available than RAM, free memory that reads as negative. */
		self->stats[STAT_AVAIL] = page_bytes(st.ram) * 4;
		self->stats[STAT_MEMFREE] = (guint64)-4096;
		self->stats[STAT_CACHES] = page_bytes(st.ram) * 8;
		self->stats[STAT_MAJFLT] = (guint64)-1 - 1;
	}
	if (self->under_reporting) {
		/* Plausible, fresh, and wrong: its cache is reclaimable, it says it has nothing. */
		self->stats[STAT_AVAIL] = 0;
		self->stats[STAT_MEMFREE] = 0;
	}
	self->stats_last_update = g_get_real_time() / G_USEC_PER_SEC;
}

static gboolean
on_stats_timer(gpointer user_data)
{
	stats_poll(user_data);
	return G_SOURCE_CONTINUE;
}

/* As QEMU: 0 stops polling (the last stats stay), a new interval polls at once. */
static void
stats_set_interval(FakeQemu *self, gint64 secs)
{
	if (secs == self->stats_interval)
		return;
	g_clear_handle_id(&self->stats_timer_id, g_source_remove);
	self->stats_interval = secs;
	if (secs == 0)
		return;
	stats_poll(self);
	self->stats_timer_id = g_timeout_add_seconds((guint)secs, on_stats_timer, self);
}

static JsonNode *
stats_to_node(FakeQemu *self)
{
	JsonObject *stats = json_object_new();
	JsonObject *obj = json_object_new();

	/*
	 * json-glib has no unsigned 64-bit integers: 18446744073709551615
	 * (unset) goes on the wire as -1, which json-glib, the only reader here,
	 * parses back to the same bits as it parses QEMU's spelling.
	 */
	for (guint i = 0; i < STAT_N; i++)
		json_object_set_int_member(stats, stat_names[i], (gint64)self->stats[i]);
	json_object_set_object_member(obj, "stats", stats);
	json_object_set_int_member(obj, "last-update", self->stats_last_update);
	return node_from_object(obj);
}

/* --- guest actions shared by x-fake-* and the script --------------------- */

static guint64
guest_touch(FakeQemu *self, gboolean anon, guint64 mib)
{
	guint64 pages = mib * MIB / fake_guest_get_page_size();
	guint64 got = fake_guest_touch(self->guest, anon ? FAKE_MEM_ANON : FAKE_MEM_CACHE, pages);

	if (got < pages)
		g_info("guest out of memory: touched %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
		       " MiB %s",
		       page_bytes(got) / MIB, mib, anon ? "anon" : "cache");
	fake_qemu_kick(self);
	return page_bytes(got);
}

static guint64
guest_free(FakeQemu *self, gboolean anon, guint64 mib)
{
	guint64 pages = mib * MIB / fake_guest_get_page_size();
	guint64 got = fake_guest_release(self->guest, anon ? FAKE_MEM_ANON : FAKE_MEM_CACHE, pages);

	fake_qemu_kick(self);
	return page_bytes(got);
}

/* The balloon command: @value is the guest's wanted size in bytes, clamped to RAM. */
static void
guest_balloon(FakeQemu *self, guint64 value)
{
	FakeGuestState st;
	guint64 target_pages;

	fake_guest_get_state(self->guest, &st);
	target_pages = MIN(value / fake_guest_get_page_size(), st.ram);
	fake_guest_set_balloon_target(self->guest, st.ram - target_pages);
	g_info("balloon request: %" G_GUINT64_FORMAT " MiB", page_bytes(target_pages) / MIB);
	if (self->balloon_log_fd >= 0) {
		/* one write to an O_APPEND file: lines of many fakes do not interleave */
		g_autofree gchar *line = g_strdup_printf(
			"%" G_GINT64_FORMAT " %" G_GINT64_FORMAT " %s %" G_GUINT64_FORMAT "\n",
			g_get_monotonic_time(), g_get_real_time(), self->qmp_path, value);
		if (write(self->balloon_log_fd, line, strlen(line)) < 0)
			g_warning("--balloon-log: %s", g_strerror(errno));
	}
	fake_qemu_kick(self);
}

static gboolean
parse_exit_mid_command(FakeQemu *self, const gchar *what, GError **error)
{
	guint64 n;

	g_clear_pointer(&self->exit_on, g_free);
	self->exit_after = -1;
	if (what == NULL || *what == '\0')
		return TRUE;
	if (g_ascii_isdigit(*what)) {
		if (!g_ascii_string_to_unsigned(what, 10, 0, G_MAXINT64, &n, error))
			return FALSE;
		self->exit_after = (gint64)self->commands_seen + (gint64)n;
		return TRUE;
	}
	self->exit_on = g_strdup(what);
	return TRUE;
}

/* Sets one fault by name (as --FLAG without the dashes); "none" clears all. */
static gboolean
set_fault(FakeQemu *self, const gchar *fault, GError **error)
{
	if (g_strcmp0(fault, "none") == 0) {
		self->balloon_device = TRUE;
		self->balloon_driver = TRUE;
		self->lying_stats = FALSE;
		self->under_reporting = FALSE;
		self->stats_unset = FALSE;
		self->garbage_after = -1;
		return parse_exit_mid_command(self, NULL, error);
	}
	if (g_strcmp0(fault, "no-balloon-device") == 0)
		self->balloon_device = FALSE;
	else if (g_strcmp0(fault, "no-balloon-driver") == 0)
		self->balloon_driver = FALSE;
	else if (g_strcmp0(fault, "lying-stats") == 0)
		self->lying_stats = TRUE;
	else if (g_strcmp0(fault, "under-reporting") == 0)
		self->under_reporting = TRUE;
	else if (g_strcmp0(fault, "stats-unset") == 0)
		self->stats_unset = TRUE;
	else if (g_strcmp0(fault, "garbage") == 0)
		self->garbage_after = (gint64)self->commands_seen + 1;
	else if (g_strcmp0(fault, "exit-mid-command") == 0)
		return parse_exit_mid_command(self, "balloon", error);
	else {
		g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC_ERROR,
			    "Parameter 'fault' does not accept value '%s'", fault);
		return FALSE;
	}
	return TRUE;
}

/* x-fake-set and the script's "set": each member changes one setting. */
static gboolean
apply_settings(FakeQemu *self, JsonObject *args, GError **error)
{
	static const gchar *const allowed[] = {
		"fault",
		"fpr",
		"rate-mib-s",
		"tick-ms",
		"balloon-device",
		"balloon-driver",
		"lying-stats",
		"stats-unset",
		"garbage-after",
		"exit-after",
		"exit-on",
		"under-reporting",
		"dirty-mib-s", /* what the next dirty-rate measure finds */
		NULL,
	};
	const gchar *s = NULL;
	gboolean b;
	gint64 v;

	if (!check_args(args, allowed, error))
		return FALSE;
	if (!get_str(args, "fault", FALSE, &s, error))
		return FALSE;
	if (s != NULL && !set_fault(self, s, error))
		return FALSE;
	b = fake_guest_get_free_page_reporting(self->guest);
	if (!get_bool(args, "fpr", &b, error))
		return FALSE;
	fake_guest_set_free_page_reporting(self->guest, b);
	if (!get_bool(args, "balloon-device", &self->balloon_device, error) ||
	    !get_bool(args, "balloon-driver", &self->balloon_driver, error) ||
	    !get_bool(args, "lying-stats", &self->lying_stats, error) ||
	    !get_bool(args, "under-reporting", &self->under_reporting, error) ||
	    !get_bool(args, "stats-unset", &self->stats_unset, error))
		return FALSE;
	v = (gint64)self->rate_mib_s;
	if (!get_int(args, "rate-mib-s", FALSE, &v, error))
		return FALSE;
	if (v <= 0) {
		g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC_ERROR,
			    "Parameter 'rate-mib-s' must be positive, got %" G_GINT64_FORMAT, v);
		return FALSE;
	}
	self->rate_mib_s = (guint64)v;
	v = self->tick_ms;
	if (!get_int(args, "tick-ms", FALSE, &v, error))
		return FALSE;
	if (v <= 0 || v > 60000) {
		g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC_ERROR,
			    "Parameter 'tick-ms' must be 1..60000, got %" G_GINT64_FORMAT, v);
		return FALSE;
	}
	self->tick_ms = (guint)v;
	/* what the next dirty-rate measure finds; an old QEMU (none at start) stays old */
	v = self->dirty_mib_s;
	if (!get_int(args, "dirty-mib-s", FALSE, &v, error))
		return FALSE;
	if (v != self->dirty_mib_s && (self->dirty_mib_s < 0 || v < 0)) {
		g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC_ERROR,
			    "Parameter 'dirty-mib-s' must be >= 0 on a fake started with "
			    "--dirty-mib-s, got %" G_GINT64_FORMAT,
			    v);
		return FALSE;
	}
	self->dirty_mib_s = v;
	v = -2;
	if (!get_int(args, "garbage-after", FALSE, &v, error))
		return FALSE;
	if (v != -2)
		self->garbage_after = v < 0 ? -1 : (gint64)self->commands_seen + v;
	v = -2;
	if (!get_int(args, "exit-after", FALSE, &v, error))
		return FALSE;
	if (v != -2)
		self->exit_after = v < 0 ? -1 : (gint64)self->commands_seen + v;
	s = NULL;
	if (!get_str(args, "exit-on", FALSE, &s, error))
		return FALSE;
	if (s != NULL) {
		g_free(self->exit_on);
		self->exit_on = *s != '\0' ? g_strdup(s) : NULL;
	}
	/* A driver that comes back resumes the balloon; a changed guest reports at once. */
	fake_qemu_kick(self);
	if (self->stats_interval > 0)
		stats_poll(self);
	return TRUE;
}

/* --- QMP commands ------------------------------------------------------- */

typedef JsonNode *(*CommandFunc)(FakeQemu *self, JsonObject *args, GError **error);

static gboolean
require_balloon(FakeQemu *self, GError **error)
{
	if (!self->balloon_device) {
		g_set_error_literal(error, QMP_ERROR, QMP_ERROR_DEVICE_NOT_ACTIVE,
				    "No balloon device has been activated");
		return FALSE;
	}
	return TRUE;
}

static JsonNode *
cmd_query_status(FakeQemu *self, JsonObject *args, GError **error)
{
	JsonObject *obj;

	if (!check_args(args, NULL, error))
		return NULL;
	obj = json_object_new();
	json_object_set_string_member(obj, "status", "running");
	json_object_set_boolean_member(obj, "singlestep", FALSE);
	json_object_set_boolean_member(obj, "running", TRUE);
	return node_from_object(obj);
}

static JsonObject *
version_object(void)
{
	JsonObject *version = json_object_new();
	JsonObject *qemu = json_object_new();

	json_object_set_int_member(qemu, "micro", 0);
	json_object_set_int_member(qemu, "minor", 2);
	json_object_set_int_member(qemu, "major", 7);
	json_object_set_object_member(version, "qemu", qemu);
	json_object_set_string_member(version, "package", "vmbc-fake-qemu");
	return version;
}

static JsonNode *
cmd_query_version(FakeQemu *self, JsonObject *args, GError **error)
{
	if (!check_args(args, NULL, error))
		return NULL;
	return node_from_object(version_object());
}

static JsonNode *
cmd_query_balloon(FakeQemu *self, JsonObject *args, GError **error)
{
	JsonObject *obj;

	if (!check_args(args, NULL, error) || !require_balloon(self, error))
		return NULL;
	obj = json_object_new();
	json_object_set_int_member(obj, "actual", (gint64)current_actual(self));
	return node_from_object(obj);
}

static JsonNode *
cmd_balloon(FakeQemu *self, JsonObject *args, GError **error)
{
	static const gchar *const allowed[] = {"value", NULL};
	gint64 value = 0;

	if (!check_args(args, allowed, error) || !get_int(args, "value", TRUE, &value, error))
		return NULL;
	if (!require_balloon(self, error))
		return NULL;
	if (value <= 0) {
		g_set_error_literal(error, QMP_ERROR, QMP_ERROR_GENERIC_ERROR,
				    "Parameter 'target' expects a size");
		return NULL;
	}
	guest_balloon(self, (guint64)value);
	return NULL;
}

static JsonNode *
cmd_query_memory_size_summary(FakeQemu *self, JsonObject *args, GError **error)
{
	JsonObject *obj;
	FakeGuestState st;

	if (!check_args(args, NULL, error))
		return NULL;
	fake_guest_get_state(self->guest, &st);
	obj = json_object_new();
	json_object_set_int_member(obj, "base-memory", (gint64)page_bytes(st.ram));
	json_object_set_int_member(obj, "plugged-memory", 0);
	return node_from_object(obj);
}

/* query-memdev: the pretend guest's RAM is one memory-backend-ram, "pc.ram", as with QEMU's -m. */
static JsonNode *
cmd_query_memdev(FakeQemu *self, JsonObject *args, GError **error)
{
	JsonArray *arr;
	JsonObject *obj;
	FakeGuestState st;

	if (!check_args(args, NULL, error))
		return NULL;
	fake_guest_get_state(self->guest, &st);
	obj = json_object_new();
	json_object_set_string_member(obj, "id", "pc.ram");
	json_object_set_int_member(obj, "size", (gint64)page_bytes(st.ram));
	json_object_set_boolean_member(obj, "share", FALSE);
	json_object_set_boolean_member(obj, "merge", TRUE);
	json_object_set_string_member(obj, "policy", "default");
	arr = json_array_new();
	json_array_add_object_element(arr, obj);
	return json_node_init_array(json_node_alloc(), arr);
}

/*
 * human-monitor-command, the two commands vmbcd asks: "info mtree -f" (the
 * pretend RAM at guest-physical 0, as QEMU 7.2 prints it) and "gpa2hva ADDR"
 * (the real address of the pretend RAM, so /proc is true); other HMP commands
 * answer as QEMU does for an unknown one.
 */
static JsonNode *
cmd_human_monitor_command(FakeQemu *self, JsonObject *args, GError **error)
{
	static const gchar *const allowed[] = {"command-line", "cpu-index", NULL};
	JsonNode *line_node;
	const gchar *line;
	FakeGuestState st;
	g_autofree gchar *text = NULL;

	if (!check_args(args, allowed, error))
		return NULL;
	line_node = get_arg(args, "command-line", TRUE, error);
	if (line_node == NULL)
		return NULL;
	if (!node_is(line_node, G_TYPE_STRING)) {
		g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC_ERROR,
			    "Invalid parameter type for 'command-line', expected: string");
		return NULL;
	}
	line = json_node_get_string(line_node);
	fake_guest_get_state(self->guest, &st);
	if (g_strcmp0(line, "info mtree -f") == 0) {
		text = g_strdup_printf("FlatView #0\r\n"
				       " AS \"memory\", root: system\r\n"
				       " Root memory region: system\r\n"
				       "  0000000000000000-%016" G_GINT64_MODIFIER
				       "x (prio 0, ram): pc.ram\r\n\r\n",
				       page_bytes(st.ram) - 1);
	} else if (g_str_has_prefix(line, "gpa2hva ")) {
		guint64 gpa = g_ascii_strtoull(line + 8, NULL, 0);
		guintptr ram = (guintptr)fake_guest_get_ram(self->guest, NULL);

		if (gpa < page_bytes(st.ram))
			text = g_strdup_printf("Host virtual address for 0x%" G_GINT64_MODIFIER
					       "x (pc.ram) is %p\r\n",
					       gpa, (gpointer)(ram + gpa));
		else
			text = g_strdup_printf(
				"No memory is mapped at address 0x%" G_GINT64_MODIFIER "x\r\n",
				gpa);
	} else {
		text = g_strdup_printf("unknown command: '%s'\r\n", line);
	}
	return json_node_init_string(json_node_alloc(), text);
}

/* Checks a qom-get/qom-set path; only the balloon (and its backend) exist here. */
static gboolean
check_qom_path(FakeQemu *self, const gchar *path, GError **error)
{
	if (!self->balloon_device ||
	    (g_strcmp0(path, BALLOON_PATH) != 0 && g_strcmp0(path, BALLOON_BACKEND) != 0)) {
		g_set_error(error, QMP_ERROR, QMP_ERROR_DEVICE_NOT_FOUND, "Device '%s' not found",
			    path);
		return FALSE;
	}
	return TRUE;
}

static const gchar *
qom_type(const gchar *path)
{
	return g_strcmp0(path, BALLOON_PATH) == 0 ? "virtio-balloon-pci" : "virtio-balloon-device";
}

static JsonNode *
cmd_qom_get(FakeQemu *self, JsonObject *args, GError **error)
{
	static const gchar *const allowed[] = {"path", "property", NULL};
	const gchar *path = NULL;
	const gchar *prop = NULL;

	if (!check_args(args, allowed, error) || !get_str(args, "path", TRUE, &path, error) ||
	    !get_str(args, "property", TRUE, &prop, error) || !check_qom_path(self, path, error))
		return NULL;
	if (g_strcmp0(prop, "guest-stats") == 0)
		return stats_to_node(self);
	if (g_strcmp0(prop, "guest-stats-polling-interval") == 0)
		return json_node_init_int(json_node_alloc(), self->stats_interval);
	if (g_strcmp0(prop, "free-page-reporting") == 0)
		return json_node_init_boolean(json_node_alloc(),
					      fake_guest_get_free_page_reporting(self->guest));
	if (g_strcmp0(prop, "free-page-hint") == 0 || g_strcmp0(prop, "deflate-on-oom") == 0)
		return json_node_init_boolean(json_node_alloc(), FALSE);
	if (g_strcmp0(prop, "realized") == 0)
		return json_node_init_boolean(json_node_alloc(), TRUE);
	if (g_strcmp0(prop, "type") == 0)
		return json_node_init_string(json_node_alloc(), qom_type(path));
	g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC_ERROR, "Property '%s.%s' not found",
		    qom_type(path), prop);
	return NULL;
}

static JsonNode *
cmd_qom_set(FakeQemu *self, JsonObject *args, GError **error)
{
	static const gchar *const allowed[] = {"path", "property", "value", NULL};
	static const gchar *const fixed[] = {"free-page-reporting", "free-page-hint",
					     "deflate-on-oom", NULL};
	const gchar *path = NULL;
	const gchar *prop = NULL;
	gint64 value = 0;

	if (!check_args(args, allowed, error) || !get_str(args, "path", TRUE, &path, error) ||
	    !get_str(args, "property", TRUE, &prop, error) ||
	    get_arg(args, "value", TRUE, error) == NULL || !check_qom_path(self, path, error))
		return NULL;
	if (g_strcmp0(prop, "guest-stats-polling-interval") == 0) {
		if (!node_is(json_object_get_member(args, "value"), G_TYPE_INT64)) {
			g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC_ERROR,
				    "Invalid parameter type for '%s', expected: integer", prop);
			return NULL;
		}
		value = json_object_get_int_member(args, "value");
		if (value < 0) {
			g_set_error_literal(error, QMP_ERROR, QMP_ERROR_GENERIC_ERROR,
					    "timer value must be greater than zero");
			return NULL;
		}
		if (value > G_MAXUINT32) {
			g_set_error_literal(error, QMP_ERROR, QMP_ERROR_GENERIC_ERROR,
					    "timer value is too big");
			return NULL;
		}
		stats_set_interval(self, value);
		return NULL;
	}
	if (g_strv_contains(fixed, prop)) {
		g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC_ERROR,
			    "Attempt to set property '%s' on anonymous device (type "
			    "'virtio-balloon-device') after it was realized",
			    prop);
		return NULL;
	}
	if (g_strcmp0(prop, "guest-stats") == 0 || g_strcmp0(prop, "type") == 0 ||
	    g_strcmp0(prop, "realized") == 0) {
		g_set_error_literal(error, QMP_ERROR, QMP_ERROR_GENERIC_ERROR,
				    "Insufficient permission to perform this operation");
		return NULL;
	}
	g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC_ERROR, "Property '%s.%s' not found",
		    qom_type(path), prop);
	return NULL;
}

static JsonNode *
cmd_quit(FakeQemu *self, JsonObject *args, GError **error)
{
	if (!check_args(args, NULL, error))
		return NULL;
	fake_qemu_shutdown(self, FALSE, "host-qmp-quit");
	return NULL;
}

static JsonNode *
state_node(FakeQemu *self)
{
	g_autoptr(GError) error = NULL;
	JsonObject *obj = json_object_new();
	FakeGuestState st;
	guint64 measured;

	fake_guest_get_state(self->guest, &st);
	measured = fake_guest_measure_resident(self->guest, &error);
	if (error != NULL)
		g_warning("%s", error->message);
	json_object_set_int_member(obj, "page-size", (gint64)fake_guest_get_page_size());
	json_object_set_int_member(obj, "ram", (gint64)page_bytes(st.ram));
	json_object_set_int_member(obj, "used", (gint64)page_bytes(st.anon + st.cache));
	json_object_set_int_member(obj, "anon", (gint64)page_bytes(st.anon));
	json_object_set_int_member(obj, "cache", (gint64)page_bytes(st.cache));
	json_object_set_int_member(obj, "free",
				   (gint64)page_bytes(st.free_resident + st.free_clean));
	json_object_set_int_member(obj, "free-resident", (gint64)page_bytes(st.free_resident));
	json_object_set_int_member(obj, "balloon", (gint64)page_bytes(st.balloon));
	json_object_set_int_member(obj, "balloon-target", (gint64)page_bytes(st.balloon_target));
	json_object_set_int_member(obj, "actual", (gint64)page_bytes(st.ram - st.balloon));
	json_object_set_int_member(obj, "rss",
				   (gint64)page_bytes(st.anon + st.cache + st.free_resident));
	json_object_set_int_member(obj, "rss-measured", (gint64)page_bytes(measured));
	/* where the guest RAM is mapped, for tests that find it in /proc/PID/smaps by address */
	json_object_set_int_member(obj, "ram-address",
				   (gint64)(guintptr)fake_guest_get_ram(self->guest, NULL));
	json_object_set_boolean_member(obj, "fpr", fake_guest_get_free_page_reporting(self->guest));
	json_object_set_int_member(obj, "commands", (gint64)self->commands_seen);
	return node_from_object(obj);
}

static gboolean
get_touch_args(JsonObject *args, gboolean *anon, guint64 *mib, GError **error)
{
	static const gchar *const allowed[] = {"mib", "kind", NULL};
	const gchar *kind = "anon";
	gint64 v = 0;

	if (!check_args(args, allowed, error) || !get_int(args, "mib", TRUE, &v, error) ||
	    !get_str(args, "kind", FALSE, &kind, error))
		return FALSE;
	if (v < 0) {
		g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC_ERROR,
			    "Parameter 'mib' must not be negative, got %" G_GINT64_FORMAT, v);
		return FALSE;
	}
	if (!fake_script_parse_kind(kind, anon)) {
		g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC_ERROR,
			    "Parameter 'kind' must be 'anon' or 'cache', got '%s'", kind);
		return FALSE;
	}
	*mib = (guint64)v;
	return TRUE;
}

static JsonNode *
cmd_x_fake_touch(FakeQemu *self, JsonObject *args, GError **error)
{
	gboolean anon = TRUE;
	guint64 mib = 0;
	guint64 done;
	JsonNode *node;

	if (!get_touch_args(args, &anon, &mib, error))
		return NULL;
	done = guest_touch(self, anon, mib);
	node = state_node(self);
	json_object_set_int_member(json_node_get_object(node), "done", (gint64)done);
	return node;
}

static JsonNode *
cmd_x_fake_free(FakeQemu *self, JsonObject *args, GError **error)
{
	gboolean anon = TRUE;
	guint64 mib = 0;
	guint64 done;
	JsonNode *node;

	if (!get_touch_args(args, &anon, &mib, error))
		return NULL;
	done = guest_free(self, anon, mib);
	node = state_node(self);
	json_object_set_int_member(json_node_get_object(node), "done", (gint64)done);
	return node;
}

static JsonNode *
cmd_x_fake_set(FakeQemu *self, JsonObject *args, GError **error)
{
	if (!apply_settings(self, args, error))
		return NULL;
	return NULL;
}

static JsonNode *
cmd_x_fake_state(FakeQemu *self, JsonObject *args, GError **error)
{
	if (!check_args(args, NULL, error))
		return NULL;
	return state_node(self);
}

/* QEMU 7.2's calc-dirty-rate: starts a measure of calc-time seconds, answers at once. */
static JsonNode *
cmd_calc_dirty_rate(FakeQemu *self, JsonObject *args, GError **error)
{
	static const gchar *const allowed[] = {"calc-time", "sample-pages", "mode", NULL};

	if (!check_args(args, allowed, error))
		return NULL;
	if (args == NULL || !json_object_has_member(args, "calc-time")) {
		g_set_error_literal(error, QMP_ERROR, QMP_ERROR_GENERIC_ERROR,
				    "Parameter 'calc-time' is missing");
		return NULL;
	}
	self->dirty_calc_sec = json_object_get_int_member(args, "calc-time");
	self->dirty_calc_start = g_get_monotonic_time();
	return node_from_object(json_object_new());
}

/* query-dirty-rate: "measuring" until calc-time passed, then "measured" with the rate. */
static JsonNode *
cmd_query_dirty_rate(FakeQemu *self, JsonObject *args, GError **error)
{
	JsonObject *obj;

	if (!check_args(args, NULL, error))
		return NULL;
	obj = json_object_new();
	if (self->dirty_calc_start == 0) {
		json_object_set_string_member(obj, "status", "unstarted");
	} else if (g_get_monotonic_time() - self->dirty_calc_start <
		   self->dirty_calc_sec * G_USEC_PER_SEC) {
		json_object_set_string_member(obj, "status", "measuring");
	} else {
		json_object_set_string_member(obj, "status", "measured");
		json_object_set_int_member(obj, "dirty-rate", self->dirty_mib_s);
	}
	json_object_set_int_member(obj, "sample-pages", 512);
	json_object_set_string_member(obj, "mode", "page-sampling");
	json_object_set_int_member(obj, "calc-time", self->dirty_calc_sec);
	return node_from_object(obj);
}

static const struct {
	const gchar *name;
	CommandFunc func;
} commands[] = {
	{"calc-dirty-rate", cmd_calc_dirty_rate},
	{"query-dirty-rate", cmd_query_dirty_rate},
	{"balloon", cmd_balloon},
	{"human-monitor-command", cmd_human_monitor_command},
	{"qom-get", cmd_qom_get},
	{"qom-set", cmd_qom_set},
	{"query-balloon", cmd_query_balloon},
	{"query-commands", NULL}, /* answered in on_command: it lists this table */
	{"query-memdev", cmd_query_memdev},
	{"query-memory-size-summary", cmd_query_memory_size_summary},
	{"query-status", cmd_query_status},
	{"query-version", cmd_query_version},
	{"quit", cmd_quit},
	{"x-fake-free", cmd_x_fake_free},
	{"x-fake-set", cmd_x_fake_set},
	{"x-fake-state", cmd_x_fake_state},
	{"x-fake-touch", cmd_x_fake_touch},
};

/* Whether this fake has @name: an old QEMU (no --dirty-mib-s) has no dirty-rate commands. */
static gboolean
has_command(FakeQemu *self, const gchar *name)
{
	return self->dirty_mib_s >= 0 || !g_str_has_suffix(name, "-dirty-rate");
}

static JsonNode *
query_commands(FakeQemu *self)
{
	JsonArray *arr = json_array_new();
	JsonNode *node = json_node_new(JSON_NODE_ARRAY);
	JsonObject *cap = json_object_new();

	json_object_set_string_member(cap, "name", "qmp_capabilities");
	json_array_add_object_element(arr, cap);
	for (guint i = 0; i < G_N_ELEMENTS(commands); i++) {
		JsonObject *obj;
		if (!has_command(self, commands[i].name))
			continue;
		obj = json_object_new();
		json_object_set_string_member(obj, "name", commands[i].name);
		json_array_add_object_element(arr, obj);
	}
	json_node_take_array(node, arr);
	return node;
}

static const gchar garbage[] = "\xff\xfe}{ not json at all \x01\x02\r\n";

static void
on_connection_opened(QmpServer *server, QmpServerConnection *conn, gpointer user_data)
{
	FakeQemu *self = user_data;

	g_debug("QMP connection from pid %d", (int)qmp_server_connection_get_peer_pid(conn));
	/* The greeting is already queued on the connection: this lands right after it. */
	if (self->garbage_after == 0)
		qmp_server_connection_send_raw(conn, garbage, sizeof(garbage) - 1);
}

/* A QEMU that dies mid-command: no reply, no cleanup but the socket file. */
static G_NORETURN void
die_mid_command(FakeQemu *self, const gchar *name)
{
	g_message("exiting in the middle of command '%s' (fault injection)", name);
	remove_socket(self);
	fflush(stdout);
	_exit(EXIT_MID_COMMAND);
}

static gboolean
on_command(QmpServer *server, QmpServerConnection *conn, const gchar *name, JsonObject *args,
	   QmpRequest *request, gpointer user_data)
{
	FakeQemu *self = user_data;
	g_autoptr(GError) error = NULL;
	JsonNode *result = NULL;
	gboolean found = FALSE;

	self->commands_seen++;
	if ((self->exit_on != NULL && g_strcmp0(self->exit_on, name) == 0) ||
	    (self->exit_after >= 0 && (gint64)self->commands_seen > self->exit_after))
		die_mid_command(self, name);

	if (g_strcmp0(name, "query-commands") == 0) {
		found = TRUE;
		result = query_commands(self);
	}
	for (guint i = 0; !found && i < G_N_ELEMENTS(commands); i++) {
		if (g_strcmp0(commands[i].name, name) != 0 || !has_command(self, name))
			continue;
		found = TRUE;
		result = commands[i].func(self, args, &error);
	}
	if (!found) {
		/* Every other handler declines too: the server answers CommandNotFound. */
		g_debug("unknown command '%s'", name);
		return FALSE;
	}

	if (error != NULL) {
		QmpError code = error->domain == QMP_ERROR ? (QmpError)error->code
							   : QMP_ERROR_GENERIC_ERROR;
		qmp_request_error(request, code, "%s", error->message);
	} else {
		qmp_request_return(request, result);
	}

	if (self->garbage_after > 0 && (gint64)self->commands_seen == self->garbage_after)
		qmp_server_connection_send_raw(conn, garbage, sizeof(garbage) - 1);
	return TRUE;
}

/* --- lifetime ----------------------------------------------------------- */

static gboolean
on_quit_timer(gpointer user_data)
{
	FakeQemu *self = user_data;

	g_main_loop_quit(self->loop);
	return G_SOURCE_REMOVE;
}

/* Sends SHUTDOWN as QEMU does, then leaves the main loop once the event had time to go out. */
static void
fake_qemu_shutdown(FakeQemu *self, gboolean guest, const gchar *reason)
{
	g_autoptr(JsonObject) data = json_object_new();

	if (self->shutting_down)
		return;
	self->shutting_down = TRUE;
	g_info("shutting down: %s", reason);
	json_object_set_boolean_member(data, "guest", guest);
	json_object_set_string_member(data, "reason", reason);
	qmp_server_broadcast_event(self->server, "SHUTDOWN", data);
	g_timeout_add(50, on_quit_timer, self);
}

static gboolean
on_signal(gpointer user_data)
{
	fake_qemu_shutdown(user_data, FALSE, "host-signal");
	return G_SOURCE_CONTINUE;
}

/* Once a second: a removed (or replaced) socket file means the test is done with us. */
static gboolean
on_housekeeping(gpointer user_data)
{
	FakeQemu *self = user_data;
	struct stat sb;

	if (lstat(self->qmp_path, &sb) != 0 || sb.st_dev != self->sock_dev ||
	    sb.st_ino != self->sock_ino) {
		g_info("QMP socket %s is gone, exiting", self->qmp_path);
		g_clear_pointer(&self->qmp_path, g_free);
		fake_qemu_shutdown(self, FALSE, "host-signal");
		self->housekeeping_id = 0;
		return G_SOURCE_REMOVE;
	}
	return G_SOURCE_CONTINUE;
}

static gboolean
run_script_line(FakeQemu *self, const FakeScriptLine *line, GError **error)
{
	gboolean anon = TRUE;
	guint64 mib = 0;

	if (g_strcmp0(line->verb, "touch") == 0 || g_strcmp0(line->verb, "free") == 0) {
		(void)fake_script_parse_kind(line->args[0], &anon);
		mib = g_ascii_strtoull(line->args[1], NULL, 10);
		if (line->verb[0] == 't')
			guest_touch(self, anon, mib);
		else
			guest_free(self, anon, mib);
		return TRUE;
	}
	if (g_strcmp0(line->verb, "balloon") == 0) {
		if (!require_balloon(self, error))
			return FALSE;
		guest_balloon(self, g_ascii_strtoull(line->args[0], NULL, 10) * MIB);
		return TRUE;
	}
	if (g_strcmp0(line->verb, "set") == 0) {
		g_autoptr(JsonObject) args = json_object_new();
		const gchar *value = line->args[1];
		gint64 v;

		if (g_strcmp0(value, "true") == 0 || g_strcmp0(value, "on") == 0)
			json_object_set_boolean_member(args, line->args[0], TRUE);
		else if (g_strcmp0(value, "false") == 0 || g_strcmp0(value, "off") == 0)
			json_object_set_boolean_member(args, line->args[0], FALSE);
		else if (g_ascii_string_to_signed(value, 10, G_MININT64, G_MAXINT64, &v, NULL))
			json_object_set_int_member(args, line->args[0], v);
		else
			json_object_set_string_member(args, line->args[0], value);
		return apply_settings(self, args, error);
	}
	if (g_strcmp0(line->verb, "exit") == 0) {
		fake_qemu_shutdown(self, TRUE, "guest-shutdown");
		return TRUE;
	}
	g_assert_not_reached();
}

typedef struct {
	FakeQemu *self;
	const FakeScriptLine *line;
} ScriptCall;

static gboolean
on_script_timer(gpointer user_data)
{
	ScriptCall *call = user_data;
	g_autoptr(GError) error = NULL;

	g_debug("script line %u: %s", call->line->line, call->line->verb);
	if (!run_script_line(call->self, call->line, &error))
		g_warning("script line %u: %s", call->line->line, error->message);
	return G_SOURCE_REMOVE;
}

static void
script_start(FakeQemu *self)
{
	for (guint i = 0; self->script != NULL && i < self->script->len; i++) {
		ScriptCall *call = g_new0(ScriptCall, 1);
		call->self = self;
		call->line = g_ptr_array_index(self->script, i);
		g_timeout_add_full(G_PRIORITY_DEFAULT, (guint)(call->line->at * 1000),
				   on_script_timer, call, g_free);
	}
}

static JsonObject *
greeting_object(void)
{
	JsonObject *greeting = json_object_new();
	JsonArray *caps = json_array_new();

	json_array_add_string_element(caps, "oob");
	json_object_set_object_member(greeting, "version", version_object());
	json_object_set_array_member(greeting, "capabilities", caps);
	return greeting;
}

static gboolean
fake_qemu_listen(FakeQemu *self, GError **error)
{
	g_autoptr(JsonObject) greeting = greeting_object();
	struct stat sb;

	self->server = qmp_server_new(greeting);
	g_signal_connect(self->server, "command", G_CALLBACK(on_command), self);
	g_signal_connect(self->server, "connection-opened", G_CALLBACK(on_connection_opened), self);
	if (!qmp_server_listen_unix(self->server, self->qmp_path, error))
		return FALSE;
	if (lstat(self->qmp_path, &sb) != 0) {
		int saved = errno;
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved), "%s: %s",
			    self->qmp_path, g_strerror(saved));
		return FALSE;
	}
	self->sock_dev = sb.st_dev;
	self->sock_ino = sb.st_ino;
	return TRUE;
}

static void
fake_qemu_clear(FakeQemu *self)
{
	g_clear_handle_id(&self->tick_id, g_source_remove);
	g_clear_handle_id(&self->event_timer_id, g_source_remove);
	g_clear_handle_id(&self->stats_timer_id, g_source_remove);
	g_clear_handle_id(&self->housekeeping_id, g_source_remove);
	if (self->server != NULL)
		qmp_server_close(self->server);
	remove_socket(self);
	g_clear_object(&self->server);
	g_clear_pointer(&self->guest, fake_guest_free);
	g_clear_pointer(&self->script, g_ptr_array_unref);
	g_clear_pointer(&self->loop, g_main_loop_unref);
	if (self->balloon_log_fd >= 0)
		close(self->balloon_log_fd);
	self->balloon_log_fd = -1;
	g_clear_pointer(&self->qmp_path, g_free);
	g_clear_pointer(&self->exit_on, g_free);
}

int
main(int argc, char **argv)
{
	FakeQemu self_ = {0};
	FakeQemu *self = &self_;
	g_autoptr(GOptionContext) context = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *qmp_path = NULL;
	g_autofree gchar *script_path = NULL;
	g_autofree gchar *exit_mid_command = NULL;
	g_autofree gchar *balloon_log = NULL;
	gint64 mem_mib = 0;
	gint64 anon_mib = 0;
	gint64 cache_mib = 0;
	gint64 actual_mib = -1;
	gint64 rate_mib_s = 1024;
	gint64 dirty_mib_s = -1;
	gint64 slow_inflate = 0;
	gint64 tick_ms = 100;
	gint64 garbage_after = -1;
	gint64 stats_interval = 0;
	gboolean no_fpr = FALSE;
	gboolean no_balloon_device = FALSE;
	gboolean no_balloon_driver = FALSE;
	gboolean lying_stats = FALSE;
	gboolean under_reporting = FALSE;
	gboolean stats_unset = FALSE;
	gboolean die_with_parent = FALSE;
	const GOptionEntry entries[] = {
		{"qmp", 0, 0, G_OPTION_ARG_FILENAME, &qmp_path, "QMP UNIX socket to listen on",
		 "PATH"},
		{"mem-mib", 0, 0, G_OPTION_ARG_INT64, &mem_mib, "Guest RAM", "MIB"},
		{"anon-mib", 0, 0, G_OPTION_ARG_INT64, &anon_mib, "Guest anon memory at start",
		 "MIB"},
		{"cache-mib", 0, 0, G_OPTION_ARG_INT64, &cache_mib, "Guest page cache at start",
		 "MIB"},
		{"actual-mib", 0, 0, G_OPTION_ARG_INT64, &actual_mib,
		 "Start with the balloon already at this guest size", "MIB"},
		{"dirty-mib-s", 0, 0, G_OPTION_ARG_INT64, &dirty_mib_s,
		 "Answer calc-dirty-rate, the guest writing this many MiB/s (default: no such "
		 "command, as an old QEMU)",
		 "MIB"},
		{"rate-mib-s", 0, 0, G_OPTION_ARG_INT64, &rate_mib_s,
		 "Balloon speed (default 1024)", "MIBS"},
		{"slow-inflate", 0, 0, G_OPTION_ARG_INT64, &slow_inflate,
		 "Balloon speed for a slow guest", "MIBS"},
		{"tick-ms", 0, 0, G_OPTION_ARG_INT64, &tick_ms, "Guest model step (default 100)",
		 "MS"},
		{"no-fpr", 0, 0, G_OPTION_ARG_NONE, &no_fpr, "Free page reporting off", NULL},
		{"stats-interval", 0, 0, G_OPTION_ARG_INT64, &stats_interval,
		 "Guest stats polling interval at start", "SECS"},
		{"no-balloon-device", 0, 0, G_OPTION_ARG_NONE, &no_balloon_device,
		 "No virtio-balloon device: DeviceNotActive", NULL},
		{"no-balloon-driver", 0, 0, G_OPTION_ARG_NONE, &no_balloon_driver,
		 "Balloon device without guest driver: actual never moves", NULL},
		{"lying-stats", 0, 0, G_OPTION_ARG_NONE, &lying_stats, "Report absurd guest stats",
		 NULL},
		{"under-reporting", 0, 0, G_OPTION_ARG_NONE, &under_reporting,
		 "Guest reports 0 available and 0 free, whatever it has", NULL},
		{"stats-unset", 0, 0, G_OPTION_ARG_NONE, &stats_unset, "Guest never reports stats",
		 NULL},
		{"garbage", 0, 0, G_OPTION_ARG_INT64, &garbage_after,
		 "Write garbage after N commands (0: after the greeting)", "N"},
		{"exit-mid-command", 0, 0, G_OPTION_ARG_STRING, &exit_mid_command,
		 "Exit without replying on this command, or after N commands", "COMMAND|N"},
		{"script", 0, 0, G_OPTION_ARG_FILENAME, &script_path, "Timed guest actions",
		 "FILE"},
		{"die-with-parent", 0, 0, G_OPTION_ARG_NONE, &die_with_parent,
		 "Exit (as on SIGTERM) when the parent process dies", NULL},
		{"balloon-log", 0, 0, G_OPTION_ARG_FILENAME, &balloon_log,
		 "Append 'MONOTONIC_US REALTIME_US QMP_PATH VALUE' to FILE on each balloon command",
		 "FILE"},
		G_OPTION_ENTRY_NULL,
	};

	context = g_option_context_new("- a fake QEMU 7.2 for vmbc tests");
	g_option_context_add_main_entries(context, entries, NULL);
	if (!g_option_context_parse(context, &argc, &argv, &error)) {
		g_printerr("fake-qemu: %s\n", error->message);
		return 2;
	}
	if (qmp_path == NULL || mem_mib <= 0) {
		g_printerr("fake-qemu: --qmp PATH and --mem-mib N (> 0) are required\n");
		return 2;
	}
	if (anon_mib < 0 || cache_mib < 0 || rate_mib_s <= 0 || slow_inflate < 0 || tick_ms <= 0 ||
	    tick_ms > 60000 || stats_interval < 0 || stats_interval > G_MAXUINT32 ||
	    actual_mib > mem_mib) {
		g_printerr("fake-qemu: invalid option value\n");
		return 2;
	}

	/* A test that crashes must not leave its fake QEMUs behind. */
	if (die_with_parent && prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) {
		g_printerr("fake-qemu: prctl(PR_SET_PDEATHSIG): %s\n", g_strerror(errno));
		return 1;
	}

	self->balloon_log_fd = -1;
	if (balloon_log != NULL) {
		self->balloon_log_fd =
			open(balloon_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (self->balloon_log_fd < 0) {
			g_printerr("fake-qemu: %s: %s\n", balloon_log, g_strerror(errno));
			return 1;
		}
	}

	self->guest = fake_guest_new((guint64)mem_mib, &error);
	if (self->guest == NULL) {
		g_printerr("fake-qemu: %s\n", error->message);
		return 1;
	}
	self->tick_ms = (guint)tick_ms;
	self->dirty_mib_s = dirty_mib_s;
	self->rate_mib_s = (guint64)(slow_inflate > 0 ? slow_inflate : rate_mib_s);
	self->balloon_device = !no_balloon_device;
	self->balloon_driver = !no_balloon_driver;
	self->lying_stats = lying_stats;
	self->under_reporting = under_reporting;
	self->stats_unset = stats_unset;
	self->garbage_after = garbage_after < 0 ? -1 : garbage_after;
	self->exit_after = -1;
	if (!parse_exit_mid_command(self, exit_mid_command, &error)) {
		g_printerr("fake-qemu: --exit-mid-command: %s\n", error->message);
		fake_qemu_clear(self);
		return 2;
	}
	stats_reset(self);
	fake_guest_set_free_page_reporting(self->guest, !no_fpr);

	if (script_path != NULL) {
		g_autofree gchar *text = NULL;
		if (!g_file_get_contents(script_path, &text, NULL, &error) ||
		    (self->script = fake_script_parse(script_path, text, &error)) == NULL) {
			g_printerr("fake-qemu: %s\n", error->message);
			fake_qemu_clear(self);
			return 2;
		}
	}

	/* The starting guest, settled before anyone can look. */
	fake_guest_touch(self->guest, FAKE_MEM_ANON,
			 (guint64)anon_mib * MIB / fake_guest_get_page_size());
	fake_guest_touch(self->guest, FAKE_MEM_CACHE,
			 (guint64)cache_mib * MIB / fake_guest_get_page_size());
	if (actual_mib >= 0 && self->balloon_device) {
		FakeGuestState st;
		fake_guest_get_state(self->guest, &st);
		fake_guest_set_balloon_target(self->guest,
					      st.ram - (guint64)actual_mib * MIB /
							       fake_guest_get_page_size());
		while (fake_guest_step(self->guest, st.ram))
			;
	}
	fake_guest_step(self->guest, 0);
	self->reported_actual = current_actual(self);

	self->qmp_path = g_steal_pointer(&qmp_path);
	self->loop = g_main_loop_new(NULL, FALSE);
	if (!fake_qemu_listen(self, &error)) {
		g_printerr("fake-qemu: cannot listen on %s: %s\n", self->qmp_path, error->message);
		fake_qemu_clear(self);
		return 1;
	}
	g_unix_signal_add(SIGTERM, on_signal, self);
	g_unix_signal_add(SIGINT, on_signal, self);
	g_unix_signal_add(SIGHUP, on_signal, self);
	self->housekeeping_id = g_timeout_add_seconds(1, on_housekeeping, self);
	if (stats_interval > 0)
		stats_set_interval(self, stats_interval);
	script_start(self);

	g_print("%d ready\n", (int)getpid());
	fflush(stdout);
	g_main_loop_run(self->loop);

	fake_qemu_clear(self);
	return self->exit_code;
}
