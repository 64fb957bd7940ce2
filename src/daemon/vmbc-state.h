/*
 * vmbc-state.h: limits set at run time, kept across restarts and crashes.
 *
 * Stored as JSON in STATE_DIR/state.json. Every change is written at once,
 * atomically (temporary file, fsync, rename, fsync of the directory), so a
 * kill -9 at any moment leaves either the old or the new file, never a torn one.
 */
#pragma once

#include <glib.h>

#include "vmbc-resource.h"

G_BEGIN_DECLS

typedef struct _VmbcState VmbcState;

VmbcState *vmbc_state_new(const gchar *dir);
void vmbc_state_free(VmbcState *state);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbcState, vmbc_state_free)

const gchar *vmbc_state_get_path(VmbcState *state);

/*
 * Reads the file. A missing file is an empty state. A file that cannot be
 * parsed is moved aside to state.json.corrupt-TIMESTAMP and FALSE is returned
 * with an error saying so: the caller logs it and goes on with an empty state.
 */
gboolean vmbc_state_load(VmbcState *state, GError **error);

/* Records barrier/limit of @res for @domain ("host" for the root). In memory only. */
void vmbc_state_set(VmbcState *state, const gchar *domain, VmbcResourceId res, gint64 barrier,
		    gint64 limit);

/* TRUE and the values if @domain has @res saved. */
gboolean vmbc_state_get(VmbcState *state, const gchar *domain, VmbcResourceId res, gint64 *barrier,
			gint64 *limit);

/*
 * Counters (maxheld, failcnt) of a running VM, so that a daemon restart does
 * not reset what the operator watches. Saved every so often and at exit, not
 * on every change: a crash loses at most one interval of counting.
 */
void vmbc_state_set_counters(VmbcState *state, const gchar *domain, VmbcResourceId res,
			     gint64 maxheld, guint64 failcnt);
gboolean vmbc_state_get_counters(VmbcState *state, const gchar *domain, VmbcResourceId res,
				 gint64 *maxheld, guint64 *failcnt);

/*
 * Whether vmbcd set memory.high of the running VM (the memory-high
 * escalation), so that after a restart it still raises it with the limit.
 * Kept with the counters, and forgotten with them.
 */
void vmbc_state_set_memory_high(VmbcState *state, const gchar *domain, gboolean set);
gboolean vmbc_state_get_memory_high(VmbcState *state, const gchar *domain);

/* The VM is gone: its counters and memory.high mark end with it (its limits stay). */
void vmbc_state_forget_counters(VmbcState *state, const gchar *domain);

/* Writes the file atomically, creating the directory (0755) if needed. */
gboolean vmbc_state_save(VmbcState *state, GError **error);

G_END_DECLS
