/*
 * vmbc-error.c: the VMBC_ERROR domain and the stable names of its codes, which
 * the control socket sends as the error class so that the CLI can map them back.
 */
#include "vmbc-error.h"

/* clang-format off */
G_DEFINE_QUARK(vmbc-error-quark, vmbc_error)
/* clang-format on */

static const gchar *const error_names[] = {
	[VMBC_ERROR_FAILED] = "failed",
	[VMBC_ERROR_INVALID] = "invalid",
	[VMBC_ERROR_NOT_FOUND] = "not-found",
	[VMBC_ERROR_PERMISSION] = "permission",
	[VMBC_ERROR_GUARANTEE] = "guarantee",
	[VMBC_ERROR_NO_BALLOON] = "no-balloon",
	[VMBC_ERROR_NO_PROGRESS] = "no-progress",
	[VMBC_ERROR_VANISHED] = "vanished",
	[VMBC_ERROR_BUSY] = "busy",
	[VMBC_ERROR_STALLED] = "stalled",
};

const gchar *
vmbc_error_to_string(VmbcError code)
{
	if ((guint)code >= G_N_ELEMENTS(error_names))
		return "failed";
	return error_names[code];
}

VmbcError
vmbc_error_from_string(const gchar *name)
{
	if (name == NULL)
		return VMBC_ERROR_FAILED;
	for (guint i = 0; i < G_N_ELEMENTS(error_names); i++) {
		if (g_strcmp0(error_names[i], name) == 0)
			return (VmbcError)i;
	}
	return VMBC_ERROR_FAILED;
}
