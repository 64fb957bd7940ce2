/*
 * vmbc-size.c: parsing and printing of sizes, and parsing of durations (see vmbc-size.h).
 *
 * Every value from outside (config, CLI, control socket) passes through here,
 * so nothing may overflow or be accepted half-parsed: "12Q", "1e9", "-5M",
 * "99999999999T" and "" are all refused with the text named in the message.
 */
#include <errno.h>
#include <unistd.h>

#include "vmbc-error.h"
#include "vmbc-size.h"

gsize
vmbc_page_size(void)
{
	static gsize page_size = 0;
	if (page_size == 0) {
		long v = sysconf(_SC_PAGESIZE);
		page_size = v > 0 ? (gsize)v : 4096;
	}
	return page_size;
}

typedef struct {
	const gchar *suffix;
	guint64 multiplier; /* bytes; 0 for pages, 1 for percent handled apart */
} SizeUnit;

static const SizeUnit units[] = {
	{"", 1},	   {"b", 1},
	{"k", 1ULL << 10}, {"kib", 1ULL << 10},
	{"m", 1ULL << 20}, {"mib", 1ULL << 20},
	{"g", 1ULL << 30}, {"gib", 1ULL << 30},
	{"t", 1ULL << 40}, {"tib", 1ULL << 40},
};

gboolean
vmbc_size_parse(const gchar *text, gsize page_size, gint64 max_pages, gint64 *pages_out,
		GError **error)
{
	const gchar *p;
	guint64 whole = 0;
	guint64 frac_num = 0; /* fractional digits as an integer */
	guint64 frac_den = 1;
	g_autofree gchar *suffix = NULL;
	gint64 pages;

	g_return_val_if_fail(page_size > 0, FALSE);
	g_return_val_if_fail(pages_out != NULL, FALSE);

	if (text == NULL || *text == '\0') {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "invalid size '': expected a number with an optional unit "
			    "(K, M, G, T, p for pages, %% of the maximum) or 'unlimited'");
		return FALSE;
	}
	if (g_ascii_strcasecmp(text, "unlimited") == 0) {
		*pages_out = VMBC_UNLIMITED;
		return TRUE;
	}

	p = text;
	if (!g_ascii_isdigit(*p)) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "invalid size '%s': expected a number with an optional unit "
			    "(K, M, G, T, p for pages, %% of the maximum) or 'unlimited'",
			    text);
		return FALSE;
	}
	for (; g_ascii_isdigit(*p); p++) {
		guint d = (guint)(*p - '0');
		if (whole > (G_MAXUINT64 - d) / 10) {
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "invalid size '%s': number too large", text);
			return FALSE;
		}
		whole = whole * 10 + d;
	}
	if (*p == '.') {
		p++;
		if (!g_ascii_isdigit(*p)) {
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "invalid size '%s': expected digits after '.'", text);
			return FALSE;
		}
		for (; g_ascii_isdigit(*p); p++) {
			/* more than 6 decimals carry no meaning for sizes */
			if (frac_den < 1000000) {
				frac_num = frac_num * 10 + (guint64)(*p - '0');
				frac_den *= 10;
			}
		}
	}
	suffix = g_ascii_strdown(p, -1);

	if (g_strcmp0(suffix, "p") == 0) {
		if (frac_num != 0) {
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "invalid size '%s': a page count must be whole", text);
			return FALSE;
		}
		if (whole > (guint64)G_MAXINT64 - 1) {
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "invalid size '%s': number too large", text);
			return FALSE;
		}
		*pages_out = (gint64)whole;
		return TRUE;
	}

	if (g_strcmp0(suffix, "%") == 0) {
		gdouble pct = (gdouble)whole + (gdouble)frac_num / (gdouble)frac_den;
		if (max_pages <= 0) {
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "invalid size '%s': a percentage needs the VM's maximum "
				    "memory, which is not known here",
				    text);
			return FALSE;
		}
		if (pct > 100.0) {
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "invalid size '%s': a percentage cannot exceed 100%%", text);
			return FALSE;
		}
		*pages_out = (gint64)((gdouble)max_pages * pct / 100.0);
		return TRUE;
	}

	for (guint i = 0; i < G_N_ELEMENTS(units); i++) {
		guint64 mult = units[i].multiplier;
		guint64 bytes;
		if (g_strcmp0(suffix, units[i].suffix) != 0)
			continue;
		if (whole > G_MAXUINT64 / mult) {
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "invalid size '%s': number too large", text);
			return FALSE;
		}
		bytes = whole * mult;
		if (frac_num != 0) {
			guint64 extra =
				(guint64)((gdouble)mult * (gdouble)frac_num / (gdouble)frac_den);
			if (bytes > G_MAXUINT64 - extra) {
				g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
					    "invalid size '%s': number too large", text);
				return FALSE;
			}
			bytes += extra;
		}
		pages = (gint64)(bytes / page_size);
		if (bytes / page_size >= (guint64)G_MAXINT64) {
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "invalid size '%s': number too large", text);
			return FALSE;
		}
		*pages_out = pages;
		return TRUE;
	}

	g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
		    "invalid size '%s': unknown unit '%s' (use K, M, G, T, p for pages, "
		    "or %% of the maximum)",
		    text, p);
	return FALSE;
}

