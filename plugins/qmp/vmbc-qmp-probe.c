/*
 * vmbc-qmp-probe.c: what the qmp backend asks a new connection before it
 * adopts the VM: name, RAM size, balloon device, stats polling, free page
 * reporting, balloon actual, one reply after the other. Adoption
 * (vmbc_backend_add_vm) never touches the balloon, so a daemon restart
 * changes nothing in a guest.
 */
#include <string.h>

#include "vmbc-qmp-command.h"
#include "vmbc-qmp-private.h"
#include "vmbc-qmp-reply.h"

#define PERIPHERAL	"/machine/peripheral"
#define PERIPHERAL_ANON "/machine/peripheral-anon"

static void vm_probe_query_balloon(VmbcQmpVm *vm);
static void vm_on_probe_list(GObject *source, GAsyncResult *res, gpointer user_data);

static void
vm_adopt(VmbcQmpVm *vm)
{
	VmbcBackend *backend = VMBC_BACKEND(vm->backend);
	gint64 max_pages = vmbc_qmp_bytes_to_pages((gint64)vm->max_bytes);
	g_autoptr(GError) error = NULL;
	VmbcBeancounter *bc;

	bc = vmbc_backend_add_vm(backend, vm->name, max_pages, vmbc_qmp_vm_ref(vm),
				 vmbc_qmp_vm_detach_bc, &error);
	if (bc == NULL) {
		/* a socket named like another VM's (two ".../qmp.sock"): try DIR-NAME */
		g_autofree gchar *dir = g_path_get_dirname(vm->socket_path);
		g_autofree gchar *dir_base = g_path_get_basename(dir);
		g_autofree gchar *alt = g_strdup_printf("%s-%s", dir_base, vm->name);

		g_clear_error(&error);
		bc = vmbc_backend_add_vm(backend, alt, max_pages, vmbc_qmp_vm_ref(vm),
					 vmbc_qmp_vm_detach_bc, &error);
		if (bc == NULL) {
			g_autofree gchar *msg =
				g_strdup_printf("cannot add the VM: %s", error->message);
			vmbc_qmp_vm_fail(vm, msg);
			return;
		}
		g_info("VM name '%s' taken: socket %s is VM '%s'", vm->name, vm->socket_path, alt);
		g_free(vm->name);
		vm->name = g_steal_pointer(&alt);
	}
	vm->bc = bc;
	vm->state = VM_ADOPTED;
	g_clear_pointer(&vm->last_warning, g_free);
	bc->free_page_reporting = vm->fpr;
	vm->sampler = vmbc_proc_sampler_new(vm->pid, vm->ram_bytes);
	vmbc_proc_sampler_set_smaps_interval(vm->sampler, vm->backend->smaps_usec);
	if (vm->ram_ranges != NULL && vm->ram_ranges->len > 0)
		vmbc_proc_sampler_set_ranges(vm->sampler,
					     (const VmbcRamRange *)(gpointer)vm->ram_ranges->data,
					     vm->ram_ranges->len);
	vm->next_stats = 0;
	vmbc_qmp_vm_vmem_adopt(vm);

	/* what the balloon is now, as it is: adoption never changes it */
	if (vm->balloon_error != NULL)
		vmbc_engine_balloon_failed(vmbc_qmp_vm_engine(vm), bc, VMBC_BALLOON_NO_DEVICE,
					   vm->balloon_error, vmbc_qmp_vm_now(vm));
	else if (vm->actual >= 0)
		vmbc_qmp_vm_balloon_actual(vm, vm->actual);
	if (vm->balloon_path != NULL && vm->fpr == 0)
		g_warning("VM '%s': free page reporting is off: pages its guest frees stay "
			  "charged (add free-page-reporting=on to %s)",
			  vm->name, vm->balloon_path);
	g_info("VM '%s' adopted: pid %d, %s, %" G_GUINT64_FORMAT " MiB, balloon %s, "
	       "%u RAM backends, %u virtio-mem",
	       vm->name, (int)vm->pid, vm->socket_path, vm->max_bytes >> 20,
	       vm->balloon_path != NULL ? vm->balloon_path : "none",
	       vm->ram_ranges != NULL ? vm->ram_ranges->len : 0,
	       vm->vmems != NULL ? vm->vmems->len : 0);
}

static void
vm_on_probe_query_balloon(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	if (!vmbc_qmp_vm_reply(vm, source, res, NULL, &ret, &error))
		return;
	g_clear_error(&vm->balloon_error);
	if (g_error_matches(error, QMP_ERROR, QMP_ERROR_DEVICE_NOT_ACTIVE)) {
		vm->balloon_error = g_steal_pointer(&error);
	} else if (error != NULL) {
		g_warning("VM '%s': query-balloon failed: %s", vm->name, error->message);
	} else {
		gint64 actual = vmbc_qmp_reply_balloon_actual(vmbc_qmp_reply_object(ret));

		if (actual >= 0)
			vm->actual = actual;
	}
	vm_adopt(vm);
}

static void
vm_probe_query_balloon(VmbcQmpVm *vm)
{
	vmbc_qmp_vm_execute(vm, "query-balloon", NULL, vm_on_probe_query_balloon);
}

