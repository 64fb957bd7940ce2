/*
 * vmbc-metrics-renderer.c: the page of the Prometheus endpoint, the daemon's
 * state as text exposition format 0.0.4 (docs/metrics.md lists every family).
 *
 * The renderer walks the engine's beancounters once per family and appends
 * straight into one GString: no per-VM allocation on a scrape (each VM's
 * escaped label is made once, when the VM is first seen), so a page of
 * thousands of VMs costs a few milliseconds of the main loop. It keeps what
 * the engine does not: each VM's label and its reclaim-duration histogram,
 * fed by the daemon's events. No sockets here; vmbc-metrics.c serves the page.
 */
#include "config.h"

#include "vmbc-metrics-renderer.h"
#include "vmbc-physpages.h"
#include "vmbc-size.h"

const gdouble vmbc_reclaim_bucket_bounds[VMBC_RECLAIM_BUCKETS] = {
	0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
};

/* What the renderer keeps per VM: its label, made once, and the reclaim histogram. */
typedef struct {
	VmbcBeancounter *bc; /* not a reference: the key, valid while the VM is in the engine */
	guint id;	     /* to tell a new beancounter at a recycled address */
	gchar *label;	     /* domain="NAME", escaped */
	guint64 buckets[VMBC_RECLAIM_BUCKETS]; /* cumulative, as exposed */
	guint64 count;
	gdouble sum;
	guint64 seen; /* render generation that last saw the VM */
} VmEntry;

struct _VmbcMetricsRenderer {
	VmbcDaemon *daemon;
	GHashTable *vms;    /* VmbcBeancounter* -> VmEntry* */
	GPtrArray *scratch; /* VmEntry*, in engine order; reused by every render */
	guint64 generation;
	gdouble last_render_seconds;
	gchar **reclaim_le; /* vmbc_reclaim_bucket_bounds as text */
	gchar **tick_le;    /* vmbc_tick_bucket_bounds as text */
};

/*
 * The daemon has no way to remove an event listener, so the listener checks
 * that its renderer still exists before touching it.
 */
static GPtrArray *live_renderers = NULL;

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
vm_entry_get(VmbcMetricsRenderer *r, VmbcBeancounter *bc)
{
	VmEntry *e = g_hash_table_lookup(r->vms, bc);
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
	g_hash_table_replace(r->vms, bc, e);
	return e;
}

