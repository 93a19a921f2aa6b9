/*
 * Per-thread file-system credentials (see creds.h).
 */
#include "creds.h"

#include <jansson.h>

#include <string.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "config.h"

#define NOBODY 65534

static _Thread_local struct {
	const struct kiln_peer *peer;
	const struct request *req;
	bool switched;
	int ngroups;
	gid_t groups[KILN_PEER_MAX_GROUPS];
} cur;

static const struct kiln_peer nobody = { .uid = NOBODY, .gid = NOBODY, .pid = 0 };

bool creds_enter(const struct kiln_peer *peer, const struct request *req)
{
	if (!peer || peer->uid == (uid_t)-1 || peer->gid == (gid_t)-1)
		peer = &nobody;
	cur.peer = peer;
	cur.req = req;
	cur.switched = false;
	if (geteuid() != 0)
		return false;
	/* Raw system calls: glibc would apply setgroups to every thread. */
	cur.ngroups = (int)syscall(SYS_getgroups, KILN_PEER_MAX_GROUPS, cur.groups);
	if (cur.ngroups < 0)
		cur.ngroups = 0;
	if (syscall(SYS_setgroups, (size_t)peer->ngroups, peer->groups) != 0)
		return false;
	setfsgid(peer->gid);
	setfsuid(peer->uid);
	cur.switched = (uid_t)setfsuid((uid_t)-1) == peer->uid && (gid_t)setfsgid((gid_t)-1) == peer->gid;
	return cur.switched;
}

void creds_leave(void)
{
	if (geteuid() == 0) {
		setfsuid(0);
		setfsgid(getegid());
		syscall(SYS_setgroups, (size_t)cur.ngroups, cur.groups);
	}
	cur.peer = NULL;
	cur.req = NULL;
	cur.switched = false;
}

int creds_passed_fd(const char *path, const char **rest)
{
	const struct request *req = cur.req;

	*rest = NULL;
	if (!req || !path)
		return -1;
	for (size_t i = 0; i < req->nfds; i++) {
		const char *p = json_string_value(json_array_get(req->fd_paths, i));
		size_t n = strlen(p);

		if (strcmp(p, path) == 0)
			return req->fds[i];
		while (n > 1 && p[n - 1] == '/')
			n--;
		if (strncmp(p, path, n) == 0 && path[n] == '/' && path[n + 1]) {
			*rest = path + n + 1;
			return req->fds[i];
		}
	}
	return -1;
}

const struct kiln_peer *creds_current(void)
{
	return cur.peer;
}

bool creds_switched(void)
{
	return cur.switched;
}

bool creds_peer_in_group(const struct kiln_peer *peer, gid_t gid)
{
	if (peer->gid == gid)
		return true;
	for (int i = 0; i < peer->ngroups; i++)
		if (peer->groups[i] == gid)
			return true;
	return false;
}

bool creds_is_admin(const struct kiln_config *cfg, const struct kiln_peer *peer)
{
	size_t i;
	json_t *v;

	if (!peer)
		return false;
	if (peer->uid == 0)
		return true;
	json_array_foreach(cfg->admin_uids, i, v) {
		if ((uid_t)json_integer_value(v) == peer->uid)
			return true;
	}
	json_array_foreach(cfg->admin_gids, i, v) {
		if (creds_peer_in_group(peer, (gid_t)json_integer_value(v)))
			return true;
	}
	return false;
}

bool creds_may_access(const struct stat *st, int want)
{
	const struct kiln_peer *p = cur.peer;
	mode_t bits;

	if (!p || cur.switched || p->uid == 0)
		return true;
	if (st->st_uid == p->uid)
		bits = (st->st_mode >> 6) & 7;
	else if (creds_peer_in_group(p, st->st_gid))
		bits = (st->st_mode >> 3) & 7;
	else
		bits = st->st_mode & 7;
	return ((mode_t)want & ~bits) == 0;
}
