/*
 * test-settings.c: the [daemon] keys a backend declares (src/backend/vmbc-settings.c):
 * defaults, checking by type and range, the getters, and keys shared by backends.
 */
#include "vmbc-error.h"
#include "vmbc-settings.h"

static const VmbcSettingSpec specs_a[] = {
	{"sockets", VMBC_SETTING_PATHS, "/run/a/*.sock", 0, 0},
	{"root", VMBC_SETTING_PATH, "/sys/fs/cgroup", 0, 0},
	{"uri", VMBC_SETTING_STRING, "qemu:///system", 0, 0},
	{"interval", VMBC_SETTING_DURATION, "2s", 100000, 60 * G_USEC_PER_SEC},
	{"period", VMBC_SETTING_SECONDS, "1", 1, 3600},
	{NULL, 0, NULL, 0, 0},
};

/* a second backend sharing "interval" with another default: the first declaration stays */
static const VmbcSettingSpec specs_b[] = {
	{"interval", VMBC_SETTING_DURATION, "9s", 100000, 60 * G_USEC_PER_SEC},
	{"extra", VMBC_SETTING_STRING, "x", 0, 0},
	{NULL, 0, NULL, 0, 0},
};

static VmbcSettings *
new_settings(void)
{
	VmbcSettings *s = vmbc_settings_new();

	vmbc_settings_declare(s, specs_a);
	vmbc_settings_declare(s, specs_b);
	return s;
}

static void
test_defaults(void)
{
	g_autoptr(VmbcSettings) s = new_settings();
	g_autofree const gchar **keys = vmbc_settings_get_keys(s);
	const gchar *want[] = {"extra", "interval", "period", "root", "sockets", "uri", NULL};

	g_assert_cmpstrv(keys, want);
	g_assert_cmpstr(vmbc_settings_get_paths(s, "sockets")[0], ==, "/run/a/*.sock");
	g_assert_null(vmbc_settings_get_paths(s, "sockets")[1]);
	g_assert_cmpstr(vmbc_settings_get_string(s, "root"), ==, "/sys/fs/cgroup");
	g_assert_cmpstr(vmbc_settings_get_string(s, "uri"), ==, "qemu:///system");
	g_assert_cmpint(vmbc_settings_get_usec(s, "interval"), ==, 2 * G_USEC_PER_SEC);
	g_assert_cmpuint(vmbc_settings_get_seconds(s, "period"), ==, 1);
	g_assert_cmpstr(vmbc_settings_get_string(s, "extra"), ==, "x");
	g_assert_true(vmbc_settings_lookup(s, "interval") == &specs_a[3]);
	g_assert_null(vmbc_settings_lookup(s, "nope"));
}

static void
test_set(void)
{
	g_autoptr(VmbcSettings) s = new_settings();
	g_autoptr(GError) error = NULL;
	const gchar *const *paths;

	g_assert_true(vmbc_settings_set(s, "sockets", " /a/*.sock ; /b/*/qmp.sock; ", &error));
	g_assert_no_error(error);
	paths = vmbc_settings_get_paths(s, "sockets");
	g_assert_cmpstr(paths[0], ==, "/a/*.sock");
	g_assert_cmpstr(paths[1], ==, "/b/*/qmp.sock");
	g_assert_null(paths[2]);
	g_assert_true(vmbc_settings_set(s, "interval", "250ms", &error));
	g_assert_cmpint(vmbc_settings_get_usec(s, "interval"), ==, 250000);
	g_assert_true(vmbc_settings_set(s, "period", "5", &error));
	g_assert_cmpuint(vmbc_settings_get_seconds(s, "period"), ==, 5);
	g_assert_true(vmbc_settings_set(s, "root", "/cg", &error));
	g_assert_cmpstr(vmbc_settings_get_string(s, "root"), ==, "/cg");
}

