/*
 * vmbc-metrics.c: the Prometheus endpoint of vmbcd (docs/metrics.md lists
 * every family).
 *
 * Two halves. The renderer walks the engine's beancounters once per family
 * and appends straight into one GString: no per-VM allocation on a scrape
 * (each VM's escaped label is made once, when the VM is first seen), so a
 * page of thousands of VMs costs a few milliseconds of the main loop. The
 * server half is libsoup 3 fed by our own GSocketService, so that every
 * connection is known here: a request must arrive within
 * VMBC_METRICS_REQUEST_TIMEOUT_USEC, at most VMBC_METRICS_MAX_CONNECTIONS are
 * served at once, anything but GET/HEAD of /metrics and /healthz is refused
 * from its headers alone (a body is never read), and libsoup caps the header
 * size. The engine's tick runs at a higher priority than any of this.
 */
#include "config.h"

#include <libsoup/soup.h>
#include <string.h>

#include "vmbc-metrics.h"
#include "vmbc-size.h"

#define CONTENT_TYPE_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define SWEEP_INTERVAL_MS    500

const gdouble vmbc_reclaim_bucket_bounds[VMBC_RECLAIM_BUCKETS] = {
	0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
};

/* What the endpoint keeps per VM: its label, made once, and the reclaim histogram. */
typedef struct {
	VmbcBeancounter *bc; /* not a reference: the key, valid while the VM is in the engine */
	guint id;	     /* to tell a new beancounter at a recycled address */
	gchar *label;	     /* domain="NAME", escaped */
	guint64 buckets[VMBC_RECLAIM_BUCKETS]; /* cumulative, as exposed */
	guint64 count;
	gdouble sum;
	guint64 seen; /* render generation that last saw the VM */
} VmEntry;

/* A client connection we handed to libsoup. */
typedef struct {
	GSocketConnection *stream;
	gint64 deadline; /* monotonic usec: a request must be done by then */
	gboolean shut;	 /* deadline passed and the socket was shut down */
} Conn;

struct _VmbcMetrics {
	VmbcDaemon *daemon;
	SoupServer *server;
	GSocketService *service;
	guint16 port;
	GHashTable *vms;    /* VmbcBeancounter* -> VmEntry* */
	GPtrArray *scratch; /* VmEntry*, in engine order; reused by every render */
	GPtrArray *conns;   /* Conn* */
	guint sweep_id;
	guint64 generation;
	gsize last_page_len;
	guint64 scrapes;
	guint64 closed_timeout;
	guint64 closed_overload;
	gdouble last_render_seconds;
	gchar **reclaim_le; /* vmbc_reclaim_bucket_bounds as text */
	gchar **tick_le;    /* vmbc_tick_bucket_bounds as text */
};

/*
 * The daemon has no way to remove an event listener, so the listener checks
 * that its endpoint still exists before touching it.
 */
static GPtrArray *live_endpoints = NULL;

/* --- text format helpers ------------------------------------------------ */

static void
append_i64(GString *out, gint64 v)
{
	gchar buf[24];
	gchar *p = buf + sizeof(buf);
	guint64 u = v < 0 ? (guint64)0 - (guint64)v : (guint64)v;

	do {
		*--p = (gchar)('0' + (u % 10));
		u /= 10;
	} while (u != 0);
	if (v < 0)
		*--p = '-';
	g_string_append_len(out, p, buf + sizeof(buf) - p);
}

static void
append_u64(GString *out, guint64 v)
{
	gchar buf[24];
	gchar *p = buf + sizeof(buf);

	do {
		*--p = (gchar)('0' + (v % 10));
		v /= 10;
	} while (v != 0);
	g_string_append_len(out, p, buf + sizeof(buf) - p);
}

