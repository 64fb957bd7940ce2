/*
 * test-engine.c: every rule of SPEC §3, against a scripted actuator and a fake
 * clock. The actuator records the balloon targets it was asked for and can
 * refuse; the test plays the guest by feeding samples.
 */
#include "vmbc-engine.h"

#define MIB ((gint64)((1 << 20) / vmbc_page_size()))
#define SEC G_GINT64_CONSTANT(1000000)

typedef struct {
	VmbcEngine *engine;
	VmbcBeancounter *vm;
	gint64 now;
	GArray *targets;     /* gint64 balloon targets asked for */
	GPtrArray *events;   /* gchar* "TYPE message" */
	GArray *event_types; /* VmbcEventType */
	gboolean refuse;     /* set_balloon fails as with no balloon device */
	guint escalations;
	VmbcEscalation escalated_how; /* of the last escalation */
	gint64 escalated_limit;	      /* the physpages limit the backend saw then */
	gboolean lifted_by_hand;      /* a memory.high raise finds it max */
	/* change results */
	guint done_calls;
	GError *done_error;
} Fixture;

static gboolean
fake_set_balloon(VmbcEngine *engine, VmbcBeancounter *bc, gint64 target, gpointer user_data,
		 GError **error)
{
	Fixture *f = user_data;
	if (f->refuse) {
		g_set_error_literal(error, VMBC_ERROR, VMBC_ERROR_NO_BALLOON,
				    "No balloon device has been activated");
		return FALSE;
	}
	g_array_append_val(f->targets, target);
	return TRUE;
}

static gboolean
fake_escalate(VmbcEngine *engine, VmbcBeancounter *bc, VmbcEscalation how, gpointer user_data,
	      GError **error)
{
	Fixture *f = user_data;
	if (how == VMBC_ESCALATE_MEMORY_HIGH_RAISE && f->lifted_by_hand) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_NOT_FOUND,
			    "VM '%s': memory.high is max: it was lifted by hand", bc->name);
		return FALSE;
	}
	f->escalations++;
	f->escalated_how = how;
	f->escalated_limit = bc->parm[VMBC_RES_PHYSPAGES].limit;
	return TRUE;
}

static void
on_event(VmbcEngine *engine, const VmbcEvent *ev, gpointer user_data)
{
	Fixture *f = user_data;
	g_ptr_array_add(f->events,
			g_strdup_printf("%s %s", vmbc_event_type_to_string(ev->type), ev->message));
	g_array_append_val(f->event_types, ev->type);
}

static guint
count_events(Fixture *f, VmbcEventType type)
{
	guint n = 0;
	for (guint i = 0; i < f->event_types->len; i++)
		n += g_array_index(f->event_types, VmbcEventType, i) == type;
	return n;
}

static gint64
last_target(Fixture *f)
{
	g_assert_cmpuint(f->targets->len, >, 0);
	return g_array_index(f->targets, gint64, f->targets->len - 1);
}

static void
on_done(VmbcBeancounter *bc, const GError *error, gpointer user_data)
{
	Fixture *f = user_data;
	f->done_calls++;
	g_clear_error(&f->done_error);
	if (error != NULL)
		f->done_error = g_error_copy(error);
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	VmbcEngineConfig config;
	VmbcActuator act = {fake_set_balloon, fake_escalate};
	g_autoptr(GError) error = NULL;

	vmbc_engine_config_init(&config);
	config.reclaim_timeout_usec = 5 * SEC;
	/* the default (auto) would add an ESCALATED event to every failure: tests that escalate
	 * say so (escalate_over_limit()) */
	config.escalation = VMBC_ESCALATE_NONE;
	f->engine = vmbc_engine_new(&config);
	f->targets = g_array_new(FALSE, FALSE, sizeof(gint64));
	f->events = g_ptr_array_new_with_free_func(g_free);
	f->event_types = g_array_new(FALSE, FALSE, sizeof(VmbcEventType));
	vmbc_engine_set_actuator(f->engine, &act, f);
	vmbc_engine_set_event_func(f->engine, on_event, f);
	f->now = 1000 * SEC;
	/* a 1 GiB guest holding 300 MiB, balloon fully deflated */
	f->vm = vmbc_engine_add(f->engine, "web1", 1024 * MIB, &error);
	g_assert_no_error(error);
	g_assert_nonnull(f->vm);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	vmbc_engine_free(f->engine);
	g_array_unref(f->targets);
	g_ptr_array_unref(f->events);
	g_array_unref(f->event_types);
	g_clear_error(&f->done_error);
}

/* The guest now holds @held pages with a logical size of @actual. */
static void
sample(Fixture *f, gint64 held, gint64 actual)
{
	VmbcSample s = {.physpages = held, .vmmpages = 10 * MIB, .balloon_actual = actual};
	vmbc_engine_sample(f->engine, f->vm, &s, f->now);
}

static void
tick(Fixture *f, gint64 seconds)
{
	f->now += seconds * SEC;
	vmbc_engine_tick(f->engine, f->now);
}

/* when the guest last reported, host epoch seconds: one second apart unless report() says */
static gint64 stats_stamp = 1700000000;

static void
stats(Fixture *f, gint64 available, gint64 free_pages, gint64 caches, gint64 swap_in)
{
	VmbcGuestStats s = {.available = available,
			    .free = free_pages,
			    .caches = caches,
			    .total = f->vm->balloon_actual,
			    .swap_in = swap_in,
			    .major_faults = 0,
			    .last_update = ++stats_stamp};
	vmbc_engine_set_guest_stats(f->engine, f->vm, &s);
}

/* The guest reports @secs seconds after its last report, with its counters so far. */
static void
report(Fixture *f, gint64 secs, gint64 available, gint64 swap_in, gint64 major_faults)
{
	VmbcGuestStats s = {.available = available,
			    .free = available / 2,
			    .caches = available / 2,
			    .total = f->vm->balloon_actual,
			    .swap_in = swap_in,
			    .major_faults = major_faults,
			    .last_update = stats_stamp += secs};
	vmbc_engine_set_guest_stats(f->engine, f->vm, &s);
}

static void
set_limits(Fixture *f, gint64 barrier, gint64 limit)
{
	g_autoptr(GError) error = NULL;
	g_assert_true(vmbc_engine_set_limits(f->engine, f->vm, VMBC_RES_PHYSPAGES, barrier, limit,
					     f->now, NULL, NULL, &error));
	g_assert_no_error(error);
}

/* A VM held at its limit, steady: fresh stats when watched ones are due, not every tick. */
static void
test_wants_stats_watch(Fixture *f, gconstpointer data)
{
	set_limits(f, 512 * MIB, 512 * MIB);
	sample(f, 300 * MIB, 1024 * MIB);
	g_assert_false(vmbc_engine_wants_stats(f->engine, f->vm)); /* far from anything */

	f->now += SEC;
	sample(f, 510 * MIB, 1024 * MIB);
	g_assert_true(vmbc_engine_wants_stats(f->engine, f->vm)); /* near, never reported */
	stats(f, 400 * MIB, 300 * MIB, 100 * MIB, 0);
	g_assert_false(vmbc_engine_wants_stats(f->engine, f->vm)); /* near, just reported */

	for (gint64 t = SEC; t < VMBC_ENGINE_WATCH_STATS_USEC; t += SEC) {
		f->now += SEC;
		sample(f, 510 * MIB, 1024 * MIB);
		g_assert_false(vmbc_engine_wants_stats(f->engine, f->vm));
	}
	f->now += SEC;
	sample(f, 510 * MIB, 1024 * MIB);
	g_assert_true(vmbc_engine_wants_stats(f->engine, f->vm)); /* the watch is due */
	stats(f, 400 * MIB, 300 * MIB, 100 * MIB, 0);
	g_assert_false(vmbc_engine_wants_stats(f->engine, f->vm));

	/* an inflated balloon far from the limit is watched the same way */
	f->now += SEC;
	sample(f, 200 * MIB, 600 * MIB);
	stats(f, 300 * MIB, 300 * MIB, 0, 0);
	g_assert_false(vmbc_engine_wants_stats(f->engine, f->vm));
	f->now += VMBC_ENGINE_WATCH_STATS_USEC;
	sample(f, 200 * MIB, 600 * MIB);
	g_assert_true(vmbc_engine_wants_stats(f->engine, f->vm));
}

static void
test_charge_uncharge(Fixture *f, gconstpointer data)
{
	VmbcBeancounter *host = vmbc_engine_get_host(f->engine);
	VmbcParm *p = &f->vm->parm[VMBC_RES_PHYSPAGES];

	sample(f, 300 * MIB, 1024 * MIB);
	/* adopting: starting point, not a charge from zero */
	g_assert_cmpint(p->held, ==, 300 * MIB);
	g_assert_cmpint(p->maxheld, ==, 300 * MIB);
	g_assert_cmpint(p->minheld, ==, 300 * MIB);
	g_assert_cmpint(host->parm[VMBC_RES_PHYSPAGES].held, ==, 300 * MIB);

	sample(f, 600 * MIB, 1024 * MIB);
	g_assert_cmpint(p->held, ==, 600 * MIB);
	sample(f, 100 * MIB, 1024 * MIB);
	g_assert_cmpint(p->held, ==, 100 * MIB);
	g_assert_cmpint(p->maxheld, ==, 600 * MIB);
	g_assert_cmpint(p->minheld, ==, 100 * MIB);
	g_assert_cmpint(host->parm[VMBC_RES_PHYSPAGES].held, ==, 100 * MIB);
	g_assert_cmpint(f->vm->parm[VMBC_RES_VMMPAGES].held, ==, 10 * MIB);
	g_assert_cmpint(f->vm->parm[VMBC_RES_VMGUARPAGES].held, ==, 1024 * MIB);

	vmbc_beancounter_reset(f->vm);
	g_assert_cmpint(p->maxheld, ==, 100 * MIB);
	g_assert_cmpint(p->minheld, ==, 100 * MIB);
}

