/*
 * vmbc-libvirt-backend.c: the "libvirt" backend (see vmbc-libvirt-backend.h):
 * the GObject, its configuration and its vfuncs. Its connection
 * (vmbc-libvirt-connection.c) finds domains (vmbc-libvirt-discovery.c), each a
 * VmbcLibvirtVm (vmbc-libvirt-vm.c) sampled every tick
 * (vmbc-libvirt-sample.c) and acted on (vmbc-libvirt-actuate.c); blocking
 * libvirt calls run as jobs in worker threads (vmbc-libvirt-job.c).
 */
#include <libvirt-glib/libvirt-glib.h>

#include "vmbc-libvirt-private.h"

G_DEFINE_TYPE(VmbcLibvirtBackend, vmbc_libvirt_backend, VMBC_TYPE_BACKEND)

/* libvirt prints every error on stderr by default; vmbcd reports them itself. */
static void
silent_error_func(void *user_data, virErrorPtr error)
{
}

/* The [daemon] keys of vmbc.conf this backend reads (see vmbc.conf(5)). */
static const VmbcSettingSpec vmbc_libvirt_backend_settings[] = {
	{"libvirt-uri", VMBC_SETTING_STRING, "qemu:///system", 0, 0},
	VMBC_BACKEND_SETTING_SMAPS_INTERVAL,
	VMBC_BACKEND_SETTING_STATM_READS,
	VMBC_BACKEND_SETTING_STATS_INTERVAL,
	VMBC_BACKEND_SETTING_IDLE_INTERVAL,
	{NULL, 0, NULL, 0, 0},
};

static void
vmbc_libvirt_backend_apply_config(VmbcLibvirtBackend *self, const VmbcSettings *settings)
{
	g_free(self->uri);
	self->uri = g_strdup(vmbc_settings_get_string(settings, "libvirt-uri"));
	self->smaps_usec = vmbc_settings_get_usec(settings, "smaps-interval");
	self->stats_sec = vmbc_settings_get_seconds(settings, "stats-interval");
	self->idle_usec = vmbc_settings_get_usec(settings, "idle-interval");
}

static gboolean
vmbc_libvirt_backend_start(VmbcBackend *backend, GError **error)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(backend);

	vmbc_libvirt_backend_apply_config(self, vmbc_backend_get_settings(backend));
	self->started = TRUE;
	self->backoff_ms = VMBC_LIBVIRT_RECONNECT_MIN_MS;
	/* a libvirtd that is not up yet is not fatal: vmbcd waits for it */
	vmbc_libvirt_backend_connect(self);
	return TRUE;
}

/* Lets go of every VM: the connection closed, balloons left as they are. */
static void
vmbc_libvirt_backend_release_all(VmbcLibvirtBackend *self)
{
	GHashTableIter iter;
	gpointer value;

	vmbc_libvirt_backend_drop_connection(self);
	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		VmbcLibvirtVm *vm = value;
		vm->backend = NULL;
	}
	g_hash_table_remove_all(self->vms);
}

static void
vmbc_libvirt_backend_stop(VmbcBackend *backend)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(backend);

	self->started = FALSE;
	g_clear_handle_id(&self->reconnect_id, g_source_remove);
	g_clear_handle_id(&self->lost_id, g_source_remove);
	vmbc_libvirt_backend_release_all(self);
}

static gboolean
vmbc_libvirt_backend_reload(VmbcBackend *backend, const VmbcSettings *settings, GError **error)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(backend);
	g_autofree gchar *old_uri = g_strdup(self->uri);
	guint old_stats = self->stats_sec;
	GHashTableIter iter;
	gpointer value;

	vmbc_libvirt_backend_apply_config(self, settings);
	if (g_strcmp0(old_uri, self->uri) != 0 && self->started) {
		/* another libvirt: its domains are other domains */
		g_autoptr(GPtrArray) all =
			g_ptr_array_new_with_free_func((GDestroyNotify)vmbc_libvirt_vm_unref);

		g_info("libvirt-uri changed from %s to %s: reconnecting", old_uri, self->uri);
		g_hash_table_iter_init(&iter, self->vms);
		while (g_hash_table_iter_next(&iter, NULL, &value))
			g_ptr_array_add(all, vmbc_libvirt_vm_ref(value));
		for (guint i = 0; i < all->len; i++)
			vmbc_libvirt_vm_remove(self, g_ptr_array_index(all, i),
					       "libvirt-uri changed");
		vmbc_libvirt_backend_drop_connection(self);
		g_clear_handle_id(&self->reconnect_id, g_source_remove);
		self->lost_at = 0;
		self->backoff_ms = VMBC_LIBVIRT_RECONNECT_MIN_MS;
		vmbc_libvirt_backend_connect(self);
		return TRUE;
	}
	g_hash_table_iter_init(&iter, self->vms);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		VmbcLibvirtVm *vm = value;
		if (vm->sampler != NULL)
			vmbc_proc_sampler_set_smaps_interval(vm->sampler, self->smaps_usec);
	}
	/* a new stats period reaches domains without one on their next adoption */
	if (self->stats_sec != old_stats)
		vmbc_libvirt_backend_reset_stats(self);
	return TRUE;
}

