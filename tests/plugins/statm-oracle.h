/*
 * statm-oracle.h: what /proc/PID/statm says, read by the tests themselves,
 * the truth a sampler's reading is checked against.
 */
#pragma once

#include <glib.h>
#include <sys/types.h>

/* Resident pages of @pid now, from /proc/PID/statm: the total the sampler reads. */
gint64 statm_oracle_resident(pid_t pid);
