/*
 * vmbc-control.c: the control socket (docs/control-protocol.md).
 *
 * Each command is one function taking the request's arguments. Arguments are
 * checked for presence and type before anything changes; a bad one is answered
 * with an error that names it, and the connection stays usable. Commands that
 * change limits answer only when the change took effect (the engine's
 * synchronous change path), so `vmbc setlimit` reports the real outcome.
 */
#include "config.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <sys/stat.h>
#include <json-glib/json-glib.h>

#include "qmp-server.h"
#include "vmbc-control.h"
#include "vmbc-daemon.h"

/* Control messages are small; a megabyte is generous. */
#define CONTROL_MAX_MESSAGE (1024 * 1024)

struct _VmbcControl {
	VmbcDaemon *daemon;
	QmpServer *server;
	gchar *path;
};

typedef void (*CommandFunc)(VmbcControl *self, QmpServerConnection *conn, JsonObject *args,
			    QmpRequest *req);

typedef struct {
	const gchar *name;
	gboolean changes; /* needs root or the admin group */
	CommandFunc func;
} Command;

static void
add_int(JsonBuilder *b, const gchar *name, gint64 v)
{
	json_builder_set_member_name(b, name);
	json_builder_add_int_value(b, v);
}

static void
add_str(JsonBuilder *b, const gchar *name, const gchar *v)
{
	json_builder_set_member_name(b, name);
	if (v != NULL)
		json_builder_add_string_value(b, v);
	else
		json_builder_add_null_value(b);
}

static void
build_resources(JsonBuilder *b, VmbcBeancounter *bc, gboolean host)
{
	json_builder_set_member_name(b, "resources");
	json_builder_begin_array(b);
	for (guint r = 0; r < VMBC_RES_COUNT; r++) {
		const VmbcParm *p = &bc->parm[r];
		if (host && r != VMBC_RES_PHYSPAGES)
			continue;
		json_builder_begin_object(b);
		add_str(b, "resource", vmbc_resource_name(r));
		add_int(b, "held", p->held);
		add_int(b, "maxheld", p->maxheld);
		add_int(b, "minheld", p->minheld);
		add_int(b, "barrier", p->barrier);
		add_int(b, "limit", p->limit);
		add_int(b, "failcnt", (gint64)MIN(p->failcnt, (guint64)G_MAXINT64));
		json_builder_end_object(b);
	}
	json_builder_end_array(b);
}

static void
build_bc(JsonBuilder *b, VmbcBeancounter *bc, gboolean host)
{
	json_builder_begin_object(b);
	add_int(b, "id", bc->id);
	add_str(b, "name", bc->name);
	build_resources(b, bc, host);
	json_builder_end_object(b);
}

