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
	"name",
	"id",
	"backend",
	"pid",
	"qmp-socket",
	"uri",
	"max",
	"balloon",
	"free-page-reporting",
	"actual",
	"target",
	"guarantee",
	"shares",
	"reclaim",
	"stats",
	"reclaims",
	"resources",
	"memory-high-set",
	"balloon-owner",
	"balloon-set",
	"idle",
	"guest-ram",
	"ksm-merged",
	"ksm-saved",
	NULL,
};

static void
dominfo_line(const gchar *key, const gchar *value)
{
	g_autofree gchar *label = g_strdup_printf("%s:", key);
	g_print("%-22s%s\n", label, value);
}

static gchar *dominfo_pages(VmbcCli *cli, JsonObject *obj, const gchar *member);

/* Guest RAM as QEMU named it, what of it no balloon can take, what KSM saves. */
static void
dominfo_guest_ram(VmbcCli *cli, JsonObject *dom)
{
	JsonObject *ram = vmbc_cli_json_object(dom, "guest-ram");

	if (ram != NULL && vmbc_cli_json_int(ram, "size", 0) > 0) {
		g_autofree gchar *size = dominfo_pages(cli, ram, "size");
		g_autofree gchar *huge = dominfo_pages(cli, ram, "hugetlb-size");
		g_autofree gchar *rec = dominfo_pages(cli, ram, "balloon-reclaimable");
		g_autofree gchar *held = dominfo_pages(cli, ram, "hugetlb-held");
		g_autofree gchar *line = NULL;

		dominfo_line("Guest RAM", size);
		line = g_strdup_printf("%s (%s resident; not balloon-reclaimable)", huge, held);
		dominfo_line("Hugetlb-backed", line);
		dominfo_line("Balloon-reclaimable", rec);
	}
	if (json_object_has_member(dom, "ksm-saved")) {
		g_autofree gchar *merged = dominfo_pages(cli, dom, "ksm-merged");
		g_autofree gchar *saved = dominfo_pages(cli, dom, "ksm-saved");
		g_autofree gchar *line =
			g_strdup_printf("%s merged, %s paid by other sharers", merged, saved);
		dominfo_line("KSM", line);
	}
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

/* The idle memory the host's reclaim uses, and where the figure came from. */
static void
dominfo_idle(JsonObject *dom)
{
	JsonObject *idle = vmbc_cli_json_object(dom, "idle");
	JsonNode *fraction = idle != NULL ? json_object_get_member(idle, "fraction") : NULL;
	const gchar *source;
	g_autofree gchar *v = NULL;

	if (fraction == NULL || !JSON_NODE_HOLDS_VALUE(fraction))
		return;
	source = vmbc_cli_json_string(idle, "source", "none");
	if (g_strcmp0(source, "host") == 0) {
		gint64 spacing = vmbc_cli_json_int(idle, "spacing", 1);
		g_autofree gchar *every =
			spacing > 1
				? g_strdup_printf("%" G_GINT64_FORMAT " idle-intervals", spacing)
				: g_strdup("idle-interval");
		v = g_strdup_printf("%.0f%% (measured by the host %" G_GINT64_FORMAT
				    " s ago, every %s: dirty rate %" G_GINT64_FORMAT " KiB/s)",
				    json_node_get_double(fraction) * 100.0,
				    vmbc_cli_json_int(idle, "age-ms", 0) / 1000, every,
				    vmbc_cli_json_int(idle, "dirty-rate", 0) / 1024);
	} else if (g_strcmp0(source, "guest") == 0)
		v = g_strdup_printf("%.0f%% (the guest's word, no less than idle-assumed)",
				    json_node_get_double(fraction) * 100.0);
	else
		v = g_strdup_printf("%.0f%% (assumed: not measured)",
				    json_node_get_double(fraction) * 100.0);
	dominfo_line("Idle memory", v);
}

static gchar *
host_bytes(VmbcCli *cli, JsonObject *obj, const gchar *member)
{
	gint64 v = vmbc_cli_json_int(obj, member, -1);
	if (v < 0)
		return g_strdup("none");
	return vmbc_cli_format_pages(cli, v / MAX(vmbc_cli_page_size(cli), (gint64)1));
}

/* "vmbc dominfo host": the root's budget, where it comes from, and the pressure. */
static gint
dominfo_host(VmbcCli *cli, JsonObject *host)
{
	g_autofree gchar *budget = dominfo_pages(cli, host, "budget");
	g_autofree gchar *usage = host_bytes(cli, host, "cgroup-usage");
	g_autofree gchar *limit = host_bytes(cli, host, "cgroup-limit");
	g_autofree gchar *avail = host_bytes(cli, host, "mem-available");
	g_autofree gchar *reserve = dominfo_pages(cli, host, "reserve");
	g_autofree gchar *taken = dominfo_pages(cli, host, "taken");
	g_autofree gchar *given = dominfo_pages(cli, host, "given");
	g_autofree gchar *v = NULL;
	JsonNode *some = json_object_get_member(host, "psi-some-avg10");
	JsonNode *full = json_object_get_member(host, "psi-full-avg10");
	JsonNode *stall = json_object_get_member(host, "stall-percent");

	dominfo_line("Name", "host");
	dominfo_line("Id", "0");
	v = g_strdup_printf("%s (from %s)", budget,
			    vmbc_cli_json_string(host, "budget-source", "none"));
	dominfo_line("Budget", v);
	g_clear_pointer(&v, g_free);
	if (vmbc_cli_json_string(host, "cgroup", NULL) != NULL) {
		v = g_strdup_printf("%s (usage %s, limit %s)",
				    vmbc_cli_json_string(host, "cgroup", "?"), usage, limit);
		dominfo_line("VMs' cgroup", v);
		g_clear_pointer(&v, g_free);
	} else {
		dominfo_line("VMs' cgroup", "none");
	}
	v = g_strdup_printf("%s available, reserve %s", avail, reserve);
	dominfo_line("Host RAM", v);
	g_clear_pointer(&v, g_free);
	v = g_strdup_printf("%s%s", vmbc_cli_json_string(host, "psi-file", "none"),
			    vmbc_cli_json_bool(host, "psi-trigger", FALSE) ? " (trigger registered)"
									   : "");
	dominfo_line("PSI", v);
	g_clear_pointer(&v, g_free);
	v = g_strdup_printf(
		"some %.2f%%, full %.2f%% (avg10); stall last tick %.2f%%",
		some != NULL && JSON_NODE_HOLDS_VALUE(some) ? json_node_get_double(some) : -1.0,
		full != NULL && JSON_NODE_HOLDS_VALUE(full) ? json_node_get_double(full) : -1.0,
		stall != NULL && JSON_NODE_HOLDS_VALUE(stall) ? json_node_get_double(stall) : 0.0);
	dominfo_line("Memory pressure", v);
	g_clear_pointer(&v, g_free);
	dominfo_line("Pressured by", vmbc_cli_json_string(host, "pressure", "none"));
	v = g_strdup_printf("%" G_GINT64_FORMAT " steps, %s", vmbc_cli_json_int(host, "takes", 0),
			    taken);
	dominfo_line("Taken under pressure", v);
	g_clear_pointer(&v, g_free);
	v = g_strdup_printf("%" G_GINT64_FORMAT " steps, %s", vmbc_cli_json_int(host, "gives", 0),
			    given);
	dominfo_line("Given back", v);
	g_clear_pointer(&v, g_free);
	v = g_strdup_printf("%" G_GINT64_FORMAT, vmbc_cli_json_int(host, "triggers", 0));
	dominfo_line("PSI trigger wake-ups", v);
	dominfo_resources(cli, host);
	return VMBC_EXIT_OK;
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
	if (g_strcmp0(argv[1], "host") == 0 && json_object_has_member(dom, "budget-source"))
		return dominfo_host(cli, dom);

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
	dominfo_guest_ram(cli, dom);
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

	dominfo_idle(dom);
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
