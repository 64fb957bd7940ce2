/*
 * fuzz-qmp.c: libFuzzer target for the QMP wire and routing layers.
 *
 * The input is a byte stream as a peer might send it. It goes through the
 * framer in pieces whose size the first byte picks (so splits are fuzzed
 * too), and every framed message through the parser the client routes with
 * (qmp_message_parse) and the one the server uses (qmp_command_parse). The
 * whole input also goes to both parsers unframed. Nothing here may crash,
 * leak or hit undefined behaviour, whatever the bytes.
 */
#include <stdint.h>

#include "qmp-error.h"
#include "qmp-framer.h"
#include "qmp-message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
parse_both(const gchar *text, gsize len)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) error2 = NULL;
	g_autoptr(QmpMessage) msg = qmp_message_parse(text, len, &error);
	QmpCommand cmd;

	g_assert((msg == NULL) == (error != NULL));
	if (msg != NULL) {
		switch (msg->kind) {
		case QMP_MESSAGE_GREETING:
			g_assert(msg->greeting != NULL);
			break;
		case QMP_MESSAGE_RETURN:
			g_assert(msg->ret != NULL);
			break;
		case QMP_MESSAGE_ERROR:
			g_assert(msg->error_class != NULL && msg->error_desc != NULL);
			(void)qmp_error_from_class(msg->error_class);
			break;
		case QMP_MESSAGE_EVENT:
			g_assert(msg->event != NULL);
			break;
		default:
			g_assert_not_reached();
		}
	}
	if (qmp_command_parse(text, len, &cmd, &error2))
		g_assert(cmd.execute != NULL);
	else
		g_assert(error2 != NULL);
	qmp_command_clear(&cmd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(QmpFramer) framer = NULL;
	const gchar *text = (const gchar *)data;
	gsize step;
	gchar *msg;

	if (size == 0)
		return 0;
	/* a small bound, so that the too-large path is reached too */
	framer = qmp_framer_new(4096);
	step = (gsize)(data[0] % 64) + 1;
	for (gsize off = 1; off < size; off += step) {
		gboolean ok = qmp_framer_push(framer, text + off, MIN(step, size - off), NULL);

		while ((msg = qmp_framer_pop(framer)) != NULL) {
			parse_both(msg, strlen(msg));
			g_free(msg);
		}
		if (!ok)
			break;
	}
	(void)qmp_framer_get_partial_size(framer);
	parse_both(text + 1, size - 1);
	return 0;
}
