/*
 * vmbc-psi.c: PSI files and triggers (see vmbc-psi.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <glib-unix.h>

#include "vmbc-error.h"
#include "vmbc-psi.h"

/* the kernel's granularity for triggers of processes without CAP_SYS_RESOURCE */
#define UNPRIVILEGED_WINDOW G_GINT64_CONSTANT(2000000)

struct _VmbcPsiTrigger {
	gchar *path;
	gchar *spec; /* as the kernel took it: "some STALL WINDOW" */
	int fd;
	GSource *source;
	VmbcPsiFunc func;
	gpointer user_data;
	guint64 fired;
	gboolean broken; /* the kernel reported an error on it: said once */
};

/* "avg10=1.23 avg60=0.00 avg300=0.00 total=123" into @avg10, @avg60, @total. */
static gboolean
parse_line(const gchar *line, gdouble *avg10, gdouble *avg60, gint64 *total)
{
	g_auto(GStrv) fields = g_strsplit(line, " ", -1);
	guint seen = 0;

	for (guint i = 0; fields[i] != NULL; i++) {
		const gchar *eq = strchr(fields[i], '=');
		gchar *end = NULL;
		if (eq == NULL)
			continue;
		if (g_str_has_prefix(fields[i], "avg10=")) {
			*avg10 = g_ascii_strtod(eq + 1, &end);
			seen |= end != eq + 1 ? 1 : 0;
		} else if (g_str_has_prefix(fields[i], "avg60=")) {
			*avg60 = g_ascii_strtod(eq + 1, &end);
			seen |= end != eq + 1 ? 2 : 0;
		} else if (g_str_has_prefix(fields[i], "total=")) {
			guint64 v;
			if (g_ascii_string_to_unsigned(eq + 1, 10, 0, G_MAXINT64, &v, NULL)) {
				*total = (gint64)v;
				seen |= 4;
			}
		}
	}
	return seen == 7;
}

gboolean
vmbc_psi_parse(const gchar *text, VmbcPsi *out, GError **error)
{
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	gboolean some = FALSE;

	*out = (VmbcPsi){0, 0, -1, 0, 0, -1};
	for (guint i = 0; lines[i] != NULL; i++) {
		if (g_str_has_prefix(lines[i], "some ")) {
			if (!parse_line(lines[i] + 5, &out->some_avg10, &out->some_avg60,
					&out->some_total))
				break;
			some = TRUE;
		} else if (g_str_has_prefix(lines[i], "full ")) {
			if (!parse_line(lines[i] + 5, &out->full_avg10, &out->full_avg60,
					&out->full_total))
				out->full_total = -1;
		}
	}
	if (!some) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "no 'some avg10=... avg60=... total=...' line in '%.80s'", text);
		return FALSE;
	}
	return TRUE;
}

gboolean
vmbc_psi_read(const gchar *path, VmbcPsi *out, GError **error)
{
	g_autofree gchar *text = NULL;
	g_autoptr(GError) local = NULL;

	if (!g_file_get_contents(path, &text, NULL, &local)) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED, "cannot read %s: %s", path,
			    local->message);
		return FALSE;
	}
	if (!vmbc_psi_parse(text, out, &local)) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED, "%s: %s", path, local->message);
		return FALSE;
	}
	return TRUE;
}

static gboolean
on_trigger(gint fd, GIOCondition cond, gpointer user_data)
{
	VmbcPsiTrigger *trigger = user_data;

	if (cond & (G_IO_ERR | G_IO_HUP | G_IO_NVAL)) {
		/* the cgroup went away, or the file stopped being a trigger */
		if (!trigger->broken)
			g_warning("PSI trigger on %s: the kernel reported an error; no more "
				  "pressure events from it",
				  trigger->path);
		trigger->broken = TRUE;
		g_clear_pointer(&trigger->source, g_source_unref);
		return G_SOURCE_REMOVE;
	}
	if (cond & G_IO_PRI) {
		trigger->fired++;
		trigger->func(trigger, trigger->user_data);
	}
	return G_SOURCE_CONTINUE;
}

