/*
 * vmbc-qmp-backend.c: the "qmp" backend (see vmbc-qmp-backend.h).
 *
 * Each socket found by the globs gets a VmbcQmpVm: connect, probe (name,
 * RAM size, balloon device, stats polling, free page reporting, balloon
 * actual), adopt (vmbc_backend_add_vm), then sample every tick. Adoption
 * never touches the balloon, so a daemon restart changes nothing in a guest.
 * Any wire failure (QEMU died, garbage, an oversized message, no reply in
 * time) drops that VM alone with a warning naming it; the socket is tried
 * again on the next rescan.
 */
#include <errno.h>
#include <glob.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qmp-client.h"
#include "vmbc-cgroup.h"
#include "vmbc-procfs.h"
#include "vmbc-qmp-backend.h"
#include "vmbc-size.h"

#define DEFAULT_RESCAN_USEC (2 * G_USEC_PER_SEC)
/* A balloon within this many pages of its target has arrived; events are enough then. */
#define BALLOON_SETTLED_PAGES 256
/*
 * Guest stats are read every stats interval while the engine's policies use
 * them (vmbc_engine_wants_stats()), this many times less often otherwise.
 */
#define STATS_IDLE_FACTOR    30
#define PERIPHERAL	     "/machine/peripheral"
#define PERIPHERAL_ANON	     "/machine/peripheral-anon"
#define BALLOON_CHILD_PREFIX "child<virtio-balloon-"

typedef enum {
	VM_NEW,
	VM_CONNECTING,
	VM_PROBING,
	VM_ADOPTED,
	VM_FAILED, /* retried on the next rescan */
} VmState;

typedef struct {
	gint ref_count;
	VmbcQmpBackend *backend; /* borrowed; NULL once the backend let go of this VM */
	gchar *socket_path;
	dev_t sock_dev;
	ino_t sock_ino;
	VmState state;
	QmpClient *client; /* the current connection; replies from older ones are dropped */
	gulong event_handler;
	gulong disconnected_handler;
	gchar *last_warning; /* the same failure is warned about once */

	/* what the probe found */
	gchar *name;
	pid_t pid;
	guint64 ram_bytes;     /* base-memory: the size of the guest-RAM mapping */
	guint64 max_bytes;     /* base-memory + plugged-memory */
	gboolean list_anon;    /* the qom-list in flight is of peripheral-anon */
	gchar *balloon_path;   /* NULL: no balloon device found */
	gint fpr;	       /* free page reporting: -1 unknown, 0 off, 1 on */
	gint64 actual;	       /* pages, -1 unknown */
	GError *balloon_error; /* query-balloon's DeviceNotActive */

	/* once adopted */
	VmbcBeancounter *bc; /* borrowed: the daemon owns it and tells us when it goes */
	VmbcProcSampler *sampler;
	gboolean stats_busy;
	gboolean query_busy;
	gint64 next_stats;
	gboolean sample_failed;
} VmbcQmpVm;

struct _VmbcQmpBackend {
	VmbcBackend parent_instance;
	GHashTable *vms; /* socket path -> VmbcQmpVm (a reference) */
	gchar **globs;
	gint64 rescan_usec;
	gint64 smaps_usec;
	guint stats_sec;
	gchar *cgroup_root; /* where cgroupfs is mounted (vmbc.conf cgroup-root) */
	guint rescan_id;
	gboolean started;
	gboolean up; /* the last rescan could read every directory the globs name */
};

G_DEFINE_TYPE(VmbcQmpBackend, vmbc_qmp_backend, VMBC_TYPE_BACKEND)

static void vm_probe_balloon_setup(VmbcQmpVm *vm);
static void vm_probe_query_balloon(VmbcQmpVm *vm);

/* --- the per-VM record ---------------------------------------------------- */

static VmbcQmpVm *
vm_new(VmbcQmpBackend *backend, const gchar *path)
{
	VmbcQmpVm *vm = g_new0(VmbcQmpVm, 1);

	vm->ref_count = 1;
	vm->backend = backend;
	vm->socket_path = g_strdup(path);
	vm->state = VM_NEW;
	vm->pid = -1;
	vm->fpr = -1;
	vm->actual = -1;
	return vm;
}

static VmbcQmpVm *
vm_ref(VmbcQmpVm *vm)
{
	vm->ref_count++;
	return vm;
}

static void
vm_forget_client(VmbcQmpVm *vm)
{
	if (vm->client == NULL)
		return;
	g_clear_signal_handler(&vm->event_handler, vm->client);
	g_clear_signal_handler(&vm->disconnected_handler, vm->client);
	qmp_client_close(vm->client);
	g_clear_object(&vm->client);
}

static void
vm_unref(VmbcQmpVm *vm)
{
	g_assert(vm->ref_count > 0);
	if (--vm->ref_count > 0)
		return;
	vm_forget_client(vm);
	g_clear_pointer(&vm->sampler, vmbc_proc_sampler_free);
	g_clear_error(&vm->balloon_error);
	g_free(vm->socket_path);
	g_free(vm->last_warning);
	g_free(vm->name);
	g_free(vm->balloon_path);
	g_free(vm);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbcQmpVm, vm_unref)

/* The backend_data free function: the daemon dropped the beancounter. */
static void
vm_detach_bc(gpointer data)
{
	VmbcQmpVm *vm = data;

	vm->bc = NULL;
	vm_unref(vm);
}

