/*
 * vmbc-daemon.c: the daemon proper. It wires the engine to the backends (the
 * engine's actuator dispatches to the backend that owns the VM), applies
 * configured and saved limits when a VM appears, runs the tick, and keeps
 * runtime limit changes in the state file.
 */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include "vmbc-daemon.h"
#include "vmbc-daemon-follow.h"
#include "vmbc-daemon-limits.h"
#include "vmbc-host-monitor.h"
#include "vmbc-physpages.h"
#include "vmbc-plugin-table.h"
#include "vmbc-schedule.h"

/* A crash loses at most this much counting of maxheld and failcnt. */
#define VMBC_COUNTERS_SAVE_SECONDS 30
/* How long the state file waits after a VM ended, for others that end with it. */
#define VMBC_DEFERRED_SAVE_MS 1000

const gdouble vmbc_tick_bucket_bounds[VMBC_TICK_BUCKETS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
};

typedef struct {
	VmbcDaemonEventFunc func;
	gpointer user_data;
} Listener;

struct _VmbcDaemon {
	VmbcBackendHost host; /* what the backends see of the daemon: first, for the casts */
	VmbcConfig *config;
	VmbcEngine *engine;
	VmbcState *state;
	GPtrArray *backends; /* VmbcBackend*, owned */
	GHashTable *owner;   /* VmbcBeancounter* -> VmbcBackend* */
	guint tick_id;
	guint follow_id;	 /* between ticks, while the engine follows a VM */
	guint save_id;		 /* periodic save of the counters */
	guint deferred_save_id;	 /* one save for a burst of changes that may wait */
	gboolean running;	 /* between start and stop: the state file follows changes */
	guint64 balloon_changes; /* the engine's count when the claims were last kept */
	gint64 tick_usec;
	VmbcTickStats tick_stats;
	GArray *listeners;
	VmbcHostMonitor *host_monitor; /* the host's budget, PSI and swap */
};

static gboolean
actuator_set_balloon(VmbcEngine *engine, VmbcBeancounter *bc, gint64 target, gpointer user_data,
		     GError **error)
{
	VmbcDaemon *daemon = user_data;
	VmbcBackend *backend = g_hash_table_lookup(daemon->owner, bc);
	if (backend == NULL) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_NO_BALLOON, "'%s' has no backend",
			    bc->name);
		return FALSE;
	}
	return vmbc_backend_set_balloon(backend, bc, target, error);
}

static gboolean
actuator_escalate(VmbcEngine *engine, VmbcBeancounter *bc, VmbcEscalation how, gpointer user_data,
		  GError **error)
{
	VmbcDaemon *daemon = user_data;
	VmbcBackend *backend = g_hash_table_lookup(daemon->owner, bc);
	if (backend == NULL) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED, "'%s' has no backend", bc->name);
		return FALSE;
	}
	return vmbc_backend_escalate(backend, bc, how, error);
}

static void schedule_save(VmbcDaemon *daemon);
static const VmbcBackendHostInterface backend_host_iface;

/*
 * Puts what vmbcd set on @bc's balloon, and what is known of its driver, in
 * the state (in memory); TRUE if that changed it. A claim restored from the
 * file and not yet checked against the balloon stays as the file has it.
 */
static gboolean
keep_balloon(VmbcDaemon *daemon, VmbcBeancounter *bc)
{
	VmbcBalloonState driver = bc->balloon;
	gboolean changed;

	if (bc->balloon_claim_unconfirmed)
		return FALSE;
	/* no device is asked again at every adoption; unknown has nothing to keep */
	if (driver != VMBC_BALLOON_NO_DRIVER && driver != VMBC_BALLOON_OK)
		driver = VMBC_BALLOON_UNKNOWN;
	changed = vmbc_state_set_balloon_claim(daemon->state, bc->name, &bc->balloon_claim);
	if (vmbc_state_set_balloon(daemon->state, bc->name, driver))
		changed = TRUE;
	return changed;
}

/*
 * The engine changed a balloon claim since we last looked: the state file
 * follows soon, as it follows the memory-high mark, so that a crash from then
 * on still knows which balloons are vmbcd's.
 */
static void
keep_balloons(VmbcDaemon *daemon)
{
	g_autoptr(GPtrArray) vms = NULL;
	gboolean changed = FALSE;

	if (vmbc_engine_get_balloon_changes(daemon->engine) == daemon->balloon_changes)
		return;
	daemon->balloon_changes = vmbc_engine_get_balloon_changes(daemon->engine);
	/* only the VMs whose claim changed, not a walk of every VM each time one did */
	vms = vmbc_engine_take_balloon_changed(daemon->engine);
	for (guint i = 0; i < vms->len; i++) {
		if (keep_balloon(daemon, g_ptr_array_index(vms, i)))
			changed = TRUE;
	}
	if (changed)
		schedule_save(daemon);
}

