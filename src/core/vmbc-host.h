/*
 * vmbc-host.h: the root beancounter "host" and its pressure controller.
 *
 * What the host kernel says (the VMs' budget and where it comes from, memory
 * PSI, swap activity, a PSI trigger that fired) is read by the daemon through
 * src/host and handed in here; the idle memory of each VM, measured by the
 * host where it can be (QEMU's dirty-rate sampling), by a backend. The core
 * decides from these alone, with the time passed in: whom to take from under
 * pressure and when to give back. See vmbcd(8), "Host pressure".
 */
#pragma once

#include <glib.h>

#include "vmbc-beancounter.h"

G_BEGIN_DECLS

typedef struct _VmbcEngine VmbcEngine;

/* Where the host's budget for its VMs comes from. */
typedef enum {
	VMBC_BUDGET_NONE,      /* nothing known: unlimited */
	VMBC_BUDGET_CONFIG,    /* [host] barrier/limit in vmbc.conf */
	VMBC_BUDGET_CGROUP_V2, /* the VMs' cgroup: memory.max */
	VMBC_BUDGET_CGROUP_V1, /* the VMs' cgroup: memory.limit_in_bytes */
	VMBC_BUDGET_HOST_RAM,  /* MemAvailable and what the VMs hold, minus a reserve */
} VmbcBudgetSource;

const gchar *vmbc_budget_source_to_string(VmbcBudgetSource source);

/* Where a VM's idle figure comes from (what the idle memory tax uses). */
typedef enum {
	VMBC_IDLE_NONE,	 /* nothing known: idle-assumed */
	VMBC_IDLE_HOST,	 /* measured by the host (QEMU or libvirt dirty-rate sampling) */
	VMBC_IDLE_GUEST, /* the guest's word (MemAvailable), never below idle-assumed */
} VmbcIdleSource;

const gchar *vmbc_idle_source_to_string(VmbcIdleSource source);

/*
 * What the host kernel said at one moment, for vmbc_engine_set_host_signals().
 * -1 in a field: not known.
 */
typedef struct {
	/*
	 * What the VMs' guest RAM may hold together, pages: the root's limit
	 * unless the source is VMBC_BUDGET_CONFIG (then vmbc.conf's [host]
	 * barrier/limit stand and this is ignored). VMBC_UNLIMITED: none.
	 */
	gint64 budget;
	VmbcBudgetSource source;
	gdouble psi_some_avg10; /* percent */
	gdouble psi_full_avg10;
	gint64 psi_some_total; /* usec stalled since boot (cumulative) */
	gint64 psi_full_total;
	gint64 swap_in; /* pages swapped in since boot (cumulative) */
	gint64 swap_out;
} VmbcHostSignals;

/* Why the controller acted, in events and in the metrics. */
typedef enum {
	VMBC_PRESSURE_NONE,
	VMBC_PRESSURE_LIMIT,   /* the VMs hold more than their budget */
	VMBC_PRESSURE_BARRIER, /* more than the budget minus its margin */
	VMBC_PRESSURE_PSI,     /* memory stall over psi-target (or the kernel's trigger) */
	VMBC_PRESSURE_SWAP,    /* the host is swapping out */
} VmbcPressureReason;

const gchar *vmbc_pressure_reason_to_string(VmbcPressureReason reason);

/* The controller's state and its counters, read by the daemon (metrics, control). */
typedef struct {
	VmbcHostSignals signals;
	gboolean signals_known;
	gint64 signals_at;	   /* monotonic usec of the last signals, 0 never */
	gint64 prev_stall_total;   /* psi_some_total at the previous signals, -1 */
	gint64 prev_swap_out;	   /* swap_out then, -1 */
	gdouble stall_percent;	   /* some stall between the last two signals, percent */
	gboolean swapping;	   /* swap_out moved between the last two signals */
	gint64 trigger_at;	   /* when the kernel's PSI trigger last fired, 0 never */
	VmbcPressureReason reason; /* what the host is pressured by now, NONE when calm */
	gint64 pressure_seen_at;   /* the last time there was pressure, 0 never */
	gint64 last_take_at;	   /* the last take, 0 never */
	gint64 last_give_at;	   /* the last give-back, 0 never */
	guint64 triggers;	   /* PSI trigger wake-ups */
	guint64 takes;		   /* balloon steps taken under pressure */
	guint64 gives;		   /* balloon steps given back */
	gint64 taken_pages;	   /* pages taken under pressure, total */
	gint64 given_pages;	   /* pages given back, total */
} VmbcHostState;