/* The name for messages: the VM's once known, else its socket. */
static const gchar *
vm_label(VmbcQmpVm *vm)
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
static void
vm_drop(VmbcQmpVm *vm)
{
	g_autoptr(VmbcQmpVm) keep = vm_ref(vm);

	vm->state = VM_FAILED;
	vm_forget_client(vm);
	g_clear_pointer(&vm->sampler, vmbc_proc_sampler_free);
	vm->stats_busy = FALSE;
	vm->query_busy = FALSE;
	if (vm->bc != NULL && vm->backend != NULL)
		vmbc_backend_remove_vm(VMBC_BACKEND(vm->backend), vm->bc);
}

/* A failure that drops the VM: warned about once per distinct reason. */
static void
vm_fail(VmbcQmpVm *vm, const gchar *reason)
{
	if (g_strcmp0(vm->last_warning, reason) != 0) {
		g_warning("VM '%s' (%s) dropped: %s; trying again on the next rescan", vm_label(vm),
			  vm->socket_path, reason);
		g_free(vm->last_warning);
		vm->last_warning = g_strdup(reason);
	} else {
		g_debug("VM '%s' (%s) dropped again: %s", vm_label(vm), vm->socket_path, reason);
	}
	vm_drop(vm);
}

static void
vm_execute(VmbcQmpVm *vm, const gchar *command, JsonObject *args, GAsyncReadyCallback callback)
{
	qmp_client_execute_async(vm->client, command, args, NULL, callback, vm_ref(vm));
}

static VmbcEngine *
vm_engine(VmbcQmpVm *vm)
{
	return vmbc_backend_get_engine(VMBC_BACKEND(vm->backend));
}

static gint64
vm_now(VmbcQmpVm *vm)
{
	return vmbc_backend_now(VMBC_BACKEND(vm->backend));
}

static gint64
bytes_to_pages(gint64 bytes)
{
	return bytes / (gint64)vmbc_page_size();
}

/*
 * An integer member. json-glib reads QEMU's 18446744073709551615 ("not
 * reported") as a negative int64 or as a double; both come back as -1 here.
 */
static gboolean
get_int_member(JsonObject *obj, const gchar *name, gint64 *out)
{
	JsonNode *node = obj != NULL ? json_object_get_member(obj, name) : NULL;

	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node))
		return FALSE;
	switch (json_node_get_value_type(node)) {
	case G_TYPE_INT64:
		*out = json_node_get_int(node);
		if (*out < 0)
			*out = -1;
		return TRUE;
	case G_TYPE_DOUBLE:
		*out = -1;
		return TRUE;
	default:
		return FALSE;
	}
}

/* A string member, or NULL if missing or of another type. */
static const gchar *
get_str_member(JsonObject *obj, const gchar *name)
{
	JsonNode *node = obj != NULL ? json_object_get_member(obj, name) : NULL;

	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) ||
	    json_node_get_value_type(node) != G_TYPE_STRING)
		return NULL;
	return json_node_get_string(node);
}

static JsonObject *
node_object(JsonNode *node)
{
	return node != NULL && JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : NULL;
}

/* --- events --------------------------------------------------------------- */

