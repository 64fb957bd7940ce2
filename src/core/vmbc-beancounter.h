/*
 * vmbc-beancounter.h: one VM (or the host root) as a UBC beancounter.
 *
 * A beancounter owns a ledger per resource and what the engine knows about the
 * VM's balloon and its guest's (untrusted) statistics. It is a plain,
 * reference-counted struct: the engine is its only writer; the daemon, the
 * control socket and the metrics read it between ticks.
 */
#pragma once

#include <glib.h>

#include "vmbc-resource.h"
#include "vmbc-virtio-mem.h"

G_BEGIN_DECLS

typedef struct _VmbcBeancounter VmbcBeancounter;

/* A beancounter's shares unless configured otherwise. */
#define VMBC_DEFAULT_SHARES 1000

/* What the guest says about itself. Every field is a hint; -1 means not reported. */
typedef struct {
	gint64 available; /* MemAvailable, pages */
	gint64 free;	  /* MemFree ("unused"), pages */
	gint64 caches;	  /* disk caches, pages */
	gint64 total;	  /* MemTotal, pages */
	gint64 swap_in;	  /* cumulative pages swapped in */
	gint64 major_faults;
	gint64 last_update; /* host epoch seconds, 0 never */
} VmbcGuestStats;

/* Whether a VM's balloon can be used to reclaim, as far as the backend knows. */
typedef enum {
	VMBC_BALLOON_UNKNOWN,	/* not yet probed */
	VMBC_BALLOON_OK,	/* device present, driver answered (actual moved or stats came) */
	VMBC_BALLOON_NO_DEVICE, /* no balloon device: QMP DeviceNotActive */
	VMBC_BALLOON_NO_DRIVER, /* device present, the guest never moved it */
} VmbcBalloonState;

/* Why vmbcd holds a balloon below the guest's full size. */
typedef enum {
	VMBC_BALLOON_FOR_LIMIT,	  /* a physpages limit reclaim (running, done or failed) */
	VMBC_BALLOON_FOR_BARRIER, /* the gentle reclaim toward the physpages barrier */
	VMBC_BALLOON_FOR_RECLAIM, /* an operator's "reclaim DOM SIZE" */
	VMBC_BALLOON_FOR_HOST,	  /* the host over its barrier took from this VM */
	VMBC_BALLOON_FOR_DEFLATE, /* vmbcd grew a balloon it had not set (guarantee, pressure) */
} VmbcBalloonReason;

/*
 * What vmbcd set on a VM's balloon, kept while the guest is below its full
 * size because of vmbcd, so that raising or removing the limit gives the
 * guest back what vmbcd took, also after a restart (the daemon keeps it in
 * its state file). A balloon without a claim is somebody else's, or nobody's.
 */
typedef struct {
	gint64 target;		  /* the last target vmbcd sent, pages; -1: no claim */
	gint64 before;		  /* the balloon's size before vmbcd first moved it, pages */
	gint64 limit;		  /* the physpages limit when the balloon was last made smaller */
	VmbcBalloonReason reason; /* what made it smaller last */
} VmbcBalloonClaim;

/* Whose balloon it is, for the operator (derived, see vmbc_beancounter_balloon_owner()). */
typedef enum {
	VMBC_BALLOON_OWNER_NONE,  /* at the guest's full size, or not known yet */
	VMBC_BALLOON_OWNER_VMBCD, /* vmbcd set it (balloon_claim) */
	VMBC_BALLOON_OWNER_OTHER, /* smaller than the guest, and vmbcd did not set it */
} VmbcBalloonOwner;

/* When held is read again (vmbc-schedule.h); written by the engine only. */
typedef struct {
	gint64 next_at;	  /* monotonic usec: the first tick at or after it reads held; 0 the next */
	gint64 last_at;	  /* monotonic usec of the last read, 0 never */
	gint64 last_held; /* physpages held then */
	gdouble peak_rate; /* fastest growth seen, pages a second */
	gint64 peak_at;	   /* when peak_rate was last set or halved */
	/* something the policies read changed since the last tick (vmbc_engine_tick_quiet()) */
	gboolean touched;
} VmbcSampleSchedule;

/* Seconds of held history kept: guest stats older than this are taken as stale. */
#define VMBC_HELD_HISTORY 8

struct _VmbcBeancounter {
	gint ref_count;
	gchar *name;
	guint id;		 /* UBC's uid column: 0 for the host, then 1, 2, ... */
	VmbcBeancounter *parent; /* NULL for the host root; not a reference */

	VmbcParm parm[VMBC_RES_COUNT];

	gint64 max_pages; /* the VM's maximum memory (guest RAM size), pages */
	guint shares;	  /* relative weight when the host reclaims; default 1000 */
	/*
	 * The operator trusts this guest's word (vmbc.conf trust-guest): a limit
	 * reclaim stops where the guest's current statistics say it would run out
	 * of memory, even above the limit. Otherwise they only pace it.
	 */
	gboolean trust_guest;
	gboolean sampled;  /* at least one sample arrived */
	gint64 sampled_at; /* monotonic usec of the last physpages sample */
	VmbcSampleSchedule schedule;

