/*
 * vmbc-engine.c: the engine proper — beancounters in and out, samples turned
 * into charges and uncharges, the tick that walks the resource table, and the
 * pending synchronous changes. The policies live in vmbc-physpages.c,
 * vmbc-vmguarpages.c, vmbc-vmmpages.c and vmbc-host.c.
 */
#include <stdarg.h>

#include "vmbc-balloon-claim.h"
#include "vmbc-engine-private.h"
#include "vmbc-schedule.h"

#define USEC_PER_SEC G_GINT64_CONSTANT(1000000)

static const VmbcResourceOps *const resource_ops[VMBC_RES_COUNT] = {
	[VMBC_RES_PHYSPAGES] = &vmbc_physpages_ops,
	[VMBC_RES_VMGUARPAGES] = &vmbc_vmguarpages_ops,
	[VMBC_RES_VMMPAGES] = &vmbc_vmmpages_ops,
};

static const VmbcHostOps *const host_ops = &vmbc_host_ops;

/* The guarantee is enforced first: later policies read the balloon it settled. */
static const VmbcResourceId tick_order[VMBC_RES_COUNT] = {
	VMBC_RES_VMGUARPAGES,
	VMBC_RES_PHYSPAGES,
	VMBC_RES_VMMPAGES,
};

void
vmbc_engine_config_init(VmbcEngineConfig *config)
{
	gint64 mib = (gint64)((1 << 20) / vmbc_page_size());

	config->tick_usec = USEC_PER_SEC;
	config->reclaim_timeout_usec = 10 * USEC_PER_SEC;
	config->margin_min_pages = 4 * mib;
	config->margin_fraction = 0.02;
	config->barrier_step_pages = 64 * mib;
	config->deflate_step_pages = 128 * mib;
	config->min_step_pages = 2 * mib;
	config->guest_reserve_pages = 32 * mib;
	config->pressure_available = 0.10;
	config->idle_tax = 0.75;
	config->growth_ceiling_pages = 1024 * mib;
	/*
	 * 1 MiB/s: a working balloon moves about a GiB a second (SPEC §6, 512 MiB
	 * in 0.4 s under TCG), so this is a thousandth of that, and catches a
	 * balloon that is stuck without judging a busy guest that is slow.
	 */
	config->balloon_stall_pages = mib;
	config->escalation = VMBC_ESCALATE_AUTO;
	host_ops->config_init(config);
}

const gchar *
vmbc_escalation_to_string(VmbcEscalation esc)
{
	switch (esc) {
	case VMBC_ESCALATE_PAUSE:
		return "pause";
	case VMBC_ESCALATE_MEMORY_HIGH:
		return "memory-high";
	case VMBC_ESCALATE_MEMORY_HIGH_RAISE:
		return "memory-high raise";
	case VMBC_ESCALATE_AUTO:
		return "auto";
	case VMBC_ESCALATE_NONE:
	default:
		return "none";
	}
}

gboolean
vmbc_escalation_from_string(const gchar *text, VmbcEscalation *out, GError **error)
{
	if (g_strcmp0(text, "none") == 0) {
		*out = VMBC_ESCALATE_NONE;
	} else if (g_strcmp0(text, "pause") == 0) {
		*out = VMBC_ESCALATE_PAUSE;
	} else if (g_strcmp0(text, "auto") == 0) {
		*out = VMBC_ESCALATE_AUTO;
	} else if (g_strcmp0(text, "memory-high") == 0 || g_strcmp0(text, "memory.high") == 0) {
		*out = VMBC_ESCALATE_MEMORY_HIGH;
	} else {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "invalid escalation '%s' (expected auto, none, pause or memory-high)",
			    text != NULL ? text : "");
		return FALSE;
	}
	return TRUE;
}

const gchar *
vmbc_event_type_to_string(VmbcEventType type)
{
	switch (type) {
	case VMBC_EVENT_LIMIT_HIT:
		return "VMBC_LIMIT_HIT";
	case VMBC_EVENT_BARRIER_HIT:
		return "VMBC_BARRIER_HIT";
	case VMBC_EVENT_RECLAIM_DONE:
		return "VMBC_RECLAIM_DONE";
	case VMBC_EVENT_RECLAIM_FAILED:
		return "VMBC_RECLAIM_FAILED";
	case VMBC_EVENT_GUARANTEE_REFUSED:
		return "VMBC_GUARANTEE_REFUSED";
	case VMBC_EVENT_DEFLATE:
		return "VMBC_DEFLATE";
	case VMBC_EVENT_ESCALATED:
		return "VMBC_ESCALATED";
	case VMBC_EVENT_HOST_RECLAIM:
		return "VMBC_HOST_RECLAIM";
	case VMBC_EVENT_HOST_GIVEBACK:
		return "VMBC_HOST_GIVEBACK";
	case VMBC_EVENT_DOMAIN_ADDED:
		return "VMBC_DOMAIN_ADDED";
	case VMBC_EVENT_DOMAIN_REMOVED:
		return "VMBC_DOMAIN_REMOVED";
	default:
		return "VMBC_UNKNOWN";
	}
}