static void
on_engine_event(VmbcEngine *engine, const VmbcEvent *in, gpointer user_data)
{
	VmbcDaemon *daemon = user_data;
	VmbcEvent copy = *in;
	const VmbcEvent *event = &copy;

	/* the core has no clock: the age of the sample behind a limit hit is measured here */
	if (in->sampled_at > 0 && in->sample_age_usec < 0)
		copy.sample_age_usec = vmbc_daemon_now(daemon) - in->sampled_at;

	/* the mark must outlive a crash: without it a restarted vmbcd would not raise it */
	if (event->type == VMBC_EVENT_ESCALATED && event->bc != NULL &&
	    event->bc->memory_high_set &&
	    !vmbc_state_get_memory_high(daemon->state, event->bc->name)) {
		vmbc_state_set_memory_high(daemon->state, event->bc->name, TRUE);
		schedule_save(daemon);
	}
	/* so must what vmbcd set on the balloon, and a driver found missing */
	if (event->bc != NULL && event->bc != vmbc_engine_get_host(daemon->engine) &&
	    keep_balloon(daemon, event->bc))
		schedule_save(daemon);
	for (guint i = 0; i < daemon->listeners->len; i++) {
		Listener *l = &g_array_index(daemon->listeners, Listener, i);
		l->func(daemon, event, l->user_data);
	}
}

VmbcDaemon *
vmbc_daemon_new(VmbcConfig *config)
{
	VmbcDaemon *daemon = g_new0(VmbcDaemon, 1);
	VmbcActuator act = {actuator_set_balloon, actuator_escalate};

	daemon->host.iface = &backend_host_iface;
	daemon->config = config;
	daemon->engine = vmbc_engine_new(&config->engine);
	vmbc_engine_set_actuator(daemon->engine, &act, daemon);
	vmbc_engine_set_event_func(daemon->engine, on_engine_event, daemon);
	daemon->state = vmbc_state_new(config->state_dir);
	daemon->backends = g_ptr_array_new_with_free_func(g_object_unref);
	daemon->owner = g_hash_table_new(g_direct_hash, g_direct_equal);
	daemon->listeners = g_array_new(FALSE, FALSE, sizeof(Listener));
	daemon->host_monitor = vmbc_host_monitor_new(daemon->engine);
	return daemon;
}

void
vmbc_daemon_free(VmbcDaemon *daemon)
{
	if (daemon == NULL)
		return;
	vmbc_daemon_stop(daemon);
	vmbc_host_monitor_free(daemon->host_monitor);
	g_ptr_array_unref(daemon->backends);
	vmbc_engine_free(daemon->engine);
	g_hash_table_unref(daemon->owner);
	vmbc_state_free(daemon->state);
	vmbc_config_free(daemon->config);
	g_array_unref(daemon->listeners);
	g_free(daemon);
}

gint64
vmbc_daemon_now(VmbcDaemon *daemon)
{
	return g_get_monotonic_time();
}

VmbcEngine *
vmbc_daemon_get_engine(VmbcDaemon *daemon)
{
	return daemon->engine;
}

const VmbcConfig *
vmbc_daemon_get_config(VmbcDaemon *daemon)
{
	return daemon->config;
}

GPtrArray *
vmbc_daemon_get_backends(VmbcDaemon *daemon)
{
	return daemon->backends;
}

const VmbcTickStats *
vmbc_daemon_get_tick_stats(VmbcDaemon *daemon)
{
	return &daemon->tick_stats;
}

const VmbcHostInfo *
vmbc_daemon_get_host_info(VmbcDaemon *daemon)
{
	return vmbc_host_monitor_get_info(daemon->host_monitor);
}

VmbcBackend *
vmbc_daemon_get_backend_for(VmbcDaemon *daemon, VmbcBeancounter *bc)
{
	return g_hash_table_lookup(daemon->owner, bc);
}

void
vmbc_daemon_add_event_listener(VmbcDaemon *daemon, VmbcDaemonEventFunc func, gpointer user_data)
{
	Listener l = {func, user_data};
	g_array_append_val(daemon->listeners, l);
}

