/*
 * vmbc-error.h: the VMBC_ERROR domain used by the core, the daemon and the CLI.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define VMBC_ERROR (vmbc_error_quark())

typedef enum {
	VMBC_ERROR_FAILED,	/* anything else */
	VMBC_ERROR_INVALID,	/* bad input: a size, a config value, an argument */
	VMBC_ERROR_NOT_FOUND,	/* no such VM or resource */
	VMBC_ERROR_PERMISSION,	/* the peer may not change anything */
	VMBC_ERROR_GUARANTEE,	/* the guarantee (vmguarpages barrier) blocked a reclaim */
	VMBC_ERROR_NO_BALLOON,	/* no balloon device or driver to reclaim with */
	VMBC_ERROR_NO_PROGRESS, /* the reclaim made no progress within reclaim_timeout */
	VMBC_ERROR_VANISHED,	/* the VM went away while something was pending */
	VMBC_ERROR_BUSY,	/* superseded by a newer request */
	VMBC_ERROR_STALLED,	/* the balloon moved slower than balloon-stall-rate */
} VmbcError;

GQuark vmbc_error_quark(void);

/* The stable name of @code for JSON replies ("guarantee", "no-balloon", ...). */
const gchar *vmbc_error_to_string(VmbcError code);

/* Inverse of vmbc_error_to_string(); unknown names map to VMBC_ERROR_FAILED. */
VmbcError vmbc_error_from_string(const gchar *name);

G_END_DECLS
