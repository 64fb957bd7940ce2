/*
 * vmbc-metrics.c: the HTTP server of the Prometheus endpoint of vmbcd; the
 * page itself comes from the renderer (vmbc-metrics-renderer.c).
 *
 * libsoup 3 fed by our own GSocketService, so that every connection is known
 * here: a request must arrive within VMBC_METRICS_REQUEST_TIMEOUT_USEC, at
 * most VMBC_METRICS_MAX_CONNECTIONS are served at once (when they are all
 * taken, the connection idle the longest, one that has not sent a request,
 * gives way to the new one: clients that hold connections open without
 * asking for anything cannot keep a scraper out), anything but GET/HEAD
 * of /metrics and /healthz is refused from its headers alone (a body is never
 * read), and libsoup caps the header size. The engine's tick runs at a higher
 * priority than any of this.
 *
 * The page goes out as it is rendered (chunked transfer encoding): a piece
 * of VMBC_METRICS_PIECE_BYTES is rendered when the one before has been
 * written to the socket, from an idle source, so the main loop (the tick
 * first) runs between two pieces and the page is never held whole: at 10000
 * VMs it is 25 MiB.
 */
#include "config.h"

#include <libsoup/soup.h>
#include <string.h>

#include "vmbc-metrics.h"

#define CONTENT_TYPE_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define SWEEP_INTERVAL_MS    500
/* What one piece of a page holds, at least (a VM's rows of a family are not split). */
#define VMBC_METRICS_PIECE_BYTES (256 * 1024)

/* A client connection we handed to libsoup. */
typedef struct {
	GSocketConnection *stream;
	gint64 accepted; /* monotonic usec */
	gint64 deadline; /* monotonic usec: a request must be done by then */
	gboolean asked;	 /* a request's headers arrived: no longer idle */
	gboolean shut;	 /* cut off (deadline passed, or gave way) and the socket shut down */
} Conn;

/* A page on its way out. */
typedef struct {
	VmbcMetrics *m;
	SoupServerMessage *msg; /* a reference */
	VmbcMetricsPage *page;
	gboolean complete; /* the last piece is in the body */
	guint idle_id;	   /* rendering the next piece */
} Stream;

/*
 * The buffers pieces of a page are rendered into, kept for the next piece and
 * the next scrape: a piece is bigger than malloc's mmap threshold, so a new
 * buffer for each would be mapped, faulted in and unmapped every time. The
 * spare buffers are a GPtrArray of GString; a piece holds a reference to it
 * until libsoup has written it, so buffers that come back after the endpoint
 * is gone are freed with the array. At most PIECE_POOL_KEEP are kept.
 */
#define PIECE_POOL_KEEP 2

typedef struct {
	GPtrArray *spare;
	GString *buf;
} Piece;

static void
spare_free(gpointer data)
{
	g_string_free(data, TRUE);
}

/* libsoup wrote the piece: its buffer goes back to the spares (main loop only). */
static void
piece_release(gpointer data)
{
	Piece *piece = data;

	if (piece->spare->len < PIECE_POOL_KEEP) {
		g_string_truncate(piece->buf, 0);
		g_ptr_array_add(piece->spare, piece->buf);
	} else {
		g_string_free(piece->buf, TRUE);
	}
	g_ptr_array_unref(piece->spare);
	g_free(piece);
}

struct _VmbcMetrics {
	VmbcMetricsRenderer *renderer;
	SoupServer *server;
	GSocketService *service;
	guint16 port;
	GPtrArray *conns;	 /* Conn* */
	GPtrArray *streams;	 /* Stream*, owned */
	GPtrArray *spare_pieces; /* GString*, see Piece */
	guint sweep_id;
	VmbcMetricsServerStats stats;
};

static Conn *conn_for_message(VmbcMetrics *m, SoupServerMessage *msg);

