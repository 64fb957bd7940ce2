/*
 * vmbc-daemon-follow.c: one pass over the VMs the engine follows between
 * ticks (see vmbc-daemon-follow.h).
 */
#include "vmbc-daemon-follow.h"

gboolean
vmbc_daemon_follow(VmbcEngine *engine, GHashTable *owner)
{
	GPtrArray *vms = vmbc_engine_get_vms(engine);
	g_autoptr(GPtrArray) follow =
		g_ptr_array_new_with_free_func((GDestroyNotify)vmbc_beancounter_unref);
	gint64 now = g_get_monotonic_time();

	for (guint i = 0; i < vms->len; i++) {
		VmbcBeancounter *bc = g_ptr_array_index(vms, i);
		if (vmbc_engine_is_following(engine, bc))
			g_ptr_array_add(follow, vmbc_beancounter_ref(bc));
	}
	if (follow->len == 0)
		return FALSE;
	vmbc_engine_set_wall_clock(engine, g_get_real_time());
	for (guint i = 0; i < follow->len; i++) {
		VmbcBeancounter *bc = g_ptr_array_index(follow, i);
		VmbcBackend *backend = g_hash_table_lookup(owner, bc);

		if (backend != NULL)
			vmbc_backend_sample_vm(backend, bc, now);
	}
	vmbc_engine_follow(engine, g_get_monotonic_time());
	return TRUE;
}
