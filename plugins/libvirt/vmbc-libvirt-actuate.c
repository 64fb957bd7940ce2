/*
 * vmbc-libvirt-actuate.c: what the libvirt backend does to a domain when the
 * engine asks: set its balloon (virDomainSetMemoryFlags, one call in flight
 * per domain, the newest target waiting), and escalate: suspend it, or set
 * its memtune soft_limit, which libvirt writes to cgroup v2's memory.high.
 */
#include "vmbc-libvirt-private.h"
#include "vmbc-size.h"

/* The VM behind @bc with a domain on the current connection, or NULL with an error. */
static VmbcLibvirtVm *
vm_for_bc(VmbcLibvirtBackend *self, VmbcBeancounter *bc, gboolean write, GError **error)
{
	VmbcLibvirtVm *vm = bc->backend_data;

	if (vm == NULL || vm->backend != self) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_VANISHED,
			    "domain '%s' is not a libvirt domain of %s", bc->name, self->uri);
		return NULL;
	}
	if (self->conn == NULL || vm->dom == NULL) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED,
			    "not connected to libvirt at %s (reconnecting): domain '%s' cannot be "
			    "changed now",
			    self->uri, bc->name);
		return NULL;
	}
	if (write && self->read_only) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_PERMISSION,
			    "the libvirt connection to %s is read-only: vmbcd cannot change domain "
			    "'%s' (run vmbcd as root or as a user libvirt lets write)",
			    self->uri, bc->name);
		return NULL;
	}
	return vm;
}

static gboolean
domain_vanished(virDomainPtr dom, gint code)
{
	if (code == VIR_ERR_NO_DOMAIN)
		return TRUE;
	/* "domain is not running" is OPERATION_INVALID too: ask */
	if (code == VIR_ERR_OPERATION_INVALID || code == VIR_ERR_OPERATION_FAILED) {
		int active = virDomainIsActive(dom);
		if (active == 0)
			return TRUE;
		if (active < 0) {
			virErrorPtr err = virGetLastError();
			return err != NULL && err->code == VIR_ERR_NO_DOMAIN;
		}
	}
	return FALSE;
}

static void
job_balloon_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	Job *job = data;

	if (virDomainSetMemoryFlags(job->dom, (unsigned long)job->arg, VIR_DOMAIN_AFFECT_LIVE) ==
	    0) {
		g_task_return_boolean(task, TRUE);
		return;
	}
	job->error = vmbc_libvirt_last_error(&job->code);
	job->vanished = domain_vanished(job->dom, job->code);
	g_task_return_boolean(task, FALSE);
}

static void vm_send_balloon(VmbcLibvirtVm *vm, gint64 target_pages);

static void
job_balloon_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(source);
	g_autoptr(VmbcLibvirtVm) vm = user_data;
	Job *job = vmbc_libvirt_job_current(self, res);
	gint64 next;

	if (job == NULL || vm->backend != self || vm->bc == NULL)
		return;
	vm->balloon_busy = FALSE;
	if (job->error != NULL) {
		if (job->vanished) {
			vmbc_libvirt_vm_remove(self, vm,
					       "it vanished while its balloon was being set");
			return;
		}
		if (job->code == VIR_ERR_OPERATION_DENIED || job->code == VIR_ERR_ACCESS_DENIED) {
			g_autoptr(GError) error = NULL;
			g_set_error(
				&error, VMBC_ERROR, VMBC_ERROR_PERMISSION,
				"libvirt refused to set the balloon of '%s' (%s): the connection "
				"to %s may not write",
				vm->name, job->error, self->uri);
			if (g_strcmp0(vm->last_warning, job->error) != 0)
				g_warning("%s", error->message);
		} else if (!vm->info.has_balloon || job->code == VIR_ERR_OPERATION_INVALID) {
			g_autoptr(GError) error = NULL;
			g_set_error(&error, VMBC_ERROR, VMBC_ERROR_NO_BALLOON,
				    "domain '%s' cannot balloon: %s", vm->name, job->error);
			vmbc_engine_balloon_failed(vmbc_libvirt_vm_engine(vm), vm->bc,
						   VMBC_BALLOON_NO_DEVICE, error,
						   vmbc_libvirt_vm_now(vm));
		} else if (g_strcmp0(vm->last_warning, job->error) != 0) {
			g_warning("domain '%s': balloon request failed: %s", vm->name, job->error);
		}
		g_free(vm->last_warning);
		vm->last_warning = g_strdup(job->error);
	} else {
		g_clear_pointer(&vm->last_warning, g_free);
	}
	next = vm->pending_target;
	vm->pending_target = -1;
	if (next > 0 && vm->dom != NULL)
		vm_send_balloon(vm, next);
}

