/*
 * vmbc-plugin-table.h: the compiled-in backends, by name.
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

typedef struct {
	const gchar *name;
	GType (*get_type)(void);
} VmbcPluginEntry;

/* The table, terminated by an entry with a NULL name. */
const VmbcPluginEntry *vmbc_plugin_table(void);

G_END_DECLS
