/*
 * test-ksm.c: KSM's counters (src/host/vmbc-ksm.c) from a directory the
 * test writes, and from the real sysfs where there is one.
 */
#include <glib/gstdio.h>

#include "vmbc-ksm.h"

static void
test_read(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *dir = g_dir_make_tmp("vmbc-ksm-XXXXXX", &error);
	g_autofree gchar *shared = g_build_filename(dir, "pages_shared", NULL);
	g_autofree gchar *sharing = g_build_filename(dir, "pages_sharing", NULL);
	gint64 a = 0, b = 0;

	g_assert_no_error(error);
	/* missing: -1 each */
	vmbc_ksm_read(dir, &a, &b);
	g_assert_cmpint(a, ==, -1);
	g_assert_cmpint(b, ==, -1);

	g_assert_true(g_file_set_contents(shared, "12\n", -1, NULL));
	g_assert_true(g_file_set_contents(sharing, "345\n", -1, NULL));
	vmbc_ksm_read(dir, &a, &b);
	g_assert_cmpint(a, ==, 12);
	g_assert_cmpint(b, ==, 345);

	/* garbage and negative numbers are not counters */
	g_assert_true(g_file_set_contents(shared, "lots\n", -1, NULL));
	g_assert_true(g_file_set_contents(sharing, "-3\n", -1, NULL));
	vmbc_ksm_read(dir, &a, &b);
	g_assert_cmpint(a, ==, -1);
	g_assert_cmpint(b, ==, -1);

	g_assert_cmpint(g_unlink(shared), ==, 0);
	g_assert_cmpint(g_unlink(sharing), ==, 0);
	g_assert_cmpint(g_rmdir(dir), ==, 0);
}

static void
test_dir(void)
{
	gint64 a = 0, b = 0;

	g_setenv("VMBC_KSM_DIR", "/nonexistent/ksm", TRUE);
	g_assert_cmpstr(vmbc_ksm_dir(), ==, "/nonexistent/ksm");
	g_unsetenv("VMBC_KSM_DIR");
	g_assert_cmpstr(vmbc_ksm_dir(), ==, "/sys/kernel/mm/ksm");
	vmbc_ksm_read(vmbc_ksm_dir(), &a, &b);
	if (g_file_test("/sys/kernel/mm/ksm/pages_shared", G_FILE_TEST_EXISTS))
		g_assert_cmpint(a, >=, 0);
	else
		g_assert_cmpint(a, ==, -1);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/vmbc/ksm/read", test_read);
	g_test_add_func("/vmbc/ksm/dir", test_dir);
	return g_test_run();
}
