/*
 * test-schedule.c: the headroom schedule of held reads (vmbc-schedule.h), on
 * the engine with a fake clock: a guest that grows at the ceiling is never
 * seen more than one tick's growth past a bound; a VM near a bound is read
 * every tick; a wake reads everyone.
 */
#include "vmbc-engine-private.h"
#include "vmbc-host.h"
#include "vmbc-schedule.h"

#define MIB ((gint64)((1 << 20) / vmbc_page_size()))
#define SEC G_GINT64_CONSTANT(1000000)

typedef struct {
	VmbcEngine *engine;
	gint64 now;
} Fixture;

static gboolean
accept_balloon(VmbcEngine *engine, VmbcBeancounter *bc, gint64 target, gpointer user_data,
	       GError **error)
{
	return TRUE;
}

static const VmbcActuator actuator = {.set_balloon = accept_balloon};

static void
setup_with(Fixture *f, gint64 tick_usec, gint64 ceiling_pages)
{
	VmbcEngineConfig config;

	vmbc_engine_config_init(&config);
	config.tick_usec = tick_usec;
	config.growth_ceiling_pages = ceiling_pages;
	f->engine = vmbc_engine_new(&config);
	vmbc_engine_set_actuator(f->engine, &actuator, f);
	f->now = 1000 * SEC;
}

static void
teardown(Fixture *f)
{
	vmbc_engine_free(f->engine);
}

static VmbcBeancounter *
add_vm(Fixture *f, const gchar *name, gint64 barrier, gint64 limit)
{
	g_autoptr(GError) error = NULL;
	VmbcBeancounter *bc = vmbc_engine_add(f->engine, name, 4096 * MIB, &error);

	g_assert_no_error(error);
	g_assert_true(vmbc_engine_set_limits(f->engine, bc, VMBC_RES_PHYSPAGES, barrier, limit,
					     f->now, NULL, NULL, &error));
	g_assert_no_error(error);
	return bc;
}

/* A backend's tick for @bc: reads held when the engine says so. Returns whether it read. */
static gboolean
maybe_read(Fixture *f, VmbcBeancounter *bc, gint64 held)
{
	VmbcSample s = {.physpages = held, .vmmpages = 10 * MIB, .balloon_actual = -1};

	if (!vmbc_engine_sample_due(f->engine, bc, f->now))
		return FALSE;
	vmbc_engine_sample(f->engine, bc, &s, f->now);
	return TRUE;
}

/*
 * A guest that grows at exactly the ceiling from far below its barrier and
 * limit: whenever it is past a bound without having been read since it
 * crossed, it is at most one tick's growth past it; and it was read less
 * often than every tick while it was far.
 */
static void
run_growth(gint64 tick_usec, gint64 start_held)
{
	Fixture fx, *f = &fx;
	gint64 ceiling = 64 * MIB;
	gint64 bounds[] = {600 * MIB, 1024 * MIB};
	VmbcBeancounter *bc;
	gint64 t0, seen = -1;
	guint reads = 0, ticks = 0;

	setup_with(f, tick_usec, ceiling);
	bc = add_vm(f, "grows", bounds[0], bounds[1]);
	t0 = f->now;
	for (; f->now - t0 < 30 * SEC; f->now += tick_usec) {
		/* held at this instant, growing at the ceiling (pages a second) */
		gint64 held =
			start_held + (gint64)((gdouble)ceiling * (gdouble)(f->now - t0) / 1e6);

		ticks++;
		if (maybe_read(f, bc, held)) {
			reads++;
			seen = held;
		}
		for (guint b = 0; b < G_N_ELEMENTS(bounds); b++) {
			/* past the bound, and the last read still showed it under: unseen */
			if (held > bounds[b] && seen <= bounds[b])
				g_assert_cmpint(held - bounds[b], <=,
						ceiling * tick_usec / SEC + 1);
		}
	}
	/* it was read once it crossed, and skipped reads while it was far */
	g_assert_cmpint(seen, >, bounds[1]);
	g_assert_cmpuint(reads, <, ticks);
	teardown(f);
}

static void
test_ceiling_growth_1s(void)
{
	run_growth(SEC, 100 * MIB);
	run_growth(SEC, 101 * MIB + MIB / 3);
}

static void
test_ceiling_growth_100ms(void)
{
	run_growth(SEC / 10, 100 * MIB);
	run_growth(SEC / 10, 7 * MIB);
}