/* Lets each resource set up its own state in a new beancounter. */
static void
init_resources(VmbcBeancounter *bc)
{
	for (guint i = 0; i < VMBC_RES_COUNT; i++) {
		if (resource_ops[i]->init != NULL)
			resource_ops[i]->init(bc);
	}
}

VmbcEngine *
vmbc_engine_new(const VmbcEngineConfig *config)
{
	VmbcEngine *engine = g_new0(VmbcEngine, 1);

	if (config != NULL)
		engine->config = *config;
	else
		vmbc_engine_config_init(&engine->config);
	engine->host = vmbc_beancounter_new("host", 0);
	engine->vms = g_ptr_array_new_with_free_func((GDestroyNotify)vmbc_beancounter_unref);
	engine->by_name = g_hash_table_new(g_str_hash, g_str_equal);
	engine->followed = g_hash_table_new(g_direct_hash, g_direct_equal);
	engine->claims_changed = g_hash_table_new(g_direct_hash, g_direct_equal);
	engine->next_id = 1;
	engine->emit_sampled_at = -1;
	engine->acting_for = -1;
	init_resources(engine->host);
	/* the host has no balloon and no VMM of its own */
	engine->host->balloon = VMBC_BALLOON_NO_DEVICE;
	return engine;
}

void
vmbc_engine_free(VmbcEngine *engine)
{
	g_autoptr(GError) error = NULL;

	if (engine == NULL)
		return;
	g_set_error_literal(&error, VMBC_ERROR, VMBC_ERROR_VANISHED, "vmbcd is shutting down");
	for (guint i = 0; i < engine->vms->len; i++)
		vmbc_engine_complete_pending(engine, g_ptr_array_index(engine->vms, i), error);
	vmbc_engine_complete_pending(engine, engine->host, error);
	g_hash_table_unref(engine->by_name);
	g_hash_table_unref(engine->followed);
	g_hash_table_unref(engine->claims_changed);
	g_ptr_array_unref(engine->vms);
	vmbc_beancounter_unref(engine->host);
	g_free(engine);
}

void
vmbc_engine_set_config(VmbcEngine *engine, const VmbcEngineConfig *config)
{
	engine->config = *config;
	vmbc_engine_wake_all(engine);
}

const VmbcEngineConfig *
vmbc_engine_get_config(VmbcEngine *engine)
{
	return &engine->config;
}

void
vmbc_engine_set_actuator(VmbcEngine *engine, const VmbcActuator *actuator, gpointer user_data)
{
	if (actuator != NULL)
		engine->actuator = *actuator;
	else
		memset(&engine->actuator, 0, sizeof(engine->actuator));
	engine->actuator_data = user_data;
}

void
vmbc_engine_set_event_func(VmbcEngine *engine, VmbcEventFunc func, gpointer user_data)
{
	engine->event_func = func;
	engine->event_data = user_data;
}

VmbcBeancounter *
vmbc_engine_get_host(VmbcEngine *engine)
{
	return engine->host;
}