static void
build_domain(VmbcControl *self, JsonBuilder *b, VmbcBeancounter *bc)
{
	VmbcBackend *backend = vmbc_daemon_get_backend_for(self->daemon, bc);
	const VmbcGuestStats *s = &bc->stats;
	VmbcReclaimCounters reclaims;

	json_builder_begin_object(b);
	add_str(b, "name", bc->name);
	add_int(b, "id", bc->id);
	add_str(b, "backend", backend != NULL ? vmbc_backend_get_name(backend) : NULL);
	add_int(b, "max", bc->max_pages);
	add_str(b, "balloon", vmbc_balloon_state_to_string(bc->balloon));
	json_builder_set_member_name(b, "free-page-reporting");
	if (bc->free_page_reporting < 0)
		json_builder_add_null_value(b);
	else
		json_builder_add_boolean_value(b, bc->free_page_reporting > 0);
	add_int(b, "actual", bc->balloon_actual);
	add_int(b, "target", bc->balloon_target);
	add_str(b, "balloon-owner",
		vmbc_balloon_owner_to_string(vmbc_beancounter_balloon_owner(bc)));
	json_builder_set_member_name(b, "balloon-set");
	if (vmbc_beancounter_balloon_owner(bc) == VMBC_BALLOON_OWNER_VMBCD) {
		json_builder_begin_object(b);
		add_int(b, "target", bc->balloon_claim.target);
		add_int(b, "before", bc->balloon_claim.before);
		add_int(b, "limit", bc->balloon_claim.limit);
		add_str(b, "reason", vmbc_balloon_reason_to_string(bc->balloon_claim.reason));
		json_builder_end_object(b);
	} else {
		json_builder_add_null_value(b);
	}
	add_int(b, "guarantee", vmbc_beancounter_guarantee(bc));
	add_int(b, "shares", bc->shares);
	json_builder_set_member_name(b, "trust-guest");
	json_builder_add_boolean_value(b, bc->trust_guest);
	add_str(b, "reclaim", vmbc_reclaim_state_to_string(vmbc_physpages_get_reclaim(bc)));
	json_builder_set_member_name(b, "memory-high-set");
	json_builder_add_boolean_value(b, bc->memory_high_set);
	add_int(b, "ksm-merged", bc->ksm_pages);
	{
		VmbcIdleSource source = VMBC_IDLE_NONE;
		gdouble idle = vmbc_engine_idle_fraction(vmbc_daemon_get_engine(self->daemon), bc,
							 &source);
		json_builder_set_member_name(b, "idle");
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "fraction");
		json_builder_add_double_value(b, idle);
		add_str(b, "source", vmbc_idle_source_to_string(source));
		add_int(b, "dirty-rate", bc->dirty_rate);
		/* how long ago the host measured it (ms, -1 never), and how often it does now */
		add_int(b, "age-ms",
			bc->dirty_rate_at > 0
				? (vmbc_daemon_now(self->daemon) - bc->dirty_rate_at) / 1000
				: -1);
		add_int(b, "spacing",
			vmbc_engine_idle_measure_spacing(vmbc_daemon_get_engine(self->daemon), bc));
		json_builder_end_object(b);
	}
	add_int(b, "ksm-saved", bc->ksm_saved_pages);
	json_builder_set_member_name(b, "guest-ram");
	json_builder_begin_object(b);
	add_int(b, "size", bc->ram_pages);
	add_int(b, "hugetlb-size", bc->ram_hugetlb_pages);
	add_int(b, "balloon-reclaimable", MAX(bc->ram_pages - bc->ram_hugetlb_pages, 0));
	add_int(b, "hugetlb-held", bc->hugetlb_pages);
	json_builder_end_object(b);
	json_builder_set_member_name(b, "virtio-mem");
	if (bc->has_vmem) {
		json_builder_begin_object(b);
		add_str(b, "id", bc->vmem_id);
		add_int(b, "size", bc->vmem.size);
		add_int(b, "requested", bc->vmem.requested);
		add_int(b, "max", bc->vmem.max);
		add_int(b, "block", bc->vmem.block);
		add_int(b, "stalls", (gint64)bc->vmem_stalls);
		json_builder_end_object(b);
	} else {
		json_builder_add_null_value(b);
	}
	json_builder_set_member_name(b, "stats");
	json_builder_begin_object(b);
	add_int(b, "available", s->available);
	add_int(b, "free", s->free);
	add_int(b, "caches", s->caches);
	add_int(b, "total", s->total);
	add_int(b, "swap-in", s->swap_in);
	add_int(b, "major-faults", s->major_faults);
	add_int(b, "last-update", s->last_update);
	json_builder_end_object(b);
	vmbc_physpages_get_counters(bc, &reclaims);
	json_builder_set_member_name(b, "reclaims");
	json_builder_begin_object(b);
	add_int(b, "started", (gint64)reclaims.started);
	add_int(b, "done", (gint64)reclaims.done);
	add_int(b, "failed", (gint64)reclaims.failed);
	add_int(b, "stalls", (gint64)reclaims.stalls);
	json_builder_set_member_name(b, "last-seconds");
	json_builder_add_double_value(b, reclaims.seconds_last);
	json_builder_end_object(b);
	build_resources(b, bc, FALSE);
	if (backend != NULL)
		vmbc_backend_describe(backend, bc, b);
	json_builder_end_object(b);
}

