/*
 * Bus listener of the mobike-rs plugin.
 */

/**
 * @defgroup mobike_rs_listener mobike_rs_listener
 * @{ @ingroup mobike_rs
 */

#ifndef MOBIKE_RS_LISTENER_H_
#define MOBIKE_RS_LISTENER_H_

#include <bus/listeners/listener.h>

#include "mobike_rs.h"

typedef struct mobike_rs_listener_t mobike_rs_listener_t;

/**
 * Tells the Rust core when an IKE_SA goes away, so it forgets what it kept
 * for it.
 */
struct mobike_rs_listener_t {

	/**
	 * Implements listener_t.
	 */
	listener_t listener;

	/**
	 * Destroy a mobike_rs_listener_t.
	 */
	void (*destroy)(mobike_rs_listener_t *this);
};

/**
 * Create a mobike_rs_listener instance.
 *
 * @param api		the Rust core's function table
 */
mobike_rs_listener_t *mobike_rs_listener_create(const mobike_api *api);

#endif /** MOBIKE_RS_LISTENER_H_ @}*/
