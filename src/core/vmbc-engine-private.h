/*
 * vmbc-engine-private.h: what the engine shares with the per-resource policies.
 *
 * Each resource is registered as a small table of callbacks, as UBC's
 * resources were (.bcr_change, .bcr_barrier_hit, .bcr_limit_hit). The engine
 * walks the table every tick; the policies act through the helpers below.
 */
#pragma once

#include "vmbc-engine.h"

G_BEGIN_DECLS

typedef struct {
	VmbcResourceId id;
	/* the engine added @bc: set up the resource's own state in bc->res_state[id] */
	void (*init)(VmbcBeancounter *bc);
	/* validate and apply new barrier/limit; may start a reclaim (@done pending) */
	gboolean (*change)(VmbcEngine *engine, VmbcBeancounter *bc, gint64 barrier, gint64 limit,
			   gint64 now, VmbcChangeFunc done, gpointer user_data, GError **error);
	/* held is over the limit this tick */
	void (*limit_hit)(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now);
	/* held is over the barrier (and not over the limit) this tick */
	void (*barrier_hit)(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now);
	/* held is at or under the barrier this tick */
	void (*under_barrier)(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now);
	/* new guest stats were taken in (hints): a reclaim waiting on them may go on */
	void (*stats_arrived)(VmbcEngine *engine, VmbcBeancounter *bc);
	/* an operator asks for @pages back now; @done as for change (physpages only) */
	gboolean (*reclaim)(VmbcEngine *engine, VmbcBeancounter *bc, gint64 pages, gint64 now,
			    VmbcChangeFunc done, gpointer user_data, GError **error);
	/* the balloon reached a new actual size (bc->balloon_actual, already set) */
	void (*balloon_moved)(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now);
	/* the balloon became unusable (bc->balloon, already set): a reclaim on it cannot go on */
	void (*balloon_failed)(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now);
	/* why a balloon target sent now is smaller (a VmbcBalloonReason), -1 when no reclaim runs
	 */
	gint (*balloon_reason)(const VmbcBeancounter *bc);
	/* a reclaim of this resource is running or waits to retry: it steers by guest stats */
	gboolean (*busy)(const VmbcBeancounter *bc);
	/* a reclaim of this resource waits on the balloon: held is followed between ticks */
	gboolean (*following)(const VmbcBeancounter *bc);
} VmbcResourceOps;

extern const VmbcResourceOps vmbc_physpages_ops;
extern const VmbcResourceOps vmbc_vmguarpages_ops;
extern const VmbcResourceOps vmbc_vmmpages_ops;

/*
 * The root beancounter's policy, registered like a resource: the engine runs
 * it through this table once a tick, after every VM ticked, and never names
 * its functions.
 */
typedef struct {
	/* every VM ticked: the host takes from its children what it is over by */
	void (*tick)(VmbcEngine *engine, gint64 now);
	/* at engine creation: the defaults of the host controller's parameters */
	void (*config_init)(VmbcEngineConfig *config);
} VmbcHostOps;

extern const VmbcHostOps vmbc_host_ops;

/*
 * When the last gentle step was taken from @bc (monotonic usec, 0 never), by
 * its own barrier reclaim or by the host's: the two share one pace, so that a
 * VM is not asked twice in a tick. vmbc-host.c reads and records it here.
 */
gint64 vmbc_physpages_get_last_step(const VmbcBeancounter *bc);
void vmbc_physpages_set_last_step(VmbcBeancounter *bc, gint64 now);

struct _VmbcEngine {
	VmbcEngineConfig config;
	VmbcBeancounter *host;
	GPtrArray *vms;	     /* of VmbcBeancounter*, owned, in id order */
	GHashTable *by_name; /* name -> VmbcBeancounter*, borrowed */
	guint next_id;
	VmbcActuator actuator;
	gpointer actuator_data;
	VmbcEventFunc event_func;
	gpointer event_data;
	gint64 host_last_fail;	  /* monotonic usec of the last host failcnt++ */
	VmbcHostState host_state; /* the pressure controller's (vmbc-host.c) */
	gint64 wall_usec;	  /* wall clock of the current tick (epoch usec), 0 unknown */
	gint64 ksm_shared;	  /* KSM pages_shared, 0 when KSM is off */
	gint64 ksm_sharing;	  /* KSM pages_sharing */
	gint64 emit_sampled_at;	  /* passed to the next event (LIMIT_HIT), -1 none */
	/*
	 * Who is acting when it is not the physpages reclaim state that says so
	 * (the host's tick, the operator's reclaim, the guarantee): a
	 * VmbcBalloonReason, or -1. Read when a balloon claim is recorded.
	 */
	gint acting_for;
	guint64 balloon_changes; /* see vmbc_engine_get_balloon_changes() */
	/*
	 * The VMs that may be followed between ticks (borrowed; a set): every VM
	 * vmbc_engine_is_following() is in it, so that the passes between ticks
	 * visit these and not every VM (vmbc-engine-schedule.c).
	 */
	GHashTable *followed;
	/* the VMs whose balloon claim changed since vmbc_engine_take_balloon_changed() (a set) */
	GHashTable *claims_changed;
};