void
vmbc_daemon_remove_event_listener(VmbcDaemon *daemon, VmbcDaemonEventFunc func, gpointer user_data)
{
	for (guint i = 0; i < daemon->listeners->len; i++) {
		Listener *l = &g_array_index(daemon->listeners, Listener, i);

		if (l->func == func && l->user_data == user_data) {
			g_array_remove_index(daemon->listeners, i);
			return;
		}
	}
}

void
vmbc_daemon_emit_domain_event(VmbcDaemon *daemon, VmbcBeancounter *bc, gboolean added)
{
	g_autofree gchar *message = g_strdup_printf(added ? "'%s' added (beancounter %u)"
							  : "'%s' removed (beancounter %u)",
						    bc->name, bc->id);
	VmbcEvent ev = {
		.type = added ? VMBC_EVENT_DOMAIN_ADDED : VMBC_EVENT_DOMAIN_REMOVED,
		.bc = bc,
		.resource = VMBC_RES_PHYSPAGES,
		.held = bc->parm[VMBC_RES_PHYSPAGES].held,
		.barrier = bc->parm[VMBC_RES_PHYSPAGES].barrier,
		.limit = bc->parm[VMBC_RES_PHYSPAGES].limit,
		.target = -1,
		.reason = VMBC_ERROR_FAILED,
		.message = message,
	};
	on_engine_event(daemon->engine, &ev, daemon);
}

/*
 * [host], or the limits set at run time and saved, set on the host: TRUE if
 * either is there (set by hand: the host's own budget is only shown), FALSE
 * when the budget the host measures is its limit.
 */
static gboolean
set_host_limits(VmbcDaemon *daemon)
{
	VmbcBeancounter *host = vmbc_engine_get_host(daemon->engine);
	g_autoptr(GError) error = NULL;
	gint64 b, l;
	gboolean fixed = vmbc_limits_configured_host(daemon->config, host->max_pages, &b, &l);

	if (vmbc_state_get(daemon->state, "host", VMBC_RES_PHYSPAGES, &b, &l))
		fixed = TRUE;
	if (fixed && !vmbc_engine_set_limits(daemon->engine, host, VMBC_RES_PHYSPAGES, MIN(b, l), l,
					     vmbc_daemon_now(daemon), NULL, NULL, &error))
		g_warning("host limits not applied: %s", error->message);
	return fixed;
}

/* The host's size, counters and limits, and the monitor of its budget and pressure. */
static void
apply_host_limits(VmbcDaemon *daemon)
{
	VmbcBeancounter *host = vmbc_engine_get_host(daemon->engine);
	const gchar *cgroup_root = "/sys/fs/cgroup";
	gint64 maxheld;
	guint64 failcnt;

	host->max_pages = (gint64)(sysconf(_SC_PHYS_PAGES));
	if (host->parm[VMBC_RES_PHYSPAGES].maxheld == 0 &&
	    vmbc_state_get_counters(daemon->state, "host", VMBC_RES_PHYSPAGES, &maxheld,
				    &failcnt)) {
		host->parm[VMBC_RES_PHYSPAGES].maxheld = maxheld;
		host->parm[VMBC_RES_PHYSPAGES].failcnt = failcnt;
	}
	if (vmbc_settings_lookup(daemon->config->settings, "cgroup-root") != NULL)
		cgroup_root = vmbc_settings_get_string(daemon->config->settings, "cgroup-root");
	vmbc_host_monitor_configure(daemon->host_monitor, daemon->config, cgroup_root,
				    set_host_limits(daemon));
}