/* Where a VM of @id goes in engine->vms (kept in id order); *taken if one has it. */
static guint
id_position(VmbcEngine *engine, guint id, gboolean *taken)
{
	guint lo = 0, hi = engine->vms->len;

	*taken = FALSE;
	while (lo < hi) {
		guint mid = lo + (hi - lo) / 2;
		guint mid_id = ((VmbcBeancounter *)g_ptr_array_index(engine->vms, mid))->id;
		if (mid_id == id) {
			*taken = TRUE;
			return mid;
		}
		if (mid_id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

VmbcBeancounter *
vmbc_engine_add_with_id(VmbcEngine *engine, const gchar *name, gint64 max_pages, guint id,
			GError **error)
{
	VmbcBeancounter *bc;
	gboolean taken = FALSE;
	guint pos = engine->vms->len;

	if (name == NULL || *name == '\0' || !g_utf8_validate(name, -1, NULL)) {
		g_set_error_literal(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "a VM name must be a non-empty UTF-8 string");
		return NULL;
	}
	if (g_strcmp0(name, "host") == 0 || g_hash_table_contains(engine->by_name, name)) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "a beancounter named '%s' already exists", name);
		return NULL;
	}
	if (max_pages < 0) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "VM '%s': invalid maximum memory %" G_GINT64_FORMAT " pages", name,
			    max_pages);
		return NULL;
	}
	if (id != 0)
		pos = id_position(engine, id, &taken);
	if (id == 0 || taken || id == G_MAXUINT) {
		if (id != 0)
			g_info("VM '%s': its beancounter id %u is taken, it gets a new one", name,
			       id);
		id = engine->next_id++;
		pos = engine->vms->len;
	} else {
		engine->next_id = MAX(engine->next_id, id + 1);
	}
	bc = vmbc_beancounter_new(name, id);
	init_resources(bc);
	bc->parent = engine->host;
	bc->max_pages = max_pages;
	/* the guarantee's own "limit" is the VM's size: nothing can be more visible */
	g_ptr_array_insert(engine->vms, (gint)pos, bc);
	g_hash_table_insert(engine->by_name, bc->name, bc);
	g_info("VM '%s' added as beancounter %u (%" G_GINT64_FORMAT " pages)", name, bc->id,
	       max_pages);
	return bc;
}

VmbcBeancounter *
vmbc_engine_add(VmbcEngine *engine, const gchar *name, gint64 max_pages, GError **error)
{
	return vmbc_engine_add_with_id(engine, name, max_pages, 0, error);
}

void
vmbc_engine_reserve_ids(VmbcEngine *engine, guint id)
{
	if (id < G_MAXUINT)
		engine->next_id = MAX(engine->next_id, id + 1);
}

VmbcBeancounter *
vmbc_engine_lookup(VmbcEngine *engine, const gchar *name)
{
	if (g_strcmp0(name, "host") == 0)
		return engine->host;
	if (name == NULL)
		return NULL;
	return g_hash_table_lookup(engine->by_name, name);
}

GPtrArray *
vmbc_engine_get_vms(VmbcEngine *engine)
{
	return engine->vms;
}

void
vmbc_engine_remove(VmbcEngine *engine, VmbcBeancounter *bc)
{
	g_autoptr(GError) error = NULL;

	g_return_if_fail(bc != engine->host);

	g_set_error(&error, VMBC_ERROR, VMBC_ERROR_VANISHED, "VM '%s' went away", bc->name);
	vmbc_engine_complete_pending(engine, bc, error);
	vmbc_parm_uncharge(&engine->host->parm[VMBC_RES_PHYSPAGES],
			   MIN(bc->parm[VMBC_RES_PHYSPAGES].held,
			       engine->host->parm[VMBC_RES_PHYSPAGES].held));
	g_hash_table_remove(engine->by_name, bc->name);
	g_hash_table_remove(engine->followed, bc);
	g_hash_table_remove(engine->claims_changed, bc);
	g_info("VM '%s' (beancounter %u) removed", bc->name, bc->id);
	g_ptr_array_remove(engine->vms, bc);
}

void
vmbc_engine_set_wall_clock(VmbcEngine *engine, gint64 epoch_usec)
{
	engine->wall_usec = epoch_usec;
}

void
vmbc_engine_sample(VmbcEngine *engine, VmbcBeancounter *bc, const VmbcSample *sample, gint64 now)
{
	VmbcParm *host = &engine->host->parm[VMBC_RES_PHYSPAGES];

	if (sample->physpages >= 0) {
		gint64 before = bc->sampled ? bc->parm[VMBC_RES_PHYSPAGES].held : 0;
		gint64 after = vmbc_engine_charge_for(engine, sample);
		if (!bc->sampled) {
			/* adopting a running VM: what it holds is its starting point */
			vmbc_parm_adopt(&bc->parm[VMBC_RES_PHYSPAGES], after);
		} else {
			vmbc_parm_set_held(&bc->parm[VMBC_RES_PHYSPAGES], after);
		}
		/* the host holds what its children hold: same diff, one level up */
		if (after > before)
			vmbc_parm_charge(host, after - before);
		else
			vmbc_parm_uncharge(host, MIN(before - after, host->held));
		bc->sampled = TRUE;
	}
	if (sample->physpages >= 0) {
		bc->sampled_at = now;
		vmbc_engine_note_ram(bc, sample);
		vmbc_engine_record_held(engine, bc);
		vmbc_engine_schedule_sampled(engine, bc, now);
	}
	if (sample->vmmpages >= 0)
		vmbc_parm_set_held(&bc->parm[VMBC_RES_VMMPAGES], sample->vmmpages);
	if (sample->balloon_actual >= 0)
		vmbc_engine_balloon_actual(engine, bc, sample->balloon_actual, now);
}

