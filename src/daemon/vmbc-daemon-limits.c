/*
 * vmbc-daemon-limits.c: configured and saved limits (see vmbc-daemon-limits.h).
 */
#include "vmbc-daemon-limits.h"

void
vmbc_limits_apply_vm(VmbcEngine *engine, const VmbcConfig *config, VmbcState *state,
		     VmbcBeancounter *bc, gboolean runtime_too, gint64 now)
{
	VmbcLimitSpec spec;
	g_autoptr(GError) error = NULL;
	gint64 barrier, limit, guarantee, vmm_limit;

	vmbc_config_get_spec(config, bc->name, &spec);
	if (!vmbc_config_resolve_limits(&spec, bc->max_pages, &barrier, &limit, &guarantee,
					&vmm_limit, &error)) {
		g_warning("VM '%s': configured limits not applied: %s", bc->name, error->message);
		g_clear_error(&error);
	} else {
		gint64 sb, sl;
		/* a saved runtime value wins over the file */
		if (!vmbc_state_get(state, bc->name, VMBC_RES_PHYSPAGES, &sb, &sl) &&
		    !vmbc_engine_set_limits(engine, bc, VMBC_RES_PHYSPAGES, barrier, limit, now,
					    NULL, NULL, &error)) {
			g_warning("VM '%s': %s", bc->name, error->message);
			g_clear_error(&error);
		}
		if (!vmbc_state_get(state, bc->name, VMBC_RES_VMGUARPAGES, &sb, &sl) &&
		    guarantee > 0 &&
		    !vmbc_engine_set_guarantee(engine, bc, MIN(guarantee, bc->max_pages), now,
					       &error)) {
			g_warning("VM '%s': %s", bc->name, error->message);
			g_clear_error(&error);
		}
		if (!vmbc_state_get(state, bc->name, VMBC_RES_VMMPAGES, &sb, &sl) &&
		    !vmbc_engine_set_limits(engine, bc, VMBC_RES_VMMPAGES, vmm_limit, vmm_limit,
					    now, NULL, NULL, &error)) {
			g_warning("VM '%s': %s", bc->name, error->message);
			g_clear_error(&error);
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
	gint64 b, l, guarantee, vmm_limit;

	vmbc_config_get_spec(config, bc->name, &spec);
	if (!vmbc_config_resolve_limits(&spec, bc->max_pages, &b, &l, &guarantee, &vmm_limit,
					error)) {
		g_prefix_error(error, "the limits vmbc.conf gives '%s': ", bc->name);
		return FALSE;
	}
	switch (res) {
	case VMBC_RES_PHYSPAGES:
		*barrier = b;
		*limit = l;
		break;
	case VMBC_RES_VMGUARPAGES:
		*barrier = MIN(guarantee, bc->max_pages);
		*limit = VMBC_UNLIMITED;
		break;
	default:
		*barrier = *limit = vmm_limit;
		break;
	}
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