/* A float sample value: shortest "%g" form that reads back the same, C locale. */
static void
append_double(GString *out, gdouble v)
{
	gchar buf[G_ASCII_DTOSTR_BUF_SIZE];

	if (v != v) {
		g_string_append(out, "NaN");
		return;
	}
	if (v > G_MAXDOUBLE || v < -G_MAXDOUBLE) {
		g_string_append(out, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	g_ascii_formatd(buf, sizeof(buf), "%.15g", v);
	if (g_ascii_strtod(buf, NULL) != v)
		g_ascii_formatd(buf, sizeof(buf), "%.17g", v);
	g_string_append(out, buf);
}

void
vmbc_metrics_append_label_value(GString *out, const gchar *value)
{
	g_autofree gchar *valid = NULL;

	if (!g_utf8_validate(value, -1, NULL)) {
		valid = g_utf8_make_valid(value, -1);
		value = valid;
	}
	for (const gchar *p = value; *p != '\0'; p++) {
		switch (*p) {
		case '\\':
			g_string_append(out, "\\\\");
			break;
		case '"':
			g_string_append(out, "\\\"");
			break;
		case '\n':
			g_string_append(out, "\\n");
			break;
		default:
			g_string_append_c(out, *p);
		}
	}
}

static void
family(GString *out, const gchar *name, const gchar *type, const gchar *help)
{
	g_string_append(out, "# HELP ");
	g_string_append(out, name);
	g_string_append_c(out, ' ');
	g_string_append(out, help);
	g_string_append(out, "\n# TYPE ");
	g_string_append(out, name);
	g_string_append_c(out, ' ');
	g_string_append(out, type);
	g_string_append_c(out, '\n');
}

/* "NAME{LABELS" with LABELS already escaped; the caller closes with sample_end_*. */
static void
sample_start(GString *out, const gchar *name, const gchar *labels)
{
	g_string_append(out, name);
	g_string_append_c(out, '{');
	g_string_append(out, labels);
}

static void
sample_end_i64(GString *out, gint64 v)
{
	g_string_append(out, "} ");
	append_i64(out, v);
	g_string_append_c(out, '\n');
}

static void
sample_end_u64(GString *out, guint64 v)
{
	g_string_append(out, "} ");
	append_u64(out, v);
	g_string_append_c(out, '\n');
}

static void
append_resource_label(GString *out, VmbcResourceId r)
{
	g_string_append(out, "resource=\"");
	g_string_append(out, vmbc_resource_name(r));
	g_string_append_c(out, '"');
}

/*
 * One histogram series: NAME_bucket{LABELS,le=...} for every bound and +Inf,
 * then NAME_sum and NAME_count. @bounds are the bucket bounds as text (see
 * format_bounds()), @buckets the cumulative counts; @labels may be "".
 */
static void
histogram(GString *out, const gchar *name, const gchar *labels, gchar *const *bounds,
	  const guint64 *buckets, guint n, guint64 count, gdouble sum)
{
	const gchar *sep = *labels != '\0' ? "," : "";

	for (guint i = 0; i <= n; i++) {
		g_string_append(out, name);
		g_string_append(out, "_bucket{");
		g_string_append(out, labels);
		g_string_append(out, sep);
		g_string_append(out, "le=\"");
		if (i < n)
			g_string_append(out, bounds[i]);
		else
			g_string_append(out, "+Inf");
		g_string_append(out, "\"} ");
		append_u64(out, i < n ? MIN(buckets[i], count) : count);
		g_string_append_c(out, '\n');
	}
	g_string_append(out, name);
	g_string_append(out, "_sum");
	if (*labels != '\0') {
		g_string_append_c(out, '{');
		g_string_append(out, labels);
		g_string_append_c(out, '}');
	}
	g_string_append_c(out, ' ');
	append_double(out, sum);
	g_string_append_c(out, '\n');
	g_string_append(out, name);
	g_string_append(out, "_count");
	if (*labels != '\0') {
		g_string_append_c(out, '{');
		g_string_append(out, labels);
		g_string_append_c(out, '}');
	}
	g_string_append_c(out, ' ');
	append_u64(out, count);
	g_string_append_c(out, '\n');
}

/* The bounds as "le" label values, formatted once rather than on every scrape. */
static gchar **
format_bounds(const gdouble *bounds, guint n)
{
	gchar **text = g_new0(gchar *, n + 1);

	for (guint i = 0; i < n; i++) {
		g_autoptr(GString) s = g_string_new(NULL);
		append_double(s, bounds[i]);
		text[i] = g_string_free(g_steal_pointer(&s), FALSE);
	}
	return text;
}

/* --- per-VM table --------------------------------------------------------- */

static void
vm_entry_free(VmEntry *e)
{
	g_free(e->label);
	g_free(e);
}

/* The entry of @bc, made (or remade, for a recycled address) when missing. */
static VmEntry *
vm_entry_get(VmbcMetrics *m, VmbcBeancounter *bc)
{
	VmEntry *e = g_hash_table_lookup(m->vms, bc);
	g_autoptr(GString) label = NULL;

	if (e != NULL && e->id == bc->id)
		return e;
	label = g_string_new("domain=\"");
	vmbc_metrics_append_label_value(label, bc->name);
	g_string_append_c(label, '"');
	e = g_new0(VmEntry, 1);
	e->bc = bc;
	e->id = bc->id;
	e->label = g_string_free(g_steal_pointer(&label), FALSE);
	g_hash_table_replace(m->vms, bc, e);
	return e;
}

void
vmbc_metrics_observe_reclaim(VmbcMetrics *m, VmbcBeancounter *bc, gdouble seconds)
{
	VmEntry *e = vm_entry_get(m, bc);

	if (seconds < 0 || seconds != seconds)
		seconds = 0;
	for (guint i = 0; i < VMBC_RECLAIM_BUCKETS; i++) {
		if (seconds <= vmbc_reclaim_bucket_bounds[i])
			e->buckets[i]++;
	}
	e->count++;
	e->sum += seconds;
}

static void
on_daemon_event(VmbcDaemon *daemon, const VmbcEvent *event, gpointer user_data)
{
	VmbcMetrics *m = user_data;
	VmbcReclaimCounters reclaims;

	if (live_endpoints == NULL || !g_ptr_array_find(live_endpoints, m, NULL))
		return;
	switch (event->type) {
	case VMBC_EVENT_RECLAIM_DONE:
		vmbc_physpages_get_counters(event->bc, &reclaims);
		vmbc_metrics_observe_reclaim(m, event->bc, reclaims.seconds_last);
		break;
	case VMBC_EVENT_DOMAIN_ADDED:
		vm_entry_get(m, event->bc);
		break;
	case VMBC_EVENT_DOMAIN_REMOVED:
		g_hash_table_remove(m->vms, event->bc);
		break;
	default:
		break;
	}
}

/* --- the page ------------------------------------------------------------- */

typedef enum { PARM_HELD, PARM_MAXHELD, PARM_MINHELD, PARM_BARRIER, PARM_LIMIT } ParmField;

static gint64
parm_field(const VmbcParm *p, ParmField f)
{
	switch (f) {
	case PARM_HELD:
		return p->held;
	case PARM_MAXHELD:
		return p->maxheld;
	case PARM_MINHELD:
		return p->minheld;
	case PARM_BARRIER:
		return p->barrier;
	case PARM_LIMIT:
		return p->limit;
	}
	return 0;
}

static const struct {
	ParmField field;
	const gchar *vm_name;
	const gchar *host_name;
	const gchar *help;
} parm_families[] = {
	{PARM_HELD, "vmbc_held_bytes", "vmbc_host_held_bytes",
	 "Memory the beancounter holds now (UBC held)."},
	{PARM_MAXHELD, "vmbc_maxheld_bytes", "vmbc_host_maxheld_bytes",
	 "Highest held since the beancounter was created or its counters reset (UBC maxheld)."},
	{PARM_MINHELD, "vmbc_minheld_bytes", "vmbc_host_minheld_bytes",
	 "Lowest held since the beancounter was created or its counters reset (UBC minheld)."},
	{PARM_BARRIER, "vmbc_barrier_bytes", "vmbc_host_barrier_bytes",
	 "Soft limit (UBC barrier); no series when unlimited. For vmguarpages: the guarantee."},
	{PARM_LIMIT, "vmbc_limit_bytes", "vmbc_host_limit_bytes",
	 "Hard limit (UBC limit); no series when unlimited."},
};

static void
render_vm_parms(VmbcMetrics *m, GString *out, gsize page)
{
	GPtrArray *vms = m->scratch;

	for (guint f = 0; f < G_N_ELEMENTS(parm_families); f++) {
		const gchar *name = parm_families[f].vm_name;
		family(out, name, "gauge", parm_families[f].help);
		for (guint i = 0; i < vms->len; i++) {
			VmEntry *e = g_ptr_array_index(vms, i);
			for (guint r = 0; r < VMBC_RES_COUNT; r++) {
				gint64 v = parm_field(&e->bc->parm[r], parm_families[f].field);
				if (v == VMBC_UNLIMITED)
					continue;
				sample_start(out, name, e->label);
				g_string_append_c(out, ',');
				append_resource_label(out, r);
				sample_end_i64(out, vmbc_pages_to_bytes(v, page));
			}
		}
	}
	family(out, "vmbc_failcnt_total", "counter",
	       "Times the resource was refused or a reclaim for it failed (UBC failcnt); "
	       "resetcnt sets it back to 0.");
	for (guint i = 0; i < vms->len; i++) {
		VmEntry *e = g_ptr_array_index(vms, i);
		for (guint r = 0; r < VMBC_RES_COUNT; r++) {
			sample_start(out, "vmbc_failcnt_total", e->label);
			g_string_append_c(out, ',');
			append_resource_label(out, r);
			sample_end_u64(out, e->bc->parm[r].failcnt);
		}
	}
}

/* A per-VM gauge in bytes from a page count; negative counts (unknown) have no series. */
typedef gint64 (*VmPagesFunc)(const VmbcBeancounter *bc);

static gint64
get_max_pages(const VmbcBeancounter *bc)
{
	return bc->max_pages;
}
static gint64
get_balloon_actual(const VmbcBeancounter *bc)
{
	return bc->balloon_actual;
}
static gint64
get_balloon_target(const VmbcBeancounter *bc)
{
	return bc->balloon_target;
}
static gint64
get_guest_available(const VmbcBeancounter *bc)
{
	return bc->stats.available;
}
static gint64
get_guest_unused(const VmbcBeancounter *bc)
{
	return bc->stats.free;
}
static gint64
get_guest_caches(const VmbcBeancounter *bc)
{
	return bc->stats.caches;
}
static gint64
get_guest_total(const VmbcBeancounter *bc)
{
	return bc->stats.total;
}

static const struct {
	const gchar *name;
	VmPagesFunc get;
	const gchar *help;
} vm_byte_families[] = {
	{"vmbc_memory_max_bytes", get_max_pages, "The VM's maximum memory (guest RAM size)."},
	{"vmbc_balloon_actual_bytes", get_balloon_actual,
	 "Guest-visible memory now (the balloon's actual); no series until known."},
	{"vmbc_balloon_target_bytes", get_balloon_target,
	 "The last balloon target vmbcd asked for; no series if none was sent."},
	{"vmbc_guest_available_bytes", get_guest_available,
	 "MemAvailable as the guest reports it (an untrusted hint); no series if unreported."},
	{"vmbc_guest_unused_bytes", get_guest_unused,
	 "MemFree as the guest reports it (an untrusted hint); no series if unreported."},
	{"vmbc_guest_caches_bytes", get_guest_caches,
	 "Disk caches as the guest reports them (an untrusted hint); no series if unreported."},
	{"vmbc_guest_total_bytes", get_guest_total,
	 "MemTotal as the guest reports it (an untrusted hint); no series if unreported."},
};

static void
render_vm_state(VmbcMetrics *m, GString *out, gsize page)
{
	GPtrArray *vms = m->scratch;

	for (guint f = 0; f < G_N_ELEMENTS(vm_byte_families); f++) {
		const gchar *name = vm_byte_families[f].name;
		family(out, name, "gauge", vm_byte_families[f].help);
		for (guint i = 0; i < vms->len; i++) {
			VmEntry *e = g_ptr_array_index(vms, i);
			gint64 v = vm_byte_families[f].get(e->bc);
			if (v < 0)
				continue;
			sample_start(out, name, e->label);
			sample_end_i64(out, vmbc_pages_to_bytes(v, page));
		}
	}
	family(out, "vmbc_free_page_reporting", "gauge",
	       "1 if the VM's balloon has free page reporting on, 0 if off; no series until "
	       "known.");
	for (guint i = 0; i < vms->len; i++) {
		VmEntry *e = g_ptr_array_index(vms, i);
		if (e->bc->free_page_reporting < 0)
			continue;
		sample_start(out, "vmbc_free_page_reporting", e->label);
		sample_end_i64(out, e->bc->free_page_reporting > 0 ? 1 : 0);
	}
	family(out, "vmbc_shares", "gauge",
	       "The VM's relative weight when the host over its barrier reclaims.");
	for (guint i = 0; i < vms->len; i++) {
		VmEntry *e = g_ptr_array_index(vms, i);
		sample_start(out, "vmbc_shares", e->label);
		sample_end_u64(out, e->bc->shares);
	}
	family(out, "vmbc_reclaims_started_total", "counter",
	       "Reclaims started on the VM (limit, barrier-hit and manual).");
	for (guint i = 0; i < vms->len; i++) {
		VmEntry *e = g_ptr_array_index(vms, i);
		VmbcReclaimCounters reclaims;
		vmbc_physpages_get_counters(e->bc, &reclaims);
		sample_start(out, "vmbc_reclaims_started_total", e->label);
		sample_end_u64(out, reclaims.started);
	}
	family(out, "vmbc_reclaims_total", "counter",
	       "Reclaims that ended, by outcome: done (held back within the limit or the "
	       "manual size reached) or failed.");
	for (guint i = 0; i < vms->len; i++) {
		VmEntry *e = g_ptr_array_index(vms, i);
		VmbcReclaimCounters reclaims;
		vmbc_physpages_get_counters(e->bc, &reclaims);
		sample_start(out, "vmbc_reclaims_total", e->label);
		g_string_append(out, ",outcome=\"done\"");
		sample_end_u64(out, reclaims.done);
		sample_start(out, "vmbc_reclaims_total", e->label);
		g_string_append(out, ",outcome=\"failed\"");
		sample_end_u64(out, reclaims.failed);
	}
	family(out, "vmbc_reclaim_duration_seconds", "histogram",
	       "How long successful reclaims took, from start to held within the limit.");
	for (guint i = 0; i < vms->len; i++) {
		VmEntry *e = g_ptr_array_index(vms, i);
		histogram(out, "vmbc_reclaim_duration_seconds", e->label, m->reclaim_le, e->buckets,
			  VMBC_RECLAIM_BUCKETS, e->count, e->sum);
	}
}

static void
render_host(VmbcMetrics *m, GString *out, gsize page)
{
	VmbcBeancounter *host = vmbc_engine_get_host(vmbc_daemon_get_engine(m->daemon));
	const VmbcParm *p = &host->parm[VMBC_RES_PHYSPAGES];
	const gchar *labels = "resource=\"physpages\"";

	for (guint f = 0; f < G_N_ELEMENTS(parm_families); f++) {
		const gchar *name = parm_families[f].host_name;
		gint64 v = parm_field(p, parm_families[f].field);
		family(out, name, "gauge", parm_families[f].help);
		if (v == VMBC_UNLIMITED)
			continue;
		sample_start(out, name, labels);
		sample_end_i64(out, vmbc_pages_to_bytes(v, page));
	}
	family(out, "vmbc_host_failcnt_total", "counter",
	       "Times the host beancounter failed to get back under its limit (UBC failcnt).");
	sample_start(out, "vmbc_host_failcnt_total", labels);
	sample_end_u64(out, p->failcnt);
	family(out, "vmbc_host_memory_bytes", "gauge", "The host's physical memory.");
	g_string_append(out, "vmbc_host_memory_bytes ");
	append_i64(out, vmbc_pages_to_bytes(host->max_pages, page));
	g_string_append_c(out, '\n');
}

static void
render_daemon(VmbcMetrics *m, GString *out)
{
	const VmbcTickStats *st = vmbc_daemon_get_tick_stats(m->daemon);
	const VmbcConfig *config = vmbc_daemon_get_config(m->daemon);
	GPtrArray *backends = vmbc_daemon_get_backends(m->daemon);

	family(out, "vmbc_tick_duration_seconds", "histogram",
	       "How long one engine tick took (sampling every VM and running every policy).");
	histogram(out, "vmbc_tick_duration_seconds", "", m->tick_le, st->buckets, VMBC_TICK_BUCKETS,
		  st->ticks, st->sum_seconds);
	family(out, "vmbc_tick_overruns_total", "counter",
	       "Ticks that took longer than the tick interval.");
	g_string_append(out, "vmbc_tick_overruns_total ");
	append_u64(out, st->overruns);
	g_string_append_c(out, '\n');
	family(out, "vmbc_tick_interval_seconds", "gauge", "The configured tick interval.");
	g_string_append(out, "vmbc_tick_interval_seconds ");
	append_double(out, (gdouble)config->engine.tick_usec / 1e6);
	g_string_append_c(out, '\n');
	family(out, "vmbc_vms", "gauge", "VMs vmbcd holds a beancounter for.");
	g_string_append(out, "vmbc_vms ");
	append_u64(out, m->scratch->len);
	g_string_append_c(out, '\n');
	family(out, "vmbc_backend_up", "gauge",
	       "1 while the backend has a working connection to its source, else 0.");
	for (guint i = 0; i < backends->len; i++) {
		VmbcBackend *b = g_ptr_array_index(backends, i);
		g_string_append(out, "vmbc_backend_up{backend=\"");
		vmbc_metrics_append_label_value(out, vmbc_backend_get_name(b));
		g_string_append(out, "\"} ");
		g_string_append(out, vmbc_backend_is_up(b) ? "1\n" : "0\n");
	}
	family(out, "vmbc_build_info", "gauge", "Always 1; the version of vmbcd in a label.");
	g_string_append(out, "vmbc_build_info{version=\"");
	vmbc_metrics_append_label_value(out, VMBC_VERSION);
	g_string_append(out, "\"} 1\n");
	family(out, "vmbc_start_time_seconds", "gauge",
	       "When vmbcd started, in seconds since the epoch.");
	g_string_append(out, "vmbc_start_time_seconds ");
	append_double(out, (gdouble)(st->started_real / G_USEC_PER_SEC));
	g_string_append_c(out, '\n');
	family(out, "vmbc_metrics_scrapes_total", "counter", "Pages of metrics served.");
	g_string_append(out, "vmbc_metrics_scrapes_total ");
	append_u64(out, m->scrapes);
	g_string_append_c(out, '\n');
	family(out, "vmbc_metrics_render_seconds", "gauge",
	       "How long rendering the previous metrics page took.");
	g_string_append(out, "vmbc_metrics_render_seconds ");
	append_double(out, m->last_render_seconds);
	g_string_append_c(out, '\n');
	family(out, "vmbc_metrics_connections_closed_total", "counter",
	       "Connections to the metrics endpoint closed by vmbcd: timeout (no complete "
	       "request in time) or overload (too many at once).");
	g_string_append(out, "vmbc_metrics_connections_closed_total{reason=\"timeout\"} ");
	append_u64(out, m->closed_timeout);
	g_string_append(out, "\nvmbc_metrics_connections_closed_total{reason=\"overload\"} ");
	append_u64(out, m->closed_overload);
	g_string_append_c(out, '\n');
}

void
vmbc_metrics_render(VmbcMetrics *m, GString *out)
{
	GPtrArray *vms = vmbc_engine_get_vms(vmbc_daemon_get_engine(m->daemon));
	gsize page = vmbc_page_size();
	gint64 start = g_get_monotonic_time();

	g_return_if_fail(m != NULL && out != NULL);

	/* one lookup per VM; the families below walk this array */
	m->generation++;
	g_ptr_array_set_size(m->scratch, 0);
	for (guint i = 0; i < vms->len; i++) {
		VmEntry *e = vm_entry_get(m, g_ptr_array_index(vms, i));
		e->seen = m->generation;
		g_ptr_array_add(m->scratch, e);
	}
	/* VMs that went without a DOMAIN_REMOVED event (should not happen) */
	if (g_hash_table_size(m->vms) > m->scratch->len) {
		GHashTableIter iter;
		VmEntry *e;
		g_hash_table_iter_init(&iter, m->vms);
		while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&e)) {
			if (e->seen != m->generation)
				g_hash_table_iter_remove(&iter);
		}
	}

	render_vm_parms(m, out, page);
	render_vm_state(m, out, page);
	render_host(m, out, page);
	render_daemon(m, out);
	g_ptr_array_set_size(m->scratch, 0);
	m->last_render_seconds = (gdouble)(g_get_monotonic_time() - start) / 1e6;
}

