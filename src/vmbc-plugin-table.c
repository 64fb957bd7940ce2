/*
 * vmbc-plugin-table.c: the one table that registers the compiled-in backends.
 * Each plugin's meson.build adds -DVMBC_HAVE_PLUGIN_<NAME> when it is built.
 */
#include "vmbc-plugin-table.h"

#ifdef VMBC_HAVE_PLUGIN_QMP
#include "vmbc-qmp-backend.h"
#endif
#ifdef VMBC_HAVE_PLUGIN_LIBVIRT
#include "vmbc-libvirt-backend.h"
#endif

static const VmbcPluginEntry table[] = {
#ifdef VMBC_HAVE_PLUGIN_QMP
	{"qmp", vmbc_qmp_backend_get_type},
#endif
#ifdef VMBC_HAVE_PLUGIN_LIBVIRT
	{"libvirt", vmbc_libvirt_backend_get_type},
#endif
	{NULL, NULL},
};

const VmbcPluginEntry *
vmbc_plugin_table(void)
{
	return table;
}