static void
vm_on_event(QmpClient *client, const gchar *name, JsonObject *data, gint64 timestamp,
	    gpointer user_data)
{
	VmbcQmpVm *vm = user_data;
	gint64 actual = -1;

	if (!vm_is_current(vm, G_OBJECT(client)) || vm->state != VM_ADOPTED || vm->bc == NULL)
		return;
	if (g_strcmp0(name, "BALLOON_CHANGE") == 0) {
		if (!get_int_member(data, "actual", &actual) || actual < 0) {
			g_debug("VM '%s': BALLOON_CHANGE without a valid actual", vm->name);
			return;
		}
		vmbc_engine_balloon_actual(vm_engine(vm), vm->bc, bytes_to_pages(actual),
					   vm_now(vm));
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
	vm_fail(vm, msg);
}

/* Called from reply callbacks: a wire error drops the VM; TRUE if it did. */
static gboolean
vm_check_wire(VmbcQmpVm *vm, const GError *error)
{
	g_autofree gchar *msg = NULL;

	if (error == NULL || !is_wire_error(error))
		return FALSE;
	msg = g_strdup(error->message);
	vm_fail(vm, msg);
	return TRUE;
}

/*
 * The opening of every reply callback: finishes the call on @source, clears
 * @busy (if not NULL) when the reply belongs to the VM's current connection,
 * and drops the VM on a wire error. Returns TRUE when the callback should go
 * on, with the reply in @ret or the command's own error (QEMU said no) in
 * @cmd_error; FALSE when the reply no longer matters or the VM was dropped.
 */
static gboolean
vm_reply(VmbcQmpVm *vm, GObject *source, GAsyncResult *res, gboolean *busy, JsonNode **ret,
	 GError **cmd_error)
{
	*ret = qmp_client_execute_finish(QMP_CLIENT(source), res, cmd_error);
	if (!vm_is_current(vm, source))
		return FALSE;
	if (busy != NULL)
		*busy = FALSE;
	return !vm_check_wire(vm, *cmd_error);
}

/* --- probing a new connection --------------------------------------------- */

static void
vm_adopt(VmbcQmpVm *vm)
{
	VmbcBackend *backend = VMBC_BACKEND(vm->backend);
	const VmbcConfig *config = vmbc_backend_get_config(backend);
	gint64 max_pages = bytes_to_pages((gint64)vm->max_bytes);
	g_autoptr(GError) error = NULL;
	VmbcBeancounter *bc;

	bc = vmbc_backend_add_vm(backend, vm->name, max_pages, vm_ref(vm), vm_detach_bc, &error);
	if (bc == NULL) {
		/* a socket named like another VM's (two ".../qmp.sock"): try DIR-NAME */
		g_autofree gchar *dir = g_path_get_dirname(vm->socket_path);
		g_autofree gchar *dir_base = g_path_get_basename(dir);
		g_autofree gchar *alt = g_strdup_printf("%s-%s", dir_base, vm->name);

		g_clear_error(&error);
		bc = vmbc_backend_add_vm(backend, alt, max_pages, vm_ref(vm), vm_detach_bc, &error);
		if (bc == NULL) {
			g_autofree gchar *msg =
				g_strdup_printf("cannot add the VM: %s", error->message);
			vm_fail(vm, msg);
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
	if (config != NULL && config->smaps_interval_usec > 0)
		vmbc_proc_sampler_set_smaps_interval(vm->sampler, config->smaps_interval_usec);
	vm->next_stats = 0;

	/* what the balloon is now, as it is: adoption never changes it */
	if (vm->balloon_error != NULL)
		vmbc_engine_balloon_failed(vm_engine(vm), bc, VMBC_BALLOON_NO_DEVICE,
					   vm->balloon_error, vm_now(vm));
	else if (vm->actual >= 0)
		vmbc_engine_balloon_actual(vm_engine(vm), bc, vm->actual, vm_now(vm));
	if (vm->balloon_path != NULL && vm->fpr == 0)
		g_warning("VM '%s': free page reporting is off: pages its guest frees stay "
			  "charged (add free-page-reporting=on to %s)",
			  vm->name, vm->balloon_path);
	g_info("VM '%s' adopted: pid %d, %s, %" G_GUINT64_FORMAT " MiB, balloon %s", vm->name,
	       (int)vm->pid, vm->socket_path, vm->max_bytes >> 20,
	       vm->balloon_path != NULL ? vm->balloon_path : "none");
}

static void
vm_on_probe_query_balloon(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	gint64 actual = -1;

	if (!vm_reply(vm, source, res, NULL, &ret, &error))
		return;
	g_clear_error(&vm->balloon_error);
	if (g_error_matches(error, QMP_ERROR, QMP_ERROR_DEVICE_NOT_ACTIVE)) {
		vm->balloon_error = g_steal_pointer(&error);
	} else if (error != NULL) {
		g_warning("VM '%s': query-balloon failed: %s", vm->name, error->message);
	} else if (get_int_member(node_object(ret), "actual", &actual) && actual >= 0) {
		vm->actual = bytes_to_pages(actual);
	}
	vm_adopt(vm);
}

static void
vm_probe_query_balloon(VmbcQmpVm *vm)
{
	vm_execute(vm, "query-balloon", NULL, vm_on_probe_query_balloon);
}

static void
vm_on_probe_fpr(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	if (!vm_reply(vm, source, res, NULL, &ret, &error))
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
	g_autoptr(JsonObject) args = json_object_new();

	if (!vm_reply(vm, source, res, NULL, &ret, &error))
		return;
	if (error != NULL)
		g_warning("VM '%s': cannot set guest-stats-polling-interval on %s: %s", vm->name,
			  vm->balloon_path, error->message);
	json_object_set_string_member(args, "path", vm->balloon_path);
	json_object_set_string_member(args, "property", "free-page-reporting");
	vm_execute(vm, "qom-get", args, vm_on_probe_fpr);
}

static void
vm_send_stats_interval(VmbcQmpVm *vm, guint seconds, GAsyncReadyCallback callback)
{
	g_autoptr(JsonObject) args = json_object_new();

	json_object_set_string_member(args, "path", vm->balloon_path);
	json_object_set_string_member(args, "property", "guest-stats-polling-interval");
	json_object_set_int_member(args, "value", seconds);
	vm_execute(vm, "qom-set", args, callback);
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

	if (!vm_reply(vm, source, res, NULL, &ret, &error))
		return;
	if (error == NULL && JSON_NODE_HOLDS_VALUE(ret) &&
	    json_node_get_value_type(ret) == G_TYPE_STRING)
		type = json_node_get_string(ret);
	vm_probe_found_balloon(vm, type != NULL && g_str_has_prefix(type, "virtio-balloon")
					   ? PERIPHERAL "/balloon0"
					   : NULL);
}

static void vm_on_probe_list(GObject *source, GAsyncResult *res, gpointer user_data);

static void
vm_probe_list(VmbcQmpVm *vm, gboolean anon)
{
	g_autoptr(JsonObject) args = json_object_new();

	vm->list_anon = anon;
	json_object_set_string_member(args, "path", anon ? PERIPHERAL_ANON : PERIPHERAL);
	vm_execute(vm, "qom-list", args, vm_on_probe_list);
}

/* The first child<virtio-balloon-*> of a qom-list answer, or NULL. */
static gchar *
find_balloon_child(JsonNode *ret, const gchar *base)
{
	JsonArray *arr =
		ret != NULL && JSON_NODE_HOLDS_ARRAY(ret) ? json_node_get_array(ret) : NULL;

	for (guint i = 0; arr != NULL && i < json_array_get_length(arr); i++) {
		JsonObject *obj = node_object(json_array_get_element(arr, i));
		const gchar *name;
		const gchar *type;

		if (obj == NULL)
			continue;
		name = get_str_member(obj, "name");
		type = get_str_member(obj, "type");
		if (name != NULL && type != NULL && g_str_has_prefix(type, BALLOON_CHILD_PREFIX))
			return g_strdup_printf("%s/%s", base, name);
	}
	return NULL;
}

static void
vm_on_probe_list(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	g_autofree gchar *path = NULL;

	if (!vm_reply(vm, source, res, NULL, &ret, &error))
		return;
	if (g_error_matches(error, QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND)) {
		/* no qom-list: try the usual id */
		g_autoptr(JsonObject) args = json_object_new();
		json_object_set_string_member(args, "path", PERIPHERAL "/balloon0");
		json_object_set_string_member(args, "property", "type");
		vm_execute(vm, "qom-get", args, vm_on_probe_type);
		return;
	}
	if (error == NULL)
		path = find_balloon_child(ret, vm->list_anon ? PERIPHERAL_ANON : PERIPHERAL);
	if (path == NULL && !vm->list_anon) {
		vm_probe_list(vm, TRUE);
		return;
	}
	vm_probe_found_balloon(vm, path);
}

static void
vm_on_probe_memory(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	gint64 base = -1;
	gint64 plugged = 0;

	if (!vm_reply(vm, source, res, NULL, &ret, &error))
		return;
	if (error != NULL) {
		g_autofree gchar *msg = g_strdup(error->message);
		vm_fail(vm, msg);
		return;
	}
	if (!get_int_member(node_object(ret), "base-memory", &base) || base <= 0) {
		vm_fail(vm, "query-memory-size-summary has no valid base-memory");
		return;
	}
	if (!get_int_member(node_object(ret), "plugged-memory", &plugged) || plugged < 0)
		plugged = 0;
	vm->ram_bytes = (guint64)base;
	vm->max_bytes = (guint64)base + (guint64)plugged;
	vm_probe_list(vm, FALSE);
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

	if (!vm_reply(vm, source, res, NULL, &ret, &error))
		return;
	name = get_str_member(node_object(ret), "name");
	g_free(vm->name);
	/* no -name: {} */
	vm->name = name != NULL && *name != '\0' && g_utf8_validate(name, -1, NULL)
			   ? g_strdup(name)
			   : name_from_socket(vm->socket_path);
	vm_execute(vm, "query-memory-size-summary", NULL, vm_on_probe_memory);
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
		vm_fail(vm, msg);
		return;
	}
	vm->pid = qmp_client_get_peer_pid(vm->client);
	if (vm->pid <= 0) {
		vm_fail(vm, "cannot tell which process serves the socket (no SO_PEERCRED)");
		return;
	}
	vm->state = VM_PROBING;
	vm->event_handler = g_signal_connect(vm->client, "event", G_CALLBACK(vm_on_event), vm);
	vm->disconnected_handler =
		g_signal_connect(vm->client, "disconnected", G_CALLBACK(vm_on_disconnected), vm);
	vm_execute(vm, "query-name", NULL, vm_on_probe_name);
}

static void
vm_connect(VmbcQmpVm *vm)
{
	vm_forget_client(vm);
	g_clear_pointer(&vm->name, g_free);
	g_clear_pointer(&vm->balloon_path, g_free);
	g_clear_error(&vm->balloon_error);
	vm->pid = -1;
	vm->fpr = -1;
	vm->actual = -1;
	vm->state = VM_CONNECTING;
	vm->client = qmp_client_new();
	qmp_client_set_timeout(vm->client, VMBC_QMP_BACKEND_COMMAND_TIMEOUT_MS);
	qmp_client_connect_async(vm->client, vm->socket_path, NULL, vm_on_connected, vm_ref(vm));
}

/* --- every tick ------------------------------------------------------------ */

static void
vm_on_guest_stats(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	JsonObject *obj;
	JsonObject *stats = NULL;
	VmbcGuestStats gs = {-1, -1, -1, -1, -1, -1, 0};
	gint64 v;

	if (!vm_reply(vm, source, res, &vm->stats_busy, &ret, &error) || vm->bc == NULL)
		return;
	if (error != NULL) {
		g_debug("VM '%s': guest-stats: %s", vm->name, error->message);
		return;
	}
	obj = node_object(ret);
	if (obj != NULL && json_object_has_member(obj, "stats") &&
	    JSON_NODE_HOLDS_OBJECT(json_object_get_member(obj, "stats")))
		stats = json_object_get_object_member(obj, "stats");
	if (stats == NULL || !get_int_member(obj, "last-update", &v) || v <= 0)
		return; /* the guest has not reported yet */
	gs.last_update = v;
	if (get_int_member(stats, "stat-available-memory", &v) && v >= 0)
		gs.available = bytes_to_pages(v);
	if (get_int_member(stats, "stat-free-memory", &v) && v >= 0)
		gs.free = bytes_to_pages(v);
	if (get_int_member(stats, "stat-disk-caches", &v) && v >= 0)
		gs.caches = bytes_to_pages(v);
	if (get_int_member(stats, "stat-total-memory", &v) && v >= 0)
		gs.total = bytes_to_pages(v);
	if (get_int_member(stats, "stat-swap-in", &v) && v >= 0)
		gs.swap_in = bytes_to_pages(v);
	if (get_int_member(stats, "stat-major-faults", &v) && v >= 0)
		gs.major_faults = v;
	vmbc_engine_set_guest_stats(vm_engine(vm), vm->bc, &gs);
}

static void
vm_on_query_balloon(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	gint64 actual = -1;

	if (!vm_reply(vm, source, res, &vm->query_busy, &ret, &error) || vm->bc == NULL)
		return;
	if (g_error_matches(error, QMP_ERROR, QMP_ERROR_DEVICE_NOT_ACTIVE)) {
		vmbc_engine_balloon_failed(vm_engine(vm), vm->bc, VMBC_BALLOON_NO_DEVICE, error,
					   vm_now(vm));
		return;
	}
	if (error != NULL) {
		g_warning("VM '%s': query-balloon failed: %s", vm->name, error->message);
		return;
	}
	if (get_int_member(node_object(ret), "actual", &actual) && actual >= 0)
		vmbc_engine_balloon_actual(vm_engine(vm), vm->bc, bytes_to_pages(actual),
					   vm_now(vm));
}

/* BALLOON_CHANGE is rate-limited to one a second: follow a moving balloon by asking. */
static gboolean
vm_balloon_moving(VmbcQmpVm *vm)
{
	VmbcBeancounter *bc = vm->bc;

	if (bc->balloon == VMBC_BALLOON_NO_DEVICE)
		return FALSE;
	if (bc->reclaim != VMBC_RECLAIM_IDLE)
		return TRUE;
	return bc->balloon_target >= 0 && bc->balloon_actual >= 0 &&
	       ABS(bc->balloon_actual - bc->balloon_target) > BALLOON_SETTLED_PAGES;
}

/* Asks QEMU for the guest's statistics (one query in flight at most). */
static void
vm_poll_stats(VmbcQmpVm *vm, gint64 now)
{
	g_autoptr(JsonObject) args = json_object_new();
	gint64 phase = 0;

	if (vm->balloon_path == NULL || vm->stats_busy)
		return;
	json_object_set_string_member(args, "path", vm->balloon_path);
	json_object_set_string_member(args, "property", "guest-stats");
	vm->stats_busy = TRUE;
	/*
	 * The first poll, at adoption, puts the idle polls that follow at a random phase, so that
	 * VMs adopted together do not all poll in the same tick from then on.
	 */
	if (vm->next_stats == 0)
		phase = (gint64)g_random_int_range(
				0,
				(gint32)MAX((STATS_IDLE_FACTOR - 1) * vm->backend->stats_sec, 1) *
					1000) *
			1000;
	vm->next_stats = now + (gint64)vm->backend->stats_sec * G_USEC_PER_SEC - phase;
	vm_execute(vm, "qom-get", args, vm_on_guest_stats);
}

/* Returns FALSE if the process is gone. */
static gboolean
vm_sample(VmbcQmpVm *vm, gint64 now)
{
	VmbcSample sample;
	g_autoptr(GError) error = NULL;

	if (!vmbc_proc_sampler_sample(vm->sampler, vm->bc, now, &sample, &error)) {
		if (g_error_matches(error, VMBC_ERROR, VMBC_ERROR_VANISHED))
			return FALSE;
		if (!vm->sample_failed)
			g_warning("VM '%s': cannot measure: %s", vm->name, error->message);
		vm->sample_failed = TRUE;
	} else {
		if (vm->sample_failed)
			g_info("VM '%s': measuring again", vm->name);
		vm->sample_failed = FALSE;
	}
	vmbc_engine_sample(vm_engine(vm), vm->bc, &sample, now);

	if (vm->balloon_path != NULL && vm->backend->stats_sec > 0 && !vm->stats_busy &&
	    now >= vm->next_stats + (vmbc_engine_wants_stats(vm_engine(vm), vm->bc)
					     ? 0
					     : (gint64)(STATS_IDLE_FACTOR - 1) *
						       vm->backend->stats_sec * G_USEC_PER_SEC))
		vm_poll_stats(vm, now);
	if (!vm->query_busy && vm_balloon_moving(vm)) {
		vm->query_busy = TRUE;
		vm_execute(vm, "query-balloon", NULL, vm_on_query_balloon);
	}
	return TRUE;
}

static void
vmbc_qmp_backend_sample(VmbcBackend *backend, gint64 now)
{
	VmbcQmpBackend *self = VMBC_QMP_BACKEND(backend);
	g_autoptr(GPtrArray) gone = g_ptr_array_new_with_free_func((GDestroyNotify)vm_unref);
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		VmbcQmpVm *vm = value;

		if (vm->state != VM_ADOPTED || vm->bc == NULL)
			continue;
		if (!vm_sample(vm, now))
			g_ptr_array_add(gone, vm_ref(vm));
	}
	for (guint i = 0; i < gone->len; i++) {
		VmbcQmpVm *vm = g_ptr_array_index(gone, i);

		g_info("VM '%s' is gone: process %d exited", vm->name, (int)vm->pid);
		vm_drop(vm);
	}
}

/* --- finding sockets ------------------------------------------------------- */

static gboolean
socket_identity(const gchar *path, dev_t *dev, ino_t *ino)
{
	struct stat st;

	if (stat(path, &st) != 0 || !S_ISSOCK(st.st_mode))
		return FALSE;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return TRUE;
}

/*
 * The directory a glob starts from: its leading components up to the first
 * one with a wildcard (or an escape), without the file name: /run/vmbc/qmp
 * for the default glob, /srv/vms for a wildcard directory per VM below it.
 */
static gchar *
glob_base_dir(const gchar *pattern)
{
	g_auto(GStrv) parts = g_strsplit(pattern, "/", -1);
	guint n = g_strv_length(parts);
	g_autoptr(GString) dir = g_string_new(NULL);

	for (guint i = 0; i + 1 < n; i++) {
		if (strpbrk(parts[i], "*?[\\") != NULL)
			break;
		if (*parts[i] == '\0')
			continue;
		g_string_append_c(dir, '/');
		g_string_append(dir, parts[i]);
	}
	if (dir->len == 0)
		g_string_append_c(dir, '/');
	return g_string_free(g_steal_pointer(&dir), FALSE);
}

/*
 * Adds the sockets matching @pattern to @found. FALSE with an error when the
 * directory the pattern starts from cannot be read (missing, not a directory,
 * no permission) or glob itself fails: no VM there can be found, which
 * glob(3) alone would report as an empty match.
 */
static gboolean
glob_sockets(const gchar *pattern, GHashTable *found, GError **error)
{
	g_autofree gchar *base = glob_base_dir(pattern);
	g_autoptr(GDir) dir = NULL;
	g_autoptr(GError) error_local = NULL;
	glob_t g;
	int rc;

	dir = g_dir_open(base, 0, &error_local);
	if (dir == NULL) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED, "qmp-sockets '%s': %s", pattern,
			    error_local->message);
		return FALSE;
	}
	memset(&g, 0, sizeof(g));
	rc = glob(pattern, GLOB_NOSORT, NULL, &g);
	if (rc != 0) {
		globfree(&g);
		if (rc == GLOB_NOMATCH)
			return TRUE;
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED,
			    "qmp-sockets '%s': glob failed (%s)", pattern,
			    rc == GLOB_NOSPACE ? "out of memory" : "read error");
		return FALSE;
	}
	for (gsize i = 0; i < g.gl_pathc; i++) {
		dev_t dev;
		ino_t ino;

		if (socket_identity(g.gl_pathv[i], &dev, &ino))
			g_hash_table_add(found, g_strdup(g.gl_pathv[i]));
	}
	globfree(&g);
	return TRUE;
}