	/* balloon, host side truth */
	VmbcBalloonState balloon;
	gint free_page_reporting; /* -1 unknown, 0 off, 1 on */
	gint64 balloon_actual;	  /* pages; -1 unknown */
	gint64 balloon_target;	  /* last target sent, pages; -1 none */
	/* the wall-clock second (epoch) the balloon last grew, asked or seen; 0 never */
	gint64 inflated_wall_sec;
	/*
	 * What vmbcd set (target -1: nothing). Written by the engine only: by
	 * vmbc_engine_set_balloon() and, after a restart, by
	 * vmbc_engine_restore_balloon() once the balloon's size confirmed it
	 * (balloon_claim_unconfirmed until then).
	 */
	VmbcBalloonClaim balloon_claim;
	gboolean balloon_claim_unconfirmed;

	VmbcGuestStats stats;
	gint64 ksm_pages;	  /* resident guest pages KSM merged (charged fractionally) */
	gint64 ksm_saved_pages;	  /* of the guest's resident pages, what other sharers pay for */
	gint64 hugetlb_pages;	  /* of physpages held, in hugetlb pages: no balloon takes them */
	gint64 ram_pages;	  /* guest RAM's size (every backend QEMU named), 0 unknown */
	gint64 ram_hugetlb_pages; /* of ram_pages, hugetlb-backed: not balloon-reclaimable */
	/* how fast the guest writes its memory, as the host measured it (bytes/s, -1 never) */
	gint64 dirty_rate;
	gint64 dirty_rate_at; /* monotonic usec of that measure */
	/*
	 * How many measures in a row agreed with the one that began the run, at
	 * idle_anchor_rate (-1: none) and idle_held (at most VMBC_IDLE_MAX_SETTLED):
	 * each doubles the time to the next measure (vmbc_engine_idle_measure_due()).
	 */
	guint idle_settled;
	gint64 idle_anchor_rate;
	gint64 idle_held;
	/*
	 * The virtio-mem device vmbcd resizes with the balloon (has_vmem), as the
	 * backend last read it; vmem_stalls counts the resizes the guest did not
	 * follow (then the balloon took what the device kept).
	 */
	gboolean has_vmem;
	VmbcVirtioMem vmem;
	gchar *vmem_id;
	guint64 vmem_stalls;
	gint64 stats_held;    /* physpages held when the guest measured its current stats */
	gint64 stats_seen_at; /* monotonic usec (of the last sample) when they arrived, 0 never */
	gint64 stats_actual;  /* balloon actual then (-1 unknown) */
	/* recent held by wall-clock second, to match guest stats to what the host saw then */
	struct {
		gint64 wall_sec;
		gint64 held;
		gint64 actual; /* balloon actual then, -1 unknown */
	} held_history[VMBC_HELD_HISTORY];
	guint held_history_next;

	/*
	 * Each resource's own state, opaque here: physpages keeps its reclaim
	 * state machine in it (read through vmbc-physpages.h). Set by the
	 * resource when the engine adds the beancounter, freed with it.
	 */
	gpointer res_state[VMBC_RES_COUNT];
	GDestroyNotify res_state_free[VMBC_RES_COUNT];
	gboolean vmm_over_limit; /* vmmpages is over its limit (edge for failcnt) */
	/*
	 * vmbcd set the memory-high escalation's backstop; it follows the limit
	 * up. Written only by vmbc_engine_mark_memory_high().
	 */
	gboolean memory_high_set;
	/*
	 * Why the last escalation could not run, as warned: the same reason is
	 * not warned again at every retry. Written only by the engine.
	 */
	gchar *escalation_failure;

	/* synchronous change requests waiting for the reclaim (VmbcPendingChange) */
	GList *pending;

	gpointer backend_data; /* owned by the backend that created the VM */
	GDestroyNotify backend_data_free;
};

VmbcBeancounter *vmbc_beancounter_new(const gchar *name, guint id);
VmbcBeancounter *vmbc_beancounter_ref(VmbcBeancounter *bc);
void vmbc_beancounter_unref(VmbcBeancounter *bc);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbcBeancounter, vmbc_beancounter_unref)

/* The guarantee, in pages: the vmguarpages barrier (0 when unlimited/unset). */
gint64 vmbc_beancounter_guarantee(const VmbcBeancounter *bc);

/* Pages the guest says it could give back now (free + half the caches), 0 if unknown. */
gint64 vmbc_beancounter_spare(const VmbcBeancounter *bc);

/* Fraction of the guest's memory it reports idle (available / total), 0..1, or -1 unknown. */
gdouble vmbc_beancounter_idle_fraction(const VmbcBeancounter *bc);

/* Resets maxheld/minheld/failcnt of every resource (the CLI's resetcnt). */
void vmbc_beancounter_reset(VmbcBeancounter *bc);

const gchar *vmbc_balloon_state_to_string(VmbcBalloonState state);
/* The inverse of vmbc_balloon_state_to_string(); FALSE for anything else. */
gboolean vmbc_balloon_state_from_string(const gchar *text, VmbcBalloonState *out);

/*
 * Whose @bc's balloon is: vmbcd's when it holds a claim on it; somebody
 * else's when the guest is smaller than its full size (by more than a MiB)
 * without one; nobody's otherwise.
 */
VmbcBalloonOwner vmbc_beancounter_balloon_owner(const VmbcBeancounter *bc);
const gchar *vmbc_balloon_owner_to_string(VmbcBalloonOwner owner);

const gchar *vmbc_balloon_reason_to_string(VmbcBalloonReason reason);
gboolean vmbc_balloon_reason_from_string(const gchar *text, VmbcBalloonReason *out);

G_END_DECLS
