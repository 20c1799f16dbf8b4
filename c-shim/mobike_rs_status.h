/*
 * The status socket of the mobike-rs plugin (`mobike-rs status`).
 */

/**
 * @defgroup mobike_rs_status mobike_rs_status
 * @{ @ingroup mobike_rs
 */

#ifndef MOBIKE_RS_STATUS_H_
#define MOBIKE_RS_STATUS_H_

#include "mobike_rs.h"

typedef struct mobike_rs_status_t mobike_rs_status_t;

/**
 * Serves one request per connection on a Unix socket (owner root, mode
 * 0600): reads the request line, hands a view of every IKE_SA to the Rust
 * core and writes back what it renders.
 */
struct mobike_rs_status_t {

	/**
	 * Stop serving, remove the socket and destroy.
	 */
	void (*destroy)(mobike_rs_status_t *this);
};

/**
 * Start serving on charon.plugins.mobike-rs.status_socket.
 *
 * @param api		the Rust core's function table
 * @return			service, NULL if disabled or the socket failed (logged)
 */
mobike_rs_status_t *mobike_rs_status_create(const mobike_api *api);

#endif /** MOBIKE_RS_STATUS_H_ @}*/
