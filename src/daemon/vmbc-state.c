/*
 * vmbc-state.c: the state file (see vmbc-state.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <unistd.h>

#include "vmbc-error.h"
#include "vmbc-size.h"
#include "vmbc-state.h"

#define STATE_VERSION 1

typedef struct {
	gboolean set;
	gint64 barrier;
	gint64 limit;
} SavedParm;

typedef struct {
	gboolean set;
	gint64 maxheld;
	guint64 failcnt;
} SavedCounters;

typedef struct {
	SavedParm parm[VMBC_RES_COUNT];
	SavedCounters counters[VMBC_RES_COUNT];
	gboolean memory_high; /* vmbcd set memory.high of the running VM */
	guint id;	      /* beancounter id, 0 none */
	VmbcBalloonState balloon;
	VmbcBalloonClaim claim; /* target -1: none */
	gchar *policy;		/* the VM's own policy last applied (vmbc_policy_describe()) */
} SavedDomain;

static void
saved_domain_free(SavedDomain *d)
{
	g_free(d->policy);
	g_free(d);
}

static const VmbcBalloonClaim no_claim = {-1, -1, VMBC_UNLIMITED, VMBC_BALLOON_FOR_LIMIT};

struct _VmbcState {
	gchar *dir;
	gchar *path;
	GHashTable *domains; /* name -> SavedDomain* */
	gchar *saved;	     /* the text last written to path, NULL none */
};

VmbcState *
vmbc_state_new(const gchar *dir)
{
	VmbcState *state = g_new0(VmbcState, 1);
	state->dir = g_strdup(dir);
	state->path = g_build_filename(dir, "state.json", NULL);
	state->domains = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					       (GDestroyNotify)saved_domain_free);
	return state;
}

void
vmbc_state_free(VmbcState *state)
{
	if (state == NULL)
		return;
	g_hash_table_unref(state->domains);
	g_free(state->saved);
	g_free(state->dir);
	g_free(state->path);
	g_free(state);
}

const gchar *
vmbc_state_get_path(VmbcState *state)
{
	return state->path;
}

static gboolean
read_value(JsonObject *obj, const gchar *member, gint64 *out)
{
	JsonNode *node = json_object_get_member(obj, member);
	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) ||
	    json_node_get_value_type(node) != G_TYPE_INT64)
		return FALSE;
	*out = json_node_get_int(node);
	return *out >= 0;
}

/* {"target": P, "before": P, "limit": P, "reason": "limit"}; all of it or nothing. */
static gboolean
parse_claim(JsonNode *node, VmbcBalloonClaim *claim)
{
	JsonObject *obj;
	JsonNode *rnode;

	if (!JSON_NODE_HOLDS_OBJECT(node))
		return FALSE;
	obj = json_node_get_object(node);
	rnode = json_object_get_member(obj, "reason");
	if (!read_value(obj, "target", &claim->target) ||
	    !read_value(obj, "before", &claim->before) ||
	    !read_value(obj, "limit", &claim->limit) || rnode == NULL ||
	    !JSON_NODE_HOLDS_VALUE(rnode) || json_node_get_value_type(rnode) != G_TYPE_STRING ||
	    !vmbc_balloon_reason_from_string(json_node_get_string(rnode), &claim->reason))
		return FALSE;
	return TRUE;
}