static void
add_double(JsonBuilder *b, const gchar *name, gdouble v)
{
	json_builder_set_member_name(b, name);
	json_builder_add_double_value(b, v);
}

/* query-domain of "host": the root, its budget and where it comes from, and the pressure. */
static void
build_host(VmbcControl *self, JsonBuilder *b)
{
	VmbcEngine *engine = vmbc_daemon_get_engine(self->daemon);
	const VmbcHostState *st = vmbc_engine_get_host_state(engine);
	const VmbcHostInfo *info = vmbc_daemon_get_host_info(self->daemon);

	json_builder_begin_object(b);
	add_str(b, "name", "host");
	add_int(b, "id", 0);
	add_str(b, "budget-source", vmbc_budget_source_to_string(st->signals.source));
	add_int(b, "budget", st->signals_known ? st->signals.budget : -1);
	add_str(b, "cgroup", info->cgroup);
	add_int(b, "cgroup-usage", info->cgroup_usage);
	add_int(b, "cgroup-limit", info->cgroup_limit);
	add_int(b, "mem-available", info->mem_available);
	add_int(b, "reserve", info->reserve);
	add_str(b, "psi-file", info->psi_file);
	json_builder_set_member_name(b, "psi-trigger");
	json_builder_add_boolean_value(b, info->trigger);
	add_double(b, "psi-some-avg10", st->signals.psi_some_avg10);
	add_double(b, "psi-full-avg10", st->signals.psi_full_avg10);
	add_double(b, "stall-percent", st->stall_percent);
	add_str(b, "pressure", vmbc_pressure_reason_to_string(st->reason));
	add_int(b, "triggers", (gint64)st->triggers);
	add_int(b, "takes", (gint64)st->takes);
	add_int(b, "taken", st->taken_pages);
	add_int(b, "gives", (gint64)st->gives);
	add_int(b, "given", st->given_pages);
	build_resources(b, vmbc_engine_get_host(engine), TRUE);
	json_builder_end_object(b);
}

static JsonNode *
finish(JsonBuilder *b)
{
	return json_builder_get_root(b);
}

/* Looks up the "domain" argument; answers the request with an error if it fails. */
static VmbcBeancounter *
get_domain(VmbcControl *self, JsonObject *args, QmpRequest *req, gboolean allow_host)
{
	JsonNode *node = args != NULL ? json_object_get_member(args, "domain") : NULL;
	const gchar *name;
	VmbcBeancounter *bc;

	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) ||
	    json_node_get_value_type(node) != G_TYPE_STRING) {
		qmp_request_error(req, QMP_ERROR_GENERIC_ERROR,
				  "missing or non-string argument 'domain'");
		return NULL;
	}
	name = json_node_get_string(node);
	bc = vmbc_engine_lookup(vmbc_daemon_get_engine(self->daemon), name);
	if (bc == NULL ||
	    (!allow_host && bc == vmbc_engine_get_host(vmbc_daemon_get_engine(self->daemon)))) {
		qmp_request_error(req, QMP_ERROR_GENERIC_ERROR, "no domain named '%s'", name);
		return NULL;
	}
	return bc;
}

/* An optional boolean argument: FALSE (after answering) if it is there and not a boolean. */
static gboolean
get_bool(JsonObject *args, const gchar *member, gboolean *out, QmpRequest *req)
{
	JsonNode *node = args != NULL ? json_object_get_member(args, member) : NULL;

	if (node == NULL)
		return TRUE;
	if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_BOOLEAN) {
		qmp_request_error(req, QMP_ERROR_GENERIC_ERROR,
				  "invalid '%s': expected true or false", member);
		return FALSE;
	}
	*out = json_node_get_boolean(node);
	return TRUE;
}