/* --- HTTP ------------------------------------------------------------------- */

static Conn *conn_for_message(VmbcMetrics *m, SoupServerMessage *msg);

/*
 * Every answer closes its connection: libsoup does not keep connections that
 * it did not accept itself alive, and saying so spares the client a failed
 * reuse. (A refused request may also have left a body unread.)
 */
static void
say_close(SoupServerMessage *msg)
{
	soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Connection",
				     "close");
}

static void
refuse(SoupServerMessage *msg, guint status, const gchar *text)
{
	say_close(msg);
	soup_server_message_set_status(msg, status, NULL);
	soup_server_message_set_response(msg, "text/plain; charset=utf-8", SOUP_MEMORY_STATIC, text,
					 strlen(text));
}

static gboolean
is_known_path(const gchar *path)
{
	return g_strcmp0(path, "/metrics") == 0 || g_strcmp0(path, "/healthz") == 0;
}

/*
 * libsoup reads a request's body after the early handlers even when they set a
 * status. A request that announces a body is therefore answered here and its
 * connection taken from libsoup: the body is never read, and the socket is
 * closed by the next sweep.
 */
static void
refuse_without_body(VmbcMetrics *m, SoupServerMessage *msg, guint status, const gchar *extra,
		    const gchar *text)
{
	Conn *c = conn_for_message(m, msg);
	g_autoptr(GIOStream) stream = soup_server_message_steal_connection(msg);
	g_autofree gchar *reply = NULL;
	GOutputStream *out;

	if (stream == NULL)
		return;
	reply = g_strdup_printf("HTTP/1.1 %u %s\r\nConnection: close\r\n%s"
				"Content-Type: text/plain; charset=utf-8\r\n"
				"Content-Length: %zu\r\n\r\n%s",
				status, soup_status_get_phrase(status), extra, strlen(text), text);
	/* a fresh connection's send buffer takes a few hundred bytes without blocking */
	out = g_io_stream_get_output_stream(stream);
	if (G_IS_POLLABLE_OUTPUT_STREAM(out))
		g_pollable_output_stream_write_nonblocking(G_POLLABLE_OUTPUT_STREAM(out), reply,
							   strlen(reply), NULL, NULL);
	if (c != NULL) {
		/* FIN after the answer; what the client still sends is dropped at close */
		g_socket_shutdown(g_socket_connection_get_socket(c->stream), FALSE, TRUE, NULL);
		c->shut = TRUE;
	} else {
		g_io_stream_close(stream, NULL, NULL);
	}
}

