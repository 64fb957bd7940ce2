/*
 * qmp-framer.c: splits a byte stream into QMP messages.
 *
 * The framer is the wire layer only: it knows JSON well enough to find where
 * an object ends (brace depth outside strings, with backslash escapes) and
 * nothing about what the object means. It never looks at a newline, so a peer
 * that sends "\r\n", "\n" or nothing between messages works the same.
 */
#include "qmp-framer.h"

#include "qmp-error.h"

/*
 * Bound on nesting ({ and [ together) inside one message: the JSON parser
 * above us recurses once per level, and a peer must not be able to exhaust
 * the stack with a message that is small but deep.
 */
#define QMP_FRAMER_MAX_NESTING 1024

struct _QmpFramer {
	gsize max_message;
	GString *buf;	    /* the message being assembled, empty between messages */
	guint brace_depth;  /* open { outside strings */
	guint nesting;	    /* open { and [ outside strings */
	gboolean in_string; /* inside a JSON string */
	gboolean escape;    /* the previous byte was a backslash inside a string */
	gboolean failed;    /* an error was reported; nothing more is accepted */
	GQueue messages;    /* complete message texts, gchar * */
};

/*
 * Creates a framer that refuses any message larger than @max_message bytes
 * (0 means the client's default bound).
 */
QmpFramer *
qmp_framer_new(gsize max_message)
{
	QmpFramer *self = g_new0(QmpFramer, 1);

	self->max_message = max_message > 0 ? max_message : 10 * 1024 * 1024;
	self->buf = g_string_new(NULL);
	g_queue_init(&self->messages);
	return self;
}

void
qmp_framer_free(QmpFramer *self)
{
	if (self == NULL)
		return;
	g_string_free(self->buf, TRUE);
	g_queue_clear_full(&self->messages, g_free);
	g_free(self);
}

static gboolean
qmp_framer_is_space(gchar c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * Scans @data byte by byte. Bytes are copied into the message buffer in runs
 * rather than one at a time, since a message can be megabytes long.
 */
gboolean
qmp_framer_push(QmpFramer *self, const gchar *data, gsize len, GError **error)
{
	gsize run_start = 0;

	g_return_val_if_fail(self != NULL, FALSE);
	g_return_val_if_fail(data != NULL || len == 0, FALSE);

	if (self->failed) {
		g_set_error_literal(error, QMP_ERROR, QMP_ERROR_PROTOCOL,
				    "QMP stream already failed");
		return FALSE;
	}

	for (gsize i = 0; i < len; i++) {
		gchar c = data[i];

		if (self->buf->len == 0 && i == run_start) {
			/* between messages: only whitespace and the start of an object */
			if (qmp_framer_is_space(c)) {
				run_start = i + 1;
				continue;
			}
			if (c != '{') {
				self->failed = TRUE;
				g_set_error(error, QMP_ERROR, QMP_ERROR_PROTOCOL,
					    "unexpected byte 0x%02x outside a QMP message",
					    (guint)(guchar)c);
				return FALSE;
			}
		}

		if (self->buf->len + (i - run_start) + 1 > self->max_message) {
			self->failed = TRUE;
			g_set_error(error, QMP_ERROR, QMP_ERROR_TOO_LARGE,
				    "QMP message larger than %" G_GSIZE_FORMAT " bytes",
				    self->max_message);
			return FALSE;
		}

		if (self->in_string) {
			if (self->escape)
				self->escape = FALSE;
			else if (c == '\\')
				self->escape = TRUE;
			else if (c == '"')
				self->in_string = FALSE;
			continue;
		}

		switch (c) {
		case '"':
			self->in_string = TRUE;
			break;
		case '{':
			self->brace_depth++;
			self->nesting++;
			break;
		case '[':
			self->nesting++;
			break;
		case ']':
			if (self->nesting > 0)
				self->nesting--;
			break;
		case '}':
			if (self->nesting > 0)
				self->nesting--;
			self->brace_depth--;
			if (self->brace_depth == 0) {
				g_string_append_len(self->buf, data + run_start,
						    (gssize)(i + 1 - run_start));
				g_queue_push_tail(
					&self->messages,
					g_string_free(g_steal_pointer(&self->buf), FALSE));
				self->buf = g_string_new(NULL);
				self->nesting = 0;
				run_start = i + 1;
			}
			break;
		default:
			break;
		}

		if (self->nesting > QMP_FRAMER_MAX_NESTING) {
			self->failed = TRUE;
			g_set_error(error, QMP_ERROR, QMP_ERROR_PROTOCOL,
				    "QMP message nested deeper than %d levels",
				    QMP_FRAMER_MAX_NESTING);
			return FALSE;
		}
	}

	if (run_start < len)
		g_string_append_len(self->buf, data + run_start, (gssize)(len - run_start));
	return TRUE;
}

gchar *
qmp_framer_pop(QmpFramer *self)
{
	g_return_val_if_fail(self != NULL, NULL);
	return g_queue_pop_head(&self->messages);
}

gsize
qmp_framer_get_partial_size(QmpFramer *self)
{
	g_return_val_if_fail(self != NULL, 0);
	return self->buf->len;
}