/* A size argument: integer pages or a size string resolved against @max_pages. */
static gboolean
get_size(JsonObject *args, const gchar *member, gint64 max_pages, gint64 *out, QmpRequest *req)
{
	JsonNode *node = args != NULL ? json_object_get_member(args, member) : NULL;
	g_autoptr(GError) error = NULL;

	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node)) {
		qmp_request_error(req, QMP_ERROR_GENERIC_ERROR, "missing argument '%s'", member);
		return FALSE;
	}
	if (json_node_get_value_type(node) == G_TYPE_INT64) {
		gint64 v = json_node_get_int(node);
		if (v < 0) {
			qmp_request_error(req, QMP_ERROR_GENERIC_ERROR,
					  "invalid '%s': %" G_GINT64_FORMAT " pages is negative",
					  member, v);
			return FALSE;
		}
		*out = v;
		return TRUE;
	}
	if (json_node_get_value_type(node) != G_TYPE_STRING) {
		qmp_request_error(req, QMP_ERROR_GENERIC_ERROR,
				  "invalid '%s': expected pages or a size string", member);
		return FALSE;
	}
	if (!vmbc_size_parse(json_node_get_string(node), vmbc_page_size(), max_pages, out,
			     &error)) {
		qmp_request_error(req, QMP_ERROR_GENERIC_ERROR, "%s for '%s'", error->message,
				  member);
		return FALSE;
	}
	return TRUE;
}

static void
cmd_query_version(VmbcControl *self, QmpServerConnection *conn, JsonObject *args, QmpRequest *req)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	GPtrArray *backends = vmbc_daemon_get_backends(self->daemon);

	json_builder_begin_object(b);
	add_str(b, "version", VMBC_VERSION);
	add_int(b, "page-size", (gint64)vmbc_page_size());
	json_builder_set_member_name(b, "backends");
	json_builder_begin_array(b);
	for (guint i = 0; i < backends->len; i++)
		json_builder_add_string_value(
			b, vmbc_backend_get_name(g_ptr_array_index(backends, i)));
	json_builder_end_array(b);
	add_int(b, "tick-ms", vmbc_daemon_get_config(self->daemon)->engine.tick_usec / 1000);
	json_builder_end_object(b);
	qmp_request_return(req, finish(b));
}

static void
cmd_query_beancounters(VmbcControl *self, QmpServerConnection *conn, JsonObject *args,
		       QmpRequest *req)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	VmbcEngine *engine = vmbc_daemon_get_engine(self->daemon);
	GPtrArray *vms = vmbc_engine_get_vms(engine);

	json_builder_begin_object(b);
	add_int(b, "page-size", (gint64)vmbc_page_size());
	json_builder_set_member_name(b, "beancounters");
	json_builder_begin_array(b);
	build_bc(b, vmbc_engine_get_host(engine), TRUE);
	for (guint i = 0; i < vms->len; i++)
		build_bc(b, g_ptr_array_index(vms, i), FALSE);
	json_builder_end_array(b);
	json_builder_end_object(b);
	qmp_request_return(req, finish(b));
}

static void
cmd_query_domains(VmbcControl *self, QmpServerConnection *conn, JsonObject *args, QmpRequest *req)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	GPtrArray *vms = vmbc_engine_get_vms(vmbc_daemon_get_engine(self->daemon));

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "domains");
	json_builder_begin_array(b);
	for (guint i = 0; i < vms->len; i++)
		build_domain(self, b, g_ptr_array_index(vms, i));
	json_builder_end_array(b);
	json_builder_end_object(b);
	qmp_request_return(req, finish(b));
}

static void
cmd_query_domain(VmbcControl *self, QmpServerConnection *conn, JsonObject *args, QmpRequest *req)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	VmbcBeancounter *bc = get_domain(self, args, req, TRUE);

	if (bc == NULL)
		return;
	if (bc == vmbc_engine_get_host(vmbc_daemon_get_engine(self->daemon)))
		build_host(self, b);
	else
		build_domain(self, b, bc);
	qmp_request_return(req, finish(b));
}

typedef struct {
	QmpRequest *req;
	VmbcResourceId res;
	gboolean reclaim;
	/* set-limit --persist: the reply waits for the change and the metadata write */
	VmbcDaemon *daemon;
	VmbcBeancounter *bc; /* a reference while persisting */
	guint waiting;
	gboolean persist;
	gboolean reset; /* reset-limit: the reply says where the limits come from now */
	GError *change_error;
	GError *persist_error;
} PendingReply;

