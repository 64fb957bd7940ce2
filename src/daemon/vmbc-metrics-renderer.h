/*
 * vmbc-metrics-renderer.h: the page of the Prometheus endpoint (see
 * docs/metrics.md).
 *
 * A pure function of the daemon's state to text: every beancounter, the host
 * and the daemon's own numbers in the text exposition format 0.0.4. The
 * renderer knows no socket; the server (vmbc-metrics.h) hands it the numbers
 * only the server knows, and tests can render a page without one.
 */
#pragma once

#include <glib.h>

#include "vmbc-daemon.h"

G_BEGIN_DECLS

/* Reclaim-duration histogram buckets (seconds). */
#define VMBC_RECLAIM_BUCKETS 11
extern const gdouble vmbc_reclaim_bucket_bounds[VMBC_RECLAIM_BUCKETS];

typedef struct _VmbcMetricsRenderer VmbcMetricsRenderer;

/* What the server counts about itself, rendered on the page. */
typedef struct {
	guint64 scrapes;	 /* pages served */
	guint64 closed_timeout;	 /* connections cut off for no complete request in time */
	guint64 closed_overload; /* connections closed at accept, too many open */
	guint64 closed_idle;	 /* idle connections cut off to make room for a new one */
} VmbcMetricsServerStats;

/*
 * Creates the renderer of @daemon (borrowed; it must outlive the renderer)
 * and starts listening to its events (reclaim durations, VMs coming and
 * going), which feed the per-VM labels and histograms.
 */
VmbcMetricsRenderer *vmbc_metrics_renderer_new(VmbcDaemon *daemon);

/*
 * Renders the whole page into @out (appended), with @stats (may be NULL: all
 * zero) as the server's own numbers. Nothing is waited on; the time it took
 * (for a page rendered in pieces, the sum of the pieces) appears on the next
 * page as vmbc_metrics_render_seconds.
 */
void vmbc_metrics_renderer_render(VmbcMetricsRenderer *r, const VmbcMetricsServerStats *stats,
				  GString *out);

/*
 * A page being rendered, piece by piece: vmbc_metrics_renderer_begin() takes
 * the VMs there are (a VM that goes away before its turn is left out) and
 * @stats (copied; may be NULL: all zero), then each vmbc_metrics_page_next()
 * appends at least @min_bytes to @out (a VM's rows of a family are never
 * split), less only at the end of the page, and returns FALSE once the page
 * is complete. Between two calls the main loop may run, VMs come and go. A
 * page must be freed before its renderer.
 */
typedef struct _VmbcMetricsPage VmbcMetricsPage;

VmbcMetricsPage *vmbc_metrics_renderer_begin(VmbcMetricsRenderer *r,
					     const VmbcMetricsServerStats *stats);
gboolean vmbc_metrics_page_next(VmbcMetricsPage *page, GString *out, gsize min_bytes);
void vmbc_metrics_page_free(VmbcMetricsPage *page);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbcMetricsPage, vmbc_metrics_page_free)

/*
 * Records one reclaim of @bc that took @seconds (negative or NaN counts as 0),
 * as the daemon's RECLAIM_DONE event does.
 */
void vmbc_metrics_renderer_observe_reclaim(VmbcMetricsRenderer *r, VmbcBeancounter *bc,
					   gdouble seconds);

/*
 * Appends @value as a label value in the text format: backslash, double quote
 * and newline escaped; bytes that are not UTF-8 replaced by U+FFFD.
 */
void vmbc_metrics_append_label_value(GString *out, const gchar *value);

/* Stops listening to the daemon and frees the per-VM table. NULL is ignored. */
void vmbc_metrics_renderer_free(VmbcMetricsRenderer *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbcMetricsRenderer, vmbc_metrics_renderer_free)

G_END_DECLS
