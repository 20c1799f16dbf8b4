/*
 * mobike-rs C shim: the only code that touches charon's objects.
 *
 * It translates charon's IKE_SA, messages and packets into the plain data of
 * include/mobike_rs.h, calls the Rust core through the mobike_api table and
 * applies the actions the core returns. No MOBIKE decision is made here.
 */

/**
 * @defgroup mobike_rs_shim mobike_rs_shim
 * @{ @ingroup mobike_rs
 */

#ifndef MOBIKE_RS_SHIM_H_
#define MOBIKE_RS_SHIM_H_

#include <daemon.h>
#include <sa/ikev2/tasks/ike_mobike.h>
#include <plugins/plugin.h>

#include "mobike_rs.h"

/** Most peer or local addresses passed to the core per call */
#define MAX_VIEW_ADDRS 32

/** Most routes: the kernel's choice per peer address plus other pairs */
#define MAX_VIEW_ROUTES 64

/** Most virtual IPs per side passed to the core per call */
#define MAX_VIEW_VIPS 8

/** Most traffic selectors per side passed to the core per call */
#define MAX_VIEW_TS 32

/**
 * A mobike_sa_view and the arrays it points into.
 */
typedef struct {
	mobike_sa_view view;
	mobike_addr peers[MAX_VIEW_ADDRS];
	mobike_addr locals[MAX_VIEW_ADDRS];
	mobike_route routes[MAX_VIEW_ROUTES];
	mobike_addr_iface local_ifaces[MAX_VIEW_ADDRS];
	mobike_addr_iface route_ifaces[MAX_VIEW_ROUTES];
	mobike_addr my_vips[MAX_VIEW_VIPS];
	mobike_addr peer_vips[MAX_VIEW_VIPS];
	mobike_addr_range local_ts[MAX_VIEW_TS];
	mobike_addr_range remote_ts[MAX_VIEW_TS];
} mobike_rs_view_storage_t;

/**
 * Monotonic clock in milliseconds (the core's time).
 */
uint64_t mobike_rs_shim_now_ms(void);

/**
 * The same clock in microseconds (the kernel monitor's time).
 */
uint64_t mobike_rs_shim_now_us(void);

/**
 * Gather what charon knows about an IKE_SA (for a task or the status):
 * the basic facts, and of the costly ones (kernel lookups per address or
 * pair) those in needs.
 *
 * @param ike_sa		IKE_SA, checked out by the caller
 * @param s				storage to fill
 * @param needs			MOBIKE_NEED_* bits (MOBIKE_NEED_ROUTE_SRC and the
 *						message facts are the task's, for its message);
 *						the view's facts record those gathered, and
 *						MOBIKE_NEED_SA the basic facts
 */
void mobike_rs_shim_fill_view(ike_sa_t *ike_sa, mobike_rs_view_storage_t *s,
							  uint32_t needs);

/**
 * Add the costly facts in needs to a view from mobike_rs_shim_fill_view()
 * (those already there stay).
 */
void mobike_rs_shim_fill_view_more(ike_sa_t *ike_sa,
								   mobike_rs_view_storage_t *s, uint32_t needs);

/**
 * The kernel's source address towards the IKE_SA's peer address, with its
 * current address as hint, into the view's route_current.
 */
void mobike_rs_shim_fill_route_current(ike_sa_t *ike_sa,
									   mobike_rs_view_storage_t *s);

/**
 * Entry behind the exported ike_mobike_create() (defined in Rust): a task
 * driven by the Rust core, or the built-in one in builtin mode.
 *
 * @param ike_sa		IKE_SA the task works for
 * @param initiator		TRUE if the task initiates the exchange
 * @param api			the Rust core's function table
 * @return				task, never NULL
 */
ike_mobike_t *mobike_rs_shim_ike_mobike_create(ike_sa_t *ike_sa, bool initiator,
											   const mobike_api *api);

/**
 * charon's built-in ike_mobike_create(), found with dlsym(RTLD_NEXT).
 */
ike_mobike_t *mobike_rs_shim_builtin_create(ike_sa_t *ike_sa, bool initiator);

/**
 * Entry behind the exported mobike_rs_plugin_create() (defined in Rust).
 */
plugin_t *mobike_rs_shim_plugin_create(const mobike_api *api);

/**
 * Whether new tasks go to the Rust core: the plugin is loaded, mode = rust,
 * and no panic switched the core off.
 */
bool mobike_rs_shim_use_rust(const mobike_api *api);

/**
 * Log a line at the given level in the IKE group, prefixed "mobike-rs: ".
 */
void mobike_rs_shim_log(int level, const char *text, size_t len);

/**
 * Convert a host into the ABI's address (family 0 for NULL).
 */
void mobike_rs_addr_from_host(host_t *host, mobike_addr *out);

/**
 * Convert the ABI's address into a new host, NULL for family 0.
 */
host_t *mobike_rs_host_from_addr(const mobike_addr *addr);

/**
 * Have a MOBIKE task run on the IKE_SA: the queued one (ours or built-in)
 * or a new one of ours; with roam, it checks all paths; with dpd, it is a
 * MOBIKE DPD as charon's queue_dpd() makes one (NAT-D behind a NAT, to see
 * a changed NAT mapping). charon initiates it once the IKE_SA is free.
 */
void mobike_rs_shim_queue_mobike(ike_sa_t *ike_sa, const mobike_api *api,
								 bool roam, bool dpd);

/**
 * After ms milliseconds, have a MOBIKE task run on the IKE_SA as
 * mobike_rs_shim_queue_mobike() does (without roam), if the IKE_SA is still
 * there and established then. A scheduled job; never blocks.
 */
void mobike_rs_shim_queue_mobike_after(ike_sa_t *ike_sa, uint32_t ms);

/**
 * If the active exchange of the IKE_SA is a request of one of our MOBIKE
 * tasks: switch it to probing and retransmit it now (unless dry_run).
 * Returns whether there is such a task.
 */
bool mobike_rs_shim_kick(ike_sa_t *ike_sa, bool dry_run);

/**
 * The core's functions once the plugin is loaded, NULL before.
 */
const mobike_api *mobike_rs_shim_loaded_api(void);

#endif /** MOBIKE_RS_SHIM_H_ @}*/
