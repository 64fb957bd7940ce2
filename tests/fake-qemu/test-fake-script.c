/*
 * test-fake-script.c: unit tests of the fake QEMU's script parser.
 */
#include <gio/gio.h>

#include "fake-script.h"

static void
test_parse(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) lines = NULL;
	const FakeScriptLine *line;

	lines = fake_script_parse("s",
				  "# a comment\n"
				  "\n"
				  "at 5.0 free anon 64\n"
				  "  at 2.0\ttouch   cache 64  \n"
				  "at 3 exit\n"
				  "at 2.0 set fpr off\n"
				  "at 4 balloon 512\n",
				  &error);
	g_assert_no_error(error);
	g_assert_cmpuint(lines->len, ==, 5);

	line = g_ptr_array_index(lines, 0);
	g_assert_cmpfloat(line->at, ==, 2.0);
	g_assert_cmpstr(line->verb, ==, "touch");
	g_assert_cmpuint(line->line, ==, 4);
	g_assert_cmpuint(g_strv_length(line->args), ==, 2);
	g_assert_cmpstr(line->args[0], ==, "cache");
	g_assert_cmpstr(line->args[1], ==, "64");

	/* Same time: file order. */
	line = g_ptr_array_index(lines, 1);
	g_assert_cmpstr(line->verb, ==, "set");
	line = g_ptr_array_index(lines, 2);
	g_assert_cmpstr(line->verb, ==, "exit");
	line = g_ptr_array_index(lines, 4);
	g_assert_cmpstr(line->verb, ==, "free");
	g_assert_cmpfloat(line->at, ==, 5.0);
}

static void
test_errors(void)
{
	const struct {
		const gchar *text;
		const gchar *message;
	} cases[] = {
		{"touch anon 64", "f:1: expected 'at SECONDS ACTION ...', got 'touch anon 64'"},
		{"\nat x touch anon 1", "f:2: invalid time 'x'"},
		{"at -1 exit", "f:1: invalid time '-1'"},
		{"at 1 touch swap 1", "f:1: expected 'touch anon|cache MIB'"},
		{"at 1 free anon", "f:1: expected 'free anon|cache MIB'"},
		{"at 1 touch anon -5", "f:1: expected 'touch anon|cache MIB'"},
		{"at 1 balloon", "f:1: expected 'balloon MIB'"},
		{"at 1 set fpr", "f:1: expected 'set KEY VALUE'"},
		{"at 1 exit now", "f:1: expected 'exit' alone"},
		{"at 1 reboot", "f:1: unknown action 'reboot'"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GPtrArray) lines = fake_script_parse("f", cases[i].text, &error);

		g_assert_null(lines);
		g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
		g_assert_cmpstr(error->message, ==, cases[i].message);
	}
}

static void
test_kind(void)
{
	gboolean anon = FALSE;

	g_assert_true(fake_script_parse_kind("anon", &anon));
	g_assert_true(anon);
	g_assert_true(fake_script_parse_kind("cache", &anon));
	g_assert_false(anon);
	g_assert_false(fake_script_parse_kind("Anon", &anon));
	g_assert_false(fake_script_parse_kind(NULL, &anon));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/vmbc/fake-qemu/script/parse", test_parse);
	g_test_add_func("/vmbc/fake-qemu/script/errors", test_errors);
	g_test_add_func("/vmbc/fake-qemu/script/kind", test_kind);
	return g_test_run();
}
