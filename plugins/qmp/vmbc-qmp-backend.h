/*
 * vmbc-qmp-backend.h: the "qmp" backend: plain QEMU through its QMP sockets.
 *
 * It finds sockets from the configured globs, talks to each QEMU with an
 * asynchronous QmpClient, measures each VM host-side through /proc
 * (vmbc-procfs.h) and acts on its virtio balloon. One thread, no blocking:
 * thousands of VMs at a 1 s tick cost one statm read each and at most one
 * outstanding QMP query of each kind per VM.
 */
#pragma once

#include "vmbc-backend.h"

G_BEGIN_DECLS

#define VMBC_TYPE_QMP_BACKEND (vmbc_qmp_backend_get_type())
G_DECLARE_FINAL_TYPE(VmbcQmpBackend, vmbc_qmp_backend, VMBC, QMP_BACKEND, VmbcBackend)

/* No reply to a QMP command within this long: the VM is dropped and retried. */
#define VMBC_QMP_BACKEND_COMMAND_TIMEOUT_MS 10000

/*
 * Rescans the socket globs now (the backend also does so every
 * rescan_interval_usec once started). For tests and SIGHUP.
 */
void vmbc_qmp_backend_rescan(VmbcQmpBackend *self);

/* How many VMs are adopted (connected, probed and known to the daemon). */
guint vmbc_qmp_backend_get_n_vms(VmbcQmpBackend *self);

G_END_DECLS
