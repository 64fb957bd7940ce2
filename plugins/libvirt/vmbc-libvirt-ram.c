/*
 * vmbc-libvirt-ram.c: a domain's memory backends and its virtio-mem device
 * from the live domain XML (see vmbc-libvirt-ram.h). libvirt 9.0 gives QEMU
 * one backend per NUMA cell ("ram-nodeN") or one for main RAM ("pc.ram"),
 * and one per memory device ("mem" + the device's alias); their kind follows
 * <memoryBacking>: hugepages are a memory-backend-file in hugetlbfs (a memfd
 * with hugetlb when the source is memfd), <source type='memfd'|'file'/> the
 * backend of that name, anonymous memory otherwise.
 */
#include <string.h>

#include "vmbc-error.h"
#include "vmbc-libvirt-units.h"
#include "vmbc-libvirt-ram.h"

#define REQUESTED_MARK "@REQUESTED@"

typedef struct {
	gchar *alias;
	gchar *model;
	gint64 size_kib;
	gboolean hugepages; /* <source><pagesize> */
} MemDev;

typedef struct {
	VmbcLibvirtRam *ram;
	GPtrArray *path; /* element names from <domain> down */
	GString *text;	 /* text of the current element */
	gchar *unit;	 /* unit= of the current element */
	gint64 memory_kib;
	gchar *source_type; /* <memoryBacking><source type> */
	GArray *cells;	    /* gint64 KiB, one per <cell>, in order */
	GArray *cell_ids;   /* guint, the cells' ids */
	MemDev dev;	    /* the <memory> device being read */
	gboolean in_dev;
	GString *dev_xml; /* the virtio-mem device being read, as text */
	GPtrArray *devs;  /* of MemDev* */
} ParseState;

static void
mem_dev_free(gpointer data)
{
	MemDev *d = data;

	g_free(d->alias);
	g_free(d->model);
	g_free(d);
}

void
vmbc_libvirt_ram_clear(VmbcLibvirtRam *ram)
{
	g_clear_pointer(&ram->backends, g_array_unref);
	g_clear_pointer(&ram->vmem.alias, g_free);
	g_clear_pointer(&ram->vmem.xml_template, g_free);
	ram->hugepages = FALSE;
	ram->n_vmem = 0;
	ram->vmem.size_kib = ram->vmem.block_kib = ram->vmem.requested_kib = 0;
	ram->vmem.current_kib = -1;
}

/* Whether the element path is exactly @want ("domain/devices/memory"...). */
static gboolean
at(ParseState *st, const gchar *want)
{
	g_auto(GStrv) parts = g_strsplit(want, "/", -1);
	guint n = g_strv_length(parts);

	if (n != st->path->len)
		return FALSE;
	for (guint i = 0; i < n; i++) {
		if (g_strcmp0(parts[i], g_ptr_array_index(st->path, i)) != 0)
			return FALSE;
	}
	return TRUE;
}

static void
on_start(GMarkupParseContext *context, const gchar *element, const gchar **names,
	 const gchar **values, gpointer user_data, GError **error)
{
	ParseState *st = user_data;

	g_ptr_array_add(st->path, g_strdup(element));
	g_string_truncate(st->text, 0);
	g_free(st->unit);
	st->unit = g_strdup(vmbc_libvirt_xml_attr(names, values, "unit"));

	if (at(st, "domain/memoryBacking/hugepages")) {
		st->ram->hugepages = TRUE;
	} else if (at(st, "domain/memoryBacking/source")) {
		g_free(st->source_type);
		st->source_type = g_strdup(vmbc_libvirt_xml_attr(names, values, "type"));
	} else if (at(st, "domain/cpu/numa/cell")) {
		const gchar *mem = vmbc_libvirt_xml_attr(names, values, "memory");
		const gchar *id = vmbc_libvirt_xml_attr(names, values, "id");
		gint64 kib = 0;
		guint64 idv = st->cells->len;

		if (mem == NULL || !vmbc_libvirt_size_to_kib(mem, st->unit, &kib, error)) {
			if (error != NULL && *error == NULL)
				g_set_error_literal(error, VMBC_ERROR, VMBC_ERROR_INVALID,
						    "<cell> without memory");
			g_prefix_error(error, "<numa><cell>: ");
			return;
		}
		if (id != NULL)
			(void)g_ascii_string_to_unsigned(id, 10, 0, G_MAXUINT, &idv, NULL);
		g_array_append_val(st->cells, kib);
		{
			guint u = (guint)idv;
			g_array_append_val(st->cell_ids, u);
		}
	} else if (at(st, "domain/devices/memory")) {
		memset(&st->dev, 0, sizeof(st->dev));
		st->dev.model = g_strdup(vmbc_libvirt_xml_attr(names, values, "model"));
		st->in_dev = TRUE;
		g_string_truncate(st->dev_xml, 0);
	} else if (st->in_dev && at(st, "domain/devices/memory/alias")) {
		g_free(st->dev.alias);
		st->dev.alias = g_strdup(vmbc_libvirt_xml_attr(names, values, "name"));
	} else if (st->in_dev && at(st, "domain/devices/memory/source/pagesize")) {
		st->dev.hugepages = TRUE;
	}
	if (st->in_dev && at(st, "domain/devices/memory/target/requested")) {
		g_string_append(st->dev_xml, "<requested unit='KiB'>");
	} else if (st->in_dev && !at(st, "domain/devices/memory/target/current")) {
		g_string_append_printf(st->dev_xml, "<%s", element);
		for (guint i = 0; names[i] != NULL; i++) {
			g_autofree gchar *v = g_markup_escape_text(values[i], -1);
			g_string_append_printf(st->dev_xml, " %s='%s'", names[i], v);
		}
		g_string_append_c(st->dev_xml, '>');
	}
}

