/*
 * vmbc-settings.h: the [daemon] keys of vmbc.conf that a backend declares
 * and reads.
 *
 * A backend lists its keys in its class (VmbcBackendClass.settings): name,
 * type, default and range. The configuration loader accepts a [daemon] key
 * only if vmbcd itself or a compiled-in backend declares it, checks each value
 * against its declaration (naming the file and line when it is wrong) and
 * hands every backend the checked values as a VmbcSettings; the backend reads
 * them through the typed getters below. So a backend's keys live with the
 * backend, and the daemon knows none of them by name.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
	VMBC_SETTING_STRING,   /* any text */
	VMBC_SETTING_PATH,     /* an absolute path */
	VMBC_SETTING_PATHS,    /* a list of absolute paths (or globs), ';' between them */
	VMBC_SETTING_DURATION, /* "250ms", "2s", "5m": usec within [min, max]; "0" or "off" if min
				  is 0 */
	VMBC_SETTING_SECONDS,  /* whole seconds within [min, max] */
	VMBC_SETTING_CHOICE,   /* one of the words in choices */
} VmbcSettingType;

typedef struct {
	const gchar *key;
	VmbcSettingType type;
	const gchar *default_value; /* as it would be written in vmbc.conf */
	gint64 min;		    /* DURATION: usec, SECONDS: seconds; else unused */
	gint64 max;
	const gchar *choices; /* CHOICE: the words allowed, '|' between them; else unused */
} VmbcSettingSpec;

/* The checked values of every declared key, defaults included. */
typedef struct _VmbcSettings VmbcSettings;

VmbcSettings *vmbc_settings_new(void);
void vmbc_settings_free(VmbcSettings *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbcSettings, vmbc_settings_free)

/*
 * Declares @specs (terminated by a NULL key) with their defaults. A key
 * declared already keeps its first declaration: backends that share a key
 * (smaps-interval) declare it alike.
 */
void vmbc_settings_declare(VmbcSettings *self, const VmbcSettingSpec *specs);

/* The declaration of @key, or NULL when nothing declares it. */
const VmbcSettingSpec *vmbc_settings_lookup(const VmbcSettings *self, const gchar *key);

/* The declared keys, sorted, in a NULL-terminated array (free the array only). */
const gchar **vmbc_settings_get_keys(const VmbcSettings *self);

/*
 * Checks @value against the declaration of @key and keeps it. On error FALSE
 * is returned with the reason (without file or line: the caller knows them)
 * and the value before stays.
 */
gboolean vmbc_settings_set(VmbcSettings *self, const gchar *key, const gchar *value,
			   GError **error);

/*
 * The getters. @key must be declared with the matching type (a programming
 * error otherwise, reported as a critical).
 */
const gchar *vmbc_settings_get_string(const VmbcSettings *self, const gchar *key);
const gchar *const *vmbc_settings_get_paths(const VmbcSettings *self, const gchar *key);
gint64 vmbc_settings_get_usec(const VmbcSettings *self, const gchar *key);
guint vmbc_settings_get_seconds(const VmbcSettings *self, const gchar *key);

G_END_DECLS