/* Decides from the headers alone. */
static void
on_early(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
	 gpointer user_data)
{
	VmbcMetrics *m = user_data;
	const gchar *method = soup_server_message_get_method(msg);
	SoupMessageHeaders *req = soup_server_message_get_request_headers(msg);
	SoupEncoding enc = soup_message_headers_get_encoding(req);
	gboolean body = enc == SOUP_ENCODING_CHUNKED || enc == SOUP_ENCODING_EOF ||
			(enc == SOUP_ENCODING_CONTENT_LENGTH &&
			 soup_message_headers_get_content_length(req) != 0);

	if (enc == SOUP_ENCODING_CONTENT_LENGTH &&
	    soup_message_headers_get_content_length(req) < 0) {
		refuse_without_body(m, msg, SOUP_STATUS_BAD_REQUEST, "", "bad Content-Length\n");
	} else if (!is_known_path(path)) {
		if (body)
			refuse_without_body(m, msg, SOUP_STATUS_NOT_FOUND, "", "not found\n");
		else
			refuse(msg, SOUP_STATUS_NOT_FOUND,
			       "not found: only /metrics and /healthz\n");
	} else if (g_strcmp0(method, "GET") != 0 && g_strcmp0(method, "HEAD") != 0) {
		if (body) {
			refuse_without_body(m, msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
					    "Allow: GET, HEAD\r\n", "method not allowed\n");
		} else {
			soup_message_headers_replace(soup_server_message_get_response_headers(msg),
						     "Allow", "GET, HEAD");
			refuse(msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
			       "method not allowed: GET or HEAD\n");
		}
	} else if (body) {
		refuse_without_body(m, msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "",
				    "a request body is not accepted\n");
	}
}

