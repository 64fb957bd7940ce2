/*
 * vmbc-qmp-vm.c: one QEMU of the qmp backend (see vmbc-qmp-private.h): its
 * record, its connection and what ends it.
 *
 * A VM is connected, then probed (vmbc-qmp-probe.c) and adopted. Any wire
 * failure (QEMU died, garbage, an oversized message, no reply in time) drops
 * that VM alone with a warning naming it; the socket is tried again on the
 * next rescan (vmbc-qmp-discovery.c).
 */
#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#include "vmbc-qmp-private.h"
#include "vmbc-qmp-reply.h"

VmbcQmpVm *
vmbc_qmp_vm_new(VmbcQmpBackend *backend, const gchar *path)
{
	VmbcQmpVm *vm = g_rc_box_new0(VmbcQmpVm);

	vm->backend = backend;
	vm->socket_path = g_strdup(path);
	vm->state = VM_NEW;
	vm->pid = -1;
	vm->fpr = -1;
	vm->actual = -1;
	return vm;
}

/* What a record holds, let go of with its last reference. */
static void
vm_clear(VmbcQmpVm *vm)
{
	vmbc_qmp_vm_forget_client(vm);
	g_clear_pointer(&vm->sampler, vmbc_proc_sampler_free);
	g_clear_error(&vm->balloon_error);
	g_free(vm->socket_path);
	g_free(vm->last_warning);
	g_free(vm->name);
	g_free(vm->balloon_path);
	g_clear_pointer(&vm->ram_ranges, g_array_unref);
	g_clear_pointer(&vm->vmems, g_ptr_array_unref);
	g_clear_pointer(&vm->ram_memdevs, g_ptr_array_unref);
	g_free(vm->ram_mtree);
}

VmbcQmpVm *
vmbc_qmp_vm_ref(VmbcQmpVm *vm)
{
	return g_rc_box_acquire(vm);
}

void
vmbc_qmp_vm_unref(VmbcQmpVm *vm)
{
	g_rc_box_release_full(vm, (GDestroyNotify)vm_clear);
}

void
vmbc_qmp_vm_forget_client(VmbcQmpVm *vm)
{
	if (vm->client == NULL)
		return;
	g_clear_signal_handler(&vm->event_handler, vm->client);
	g_clear_signal_handler(&vm->disconnected_handler, vm->client);
	qmp_client_close(vm->client);
	g_clear_object(&vm->client);
}

/* The backend_data free function: the daemon dropped the beancounter. */
void
vmbc_qmp_vm_detach_bc(gpointer data)
{
	VmbcQmpVm *vm = data;

	vm->bc = NULL;
	vmbc_qmp_vm_unref(vm);
}

/* The name for messages: the VM's once known, else its socket. */
const gchar *
vmbc_qmp_vm_label(VmbcQmpVm *vm)
{
	return vm->name != NULL ? vm->name : vm->socket_path;
}

/* A reply belongs to the VM's current connection and the backend still wants it. */
static gboolean
vm_is_current(VmbcQmpVm *vm, GObject *source)
{
	return vm->backend != NULL && vm->client != NULL && (GObject *)vm->client == source &&
	       (vm->state == VM_PROBING || vm->state == VM_ADOPTED);
}

/* Errors of the connection itself, after which the VM is dropped. */
static gboolean
is_wire_error(const GError *error)
{
	if (error->domain != QMP_ERROR)
		return TRUE;
	return error->code == QMP_ERROR_PROTOCOL || error->code == QMP_ERROR_TOO_LARGE ||
	       error->code == QMP_ERROR_DISCONNECTED || error->code == QMP_ERROR_TIMEOUT ||
	       error->code == QMP_ERROR_CANCELLED;
}

/* Closes the connection, drops the VM from the daemon; a rescan may connect again. */
void
vmbc_qmp_vm_drop(VmbcQmpVm *vm)
{
	g_autoptr(VmbcQmpVm) keep = vmbc_qmp_vm_ref(vm);

	vm->state = VM_FAILED;
	vmbc_qmp_vm_forget_client(vm);
	g_clear_pointer(&vm->sampler, vmbc_proc_sampler_free);
	vm->sample_failed = FALSE;
	vm->stats_busy = FALSE;
	vm->query_busy = FALSE;
	if (vm->bc != NULL && vm->backend != NULL)
		vmbc_backend_remove_vm(VMBC_BACKEND(vm->backend), vm->bc);
}

/* A failure that drops the VM: warned about once per distinct reason. */
void
vmbc_qmp_vm_fail(VmbcQmpVm *vm, const gchar *reason)
{
	if (g_strcmp0(vm->last_warning, reason) != 0) {
		g_warning("VM '%s' (%s) dropped: %s; trying again on the next rescan",
			  vmbc_qmp_vm_label(vm), vm->socket_path, reason);
		g_free(vm->last_warning);
		vm->last_warning = g_strdup(reason);
	} else {
		g_debug("VM '%s' (%s) dropped again: %s", vmbc_qmp_vm_label(vm), vm->socket_path,
			reason);
	}
	vmbc_qmp_vm_drop(vm);
}

void
vmbc_qmp_vm_execute(VmbcQmpVm *vm, const gchar *command, JsonObject *args,
		    GAsyncReadyCallback callback)
{
	qmp_client_execute_async(vm->client, command, args, NULL, callback, vmbc_qmp_vm_ref(vm));
}

VmbcEngine *
vmbc_qmp_vm_engine(VmbcQmpVm *vm)
{
	return vmbc_backend_get_engine(VMBC_BACKEND(vm->backend));
}