static void pending_reply(VmbcBeancounter *bc, const GError *error, PendingReply *p);

/* The reply to @req, kept until the change it waits for is done. */
static PendingReply *
pending_new(VmbcControl *self, QmpRequest *req)
{
	PendingReply *p = g_new0(PendingReply, 1);

	p->req = req;
	p->daemon = self->daemon;
	return p;
}

static void
pending_free(PendingReply *p)
{
	g_clear_error(&p->change_error);
	g_clear_error(&p->persist_error);
	g_clear_pointer(&p->bc, vmbc_beancounter_unref);
	g_free(p);
}

static void
on_change_done(VmbcBeancounter *bc, const GError *error, gpointer user_data)
{
	PendingReply *p = user_data;

	if (!p->persist) {
		pending_reply(bc, error, p);
		return;
	}
	if (error != NULL)
		p->change_error = g_error_copy(error);
	if (--p->waiting == 0)
		pending_reply(p->bc, p->change_error, p);
}

static void
on_persisted(GObject *source, GAsyncResult *res, gpointer user_data)
{
	PendingReply *p = user_data;

	if (!vmbc_daemon_persist_finish(p->daemon, res, &p->persist_error))
		g_prefix_error(&p->persist_error,
			       "the %s limits of '%s' are set, but not kept in its metadata: ",
			       vmbc_resource_name(p->res), p->bc->name);
	if (--p->waiting == 0)
		pending_reply(p->bc, p->change_error, p);
}

/* After reset-limit: vmbc.conf, or for the host without [host] limits its measured budget. */
static void
add_reset_from(PendingReply *p, VmbcBeancounter *bc, JsonBuilder *b)
{
	VmbcEngine *engine = vmbc_daemon_get_engine(p->daemon);
	VmbcBudgetSource source = vmbc_engine_get_host_state(engine)->signals.source;
	g_autofree gchar *from = NULL;

	if (bc == vmbc_engine_get_host(engine) && source != VMBC_BUDGET_CONFIG)
		from = g_strdup_printf("the host's budget (%s)",
				       vmbc_budget_source_to_string(source));
	add_str(b, "from", from != NULL ? from : "vmbc.conf");
}

static void
pending_reply(VmbcBeancounter *bc, const GError *error, PendingReply *p)
{
	g_autoptr(JsonBuilder) b = NULL;

	if (error == NULL && p->persist_error != NULL)
		error = p->persist_error;
	if (error != NULL) {
		qmp_request_error(p->req, QMP_ERROR_GENERIC_ERROR, "%s", error->message);
		pending_free(p);
		return;
	}
	b = json_builder_new();
	json_builder_begin_object(b);
	add_str(b, "domain", bc->name);
	if (p->reclaim) {
		add_int(b, "actual", bc->balloon_actual);
		add_int(b, "held", bc->parm[VMBC_RES_PHYSPAGES].held);
	} else {
		const VmbcParm *parm = &bc->parm[p->res];
		add_str(b, "resource", vmbc_resource_name(p->res));
		add_int(b, "held", parm->held);
		add_int(b, "barrier", parm->barrier);
		add_int(b, "limit", parm->limit);
		add_int(b, "failcnt", (gint64)parm->failcnt);
		if (p->reset)
			add_reset_from(p, bc, b);
		if (p->persist) {
			json_builder_set_member_name(b, "persisted");
			json_builder_add_boolean_value(b, TRUE);
		}
	}
	json_builder_end_object(b);
	qmp_request_return(p->req, finish(b));
	pending_free(p);
}