/* The backend host's add_vm: configured, saved and restored state applied to a new VM. */
static VmbcBeancounter *
host_add_vm(VmbcBackendHost *host, VmbcBackend *backend, const gchar *name, gint64 max_pages,
	    gpointer backend_data, GDestroyNotify free_func, GError **error)
{
	VmbcDaemon *daemon = (VmbcDaemon *)host;
	/* a VM that comes back after a restart is the beancounter it was */
	guint saved_id = vmbc_state_get_id(daemon->state, name);
	VmbcBeancounter *bc =
		vmbc_engine_add_with_id(daemon->engine, name, max_pages, saved_id, error);
	VmbcBalloonClaim claim;

	if (bc == NULL) {
		if (free_func != NULL && backend_data != NULL)
			free_func(backend_data);
		return NULL;
	}
	bc->backend_data = backend_data;
	bc->backend_data_free = free_func;
	g_hash_table_insert(daemon->owner, bc, backend);
	vmbc_limits_apply_vm(daemon->engine, daemon->config, daemon->state, bc, TRUE,
			     vmbc_daemon_now(daemon));
	/* a daemon restart does not reset the counters of a VM that kept running */
	for (guint r = 0; r < VMBC_RES_COUNT; r++) {
		gint64 maxheld;
		guint64 failcnt;
		if (vmbc_state_get_counters(daemon->state, name, r, &maxheld, &failcnt)) {
			bc->parm[r].maxheld = maxheld;
			bc->parm[r].failcnt = failcnt;
		}
	}
	vmbc_engine_mark_memory_high(daemon->engine, bc,
				     vmbc_state_get_memory_high(daemon->state, name));
	/*
	 * Before the backend tells the balloon's size: the engine checks what the
	 * last run set against it, and takes back only a balloon still at that.
	 */
	vmbc_engine_restore_balloon(
		daemon->engine, bc, vmbc_state_get_balloon(daemon->state, name),
		vmbc_state_get_balloon_claim(daemon->state, name, &claim) ? &claim : NULL);
	if (bc->id != saved_id) {
		vmbc_state_set_id(daemon->state, name, bc->id);
		schedule_save(daemon);
	}
	vmbc_daemon_emit_domain_event(daemon, bc, TRUE);
	return bc;
}

static gboolean
on_deferred_save(gpointer user_data)
{
	VmbcDaemon *daemon = user_data;
	g_autoptr(GError) error = NULL;

	daemon->deferred_save_id = 0;
	if (!vmbc_state_save(daemon->state, &error))
		g_warning("%s", error->message);
	return G_SOURCE_REMOVE;
}

/*
 * Saves the state a moment from now, once for everything that changes
 * meanwhile. Not once stopped: the stop saved the state, counters and all.
 */
static void
schedule_save(VmbcDaemon *daemon)
{
	if (!daemon->running || daemon->deferred_save_id != 0)
		return;
	daemon->deferred_save_id = g_timeout_add(VMBC_DEFERRED_SAVE_MS, on_deferred_save, daemon);
	g_source_set_name_by_id(daemon->deferred_save_id, "[vmbcd] state save");
}

static void
host_remove_vm(VmbcBackendHost *host, VmbcBeancounter *bc)
{
	VmbcDaemon *daemon = (VmbcDaemon *)host;

	vmbc_daemon_emit_domain_event(daemon, bc, FALSE);
	/*
	 * The VM ended: so do its counters (its limits stay for its next run).
	 * Saved a moment later, once for all the VMs that end together (a
	 * host shutting down its guests, a hypervisor connection lost): a save
	 * writes every VM's state and syncs it to disk.
	 */
	vmbc_state_forget_counters(daemon->state, bc->name);
	schedule_save(daemon);
	g_hash_table_remove(daemon->owner, bc);
	vmbc_engine_remove(daemon->engine, bc);
}

static void
record_tick(VmbcDaemon *daemon, gint64 usec)
{
	VmbcTickStats *st = &daemon->tick_stats;
	gdouble secs = (gdouble)usec / 1e6;

	st->ticks++;
	st->last_seconds = secs;
	/* tools/bench reads these with --verbose for exact percentiles; built only if kept */
	if (!g_log_writer_default_would_drop(G_LOG_LEVEL_DEBUG, G_LOG_DOMAIN))
		g_debug("tick %" G_GUINT64_FORMAT ": %u VMs in %.3f ms", st->ticks,
			vmbc_engine_get_vms(daemon->engine)->len, secs * 1e3);
	st->sum_seconds += secs;
	for (guint i = 0; i < VMBC_TICK_BUCKETS; i++) {
		if (secs <= vmbc_tick_bucket_bounds[i])
			st->buckets[i]++;
	}
	if (usec > daemon->tick_usec) {
		st->overruns++;
		g_warning("tick took %.3f s, longer than the tick interval %.3f s", secs,
			  (gdouble)daemon->tick_usec / 1e6);
	}
}

/* The VMs the engine follows are sampled this often between ticks: a tenth of a tick, >= 20 ms. */
static guint
follow_ms(VmbcDaemon *daemon)
{
	return (guint)MAX(daemon->tick_usec / 10000, 20);
}

/* Between ticks, while the engine follows a VM (vmbc-daemon-follow.c). */
static gboolean
on_follow(gpointer user_data)
{
	VmbcDaemon *daemon = user_data;

	if (!vmbc_daemon_follow(daemon->engine, daemon->owner)) {
		daemon->follow_id = 0;
		return G_SOURCE_REMOVE;
	}
	keep_balloons(daemon);
	return G_SOURCE_CONTINUE;
}