/* Within one tick's growth of its limit: read every tick, though it holds still. */
static void
test_near_bound_every_tick(void)
{
	Fixture fx, *f = &fx;
	VmbcBeancounter *bc;

	setup_with(f, SEC, 64 * MIB);
	bc = add_vm(f, "near", 1024 * MIB, 1024 * MIB);
	for (guint i = 0; i < 20; i++, f->now += SEC)
		g_assert_true(maybe_read(f, bc, 1024 * MIB - 60 * MIB));
	teardown(f);
}

/* Far from every bound, it is read at most VMBC_SCHEDULE_MAX_USEC apart; a wake reads it now. */
static void
test_wake_reads_everyone(void)
{
	Fixture fx, *f = &fx;
	g_autoptr(GPtrArray) vms = g_ptr_array_new();
	guint due = 0;

	setup_with(f, SEC, 64 * MIB);
	for (guint i = 0; i < 100; i++) {
		g_autofree gchar *name = g_strdup_printf("vm%u", i);
		g_ptr_array_add(vms, add_vm(f, name, VMBC_UNLIMITED, VMBC_UNLIMITED));
	}
	for (guint i = 0; i < vms->len; i++)
		g_assert_true(maybe_read(f, g_ptr_array_index(vms, i), 100 * MIB));
	f->now += SEC;
	for (guint i = 0; i < vms->len; i++)
		g_assert_false(
			vmbc_engine_sample_due(f->engine, g_ptr_array_index(vms, i), f->now));
	vmbc_engine_wake_all(f->engine);
	for (guint i = 0; i < vms->len; i++)
		due += maybe_read(f, g_ptr_array_index(vms, i), 100 * MIB);
	g_assert_cmpuint(due, ==, vms->len);
	/* the host's PSI trigger does the same */
	f->now += SEC;
	g_assert_false(vmbc_engine_sample_due(f->engine, g_ptr_array_index(vms, 0), f->now));
	vmbc_engine_host_pressure(f->engine, f->now);
	for (guint i = 0; i < vms->len; i++)
		g_assert_true(maybe_read(f, g_ptr_array_index(vms, i), 100 * MIB));
	/* and the longest wait is the schedule's maximum */
	f->now += VMBC_SCHEDULE_MAX_USEC - 1;
	g_assert_false(vmbc_engine_sample_due(f->engine, g_ptr_array_index(vms, 0), f->now));
	f->now += 1;
	g_assert_true(vmbc_engine_sample_due(f->engine, g_ptr_array_index(vms, 0), f->now));
	teardown(f);
}

/* A new limit is read against at the next tick, whatever the old headroom was. */
static void
test_new_limit_reads(void)
{
	Fixture fx, *f = &fx;
	VmbcBeancounter *bc;
	g_autoptr(GError) error = NULL;

	setup_with(f, SEC, 64 * MIB);
	bc = add_vm(f, "vm", VMBC_UNLIMITED, VMBC_UNLIMITED);
	g_assert_true(maybe_read(f, bc, 500 * MIB));
	f->now += SEC;
	g_assert_false(vmbc_engine_sample_due(f->engine, bc, f->now));
	g_assert_true(vmbc_engine_set_limits(f->engine, bc, VMBC_RES_PHYSPAGES, 2048 * MIB,
					     2048 * MIB, f->now, NULL, NULL, &error));
	g_assert_true(vmbc_engine_sample_due(f->engine, bc, f->now));
	teardown(f);
}

/*
 * A guest seen growing faster than the ceiling is assumed to grow that fast:
 * read every tick near the bound it nears at that pace.
 */
static void
test_faster_than_ceiling(void)
{
	Fixture fx, *f = &fx;
	VmbcBeancounter *bc;

	setup_with(f, SEC, 16 * MIB);
	bc = add_vm(f, "fast", 1700 * MIB, 1700 * MIB);
	g_assert_true(maybe_read(f, bc, 100 * MIB));
	/* 1600 MiB of headroom at 16 MiB/s: not due before the schedule's maximum */
	f->now += SEC;
	g_assert_false(vmbc_engine_sample_due(f->engine, bc, f->now));
	/* it grew 1400 MiB in the 5 s the schedule allows at most: 280 MiB/s */
	f->now += VMBC_SCHEDULE_MAX_USEC - SEC;
	g_assert_true(maybe_read(f, bc, 1500 * MIB));
	g_assert_cmpfloat(
		vmbc_schedule_rate(&(VmbcScheduleParams){.ceiling_pages = 16 * MIB}, bc, f->now),
		>=, 280.0 * (gdouble)MIB - 1);
	/* 200 MiB left, at 280 MiB/s: under a tick, so the next tick reads it */
	f->now += SEC;
	g_assert_true(vmbc_engine_sample_due(f->engine, bc, f->now));
	teardown(f);
}

