/*
 * vmbc-schedule.h: when a VM's held must be read again (SPEC §3, step 1).
 *
 * A VM far from its bounds need not be read every tick. From its headroom
 * (how far held is from the nearest bound it can cross) and the fastest rate
 * it is assumed to grow, each read gives the latest time the next one must
 * come: the first tick at or after it reads the VM, so a VM that grows no
 * faster than that rate passes a bound by at most one tick's growth before it
 * is seen. VMs near or over a bound, or in a reclaim, are read every tick.
 * Pure functions of their inputs, time passed in; the engine calls them.
 */
#pragma once

#include <glib.h>

#include "vmbc-beancounter.h"

G_BEGIN_DECLS

/* A VM is read at least this often, however far it is from every bound. */
#define VMBC_SCHEDULE_MAX_USEC (5 * G_USEC_PER_SEC)
/* The fastest growth seen of a VM is halved every this long it is not seen again. */
#define VMBC_SCHEDULE_PEAK_HALFLIFE_USEC (60 * G_USEC_PER_SEC)

typedef struct {
	/*
	 * The fastest a guest is assumed to grow, pages a second; 0 reads every VM
	 * every tick. A VM seen growing faster is assumed to grow at what it was
	 * seen doing (decaying back to this over minutes).
	 */
	gint64 ceiling_pages;
	gint64 tick_usec;
	/* the host's headroom to its own barrier, shared equally by @vms VMs; -1 none */
	gint64 host_headroom;
	guint vms;
} VmbcScheduleParams;

/*
 * The headroom of @bc in pages: how far physpages (and vmmpages, where it has
 * a bound) are from the nearest barrier or limit they can still cross, and
 * the VM's share of the host's headroom. 0 when a bound is reached or passed;
 * G_MAXINT64 when nothing bounds it. A bound above the guest's RAM size
 * (max_pages) cannot be crossed by guest RAM and does not count.
 */
gint64 vmbc_schedule_headroom(const VmbcScheduleParams *params, const VmbcBeancounter *bc);

/*
 * The growth rate @bc is assumed to have at @now, pages a second: the larger
 * of the ceiling and its decayed fastest growth seen.
 */
gdouble vmbc_schedule_rate(const VmbcScheduleParams *params, const VmbcBeancounter *bc, gint64 now);

/*
 * Called after each read of @bc's held (the engine's sample) at @now: learns
 * its growth since the last read and sets when the next read must come
 * (bc->schedule.next_at). With no ceiling, or a VM near a bound, that is the
 * next tick.
 */
void vmbc_schedule_sampled(const VmbcScheduleParams *params, VmbcBeancounter *bc, gint64 now);

/* Whether @bc's held must be read at the tick of @now. */
gboolean vmbc_schedule_due(const VmbcBeancounter *bc, gint64 now);

/* The next tick reads @bc, whatever its headroom (a new limit, a wake). */
void vmbc_schedule_wake(VmbcBeancounter *bc);

G_END_DECLS
