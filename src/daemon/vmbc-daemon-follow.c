/*
 * vmbc-daemon-follow.c: one pass over the VMs the engine follows between
 * ticks (see vmbc-daemon-follow.h).
 */
#include "vmbc-daemon-follow.h"

gboolean
vmbc_daemon_follow(VmbcEngine *engine, GHashTable *owner)
{
	g_autoptr(GPtrArray) follow = vmbc_engine_get_following(engine);
	gint64 now = g_get_monotonic_time();

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