static void
on_request(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
	   gpointer user_data)
{
	VmbcMetrics *m = user_data;
	GString *page;
	gsize len;

	if (!is_known_path(path)) { /* the early handler refused it already */
		refuse(msg, SOUP_STATUS_NOT_FOUND, "not found\n");
		return;
	}
	say_close(msg);
	if (g_strcmp0(path, "/healthz") == 0) {
		soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
		soup_server_message_set_response(msg, "text/plain; charset=utf-8",
						 SOUP_MEMORY_STATIC, "ok\n", 3);
		return;
	}
	/* sized from the last page so that a steady scrape grows the buffer once */
	page = g_string_sized_new(m->last_page_len + m->last_page_len / 8 + 4096);
	vmbc_metrics_render(m, page);
	m->last_page_len = page->len;
	m->scrapes++;
	len = page->len;
	soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
	soup_server_message_set_response(msg, CONTENT_TYPE_METRICS, SOUP_MEMORY_TAKE,
					 g_string_free(page, FALSE), len);
}

static void
conn_free(Conn *c)
{
	g_object_unref(c->stream);
	g_free(c);
}

static gboolean
conn_is_closed(Conn *c)
{
	return g_io_stream_is_closed(G_IO_STREAM(c->stream)) ||
	       g_socket_is_closed(g_socket_connection_get_socket(c->stream));
}

