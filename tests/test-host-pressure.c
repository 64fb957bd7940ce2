/*
 * test-host-pressure.c: the host's pressure controller (vmbc-host.c) with a
 * fake clock and a scripted actuator: the budget from the host's signals,
 * whom it takes from, the rate limit, the guarantee floor, the give-back and
 * its hysteresis, the cap on a guest's word about its idle memory, and how
 * often the host measures that memory.
 */
#include "vmbc-engine.h"

#define MIB ((gint64)((1 << 20) / vmbc_page_size()))
#define SEC G_GINT64_CONSTANT(1000000)

typedef struct {
	VmbcEngine *engine;
	VmbcBeancounter *idle; /* a VM whose memory the host measured idle */
	VmbcBeancounter *busy; /* one the host measured busy */
	gint64 now;
	gint64 psi_total; /* usec stalled, cumulative, as the kernel counts */
	gint64 swap_out;
	GPtrArray *acted;  /* VmbcBeancounter* per balloon request, in order */
	GArray *targets;   /* gint64 */
	GPtrArray *events; /* gchar* "TYPE message" */
} Fixture;

static gboolean
fake_set_balloon(VmbcEngine *engine, VmbcBeancounter *bc, gint64 target, gpointer user_data,
		 GError **error)
{
	Fixture *f = user_data;
	g_ptr_array_add(f->acted, bc);
	g_array_append_val(f->targets, target);
	return TRUE;
}

static void
on_event(VmbcEngine *engine, const VmbcEvent *ev, gpointer user_data)
{
	Fixture *f = user_data;
	g_ptr_array_add(f->events,
			g_strdup_printf("%s %s", vmbc_event_type_to_string(ev->type), ev->message));
}

/* A VM of 1 GiB holding @held, with its balloon at full size. */
static VmbcBeancounter *
add_vm(Fixture *f, const gchar *name, gint64 held)
{
	g_autoptr(GError) error = NULL;
	VmbcBeancounter *bc = vmbc_engine_add(f->engine, name, 1024 * MIB, &error);
	VmbcSample s = {.physpages = held, .vmmpages = -1, .balloon_actual = 1024 * MIB};

	g_assert_no_error(error);
	vmbc_engine_sample(f->engine, bc, &s, f->now);
	bc->balloon = VMBC_BALLOON_OK;
	return bc;
}

/* The guest's word: @available and @free of its 1 GiB. */
static void
guest_says(Fixture *f, VmbcBeancounter *bc, gint64 available, gint64 free_pages)
{
	static gint64 stamp = 100;
	VmbcGuestStats st = {.available = available,
			     .free = free_pages,
			     .caches = 0,
			     .total = 1024 * MIB,
			     .swap_in = 0,
			     .major_faults = 0,
			     .last_update = ++stamp};
	vmbc_engine_set_guest_stats(f->engine, bc, &st);
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	VmbcEngineConfig config;
	VmbcActuator act = {fake_set_balloon, NULL};

	vmbc_engine_config_init(&config);
	config.escalation = VMBC_ESCALATE_NONE;
	config.host_interval_usec = 2 * SEC;
	config.giveback_delay_usec = 5 * SEC;
	f->engine = vmbc_engine_new(&config);
	f->acted = g_ptr_array_new();
	f->targets = g_array_new(FALSE, FALSE, sizeof(gint64));
	f->events = g_ptr_array_new_with_free_func(g_free);
	vmbc_engine_set_actuator(f->engine, &act, f);
	vmbc_engine_set_event_func(f->engine, on_event, f);
	f->now = 1000 * SEC;
	f->idle = add_vm(f, "idle", 600 * MIB);
	f->busy = add_vm(f, "busy", 600 * MIB);
	/* the host measured both: idle writes nothing, busy 40 MiB/s (all of it in 10 s) */
	vmbc_engine_set_dirty_rate(f->engine, f->idle, 0, f->now);
	vmbc_engine_set_dirty_rate(f->engine, f->busy, 60 << 20, f->now);
	/* both say they could spare 500 MiB */
	guest_says(f, f->idle, 500 * MIB, 500 * MIB);
	guest_says(f, f->busy, 500 * MIB, 500 * MIB);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	vmbc_engine_free(f->engine);
	g_ptr_array_unref(f->acted);
	g_array_unref(f->targets);
	g_ptr_array_unref(f->events);
}

