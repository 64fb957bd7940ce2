/*
 * qmp-message.h: parsing one framed QMP message (private to libvmbc-qmp and
 * its tests and fuzz target).
 *
 * This is the routing layer between the framer and the client/server APIs:
 * it turns the text of one message into a typed view, checking the type of
 * every member it reads, and knows nothing about sockets or pending calls.
 */
#pragma once

#include <json-glib/json-glib.h>

#include "qmp-error.h"

G_BEGIN_DECLS

/* What a server sends to a client. */
typedef enum {
	QMP_MESSAGE_GREETING, /* {"QMP": {...}} */
	QMP_MESSAGE_RETURN,   /* {"return": any, "id": any} */
	QMP_MESSAGE_ERROR,    /* {"error": {"class": str, "desc": str}, "id": any} */
	QMP_MESSAGE_EVENT,    /* {"event": str, "data": {...}, "timestamp": {...}} */
} QmpMessageKind;

typedef struct {
	QmpMessageKind kind;
	JsonNode *root;		  /* owns everything below */
	JsonNode *id;		  /* RETURN, ERROR: the "id" member or NULL */
	JsonObject *greeting;	  /* GREETING: the "QMP" object */
	JsonNode *ret;		  /* RETURN: the "return" member */
	const gchar *error_class; /* ERROR */
	const gchar *error_desc;  /* ERROR */
	const gchar *event;	  /* EVENT: its name */
	JsonObject *event_data;	  /* EVENT: "data", or NULL when absent */
	gint64 timestamp_usec;	  /* EVENT: from "timestamp", -1 if absent or unknown */
} QmpMessage;

/*
 * Parses the text of one message as a server sends it. On error (not UTF-8,
 * not JSON, not an object, none of the four kinds, a member of the wrong
 * type) NULL is returned with QMP_ERROR_PROTOCOL.
 */
QmpMessage *qmp_message_parse(const gchar *text, gsize len, GError **error);
void qmp_message_free(QmpMessage *msg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QmpMessage, qmp_message_free)

/* What a client sends to a server. */
typedef struct {
	JsonNode *root;	       /* owns everything below; NULL if the text was not JSON */
	JsonNode *id;	       /* the "id" member (any JSON value) or NULL */
	const gchar *execute;  /* the command name */
	JsonObject *arguments; /* "arguments", or NULL when absent */
} QmpCommand;

/*
 * Parses the text of one command. On error FALSE is returned with
 * QMP_ERROR_GENERIC_ERROR and a desc as QEMU words it; @cmd->id is still set
 * when the message was an object with an "id", so the error reply can carry
 * it. Clear @cmd with qmp_command_clear() either way.
 */
gboolean qmp_command_parse(const gchar *text, gsize len, QmpCommand *cmd, GError **error);
void qmp_command_clear(QmpCommand *cmd);

/* The "timestamp" object QEMU puts on events, for @usec since the epoch. */
JsonObject *qmp_message_timestamp_new(gint64 usec);

G_END_DECLS