/*
 * What the host kernel says now: the budget becomes the root's limit (and
 * the limit minus the host margin its barrier) unless it comes from
 * vmbc.conf; PSI and swap tell whether the host is under pressure. Called
 * once a tick by the daemon, before vmbc_engine_tick().
 */
void vmbc_engine_set_host_signals(VmbcEngine *engine, const VmbcHostSignals *signals, gint64 now);

/*
 * The kernel's PSI trigger fired (the memory stall passed the threshold in
 * its window): the host is under pressure now, and the controller runs at
 * once (its rate limit still holds) rather than at the next tick.
 */
void vmbc_engine_host_pressure(VmbcEngine *engine, gint64 now);

const VmbcHostState *vmbc_engine_get_host_state(VmbcEngine *engine);

/*
 * The host measured how active @bc's memory is: @dirty_bytes_per_sec, the
 * rate at which the guest writes its pages (QEMU's calc-dirty-rate). The
 * active fraction is what the guest dirties in VMBC_IDLE_ACTIVE_WINDOW_SEC
 * out of its memory. A negative rate forgets the measure (it failed).
 */
#define VMBC_IDLE_ACTIVE_WINDOW_SEC 10
void vmbc_engine_set_dirty_rate(VmbcEngine *engine, VmbcBeancounter *bc, gint64 dirty_bytes_per_sec,
				gint64 now);

/*
 * Whether the host is to measure @bc's idle memory again at @now, the last
 * measure having started at @started (0: never) and measures being
 * @interval (idle-interval) apart. A VM whose measures keep agreeing with
 * the one that began their run (the same held within a sixteenth, and the
 * same idle share within VMBC_IDLE_SETTLED_SHARE or the same dirty rate
 * within VMBC_IDLE_RATE_RESOLUTION) is measured 2, 4, then 8 times less
 * often, never so seldom that its measure would age past idle-max-age; once
 * held moves that much, or while the host is under pressure, @interval
 * again. What the measures cost QEMU and libvirtd goes with what changes,
 * not with how many VMs there are.
 */
#define VMBC_IDLE_SETTLED_SHARE 0.05
#define VMBC_IDLE_MAX_SETTLED	3
/*
 * What one sampled page tells: both backends measure with QEMU's page
 * sampling at its default 512 pages per GiB of guest RAM over one second, so
 * one sampled page written more or less is 2 MiB/s, whatever the guest's size.
 */
#define VMBC_IDLE_RATE_RESOLUTION (G_GINT64_CONSTANT(2) << 20)
gboolean vmbc_engine_idle_measure_due(VmbcEngine *engine, const VmbcBeancounter *bc, gint64 started,
				      gint64 interval, gint64 now);

/* The spacing of @bc's idle measures now, in @interval units (1, 2, 4 or 8). */
guint vmbc_engine_idle_measure_spacing(VmbcEngine *engine, const VmbcBeancounter *bc);

/*
 * The idle fraction (0..1) the host's reclaim uses for @bc, and where it came
 * from: the host's measure while fresh (idle-max-age); else the guest's word, never below
 * @idle_assumed (a guest that says it has no idle memory cannot make itself dearer than one nobody
 * knows); else
 * @idle_assumed.
 */
gdouble vmbc_engine_idle_fraction(VmbcEngine *engine, const VmbcBeancounter *bc,
				  VmbcIdleSource *source);

G_END_DECLS
