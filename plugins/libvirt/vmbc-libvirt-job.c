/*
 * vmbc-libvirt-job.c: how the libvirt backend runs a blocking libvirt call
 * (see vmbc-libvirt-private.h): as a job in a GTask worker thread, holding its
 * own references and the connection generation it was started on, whose
 * result is applied on the main loop only if that generation still runs.
 */
#include "vmbc-libvirt-private.h"
#include "vmbc-size.h"

/* The calling thread's last libvirt error as text, and its code. */
gchar *
vmbc_libvirt_last_error(gint *code)
{
	virErrorPtr err = virGetLastError();

	if (code != NULL)
		*code = err != NULL ? err->code : VIR_ERR_INTERNAL_ERROR;
	if (err == NULL || err->message == NULL)
		return g_strdup("unknown libvirt error");
	return g_strdup(err->message);
}

gint64
vmbc_libvirt_kib_to_pages(gint64 kib)
{
	return kib * 1024 / (gint64)vmbc_page_size();
}

void
vmbc_libvirt_job_free(Job *job)
{
	if (job->conn != NULL)
		virConnectClose(job->conn);
	g_clear_pointer(&job->dom, virDomainFree);
	g_clear_pointer(&job->doms, g_ptr_array_unref);
	g_clear_pointer(&job->doms_dirty, g_ptr_array_unref);
	g_clear_pointer(&job->facts, g_ptr_array_unref);
	g_clear_pointer(&job->stats, g_array_unref);
	g_free(job->uri);
	g_free(job->vm_uuid);
	g_free(job->error);
	g_free(job->text);
	g_free(job);
}

Job *
vmbc_libvirt_job_new(VmbcLibvirtBackend *self, virDomainPtr dom)
{
	Job *job = g_new0(Job, 1);

	if (self->conn != NULL) {
		virConnectRef(self->conn);
		job->conn = self->conn;
	}
	if (dom != NULL) {
		virDomainRef(dom);
		job->dom = dom;
	}
	job->generation = self->generation;
	job->seq = ++self->seq;
	job->uri = g_strdup(self->uri);
	job->stats_sec = self->stats_sec;
	job->read_only = self->read_only;
	return job;
}

void
vmbc_libvirt_job_run(VmbcLibvirtBackend *self, Job *job, GTaskThreadFunc func,
		     GAsyncReadyCallback done)
{
	g_autoptr(GTask) task = g_task_new(self, NULL, done, NULL);

	g_task_set_task_data(task, job, (GDestroyNotify)vmbc_libvirt_job_free);
	g_task_run_in_thread(task, func);
}

/* The job of a finished task if its result still matters, else NULL. */
Job *
vmbc_libvirt_job_current(VmbcLibvirtBackend *self, GAsyncResult *res)
{
	Job *job = g_task_get_task_data(G_TASK(res));

	if (!self->started || job->generation != self->generation)
		return NULL;
	return job;
}
