/*
 * Bus listener of the mobike-rs plugin.
 */

#include "mobike_rs_listener.h"
#include "mobike_rs_shim.h"

#include <daemon.h>

typedef struct private_mobike_rs_listener_t private_mobike_rs_listener_t;

/**
 * Private data of a mobike_rs_listener_t.
 */
struct private_mobike_rs_listener_t {

	/**
	 * Public interface.
	 */
	mobike_rs_listener_t public;

	/**
	 * The Rust core's functions.
	 */
	const mobike_api *api;
};

METHOD(listener_t, ike_state_change, bool,
	private_mobike_rs_listener_t *this, ike_sa_t *ike_sa, ike_sa_state_t state)
{
	if (state == IKE_DESTROYING)
	{
		this->api->sa_forget(ike_sa->get_unique_id(ike_sa));
	}
	return TRUE;
}

METHOD(listener_t, child_updown, bool,
	private_mobike_rs_listener_t *this, ike_sa_t *ike_sa, child_sa_t *child_sa,
	bool up)
{
	mobike_addr me, other;
	bool check = FALSE;

	if (up)
	{
		mobike_rs_addr_from_host(ike_sa->get_my_host(ike_sa), &me);
		mobike_rs_addr_from_host(ike_sa->get_other_host(ike_sa), &other);
		if (this->api->sa_child_up(ike_sa->get_unique_id(ike_sa), &me, &other,
								   &check) == MOBIKE_OK && check)
		{
			DBG1(DBG_IKE, "mobike-rs: first CHILD_SA on a path taken without "
				 "IPsec SAs, checking return routability of %H",
				 ike_sa->get_other_host(ike_sa));
			mobike_rs_shim_queue_mobike(ike_sa, this->api, FALSE, FALSE);
		}
	}
	return TRUE;
}

METHOD(mobike_rs_listener_t, destroy, void,
	private_mobike_rs_listener_t *this)
{
	free(this);
}

/*
 * Described in header
 */
mobike_rs_listener_t *mobike_rs_listener_create(const mobike_api *api)
{
	private_mobike_rs_listener_t *this;

	INIT(this,
		.public = {
			.listener = {
				.ike_state_change = _ike_state_change,
				.child_updown = _child_updown,
			},
			.destroy = _destroy,
		},
		.api = api,
	);
	return &this->public;
}