static gboolean
read_size(ParseState *st, const gchar *what, gint64 *out, GError **error)
{
	if (!vmbc_libvirt_size_to_kib(st->text->str, st->unit, out, error)) {
		g_prefix_error(error, "%s: ", what);
		return FALSE;
	}
	return TRUE;
}

static void
dev_done(ParseState *st, GError **error)
{
	VmbcLibvirtVmemDev *v = &st->ram->vmem;

	st->in_dev = FALSE;
	if (g_strcmp0(st->dev.model, "virtio-mem") == 0) {
		st->ram->n_vmem++;
		if (v->alias == NULL && st->dev.alias != NULL) {
			v->alias = g_strdup(st->dev.alias);
			v->size_kib = st->dev.size_kib;
			g_free(v->xml_template);
			v->xml_template = g_strdup(st->dev_xml->str);
		}
	}
	if (g_strcmp0(st->dev.model, "dimm") == 0 || g_strcmp0(st->dev.model, "virtio-mem") == 0) {
		if (st->dev.size_kib <= 0) {
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "<memory model='%s'> without a <target><size>", st->dev.model);
			g_free(st->dev.alias);
			g_free(st->dev.model);
			memset(&st->dev, 0, sizeof(st->dev));
			return;
		}
		g_ptr_array_add(st->devs, g_memdup2(&st->dev, sizeof(st->dev)));
	} else {
		g_free(st->dev.alias);
		g_free(st->dev.model);
	}
	memset(&st->dev, 0, sizeof(st->dev));
}

static void
on_end(GMarkupParseContext *context, const gchar *element, gpointer user_data, GError **error)
{
	ParseState *st = user_data;
	gboolean vmem = st->in_dev && g_strcmp0(st->dev.model, "virtio-mem") == 0 &&
			st->ram->vmem.alias == NULL;
	VmbcLibvirtVmemDev *v = &st->ram->vmem;

	if (at(st, "domain/memory")) {
		(void)read_size(st, "<memory>", &st->memory_kib, error);
	} else if (st->in_dev && at(st, "domain/devices/memory/target/size")) {
		(void)read_size(st, "<memory><target><size>", &st->dev.size_kib, error);
	} else if (vmem && at(st, "domain/devices/memory/target/block")) {
		(void)read_size(st, "<memory><target><block>", &v->block_kib, error);
	} else if (vmem && at(st, "domain/devices/memory/target/requested")) {
		(void)read_size(st, "<memory><target><requested>", &v->requested_kib, error);
	} else if (vmem && at(st, "domain/devices/memory/target/current")) {
		(void)read_size(st, "<memory><target><current>", &v->current_kib, error);
	}
	if (st->in_dev && !at(st, "domain/devices/memory/target/current")) {
		if (at(st, "domain/devices/memory/target/requested"))
			g_string_append(st->dev_xml, REQUESTED_MARK);
		else if (st->text->len > 0 && g_strstrip(st->text->str)[0] != '\0') {
			g_autofree gchar *t = g_markup_escape_text(st->text->str, -1);
			g_string_append(st->dev_xml, t);
		}
		g_string_append_printf(st->dev_xml, "</%s>", element);
	}
	if (st->in_dev && at(st, "domain/devices/memory"))
		dev_done(st, error);
	g_string_truncate(st->text, 0);
	g_ptr_array_remove_index(st->path, st->path->len - 1);
}

static void
on_text(GMarkupParseContext *context, const gchar *text, gsize len, gpointer user_data,
	GError **error)
{
	ParseState *st = user_data;

	g_string_append_len(st->text, text, (gssize)len);
}

