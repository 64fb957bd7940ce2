/*
 * vmbc-libvirt-connection.c: the libvirt backend's one connection: opened in
 * a worker (read-only when libvirt refuses to let vmbcd write), its events
 * registered, and when it is lost, dropped and made again with a growing
 * delay; the domains and their counters stay meanwhile.
 */
#include <errno.h>

#include "vmbc-libvirt-private.h"

static void backend_schedule_reconnect(VmbcLibvirtBackend *self);
static void on_close(virConnectPtr conn, int reason, void *opaque);

/* Errors after which opening read-only is worth a try. */
static gboolean
is_permission_error(gint code, gint int1)
{
	return code == VIR_ERR_AUTH_FAILED || code == VIR_ERR_AUTH_CANCELLED ||
	       code == VIR_ERR_AUTH_UNAVAILABLE || code == VIR_ERR_OPERATION_DENIED ||
	       code == VIR_ERR_ACCESS_DENIED ||
	       (code == VIR_ERR_SYSTEM_ERROR && (int1 == EACCES || int1 == EPERM));
}

/* Lets go of the connection; the domains, their counters and samplers stay. */
void
vmbc_libvirt_backend_drop_connection(VmbcLibvirtBackend *self)
{
	GHashTableIter iter;
	gpointer value;

	self->generation++;
	self->stats_busy = FALSE;
	if (self->conn != NULL) {
		/* on a dead connection these fail; the local registrations are freed anyway */
		if (self->lifecycle_id >= 0)
			virConnectDomainEventDeregisterAny(self->conn, self->lifecycle_id);
		if (self->balloon_id >= 0)
			virConnectDomainEventDeregisterAny(self->conn, self->balloon_id);
		if (self->metadata_id >= 0)
			virConnectDomainEventDeregisterAny(self->conn, self->metadata_id);
		if (self->vmem_event_id >= 0)
			virConnectDomainEventDeregisterAny(self->conn, self->vmem_event_id);
		virConnectUnregisterCloseCallback(self->conn, on_close);
		virConnectClose(self->conn);
		self->conn = NULL;
	}
	self->lifecycle_id = -1;
	self->balloon_id = -1;
	self->metadata_id = -1;
	self->vmem_event_id = -1;
	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		VmbcLibvirtVm *vm = value;

		g_clear_pointer(&vm->dom, virDomainFree);
		vm->balloon_busy = FALSE;
		vm->pending_target = -1;
	}
}

static const gchar *
close_reason(int reason)
{
	switch (reason) {
	case VIR_CONNECT_CLOSE_REASON_ERROR:
		return "a socket error";
	case VIR_CONNECT_CLOSE_REASON_EOF:
		return "libvirtd closed it";
	case VIR_CONNECT_CLOSE_REASON_KEEPALIVE:
		return "libvirtd stopped answering keepalives";
	case VIR_CONNECT_CLOSE_REASON_CLIENT:
		return "closed here";
	default:
		return "unknown reason";
	}
}

static gboolean
on_lost_idle(gpointer user_data)
{
	VmbcLibvirtBackend *self = user_data;

	self->lost_id = 0;
	if (!self->started)
		return G_SOURCE_REMOVE;
	vmbc_libvirt_backend_drop_connection(self);
	backend_schedule_reconnect(self);
	return G_SOURCE_REMOVE;
}

static void
on_close(virConnectPtr conn, int reason, void *opaque)
{
	VmbcLibvirtBackend *self = opaque;

	if (conn != self->conn || !self->started)
		return;
	g_warning("lost the libvirt connection to %s (%s): keeping %u domains and their counters, "
		  "reconnecting",
		  self->uri, close_reason(reason), g_hash_table_size(self->vms));
	self->lost_at = g_get_monotonic_time();
	self->backoff_ms = VMBC_LIBVIRT_RECONNECT_MIN_MS;
	/* the connection is closed and freed from the main loop, not inside libvirt's callback */
	if (self->lost_id == 0)
		self->lost_id = g_idle_add(on_lost_idle, self);
}

static void
job_connect_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	Job *job = data;
	virErrorPtr err;

	if (!job->read_only) {
		job->conn = virConnectOpen(job->uri);
		if (job->conn != NULL) {
			g_task_return_boolean(task, TRUE);
			return;
		}
		err = virGetLastError();
		if (err == NULL || !is_permission_error(err->code, err->int1)) {
			job->error = vmbc_libvirt_last_error(&job->code);
			g_task_return_boolean(task, FALSE);
			return;
		}
		/* may not write: a read-only connection still lets vmbcd measure and report */
		job->error = vmbc_libvirt_last_error(&job->code);
	}
	job->conn = virConnectOpenReadOnly(job->uri);
	if (job->conn == NULL) {
		g_autofree gchar *ro = vmbc_libvirt_last_error(&job->code);
		if (job->error == NULL)
			job->error = g_steal_pointer(&ro);
		g_task_return_boolean(task, FALSE);
		return;
	}
	job->vanished = !job->read_only; /* "fell back to read-only" */
	job->read_only = TRUE;
	g_task_return_boolean(task, TRUE);
}

