/*
 * vmbc-backend.c: the VmbcBackend base class: vfunc dispatch with sane
 * defaults, and the helpers through which a backend reaches the daemon.
 */
#include "vmbc-backend.h"
#include "vmbc-error.h"

typedef struct {
	gchar *name;
	VmbcBackendHost *host;	      /* not a reference: the host owns its backends */
	const VmbcSettings *settings; /* the host's */
	VmbcStatmBatch *statm_batch;  /* NULL until the first sample */
} VmbcBackendPrivate;

G_DEFINE_TYPE_WITH_PRIVATE(VmbcBackend, vmbc_backend, G_TYPE_OBJECT)

#define GET_PRIVATE(o) ((VmbcBackendPrivate *)vmbc_backend_get_instance_private(o))

static void
vmbc_backend_finalize(GObject *object)
{
	VmbcBackendPrivate *priv = GET_PRIVATE(VMBC_BACKEND(object));
	g_free(priv->name);
	g_clear_pointer(&priv->statm_batch, vmbc_statm_batch_free);
	G_OBJECT_CLASS(vmbc_backend_parent_class)->finalize(object);
}

/* A backend let go of without a stop (a failed start, a test) stops now: stop is idempotent. */
static void
vmbc_backend_dispose(GObject *object)
{
	VmbcBackendClass *klass = VMBC_BACKEND_GET_CLASS(object);

	if (klass->stop != NULL)
		klass->stop(VMBC_BACKEND(object));
	G_OBJECT_CLASS(vmbc_backend_parent_class)->dispose(object);
}

static void
vmbc_backend_class_init(VmbcBackendClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->dispose = vmbc_backend_dispose;
	object_class->finalize = vmbc_backend_finalize;
}

static void
vmbc_backend_init(VmbcBackend *self)
{
}

void
vmbc_backend_setup(VmbcBackend *self, const gchar *name, VmbcBackendHost *host,
		   const VmbcSettings *settings)
{
	VmbcBackendPrivate *priv = GET_PRIVATE(self);

	g_return_if_fail(host != NULL && host->iface != NULL);
	g_free(priv->name);
	priv->name = g_strdup(name);
	priv->host = host;
	priv->settings = settings;
}

const gchar *
vmbc_backend_get_name(VmbcBackend *self)
{
	return GET_PRIVATE(self)->name;
}

VmbcEngine *
vmbc_backend_get_engine(VmbcBackend *self)
{
	VmbcBackendHost *host = GET_PRIVATE(self)->host;

	return host->iface->get_engine(host);
}

const VmbcSettings *
vmbc_backend_get_settings(VmbcBackend *self)
{
	return GET_PRIVATE(self)->settings;
}

VmbcStatmBatch *
vmbc_backend_get_statm_batch(VmbcBackend *self)
{
	VmbcBackendPrivate *priv = GET_PRIVATE(self);
	VmbcStatmReads how = VMBC_STATM_READS_PREAD;

	/* the loader checked the value: only "uring" and "pread" get here */
	if (priv->settings != NULL && vmbc_settings_lookup(priv->settings, "statm-reads") != NULL)
		(void)vmbc_statm_reads_from_string(
			vmbc_settings_get_string(priv->settings, "statm-reads"), &how);
	if (priv->statm_batch != NULL && vmbc_statm_batch_get_asked(priv->statm_batch) != how)
		g_clear_pointer(&priv->statm_batch, vmbc_statm_batch_free);
	if (priv->statm_batch == NULL)
		priv->statm_batch = vmbc_statm_batch_new(how);
	return priv->statm_batch;
}

gint64
vmbc_backend_now(VmbcBackend *self)
{
	VmbcBackendHost *host = GET_PRIVATE(self)->host;

	return host->iface->now(host);
}

VmbcBeancounter *
vmbc_backend_add_vm(VmbcBackend *self, const gchar *name, gint64 max_pages, gpointer backend_data,
		    GDestroyNotify free_func, GError **error)
{
	VmbcBackendHost *host = GET_PRIVATE(self)->host;

	return host->iface->add_vm(host, self, name, max_pages, backend_data, free_func, error);
}

void
vmbc_backend_apply_policy(VmbcBackend *self, VmbcBeancounter *bc, const VmbcPolicy *policy)
{
	VmbcBackendHost *host = GET_PRIVATE(self)->host;

	if (host->iface->apply_policy != NULL)
		host->iface->apply_policy(host, bc, policy);
}

