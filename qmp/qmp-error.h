/*
 * qmp-error.h: the QMP_ERROR domain.
 *
 * The first codes map one to one to the error classes QEMU sends in
 * {"error": {"class": ..., "desc": ...}}; the rest are what can go wrong on
 * the wire before a reply exists at all.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define QMP_ERROR (qmp_error_quark())

typedef enum {
	QMP_ERROR_GENERIC_ERROR,     /* "GenericError" and any class we do not know */
	QMP_ERROR_COMMAND_NOT_FOUND, /* "CommandNotFound" */
	QMP_ERROR_DEVICE_NOT_ACTIVE, /* "DeviceNotActive": e.g. no balloon driver */
	QMP_ERROR_DEVICE_NOT_FOUND,  /* "DeviceNotFound" */
	QMP_ERROR_KVM_MISSING_CAP,   /* "KVMMissingCap" */
	QMP_ERROR_PROTOCOL,	     /* malformed JSON, missing fields, wrong types */
	QMP_ERROR_TOO_LARGE,	     /* a message over the size bound */
	QMP_ERROR_DISCONNECTED,	     /* the peer went away with the command pending */
	QMP_ERROR_TIMEOUT,	     /* no reply within the timeout */
	QMP_ERROR_CANCELLED,	     /* reserved; cancellation uses G_IO_ERROR_CANCELLED */
} QmpError;

GQuark qmp_error_quark(void);

/* Maps a QMP error class string to a code; unknown classes are GENERIC_ERROR. */
QmpError qmp_error_from_class(const gchar *klass);

/* The class string QEMU uses for @code; protocol-level codes map to "GenericError". */
const gchar *qmp_error_to_class(QmpError code);

G_END_DECLS