/* Follows between ticks the VMs the engine follows, if it does not already. */
static void
arm_follow(VmbcDaemon *daemon)
{
	/* nobody to follow: no wakeup a tenth of a tick later only to find that out */
	if (daemon->follow_id != 0 || daemon->tick_id == 0 ||
	    !vmbc_engine_follows_any(daemon->engine))
		return;
	daemon->follow_id =
		g_timeout_add_full(G_PRIORITY_HIGH, follow_ms(daemon), on_follow, daemon, NULL);
	g_source_set_name_by_id(daemon->follow_id, "[vmbcd] follow");
}

static gboolean
on_tick(gpointer user_data)
{
	VmbcDaemon *daemon = user_data;
	gint64 start = vmbc_daemon_now(daemon);

	vmbc_engine_set_wall_clock(daemon->engine, g_get_real_time());
	vmbc_host_monitor_refresh_ksm(daemon->host_monitor, start);
	for (guint i = 0; i < daemon->backends->len; i++)
		vmbc_backend_sample(g_ptr_array_index(daemon->backends, i), start);
	vmbc_host_monitor_refresh(daemon->host_monitor, vmbc_daemon_now(daemon));
	vmbc_engine_tick(daemon->engine, vmbc_daemon_now(daemon));
	keep_balloons(daemon);
	arm_follow(daemon);
	record_tick(daemon, vmbc_daemon_now(daemon) - start);
	return G_SOURCE_CONTINUE;
}

void
vmbc_daemon_wake(VmbcDaemon *daemon)
{
	g_return_if_fail(daemon != NULL);

	if (daemon->tick_id == 0)
		return;
	vmbc_engine_wake_all(daemon->engine);
	on_tick(daemon);
}

/* Writes every VM's counters (and the host's) to the state file. */
static void
save_counters(VmbcDaemon *daemon)
{
	g_autoptr(GError) error = NULL;
	GPtrArray *vms = vmbc_engine_get_vms(daemon->engine);
	VmbcBeancounter *host = vmbc_engine_get_host(daemon->engine);

	for (guint i = 0; i < vms->len; i++) {
		VmbcBeancounter *bc = g_ptr_array_index(vms, i);
		if (!bc->sampled)
			continue;
		for (guint r = 0; r < VMBC_RES_COUNT; r++)
			vmbc_state_set_counters(daemon->state, bc->name, r, bc->parm[r].maxheld,
						bc->parm[r].failcnt);
		vmbc_state_set_memory_high(daemon->state, bc->name, bc->memory_high_set);
		keep_balloon(daemon, bc);
	}
	vmbc_state_set_counters(daemon->state, "host", VMBC_RES_PHYSPAGES,
				host->parm[VMBC_RES_PHYSPAGES].maxheld,
				host->parm[VMBC_RES_PHYSPAGES].failcnt);
	if (!vmbc_state_save(daemon->state, &error))
		g_warning("counters not saved: %s", error->message);
}

static gboolean
on_save(gpointer user_data)
{
	save_counters(user_data);
	return G_SOURCE_CONTINUE;
}

static void
start_ticking(VmbcDaemon *daemon)
{
	g_clear_handle_id(&daemon->tick_id, g_source_remove);
	g_clear_handle_id(&daemon->follow_id, g_source_remove);
	daemon->tick_usec = daemon->config->engine.tick_usec;
	daemon->tick_id = g_timeout_add_full(G_PRIORITY_HIGH, (guint)(daemon->tick_usec / 1000),
					     on_tick, daemon, NULL);
	g_source_set_name_by_id(daemon->tick_id, "[vmbcd] tick");
}

/*
 * The backend host's apply_policy: the VM's own policy (its libvirt metadata)
 * wins over the configuration, and over the runtime limits saved for it
 * unless it is the very policy applied last time (then the runtime limits,
 * set since, are newer). The resources it names become the VM's runtime
 * limits, saved as vmbc setlimit saves them.
 */
