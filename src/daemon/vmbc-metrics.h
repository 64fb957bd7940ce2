/*
 * vmbc-metrics.h: the Prometheus endpoint of vmbcd (see docs/metrics.md).
 *
 * An HTTP server (libsoup 3) on the daemon's GLib main loop that answers
 * GET/HEAD /metrics with the page of vmbc-metrics-renderer.h (every
 * beancounter, the host and the daemon's own numbers in the text exposition
 * format 0.0.4), and GET/HEAD /healthz with "ok". A page is sent as it is
 * rendered, a piece at a time between two main-loop iterations; nothing here
 * waits on a VM, so a scrape never holds up the engine. Slow or hostile
 * clients are cut off (request deadline, connection cap, size caps).
 */
#pragma once

#include <glib.h>

#include "vmbc-daemon.h"
#include "vmbc-metrics-renderer.h"

G_BEGIN_DECLS

typedef struct _VmbcMetrics VmbcMetrics;

/* How long a connection may take to deliver a request (or sit idle between two). */
#define VMBC_METRICS_REQUEST_TIMEOUT_USEC (10 * G_USEC_PER_SEC)
/*
 * Connections served at once. A new one beyond them takes the place of the
 * connection idle the longest (no request yet); it is closed at accept only
 * when all of them are in the middle of a request.
 */
#define VMBC_METRICS_MAX_CONNECTIONS 32

/*
 * Creates the endpoint for @daemon (borrowed; it must outlive the endpoint)
 * with its renderer, which starts listening to the daemon's events (reclaim
 * durations, VMs going away). Nothing is served until vmbc_metrics_listen().
 */
VmbcMetrics *vmbc_metrics_new(VmbcDaemon *daemon);

/*
 * Listens on @listen, "ADDR:PORT" ("127.0.0.1:9786", "[::1]:9786"; port 0
 * picks a free one, see vmbc_metrics_get_port()). On error FALSE is returned
 * with a message naming the address, and nothing listens.
 */
gboolean vmbc_metrics_listen(VmbcMetrics *m, const gchar *listen, GError **error);

/* The port listened on, 0 before a successful vmbc_metrics_listen(). */
guint16 vmbc_metrics_get_port(VmbcMetrics *m);

/*
 * Renders the whole page into @out (appended), with this endpoint's own
 * counters. This is what a scrape sends; it is public for tests and the
 * scrape benchmark.
 */
void vmbc_metrics_render(VmbcMetrics *m, GString *out);

/*
 * Records one reclaim of @bc that took @seconds in the renderer's histogram,
 * as the daemon's RECLAIM_DONE event does (exposed for tests).
 */
void vmbc_metrics_observe_reclaim(VmbcMetrics *m, VmbcBeancounter *bc, gdouble seconds);

/* Closes the listener and every connection, and frees the renderer. NULL is ignored. */
void vmbc_metrics_free(VmbcMetrics *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbcMetrics, vmbc_metrics_free)

G_END_DECLS
