/*
 * vmbc-policy.h: a VM's policy as it travels with the VM: the barrier and
 * limit of each resource (the guarantee being vmguarpages' barrier) and its
 * shares, as an XML element in the vmbc namespace that a libvirt domain
 * keeps in its <metadata> (and so through migration):
 *
 *   <vmbc:policy xmlns:vmbc="urn:x-vmbc:policy:1">
 *     <vmbc:physpages barrier="1536M" limit="2G"/>
 *     <vmbc:guarantee size="512M"/>
 *     <vmbc:vmmpages limit="64M"/>
 *     <vmbc:shares value="2000"/>
 *   </vmbc:policy>
 *
 * Sizes are written as for vmbc (512M, 1000p, 80%, unlimited) and resolved
 * against the VM's maximum memory where the policy is applied. Parsing and
 * writing are pure functions of their input, for the unit tests.
 */
#pragma once

#include <glib.h>

#include "vmbc-resource.h"

G_BEGIN_DECLS

/* The namespace URI and the prefix libvirt stores the element under. */
#define VMBC_POLICY_NS_URI "urn:x-vmbc:policy:1"
#define VMBC_POLICY_NS_KEY "vmbc"

typedef struct {
	gboolean set[VMBC_RES_COUNT];
	gchar *barrier[VMBC_RES_COUNT]; /* size text; NULL when not set */
	gchar *limit[VMBC_RES_COUNT];
	gint64 shares; /* 0: not set */
} VmbcPolicy;

VmbcPolicy *vmbc_policy_new(void);
void vmbc_policy_free(VmbcPolicy *policy);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbcPolicy, vmbc_policy_free)

/* Sets @res to @barrier and @limit (size texts, copied). */
void vmbc_policy_set(VmbcPolicy *policy, VmbcResourceId res, const gchar *barrier,
		     const gchar *limit);

/*
 * Parses the policy element @xml (as virDomainGetMetadata() returns it; the
 * element names may carry any prefix). On error NULL is returned and the
 * message says what was wrong and where: "unknown element <foo> in the vmbc
 * policy (expected ...)", "invalid size '12Q' for physpages limit: ...".
 */
VmbcPolicy *vmbc_policy_parse(const gchar *xml, GError **error);

/*
 * The policy as the element vmbc_policy_parse() reads, without a namespace:
 * virDomainSetMetadata() puts it in VMBC_POLICY_NS_URI under the prefix
 * VMBC_POLICY_NS_KEY (and refuses an element that declares one already).
 */
gchar *vmbc_policy_to_xml(const VmbcPolicy *policy);

/* A short canonical text of @policy: equal for equal policies, for comparison and logs. */
gchar *vmbc_policy_describe(const VmbcPolicy *policy);

/*
 * A size text for @pages that reads back as exactly @pages: "1536M", "2G",
 * "unlimited", or "12345p" when no unit says it exactly.
 */
gchar *vmbc_policy_format_size(gint64 pages, gsize page_size);

G_END_DECLS
