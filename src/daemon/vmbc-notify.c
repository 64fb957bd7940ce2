/*
 * vmbc-notify.c: READY, STATUS and WATCHDOG for the service manager (see
 * vmbc-notify.h).
 *
 * The watchdog is fed by a timeout on the main loop, every half of the
 * interval systemd asked for, and only while the tick runs: a main loop that
 * hangs feeds nothing, and neither does one that goes on without ticking
 * (the tick is what holds VMs to their limits). systemd then restarts vmbcd,
 * which re-adopts its VMs and their balloons as they are.
 *
 * STATUS= changes with events (a VM added or removed, a limit hit, a reclaim
 * done or failed): one sent at most every VMBC_NOTIFY_STATUS_MS after one,
 * and one every VMBC_NOTIFY_REFRESH_SECONDS in case a count changed without
 * an event. A vmbcd with nothing happening is not woken for it.
 */
#include "config.h"

#include <systemd/sd-daemon.h>

#include "vmbc-notify.h"

/* How often the first pass is looked at before READY; STATUS= (above). */
#define VMBC_NOTIFY_POLL_MS	    100
#define VMBC_NOTIFY_STATUS_MS	    2000
#define VMBC_NOTIFY_REFRESH_SECONDS 30

struct _VmbcNotify {
	VmbcDaemon *daemon;
	gboolean ready;
	gint64 started_at; /* monotonic usec */
	guint poll_id;
	guint status_id;  /* a STATUS= after events, one-shot */
	guint refresh_id; /* a STATUS= now and then */
	gchar *last_status;

	guint watchdog_id;
	guint64 watchdog_usec;
	guint64 last_ticks;
	gint64 last_tick_seen_at;  /* monotonic usec the tick count last moved */
	gboolean watchdog_starved; /* warned that the tick stopped */
};

gchar *
vmbc_notify_status_text(const VmbcDaemonSummary *summary)
{
	return g_strdup_printf("%u VM%s, %u over limit, %u failing", summary->vms,
			       summary->vms == 1 ? "" : "s", summary->over_limit, summary->failing);
}

static void
notify_send_status(VmbcNotify *self, gboolean ready)
{
	VmbcDaemonSummary summary;
	g_autofree gchar *status = NULL;
	g_autofree gchar *msg = NULL;
	gint r;

	vmbc_daemon_get_summary(self->daemon, &summary);
	status = vmbc_notify_status_text(&summary);
	if (!ready && g_strcmp0(status, self->last_status) == 0)
		return;
	msg = g_strdup_printf("%sSTATUS=%s", ready ? "READY=1\n" : "", status);
	r = sd_notify(0, msg);
	if (r < 0)
		g_debug("sd_notify: %s", g_strerror(-r));
	g_free(self->last_status);
	self->last_status = g_steal_pointer(&status);
}

static gboolean
notify_on_status(gpointer user_data)
{
	VmbcNotify *self = user_data;

	self->status_id = 0;
	notify_send_status(self, FALSE);
	return G_SOURCE_REMOVE;
}

static gboolean
notify_on_refresh(gpointer user_data)
{
	notify_send_status(user_data, FALSE);
	return G_SOURCE_CONTINUE;
}

/* Any event may change a count STATUS= shows: sent a little later, with those after it. */
static void
notify_on_event(VmbcDaemon *daemon, const VmbcEvent *event, gpointer user_data)
{
	VmbcNotify *self = user_data;

	if (!self->ready || self->status_id != 0)
		return;
	self->status_id = g_timeout_add(VMBC_NOTIFY_STATUS_MS, notify_on_status, self);
	g_source_set_name_by_id(self->status_id, "[vmbcd] status");
}

static gboolean
notify_on_poll(gpointer user_data)
{
	VmbcNotify *self = user_data;
	gdouble waited = (gdouble)(g_get_monotonic_time() - self->started_at) / G_USEC_PER_SEC;
	gboolean done = vmbc_daemon_first_pass_done(self->daemon);

	if (!done && waited < VMBC_NOTIFY_READY_TIMEOUT_SECONDS)
		return G_SOURCE_CONTINUE;
	if (!done)
		g_warning("the first adoption pass is not over after %.0f s (a VM that does not "
			  "answer?): telling systemd vmbcd is ready all the same",
			  waited);
	self->poll_id = 0;
	self->ready = TRUE;
	notify_send_status(self, TRUE);
	g_info("ready after %.2f s: %s", waited, self->last_status);
	self->refresh_id =
		g_timeout_add_seconds(VMBC_NOTIFY_REFRESH_SECONDS, notify_on_refresh, self);
	g_source_set_name_by_id(self->refresh_id, "[vmbcd] status refresh");
	return G_SOURCE_REMOVE;
}

static gboolean
notify_on_watchdog(gpointer user_data)
{
	VmbcNotify *self = user_data;
	const VmbcTickStats *st = vmbc_daemon_get_tick_stats(self->daemon);
	gint64 now = g_get_monotonic_time();
	gint64 tick_usec = vmbc_daemon_get_config(self->daemon)->engine.tick_usec;
	gint64 since;

	if (st->ticks != self->last_ticks) {
		self->last_ticks = st->ticks;
		self->last_tick_seen_at = now;
	}
	/* two ticks late, and the half interval this timer may itself lag */
	since = now - self->last_tick_seen_at;
	if (since > 2 * tick_usec + (gint64)self->watchdog_usec / 2) {
		if (!self->watchdog_starved)
			g_warning("no tick for %.1f s: the watchdog is no longer fed",
				  (gdouble)since / G_USEC_PER_SEC);
		self->watchdog_starved = TRUE;
		return G_SOURCE_CONTINUE;
	}
	self->watchdog_starved = FALSE;
	(void)sd_notify(0, "WATCHDOG=1");
	return G_SOURCE_CONTINUE;
}

VmbcNotify *
vmbc_notify_new(VmbcDaemon *daemon)
{
	VmbcNotify *self = g_new0(VmbcNotify, 1);
	uint64_t usec = 0;

	self->daemon = daemon;
	self->started_at = g_get_monotonic_time();
	self->last_tick_seen_at = self->started_at;
	self->poll_id = g_timeout_add(VMBC_NOTIFY_POLL_MS, notify_on_poll, self);
	g_source_set_name_by_id(self->poll_id, "[vmbcd] ready");
	vmbc_daemon_add_event_listener(daemon, notify_on_event, self);

	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		self->watchdog_usec = usec;
		self->watchdog_id =
			g_timeout_add((guint)MAX(usec / 2000, 1), notify_on_watchdog, self);
		g_source_set_name_by_id(self->watchdog_id, "[vmbcd] watchdog");
		g_info("watchdog: fed every %.1f s while the tick runs", (gdouble)usec / 2e6);
	}
	return self;
}

void
vmbc_notify_free(VmbcNotify *self)
{
	if (self == NULL)
		return;
	(void)sd_notify(0, "STOPPING=1");
	vmbc_daemon_remove_event_listener(self->daemon, notify_on_event, self);
	g_clear_handle_id(&self->poll_id, g_source_remove);
	g_clear_handle_id(&self->status_id, g_source_remove);
	g_clear_handle_id(&self->refresh_id, g_source_remove);
	g_clear_handle_id(&self->watchdog_id, g_source_remove);
	g_free(self->last_status);
	g_free(self);
}
