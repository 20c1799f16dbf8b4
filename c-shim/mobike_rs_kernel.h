/*
 * Kernel monitor of the mobike-rs plugin: immediate roam triggers.
 */

/**
 * @defgroup mobike_rs_kernel mobike_rs_kernel
 * @{ @ingroup mobike_rs
 */

#ifndef MOBIKE_RS_KERNEL_H_
#define MOBIKE_RS_KERNEL_H_

#include "mobike_rs.h"

typedef struct mobike_rs_kernel_t mobike_rs_kernel_t;

/**
 * Its own NETLINK_ROUTE socket (links, IPv4/IPv6 addresses and routes),
 * watched by lib->watcher. Every datagram goes to the Rust core, which
 * decides whether and when charon roams; the shim applies the decisions
 * with charon->kernel->roam() (that queues charon's roam job, which runs
 * MOBIKE on every IKE_SA) instead of waiting for kernel-netlink's roam
 * event, which comes a fixed 100 ms after a change.
 */
struct mobike_rs_kernel_t {

	/**
	 * Stop monitoring and destroy. No callback runs after it returns; a
	 * scheduled deadline that fires later does nothing.
	 */
	void (*destroy)(mobike_rs_kernel_t *this);
};

/**
 * Start the monitor if charon.plugins.mobike-rs.fast_roam is on (default)
 * and MOBIKE tasks run in mode rust.
 *
 * @param api		the Rust core's function table
 * @return			monitor, NULL if disabled or failed (logged)
 */
mobike_rs_kernel_t *mobike_rs_kernel_create(const mobike_api *api);

#endif /** MOBIKE_RS_KERNEL_H_ @}*/
