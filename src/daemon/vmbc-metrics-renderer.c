/*
 * vmbc-metrics-renderer.c: the page of the Prometheus endpoint, the daemon's
 * state as text exposition format 0.0.4 (docs/metrics.md lists every family).
 *
 * A page is the per-VM families, each over every VM, then the host's and
 * the daemon's own numbers. It is rendered by a cursor (VmbcMetricsPage,
 * a family and a VM) so that the server can send it in pieces as they are
 * made, letting the main loop run between two: at 10000 VMs a page is
 * 25 MiB. Samples are written straight into the output buffer, room
 * reserved once per VM and family, with memcpy of lengths known beforehand
 * and integers formatted by hand: each VM's escaped label is made once,
 * when the VM is first seen (a beancounter's name never changes: a renamed
 * domain is a new VM), and its floating-point values keep their text until
 * they change. The renderer keeps what the engine does not: each VM's label
 * and its reclaim-duration histogram, fed by the daemon's events. No
 * sockets here; vmbc-metrics.c serves the page.
 */
#include "config.h"

#include <string.h>

#include "vmbc-metrics-renderer.h"
#include "vmbc-metrics-text.h"
#include "vmbc-physpages.h"
#include "vmbc-size.h"

const gdouble vmbc_reclaim_bucket_bounds[VMBC_RECLAIM_BUCKETS] = {
	0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
};

/* What the renderer keeps per VM: its label, made once, and the reclaim histogram. */
typedef struct {
	gint ref;	     /* the table's, and each page's being rendered */
	VmbcBeancounter *bc; /* not a reference; NULL once the VM is gone (pages skip it) */
	guint id;	     /* to tell a new beancounter at a recycled address */
	gsize label_len;
	gchar *label;			       /* domain="NAME", escaped */
	guint64 buckets[VMBC_RECLAIM_BUCKETS]; /* cumulative, as exposed */
	guint64 count;
	gdouble sum;
	VmbcMetricsDouble sum_text;
	VmbcMetricsDouble idle_text;
	guint64 seen; /* page generation that last saw the VM */
} VmEntry;

/* A bucket bound as an "le" label value, formatted once. */
typedef struct {
	gchar text[VMBC_METRICS_DOUBLE_MAX];
	guint8 len;
} BoundText;

struct _VmbcMetricsRenderer {
	VmbcDaemon *daemon;
	GHashTable *vms; /* VmbcBeancounter* -> VmEntry* (a reference) */
	guint64 generation;
	gdouble last_render_seconds;
	BoundText reclaim_le[VMBC_RECLAIM_BUCKETS];
	gchar **tick_le;			 /* vmbc_tick_bucket_bounds as text */
	GString *resource_label[VMBC_RES_COUNT]; /* ,resource="NAME" */
};

struct _VmbcMetricsPage {
	VmbcMetricsRenderer *r;
	VmbcMetricsServerStats stats;
	GPtrArray *vms; /* VmEntry (referenced), in engine order when the page began */
	gsize page_size;
	guint family;	      /* index in vm_families; past the end: host and daemon */
	guint vm;	      /* the next VM of that family */
	gboolean header_done; /* the family's HELP and TYPE are written */
	gboolean done;
	gint64 render_usec; /* spent rendering so far */
};

/*
 * The daemon has no way to remove an event listener, so the listener checks
 * that its renderer still exists before touching it.
 */
static GPtrArray *live_renderers = NULL;

/* --- per-VM table --------------------------------------------------------- */

static VmEntry *
vm_entry_ref(VmEntry *e)
{
	e->ref++;
	return e;
}

static void
vm_entry_unref(VmEntry *e)
{
	if (--e->ref > 0)
		return;
	g_free(e->label);
	g_free(e);
}

