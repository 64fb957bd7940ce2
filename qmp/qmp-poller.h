/*
 * qmp-poller.h: the epoll poller that the QMP channels of one main context
 * share (private to libvmbc-qmp).
 *
 * A poller is a GSource polling one epoll descriptor. Its members (the
 * channels) register their descriptors with it and hear, from its dispatch,
 * which are ready; a member may also ask to be called from the next dispatch
 * (deferred), to report something outside its owner's call. The poller knows
 * nothing of what a member does with its descriptor.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _QmpPoller QmpPoller;

/* How the poller reaches a member; every function gets QmpPollerWatch.member. */
typedef struct {
	/* A reference, held across a dispatch's callbacks and by the deferred list. */
	gpointer (*ref)(gpointer member);
	void (*unref)(gpointer member);
	/*
	 * The member's descriptor is ready: @condition holds G_IO_IN, G_IO_OUT,
	 * G_IO_PRI, G_IO_ERR and G_IO_HUP as epoll reported them. The member is
	 * referenced during the call.
	 */
	void (*ready)(gpointer member, GIOCondition condition);
	/* The member was deferred with qmp_poller_defer(); called once per deferral. */
	void (*deferred)(gpointer member);
} QmpPollerFuncs;

/*
 * What a member hands the poller with its descriptor, kept by the member
 * (embedded in it, say) for as long as it is registered or deferred.
 */
typedef struct {
	const QmpPollerFuncs *funcs;
	gpointer member;
} QmpPollerWatch;

/*
 * Makes sure the thread-default main context has its poller (its epoll
 * descriptor). The global default context's poller is made once and kept for
 * the process's life; for any other context this does nothing, as their
 * pollers come and go with their members. FALSE with @error if it cannot.
 */
gboolean qmp_poller_prepare_context(GError **error);

/*
 * The thread-default main context's poller, made (and attached to that
 * context) if need be, counting one more member in it. Every successful call
 * is matched by one qmp_poller_release(). NULL with @error if no epoll
 * descriptor can be made.
 */
QmpPoller *qmp_poller_acquire(GError **error);

/*
 * Counts one member less; a poller with no member left is destroyed, unless
 * it is the global default context's. The member must have removed its
 * descriptor and have no deferral pending.
 */
void qmp_poller_release(QmpPoller *poller);

/* The main context the poller is attached to, where the member callbacks run. */
GMainContext *qmp_poller_get_context(QmpPoller *poller);

/*
 * Registers @fd, not yet registered, for @condition (G_IO_IN and/or G_IO_OUT);
 * its readiness reaches @watch. FALSE with @error (errno's text) if epoll
 * refuses it, and then nothing is registered.
 */
gboolean qmp_poller_add_fd(QmpPoller *poller, int fd, GIOCondition condition, QmpPollerWatch *watch,
			   GError **error);

/* As qmp_poller_add_fd(), for an @fd already registered; FALSE leaves the old registration. */
gboolean qmp_poller_modify_fd(QmpPoller *poller, int fd, GIOCondition condition,
			      QmpPollerWatch *watch, GError **error);

/*
 * Unregisters @fd. Call it before closing @fd: a descriptor number closed
 * while registered may come back as another member's.
 */
void qmp_poller_remove_fd(QmpPoller *poller, int fd);

/*
 * Has the next dispatch call @watch's deferred function (before any readiness
 * is handled), holding a reference on the member until then, and wakes the
 * context up. A member must stay counted in the poller until that call.
 */
void qmp_poller_defer(QmpPoller *poller, QmpPollerWatch *watch);

G_END_DECLS