/*
 * Every answer closes its connection: libsoup does not keep connections that
 * it did not accept itself alive, and saying so spares the client a failed
 * reuse. (A refused request may also have left a body unread.)
 */
static void
say_close(SoupServerMessage *msg)
{
	soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Connection",
				     "close");
}

static void
refuse(SoupServerMessage *msg, guint status, const gchar *text)
{
	say_close(msg);
	soup_server_message_set_status(msg, status, NULL);
	soup_server_message_set_response(msg, "text/plain; charset=utf-8", SOUP_MEMORY_STATIC, text,
					 strlen(text));
}

static gboolean
is_known_path(const gchar *path)
{
	return g_strcmp0(path, "/metrics") == 0 || g_strcmp0(path, "/healthz") == 0;
}

/*
 * libsoup reads a request's body after the early handlers even when they set a
 * status. A request that announces a body is therefore answered here and its
 * connection taken from libsoup: the body is never read, and the socket is
 * closed by the next sweep.
 */
static void
refuse_without_body(VmbcMetrics *m, SoupServerMessage *msg, guint status, const gchar *extra,
		    const gchar *text)
{
	Conn *c = conn_for_message(m, msg);
	g_autoptr(GIOStream) stream = soup_server_message_steal_connection(msg);
	g_autofree gchar *reply = NULL;
	GOutputStream *out;

	if (stream == NULL)
		return;
	reply = g_strdup_printf("HTTP/1.1 %u %s\r\nConnection: close\r\n%s"
				"Content-Type: text/plain; charset=utf-8\r\n"
				"Content-Length: %zu\r\n\r\n%s",
				status, soup_status_get_phrase(status), extra, strlen(text), text);
	/* a fresh connection's send buffer takes a few hundred bytes without blocking */
	out = g_io_stream_get_output_stream(stream);
	if (G_IS_POLLABLE_OUTPUT_STREAM(out))
		g_pollable_output_stream_write_nonblocking(G_POLLABLE_OUTPUT_STREAM(out), reply,
							   strlen(reply), NULL, NULL);
	if (c != NULL) {
		/* FIN after the answer; what the client still sends is dropped at close */
		g_socket_shutdown(g_socket_connection_get_socket(c->stream), FALSE, TRUE, NULL);
		c->shut = TRUE;
	} else {
		g_io_stream_close(stream, NULL, NULL);
	}
}

/* Decides from the headers alone. */
static void
on_early(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
	 gpointer user_data)
{
	VmbcMetrics *m = user_data;
	const gchar *method = soup_server_message_get_method(msg);
	SoupMessageHeaders *req = soup_server_message_get_request_headers(msg);
	SoupEncoding enc = soup_message_headers_get_encoding(req);
	gboolean body = enc == SOUP_ENCODING_CHUNKED || enc == SOUP_ENCODING_EOF ||
			(enc == SOUP_ENCODING_CONTENT_LENGTH &&
			 soup_message_headers_get_content_length(req) != 0);
	Conn *c = conn_for_message(m, msg);

	/* whatever the answer, this connection is being served: it no longer gives way */
	if (c != NULL)
		c->asked = TRUE;

	if (enc == SOUP_ENCODING_CONTENT_LENGTH &&
	    soup_message_headers_get_content_length(req) < 0) {
		refuse_without_body(m, msg, SOUP_STATUS_BAD_REQUEST, "", "bad Content-Length\n");
	} else if (!is_known_path(path)) {
		if (body)
			refuse_without_body(m, msg, SOUP_STATUS_NOT_FOUND, "", "not found\n");
		else
			refuse(msg, SOUP_STATUS_NOT_FOUND,
			       "not found: only /metrics and /healthz\n");
	} else if (g_strcmp0(method, "GET") != 0 && g_strcmp0(method, "HEAD") != 0) {
		if (body) {
			refuse_without_body(m, msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
					    "Allow: GET, HEAD\r\n", "method not allowed\n");
		} else {
			soup_message_headers_replace(soup_server_message_get_response_headers(msg),
						     "Allow", "GET, HEAD");
			refuse(msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
			       "method not allowed: GET or HEAD\n");
		}
	} else if (body) {
		refuse_without_body(m, msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "",
				    "a request body is not accepted\n");
	}
}