/*
 * The host's headroom: 100 VMs far from their own bounds share 1000 MiB of
 * headroom under the host's barrier, 10 MiB each, less than a tick of growth
 * at the ceiling. Under a budget set by hand, that share is all a VM may grow
 * unseen, so each is read every tick; under a budget the host measures every
 * tick (here the VMs' cgroup), the host sees its own barrier whatever the
 * VMs' reads, and they are read by their own headroom.
 */
static void
run_host_share(VmbcBudgetSource source, gboolean every_tick)
{
	Fixture fx, *f = &fx;
	g_autoptr(GPtrArray) vms = g_ptr_array_new();
	VmbcBeancounter *host;
	guint due = 0;

	setup_with(f, SEC, 64 * MIB);
	host = vmbc_engine_get_host(f->engine);
	for (guint i = 0; i < 100; i++) {
		g_autofree gchar *name = g_strdup_printf("vm%u", i);
		g_ptr_array_add(vms, add_vm(f, name, VMBC_UNLIMITED, VMBC_UNLIMITED));
	}
	for (guint i = 0; i < vms->len; i++)
		g_assert_true(maybe_read(f, g_ptr_array_index(vms, i), 100 * MIB));
	if (source == VMBC_BUDGET_CONFIG) {
		g_assert_true(vmbc_engine_set_limits(f->engine, host, VMBC_RES_PHYSPAGES,
						     11000 * MIB, 12000 * MIB, f->now, NULL, NULL,
						     NULL));
	} else {
		/* a limit whose barrier (less host-margin, 5 %) is 11000 MiB */
		VmbcHostSignals sig = {.budget = 11000 * MIB * 100 / 95,
				       .source = source,
				       .psi_some_total = -1,
				       .psi_full_total = -1,
				       .swap_in = -1,
				       .swap_out = -1};
		vmbc_engine_set_host_signals(f->engine, &sig, f->now);
	}
	g_assert_false(vmbc_parm_over_barrier(&host->parm[VMBC_RES_PHYSPAGES]));
	/* the reads after the budget is known set when each VM is read next */
	f->now += 5 * SEC;
	for (guint i = 0; i < vms->len; i++)
		g_assert_true(maybe_read(f, g_ptr_array_index(vms, i), 100 * MIB));
	f->now += SEC;
	for (guint i = 0; i < vms->len; i++)
		due += maybe_read(f, g_ptr_array_index(vms, i), 100 * MIB);
	g_assert_cmpuint(due, ==, every_tick ? vms->len : 0);
	teardown(f);
}

static void
test_host_share(void)
{
	run_host_share(VMBC_BUDGET_CONFIG, TRUE);
	run_host_share(VMBC_BUDGET_CGROUP_V1, FALSE);
	run_host_share(VMBC_BUDGET_HOST_RAM, FALSE);
}

/* With no ceiling (growth-ceiling = 0) every VM is read every tick. */
static void
test_no_ceiling(void)
{
	Fixture fx, *f = &fx;
	VmbcBeancounter *bc;

	setup_with(f, SEC, 0);
	bc = add_vm(f, "vm", VMBC_UNLIMITED, VMBC_UNLIMITED);
	for (guint i = 0; i < 10; i++, f->now += SEC)
		g_assert_true(maybe_read(f, bc, 100 * MIB));
	teardown(f);
}

/* A VM in a limit reclaim is read every tick, so that its result is seen at the next. */
static void
test_reclaim_every_tick(void)
{
	Fixture fx, *f = &fx;
	VmbcBeancounter *bc;

	setup_with(f, SEC, 64 * MIB);
	bc = add_vm(f, "vm", 200 * MIB, 200 * MIB);
	bc->balloon = VMBC_BALLOON_OK;
	g_assert_true(maybe_read(f, bc, 300 * MIB));
	vmbc_engine_tick(f->engine, f->now);
	g_assert_cmpint(vmbc_physpages_get_reclaim(bc), ==, VMBC_RECLAIM_LIMIT);
	f->now += SEC;
	g_assert_true(maybe_read(f, bc, 190 * MIB));
	vmbc_engine_tick(f->engine, f->now);
	g_assert_cmpint(vmbc_physpages_get_reclaim(bc), ==, VMBC_RECLAIM_IDLE);
	teardown(f);
}