/* Drops closed connections and cuts off those past their deadline. */
static gboolean
on_sweep(gpointer user_data)
{
	VmbcMetrics *m = user_data;
	gint64 now = g_get_monotonic_time();

	for (guint i = 0; i < m->conns->len;) {
		Conn *c = g_ptr_array_index(m->conns, i);
		if (c->shut || conn_is_closed(c)) {
			/* libsoup has its own reference and lets go when it sees the end */
			g_ptr_array_remove_index_fast(m->conns, i);
			continue;
		}
		if (now >= c->deadline) {
			g_autoptr(GError) error = NULL;
			GSocket *sock = g_socket_connection_get_socket(c->stream);
			g_debug("metrics: closing a connection that sent no complete request in "
				"time");
			/* shutdown, not close: libsoup's pending read sees EOF and cleans up */
			if (!g_socket_shutdown(sock, TRUE, TRUE, &error))
				g_debug("metrics: shutdown: %s", error->message);
			c->shut = TRUE;
			m->closed_timeout++;
		}
		i++;
	}
	if (m->conns->len == 0) {
		m->sweep_id = 0;
		return G_SOURCE_REMOVE;
	}
	return G_SOURCE_CONTINUE;
}

static Conn *
conn_for_message(VmbcMetrics *m, SoupServerMessage *msg)
{
	GSocket *sock = soup_server_message_get_socket(msg);

	for (guint i = 0; sock != NULL && i < m->conns->len; i++) {
		Conn *c = g_ptr_array_index(m->conns, i);
		if (g_socket_connection_get_socket(c->stream) == sock)
			return c;
	}
	return NULL;
}

