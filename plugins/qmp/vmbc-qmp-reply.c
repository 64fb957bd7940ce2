/*
 * vmbc-qmp-reply.c: the qmp backend's readers of QEMU's replies (see
 * vmbc-qmp-reply.h). No I/O: recorded replies test them directly.
 */
#include "vmbc-qmp-reply.h"
#include "vmbc-size.h"

gint64
vmbc_qmp_bytes_to_pages(gint64 bytes)
{
	return bytes / (gint64)vmbc_page_size();
}

/*
 * An integer member. json-glib reads QEMU's 18446744073709551615 ("not
 * reported") as a negative int64 or as a double; both come back as -1 here.
 */
gboolean
vmbc_qmp_reply_int(JsonObject *obj, const gchar *name, gint64 *out)
{
	JsonNode *node = obj != NULL ? json_object_get_member(obj, name) : NULL;

	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node))
		return FALSE;
	switch (json_node_get_value_type(node)) {
	case G_TYPE_INT64:
		*out = json_node_get_int(node);
		if (*out < 0)
			*out = -1;
		return TRUE;
	case G_TYPE_DOUBLE:
		*out = -1;
		return TRUE;
	default:
		return FALSE;
	}
}

/* A string member, or NULL if missing or of another type. */
const gchar *
vmbc_qmp_reply_str(JsonObject *obj, const gchar *name)
{
	JsonNode *node = obj != NULL ? json_object_get_member(obj, name) : NULL;

	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) ||
	    json_node_get_value_type(node) != G_TYPE_STRING)
		return NULL;
	return json_node_get_string(node);
}

JsonObject *
vmbc_qmp_reply_object(JsonNode *node)
{
	return node != NULL && JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : NULL;
}

/* The first child<virtio-balloon-*> of a qom-list answer, or NULL. */
gchar *
vmbc_qmp_reply_balloon_child(JsonNode *ret, const gchar *base)
{
	JsonArray *arr =
		ret != NULL && JSON_NODE_HOLDS_ARRAY(ret) ? json_node_get_array(ret) : NULL;

	for (guint i = 0; arr != NULL && i < json_array_get_length(arr); i++) {
		JsonObject *obj = vmbc_qmp_reply_object(json_array_get_element(arr, i));
		const gchar *name;
		const gchar *type;

		if (obj == NULL)
			continue;
		name = vmbc_qmp_reply_str(obj, "name");
		type = vmbc_qmp_reply_str(obj, "type");
		if (name != NULL && type != NULL && g_str_has_prefix(type, "child<virtio-balloon-"))
			return g_strdup_printf("%s/%s", base, name);
	}
	return NULL;
}

gint64
vmbc_qmp_reply_balloon_actual(JsonObject *obj)
{
	gint64 actual = -1;

	if (!vmbc_qmp_reply_int(obj, "actual", &actual) || actual < 0)
		return -1;
	return vmbc_qmp_bytes_to_pages(actual);
}

gboolean
vmbc_qmp_reply_guest_stats(JsonNode *ret, VmbcGuestStats *gs)
{
	JsonObject *obj = vmbc_qmp_reply_object(ret);
	JsonObject *stats = NULL;
	VmbcGuestStats out = {-1, -1, -1, -1, -1, -1, 0};
	gint64 v;

	if (obj != NULL && json_object_has_member(obj, "stats") &&
	    JSON_NODE_HOLDS_OBJECT(json_object_get_member(obj, "stats")))
		stats = json_object_get_object_member(obj, "stats");
	if (stats == NULL || !vmbc_qmp_reply_int(obj, "last-update", &v) || v <= 0)
		return FALSE;
	out.last_update = v;
	if (vmbc_qmp_reply_int(stats, "stat-available-memory", &v) && v >= 0)
		out.available = vmbc_qmp_bytes_to_pages(v);
	if (vmbc_qmp_reply_int(stats, "stat-free-memory", &v) && v >= 0)
		out.free = vmbc_qmp_bytes_to_pages(v);
	if (vmbc_qmp_reply_int(stats, "stat-disk-caches", &v) && v >= 0)
		out.caches = vmbc_qmp_bytes_to_pages(v);
	if (vmbc_qmp_reply_int(stats, "stat-total-memory", &v) && v >= 0)
		out.total = vmbc_qmp_bytes_to_pages(v);
	if (vmbc_qmp_reply_int(stats, "stat-swap-in", &v) && v >= 0)
		out.swap_in = vmbc_qmp_bytes_to_pages(v);
	if (vmbc_qmp_reply_int(stats, "stat-major-faults", &v) && v >= 0)
		out.major_faults = v;
	*gs = out;
	return TRUE;
}

gint64
vmbc_qmp_reply_dirty_rate(JsonNode *ret, gboolean *measuring)
{
	JsonObject *obj = vmbc_qmp_reply_object(ret);
	const gchar *status;
	gint64 rate;

	*measuring = FALSE;
	if (obj == NULL)
		return -1;
	status = vmbc_qmp_reply_str(obj, "status");
	if (g_strcmp0(status, "measuring") == 0) {
		*measuring = TRUE;
		return -1;
	}
	if (g_strcmp0(status, "measured") != 0 || !vmbc_qmp_reply_int(obj, "dirty-rate", &rate) ||
	    rate < 0 || rate > G_MAXINT64 / (1 << 20))
		return -1;
	return rate << 20;
}
