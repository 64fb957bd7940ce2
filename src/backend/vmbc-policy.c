/*
 * vmbc-policy.c: a VM's policy in its own metadata (see vmbc-policy.h).
 *
 * The element is read with GMarkup, prefixes ignored: libvirt hands back the
 * element with the prefix it was stored under, and a policy written by hand
 * (virsh metadata --key vmbc --set ...) may put its children in the
 * namespace or not. Everything from outside is checked here, so the daemon
 * only resolves sizes against the VM's maximum.
 */
#include <string.h>

#include "vmbc-error.h"
#include "vmbc-policy.h"
#include "vmbc-size.h"

VmbcPolicy *
vmbc_policy_new(void)
{
	return g_new0(VmbcPolicy, 1);
}

void
vmbc_policy_free(VmbcPolicy *policy)
{
	if (policy == NULL)
		return;
	for (guint r = 0; r < VMBC_RES_COUNT; r++) {
		g_free(policy->barrier[r]);
		g_free(policy->limit[r]);
	}
	g_free(policy);
}

void
vmbc_policy_set(VmbcPolicy *policy, VmbcResourceId res, const gchar *barrier, const gchar *limit)
{
	g_return_if_fail(res < VMBC_RES_COUNT);
	g_free(policy->barrier[res]);
	g_free(policy->limit[res]);
	policy->barrier[res] = g_strdup(barrier);
	policy->limit[res] = g_strdup(limit);
	policy->set[res] = TRUE;
}

typedef struct {
	VmbcPolicy *policy;
	guint depth;
	gboolean root_seen;
} ParseState;

static const gchar *
local_name(const gchar *element)
{
	const gchar *colon = strrchr(element, ':');
	return colon != NULL ? colon + 1 : element;
}

/* Checks the form of a size (a percentage is resolved where the policy is applied). */
static gboolean
check_size(const gchar *text, const gchar *what, GError **error)
{
	g_autoptr(GError) local = NULL;
	gint64 pages = 0;

	if (vmbc_size_parse(text, vmbc_page_size(), G_MAXINT32, &pages, &local))
		return TRUE;
	g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID, "%s: %s", what, local->message);
	return FALSE;
}

static gboolean
attr_name_ok(const gchar *name, const gchar *const *allowed, const gchar *element, GError **error)
{
	const gchar *bare = local_name(name);

	/* namespace declarations are the document's, not the policy's */
	if (g_str_has_prefix(name, "xmlns"))
		return TRUE;
	if (g_strv_contains(allowed, bare))
		return TRUE;
	g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
		    "unknown attribute '%s' of <%s> in the vmbc policy", name, element);
	return FALSE;
}

static void
on_start(GMarkupParseContext *context, const gchar *element, const gchar **names,
	 const gchar **values, gpointer user_data, GError **error)
{
	ParseState *st = user_data;
	const gchar *name = local_name(element);
	VmbcResourceId res;

	st->depth++;
	if (st->depth == 1) {
		if (g_strcmp0(name, "policy") != 0) {
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "the vmbc metadata is <%s>, expected <policy>", element);
			return;
		}
		st->root_seen = TRUE;
		for (guint i = 0; names[i] != NULL; i++) {
			if (!attr_name_ok(names[i], (const gchar *const[]){NULL}, element, error))
				return;
		}
		return;
	}
	if (st->depth > 2) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "unexpected <%s> inside another element of the vmbc policy", element);
		return;
	}
	if (g_strcmp0(name, "guarantee") == 0) {
		const gchar *size = NULL;
		for (guint i = 0; names[i] != NULL; i++) {
			if (!attr_name_ok(names[i], (const gchar *const[]){"size", NULL}, element,
					  error))
				return;
			if (g_strcmp0(local_name(names[i]), "size") == 0)
				size = values[i];
		}
		if (size == NULL) {
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "<%s> in the vmbc policy needs a size attribute", element);
			return;
		}
		if (g_ascii_strcasecmp(size, "unlimited") == 0) {
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "guarantee: a guarantee must be a size, not unlimited");
			return;
		}
		if (!check_size(size, "guarantee", error))
			return;
		vmbc_policy_set(st->policy, VMBC_RES_VMGUARPAGES, size, "unlimited");
		return;
	}
	if (g_strcmp0(name, "shares") == 0) {
		const gchar *value = NULL;
		gchar *end = NULL;
		gint64 v;
		for (guint i = 0; names[i] != NULL; i++) {
			if (!attr_name_ok(names[i], (const gchar *const[]){"value", NULL}, element,
					  error))
				return;
			if (g_strcmp0(local_name(names[i]), "value") == 0)
				value = values[i];
		}
		v = value != NULL ? g_ascii_strtoll(value, &end, 10) : 0;
		if (value == NULL || *value == '\0' || *end != '\0' || v < 1 || v > 1000000) {
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "invalid shares '%s' in the vmbc policy: expected a whole "
				    "number from 1 to 1000000",
				    value != NULL ? value : "");
			return;
		}
		st->policy->shares = v;
		return;
	}
	if (vmbc_resource_from_name(name, &res, NULL)) {
		const gchar *barrier = NULL;
		const gchar *limit = NULL;
		g_autofree gchar *bwhat = g_strdup_printf("%s barrier", name);
		g_autofree gchar *lwhat = g_strdup_printf("%s limit", name);
		for (guint i = 0; names[i] != NULL; i++) {
			const gchar *bare = local_name(names[i]);
			if (!attr_name_ok(names[i],
					  (const gchar *const[]){"barrier", "limit", NULL}, element,
					  error))
				return;
			if (g_strcmp0(bare, "barrier") == 0)
				barrier = values[i];
			else if (g_strcmp0(bare, "limit") == 0)
				limit = values[i];
		}
		if (barrier == NULL && limit == NULL) {
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "<%s> in the vmbc policy needs a barrier or a limit", element);
			return;
		}
		if ((barrier != NULL && !check_size(barrier, bwhat, error)) ||
		    (limit != NULL && !check_size(limit, lwhat, error)))
			return;
		/* one value sets both, as in UBC */
		if (barrier == NULL)
			barrier = limit;
		if (limit == NULL)
			limit = barrier;
		if (strchr(barrier, '%') == NULL && strchr(limit, '%') == NULL) {
			gint64 b = 0, l = 0;
			vmbc_size_parse(barrier, vmbc_page_size(), G_MAXINT32, &b, NULL);
			vmbc_size_parse(limit, vmbc_page_size(), G_MAXINT32, &l, NULL);
			if (b > l) {
				g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
					    "%s: barrier %s is above limit %s", name, barrier,
					    limit);
				return;
			}
		}
		vmbc_policy_set(st->policy, res, barrier, limit);
		return;
	}
	g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
		    "unknown element <%s> in the vmbc policy (expected physpages, vmguarpages, "
		    "vmmpages, guarantee or shares)",
		    element);
}

