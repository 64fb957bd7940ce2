/*
 * vmbc-config.h: /etc/vmbc/vmbc.conf, a GKeyFile (see vmbc.conf(5)).
 *
 * Every key is checked at load: an unknown group or key, a bad size or
 * duration, a barrier above its limit are refused with the file, the line,
 * the key and the reason, so vmbcd never starts on a configuration it
 * misread. Sizes stay as text here: a percentage is only meaningful once a
 * VM's maximum memory is known (vmbc_config_resolve_limits()).
 */
#pragma once

#include <glib.h>

#include "vmbc-engine.h"
#include "vmbc-settings.h"

G_BEGIN_DECLS

/* Limits for one VM (or the defaults) as written; NULL means "not set here". */
typedef struct {
	gchar *barrier;	  /* physpages barrier */
	gchar *limit;	  /* physpages limit */
	gchar *guarantee; /* vmguarpages barrier */
	gchar *vmm_limit; /* vmmpages limit */
	gint shares;	  /* -1 not set */
	gint trust_guest; /* -1 not set, 0 or 1: take the guest's word over the limit */
} VmbcLimitSpec;

typedef struct {
	gchar *path; /* the file it came from, NULL for built-in defaults */

	/* [daemon] */
	gchar **backends;	 /* "qmp", "libvirt" */
	gchar *control_socket;	 /* default $RUNTIME_DIRECTORY/vmbcd.sock */
	gchar *admin_group;	 /* may change limits besides root; NULL none */
	gchar *state_dir;	 /* default $STATE_DIRECTORY or /var/lib/vmbc */
	gchar *metrics_listen;	 /* "127.0.0.1:PORT", "" or "off" disables */
	VmbcEngineConfig engine; /* tick, reclaim timeout, margins, escalation */
	VmbcSettings *settings;	 /* the keys the compiled-in backends declare */

	/* [host] */
	gchar *host_barrier; /* a fixed budget: NULL for the host's own */
	gchar *host_limit;
	gchar *host_cgroup;	/* the VMs' cgroup: "auto", "none" or a path */
	gchar *host_reserve;	/* of host RAM, what the VMs' budget leaves the host */
	gchar *host_pressure;	/* PSI file: "auto", "off" or a path */
	gint64 psi_window_usec; /* the PSI trigger's window (its stall: psi-target of it) */

	/* [defaults] and [domain NAME] */
	VmbcLimitSpec defaults;
	GHashTable *domains; /* name -> VmbcLimitSpec* */
} VmbcConfig;

/* Built-in defaults, with paths from the environment (systemd's *_DIRECTORY). */
VmbcConfig *vmbc_config_new_default(void);

/*
 * Loads @path over the built-in defaults. On error NULL is returned and the
 * message reads "FILE:LINE: key 'K' in [GROUP]: REASON".
 */
VmbcConfig *vmbc_config_load(const gchar *path, GError **error);

void vmbc_config_free(VmbcConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbcConfig, vmbc_config_free)

/* The spec for @name: [domain NAME] keys over [defaults]. Borrowed strings. */
void vmbc_config_get_spec(const VmbcConfig *config, const gchar *name, VmbcLimitSpec *out);

/*
 * Turns a spec into pages for a VM of @max_pages. Unset values stay
 * VMBC_UNLIMITED (barrier/limit/vmm_limit) or 0 (guarantee). The barrier
 * defaults to the limit when only the limit is set.
 */
gboolean vmbc_config_resolve_limits(const VmbcLimitSpec *spec, gint64 max_pages, gint64 *barrier,
				    gint64 *limit, gint64 *guarantee, gint64 *vmm_limit,
				    GError **error);

G_END_DECLS