static void
host_apply_policy(VmbcBackendHost *host, VmbcBeancounter *bc, const VmbcPolicy *policy)
{
	VmbcDaemon *daemon = (VmbcDaemon *)host;
	g_autofree gchar *text = vmbc_policy_describe(policy);
	g_autoptr(GError) local = NULL;
	gint64 now = vmbc_daemon_now(daemon);

	if (g_strcmp0(text, vmbc_state_get_policy(daemon->state, bc->name)) == 0) {
		g_debug("VM '%s': its policy (%s) is applied already", bc->name, text);
		return;
	}
	for (guint r = 0; r < VMBC_RES_COUNT; r++) {
		g_autoptr(GError) error = NULL;
		gint64 b = 0, l = 0;
		if (!policy->set[r])
			continue;
		if (!vmbc_size_parse(policy->barrier[r], vmbc_page_size(), bc->max_pages, &b,
				     &error) ||
		    !vmbc_size_parse(policy->limit[r], vmbc_page_size(), bc->max_pages, &l,
				     &error) ||
		    !vmbc_engine_set_limits(daemon->engine, bc, r, b, l, now, NULL, NULL, &error)) {
			g_warning("VM '%s': %s of the policy in its metadata not applied: %s",
				  bc->name, vmbc_resource_name(r), error->message);
			continue;
		}
		vmbc_state_set(daemon->state, bc->name, r, b, l);
	}
	if (policy->shares > 0)
		bc->shares = (guint)policy->shares;
	vmbc_state_set_policy(daemon->state, bc->name, text);
	keep_balloons(daemon);
	if (daemon->running && !vmbc_state_save(daemon->state, &local))
		g_warning("policy of '%s' not saved: %s", bc->name, local->message);
	g_info("VM '%s': the policy in its metadata applied: %s", bc->name, text);
}

gboolean
vmbc_daemon_can_persist(VmbcDaemon *daemon, VmbcBeancounter *bc, GError **error)
{
	VmbcBackend *backend = g_hash_table_lookup(daemon->owner, bc);

	if (backend == NULL || !vmbc_backend_can_persist(backend)) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "cannot keep the policy of '%s' with it: %s", bc->name,
			    backend == NULL ? "it is not a VM"
					    : "only libvirt domains carry one (in their metadata)");
		return FALSE;
	}
	return TRUE;
}

void
vmbc_daemon_persist(VmbcDaemon *daemon, VmbcBeancounter *bc, GAsyncReadyCallback done,
		    gpointer user_data)
{
	VmbcBackend *backend = g_hash_table_lookup(daemon->owner, bc);
	g_autoptr(VmbcPolicy) policy = vmbc_policy_new();
	g_autofree gchar *text = NULL;

	g_return_if_fail(backend != NULL && vmbc_backend_can_persist(backend));
	for (guint r = 0; r < VMBC_RES_COUNT; r++) {
		g_autofree gchar *b = NULL;
		g_autofree gchar *l = NULL;
		if (bc->parm[r].barrier == VMBC_UNLIMITED && bc->parm[r].limit == VMBC_UNLIMITED)
			continue;
		if (r == VMBC_RES_VMGUARPAGES && bc->parm[r].barrier <= 0 &&
		    bc->parm[r].limit == VMBC_UNLIMITED)
			continue;
		b = vmbc_policy_format_size(bc->parm[r].barrier, vmbc_page_size());
		l = vmbc_policy_format_size(bc->parm[r].limit, vmbc_page_size());
		vmbc_policy_set(policy, r, b, l);
	}
	if (bc->shares != VMBC_DEFAULT_SHARES)
		policy->shares = bc->shares;
	/* what comes back as a metadata change is this, applied already */
	text = vmbc_policy_describe(policy);
	vmbc_state_set_policy(daemon->state, bc->name, text);
	schedule_save(daemon);
	vmbc_backend_persist(backend, bc, policy, done, user_data);
}

gboolean
vmbc_daemon_persist_finish(VmbcDaemon *daemon, GAsyncResult *res, GError **error)
{
	GObject *source = g_async_result_get_source_object(res);
	gboolean ok;

	ok = vmbc_backend_persist_finish(VMBC_BACKEND(source), res, error);
	g_object_unref(source);
	return ok;
}

static VmbcEngine *
host_get_engine(VmbcBackendHost *host)
{
	return ((VmbcDaemon *)host)->engine;
}

static gint64
host_now(VmbcBackendHost *host)
{
	return vmbc_daemon_now((VmbcDaemon *)host);
}

static const VmbcBackendHostInterface backend_host_iface = {
	.get_engine = host_get_engine,
	.now = host_now,
	.add_vm = host_add_vm,
	.remove_vm = host_remove_vm,
	.apply_policy = host_apply_policy,
};

