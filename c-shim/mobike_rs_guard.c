/*
 * ABI guard of the mobike-rs shim.
 */

#include "mobike_rs_guard.h"

#include <ctype.h>

#include <daemon.h>
#include <sa/task.h>

/** The executable is read to find the version string it was built with */
#define EXE "/proc/self/exe"

/** Longest version string taken from the executable */
#define MAX_VERSION 32

#ifdef ME
#define BUILT_ME "with"
#else
#define BUILT_ME "without"
#endif

/**
 * Copy a version string starting at pos (digits, letters, '.', '-', '+',
 * '~') into out; FALSE if it does not start with a digit and a dot.
 */
static bool take_version(chunk_t rest, char *out)
{
	size_t i;

	if (rest.len < 3 || !isdigit(rest.ptr[0]))
	{
		return FALSE;
	}
	for (i = 0; i < rest.len && i < MAX_VERSION - 1; i++)
	{
		u_char c = rest.ptr[i];

		if (!isalnum(c) && c != '.' && c != '-' && c != '+' && c != '~')
		{
			break;
		}
		out[i] = c;
	}
	out[i] = '\0';
	return strchr(out, '.') != NULL && (i == rest.len || rest.ptr[i] == ',' ||
			rest.ptr[i] == ')' || rest.ptr[i] == '\0' || rest.ptr[i] == ' ');
}

/**
 * The strongSwan version the running daemon was built as. charon and
 * charon-nm log "(strongSwan VERSION", charon-systemd passes VERSION as a
 * separate string, so look for the former first and then for a lone
 * NUL-terminated version string; "" if neither is found unambiguously.
 */
static void running_version(char *out)
{
	static const char marker[] = "(strongSwan ";
	chunk_t *map, exe, rest;
	char found[MAX_VERSION] = "", cand[MAX_VERSION];
	u_char *pos;
	int lone = 0;

	out[0] = '\0';
	map = chunk_map(EXE, FALSE);
	if (!map)
	{
		return;
	}
	exe = *map;
	pos = memstr(exe.ptr, marker, exe.len);
	if (pos)
	{
		rest = chunk_skip(exe, pos + strlen(marker) - exe.ptr);
		if (take_version(rest, cand))
		{
			strcpy(out, cand);
		}
	}
	for (pos = exe.ptr; !out[0] && pos < exe.ptr + exe.len; pos++)
	{
		if (pos > exe.ptr && pos[-1] != '\0')
		{
			continue;
		}
		rest = chunk_skip(exe, pos - exe.ptr);
		if (take_version(rest, cand) && pos + strlen(cand) < exe.ptr + exe.len &&
			pos[strlen(cand)] == '\0')
		{
			if (!found[0] || !streq(found, cand))
			{
				lone++;
			}
			strcpy(found, cand);
		}
	}
	if (!out[0] && lone == 1)
	{
		strcpy(out, found);
	}
	chunk_unmap(map);
}

/**
 * Whether charon's task type names agree with the shim's task_type_t, which
 * has TASK_IKE_ME (before TASK_CHILD_CREATE) only with ME.
 */
static bool running_me(bool *me)
{
	char *child = enum_to_name(task_type_names, TASK_CHILD_CREATE);

#ifdef ME
	char *ike_me = enum_to_name(task_type_names, TASK_IKE_ME);

	if (child && streq(child, "CHILD_CREATE") &&
		ike_me && streq(ike_me, "IKE_ME"))
	{
		*me = TRUE;
		return TRUE;
	}
	/* without ME, TASK_IKE_ME's value names CHILD_CREATE */
	if (ike_me && streq(ike_me, "CHILD_CREATE"))
	{
		*me = FALSE;
		return TRUE;
	}
#else
	if (child && streq(child, "CHILD_CREATE"))
	{
		*me = FALSE;
		return TRUE;
	}
	/* with ME, TASK_CHILD_CREATE's value names IKE_ME */
	if (child && streq(child, "IKE_ME"))
	{
		*me = TRUE;
		return TRUE;
	}
#endif
	return FALSE;
}

/*
 * Described in header
 */
bool mobike_rs_guard_check(void)
{
	char version[MAX_VERSION];
	bool me = FALSE, me_known;
	const char *running_me_text;

	running_version(version);
	me_known = running_me(&me);
	running_me_text = !me_known ? "unknown" : me ? "with" : "without";
	if (version[0] && streq(version, VERSION) && me_known &&
#ifdef ME
		me
#else
		!me
#endif
		)
	{
		DBG2(DBG_CFG, "mobike-rs: ABI guard: built for and running in "
			 "strongSwan %s %s mediation (ME)", VERSION, BUILT_ME);
		return TRUE;
	}
	DBG1(DBG_CFG, "mobike-rs: ABI guard: this library was built for "
		 "strongSwan %s %s mediation (ME) but runs in strongSwan %s %s "
		 "mediation (ME); MOBIKE stays built-in for the life of this process, "
		 "install the mobike-rs build for this strongSwan",
		 VERSION, BUILT_ME, version[0] ? version : "(unknown version)",
		 running_me_text);
	return FALSE;
}
