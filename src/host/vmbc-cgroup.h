/*
 * vmbc-cgroup.h: the cgroup v2 files vmbcd writes on the host: memory.high of
 * a VMM process's cgroup, the backstop of the memory-high escalation.
 *
 * Functions take a cgroupfs root, a pid and a value; what the value is (a
 * VM's limit plus what its VMM holds) is the caller's business. Nothing here
 * needs a main loop; the writes are small and synchronous, as cgroupfs is.
 */
#pragma once

#include <glib.h>
#include <sys/types.h>

G_BEGIN_DECLS

/*
 * The cgroup v2 directory of @pid from its "0::/path" line in
 * /proc/PID/cgroup, under @root (cgroup-root in vmbc.conf; the unified/
 * directory of a hybrid hierarchy when @root is one), or NULL with an error.
 */
gchar *vmbc_cgroup_dir_of(const gchar *root, pid_t pid, GError **error);

/*
 * Whether @pid's cgroup v2 under @root has a memory controller (its directory
 * has memory.high), for the auto escalation. FALSE with a VMBC_ERROR that says
 * why nothing can hold the VM there and what the operator can choose instead
 * ("no cgroup v2 memory controller for its QEMU (this host mounts the memory
 * controller on cgroup v1); set escalation = pause to pause it").
 */
gboolean vmbc_cgroup_has_memory_high(const gchar *root, pid_t pid, GError **error);

/*
 * Whether memory.high, whose file reads @now, goes up when set to @value
 * (bytes, or "max"): the limit was raised after an escalation. FALSE without
 * an error: it is already there or above. FALSE with VMBC_ERROR_NOT_FOUND: it
 * is max while @value is not, so it was lifted by hand.
 */
gboolean vmbc_cgroup_memory_high_raises(const gchar *now, const gchar *value, GError **error);

/*
 * Writes @value (bytes, or "max") to memory.high of @pid's cgroup under
 * @root. With @raise_only the file is read first and written only if that
 * raises it (vmbc_cgroup_memory_high_raises()); otherwise *@changed is set to
 * FALSE and TRUE is returned. @file, if not NULL, gets the path of the file
 * (NULL when the cgroup was not found), for messages.
 *
 * On error FALSE is returned with a VMBC_ERROR that names the file ("cannot
 * set memory.high: ... does not exist (the memory controller is not enabled
 * ...)"); the caller prefixes which VM it is.
 */
gboolean vmbc_cgroup_set_memory_high(const gchar *root, pid_t pid, const gchar *value,
				     gboolean raise_only, gchar **file, gboolean *changed,
				     GError **error);

G_END_DECLS
