/*
 * vmbc-psi.h: memory pressure stall information (PSI) from the kernel.
 *
 * A PSI file is /proc/pressure/memory or a cgroup v2 directory's
 * memory.pressure. vmbc_psi_read() reads its averages and totals; a
 * VmbcPsiTrigger registers a trigger on it ("some 50000 1000000": 50 ms of
 * stall within any 1 s window) and calls back from the GLib main loop when
 * the kernel signals it (POLLPRI): the kernel wakes vmbcd, nothing polls.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
	gdouble some_avg10; /* percent of time some task stalled on memory, last 10 s */
	gdouble some_avg60;
	gint64 some_total;  /* usec, since boot (or since the cgroup was made) */
	gdouble full_avg10; /* percent of time all non-idle tasks stalled */
	gdouble full_avg60;
	gint64 full_total; /* -1 when the file has no "full" line */
} VmbcPsi;

/*
 * Parses the text of a PSI file ("some avg10=0.00 avg60=0.00 avg300=0.00
 * total=0" and, optionally, a "full ..." line). FALSE with an error naming
 * what is wrong when there is no well-formed "some" line.
 */
gboolean vmbc_psi_parse(const gchar *text, VmbcPsi *out, GError **error);

/* Reads and parses @path. */
gboolean vmbc_psi_read(const gchar *path, VmbcPsi *out, GError **error);

typedef struct _VmbcPsiTrigger VmbcPsiTrigger;

/* The trigger fired: the stall passed the threshold within the window. */
typedef void (*VmbcPsiFunc)(VmbcPsiTrigger *trigger, gpointer user_data);

/*
 * Registers a trigger on @path: @full ("full") or "some" stall of at least
 * @stall_usec within @window_usec (the kernel takes windows from 500 ms to
 * 10 s; without CAP_SYS_RESOURCE only multiples of 2 s, and the window is
 * then rounded up to one, the stall in proportion). @func runs in the thread-default main context
 * every time the kernel signals it (at most once a window). On error NULL is returned with a
 * VMBC_ERROR naming the file and the kernel's reason.
 */
VmbcPsiTrigger *vmbc_psi_trigger_new(const gchar *path, gboolean full, gint64 stall_usec,
				     gint64 window_usec, VmbcPsiFunc func, gpointer user_data,
				     GError **error);

/* Removes the trigger (closing its file unregisters it with the kernel). */
void vmbc_psi_trigger_free(VmbcPsiTrigger *trigger);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbcPsiTrigger, vmbc_psi_trigger_free)

const gchar *vmbc_psi_trigger_get_path(const VmbcPsiTrigger *trigger);

/* The trigger as the kernel took it ("some 100000 2000000"). */
const gchar *vmbc_psi_trigger_get_spec(const VmbcPsiTrigger *trigger);

/* How many times the kernel signalled the trigger. */
guint64 vmbc_psi_trigger_get_fired(const VmbcPsiTrigger *trigger);

G_END_DECLS
