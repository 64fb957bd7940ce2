/*
 * vmbc-host-monitor.h: the host's own signals for the root beancounter.
 *
 * Finds the VMs' cgroup (libvirt's machine.slice, or [host] cgroup), reads
 * its usage and limit, host RAM, swap activity and memory PSI every tick and
 * hands them to the engine (vmbc_engine_set_host_signals()); registers a PSI
 * trigger with the kernel so that a stall wakes vmbcd between ticks
 * (vmbc_engine_host_pressure()).
 */
#pragma once

#include <glib.h>

#include "vmbc-config.h"
#include "vmbc-engine.h"

G_BEGIN_DECLS

typedef struct _VmbcHostMonitor VmbcHostMonitor;

/* What the monitor found and read last, for the metrics and the control socket. */
typedef struct {
	const gchar *cgroup;   /* the VMs' cgroup, NULL none */
	gint cgroup_version;   /* 1 or 2 */
	gint64 cgroup_usage;   /* bytes, -1 unknown */
	gint64 cgroup_limit;   /* bytes, -1 none */
	gint64 mem_total;      /* bytes, -1 unknown */
	gint64 mem_available;  /* bytes, -1 unknown */
	gint64 reserve;	       /* pages of host RAM the budget leaves the host */
	const gchar *psi_file; /* where memory PSI is read, NULL none */
	gboolean trigger;      /* a PSI trigger is registered on it */
} VmbcHostInfo;

VmbcHostMonitor *vmbc_host_monitor_new(VmbcEngine *engine);
void vmbc_host_monitor_free(VmbcHostMonitor *monitor);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbcHostMonitor, vmbc_host_monitor_free)

/*
 * Takes @config's [host] settings (at start and on reload): finds the VMs'
 * cgroup under @cgroup_root, the PSI file, and registers the trigger. What
 * cannot be had is warned once, and the budget falls back to host RAM.
 * @fixed: the root's barrier and limit are set by hand (vmbc.conf [host] or
 * vmbc setlimit host): the host's budget is only reported.
 */
void vmbc_host_monitor_configure(VmbcHostMonitor *monitor, const VmbcConfig *config,
				 const gchar *cgroup_root, gboolean fixed);

/* Unregisters the PSI trigger: nothing wakes the engine once the daemon stopped. */
void vmbc_host_monitor_stop(VmbcHostMonitor *monitor);

/* The root's barrier and limit were set by hand at run time (vmbc setlimit host). */
void vmbc_host_monitor_set_fixed(VmbcHostMonitor *monitor, gboolean fixed);

/* Reads the host's signals and hands them to the engine; once a tick. */
void vmbc_host_monitor_refresh(VmbcHostMonitor *monitor, gint64 now);
/*
 * KSM's counters into the engine, for the fractional charge of merged pages,
 * read again when VMBC_HOST_MONITOR_KSM_USEC passed since the last read.
 */
#define VMBC_HOST_MONITOR_KSM_USEC (5 * G_USEC_PER_SEC)
void vmbc_host_monitor_refresh_ksm(VmbcHostMonitor *monitor, gint64 now);

const VmbcHostInfo *vmbc_host_monitor_get_info(VmbcHostMonitor *monitor);

G_END_DECLS
