/*
 * qmp-error.c: the QMP_ERROR domain and the mapping between QMP error
 * classes and codes.
 */
#include "qmp-error.h"

GQuark
qmp_error_quark(void)
{
	return g_quark_from_static_string("qmp-error-quark");
}

static const struct {
	QmpError code;
	const gchar *klass;
} qmp_error_classes[] = {
	{QMP_ERROR_GENERIC_ERROR, "GenericError"},
	{QMP_ERROR_COMMAND_NOT_FOUND, "CommandNotFound"},
	{QMP_ERROR_DEVICE_NOT_ACTIVE, "DeviceNotActive"},
	{QMP_ERROR_DEVICE_NOT_FOUND, "DeviceNotFound"},
	{QMP_ERROR_KVM_MISSING_CAP, "KVMMissingCap"},
};

QmpError
qmp_error_from_class(const gchar *klass)
{
	if (klass == NULL)
		return QMP_ERROR_GENERIC_ERROR;
	for (gsize i = 0; i < G_N_ELEMENTS(qmp_error_classes); i++) {
		if (g_strcmp0(qmp_error_classes[i].klass, klass) == 0)
			return qmp_error_classes[i].code;
	}
	return QMP_ERROR_GENERIC_ERROR;
}

const gchar *
qmp_error_to_class(QmpError code)
{
	for (gsize i = 0; i < G_N_ELEMENTS(qmp_error_classes); i++) {
		if (qmp_error_classes[i].code == code)
			return qmp_error_classes[i].klass;
	}
	return "GenericError";
}