/* Says once when the globs stop being readable, and once when they are again. */
static void
vmbc_qmp_backend_set_up(VmbcQmpBackend *self, const GError *failure)
{
	if (failure != NULL && self->up)
		g_warning("the qmp backend is down: %s; no VM can be found there until it is "
			  "fixed (the globs are tried again every rescan)",
			  failure->message);
	else if (failure == NULL && !self->up)
		g_info("the qmp backend is up again: every qmp-sockets directory can be read");
	self->up = failure == NULL;
}

void
vmbc_qmp_backend_rescan(VmbcQmpBackend *self)
{
	g_autoptr(GHashTable) found = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GPtrArray) connect = g_ptr_array_new_with_free_func((GDestroyNotify)vm_unref);
	GHashTableIter iter;
	gpointer key;
	gpointer value;
	g_autoptr(GError) failure = NULL;

	g_return_if_fail(VMBC_IS_QMP_BACKEND(self));

	for (guint i = 0; self->globs != NULL && self->globs[i] != NULL; i++) {
		g_autoptr(GError) error = NULL;

		/* the other globs are still scanned: their VMs are not lost with one directory */
		if (!glob_sockets(self->globs[i], found, &error) && failure == NULL)
			failure = g_steal_pointer(&error);
	}
	vmbc_qmp_backend_set_up(self, failure);

	/* sockets that went away */
	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, &key, &value)) {
		VmbcQmpVm *vm = value;

		if (g_hash_table_contains(found, key))
			continue;
		if (vm->state == VM_FAILED || vm->state == VM_NEW) {
			vm->backend = NULL;
			g_hash_table_iter_remove(&iter);
		} else if (vm->state == VM_ADOPTED && vm->pid > 0 && kill(vm->pid, 0) != 0 &&
			   errno == ESRCH) {
			/* the process and its socket are gone; the connection may not know yet */
			g_ptr_array_add(connect, vm_ref(vm));
		}
		/* an adopted VM whose socket file was removed keeps its connection */
	}
	for (guint i = 0; i < connect->len; i++) {
		VmbcQmpVm *vm = g_ptr_array_index(connect, i);

		g_info("VM '%s' is gone: socket %s and process %d vanished", vm_label(vm),
		       vm->socket_path, (int)vm->pid);
		vm_drop(vm);
		vm->backend = NULL;
		g_hash_table_remove(self->vms, vm->socket_path);
	}
	g_ptr_array_set_size(connect, 0);

	/* new sockets, and failed ones to try again */
	g_hash_table_iter_init(&iter, found);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		VmbcQmpVm *vm = g_hash_table_lookup(self->vms, key);

		if (vm == NULL) {
			vm = vm_new(self, key);
			g_hash_table_insert(self->vms, vm->socket_path, vm);
		}
		if (vm->state == VM_NEW || vm->state == VM_FAILED) {
			socket_identity(key, &vm->sock_dev, &vm->sock_ino);
			g_ptr_array_add(connect, vm_ref(vm));
		}
	}
	for (guint i = 0; i < connect->len; i++)
		vm_connect(g_ptr_array_index(connect, i));
}