/* What the kernel says now: @budget pages for the VMs (from a cgroup), @stall_percent since the
 * last call. */
static void
signals(Fixture *f, gint64 budget, gdouble stall_percent, gint64 seconds)
{
	VmbcHostSignals sig = {
		.budget = budget,
		.source = budget < 0 ? VMBC_BUDGET_NONE : VMBC_BUDGET_CGROUP_V1,
		.psi_some_avg10 = stall_percent,
		.psi_full_avg10 = 0,
		.psi_some_total = 0,
		.psi_full_total = 0,
		.swap_in = 0,
		.swap_out = f->swap_out,
	};
	f->psi_total += (gint64)(stall_percent / 100.0 * (gdouble)(seconds * SEC));
	sig.psi_some_total = f->psi_total;
	vmbc_engine_set_host_signals(f->engine, &sig, f->now);
}

/* One tick @seconds later: the kernel's signals, then the engine; balloons arrive at once. */
static void
tick(Fixture *f, gint64 budget, gdouble stall_percent, gint64 seconds)
{
	guint before = f->acted->len;

	f->now += seconds * SEC;
	signals(f, budget, stall_percent, seconds);
	vmbc_engine_tick(f->engine, f->now);
	for (guint i = before; i < f->acted->len; i++)
		vmbc_engine_balloon_actual(f->engine, g_ptr_array_index(f->acted, i),
					   g_array_index(f->targets, gint64, i), f->now);
}

static void
resample(Fixture *f, VmbcBeancounter *bc, gint64 held)
{
	VmbcSample s = {.physpages = held, .vmmpages = -1, .balloon_actual = bc->balloon_actual};
	vmbc_engine_sample(f->engine, bc, &s, f->now);
}

static guint
count_prefix(Fixture *f, const gchar *prefix)
{
	guint n = 0;
	for (guint i = 0; i < f->events->len; i++)
		n += g_str_has_prefix(g_ptr_array_index(f->events, i), prefix);
	return n;
}

static void
test_budget_from_signals(Fixture *f, gconstpointer data)
{
	VmbcBeancounter *host = vmbc_engine_get_host(f->engine);
	const VmbcHostState *st = vmbc_engine_get_host_state(f->engine);

	tick(f, 2000 * MIB, 0, 1);
	g_assert_cmpint(host->parm[VMBC_RES_PHYSPAGES].limit, ==, 2000 * MIB);
	g_assert_cmpint(host->parm[VMBC_RES_PHYSPAGES].barrier, ==, 1900 * MIB);
	g_assert_cmpint(st->signals.source, ==, VMBC_BUDGET_CGROUP_V1);
	g_assert_cmpint(st->reason, ==, VMBC_PRESSURE_NONE);
	g_assert_cmpuint(f->acted->len, ==, 0);
	/* nothing known: unlimited, and a budget from vmbc.conf is not touched */
	tick(f, -1, 0, 1);
	g_assert_cmpint(host->parm[VMBC_RES_PHYSPAGES].limit, ==, VMBC_UNLIMITED);
	g_assert_true(vmbc_engine_set_limits(f->engine, host, VMBC_RES_PHYSPAGES, 700 * MIB,
					     800 * MIB, f->now, NULL, NULL, NULL));
	{
		VmbcHostSignals sig = {.budget = 5000 * MIB,
				       .source = VMBC_BUDGET_CONFIG,
				       .psi_some_total = -1,
				       .psi_full_total = -1,
				       .swap_in = -1,
				       .swap_out = -1};
		vmbc_engine_set_host_signals(f->engine, &sig, f->now);
	}
	g_assert_cmpint(host->parm[VMBC_RES_PHYSPAGES].limit, ==, 800 * MIB);
}

