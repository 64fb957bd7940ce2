/*
 * vmbc-qmp-ram-reply.c: readers of QEMU's replies about guest RAM (see
 * vmbc-qmp-ram-reply.h).
 */
#include <errno.h>
#include <string.h>

#include "vmbc-qmp-ram-reply.h"
#include "vmbc-qmp-reply.h"

void
vmbc_qmp_memdev_free(VmbcQmpMemdev *m)
{
	if (m == NULL)
		return;
	g_free(m->id);
	g_free(m);
}

GPtrArray *
vmbc_qmp_reply_memdevs(JsonNode *ret)
{
	GPtrArray *out;
	JsonArray *arr;

	if (ret == NULL || !JSON_NODE_HOLDS_ARRAY(ret))
		return NULL;
	arr = json_node_get_array(ret);
	out = g_ptr_array_new_with_free_func((GDestroyNotify)vmbc_qmp_memdev_free);
	for (guint i = 0; i < json_array_get_length(arr); i++) {
		JsonObject *obj = vmbc_qmp_reply_object(json_array_get_element(arr, i));
		const gchar *id = vmbc_qmp_reply_str(obj, "id");
		JsonNode *share = obj != NULL ? json_object_get_member(obj, "share") : NULL;
		gint64 size = -1;
		VmbcQmpMemdev *m;

		if (id == NULL || *id == '\0' || !vmbc_qmp_reply_int(obj, "size", &size) ||
		    size <= 0)
			continue;
		m = g_new0(VmbcQmpMemdev, 1);
		m->id = g_strdup(id);
		m->size = (guint64)size;
		m->share = share != NULL && JSON_NODE_HOLDS_VALUE(share) &&
			   json_node_get_value_type(share) == G_TYPE_BOOLEAN &&
			   json_node_get_boolean(share);
		g_ptr_array_add(out, m);
	}
	return out;
}

static gboolean
parse_hex(const gchar *s, const gchar **end, guint64 *out)
{
	gchar *e = NULL;
	guint64 v;

	if (!g_ascii_isxdigit(*s))
		return FALSE;
	errno = 0;
	v = g_ascii_strtoull(s, &e, 16);
	if (errno != 0 || e == s)
		return FALSE;
	*out = v;
	*end = e;
	return TRUE;
}

/* One line "  START-END (prio N, ram): NAME[ @OFFSET]": its start, name and offset. */
static gboolean
parse_mtree_line(const gchar *line, guint64 *start, const gchar **name, gsize *name_len,
		 guint64 *offset)
{
	const gchar *p = line;
	const gchar *tag;
	const gchar *at;
	guint64 end = 0;

	while (*p == ' ')
		p++;
	if (!parse_hex(p, &p, start) || *p != '-' || !parse_hex(p + 1, &p, &end) || end < *start)
		return FALSE;
	tag = strstr(p, ", ram): ");
	if (tag == NULL || strncmp(p, " (prio ", 7) != 0)
		return FALSE;
	*name = tag + strlen(", ram): ");
	at = strstr(*name, " @");
	*offset = 0;
	if (at != NULL) {
		const gchar *e;
		if (!parse_hex(at + 2, &e, offset))
			return FALSE;
		*name_len = (gsize)(at - *name);
	} else {
		*name_len = strlen(*name);
	}
	return TRUE;
}

gboolean
vmbc_qmp_reply_mtree_ram(const gchar *text, const gchar *id, guint64 *gpa, guint64 *offset)
{
	g_auto(GStrv) lines = NULL;
	g_autofree gchar *canonical = NULL;

	g_return_val_if_fail(id != NULL && gpa != NULL && offset != NULL, FALSE);
	if (text == NULL)
		return FALSE;
	canonical = g_strconcat("/objects/", id, NULL);
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		const gchar *name = NULL;
		gsize name_len = 0;
		guint64 start = 0;
		guint64 off = 0;

		g_strchomp(lines[i]);
		if (!parse_mtree_line(lines[i], &start, &name, &name_len, &off))
			continue;
		if ((name_len == strlen(id) && strncmp(name, id, name_len) == 0) ||
		    (name_len == strlen(canonical) && strncmp(name, canonical, name_len) == 0)) {
			*gpa = start;
			*offset = off;
			return TRUE;
		}
	}
	return FALSE;
}

gboolean
vmbc_qmp_reply_gpa2hva(const gchar *text, guint64 gpa, guint64 *hva, gchar **region)
{
	static const gchar prefix[] = "Host virtual address for ";
	const gchar *p;
	const gchar *open;
	const gchar *close;
	guint64 got = 0;

	g_return_val_if_fail(hva != NULL, FALSE);
	if (text == NULL || (p = strstr(text, prefix)) == NULL)
		return FALSE;
	p += strlen(prefix);
	if (strncmp(p, "0x", 2) != 0 || !parse_hex(p + 2, &p, &got) || got != gpa)
		return FALSE;
	if (strncmp(p, " (", 2) != 0)
		return FALSE;
	open = p + 2;
	close = strstr(open, ") is 0x");
	if (close == NULL || !parse_hex(close + strlen(") is 0x"), &p, hva))
		return FALSE;
	if (region != NULL)
		*region = g_strndup(open, (gsize)(close - open));
	return TRUE;
}

void
vmbc_qmp_virtio_mem_free(VmbcQmpVirtioMem *d)
{
	if (d == NULL)
		return;
	g_free(d->id);
	g_free(d->memdev);
	g_free(d);
}

static gboolean
read_size(JsonObject *obj, const gchar *name, guint64 *out)
{
	gint64 v = -1;

	if (!vmbc_qmp_reply_int(obj, name, &v) || v < 0)
		return FALSE;
	*out = (guint64)v;
	return TRUE;
}

GPtrArray *
vmbc_qmp_reply_virtio_mem(JsonNode *ret)
{
	GPtrArray *out;
	JsonArray *arr;

	if (ret == NULL || !JSON_NODE_HOLDS_ARRAY(ret))
		return NULL;
	arr = json_node_get_array(ret);
	out = g_ptr_array_new_with_free_func((GDestroyNotify)vmbc_qmp_virtio_mem_free);
	for (guint i = 0; i < json_array_get_length(arr); i++) {
		JsonObject *dev = vmbc_qmp_reply_object(json_array_get_element(arr, i));
		JsonObject *data = vmbc_qmp_reply_object(
			dev != NULL ? json_object_get_member(dev, "data") : NULL);
		const gchar *type = vmbc_qmp_reply_str(dev, "type");
		const gchar *id = vmbc_qmp_reply_str(data, "id");
		g_autoptr(VmbcQmpVirtioMem) d = g_new0(VmbcQmpVirtioMem, 1);

		if (g_strcmp0(type, "virtio-mem") != 0 || id == NULL || *id == '\0')
			continue;
		if (!read_size(data, "memaddr", &d->memaddr) ||
		    !read_size(data, "block-size", &d->block_size) ||
		    !read_size(data, "size", &d->size) ||
		    !read_size(data, "max-size", &d->max_size) ||
		    !read_size(data, "requested-size", &d->requested_size))
			continue;
		if (d->block_size == 0 || (d->block_size & (d->block_size - 1)) != 0)
			continue;
		d->id = g_strdup(id);
		d->memdev = g_strdup(vmbc_qmp_reply_str(data, "memdev"));
		g_ptr_array_add(out, g_steal_pointer(&d));
	}
	return out;
}
