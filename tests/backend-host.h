/*
 * backend-host.h: a VmbcBackendHost for the unit tests of a backend plugin.
 *
 * A backend sees the program that runs it only through VmbcBackendHost
 * (src/backend/vmbc-backend-host.h). This implementation gives it a bare
 * engine, the backend's own declared settings at their defaults (the test
 * sets what its backend reads), counts VMs added and removed, and forwards
 * the engine's actuator to the backend under test. Tests of the daemon's own
 * implementation use vmbcd itself.
 */
#pragma once

#include "vmbc-backend.h"

typedef struct {
	VmbcBackendHost host; /* first: what the backend is given */
	VmbcEngine *engine;
	VmbcSettings *settings;
	VmbcBackend *backend; /* the backend under test, for the actuator; not a reference */
	guint added;
	guint removed;
	guint actuator_calls;
} BackendHost;

/*
 * Creates the engine with @engine_config (NULL: defaults) and the settings
 * @backend declares, and sets @backend up as @name with this host.
 */
void backend_host_init(BackendHost *host, VmbcBackend *backend, const gchar *name,
		       const VmbcEngineConfig *engine_config);

/* Sets one of the backend's settings as vmbc.conf would; asserts it is valid. */
void backend_host_set(BackendHost *host, const gchar *key, const gchar *value);

/* Frees the engine and the settings. */
void backend_host_clear(BackendHost *host);
