/*
 * backend-host.c: the VmbcBackendHost of backend unit tests (see backend-host.h).
 */
#include <string.h>

#include "backend-host.h"

static VmbcEngine *
host_get_engine(VmbcBackendHost *host)
{
	return ((BackendHost *)host)->engine;
}

static gint64
host_now(VmbcBackendHost *host)
{
	return g_get_monotonic_time();
}

static VmbcBeancounter *
host_add_vm(VmbcBackendHost *host, VmbcBackend *backend, const gchar *name, gint64 max_pages,
	    gpointer backend_data, GDestroyNotify free_func, GError **error)
{
	BackendHost *self = (BackendHost *)host;
	VmbcBeancounter *bc = vmbc_engine_add(self->engine, name, max_pages, error);

	if (bc == NULL) {
		if (free_func != NULL && backend_data != NULL)
			free_func(backend_data);
		return NULL;
	}
	bc->backend_data = backend_data;
	bc->backend_data_free = free_func;
	self->added++;
	return bc;
}

static void
host_remove_vm(VmbcBackendHost *host, VmbcBeancounter *bc)
{
	BackendHost *self = (BackendHost *)host;

	self->removed++;
	vmbc_engine_remove(self->engine, bc);
}

static const VmbcBackendHostInterface iface = {
	.get_engine = host_get_engine,
	.now = host_now,
	.add_vm = host_add_vm,
	.remove_vm = host_remove_vm,
};

static gboolean
actuator_set_balloon(VmbcEngine *engine, VmbcBeancounter *bc, gint64 target, gpointer user_data,
		     GError **error)
{
	BackendHost *self = user_data;

	self->actuator_calls++;
	return vmbc_backend_set_balloon(self->backend, bc, target, error);
}

static gboolean
actuator_escalate(VmbcEngine *engine, VmbcBeancounter *bc, VmbcEscalation how, gpointer user_data,
		  GError **error)
{
	BackendHost *self = user_data;

	self->actuator_calls++;
	return vmbc_backend_escalate(self->backend, bc, how, error);
}

void
backend_host_init(BackendHost *host, VmbcBackend *backend, const gchar *name,
		  const VmbcEngineConfig *engine_config)
{
	static const VmbcActuator actuator = {actuator_set_balloon, actuator_escalate};

	memset(host, 0, sizeof(*host));
	host->host.iface = &iface;
	host->engine = vmbc_engine_new(engine_config);
	vmbc_engine_set_actuator(host->engine, &actuator, host);
	host->settings = vmbc_settings_new();
	vmbc_settings_declare(host->settings, VMBC_BACKEND_GET_CLASS(backend)->settings);
	host->backend = backend;
	vmbc_backend_setup(backend, name, &host->host, host->settings);
}

void
backend_host_set(BackendHost *host, const gchar *key, const gchar *value)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(vmbc_settings_set(host->settings, key, value, &error));
	g_assert_no_error(error);
}

void
backend_host_clear(BackendHost *host)
{
	g_clear_pointer(&host->engine, vmbc_engine_free);
	g_clear_pointer(&host->settings, vmbc_settings_free);
}
