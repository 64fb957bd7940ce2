/*
 * vmbc-engine.h: the beancounter engine of SPEC §3.
 *
 * The engine owns the host root and one beancounter per VM. Backends feed it
 * host-side samples (vmbc_engine_sample), balloon progress and guest
 * statistics; once per tick vmbc_engine_tick() runs each resource's policy,
 * which acts through a small actuator interface (set a balloon target,
 * escalate). Time is always passed in (monotonic microseconds), and nothing
 * here does I/O or needs a main loop, so every rule is tested with a scripted
 * actuator and a fake clock.
 */
#pragma once

#include <glib.h>

#include "vmbc-beancounter.h"
#include "vmbc-error.h"
#include "vmbc-host.h"
#include "vmbc-physpages.h"
#include "vmbc-resource.h"
#include "vmbc-size.h"

G_BEGIN_DECLS

typedef struct _VmbcEngine VmbcEngine;

/* What to do when a limit reclaim makes no progress. */
typedef enum {
	VMBC_ESCALATE_NONE,
	VMBC_ESCALATE_PAUSE,	   /* pause the VM */
	VMBC_ESCALATE_MEMORY_HIGH, /* cgroup memory.high backstop at the limit */
	/*
	 * The default: memory-high where the VMM's cgroup v2 has a memory
	 * controller; elsewhere the backend fails with the reason nothing can hold
	 * the VM, which the engine puts in the event (never a pause the operator
	 * did not choose).
	 */
	VMBC_ESCALATE_AUTO,
	/*
	 * Not a configured escalation: the limit went up, so raise the memory.high
	 * that MEMORY_HIGH set to the limit now (max once there is none). Nothing
	 * is lowered; a value lifted by hand (max) fails with VMBC_ERROR_NOT_FOUND.
	 */
	VMBC_ESCALATE_MEMORY_HIGH_RAISE,
} VmbcEscalation;

const gchar *vmbc_escalation_to_string(VmbcEscalation esc);
gboolean vmbc_escalation_from_string(const gchar *text, VmbcEscalation *out, GError **error);

typedef struct {
	gint64 tick_usec;	     /* how often vmbc_engine_tick() is called */
	gint64 reclaim_timeout_usec; /* no progress for this long: failcnt++ */
	/*
	 * A limit reclaim whose balloon has moved, since it started, less than
	 * this many pages per second (after a grace of a few ticks) is stalled and
	 * fails at once; 0 never calls a balloon stalled.
	 */
	gint64 balloon_stall_pages;
	gint64 margin_min_pages;    /* limit reclaims aim this far below the limit ... */
	gdouble margin_fraction;    /* ... or this fraction of the limit, whichever is more */
	gint64 barrier_step_pages;  /* most a gentle (barrier) reclaim takes per tick */
	gint64 deflate_step_pages;  /* least a deflate gives back per tick */
	gint64 min_step_pages;	    /* smaller balloon changes are not worth a VM exit storm */
	gint64 guest_reserve_pages; /* a limit reclaim leaves the guest this much available */
	gdouble pressure_available; /* guest MemAvailable/total below this is pressure */
	gdouble idle_tax;	    /* ESX tau: how much more idle pages cost, 0..<1 */
	/* the fastest a guest is assumed to grow, pages/s (vmbc-schedule.h); 0: read every tick */
	gint64 growth_ceiling_pages;
	VmbcEscalation escalation;
	/* the host's pressure controller (vmbc-host.c; [host] in vmbc.conf) */
	gdouble host_margin;	    /* the root's barrier is its budget less this fraction */
	gdouble host_hysteresis;    /* give back only below the barrier less this fraction */
	gint64 host_step_pages;	    /* most taken from a VM in one step under pressure */
	gint64 host_interval_usec;  /* at most one step taken per interval */
	gint64 giveback_delay_usec; /* no pressure for this long before giving back */
	gint64 giveback_step_pages; /* most given back to a VM in one step */
	gdouble psi_target;	    /* memory "some" stall above this percent is pressure */
	gdouble idle_assumed;	    /* idle fraction of a VM nobody measured; floor of hints */
	gint64 idle_max_age_usec;   /* a host measure of idle memory older than this is gone */
} VmbcEngineConfig;

/* Fills @config with the defaults (1 s tick, 10 s reclaim timeout, ...). */
void vmbc_engine_config_init(VmbcEngineConfig *config);