/* The VM is gone (its beancounter freed or about to be): pages still holding it skip it. */
static void
vm_entry_drop(VmEntry *e)
{
	e->bc = NULL;
	vm_entry_unref(e);
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
	e->ref = 1;
	e->bc = bc;
	e->id = bc->id;
	e->label_len = label->len;
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

/* --- the per-VM families -------------------------------------------------- */

typedef struct _VmFamily VmFamily;

/* Writes @e's samples of @f at @w, within the room VM_ROOM() reserved; returns the end. */
typedef gchar *(*VmEmitFunc)(const VmbcMetricsPage *p, const VmFamily *f, VmEntry *e, gchar *w);

/* A per-VM gauge in bytes from a page count; negative counts (unknown) have no series. */
typedef gint64 (*VmPagesFunc)(const VmbcBeancounter *bc);

typedef enum { PARM_HELD, PARM_MAXHELD, PARM_MINHELD, PARM_BARRIER, PARM_LIMIT } ParmField;

struct _VmFamily {
	const gchar *name;
	gsize name_len;
	const gchar *type;
	const gchar *help;
	guint rows; /* at most, per VM */
	VmEmitFunc emit;
	ParmField field; /* for emit_parm */
	VmPagesFunc get; /* for emit_pages */
};

/*
 * Room for one VM's rows of a family: per row the name (with a suffix such as
 * "_bucket"), the label and at most 64 bytes more (another label, the value).
 */
#define VM_ROOM(f, e) ((f)->rows * ((f)->name_len + (e)->label_len + 16 + 64))

/* "NAME{LABEL" */
static inline gchar *
row_start(gchar *w, const VmFamily *f, const VmEntry *e)
{
	w = vmbc_metrics_put(w, f->name, f->name_len);
	*w++ = '{';
	return vmbc_metrics_put(w, e->label, e->label_len);
}

static inline gchar *
row_end_i64(gchar *w, gint64 v)
{
	w = VMBC_METRICS_PUT_LIT(w, "} ");
	w = vmbc_metrics_put_i64(w, v);
	*w++ = '\n';
	return w;
}

static inline gchar *
row_end_u64(gchar *w, guint64 v)
{
	w = VMBC_METRICS_PUT_LIT(w, "} ");
	w = vmbc_metrics_put_u64(w, v);
	*w++ = '\n';
	return w;
}

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

static gchar *
emit_parm(const VmbcMetricsPage *p, const VmFamily *f, VmEntry *e, gchar *w)
{
	for (guint res = 0; res < VMBC_RES_COUNT; res++) {
		gint64 v = parm_field(&e->bc->parm[res], f->field);
		if (v == VMBC_UNLIMITED)
			continue;
		w = row_start(w, f, e);
		w = vmbc_metrics_put(w, p->r->resource_label[res]->str,
				     p->r->resource_label[res]->len);
		w = row_end_i64(w, vmbc_pages_to_bytes(v, p->page_size));
	}
	return w;
}

static gchar *
emit_failcnt(const VmbcMetricsPage *p, const VmFamily *f, VmEntry *e, gchar *w)
{
	for (guint res = 0; res < VMBC_RES_COUNT; res++) {
		w = row_start(w, f, e);
		w = vmbc_metrics_put(w, p->r->resource_label[res]->str,
				     p->r->resource_label[res]->len);
		w = row_end_u64(w, e->bc->parm[res].failcnt);
	}
	return w;
}

static gchar *
emit_pages(const VmbcMetricsPage *p, const VmFamily *f, VmEntry *e, gchar *w)
{
	gint64 v = f->get(e->bc);

	if (v < 0)
		return w;
	w = row_start(w, f, e);
	return row_end_i64(w, vmbc_pages_to_bytes(v, p->page_size));
}

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

static gchar *
emit_free_page_reporting(const VmbcMetricsPage *p, const VmFamily *f, VmEntry *e, gchar *w)
{
	if (e->bc->free_page_reporting < 0)
		return w;
	w = row_start(w, f, e);
	return row_end_i64(w, e->bc->free_page_reporting > 0 ? 1 : 0);
}

static gchar *
emit_shares(const VmbcMetricsPage *p, const VmFamily *f, VmEntry *e, gchar *w)
{
	w = row_start(w, f, e);
	return row_end_u64(w, e->bc->shares);
}

static gchar *
emit_reclaims_started(const VmbcMetricsPage *p, const VmFamily *f, VmEntry *e, gchar *w)
{
	VmbcReclaimCounters reclaims;

	vmbc_physpages_get_counters(e->bc, &reclaims);
	w = row_start(w, f, e);
	return row_end_u64(w, reclaims.started);
}

static gchar *
emit_reclaims(const VmbcMetricsPage *p, const VmFamily *f, VmEntry *e, gchar *w)
{
	VmbcReclaimCounters reclaims;

	vmbc_physpages_get_counters(e->bc, &reclaims);
	w = row_start(w, f, e);
	w = VMBC_METRICS_PUT_LIT(w, ",outcome=\"done\"");
	w = row_end_u64(w, reclaims.done);
	w = row_start(w, f, e);
	w = VMBC_METRICS_PUT_LIT(w, ",outcome=\"failed\"");
	return row_end_u64(w, reclaims.failed);
}

static gchar *
emit_balloon_stalls(const VmbcMetricsPage *p, const VmFamily *f, VmEntry *e, gchar *w)
{
	VmbcReclaimCounters reclaims;

	vmbc_physpages_get_counters(e->bc, &reclaims);
	w = row_start(w, f, e);
	return row_end_u64(w, reclaims.stalls);
}

static gchar *
emit_vmem_stalls(const VmbcMetricsPage *p, const VmFamily *f, VmEntry *e, gchar *w)
{
	if (!e->bc->has_vmem)
		return w;
	w = row_start(w, f, e);
	return row_end_u64(w, e->bc->vmem_stalls);
}

/* NAME_bucket{LABEL,le=...} for every bound and +Inf, then NAME_sum and NAME_count. */
static gchar *
emit_reclaim_histogram(const VmbcMetricsPage *p, const VmFamily *f, VmEntry *e, gchar *w)
{
	const BoundText *le = p->r->reclaim_le;

	for (guint i = 0; i <= VMBC_RECLAIM_BUCKETS; i++) {
		w = vmbc_metrics_put(w, f->name, f->name_len);
		w = VMBC_METRICS_PUT_LIT(w, "_bucket{");
		w = vmbc_metrics_put(w, e->label, e->label_len);
		w = VMBC_METRICS_PUT_LIT(w, ",le=\"");
		if (i < VMBC_RECLAIM_BUCKETS)
			w = vmbc_metrics_put(w, le[i].text, le[i].len);
		else
			w = VMBC_METRICS_PUT_LIT(w, "+Inf");
		w = VMBC_METRICS_PUT_LIT(w, "\"} ");
		w = vmbc_metrics_put_u64(w, i < VMBC_RECLAIM_BUCKETS ? MIN(e->buckets[i], e->count)
								     : e->count);
		*w++ = '\n';
	}
	w = vmbc_metrics_put(w, f->name, f->name_len);
	w = VMBC_METRICS_PUT_LIT(w, "_sum{");
	w = vmbc_metrics_put(w, e->label, e->label_len);
	w = VMBC_METRICS_PUT_LIT(w, "} ");
	w = vmbc_metrics_put_double(w, &e->sum_text, e->sum);
	*w++ = '\n';
	w = vmbc_metrics_put(w, f->name, f->name_len);
	w = VMBC_METRICS_PUT_LIT(w, "_count{");
	w = vmbc_metrics_put(w, e->label, e->label_len);
	return row_end_u64(w, e->count);
}

/* Each VM's idle fraction as the host's reclaim uses it, labelled by where it came from. */
static gchar *
emit_idle(const VmbcMetricsPage *p, const VmFamily *f, VmEntry *e, gchar *w)
{
	VmbcEngine *engine = vmbc_daemon_get_engine(p->r->daemon);
	VmbcIdleSource src = VMBC_IDLE_NONE;
	gdouble idle = vmbc_engine_idle_fraction(engine, e->bc, &src);
	const gchar *source = vmbc_idle_source_to_string(src);

	w = row_start(w, f, e);
	w = VMBC_METRICS_PUT_LIT(w, ",source=\"");
	w = vmbc_metrics_put(w, source, MIN(strlen(source), 24));
	w = VMBC_METRICS_PUT_LIT(w, "\"} ");
	w = vmbc_metrics_put_double(w, &e->idle_text, idle);
	*w++ = '\n';
	return w;
}

#define NAME(n) n, sizeof(n) - 1
#define PARM_FAMILY(n, f, h)                                                                       \
	{                                                                                          \
		NAME(n), "gauge", h, VMBC_RES_COUNT, emit_parm, f, NULL                            \
	}
#define PAGES_FAMILY(n, g, h)                                                                      \
	{                                                                                          \
		NAME(n), "gauge", h, 1, emit_pages, 0, g                                           \
	}

/* The per-VM families in page order. */
static const VmFamily vm_families[] = {
	PARM_FAMILY("vmbc_held_bytes", PARM_HELD, "Memory the beancounter holds now (UBC held)."),
	PARM_FAMILY("vmbc_maxheld_bytes", PARM_MAXHELD,
		    "Highest held since the beancounter was created or its counters reset (UBC "
		    "maxheld)."),
	PARM_FAMILY("vmbc_minheld_bytes", PARM_MINHELD,
		    "Lowest held since the beancounter was created or its counters reset (UBC "
		    "minheld)."),
	PARM_FAMILY("vmbc_barrier_bytes", PARM_BARRIER,
		    "Soft limit (UBC barrier); no series when unlimited. For vmguarpages: the "
		    "guarantee."),
	PARM_FAMILY("vmbc_limit_bytes", PARM_LIMIT,
		    "Hard limit (UBC limit); no series when unlimited."),
	{NAME("vmbc_failcnt_total"), "counter",
	 "Times the resource was refused or a reclaim for it failed (UBC failcnt); "
	 "resetcnt sets it back to 0.",
	 VMBC_RES_COUNT, emit_failcnt, 0, NULL},
	PAGES_FAMILY("vmbc_memory_max_bytes", get_max_pages,
		     "The VM's maximum memory (guest RAM size)."),
	PAGES_FAMILY("vmbc_balloon_actual_bytes", get_balloon_actual,
		     "Guest-visible memory now (the balloon's actual); no series until known."),
	PAGES_FAMILY("vmbc_balloon_target_bytes", get_balloon_target,
		     "The last balloon target vmbcd asked for; no series if none was sent."),
	PAGES_FAMILY("vmbc_guest_available_bytes", get_guest_available,
		     "MemAvailable as the guest reports it (an untrusted hint); no series if "
		     "unreported."),
	PAGES_FAMILY("vmbc_guest_unused_bytes", get_guest_unused,
		     "MemFree as the guest reports it (an untrusted hint); no series if "
		     "unreported."),
	PAGES_FAMILY("vmbc_guest_caches_bytes", get_guest_caches,
		     "Disk caches as the guest reports them (an untrusted hint); no series if "
		     "unreported."),
	PAGES_FAMILY("vmbc_guest_total_bytes", get_guest_total,
		     "MemTotal as the guest reports it (an untrusted hint); no series if "
		     "unreported."),
	PAGES_FAMILY("vmbc_guest_ram_size_bytes", get_ram_size,
		     "Guest RAM's size: every memory backend QEMU maps for the guest."),
	PAGES_FAMILY("vmbc_guest_ram_hugetlb_size_bytes", get_ram_hugetlb,
		     "Of guest RAM, the hugetlb-backed part, which no balloon can reclaim."),
	PAGES_FAMILY("vmbc_guest_ram_balloon_reclaimable_bytes", get_ram_reclaimable,
		     "Of guest RAM, the part the balloon can reclaim (not hugetlb-backed)."),
	PAGES_FAMILY("vmbc_physpages_hugetlb_bytes", get_hugetlb_held,
		     "Of physpages held, the guest RAM resident in hugetlb pages."),
	PAGES_FAMILY("vmbc_ksm_saved_bytes", get_ksm_saved,
		     "Resident guest RAM KSM merged that the VM's other sharers pay for (not "
		     "charged)."),
	PAGES_FAMILY("vmbc_virtio_mem_size_bytes", get_vmem_size,
		     "What the VM's virtio-mem device has plugged now; no series without one."),
	PAGES_FAMILY("vmbc_virtio_mem_requested_bytes", get_vmem_requested,
		     "The virtio-mem device's requested size; no series without one."),
	{NAME("vmbc_free_page_reporting"), "gauge",
	 "1 if the VM's balloon has free page reporting on, 0 if off; no series until known.", 1,
	 emit_free_page_reporting, 0, NULL},
	{NAME("vmbc_shares"), "gauge",
	 "The VM's relative weight when the host over its barrier reclaims.", 1, emit_shares, 0,
	 NULL},
	{NAME("vmbc_reclaims_started_total"), "counter",
	 "Reclaims started on the VM (limit, barrier-hit and manual).", 1, emit_reclaims_started, 0,
	 NULL},
	{NAME("vmbc_reclaims_total"), "counter",
	 "Reclaims that ended, by outcome: done (held back within the limit or the manual size "
	 "reached) or failed.",
	 2, emit_reclaims, 0, NULL},
	{NAME("vmbc_balloon_stalls_total"), "counter",
	 "Limit reclaims failed because the balloon moved slower than balloon-stall-rate.", 1,
	 emit_balloon_stalls, 0, NULL},
	{NAME("vmbc_virtio_mem_stalls_total"), "counter",
	 "Resizes of the VM's virtio-mem device the guest did not follow (the balloon took "
	 "over); no series without one.",
	 1, emit_vmem_stalls, 0, NULL},
	{NAME("vmbc_reclaim_duration_seconds"), "histogram",
	 "How long successful reclaims took, from start to held within the limit.",
	 VMBC_RECLAIM_BUCKETS + 3, emit_reclaim_histogram, 0, NULL},
	{NAME("vmbc_idle_ratio"), "gauge",
	 "The VM's idle memory as the host's reclaim uses it; source: host (dirty-rate "
	 "sampling), guest (its word, floored at idle-assumed) or none (assumed).",
	 1, emit_idle, 0, NULL},
};

#undef PAGES_FAMILY
#undef PARM_FAMILY
#undef NAME

/* --- the host and the daemon ---------------------------------------------- */

static const struct {
	ParmField field;
	const gchar *name;
	const gchar *help;
} host_parm_families[] = {
	{PARM_HELD, "vmbc_host_held_bytes", "Memory the beancounter holds now (UBC held)."},
	{PARM_MAXHELD, "vmbc_host_maxheld_bytes",
	 "Highest held since the beancounter was created or its counters reset (UBC maxheld)."},
	{PARM_MINHELD, "vmbc_host_minheld_bytes",
	 "Lowest held since the beancounter was created or its counters reset (UBC minheld)."},
	{PARM_BARRIER, "vmbc_host_barrier_bytes",
	 "Soft limit (UBC barrier); no series when unlimited. For vmguarpages: the guarantee."},
	{PARM_LIMIT, "vmbc_host_limit_bytes", "Hard limit (UBC limit); no series when unlimited."},
};

/* A gauge or counter without labels but @labels, with a double value. */
static void
plain_double(GString *out, const gchar *name, const gchar *labels, gdouble v)
{
	g_string_append(out, name);
	if (labels != NULL)
		g_string_append_printf(out, "{%s}", labels);
	g_string_append_c(out, ' ');
	vmbc_metrics_append_double(out, v);
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

	vmbc_metrics_family(
		out, "vmbc_host_budget_bytes", "gauge",
		"What the VMs' guest RAM may hold together, and where that comes from (cgroup-v1, "
		"cgroup-v2, host-ram, config); no series while unlimited.");
	if (st->signals_known && st->signals.budget >= 0 && st->signals.budget != VMBC_UNLIMITED)
		plain_double(out, "vmbc_host_budget_bytes", source,
			     (gdouble)vmbc_pages_to_bytes(st->signals.budget, page));
	vmbc_metrics_family(out, "vmbc_host_cgroup_usage_bytes", "gauge",
			    "What the VMs' cgroup charges now; no series without one.");
	if (info->cgroup_usage >= 0)
		plain_double(out, "vmbc_host_cgroup_usage_bytes", NULL,
			     (gdouble)info->cgroup_usage);
	vmbc_metrics_family(out, "vmbc_host_cgroup_limit_bytes", "gauge",
			    "The VMs' cgroup's limit; no series without one or while it is max.");
	if (info->cgroup_limit >= 0)
		plain_double(out, "vmbc_host_cgroup_limit_bytes", NULL,
			     (gdouble)info->cgroup_limit);
	vmbc_metrics_family(
		out, "vmbc_host_memory_stall_avg10_ratio", "gauge",
		"Memory PSI of the VMs' cgroup or the host: the share of the last 10 s some (or "
		"all) tasks stalled on memory.");
	if (st->signals.psi_some_avg10 >= 0)
		plain_double(out, "vmbc_host_memory_stall_avg10_ratio", "kind=\"some\"",
			     st->signals.psi_some_avg10 / 100.0);
	if (st->signals.psi_full_avg10 >= 0)
		plain_double(out, "vmbc_host_memory_stall_avg10_ratio", "kind=\"full\"",
			     st->signals.psi_full_avg10 / 100.0);
	vmbc_metrics_family(out, "vmbc_host_memory_stall_seconds_total", "counter",
			    "Memory PSI totals: time some (or all) tasks stalled on memory.");
	if (st->signals.psi_some_total >= 0)
		plain_double(out, "vmbc_host_memory_stall_seconds_total", "kind=\"some\"",
			     (gdouble)st->signals.psi_some_total / 1e6);
	if (st->signals.psi_full_total >= 0)
		plain_double(out, "vmbc_host_memory_stall_seconds_total", "kind=\"full\"",
			     (gdouble)st->signals.psi_full_total / 1e6);
	vmbc_metrics_family(
		out, "vmbc_host_pressured", "gauge",
		"1 while the host controller sees pressure (over the budget, stall, swapping).");
	plain_double(out, "vmbc_host_pressured", NULL, st->reason != VMBC_PRESSURE_NONE ? 1 : 0);
	vmbc_metrics_family(out, "vmbc_host_psi_triggers_total", "counter",
			    "Times the kernel's PSI trigger woke vmbcd.");
	plain_double(out, "vmbc_host_psi_triggers_total", NULL, (gdouble)st->triggers);
	vmbc_metrics_family(out, "vmbc_host_taken_bytes_total", "counter",
			    "Memory the host controller took from VMs under pressure.");
	plain_double(out, "vmbc_host_taken_bytes_total", NULL,
		     (gdouble)vmbc_pages_to_bytes(st->taken_pages, page));
	vmbc_metrics_family(
		out, "vmbc_host_given_back_bytes_total", "counter",
		"Memory the host controller gave back to VMs once the pressure was gone.");
	plain_double(out, "vmbc_host_given_back_bytes_total", NULL,
		     (gdouble)vmbc_pages_to_bytes(st->given_pages, page));
}

static void
render_host(VmbcMetricsRenderer *r, GString *out, gsize page)
{
	VmbcBeancounter *host = vmbc_engine_get_host(vmbc_daemon_get_engine(r->daemon));
	const VmbcParm *p = &host->parm[VMBC_RES_PHYSPAGES];
	const gchar *labels = "resource=\"physpages\"";

	for (guint f = 0; f < G_N_ELEMENTS(host_parm_families); f++) {
		const gchar *name = host_parm_families[f].name;
		gint64 v = parm_field(p, host_parm_families[f].field);
		vmbc_metrics_family(out, name, "gauge", host_parm_families[f].help);
		if (v == VMBC_UNLIMITED)
			continue;
		vmbc_metrics_sample_start(out, name, labels);
		vmbc_metrics_sample_end_i64(out, vmbc_pages_to_bytes(v, page));
	}
	vmbc_metrics_family(
		out, "vmbc_host_failcnt_total", "counter",
		"Times the host beancounter failed to get back under its limit (UBC failcnt).");
	vmbc_metrics_sample_start(out, "vmbc_host_failcnt_total", labels);
	vmbc_metrics_sample_end_u64(out, p->failcnt);
	vmbc_metrics_family(out, "vmbc_host_memory_bytes", "gauge", "The host's physical memory.");
	g_string_append(out, "vmbc_host_memory_bytes ");
	vmbc_metrics_append_i64(out, vmbc_pages_to_bytes(host->max_pages, page));
	g_string_append_c(out, '\n');
	render_host_pressure(r, out, page);
}

static void
render_daemon(VmbcMetricsRenderer *r, const VmbcMetricsServerStats *stats, guint n_vms,
	      GString *out)
{
	const VmbcTickStats *st = vmbc_daemon_get_tick_stats(r->daemon);
	const VmbcConfig *config = vmbc_daemon_get_config(r->daemon);
	GPtrArray *backends = vmbc_daemon_get_backends(r->daemon);

	vmbc_metrics_family(
		out, "vmbc_tick_duration_seconds", "histogram",
		"How long one engine tick took (sampling every VM and running every policy).");
	vmbc_metrics_histogram(out, "vmbc_tick_duration_seconds", "", r->tick_le, st->buckets,
			       VMBC_TICK_BUCKETS, st->ticks, st->sum_seconds);
	vmbc_metrics_family(out, "vmbc_tick_overruns_total", "counter",
			    "Ticks that took longer than the tick interval.");
	g_string_append(out, "vmbc_tick_overruns_total ");
	vmbc_metrics_append_u64(out, st->overruns);
	g_string_append_c(out, '\n');
	vmbc_metrics_family(out, "vmbc_tick_interval_seconds", "gauge",
			    "The configured tick interval.");
	g_string_append(out, "vmbc_tick_interval_seconds ");
	vmbc_metrics_append_double(out, (gdouble)config->engine.tick_usec / 1e6);
	g_string_append_c(out, '\n');
	vmbc_metrics_family(out, "vmbc_vms", "gauge", "VMs vmbcd holds a beancounter for.");
	g_string_append(out, "vmbc_vms ");
	vmbc_metrics_append_u64(out, n_vms);
	g_string_append_c(out, '\n');
	vmbc_metrics_family(out, "vmbc_backend_up", "gauge",
			    "1 while the backend has a working connection to its source, else 0.");
	for (guint i = 0; i < backends->len; i++) {
		VmbcBackend *b = g_ptr_array_index(backends, i);
		g_string_append(out, "vmbc_backend_up{backend=\"");
		vmbc_metrics_append_label_value(out, vmbc_backend_get_name(b));
		g_string_append(out, "\"} ");
		g_string_append(out, vmbc_backend_is_up(b) ? "1\n" : "0\n");
	}
	vmbc_metrics_family(out, "vmbc_build_info", "gauge",
			    "Always 1; the version of vmbcd in a label.");
	g_string_append(out, "vmbc_build_info{version=\"");
	vmbc_metrics_append_label_value(out, VMBC_VERSION);
	g_string_append(out, "\"} 1\n");
	vmbc_metrics_family(out, "vmbc_start_time_seconds", "gauge",
			    "When vmbcd started, in seconds since the epoch.");
	g_string_append(out, "vmbc_start_time_seconds ");
	vmbc_metrics_append_double(out, (gdouble)(st->started_real / G_USEC_PER_SEC));
	g_string_append_c(out, '\n');
	vmbc_metrics_family(out, "vmbc_metrics_scrapes_total", "counter",
			    "Pages of metrics served.");
	g_string_append(out, "vmbc_metrics_scrapes_total ");
	vmbc_metrics_append_u64(out, stats->scrapes);
	g_string_append_c(out, '\n');
	vmbc_metrics_family(out, "vmbc_metrics_render_seconds", "gauge",
			    "How long rendering the previous metrics page took.");
	g_string_append(out, "vmbc_metrics_render_seconds ");
	vmbc_metrics_append_double(out, r->last_render_seconds);
	g_string_append_c(out, '\n');
	vmbc_metrics_family(
		out, "vmbc_metrics_connections_closed_total", "counter",
		"Connections to the metrics endpoint closed by vmbcd: timeout (no complete "
		"request in time), idle (gave way to a new one when all were taken) or "
		"overload (a new one, when all were in the middle of a request).");
	g_string_append(out, "vmbc_metrics_connections_closed_total{reason=\"timeout\"} ");
	vmbc_metrics_append_u64(out, stats->closed_timeout);
	g_string_append(out, "\nvmbc_metrics_connections_closed_total{reason=\"idle\"} ");
	vmbc_metrics_append_u64(out, stats->closed_idle);
	g_string_append(out, "\nvmbc_metrics_connections_closed_total{reason=\"overload\"} ");
	vmbc_metrics_append_u64(out, stats->closed_overload);
	g_string_append_c(out, '\n');
}

/* --- pages ---------------------------------------------------------------- */

VmbcMetricsPage *
vmbc_metrics_renderer_begin(VmbcMetricsRenderer *r, const VmbcMetricsServerStats *stats)
{
	VmbcMetricsPage *p;
	GPtrArray *vms;
	gint64 start = g_get_monotonic_time();

	g_return_val_if_fail(r != NULL, NULL);

	p = g_new0(VmbcMetricsPage, 1);
	p->r = r;
	if (stats != NULL)
		p->stats = *stats;
	p->page_size = vmbc_page_size();
	vms = vmbc_engine_get_vms(vmbc_daemon_get_engine(r->daemon));
	p->vms = g_ptr_array_new_full(vms->len, (GDestroyNotify)vm_entry_unref);

	/* one lookup per VM; the families walk this array */
	r->generation++;
	for (guint i = 0; i < vms->len; i++) {
		VmEntry *e = vm_entry_get(r, g_ptr_array_index(vms, i));
		e->seen = r->generation;
		g_ptr_array_add(p->vms, vm_entry_ref(e));
	}
	/* VMs that went without a DOMAIN_REMOVED event (should not happen) */
	if (g_hash_table_size(r->vms) > p->vms->len) {
		GHashTableIter iter;
		VmEntry *e;
		g_hash_table_iter_init(&iter, r->vms);
		while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&e)) {
			if (e->seen != r->generation)
				g_hash_table_iter_remove(&iter);
		}
	}
	p->render_usec = g_get_monotonic_time() - start;
	return p;
}