/* The 'resource' argument: a resource's name, and only physpages for the host. */
static gboolean
get_resource(VmbcControl *self, VmbcBeancounter *bc, JsonObject *args, VmbcResourceId *res,
	     QmpRequest *req)
{
	g_autoptr(GError) error = NULL;
	JsonNode *rnode = json_object_get_member(args, "resource");

	if (rnode == NULL || !JSON_NODE_HOLDS_VALUE(rnode) ||
	    json_node_get_value_type(rnode) != G_TYPE_STRING) {
		qmp_request_error(req, QMP_ERROR_GENERIC_ERROR,
				  "missing or non-string argument 'resource'");
		return FALSE;
	}
	if (!vmbc_resource_from_name(json_node_get_string(rnode), res, &error)) {
		qmp_request_error(req, QMP_ERROR_GENERIC_ERROR, "%s", error->message);
		return FALSE;
	}
	if (bc == vmbc_engine_get_host(vmbc_daemon_get_engine(self->daemon)) &&
	    *res != VMBC_RES_PHYSPAGES) {
		qmp_request_error(req, QMP_ERROR_GENERIC_ERROR,
				  "the host beancounter has only physpages");
		return FALSE;
	}
	return TRUE;
}

static void
cmd_set_limit(VmbcControl *self, QmpServerConnection *conn, JsonObject *args, QmpRequest *req)
{
	g_autoptr(GError) error = NULL;
	VmbcBeancounter *bc = get_domain(self, args, req, TRUE);
	VmbcResourceId res;
	gint64 barrier, limit;
	gboolean persist = FALSE;
	PendingReply *p;

	if (bc == NULL || !get_resource(self, bc, args, &res, req))
		return;
	if (!get_size(args, "barrier", bc->max_pages, &barrier, req))
		return;
	if (json_object_has_member(args, "limit")) {
		if (!get_size(args, "limit", bc->max_pages, &limit, req))
			return;
	} else {
		limit = barrier;
	}
	if (!get_bool(args, "persist", &persist, req))
		return;
	/* refused before anything changes: no limit set that the metadata would not carry */
	if (persist && !vmbc_daemon_can_persist(self->daemon, bc, &error)) {
		qmp_request_error(req, QMP_ERROR_GENERIC_ERROR, "%s", error->message);
		return;
	}
	p = pending_new(self, req);
	p->res = res;
	p->persist = persist;
	p->waiting = 2;
	if (!vmbc_daemon_set_limits(self->daemon, bc, res, barrier, limit, on_change_done, p,
				    &error)) {
		g_free(p);
		qmp_request_error(req, QMP_ERROR_GENERIC_ERROR, "%s", error->message);
		return;
	}
	/* the limits are in the beancounter now, the reclaim may still run */
	if (persist) {
		p->bc = vmbc_beancounter_ref(bc);
		vmbc_daemon_persist(self->daemon, bc, on_persisted, p);
	}
}

/* reset-limit: the runtime limits of a resource forgotten, vmbc.conf's again (or the host's). */
static void
cmd_reset_limit(VmbcControl *self, QmpServerConnection *conn, JsonObject *args, QmpRequest *req)
{
	g_autoptr(GError) error = NULL;
	VmbcBeancounter *bc = get_domain(self, args, req, TRUE);
	VmbcResourceId res;
	PendingReply *p;

	if (bc == NULL || !get_resource(self, bc, args, &res, req))
		return;
	p = pending_new(self, req);
	p->res = res;
	p->reset = TRUE;
	if (!vmbc_daemon_reset_limits(self->daemon, bc, res, on_change_done, p, &error)) {
		g_free(p);
		qmp_request_error(req, QMP_ERROR_GENERIC_ERROR, "%s", error->message);
	}
}

static void
cmd_set_guarantee(VmbcControl *self, QmpServerConnection *conn, JsonObject *args, QmpRequest *req)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonBuilder) b = json_builder_new();
	VmbcBeancounter *bc = get_domain(self, args, req, FALSE);
	gint64 pages;

	if (bc == NULL)
		return;
	if (!get_size(args, "size", bc->max_pages, &pages, req))
		return;
	if (pages == VMBC_UNLIMITED) {
		qmp_request_error(req, QMP_ERROR_GENERIC_ERROR,
				  "a guarantee must be a size, not unlimited");
		return;
	}
	if (!vmbc_daemon_set_limits(self->daemon, bc, VMBC_RES_VMGUARPAGES, pages, VMBC_UNLIMITED,
				    NULL, NULL, &error)) {
		qmp_request_error(req, QMP_ERROR_GENERIC_ERROR, "%s", error->message);
		return;
	}
	json_builder_begin_object(b);
	add_str(b, "domain", bc->name);
	add_int(b, "guarantee", vmbc_beancounter_guarantee(bc));
	json_builder_end_object(b);
	qmp_request_return(req, finish(b));
}