static gboolean
start_backends(VmbcDaemon *daemon, GError **error)
{
	const VmbcPluginEntry *table = vmbc_plugin_table();

	for (guint i = 0; daemon->config->backends[i] != NULL; i++) {
		const gchar *want = daemon->config->backends[i];
		const VmbcPluginEntry *entry = NULL;
		g_autoptr(VmbcBackend) backend = NULL;

		for (guint j = 0; table[j].name != NULL; j++) {
			if (g_strcmp0(table[j].name, want) == 0)
				entry = &table[j];
		}
		if (entry == NULL) {
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "backend '%s' is not built into this vmbcd", want);
			return FALSE;
		}
		backend = g_object_new(entry->get_type(), NULL);
		vmbc_backend_setup(backend, entry->name, &daemon->host, daemon->config->settings);
		if (!vmbc_backend_start(backend, error))
			return FALSE;
		g_info("backend %s started", entry->name);
		g_ptr_array_add(daemon->backends, g_steal_pointer(&backend));
	}
	return TRUE;
}

gboolean
vmbc_daemon_start(VmbcDaemon *daemon, GError **error)
{
	g_autoptr(GError) local = NULL;

	if (!vmbc_state_load(daemon->state, &local))
		g_warning("%s", local->message);
	/* the ids of saved VMs are theirs: they may come back */
	vmbc_engine_reserve_ids(daemon->engine, vmbc_state_get_max_id(daemon->state));
	daemon->running = TRUE;
	apply_host_limits(daemon);
	daemon->tick_stats.started_real = g_get_real_time();
	if (!start_backends(daemon, error))
		return FALSE;
	start_ticking(daemon);
	daemon->save_id = g_timeout_add_seconds(VMBC_COUNTERS_SAVE_SECONDS, on_save, daemon);
	return TRUE;
}

void
vmbc_daemon_stop(VmbcDaemon *daemon)
{
	/* a pending deferred save is part of this one */
	if (daemon->tick_id != 0)
		save_counters(daemon);
	daemon->running = FALSE;
	g_clear_handle_id(&daemon->tick_id, g_source_remove);
	g_clear_handle_id(&daemon->follow_id, g_source_remove);
	g_clear_handle_id(&daemon->save_id, g_source_remove);
	g_clear_handle_id(&daemon->deferred_save_id, g_source_remove);
	vmbc_host_monitor_stop(daemon->host_monitor);
	for (guint i = 0; i < daemon->backends->len; i++)
		vmbc_backend_stop(g_ptr_array_index(daemon->backends, i));
}

gboolean
vmbc_daemon_first_pass_done(VmbcDaemon *daemon)
{
	for (guint i = 0; i < daemon->backends->len; i++) {
		if (!vmbc_backend_first_pass_done(g_ptr_array_index(daemon->backends, i)))
			return FALSE;
	}
	return TRUE;
}

void
vmbc_daemon_get_summary(VmbcDaemon *daemon, VmbcDaemonSummary *out)
{
	GPtrArray *vms = vmbc_engine_get_vms(daemon->engine);

	memset(out, 0, sizeof(*out));
	out->vms = vms->len;
	for (guint i = 0; i < vms->len; i++) {
		VmbcBeancounter *bc = g_ptr_array_index(vms, i);
		const VmbcParm *p = &bc->parm[VMBC_RES_PHYSPAGES];
		if (bc->sampled && p->held > p->limit)
			out->over_limit++;
		if (vmbc_physpages_get_reclaim(bc) == VMBC_RECLAIM_FAILED)
			out->failing++;
	}
}

gboolean
vmbc_daemon_reload(VmbcDaemon *daemon, GError **error)
{
	g_autoptr(VmbcConfig) fresh = NULL;
	GPtrArray *vms;

	if (daemon->config->path == NULL)
		return TRUE;
	fresh = vmbc_config_load(daemon->config->path, error);
	if (fresh == NULL)
		return FALSE;
	/* sockets, backends and the state dir need a restart; say so rather than half-apply */
	if (g_strcmp0(fresh->control_socket, daemon->config->control_socket) != 0 ||
	    g_strcmp0(fresh->state_dir, daemon->config->state_dir) != 0 ||
	    g_strcmp0(fresh->metrics_listen, daemon->config->metrics_listen) != 0)
		g_warning("control-socket, state-dir and metrics-listen changes take effect at the "
			  "next restart");
	{
		gchar *keep;
		keep = g_strdup(daemon->config->control_socket);
		g_free(fresh->control_socket);
		fresh->control_socket = keep;
		keep = g_strdup(daemon->config->state_dir);
		g_free(fresh->state_dir);
		fresh->state_dir = keep;
		keep = g_strdup(daemon->config->metrics_listen);
		g_free(fresh->metrics_listen);
		fresh->metrics_listen = keep;
	}
	for (guint i = 0; i < daemon->backends->len; i++) {
		if (!vmbc_backend_reload(g_ptr_array_index(daemon->backends, i), fresh->settings,
					 error)) {
			/* the running configuration stays, for the backends reloaded too */
			for (guint j = 0; j < i; j++)
				(void)vmbc_backend_reload(g_ptr_array_index(daemon->backends, j),
							  daemon->config->settings, NULL);
			return FALSE;
		}
	}
	vmbc_config_free(daemon->config);
	daemon->config = g_steal_pointer(&fresh);
	vmbc_engine_set_config(daemon->engine, &daemon->config->engine);
	apply_host_limits(daemon);
	vms = vmbc_engine_get_vms(daemon->engine);
	for (guint i = 0; i < vms->len; i++)
		vmbc_limits_apply_vm(daemon->engine, daemon->config, daemon->state,
				     g_ptr_array_index(vms, i), FALSE, vmbc_daemon_now(daemon));
	if (daemon->tick_id != 0 && daemon->tick_usec != daemon->config->engine.tick_usec)
		start_ticking(daemon);
	g_info("configuration reloaded from %s", daemon->config->path);
	return TRUE;
}

