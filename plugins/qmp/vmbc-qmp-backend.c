/*
 * vmbc-qmp-backend.c: the "qmp" backend (see vmbc-qmp-backend.h): the GObject,
 * its configuration and its vfuncs. The VMs it finds (vmbc-qmp-discovery.c)
 * are connected and probed (vmbc-qmp-vm.c, vmbc-qmp-probe.c), sampled every
 * tick (vmbc-qmp-sample.c) and acted on (vmbc-qmp-actuate.c).
 */
#include "vmbc-qmp-private.h"

G_DEFINE_TYPE(VmbcQmpBackend, vmbc_qmp_backend, VMBC_TYPE_BACKEND)

/* The [daemon] keys of vmbc.conf this backend reads (see vmbc.conf(5)). */
static const VmbcSettingSpec vmbc_qmp_backend_settings[] = {
	{"qmp-sockets", VMBC_SETTING_PATHS, "/run/vmbc/qmp/*.sock", 0, 0},
	{"rescan-interval", VMBC_SETTING_DURATION, "2s", 100000,
	 G_GINT64_CONSTANT(3600) * G_USEC_PER_SEC},
	{"cgroup-root", VMBC_SETTING_PATH, "/sys/fs/cgroup", 0, 0},
	VMBC_BACKEND_SETTING_SMAPS_INTERVAL,
	VMBC_BACKEND_SETTING_STATM_READS,
	VMBC_BACKEND_SETTING_STATS_INTERVAL,
	VMBC_BACKEND_SETTING_IDLE_INTERVAL,
	{NULL, 0, NULL, 0, 0},
};

static void
vmbc_qmp_backend_apply_config(VmbcQmpBackend *self, const VmbcSettings *settings)
{
	g_strfreev(self->globs);
	self->globs = g_strdupv((gchar **)vmbc_settings_get_paths(settings, "qmp-sockets"));
	g_free(self->cgroup_root);
	self->cgroup_root = g_strdup(vmbc_settings_get_string(settings, "cgroup-root"));
	self->rescan_usec = vmbc_settings_get_usec(settings, "rescan-interval");
	self->smaps_usec = vmbc_settings_get_usec(settings, "smaps-interval");
	self->stats_sec = vmbc_settings_get_seconds(settings, "stats-interval");
	self->idle_usec = vmbc_settings_get_usec(settings, "idle-interval");
}

static gboolean
vmbc_qmp_backend_start(VmbcBackend *backend, GError **error)
{
	VmbcQmpBackend *self = VMBC_QMP_BACKEND(backend);

	vmbc_qmp_backend_apply_config(self, vmbc_backend_get_settings(backend));
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
		vmbc_qmp_vm_forget_client(vm);
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

	if (!vmbc_qmp_vm_reply(vm, source, res, NULL, &ret, &error))
		return;
	if (error != NULL)
		g_warning("VM '%s': cannot set guest-stats-polling-interval: %s", vm->name,
			  error->message);
}

static gboolean
vmbc_qmp_backend_reload(VmbcBackend *backend, const VmbcSettings *settings, GError **error)
{
	VmbcQmpBackend *self = VMBC_QMP_BACKEND(backend);
	guint old_stats = self->stats_sec;
	gint64 old_rescan = self->rescan_usec;
	GHashTableIter iter;
	gpointer value;

	vmbc_qmp_backend_apply_config(self, settings);
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

/* The first rescan ran, and every VM it found is adopted or failed. */
static gboolean
vmbc_qmp_backend_first_pass_done(VmbcBackend *backend)
{
	VmbcQmpBackend *self = VMBC_QMP_BACKEND(backend);
	GHashTableIter iter;
	gpointer value;

	if (!self->started)
		return FALSE;
	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		VmbcQmpVm *vm = value;
		if (vm->state != VM_ADOPTED && vm->state != VM_FAILED)
			return FALSE;
	}
	return TRUE;
}

static gboolean
vmbc_qmp_backend_is_up(VmbcBackend *backend)
{
	return VMBC_QMP_BACKEND(backend)->up;
}

static void
vmbc_qmp_backend_finalize(GObject *object)
{
	VmbcQmpBackend *self = VMBC_QMP_BACKEND(object);

	g_clear_pointer(&self->vms, g_hash_table_unref);
	g_clear_pointer(&self->scan_dirs, g_hash_table_unref);
	g_free(self->scan_globs);
	g_strfreev(self->globs);
	g_free(self->cgroup_root);
	G_OBJECT_CLASS(vmbc_qmp_backend_parent_class)->finalize(object);
}

static void
vmbc_qmp_backend_class_init(VmbcQmpBackendClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	VmbcBackendClass *backend_class = VMBC_BACKEND_CLASS(klass);

	object_class->finalize = vmbc_qmp_backend_finalize;
	backend_class->settings = vmbc_qmp_backend_settings;
	backend_class->start = vmbc_qmp_backend_start;
	backend_class->stop = vmbc_qmp_backend_stop;
	backend_class->reload = vmbc_qmp_backend_reload;
	backend_class->sample = vmbc_qmp_backend_sample;
	backend_class->sample_vm = vmbc_qmp_backend_sample_vm;
	backend_class->set_balloon = vmbc_qmp_backend_set_balloon;
	backend_class->escalate = vmbc_qmp_backend_escalate;
	backend_class->describe = vmbc_qmp_backend_describe;
	backend_class->is_up = vmbc_qmp_backend_is_up;
	backend_class->first_pass_done = vmbc_qmp_backend_first_pass_done;
}

static void
vmbc_qmp_backend_init(VmbcQmpBackend *self)
{
	self->vms = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
					  (GDestroyNotify)vmbc_qmp_vm_unref);
	self->up = TRUE;
}
