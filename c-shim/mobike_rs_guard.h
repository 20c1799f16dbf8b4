/*
 * ABI guard: is this charon the one the shim was compiled for?
 */

/**
 * @defgroup mobike_rs_guard mobike_rs_guard
 * @{ @ingroup mobike_rs
 */

#ifndef MOBIKE_RS_GUARD_H_
#define MOBIKE_RS_GUARD_H_

#include <library.h>

/**
 * Check that the running charon matches the strongSwan the shim was built
 * against: its version and the layout-changing ME (mediation) option. A
 * shim compiled against other headers would read charon's objects at the
 * wrong offsets and corrupt memory without any error.
 *
 * Only code that is layout-independent (libstrongswan's settings and
 * logging, exported enum name tables) runs before this check.
 *
 * @return			TRUE if the shim may touch charon's objects; on FALSE
 *					one error naming both versions was logged
 */
bool mobike_rs_guard_check(void);

#endif /** MOBIKE_RS_GUARD_H_ @}*/