guint
vmbc_qmp_backend_get_n_vms(VmbcQmpBackend *self)
{
	GHashTableIter iter;
	gpointer value;
	guint n = 0;

	g_return_val_if_fail(VMBC_IS_QMP_BACKEND(self), 0);

	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		VmbcQmpVm *vm = value;
		if (vm->state == VM_ADOPTED && vm->bc != NULL)
			n++;
	}
	return n;
}

static gboolean
vmbc_qmp_backend_on_rescan(gpointer user_data)
{
	vmbc_qmp_backend_rescan(VMBC_QMP_BACKEND(user_data));
	return G_SOURCE_CONTINUE;
}

/* --- the vfuncs ------------------------------------------------------------- */

static void
vmbc_qmp_backend_apply_config(VmbcQmpBackend *self, const VmbcConfig *config)
{
	g_strfreev(self->globs);
	self->globs = NULL;
	g_free(self->cgroup_root);
	self->cgroup_root =
		g_strdup(config != NULL && config->cgroup_root != NULL ? config->cgroup_root
								       : "/sys/fs/cgroup");
	self->rescan_usec = DEFAULT_RESCAN_USEC;
	self->smaps_usec = VMBC_PROC_DEFAULT_SMAPS_INTERVAL;
	self->stats_sec = 1;
	if (config == NULL)
		return;
	self->globs = g_strdupv(config->qmp_sockets);
	if (config->rescan_interval_usec > 0)
		self->rescan_usec = config->rescan_interval_usec;
	if (config->smaps_interval_usec > 0)
		self->smaps_usec = config->smaps_interval_usec;
	self->stats_sec = config->stats_interval_sec;
}