static void
stream_free(Stream *st)
{
	g_clear_handle_id(&st->idle_id, g_source_remove);
	g_signal_handlers_disconnect_by_data(st->msg, st);
	g_object_unref(st->msg);
	vmbc_metrics_page_free(st->page);
	g_free(st);
}

/* Renders the next piece of the page into the body, or ends the body. */
static void
stream_next_piece(Stream *st)
{
	SoupMessageBody *body = soup_server_message_get_response_body(st->msg);
	Piece *piece = g_new0(Piece, 1);
	gboolean more;

	piece->spare = g_ptr_array_ref(st->m->spare_pieces);
	piece->buf = piece->spare->len > 0
			     ? g_ptr_array_steal_index_fast(piece->spare, piece->spare->len - 1)
			     : g_string_sized_new(VMBC_METRICS_PIECE_BYTES + 16384);
	more = vmbc_metrics_page_next(st->page, piece->buf, VMBC_METRICS_PIECE_BYTES);
	if (piece->buf->len > 0) {
		g_autoptr(GBytes) bytes = g_bytes_new_with_free_func(
			piece->buf->str, piece->buf->len, piece_release, piece);
		soup_message_body_append_bytes(body, bytes);
	} else {
		piece_release(piece);
	}
	if (!more) {
		soup_message_body_complete(body);
		st->complete = TRUE;
	}
}

/* From an idle source: the piece before was written; the next one, and on. */
static gboolean
on_stream_idle(gpointer user_data)
{
	Stream *st = user_data;

	st->idle_id = 0;
	stream_next_piece(st);
	soup_server_message_unpause(st->msg);
	return G_SOURCE_REMOVE;
}

/*
 * A piece is written: the next is rendered from an idle source, so the main
 * loop runs in between; meanwhile libsoup, finding nothing more to write,
 * pauses the message until on_stream_idle() unpauses it.
 */
static void
on_stream_wrote_chunk(SoupServerMessage *msg, gpointer user_data)
{
	Stream *st = user_data;

	if (st->idle_id != 0 || st->complete)
		return;
	/* at libsoup's own priority: below the tick, and not starved by the QMP replies */
	st->idle_id = g_idle_add_full(G_PRIORITY_DEFAULT, on_stream_idle, st, NULL);
	g_source_set_name_by_id(st->idle_id, "[vmbcd] metrics page piece");
}

/* The message is done with, sent or not (the client may have gone). */
static void
on_stream_finished(SoupServerMessage *msg, gpointer user_data)
{
	Stream *st = user_data;

	g_ptr_array_remove_fast(st->m->streams, st);
}

/*
 * The headers of a page: chunked, or for HTTP/1.0, which has no chunks, until
 * the connection closes (every answer closes it).
 */
static void
set_page_headers(SoupServerMessage *msg)
{
	SoupMessageHeaders *headers = soup_server_message_get_response_headers(msg);

	soup_message_headers_set_encoding(headers,
					  soup_server_message_get_http_version(msg) == SOUP_HTTP_1_0
						  ? SOUP_ENCODING_EOF
						  : SOUP_ENCODING_CHUNKED);
	soup_message_headers_replace(headers, "Content-Type", CONTENT_TYPE_METRICS);
}