/* The kind of a backend in a domain whose <memoryBacking> source is @source. */
static VmbcRamKind
backend_kind(const gchar *source, gboolean hugepages)
{
	if (g_strcmp0(source, "memfd") == 0)
		return VMBC_RAM_MEMFD;
	if (hugepages || g_strcmp0(source, "file") == 0)
		return VMBC_RAM_FILE;
	return VMBC_RAM_ANON;
}

static void
add_backend(VmbcLibvirtRam *ram, gchar *id, gint64 kib, VmbcRamKind kind)
{
	VmbcRamBackend b = {.id = id, .size = (guint64)kib * 1024, .kind = kind};

	g_array_append_val(ram->backends, b);
}

gboolean
vmbc_libvirt_ram_parse(const gchar *xml, VmbcLibvirtRam *ram, GError **error)
{
	static const GMarkupParser parser = {on_start, on_end, on_text, NULL, NULL};
	g_autoptr(GMarkupParseContext) ctx = NULL;
	g_autoptr(GPtrArray) path = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GString) text = g_string_new(NULL);
	g_autoptr(GString) dev_xml = g_string_new(NULL);
	g_autoptr(GArray) cells = g_array_new(FALSE, FALSE, sizeof(gint64));
	g_autoptr(GArray) cell_ids = g_array_new(FALSE, FALSE, sizeof(guint));
	g_autoptr(GPtrArray) devs = g_ptr_array_new_with_free_func(mem_dev_free);
	g_autofree gchar *source_type = NULL;
	ParseState st = {0};
	gboolean ok;
	gint64 devs_kib = 0;

	g_return_val_if_fail(xml != NULL, FALSE);
	g_return_val_if_fail(ram != NULL, FALSE);

	vmbc_libvirt_ram_clear(ram);
	st.ram = ram;
	st.path = path;
	st.text = text;
	st.dev_xml = dev_xml;
	st.cells = cells;
	st.cell_ids = cell_ids;
	st.devs = devs;
	st.memory_kib = -1;
	ctx = g_markup_parse_context_new(&parser, 0, &st, NULL);
	ok = g_markup_parse_context_parse(ctx, xml, -1, error) &&
	     g_markup_parse_context_end_parse(ctx, error);
	g_free(st.unit);
	source_type = st.source_type;
	if (st.in_dev) {
		g_free(st.dev.alias);
		g_free(st.dev.model);
	}
	if (!ok) {
		if (error != NULL && *error != NULL && (*error)->domain != VMBC_ERROR) {
			g_autofree gchar *msg = g_strdup((*error)->message);
			g_clear_error(error);
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "domain XML does not parse: %s", msg);
		}
		return FALSE;
	}

	ram->backends = g_array_new(FALSE, TRUE, sizeof(VmbcRamBackend));
	g_array_set_clear_func(ram->backends, vmbc_ram_backend_clear);
	for (guint i = 0; i < devs->len; i++)
		devs_kib += ((MemDev *)g_ptr_array_index(devs, i))->size_kib;
	if (cells->len > 0) {
		for (guint i = 0; i < cells->len; i++)
			add_backend(
				ram,
				g_strdup_printf("ram-node%u", g_array_index(cell_ids, guint, i)),
				g_array_index(cells, gint64, i),
				backend_kind(source_type, ram->hugepages));
	} else {
		if (st.memory_kib - devs_kib <= 0) {
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "<memory> of %" G_GINT64_FORMAT
				    " KiB leaves no main RAM beside %" G_GINT64_FORMAT
				    " KiB of memory devices",
				    st.memory_kib, devs_kib);
			return FALSE;
		}
		add_backend(ram, g_strdup("pc.ram"), st.memory_kib - devs_kib,
			    backend_kind(source_type, ram->hugepages));
	}
	for (guint i = 0; i < devs->len; i++) {
		MemDev *d = g_ptr_array_index(devs, i);

		add_backend(ram, d->alias != NULL ? g_strdup_printf("mem%s", d->alias) : NULL,
			    d->size_kib, backend_kind(source_type, d->hugepages || ram->hugepages));
	}
	return TRUE;
}

gchar *
vmbc_libvirt_ram_vmem_xml(const VmbcLibvirtRam *ram, gint64 requested_kib)
{
	g_autofree gchar *value = NULL;
	g_auto(GStrv) parts = NULL;

	g_return_val_if_fail(ram != NULL, NULL);

	if (ram->vmem.xml_template == NULL)
		return NULL;
	value = g_strdup_printf("%" G_GINT64_FORMAT, requested_kib);
	parts = g_strsplit(ram->vmem.xml_template, REQUESTED_MARK, -1);
	return g_strjoinv(value, parts);
}