typedef enum {
	VMBC_EVENT_LIMIT_HIT,	      /* held went over the limit: reclaim started */
	VMBC_EVENT_BARRIER_HIT,	      /* held went over the barrier */
	VMBC_EVENT_RECLAIM_DONE,      /* held back at or under the limit */
	VMBC_EVENT_RECLAIM_FAILED,    /* failcnt++: no progress, no balloon, guarantee */
	VMBC_EVENT_GUARANTEE_REFUSED, /* the guarantee kept the balloon from going lower */
	VMBC_EVENT_DEFLATE,	      /* memory given back to a pressured guest */
	VMBC_EVENT_ESCALATED,	      /* the escalation ran */
	VMBC_EVENT_HOST_RECLAIM,      /* the host under pressure took from a VM */
	VMBC_EVENT_HOST_GIVEBACK,     /* the pressure gone, the host gave a VM back memory */
	VMBC_EVENT_DOMAIN_ADDED,      /* emitted by the daemon, not the engine */
	VMBC_EVENT_DOMAIN_REMOVED,
} VmbcEventType;

const gchar *vmbc_event_type_to_string(VmbcEventType type);

typedef struct {
	VmbcEventType type;
	VmbcBeancounter *bc; /* borrowed */
	VmbcResourceId resource;
	gint64 held;
	gint64 barrier;
	gint64 limit;
	gint64 target;	  /* balloon target in pages, -1 if none */
	VmbcError reason; /* for RECLAIM_FAILED */
	/* LIMIT_HIT: monotonic usec of the sample that showed it; -1 otherwise */
	gint64 sampled_at;
	/*
	 * LIMIT_HIT: from the sample that showed it to the balloon request. The
	 * core has no clock and leaves it -1; whoever receives the event (it is
	 * delivered as the request went out) reads its clock and fills it in from
	 * sampled_at.
	 */
	gint64 sample_age_usec;
	const gchar *message; /* human readable, complete sentence */
} VmbcEvent;

typedef void (*VmbcEventFunc)(VmbcEngine *engine, const VmbcEvent *event, gpointer user_data);

/*
 * The actuator: how the engine acts on a VM. set_balloon asks for the guest's
 * logical size to become @target_pages; it returns once the request is sent
 * (progress is reported later with vmbc_engine_balloon_actual(), an
 * asynchronous failure with vmbc_engine_balloon_failed()). Returning FALSE
 * means the request could not even be sent.
 */
typedef struct {
	gboolean (*set_balloon)(VmbcEngine *engine, VmbcBeancounter *bc, gint64 target_pages,
				gpointer user_data, GError **error);
	gboolean (*escalate)(VmbcEngine *engine, VmbcBeancounter *bc, VmbcEscalation how,
			     gpointer user_data, GError **error);
} VmbcActuator;

/* One host-side sample; -1 in a field means "not measured this time". */
typedef struct {
	gint64 physpages;	  /* guest RAM pages resident on the host */
	gint64 vmmpages;	  /* the VMM's other resident pages */
	gint64 balloon_actual;	  /* guest-visible memory, pages */
	gint64 ksm_pages;	  /* of physpages, how many KSM merged (0 or -1: none known) */
	gint64 hugetlb_pages;	  /* of physpages, in hugetlb pages (no balloon takes them) */
	gint64 ram_pages;	  /* guest RAM's size, every backend QEMU named; <= 0 unknown */
	gint64 ram_hugetlb_pages; /* of ram_pages, hugetlb-backed */
	/*
	 * With ksm_exact: of physpages, the pages KSM's other sharers pay for
	 * (Rss less Pss of guest RAM), so the charge is physpages - ksm_saved.
	 * Without it, the merged pages are charged at KSM's global average.
	 */
	gint64 ksm_saved;
	gboolean ksm_exact;
} VmbcSample;

/*
 * KSM's global counters (/sys/kernel/mm/ksm/pages_shared and pages_sharing).
 * A page that KSM merged is resident once for all its sharers, so each sharer
 * is charged only its fraction of it, as UBC charged shared pages: a VM's
 * merged pages count pages_shared / (pages_shared + pages_sharing) each.
 * Zero or negative values turn fractions off.
 */
void vmbc_engine_set_ksm(VmbcEngine *engine, gint64 pages_shared, gint64 pages_sharing);

/* Called when a synchronous change finished; @error is NULL on success. */
typedef void (*VmbcChangeFunc)(VmbcBeancounter *bc, const GError *error, gpointer user_data);

VmbcEngine *vmbc_engine_new(const VmbcEngineConfig *config);
void vmbc_engine_free(VmbcEngine *engine);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbcEngine, vmbc_engine_free)

