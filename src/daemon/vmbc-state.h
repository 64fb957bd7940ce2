/*
 * vmbc-state.h: limits set at run time, kept across restarts and crashes.
 *
 * Stored as JSON in STATE_DIR/state.json. Every change is written at once,
 * atomically (temporary file, fsync, rename, fsync of the directory), so a
 * kill -9 at any moment leaves either the old or the new file, never a torn one.
 */
#pragma once

#include <glib.h>

#include "vmbc-beancounter.h"
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

/* Forgets the barrier/limit of @res saved for @domain. In memory only. */
void vmbc_state_unset(VmbcState *state, const gchar *domain, VmbcResourceId res);

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

/*
 * The VM's beancounter id, so that a VM that comes back after a restart has
 * the id it had. Kept like the limits, when the VM ends too. 0: none saved.
 */
void vmbc_state_set_id(VmbcState *state, const gchar *domain, guint id);
guint vmbc_state_get_id(VmbcState *state, const gchar *domain);
/*
 * The policy the VM carried (in its libvirt metadata) when vmbcd last applied
 * it, as vmbc_policy_describe() writes it; NULL if none. Kept like the
 * limits: a policy found unchanged at the next adoption leaves the runtime
 * limits set since in place, a changed one is newer than they are.
 */
void vmbc_state_set_policy(VmbcState *state, const gchar *domain, const gchar *policy);
const gchar *vmbc_state_get_policy(VmbcState *state, const gchar *domain);

/* The highest id saved (0 if none): new VMs get higher ones. */
guint vmbc_state_get_max_id(VmbcState *state);

/*
 * The balloon of a running VM: what the backend learned of its driver
 * (VMBC_BALLOON_UNKNOWN: nothing to keep) and what vmbcd set on it (@claim
 * NULL or target -1: nothing). Forgotten with the counters. The setters
 * return TRUE when the saved value changed (so that the caller saves soon).
 */
gboolean vmbc_state_set_balloon(VmbcState *state, const gchar *domain, VmbcBalloonState balloon);
VmbcBalloonState vmbc_state_get_balloon(VmbcState *state, const gchar *domain);
gboolean vmbc_state_set_balloon_claim(VmbcState *state, const gchar *domain,
				      const VmbcBalloonClaim *claim);
gboolean vmbc_state_get_balloon_claim(VmbcState *state, const gchar *domain,
				      VmbcBalloonClaim *claim);

/*
 * The VM is gone: its counters, memory.high mark and balloon end with it (its
 * limits and its id stay).
 */
void vmbc_state_forget_counters(VmbcState *state, const gchar *domain);

/* Writes the file atomically, creating the directory (0755) if needed. */
gboolean vmbc_state_save(VmbcState *state, GError **error);

G_END_DECLS