/* A kept-alive connection gets a fresh deadline for its next request. */
static void
on_request_finished(SoupServer *server, SoupServerMessage *msg, gpointer user_data)
{
	VmbcMetrics *m = user_data;
	Conn *c = conn_for_message(m, msg);

	if (c != NULL && !c->shut)
		c->deadline = g_get_monotonic_time() + VMBC_METRICS_REQUEST_TIMEOUT_USEC;
}

static gboolean
on_incoming(GSocketService *service, GSocketConnection *connection, GObject *source,
	    gpointer user_data)
{
	VmbcMetrics *m = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GSocketAddress) local = NULL;
	g_autoptr(GSocketAddress) remote = NULL;
	Conn *c;

	/* settle the count first: closed connections leave room */
	for (guint i = 0; i < m->conns->len;) {
		Conn *old = g_ptr_array_index(m->conns, i);
		if (conn_is_closed(old)) {
			g_ptr_array_remove_index_fast(m->conns, i);
			continue;
		}
		i++;
	}
	if (m->conns->len >= VMBC_METRICS_MAX_CONNECTIONS) {
		m->closed_overload++;
		g_debug("metrics: %u connections open, closing a new one", m->conns->len);
		g_io_stream_close(G_IO_STREAM(connection), NULL, NULL);
		return TRUE;
	}
	local = g_socket_connection_get_local_address(connection, NULL);
	remote = g_socket_connection_get_remote_address(connection, NULL);
	if (!soup_server_accept_iostream(m->server, G_IO_STREAM(connection), local, remote,
					 &error)) {
		g_debug("metrics: connection not accepted: %s", error->message);
		g_io_stream_close(G_IO_STREAM(connection), NULL, NULL);
		return TRUE;
	}
	c = g_new0(Conn, 1);
	c->stream = g_object_ref(connection);
	c->deadline = g_get_monotonic_time() + VMBC_METRICS_REQUEST_TIMEOUT_USEC;
	g_ptr_array_add(m->conns, c);
	if (m->sweep_id == 0) {
		m->sweep_id = g_timeout_add(SWEEP_INTERVAL_MS, on_sweep, m);
		g_source_set_name_by_id(m->sweep_id, "[vmbcd] metrics sweep");
	}
	return TRUE;
}