/* Replaces the configuration (SIGHUP); counters and states are kept. */
void vmbc_engine_set_config(VmbcEngine *engine, const VmbcEngineConfig *config);
const VmbcEngineConfig *vmbc_engine_get_config(VmbcEngine *engine);

void vmbc_engine_set_actuator(VmbcEngine *engine, const VmbcActuator *actuator, gpointer user_data);
void vmbc_engine_set_event_func(VmbcEngine *engine, VmbcEventFunc func, gpointer user_data);

/* The root beancounter "host" (id 0). */
VmbcBeancounter *vmbc_engine_get_host(VmbcEngine *engine);

/*
 * Adds a VM of @max_pages guest RAM. Returns the new beancounter (borrowed: the
 * engine keeps it until vmbc_engine_remove()), or NULL with an error if the
 * name is taken or invalid.
 */
VmbcBeancounter *vmbc_engine_add(VmbcEngine *engine, const gchar *name, gint64 max_pages,
				 GError **error);

/*
 * As vmbc_engine_add(), giving the VM @id when no other VM has it: the id it
 * had before a restart (0: the next free one). The VMs stay in id order.
 */
VmbcBeancounter *vmbc_engine_add_with_id(VmbcEngine *engine, const gchar *name, gint64 max_pages,
					 guint id, GError **error);

/*
 * Ids up to @id belong to VMs saved before a restart that may come back: VMs
 * added without an id get higher ones from now on.
 */
void vmbc_engine_reserve_ids(VmbcEngine *engine, guint id);

/* NULL if no VM has that name; "host" finds the root. */
VmbcBeancounter *vmbc_engine_lookup(VmbcEngine *engine, const gchar *name);

/* The VMs (not the host), in order of id. Borrowed. */
GPtrArray *vmbc_engine_get_vms(VmbcEngine *engine);

/*
 * Removes a VM that went away. Its pages are uncharged from the host and any
 * pending change is answered with VMBC_ERROR_VANISHED.
 */
void vmbc_engine_remove(VmbcEngine *engine, VmbcBeancounter *bc);

/*
 * The wall clock (epoch usec) for the samples that follow. Guest statistics are
 * stamped in wall-clock seconds; the engine matches them to the held it saw at
 * that second. Tests set it; the daemon sets it every tick.
 */
void vmbc_engine_set_wall_clock(VmbcEngine *engine, gint64 epoch_usec);

/* Charges or uncharges to what the host measured now. */
void vmbc_engine_sample(VmbcEngine *engine, VmbcBeancounter *bc, const VmbcSample *sample,
			gint64 now);

/*
 * Whether the backend must read @bc's held at the tick of @now (and feed
 * vmbc_engine_sample()): a VM not yet sampled, in a reclaim, with a change
 * waiting, a balloon on its way, the host over its barrier, or whose
 * headroom over the growth ceiling ran out (vmbc-schedule.h). A VM not read
 * keeps what it last held; its policies still run every tick.
 */
gboolean vmbc_engine_sample_due(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now);

/*
 * Every VM is read at the next tick, whatever its headroom: for a host-wide
 * signal (memory pressure) that held may have moved everywhere.
 */
void vmbc_engine_wake_all(VmbcEngine *engine);

/* New guest statistics (hints). Older or equal last_update values are ignored. */
void vmbc_engine_set_guest_stats(VmbcEngine *engine, VmbcBeancounter *bc,
				 const VmbcGuestStats *stats);

/* Balloon progress: the guest's logical size is now @actual_pages. */
void vmbc_engine_balloon_actual(VmbcEngine *engine, VmbcBeancounter *bc, gint64 actual_pages,
				gint64 now);

/*
 * A balloon request failed after it was sent, or the backend learned there is
 * no balloon. @state says which (NO_DEVICE or NO_DRIVER).
 */
void vmbc_engine_balloon_failed(VmbcEngine *engine, VmbcBeancounter *bc, VmbcBalloonState state,
				const GError *error, gint64 now);

/*
 * Whether the policies can use fresh guest statistics for @bc now: it is being
 * reclaimed, its memory moved since the guest last reported, or the host is
 * over its barrier (stats pick whom to reclaim from). A VM that sits within
 * the margin of its barrier or limit, or with an inflated balloon (a
 * pressured guest may need it back), wants them every
 * VMBC_ENGINE_WATCH_STATS_USEC. Otherwise stats are only informational, and a
 * backend polls them seldom: at scale, asking every guest every second is most
 * of what a daemon costs.
 */
#define VMBC_ENGINE_WATCH_STATS_USEC (5 * G_USEC_PER_SEC)
gboolean vmbc_engine_wants_stats(VmbcEngine *engine, VmbcBeancounter *bc);

