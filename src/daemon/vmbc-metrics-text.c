/*
 * vmbc-metrics-text.c: writing the text exposition format 0.0.4 (see
 * vmbc-metrics-text.h): numbers, label values, family headers, histograms.
 */
#include "config.h"

#include <math.h>

#include "vmbc-metrics-renderer.h"
#include "vmbc-metrics-text.h"

/*
 * A float sample value into @buf (VMBC_METRICS_DOUBLE_MAX bytes), its length
 * returned: the shortest "%g" form that reads back the same, C locale, as
 * "%.15g" and else "%.17g" print it; integers below 1e15 by hand (what
 * "%.15g" prints for them: the digits).
 */
guint8
vmbc_metrics_format_double(gchar *buf, gdouble v)
{
	gchar tmp[G_ASCII_DTOSTR_BUF_SIZE];
	gsize len;

	if (v != v)
		return (guint8)(vmbc_metrics_put(buf, "NaN", 3) - buf);
	if (v > G_MAXDOUBLE || v < -G_MAXDOUBLE)
		return (guint8)(vmbc_metrics_put(buf, v > 0 ? "+Inf" : "-Inf", 4) - buf);
	if (v > -1e15 && v < 1e15 && v == (gdouble)(gint64)v && !(v == 0 && signbit(v)))
		return (guint8)(vmbc_metrics_put_i64(buf, (gint64)v) - buf);
	g_ascii_formatd(tmp, sizeof(tmp), "%.15g", v);
	if (g_ascii_strtod(tmp, NULL) != v)
		g_ascii_formatd(tmp, sizeof(tmp), "%.17g", v);
	len = MIN(strlen(tmp), (gsize)VMBC_METRICS_DOUBLE_MAX);
	memcpy(buf, tmp, len);
	return (guint8)len;
}

void
vmbc_metrics_append_double(GString *out, gdouble v)
{
	gchar buf[VMBC_METRICS_DOUBLE_MAX];
	guint8 len = vmbc_metrics_format_double(buf, v);

	g_string_append_len(out, buf, len);
}

void
vmbc_metrics_append_i64(GString *out, gint64 v)
{
	gchar buf[24];

	g_string_append_len(out, buf, vmbc_metrics_put_i64(buf, v) - buf);
}

void
vmbc_metrics_append_u64(GString *out, guint64 v)
{
	gchar buf[24];

	g_string_append_len(out, buf, vmbc_metrics_put_u64(buf, v) - buf);
}

/* @v's text through @cache, made again only when @v differs (bit for bit). */
gchar *
vmbc_metrics_put_double(gchar *w, VmbcMetricsDouble *cache, gdouble v)
{
	if (cache->len == 0 || memcmp(&cache->v, &v, sizeof(v)) != 0) {
		cache->v = v;
		cache->len = vmbc_metrics_format_double(cache->text, v);
	}
	return vmbc_metrics_put(w, cache->text, cache->len);
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

void
vmbc_metrics_family(GString *out, const gchar *name, const gchar *type, const gchar *help)
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
void
vmbc_metrics_sample_start(GString *out, const gchar *name, const gchar *labels)
{
	g_string_append(out, name);
	g_string_append_c(out, '{');
	g_string_append(out, labels);
}

void
vmbc_metrics_sample_end_i64(GString *out, gint64 v)
{
	g_string_append(out, "} ");
	vmbc_metrics_append_i64(out, v);
	g_string_append_c(out, '\n');
}

void
vmbc_metrics_sample_end_u64(GString *out, guint64 v)
{
	g_string_append(out, "} ");
	vmbc_metrics_append_u64(out, v);
	g_string_append_c(out, '\n');
}

/*
 * One histogram series without a VM (the tick's): NAME_bucket{LABELS,le=...}
 * for every bound and +Inf, then NAME_sum and NAME_count. @bounds are the
 * bucket bounds as text, @buckets the cumulative counts; @labels may be "".
 */
void
vmbc_metrics_histogram(GString *out, const gchar *name, const gchar *labels, gchar *const *bounds,
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
		vmbc_metrics_append_u64(out, i < n ? MIN(buckets[i], count) : count);
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
	vmbc_metrics_append_double(out, sum);
	g_string_append_c(out, '\n');
	g_string_append(out, name);
	g_string_append(out, "_count");
	if (*labels != '\0') {
		g_string_append_c(out, '{');
		g_string_append(out, labels);
		g_string_append_c(out, '}');
	}
	g_string_append_c(out, ' ');
	vmbc_metrics_append_u64(out, count);
	g_string_append_c(out, '\n');
}

/* The bounds as "le" label values, formatted once rather than on every scrape. */
gchar **
vmbc_metrics_format_bounds(const gdouble *bounds, guint n)
{
	gchar **text = g_new0(gchar *, n + 1);

	for (guint i = 0; i < n; i++) {
		gchar buf[VMBC_METRICS_DOUBLE_MAX];
		guint8 len = vmbc_metrics_format_double(buf, bounds[i]);
		text[i] = g_strndup(buf, len);
	}
	return text;
}