static gboolean
parse_state(VmbcState *state, const gchar *text, gsize len, GError **error)
{
	g_autoptr(JsonParser) parser = json_parser_new();
	JsonObject *root, *domains;
	g_autoptr(GList) names = NULL;

	if (!json_parser_load_from_data(parser, text, (gssize)len, error))
		return FALSE;
	if (!JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
		g_set_error_literal(error, VMBC_ERROR, VMBC_ERROR_INVALID, "not a JSON object");
		return FALSE;
	}
	root = json_node_get_object(json_parser_get_root(parser));
	if (!json_object_has_member(root, "version") ||
	    json_object_get_int_member(root, "version") != STATE_VERSION) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "unknown state version (want %d)", STATE_VERSION);
		return FALSE;
	}
	if (!json_object_has_member(root, "domains") ||
	    !JSON_NODE_HOLDS_OBJECT(json_object_get_member(root, "domains"))) {
		g_set_error_literal(error, VMBC_ERROR, VMBC_ERROR_INVALID,
				    "'domains' is missing or not an object");
		return FALSE;
	}
	domains = json_object_get_object_member(root, "domains");
	names = json_object_get_members(domains);
	for (GList *l = names; l != NULL; l = l->next) {
		const gchar *name = l->data;
		JsonNode *dnode = json_object_get_member(domains, name);
		JsonObject *dobj;
		if (!JSON_NODE_HOLDS_OBJECT(dnode))
			continue;
		dobj = json_node_get_object(dnode);
		for (guint r = 0; r < VMBC_RES_COUNT; r++) {
			JsonNode *rnode = json_object_get_member(dobj, vmbc_resource_name(r));
			gint64 b, lim;
			if (rnode == NULL || !JSON_NODE_HOLDS_OBJECT(rnode))
				continue;
			if (!read_value(json_node_get_object(rnode), "barrier", &b) ||
			    !read_value(json_node_get_object(rnode), "limit", &lim) || b > lim) {
				g_warning("%s: ignoring bad %s entry of '%s'", state->path,
					  vmbc_resource_name(r), name);
				continue;
			}
			vmbc_state_set(state, name, r, b, lim);
		}
		if (json_object_has_member(dobj, "counters") &&
		    JSON_NODE_HOLDS_OBJECT(json_object_get_member(dobj, "counters"))) {
			JsonObject *cobj = json_object_get_object_member(dobj, "counters");
			for (guint r = 0; r < VMBC_RES_COUNT; r++) {
				JsonNode *rnode =
					json_object_get_member(cobj, vmbc_resource_name(r));
				gint64 maxheld, failcnt;
				if (rnode == NULL || !JSON_NODE_HOLDS_OBJECT(rnode))
					continue;
				if (!read_value(json_node_get_object(rnode), "maxheld", &maxheld) ||
				    !read_value(json_node_get_object(rnode), "failcnt", &failcnt))
					continue;
				vmbc_state_set_counters(state, name, r, maxheld, (guint64)failcnt);
			}
		}
		if (json_object_has_member(dobj, "id")) {
			gint64 id;
			if (read_value(dobj, "id", &id) && id > 0 && id < G_MAXUINT)
				vmbc_state_set_id(state, name, (guint)id);
			else
				g_warning("%s: ignoring bad id of '%s'", state->path, name);
		}
		if (json_object_has_member(dobj, "policy")) {
			JsonNode *pnode = json_object_get_member(dobj, "policy");
			if (JSON_NODE_HOLDS_VALUE(pnode) &&
			    json_node_get_value_type(pnode) == G_TYPE_STRING)
				vmbc_state_set_policy(state, name, json_node_get_string(pnode));
			else
				g_warning("%s: ignoring bad policy of '%s'", state->path, name);
		}
		if (json_object_has_member(dobj, "balloon")) {
			JsonNode *bnode = json_object_get_member(dobj, "balloon");
			VmbcBalloonState balloon;
			if (JSON_NODE_HOLDS_VALUE(bnode) &&
			    json_node_get_value_type(bnode) == G_TYPE_STRING &&
			    vmbc_balloon_state_from_string(json_node_get_string(bnode), &balloon))
				vmbc_state_set_balloon(state, name, balloon);
			else
				g_warning("%s: ignoring bad balloon of '%s'", state->path, name);
		}
		if (json_object_has_member(dobj, "balloon-set")) {
			VmbcBalloonClaim claim;
			if (!parse_claim(json_object_get_member(dobj, "balloon-set"), &claim))
				g_warning("%s: ignoring bad balloon-set of '%s'", state->path,
					  name);
			else
				vmbc_state_set_balloon_claim(state, name, &claim);
		}
		if (json_object_has_member(dobj, "memory-high-set")) {
			JsonNode *mnode = json_object_get_member(dobj, "memory-high-set");
			if (JSON_NODE_HOLDS_VALUE(mnode) &&
			    json_node_get_value_type(mnode) == G_TYPE_BOOLEAN)
				vmbc_state_set_memory_high(state, name,
							   json_node_get_boolean(mnode));
			else
				g_warning("%s: ignoring bad memory-high-set of '%s'", state->path,
					  name);
		}
	}
	return TRUE;
}

