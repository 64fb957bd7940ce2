/*
 * vmbc-ksm.h: the kernel's KSM counters (/sys/kernel/mm/ksm), read for the
 * fractional charging of pages KSM merged across VMs. Read only: vmbcd never
 * changes KSM's settings.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Where the counters are: $VMBC_KSM_DIR (for tests) or /sys/kernel/mm/ksm. */
const gchar *vmbc_ksm_dir(void);

/*
 * Reads pages_shared and pages_sharing under @dir. A counter that cannot be
 * read (no KSM in this kernel, garbage) reads as -1: the engine then charges
 * merged pages whole, as if KSM were off.
 */
void vmbc_ksm_read(const gchar *dir, gint64 *pages_shared, gint64 *pages_sharing);

G_END_DECLS
