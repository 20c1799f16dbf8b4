/*
 * The mobike-rs plugin: MOBIKE (RFC 4555) from a Rust core.
 */

/**
 * @defgroup mobike_rs mobike_rs
 * @ingroup cplugins
 *
 * @defgroup mobike_rs_plugin mobike_rs_plugin
 * @{ @ingroup mobike_rs
 */

#ifndef MOBIKE_RS_PLUGIN_H_
#define MOBIKE_RS_PLUGIN_H_

#include <plugins/plugin.h>

typedef struct mobike_rs_plugin_t mobike_rs_plugin_t;

/**
 * Plugin that switches charon's MOBIKE tasks to the Rust core
 * (charon.plugins.mobike-rs.mode = rust | builtin).
 */
struct mobike_rs_plugin_t {

	/**
	 * Implements plugin interface.
	 */
	plugin_t plugin;
};

#endif /** MOBIKE_RS_PLUGIN_H_ @}*/