static void
test_refused(void)
{
	static const struct {
		const gchar *key;
		const gchar *value;
		const gchar *message;
	} bad[] = {
		{"sockets", "/a/*.sock;rel/*.sock", "'rel/*.sock' is not an absolute path"},
		{"root", "cgroup", "'cgroup' is not an absolute path"},
		{"interval", "10ms", "'10ms' is out of range (0.1 s to 60 s)"},
		{"interval", "1h", "'1h' is out of range (0.1 s to 60 s)"},
		{"interval", "soon", "invalid duration 'soon'"},
		{"period", "1.5", "'1.5' is not a whole number of seconds"},
		{"period", "0", "0 is out of range (1 to 3600)"},
		{"period", "-1", "'-1' is not a whole number of seconds"},
		{"nope", "1", "unknown key 'nope'"},
	};
	g_autoptr(VmbcSettings) s = new_settings();

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) error = NULL;

		g_test_message("%s = %s", bad[i].key, bad[i].value);
		g_assert_false(vmbc_settings_set(s, bad[i].key, bad[i].value, &error));
		g_assert_error(error, VMBC_ERROR, VMBC_ERROR_INVALID);
		g_assert_nonnull(g_strstr_len(error->message, -1, bad[i].message));
	}
	/* what was there stays */
	g_assert_cmpstr(vmbc_settings_get_paths(s, "sockets")[0], ==, "/run/a/*.sock");
	g_assert_cmpstr(vmbc_settings_get_string(s, "root"), ==, "/sys/fs/cgroup");
	g_assert_cmpint(vmbc_settings_get_usec(s, "interval"), ==, 2 * G_USEC_PER_SEC);
	g_assert_cmpuint(vmbc_settings_get_seconds(s, "period"), ==, 1);
}

/* a duration whose range starts at 0 takes "0" and "off" for it; others refuse them */
static void
test_duration_off(void)
{
	static const VmbcSettingSpec specs[] = {
		{"every", VMBC_SETTING_DURATION, "30s", 0,
		 G_GINT64_CONSTANT(3600) * G_USEC_PER_SEC},
		{"tick", VMBC_SETTING_DURATION, "1s", 100000, 60 * G_USEC_PER_SEC},
		{NULL, 0, NULL, 0, 0},
	};
	g_autoptr(VmbcSettings) s = vmbc_settings_new();
	g_autoptr(GError) error = NULL;

	vmbc_settings_declare(s, specs);
	g_assert_cmpint(vmbc_settings_get_usec(s, "every"), ==, 30 * G_USEC_PER_SEC);
	g_assert_true(vmbc_settings_set(s, "every", "0", &error));
	g_assert_cmpint(vmbc_settings_get_usec(s, "every"), ==, 0);
	g_assert_true(vmbc_settings_set(s, "every", "2s", &error));
	g_assert_true(vmbc_settings_set(s, "every", "off", &error));
	g_assert_cmpint(vmbc_settings_get_usec(s, "every"), ==, 0);
	g_assert_false(vmbc_settings_set(s, "tick", "0", &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_INVALID);
	g_clear_error(&error);
	g_assert_false(vmbc_settings_set(s, "tick", "off", &error));
	g_assert_cmpint(vmbc_settings_get_usec(s, "tick"), ==, G_USEC_PER_SEC);
}

/* a choice takes one of its words and refuses anything else, naming the words */
static void
test_choice(void)
{
	static const VmbcSettingSpec specs[] = {
		{"reads", VMBC_SETTING_CHOICE, "uring", 0, 0, "uring|pread"},
		{NULL, 0, NULL, 0, 0},
	};
	g_autoptr(VmbcSettings) s = vmbc_settings_new();
	g_autoptr(GError) error = NULL;

	vmbc_settings_declare(s, specs);
	g_assert_cmpstr(vmbc_settings_get_string(s, "reads"), ==, "uring");
	g_assert_true(vmbc_settings_set(s, "reads", " pread ", &error));
	g_assert_no_error(error);
	g_assert_cmpstr(vmbc_settings_get_string(s, "reads"), ==, "pread");
	g_assert_false(vmbc_settings_set(s, "reads", "aio", &error));
	g_assert_error(error, VMBC_ERROR, VMBC_ERROR_INVALID);
	g_assert_cmpstr(error->message, ==, "'aio' is not one of uring, pread");
	g_clear_error(&error);
	g_assert_false(vmbc_settings_set(s, "reads", "urin", &error));
	g_assert_cmpstr(vmbc_settings_get_string(s, "reads"), ==, "pread");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/vmbc/settings/defaults", test_defaults);
	g_test_add_func("/vmbc/settings/set", test_set);
	g_test_add_func("/vmbc/settings/refused", test_refused);
	g_test_add_func("/vmbc/settings/duration-off", test_duration_off);
	g_test_add_func("/vmbc/settings/choice", test_choice);
	return g_test_run();
}