/* Over the barrier: the host takes from the VM whose memory it measured idle. */
static void
test_takes_idle_first(Fixture *f, gconstpointer data)
{
	VmbcIdleSource src;

	g_assert_cmpfloat(vmbc_engine_idle_fraction(f->engine, f->idle, &src), ==, 1.0);
	g_assert_cmpint(src, ==, VMBC_IDLE_HOST);
	g_assert_cmpfloat(vmbc_engine_idle_fraction(f->engine, f->busy, &src), <, 0.05);
	/* the VMs hold 1200 MiB of a budget of 1200: over the barrier (1140) */
	tick(f, 1200 * MIB, 0, 1);
	g_assert_cmpuint(f->acted->len, ==, 1);
	g_assert_true(g_ptr_array_index(f->acted, 0) == f->idle);
	/* at most the excess over the barrier */
	g_assert_cmpint(g_array_index(f->targets, gint64, 0), ==, 1024 * MIB - 60 * MIB);
	g_assert_cmpuint(count_prefix(f, "VMBC_HOST_RECLAIM host: pressure (barrier)"), ==, 1);
	g_assert_nonnull(strstr(g_ptr_array_index(f->events, 0), "100% idle by host"));
	/* the shares count too: the idle VM worth 20 times more is spared */
	f->idle->shares = 20000;
	resample(f, f->idle, 600 * MIB);
	tick(f, 1200 * MIB, 0, 2);
	g_assert_cmpuint(f->acted->len, ==, 2);
	g_assert_true(g_ptr_array_index(f->acted, 1) == f->busy);
}

/* Over the barrier the whole excess goes at once, however much more than a step it is. */
static void
test_takes_excess(Fixture *f, gconstpointer data)
{
	/* budget 1000 MiB (barrier 950) for 1200 held: 250 MiB over, past the limit too */
	tick(f, 1000 * MIB, 0, 1);
	g_assert_cmpuint(f->acted->len, ==, 1);
	g_assert_true(g_ptr_array_index(f->acted, 0) == f->idle);
	g_assert_cmpint(g_array_index(f->targets, gint64, 0), ==, 1024 * MIB - 250 * MIB);
	g_assert_cmpuint(count_prefix(f, "VMBC_HOST_RECLAIM host: pressure (limit)"), ==, 1);
}

/* Pressure that lasts gets one step per host-interval, not one per tick. */
static void
test_rate_limit(Fixture *f, gconstpointer data)
{
	const VmbcHostState *st = vmbc_engine_get_host_state(f->engine);

	tick(f, 4000 * MIB, 0, 1);
	/* a 30 % stall, under the budget: PSI pressure */
	tick(f, 4000 * MIB, 30, 1);
	g_assert_cmpint(st->reason, ==, VMBC_PRESSURE_PSI);
	g_assert_cmpuint(f->acted->len, ==, 1);
	g_assert_cmpint(g_array_index(f->targets, gint64, 0), ==, 1024 * MIB - 64 * MIB);
	g_assert_nonnull(strstr(g_ptr_array_index(f->events, 0), "memory stall 30.0%"));
	/* interval 2 s: not at the next tick, at the one after */
	tick(f, 4000 * MIB, 30, 1);
	g_assert_cmpuint(f->acted->len, ==, 1);
	tick(f, 4000 * MIB, 30, 1);
	g_assert_cmpuint(f->acted->len, ==, 2);
	/* a stall under psi-target (5 %) is no pressure */
	tick(f, 4000 * MIB, 2, 2);
	g_assert_cmpint(st->reason, ==, VMBC_PRESSURE_NONE);
	g_assert_cmpuint(f->acted->len, ==, 2);
	/* the kernel's trigger acts at once, within the same rate limit */
	f->now += 2 * SEC;
	vmbc_engine_host_pressure(f->engine, f->now);
	g_assert_cmpuint(f->acted->len, ==, 3);
	g_assert_cmpuint(st->triggers, ==, 1);
	f->now += SEC / 2;
	vmbc_engine_host_pressure(f->engine, f->now);
	g_assert_cmpuint(f->acted->len, ==, 3);
	/* swapping out is pressure too */
	tick(f, 4000 * MIB, 0, 3);
	f->swap_out += 100;
	tick(f, 4000 * MIB, 0, 2);
	g_assert_cmpint(st->reason, ==, VMBC_PRESSURE_SWAP);
	g_assert_cmpuint(f->acted->len, ==, 4);
}

