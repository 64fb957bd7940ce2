/*
 * test-size.c: sizes as operators type them (vmbc-size.c).
 */
#include "vmbc-error.h"
#include "vmbc-size.h"

#define PS 4096

static gint64
parse_ok(const gchar *text, gint64 max)
{
	g_autoptr(GError) error = NULL;
	gint64 pages = -42;
	gboolean ok = vmbc_size_parse(text, PS, max, &pages, &error);
	g_assert_no_error(error);
	g_assert_true(ok);
	return pages;
}

static void
parse_bad(const gchar *text, gint64 max, const gchar *needle)
{
	g_autoptr(GError) error = NULL;
	gint64 pages = -42;
	gboolean ok = vmbc_size_parse(text, PS, max, &pages, &error);
	g_assert_false(ok);
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_INVALID);
	g_assert_cmpint(pages, ==, -42);
	g_assert_nonnull(strstr(error->message, needle));
}

static void
test_units(void)
{
	g_assert_cmpint(parse_ok("512M", 0), ==, 131072);
	g_assert_cmpint(parse_ok("512MiB", 0), ==, 131072);
	g_assert_cmpint(parse_ok("2G", 0), ==, 524288);
	g_assert_cmpint(parse_ok("2g", 0), ==, 524288);
	g_assert_cmpint(parse_ok("1T", 0), ==, 268435456);
	g_assert_cmpint(parse_ok("64K", 0), ==, 16);
	g_assert_cmpint(parse_ok("1.5G", 0), ==, 393216);
	/* plain numbers are bytes, rounded down to whole pages */
	g_assert_cmpint(parse_ok("8192", 0), ==, 2);
	g_assert_cmpint(parse_ok("8191", 0), ==, 1);
	g_assert_cmpint(parse_ok("0", 0), ==, 0);
}

static void
test_pages_percent_unlimited(void)
{
	g_assert_cmpint(parse_ok("1000p", 0), ==, 1000);
	g_assert_cmpint(parse_ok("1000P", 0), ==, 1000);
	g_assert_cmpint(parse_ok("80%", 1000), ==, 800);
	g_assert_cmpint(parse_ok("100%", 1000), ==, 1000);
	g_assert_cmpint(parse_ok("12.5%", 1000), ==, 125);
	g_assert_cmpint(parse_ok("unlimited", 0), ==, VMBC_UNLIMITED);
	g_assert_cmpint(parse_ok("UNLIMITED", 0), ==, VMBC_UNLIMITED);
}

static void
test_garbage(void)
{
	parse_bad("", 0, "invalid size ''");
	parse_bad("abc", 0, "invalid size 'abc'");
	parse_bad("-5M", 0, "'-5M'");
	parse_bad("12Q", 0, "unknown unit 'Q'");
	parse_bad("1e9", 0, "unknown unit 'e9'");
	parse_bad("5 M", 0, "unknown unit ' M'");
	parse_bad("1.", 0, "digits after '.'");
	parse_bad("1.5p", 0, "whole");
	parse_bad("80%", 0, "maximum memory");
	parse_bad("101%", 1000, "cannot exceed 100%");
}

static void
test_overflow(void)
{
	parse_bad("99999999999999999999999", 0, "too large");
	parse_bad("99999999999T", 0, "too large");
	parse_bad("18446744073709551615p", 0, "too large");
	parse_bad("9223372036854775807p", 0, "too large");
}

static void
test_pair(void)
{
	g_autoptr(GError) error = NULL;
	gint64 b = 0, l = 0;

	g_assert_true(vmbc_size_parse_pair("256M:512M", PS, 0, &b, &l, &error));
	g_assert_no_error(error);
	g_assert_cmpint(b, ==, 65536);
	g_assert_cmpint(l, ==, 131072);
	g_assert_true(vmbc_size_parse_pair("1G", PS, 0, &b, &l, &error));
	g_assert_cmpint(b, ==, 262144);
	g_assert_cmpint(l, ==, 262144);
	g_assert_true(vmbc_size_parse_pair("1G:unlimited", PS, 0, &b, &l, &error));
	g_assert_cmpint(l, ==, VMBC_UNLIMITED);

	g_assert_false(vmbc_size_parse_pair("1G:512M", PS, 0, &b, &l, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_INVALID);
	g_assert_nonnull(strstr(error->message, "barrier 1G is above limit 512M"));
	g_clear_error(&error);
	g_assert_false(vmbc_size_parse_pair("1G:2G:3G", PS, 0, &b, &l, &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_INVALID);
	g_clear_error(&error);
	g_assert_false(vmbc_size_parse_pair("1G:x", PS, 0, &b, &l, &error));
	g_assert_nonnull(strstr(error->message, "'x'"));
}

static void
test_format(void)
{
	struct {
		gint64 pages;
		const gchar *text;
	} cases[] = {
		{0, "0"},	  {1, "4K"},	    {256, "1M"},
		{131072, "512M"}, {393216, "1.5G"}, {VMBC_UNLIMITED, "unlimited"},
	};
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree gchar *s = vmbc_size_format_human(cases[i].pages, PS);
		g_assert_cmpstr(s, ==, cases[i].text);
	}
	g_assert_cmpint(vmbc_pages_to_bytes(VMBC_UNLIMITED, PS), ==, G_MAXINT64);
	g_assert_cmpint(vmbc_pages_to_bytes(10, PS), ==, 40960);
}

static void
test_roundtrip(void)
{
	/* what vmbc prints, vmbc accepts back unchanged */
	gint64 values[] = {256, 131072, 393216, 262144 * 3, VMBC_UNLIMITED};
	for (guint i = 0; i < G_N_ELEMENTS(values); i++) {
		g_autofree gchar *s = vmbc_size_format_human(values[i], PS);
		g_assert_cmpint(parse_ok(s, 0), ==, values[i]);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/vmbc/size/units", test_units);
	g_test_add_func("/vmbc/size/pages-percent-unlimited", test_pages_percent_unlimited);
	g_test_add_func("/vmbc/size/garbage", test_garbage);
	g_test_add_func("/vmbc/size/overflow", test_overflow);
	g_test_add_func("/vmbc/size/pair", test_pair);
	g_test_add_func("/vmbc/size/format", test_format);
	g_test_add_func("/vmbc/size/roundtrip", test_roundtrip);
	return g_test_run();
}
