/*
 * test-policy.c: the policy a VM carries in its metadata (vmbc-policy.c):
 * what is read, what is refused and why, and what is written back.
 */
#include <string.h>

#include "vmbc-error.h"
#include "vmbc-policy.h"
#include "vmbc-size.h"

static void
test_parse(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VmbcPolicy) p =
		vmbc_policy_parse("<vmbc:policy xmlns:vmbc=\"urn:x-vmbc:policy:1\">\n"
				  "  <vmbc:physpages barrier=\"1536M\" limit=\"2G\"/>\n"
				  "  <vmbc:vmmpages limit=\"64M\"/>\n"
				  "  <vmbc:guarantee size=\"50%\"/>\n"
				  "  <vmbc:shares value=\"2000\"/>\n"
				  "</vmbc:policy>",
				  &error);
	g_autofree gchar *text = NULL;

	g_assert_no_error(error);
	g_assert_true(p->set[VMBC_RES_PHYSPAGES]);
	g_assert_cmpstr(p->barrier[VMBC_RES_PHYSPAGES], ==, "1536M");
	g_assert_cmpstr(p->limit[VMBC_RES_PHYSPAGES], ==, "2G");
	/* one value sets both */
	g_assert_cmpstr(p->barrier[VMBC_RES_VMMPAGES], ==, "64M");
	g_assert_cmpstr(p->limit[VMBC_RES_VMMPAGES], ==, "64M");
	g_assert_cmpstr(p->barrier[VMBC_RES_VMGUARPAGES], ==, "50%");
	g_assert_cmpstr(p->limit[VMBC_RES_VMGUARPAGES], ==, "unlimited");
	g_assert_cmpint(p->shares, ==, 2000);
	text = vmbc_policy_describe(p);
	g_assert_cmpstr(text, ==,
			"physpages 1536M:2G, guarantee 50%, vmmpages 64M:64M, shares 2000");
}

static void
test_parse_plain(void)
{
	g_autoptr(GError) error = NULL;
	/* as written by hand with virsh metadata --key vmbc: no prefix on the children */
	g_autoptr(VmbcPolicy) p =
		vmbc_policy_parse("<policy><physpages limit='400M'/></policy>", &error);

	g_assert_no_error(error);
	g_assert_cmpstr(p->barrier[VMBC_RES_PHYSPAGES], ==, "400M");
	g_assert_false(p->set[VMBC_RES_VMGUARPAGES]);
	g_assert_cmpint(p->shares, ==, 0);
}

static void
test_parse_bad(void)
{
	static const struct {
		const gchar *xml;
		const gchar *want;
	} cases[] = {
		{"<policy><physpages limit='12Q'/></policy>",
		 "physpages limit: invalid size '12Q': unknown unit 'Q'"},
		{"<policy><physpages barrier='2G' limit='1G'/></policy>",
		 "physpages: barrier 2G is above limit 1G"},
		{"<policy><physpages/></policy>", "needs a barrier or a limit"},
		{"<policy><rsspages limit='1G'/></policy>", "unknown element <rsspages>"},
		{"<policy><physpages lim='1G'/></policy>",
		 "unknown attribute 'lim' of <physpages>"},
		{"<policy><guarantee size='unlimited'/></policy>", "not unlimited"},
		{"<policy><shares value='0'/></policy>", "invalid shares '0'"},
		{"<policy><shares value='lots'/></policy>", "invalid shares 'lots'"},
		{"<limits/>", "is <limits>, expected <policy>"},
		{"<policy><physpages limit='1G'>", "not well-formed XML"},
		{"<policy>1G</policy>", "unexpected text '1G'"},
		{"", "empty"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(VmbcPolicy) p = vmbc_policy_parse(cases[i].xml, &error);
		g_assert_null(p);
		g_assert_error(error, VMBC_ERROR, VMBC_ERROR_INVALID);
		if (strstr(error->message, cases[i].want) == NULL)
			g_error("'%s': '%s' does not say '%s'", cases[i].xml, error->message,
				cases[i].want);
	}
}

static void
test_round_trip(void)
{
	g_autoptr(VmbcPolicy) p = vmbc_policy_new();
	g_autoptr(VmbcPolicy) back = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *xml = NULL;
	g_autofree gchar *a = NULL;
	g_autofree gchar *b = NULL;

	vmbc_policy_set(p, VMBC_RES_PHYSPAGES, "320M", "480M");
	vmbc_policy_set(p, VMBC_RES_VMGUARPAGES, "256M", "unlimited");
	p->shares = 3000;
	xml = vmbc_policy_to_xml(p);
	/* libvirt adds the namespace: the element must not declare one */
	g_assert_cmpstr(xml, ==,
			"<policy><physpages barrier=\"320M\" limit=\"480M\"/><guarantee "
			"size=\"256M\"/><shares value=\"3000\"/></policy>");
	back = vmbc_policy_parse(xml, &error);
	g_assert_no_error(error);
	a = vmbc_policy_describe(p);
	b = vmbc_policy_describe(back);
	g_assert_cmpstr(a, ==, b);
}

static void
test_format_size(void)
{
	gsize ps = 4096;
	g_autofree gchar *g = vmbc_policy_format_size(393216, ps);
	g_autofree gchar *odd = vmbc_policy_format_size(12345, ps);
	g_autofree gchar *unl = vmbc_policy_format_size(VMBC_UNLIMITED, ps);
	g_autofree gchar *fine = vmbc_policy_format_size(300000, ps);
	gint64 back = 0;

	g_assert_cmpstr(g, ==, "1.5G");
	g_assert_cmpstr(unl, ==, "unlimited");
	/* what no unit says exactly is written in pages */
	g_assert_cmpstr(odd, ==, "12345p");
	g_assert_true(vmbc_size_parse(fine, ps, 0, &back, NULL));
	g_assert_cmpint(back, ==, 300000);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/vmbc/policy/parse", test_parse);
	g_test_add_func("/vmbc/policy/parse-plain", test_parse_plain);
	g_test_add_func("/vmbc/policy/parse-bad", test_parse_bad);
	g_test_add_func("/vmbc/policy/round-trip", test_round_trip);
	g_test_add_func("/vmbc/policy/format-size", test_format_size);
	return g_test_run();
}