static void
cmd_reclaim(VmbcControl *self, QmpServerConnection *conn, JsonObject *args, QmpRequest *req)
{
	g_autoptr(GError) error = NULL;
	VmbcBeancounter *bc = get_domain(self, args, req, FALSE);
	gint64 pages;
	PendingReply *p;

	if (bc == NULL)
		return;
	if (!get_size(args, "size", bc->max_pages, &pages, req))
		return;
	p = pending_new(self, req);
	p->reclaim = TRUE;
	if (!vmbc_engine_reclaim(vmbc_daemon_get_engine(self->daemon), bc, pages,
				 vmbc_daemon_now(self->daemon), on_change_done, p, &error)) {
		g_free(p);
		qmp_request_error(req, QMP_ERROR_GENERIC_ERROR, "%s", error->message);
	}
}

static void
cmd_reset_counters(VmbcControl *self, QmpServerConnection *conn, JsonObject *args, QmpRequest *req)
{
	VmbcBeancounter *bc = get_domain(self, args, req, TRUE);
	if (bc == NULL)
		return;
	vmbc_beancounter_reset(bc);
	g_info("counters of '%s' reset", bc->name);
	qmp_request_return(req, NULL);
}

static const Command commands[] = {
	{"query-version", FALSE, cmd_query_version},
	{"query-beancounters", FALSE, cmd_query_beancounters},
	{"query-domains", FALSE, cmd_query_domains},
	{"query-domain", FALSE, cmd_query_domain},
	{"set-limit", TRUE, cmd_set_limit},
	{"reset-limit", TRUE, cmd_reset_limit},
	{"set-guarantee", TRUE, cmd_set_guarantee},
	{"reclaim", TRUE, cmd_reclaim},
	{"reset-counters", TRUE, cmd_reset_counters},
};

/* Is @gid among the supplementary groups of @pid (from /proc/PID/status)? */
static gboolean
pid_in_group(pid_t pid, gid_t gid)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/status", (int)pid);
	g_autofree gchar *text = NULL;
	g_auto(GStrv) lines = NULL;

	if (pid <= 0 || !g_file_get_contents(path, &text, NULL, NULL))
		return FALSE;
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		g_auto(GStrv) ids = NULL;
		if (!g_str_has_prefix(lines[i], "Groups:"))
			continue;
		ids = g_strsplit_set(lines[i] + strlen("Groups:"), " \t", -1);
		for (guint j = 0; ids[j] != NULL; j++) {
			if (*ids[j] != '\0' && g_ascii_strtoull(ids[j], NULL, 10) == gid)
				return TRUE;
		}
	}
	return FALSE;
}

static gboolean
peer_may_change(VmbcControl *self, QmpServerConnection *conn, gchar **why)
{
	const gchar *group = vmbc_daemon_get_config(self->daemon)->admin_group;
	uid_t uid = qmp_server_connection_get_peer_uid(conn);
	gid_t gid = qmp_server_connection_get_peer_gid(conn);
	struct group *gr;

	if (uid == 0)
		return TRUE;
	if (group == NULL) {
		*why = g_strdup_printf("permission denied: uid %d may only query; changes need "
				       "root (no admin-group is configured)",
				       (int)uid);
		return FALSE;
	}
	gr = getgrnam(group);
	if (gr != NULL && (gid == gr->gr_gid ||
			   pid_in_group(qmp_server_connection_get_peer_pid(conn), gr->gr_gid)))
		return TRUE;
	*why = g_strdup_printf("permission denied: uid %d may only query; changes need root or "
			       "group '%s'",
			       (int)uid, group);
	return FALSE;
}

