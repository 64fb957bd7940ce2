/*
 * vmbc-daemon.h: the daemon: configuration, state, backends, the engine and
 * the tick. The control socket and the metrics endpoint are in front of it
 * (vmbc-service.h) and reach it through this API; it knows neither.
 */
#pragma once

#include <glib.h>

#include "vmbc-backend.h"
#include "vmbc-config.h"
#include "vmbc-engine.h"
#include "vmbc-host-monitor.h"
#include "vmbc-state.h"

G_BEGIN_DECLS

typedef struct _VmbcDaemon VmbcDaemon;

/* Tick-duration histogram buckets (seconds), for the metrics endpoint. */
#define VMBC_TICK_BUCKETS 12
extern const gdouble vmbc_tick_bucket_bounds[VMBC_TICK_BUCKETS];

typedef struct {
	guint64 ticks;
	guint64 overruns; /* ticks that took longer than the tick interval */
	gdouble last_seconds;
	gdouble sum_seconds;
	guint64 buckets[VMBC_TICK_BUCKETS]; /* cumulative counts per bound, as Prometheus wants */
	gint64 started_real;		    /* wall clock usec at start */
} VmbcTickStats;

/* Takes ownership of @config. */
VmbcDaemon *vmbc_daemon_new(VmbcConfig *config);
void vmbc_daemon_free(VmbcDaemon *daemon);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbcDaemon, vmbc_daemon_free)

/* Loads state, starts backends, starts ticking. */
gboolean vmbc_daemon_start(VmbcDaemon *daemon, GError **error);

/* Stops ticking and backends, closes sockets. Balloons are left as they are. */
void vmbc_daemon_stop(VmbcDaemon *daemon);

/*
 * SIGHUP: loads the configuration again from its file. On error the running
 * configuration stays. Counters and runtime limits are kept; [defaults] and
 * [domain] limits are applied again to VMs without runtime limits.
 */
gboolean vmbc_daemon_reload(VmbcDaemon *daemon, GError **error);

VmbcEngine *vmbc_daemon_get_engine(VmbcDaemon *daemon);
/*
 * Reads every VM now and runs the policies, whatever each VM's headroom
 * (vmbc_engine_wake_all()): for a host-wide signal, such as memory pressure,
 * that may have moved any VM's memory. Does nothing before the daemon started
 * ticking. The regular ticks go on at their own pace.
 */
void vmbc_daemon_wake(VmbcDaemon *daemon);

const VmbcConfig *vmbc_daemon_get_config(VmbcDaemon *daemon);
GPtrArray *vmbc_daemon_get_backends(VmbcDaemon *daemon);
const VmbcTickStats *vmbc_daemon_get_tick_stats(VmbcDaemon *daemon);

/* What the host monitor found: the VMs' cgroup, host RAM, the PSI file. */
const VmbcHostInfo *vmbc_daemon_get_host_info(VmbcDaemon *daemon);

/*
 * TRUE once every backend's first adoption pass is over (see
 * VmbcBackendClass.first_pass_done): the VMs that ran when vmbcd started
 * are adopted, with their saved limits applied.
 */
gboolean vmbc_daemon_first_pass_done(VmbcDaemon *daemon);

/* What the daemon holds at a glance, for systemd's STATUS= line. */
typedef struct {
	guint vms;
	guint over_limit; /* physpages held above the limit */
	guint failing;	  /* the last limit reclaim failed */
} VmbcDaemonSummary;

void vmbc_daemon_get_summary(VmbcDaemon *daemon, VmbcDaemonSummary *out);

/* The backend that owns @bc (NULL for the host). */
VmbcBackend *vmbc_daemon_get_backend_for(VmbcDaemon *daemon, VmbcBeancounter *bc);

/* Monotonic usec. */
gint64 vmbc_daemon_now(VmbcDaemon *daemon);

/*
 * Runtime limit changes, as the control socket makes them: applied to the
 * engine, saved to the state file, and answered through @done.
 */
gboolean vmbc_daemon_set_limits(VmbcDaemon *daemon, VmbcBeancounter *bc, VmbcResourceId res,
				gint64 barrier, gint64 limit, VmbcChangeFunc done,
				gpointer user_data, GError **error);
/*
 * Forgets the runtime limits of @res of @bc: what vmbc.conf gives applies
 * again, as a change answered through @done, and stays after a restart. For
 * the host, [host] or, where it sets nothing, the budget the host measures.
 */
gboolean vmbc_daemon_reset_limits(VmbcDaemon *daemon, VmbcBeancounter *bc, VmbcResourceId res,
				  VmbcChangeFunc done, gpointer user_data, GError **error);

/*
 * Whether @bc's policy can be kept with the VM (vmbc setlimit --persist): its
 * backend must carry one (libvirt). On FALSE the error says why.
 */
gboolean vmbc_daemon_can_persist(VmbcDaemon *daemon, VmbcBeancounter *bc, GError **error);

/*
 * Writes @bc's policy as it is now (every resource's barrier and limit that
 * is not unlimited, and shares other than the default) into the VM's own
 * metadata, through its backend. @done gets @daemon's backend as source;
 * finish with vmbc_daemon_persist_finish().
 */
void vmbc_daemon_persist(VmbcDaemon *daemon, VmbcBeancounter *bc, GAsyncReadyCallback done,
			 gpointer user_data);
gboolean vmbc_daemon_persist_finish(VmbcDaemon *daemon, GAsyncResult *res, GError **error);

/* Listeners for engine events (the control socket, the metrics). */
typedef void (*VmbcDaemonEventFunc)(VmbcDaemon *daemon, const VmbcEvent *event, gpointer user_data);
void vmbc_daemon_add_event_listener(VmbcDaemon *daemon, VmbcDaemonEventFunc func,
				    gpointer user_data);
void vmbc_daemon_remove_event_listener(VmbcDaemon *daemon, VmbcDaemonEventFunc func,
				       gpointer user_data);

/* Events that are not engine events (domain added/removed) use the same listeners. */
void vmbc_daemon_emit_domain_event(VmbcDaemon *daemon, VmbcBeancounter *bc, gboolean added);

G_END_DECLS
