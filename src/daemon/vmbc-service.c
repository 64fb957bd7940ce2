/*
 * vmbc-service.c: the daemon with its control socket and metrics endpoint
 * (see vmbc-service.h).
 */
#include "vmbc-service.h"
#include "vmbc-control.h"
#ifdef VMBC_HAVE_METRICS
#include "vmbc-metrics.h"
#endif

struct _VmbcService {
	VmbcDaemon *daemon;
	VmbcControl *control;
#ifdef VMBC_HAVE_METRICS
	VmbcMetrics *metrics;
#endif
};

VmbcService *
vmbc_service_new(VmbcConfig *config)
{
	VmbcService *self = g_new0(VmbcService, 1);

	self->daemon = vmbc_daemon_new(config);
	return self;
}

void
vmbc_service_free(VmbcService *self)
{
	if (self == NULL)
		return;
	/* the daemon saves its state on the way out; the two in front of it go first */
	vmbc_daemon_stop(self->daemon);
	g_clear_pointer(&self->control, vmbc_control_free);
#ifdef VMBC_HAVE_METRICS
	g_clear_pointer(&self->metrics, vmbc_metrics_free);
#endif
	vmbc_daemon_free(self->daemon);
	g_free(self);
}

gboolean
vmbc_service_start(VmbcService *self, GError **error)
{
	const VmbcConfig *config = vmbc_daemon_get_config(self->daemon);

	self->control = vmbc_control_new(self->daemon);
	if (!vmbc_control_listen(self->control, config->control_socket, error))
		return FALSE;
#ifdef VMBC_HAVE_METRICS
	if (config->metrics_listen != NULL && *config->metrics_listen != '\0' &&
	    g_strcmp0(config->metrics_listen, "off") != 0) {
		self->metrics = vmbc_metrics_new(self->daemon);
		if (!vmbc_metrics_listen(self->metrics, config->metrics_listen, error))
			return FALSE;
	}
#endif
	return vmbc_daemon_start(self->daemon, error);
}

gboolean
vmbc_service_reload(VmbcService *self, GError **error)
{
	return vmbc_daemon_reload(self->daemon, error);
}

VmbcDaemon *
vmbc_service_get_daemon(VmbcService *self)
{
	return self->daemon;
}