static gboolean
on_command(QmpServer *server, QmpServerConnection *conn, const gchar *name, JsonObject *args,
	   QmpRequest *req, gpointer user_data)
{
	VmbcControl *self = user_data;

	for (guint i = 0; i < G_N_ELEMENTS(commands); i++) {
		g_autofree gchar *why = NULL;
		if (g_strcmp0(commands[i].name, name) != 0)
			continue;
		if (commands[i].changes && !peer_may_change(self, conn, &why)) {
			g_info("control: refused '%s' from uid %d", name,
			       (int)qmp_server_connection_get_peer_uid(conn));
			qmp_request_error(req, QMP_ERROR_GENERIC_ERROR, "%s", why);
			return TRUE;
		}
		commands[i].func(self, conn, args, req);
		return TRUE;
	}
	return FALSE;
}

static void
on_event(VmbcDaemon *daemon, const VmbcEvent *ev, gpointer user_data)
{
	VmbcControl *self = user_data;
	g_autoptr(JsonObject) data = json_object_new();

	json_object_set_string_member(data, "domain", ev->bc->name);
	json_object_set_string_member(data, "resource", vmbc_resource_name(ev->resource));
	json_object_set_int_member(data, "held", ev->held);
	json_object_set_int_member(data, "barrier", ev->barrier);
	json_object_set_int_member(data, "limit", ev->limit);
	json_object_set_int_member(data, "target", ev->target);
	if (ev->type == VMBC_EVENT_RECLAIM_FAILED || ev->type == VMBC_EVENT_GUARANTEE_REFUSED)
		json_object_set_string_member(data, "reason", vmbc_error_to_string(ev->reason));
	else
		json_object_set_null_member(data, "reason");
	json_object_set_string_member(data, "message", ev->message);
	if (ev->sample_age_usec >= 0)
		json_object_set_int_member(data, "sample-age-us", ev->sample_age_usec);
	qmp_server_broadcast_event(self->server, vmbc_event_type_to_string(ev->type), data);
}

VmbcControl *
vmbc_control_new(VmbcDaemon *daemon)
{
	VmbcControl *self = g_new0(VmbcControl, 1);
	g_autoptr(JsonObject) greeting = json_object_new();
	g_autoptr(JsonObject) version = json_object_new();

	json_object_set_string_member(version, "vmbc", VMBC_VERSION);
	json_object_set_object_member(greeting, "version", g_steal_pointer(&version));
	json_object_set_array_member(greeting, "capabilities", json_array_new());
	self->daemon = daemon;
	self->server = qmp_server_new(greeting);
	qmp_server_set_max_message_size(self->server, CONTROL_MAX_MESSAGE);
	g_signal_connect(self->server, "command", G_CALLBACK(on_command), self);
	vmbc_daemon_add_event_listener(daemon, on_event, self);
	return self;
}

void
vmbc_control_free(VmbcControl *self)
{
	if (self == NULL)
		return;
	qmp_server_close(self->server);
	g_object_unref(self->server);
	if (self->path != NULL)
		g_unlink(self->path);
	g_free(self->path);
	g_free(self);
}

gboolean
vmbc_control_listen(VmbcControl *self, const gchar *path, GError **error)
{
	g_autofree gchar *dir = g_path_get_dirname(path);

	if (g_mkdir_with_parents(dir, 0755) != 0) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED, "cannot create %s: %s", dir,
			    g_strerror(errno));
		return FALSE;
	}
	if (!qmp_server_listen_unix(self->server, path, error)) {
		g_prefix_error(error, "control socket %s: ", path);
		return FALSE;
	}
	/* anyone may connect and query; changes are checked per command */
	if (chmod(path, 0666) != 0)
		g_warning("cannot chmod %s: %s", path, g_strerror(errno));
	self->path = g_strdup(path);
	g_info("control socket listening on %s", path);
	return TRUE;
}
