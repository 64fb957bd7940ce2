/*
 * vmbc-qmp-command.h: the arguments of the QMP commands the qmp backend
 * sends, built apart from the callbacks that send them (the id is added by
 * QmpClient when sent). Each returns a new object.
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* qom-get: {"path": @path, "property": @property} */
JsonObject *vmbc_qmp_args_qom_get(const gchar *path, const gchar *property);

/* qom-set of an integer: {"path": @path, "property": @property, "value": @value} */
JsonObject *vmbc_qmp_args_qom_set_int(const gchar *path, const gchar *property, gint64 value);

/* qom-list: {"path": @path} */
JsonObject *vmbc_qmp_args_qom_list(const gchar *path);

/* balloon: {"value": @bytes}, the guest's logical size */
JsonObject *vmbc_qmp_args_balloon(gint64 bytes);

/* human-monitor-command: {"command-line": @line} */
JsonObject *vmbc_qmp_args_hmp(const gchar *line);

G_END_DECLS
