/*
 * vmbc-libvirt-backend.h: the "libvirt" backend: domains of a libvirt QEMU
 * driver (libvirt-uri, default qemu:///system).
 *
 * Domains come and go with libvirt's lifecycle events, dispatched on the
 * GLib main loop through libvirt-glib (gvir_event_register); the list of
 * domains is read only when a connection is made. held is measured host-side
 * from each domain's QEMU process through /proc (vmbc-procfs.h), so a tick
 * costs one statm read per domain and no libvirt call; the balloon sizes and
 * the guests' statistics of all domains come in one
 * virConnectGetAllDomainStats() call per stats interval. Every libvirt call
 * that may wait on libvirtd or on a QEMU runs in a worker thread, and its
 * result is applied on the main loop.
 *
 * When libvirtd restarts or dies, the domains stay (their QEMUs keep
 * running and are still measured), counters are kept, and the backend
 * reconnects with a growing delay and re-adopts the domains by UUID.
 */
#pragma once

#include "vmbc-backend.h"

G_BEGIN_DECLS

#define VMBC_TYPE_LIBVIRT_BACKEND (vmbc_libvirt_backend_get_type())
G_DECLARE_FINAL_TYPE(VmbcLibvirtBackend, vmbc_libvirt_backend, VMBC, LIBVIRT_BACKEND, VmbcBackend)

/* The first reconnect is tried after this long; each failure doubles it up to the maximum. */
#define VMBC_LIBVIRT_RECONNECT_MIN_MS 250
#define VMBC_LIBVIRT_RECONNECT_MAX_MS 10000

/*
 * Opens the connection read-only from the next connect on (vmbcd falls back
 * to read-only by itself when libvirt refuses a read-write connection). A
 * read-only backend measures and reports but cannot set balloons; it says
 * so in a warning and in every refused request. For tests.
 */
void vmbc_libvirt_backend_set_read_only(VmbcLibvirtBackend *self, gboolean read_only);

/* TRUE while the connection is read-only. */
gboolean vmbc_libvirt_backend_is_read_only(VmbcLibvirtBackend *self);

/* How many domains are adopted (known to the daemon), and how many connections were made. */
guint vmbc_libvirt_backend_get_n_vms(VmbcLibvirtBackend *self);
guint vmbc_libvirt_backend_get_n_connects(VmbcLibvirtBackend *self);

G_END_DECLS