gboolean
vmbc_size_parse_pair(const gchar *text, gsize page_size, gint64 max_pages, gint64 *barrier_out,
		     gint64 *limit_out, GError **error)
{
	g_auto(GStrv) parts = NULL;
	gint64 barrier = 0;
	gint64 limit = 0;

	g_return_val_if_fail(barrier_out != NULL && limit_out != NULL, FALSE);

	if (text == NULL) {
		g_set_error_literal(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "missing BARRIER[:LIMIT]");
		return FALSE;
	}
	parts = g_strsplit(text, ":", -1);
	if (g_strv_length(parts) < 1 || g_strv_length(parts) > 2) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "invalid BARRIER[:LIMIT] '%s': expected one or two sizes", text);
		return FALSE;
	}
	if (!vmbc_size_parse(parts[0], page_size, max_pages, &barrier, error))
		return FALSE;
	if (parts[1] != NULL) {
		if (!vmbc_size_parse(parts[1], page_size, max_pages, &limit, error))
			return FALSE;
	} else {
		limit = barrier;
	}
	if (barrier > limit) {
		g_autofree gchar *b = vmbc_size_format_human(barrier, page_size);
		g_autofree gchar *l = vmbc_size_format_human(limit, page_size);
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "invalid BARRIER[:LIMIT] '%s': barrier %s is above limit %s", text, b,
			    l);
		return FALSE;
	}
	*barrier_out = barrier;
	*limit_out = limit;
	return TRUE;
}

gint64
vmbc_pages_to_bytes(gint64 pages, gsize page_size)
{
	if (pages >= G_MAXINT64 / (gint64)page_size || pages == VMBC_UNLIMITED)
		return G_MAXINT64;
	if (pages <= G_MININT64 / (gint64)page_size)
		return G_MININT64;
	return pages * (gint64)page_size;
}

gchar *
vmbc_size_format_human(gint64 pages, gsize page_size)
{
	static const gchar *const suffixes[] = {"", "K", "M", "G", "T", "P"};
	gdouble v;
	guint i = 0;
	gint64 bytes;
	gboolean neg = FALSE;

	if (pages == VMBC_UNLIMITED)
		return g_strdup("unlimited");
	bytes = vmbc_pages_to_bytes(pages, page_size);
	if (bytes < 0) {
		neg = TRUE;
		bytes = bytes == G_MININT64 ? G_MAXINT64 : -bytes;
	}
	v = (gdouble)bytes;
	while (v >= 1024.0 && i < G_N_ELEMENTS(suffixes) - 1) {
		v /= 1024.0;
		i++;
	}
	if (i == 0)
		return g_strdup_printf("%s%" G_GINT64_FORMAT, neg ? "-" : "", bytes);
	if (v == (gdouble)(gint64)v)
		return g_strdup_printf("%s%" G_GINT64_FORMAT "%s", neg ? "-" : "", (gint64)v,
				       suffixes[i]);
	return g_strdup_printf("%s%.1f%s", neg ? "-" : "", v, suffixes[i]);
}

gboolean
vmbc_duration_parse(const gchar *text, gint64 *usec_out, GError **error)
{
	gchar *end = NULL;
	gdouble v;
	gdouble mult;

	if (text == NULL || *text == '\0' || !(g_ascii_isdigit(*text) || *text == '.')) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "invalid duration '%s': expected a number with ms, s, m or h",
			    text != NULL ? text : "");
		return FALSE;
	}
	errno = 0;
	v = g_ascii_strtod(text, &end);
	if (errno != 0 || end == text) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID, "invalid duration '%s'", text);
		return FALSE;
	}
	if (*end == '\0' || g_strcmp0(end, "s") == 0)
		mult = 1e6;
	else if (g_strcmp0(end, "ms") == 0)
		mult = 1e3;
	else if (g_strcmp0(end, "us") == 0)
		mult = 1;
	else if (g_strcmp0(end, "m") == 0 || g_strcmp0(end, "min") == 0)
		mult = 60e6;
	else if (g_strcmp0(end, "h") == 0)
		mult = 3600e6;
	else {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "invalid duration '%s': unknown unit '%s' (use ms, s, m or h)", text,
			    end);
		return FALSE;
	}
	if (v <= 0 || v * mult > 1e15) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "invalid duration '%s': must be positive and sane", text);
		return FALSE;
	}
	*usec_out = (gint64)(v * mult);
	return TRUE;
}