void
vmbc_engine_set_guest_stats(VmbcEngine *engine, VmbcBeancounter *bc, const VmbcGuestStats *stats)
{
	if (stats->last_update != 0 && stats->last_update <= bc->stats.last_update)
		return;
	bc->stats = *stats;
	bc->stats_seen_at = MAX(bc->sampled_at, 1);
	bc->schedule.touched = TRUE;
	/* what the host saw when the guest measured: growth since then ate into its MemAvailable */
	if (stats->last_update > 0) {
		vmbc_held_at(bc, stats->last_update, &bc->stats_held, &bc->stats_actual);
	} else {
		bc->stats_held = bc->parm[VMBC_RES_PHYSPAGES].held;
		bc->stats_actual = bc->balloon_actual;
	}
	/* a reclaim waiting on the guest's word goes on as soon as it comes */
	for (guint i = 0; i < VMBC_RES_COUNT; i++) {
		if (resource_ops[i]->stats_arrived != NULL)
			resource_ops[i]->stats_arrived(engine, bc);
	}
	/* stats only come from a guest whose balloon driver is alive */
	if (stats->last_update != 0 && bc->balloon == VMBC_BALLOON_UNKNOWN)
		bc->balloon = VMBC_BALLOON_OK;
}

/* How far from the target vmbcd set a balloon may be found and still be vmbcd's. */
static gint64
claim_slack(VmbcEngine *engine)
{
	gint64 mib = (gint64)((1 << 20) / vmbc_page_size());

	return MAX(2 * engine->config.min_step_pages, mib);
}

/* After a claim of @bc changed (@changed TRUE) or not: counted, and @bc kept for the taker. */
static void
claim_changed(VmbcEngine *engine, VmbcBeancounter *bc, gboolean changed)
{
	if (!changed)
		return;
	engine->balloon_changes++;
	g_hash_table_add(engine->claims_changed, bc);
}

void
vmbc_engine_restore_balloon(VmbcEngine *engine, VmbcBeancounter *bc, VmbcBalloonState state,
			    const VmbcBalloonClaim *claim)
{
	g_return_if_fail(bc != engine->host);

	if ((state == VMBC_BALLOON_NO_DRIVER || state == VMBC_BALLOON_OK) &&
	    bc->balloon == VMBC_BALLOON_UNKNOWN)
		bc->balloon = state;
	if (claim == NULL || claim->target < 0 || bc->balloon_claim.target >= 0)
		return;
	bc->balloon_claim = *claim;
	bc->balloon_claim_unconfirmed = TRUE;
	if (bc->balloon == VMBC_BALLOON_NO_DEVICE)
		claim_changed(engine, bc, vmbc_balloon_claim_drop(bc));
	else if (bc->balloon_actual >= 0)
		claim_changed(engine, bc, vmbc_balloon_claim_confirm(bc, claim_slack(engine)));
}

guint64
vmbc_engine_get_balloon_changes(VmbcEngine *engine)
{
	return engine->balloon_changes;
}

GPtrArray *
vmbc_engine_take_balloon_changed(VmbcEngine *engine)
{
	GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)vmbc_beancounter_unref);
	GHashTableIter iter;
	gpointer key;

	g_return_val_if_fail(engine != NULL, out);

	g_hash_table_iter_init(&iter, engine->claims_changed);
	while (g_hash_table_iter_next(&iter, &key, NULL))
		g_ptr_array_add(out, vmbc_beancounter_ref(key));
	g_hash_table_remove_all(engine->claims_changed);
	return out;
}

/* What made vmbcd set @target now: asked of the resources' tables, the physpages reclaim. */
static VmbcBalloonReason
claim_reason(VmbcEngine *engine, VmbcBeancounter *bc, gint64 target)
{
	gint reason = -1;

	if (engine->acting_for >= 0)
		return (VmbcBalloonReason)engine->acting_for;
	if (resource_ops[VMBC_RES_PHYSPAGES]->balloon_reason != NULL)
		reason = resource_ops[VMBC_RES_PHYSPAGES]->balloon_reason(bc);
	if (reason >= 0)
		return (VmbcBalloonReason)reason;
	return bc->balloon_actual >= 0 && target >= bc->balloon_actual ? VMBC_BALLOON_FOR_DEFLATE
								       : VMBC_BALLOON_FOR_LIMIT;
}

