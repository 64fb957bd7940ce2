/*
 * vmbc-cmd-dominfo.c: "vmbc dominfo DOM", everything vmbcd knows about one
 * domain as "Key: value" lines, as virsh dominfo prints them.
 *
 * Members of the reply this file does not know (backend facts a newer daemon
 * adds) are printed at the end rather than dropped.
 */
#include "vmbc-cli.h"

/* The members printed by name; the rest go to the end. */
static const gchar *const dominfo_known[] = {
	"name",		 "id",		"backend",
	"pid",		 "qmp-socket",	"uri",
	"max",		 "balloon",	"free-page-reporting",
	"actual",	 "target",	"guarantee",
	"shares",	 "reclaim",	"stats",
	"reclaims",	 "resources",	"memory-high-set",
	"balloon-owner", "balloon-set", NULL,
};

static void
dominfo_line(const gchar *key, const gchar *value)
{
	g_autofree gchar *label = g_strdup_printf("%s:", key);
	g_print("%-22s%s\n", label, value);
}

static gchar *
dominfo_pages(VmbcCli *cli, JsonObject *obj, const gchar *member)
{
	gint64 v = vmbc_cli_json_int(obj, member, -1);
	if (v < 0)
		return g_strdup("unknown");
	return vmbc_cli_format_pages(cli, v);
}

static gchar *
dominfo_count(JsonObject *obj, const gchar *member)
{
	gint64 v = vmbc_cli_json_int(obj, member, -1);
	if (v < 0)
		return g_strdup("unknown");
	return g_strdup_printf("%" G_GINT64_FORMAT, v);
}

static gchar *
dominfo_scalar(JsonNode *node)
{
	if (JSON_NODE_HOLDS_NULL(node))
		return g_strdup("unknown");
	if (JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING)
		return g_strdup(json_node_get_string(node));
	return json_to_string(node, FALSE);
}

/* Whose balloon it is, and for a balloon vmbcd set: to what, why, and from what size. */
static void
dominfo_balloon_owner(VmbcCli *cli, JsonObject *dom)
{
	const gchar *owner = vmbc_cli_json_string(dom, "balloon-owner", NULL);
	JsonObject *set = vmbc_cli_json_object(dom, "balloon-set");
	g_autofree gchar *v = NULL;

	if (owner == NULL)
		return;
	if (g_strcmp0(owner, "vmbcd") == 0 && set != NULL) {
		g_autofree gchar *target = dominfo_pages(cli, set, "target");
		g_autofree gchar *before = dominfo_pages(cli, set, "before");
		g_autofree gchar *limit = dominfo_pages(cli, set, "limit");
		v = g_strdup_printf("vmbcd (set to %s for the %s, physpages limit %s; %s before)",
				    target, vmbc_cli_json_string(set, "reason", "?"), limit,
				    before);
	} else if (g_strcmp0(owner, "other") == 0) {
		v = g_strdup("other (not set by vmbcd; left alone)");
	} else {
		v = g_strdup(owner);
	}
	dominfo_line("Balloon owner", v);
}

static void
dominfo_stats(VmbcCli *cli, JsonObject *stats)
{
	static const struct {
		const gchar *member;
		const gchar *label;
		gboolean pages;
	} rows[] = {
		{"available", "Guest available", TRUE},
		{"free", "Guest free", TRUE},
		{"caches", "Guest caches", TRUE},
		{"total", "Guest total", TRUE},
		{"swap-in", "Guest swap-in", FALSE},
		{"major-faults", "Guest major faults", FALSE},
	};
	gint64 updated = vmbc_cli_json_int(stats, "last-update", 0);

	for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree gchar *v = rows[i].pages ? dominfo_pages(cli, stats, rows[i].member)
						    : dominfo_count(stats, rows[i].member);
		dominfo_line(rows[i].label, v);
	}
	if (updated > 0) {
		g_autoptr(GDateTime) dt = g_date_time_new_from_unix_local(updated);
		g_autofree gchar *when = dt != NULL ? g_date_time_format(dt, "%F %T") : NULL;
		g_autofree gchar *v = g_strdup_printf(
			"%s (%" G_GINT64_FORMAT " s ago)", when != NULL ? when : "?",
			MAX(g_get_real_time() / G_USEC_PER_SEC - updated, (gint64)0));
		dominfo_line("Guest stats updated", v);
	} else {
		dominfo_line("Guest stats updated", "never");
	}
}