gboolean
vmbc_state_load(VmbcState *state, GError **error)
{
	g_autofree gchar *text = NULL;
	g_autoptr(GError) local = NULL;
	gsize len = 0;

	if (!g_file_get_contents(state->path, &text, &len, &local)) {
		if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			return TRUE;
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED, "cannot read %s: %s", state->path,
			    local->message);
		return FALSE;
	}
	if (!parse_state(state, text, len, &local)) {
		g_autofree gchar *aside = g_strdup_printf("%s.corrupt-%" G_GINT64_FORMAT,
							  state->path, g_get_real_time() / 1000000);
		g_autofree gchar *why = NULL;
		const gchar *where = aside;
		g_hash_table_remove_all(state->domains);
		if (g_rename(state->path, aside) != 0) {
			why = g_strdup_printf("in place (could not move it aside: %s)",
					      g_strerror(errno));
			where = why;
		}
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_INVALID,
			    "%s is corrupt (%s); kept as %s, starting with no saved limits",
			    state->path, local->message, where);
		return FALSE;
	}
	return TRUE;
}

static SavedDomain *
lookup_or_add(VmbcState *state, const gchar *domain)
{
	SavedDomain *d = g_hash_table_lookup(state->domains, domain);
	if (d == NULL) {
		d = g_new0(SavedDomain, 1);
		d->balloon = VMBC_BALLOON_UNKNOWN;
		d->claim = no_claim;
		g_hash_table_insert(state->domains, g_strdup(domain), d);
	}
	return d;
}

void
vmbc_state_set(VmbcState *state, const gchar *domain, VmbcResourceId res, gint64 barrier,
	       gint64 limit)
{
	SavedDomain *d;

	g_return_if_fail(res < VMBC_RES_COUNT);
	d = lookup_or_add(state, domain);
	d->parm[res].set = TRUE;
	d->parm[res].barrier = barrier;
	d->parm[res].limit = limit;
}

void
vmbc_state_unset(VmbcState *state, const gchar *domain, VmbcResourceId res)
{
	SavedDomain *d = g_hash_table_lookup(state->domains, domain);

	g_return_if_fail(res < VMBC_RES_COUNT);
	if (d != NULL)
		d->parm[res].set = FALSE;
}

void
vmbc_state_set_counters(VmbcState *state, const gchar *domain, VmbcResourceId res, gint64 maxheld,
			guint64 failcnt)
{
	SavedDomain *d;

	g_return_if_fail(res < VMBC_RES_COUNT);
	d = lookup_or_add(state, domain);
	d->counters[res].set = TRUE;
	d->counters[res].maxheld = MAX(maxheld, 0);
	d->counters[res].failcnt = failcnt;
}

gboolean
vmbc_state_get_counters(VmbcState *state, const gchar *domain, VmbcResourceId res, gint64 *maxheld,
			guint64 *failcnt)
{
	SavedDomain *d = g_hash_table_lookup(state->domains, domain);

	if (d == NULL || res >= VMBC_RES_COUNT || !d->counters[res].set)
		return FALSE;
	*maxheld = d->counters[res].maxheld;
	*failcnt = d->counters[res].failcnt;
	return TRUE;
}

void
vmbc_state_set_memory_high(VmbcState *state, const gchar *domain, gboolean set)
{
	SavedDomain *d =
		set ? lookup_or_add(state, domain) : g_hash_table_lookup(state->domains, domain);

	if (d != NULL)
		d->memory_high = set;
}

gboolean
vmbc_state_get_memory_high(VmbcState *state, const gchar *domain)
{
	SavedDomain *d = g_hash_table_lookup(state->domains, domain);

	return d != NULL && d->memory_high;
}

void
vmbc_state_forget_counters(VmbcState *state, const gchar *domain)
{
	SavedDomain *d = g_hash_table_lookup(state->domains, domain);

	if (d == NULL)
		return;
	memset(d->counters, 0, sizeof(d->counters));
	d->memory_high = FALSE;
	d->balloon = VMBC_BALLOON_UNKNOWN;
	d->claim = no_claim;
}

void
vmbc_state_set_id(VmbcState *state, const gchar *domain, guint id)
{
	lookup_or_add(state, domain)->id = id;
}

guint
vmbc_state_get_id(VmbcState *state, const gchar *domain)
{
	SavedDomain *d = g_hash_table_lookup(state->domains, domain);

	return d != NULL ? d->id : 0;
}

void
vmbc_state_set_policy(VmbcState *state, const gchar *domain, const gchar *policy)
{
	SavedDomain *d = lookup_or_add(state, domain);

	g_free(d->policy);
	d->policy = g_strdup(policy);
}

const gchar *
vmbc_state_get_policy(VmbcState *state, const gchar *domain)
{
	SavedDomain *d = g_hash_table_lookup(state->domains, domain);

	return d != NULL ? d->policy : NULL;
}