/* Over the limit anything above the guarantee goes, and nothing below it. */
static void
test_guarantee_floor(Fixture *f, gconstpointer data)
{
	VmbcBeancounter *host = vmbc_engine_get_host(f->engine);
	g_autoptr(GError) error = NULL;

	g_assert_true(vmbc_engine_set_guarantee(f->engine, f->idle, 900 * MIB, f->now, &error));
	g_assert_true(vmbc_engine_set_guarantee(f->engine, f->busy, 1000 * MIB, f->now, &error));
	/* the busy one's word says it has nothing to spare: only a hard step may take */
	guest_says(f, f->busy, 0, 0);
	/* budget 800 MiB for 1200 held: over the limit */
	for (guint i = 0; i < 10; i++)
		tick(f, 800 * MIB, 0, 2);
	g_assert_cmpuint(f->acted->len, >=, 2);
	for (guint i = 0; i < f->acted->len; i++) {
		VmbcBeancounter *bc = g_ptr_array_index(f->acted, i);
		g_assert_cmpint(g_array_index(f->targets, gint64, i), >=,
				vmbc_beancounter_guarantee(bc));
	}
	g_assert_cmpint(f->idle->balloon_actual, ==, 900 * MIB);
	g_assert_cmpint(f->busy->balloon_actual, ==, 1000 * MIB);
	/* both at their guarantee and still over: the host's failcnt, once per reclaim-timeout */
	g_assert_cmpuint(host->parm[VMBC_RES_PHYSPAGES].failcnt, >=, 1);
	g_assert_cmpuint(host->parm[VMBC_RES_PHYSPAGES].failcnt, <=, 2);
	g_assert_cmpuint(count_prefix(f, "VMBC_RECLAIM_FAILED host:"), ==,
			 host->parm[VMBC_RES_PHYSPAGES].failcnt);
}

/* Given back after giveback-delay without pressure, only under the band below the barrier. */
static void
test_giveback_hysteresis(Fixture *f, gconstpointer data)
{
	const VmbcHostState *st = vmbc_engine_get_host_state(f->engine);
	gint64 taken;

	/* budget 1200 (barrier 1140, give-back mark 1080): take 60 MiB from idle */
	tick(f, 1200 * MIB, 0, 1);
	g_assert_cmpuint(f->acted->len, ==, 1);
	taken = 1024 * MIB - f->idle->balloon_actual;
	g_assert_cmpint(taken, ==, 60 * MIB);
	/* the balloon made it: held fell under the barrier, but not under the band below it */
	resample(f, f->idle, 520 * MIB);
	for (guint i = 0; i < 8; i++)
		tick(f, 1200 * MIB, 0, 1);
	g_assert_cmpuint(f->acted->len, ==, 1);
	g_assert_cmpuint(count_prefix(f, "VMBC_HOST_GIVEBACK"), ==, 0);
	/* the busy guest stops, held is well under the mark; a last stall takes once more */
	resample(f, f->busy, 300 * MIB);
	tick(f, 1200 * MIB, 30, 1);
	g_assert_cmpuint(f->acted->len, ==, 2);
	taken = 1024 * MIB - f->idle->balloon_actual;
	g_assert_cmpint(taken, ==, 124 * MIB);
	/* calm, but not yet for giveback-delay (5 s) */
	tick(f, 1200 * MIB, 0, 4);
	g_assert_cmpuint(f->acted->len, ==, 2);
	/* calm for 5 s: the idle VM gets back what was taken, not more */
	tick(f, 1200 * MIB, 0, 1);
	g_assert_cmpuint(f->acted->len, ==, 3);
	g_assert_true(g_ptr_array_index(f->acted, 2) == f->idle);
	g_assert_cmpint(f->idle->balloon_actual, ==, 1024 * MIB);
	g_assert_cmpuint(count_prefix(f, "VMBC_HOST_GIVEBACK host: no pressure"), ==, 1);
	g_assert_cmpint(st->given_pages, ==, taken);
	tick(f, 1200 * MIB, 0, 3);
	g_assert_cmpuint(f->acted->len, ==, 3);
}