static void
vm_send_balloon(VmbcLibvirtVm *vm, gint64 target_pages)
{
	VmbcLibvirtBackend *self = vm->backend;
	g_autoptr(GTask) task = g_task_new(self, NULL, job_balloon_done, vmbc_libvirt_vm_ref(vm));
	Job *job = vmbc_libvirt_job_new(self, vm->dom);

	job->arg = target_pages * (gint64)vmbc_page_size() / 1024;
	vm->balloon_busy = TRUE;
	g_debug("domain '%s': balloon to %" G_GINT64_FORMAT " KiB", vm->name, job->arg);
	g_task_set_task_data(task, job, (GDestroyNotify)vmbc_libvirt_job_free);
	g_task_run_in_thread(task, job_balloon_thread);
}

gboolean
vmbc_libvirt_backend_set_balloon(VmbcBackend *backend, VmbcBeancounter *bc, gint64 target_pages,
				 GError **error)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(backend);
	VmbcLibvirtVm *vm = vm_for_bc(self, bc, TRUE, error);

	if (vm == NULL)
		return FALSE;
	if (!vm->info.has_balloon && !bc->has_vmem) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_NO_BALLOON,
			    "domain '%s' has no balloon device (<memballoon model='%s'>)", bc->name,
			    vm->info.balloon_model != NULL ? vm->info.balloon_model : "");
		return FALSE;
	}
	if (target_pages <= 0 || target_pages > (gint64)G_MAXLONG / (gint64)vmbc_page_size()) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "domain '%s': invalid balloon target %" G_GINT64_FORMAT " pages",
			    bc->name, target_pages);
		return FALSE;
	}
	if (bc->has_vmem) {
		vmbc_libvirt_vm_vmem_set(vm, target_pages);
		return TRUE;
	}
	if (vm->balloon_busy) {
		/* one call in flight per domain; the newest target wins */
		vm->pending_target = target_pages;
		return TRUE;
	}
	vm_send_balloon(vm, target_pages);
	return TRUE;
}

static void
job_escalate_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	Job *job = data;
	int rc;

	if (job->arg < 0) {
		rc = virDomainSuspend(job->dom);
	} else {
		virTypedParameterPtr params = NULL;
		int n = 0;
		int max = 0;

		if (job->raise_only) {
			unsigned long long cur = 0;
			int have = 0;

			rc = virDomainGetMemoryParameters(job->dom, NULL, &have, 0);
			if (rc == 0 && have > 0) {
				params = g_new0(virTypedParameter, have);
				rc = virDomainGetMemoryParameters(job->dom, params, &have, 0);
				if (rc == 0 && virTypedParamsGetULLong(params, have,
								       VIR_DOMAIN_MEMORY_SOFT_LIMIT,
								       &cur) == 1) {
					/* unlimited while a limit is set: lifted by hand */
					job->lifted = cur >= VIR_DOMAIN_MEMORY_PARAM_UNLIMITED &&
						      (unsigned long long)job->arg <
							      VIR_DOMAIN_MEMORY_PARAM_UNLIMITED;
					job->left =
						!job->lifted && cur >= (unsigned long long)job->arg;
				}
				virTypedParamsClear(params, have);
				g_clear_pointer(&params, g_free);
			}
			if (rc < 0) {
				job->error = vmbc_libvirt_last_error(&job->code);
				g_task_return_boolean(task, FALSE);
				return;
			}
			if (job->lifted || job->left) {
				g_task_return_boolean(task, TRUE);
				return;
			}
		}
		/* libvirt writes the soft limit to cgroup v2's memory.high */
		rc = virTypedParamsAddULLong(&params, &n, &max, VIR_DOMAIN_MEMORY_SOFT_LIMIT,
					     (unsigned long long)job->arg);
		if (rc == 0)
			rc = virDomainSetMemoryParameters(job->dom, params, n,
							  VIR_DOMAIN_AFFECT_LIVE);
		virTypedParamsFree(params, n);
	}
	if (rc < 0) {
		job->error = vmbc_libvirt_last_error(&job->code);
		g_task_return_boolean(task, FALSE);
		return;
	}
	g_task_return_boolean(task, TRUE);
}