/* Starts sending the page of a GET /metrics, its first piece rendered now. */
static void
stream_start(VmbcMetrics *m, SoupServerMessage *msg)
{
	SoupMessageBody *body = soup_server_message_get_response_body(msg);
	Stream *st = g_new0(Stream, 1);

	st->m = m;
	st->msg = g_object_ref(msg);
	st->page = vmbc_metrics_renderer_begin(m->renderer, &m->stats);
	g_ptr_array_add(m->streams, st);
	set_page_headers(msg);
	/* written pieces are dropped, not kept for the message's life */
	soup_message_body_set_accumulate(body, FALSE);
	g_signal_connect(msg, "wrote-chunk", G_CALLBACK(on_stream_wrote_chunk), st);
	g_signal_connect(msg, "finished", G_CALLBACK(on_stream_finished), st);
	stream_next_piece(st);
}

static void
on_request(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
	   gpointer user_data)
{
	VmbcMetrics *m = user_data;

	if (!is_known_path(path)) { /* the early handler refused it already */
		refuse(msg, SOUP_STATUS_NOT_FOUND, "not found\n");
		return;
	}
	say_close(msg);
	if (g_strcmp0(path, "/healthz") == 0) {
		soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
		soup_server_message_set_response(msg, "text/plain; charset=utf-8",
						 SOUP_MEMORY_STATIC, "ok\n", 3);
		return;
	}
	soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
	if (soup_server_message_get_method(msg) == SOUP_METHOD_HEAD) {
		/* the headers a GET gets, and no page rendered for nothing */
		set_page_headers(msg);
	} else {
		stream_start(m, msg);
	}
	m->stats.scrapes++;
}

static void
conn_free(Conn *c)
{
	g_object_unref(c->stream);
	g_free(c);
}

static gboolean
conn_is_closed(Conn *c)
{
	return g_io_stream_is_closed(G_IO_STREAM(c->stream)) ||
	       g_socket_is_closed(g_socket_connection_get_socket(c->stream));
}

/* Drops closed connections and cuts off those past their deadline. */
static gboolean
on_sweep(gpointer user_data)
{
	VmbcMetrics *m = user_data;
	gint64 now = g_get_monotonic_time();

	for (guint i = 0; i < m->conns->len;) {
		Conn *c = g_ptr_array_index(m->conns, i);
		if (c->shut || conn_is_closed(c)) {
			/* libsoup has its own reference and lets go when it sees the end */
			g_ptr_array_remove_index_fast(m->conns, i);
			continue;
		}
		if (now >= c->deadline) {
			g_autoptr(GError) error = NULL;
			GSocket *sock = g_socket_connection_get_socket(c->stream);
			g_debug("metrics: closing a connection that sent no complete request in "
				"time");
			/* shutdown, not close: libsoup's pending read sees EOF and cleans up */
			if (!g_socket_shutdown(sock, TRUE, TRUE, &error))
				g_debug("metrics: shutdown: %s", error->message);
			c->shut = TRUE;
			m->stats.closed_timeout++;
		}
		i++;
	}
	if (m->conns->len == 0) {
		m->sweep_id = 0;
		return G_SOURCE_REMOVE;
	}
	return G_SOURCE_CONTINUE;
}

static Conn *
conn_for_message(VmbcMetrics *m, SoupServerMessage *msg)
{
	GSocket *sock = soup_server_message_get_socket(msg);

	for (guint i = 0; sock != NULL && i < m->conns->len; i++) {
		Conn *c = g_ptr_array_index(m->conns, i);
		if (g_socket_connection_get_socket(c->stream) == sock)
			return c;
	}
	return NULL;
}

/* A kept-alive connection gets a fresh deadline for its next request. */
static void
on_request_finished(SoupServer *server, SoupServerMessage *msg, gpointer user_data)
{
	VmbcMetrics *m = user_data;
	Conn *c = conn_for_message(m, msg);

	if (c != NULL && !c->shut)
		c->deadline = g_get_monotonic_time() + VMBC_METRICS_REQUEST_TIMEOUT_USEC;
}

/*
 * The port is full: the connection that has been idle the longest (connected,
 * no request yet) is cut off to make room, as the deadline would cut it off
 * later. FALSE when every connection is in the middle of a request.
 */