void
vmbc_backend_remove_vm(VmbcBackend *self, VmbcBeancounter *bc)
{
	VmbcBackendHost *host = GET_PRIVATE(self)->host;

	host->iface->remove_vm(host, bc);
}

gboolean
vmbc_backend_start(VmbcBackend *self, GError **error)
{
	VmbcBackendClass *klass = VMBC_BACKEND_GET_CLASS(self);
	if (klass->start == NULL)
		return TRUE;
	if (!klass->start(self, error)) {
		g_prefix_error(error, "backend %s: ", vmbc_backend_get_name(self));
		return FALSE;
	}
	return TRUE;
}

void
vmbc_backend_stop(VmbcBackend *self)
{
	VmbcBackendClass *klass = VMBC_BACKEND_GET_CLASS(self);
	if (klass->stop != NULL)
		klass->stop(self);
}

gboolean
vmbc_backend_reload(VmbcBackend *self, const VmbcSettings *settings, GError **error)
{
	VmbcBackendClass *klass = VMBC_BACKEND_GET_CLASS(self);

	if (klass->reload != NULL && !klass->reload(self, settings, error))
		return FALSE;
	GET_PRIVATE(self)->settings = settings;
	return TRUE;
}

void
vmbc_backend_sample(VmbcBackend *self, gint64 now)
{
	VmbcBackendClass *klass = VMBC_BACKEND_GET_CLASS(self);
	if (klass->sample != NULL)
		klass->sample(self, now);
}

void
vmbc_backend_sample_vm(VmbcBackend *self, VmbcBeancounter *bc, gint64 now)
{
	VmbcBackendClass *klass = VMBC_BACKEND_GET_CLASS(self);
	if (klass->sample_vm != NULL)
		klass->sample_vm(self, bc, now);
}

gboolean
vmbc_backend_set_balloon(VmbcBackend *self, VmbcBeancounter *bc, gint64 target_pages,
			 GError **error)
{
	VmbcBackendClass *klass;

	g_return_val_if_fail(VMBC_IS_BACKEND(self), FALSE);
	g_return_val_if_fail(bc != NULL, FALSE);
	klass = VMBC_BACKEND_GET_CLASS(self);
	if (klass->set_balloon == NULL) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_NO_BALLOON,
			    "backend %s cannot set balloons", vmbc_backend_get_name(self));
		return FALSE;
	}
	return klass->set_balloon(self, bc, target_pages, error);
}

gboolean
vmbc_backend_escalate(VmbcBackend *self, VmbcBeancounter *bc, VmbcEscalation how, GError **error)
{
	VmbcBackendClass *klass = VMBC_BACKEND_GET_CLASS(self);
	if (klass->escalate == NULL) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED,
			    "backend %s cannot escalate with '%s'", vmbc_backend_get_name(self),
			    vmbc_escalation_to_string(how));
		return FALSE;
	}
	return klass->escalate(self, bc, how, error);
}

void
vmbc_backend_describe(VmbcBackend *self, VmbcBeancounter *bc, JsonBuilder *builder)
{
	VmbcBackendClass *klass = VMBC_BACKEND_GET_CLASS(self);
	if (klass->describe != NULL)
		klass->describe(self, bc, builder);
}

gboolean
vmbc_backend_is_up(VmbcBackend *self)
{
	VmbcBackendClass *klass = VMBC_BACKEND_GET_CLASS(self);
	if (klass->is_up == NULL)
		return TRUE;
	return klass->is_up(self);
}

gboolean
vmbc_backend_first_pass_done(VmbcBackend *self)
{
	VmbcBackendClass *klass = VMBC_BACKEND_GET_CLASS(self);
	if (klass->first_pass_done == NULL)
		return TRUE;
	return klass->first_pass_done(self);
}

gboolean
vmbc_backend_can_persist(VmbcBackend *self)
{
	return VMBC_BACKEND_GET_CLASS(self)->persist != NULL;
}

void
vmbc_backend_persist(VmbcBackend *self, VmbcBeancounter *bc, const VmbcPolicy *policy,
		     GAsyncReadyCallback done, gpointer user_data)
{
	VmbcBackendClass *klass = VMBC_BACKEND_GET_CLASS(self);

	g_return_if_fail(klass->persist != NULL);
	klass->persist(self, bc, policy, done, user_data);
}

gboolean
vmbc_backend_persist_finish(VmbcBackend *self, GAsyncResult *res, GError **error)
{
	VmbcBackendClass *klass = VMBC_BACKEND_GET_CLASS(self);

	g_return_val_if_fail(klass->persist_finish != NULL, FALSE);
	return klass->persist_finish(self, res, error);
}
