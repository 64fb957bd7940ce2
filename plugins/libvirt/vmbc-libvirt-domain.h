/*
 * vmbc-libvirt-domain.h: what the libvirt backend needs to know about one
 * domain, without a connection: the facts it reads from the live domain XML
 * (memory size, the balloon device, its model, free page reporting, its
 * stats period) and where the domain's QEMU process is (its pidfile, checked
 * against /proc/PID/cmdline, or a scan of /proc).
 *
 * Kept apart from the backend so that it is tested without libvirtd.
 */
#pragma once

#include <glib.h>
#include <sys/types.h>

#include "vmbc-libvirt-ram.h"

G_BEGIN_DECLS

/* The facts of one domain, from its live XML. */
typedef struct {
	gchar *name;
	gchar *uuid;
	gint64 memory_kib;	  /* <memory>, the guest's RAM at boot; -1 when missing */
	gint64 current_kib;	  /* <currentMemory>, the balloon's logical size; -1 when missing */
	gchar *balloon_model;	  /* <memballoon model=...>; NULL when the element is missing */
	gboolean has_balloon;	  /* a memballoon of a model other than "none" */
	gint free_page_reporting; /* freePageReporting: -1 no balloon, 0 off or unset, 1 on */
	gint stats_period;	  /* <stats period=N/> in seconds, 0 when unset */
	VmbcLibvirtRam ram;	  /* guest RAM's backends and virtio-mem (vmbc-libvirt-ram.h) */
	gchar *ram_error;	  /* why ram says nothing, when its part of the XML is wrong */
} VmbcLibvirtDomainInfo;

void vmbc_libvirt_domain_info_clear(VmbcLibvirtDomainInfo *info);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(VmbcLibvirtDomainInfo, vmbc_libvirt_domain_info_clear)

/*
 * Parses a domain XML document (virDomainGetXMLDesc) into @info, which must
 * be zeroed or cleared. Elements other than the few read here are skipped.
 * Returns FALSE with VMBC_ERROR_INVALID when the text is not well-formed,
 * not a <domain>, has no <name>, or has a size that does not parse; @info
 * must be cleared by the caller either way.
 */
gboolean vmbc_libvirt_domain_info_parse(const gchar *xml, VmbcLibvirtDomainInfo *info,
					GError **error);

/*
 * The pidfile the QEMU driver of @uri writes for domain @name, or NULL when
 * @uri is not a local QEMU driver URI: qemu:///system has
 * /run/libvirt/qemu/NAME.pid, qemu:///session
 * $XDG_RUNTIME_DIR/libvirt/qemu/run/NAME.pid (NULL without XDG_RUNTIME_DIR).
 */
gchar *vmbc_libvirt_pidfile_path(const gchar *uri, const gchar *name);

/*
 * Whether a NUL-separated /proc/PID/cmdline of @len bytes is the QEMU of the
 * domain: "-uuid UUID" equals @uuid (any case) when @uuid is set, else
 * "-name guest=NAME,..." (or "-name NAME") names @name.
 */
gboolean vmbc_libvirt_cmdline_matches(const gchar *cmdline, gsize len, const gchar *name,
				      const gchar *uuid);

/*
 * Finds the QEMU process of a domain: the pid in the driver's pidfile when
 * its cmdline matches, else the first process in /proc whose cmdline does.
 * Returns the pid, or -1 with VMBC_ERROR_NOT_FOUND naming what was tried.
 */
pid_t vmbc_libvirt_find_qemu_pid(const gchar *uri, const gchar *name, const gchar *uuid,
				 GError **error);

G_END_DECLS