VmbcPsiTrigger *
vmbc_psi_trigger_new(const gchar *path, gboolean full, gint64 stall_usec, gint64 window_usec,
		     VmbcPsiFunc func, gpointer user_data, GError **error)
{
	g_autofree gchar *spec = NULL;
	VmbcPsiTrigger *trigger;
	gssize n;
	int fd;

	g_return_val_if_fail(func != NULL, NULL);
	if (window_usec < 500000 || window_usec > 10000000 || stall_usec <= 0 ||
	    stall_usec > window_usec) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "PSI trigger on %s: a stall of %" G_GINT64_FORMAT
			    " us in a window of %" G_GINT64_FORMAT
			    " us is not one the kernel takes (window 500 ms to 10 s, stall "
			    "within it)",
			    path, stall_usec, window_usec);
		return NULL;
	}
	fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED, "cannot open %s: %s", path,
			    g_strerror(err));
		return NULL;
	}
	spec = g_strdup_printf("%s %" G_GINT64_FORMAT " %" G_GINT64_FORMAT, full ? "full" : "some",
			       stall_usec, window_usec);
	/* the kernel takes the string with its NUL, as its documentation writes it */
	n = write(fd, spec, strlen(spec) + 1);
	if (n < 0 && errno == EINVAL && window_usec % UNPRIVILEGED_WINDOW != 0) {
		/*
		 * Without CAP_SYS_RESOURCE the kernel takes only windows that are
		 * multiples of 2 s: the same share of a longer window.
		 */
		gint64 window = (window_usec / UNPRIVILEGED_WINDOW + 1) * UNPRIVILEGED_WINDOW;
		gint64 stall = stall_usec * window / window_usec;
		g_free(spec);
		spec = g_strdup_printf("%s %" G_GINT64_FORMAT " %" G_GINT64_FORMAT,
				       full ? "full" : "some", stall, window);
		n = write(fd, spec, strlen(spec) + 1);
		if (n >= 0)
			g_info("PSI trigger on %s: window %.1f s (without CAP_SYS_RESOURCE the "
			       "kernel takes multiples of 2 s only)",
			       path, (gdouble)window / 1e6);
	}
	if (n < 0) {
		int err = errno;
		close(fd);
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED,
			    "cannot register the PSI trigger '%s' on %s: %s", spec, path,
			    g_strerror(err));
		return NULL;
	}
	trigger = g_new0(VmbcPsiTrigger, 1);
	trigger->path = g_strdup(path);
	trigger->spec = g_steal_pointer(&spec);
	trigger->fd = fd;
	trigger->func = func;
	trigger->user_data = user_data;
	trigger->source = g_unix_fd_source_new(fd, G_IO_PRI | G_IO_ERR | G_IO_HUP | G_IO_NVAL);
	g_source_set_callback(trigger->source, G_SOURCE_FUNC(on_trigger), trigger, NULL);
	g_source_set_name(trigger->source, "[vmbcd] PSI trigger");
	g_source_set_priority(trigger->source, G_PRIORITY_HIGH);
	g_source_attach(trigger->source, g_main_context_get_thread_default());
	return trigger;
}

void
vmbc_psi_trigger_free(VmbcPsiTrigger *trigger)
{
	if (trigger == NULL)
		return;
	if (trigger->source != NULL) {
		g_source_destroy(trigger->source);
		g_source_unref(trigger->source);
	}
	close(trigger->fd);
	g_free(trigger->path);
	g_free(trigger->spec);
	g_free(trigger);
}

const gchar *
vmbc_psi_trigger_get_path(const VmbcPsiTrigger *trigger)
{
	return trigger->path;
}

const gchar *
vmbc_psi_trigger_get_spec(const VmbcPsiTrigger *trigger)
{
	return trigger->spec;
}

guint64
vmbc_psi_trigger_get_fired(const VmbcPsiTrigger *trigger)
{
	return trigger->fired;
}
