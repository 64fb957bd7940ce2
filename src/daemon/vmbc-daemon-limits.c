/*
 * vmbc-daemon-limits.c: configured and saved limits (see vmbc-daemon-limits.h).
 */
#include "vmbc-daemon-limits.h"

/*
 * vmbc.conf's values for @bc, resolved against its size, as set-limits takes
 * them: the barrier and limit of physpages and vmmpages, the guarantee (limit
 * unlimited) of vmguarpages; unlimited (guarantee 0) where it says nothing.
 */
static gboolean
resolve_configured(const VmbcConfig *config, const VmbcBeancounter *bc, VmbcLimitSpec *spec,
		   gint64 barrier[VMBC_RES_COUNT], gint64 limit[VMBC_RES_COUNT], GError **error)
{
	gint64 guarantee, vmm_limit;

	vmbc_config_get_spec(config, bc->name, spec);
	if (!vmbc_config_resolve_limits(spec, bc->max_pages, &barrier[VMBC_RES_PHYSPAGES],
					&limit[VMBC_RES_PHYSPAGES], &guarantee, &vmm_limit, error))
		return FALSE;
	barrier[VMBC_RES_VMGUARPAGES] = MIN(guarantee, bc->max_pages);
	limit[VMBC_RES_VMGUARPAGES] = VMBC_UNLIMITED;
	barrier[VMBC_RES_VMMPAGES] = limit[VMBC_RES_VMMPAGES] = vmm_limit;
	return TRUE;
}

void
vmbc_limits_apply_vm(VmbcEngine *engine, const VmbcConfig *config, VmbcState *state,
		     VmbcBeancounter *bc, gboolean runtime_too, gint64 now)
{
	VmbcLimitSpec spec;
	g_autoptr(GError) error = NULL;
	gint64 barrier[VMBC_RES_COUNT], limit[VMBC_RES_COUNT];

	if (!resolve_configured(config, bc, &spec, barrier, limit, &error)) {
		g_warning("VM '%s': configured limits not applied: %s", bc->name, error->message);
		g_clear_error(&error);
	} else {
		for (guint r = 0; r < VMBC_RES_COUNT; r++) {
			gint64 sb, sl;
			/* a saved runtime value wins over the file; no guarantee is left as it is
			 */
			if (vmbc_state_get(state, bc->name, r, &sb, &sl) ||
			    (r == VMBC_RES_VMGUARPAGES && barrier[r] <= 0))
				continue;
			if (!vmbc_engine_set_limits(engine, bc, r, barrier[r], limit[r], now, NULL,
						    NULL, &error)) {
				g_warning("VM '%s': %s", bc->name, error->message);
				g_clear_error(&error);
			}
		}
		if (spec.shares > 0)
			bc->shares = (guint)spec.shares;
		/* the operator's choice alone: nothing saved at run time overrides it */
		bc->trust_guest = spec.trust_guest > 0;
	}
	if (!runtime_too)
		return;
	for (guint r = 0; r < VMBC_RES_COUNT; r++) {
		gint64 b, l;
		if (!vmbc_state_get(state, bc->name, r, &b, &l))
			continue;
		if (!vmbc_engine_set_limits(engine, bc, r, b, l, now, NULL, NULL, &error)) {
			g_warning("VM '%s': saved %s limits not applied: %s", bc->name,
				  vmbc_resource_name(r), error->message);
			g_clear_error(&error);
		}
	}
}

gboolean
vmbc_limits_configured_vm(const VmbcConfig *config, const VmbcBeancounter *bc, VmbcResourceId res,
			  gint64 *barrier, gint64 *limit, GError **error)
{
	VmbcLimitSpec spec;
	gint64 b[VMBC_RES_COUNT], l[VMBC_RES_COUNT];

	g_return_val_if_fail(res < VMBC_RES_COUNT, FALSE);
	if (!resolve_configured(config, bc, &spec, b, l, error)) {
		g_prefix_error(error, "the limits vmbc.conf gives '%s': ", bc->name);
		return FALSE;
	}
	*barrier = b[res];
	*limit = l[res];
	return TRUE;
}

gboolean
vmbc_limits_configured_host(const VmbcConfig *config, gint64 host_pages, gint64 *barrier,
			    gint64 *limit)
{
	g_autoptr(GError) error = NULL;
	gint64 b = VMBC_UNLIMITED, l = VMBC_UNLIMITED;

	if (config->host_limit != NULL &&
	    !vmbc_size_parse(config->host_limit, vmbc_page_size(), host_pages, &l, &error)) {
		g_warning("[host] limit not applied: %s", error->message);
		g_clear_error(&error);
	}
	if (config->host_barrier != NULL) {
		if (!vmbc_size_parse(config->host_barrier, vmbc_page_size(), host_pages, &b,
				     &error)) {
			g_warning("[host] barrier not applied: %s", error->message);
			g_clear_error(&error);
		}
	} else {
		b = l;
	}
	*barrier = MIN(b, l);
	*limit = l;
	return config->host_limit != NULL || config->host_barrier != NULL;
}
