/*
 * qmp-test-fake.h: a scripted fake QMP server for client tests.
 *
 * The fake answers a queue of expected commands, in order. A command other
 * than the next expected one is recorded as "expected command 'X' got 'Y'"
 * and checked by qmp_test_fake_assert_ok(). A reply template may contain
 * @ID@, replaced by the id the client sent (as JSON); a step without a reply
 * holds the command so that the test can answer it later, in any order.
 */
#pragma once

#include "qmp-test-peer.h"

G_BEGIN_DECLS

typedef struct {
	QmpTestPeer *peer;
	GQueue steps;	     /* QmpTestStep */
	GPtrArray *failures; /* gchar * */
	GPtrArray *held_ids; /* gchar *, JSON text of held ids in arrival order */
	GPtrArray *received; /* JsonNode *, every command received */
} QmpTestFake;

/* Greets with QEMU 7.2's greeting when @greeting is NULL, nothing when "". */
QmpTestFake *qmp_test_fake_new(GSocket *sock, const gchar *greeting);
void qmp_test_fake_free(QmpTestFake *fake);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QmpTestFake, qmp_test_fake_free)

/* Expects @command next and answers with @reply (NULL: hold it). */
void qmp_test_fake_expect(QmpTestFake *fake, const gchar *command, const gchar *reply);
/* Answers held command number @index (0 = first held) with @reply. */
void qmp_test_fake_reply_held(QmpTestFake *fake, guint index, const gchar *reply);
/* Replaces @ID@ in @templ with @id_json. */
gchar *qmp_test_fake_fill(const gchar *templ, const gchar *id_json);
/* Fails the test with every recorded mismatch. */
void qmp_test_fake_assert_ok(QmpTestFake *fake);

#define QMP_TEST_GREETING                                                                          \
	"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, "         \
	"\"package\": \"Debian 1:7.2+dfsg-7+deb12u18+b3\"}, \"capabilities\": [\"oob\"]}}"

G_END_DECLS
