/*
 * vmbc-metrics-text.h: writing the text exposition format 0.0.4 fast (private
 * to the metrics renderer).
 *
 * Two ways to append to a GString: the GString calls for the few samples
 * of the host and the daemon, and for the samples of every VM a reserve,
 * raw writes and a commit: room reserved once for a VM's rows of a family,
 * then memcpy of lengths known beforehand and integers formatted by hand.
 */
#pragma once

#include <glib.h>
#include <string.h>

G_BEGIN_DECLS

/* Longest text of a double: "-2.2250738585072014e-308". */
#define VMBC_METRICS_DOUBLE_MAX 31

/* A float sample's text, kept while the value does not change. */
typedef struct {
	gdouble v;
	guint8 len; /* 0: not made yet */
	gchar text[VMBC_METRICS_DOUBLE_MAX];
} VmbcMetricsDouble;

/*
 * Room for @need more bytes at the end of @out, returned as where to write;
 * end with vmbc_metrics_commit(). Growth doubles, as GString's own does.
 */
static inline gchar *
vmbc_metrics_reserve(GString *out, gsize need)
{
	if (out->allocated_len - out->len <= need) {
		gsize len = out->len;

		g_string_set_size(out, len + need);
		out->len = len;
	}
	return out->str + out->len;
}

static inline void
vmbc_metrics_commit(GString *out, gchar *end)
{
	out->len = (gsize)(end - out->str);
	*end = '\0';
}

static inline gchar *
vmbc_metrics_put(gchar *w, const gchar *s, gsize n)
{
	memcpy(w, s, n);
	return w + n;
}

#define VMBC_METRICS_PUT_LIT(w, lit) vmbc_metrics_put((w), (lit), sizeof(lit) - 1)

static inline gchar *
vmbc_metrics_put_u64(gchar *w, guint64 v)
{
	gchar buf[20];
	gchar *p = buf + sizeof(buf);

	do {
		*--p = (gchar)('0' + (v % 10));
		v /= 10;
	} while (v != 0);
	return vmbc_metrics_put(w, p, (gsize)(buf + sizeof(buf) - p));
}

static inline gchar *
vmbc_metrics_put_i64(gchar *w, gint64 v)
{
	if (v >= 0)
		return vmbc_metrics_put_u64(w, (guint64)v);
	*w++ = '-';
	return vmbc_metrics_put_u64(w, (guint64)0 - (guint64)v);
}

/*
 * A float sample value into @buf (VMBC_METRICS_DOUBLE_MAX bytes), its length
 * returned: the shortest "%g" form that reads back the same, C locale.
 */
guint8 vmbc_metrics_format_double(gchar *buf, gdouble v);

/* @v's text through @cache, made again only when @v differs (bit for bit). */
gchar *vmbc_metrics_put_double(gchar *w, VmbcMetricsDouble *cache, gdouble v);

void vmbc_metrics_append_double(GString *out, gdouble v);
void vmbc_metrics_append_i64(GString *out, gint64 v);
void vmbc_metrics_append_u64(GString *out, guint64 v);

/* "# HELP NAME HELP" and "# TYPE NAME TYPE" lines. */
void vmbc_metrics_family(GString *out, const gchar *name, const gchar *type, const gchar *help);

/* "NAME{LABELS" with LABELS already escaped; the caller closes with sample_end_*. */
void vmbc_metrics_sample_start(GString *out, const gchar *name, const gchar *labels);
void vmbc_metrics_sample_end_i64(GString *out, gint64 v);
void vmbc_metrics_sample_end_u64(GString *out, guint64 v);

/*
 * One histogram series: NAME_bucket{LABELS,le=...} for every bound and +Inf,
 * then NAME_sum and NAME_count. @bounds are the bucket bounds as text (see
 * vmbc_metrics_format_bounds()), @buckets the cumulative counts; @labels may
 * be "".
 */
void vmbc_metrics_histogram(GString *out, const gchar *name, const gchar *labels,
			    gchar *const *bounds, const guint64 *buckets, guint n, guint64 count,
			    gdouble sum);

/* The bounds as "le" label values (a NULL-terminated array), formatted once. */
gchar **vmbc_metrics_format_bounds(const gdouble *bounds, guint n);

G_END_DECLS