void
vmbc_engine_balloon_actual(VmbcEngine *engine, VmbcBeancounter *bc, gint64 actual_pages, gint64 now)
{
	VmbcParm *guar = &bc->parm[VMBC_RES_VMGUARPAGES];

	if (actual_pages < 0)
		return;
	if (bc->balloon_actual >= 0 && actual_pages != bc->balloon_actual &&
	    (bc->balloon == VMBC_BALLOON_UNKNOWN || bc->balloon == VMBC_BALLOON_NO_DRIVER))
		bc->balloon = VMBC_BALLOON_OK; /* it moved: a driver is there */
	if (bc->balloon_actual < 0)
		vmbc_parm_adopt(guar, actual_pages);
	else
		vmbc_parm_set_held(guar, actual_pages);
	if (bc->balloon_actual >= 0 && actual_pages < bc->balloon_actual && engine->wall_usec > 0)
		bc->inflated_wall_sec = engine->wall_usec / G_USEC_PER_SEC;
	bc->balloon_actual = actual_pages;
	bc->schedule.touched = TRUE;
	if (bc->balloon_claim_unconfirmed)
		claim_changed(engine, bc, vmbc_balloon_claim_confirm(bc, claim_slack(engine)));
	for (guint i = 0; i < VMBC_RES_COUNT; i++) {
		if (resource_ops[i]->balloon_moved != NULL)
			resource_ops[i]->balloon_moved(engine, bc, now);
	}
}

void
vmbc_engine_balloon_failed(VmbcEngine *engine, VmbcBeancounter *bc, VmbcBalloonState state,
			   const GError *error, gint64 now)
{
	VmbcBalloonState old = bc->balloon;

	bc->balloon = state;
	bc->schedule.touched = TRUE;
	/* a claim from before a restart cannot be confirmed on a balloon that is not there */
	if (bc->balloon_claim_unconfirmed && state == VMBC_BALLOON_NO_DEVICE)
		claim_changed(engine, bc, vmbc_balloon_claim_drop(bc));
	if (old != state)
		g_warning("VM '%s': balloon unusable (%s): %s", bc->name,
			  vmbc_balloon_state_to_string(state),
			  error != NULL ? error->message : "no reason given");
	for (guint i = 0; i < VMBC_RES_COUNT; i++) {
		if (resource_ops[i]->balloon_failed != NULL)
			resource_ops[i]->balloon_failed(engine, bc, now);
	}
}

gboolean
vmbc_engine_wants_stats(VmbcEngine *engine, VmbcBeancounter *bc)
{
	const VmbcParm *p = &bc->parm[VMBC_RES_PHYSPAGES];
	gint64 near;
	gboolean watch;

	for (guint i = 0; i < VMBC_RES_COUNT; i++) {
		if (resource_ops[i]->busy != NULL && resource_ops[i]->busy(bc))
			return TRUE;
	}
	if (vmbc_parm_over_barrier(&engine->host->parm[VMBC_RES_PHYSPAGES]))
		return TRUE;
	/* the host sees the guest's memory move since it last spoke: its word is stale */
	if (bc->stats.last_update != 0 &&
	    ABS(p->held - bc->stats_held) > MAX(engine->config.min_step_pages, p->held / 16))
		return TRUE;
	/*
	 * Near its barrier or limit (where a VM held to its limit stays), or with
	 * an inflated balloon that a pressured guest may need back: watched, not
	 * urgent while nothing moves. Growth is caught above within a step.
	 */
	near = vmbc_parm_first_bound(p);
	watch = (near != VMBC_UNLIMITED && p->held + vmbc_engine_margin(engine, near) >= near) ||
		(bc->balloon_actual >= 0 && bc->max_pages > 0 &&
		 bc->balloon_actual + engine->config.min_step_pages < bc->max_pages);
	if (!watch)
		return FALSE;
	return bc->stats_seen_at == 0 || bc->stats.last_update == 0 ||
	       bc->sampled_at - bc->stats_seen_at >= VMBC_ENGINE_WATCH_STATS_USEC;
}