static void
job_connect_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(source);
	Job *job = g_task_get_task_data(G_TASK(res));

	self->connecting = FALSE;
	if (!self->started || job->generation != self->generation || self->conn != NULL)
		return;
	if (job->conn == NULL) {
		if (g_strcmp0(self->last_connect_error, job->error) != 0)
			g_warning("cannot connect to libvirt at %s: %s; trying again in %.1f s",
				  self->uri, job->error, self->backoff_ms / 1000.0);
		else
			g_debug("still cannot connect to %s: %s", self->uri, job->error);
		g_free(self->last_connect_error);
		self->last_connect_error = g_strdup(job->error);
		/* vmbcd is ready all the same: it adopts the domains once libvirt is up */
		self->first_pass_done = TRUE;
		backend_schedule_reconnect(self);
		return;
	}
	self->conn = g_steal_pointer(&job->conn);
	self->read_only = job->read_only;
	self->generation++;
	self->n_connects++;
	g_clear_pointer(&self->last_connect_error, g_free);
	self->backoff_ms = VMBC_LIBVIRT_RECONNECT_MIN_MS;
	if (self->read_only && !self->warned_read_only) {
		self->warned_read_only = TRUE;
		g_warning(
			"the libvirt connection to %s is read-only%s%s%s: vmbcd measures and "
			"reports "
			"its domains but cannot set their balloons or stats periods; run vmbcd as "
			"root (or a user libvirt lets write) to enforce limits",
			self->uri, job->vanished ? " (" : "", job->vanished ? job->error : "",
			job->vanished ? ")" : "");
	}
	if (virConnectSetKeepAlive(self->conn, 5, 3) < 0) {
		g_autofree gchar *msg = vmbc_libvirt_last_error(NULL);
		g_debug("%s: no keepalive: %s", self->uri, msg);
	}
	if (virConnectRegisterCloseCallback(self->conn, on_close, self, NULL) < 0) {
		g_autofree gchar *msg = vmbc_libvirt_last_error(NULL);
		g_debug("%s: no close callback: %s", self->uri, msg);
	}
	self->lifecycle_id = virConnectDomainEventRegisterAny(
		self->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
		VIR_DOMAIN_EVENT_CALLBACK(vmbc_libvirt_on_lifecycle), self, NULL);
	if (self->lifecycle_id < 0) {
		g_autofree gchar *msg = vmbc_libvirt_last_error(NULL);
		g_warning("%s: cannot follow domain lifecycle events: %s; reconnecting", self->uri,
			  msg);
		vmbc_libvirt_backend_drop_connection(self);
		backend_schedule_reconnect(self);
		return;
	}
	self->balloon_id = virConnectDomainEventRegisterAny(
		self->conn, NULL, VIR_DOMAIN_EVENT_ID_BALLOON_CHANGE,
		VIR_DOMAIN_EVENT_CALLBACK(vmbc_libvirt_on_balloon_change), self, NULL);
	if (self->balloon_id < 0) {
		g_autofree gchar *msg = vmbc_libvirt_last_error(NULL);
		g_debug("%s: no balloon change events: %s", self->uri, msg);
	}
	/* the policy in a domain's metadata applies when it changes */
	self->metadata_id = virConnectDomainEventRegisterAny(
		self->conn, NULL, VIR_DOMAIN_EVENT_ID_METADATA_CHANGE,
		VIR_DOMAIN_EVENT_CALLBACK(vmbc_libvirt_on_metadata_change), self, NULL);
	if (self->metadata_id < 0) {
		g_autofree gchar *msg = vmbc_libvirt_last_error(NULL);
		g_warning("%s: no metadata change events (%s): a policy changed in a domain's "
			  "metadata applies at its next adoption only",
			  self->uri, msg);
	}
	/* virtio-mem's progress (vmbc-libvirt-vmem.c); the live XML says it too */
	self->vmem_event_id = virConnectDomainEventRegisterAny(
		self->conn, NULL, VIR_DOMAIN_EVENT_ID_MEMORY_DEVICE_SIZE_CHANGE,
		VIR_DOMAIN_EVENT_CALLBACK(vmbc_libvirt_on_memory_device_size_change), self, NULL);
	if (self->vmem_event_id < 0) {
		g_autofree gchar *msg = vmbc_libvirt_last_error(NULL);
		g_debug("%s: no memory device size change events: %s", self->uri, msg);
	}
	if (self->lost_at > 0)
		g_info("reconnected to libvirt at %s after %.1f s; adopting its domains again",
		       self->uri, (g_get_monotonic_time() - self->lost_at) / 1e6);
	else
		g_info("connected to libvirt at %s%s", self->uri,
		       self->read_only ? " (read-only)" : "");
	vmbc_libvirt_backend_reset_stats(self);
	vmbc_libvirt_backend_list_domains(self);
}

void
vmbc_libvirt_backend_connect(VmbcLibvirtBackend *self)
{
	Job *job;

	if (self->connecting || self->conn != NULL || !self->started)
		return;
	self->connecting = TRUE;
	job = vmbc_libvirt_job_new(self, NULL);
	job->read_only = self->force_read_only;
	vmbc_libvirt_job_run(self, job, job_connect_thread, job_connect_done);
}

static gboolean
on_reconnect(gpointer user_data)
{
	VmbcLibvirtBackend *self = user_data;

	self->reconnect_id = 0;
	vmbc_libvirt_backend_connect(self);
	return G_SOURCE_REMOVE;
}

static void
backend_schedule_reconnect(VmbcLibvirtBackend *self)
{
	if (!self->started || self->reconnect_id != 0)
		return;
	self->reconnect_id = g_timeout_add(self->backoff_ms, on_reconnect, self);
	self->backoff_ms = MIN(self->backoff_ms * 2, VMBC_LIBVIRT_RECONNECT_MAX_MS);
}
