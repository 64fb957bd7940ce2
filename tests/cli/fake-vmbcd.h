/*
 * fake-vmbcd.h: a stand-in for vmbcd's control socket, for the CLI tests.
 *
 * Speaks the protocol of docs/control-protocol.md over a real QmpServer and
 * answers with canned replies in the documented shapes: a host and two
 * domains, web1 (1 GiB, under its physpages limit, failcnt 3) and db2
 * (holding more). A test can replace the reply or error of any command, see
 * the arguments the CLI sent, and have events sent after a reply.
 */
#pragma once

#include <json-glib/json-glib.h>

#include "qmp-server.h"

G_BEGIN_DECLS

typedef struct _FakeVmbcd FakeVmbcd;

/* The canned replies, as JSON text. */
#define FAKE_VMBCD_PAGE_SIZE 4096
extern const gchar fake_vmbcd_beancounters[];
extern const gchar fake_vmbcd_domains[];

/* A fake with the vmbc greeting; @greeting_json replaces the "QMP" member if not NULL. */
FakeVmbcd *fake_vmbcd_new(const gchar *greeting_json);

void fake_vmbcd_free(FakeVmbcd *fake);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FakeVmbcd, fake_vmbcd_free)

gboolean fake_vmbcd_listen(FakeVmbcd *fake, const gchar *socket_path, GError **error);

/* From now on @command returns @json_return (a JSON text). */
void fake_vmbcd_set_reply(FakeVmbcd *fake, const gchar *command, const gchar *json_return);

/* From now on @command fails with a GenericError and @desc. */
void fake_vmbcd_set_error(FakeVmbcd *fake, const gchar *command, const gchar *desc);

/*
 * After answering @command, sends @events (JSON texts of {"event", "data"}
 * objects, NULL-terminated, copied) on that connection, then closes it if
 * @close.
 */
void fake_vmbcd_set_events_after(FakeVmbcd *fake, const gchar *command, const gchar *const *events,
				 gboolean close);

/* Sends an event to every connection. @data_json may be NULL. */
void fake_vmbcd_broadcast(FakeVmbcd *fake, const gchar *name, const gchar *data_json);

/* How often @command was received. */
guint fake_vmbcd_count(FakeVmbcd *fake, const gchar *command);

/* The arguments of the last @command as compact JSON text, or NULL (borrowed). */
const gchar *fake_vmbcd_last_arguments(FakeVmbcd *fake, const gchar *command);

G_END_DECLS