gboolean
vmbc_metrics_page_next(VmbcMetricsPage *p, GString *out, gsize min_bytes)
{
	gsize start_len;
	gint64 start = g_get_monotonic_time();

	g_return_val_if_fail(p != NULL && out != NULL, FALSE);

	start_len = out->len;
	while (!p->done && out->len - start_len < min_bytes) {
		const VmFamily *f;

		if (p->family >= G_N_ELEMENTS(vm_families)) {
			VmbcEngine *engine = vmbc_daemon_get_engine(p->r->daemon);

			render_host(p->r, out, p->page_size);
			render_daemon(p->r, &p->stats, vmbc_engine_get_vms(engine)->len, out);
			p->done = TRUE;
			break;
		}
		f = &vm_families[p->family];
		if (!p->header_done) {
			vmbc_metrics_family(out, f->name, f->type, f->help);
			p->header_done = TRUE;
		}
		while (p->vm < p->vms->len && out->len - start_len < min_bytes) {
			VmEntry *e = g_ptr_array_index(p->vms, p->vm);
			gchar *w;

			p->vm++;
			if (e->bc == NULL) /* gone since the page began */
				continue;
			w = vmbc_metrics_reserve(out, VM_ROOM(f, e));
			vmbc_metrics_commit(out, f->emit(p, f, e, w));
		}
		if (p->vm == p->vms->len) {
			p->family++;
			p->vm = 0;
			p->header_done = FALSE;
		}
	}
	p->render_usec += g_get_monotonic_time() - start;
	if (p->done)
		p->r->last_render_seconds = (gdouble)p->render_usec / 1e6;
	return !p->done;
}