static gboolean
give_way(VmbcMetrics *m)
{
	g_autoptr(GError) error = NULL;
	Conn *oldest = NULL;
	guint at = 0;

	for (guint i = 0; i < m->conns->len; i++) {
		Conn *c = g_ptr_array_index(m->conns, i);
		if (!c->asked && (oldest == NULL || c->accepted < oldest->accepted)) {
			oldest = c;
			at = i;
		}
	}
	if (oldest == NULL)
		return FALSE;
	/* shutdown, not close: libsoup's pending read sees EOF and cleans up */
	if (!g_socket_shutdown(g_socket_connection_get_socket(oldest->stream), TRUE, TRUE, &error))
		g_debug("metrics: shutdown: %s", error->message);
	oldest->shut = TRUE;
	g_ptr_array_remove_index_fast(m->conns, at);
	m->stats.closed_idle++;
	g_debug("metrics: the port is full: an idle connection gives way to a new one");
	return TRUE;
}

static gboolean
on_incoming(GSocketService *service, GSocketConnection *connection, GObject *source,
	    gpointer user_data)
{
	VmbcMetrics *m = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GSocketAddress) local = NULL;
	g_autoptr(GSocketAddress) remote = NULL;
	Conn *c;

	/* settle the count first: closed connections, and those cut off, leave room */
	for (guint i = 0; i < m->conns->len;) {
		Conn *old = g_ptr_array_index(m->conns, i);
		if (old->shut || conn_is_closed(old)) {
			g_ptr_array_remove_index_fast(m->conns, i);
			continue;
		}
		i++;
	}
	if (m->conns->len >= VMBC_METRICS_MAX_CONNECTIONS && !give_way(m)) {
		m->stats.closed_overload++;
		g_debug("metrics: %u requests in progress, closing a new connection",
			m->conns->len);
		g_io_stream_close(G_IO_STREAM(connection), NULL, NULL);
		return TRUE;
	}
	local = g_socket_connection_get_local_address(connection, NULL);
	remote = g_socket_connection_get_remote_address(connection, NULL);
	if (!soup_server_accept_iostream(m->server, G_IO_STREAM(connection), local, remote,
					 &error)) {
		g_debug("metrics: connection not accepted: %s", error->message);
		g_io_stream_close(G_IO_STREAM(connection), NULL, NULL);
		return TRUE;
	}
	c = g_new0(Conn, 1);
	c->stream = g_object_ref(connection);
	c->accepted = g_get_monotonic_time();
	c->deadline = c->accepted + VMBC_METRICS_REQUEST_TIMEOUT_USEC;
	g_ptr_array_add(m->conns, c);
	if (m->sweep_id == 0) {
		m->sweep_id = g_timeout_add(SWEEP_INTERVAL_MS, on_sweep, m);
		g_source_set_name_by_id(m->sweep_id, "[vmbcd] metrics sweep");
	}
	return TRUE;
}

/* "ADDR:PORT", "[ADDR6]:PORT" or "localhost:PORT"; numeric only, no resolver on the loop. */
static GSocketAddress *
parse_listen(const gchar *listen, GError **error)
{
	const gchar *colon = strrchr(listen, ':');
	g_autofree gchar *host = NULL;
	g_autoptr(GInetAddress) addr = NULL;
	gchar *end = NULL;
	guint64 port;

	if (colon == NULL || colon == listen) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "metrics address '%s' is not ADDRESS:PORT", listen);
		return NULL;
	}
	port = g_ascii_strtoull(colon + 1, &end, 10);
	if (end == colon + 1 || *end != '\0' || port > 65535) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "metrics address '%s' has no valid port (0-65535)", listen);
		return NULL;
	}
	if (listen[0] == '[' && colon[-1] == ']')
		host = g_strndup(listen + 1, (gsize)(colon - listen - 2));
	else
		host = g_strndup(listen, (gsize)(colon - listen));
	if (g_strcmp0(host, "localhost") == 0)
		addr = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	else
		addr = g_inet_address_new_from_string(host);
	if (addr == NULL) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "metrics address '%s': '%s' is not a numeric IP address", listen, host);
		return NULL;
	}
	return g_inet_socket_address_new(addr, (guint16)port);
}