/* Give-back is rate-limited and bounded by the room under the mark. */
static void
test_giveback_steps(Fixture *f, gconstpointer data)
{
	/* a hard take of 128 MiB and more: budget 1000 for 1200 held */
	for (guint i = 0; i < 3; i++) {
		tick(f, 1000 * MIB, 0, 2);
		resample(f, f->idle, MAX(f->idle->parm[VMBC_RES_PHYSPAGES].held - 128 * MIB, 0));
	}
	g_assert_cmpint(f->idle->balloon_actual, <=, 1024 * MIB - 200 * MIB);
	/* calm, lots of room: 128 MiB back per 2 s interval */
	resample(f, f->busy, 100 * MIB);
	tick(f, 4000 * MIB, 0, 6);
	g_assert_cmpint(g_array_index(f->targets, gint64, f->targets->len - 1) -
				g_array_index(f->targets, gint64, f->targets->len - 2),
			<=, 128 * MIB);
	{
		guint n = f->acted->len;
		tick(f, 4000 * MIB, 0, 1);
		g_assert_cmpuint(f->acted->len, ==, n);
		tick(f, 4000 * MIB, 0, 1);
		g_assert_cmpuint(f->acted->len, ==, n + 1);
	}
}

/*
 * The guest's word about idle memory is capped: a guest that says it has
 * none (so that its pages look dear) is taken as idle-assumed, no dearer
 * than a VM nobody measured, and cannot push the host onto an honest one.
 */
static void
test_lying_guest_cap(Fixture *f, gconstpointer data)
{
	VmbcIdleSource src;
	VmbcBeancounter *liar, *honest;

	/* no host measures: forget them */
	vmbc_engine_set_dirty_rate(f->engine, f->idle, -1, f->now);
	vmbc_engine_set_dirty_rate(f->engine, f->busy, -1, f->now);
	liar = f->busy;
	honest = f->idle;
	/* the liar: 0 available (all active) yet free memory to spare; honest: 40 % idle */
	guest_says(f, liar, 0, 500 * MIB);
	guest_says(f, honest, 400 * MIB, 500 * MIB);
	g_assert_cmpfloat(vmbc_engine_idle_fraction(f->engine, liar, &src), ==, 0.5);
	g_assert_cmpint(src, ==, VMBC_IDLE_GUEST);
	g_assert_cmpfloat(vmbc_engine_idle_fraction(f->engine, honest, &src), ==, 0.5);
	/* the liar is not spared: same shares, same pages, same idle as far as the host knows:
	 * the first in id order with the lowest rho; make the honest one a little dearer */
	resample(f, honest, 590 * MIB);
	tick(f, 1200 * MIB, 0, 1);
	g_assert_cmpuint(f->acted->len, ==, 1);
	g_assert_true(g_ptr_array_index(f->acted, 0) == liar);
	g_assert_nonnull(strstr(g_ptr_array_index(f->events, 0), "50% idle by guest"));
	/* the guest's word may make it cheaper: 90 % idle is believed */
	guest_says(f, honest, 920 * MIB, 500 * MIB);
	g_assert_cmpfloat(vmbc_engine_idle_fraction(f->engine, honest, &src), >, 0.89);
	/* nothing known at all: idle-assumed */
	{
		g_autoptr(GError) error = NULL;
		VmbcBeancounter *mute = vmbc_engine_add(f->engine, "mute", 1024 * MIB, &error);
		g_assert_cmpfloat(vmbc_engine_idle_fraction(f->engine, mute, &src), ==, 0.5);
		g_assert_cmpint(src, ==, VMBC_IDLE_NONE);
	}
	/* a host measure wins over the guest's word, and ages out */
	vmbc_engine_set_dirty_rate(f->engine, liar, 0, f->now);
	g_assert_cmpfloat(vmbc_engine_idle_fraction(f->engine, liar, &src), ==, 1.0);
	g_assert_cmpint(src, ==, VMBC_IDLE_HOST);
	f->now += 6 * 60 * SEC;
	resample(f, liar, liar->parm[VMBC_RES_PHYSPAGES].held);
	vmbc_engine_idle_fraction(f->engine, liar, &src);
	g_assert_cmpint(src, ==, VMBC_IDLE_GUEST);
}