static void
tick_one(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now)
{
	for (guint i = 0; i < VMBC_RES_COUNT; i++) {
		VmbcResourceId id = tick_order[i];
		const VmbcResourceOps *ops = resource_ops[id];
		VmbcParm *parm = &bc->parm[id];

		/* the guarantee only ever grows a balloon */
		engine->acting_for = id == VMBC_RES_VMGUARPAGES ? VMBC_BALLOON_FOR_DEFLATE : -1;
		if (vmbc_parm_over_limit(parm)) {
			if (ops->limit_hit != NULL)
				ops->limit_hit(engine, bc, now);
		} else if (vmbc_parm_over_barrier(parm)) {
			if (ops->barrier_hit != NULL)
				ops->barrier_hit(engine, bc, now);
		} else {
			if (ops->under_barrier != NULL)
				ops->under_barrier(engine, bc, now);
		}
	}
	engine->acting_for = -1;
	vmbc_engine_expire_pending(engine, bc, now);
}

void
vmbc_engine_tick(VmbcEngine *engine, gint64 now)
{
	for (guint i = 0; i < engine->vms->len; i++) {
		VmbcBeancounter *bc = g_ptr_array_index(engine->vms, i);
		if (!bc->sampled || vmbc_engine_tick_quiet(engine, bc))
			continue;
		tick_one(engine, bc, now);
		bc->schedule.touched = FALSE;
		vmbc_engine_note_following(engine, bc);
	}
	engine->acting_for = VMBC_BALLOON_FOR_HOST;
	host_ops->tick(engine, now);
	engine->acting_for = -1;
}

void
vmbc_engine_follow(VmbcEngine *engine, gint64 now)
{
	g_autoptr(GPtrArray) follow = vmbc_engine_get_following(engine);

	for (guint i = 0; i < follow->len; i++) {
		VmbcBeancounter *bc = g_ptr_array_index(follow, i);

		if (bc->sampled && vmbc_engine_is_following(engine, bc)) {
			tick_one(engine, bc, now);
			bc->schedule.touched = FALSE;
			vmbc_engine_note_following(engine, bc);
		}
	}
}

gboolean
vmbc_engine_set_limits(VmbcEngine *engine, VmbcBeancounter *bc, VmbcResourceId res, gint64 barrier,
		       gint64 limit, gint64 now, VmbcChangeFunc done, gpointer user_data,
		       GError **error)
{
	g_return_val_if_fail(res < VMBC_RES_COUNT, FALSE);

	if (barrier < 0 || limit < 0) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "%s of '%s': barrier and limit must not be negative",
			    vmbc_resource_name(res), bc->name);
		return FALSE;
	}
	if (barrier > limit) {
		g_autofree gchar *b = vmbc_engine_fmt(barrier);
		g_autofree gchar *l = vmbc_engine_fmt(limit);
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "%s of '%s': barrier %s is above limit %s", vmbc_resource_name(res),
			    bc->name, b, l);
		return FALSE;
	}
	/* a new bound: the next tick reads held against it */
	if (bc == engine->host)
		vmbc_engine_wake_all(engine);
	vmbc_schedule_wake(bc);
	if (bc == engine->host || resource_ops[res]->change == NULL) {
		bc->parm[res].barrier = barrier;
		bc->parm[res].limit = limit;
		if (done != NULL)
			done(bc, NULL, user_data);
		return TRUE;
	}
	if (!resource_ops[res]->change(engine, bc, barrier, limit, now, done, user_data, error))
		return FALSE;
	vmbc_engine_note_following(engine, bc);
	return TRUE;
}

gboolean
vmbc_engine_set_guarantee(VmbcEngine *engine, VmbcBeancounter *bc, gint64 pages, gint64 now,
			  GError **error)
{
	if (bc == engine->host) {
		g_set_error_literal(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "the host beancounter has no guarantee");
		return FALSE;
	}
	return vmbc_engine_set_limits(engine, bc, VMBC_RES_VMGUARPAGES, pages, VMBC_UNLIMITED, now,
				      NULL, NULL, error);
}

gboolean
vmbc_engine_reclaim(VmbcEngine *engine, VmbcBeancounter *bc, gint64 pages, gint64 now,
		    VmbcChangeFunc done, gpointer user_data, GError **error)
{
	gboolean ok;

	if (bc == engine->host) {
		g_set_error_literal(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "reclaim works on a VM, not on the host");
		return FALSE;
	}
	/* the balloon gives back guest RAM: the operator's reclaim is physpages' to follow */
	engine->acting_for = VMBC_BALLOON_FOR_RECLAIM;
	ok = resource_ops[VMBC_RES_PHYSPAGES]->reclaim(engine, bc, pages, now, done, user_data,
						       error);
	engine->acting_for = -1;
	vmbc_engine_note_following(engine, bc);
	return ok;
}