static void
vmbc_libvirt_backend_describe(VmbcBackend *backend, VmbcBeancounter *bc, JsonBuilder *builder)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(backend);
	VmbcLibvirtVm *vm = bc->backend_data;

	if (vm == NULL)
		return;
	json_builder_set_member_name(builder, "uri");
	json_builder_add_string_value(builder, self->uri);
	json_builder_set_member_name(builder, "uuid");
	json_builder_add_string_value(builder, vm->uuid);
	json_builder_set_member_name(builder, "pid");
	json_builder_add_int_value(builder, vm->pid);
	json_builder_set_member_name(builder, "balloon-model");
	if (vm->info.balloon_model != NULL)
		json_builder_add_string_value(builder, vm->info.balloon_model);
	else
		json_builder_add_null_value(builder);
	json_builder_set_member_name(builder, "stats-period");
	json_builder_add_int_value(builder, vm->info.stats_period);
	json_builder_set_member_name(builder, "connected");
	json_builder_add_boolean_value(builder, vm->dom != NULL);
}

static gboolean
vmbc_libvirt_backend_first_pass_done(VmbcBackend *backend)
{
	return VMBC_LIBVIRT_BACKEND(backend)->first_pass_done;
}

static gboolean
vmbc_libvirt_backend_is_up(VmbcBackend *backend)
{
	return VMBC_LIBVIRT_BACKEND(backend)->conn != NULL;
}

static void
vmbc_libvirt_backend_finalize(GObject *object)
{
	VmbcLibvirtBackend *self = VMBC_LIBVIRT_BACKEND(object);

	g_clear_pointer(&self->vms, g_hash_table_unref);
	g_free(self->uri);
	g_free(self->last_connect_error);
	G_OBJECT_CLASS(vmbc_libvirt_backend_parent_class)->finalize(object);
}

static void
vmbc_libvirt_backend_class_init(VmbcLibvirtBackendClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	VmbcBackendClass *backend_class = VMBC_BACKEND_CLASS(klass);

	/* once per process: libvirt's events and keepalives run on the GLib main loop */
	gvir_event_register();
	virSetErrorFunc(NULL, silent_error_func);

	object_class->finalize = vmbc_libvirt_backend_finalize;
	backend_class->settings = vmbc_libvirt_backend_settings;
	backend_class->start = vmbc_libvirt_backend_start;
	backend_class->stop = vmbc_libvirt_backend_stop;
	backend_class->reload = vmbc_libvirt_backend_reload;
	backend_class->sample = vmbc_libvirt_backend_sample;
	backend_class->sample_vm = vmbc_libvirt_backend_sample_vm;
	backend_class->set_balloon = vmbc_libvirt_backend_set_balloon;
	backend_class->escalate = vmbc_libvirt_backend_escalate;
	backend_class->describe = vmbc_libvirt_backend_describe;
	backend_class->is_up = vmbc_libvirt_backend_is_up;
	backend_class->first_pass_done = vmbc_libvirt_backend_first_pass_done;
	backend_class->persist = vmbc_libvirt_backend_persist;
	backend_class->persist_finish = vmbc_libvirt_backend_persist_finish;
}

static void
vmbc_libvirt_backend_init(VmbcLibvirtBackend *self)
{
	self->vms = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
					  (GDestroyNotify)vmbc_libvirt_vm_unref);
	self->lifecycle_id = -1;
	self->balloon_id = -1;
	self->vmem_event_id = -1;
	self->metadata_id = -1;
	self->backoff_ms = VMBC_LIBVIRT_RECONNECT_MIN_MS;
}

void
vmbc_libvirt_backend_set_read_only(VmbcLibvirtBackend *self, gboolean read_only)
{
	g_return_if_fail(VMBC_IS_LIBVIRT_BACKEND(self));
	self->force_read_only = read_only;
}

gboolean
vmbc_libvirt_backend_is_read_only(VmbcLibvirtBackend *self)
{
	g_return_val_if_fail(VMBC_IS_LIBVIRT_BACKEND(self), FALSE);
	return self->conn != NULL && self->read_only;
}

guint
vmbc_libvirt_backend_get_n_vms(VmbcLibvirtBackend *self)
{
	g_return_val_if_fail(VMBC_IS_LIBVIRT_BACKEND(self), 0);
	return g_hash_table_size(self->vms);
}

guint
vmbc_libvirt_backend_get_n_connects(VmbcLibvirtBackend *self)
{
	g_return_val_if_fail(VMBC_IS_LIBVIRT_BACKEND(self), 0);
	return self->n_connects;
}