/*
 * The policies of a VM are skipped at a tick only while nothing they read
 * changed and nothing of theirs is under way: an inflated balloon (a deflate
 * may be due), a new sample or guest stats, a guarantee above the balloon.
 */
static void
test_quiet_tick(void)
{
	Fixture fx, *f = &fx;
	VmbcBeancounter *bc;
	VmbcSample s = {.physpages = 100 * MIB, .vmmpages = 10 * MIB, .balloon_actual = -1};
	VmbcGuestStats gs = {.available = 3000 * MIB,
			     .free = 3000 * MIB,
			     .caches = 0,
			     .total = 4096 * MIB,
			     .swap_in = 0,
			     .major_faults = 0,
			     .last_update = 1700000000};
	g_autoptr(GError) error = NULL;

	setup_with(f, SEC, 64 * MIB);
	bc = add_vm(f, "vm", VMBC_UNLIMITED, VMBC_UNLIMITED);
	vmbc_engine_balloon_actual(f->engine, bc, 4096 * MIB, f->now);
	vmbc_engine_sample(f->engine, bc, &s, f->now);
	g_assert_false(vmbc_engine_tick_quiet(f->engine, bc));
	vmbc_engine_tick(f->engine, f->now);
	g_assert_true(vmbc_engine_tick_quiet(f->engine, bc));
	/* the guest speaks: its policies run at the next tick */
	vmbc_engine_set_guest_stats(f->engine, bc, &gs);
	g_assert_false(vmbc_engine_tick_quiet(f->engine, bc));
	f->now += SEC;
	vmbc_engine_tick(f->engine, f->now);
	g_assert_true(vmbc_engine_tick_quiet(f->engine, bc));
	/* an inflated balloon: a deflate may be due at any tick */
	vmbc_engine_balloon_actual(f->engine, bc, 3000 * MIB, f->now);
	f->now += SEC;
	vmbc_engine_tick(f->engine, f->now);
	g_assert_false(vmbc_engine_tick_quiet(f->engine, bc));
	vmbc_engine_balloon_actual(f->engine, bc, 4096 * MIB, f->now);
	f->now += SEC;
	vmbc_engine_tick(f->engine, f->now);
	g_assert_true(vmbc_engine_tick_quiet(f->engine, bc));
	/* a change of the guarantee is a change */
	g_assert_true(vmbc_engine_set_guarantee(f->engine, bc, 512 * MIB, f->now, &error));
	g_assert_no_error(error);
	f->now += SEC;
	vmbc_engine_tick(f->engine, f->now);
	g_assert_true(vmbc_engine_tick_quiet(f->engine, bc));
	/* over a bound: never quiet */
	g_assert_true(vmbc_engine_set_limits(f->engine, bc, VMBC_RES_PHYSPAGES, 50 * MIB,
					     VMBC_UNLIMITED, f->now, NULL, NULL, &error));
	vmbc_engine_tick(f->engine, f->now);
	g_assert_false(vmbc_engine_tick_quiet(f->engine, bc));
	teardown(f);
}

/*
 * A VM in a limit reclaim is followed between ticks: a sample that shows held
 * back within the limit ends the reclaim when vmbc_engine_follow() runs, not
 * at the next tick; then it is followed no more.
 */
static void
test_follow_between_ticks(void)
{
	Fixture fx, *f = &fx;
	VmbcBeancounter *bc;

	setup_with(f, SEC, 64 * MIB);
	bc = add_vm(f, "vm", 200 * MIB, 200 * MIB);
	bc->balloon = VMBC_BALLOON_OK;
	/* within a tick's growth of its limit: read at every tick */
	g_assert_true(maybe_read(f, bc, 180 * MIB));
	vmbc_engine_tick(f->engine, f->now);
	g_assert_false(vmbc_engine_is_following(f->engine, bc));
	f->now += SEC;
	g_assert_true(maybe_read(f, bc, 300 * MIB));
	vmbc_engine_tick(f->engine, f->now);
	g_assert_true(vmbc_engine_is_following(f->engine, bc));
	f->now += SEC / 10;
	g_assert_true(maybe_read(f, bc, 250 * MIB));
	vmbc_engine_follow(f->engine, f->now);
	g_assert_true(vmbc_engine_is_following(f->engine, bc));
	f->now += SEC / 10;
	g_assert_true(maybe_read(f, bc, 190 * MIB));
	vmbc_engine_follow(f->engine, f->now);
	g_assert_cmpint(vmbc_physpages_get_reclaim(bc), ==, VMBC_RECLAIM_IDLE);
	g_assert_false(vmbc_engine_is_following(f->engine, bc));
	teardown(f);
}

