/*
 * vmbc-smaps.c: the smaps reader (see vmbc-smaps.h): guest RAM by the ranges
 * QEMU named, or by the size of the guest's RAM where it named none.
 */
#include <string.h>

#include "vmbc-error.h"
#include "vmbc-smaps.h"

/* QEMU aligns guest RAM; a mapping this much larger than RAM still counts as RAM. */
#define GUEST_RAM_SLACK (2 * 1024 * 1024)

void
vmbc_smaps_split_clear(VmbcSmapsSplit *split)
{
	g_clear_pointer(&split->guest_name, g_free);
	g_clear_pointer(&split->spans, g_array_unref);
	memset(split, 0, sizeof(*split));
}

/* One mapping being read. */
typedef struct {
	gboolean valid;
	guint64 start;
	guint64 end;
	gchar perms[5];
	const gchar *name; /* into the text */
	gsize name_len;
	guint64 rss; /* bytes */
	guint64 pss;
	guint64 hugetlb;
	guint64 kernel_page; /* KernelPageSize, 0 unknown */
} Mapping;

static gboolean
is_hex(gchar c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Reads hex digits at *p (at least one), moving *p past them. */
static gboolean
take_hex(const gchar **p, const gchar *end, guint64 *out)
{
	guint64 v = 0;
	const gchar *q = *p;

	if (q >= end || !is_hex(*q))
		return FALSE;
	for (; q < end && is_hex(*q); q++) {
		if (v >> 60 != 0)
			return FALSE;
		v = (v << 4) | (guint64)g_ascii_xdigit_value(*q);
	}
	*p = q;
	*out = v;
	return TRUE;
}

static gboolean
take_char(const gchar **p, const gchar *end, gchar c)
{
	if (*p >= end || **p != c)
		return FALSE;
	(*p)++;
	return TRUE;
}

/* Skips a field of non-blanks followed by blanks; FALSE if the field is empty. */
static gboolean
skip_field(const gchar **p, const gchar *end)
{
	const gchar *q = *p;

	while (q < end && *q != ' ' && *q != '\t')
		q++;
	if (q == *p)
		return FALSE;
	while (q < end && (*q == ' ' || *q == '\t'))
		q++;
	*p = q;
	return TRUE;
}

/* "start-end perms offset dev inode [name]" */
static gboolean
parse_header(const gchar *line, const gchar *end, Mapping *m)
{
	const gchar *p = line;
	const gchar *name_end;

	memset(m, 0, sizeof(*m));
	if (!take_hex(&p, end, &m->start) || !take_char(&p, end, '-') ||
	    !take_hex(&p, end, &m->end) || !take_char(&p, end, ' '))
		return FALSE;
	if (end - p < 5 || p[4] != ' ')
		return FALSE;
	memcpy(m->perms, p, 4);
	p += 5;
	/* offset, device, inode */
	for (guint i = 0; i < 3; i++) {
		if (!skip_field(&p, end))
			return FALSE;
	}
	name_end = end;
	while (name_end > p && (name_end[-1] == ' ' || name_end[-1] == '\t'))
		name_end--;
	m->name = p;
	m->name_len = (gsize)(name_end - p);
	m->valid = m->end >= m->start;
	return m->valid;
}

/* A header line starts "hex-hex "; field lines start with a capitalized key. */
static gboolean
looks_like_header(const gchar *line, const gchar *end)
{
	const gchar *p = line;

	while (p < end && is_hex(*p))
		p++;
	return p > line && p < end && *p == '-';
}

/* "Rss:   1234 kB" -> bytes */
static gboolean
parse_kb_field(const gchar *line, const gchar *end, guint64 *bytes)
{
	const gchar *p = memchr(line, ':', (gsize)(end - line));
	guint64 v = 0;

	if (p == NULL)
		return FALSE;
	for (p++; p < end && *p == ' '; p++)
		;
	if (p >= end || !g_ascii_isdigit(*p))
		return FALSE;
	for (; p < end && g_ascii_isdigit(*p); p++) {
		if (v > G_MAXUINT64 / 10 / 1024)
			return FALSE;
		v = v * 10 + (guint64)(*p - '0');
	}
	if (end - p != 3 || strncmp(p, " kB", 3) != 0)
		return FALSE;
	*bytes = v * 1024;
	return TRUE;
}

static gboolean
name_is_anonymous(const Mapping *m)
{
	if (m->name_len == 0)
		return TRUE;
	if (m->name_len >= 7 && strncmp(m->name, "/memfd:", 7) == 0)
		return TRUE;
	if (m->name_len >= 6 && strncmp(m->name, "[anon:", 6) == 0)
		return TRUE;
	return FALSE;
}

static void
consider_mapping(const Mapping *m, guint64 guest_ram_bytes, VmbcSmapsSplit *split)
{
	guint64 size;
	VmbcRamSpan span = {0};

	if (!m->valid)
		return;
	split->mappings++;
	split->total_rss += m->rss;
	size = m->end - m->start;
	if (m->perms[0] != 'r' || m->perms[1] != 'w' || m->perms[2] == 'x')
		return;
	if (!name_is_anonymous(m))
		return;
	if (size < guest_ram_bytes || size - guest_ram_bytes > GUEST_RAM_SLACK)
		return;
	if (split->found &&
	    (size < split->guest_size || (size == split->guest_size && m->rss <= split->guest_rss)))
		return;
	split->found = TRUE;
	split->guest_start = m->start;
	split->guest_size = size;
	split->guest_rss = m->rss;
	split->guest_pss = m->pss;
	split->guest_hugetlb = m->hugetlb;
	split->guest_hugetlb_size = m->hugetlb > 0 ? size : 0;
	g_free(split->guest_name);
	split->guest_name = g_strndup(m->name, m->name_len);
	if (split->spans == NULL)
		split->spans = g_array_new(FALSE, TRUE, sizeof(VmbcRamSpan));
	g_array_set_size(split->spans, 0);
	span.start = m->start;
	span.size = size;
	span.rss = m->rss;
	span.pss = m->pss;
	span.hugetlb = m->hugetlb;
	span.huge = m->hugetlb > 0;
	span.vmas = 1;
	g_array_append_val(split->spans, span);
}

/* The parse state: by size (ranges NULL) or by the ranges QEMU named. */
typedef struct {
	guint64 guest_ram_bytes;
	const VmbcRamRange *ranges;
	guint n_ranges;
	gsize base_page_size;
} ParseCtx;

static void
count_in_range(const Mapping *m, const ParseCtx *ctx, VmbcSmapsSplit *split)
{
	if (!m->valid)
		return;
	split->mappings++;
	split->total_rss += m->rss;
	for (guint i = 0; i < ctx->n_ranges; i++) {
		VmbcRamSpan *span = &g_array_index(split->spans, VmbcRamSpan, i);

		if (m->start < ctx->ranges[i].start ||
		    m->start >= ctx->ranges[i].start + ctx->ranges[i].size)
			continue;
		span->rss += m->rss;
		span->pss += m->pss;
		span->hugetlb += m->hugetlb;
		if (m->kernel_page > ctx->base_page_size || m->hugetlb > 0)
			span->huge = TRUE;
		if (span->vmas++ == 0 && !split->found) {
			split->found = TRUE;
			g_free(split->guest_name);
			split->guest_name = g_strndup(m->name, m->name_len);
		}
		return;
	}
}

static void
finish_mapping(const Mapping *m, const ParseCtx *ctx, VmbcSmapsSplit *split)
{
	if (ctx->ranges == NULL)
		consider_mapping(m, ctx->guest_ram_bytes, split);
	else
		count_in_range(m, ctx, split);
}

/* The kB fields the parser keeps, by key (with the colon). */
static guint64 *
field_slot(Mapping *m, const gchar *p, const gchar *end)
{
	static const struct {
		const gchar *key;
		gsize off;
	} fields[] = {
		{"Rss:", G_STRUCT_OFFSET(Mapping, rss)},
		{"Pss:", G_STRUCT_OFFSET(Mapping, pss)},
		{"KernelPageSize:", G_STRUCT_OFFSET(Mapping, kernel_page)},
	};

	for (guint i = 0; i < G_N_ELEMENTS(fields); i++) {
		gsize n = strlen(fields[i].key);
		if ((gsize)(end - p) > n && strncmp(p, fields[i].key, n) == 0)
			return (guint64 *)(gpointer)((gchar *)m + fields[i].off);
	}
	return NULL;
}

static gboolean
is_hugetlb_field(const gchar *p, const gchar *end)
{
	return ((gsize)(end - p) > 16 && strncmp(p, "Private_Hugetlb:", 16) == 0) ||
	       ((gsize)(end - p) > 15 && strncmp(p, "Shared_Hugetlb:", 15) == 0);
}

static gboolean
parse_text(const gchar *text, gsize len, const ParseCtx *ctx, VmbcSmapsSplit *split, GError **error)
{
	const gchar *p = text;
	const gchar *text_end = text + len;
	Mapping cur = {0};
	guint lineno = 0;

	while (p < text_end) {
		const gchar *nl = memchr(p, '\n', (gsize)(text_end - p));
		const gchar *end = nl != NULL ? nl : text_end;
		guint64 *slot;

		lineno++;
		if (end == p) {
			/* blank line: tolerated */
		} else if (looks_like_header(p, end)) {
			finish_mapping(&cur, ctx, split);
			if (!parse_header(p, end, &cur)) {
				g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
					    "smaps line %u: bad mapping header '%.*s'", lineno,
					    (int)MIN(end - p, 80), p);
				return FALSE;
			}
		} else if ((slot = field_slot(&cur, p, end)) != NULL || is_hugetlb_field(p, end)) {
			guint64 bytes = 0;
			if (!cur.valid || !parse_kb_field(p, end, &bytes)) {
				g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
					    "smaps line %u: bad field line '%.*s'", lineno,
					    (int)MIN(end - p, 80), p);
				return FALSE;
			}
			if (slot != NULL)
				*slot = bytes;
			else
				cur.hugetlb += bytes;
		}
		p = nl != NULL ? nl + 1 : text_end;
	}
	finish_mapping(&cur, ctx, split);
	return TRUE;
}