/* The change itself, checked against what @bc holds now; nothing saved. */
static gboolean
change_limits(VmbcDaemon *daemon, VmbcBeancounter *bc, VmbcResourceId res, gint64 barrier,
	      gint64 limit, VmbcChangeFunc done, gpointer user_data, GError **error)
{
	g_autoptr(VmbcBeancounter) ref = vmbc_beancounter_ref(bc);
	VmbcBackend *backend = g_hash_table_lookup(daemon->owner, bc);

	/*
	 * A new bound is checked against what the VM holds now: one far from its
	 * old bounds may not have been read for seconds (headroom sampling).
	 */
	if (backend != NULL) {
		vmbc_schedule_wake(bc);
		vmbc_backend_sample_vm(backend, bc, vmbc_daemon_now(daemon));
		if (vmbc_engine_lookup(daemon->engine, bc->name) != bc) {
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_VANISHED, "VM '%s' went away",
				    bc->name);
			return FALSE;
		}
	}
	return vmbc_engine_set_limits(daemon->engine, bc, res, barrier, limit,
				      vmbc_daemon_now(daemon), done, user_data, error);
}

/* After a change was accepted: it must survive a crash from here on. */
static void
limits_changed(VmbcDaemon *daemon, VmbcBeancounter *bc)
{
	g_autoptr(GError) error = NULL;

	keep_balloons(daemon);
	arm_follow(daemon);
	if (!vmbc_state_save(daemon->state, &error))
		g_warning("runtime limit of '%s' not saved: %s", bc->name, error->message);
}

gboolean
vmbc_daemon_set_limits(VmbcDaemon *daemon, VmbcBeancounter *bc, VmbcResourceId res, gint64 barrier,
		       gint64 limit, VmbcChangeFunc done, gpointer user_data, GError **error)
{
	if (!change_limits(daemon, bc, res, barrier, limit, done, user_data, error))
		return FALSE;
	vmbc_state_set(daemon->state, bc->name, res, barrier, limit);
	if (bc == vmbc_engine_get_host(daemon->engine))
		vmbc_host_monitor_set_fixed(daemon->host_monitor, TRUE);
	limits_changed(daemon, bc);
	return TRUE;
}

gboolean
vmbc_daemon_reset_limits(VmbcDaemon *daemon, VmbcBeancounter *bc, VmbcResourceId res,
			 VmbcChangeFunc done, gpointer user_data, GError **error)
{
	VmbcBeancounter *host = vmbc_engine_get_host(daemon->engine);
	gint64 barrier, limit;

	if (bc == host) {
		/* what [host] says, or else the budget the host measures, from now on */
		vmbc_state_unset(daemon->state, "host", res);
		vmbc_host_monitor_set_fixed(daemon->host_monitor, set_host_limits(daemon));
		vmbc_host_monitor_refresh(daemon->host_monitor, vmbc_daemon_now(daemon));
		limits_changed(daemon, bc);
		if (done != NULL)
			done(bc, NULL, user_data);
		return TRUE;
	}
	if (!vmbc_limits_configured_vm(daemon->config, bc, res, &barrier, &limit, error) ||
	    !change_limits(daemon, bc, res, barrier, limit, done, user_data, error))
		return FALSE;
	vmbc_state_unset(daemon->state, bc->name, res);
	limits_changed(daemon, bc);
	return TRUE;
}
