/*
 * The mobike-rs plugin: MOBIKE (RFC 4555) from a Rust core.
 */

#include "mobike_rs_plugin.h"
#include "mobike_rs_liveness.h"
#include "mobike_rs_guard.h"
#include "mobike_rs_kernel.h"
#include "mobike_rs_listener.h"
#include "mobike_rs_shim.h"
#include "mobike_rs_status.h"

#include <daemon.h>

typedef struct private_mobike_rs_plugin_t private_mobike_rs_plugin_t;

/**
 * Private data of the mobike-rs plugin.
 */
struct private_mobike_rs_plugin_t {

	/**
	 * Public interface.
	 */
	mobike_rs_plugin_t public;

	/**
	 * Listener telling the core about IKE_SAs going away.
	 */
	mobike_rs_listener_t *listener;

	/**
	 * Status socket, NULL if disabled.
	 */
	mobike_rs_status_t *status;

	/**
	 * Kernel monitor (immediate roam triggers), NULL if disabled.
	 */
	mobike_rs_kernel_t *kernel;

	/**
	 * The Rust core's function table.
	 */
	const mobike_api *api;
};

/**
 * The core's function table while the plugin is loaded, NULL otherwise.
 * Set and cleared by the plugin loader's thread; read by task creation.
 */
static const mobike_api *loaded_api = NULL;

/**
 * Whether the one-time "not loaded" message was logged already.
 */
static bool logged_not_loaded = FALSE;

/**
 * Set when the ABI guard refused this charon: builtin for good.
 */
static bool abi_refused = FALSE;

/**
 * Whether `mode` says rust, as read when the plugin was loaded or the
 * settings reloaded: task creation asks for every task, and a settings
 * lookup per task is a gateway's cost per roaming IKE_SA.
 */
static bool mode_rust = FALSE;

/*
 * Described in header
 */
void mobike_rs_shim_log(int level, const char *text, size_t len)
{
	if (level <= 1)
	{
		DBG1(DBG_IKE, "mobike-rs: %.*s", (int)len, text);
	}
	else
	{
		DBG2(DBG_IKE, "mobike-rs: %.*s", (int)len, text);
	}
}

/*
 * Described in header
 */
bool mobike_rs_shim_use_rust(const mobike_api *api)
{
	if (!loaded_api)
	{
		if (!abi_refused && !logged_not_loaded)
		{
			logged_not_loaded = TRUE;
			DBG1(DBG_IKE, "mobike-rs: library preloaded but plugin not loaded "
				 "(charon.plugins.mobike-rs.load), using the built-in MOBIKE");
		}
		return FALSE;
	}
	return __atomic_load_n(&mode_rust, __ATOMIC_RELAXED) &&
		   !api->fallback_active();
}

/**
 * Read `mode` (at load and on reload); an unknown value is logged and
 * means builtin. Returns the value as set.
 */
static char *read_mode(void)
{
	char *mode;
	bool rust;

	mode = lib->settings->get_str(lib->settings,
								  "%s.plugins.mobike-rs.mode", "rust", lib->ns);
	rust = streq(mode, "rust");
	if (!rust && !streq(mode, "builtin"))
	{
		DBG1(DBG_CFG, "mobike-rs: unknown mode '%s' (expected 'rust' or "
			 "'builtin'), using the built-in MOBIKE", mode);
	}
	__atomic_store_n(&mode_rust, rust, __ATOMIC_RELAXED);
	return mode;
}

/**
 * Register or unregister the listener with the plugin's feature.
 */
static bool plugin_cb(private_mobike_rs_plugin_t *this,
					  plugin_feature_t *feature, bool reg, void *cb_data)
{
	if (reg)
	{
		charon->bus->add_listener(charon->bus, &this->listener->listener);
		this->status = mobike_rs_status_create(this->api);
		mobike_rs_liveness_start(this->api);
		this->kernel = mobike_rs_kernel_create(this->api);
	}
	else
	{
		DESTROY_IF(this->kernel);
		this->kernel = NULL;
		mobike_rs_liveness_stop();
		DESTROY_IF(this->status);
		this->status = NULL;
		charon->bus->remove_listener(charon->bus, &this->listener->listener);
	}
	return TRUE;
}

/*
 * Described in header
 */
const mobike_api *mobike_rs_shim_loaded_api(void)
{
	return loaded_api;
}

METHOD(plugin_t, get_name, char*,
	private_mobike_rs_plugin_t *this)
{
	return "mobike-rs";
}

METHOD(plugin_t, get_features, int,
	private_mobike_rs_plugin_t *this, plugin_feature_t *features[])
{
	static plugin_feature_t f[] = {
		PLUGIN_CALLBACK((plugin_feature_callback_t)plugin_cb, NULL),
			PLUGIN_PROVIDE(CUSTOM, "mobike-rs"),
	};
	*features = f;
	return countof(f);
}

/**
 * Hand the MOBIKE policy settings to the core and log the policy in effect.
 * A removed setting goes back to its default; a bad one keeps the value
 * before and says why.
 */
static void configure(const mobike_api *api)
{
	static const char *keys[] = {
		"nat_prohibition", "return_routability", "acceptable_peer_addresses",
		"max_peer_addresses", "liveness_timeout", "preference",
		"switch_back_delay",
	};
	char why[256], policy[4096];
	char *value;
	u_int i;

	for (i = 0; i < countof(keys); i++)
	{
		value = lib->settings->get_str(lib->settings,
						"%s.plugins.mobike-rs.%s", NULL, lib->ns, keys[i]);
		why[0] = '\0';
		if (api->config_set(keys[i], value, why, sizeof(why)) != MOBIKE_OK)
		{
			DBG1(DBG_CFG, "mobike-rs: %s", why);
		}
	}
	if (api->config_describe(policy, sizeof(policy)) == MOBIKE_OK)
	{
		DBG1(DBG_CFG, "mobike-rs: MOBIKE policy: %s", policy);
	}
}

METHOD(plugin_t, reload, bool,
	private_mobike_rs_plugin_t *this)
{
	read_mode();
	configure(this->api);
	return TRUE;
}

METHOD(plugin_t, destroy, void,
	private_mobike_rs_plugin_t *this)
{
	loaded_api = NULL;
	this->listener->destroy(this->listener);
	free(this);
}

/*
 * Described in header
 */
plugin_t *mobike_rs_shim_plugin_create(const mobike_api *api)
{
	private_mobike_rs_plugin_t *this;
	char *mode;

	if (!api || api->version != MOBIKE_API_VERSION)
	{
		DBG1(DBG_CFG, "mobike-rs: the Rust core's API version %u does not "
			 "match the shim's %u, plugin disabled", api ? api->version : 0,
			 MOBIKE_API_VERSION);
		return NULL;
	}
	/* before anything that depends on charon's struct layouts */
	if (!mobike_rs_guard_check())
	{
		abi_refused = TRUE;
		return NULL;
	}
	INIT(this,
		.public = {
			.plugin = {
				.get_name = _get_name,
				.get_features = _get_features,
				.reload = _reload,
				.destroy = _destroy,
			},
		},
		.listener = mobike_rs_listener_create(api),
		.api = api,
	);
	loaded_api = api;
	mode = read_mode();
	DBG1(DBG_CFG, "mobike-rs: plugin loaded, MOBIKE tasks run in mode '%s'",
		 mode);
	configure(api);
	return &this->public.plugin;
}