typedef struct {
	VmbcBeancounter *bc; /* a reference */
	VmbcResourceId res;
	VmbcChangeFunc done;
	gpointer user_data;
	gint64 deadline; /* monotonic usec; answered with an error after it */
} VmbcPendingChange;

/*
 * vmbc-engine-schedule.c. Called after anything that may start a reclaim or
 * queue a change for @bc (its policies, a new limit, the operator's reclaim):
 * a VM the engine now follows joins engine->followed.
 */
void vmbc_engine_note_following(VmbcEngine *engine, VmbcBeancounter *bc);

/*
 * vmbc-charge.c. The pages a sample's resident guest RAM charges (KSM's
 * sharers' part taken off); called by vmbc_engine_sample() before it sets held.
 */
gint64 vmbc_engine_charge_for(VmbcEngine *engine, const VmbcSample *sample);
/* After held was set from @sample: KSM's pages and saving, hugetlb, guest RAM's size. */
void vmbc_engine_note_ram(VmbcBeancounter *bc, const VmbcSample *sample);

/* Sends an event to the daemon (and logs it). @fmt makes the message. */
void vmbc_engine_emit(VmbcEngine *engine, VmbcEventType type, VmbcBeancounter *bc,
		      VmbcResourceId res, gint64 target, VmbcError reason, const gchar *fmt, ...)
	G_GNUC_PRINTF(7, 8);

/*
 * Asks the actuator for a balloon target, clamped to [guarantee, max_pages].
 * Returns FALSE with an error when it could not be sent (no actuator, the
 * backend refused). Records the target on success.
 */
gboolean vmbc_engine_set_balloon(VmbcEngine *engine, VmbcBeancounter *bc, gint64 target,
				 GError **error);

/*
 * Runs the configured escalation on @bc after a failed limit reclaim. TRUE if
 * one ran: the caller then emits VMBC_EVENT_ESCALATED with
 * vmbc_engine_escalated(), after its own event. FALSE with @error when none
 * could (the backend's reason, warned once per VM and reason, for the caller's
 * event); FALSE without one when none is configured.
 */
gboolean vmbc_engine_escalate(VmbcEngine *engine, VmbcBeancounter *bc, GError **error);

/* Emits VMBC_EVENT_ESCALATED for a limit reclaim that failed with @reason. */
void vmbc_engine_escalated(VmbcEngine *engine, VmbcBeancounter *bc, VmbcError reason);
/*
 * The physpages limit was raised or removed: a memory.high that the memory-high
 * escalation set follows it (to max once there is no limit), so that it does
 * not hold the VM below its new limit. Lowering the limit leaves it: only a
 * failed reclaim escalates.
 */
void vmbc_engine_follow_memory_high(VmbcEngine *engine, VmbcBeancounter *bc);

/* Queues @done until the reclaim of @bc finishes. */
void vmbc_engine_add_pending(VmbcEngine *engine, VmbcBeancounter *bc, VmbcResourceId res,
			     gint64 now, VmbcChangeFunc done, gpointer user_data);

/* Answers every pending change of @bc: success if @error is NULL. */
void vmbc_engine_complete_pending(VmbcEngine *engine, VmbcBeancounter *bc, const GError *error);

/* Answers pending changes whose deadline passed. */
void vmbc_engine_expire_pending(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now);

/* The margin below @limit that limit reclaims aim for, in pages. */
/* Remembers held for the current wall-clock second, one slot a second (vmbc-held-history.c). */
void vmbc_engine_record_held(VmbcEngine *engine, VmbcBeancounter *bc);
/*
 * What the host saw (held, balloon actual) when the guest measured at @stamp
 * (epoch seconds); see vmbc-held-history.c.
 */
void vmbc_held_at(VmbcBeancounter *bc, gint64 stamp, gint64 *held, gint64 *actual);

/*
 * Whether the policies of @bc can be skipped this tick: nothing they read
 * changed since the last tick and none of them has anything under way
 * (vmbc-engine-schedule.c).
 */
gboolean vmbc_engine_tick_quiet(VmbcEngine *engine, VmbcBeancounter *bc);

/* After a read of @bc's held: when the next must come (vmbc-engine-schedule.c). */
void vmbc_engine_schedule_sampled(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now);

gint64 vmbc_engine_margin(VmbcEngine *engine, gint64 limit);

/* "512M" style for messages; freed by the caller. */
gchar *vmbc_engine_fmt(gint64 pages);

G_END_DECLS
