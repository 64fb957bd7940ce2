/*
 * test-resource.c: the ledger — charge, uncharge, watermarks, reset (vmbc-resource.c).
 */
#include "vmbc-beancounter.h"
#include "vmbc-error.h"
#include "vmbc-resource.h"
#include "vmbc-size.h"

static void
test_charge_uncharge(void)
{
	VmbcParm p;

	vmbc_parm_init(&p);
	g_assert_cmpint(p.barrier, ==, VMBC_UNLIMITED);
	g_assert_cmpint(p.limit, ==, VMBC_UNLIMITED);
	vmbc_parm_charge(&p, 100);
	vmbc_parm_charge(&p, 50);
	g_assert_cmpint(p.held, ==, 150);
	g_assert_cmpint(p.maxheld, ==, 150);
	vmbc_parm_uncharge(&p, 120);
	g_assert_cmpint(p.held, ==, 30);
	g_assert_cmpint(p.maxheld, ==, 150);
	g_assert_cmpint(p.minheld, ==, 0);
	vmbc_parm_set_held(&p, 500);
	g_assert_cmpint(p.held, ==, 500);
	g_assert_cmpint(p.maxheld, ==, 500);
	vmbc_parm_set_held(&p, 20);
	g_assert_cmpint(p.held, ==, 20);
}

static void
test_minheld_reset(void)
{
	VmbcParm p;

	vmbc_parm_init(&p);
	vmbc_parm_adopt(&p, 1000);
	g_assert_cmpint(p.maxheld, ==, 1000);
	g_assert_cmpint(p.minheld, ==, 1000);
	vmbc_parm_set_held(&p, 400);
	vmbc_parm_set_held(&p, 1200);
	vmbc_parm_set_held(&p, 800);
	g_assert_cmpint(p.minheld, ==, 400);
	g_assert_cmpint(p.maxheld, ==, 1200);
	p.failcnt = 7;
	vmbc_parm_reset(&p);
	g_assert_cmpint(p.maxheld, ==, 800);
	g_assert_cmpint(p.minheld, ==, 800);
	g_assert_cmpuint(p.failcnt, ==, 0);
}

static void
test_adopt_keeps_failcnt(void)
{
	VmbcParm p;

	vmbc_parm_init(&p);
	p.failcnt = 3;
	vmbc_parm_adopt(&p, 10);
	g_assert_cmpuint(p.failcnt, ==, 3);
	g_assert_cmpint(p.held, ==, 10);
}

static void
test_uncharge_too_much(void)
{
	VmbcParm p;

	vmbc_parm_init(&p);
	vmbc_parm_charge(&p, 10);
	g_test_expect_message("vmbc-core", G_LOG_LEVEL_WARNING, "uncharging too much*");
	vmbc_parm_uncharge(&p, 11);
	g_test_assert_expected_messages();
	g_assert_cmpint(p.held, ==, 0);
}

static void
test_over(void)
{
	VmbcParm p;

	vmbc_parm_init(&p);
	vmbc_parm_charge(&p, 100);
	g_assert_false(vmbc_parm_over_barrier(&p));
	g_assert_false(vmbc_parm_over_limit(&p));
	p.barrier = 50;
	p.limit = 100;
	g_assert_true(vmbc_parm_over_barrier(&p));
	g_assert_false(vmbc_parm_over_limit(&p));
	vmbc_parm_charge(&p, 1);
	g_assert_true(vmbc_parm_over_limit(&p));
}

static void
test_names(void)
{
	g_autoptr(GError) error = NULL;
	VmbcResourceId id;

	for (guint i = 0; i < VMBC_RES_COUNT; i++) {
		g_assert_true(vmbc_resource_from_name(vmbc_resource_name(i), &id, &error));
		g_assert_cmpint(id, ==, i);
	}
	g_assert_false(vmbc_resource_from_name("kmemsize", &id, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_INVALID);
	g_assert_nonnull(strstr(error->message, "'kmemsize'"));
}

static void
test_beancounter_hints(void)
{
	g_autoptr(VmbcBeancounter) bc = vmbc_beancounter_new("vm", 1);

	bc->max_pages = 1000;
	bc->balloon_actual = 1000;
	/* nothing reported: nothing spare, idle unknown */
	g_assert_cmpint(vmbc_beancounter_spare(bc), ==, 0);
	g_assert_cmpfloat(vmbc_beancounter_idle_fraction(bc), <, 0);
	bc->stats = (VmbcGuestStats){.available = 500,
				     .free = 200,
				     .caches = 400,
				     .total = 1000,
				     .swap_in = 0,
				     .major_faults = 0,
				     .last_update = 1};
	g_assert_cmpint(vmbc_beancounter_spare(bc), ==, 400);
	g_assert_cmpfloat_with_epsilon(vmbc_beancounter_idle_fraction(bc), 0.5, 1e-9);
	/* a lying guest cannot claim more than it has */
	bc->stats.free = 1000000;
	bc->stats.available = 1000000;
	g_assert_cmpint(vmbc_beancounter_spare(bc), ==, 1000);
	g_assert_cmpfloat_with_epsilon(vmbc_beancounter_idle_fraction(bc), 1.0, 1e-9);
	bc->stats.free = -5;
	g_assert_cmpint(vmbc_beancounter_spare(bc), ==, 0);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/vmbc/resource/charge-uncharge", test_charge_uncharge);
	g_test_add_func("/vmbc/resource/minheld-reset", test_minheld_reset);
	g_test_add_func("/vmbc/resource/adopt-keeps-failcnt", test_adopt_keeps_failcnt);
	g_test_add_func("/vmbc/resource/uncharge-too-much", test_uncharge_too_much);
	g_test_add_func("/vmbc/resource/over", test_over);
	g_test_add_func("/vmbc/resource/names", test_names);
	g_test_add_func("/vmbc/beancounter/hints", test_beancounter_hints);
	return g_test_run();
}
