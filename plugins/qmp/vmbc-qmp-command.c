/*
 * vmbc-qmp-command.c: the arguments of the qmp backend's QMP commands (see
 * vmbc-qmp-command.h).
 */
#include "vmbc-qmp-command.h"

JsonObject *
vmbc_qmp_args_qom_get(const gchar *path, const gchar *property)
{
	JsonObject *args = json_object_new();

	json_object_set_string_member(args, "path", path);
	json_object_set_string_member(args, "property", property);
	return args;
}

JsonObject *
vmbc_qmp_args_qom_set_int(const gchar *path, const gchar *property, gint64 value)
{
	JsonObject *args = vmbc_qmp_args_qom_get(path, property);

	json_object_set_int_member(args, "value", value);
	return args;
}

JsonObject *
vmbc_qmp_args_qom_list(const gchar *path)
{
	JsonObject *args = json_object_new();

	json_object_set_string_member(args, "path", path);
	return args;
}

JsonObject *
vmbc_qmp_args_balloon(gint64 bytes)
{
	JsonObject *args = json_object_new();

	json_object_set_int_member(args, "value", bytes);
	return args;
}

JsonObject *
vmbc_qmp_args_hmp(const gchar *line)
{
	JsonObject *args = json_object_new();

	json_object_set_string_member(args, "command-line", line);
	return args;
}
