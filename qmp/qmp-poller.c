/*
 * qmp-poller.c: one epoll-driven GSource per main context, shared by all the
 * QMP channels of that context.
 *
 * A host daemon holds one QMP connection per VM, thousands of them, nearly
 * all idle. Were each a GSource of its own (as a pending
 * g_input_stream_read_async() is), every main-loop iteration would visit
 * every connection: O(VMs) per wakeup, and the wakeups grow with the VMs.
 * So the channels of one main context share one poller, a GSource that
 * polls a single epoll descriptor; its dispatch asks epoll which sockets are
 * ready and serves those alone. An iteration costs O(ready connections).
 *
 * The poller also keeps a list of deferred members, called first thing in the
 * next dispatch: a channel reports a write error from there rather than from
 * inside its owner's call. Pollers are found by context in a table; one lives
 * while a member counts in it, except the global default context's, which
 * is kept so that a process never lacks the descriptor for it.
 */
#include "qmp-poller.h"

#include <errno.h>
#include <gio/gio.h>
#include <sys/epoll.h>
#include <unistd.h>

/* Events taken from epoll per dispatch; more wait for the next iteration. */
#define QMP_POLLER_EVENTS 256

struct _QmpPoller {
	GSource source;
	GMainContext *context; /* not a reference: the source is attached to it */
	int epfd;
	gpointer epfd_tag;
	guint n_members;     /* acquired and not released */
	gboolean persistent; /* the global default context's: kept for the process's life */
	GPtrArray *deferred; /* QmpPollerWatch (member referenced) to call from dispatch */
};

/* Pollers by context; a poller lives while a member counts in it. */
static GHashTable *qmp_pollers;
G_LOCK_DEFINE_STATIC(qmp_pollers);

static GIOCondition
qmp_poller_condition_from_epoll(guint32 events)
{
	GIOCondition condition = 0;

	if ((events & EPOLLIN) != 0)
		condition |= G_IO_IN;
	if ((events & EPOLLOUT) != 0)
		condition |= G_IO_OUT;
	if ((events & EPOLLPRI) != 0)
		condition |= G_IO_PRI;
	if ((events & EPOLLERR) != 0)
		condition |= G_IO_ERR;
	if ((events & EPOLLHUP) != 0)
		condition |= G_IO_HUP;
	return condition;
}

static guint32
qmp_poller_condition_to_epoll(GIOCondition condition)
{
	guint32 events = 0;

	if ((condition & G_IO_IN) != 0)
		events |= EPOLLIN;
	if ((condition & G_IO_OUT) != 0)
		events |= EPOLLOUT;
	if ((condition & G_IO_PRI) != 0)
		events |= EPOLLPRI;
	return events;
}

static gboolean
qmp_poller_prepare(GSource *source, gint *timeout)
{
	QmpPoller *poller = (QmpPoller *)source;

	*timeout = -1;
	return poller->deferred->len > 0;
}

static gboolean
qmp_poller_check(GSource *source)
{
	QmpPoller *poller = (QmpPoller *)source;

	return poller->deferred->len > 0 ||
	       (g_source_query_unix_fd(source, poller->epfd_tag) & G_IO_IN) != 0;
}

static gboolean
qmp_poller_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
	QmpPoller *poller = (QmpPoller *)source;
	struct epoll_event events[QMP_POLLER_EVENTS];
	QmpPollerWatch *ready[QMP_POLLER_EVENTS];
	g_autoptr(GPtrArray) deferred = NULL;
	int n;

	/* deferred members first: they asked for it since the last dispatch */
	if (poller->deferred->len > 0) {
		deferred = poller->deferred;
		poller->deferred = g_ptr_array_new();
		for (guint i = 0; i < deferred->len; i++) {
			QmpPollerWatch *watch = g_ptr_array_index(deferred, i);
			const QmpPollerFuncs *funcs = watch->funcs;
			gpointer member = watch->member;

			funcs->deferred(member);
			funcs->unref(member);
		}
	}

	do
		n = epoll_wait(poller->epfd, events, G_N_ELEMENTS(events), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		g_warning("epoll_wait() on the QMP poller failed: %s", g_strerror(errno));
		return G_SOURCE_CONTINUE;
	}
	/*
	 * Every member in the events is registered, so alive, now; a callback
	 * below may close and release another one, so take them all first.
	 */
	for (int i = 0; i < n; i++) {
		ready[i] = events[i].data.ptr;
		ready[i]->funcs->ref(ready[i]->member);
	}
	for (int i = 0; i < n; i++) {
		const QmpPollerFuncs *funcs = ready[i]->funcs;
		gpointer member = ready[i]->member;

		funcs->ready(member, qmp_poller_condition_from_epoll(events[i].events));
		funcs->unref(member);
	}
	return G_SOURCE_CONTINUE;
}

static void
qmp_poller_finalize(GSource *source)
{
	QmpPoller *poller = (QmpPoller *)source;

	/* every deferred watch is a member's, so none is left here */
	g_ptr_array_unref(poller->deferred);
	if (poller->epfd >= 0)
		close(poller->epfd);
}