guint
vmbc_state_get_max_id(VmbcState *state)
{
	GHashTableIter it;
	gpointer value;
	guint max = 0;

	g_hash_table_iter_init(&it, state->domains);
	while (g_hash_table_iter_next(&it, NULL, &value))
		max = MAX(max, ((SavedDomain *)value)->id);
	return max;
}

gboolean
vmbc_state_set_balloon(VmbcState *state, const gchar *domain, VmbcBalloonState balloon)
{
	SavedDomain *d = balloon != VMBC_BALLOON_UNKNOWN
				 ? lookup_or_add(state, domain)
				 : g_hash_table_lookup(state->domains, domain);

	if (d == NULL || d->balloon == balloon)
		return FALSE;
	d->balloon = balloon;
	return TRUE;
}

VmbcBalloonState
vmbc_state_get_balloon(VmbcState *state, const gchar *domain)
{
	SavedDomain *d = g_hash_table_lookup(state->domains, domain);

	return d != NULL ? d->balloon : VMBC_BALLOON_UNKNOWN;
}

gboolean
vmbc_state_set_balloon_claim(VmbcState *state, const gchar *domain, const VmbcBalloonClaim *claim)
{
	gboolean none = claim == NULL || claim->target < 0;
	SavedDomain *d =
		none ? g_hash_table_lookup(state->domains, domain) : lookup_or_add(state, domain);

	if (d == NULL)
		return FALSE;
	if (none)
		claim = &no_claim;
	if (d->claim.target == claim->target && d->claim.before == claim->before &&
	    d->claim.limit == claim->limit && d->claim.reason == claim->reason)
		return FALSE;
	d->claim = *claim;
	return TRUE;
}

gboolean
vmbc_state_get_balloon_claim(VmbcState *state, const gchar *domain, VmbcBalloonClaim *claim)
{
	SavedDomain *d = g_hash_table_lookup(state->domains, domain);

	if (d == NULL || d->claim.target < 0)
		return FALSE;
	*claim = d->claim;
	return TRUE;
}

gboolean
vmbc_state_get(VmbcState *state, const gchar *domain, VmbcResourceId res, gint64 *barrier,
	       gint64 *limit)
{
	SavedDomain *d = g_hash_table_lookup(state->domains, domain);

	if (d == NULL || res >= VMBC_RES_COUNT || !d->parm[res].set)
		return FALSE;
	*barrier = d->parm[res].barrier;
	*limit = d->parm[res].limit;
	return TRUE;
}

static gboolean
write_all(int fd, const gchar *data, gsize len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return FALSE;
		}
		data += n;
		len -= (gsize)n;
	}
	return TRUE;
}

/* @text as a JSON string, quoted; control characters escaped as json-glib writes them. */
static void
append_json_string(GString *out, const gchar *text)
{
	g_string_append_c(out, '"');
	for (const guchar *p = (const guchar *)text; *p != '\0'; p++) {
		switch (*p) {
		case '"':
			g_string_append(out, "\\\"");
			break;
		case '\\':
			g_string_append(out, "\\\\");
			break;
		case '\n':
			g_string_append(out, "\\n");
			break;
		case '\t':
			g_string_append(out, "\\t");
			break;
		case '\r':
			g_string_append(out, "\\r");
			break;
		default:
			if (*p < 0x20)
				g_string_append_printf(out, "\\u%04x", *p);
			else
				g_string_append_c(out, (gchar)*p);
		}
	}
	g_string_append_c(out, '"');
}

/* ', "NAME": ' (without the comma for the first member of an object). */
static void
append_member(GString *out, gboolean *first, const gchar *name)
{
	if (!*first)
		g_string_append(out, ", ");
	*first = FALSE;
	append_json_string(out, name);
	g_string_append(out, ": ");
}

static void
append_int_member(GString *out, gboolean *first, const gchar *name, gint64 v)
{
	append_member(out, first, name);
	g_string_append_printf(out, "%" G_GINT64_FORMAT, v);
}

/*
 * One domain's record, on one line. Written straight to text: through
 * json-glib's builder and generator, a save of 10000 domains was most of
 * vmbcd's CPU while their balloon claims changed.
 */
