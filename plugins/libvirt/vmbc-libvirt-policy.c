/*
 * vmbc-libvirt-policy.c: the policy a domain carries in its <metadata>, in
 * the vmbc namespace (see vmbc-policy.h): read when the domain is adopted
 * and when libvirt says it changed (VIR_DOMAIN_EVENT_ID_METADATA_CHANGE),
 * written for vmbc setlimit --persist. libvirt keeps metadata in the
 * domain's definition and sends it along on migration, so the destination's
 * vmbcd applies the same policy.
 */
#include <stdlib.h>

#include "vmbc-libvirt-private.h"

gchar *
vmbc_libvirt_read_policy(virDomainPtr dom, gchar **error_out)
{
	gchar *xml = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, VMBC_POLICY_NS_URI,
					  VIR_DOMAIN_AFFECT_LIVE);
	gint code = 0;
	g_autofree gchar *msg = NULL;
	gchar *copy;

	if (xml != NULL) {
		copy = g_strdup(xml);
		free(xml);
		return copy;
	}
	msg = vmbc_libvirt_last_error(&code);
	if (code != VIR_ERR_NO_DOMAIN_METADATA)
		*error_out = g_steal_pointer(&msg);
	return NULL;
}

void
vmbc_libvirt_vm_apply_policy(VmbcLibvirtVm *vm, const gchar *xml)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VmbcPolicy) policy = NULL;

	if (vm->backend == NULL || vm->bc == NULL)
		return;
	policy = vmbc_policy_parse(xml, &error);
	if (policy == NULL) {
		g_warning("domain '%s': the vmbc policy in its metadata is not applied: %s "
			  "(namespace %s)",
			  vm->name, error->message, VMBC_POLICY_NS_URI);
		return;
	}
	vmbc_backend_apply_policy(VMBC_BACKEND(vm->backend), vm->bc, policy);
}

static void
job_read_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	Job *job = data;

	job->text = vmbc_libvirt_read_policy(job->dom, &job->error);
	g_task_return_boolean(task, TRUE);
}

static void
job_read_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(source);
	Job *job = vmbc_libvirt_job_current(self, res);
	VmbcLibvirtVm *vm;

	if (job == NULL)
		return;
	vm = vmbc_libvirt_vm_for_domain(self, job->dom);
	if (vm == NULL)
		return; /* not (yet) adopted: its adoption reads the metadata */
	if (job->error != NULL)
		g_warning("domain '%s': the vmbc policy in its metadata cannot be read: %s",
			  vm->name, job->error);
	else if (job->text == NULL)
		g_info("domain '%s': the vmbc policy was removed from its metadata; its limits "
		       "stay as they are",
		       vm->name);
	else
		vmbc_libvirt_vm_apply_policy(vm, job->text);
}

void
vmbc_libvirt_on_metadata_change(virConnectPtr conn, virDomainPtr dom, int type, const char *nsuri,
				void *opaque)
{
	VmbcLibvirtBackend *self = opaque;

	if (!self->started || conn != self->conn || type != VIR_DOMAIN_METADATA_ELEMENT ||
	    g_strcmp0(nsuri, VMBC_POLICY_NS_URI) != 0)
		return;
	g_debug("domain '%s': its vmbc metadata changed", virDomainGetName(dom));
	vmbc_libvirt_job_run(self, vmbc_libvirt_job_new(self, dom), job_read_thread, job_read_done);
}

/*
 * Runs in a worker: the live metadata, and the persistent definition's when
 * the domain has one (a transient domain has only the live one).
 */
static void
job_write_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	Job *job = data;
	guint flags = VIR_DOMAIN_AFFECT_LIVE;
	gint code = 0;

	if (virDomainIsPersistent(job->dom) == 1)
		flags |= VIR_DOMAIN_AFFECT_CONFIG;
	if (virDomainSetMetadata(job->dom, VIR_DOMAIN_METADATA_ELEMENT, job->text,
				 VMBC_POLICY_NS_KEY, VMBC_POLICY_NS_URI, flags) == 0) {
		g_task_return_boolean(task, TRUE);
		return;
	}
	job->error = vmbc_libvirt_last_error(&code);
	g_task_return_new_error(task, VMBC_ERROR, VMBC_ERROR_FAILED,
				"cannot write the domain's metadata: %s", job->error);
}

void
vmbc_libvirt_backend_persist(VmbcBackend *backend, VmbcBeancounter *bc, const VmbcPolicy *policy,
			     GAsyncReadyCallback done, gpointer user_data)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(backend);
	VmbcLibvirtVm *vm = bc->backend_data;
	g_autoptr(GTask) task = g_task_new(self, NULL, done, user_data);
	Job *job;

	if (vm == NULL || vm->backend != self || self->conn == NULL || vm->dom == NULL) {
		g_task_return_new_error(task, VMBC_ERROR, VMBC_ERROR_FAILED,
					"not connected to libvirt at %s: domain '%s' cannot be "
					"changed now",
					self->uri, bc->name);
		return;
	}
	if (self->read_only) {
		g_task_return_new_error(task, VMBC_ERROR, VMBC_ERROR_PERMISSION,
					"the libvirt connection to %s is read-only", self->uri);
		return;
	}
	job = vmbc_libvirt_job_new(self, vm->dom);
	job->text = vmbc_policy_to_xml(policy);
	g_task_set_task_data(task, job, (GDestroyNotify)vmbc_libvirt_job_free);
	g_task_run_in_thread(task, job_write_thread);
}

gboolean
vmbc_libvirt_backend_persist_finish(VmbcBackend *backend, GAsyncResult *res, GError **error)
{
	return g_task_propagate_boolean(G_TASK(res), error);
}