static void
vm_on_probe_fpr(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	if (!vmbc_qmp_vm_reply(vm, source, res, NULL, &ret, &error))
		return;
	if (error == NULL && JSON_NODE_HOLDS_VALUE(ret) &&
	    json_node_get_value_type(ret) == G_TYPE_BOOLEAN)
		vm->fpr = json_node_get_boolean(ret) ? 1 : 0;
	else
		g_debug("VM '%s': free-page-reporting unknown: %s", vm->name,
			error != NULL ? error->message : "not a boolean");
	vm_probe_query_balloon(vm);
}

static void
vm_on_probe_stats_interval(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	g_autoptr(JsonObject) args = NULL;

	if (!vmbc_qmp_vm_reply(vm, source, res, NULL, &ret, &error))
		return;
	if (error != NULL)
		g_warning("VM '%s': cannot set guest-stats-polling-interval on %s: %s", vm->name,
			  vm->balloon_path, error->message);
	args = vmbc_qmp_args_qom_get(vm->balloon_path, "free-page-reporting");
	vmbc_qmp_vm_execute(vm, "qom-get", args, vm_on_probe_fpr);
}

static void
vm_probe_balloon_setup(VmbcQmpVm *vm)
{
	vm_send_stats_interval(vm, vm->backend->stats_sec, vm_on_probe_stats_interval);
}

/* The balloon device, or none: then query-balloon tells DeviceNotActive. */
static void
vm_probe_found_balloon(VmbcQmpVm *vm, const gchar *path)
{
	g_free(vm->balloon_path);
	vm->balloon_path = g_strdup(path);
	if (path != NULL)
		vm_probe_balloon_setup(vm);
	else
		vm_probe_query_balloon(vm);
}

static void
vm_on_probe_type(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	const gchar *type = NULL;

	if (!vmbc_qmp_vm_reply(vm, source, res, NULL, &ret, &error))
		return;
	if (error == NULL && JSON_NODE_HOLDS_VALUE(ret) &&
	    json_node_get_value_type(ret) == G_TYPE_STRING)
		type = json_node_get_string(ret);
	vm_probe_found_balloon(vm, type != NULL && g_str_has_prefix(type, "virtio-balloon")
					   ? PERIPHERAL "/balloon0"
					   : NULL);
}

static void
vm_probe_list(VmbcQmpVm *vm, gboolean anon)
{
	g_autoptr(JsonObject) args = vmbc_qmp_args_qom_list(anon ? PERIPHERAL_ANON : PERIPHERAL);

	vm->list_anon = anon;
	vmbc_qmp_vm_execute(vm, "qom-list", args, vm_on_probe_list);
}

static void
vm_on_probe_list(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	g_autofree gchar *path = NULL;

	if (!vmbc_qmp_vm_reply(vm, source, res, NULL, &ret, &error))
		return;
	if (g_error_matches(error, QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND)) {
		/* no qom-list: try the usual id */
		g_autoptr(JsonObject) args = vmbc_qmp_args_qom_get(PERIPHERAL "/balloon0", "type");
		vmbc_qmp_vm_execute(vm, "qom-get", args, vm_on_probe_type);
		return;
	}
	if (error == NULL)
		path = vmbc_qmp_reply_balloon_child(ret,
						    vm->list_anon ? PERIPHERAL_ANON : PERIPHERAL);
	if (path == NULL && !vm->list_anon) {
		vm_probe_list(vm, TRUE);
		return;
	}
	vm_probe_found_balloon(vm, path);
}

static void
vm_probe_list_devices(VmbcQmpVm *vm)
{
	vm_probe_list(vm, FALSE);
}

static void
vm_on_probe_memory(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	gint64 base = -1;
	gint64 plugged = 0;

	if (!vmbc_qmp_vm_reply(vm, source, res, NULL, &ret, &error))
		return;
	if (error != NULL) {
		g_autofree gchar *msg = g_strdup(error->message);
		vmbc_qmp_vm_fail(vm, msg);
		return;
	}
	if (!vmbc_qmp_reply_int(vmbc_qmp_reply_object(ret), "base-memory", &base) || base <= 0) {
		vmbc_qmp_vm_fail(vm, "query-memory-size-summary has no valid base-memory");
		return;
	}
	if (!vmbc_qmp_reply_int(vmbc_qmp_reply_object(ret), "plugged-memory", &plugged) ||
	    plugged < 0)
		plugged = 0;
	vm->ram_bytes = (guint64)base;
	vm->max_bytes = (guint64)base + (guint64)plugged;
	vmbc_qmp_vm_probe_ram(vm, vm_probe_list_devices);
}

/* "/run/vms/web1.qmp" -> "web1" */
static gchar *
name_from_socket(const gchar *path)
{
	gchar *base = g_path_get_basename(path);
	gchar *dot = strrchr(base, '.');

	if (dot != NULL && dot != base)
		*dot = '\0';
	return base;
}

static void
vm_on_probe_name(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	const gchar *name;

	if (!vmbc_qmp_vm_reply(vm, source, res, NULL, &ret, &error))
		return;
	name = vmbc_qmp_reply_str(vmbc_qmp_reply_object(ret), "name");
	g_free(vm->name);
	/* no -name: {} */
	vm->name = name != NULL && *name != '\0' && g_utf8_validate(name, -1, NULL)
			   ? g_strdup(name)
			   : name_from_socket(vm->socket_path);
	vmbc_qmp_vm_execute(vm, "query-memory-size-summary", NULL, vm_on_probe_memory);
}

/* Starts probing a VM just connected: its name first. */
void
vmbc_qmp_vm_probe(VmbcQmpVm *vm)
{
	vmbc_qmp_vm_execute(vm, "query-name", NULL, vm_on_probe_name);
}