static void
append_domain(GString *out, const gchar *name, const SavedDomain *d)
{
	gboolean first = TRUE, inner;

	g_string_append(out, "    ");
	append_json_string(out, name);
	g_string_append(out, ": {");
	for (guint r = 0; r < VMBC_RES_COUNT; r++) {
		if (!d->parm[r].set)
			continue;
		append_member(out, &first, vmbc_resource_name(r));
		inner = TRUE;
		g_string_append_c(out, '{');
		append_int_member(out, &inner, "barrier", d->parm[r].barrier);
		append_int_member(out, &inner, "limit", d->parm[r].limit);
		g_string_append_c(out, '}');
	}
	append_member(out, &first, "counters");
	g_string_append_c(out, '{');
	inner = TRUE;
	for (guint r = 0; r < VMBC_RES_COUNT; r++) {
		gboolean res_first = TRUE;

		if (!d->counters[r].set)
			continue;
		append_member(out, &inner, vmbc_resource_name(r));
		g_string_append_c(out, '{');
		append_int_member(out, &res_first, "maxheld", d->counters[r].maxheld);
		append_int_member(out, &res_first, "failcnt",
				  (gint64)MIN(d->counters[r].failcnt, (guint64)G_MAXINT64));
		g_string_append_c(out, '}');
	}
	g_string_append_c(out, '}');
	if (d->memory_high) {
		append_member(out, &first, "memory-high-set");
		g_string_append(out, "true");
	}
	if (d->id != 0)
		append_int_member(out, &first, "id", d->id);
	if (d->policy != NULL) {
		append_member(out, &first, "policy");
		append_json_string(out, d->policy);
	}
	if (d->balloon != VMBC_BALLOON_UNKNOWN) {
		append_member(out, &first, "balloon");
		append_json_string(out, vmbc_balloon_state_to_string(d->balloon));
	}
	if (d->claim.target >= 0) {
		append_member(out, &first, "balloon-set");
		g_string_append_c(out, '{');
		inner = TRUE;
		append_int_member(out, &inner, "target", d->claim.target);
		append_int_member(out, &inner, "before", d->claim.before);
		append_int_member(out, &inner, "limit", d->claim.limit);
		append_member(out, &inner, "reason");
		append_json_string(out, vmbc_balloon_reason_to_string(d->claim.reason));
		g_string_append_c(out, '}');
	}
	g_string_append_c(out, '}');
}

gboolean
vmbc_state_save(VmbcState *state, GError **error)
{
	g_autoptr(GString) out = g_string_sized_new(256 + 160 * g_hash_table_size(state->domains));
	g_autofree gchar *tmp = NULL;
	GHashTableIter it;
	gpointer key, value;
	gboolean first = TRUE;
	int fd, dfd;

	g_string_append_printf(out,
			       "{\n  \"version\": %d,\n  \"page-size\": %" G_GINT64_FORMAT
			       ",\n  \"domains\": {",
			       STATE_VERSION, (gint64)vmbc_page_size());
	g_hash_table_iter_init(&it, state->domains);
	while (g_hash_table_iter_next(&it, &key, &value)) {
		g_string_append(out, first ? "\n" : ",\n");
		first = FALSE;
		append_domain(out, key, value);
	}
	g_string_append(out, first ? "}\n}\n" : "\n  }\n}\n");

	/* unchanged since the last write, still there: no write, no fsync (every 30 s otherwise) */
	if (state->saved != NULL && strcmp(state->saved, out->str) == 0 &&
	    g_file_test(state->path, G_FILE_TEST_EXISTS))
		return TRUE;
	if (g_mkdir_with_parents(state->dir, 0755) != 0) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED, "cannot create %s: %s",
			    state->dir, g_strerror(errno));
		return FALSE;
	}
	tmp = g_strdup_printf("%s.tmp", state->path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED, "cannot write %s: %s", tmp,
			    g_strerror(errno));
		return FALSE;
	}
	if (!write_all(fd, out->str, out->len) || fsync(fd) != 0) {
		int saved = errno;
		close(fd);
		unlink(tmp);
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED, "cannot write %s: %s", tmp,
			    g_strerror(saved));
		return FALSE;
	}
	close(fd);
	if (rename(tmp, state->path) != 0) {
		int saved = errno;
		unlink(tmp);
		g_set_error(error, VMBC_ERROR, VMBC_ERROR_FAILED, "cannot rename %s to %s: %s", tmp,
			    state->path, g_strerror(saved));
		return FALSE;
	}
	/* the rename itself must reach the disk */
	dfd = open(state->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	g_free(state->saved);
	state->saved = g_string_free(g_steal_pointer(&out), FALSE);
	return TRUE;
}