static GSourceFuncs qmp_poller_funcs = {
	.prepare = qmp_poller_prepare,
	.check = qmp_poller_check,
	.dispatch = qmp_poller_dispatch,
	.finalize = qmp_poller_finalize,
};

/* The poller of the thread-default main context, made if need be. Call with the lock held. */
static QmpPoller *
qmp_poller_get_locked(GError **error)
{
	g_autoptr(GMainContext) context = g_main_context_ref_thread_default();
	QmpPoller *poller;
	int epfd;

	if (qmp_pollers == NULL)
		qmp_pollers = g_hash_table_new(NULL, NULL);
	poller = g_hash_table_lookup(qmp_pollers, context);
	if (poller != NULL)
		return poller;
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0) {
		int saved = errno;

		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved),
			    "cannot create an epoll descriptor: %s", g_strerror(saved));
		return NULL;
	}
	poller = (QmpPoller *)g_source_new(&qmp_poller_funcs, sizeof(QmpPoller));
	g_source_set_static_name(&poller->source, "QMP connections");
	poller->context = context;
	poller->epfd = epfd;
	poller->deferred = g_ptr_array_new();
	poller->epfd_tag = g_source_add_unix_fd(&poller->source, epfd, G_IO_IN);
	g_source_attach(&poller->source, context);
	poller->persistent = context == g_main_context_default();
	g_hash_table_insert(qmp_pollers, context, poller);
	return poller;
}

gboolean
qmp_poller_prepare_context(GError **error)
{
	gboolean ok;

	/* other contexts may be freed: their pollers come and go with their members */
	if (g_main_context_get_thread_default() != NULL &&
	    g_main_context_get_thread_default() != g_main_context_default())
		return TRUE;
	/* the default context's poller is persistent: it stays with no member */
	G_LOCK(qmp_pollers);
	ok = qmp_poller_get_locked(error) != NULL;
	G_UNLOCK(qmp_pollers);
	return ok;
}

QmpPoller *
qmp_poller_acquire(GError **error)
{
	QmpPoller *poller;

	G_LOCK(qmp_pollers);
	poller = qmp_poller_get_locked(error);
	if (poller != NULL)
		poller->n_members++;
	G_UNLOCK(qmp_pollers);
	return poller;
}

void
qmp_poller_release(QmpPoller *poller)
{
	g_return_if_fail(poller != NULL);

	G_LOCK(qmp_pollers);
	if (--poller->n_members == 0 && !poller->persistent) {
		g_hash_table_remove(qmp_pollers, poller->context);
		if (g_hash_table_size(qmp_pollers) == 0)
			g_clear_pointer(&qmp_pollers, g_hash_table_unref);
		G_UNLOCK(qmp_pollers);
		g_source_destroy(&poller->source);
		g_source_unref(&poller->source);
		return;
	}
	G_UNLOCK(qmp_pollers);
}

GMainContext *
qmp_poller_get_context(QmpPoller *poller)
{
	g_return_val_if_fail(poller != NULL, NULL);
	return poller->context;
}

/* One epoll_ctl() ADD or MOD; FALSE with errno's text in @error. */
static gboolean
qmp_poller_ctl(QmpPoller *poller, int op, int fd, GIOCondition condition, QmpPollerWatch *watch,
	       GError **error)
{
	struct epoll_event ev = {0};

	ev.events = qmp_poller_condition_to_epoll(condition);
	ev.data.ptr = watch;
	if (epoll_ctl(poller->epfd, op, fd, &ev) < 0) {
		int saved = errno;

		g_set_error_literal(error, G_IO_ERROR, g_io_error_from_errno(saved),
				    g_strerror(saved));
		return FALSE;
	}
	return TRUE;
}

gboolean
qmp_poller_add_fd(QmpPoller *poller, int fd, GIOCondition condition, QmpPollerWatch *watch,
		  GError **error)
{
	g_return_val_if_fail(poller != NULL, FALSE);
	g_return_val_if_fail(watch != NULL && watch->funcs != NULL, FALSE);

	return qmp_poller_ctl(poller, EPOLL_CTL_ADD, fd, condition, watch, error);
}

gboolean
qmp_poller_modify_fd(QmpPoller *poller, int fd, GIOCondition condition, QmpPollerWatch *watch,
		     GError **error)
{
	g_return_val_if_fail(poller != NULL, FALSE);
	g_return_val_if_fail(watch != NULL && watch->funcs != NULL, FALSE);

	return qmp_poller_ctl(poller, EPOLL_CTL_MOD, fd, condition, watch, error);
}

void
qmp_poller_remove_fd(QmpPoller *poller, int fd)
{
	g_return_if_fail(poller != NULL);

	/* fails only for a descriptor that is not registered: nothing to undo then */
	(void)epoll_ctl(poller->epfd, EPOLL_CTL_DEL, fd, NULL);
}

void
qmp_poller_defer(QmpPoller *poller, QmpPollerWatch *watch)
{
	g_return_if_fail(poller != NULL);
	g_return_if_fail(watch != NULL && watch->funcs != NULL);

	g_ptr_array_add(poller->deferred, watch);
	watch->funcs->ref(watch->member);
	g_main_context_wakeup(poller->context);
}