static void
vmbc_qmp_backend_arm_rescan(VmbcQmpBackend *self)
{
	guint ms = (guint)MAX(self->rescan_usec / 1000, 1);

	g_clear_handle_id(&self->rescan_id, g_source_remove);
	self->rescan_id = g_timeout_add(ms, vmbc_qmp_backend_on_rescan, self);
}

static gboolean
vmbc_qmp_backend_start(VmbcBackend *backend, GError **error)
{
	VmbcQmpBackend *self = VMBC_QMP_BACKEND(backend);

	vmbc_qmp_backend_apply_config(self, vmbc_backend_get_config(backend));
	if (self->globs == NULL || self->globs[0] == NULL)
		g_info("no QMP socket globs configured: the qmp backend will find no VMs");
	self->started = TRUE;
	vmbc_qmp_backend_rescan(self);
	vmbc_qmp_backend_arm_rescan(self);
	return TRUE;
}

/* Lets go of every VM: connections closed, balloons left as they are. */
static void
vmbc_qmp_backend_release_all(VmbcQmpBackend *self)
{
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		VmbcQmpVm *vm = value;

		vm->state = VM_FAILED;
		vm->backend = NULL;
		vm_forget_client(vm);
	}
	g_hash_table_remove_all(self->vms);
}

static void
vmbc_qmp_backend_stop(VmbcBackend *backend)
{
	VmbcQmpBackend *self = VMBC_QMP_BACKEND(backend);

	g_clear_handle_id(&self->rescan_id, g_source_remove);
	self->started = FALSE;
	vmbc_qmp_backend_release_all(self);
}