gint64
vmbc_qmp_vm_now(VmbcQmpVm *vm)
{
	return vmbc_backend_now(VMBC_BACKEND(vm->backend));
}

void
vmbc_qmp_vm_balloon_actual(VmbcQmpVm *vm, gint64 actual)
{
	vm->actual = actual;
	if (vm->bc == NULL)
		return;
	vmbc_engine_balloon_actual(vmbc_qmp_vm_engine(vm), vm->bc,
				   actual + (vm->bc->has_vmem ? vm->bc->vmem.size : 0),
				   vmbc_qmp_vm_now(vm));
}

static void
vm_on_event(QmpClient *client, const gchar *name, JsonObject *data, gint64 timestamp,
	    gpointer user_data)
{
	VmbcQmpVm *vm = user_data;
	gint64 actual;

	if (!vm_is_current(vm, G_OBJECT(client)) || vm->state != VM_ADOPTED || vm->bc == NULL)
		return;
	if (g_strcmp0(name, "BALLOON_CHANGE") == 0) {
		actual = vmbc_qmp_reply_balloon_actual(data);
		if (actual < 0) {
			g_debug("VM '%s': BALLOON_CHANGE without a valid actual", vm->name);
			return;
		}
		vmbc_qmp_vm_balloon_actual(vm, actual);
	} else if (g_strcmp0(name, "SHUTDOWN") == 0) {
		g_info("VM '%s' is shutting down", vm->name);
	}
}

static void
vm_on_disconnected(QmpClient *client, const GError *reason, gpointer user_data)
{
	VmbcQmpVm *vm = user_data;
	g_autofree gchar *msg = NULL;

	if (!vm_is_current(vm, G_OBJECT(client)))
		return;
	msg = g_strdup_printf("QMP connection lost: %s",
			      reason != NULL ? reason->message : "no reason given");
	vmbc_qmp_vm_fail(vm, msg);
}

/* Called from reply callbacks: a wire error drops the VM; TRUE if it did. */
static gboolean
vm_check_wire(VmbcQmpVm *vm, const GError *error)
{
	g_autofree gchar *msg = NULL;

	if (error == NULL || !is_wire_error(error))
		return FALSE;
	msg = g_strdup(error->message);
	vmbc_qmp_vm_fail(vm, msg);
	return TRUE;
}

/*
 * The opening of every reply callback: finishes the call on @source, clears
 * @busy (if not NULL) when the reply belongs to the VM's current connection,
 * and drops the VM on a wire error. Returns TRUE when the callback should go
 * on, with the reply in @ret or the command's own error (QEMU said no) in
 * @cmd_error; FALSE when the reply no longer matters or the VM was dropped.
 */
gboolean
vmbc_qmp_vm_reply(VmbcQmpVm *vm, GObject *source, GAsyncResult *res, gboolean *busy, JsonNode **ret,
		  GError **cmd_error)
{
	*ret = qmp_client_execute_finish(QMP_CLIENT(source), res, cmd_error);
	if (!vm_is_current(vm, source))
		return FALSE;
	if (busy != NULL)
		*busy = FALSE;
	return !vm_check_wire(vm, *cmd_error);
}

static void
vm_on_connected(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	gboolean ok = qmp_client_connect_finish(QMP_CLIENT(source), res, &error);

	if (vm->backend == NULL || vm->client == NULL || (GObject *)vm->client != source ||
	    vm->state != VM_CONNECTING)
		return;
	if (!ok) {
		g_autofree gchar *msg = g_strdup(error->message);
		static gboolean warned_nofile;

		/* every VM needs two descriptors: say once what to raise */
		if (!warned_nofile && strstr(msg, g_strerror(EMFILE)) != NULL) {
			struct rlimit rl = {0};

			(void)getrlimit(RLIMIT_NOFILE, &rl);
			g_warning("vmbcd is out of file descriptors (limit %llu, two a VM): raise "
				  "LimitNOFILE in its unit, or the hard limit it starts with",
				  (unsigned long long)rl.rlim_cur);
			warned_nofile = TRUE;
		}
		vmbc_qmp_vm_fail(vm, msg);
		return;
	}
	vm->pid = qmp_client_get_peer_pid(vm->client);
	if (vm->pid <= 0) {
		vmbc_qmp_vm_fail(vm,
				 "cannot tell which process serves the socket (no SO_PEERCRED)");
		return;
	}
	vm->state = VM_PROBING;
	vm->event_handler = g_signal_connect(vm->client, "event", G_CALLBACK(vm_on_event), vm);
	vm->disconnected_handler =
		g_signal_connect(vm->client, "disconnected", G_CALLBACK(vm_on_disconnected), vm);
	vm->connected(vm);
}

void
vmbc_qmp_vm_connect(VmbcQmpVm *vm, VmbcQmpVmConnectedFunc connected)
{
	vm->connected = connected;
	vmbc_qmp_vm_forget_client(vm);
	g_clear_pointer(&vm->name, g_free);
	g_clear_pointer(&vm->balloon_path, g_free);
	g_clear_error(&vm->balloon_error);
	vm->pid = -1;
	vm->fpr = -1;
	vm->actual = -1;
	vm->state = VM_CONNECTING;
	vm->client = qmp_client_new();
	qmp_client_set_timeout(vm->client, VMBC_QMP_BACKEND_COMMAND_TIMEOUT_MS);
	qmp_client_connect_async(vm->client, vm->socket_path, NULL, vm_on_connected,
				 vmbc_qmp_vm_ref(vm));
}