/* "ADDR:PORT", "[ADDR6]:PORT" or "localhost:PORT"; numeric only, no resolver on the loop. */
static GSocketAddress *
parse_listen(const gchar *listen, GError **error)
{
	const gchar *colon = strrchr(listen, ':');
	g_autofree gchar *host = NULL;
	g_autoptr(GInetAddress) addr = NULL;
	gchar *end = NULL;
	guint64 port;

	if (colon == NULL || colon == listen) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "metrics address '%s' is not ADDRESS:PORT", listen);
		return NULL;
	}
	port = g_ascii_strtoull(colon + 1, &end, 10);
	if (end == colon + 1 || *end != '\0' || port > 65535) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "metrics address '%s' has no valid port (0-65535)", listen);
		return NULL;
	}
	if (listen[0] == '[' && colon[-1] == ']')
		host = g_strndup(listen + 1, (gsize)(colon - listen - 2));
	else
		host = g_strndup(listen, (gsize)(colon - listen));
	if (g_strcmp0(host, "localhost") == 0)
		addr = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	else
		addr = g_inet_address_new_from_string(host);
	if (addr == NULL) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "metrics address '%s': '%s' is not a numeric IP address", listen, host);
		return NULL;
	}
	return g_inet_socket_address_new(addr, (guint16)port);
}

gboolean
vmbc_metrics_listen(VmbcMetrics *m, const gchar *listen, GError **error)
{
	g_autoptr(GSocketAddress) want = NULL;
	g_autoptr(GSocketAddress) got = NULL;

	g_return_val_if_fail(m != NULL && listen != NULL, FALSE);
	g_return_val_if_fail(m->service == NULL, FALSE);

	want = parse_listen(listen, error);
	if (want == NULL)
		return FALSE;
	m->service = g_socket_service_new();
	if (!g_socket_listener_add_address(G_SOCKET_LISTENER(m->service), want,
					   G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL, &got,
					   error)) {
		g_prefix_error(error, "cannot listen for metrics on %s: ", listen);
		g_clear_object(&m->service);
		return FALSE;
	}
	m->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(got));
	g_signal_connect(m->service, "incoming", G_CALLBACK(on_incoming), m);
	g_socket_service_start(m->service);
	g_info("metrics on http://%s/metrics (port %u)", listen, m->port);
	return TRUE;
}

guint16
vmbc_metrics_get_port(VmbcMetrics *m)
{
	return m->port;
}

VmbcMetrics *
vmbc_metrics_new(VmbcDaemon *daemon)
{
	VmbcMetrics *m = g_new0(VmbcMetrics, 1);

	m->daemon = daemon;
	m->server = soup_server_new(NULL, NULL);
	soup_server_add_early_handler(m->server, NULL, on_early, m, NULL);
	soup_server_add_handler(m->server, NULL, on_request, m, NULL);
	g_signal_connect(m->server, "request-finished", G_CALLBACK(on_request_finished), m);
	m->vms = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
				       (GDestroyNotify)vm_entry_free);
	m->scratch = g_ptr_array_new();
	m->reclaim_le = format_bounds(vmbc_reclaim_bucket_bounds, VMBC_RECLAIM_BUCKETS);
	m->tick_le = format_bounds(vmbc_tick_bucket_bounds, VMBC_TICK_BUCKETS);
	m->conns = g_ptr_array_new_with_free_func((GDestroyNotify)conn_free);
	if (live_endpoints == NULL)
		live_endpoints = g_ptr_array_new();
	g_ptr_array_add(live_endpoints, m);
	vmbc_daemon_add_event_listener(daemon, on_daemon_event, m);
	return m;
}

void
vmbc_metrics_free(VmbcMetrics *m)
{
	if (m == NULL)
		return;
	g_ptr_array_remove(live_endpoints, m);
	if (live_endpoints->len == 0)
		g_clear_pointer(&live_endpoints, g_ptr_array_unref);
	g_clear_handle_id(&m->sweep_id, g_source_remove);
	if (m->service != NULL) {
		g_socket_service_stop(m->service);
		g_socket_listener_close(G_SOCKET_LISTENER(m->service));
		g_signal_handlers_disconnect_by_data(m->service, m);
		g_clear_object(&m->service);
	}
	for (guint i = 0; i < m->conns->len; i++) {
		Conn *c = g_ptr_array_index(m->conns, i);
		g_io_stream_close(G_IO_STREAM(c->stream), NULL, NULL);
	}
	g_signal_handlers_disconnect_by_data(m->server, m);
	soup_server_disconnect(m->server);
	g_clear_object(&m->server);
	g_ptr_array_unref(m->conns);
	g_ptr_array_unref(m->scratch);
	g_hash_table_unref(m->vms);
	g_strfreev(m->reclaim_le);
	g_strfreev(m->tick_le);
	g_free(m);
}
