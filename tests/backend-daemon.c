/*
 * backend-daemon.c: the daemon stand-in of backend unit tests (see backend-daemon.h).
 */
#include <string.h>

#include "backend-daemon.h"

VmbcEngine *
vmbc_daemon_get_engine(VmbcDaemon *daemon)
{
	return daemon->engine;
}

const VmbcConfig *
vmbc_daemon_get_config(VmbcDaemon *daemon)
{
	return &daemon->config;
}

gint64
vmbc_daemon_now(VmbcDaemon *daemon)
{
	return g_get_monotonic_time();
}

VmbcBeancounter *
vmbc_daemon_add_vm(VmbcDaemon *daemon, VmbcBackend *backend, const gchar *name, gint64 max_pages,
		   gpointer backend_data, GDestroyNotify free_func, GError **error)
{
	VmbcBeancounter *bc = vmbc_engine_add(daemon->engine, name, max_pages, error);

	if (bc == NULL) {
		if (free_func != NULL && backend_data != NULL)
			free_func(backend_data);
		return NULL;
	}
	bc->backend_data = backend_data;
	bc->backend_data_free = free_func;
	daemon->added++;
	return bc;
}

void
vmbc_daemon_remove_vm(VmbcDaemon *daemon, VmbcBeancounter *bc)
{
	daemon->removed++;
	vmbc_engine_remove(daemon->engine, bc);
}

static gboolean
actuator_set_balloon(VmbcEngine *engine, VmbcBeancounter *bc, gint64 target, gpointer user_data,
		     GError **error)
{
	VmbcDaemon *daemon = user_data;

	daemon->actuator_calls++;
	return vmbc_backend_set_balloon(daemon->backend, bc, target, error);
}

static gboolean
actuator_escalate(VmbcEngine *engine, VmbcBeancounter *bc, VmbcEscalation how, gpointer user_data,
		  GError **error)
{
	VmbcDaemon *daemon = user_data;

	daemon->actuator_calls++;
	return vmbc_backend_escalate(daemon->backend, bc, how, error);
}

void
backend_daemon_init(VmbcDaemon *daemon, const VmbcEngineConfig *engine_config)
{
	static const VmbcActuator actuator = {actuator_set_balloon, actuator_escalate};

	memset(daemon, 0, sizeof(*daemon));
	daemon->engine = vmbc_engine_new(engine_config);
	vmbc_engine_set_actuator(daemon->engine, &actuator, daemon);
}

void
backend_daemon_clear(VmbcDaemon *daemon)
{
	g_clear_pointer(&daemon->engine, vmbc_engine_free);
}