void
vmbc_engine_emit(VmbcEngine *engine, VmbcEventType type, VmbcBeancounter *bc, VmbcResourceId res,
		 gint64 target, VmbcError reason, const gchar *fmt, ...)
{
	g_autofree gchar *message = NULL;
	VmbcEvent ev = {0};
	va_list args;

	va_start(args, fmt);
	message = g_strdup_vprintf(fmt, args);
	va_end(args);

	ev.type = type;
	ev.bc = bc;
	ev.resource = res;
	ev.held = bc->parm[res].held;
	ev.barrier = bc->parm[res].barrier;
	ev.limit = bc->parm[res].limit;
	ev.target = target;
	ev.reason = reason;
	ev.message = message;
	ev.sampled_at = engine->emit_sampled_at;
	ev.sample_age_usec = -1;
	engine->emit_sampled_at = -1;

	/* structured: journald can filter one VM's story with VMBC_DOMAIN=name */
	g_log_structured(G_LOG_DOMAIN,
			 type == VMBC_EVENT_RECLAIM_FAILED ? G_LOG_LEVEL_WARNING : G_LOG_LEVEL_INFO,
			 "VMBC_DOMAIN", bc->name, "VMBC_EVENT", vmbc_event_type_to_string(type),
			 "VMBC_RESOURCE", vmbc_resource_name(res), "MESSAGE", "%s", message);
	if (engine->event_func != NULL)
		engine->event_func(engine, &ev, engine->event_data);
}

gboolean
vmbc_engine_set_balloon(VmbcEngine *engine, VmbcBeancounter *bc, gint64 target, GError **error)
{
	gint64 guarantee = vmbc_beancounter_guarantee(bc);

	if (target < guarantee)
		target = guarantee;
	if (bc->max_pages > 0 && target > bc->max_pages)
		target = bc->max_pages;
	if (engine->actuator.set_balloon == NULL) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_NO_BALLOON,
			    "no backend can set the balloon of '%s'", bc->name);
		return FALSE;
	}
	if (!engine->actuator.set_balloon(engine, bc, target, engine->actuator_data, error)) {
		g_prefix_error(error, "cannot set the balloon of '%s': ", bc->name);
		return FALSE;
	}
	g_debug("VM '%s': balloon target %" G_GINT64_FORMAT " pages", bc->name, target);
	if (bc->balloon_actual >= 0 && target < bc->balloon_actual && engine->wall_usec > 0)
		bc->inflated_wall_sec = engine->wall_usec / G_USEC_PER_SEC;
	bc->balloon_target = target;
	claim_changed(engine, bc,
		      vmbc_balloon_claim_record(bc, target, claim_reason(engine, bc, target)));
	return TRUE;
}

gboolean
vmbc_engine_escalate(VmbcEngine *engine, VmbcBeancounter *bc, GError **error)
{
	g_autoptr(GError) error_local = NULL;
	VmbcEscalation how = engine->config.escalation;

	if (how == VMBC_ESCALATE_NONE || engine->actuator.escalate == NULL)
		return FALSE;
	if (!engine->actuator.escalate(engine, bc, how, engine->actuator_data, &error_local)) {
		/* loud once: a retry every reclaim-timeout would say the same again */
		if (g_strcmp0(bc->escalation_failure, error_local->message) != 0) {
			g_warning("VM '%s': escalation '%s' failed: %s", bc->name,
				  vmbc_escalation_to_string(how), error_local->message);
			g_free(bc->escalation_failure);
			bc->escalation_failure = g_strdup(error_local->message);
		} else {
			g_debug("VM '%s': escalation '%s' failed again: %s", bc->name,
				vmbc_escalation_to_string(how), error_local->message);
		}
		g_propagate_error(error, g_steal_pointer(&error_local));
		return FALSE;
	}
	g_clear_pointer(&bc->escalation_failure, g_free);
	/* auto is memory-high where it ran: the backstop follows the limit up too */
	if (how == VMBC_ESCALATE_MEMORY_HIGH || how == VMBC_ESCALATE_AUTO)
		vmbc_engine_mark_memory_high(engine, bc, TRUE);
	return TRUE;
}