gboolean
vmbc_metrics_listen(VmbcMetrics *m, const gchar *listen, GError **error)
{
	g_autoptr(GSocketAddress) want = NULL;
	g_autoptr(GSocketAddress) got = NULL;

	g_return_val_if_fail(m != NULL && listen != NULL, FALSE);
	g_return_val_if_fail(m->service == NULL, FALSE);

	want = parse_listen(listen, error);
	if (want == NULL)
		return FALSE;
	m->service = g_socket_service_new();
	if (!g_socket_listener_add_address(G_SOCKET_LISTENER(m->service), want,
					   G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL, &got,
					   error)) {
		g_prefix_error(error, "cannot listen for metrics on %s: ", listen);
		g_clear_object(&m->service);
		return FALSE;
	}
	m->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(got));
	g_signal_connect(m->service, "incoming", G_CALLBACK(on_incoming), m);
	g_socket_service_start(m->service);
	g_info("metrics on http://%s/metrics (port %u)", listen, m->port);
	return TRUE;
}

guint16
vmbc_metrics_get_port(VmbcMetrics *m)
{
	return m->port;
}

void
vmbc_metrics_render(VmbcMetrics *m, GString *out)
{
	g_return_if_fail(m != NULL && out != NULL);

	vmbc_metrics_renderer_render(m->renderer, &m->stats, out);
}

void
vmbc_metrics_observe_reclaim(VmbcMetrics *m, VmbcBeancounter *bc, gdouble seconds)
{
	vmbc_metrics_renderer_observe_reclaim(m->renderer, bc, seconds);
}

VmbcMetrics *
vmbc_metrics_new(VmbcDaemon *daemon)
{
	VmbcMetrics *m = g_new0(VmbcMetrics, 1);

	m->server = soup_server_new(NULL, NULL);
	soup_server_add_early_handler(m->server, NULL, on_early, m, NULL);
	soup_server_add_handler(m->server, NULL, on_request, m, NULL);
	g_signal_connect(m->server, "request-finished", G_CALLBACK(on_request_finished), m);
	m->conns = g_ptr_array_new_with_free_func((GDestroyNotify)conn_free);
	m->streams = g_ptr_array_new_with_free_func((GDestroyNotify)stream_free);
	m->spare_pieces = g_ptr_array_new_with_free_func(spare_free);
	m->renderer = vmbc_metrics_renderer_new(daemon);
	return m;
}

void
vmbc_metrics_free(VmbcMetrics *m)
{
	if (m == NULL)
		return;
	g_clear_handle_id(&m->sweep_id, g_source_remove);
	if (m->service != NULL) {
		g_socket_service_stop(m->service);
		g_socket_listener_close(G_SOCKET_LISTENER(m->service));
		g_signal_handlers_disconnect_by_data(m->service, m);
		g_clear_object(&m->service);
	}
	for (guint i = 0; i < m->conns->len; i++) {
		Conn *c = g_ptr_array_index(m->conns, i);
		g_io_stream_close(G_IO_STREAM(c->stream), NULL, NULL);
	}
	g_signal_handlers_disconnect_by_data(m->server, m);
	/* the pages in progress go before their renderer; the messages end with the server */
	g_ptr_array_set_size(m->streams, 0);
	soup_server_disconnect(m->server);
	g_clear_object(&m->server);
	g_ptr_array_unref(m->conns);
	g_ptr_array_unref(m->streams);
	g_ptr_array_unref(m->spare_pieces);
	vmbc_metrics_renderer_free(m->renderer);
	g_free(m);
}
