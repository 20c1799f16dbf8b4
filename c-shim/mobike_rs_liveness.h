/*
 * Silent path failures: polls the packet counters of the IKE_SAs this host
 * initiated and, when the Rust core says packets leave but none arrive,
 * queues a MOBIKE task that checks all paths.
 */

#ifndef MOBIKE_RS_LIVENESS_H_
#define MOBIKE_RS_LIVENESS_H_

#include "mobike_rs_shim.h"

/**
 * Start polling (idempotent).
 */
void mobike_rs_liveness_start(const mobike_api *api);

/**
 * Stop polling; a poll already queued does nothing.
 */
void mobike_rs_liveness_stop(void);

/**
 * Ask the kernel through which interface it routes dst from the local
 * address src (RTM_GETROUTE with RTA_SRC: policy routing counts; one
 * request, never a dump of the routing table). Answers are cached until
 * the kernel monitor reads its next datagram, for 1 s at most.
 *
 * @return			interface index, 0 if the pair is not routed
 */
uint32_t mobike_rs_route_oif(const mobike_api *api, const mobike_addr *dst,
							 const mobike_addr *src);

/**
 * The kernel monitor read a datagram (monitored) or stopped reading (not):
 * cached route facts are stale, and without a monitor none are cached.
 */
void mobike_rs_route_cache_changed(bool monitored);

#endif /** MOBIKE_RS_LIVENESS_H_ @}*/