void
vmbc_engine_escalated(VmbcEngine *engine, VmbcBeancounter *bc, VmbcError reason)
{
	vmbc_engine_emit(engine, VMBC_EVENT_ESCALATED, bc, VMBC_RES_PHYSPAGES, -1, reason,
			 "VM '%s': escalated with '%s'", bc->name,
			 vmbc_escalation_to_string(engine->config.escalation));
}

void
vmbc_engine_mark_memory_high(VmbcEngine *engine, VmbcBeancounter *bc, gboolean set)
{
	g_return_if_fail(bc != NULL);
	bc->memory_high_set = set;
}

void
vmbc_engine_follow_memory_high(VmbcEngine *engine, VmbcBeancounter *bc)
{
	g_autoptr(GError) error = NULL;
	gboolean lifted = bc->parm[VMBC_RES_PHYSPAGES].limit == VMBC_UNLIMITED;

	if (!bc->memory_high_set || engine->actuator.escalate == NULL)
		return;
	/* the backend writes the limit as it is now (plus what the VMM holds), or max */
	if (!engine->actuator.escalate(engine, bc, VMBC_ESCALATE_MEMORY_HIGH_RAISE,
				       engine->actuator_data, &error)) {
		if (g_error_matches(error, VMBC_ERROR, VMBC_ERROR_NOT_FOUND)) {
			/* lifted by hand: the operator's value stays, and is not followed */
			g_info("%s", error->message);
			vmbc_engine_mark_memory_high(engine, bc, FALSE);
			return;
		}
		g_warning("VM '%s': the limit was raised but memory.high, which vmbcd set, was "
			  "not: %s",
			  bc->name, error->message);
		return;
	}
	if (lifted)
		vmbc_engine_mark_memory_high(engine, bc, FALSE);
}

void
vmbc_engine_add_pending(VmbcEngine *engine, VmbcBeancounter *bc, VmbcResourceId res, gint64 now,
			VmbcChangeFunc done, gpointer user_data)
{
	VmbcPendingChange *p = g_new0(VmbcPendingChange, 1);

	p->bc = vmbc_beancounter_ref(bc);
	p->res = res;
	p->done = done;
	p->user_data = user_data;
	/* a reclaim that keeps progressing slowly still answers eventually */
	p->deadline = now + 3 * engine->config.reclaim_timeout_usec;
	bc->pending = g_list_append(bc->pending, p);
	if (bc != engine->host)
		g_hash_table_add(engine->followed, bc);
}

static void
pending_finish(VmbcPendingChange *p, const GError *error)
{
	if (p->done != NULL)
		p->done(p->bc, error, p->user_data);
	vmbc_beancounter_unref(p->bc);
	g_free(p);
}

void
vmbc_engine_complete_pending(VmbcEngine *engine, VmbcBeancounter *bc, const GError *error)
{
	GList *list = g_steal_pointer(&bc->pending);

	for (GList *l = list; l != NULL; l = l->next)
		pending_finish(l->data, error);
	g_list_free(list);
}

void
vmbc_engine_expire_pending(VmbcEngine *engine, VmbcBeancounter *bc, gint64 now)
{
	GList *l = bc->pending;

	while (l != NULL) {
		GList *next = l->next;
		VmbcPendingChange *p = l->data;
		if (now >= p->deadline) {
			g_autoptr(GError) error = NULL;
			g_autofree gchar *held = vmbc_engine_fmt(bc->parm[p->res].held);
			g_autofree gchar *limit = vmbc_engine_fmt(bc->parm[p->res].limit);
			g_set_error(&error, VMBC_ERROR, VMBC_ERROR_NO_PROGRESS,
				    "'%s' %s: reclaim still running after %" G_GINT64_FORMAT
				    " s: held %s, limit %s",
				    bc->name, vmbc_resource_name(p->res),
				    3 * engine->config.reclaim_timeout_usec / USEC_PER_SEC, held,
				    limit);
			bc->pending = g_list_delete_link(bc->pending, l);
			pending_finish(p, error);
		}
		l = next;
	}
}

gint64
vmbc_engine_margin(VmbcEngine *engine, gint64 limit)
{
	gint64 frac = (gint64)((gdouble)limit * engine->config.margin_fraction);
	return MAX(frac, engine->config.margin_min_pages);
}

gchar *
vmbc_engine_fmt(gint64 pages)
{
	return vmbc_size_format_human(pages, vmbc_page_size());
}