static void
vm_on_stats_interval_set(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	if (!vm_reply(vm, source, res, NULL, &ret, &error))
		return;
	if (error != NULL)
		g_warning("VM '%s': cannot set guest-stats-polling-interval: %s", vm->name,
			  error->message);
}

static gboolean
vmbc_qmp_backend_reload(VmbcBackend *backend, const VmbcConfig *config, GError **error)
{
	VmbcQmpBackend *self = VMBC_QMP_BACKEND(backend);
	guint old_stats = self->stats_sec;
	gint64 old_rescan = self->rescan_usec;
	GHashTableIter iter;
	gpointer value;

	vmbc_qmp_backend_apply_config(self, config);
	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		VmbcQmpVm *vm = value;

		if (vm->state != VM_ADOPTED)
			continue;
		vmbc_proc_sampler_set_smaps_interval(vm->sampler, self->smaps_usec);
		if (vm->balloon_path != NULL && self->stats_sec != old_stats)
			vm_send_stats_interval(vm, self->stats_sec, vm_on_stats_interval_set);
	}
	if (self->started) {
		if (self->rescan_usec != old_rescan)
			vmbc_qmp_backend_arm_rescan(self);
		vmbc_qmp_backend_rescan(self);
	}
	return TRUE;
}

/* The adopted VM behind @bc, or NULL with an error. */
static VmbcQmpVm *
vm_for_bc(VmbcQmpBackend *self, VmbcBeancounter *bc, GError **error)
{
	VmbcQmpVm *vm = bc->backend_data;

	if (vm == NULL || vm->backend != self || vm->state != VM_ADOPTED || vm->client == NULL) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_VANISHED,
			    "VM '%s' is not connected over QMP", bc->name);
		return NULL;
	}
	return vm;
}

static void
vm_on_balloon_set(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	if (!vm_reply(vm, source, res, NULL, &ret, &error) || vm->bc == NULL)
		return;
	if (g_error_matches(error, QMP_ERROR, QMP_ERROR_DEVICE_NOT_ACTIVE))
		vmbc_engine_balloon_failed(vm_engine(vm), vm->bc, VMBC_BALLOON_NO_DEVICE, error,
					   vm_now(vm));
	else if (error != NULL)
		g_warning("VM '%s': balloon request failed: %s", vm->name, error->message);
}

static gboolean
vmbc_qmp_backend_set_balloon(VmbcBackend *backend, VmbcBeancounter *bc, gint64 target_pages,
			     GError **error)
{
	VmbcQmpVm *vm = vm_for_bc(VMBC_QMP_BACKEND(backend), bc, error);
	g_autoptr(JsonObject) args = NULL;

	if (vm == NULL)
		return FALSE;
	if (target_pages <= 0 || target_pages > G_MAXINT64 / (gint64)vmbc_page_size()) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "VM '%s': invalid balloon target %" G_GINT64_FORMAT " pages", bc->name,
			    target_pages);
		return FALSE;
	}
	args = json_object_new();
	json_object_set_int_member(args, "value", target_pages * (gint64)vmbc_page_size());
	g_debug("VM '%s': balloon to %" G_GINT64_FORMAT " pages", vm->name, target_pages);
	vm_execute(vm, "balloon", args, vm_on_balloon_set);
	/* the policy that moved the balloon steps on the guest's word: get it fresh now */
	vm_poll_stats(vm, g_get_monotonic_time());
	return TRUE;
}

