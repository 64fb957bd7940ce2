/*
 * vmbc-settings.c: declared [daemon] keys and their checked values (see
 * vmbc-settings.h).
 */
#include "vmbc-settings.h"
#include "vmbc-error.h"
#include "vmbc-size.h"

typedef struct {
	const VmbcSettingSpec *spec; /* static, the declaring backend's */
	gchar *text;		     /* as written (stripped) */
	gchar **paths;		     /* PATHS */
	gint64 number;		     /* DURATION: usec; SECONDS: seconds */
} Value;

struct _VmbcSettings {
	GHashTable *values; /* key -> Value* */
};

static void
value_free(gpointer data)
{
	Value *v = data;

	g_free(v->text);
	g_strfreev(v->paths);
	g_free(v);
}

VmbcSettings *
vmbc_settings_new(void)
{
	VmbcSettings *self = g_new0(VmbcSettings, 1);

	self->values = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, value_free);
	return self;
}

void
vmbc_settings_free(VmbcSettings *self)
{
	if (self == NULL)
		return;
	g_hash_table_unref(self->values);
	g_free(self);
}

/* Parses @text as @spec says into @out (not touched on error). */
static gboolean
parse(const VmbcSettingSpec *spec, const gchar *text, Value *out, GError **error)
{
	g_autoptr(GError) local = NULL;
	g_auto(GStrv) paths = NULL;
	gint64 n = 0;

	switch (spec->type) {
	case VMBC_SETTING_STRING:
		break;
	case VMBC_SETTING_PATH:
		if (!g_path_is_absolute(text)) {
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "'%s' is not an absolute path", text);
			return FALSE;
		}
		break;
	case VMBC_SETTING_PATHS: {
		g_auto(GStrv) parts = g_strsplit(text, ";", -1);
		g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func(g_free);

		for (guint i = 0; parts[i] != NULL; i++) {
			g_strstrip(parts[i]);
			/* GKeyFile's lists may end with the separator */
			if (parts[i][0] == '\0' && parts[i + 1] == NULL)
				break;
			if (!g_path_is_absolute(parts[i])) {
				g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
					    "'%s' is not an absolute path", parts[i]);
				return FALSE;
			}
			g_ptr_array_add(list, g_strdup(parts[i]));
		}
		g_ptr_array_add(list, NULL);
		paths = (gchar **)g_ptr_array_free(g_steal_pointer(&list), FALSE);
		break;
	}
	case VMBC_SETTING_DURATION:
		/* a duration that may be 0 (off) takes "0" and "off" for it */
		if (spec->min == 0 && (g_strcmp0(text, "0") == 0 || g_strcmp0(text, "off") == 0)) {
			n = 0;
			break;
		}
		if (!vmbc_duration_parse(text, &n, &local)) {
			g_propagate_error(error, g_steal_pointer(&local));
			return FALSE;
		}
		if (n < spec->min || n > spec->max) {
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "'%s' is out of range (%.3g s to %.3g s)", text,
				    (gdouble)spec->min / 1e6, (gdouble)spec->max / 1e6);
			return FALSE;
		}
		break;
	case VMBC_SETTING_SECONDS: {
		guint64 u = 0;

		if (!g_ascii_string_to_unsigned(text, 10, 0, G_MAXINT64, &u, NULL)) {
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "'%s' is not a whole number of seconds", text);
			return FALSE;
		}
		if ((gint64)u < spec->min || (gint64)u > spec->max) {
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "%s is out of range (%" G_GINT64_FORMAT " to %" G_GINT64_FORMAT
				    ")",
				    text, spec->min, spec->max);
			return FALSE;
		}
		n = (gint64)u;
		break;
	}
	case VMBC_SETTING_CHOICE: {
		g_auto(GStrv) words =
			g_strsplit(spec->choices != NULL ? spec->choices : "", "|", -1);

		if (!g_strv_contains((const gchar *const *)words, text)) {
			g_autofree gchar *list = g_strjoinv(", ", words);
			g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID, "'%s' is not one of %s",
				    text, list);
			return FALSE;
		}
		break;
	}
	default:
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID, "key '%s' has no known type",
			    spec->key);
		return FALSE;
	}
	g_free(out->text);
	out->text = g_strdup(text);
	g_strfreev(out->paths);
	out->paths = g_steal_pointer(&paths);
	out->number = n;
	return TRUE;
}

void
vmbc_settings_declare(VmbcSettings *self, const VmbcSettingSpec *specs)
{
	g_return_if_fail(self != NULL);

	for (guint i = 0; specs != NULL && specs[i].key != NULL; i++) {
		g_autoptr(GError) error = NULL;
		Value *v;

		if (g_hash_table_contains(self->values, specs[i].key))
			continue;
		v = g_new0(Value, 1);
		v->spec = &specs[i];
		/* a default that does not parse is a bug in the declaring backend */
		if (!parse(&specs[i], specs[i].default_value, v, &error))
			g_critical("default of key '%s': %s", specs[i].key, error->message);
		g_hash_table_insert(self->values, (gpointer)specs[i].key, v);
	}
}

const VmbcSettingSpec *
vmbc_settings_lookup(const VmbcSettings *self, const gchar *key)
{
	Value *v = g_hash_table_lookup(self->values, key);

	return v != NULL ? v->spec : NULL;
}

static gint
compare_keys(gconstpointer a, gconstpointer b, gpointer user_data)
{
	return g_strcmp0(*(const gchar *const *)a, *(const gchar *const *)b);
}

const gchar **
vmbc_settings_get_keys(const VmbcSettings *self)
{
	const gchar **keys = (const gchar **)g_hash_table_get_keys_as_array(self->values, NULL);

	g_qsort_with_data(keys, (gint)g_hash_table_size(self->values), sizeof(gchar *),
			  compare_keys, NULL);
	return keys;
}

gboolean
vmbc_settings_set(VmbcSettings *self, const gchar *key, const gchar *value, GError **error)
{
	Value *v = g_hash_table_lookup(self->values, key);
	g_autofree gchar *text = NULL;

	if (v == NULL) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID, "unknown key '%s'", key);
		return FALSE;
	}
	text = g_strstrip(g_strdup(value));
	return parse(v->spec, text, v, error);
}

/* The value of @key, checked to be of @type. */
static const Value *
get(const VmbcSettings *self, const gchar *key, VmbcSettingType type)
{
	const Value *v = g_hash_table_lookup(self->values, key);

	if (v == NULL || v->spec->type != type) {
		g_critical("setting '%s' is not declared as type %d", key, (int)type);
		return NULL;
	}
	return v;
}

const gchar *
vmbc_settings_get_string(const VmbcSettings *self, const gchar *key)
{
	const Value *v = g_hash_table_lookup(self->values, key);

	if (v == NULL) {
		g_critical("setting '%s' is not declared", key);
		return NULL;
	}
	return v->text;
}

const gchar *const *
vmbc_settings_get_paths(const VmbcSettings *self, const gchar *key)
{
	const Value *v = get(self, key, VMBC_SETTING_PATHS);

	return v != NULL ? (const gchar *const *)v->paths : NULL;
}

gint64
vmbc_settings_get_usec(const VmbcSettings *self, const gchar *key)
{
	const Value *v = get(self, key, VMBC_SETTING_DURATION);

	return v != NULL ? v->number : 0;
}

guint
vmbc_settings_get_seconds(const VmbcSettings *self, const gchar *key)
{
	const Value *v = get(self, key, VMBC_SETTING_SECONDS);

	return v != NULL ? (guint)v->number : 0;
}