static void
job_escalate_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(source);
	g_autofree gchar *name = user_data;
	Job *job = vmbc_libvirt_job_current(self, res);

	if (job == NULL)
		return;
	if (job->error != NULL) {
		g_warning("domain '%s': %s failed: %s", name,
			  job->arg < 0 ? "escalation (pause)"
			  : job->raise_only
				  ? "raising memtune soft_limit (memory.high) with the limit"
				  : "escalation (memory.high)",
			  job->error);
	} else if (job->lifted) {
		VmbcLibvirtVm *vm = vmbc_libvirt_vm_for_domain(self, job->dom);
		g_info("domain '%s': memtune soft_limit was lifted by hand, and vmbcd leaves it",
		       name);
		if (vm != NULL && vm->bc != NULL)
			vmbc_engine_mark_memory_high(vmbc_libvirt_vm_engine(vm), vm->bc, FALSE);
	} else if (job->left) {
		g_debug("domain '%s': memtune soft_limit not below %" G_GINT64_FORMAT
			" KiB: left as it is",
			name, job->arg);
	} else if (job->arg < 0)
		g_info("domain '%s' paused", name);
	else
		g_info("domain '%s': memtune soft_limit (memory.high) set to %" G_GINT64_FORMAT
		       " KiB",
		       name, job->arg);
}

gboolean
vmbc_libvirt_backend_escalate(VmbcBackend *backend, VmbcBeancounter *bc, VmbcEscalation how,
			      GError **error)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(backend);
	VmbcLibvirtVm *vm;
	VmbcParm *phys = &bc->parm[VMBC_RES_PHYSPAGES];
	g_autoptr(GTask) task = NULL;
	Job *job;

	if (how == VMBC_ESCALATE_NONE)
		return TRUE;
	/* auto is memtune's soft_limit, which libvirt writes where the host has one */
	if (how != VMBC_ESCALATE_PAUSE && how != VMBC_ESCALATE_MEMORY_HIGH &&
	    how != VMBC_ESCALATE_MEMORY_HIGH_RAISE && how != VMBC_ESCALATE_AUTO) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "domain '%s': unknown escalation %d", bc->name, (int)how);
		return FALSE;
	}
	vm = vm_for_bc(self, bc, TRUE, error);
	if (vm == NULL)
		return FALSE;
	job = vmbc_libvirt_job_new(self, vm->dom);
	if (how == VMBC_ESCALATE_PAUSE) {
		job->arg = -1;
	} else {
		/* the whole QEMU: the guest limit plus what the VMM holds now */
		gint64 pages = phys->limit == VMBC_UNLIMITED
				       ? -1
				       : phys->limit + MAX(bc->parm[VMBC_RES_VMMPAGES].held, 0);
		job->arg = pages < 0 ? (gint64)VIR_DOMAIN_MEMORY_PARAM_UNLIMITED
				     : pages * (gint64)vmbc_page_size() / 1024;
		job->raise_only = how == VMBC_ESCALATE_MEMORY_HIGH_RAISE;
	}
	task = g_task_new(self, NULL, job_escalate_done, g_strdup(bc->name));
	g_task_set_task_data(task, job, (GDestroyNotify)vmbc_libvirt_job_free);
	g_task_run_in_thread(task, job_escalate_thread);
	return TRUE;
}