static void
vm_on_stop(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(VmbcQmpVm) vm = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	if (!vm_reply(vm, source, res, NULL, &ret, &error))
		return;
	if (error != NULL)
		g_warning("VM '%s': cannot pause: %s", vm->name, error->message);
	else
		g_info("VM '%s' paused", vm->name);
}

/*
 * Sets memory.high of the VM's cgroup to its physpages limit plus what the
 * VMM holds, or max without a limit. @raise_only: the limit went up after an
 * escalation; only raise the value, and leave one lifted by hand (max).
 */
static gboolean
write_memory_high(VmbcQmpVm *vm, gboolean raise_only, GError **error)
{
	VmbcParm *phys = &vm->bc->parm[VMBC_RES_PHYSPAGES];
	g_autofree gchar *file = NULL;
	g_autofree gchar *value = NULL;
	gboolean changed = FALSE;

	/*
	 * memory.high covers the whole QEMU process: the guest limit plus what the
	 * VMM itself holds now, so the backstop does not squeeze QEMU's own heap.
	 */
	if (phys->limit == VMBC_UNLIMITED)
		value = g_strdup("max");
	else
		value = g_strdup_printf(
			"%" G_GINT64_FORMAT,
			(phys->limit + MAX(vm->bc->parm[VMBC_RES_VMMPAGES].held, 0)) *
				(gint64)vmbc_page_size());
	if (!vmbc_cgroup_set_memory_high(vm->backend->cgroup_root, vm->pid, value, raise_only,
					 &file, &changed, error)) {
		g_prefix_error(error, "VM '%s': ", vm->name);
		return FALSE;
	}
	if (changed)
		g_info("VM '%s': %s set to %s", vm->name, file, value);
	else
		g_debug("VM '%s': %s is not below %s: left as it is", vm->name, file, value);
	return TRUE;
}

static gboolean
vmbc_qmp_backend_escalate(VmbcBackend *backend, VmbcBeancounter *bc, VmbcEscalation how,
			  GError **error)
{
	VmbcQmpVm *vm = vm_for_bc(VMBC_QMP_BACKEND(backend), bc, error);

	if (vm == NULL)
		return FALSE;
	switch (how) {
	case VMBC_ESCALATE_NONE:
		return TRUE;
	case VMBC_ESCALATE_PAUSE:
		vm_execute(vm, "stop", NULL, vm_on_stop);
		return TRUE;
	case VMBC_ESCALATE_MEMORY_HIGH:
	case VMBC_ESCALATE_MEMORY_HIGH_RAISE:
		return write_memory_high(vm, how == VMBC_ESCALATE_MEMORY_HIGH_RAISE, error);
	default:
		break;
	}
	g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID, "VM '%s': unknown escalation %d",
		    bc->name, (int)how);
	return FALSE;
}

static void
vmbc_qmp_backend_describe(VmbcBackend *backend, VmbcBeancounter *bc, JsonBuilder *builder)
{
	VmbcQmpVm *vm = bc->backend_data;

	if (vm == NULL)
		return;
	json_builder_set_member_name(builder, "pid");
	json_builder_add_int_value(builder, vm->pid);
	json_builder_set_member_name(builder, "qmp-socket");
	json_builder_add_string_value(builder, vm->socket_path);
	json_builder_set_member_name(builder, "balloon-device");
	if (vm->balloon_path != NULL)
		json_builder_add_string_value(builder, vm->balloon_path);
	else
		json_builder_add_null_value(builder);
}

static gboolean
vmbc_qmp_backend_is_up(VmbcBackend *backend)
{
	return VMBC_QMP_BACKEND(backend)->up;
}

static void
vmbc_qmp_backend_dispose(GObject *object)
{
	VmbcQmpBackend *self = VMBC_QMP_BACKEND(object);

	g_clear_handle_id(&self->rescan_id, g_source_remove);
	if (self->vms != NULL)
		vmbc_qmp_backend_release_all(self);
	G_OBJECT_CLASS(vmbc_qmp_backend_parent_class)->dispose(object);
}

static void
vmbc_qmp_backend_finalize(GObject *object)
{
	VmbcQmpBackend *self = VMBC_QMP_BACKEND(object);

	g_clear_pointer(&self->vms, g_hash_table_unref);
	g_strfreev(self->globs);
	g_free(self->cgroup_root);
	G_OBJECT_CLASS(vmbc_qmp_backend_parent_class)->finalize(object);
}

static void
vmbc_qmp_backend_class_init(VmbcQmpBackendClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	VmbcBackendClass *backend_class = VMBC_BACKEND_CLASS(klass);

	object_class->dispose = vmbc_qmp_backend_dispose;
	object_class->finalize = vmbc_qmp_backend_finalize;
	backend_class->start = vmbc_qmp_backend_start;
	backend_class->stop = vmbc_qmp_backend_stop;
	backend_class->reload = vmbc_qmp_backend_reload;
	backend_class->sample = vmbc_qmp_backend_sample;
	backend_class->set_balloon = vmbc_qmp_backend_set_balloon;
	backend_class->escalate = vmbc_qmp_backend_escalate;
	backend_class->describe = vmbc_qmp_backend_describe;
	backend_class->is_up = vmbc_qmp_backend_is_up;
}

static void
vmbc_qmp_backend_init(VmbcQmpBackend *self)
{
	self->vms = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)vm_unref);
	self->up = TRUE;
	vmbc_qmp_backend_apply_config(self, NULL);
}