static void
on_end(GMarkupParseContext *context, const gchar *element, gpointer user_data, GError **error)
{
	ParseState *st = user_data;
	st->depth--;
}

static void
on_text(GMarkupParseContext *context, const gchar *text, gsize len, gpointer user_data,
	GError **error)
{
	for (gsize i = 0; i < len; i++) {
		if (!g_ascii_isspace(text[i])) {
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "unexpected text '%.*s' in the vmbc policy (values are "
				    "attributes)",
				    (gint)MIN(len, 40), text);
			return;
		}
	}
}

VmbcPolicy *
vmbc_policy_parse(const gchar *xml, GError **error)
{
	static const GMarkupParser parser = {on_start, on_end, on_text, NULL, NULL};
	g_autoptr(VmbcPolicy) policy = vmbc_policy_new();
	g_autoptr(GMarkupParseContext) ctx = NULL;
	g_autoptr(GError) local = NULL;
	ParseState st = {policy, 0, FALSE};

	if (xml == NULL || *xml == '\0') {
		g_set_error_literal(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "the vmbc metadata is empty");
		return NULL;
	}
	ctx = g_markup_parse_context_new(&parser, G_MARKUP_PREFIX_ERROR_POSITION, &st, NULL);
	if (!g_markup_parse_context_parse(ctx, xml, -1, &local) ||
	    !g_markup_parse_context_end_parse(ctx, &local)) {
		if (local->domain == VMBC_ERROR)
			g_propagate_error(error, g_steal_pointer(&local));
		else
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "the vmbc metadata is not well-formed XML: %s", local->message);
		return NULL;
	}
	if (!st.root_seen) {
		g_set_error_literal(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "the vmbc metadata has no <policy> element");
		return NULL;
	}
	return g_steal_pointer(&policy);
}

gchar *
vmbc_policy_to_xml(const VmbcPolicy *policy)
{
	GString *out = g_string_new("<policy>");

	for (guint r = 0; r < VMBC_RES_COUNT; r++) {
		g_autofree gchar *b = NULL;
		g_autofree gchar *l = NULL;
		if (!policy->set[r])
			continue;
		b = g_markup_escape_text(policy->barrier[r], -1);
		l = g_markup_escape_text(policy->limit[r], -1);
		if (r == VMBC_RES_VMGUARPAGES && g_ascii_strcasecmp(l, "unlimited") == 0)
			g_string_append_printf(out, "<guarantee size=\"%s\"/>", b);
		else
			g_string_append_printf(out,
					       "<%s barrier=\"%s\" "
					       "limit=\"%s\"/>",
					       vmbc_resource_name(r), b, l);
	}
	if (policy->shares > 0)
		g_string_append_printf(out, "<shares value=\"%" G_GINT64_FORMAT "\"/>",
				       policy->shares);
	g_string_append(out, "</policy>");
	return g_string_free(out, FALSE);
}

gchar *
vmbc_policy_describe(const VmbcPolicy *policy)
{
	GString *out = g_string_new(NULL);

	for (guint r = 0; r < VMBC_RES_COUNT; r++) {
		if (!policy->set[r])
			continue;
		if (out->len > 0)
			g_string_append(out, ", ");
		if (r == VMBC_RES_VMGUARPAGES &&
		    g_ascii_strcasecmp(policy->limit[r], "unlimited") == 0)
			g_string_append_printf(out, "guarantee %s", policy->barrier[r]);
		else
			g_string_append_printf(out, "%s %s:%s", vmbc_resource_name(r),
					       policy->barrier[r], policy->limit[r]);
	}
	if (policy->shares > 0)
		g_string_append_printf(out, "%sshares %" G_GINT64_FORMAT, out->len > 0 ? ", " : "",
				       policy->shares);
	if (out->len == 0)
		g_string_append(out, "nothing");
	return g_string_free(out, FALSE);
}

gchar *
vmbc_policy_format_size(gint64 pages, gsize page_size)
{
	g_autofree gchar *human = NULL;
	gint64 back = -1;

	if (pages == VMBC_UNLIMITED)
		return g_strdup("unlimited");
	human = vmbc_size_format_human(pages, page_size);
	if (vmbc_size_parse(human, page_size, 0, &back, NULL) && back == pages)
		return g_steal_pointer(&human);
	return g_strdup_printf("%" G_GINT64_FORMAT "p", pages);
}
