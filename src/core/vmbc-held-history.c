/*
 * vmbc-held-history.c: what the host saw of a VM second by second (held and
 * the balloon's size, a few seconds back), so that guest statistics, stamped
 * with the wall-clock second the guest measured in, are read against what the
 * host saw then.
 */
#include "vmbc-engine-private.h"

/* Remembers held for the current wall-clock second (one slot a second). */
void
vmbc_engine_record_held(VmbcEngine *engine, VmbcBeancounter *bc)
{
	gint64 sec = engine->wall_usec / G_USEC_PER_SEC;
	guint last = (bc->held_history_next + VMBC_HELD_HISTORY - 1) % VMBC_HELD_HISTORY;

	if (engine->wall_usec == 0)
		return;
	if (bc->held_history[last].wall_sec == sec) {
		/* the highest of the second: the guest may have measured at any point in it */
		bc->held_history[last].held =
			MAX(bc->held_history[last].held, bc->parm[VMBC_RES_PHYSPAGES].held);
		return;
	}
	bc->held_history[bc->held_history_next].wall_sec = sec;
	bc->held_history[bc->held_history_next].held = bc->parm[VMBC_RES_PHYSPAGES].held;
	bc->held_history[bc->held_history_next].actual = bc->balloon_actual;
	bc->held_history_next = (bc->held_history_next + 1) % VMBC_HELD_HISTORY;
}

/*
 * What the host saw (held, balloon actual) when the guest measured at @stamp
 * (epoch seconds): the entry of that second, or the oldest one kept if the
 * stats are older than the history, or the current values when nothing is known.
 */
void
vmbc_held_at(VmbcBeancounter *bc, gint64 stamp, gint64 *held, gint64 *actual)
{
	gint best = -1;
	gint64 best_sec = G_MAXINT64;
	gint oldest = -1;
	gint64 oldest_sec = G_MAXINT64;

	for (guint i = 0; i < VMBC_HELD_HISTORY; i++) {
		gint64 sec = bc->held_history[i].wall_sec;
		if (sec == 0)
			continue;
		if (sec < oldest_sec) {
			oldest_sec = sec;
			oldest = (gint)i;
		}
		if (sec >= stamp && sec < best_sec) {
			best_sec = sec;
			best = (gint)i;
		}
	}
	if (best >= 0 && best_sec > stamp + 1 && oldest_sec <= stamp)
		best = oldest; /* a gap in the history: be conservative */
	if (best < 0)
		best = oldest;
	if (best < 0) {
		*held = bc->parm[VMBC_RES_PHYSPAGES].held;
		*actual = bc->balloon_actual;
		return;
	}
	*held = bc->held_history[best].held;
	*actual = bc->held_history[best].actual;
}
