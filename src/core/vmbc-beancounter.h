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

G_BEGIN_DECLS

typedef struct _VmbcBeancounter VmbcBeancounter;

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

	/* balloon, host side truth */
	VmbcBalloonState balloon;
	gint free_page_reporting; /* -1 unknown, 0 off, 1 on */
	gint64 balloon_actual;	  /* pages; -1 unknown */
	gint64 balloon_target;	  /* last target sent, pages; -1 none */

	VmbcGuestStats stats;
	VmbcGuestStats prev_stats;
	gint64 ksm_pages;     /* resident guest pages KSM merged (charged fractionally) */
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

G_END_DECLS