static void
dominfo_resources(VmbcCli *cli, JsonObject *dom)
{
	for (guint i = 0; vmbc_cli_resources[i] != NULL; i++) {
		JsonObject *res = vmbc_cli_find_resource(dom, vmbc_cli_resources[i]);
		g_autofree gchar *held = NULL;
		g_autofree gchar *maxheld = NULL;
		g_autofree gchar *barrier = NULL;
		g_autofree gchar *limit = NULL;
		g_autofree gchar *v = NULL;

		if (res == NULL)
			continue;
		held = dominfo_pages(cli, res, "held");
		maxheld = dominfo_pages(cli, res, "maxheld");
		barrier = dominfo_pages(cli, res, "barrier");
		limit = dominfo_pages(cli, res, "limit");
		v = g_strdup_printf(
			"held %s, maxheld %s, barrier %s, limit %s, failcnt %" G_GINT64_FORMAT,
			held, maxheld, barrier, limit, vmbc_cli_json_int(res, "failcnt", 0));
		dominfo_line(vmbc_cli_resources[i], v);
	}
}

gint
vmbc_cmd_dominfo(VmbcCli *cli, gint argc, gchar **argv)
{
	g_autoptr(JsonObject) args = json_object_new();
	g_autoptr(JsonObject) dom = NULL;
	g_autoptr(GList) members = NULL;
	JsonObject *reclaims;
	JsonNode *fpr;
	gint rc;

	if (!vmbc_cli_check_args(argv[0], argc, 2, 2))
		return VMBC_EXIT_USAGE;
	json_object_set_string_member(args, "domain", argv[1]);
	dom = vmbc_cli_query(cli, "query-domain", args, VMBC_CLI_TIMEOUT_MS, &rc);
	if (dom == NULL)
		return rc;

	{
		g_autofree gchar *id = dominfo_count(dom, "id");
		g_autofree gchar *pid = dominfo_count(dom, "pid");
		g_autofree gchar *max = dominfo_pages(cli, dom, "max");
		g_autofree gchar *actual = dominfo_pages(cli, dom, "actual");
		g_autofree gchar *target = dominfo_pages(cli, dom, "target");
		g_autofree gchar *guarantee = dominfo_pages(cli, dom, "guarantee");
		g_autofree gchar *shares = dominfo_count(dom, "shares");

		dominfo_line("Name", vmbc_cli_json_string(dom, "name", "?"));
		dominfo_line("Id", id);
		dominfo_line("Backend", vmbc_cli_json_string(dom, "backend", "unknown"));
		if (json_object_has_member(dom, "pid"))
			dominfo_line("Pid", pid);
		if (json_object_has_member(dom, "qmp-socket"))
			dominfo_line("QMP socket", vmbc_cli_json_string(dom, "qmp-socket", "?"));
		if (json_object_has_member(dom, "uri"))
			dominfo_line("URI", vmbc_cli_json_string(dom, "uri", "?"));
		dominfo_line("Max memory", max);
		dominfo_line("Balloon actual", actual);
		dominfo_line("Balloon target", target);
		dominfo_line("Guarantee", guarantee);
		dominfo_line("Shares", shares);
	}

	fpr = json_object_get_member(dom, "free-page-reporting");
	if (fpr != NULL && JSON_NODE_HOLDS_VALUE(fpr) &&
	    json_node_get_value_type(fpr) == G_TYPE_BOOLEAN)
		dominfo_line("Free page reporting", json_node_get_boolean(fpr) ? "on" : "off");
	else
		dominfo_line("Free page reporting", "unknown");
	dominfo_line("Balloon driver", vmbc_cli_json_string(dom, "balloon", "unknown"));
	dominfo_balloon_owner(cli, dom);
	dominfo_line("Reclaim state", vmbc_cli_json_string(dom, "reclaim", "unknown"));
	if (vmbc_cli_json_bool(dom, "memory-high-set", FALSE))
		dominfo_line("memory.high", "set by vmbcd (escalation); follows the limit up");

	reclaims = vmbc_cli_json_object(dom, "reclaims");
	if (reclaims != NULL) {
		JsonNode *last = json_object_get_member(reclaims, "last-seconds");
		g_autofree gchar *v = g_strdup_printf(
			"started %" G_GINT64_FORMAT ", done %" G_GINT64_FORMAT
			", failed %" G_GINT64_FORMAT ", last took %.1f s",
			vmbc_cli_json_int(reclaims, "started", 0),
			vmbc_cli_json_int(reclaims, "done", 0),
			vmbc_cli_json_int(reclaims, "failed", 0),
			last != NULL && JSON_NODE_HOLDS_VALUE(last) ? json_node_get_double(last)
								    : 0.0);
		dominfo_line("Reclaims", v);
	}

	dominfo_stats(cli, vmbc_cli_json_object(dom, "stats"));
	dominfo_resources(cli, dom);

	/* backend facts this version does not know by name */
	members = json_object_get_members(dom);
	for (GList *l = members; l != NULL; l = l->next) {
		const gchar *name = l->data;
		g_autofree gchar *v = NULL;
		if (g_strv_contains(dominfo_known, name))
			continue;
		v = dominfo_scalar(json_object_get_member(dom, name));
		dominfo_line(name, v);
	}
	return VMBC_EXIT_OK;
}
