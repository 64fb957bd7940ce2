/*
 * vmbc-backend-host.h: what a backend gets from the program that runs it.
 *
 * As fwupd hands its plugins a FuContext rather than the daemon, a backend
 * sees only this: the engine it feeds, the clock, and adding and removing
 * VMs (so that configured and saved limits are applied to them). vmbcd
 * implements it over its daemon; a backend's unit tests implement it over a
 * bare engine. A backend reaches it through the VmbcBackend helpers
 * (vmbc_backend_get_engine(), vmbc_backend_add_vm(), ...), never directly.
 */
#pragma once

#include <glib.h>

#include "vmbc-engine.h"
#include "vmbc-policy.h"

G_BEGIN_DECLS

typedef struct _VmbcBackend VmbcBackend;
typedef struct _VmbcBackendHost VmbcBackendHost;

typedef struct {
	/* The engine the backend feeds samples and answers to. */
	VmbcEngine *(*get_engine)(VmbcBackendHost *host);
	/* The current monotonic time in usec, as the engine sees it. */
	gint64 (*now)(VmbcBackendHost *host);
	/*
	 * A VM appeared: create its beancounter with the limits that apply to it
	 * and store @backend_data in it (freed with @free_func when it is
	 * removed, or at once on error). NULL with an error when the name is
	 * taken.
	 */
	VmbcBeancounter *(*add_vm)(VmbcBackendHost *host, VmbcBackend *backend, const gchar *name,
				   gint64 max_pages, gpointer backend_data,
				   GDestroyNotify free_func, GError **error);
	/* The VM went away: drop its beancounter; its pending requests fail. */
	void (*remove_vm)(VmbcBackendHost *host, VmbcBeancounter *bc);
	/*
	 * The VM carries @policy (read at adoption, or changed since): apply it
	 * as far as it is newer than what applies now. May be NULL (a host that
	 * applies no policy).
	 */
	void (*apply_policy)(VmbcBackendHost *host, VmbcBeancounter *bc, const VmbcPolicy *policy);
} VmbcBackendHostInterface;

/* Embedded first in the implementation's own struct. */
struct _VmbcBackendHost {
	const VmbcBackendHostInterface *iface;
};

G_END_DECLS