static void
test_host_aggregates(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	VmbcBeancounter *host = vmbc_engine_get_host(f->engine);
	VmbcBeancounter *vm2 = vmbc_engine_add(f->engine, "db1", 512 * MIB, &error);
	VmbcSample s = {.physpages = 200 * MIB, .vmmpages = -1, .balloon_actual = -1};

	g_assert_no_error(error);
	sample(f, 300 * MIB, 1024 * MIB);
	vmbc_engine_sample(f->engine, vm2, &s, f->now);
	g_assert_cmpint(host->parm[VMBC_RES_PHYSPAGES].held, ==, 500 * MIB);
	g_assert_cmpint(host->parm[VMBC_RES_PHYSPAGES].maxheld, ==, 500 * MIB);
	s.physpages = 50 * MIB;
	vmbc_engine_sample(f->engine, vm2, &s, f->now);
	g_assert_cmpint(host->parm[VMBC_RES_PHYSPAGES].held, ==, 350 * MIB);
	vmbc_engine_remove(f->engine, vm2);
	g_assert_cmpint(host->parm[VMBC_RES_PHYSPAGES].held, ==, 300 * MIB);
	g_assert_null(vmbc_engine_lookup(f->engine, "db1"));
	g_assert_true(vmbc_engine_lookup(f->engine, "host") == host);

	/* names are unique, "host" is taken */
	g_assert_null(vmbc_engine_add(f->engine, "web1", 1, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_INVALID);
	g_clear_error(&error);
	g_assert_null(vmbc_engine_add(f->engine, "host", 1, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_INVALID);
}

static void
test_limit_hit_done(Fixture *f, gconstpointer data)
{
	gint64 target;
	VmbcReclaimCounters reclaims;

	sample(f, 200 * MIB, 1024 * MIB);
	set_limits(f, 256 * MIB, 256 * MIB);
	tick(f, 1);
	g_assert_cmpuint(f->targets->len, ==, 0);

	sample(f, 400 * MIB, 1024 * MIB);
	tick(f, 1);
	g_assert_cmpuint(count_events(f, VMBC_EVENT_LIMIT_HIT), ==, 1);
	target = last_target(f);
	/* the guest may keep no more than the limit minus a margin */
	g_assert_cmpint(target, <, 256 * MIB);
	g_assert_cmpint(target, >=, 256 * MIB - 8 * MIB);
	g_assert_cmpint(vmbc_physpages_get_reclaim(f->vm), ==, VMBC_RECLAIM_LIMIT);

	/* the balloon works: held falls under the limit */
	sample(f, 300 * MIB, 600 * MIB);
	tick(f, 1);
	sample(f, 250 * MIB, target);
	tick(f, 1);
	g_assert_cmpuint(count_events(f, VMBC_EVENT_RECLAIM_DONE), ==, 1);
	g_assert_cmpint(vmbc_physpages_get_reclaim(f->vm), ==, VMBC_RECLAIM_IDLE);
	g_assert_cmpuint(f->vm->parm[VMBC_RES_PHYSPAGES].failcnt, ==, 0);
	g_assert_cmpint(f->vm->parm[VMBC_RES_PHYSPAGES].maxheld, ==, 400 * MIB);
	vmbc_physpages_get_counters(f->vm, &reclaims);
	g_assert_cmpuint(reclaims.done, ==, 1);
}

static void
test_limit_hit_no_progress(Fixture *f, gconstpointer data)
{
	VmbcParm *p = &f->vm->parm[VMBC_RES_PHYSPAGES];

	sample(f, 400 * MIB, 1024 * MIB);
	f->vm->balloon = VMBC_BALLOON_OK;
	set_limits(f, 256 * MIB, 256 * MIB);
	g_assert_cmpint(vmbc_physpages_get_reclaim(f->vm), ==, VMBC_RECLAIM_LIMIT);
	/* the balloon reaches its target but the guest keeps 400 MiB in tmpfs */
	sample(f, 400 * MIB, 700 * MIB);
	for (gint i = 0; i < 4; i++)
		tick(f, 1);
	g_assert_cmpuint(p->failcnt, ==, 0);
	tick(f, 1);
	tick(f, 1);
	g_assert_cmpuint(p->failcnt, ==, 1);
	g_assert_cmpuint(count_events(f, VMBC_EVENT_RECLAIM_FAILED), ==, 1);
	g_assert_cmpint(vmbc_physpages_get_reclaim(f->vm), ==, VMBC_RECLAIM_FAILED);
	/* the error says what blocked it */
	g_assert_nonnull(strstr(g_ptr_array_index(f->events, f->events->len - 1), "no progress"));

	/* it keeps trying, and keeps counting */
	for (gint i = 0; i < 12; i++)
		tick(f, 1);
	g_assert_cmpuint(p->failcnt, ==, 2);

	/* the guest frees its memory: held under the limit, the episode ends */
	sample(f, 100 * MIB, 250 * MIB);
	tick(f, 1);
	g_assert_cmpint(vmbc_physpages_get_reclaim(f->vm), ==, VMBC_RECLAIM_IDLE);
	g_assert_cmpuint(count_events(f, VMBC_EVENT_RECLAIM_DONE), ==, 1);
	g_assert_cmpuint(p->failcnt, ==, 2);
}

static void
test_limit_hit_slow_progress(Fixture *f, gconstpointer data)
{
	gint64 held = 600 * MIB;

	sample(f, held, 1024 * MIB);
	f->vm->balloon = VMBC_BALLOON_OK;
	set_limits(f, 256 * MIB, 256 * MIB);
	/* 20 MiB a second for 17 s: slow, but never a failure */
	for (gint i = 0; i < 17; i++) {
		held -= 20 * MIB;
		sample(f, held, held);
		tick(f, 1);
	}
	g_assert_cmpuint(f->vm->parm[VMBC_RES_PHYSPAGES].failcnt, ==, 0);
	sample(f, 250 * MIB, 250 * MIB);
	tick(f, 1);
	g_assert_cmpuint(count_events(f, VMBC_EVENT_RECLAIM_DONE), ==, 1);
}

static void
test_limit_hit_no_device(Fixture *f, gconstpointer data)
{
	sample(f, 400 * MIB, 1024 * MIB);
	f->refuse = TRUE;
	set_limits(f, 256 * MIB, 256 * MIB);
	g_assert_cmpuint(f->vm->parm[VMBC_RES_PHYSPAGES].failcnt, ==, 1);
	g_assert_cmpint(f->vm->balloon, ==, VMBC_BALLOON_NO_DEVICE);
	g_assert_cmpuint(count_events(f, VMBC_EVENT_RECLAIM_FAILED), ==, 1);
	g_assert_nonnull(strstr(g_ptr_array_index(f->events, f->events->len - 1), "balloon"));
	/* retried after the timeout, counted again, nothing else breaks */
	for (gint i = 0; i < 6; i++)
		tick(f, 1);
	g_assert_cmpuint(f->vm->parm[VMBC_RES_PHYSPAGES].failcnt, ==, 2);
}

static void
test_limit_hit_no_driver(Fixture *f, gconstpointer data)
{
	sample(f, 400 * MIB, 1024 * MIB);
	set_limits(f, 256 * MIB, 256 * MIB);
	g_assert_cmpuint(f->targets->len, ==, 1);
	/* QEMU accepts the request, the guest never moves the balloon */
	for (gint i = 0; i < 6; i++) {
		sample(f, 400 * MIB, 1024 * MIB);
		tick(f, 1);
	}
	g_assert_cmpint(f->vm->balloon, ==, VMBC_BALLOON_NO_DRIVER);
	g_assert_cmpuint(f->vm->parm[VMBC_RES_PHYSPAGES].failcnt, ==, 1);
	g_assert_nonnull(
		strstr(g_ptr_array_index(f->events, f->events->len - 1), "no balloon driver"));
}

/*
 * A balloon that moves 256 KiB a second, a quarter of balloon-stall-rate (1 MiB
 * a second by default): the reclaim fails as stalled after the grace ticks,
 * long before reclaim-timeout (5 s here), counted, and the retry stalls again.
 */
static void
test_limit_hit_stalled(Fixture *f, gconstpointer data)
{
	VmbcParm *p = &f->vm->parm[VMBC_RES_PHYSPAGES];
	VmbcReclaimCounters reclaims;
	gint64 actual = 1024 * MIB;
	gint i;

	sample(f, 400 * MIB, actual);
	f->vm->balloon = VMBC_BALLOON_OK;
	set_limits(f, 256 * MIB, 256 * MIB);
	for (i = 0; i < 5 && p->failcnt == 0; i++) {
		actual -= MIB / 4;
		sample(f, 400 * MIB, actual);
		tick(f, 1);
	}
	g_assert_cmpuint(p->failcnt, ==, 1);
	g_assert_cmpint(i, <=, 4); /* within the grace of 3 ticks and one more, not 5 s */
	vmbc_physpages_get_counters(f->vm, &reclaims);
	g_assert_cmpuint(reclaims.stalls, ==, 1);
	g_assert_cmpuint(reclaims.failed, ==, 1);
	g_assert_cmpuint(count_events(f, VMBC_EVENT_RECLAIM_FAILED), ==, 1);
	g_assert_nonnull(strstr(g_ptr_array_index(f->events, f->events->len - 1), "stalled"));
	g_assert_cmpint(vmbc_physpages_get_reclaim(f->vm), ==, VMBC_RECLAIM_FAILED);

	/* retried after reclaim-timeout, stalls again, counted again */
	for (i = 0; i < 12; i++) {
		actual -= MIB / 4;
		sample(f, 400 * MIB, actual);
		tick(f, 1);
	}
	vmbc_physpages_get_counters(f->vm, &reclaims);
	g_assert_cmpuint(reclaims.stalls, >=, 2);
	g_assert_cmpuint(p->failcnt, ==, reclaims.stalls);
}

/* A balloon that keeps moving (8 MiB a second) is not stalled, however long it takes. */
static void
test_limit_hit_moving_not_stalled(Fixture *f, gconstpointer data)
{
	VmbcReclaimCounters reclaims;
	gint64 actual = 1024 * MIB;

	sample(f, 400 * MIB, actual);
	f->vm->balloon = VMBC_BALLOON_OK;
	set_limits(f, 256 * MIB, 256 * MIB);
	for (gint i = 0; i < 12; i++) {
		actual -= 8 * MIB;
		sample(f, 400 * MIB, actual);
		tick(f, 1);
	}
	g_assert_cmpuint(f->vm->parm[VMBC_RES_PHYSPAGES].failcnt, ==, 0);
	vmbc_physpages_get_counters(f->vm, &reclaims);
	g_assert_cmpuint(reclaims.stalls, ==, 0);
	g_assert_cmpint(vmbc_physpages_get_reclaim(f->vm), ==, VMBC_RECLAIM_LIMIT);
}

/*
 * The guest holds 400 MiB and gives none of it back: a 256 MiB limit fails
 * within a few ticks and escalates with @how.
 */
static void
escalate_over_limit(Fixture *f, VmbcEscalation how)
{
	VmbcEngineConfig config = *vmbc_engine_get_config(f->engine);

	config.escalation = how;
	vmbc_engine_set_config(f->engine, &config);
	sample(f, 400 * MIB, 1024 * MIB);
	f->vm->balloon = VMBC_BALLOON_OK;
	set_limits(f, 256 * MIB, 256 * MIB);
	for (gint i = 0; i < 6; i++)
		tick(f, 1);
}

/*
 * auto, the default, asks the backend to hold the VM (memory-high where it
 * can); what it set follows the limit as memory-high's does. Where the backend
 * cannot, its reason is in the failure event, and warned once per reason.
 */
static void
test_limit_hit_escalate_auto(Fixture *f, gconstpointer data)
{
	VmbcEngineConfig config;

	vmbc_engine_config_init(&config);
	g_assert_cmpint(config.escalation, ==, VMBC_ESCALATE_AUTO);
	escalate_over_limit(f, VMBC_ESCALATE_AUTO);
	g_assert_cmpuint(f->escalations, ==, 1);
	g_assert_cmpint(f->escalated_how, ==, VMBC_ESCALATE_AUTO);
	g_assert_cmpuint(count_events(f, VMBC_EVENT_ESCALATED), ==, 1);
	g_assert_true(f->vm->memory_high_set);
}

static void
test_limit_hit_escalate(Fixture *f, gconstpointer data)
{
	escalate_over_limit(f, VMBC_ESCALATE_PAUSE);
	g_assert_cmpuint(f->escalations, ==, 1);
	g_assert_cmpuint(count_events(f, VMBC_EVENT_ESCALATED), ==, 1);
	g_assert_false(f->vm->memory_high_set);
	/* a paused VM stays paused when the limit is raised: that is the operator's call */
	set_limits(f, 512 * MIB, 512 * MIB);
	g_assert_cmpuint(f->escalations, ==, 1);
}

/*
 * memory.high set by the escalation follows the limit up (and is lifted with
 * it), so that raising a VM's limit does not leave the kernel holding it to
 * the old one. Lowering the limit does not touch it.
 */
static void
test_memory_high_follows_limit(Fixture *f, gconstpointer data)
{
	guint n;

	/* raising a limit before any escalation writes nothing */
	sample(f, 400 * MIB, 1024 * MIB);
	set_limits(f, 900 * MIB, 900 * MIB);
	g_assert_cmpuint(f->escalations, ==, 0);
	escalate_over_limit(f, VMBC_ESCALATE_MEMORY_HIGH);
	g_assert_cmpuint(f->escalations, ==, 1);
	g_assert_cmpint(f->escalated_how, ==, VMBC_ESCALATE_MEMORY_HIGH);
	g_assert_cmpint(f->escalated_limit, ==, 256 * MIB);
	g_assert_true(f->vm->memory_high_set);

	/* lowered: left for the next failed reclaim */
	n = f->escalations;
	set_limits(f, 200 * MIB, 200 * MIB);
	g_assert_cmpuint(f->escalations, ==, n);

	/* raised: raised at once, to the new limit */
	set_limits(f, 512 * MIB, 600 * MIB);
	g_assert_cmpuint(f->escalations, ==, n + 1);
	g_assert_cmpint(f->escalated_how, ==, VMBC_ESCALATE_MEMORY_HIGH_RAISE);
	g_assert_cmpint(f->escalated_limit, ==, 600 * MIB);
	g_assert_true(f->vm->memory_high_set);

	/* removed: lifted (the backend writes max), and no longer followed */
	set_limits(f, VMBC_UNLIMITED, VMBC_UNLIMITED);
	g_assert_cmpuint(f->escalations, ==, n + 2);
	g_assert_cmpint(f->escalated_limit, ==, VMBC_UNLIMITED);
	g_assert_false(f->vm->memory_high_set);
	set_limits(f, 800 * MIB, 800 * MIB);
	set_limits(f, 900 * MIB, 900 * MIB);
	g_assert_cmpuint(f->escalations, ==, n + 2);
}

/* memory.high lifted by hand: raising the limit leaves it, and stops following it. */
static void
test_memory_high_lifted_by_hand(Fixture *f, gconstpointer data)
{
	escalate_over_limit(f, VMBC_ESCALATE_MEMORY_HIGH);
	g_assert_cmpuint(f->escalations, ==, 1);
	g_assert_true(f->vm->memory_high_set);
	f->lifted_by_hand = TRUE;
	set_limits(f, 512 * MIB, 512 * MIB);
	g_assert_cmpuint(f->escalations, ==, 1);
	g_assert_false(f->vm->memory_high_set);
	/* a later failure sets it again, and it is followed again */
	f->lifted_by_hand = FALSE;
	escalate_over_limit(f, VMBC_ESCALATE_MEMORY_HIGH);
	g_assert_cmpuint(f->escalations, ==, 2);
	g_assert_cmpint(f->escalated_how, ==, VMBC_ESCALATE_MEMORY_HIGH);
	g_assert_true(f->vm->memory_high_set);
}

static void
test_guarantee_floor(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	sample(f, 400 * MIB, 1024 * MIB);
	g_assert_true(vmbc_engine_set_guarantee(f->engine, f->vm, 512 * MIB, f->now, &error));
	g_assert_no_error(error);
	set_limits(f, 256 * MIB, 256 * MIB);
	/* never below the guarantee, and the refusal is counted */
	g_assert_cmpint(last_target(f), ==, 512 * MIB);
	g_assert_cmpuint(f->vm->parm[VMBC_RES_VMGUARPAGES].failcnt, ==, 1);
	g_assert_cmpuint(count_events(f, VMBC_EVENT_GUARANTEE_REFUSED), ==, 1);

	/*
	 * The balloon stops at the guarantee, held stays over (a few pages less is
	 * the sampling's noise): failure names the guarantee.
	 */
	f->vm->balloon = VMBC_BALLOON_OK;
	sample(f, 400 * MIB - 5, 512 * MIB);
	for (gint i = 0; i < 6; i++)
		tick(f, 1);
	g_assert_cmpuint(f->vm->parm[VMBC_RES_PHYSPAGES].failcnt, ==, 1);
	g_assert_nonnull(strstr(g_ptr_array_index(f->events, f->events->len - 1), "guarantee"));
	/* the balloon bought nothing: it is given back to where it was */
	g_assert_cmpint(last_target(f), ==, 1024 * MIB);
	g_assert_nonnull(
		strstr(g_ptr_array_index(f->events, f->events->len - 1), "gave 512M back"));
}

static void
test_guarantee_raise_deflates(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	sample(f, 200 * MIB, 300 * MIB);
	g_assert_true(vmbc_engine_set_guarantee(f->engine, f->vm, 512 * MIB, f->now, &error));
	g_assert_cmpint(last_target(f), ==, 512 * MIB);
	g_assert_cmpuint(count_events(f, VMBC_EVENT_DEFLATE), ==, 1);
	g_assert_cmpint(f->vm->parm[VMBC_RES_VMGUARPAGES].barrier, ==, 512 * MIB);

	/* above the VM's size is refused */
	g_assert_false(vmbc_engine_set_guarantee(f->engine, f->vm, 2048 * MIB, f->now, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_INVALID);
	g_assert_nonnull(strstr(error->message, "above its maximum memory 1G"));
	g_assert_cmpint(f->vm->parm[VMBC_RES_VMGUARPAGES].barrier, ==, 512 * MIB);
}

static void
test_change_sync_success(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	sample(f, 400 * MIB, 1024 * MIB);
	g_assert_true(vmbc_engine_set_limits(f->engine, f->vm, VMBC_RES_PHYSPAGES, 256 * MIB,
					     256 * MIB, f->now, on_done, f, &error));
	g_assert_no_error(error);
	/* not answered until the reclaim finished */
	g_assert_cmpuint(f->done_calls, ==, 0);
	sample(f, 300 * MIB, 400 * MIB);
	tick(f, 1);
	g_assert_cmpuint(f->done_calls, ==, 0);
	sample(f, 240 * MIB, 250 * MIB);
	tick(f, 1);
	g_assert_cmpuint(f->done_calls, ==, 1);
	g_assert_no_error(f->done_error);
}

static void
test_change_within_limit_immediate(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	sample(f, 100 * MIB, 1024 * MIB);
	g_assert_true(vmbc_engine_set_limits(f->engine, f->vm, VMBC_RES_PHYSPAGES, 256 * MIB,
					     512 * MIB, f->now, on_done, f, &error));
	g_assert_cmpuint(f->done_calls, ==, 1);
	g_assert_no_error(f->done_error);
	g_assert_cmpuint(f->targets->len, ==, 0);
	g_assert_cmpint(f->vm->parm[VMBC_RES_PHYSPAGES].barrier, ==, 256 * MIB);
	g_assert_cmpint(f->vm->parm[VMBC_RES_PHYSPAGES].limit, ==, 512 * MIB);
}

static void
test_change_guarantee_error(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	sample(f, 400 * MIB, 512 * MIB);
	g_assert_true(vmbc_engine_set_guarantee(f->engine, f->vm, 512 * MIB, f->now, &error));
	g_assert_true(vmbc_engine_set_limits(f->engine, f->vm, VMBC_RES_PHYSPAGES, 256 * MIB,
					     256 * MIB, f->now, on_done, f, &error));
	/* answered at once: the balloon is already at the guarantee */
	g_assert_cmpuint(f->done_calls, ==, 1);
	g_assert_error(f->done_error, VMBC_ERROR, VMBC_ERROR_GUARANTEE);
	g_assert_nonnull(strstr(f->done_error->message, "held 400M"));
	g_assert_nonnull(strstr(f->done_error->message, "limit 256M"));
	g_assert_nonnull(strstr(f->done_error->message, "guarantee 512M"));
	g_assert_cmpuint(f->vm->parm[VMBC_RES_PHYSPAGES].failcnt, ==, 1);
	g_assert_cmpuint(f->vm->parm[VMBC_RES_VMGUARPAGES].failcnt, ==, 1);
}

static void
test_change_no_progress_error(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	sample(f, 400 * MIB, 1024 * MIB);
	f->vm->balloon = VMBC_BALLOON_OK;
	g_assert_true(vmbc_engine_set_limits(f->engine, f->vm, VMBC_RES_PHYSPAGES, 256 * MIB,
					     256 * MIB, f->now, on_done, f, &error));
	sample(f, 400 * MIB, 400 * MIB);
	for (gint i = 0; i < 6; i++)
		tick(f, 1);
	g_assert_cmpuint(f->done_calls, ==, 1);
	g_assert_error(f->done_error, VMBC_ERROR, VMBC_ERROR_NO_PROGRESS);
	g_assert_nonnull(strstr(f->done_error->message, "no progress"));
	/* the limit stands */
	g_assert_cmpint(f->vm->parm[VMBC_RES_PHYSPAGES].limit, ==, 256 * MIB);
}

static void
test_change_invalid(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	g_assert_false(vmbc_engine_set_limits(f->engine, f->vm, VMBC_RES_PHYSPAGES, 512 * MIB,
					      256 * MIB, f->now, on_done, f, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_INVALID);
	g_assert_nonnull(strstr(error->message, "barrier 512M is above limit 256M"));
	g_clear_error(&error);
	g_assert_false(vmbc_engine_set_limits(f->engine, f->vm, VMBC_RES_PHYSPAGES, -1, 256 * MIB,
					      f->now, on_done, f, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_INVALID);
	g_assert_cmpuint(f->done_calls, ==, 0);
	g_assert_cmpint(f->vm->parm[VMBC_RES_PHYSPAGES].limit, ==, VMBC_UNLIMITED);
}

static void
test_change_vanished(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	sample(f, 400 * MIB, 1024 * MIB);
	g_assert_true(vmbc_engine_set_limits(f->engine, f->vm, VMBC_RES_PHYSPAGES, 256 * MIB,
					     256 * MIB, f->now, on_done, f, &error));
	vmbc_engine_remove(f->engine, f->vm);
	f->vm = NULL;
	g_assert_cmpuint(f->done_calls, ==, 1);
	g_assert_error(f->done_error, VMBC_ERROR, VMBC_ERROR_VANISHED);
	tick(f, 1);
}

static void
test_barrier_gentle(Fixture *f, gconstpointer data)
{
	sample(f, 600 * MIB, 1024 * MIB);
	set_limits(f, 400 * MIB, 900 * MIB);
	/* no stats: the guest has said nothing it can spare, nothing is taken */
	tick(f, 1);
	g_assert_cmpuint(count_events(f, VMBC_EVENT_BARRIER_HIT), ==, 1);
	g_assert_cmpuint(f->targets->len, ==, 0);

	/* it can spare 30 MiB free + half of 40 MiB caches = 50 MiB */
	stats(f, 70 * MIB, 30 * MIB, 40 * MIB, 0);
	tick(f, 1);
	g_assert_cmpint(last_target(f), ==, 1024 * MIB - 50 * MIB);

	/* lots spare: one step is at most barrier_step_pages (64 MiB) */
	sample(f, 600 * MIB, 1024 * MIB - 50 * MIB);
	stats(f, 600 * MIB, 500 * MIB, 0, 0);
	tick(f, 1);
	g_assert_cmpint(last_target(f), ==, 1024 * MIB - 50 * MIB - 64 * MIB);
	g_assert_cmpuint(f->vm->parm[VMBC_RES_PHYSPAGES].failcnt, ==, 0);

	/* under the barrier again: back to idle */
	sample(f, 390 * MIB, 900 * MIB);
	tick(f, 1);
	g_assert_cmpint(vmbc_physpages_get_reclaim(f->vm), ==, VMBC_RECLAIM_IDLE);
}

static void
test_barrier_rate_limited(Fixture *f, gconstpointer data)
{
	sample(f, 600 * MIB, 1024 * MIB);
	set_limits(f, 400 * MIB, 900 * MIB);
	stats(f, 600 * MIB, 500 * MIB, 0, 0);
	tick(f, 1);
	g_assert_cmpuint(f->targets->len, ==, 1);
	/* the step is still under way: no second request stacked on it */
	tick(f, 1);
	g_assert_cmpuint(f->targets->len, ==, 1);
	sample(f, 600 * MIB, last_target(f));
	tick(f, 1);
	g_assert_cmpuint(f->targets->len, ==, 2);
}

static void
test_deflate_on_pressure(Fixture *f, gconstpointer data)
{
	sample(f, 200 * MIB, 300 * MIB);
	f->vm->balloon = VMBC_BALLOON_OK;
	set_limits(f, 512 * MIB, 768 * MIB);
	/* not pressured: nothing moves */
	stats(f, 40 * MIB, 30 * MIB, 10 * MIB, 0);
	tick(f, 1);
	g_assert_cmpuint(f->targets->len, ==, 0);
	/* available under 10%: grow by a step (twice the 30 MiB it fell is less) */
	stats(f, 10 * MIB, 5 * MIB, 5 * MIB, 0);
	tick(f, 1);
	g_assert_cmpint(last_target(f), ==, 300 * MIB + 128 * MIB);
	g_assert_cmpuint(count_events(f, VMBC_EVENT_DEFLATE), ==, 1);
	/* swapping in: grow again step by step, never past the limit */
	for (gint i = 0; i < 5; i++) {
		sample(f, 300 * MIB, last_target(f));
		stats(f, 200 * MIB, 100 * MIB, 0, 5 * i);
		stats(f, 200 * MIB, 100 * MIB, 0, 5 * i + 100);
		tick(f, 1);
	}
	g_assert_cmpint(last_target(f), ==, 768 * MIB);
	g_assert_cmpuint(f->targets->len, ==, 4);
}

static void
test_deflate_not_over_barrier(Fixture *f, gconstpointer data)
{
	sample(f, 506 * MIB, 600 * MIB);
	f->vm->balloon = VMBC_BALLOON_OK;
	set_limits(f, 512 * MIB, 768 * MIB);
	stats(f, 10 * MIB, 5 * MIB, 5 * MIB, 0);
	tick(f, 1);
	/* close to the barrier: the pressured guest is not grown */
	g_assert_cmpuint(f->targets->len, ==, 0);
}

/*
 * A guest of 600 MiB with plenty available whose available falls: slowly, it
 * is left alone; by more than 1/8 of its size a second, or fast enough to be
 * short within two reports, it is grown before it is short.
 */
static void
test_deflate_trend(Fixture *f, gconstpointer data)
{
	sample(f, 200 * MIB, 600 * MIB);
	f->vm->balloon = VMBC_BALLOON_OK;
	set_limits(f, 512 * MIB, 900 * MIB);
	report(f, 1, 400 * MIB, 0, 0);
	tick(f, 1);
	/* 10 MiB in a second: far from short at that rate */
	report(f, 1, 390 * MIB, 0, 0);
	tick(f, 1);
	g_assert_cmpuint(f->targets->len, ==, 0);
	/* 100 MiB in a second, over 1/8 of 600 MiB: grown by twice that, with 290 MiB left */
	report(f, 1, 290 * MIB, 0, 0);
	tick(f, 1);
	g_assert_cmpuint(f->targets->len, ==, 1);
	g_assert_cmpint(last_target(f), ==, 800 * MIB);

	/* grown, it has more available; then 220 MiB in 5 s: slower than 1/8 of 800 MiB a
	 * second, but twice that leaves it under 10%: grown again, to the limit */
	sample(f, 300 * MIB, 800 * MIB);
	report(f, 1, 490 * MIB, 0, 0);
	tick(f, 1);
	g_assert_cmpuint(f->targets->len, ==, 1);
	report(f, 5, 270 * MIB, 0, 0);
	tick(f, 1);
	g_assert_cmpuint(f->targets->len, ==, 2);
	g_assert_cmpint(last_target(f), ==, 900 * MIB);
}

/*
 * A report made no later than the second after the balloon grew shows what
 * vmbcd itself took: it is not pressure, and the reclaim is not undone. A
 * report made after it is believed again.
 */
static void
test_deflate_after_own_inflation(Fixture *f, gconstpointer data)
{
	sample(f, 200 * MIB, 600 * MIB);
	f->vm->balloon = VMBC_BALLOON_OK;
	set_limits(f, 512 * MIB, 900 * MIB);
	report(f, 1, 400 * MIB, 0, 0);
	tick(f, 1);
	/* the balloon grew by 300 MiB in the second the guest reports next */
	vmbc_engine_set_wall_clock(f->engine, (stats_stamp + 1) * SEC);
	sample(f, 200 * MIB, 300 * MIB);
	report(f, 1, 20 * MIB, 0, 0);
	tick(f, 1);
	report(f, 1, 20 * MIB, 0, 0);
	tick(f, 1);
	g_assert_cmpuint(f->targets->len, ==, 0);
	/* later, still short: grown */
	report(f, 1, 20 * MIB, 0, 0);
	tick(f, 1);
	g_assert_cmpuint(f->targets->len, ==, 1);
	g_assert_cmpint(last_target(f), >, 300 * MIB);
}

/* Swap-in: a trickle is not pressure, a working set that no longer fits is. */
static void
test_deflate_swap_in(Fixture *f, gconstpointer data)
{
	sample(f, 200 * MIB, 600 * MIB);
	f->vm->balloon = VMBC_BALLOON_OK;
	set_limits(f, 512 * MIB, 900 * MIB);
	report(f, 1, 400 * MIB, 1000, 0);
	tick(f, 1);
	/* 40 pages in 4 s */
	report(f, 4, 400 * MIB, 1040, 0);
	tick(f, 1);
	g_assert_cmpuint(f->targets->len, ==, 0);
	/* 1000 pages in 2 s */
	report(f, 2, 400 * MIB, 2040, 0);
	tick(f, 1);
	g_assert_cmpuint(f->targets->len, ==, 1);
	g_assert_cmpint(last_target(f), ==, 600 * MIB + 128 * MIB);
}

/* Major faults: a cold start is not pressure; a page cache thrown out is, at 300 a second. */
static void
test_deflate_major_faults(Fixture *f, gconstpointer data)
{
	sample(f, 200 * MIB, 600 * MIB);
	f->vm->balloon = VMBC_BALLOON_OK;
	set_limits(f, 512 * MIB, 900 * MIB);
	report(f, 1, 400 * MIB, 0, 5000);
	tick(f, 1);
	/* 200 a second */
	report(f, 2, 400 * MIB, 0, 5400);
	tick(f, 1);
	g_assert_cmpuint(f->targets->len, ==, 0);
	/* 300 a second for 2 s: fewer than 1000 in the report, still a thrashed cache */
	report(f, 2, 400 * MIB, 0, 6000);
	tick(f, 1);
	g_assert_cmpuint(f->targets->len, ==, 1);
	g_assert_cmpint(last_target(f), ==, 600 * MIB + 128 * MIB);
}

/* A fast writer: the step is twice what it used in its last report interval, not deflate-step. */
static void
test_deflate_fast_step(Fixture *f, gconstpointer data)
{
	sample(f, 200 * MIB, 300 * MIB);
	f->vm->balloon = VMBC_BALLOON_OK;
	set_limits(f, 900 * MIB, 1024 * MIB);
	report(f, 1, 250 * MIB, 0, 0);
	tick(f, 1);
	g_assert_cmpuint(f->targets->len, ==, 0);
	report(f, 1, 50 * MIB, 0, 0);
	tick(f, 1);
	g_assert_cmpuint(f->targets->len, ==, 1);
	g_assert_cmpint(last_target(f), ==, 300 * MIB + 2 * 200 * MIB);
	/* one step a tick, and not while it is under way */
	report(f, 1, 10 * MIB, 0, 0);
	tick(f, 1);
	g_assert_cmpuint(f->targets->len, ==, 1);
}

/*
 * A guest that is not pressured is not grown: plenty available, no fall, or a
 * fall that is only what the balloon took, counters that rise slowly.
 */
static void
test_deflate_not_pressured(Fixture *f, gconstpointer data)
{
	gint64 swap = 0, faults = 0;

	sample(f, 200 * MIB, 600 * MIB);
	f->vm->balloon = VMBC_BALLOON_OK;
	set_limits(f, 512 * MIB, 900 * MIB);
	for (gint i = 0; i < 10; i++) {
		report(f, 1, (400 + i % 3) * MIB, swap += 10, faults += 50);
		tick(f, 1);
	}
	/* someone took 200 MiB with the balloon: available fell with the guest's size */
	sample(f, 200 * MIB, 400 * MIB);
	report(f, 1, 200 * MIB, swap, faults);
	tick(f, 1);
	report(f, 1, 200 * MIB, swap, faults);
	tick(f, 1);
	g_assert_cmpuint(f->targets->len, ==, 0);
	g_assert_cmpuint(count_events(f, VMBC_EVENT_DEFLATE), ==, 0);
}

/* However hard the guest says it is pressed, it is never grown past its limit. */
static void
test_deflate_limit(Fixture *f, gconstpointer data)
{
	sample(f, 200 * MIB, 300 * MIB);
	f->vm->balloon = VMBC_BALLOON_OK;
	set_limits(f, 600 * MIB, 700 * MIB);
	report(f, 1, 280 * MIB, 0, 0);
	report(f, 1, 30 * MIB, 1000000, 1000000);
	tick(f, 1);
	/* twice the fall is 500 MiB: the limit is 400 MiB away and the step stops there */
	g_assert_cmpuint(f->targets->len, ==, 1);
	g_assert_cmpint(last_target(f), ==, 700 * MIB);
	for (gint i = 0; i < 5; i++) {
		sample(f, 300 * MIB, 700 * MIB);
		report(f, 1, 1 * MIB, 2000000 + i * 1000000, 2000000 + i * 1000000);
		tick(f, 1);
	}
	g_assert_cmpuint(f->targets->len, ==, 1);
}

/* A guest that reports absurd numbers is grown no further than its limit, and nothing overflows. */
static void
test_deflate_lying(Fixture *f, gconstpointer data)
{
	sample(f, 200 * MIB, 300 * MIB);
	f->vm->balloon = VMBC_BALLOON_OK;
	set_limits(f, 600 * MIB, 700 * MIB);
	report(f, 1, G_MAXINT64, G_MAXINT64, G_MAXINT64);
	report(f, 1, 0, 0, 0);
	tick(f, 1);
	g_assert_cmpuint(f->targets->len, ==, 1);
	g_assert_cmpint(last_target(f), ==, 700 * MIB);
}

static void
test_lying_stats(Fixture *f, gconstpointer data)
{
	sample(f, 600 * MIB, 1024 * MIB);
	set_limits(f, 400 * MIB, 900 * MIB);
	/* claims 100 GiB free in a 1 GiB guest: clamped, one step at most */
	stats(f, 100 * 1024 * MIB, 100 * 1024 * MIB, 0, 0);
	tick(f, 1);
	g_assert_cmpint(last_target(f), ==, 1024 * MIB - 64 * MIB);
	/* and held, the only thing charged, comes from the host */
	g_assert_cmpint(f->vm->parm[VMBC_RES_PHYSPAGES].held, ==, 600 * MIB);
}

static void
test_manual_reclaim(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	sample(f, 300 * MIB, 1024 * MIB);
	g_assert_true(vmbc_engine_reclaim(f->engine, f->vm, 256 * MIB, f->now, on_done, f, &error));
	g_assert_no_error(error);
	g_assert_cmpint(last_target(f), ==, 768 * MIB);
	sample(f, 300 * MIB, 768 * MIB);
	tick(f, 1);
	g_assert_cmpuint(f->done_calls, ==, 1);
	g_assert_no_error(f->done_error);

	/* a reclaim that would cross the guarantee stops there, and says so */
	g_assert_true(vmbc_engine_set_guarantee(f->engine, f->vm, 700 * MIB, f->now, &error));
	g_assert_true(vmbc_engine_reclaim(f->engine, f->vm, 512 * MIB, f->now, on_done, f, &error));
	g_assert_cmpint(last_target(f), ==, 700 * MIB);
	g_assert_cmpuint(f->vm->parm[VMBC_RES_VMGUARPAGES].failcnt, ==, 1);
	sample(f, 300 * MIB, 700 * MIB);
	tick(f, 1);
	g_assert_cmpuint(f->done_calls, ==, 2);
	g_assert_false(vmbc_engine_reclaim(f->engine, f->vm, 64 * MIB, f->now, on_done, f, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_GUARANTEE);
}

static void
test_vmmpages_counts_once(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	sample(f, 100 * MIB, 1024 * MIB);
	g_assert_true(vmbc_engine_set_limits(f->engine, f->vm, VMBC_RES_VMMPAGES, 5 * MIB, 5 * MIB,
					     f->now, NULL, NULL, &error));
	tick(f, 1);
	tick(f, 1);
	tick(f, 1);
	g_assert_cmpuint(f->vm->parm[VMBC_RES_VMMPAGES].failcnt, ==, 1);
	/* nothing to reclaim with a balloon */
	g_assert_cmpuint(f->targets->len, ==, 0);
}

static void
test_host_reclaims_idle_first(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	VmbcBeancounter *host = vmbc_engine_get_host(f->engine);
	VmbcBeancounter *busy = vmbc_engine_add(f->engine, "busy", 1024 * MIB, &error);
	VmbcSample s = {.physpages = 600 * MIB, .vmmpages = -1, .balloon_actual = 1024 * MIB};
	VmbcGuestStats st = {.available = 50 * MIB,
			     .free = 40 * MIB,
			     .caches = 20 * MIB,
			     .total = 1024 * MIB,
			     .swap_in = 0,
			     .major_faults = 0,
			     .last_update = 5};

	vmbc_engine_sample(f->engine, busy, &s, f->now);
	vmbc_engine_set_guest_stats(f->engine, busy, &st);
	/* web1 holds the same but says 80% of it is idle */
	sample(f, 600 * MIB, 1024 * MIB);
	stats(f, 820 * MIB, 700 * MIB, 100 * MIB, 0);
	g_assert_true(vmbc_engine_set_limits(f->engine, host, VMBC_RES_PHYSPAGES, 1000 * MIB,
					     2000 * MIB, f->now, NULL, NULL, &error));
	tick(f, 1);
	g_assert_cmpuint(count_events(f, VMBC_EVENT_HOST_RECLAIM), ==, 1);
	g_assert_cmpuint(f->targets->len, ==, 1);
	/* over the barrier: the excess (200 MiB) at once, from the one that can give it */
	g_assert_cmpint(last_target(f), ==, 1024 * MIB - 200 * MIB);
	g_assert_nonnull(strstr(g_ptr_array_index(f->events, 0), "'web1'"));
	g_assert_cmpuint(host->parm[VMBC_RES_PHYSPAGES].failcnt, ==, 0);
}

static void
test_host_limit_fails_at_guarantee(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	VmbcBeancounter *host = vmbc_engine_get_host(f->engine);

	sample(f, 600 * MIB, 600 * MIB);
	g_assert_true(vmbc_engine_set_guarantee(f->engine, f->vm, 600 * MIB, f->now, &error));
	g_assert_true(vmbc_engine_set_limits(f->engine, host, VMBC_RES_PHYSPAGES, 300 * MIB,
					     400 * MIB, f->now, NULL, NULL, &error));
	tick(f, 1);
	g_assert_cmpuint(host->parm[VMBC_RES_PHYSPAGES].failcnt, ==, 1);
	g_assert_cmpuint(f->targets->len, ==, 0);
	/* counted once per reclaim timeout, not every tick */
	tick(f, 1);
	g_assert_cmpuint(host->parm[VMBC_RES_PHYSPAGES].failcnt, ==, 1);
}

static void
test_balloon_failed_async(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = g_error_new_literal(VMBC_ERROR, VMBC_ERROR_NO_BALLOON,
						      "No balloon device has been activated");

	sample(f, 400 * MIB, 1024 * MIB);
	set_limits(f, 256 * MIB, 256 * MIB);
	/* the backend learns afterwards that the request failed */
	g_test_expect_message("vmbc-core", G_LOG_LEVEL_WARNING, "*balloon unusable*");
	vmbc_engine_balloon_failed(f->engine, f->vm, VMBC_BALLOON_NO_DEVICE, error, f->now);
	g_test_assert_expected_messages();
	tick(f, 1);
	g_assert_nonnull(
		strstr(g_ptr_array_index(f->events, f->events->len - 1), "no balloon device"));
	g_assert_cmpuint(f->vm->parm[VMBC_RES_PHYSPAGES].failcnt, ==, 1);
}

static void
test_config_reload_keeps_counters(Fixture *f, gconstpointer data)
{
	VmbcEngineConfig config;

	sample(f, 400 * MIB, 1024 * MIB);
	f->vm->parm[VMBC_RES_PHYSPAGES].failcnt = 3;
	vmbc_engine_config_init(&config);
	config.tick_usec = 100000;
	vmbc_engine_set_config(f->engine, &config);
	g_assert_cmpint(vmbc_engine_get_config(f->engine)->tick_usec, ==, 100000);
	g_assert_cmpuint(f->vm->parm[VMBC_RES_PHYSPAGES].failcnt, ==, 3);
	g_assert_cmpint(f->vm->parm[VMBC_RES_PHYSPAGES].maxheld, ==, 400 * MIB);
}

static void
test_escalation_names(void)
{
	g_autoptr(GError) error = NULL;
	VmbcEscalation esc;

	g_assert_true(vmbc_escalation_from_string("pause", &esc, &error));
	g_assert_cmpint(esc, ==, VMBC_ESCALATE_PAUSE);
	g_assert_true(vmbc_escalation_from_string("memory-high", &esc, &error));
	g_assert_cmpint(esc, ==, VMBC_ESCALATE_MEMORY_HIGH);
	g_assert_false(vmbc_escalation_from_string("kill", &esc, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_INVALID);
	g_assert_nonnull(strstr(error->message, "'kill'"));
}

/*
 * trust-guest: the operator takes the guest's word, and a limit reclaim stops
 * where the guest says it would run out of memory, throughout.
 */
static void
test_limit_hit_trust_guest(Fixture *f, gconstpointer data)
{
	VmbcParm *p = &f->vm->parm[VMBC_RES_PHYSPAGES];

	/* 512 MiB guest with 400 MiB pinned: it reports 60 MiB available */
	f->vm->trust_guest = TRUE;
	sample(f, 460 * MIB, 512 * MIB);
	f->vm->balloon = VMBC_BALLOON_OK;
	stats(f, 60 * MIB, 50 * MIB, 10 * MIB, 0);
	set_limits(f, 256 * MIB, 256 * MIB);
	/* not into its OOM killer: only what it can give, keeping a reserve */
	g_assert_cmpint(last_target(f), ==, 512 * MIB - 60 * MIB + 32 * MIB);
	sample(f, 460 * MIB, last_target(f));
	stats(f, 32 * MIB, 30 * MIB, 2 * MIB, 0);
	for (gint i = 0; i < 6; i++)
		tick(f, 1);
	/* never pushed past its word, even after the first quarter of the timeout */
	for (guint i = 0; i < f->targets->len; i++)
		g_assert_cmpint(g_array_index(f->targets, gint64, i), >=, 484 * MIB);
	g_assert_cmpuint(p->failcnt, ==, 1);
	g_assert_nonnull(
		strstr(g_ptr_array_index(f->events, f->events->len - 1), "run it out of memory"));
	/* the 28 MiB it took lowered nothing: given back */
	g_assert_cmpint(last_target(f), ==, 512 * MIB);
	sample(f, 460 * MIB, 512 * MIB);
	/* the guest frees its tmpfs: the next attempt goes all the way */
	stats(f, 420 * MIB, 400 * MIB, 20 * MIB, 0);
	stats(f, 420 * MIB, 400 * MIB, 20 * MIB, 0);
	for (gint i = 0; i < 6; i++)
		tick(f, 1);
	g_assert_cmpint(last_target(f), <, 256 * MIB);
	sample(f, 200 * MIB, last_target(f));
	tick(f, 1);
	g_assert_cmpint(vmbc_physpages_get_reclaim(f->vm), ==, VMBC_RECLAIM_IDLE);
	g_assert_cmpuint(count_events(f, VMBC_EVENT_RECLAIM_DONE), ==, 1);
}

/*
 * Without trust-guest, the same guest's word does not even pace the reclaim:
 * the first request asks for the limit minus the margin, in the tick that saw
 * the crossing, and the next sample sees held within the limit.
 */
static void
test_limit_hit_guest_does_not_pace(Fixture *f, gconstpointer data)
{
	gint64 hard = 256 * MIB - 4 * MIB - 1; /* a margin of at least 4 MiB */

	sample(f, 200 * MIB, 512 * MIB);
	f->vm->balloon = VMBC_BALLOON_OK;
	stats(f, 60 * MIB, 50 * MIB, 10 * MIB, 0);
	set_limits(f, 256 * MIB, 256 * MIB);
	tick(f, 1);
	/* the guest grows over its limit and says it has little left */
	sample(f, 460 * MIB, 512 * MIB);
	stats(f, 20 * MIB, 20 * MIB, 0, 0);
	tick(f, 0);
	g_assert_cmpuint(count_events(f, VMBC_EVENT_LIMIT_HIT), ==, 1);
	g_assert_cmpint(last_target(f), <=, hard);
	g_assert_null(strstr(g_ptr_array_index(f->events, f->events->len - 1), "first"));
	/* the balloon did it within the tick: the next sample sees held within the limit */
	sample(f, 240 * MIB, last_target(f));
	tick(f, 1);
	g_assert_cmpuint(count_events(f, VMBC_EVENT_RECLAIM_DONE), ==, 1);
	g_assert_cmpuint(f->vm->parm[VMBC_RES_PHYSPAGES].failcnt, ==, 0);
}

/*
 * A guest that says it has 0 available while the host sees it hold 300 MiB of
 * a 1 GiB: its word is contradicted and counts for nothing; the balloon goes
 * to the limit at once.
 */
static void
test_limit_hit_reports_nothing_available(Fixture *f, gconstpointer data)
{
	sample(f, 300 * MIB, 1024 * MIB);
	f->vm->balloon = VMBC_BALLOON_OK;
	stats(f, 0, 0, 0, 0);
	set_limits(f, 100 * MIB, 100 * MIB);
	g_assert_cmpint(last_target(f), ==, 96 * MIB);
	/* fresh reports of the same change nothing */
	sample(f, 300 * MIB, 600 * MIB);
	stats(f, 0, 0, 0, 0);
	tick(f, 1);
	g_assert_cmpint(last_target(f), ==, 96 * MIB);
	sample(f, 90 * MIB, 96 * MIB);
	tick(f, 1);
	g_assert_cmpuint(count_events(f, VMBC_EVENT_RECLAIM_DONE), ==, 1);
	g_assert_cmpuint(f->vm->parm[VMBC_RES_PHYSPAGES].failcnt, ==, 0);
}

/*
 * Stats older than a few stats intervals count for nothing: the 92 s old word
 * of a guest that stopped reporting neither paces nor, with trust-guest, stops
 * the reclaim. Judged by the wall clock, or by when they arrived without one.
 */
static void
test_limit_hit_old_stats(Fixture *f, gconstpointer data)
{
	VmbcGuestStats st = {.available = 0,
			     .free = 0,
			     .caches = 0,
			     .total = 512 * MIB,
			     .swap_in = 0,
			     .major_faults = 0,
			     .last_update = 1000};

	f->vm->trust_guest = TRUE;
	f->vm->balloon = VMBC_BALLOON_OK;
	vmbc_engine_set_wall_clock(f->engine, 1000 * SEC);
	sample(f, 500 * MIB, 512 * MIB);
	vmbc_engine_set_guest_stats(f->engine, f->vm, &st);
	vmbc_engine_set_wall_clock(f->engine, 1092 * SEC);
	sample(f, 500 * MIB, 512 * MIB);
	set_limits(f, 256 * MIB, 256 * MIB);
	g_assert_cmpint(last_target(f), <, 256 * MIB - 4 * MIB);

	/* no wall clock: they arrived 92 s of samples ago */
	vmbc_engine_set_wall_clock(f->engine, 0);
	set_limits(f, VMBC_UNLIMITED, VMBC_UNLIMITED);
	sample(f, 500 * MIB, 512 * MIB);
	st.last_update = 2000;
	vmbc_engine_set_guest_stats(f->engine, f->vm, &st);
	f->now += 92 * SEC;
	sample(f, 500 * MIB, 512 * MIB);
	set_limits(f, 256 * MIB, 256 * MIB);
	g_assert_cmpint(last_target(f), <, 256 * MIB - 4 * MIB);
	/* and fresh, with trust-guest, the same word holds it where it is, plus the reserve */
	st.last_update = 2001;
	vmbc_engine_set_guest_stats(f->engine, f->vm, &st);
	set_limits(f, VMBC_UNLIMITED, VMBC_UNLIMITED);
	set_limits(f, 256 * MIB, 256 * MIB);
	g_assert_cmpint(last_target(f), ==, 512 * MIB + 32 * MIB);
}

/*
 * The 1 GiB guest of the report: 498 MiB held, limit 480 MiB. The balloon
 * goes to the limit, held falls 3 MiB and no further. The failure keeps those
 * 3 MiB of balloon and gives the rest back, and says so.
 */
static void
test_limit_hit_rollback(Fixture *f, gconstpointer data)
{
	VmbcEngineConfig config = *vmbc_engine_get_config(f->engine);
	const gchar *msg;
	gint64 target;

	config.escalation = VMBC_ESCALATE_PAUSE;
	vmbc_engine_set_config(f->engine, &config);
	f->vm->balloon = VMBC_BALLOON_OK;
	sample(f, 498 * MIB, 1024 * MIB);
	set_limits(f, 480 * MIB, 480 * MIB);
	target = last_target(f);
	g_assert_cmpint(target, <, 480 * MIB);
	sample(f, 495 * MIB, target);
	for (gint i = 0; i < 6; i++)
		tick(f, 1);
	g_assert_cmpuint(f->vm->parm[VMBC_RES_PHYSPAGES].failcnt, ==, 1);
	g_assert_cmpint(last_target(f), ==, 1021 * MIB);
	g_assert_cmpuint(f->escalations, ==, 1);
	msg = g_ptr_array_index(f->events, f->events->len - 2);
	g_assert_true(g_str_has_prefix(msg, "VMBC_RECLAIM_FAILED"));
	g_assert_nonnull(strstr(msg, "kept 3M"));
	g_assert_nonnull(strstr(msg, "back to 1021M"));
}

/*
 * Each retry starts from where the last failure gave the balloon back to and
 * gives back to it again: the guest is not ratcheted down retry by retry;
 * each failure counts and escalates.
 */
static void
test_limit_hit_retries_no_ratchet(Fixture *f, gconstpointer data)
{
	VmbcEngineConfig config = *vmbc_engine_get_config(f->engine);
	guint gave_back = 0;

	config.escalation = VMBC_ESCALATE_PAUSE;
	vmbc_engine_set_config(f->engine, &config);
	f->vm->balloon = VMBC_BALLOON_OK;
	sample(f, 498 * MIB, 1024 * MIB);
	set_limits(f, 480 * MIB, 480 * MIB);
	for (gint i = 0; i < 40; i++) {
		gint64 t = last_target(f);
		/* the balloon gets where it is sent; held never moves */
		sample(f, 498 * MIB, t);
		tick(f, 1);
		if (last_target(f) != t && last_target(f) > t) {
			g_assert_cmpint(last_target(f), ==, 1024 * MIB);
			gave_back++;
		}
	}
	g_assert_cmpuint(gave_back, >=, 3);
	g_assert_cmpuint(f->vm->parm[VMBC_RES_PHYSPAGES].failcnt, ==, gave_back);
	g_assert_cmpuint(f->escalations, ==, gave_back);
	for (guint i = 0; i < f->targets->len; i++)
		g_assert_cmpint(g_array_index(f->targets, gint64, i), >=, 470 * MIB);
}

static void
test_limit_hit_stale_stats(Fixture *f, gconstpointer data)
{
	/* the guest reported 400 MiB available, then filled 300 MiB before the next report */
	f->vm->trust_guest = TRUE; /* only then does its word hold the balloon up */
	sample(f, 100 * MIB, 512 * MIB);
	f->vm->balloon = VMBC_BALLOON_OK;
	stats(f, 400 * MIB, 390 * MIB, 10 * MIB, 0);
	sample(f, 400 * MIB, 512 * MIB);
	set_limits(f, 256 * MIB, 256 * MIB);
	/* 100 MiB left, not 400: keep the reserve above what it really has */
	g_assert_cmpint(last_target(f), ==, 512 * MIB - 100 * MIB + 32 * MIB);
}

static void
test_limit_hit_late_stats(Fixture *f, gconstpointer data)
{
	VmbcGuestStats st = {.available = 400 * MIB,
			     .free = 390 * MIB,
			     .caches = 10 * MIB,
			     .total = 512 * MIB,
			     .swap_in = 0,
			     .major_faults = 0,
			     .last_update = 1000};

	f->vm->balloon = VMBC_BALLOON_OK;
	f->vm->trust_guest = TRUE; /* only then does its word hold the balloon up */
	/* the host sees the guest grow over three seconds ... */
	vmbc_engine_set_wall_clock(f->engine, 1000 * SEC + 300000);
	sample(f, 100 * MIB, 512 * MIB);
	vmbc_engine_set_wall_clock(f->engine, 1001 * SEC + 300000);
	sample(f, 250 * MIB, 512 * MIB);
	vmbc_engine_set_wall_clock(f->engine, 1002 * SEC + 300000);
	sample(f, 400 * MIB, 512 * MIB);
	/* ... and only then gets the guest's report measured at second 1000 */
	vmbc_engine_set_guest_stats(f->engine, f->vm, &st);
	g_assert_cmpint(f->vm->stats_held, ==, 100 * MIB);
	set_limits(f, 256 * MIB, 256 * MIB);
	g_assert_cmpint(last_target(f), ==, 512 * MIB - 100 * MIB + 32 * MIB);
}

static void
test_ksm_fractions(Fixture *f, gconstpointer data)
{
	VmbcSample s = {.physpages = 400 * MIB,
			.vmmpages = -1,
			.balloon_actual = -1,
			.ksm_pages = 100 * MIB};

	/* KSM off: every resident page is charged */
	vmbc_engine_sample(f->engine, f->vm, &s, f->now);
	g_assert_cmpint(f->vm->parm[VMBC_RES_PHYSPAGES].held, ==, 400 * MIB);
	/* each KSM page has 4 sharers on average: a merged page costs a quarter */
	vmbc_engine_set_ksm(f->engine, 1000, 3000);
	vmbc_engine_sample(f->engine, f->vm, &s, f->now);
	g_assert_cmpint(f->vm->parm[VMBC_RES_PHYSPAGES].held, ==, 300 * MIB + 25 * MIB);
	g_assert_cmpint(vmbc_engine_get_host(f->engine)->parm[VMBC_RES_PHYSPAGES].held, ==,
			325 * MIB);
	/* a bogus count larger than what is resident is clamped */
	s.ksm_pages = 900 * MIB;
	vmbc_engine_sample(f->engine, f->vm, &s, f->now);
	g_assert_cmpint(f->vm->parm[VMBC_RES_PHYSPAGES].held, ==, 100 * MIB);
}

static void
test_limit_raised_releases(Fixture *f, gconstpointer data)
{
	sample(f, 400 * MIB, 1024 * MIB);
	f->vm->balloon = VMBC_BALLOON_OK;
	set_limits(f, 256 * MIB, 256 * MIB);
	sample(f, 240 * MIB, last_target(f));
	tick(f, 1);
	g_assert_cmpint(vmbc_physpages_get_reclaim(f->vm), ==, VMBC_RECLAIM_IDLE);
	/* the operator raises the limit: the balloon lets the guest out to it */
	set_limits(f, 768 * MIB, 768 * MIB);
	g_assert_cmpint(last_target(f), ==, 768 * MIB);
	g_assert_cmpuint(count_events(f, VMBC_EVENT_DEFLATE), ==, 1);
}

static void
test_limit_raised_ends_barrier_reclaim(Fixture *f, gconstpointer data)
{
	sample(f, 600 * MIB, 1024 * MIB);
	f->vm->balloon = VMBC_BALLOON_OK;
	set_limits(f, 400 * MIB, 900 * MIB);
	stats(f, 70 * MIB, 30 * MIB, 40 * MIB, 0);
	tick(f, 1);
	sample(f, 580 * MIB, last_target(f));
	g_assert_cmpint(vmbc_physpages_get_reclaim(f->vm), ==, VMBC_RECLAIM_BARRIER);
	/* both bounds raised past held in the middle of it: the guest is let out at once */
	set_limits(f, VMBC_UNLIMITED, VMBC_UNLIMITED);
	g_assert_cmpint(vmbc_physpages_get_reclaim(f->vm), ==, VMBC_RECLAIM_IDLE);
	g_assert_cmpint(last_target(f), ==, 1024 * MIB);
	g_assert_cmpuint(count_events(f, VMBC_EVENT_DEFLATE), ==, 1);
}

/*
 * vmbcd is killed and started again: a new engine, the same guest. What the
 * state file carries over is up to each test.
 */
static void
restart(Fixture *f, guint id)
{
	VmbcEngineConfig config = *vmbc_engine_get_config(f->engine);
	VmbcActuator act = {fake_set_balloon, fake_escalate};
	g_autoptr(GError) error = NULL;

	vmbc_engine_free(f->engine);
	f->engine = vmbc_engine_new(&config);
	vmbc_engine_set_actuator(f->engine, &act, f);
	vmbc_engine_set_event_func(f->engine, on_event, f);
	f->vm = vmbc_engine_add_with_id(f->engine, "web1", 1024 * MIB, id, &error);
	g_assert_no_error(error);
	g_array_set_size(f->targets, 0);
	g_array_set_size(f->event_types, 0);
}

/* A limit reclaim that got the guest to its target: vmbcd's claim on the balloon. */
static VmbcBalloonClaim
inflate_for_limit(Fixture *f)
{
	sample(f, 400 * MIB, 1024 * MIB);
	f->vm->balloon = VMBC_BALLOON_OK;
	set_limits(f, 256 * MIB, 256 * MIB);
	sample(f, 240 * MIB, last_target(f));
	tick(f, 1);
	g_assert_cmpint(vmbc_physpages_get_reclaim(f->vm), ==, VMBC_RECLAIM_IDLE);
	g_assert_cmpint(vmbc_beancounter_balloon_owner(f->vm), ==, VMBC_BALLOON_OWNER_VMBCD);
	g_assert_cmpint(f->vm->balloon_claim.target, ==, last_target(f));
	g_assert_cmpint(f->vm->balloon_claim.before, ==, 1024 * MIB);
	g_assert_cmpint(f->vm->balloon_claim.limit, ==, 256 * MIB);
	g_assert_cmpint(f->vm->balloon_claim.reason, ==, VMBC_BALLOON_FOR_LIMIT);
	return f->vm->balloon_claim;
}

/*
 * The balloon vmbcd inflated for a limit, still where it left it after a
 * restart, is vmbcd's again: removing the limit lets it out, as without a
 * restart. Without the claim, the restarted engine would leave it (the bug).
 */
static void
test_restart_readopts_own_balloon(Fixture *f, gconstpointer data)
{
	VmbcBalloonClaim claim = inflate_for_limit(f);
	guint64 changes;

	/* without what the last run set: nothing lets the guest out */
	restart(f, 0);
	set_limits(f, 256 * MIB, 256 * MIB);
	sample(f, 240 * MIB, claim.target);
	g_assert_cmpint(vmbc_beancounter_balloon_owner(f->vm), ==, VMBC_BALLOON_OWNER_OTHER);
	set_limits(f, VMBC_UNLIMITED, VMBC_UNLIMITED);
	g_assert_cmpuint(f->targets->len, ==, 0);

	/* with it, given before the balloon's size is known (as at adoption) */
	restart(f, 0);
	set_limits(f, 256 * MIB, 256 * MIB);
	vmbc_engine_restore_balloon(f->engine, f->vm, VMBC_BALLOON_OK, &claim);
	g_assert_true(f->vm->balloon_claim_unconfirmed);
	g_assert_cmpint(vmbc_beancounter_balloon_owner(f->vm), ==, VMBC_BALLOON_OWNER_NONE);
	changes = vmbc_engine_get_balloon_changes(f->engine);
	sample(f, 240 * MIB, claim.target - MIB); /* a MiB off: still vmbcd's */
	g_assert_false(f->vm->balloon_claim_unconfirmed);
	g_assert_cmpint(vmbc_engine_get_balloon_changes(f->engine), ==, changes);
	g_assert_cmpint(vmbc_beancounter_balloon_owner(f->vm), ==, VMBC_BALLOON_OWNER_VMBCD);
	g_assert_cmpint(f->vm->balloon_target, ==, claim.target);
	g_assert_cmpint(f->vm->balloon_claim.before, ==, 1024 * MIB);
	tick(f, 1);
	g_assert_cmpuint(f->targets->len, ==, 0); /* adoption moves nothing */

	set_limits(f, VMBC_UNLIMITED, VMBC_UNLIMITED);
	g_assert_cmpint(last_target(f), ==, 1024 * MIB);
	g_assert_cmpuint(count_events(f, VMBC_EVENT_DEFLATE), ==, 1);
	/* everything given back: the claim ends */
	g_assert_cmpint(f->vm->balloon_claim.target, ==, -1);
	g_assert_cmpint(vmbc_engine_get_balloon_changes(f->engine), >, changes);
	sample(f, 240 * MIB, 1024 * MIB);
	g_assert_cmpint(vmbc_beancounter_balloon_owner(f->vm), ==, VMBC_BALLOON_OWNER_NONE);
}

/*
 * A VM with a virtio-mem device whose blocks vmbcd unplugged for a limit:
 * after a restart QEMU reports a smaller VM (what is plugged now), and the
 * claim, confirmed, gives the VM and the device back their size then, so that
 * removing the limit plugs the blocks back.
 */
static void
test_restart_virtio_mem(Fixture *f, gconstpointer data)
{
	VmbcBalloonClaim claim = inflate_for_limit(f);

	restart(f, 0);
	/* 384 MiB of base RAM, 640 MiB of virtio-mem of which 128 MiB still plugged */
	f->vm->max_pages = 512 * MIB;
	f->vm->has_vmem = TRUE;
	f->vm->vmem = (VmbcVirtioMem){.other = 384 * MIB,
				      .size = 128 * MIB,
				      .max = 128 * MIB,
				      .block = 2 * MIB,
				      .requested = 128 * MIB};
	set_limits(f, 256 * MIB, 256 * MIB);
	vmbc_engine_restore_balloon(f->engine, f->vm, VMBC_BALLOON_OK, &claim);
	sample(f, 240 * MIB, claim.target);
	g_assert_false(f->vm->balloon_claim_unconfirmed);
	g_assert_cmpint(f->vm->max_pages, ==, 1024 * MIB);
	g_assert_cmpint(f->vm->vmem.max, ==, 640 * MIB);
	set_limits(f, VMBC_UNLIMITED, VMBC_UNLIMITED);
	g_assert_cmpint(last_target(f), ==, 1024 * MIB);

	/* a balloon somebody else set: nothing is grown */
	restart(f, 0);
	f->vm->max_pages = 512 * MIB;
	f->vm->has_vmem = TRUE;
	f->vm->vmem = (VmbcVirtioMem){384 * MIB, 128 * MIB, 128 * MIB, 2 * MIB, 128 * MIB};
	vmbc_engine_restore_balloon(f->engine, f->vm, VMBC_BALLOON_OK, &claim);
	sample(f, 240 * MIB, 300 * MIB);
	g_assert_cmpint(f->vm->max_pages, ==, 512 * MIB);
	g_assert_cmpint(f->vm->vmem.max, ==, 128 * MIB);
}

/*
 * A balloon somebody set by hand between two runs (not where vmbcd left it)
 * is theirs: the claim is dropped, and raising the limit leaves it alone.
 */
static void
test_restart_other_balloon_left_alone(Fixture *f, gconstpointer data)
{
	VmbcBalloonClaim claim = inflate_for_limit(f);
	guint64 changes;

	/* the balloon's size already known when the claim comes: decided at once */
	restart(f, 0);
	set_limits(f, 256 * MIB, 256 * MIB);
	sample(f, 240 * MIB, 700 * MIB);
	changes = vmbc_engine_get_balloon_changes(f->engine);
	vmbc_engine_restore_balloon(f->engine, f->vm, VMBC_BALLOON_UNKNOWN, &claim);
	g_assert_false(f->vm->balloon_claim_unconfirmed);
	g_assert_cmpint(f->vm->balloon_claim.target, ==, -1);
	g_assert_cmpint(f->vm->balloon_target, ==, -1);
	g_assert_cmpint(vmbc_engine_get_balloon_changes(f->engine), >, changes);
	g_assert_cmpint(vmbc_beancounter_balloon_owner(f->vm), ==, VMBC_BALLOON_OWNER_OTHER);
	tick(f, 1);
	set_limits(f, VMBC_UNLIMITED, VMBC_UNLIMITED);
	g_assert_cmpuint(f->targets->len, ==, 0);

	/* set lower by hand than vmbcd had: not vmbcd's either */
	restart(f, 0);
	vmbc_engine_restore_balloon(f->engine, f->vm, VMBC_BALLOON_UNKNOWN, &claim);
	sample(f, 200 * MIB, claim.target - 64 * MIB);
	g_assert_cmpint(vmbc_beancounter_balloon_owner(f->vm), ==, VMBC_BALLOON_OWNER_OTHER);

	/* a balloon device gone: nothing to confirm */
	restart(f, 0);
	vmbc_engine_restore_balloon(f->engine, f->vm, VMBC_BALLOON_UNKNOWN, &claim);
	vmbc_engine_balloon_failed(f->engine, f->vm, VMBC_BALLOON_NO_DEVICE, NULL, f->now);
	g_assert_false(f->vm->balloon_claim_unconfirmed);
	g_assert_cmpint(f->vm->balloon_claim.target, ==, -1);
}

/* The driver state the last run learned is kept until the balloon proves otherwise. */
static void
test_restart_no_driver_kept(Fixture *f, gconstpointer data)
{
	vmbc_engine_restore_balloon(f->engine, f->vm, VMBC_BALLOON_NO_DRIVER, NULL);
	g_assert_cmpint(f->vm->balloon, ==, VMBC_BALLOON_NO_DRIVER);
	sample(f, 300 * MIB, 1024 * MIB);
	stats(f, 500 * MIB, 400 * MIB, 100 * MIB, 0);
	g_assert_cmpint(f->vm->balloon, ==, VMBC_BALLOON_NO_DRIVER);
	/* a limit is refused at once, as in the run that found no driver */
	set_limits(f, 256 * MIB, 256 * MIB);
	g_assert_cmpuint(f->targets->len, ==, 0);
	g_assert_cmpuint(count_events(f, VMBC_EVENT_RECLAIM_FAILED), ==, 1);
	/* the balloon moved: there is a driver after all */
	sample(f, 300 * MIB, 1000 * MIB);
	g_assert_cmpint(f->vm->balloon, ==, VMBC_BALLOON_OK);

	/* a state the backend tells afresh at every adoption is not restored */
	restart(f, 0);
	vmbc_engine_restore_balloon(f->engine, f->vm, VMBC_BALLOON_NO_DEVICE, NULL);
	g_assert_cmpint(f->vm->balloon, ==, VMBC_BALLOON_UNKNOWN);
}

/* What vmbcd set, why and from what size, across reclaims of each kind. */
static void
test_claim_follows_targets(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	sample(f, 300 * MIB, 900 * MIB); /* somebody else's balloon */
	g_assert_cmpint(vmbc_beancounter_balloon_owner(f->vm), ==, VMBC_BALLOON_OWNER_OTHER);
	g_assert_true(vmbc_engine_reclaim(f->engine, f->vm, 100 * MIB, f->now, NULL, NULL, &error));
	g_assert_cmpint(f->vm->balloon_claim.target, ==, 800 * MIB);
	g_assert_cmpint(f->vm->balloon_claim.before, ==, 900 * MIB);
	g_assert_cmpint(f->vm->balloon_claim.reason, ==, VMBC_BALLOON_FOR_RECLAIM);
	g_assert_cmpint(f->vm->balloon_claim.limit, ==, VMBC_UNLIMITED);
	sample(f, 300 * MIB, 800 * MIB);
	tick(f, 1);
	/* a limit takes more: the reason follows what made the balloon smaller last */
	set_limits(f, 256 * MIB, 256 * MIB);
	g_assert_cmpint(f->vm->balloon_claim.reason, ==, VMBC_BALLOON_FOR_LIMIT);
	g_assert_cmpint(f->vm->balloon_claim.limit, ==, 256 * MIB);
	g_assert_cmpint(f->vm->balloon_claim.before, ==, 900 * MIB);
	sample(f, 240 * MIB, last_target(f));
	tick(f, 1);
	/* a raise to below the full size keeps the claim and its reason */
	set_limits(f, 512 * MIB, 512 * MIB);
	g_assert_cmpint(f->vm->balloon_claim.target, ==, 512 * MIB);
	g_assert_cmpint(f->vm->balloon_claim.reason, ==, VMBC_BALLOON_FOR_LIMIT);
	g_assert_cmpint(f->vm->balloon_claim.limit, ==, 256 * MIB);
}

/* Ids across a restart: a VM that comes back has its own, new VMs get unused ones. */
static void
test_ids_kept(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	VmbcBeancounter *a, *b, *c;
	GPtrArray *vms;

	restart(f, 4);
	g_assert_cmpuint(f->vm->id, ==, 4);
	vmbc_engine_reserve_ids(f->engine, 7);
	a = vmbc_engine_add(f->engine, "new", 512 * MIB, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(a->id, ==, 8);
	b = vmbc_engine_add_with_id(f->engine, "back", 512 * MIB, 2, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(b->id, ==, 2);
	/* an id another VM has (a damaged state file): a new one, not a clash */
	c = vmbc_engine_add_with_id(f->engine, "clash", 512 * MIB, 4, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(c->id, ==, 9);
	vms = vmbc_engine_get_vms(f->engine);
	g_assert_cmpuint(vms->len, ==, 4);
	for (guint i = 1; i < vms->len; i++)
		g_assert_cmpuint(((VmbcBeancounter *)g_ptr_array_index(vms, i - 1))->id, <,
				 ((VmbcBeancounter *)g_ptr_array_index(vms, i))->id);
}

/* The number of VMs vmbc_engine_take_balloon_changed() gives, and whether @bc is one. */
static guint
take_changed(Fixture *f, VmbcBeancounter *bc, gboolean *found)
{
	g_autoptr(GPtrArray) changed = vmbc_engine_take_balloon_changed(f->engine);

	*found = bc != NULL && g_ptr_array_find(changed, bc, NULL);
	return changed->len;
}

/*
 * Whoever keeps the balloon claims elsewhere is given the VMs whose claim
 * changed, each once, not every VM; a VM removed meanwhile is not among them.
 */
static void
test_claim_changed_vms(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	VmbcBeancounter *db = vmbc_engine_add(f->engine, "db1", 1024 * MIB, &error);
	VmbcSample s = {.physpages = 300 * MIB, .vmmpages = 10 * MIB, .balloon_actual = 1024 * MIB};
	gboolean found;

	g_assert_no_error(error);
	sample(f, 300 * MIB, 1024 * MIB);
	vmbc_engine_sample(f->engine, db, &s, f->now);
	(void)take_changed(f, NULL, &found);
	g_assert_cmpuint(take_changed(f, NULL, &found), ==, 0);

	g_assert_true(vmbc_engine_reclaim(f->engine, f->vm, 256 * MIB, f->now, NULL, NULL, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(take_changed(f, f->vm, &found), ==, 1);
	g_assert_true(found);
	g_assert_cmpuint(take_changed(f, NULL, &found), ==, 0);

	g_assert_true(vmbc_engine_reclaim(f->engine, db, 256 * MIB, f->now, NULL, NULL, &error));
	g_assert_no_error(error);
	vmbc_engine_remove(f->engine, db);
	g_assert_cmpuint(take_changed(f, NULL, &found), ==, 0);
}

#define ADD(path, fn)                                                                              \
	g_test_add("/vmbc/engine/" path, Fixture, NULL, fixture_setup, fn, fixture_teardown)

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	/* failures are logged as warnings for the operator; they are what these tests provoke */
	g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
	ADD("charge-uncharge", test_charge_uncharge);
	ADD("host/aggregates", test_host_aggregates);
	ADD("limit-hit/done", test_limit_hit_done);
	ADD("limit-hit/no-progress", test_limit_hit_no_progress);
	ADD("limit-hit/slow-progress", test_limit_hit_slow_progress);
	ADD("limit-hit/no-balloon-device", test_limit_hit_no_device);
	ADD("limit-hit/no-balloon-driver", test_limit_hit_no_driver);
	ADD("limit-hit/escalate", test_limit_hit_escalate);
	ADD("limit-hit/escalate-auto", test_limit_hit_escalate_auto);
	ADD("limit-hit/stalled", test_limit_hit_stalled);
	ADD("limit-hit/moving-not-stalled", test_limit_hit_moving_not_stalled);
	ADD("limit-hit/memory-high-follows-limit", test_memory_high_follows_limit);
	ADD("limit-hit/memory-high-lifted-by-hand", test_memory_high_lifted_by_hand);
	ADD("limit-hit/trust-guest", test_limit_hit_trust_guest);
	ADD("limit-hit/guest-does-not-pace", test_limit_hit_guest_does_not_pace);
	ADD("limit-hit/reports-nothing-available", test_limit_hit_reports_nothing_available);
	ADD("limit-hit/old-stats", test_limit_hit_old_stats);
	ADD("limit-hit/rollback", test_limit_hit_rollback);
	ADD("limit-hit/retries-no-ratchet", test_limit_hit_retries_no_ratchet);
	ADD("limit-hit/stale-stats", test_limit_hit_stale_stats);
	ADD("limit-hit/late-stats", test_limit_hit_late_stats);
	ADD("ksm-fractions", test_ksm_fractions);
	ADD("change/limit-raised-releases", test_limit_raised_releases);
	ADD("change/limit-raised-ends-barrier-reclaim", test_limit_raised_ends_barrier_reclaim);
	ADD("limit-hit/balloon-failed-async", test_balloon_failed_async);
	ADD("guarantee/floor", test_guarantee_floor);
	ADD("guarantee/raise-deflates", test_guarantee_raise_deflates);
	ADD("change/sync-success", test_change_sync_success);
	ADD("change/within-limit", test_change_within_limit_immediate);
	ADD("change/guarantee-error", test_change_guarantee_error);
	ADD("change/no-progress-error", test_change_no_progress_error);
	ADD("change/invalid", test_change_invalid);
	ADD("change/vanished", test_change_vanished);
	ADD("barrier-hit/gentle", test_barrier_gentle);
	ADD("barrier-hit/rate-limited", test_barrier_rate_limited);
	ADD("deflate/pressure", test_deflate_on_pressure);
	ADD("deflate/near-barrier", test_deflate_not_over_barrier);
	ADD("deflate/trend", test_deflate_trend);
	ADD("deflate/after-own-inflation", test_deflate_after_own_inflation);
	ADD("deflate/swap-in", test_deflate_swap_in);
	ADD("deflate/major-faults", test_deflate_major_faults);
	ADD("deflate/fast-step", test_deflate_fast_step);
	ADD("deflate/not-pressured", test_deflate_not_pressured);
	ADD("deflate/limit", test_deflate_limit);
	ADD("deflate/lying", test_deflate_lying);
	ADD("lying-stats", test_lying_stats);
	ADD("reclaim/manual", test_manual_reclaim);
	ADD("vmmpages/counts-once", test_vmmpages_counts_once);
	ADD("host/reclaims-idle-first", test_host_reclaims_idle_first);
	ADD("host/limit-fails-at-guarantee", test_host_limit_fails_at_guarantee);
	ADD("config/reload-keeps-counters", test_config_reload_keeps_counters);
	ADD("stats/watch", test_wants_stats_watch);
	ADD("restart/readopts-own-balloon", test_restart_readopts_own_balloon);
	ADD("restart/virtio-mem", test_restart_virtio_mem);
	ADD("restart/other-balloon-left-alone", test_restart_other_balloon_left_alone);
	ADD("restart/no-driver-kept", test_restart_no_driver_kept);
	ADD("restart/ids-kept", test_ids_kept);
	ADD("balloon-claim/follows-targets", test_claim_follows_targets);
	ADD("balloon-claim/changed-vms", test_claim_changed_vms);
	g_test_add_func("/vmbc/engine/escalation-names", test_escalation_names);
	return g_test_run();
}