/* Runs the policies of every beancounter, then of the host. */
void vmbc_engine_tick(VmbcEngine *engine, gint64 now);

/*
 * Whether the engine follows @bc between ticks: a limit or operator's reclaim
 * runs, or a change waits for one. The daemon samples such a VM more often
 * than the tick (vmbc_backend_sample_vm()) and runs vmbc_engine_follow(), so
 * that the reclaim's end is seen when the balloon gets there, not at the next
 * tick.
 */
gboolean vmbc_engine_is_following(VmbcEngine *engine, VmbcBeancounter *bc);

/*
 * The VMs the engine follows now (vmbc_engine_is_following()), in id order, a
 * new array of references; called by the passes between ticks, which cost
 * what these VMs cost and not a walk over every VM. Never NULL.
 */
GPtrArray *vmbc_engine_get_following(VmbcEngine *engine);

/* Whether the engine follows any VM now: a pass between ticks has something to do. */
gboolean vmbc_engine_follows_any(VmbcEngine *engine);

/* Runs the policies of the VMs the engine follows (vmbc_engine_is_following()), at @now. */
void vmbc_engine_follow(VmbcEngine *engine, gint64 now);

/*
 * Changes barrier and limit of a resource: UBC's setlimit. Invalid values
 * (negative, barrier above limit) are refused here with FALSE. Otherwise TRUE
 * is returned and @done runs once the change took effect: at once when held
 * is already within the limit, or when the reclaim that the new limit started
 * finishes or fails. For the host beancounter the change is immediate.
 * @done may be NULL.
 */
gboolean vmbc_engine_set_limits(VmbcEngine *engine, VmbcBeancounter *bc, VmbcResourceId res,
				gint64 barrier, gint64 limit, gint64 now, VmbcChangeFunc done,
				gpointer user_data, GError **error);

/* Sets the guarantee (vmguarpages barrier); a balloon below it is deflated to it. */
gboolean vmbc_engine_set_guarantee(VmbcEngine *engine, VmbcBeancounter *bc, gint64 pages,
				   gint64 now, GError **error);

/*
 * Records whether the memory.high backstop of @bc is vmbcd's own
 * (bc->memory_high_set): TRUE when the memory-high escalation set it or saved
 * state says it did, FALSE once it is lifted (with the limit, or by hand). A
 * backstop so marked follows the limit up (VMBC_ESCALATE_MEMORY_HIGH_RAISE).
 * The only writer of that field.
 */
void vmbc_engine_mark_memory_high(VmbcEngine *engine, VmbcBeancounter *bc, gboolean set);

/*
 * After a restart, what the state file says of @bc's balloon, given when the
 * VM is adopted: the driver state the last run knew (@state: NO_DRIVER or OK
 * are kept until the balloon proves otherwise; others are ignored) and what
 * vmbcd had set on it (@claim, NULL or target -1 for nothing). The claim is
 * checked against the balloon's size as soon as that is known: a balloon
 * still at (or within a few MiB of) the target vmbcd set is vmbcd's again,
 * exactly as if there had been no restart (balloon_target is set, so that
 * raising the limit lets it out); anything else was set by somebody else
 * since, and is left alone (the claim is dropped).
 */
void vmbc_engine_restore_balloon(VmbcEngine *engine, VmbcBeancounter *bc, VmbcBalloonState state,
				 const VmbcBalloonClaim *claim);

/*
 * A count that changes whenever a VM's balloon claim changed (set, moved,
 * given up, or a restored one found not to be vmbcd's): whoever keeps the
 * claims elsewhere (the daemon's state file) looks at the VMs again when it
 * differs from the last value it saw.
 */
guint64 vmbc_engine_get_balloon_changes(VmbcEngine *engine);

/*
 * The VMs whose balloon claim changed since the last call (references, in no
 * particular order; empty when none did), and forgets them: whoever keeps the
 * claims elsewhere looks at these again, not at every VM. A VM removed
 * meanwhile is not among them. Never NULL.
 */
GPtrArray *vmbc_engine_take_balloon_changed(VmbcEngine *engine);

/*
 * Takes @pages from the VM now by inflating its balloon (never below the
 * guarantee). @done runs when the balloon got there or the reclaim failed.
 */
gboolean vmbc_engine_reclaim(VmbcEngine *engine, VmbcBeancounter *bc, gint64 pages, gint64 now,
			     VmbcChangeFunc done, gpointer user_data, GError **error);

G_END_DECLS