void
vmbc_metrics_page_free(VmbcMetricsPage *p)
{
	if (p == NULL)
		return;
	g_ptr_array_unref(p->vms);
	g_free(p);
}

void
vmbc_metrics_renderer_render(VmbcMetricsRenderer *r, const VmbcMetricsServerStats *stats,
			     GString *out)
{
	g_autoptr(VmbcMetricsPage) p = NULL;

	g_return_if_fail(r != NULL && out != NULL);

	p = vmbc_metrics_renderer_begin(r, stats);
	vmbc_metrics_page_next(p, out, G_MAXSIZE);
}

VmbcMetricsRenderer *
vmbc_metrics_renderer_new(VmbcDaemon *daemon)
{
	VmbcMetricsRenderer *r = g_new0(VmbcMetricsRenderer, 1);

	r->daemon = daemon;
	r->vms = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
				       (GDestroyNotify)vm_entry_drop);
	for (guint i = 0; i < VMBC_RECLAIM_BUCKETS; i++)
		r->reclaim_le[i].len = vmbc_metrics_format_double(r->reclaim_le[i].text,
								  vmbc_reclaim_bucket_bounds[i]);
	r->tick_le = vmbc_metrics_format_bounds(vmbc_tick_bucket_bounds, VMBC_TICK_BUCKETS);
	for (guint i = 0; i < VMBC_RES_COUNT; i++) {
		r->resource_label[i] = g_string_new(",resource=\"");
		g_string_append(r->resource_label[i], vmbc_resource_name(i));
		g_string_append_c(r->resource_label[i], '"');
	}
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
	g_hash_table_unref(r->vms);
	g_strfreev(r->tick_le);
	for (guint i = 0; i < VMBC_RES_COUNT; i++)
		g_string_free(r->resource_label[i], TRUE);
	g_free(r);
}
