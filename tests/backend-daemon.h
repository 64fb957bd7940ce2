/*
 * backend-daemon.h: a stand-in for vmbcd's daemon, for the unit tests of a
 * backend plugin. The backend base class (src/vmbc-backend.c) reaches the daemon
 * through five functions; this file gives them a bare engine and a config the
 * test fills in, counts VMs added and removed, and forwards the engine's
 * actuator to the backend under test. Tests of the real daemon use vmbcd itself.
 */
#pragma once

#include "vmbc-backend.h"
#include "vmbc-daemon-private.h"

struct _VmbcDaemon {
	VmbcEngine *engine;
	VmbcConfig config;
	VmbcBackend *backend; /* the backend under test, for the actuator; not a reference */
	guint added;
	guint removed;
	guint actuator_calls;
};

/* Creates the engine with @engine_config (NULL: defaults) and wires its actuator to
 * daemon->backend. The config is zeroed: the test sets what its backend reads. */
void backend_daemon_init(VmbcDaemon *daemon, const VmbcEngineConfig *engine_config);

/* Frees the engine (the config's strings are the test's). */
void backend_daemon_clear(VmbcDaemon *daemon);