/* Whether @bc is among the VMs vmbc_engine_get_following() lists. */
static gboolean
listed(Fixture *f, VmbcBeancounter *bc)
{
	g_autoptr(GPtrArray) follow = vmbc_engine_get_following(f->engine);

	return g_ptr_array_find(follow, bc, NULL);
}

/*
 * The passes between ticks visit only the VMs the engine follows: a reclaim
 * started by the tick, by a new limit below held or by the operator lists
 * its VM, in id order; a VM far from its bounds, one whose reclaim ended and
 * one removed are not listed.
 */
static void
test_following_set(void)
{
	Fixture fx, *f = &fx;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) follow = NULL;
	VmbcBeancounter *quiet, *a, *b, *c;

	setup_with(f, SEC, 64 * MIB);
	quiet = add_vm(f, "quiet", 200 * MIB, 200 * MIB);
	a = add_vm(f, "a", 200 * MIB, 200 * MIB);
	b = add_vm(f, "b", 200 * MIB, 200 * MIB);
	c = add_vm(f, "c", 200 * MIB, 200 * MIB);
	a->balloon = b->balloon = c->balloon = quiet->balloon = VMBC_BALLOON_OK;
	g_assert_true(maybe_read(f, quiet, 20 * MIB));
	g_assert_true(maybe_read(f, a, 180 * MIB));
	g_assert_true(maybe_read(f, b, 180 * MIB));
	g_assert_true(maybe_read(f, c, 180 * MIB));
	vmbc_engine_tick(f->engine, f->now);
	follow = vmbc_engine_get_following(f->engine);
	g_assert_cmpuint(follow->len, ==, 0);
	g_clear_pointer(&follow, g_ptr_array_unref);

	/* the tick starts c's reclaim, a new limit b's, the operator a's */
	f->now += SEC;
	g_assert_true(maybe_read(f, c, 300 * MIB));
	vmbc_engine_tick(f->engine, f->now);
	g_assert_true(listed(f, c));
	g_assert_true(vmbc_engine_set_limits(f->engine, b, VMBC_RES_PHYSPAGES, 100 * MIB, 100 * MIB,
					     f->now, NULL, NULL, &error));
	g_assert_no_error(error);
	g_assert_true(vmbc_engine_reclaim(f->engine, a, 50 * MIB, f->now, NULL, NULL, &error));
	g_assert_no_error(error);
	follow = vmbc_engine_get_following(f->engine);
	g_assert_cmpuint(follow->len, ==, 3);
	g_assert_true(g_ptr_array_index(follow, 0) == a);
	g_assert_true(g_ptr_array_index(follow, 1) == b);
	g_assert_true(g_ptr_array_index(follow, 2) == c);
	g_clear_pointer(&follow, g_ptr_array_unref);
	g_assert_false(listed(f, quiet));

	/* c back within its limit: no longer listed; b removed: gone */
	f->now += SEC / 10;
	g_assert_true(maybe_read(f, c, 190 * MIB));
	vmbc_engine_follow(f->engine, f->now);
	g_assert_false(vmbc_engine_is_following(f->engine, c));
	g_assert_false(listed(f, c));
	vmbc_engine_remove(f->engine, b);
	g_assert_false(listed(f, b));
	g_assert_true(listed(f, a));
	teardown(f);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/vmbc/schedule/ceiling-growth/tick-1s", test_ceiling_growth_1s);
	g_test_add_func("/vmbc/schedule/ceiling-growth/tick-100ms", test_ceiling_growth_100ms);
	g_test_add_func("/vmbc/schedule/near-bound-every-tick", test_near_bound_every_tick);
	g_test_add_func("/vmbc/schedule/wake-reads-everyone", test_wake_reads_everyone);
	g_test_add_func("/vmbc/schedule/new-limit-reads", test_new_limit_reads);
	g_test_add_func("/vmbc/schedule/faster-than-ceiling", test_faster_than_ceiling);
	g_test_add_func("/vmbc/schedule/no-ceiling", test_no_ceiling);
	g_test_add_func("/vmbc/schedule/host-share", test_host_share);
	g_test_add_func("/vmbc/schedule/reclaim-every-tick", test_reclaim_every_tick);
	g_test_add_func("/vmbc/schedule/quiet-tick", test_quiet_tick);
	g_test_add_func("/vmbc/schedule/follow-between-ticks", test_follow_between_ticks);
	g_test_add_func("/vmbc/schedule/following-set", test_following_set);
	return g_test_run();
}