void
vmbc_metrics_renderer_observe_reclaim(VmbcMetricsRenderer *r, VmbcBeancounter *bc, gdouble seconds)
{
	VmEntry *e = vm_entry_get(r, bc);

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
	VmbcMetricsRenderer *r = user_data;
	VmbcReclaimCounters reclaims;

	if (live_renderers == NULL || !g_ptr_array_find(live_renderers, r, NULL))
		return;
	switch (event->type) {
	case VMBC_EVENT_RECLAIM_DONE:
		vmbc_physpages_get_counters(event->bc, &reclaims);
		vmbc_metrics_renderer_observe_reclaim(r, event->bc, reclaims.seconds_last);
		break;
	case VMBC_EVENT_DOMAIN_ADDED:
		vm_entry_get(r, event->bc);
		break;
	case VMBC_EVENT_DOMAIN_REMOVED:
		g_hash_table_remove(r->vms, event->bc);
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
render_vm_parms(VmbcMetricsRenderer *r, GString *out, gsize page)
{
	GPtrArray *vms = r->scratch;

	for (guint f = 0; f < G_N_ELEMENTS(parm_families); f++) {
		const gchar *name = parm_families[f].vm_name;
		family(out, name, "gauge", parm_families[f].help);
		for (guint i = 0; i < vms->len; i++) {
			VmEntry *e = g_ptr_array_index(vms, i);
			for (guint res = 0; res < VMBC_RES_COUNT; res++) {
				gint64 v = parm_field(&e->bc->parm[res], parm_families[f].field);
				if (v == VMBC_UNLIMITED)
					continue;
				sample_start(out, name, e->label);
				g_string_append_c(out, ',');
				append_resource_label(out, res);
				sample_end_i64(out, vmbc_pages_to_bytes(v, page));
			}
		}
	}
	family(out, "vmbc_failcnt_total", "counter",
	       "Times the resource was refused or a reclaim for it failed (UBC failcnt); "
	       "resetcnt sets it back to 0.");
	for (guint i = 0; i < vms->len; i++) {
		VmEntry *e = g_ptr_array_index(vms, i);
		for (guint res = 0; res < VMBC_RES_COUNT; res++) {
			sample_start(out, "vmbc_failcnt_total", e->label);
			g_string_append_c(out, ',');
			append_resource_label(out, res);
			sample_end_u64(out, e->bc->parm[res].failcnt);
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

/* Guest RAM's facts: no series until the sampler found guest RAM. */
static gint64
get_ram_size(const VmbcBeancounter *bc)
{
	return bc->ram_pages > 0 ? bc->ram_pages : -1;
}
static gint64
get_ram_hugetlb(const VmbcBeancounter *bc)
{
	return bc->ram_pages > 0 ? bc->ram_hugetlb_pages : -1;
}
static gint64
get_ram_reclaimable(const VmbcBeancounter *bc)
{
	return bc->ram_pages > 0 ? MAX(bc->ram_pages - bc->ram_hugetlb_pages, 0) : -1;
}
static gint64
get_hugetlb_held(const VmbcBeancounter *bc)
{
	return bc->sampled ? bc->hugetlb_pages : -1;
}
static gint64
get_ksm_saved(const VmbcBeancounter *bc)
{
	return bc->sampled ? bc->ksm_saved_pages : -1;
}
static gint64
get_vmem_size(const VmbcBeancounter *bc)
{
	return bc->has_vmem ? bc->vmem.size : -1;
}
static gint64
get_vmem_requested(const VmbcBeancounter *bc)
{
	return bc->has_vmem ? bc->vmem.requested : -1;
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
	{"vmbc_guest_ram_size_bytes", get_ram_size,
	 "Guest RAM's size: every memory backend QEMU maps for the guest."},
	{"vmbc_guest_ram_hugetlb_size_bytes", get_ram_hugetlb,
	 "Of guest RAM, the hugetlb-backed part, which no balloon can reclaim."},
	{"vmbc_guest_ram_balloon_reclaimable_bytes", get_ram_reclaimable,
	 "Of guest RAM, the part the balloon can reclaim (not hugetlb-backed)."},
	{"vmbc_physpages_hugetlb_bytes", get_hugetlb_held,
	 "Of physpages held, the guest RAM resident in hugetlb pages."},
	{"vmbc_ksm_saved_bytes", get_ksm_saved,
	 "Resident guest RAM KSM merged that the VM's other sharers pay for (not charged)."},
	{"vmbc_virtio_mem_size_bytes", get_vmem_size,
	 "What the VM's virtio-mem device has plugged now; no series without one."},
	{"vmbc_virtio_mem_requested_bytes", get_vmem_requested,
	 "The virtio-mem device's requested size; no series without one."},
};

static void
render_vm_state(VmbcMetricsRenderer *r, GString *out, gsize page)
{
	GPtrArray *vms = r->scratch;

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
	family(out, "vmbc_balloon_stalls_total", "counter",
	       "Limit reclaims failed because the balloon moved slower than balloon-stall-rate.");
	for (guint i = 0; i < vms->len; i++) {
		VmEntry *e = g_ptr_array_index(vms, i);
		VmbcReclaimCounters reclaims;

		vmbc_physpages_get_counters(e->bc, &reclaims);
		sample_start(out, "vmbc_balloon_stalls_total", e->label);
		sample_end_u64(out, reclaims.stalls);
	}
	family(out, "vmbc_virtio_mem_stalls_total", "counter",
	       "Resizes of the VM's virtio-mem device the guest did not follow (the balloon took "
	       "over); no series without one.");
	for (guint i = 0; i < vms->len; i++) {
		VmEntry *e = g_ptr_array_index(vms, i);

		if (!e->bc->has_vmem)
			continue;
		sample_start(out, "vmbc_virtio_mem_stalls_total", e->label);
		sample_end_u64(out, e->bc->vmem_stalls);
	}
	family(out, "vmbc_reclaim_duration_seconds", "histogram",
	       "How long successful reclaims took, from start to held within the limit.");
	for (guint i = 0; i < vms->len; i++) {
		VmEntry *e = g_ptr_array_index(vms, i);
		histogram(out, "vmbc_reclaim_duration_seconds", e->label, r->reclaim_le, e->buckets,
			  VMBC_RECLAIM_BUCKETS, e->count, e->sum);
	}
}

/* A gauge or counter without labels but @labels, with a double value. */
static void
plain_double(GString *out, const gchar *name, const gchar *labels, gdouble v)
{
	g_string_append(out, name);
	if (labels != NULL)
		g_string_append_printf(out, "{%s}", labels);
	g_string_append_c(out, ' ');
	append_double(out, v);
	g_string_append_c(out, '\n');
}

/* The host's own signals and what the pressure controller did (see vmbcd(8)). */
static void
render_host_pressure(VmbcMetricsRenderer *r, GString *out, gsize page)
{
	VmbcEngine *engine = vmbc_daemon_get_engine(r->daemon);
	const VmbcHostState *st = vmbc_engine_get_host_state(engine);
	const VmbcHostInfo *info = vmbc_daemon_get_host_info(r->daemon);
	g_autofree gchar *source =
		g_strdup_printf("source=\"%s\"", vmbc_budget_source_to_string(st->signals.source));

	family(out, "vmbc_host_budget_bytes", "gauge",
	       "What the VMs' guest RAM may hold together, and where that comes from (cgroup-v1, "
	       "cgroup-v2, host-ram, config); no series while unlimited.");
	if (st->signals_known && st->signals.budget >= 0 && st->signals.budget != VMBC_UNLIMITED)
		plain_double(out, "vmbc_host_budget_bytes", source,
			     (gdouble)vmbc_pages_to_bytes(st->signals.budget, page));
	family(out, "vmbc_host_cgroup_usage_bytes", "gauge",
	       "What the VMs' cgroup charges now; no series without one.");
	if (info->cgroup_usage >= 0)
		plain_double(out, "vmbc_host_cgroup_usage_bytes", NULL,
			     (gdouble)info->cgroup_usage);
	family(out, "vmbc_host_cgroup_limit_bytes", "gauge",
	       "The VMs' cgroup's limit; no series without one or while it is max.");
	if (info->cgroup_limit >= 0)
		plain_double(out, "vmbc_host_cgroup_limit_bytes", NULL,
			     (gdouble)info->cgroup_limit);
	family(out, "vmbc_host_memory_stall_avg10_ratio", "gauge",
	       "Memory PSI of the VMs' cgroup or the host: the share of the last 10 s some (or "
	       "all) tasks stalled on memory.");
	if (st->signals.psi_some_avg10 >= 0)
		plain_double(out, "vmbc_host_memory_stall_avg10_ratio", "kind=\"some\"",
			     st->signals.psi_some_avg10 / 100.0);
	if (st->signals.psi_full_avg10 >= 0)
		plain_double(out, "vmbc_host_memory_stall_avg10_ratio", "kind=\"full\"",
			     st->signals.psi_full_avg10 / 100.0);
	family(out, "vmbc_host_memory_stall_seconds_total", "counter",
	       "Memory PSI totals: time some (or all) tasks stalled on memory.");
	if (st->signals.psi_some_total >= 0)
		plain_double(out, "vmbc_host_memory_stall_seconds_total", "kind=\"some\"",
			     (gdouble)st->signals.psi_some_total / 1e6);
	if (st->signals.psi_full_total >= 0)
		plain_double(out, "vmbc_host_memory_stall_seconds_total", "kind=\"full\"",
			     (gdouble)st->signals.psi_full_total / 1e6);
	family(out, "vmbc_host_pressured", "gauge",
	       "1 while the host controller sees pressure (over the budget, stall, swapping).");
	plain_double(out, "vmbc_host_pressured", NULL, st->reason != VMBC_PRESSURE_NONE ? 1 : 0);
	family(out, "vmbc_host_psi_triggers_total", "counter",
	       "Times the kernel's PSI trigger woke vmbcd.");
	plain_double(out, "vmbc_host_psi_triggers_total", NULL, (gdouble)st->triggers);
	family(out, "vmbc_host_taken_bytes_total", "counter",
	       "Memory the host controller took from VMs under pressure.");
	plain_double(out, "vmbc_host_taken_bytes_total", NULL,
		     (gdouble)vmbc_pages_to_bytes(st->taken_pages, page));
	family(out, "vmbc_host_given_back_bytes_total", "counter",
	       "Memory the host controller gave back to VMs once the pressure was gone.");
	plain_double(out, "vmbc_host_given_back_bytes_total", NULL,
		     (gdouble)vmbc_pages_to_bytes(st->given_pages, page));
}

/* Each VM's idle fraction as the host's reclaim uses it, labelled by where it came from. */
static void
render_vm_idle(VmbcMetricsRenderer *r, GString *out)
{
	VmbcEngine *engine = vmbc_daemon_get_engine(r->daemon);
	GPtrArray *vms = r->scratch;

	family(out, "vmbc_idle_ratio", "gauge",
	       "The VM's idle memory as the host's reclaim uses it; source: host (dirty-rate "
	       "sampling), guest (its word, floored at idle-assumed) or none (assumed).");
	for (guint i = 0; i < vms->len; i++) {
		VmEntry *e = g_ptr_array_index(vms, i);
		VmbcIdleSource src = VMBC_IDLE_NONE;
		gdouble idle = vmbc_engine_idle_fraction(engine, e->bc, &src);
		sample_start(out, "vmbc_idle_ratio", e->label);
		g_string_append_printf(out, ",source=\"%s\"} ", vmbc_idle_source_to_string(src));
		append_double(out, idle);
		g_string_append_c(out, '\n');
	}
}

static void
render_host(VmbcMetricsRenderer *r, GString *out, gsize page)
{
	VmbcBeancounter *host = vmbc_engine_get_host(vmbc_daemon_get_engine(r->daemon));
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
	render_host_pressure(r, out, page);
}

static void
render_daemon(VmbcMetricsRenderer *r, const VmbcMetricsServerStats *stats, GString *out)
{
	const VmbcTickStats *st = vmbc_daemon_get_tick_stats(r->daemon);
	const VmbcConfig *config = vmbc_daemon_get_config(r->daemon);
	GPtrArray *backends = vmbc_daemon_get_backends(r->daemon);

	family(out, "vmbc_tick_duration_seconds", "histogram",
	       "How long one engine tick took (sampling every VM and running every policy).");
	histogram(out, "vmbc_tick_duration_seconds", "", r->tick_le, st->buckets, VMBC_TICK_BUCKETS,
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
	append_u64(out, r->scratch->len);
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
	append_u64(out, stats->scrapes);
	g_string_append_c(out, '\n');
	family(out, "vmbc_metrics_render_seconds", "gauge",
	       "How long rendering the previous metrics page took.");
	g_string_append(out, "vmbc_metrics_render_seconds ");
	append_double(out, r->last_render_seconds);
	g_string_append_c(out, '\n');
	family(out, "vmbc_metrics_connections_closed_total", "counter",
	       "Connections to the metrics endpoint closed by vmbcd: timeout (no complete "
	       "request in time), idle (gave way to a new one when all were taken) or "
	       "overload (a new one, when all were in the middle of a request).");
	g_string_append(out, "vmbc_metrics_connections_closed_total{reason=\"timeout\"} ");
	append_u64(out, stats->closed_timeout);
	g_string_append(out, "\nvmbc_metrics_connections_closed_total{reason=\"idle\"} ");
	append_u64(out, stats->closed_idle);
	g_string_append(out, "\nvmbc_metrics_connections_closed_total{reason=\"overload\"} ");
	append_u64(out, stats->closed_overload);
	g_string_append_c(out, '\n');
}

void
vmbc_metrics_renderer_render(VmbcMetricsRenderer *r, const VmbcMetricsServerStats *stats,
			     GString *out)
{
	static const VmbcMetricsServerStats no_stats = {0};
	GPtrArray *vms;
	gsize page = vmbc_page_size();
	gint64 start = g_get_monotonic_time();

	g_return_if_fail(r != NULL && out != NULL);

	vms = vmbc_engine_get_vms(vmbc_daemon_get_engine(r->daemon));
	if (stats == NULL)
		stats = &no_stats;

	/* one lookup per VM; the families below walk this array */
	r->generation++;
	g_ptr_array_set_size(r->scratch, 0);
	for (guint i = 0; i < vms->len; i++) {
		VmEntry *e = vm_entry_get(r, g_ptr_array_index(vms, i));
		e->seen = r->generation;
		g_ptr_array_add(r->scratch, e);
	}
	/* VMs that went without a DOMAIN_REMOVED event (should not happen) */
	if (g_hash_table_size(r->vms) > r->scratch->len) {
		GHashTableIter iter;
		VmEntry *e;
		g_hash_table_iter_init(&iter, r->vms);
		while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&e)) {
			if (e->seen != r->generation)
				g_hash_table_iter_remove(&iter);
		}
	}

	render_vm_parms(r, out, page);
	render_vm_state(r, out, page);
	render_vm_idle(r, out);
	render_host(r, out, page);
	render_daemon(r, stats, out);
	g_ptr_array_set_size(r->scratch, 0);
	r->last_render_seconds = (gdouble)(g_get_monotonic_time() - start) / 1e6;
}

VmbcMetricsRenderer *
vmbc_metrics_renderer_new(VmbcDaemon *daemon)
{
	VmbcMetricsRenderer *r = g_new0(VmbcMetricsRenderer, 1);

	r->daemon = daemon;
	r->vms = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
				       (GDestroyNotify)vm_entry_free);
	r->scratch = g_ptr_array_new();
	r->reclaim_le = format_bounds(vmbc_reclaim_bucket_bounds, VMBC_RECLAIM_BUCKETS);
	r->tick_le = format_bounds(vmbc_tick_bucket_bounds, VMBC_TICK_BUCKETS);
	if (live_renderers == NULL)
		live_renderers = g_ptr_array_new();
	g_ptr_array_add(live_renderers, r);
	vmbc_daemon_add_event_listener(daemon, on_daemon_event, r);
	return r;
}

void
vmbc_metrics_renderer_free(VmbcMetricsRenderer *r)
{
	if (r == NULL)
		return;
	g_ptr_array_remove(live_renderers, r);
	if (live_renderers->len == 0)
		g_clear_pointer(&live_renderers, g_ptr_array_unref);
	g_ptr_array_unref(r->scratch);
	g_hash_table_unref(r->vms);
	g_strfreev(r->reclaim_le);
	g_strfreev(r->tick_le);
	g_free(r);
}