gboolean
vmbc_smaps_parse(const gchar *text, gsize len, guint64 guest_ram_bytes, VmbcSmapsSplit *split,
		 GError **error)
{
	ParseCtx ctx = {.guest_ram_bytes = guest_ram_bytes};

	g_return_val_if_fail(text != NULL || len == 0, FALSE);
	g_return_val_if_fail(split != NULL, FALSE);

	vmbc_smaps_split_clear(split);
	if (!parse_text(text, len, &ctx, split, error)) {
		vmbc_smaps_split_clear(split);
		return FALSE;
	}
	return TRUE;
}

gboolean
vmbc_smaps_parse_ranges(const gchar *text, gsize len, const VmbcRamRange *ranges, guint n_ranges,
			gsize base_page_size, VmbcSmapsSplit *split, GError **error)
{
	ParseCtx ctx = {.ranges = ranges, .n_ranges = n_ranges, .base_page_size = base_page_size};

	g_return_val_if_fail(text != NULL || len == 0, FALSE);
	g_return_val_if_fail(split != NULL, FALSE);
	g_return_val_if_fail(ranges != NULL && n_ranges > 0, FALSE);

	vmbc_smaps_split_clear(split);
	split->spans = g_array_sized_new(FALSE, TRUE, sizeof(VmbcRamSpan), n_ranges);
	for (guint i = 0; i < n_ranges; i++) {
		VmbcRamSpan span = {.start = ranges[i].start, .size = ranges[i].size};
		g_array_append_val(split->spans, span);
	}
	if (!parse_text(text, len, &ctx, split, error)) {
		vmbc_smaps_split_clear(split);
		return FALSE;
	}
	split->guest_start = ranges[0].start;
	for (guint i = 0; i < n_ranges; i++) {
		const VmbcRamSpan *span = &g_array_index(split->spans, VmbcRamSpan, i);

		split->guest_size += span->size;
		split->guest_rss += span->rss;
		split->guest_pss += span->pss;
		split->guest_hugetlb += span->hugetlb;
		if (span->huge)
			split->guest_hugetlb_size += span->size;
	}
	return TRUE;
}
