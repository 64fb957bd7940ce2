/*
 * vmbc-cmd-setlimit.c: "vmbc setlimit [--persist] DOM RES BARRIER[:LIMIT]".
 *
 * The sizes are checked here first, so that a typo is a usage error (exit 2)
 * even without a daemon, and then sent as the strings the user wrote: a
 * percentage can only be resolved by vmbcd, against the VM's maximum memory.
 * The daemon replies once the new limit took effect, which may take a
 * reclaim, hence the long timeout. The answer is in the units the user
 * wrote: who set "1536M" reads "1536M" back, who set "1000p" reads pages.
 * --persist asks vmbcd to write the limit into the domain's own metadata too
 * (libvirt), so that it goes where the domain goes. "default" instead of the
 * sizes forgets what was set at run time: vmbc.conf's limits apply again, and
 * for the host, where vmbc.conf sets none, the budget the host measures.
 */
#include <string.h>

#include "vmbc-cli.h"
#include "vmbc-error.h"
#include "vmbc-size.h"

/*
 * Checks "BARRIER[:LIMIT]" and splits it; the order of barrier and limit is
 * checked here when both are absolute sizes, and by the daemon otherwise.
 */
static gboolean
setlimit_parse(const gchar *text, gchar **barrier_out, gchar **limit_out, GError **error)
{
	g_auto(GStrv) parts = g_strsplit(text, ":", -1);
	guint n = g_strv_length(parts);
	gint64 barrier = 0;
	gint64 limit = 0;

	if (n < 1 || n > 2) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "invalid BARRIER[:LIMIT] '%s': expected one or two sizes", text);
		return FALSE;
	}
	if (!vmbc_cli_parse_size(parts[0], n == 1 ? "BARRIER[:LIMIT]" : "BARRIER", error))
		return FALSE;
	if (n == 2 && !vmbc_cli_parse_size(parts[1], "LIMIT", error))
		return FALSE;
	if (strchr(text, '%') == NULL &&
	    !vmbc_size_parse_pair(text, vmbc_page_size(), 0, &barrier, &limit, error))
		return FALSE;
	*barrier_out = g_strdup(parts[0]);
	*limit_out = g_strdup(n == 2 ? parts[1] : parts[0]);
	return TRUE;
}

/* TRUE for a size written as pages ("1000p") or plain bytes ("1073741824"). */
static gboolean
setlimit_is_count(const gchar *text)
{
	const gchar *p = text;

	while (g_ascii_isdigit(*p))
		p++;
	return p != text &&
	       (*p == '\0' || g_ascii_strcasecmp(p, "p") == 0 || g_ascii_strcasecmp(p, "b") == 0);
}

/* "setlimit DOM RES default": the reply says where the limits now come from. */
static gint
setlimit_default(VmbcCli *cli, const gchar *dom, const gchar *res)
{
	g_autoptr(JsonObject) args = json_object_new();
	g_autoptr(JsonObject) reply = NULL;
	g_autofree gchar *b = NULL;
	g_autofree gchar *l = NULL;
	g_autofree gchar *h = NULL;
	gint rc;

	json_object_set_string_member(args, "domain", dom);
	json_object_set_string_member(args, "resource", res);
	reply = vmbc_cli_query(cli, "reset-limit", args, VMBC_CLI_TIMEOUT_RECLAIM_MS, &rc);
	if (reply == NULL)
		return rc;
	b = vmbc_cli_format_pages(cli, vmbc_cli_json_int(reply, "barrier", -1));
	l = vmbc_cli_format_pages(cli, vmbc_cli_json_int(reply, "limit", -1));
	h = vmbc_cli_format_pages(cli, vmbc_cli_json_int(reply, "held", -1));
	g_print("%s %s: barrier %s, limit %s (held %s, failcnt %" G_GINT64_FORMAT "), from %s\n",
		vmbc_cli_json_string(reply, "domain", dom),
		vmbc_cli_json_string(reply, "resource", res), b, l, h,
		vmbc_cli_json_int(reply, "failcnt", 0),
		vmbc_cli_json_string(reply, "from", "vmbc.conf"));
	return VMBC_EXIT_OK;
}

gint
vmbc_cmd_setlimit(VmbcCli *cli, gint argc, gchar **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) args = json_object_new();
	g_autoptr(JsonObject) reply = NULL;
	g_autofree gchar *barrier = NULL;
	g_autofree gchar *limit = NULL;
	g_autofree gchar *b = NULL;
	g_autofree gchar *l = NULL;
	g_autofree gchar *h = NULL;
	g_autoptr(GPtrArray) rest = g_ptr_array_new();
	gboolean persist = FALSE;
	gint rc;

	for (gint i = 0; i < argc; i++) {
		if (i > 0 && g_strcmp0(argv[i], "--persist") == 0)
			persist = TRUE;
		else
			g_ptr_array_add(rest, argv[i]);
	}
	argc = (gint)rest->len;
	argv = (gchar **)rest->pdata;
	if (!vmbc_cli_check_args(argv[0], argc, 4, 4))
		return VMBC_EXIT_USAGE;
	if (!g_strv_contains(vmbc_cli_resources, argv[2])) {
		return vmbc_cli_usage_error("unknown resource '%s': expected physpages, "
					    "vmguarpages or vmmpages",
					    argv[2]);
	}
	if (g_strcmp0(argv[3], "default") == 0) {
		if (persist)
			return vmbc_cli_usage_error(
				"--persist keeps limits in the domain's metadata; 'default' "
				"forgets the limits set at run time, it has nothing to keep");
		return setlimit_default(cli, argv[1], argv[2]);
	}
	if (!setlimit_parse(argv[3], &barrier, &limit, &error))
		return vmbc_cli_fail(error);

	json_object_set_string_member(args, "domain", argv[1]);
	json_object_set_string_member(args, "resource", argv[2]);
	json_object_set_string_member(args, "barrier", barrier);
	json_object_set_string_member(args, "limit", limit);
	if (persist)
		json_object_set_boolean_member(args, "persist", TRUE);
	reply = vmbc_cli_query(cli, "set-limit", args, VMBC_CLI_TIMEOUT_RECLAIM_MS, &rc);
	if (reply == NULL)
		return rc;

	b = vmbc_cli_format_like(cli, vmbc_cli_json_int(reply, "barrier", -1), barrier);
	l = vmbc_cli_format_like(cli, vmbc_cli_json_int(reply, "limit", -1), limit);
	/*
	 * held is read against the limit: in pages or bytes when the limit was,
	 * else as a size people read ("0.4G" would hide what 384M says)
	 */
	h = vmbc_cli_format_like(cli, vmbc_cli_json_int(reply, "held", -1),
				 setlimit_is_count(limit) ? limit : NULL);
	g_print("%s %s: barrier %s, limit %s (held %s, failcnt %" G_GINT64_FORMAT ")%s\n",
		vmbc_cli_json_string(reply, "domain", argv[1]),
		vmbc_cli_json_string(reply, "resource", argv[2]), b, l, h,
		vmbc_cli_json_int(reply, "failcnt", 0),
		vmbc_cli_json_bool(reply, "persisted", FALSE) ? ", kept in the domain's metadata"
							      : "");
	return VMBC_EXIT_OK;
}