/*
 * A measure that starts at @started and is taken in a second later with @rate: the backends'
 * part, as they do it.
 */
static void
measure(Fixture *f, VmbcBeancounter *bc, gint64 started, gint64 rate)
{
	f->now = started + SEC;
	vmbc_engine_set_dirty_rate(f->engine, bc, rate, f->now);
}

/* The first moment at or after @started when the next measure is due (seconds after it). */
static gint64
due_after(Fixture *f, VmbcBeancounter *bc, gint64 started, gint64 interval)
{
	for (gint64 s = 0; s <= 3600; s++) {
		if (vmbc_engine_idle_measure_due(f->engine, bc, started, interval,
						 started + s * SEC))
			return s;
	}
	return -1;
}

static void
test_idle_measure_backoff(Fixture *f, gconstpointer data)
{
	const gint64 interval = 30 * SEC;
	gint64 started = f->now;
	gint64 spans[5];

	/* never measured: at once; measured once (the fixture): every interval */
	g_assert_true(vmbc_engine_idle_measure_due(f->engine, f->idle, 0, interval, f->now));
	g_assert_cmpuint(vmbc_engine_idle_measure_spacing(f->engine, f->idle), ==, 1);
	g_assert_cmpint(due_after(f, f->idle, started, interval), ==, 30);
	/* each measure that agrees doubles the span, up to 8 times, and never past idle-max-age
	 * (5 min) less two intervals: 60, 120, 240, then 240 */
	for (guint i = 0; i < G_N_ELEMENTS(spans); i++) {
		measure(f, f->idle, started, 0);
		spans[i] = due_after(f, f->idle, started, interval);
		started += spans[i] * SEC;
	}
	g_assert_cmpint(spans[0], ==, 60);
	g_assert_cmpint(spans[1], ==, 120);
	g_assert_cmpint(spans[2], ==, 240);
	g_assert_cmpint(spans[3], ==, 240);
	g_assert_cmpint(spans[4], ==, 240);
	g_assert_cmpuint(vmbc_engine_idle_measure_spacing(f->engine, f->idle), ==, 8);
	/* a measure stays within idle-max-age however long the interval: a long interval is
	 * not stretched */
	g_assert_cmpint(due_after(f, f->idle, started, 200 * SEC), ==, 200);
	/* a measure that finds the idle share moved by more than VMBC_IDLE_SETTLED_SHARE: back to
	 * the interval (6 MiB/s of 600 MiB in 10 s is 10 % active); within it, still settled */
	measure(f, f->idle, started, 2 << 20);
	g_assert_cmpuint(vmbc_engine_idle_measure_spacing(f->engine, f->idle), ==, 8);
	measure(f, f->idle, started, 6 << 20);
	g_assert_cmpuint(vmbc_engine_idle_measure_spacing(f->engine, f->idle), ==, 1);
	g_assert_cmpint(due_after(f, f->idle, started, interval), ==, 30);
	measure(f, f->idle, started, 6 << 20);
	g_assert_cmpuint(vmbc_engine_idle_measure_spacing(f->engine, f->idle), ==, 2);
	/* held moving by more than a sixteenth brings the interval back before any measure;
	 * back where it was measured, the spacing holds again */
	resample(f, f->idle, 600 * MIB + 37 * MIB);
	g_assert_cmpuint(vmbc_engine_idle_measure_spacing(f->engine, f->idle), ==, 2);
	resample(f, f->idle, 600 * MIB + 38 * MIB);
	g_assert_cmpuint(vmbc_engine_idle_measure_spacing(f->engine, f->idle), ==, 1);
	g_assert_cmpint(due_after(f, f->idle, started, interval), ==, 30);
	resample(f, f->idle, 600 * MIB);
	g_assert_cmpuint(vmbc_engine_idle_measure_spacing(f->engine, f->idle), ==, 2);
	/* a measure taken at another held starts over, even at the same rate */
	resample(f, f->idle, 300 * MIB);
	measure(f, f->idle, started, 6 << 20);
	g_assert_cmpuint(vmbc_engine_idle_measure_spacing(f->engine, f->idle), ==, 1);
	/* within one sampled page of the run's first measure, however much share that is; past
	 * it, and more than 5 points, a new run: drift measure by measure does not hide */
	resample(f, f->idle, 100 * MIB);
	measure(f, f->idle, started, 0);
	measure(f, f->idle, started, 0);
	g_assert_cmpuint(vmbc_engine_idle_measure_spacing(f->engine, f->idle), ==, 2);
	measure(f, f->idle, started, 2 << 20);
	g_assert_cmpfloat(vmbc_engine_idle_fraction(f->engine, f->idle, NULL), <, 0.81);
	g_assert_cmpuint(vmbc_engine_idle_measure_spacing(f->engine, f->idle), ==, 4);
	measure(f, f->idle, started, 4 << 20);
	g_assert_cmpuint(vmbc_engine_idle_measure_spacing(f->engine, f->idle), ==, 1);
	/* a failed measure starts over */
	measure(f, f->busy, started, 60 << 20);
	g_assert_cmpuint(vmbc_engine_idle_measure_spacing(f->engine, f->busy), ==, 2);
	measure(f, f->busy, started, -1);
	g_assert_cmpuint(vmbc_engine_idle_measure_spacing(f->engine, f->busy), ==, 1);
	measure(f, f->busy, started, 60 << 20);
	g_assert_cmpuint(vmbc_engine_idle_measure_spacing(f->engine, f->busy), ==, 1);
	measure(f, f->busy, started, 60 << 20);
	g_assert_cmpuint(vmbc_engine_idle_measure_spacing(f->engine, f->busy), ==, 2);
	/* the host under pressure: every VM's measures every interval, for whom to take from */
	tick(f, 600 * MIB, 0, 1);
	g_assert_cmpint(vmbc_engine_get_host_state(f->engine)->reason, !=, VMBC_PRESSURE_NONE);
	g_assert_cmpuint(vmbc_engine_idle_measure_spacing(f->engine, f->busy), ==, 1);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	/* a host that cannot get under its limit is warned about: the guarantee test provokes it */
	g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
#define ADD(path, fn)                                                                              \
	g_test_add("/vmbc/host-pressure/" path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
	ADD("budget-from-signals", test_budget_from_signals);
	ADD("takes-idle-first", test_takes_idle_first);
	ADD("takes-excess", test_takes_excess);
	ADD("rate-limit", test_rate_limit);
	ADD("guarantee-floor", test_guarantee_floor);
	ADD("giveback-hysteresis", test_giveback_hysteresis);
	ADD("giveback-steps", test_giveback_steps);
	ADD("lying-guest-cap", test_lying_guest_cap);
	ADD("idle-measure-backoff", test_idle_measure_backoff);
#undef ADD
	return g_test_run();
}
