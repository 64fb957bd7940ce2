/*
 * vmbc-charge.c: what one host-side sample charges to a VM's physpages:
 * KSM-merged pages at their fraction (the sampler's exact Rss less Pss, or
 * KSM's global average), and what the sample says of the VM's guest RAM
 * (its backends' size, the hugetlb part no balloon can take).
 */
#include "vmbc-engine-private.h"

void
vmbc_engine_set_ksm(VmbcEngine *engine, gint64 pages_shared, gint64 pages_sharing)
{
	engine->ksm_shared = MAX(pages_shared, 0);
	engine->ksm_sharing = MAX(pages_sharing, 0);
}

/*
 * The pages to charge for a sample's resident guest RAM: less what KSM's other
 * sharers pay for where the sampler measured it (Pss), else the merged pages at
 * the average fraction of a KSM page each sharer pays.
 */
gint64
vmbc_engine_charge_for(VmbcEngine *engine, const VmbcSample *sample)
{
	gint64 mappings = engine->ksm_shared + engine->ksm_sharing;
	gint64 resident = sample->physpages;
	gint64 merged = sample->ksm_pages;

	if (sample->ksm_exact)
		return resident - CLAMP(sample->ksm_saved, 0, resident);
	if (merged <= 0 || engine->ksm_shared <= 0 || mappings <= 0)
		return resident;
	merged = MIN(merged, resident);
	/* rounded up: a sharer never pays less than its share */
	return resident - merged +
	       (gint64)(((gdouble)merged * (gdouble)engine->ksm_shared + (gdouble)mappings - 1) /
			(gdouble)mappings);
}

void
vmbc_engine_note_ram(VmbcBeancounter *bc, const VmbcSample *sample)
{
	bc->ksm_pages = MAX(sample->ksm_pages, 0);
	bc->ksm_saved_pages = sample->physpages - bc->parm[VMBC_RES_PHYSPAGES].held;
	bc->hugetlb_pages = MAX(sample->hugetlb_pages, 0);
	if (sample->ram_pages > 0) {
		bc->ram_pages = sample->ram_pages;
		bc->ram_hugetlb_pages = MAX(sample->ram_hugetlb_pages, 0);
	}
}
