/*
 * vmbc-ksm.c: KSM's counters from sysfs (see vmbc-ksm.h).
 */
#include "vmbc-ksm.h"

/* A non-negative decimal number from a sysfs file, or -1. */
static gint64
read_sysfs_number(const gchar *path)
{
	g_autofree gchar *text = NULL;
	gchar *end = NULL;
	gint64 v;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return -1;
	v = g_ascii_strtoll(text, &end, 10);
	if (end == text || v < 0)
		return -1;
	return v;
}

const gchar *
vmbc_ksm_dir(void)
{
	const gchar *dir = g_getenv("VMBC_KSM_DIR");

	return dir != NULL && *dir != '\0' ? dir : "/sys/kernel/mm/ksm";
}

void
vmbc_ksm_read(const gchar *dir, gint64 *pages_shared, gint64 *pages_sharing)
{
	g_autofree gchar *shared = g_build_filename(dir, "pages_shared", NULL);
	g_autofree gchar *sharing = g_build_filename(dir, "pages_sharing", NULL);

	*pages_shared = read_sysfs_number(shared);
	*pages_sharing = read_sysfs_number(sharing);
}
