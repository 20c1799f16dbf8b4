/*
 * The ike_mobike_t task charon runs, driven by the Rust core.
 *
 * Each method gathers the facts the core needs (the IKE_SA, the message,
 * the kernel's routes), calls the core and applies the actions it returns,
 * in order. No MOBIKE decision is made here.
 */

#include "mobike_rs_shim.h"
#include "mobike_rs_liveness.h"

#include <dlfcn.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifndef ARPHRD_IP6GRE
/* linux/if_arp.h has it, glibc's net/if_arp.h does not */
#define ARPHRD_IP6GRE 823
#endif

#include <collections/array.h>
#include <encoding/payloads/notify_payload.h>
#include <processing/jobs/callback_job.h>
#include <processing/jobs/initiate_tasks_job.h>
#include <processing/jobs/retransmit_job.h>

typedef struct private_mobike_rs_task_t private_mobike_rs_task_t;

/**
 * Private data of a Rust-driven MOBIKE task.
 *
 * The members up to "check" mirror the built-in private_ike_mobike_t: the
 * built-in task reads "check" and "update" of any queued TASK_IKE_MOBIKE
 * (is_newer_update_queued), which may be one of ours after a switch between
 * modes, so they must be where it expects them.
 */
struct private_mobike_rs_task_t {

	/**
	 * Public ike_mobike_t interface.
	 */
	ike_mobike_t public;

	/**
	 * Assigned IKE_SA.
	 */
	ike_sa_t *ike_sa;

	/**
	 * Are we the initiator?
	 */
	bool initiator;

	/**
	 * Unused, layout of the built-in task.
	 */
	chunk_t builtin_cookie2;

	/**
	 * Unused, layout of the built-in task.
	 */
	void *builtin_natd;

	/**
	 * Mirror of the core's "will check or update", for the built-in task.
	 */
	bool update;

	/**
	 * Same as update.
	 */
	bool check;

	/**
	 * The Rust core's task.
	 */
	mobike_task *core;

	/**
	 * The Rust core's functions.
	 */
	const mobike_api *api;

	/**
	 * The core failed (panic); the task does nothing MOBIKE-specific anymore.
	 */
	bool failed;

	/**
	 * Message ID of the request this task built last (for a retransmission
	 * on demand), valid if has_mid.
	 */
	uint32_t mid;
	bool has_mid;

	/**
	 * Set by MOBIKE_ACTION_DEFER_CHILD_REKEYS for the update_hosts() that
	 * follows: the CHILD_SA rekeyings it queues wait defer_ms after this
	 * exchange.
	 */
	bool defer_next_update;
	uint32_t defer_ms;

	/**
	 * The CHILD_SA rekeyings taken out of the queue (deferred_rekey_t),
	 * scheduled when the task ends; NULL if none.
	 */
	array_t *deferred;

	/**
	 * Unique ID of the IKE_SA the deferred rekeyings belong to.
	 */
	uint32_t deferred_sa;
};

/**
 * A CHILD_SA whose rekeying waits, by its inbound SPI.
 */
typedef struct {
	protocol_id_t protocol;
	uint32_t spi;
} deferred_rekey_t;

/*
 * Described in header
 */
void mobike_rs_addr_from_host(host_t *host, mobike_addr *out)
{
	chunk_t addr;

	memset(out, 0, sizeof(*out));
	if (!host)
	{
		return;
	}
	addr = host->get_address(host);
	switch (host->get_family(host))
	{
		case AF_INET:
			if (addr.len != 4)
			{
				return;
			}
			out->family = 4;
			break;
		case AF_INET6:
			if (addr.len != 16)
			{
				return;
			}
			out->family = 6;
			break;
		default:
			return;
	}
	memcpy(out->ip, addr.ptr, addr.len);
	out->port = host->get_port(host);
}

/*
 * Described in header
 */
host_t *mobike_rs_host_from_addr(const mobike_addr *addr)
{
	switch (addr->family)
	{
		case 4:
			return host_create_from_chunk(AF_INET,
						chunk_create((u_char*)addr->ip, 4), addr->port);
		case 6:
			return host_create_from_chunk(AF_INET6,
						chunk_create((u_char*)addr->ip, 16), addr->port);
		default:
			return NULL;
	}
}

/**
 * Copy an IKE SPI as its bytes (charon keeps SPIs in network order).
 */
static void copy_spi(uint8_t out[8], uint64_t spi)
{
	memcpy(out, &spi, 8);
}

/**
 * Keep the mirror for the built-in task in step with the core.
 */
static void sync_mirror(private_mobike_rs_task_t *this)
{
	this->check = this->update = !this->failed &&
				this->api->task_will_check_or_update(this->core);
}

/**
 * The queued MOBIKE task of an IKE_SA (ours or built-in), NULL if none.
 */
static task_t *queued_mobike(ike_sa_t *ike_sa)
{
	enumerator_t *enumerator;
	task_t *task, *found = NULL;

	enumerator = ike_sa->create_task_enumerator(ike_sa, TASK_QUEUE_QUEUED);
	while (enumerator->enumerate(enumerator, &task))
	{
		if (task->get_type(task) == TASK_IKE_MOBIKE)
		{
			found = task;
			break;
		}
	}
	enumerator->destroy(enumerator);
	return found;
}

/**
 * Whether a queued MOBIKE task (ours or built-in) will check or update.
 */
static bool newer_update_queued(private_mobike_rs_task_t *this)
{
	/* both layouts agree on these members, see above */
	private_mobike_rs_task_t *queued;

	queued = (private_mobike_rs_task_t*)queued_mobike(this->ike_sa);
	return queued && (queued->check || queued->update);
}

/*
 * Described in header
 */
void mobike_rs_shim_queue_mobike(ike_sa_t *ike_sa, const mobike_api *api,
								 bool roam, bool dpd)
{
	ike_mobike_t *mobike;

	/* one queued MOBIKE task does, as in charon's queue_mobike() */
	mobike = (ike_mobike_t*)queued_mobike(ike_sa);
	if (!mobike)
	{
		mobike = mobike_rs_shim_ike_mobike_create(ike_sa, TRUE, api);
		ike_sa->queue_task(ike_sa, &mobike->task);
	}
	if (roam)
	{
		mobike->roam(mobike, FALSE);
	}
	if (dpd)
	{
		/* as charon's queue_dpd() on a MOBIKE IKE_SA */
		mobike->dpd(mobike);
	}
	lib->processor->queue_job(lib->processor, (job_t*)
				initiate_tasks_job_create(ike_sa->get_id(ike_sa)));
}

/**
 * The job mobike_rs_shim_queue_mobike_after() schedules: the IKE_SA, by
 * unique ID, gets a MOBIKE task if it is still there and established.
 */
static job_requeue_t queue_mobike_later(void *data)
{
	uint32_t unique_id = (uintptr_t)data;
	const mobike_api *api = mobike_rs_shim_loaded_api();
	ike_sa_t *ike_sa;

	if (!api)
	{
		return JOB_REQUEUE_NONE;
	}
	ike_sa = charon->ike_sa_manager->checkout_by_id(charon->ike_sa_manager,
													unique_id);
	if (ike_sa)
	{
		if (ike_sa->get_state(ike_sa) == IKE_ESTABLISHED)
		{
			mobike_rs_shim_queue_mobike(ike_sa, api, FALSE, FALSE);
		}
		charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
	}
	return JOB_REQUEUE_NONE;
}

/*
 * Described in header
 */
void mobike_rs_shim_queue_mobike_after(ike_sa_t *ike_sa, uint32_t ms)
{
	lib->scheduler->schedule_job_ms(lib->scheduler, (job_t*)
		callback_job_create(queue_mobike_later,
					(void*)(uintptr_t)ike_sa->get_unique_id(ike_sa), NULL, NULL),
		ms);
}

/**
 * What charon's socket and kernel interface offer, fixed once they are up:
 * read on the first view that finds the socket bound, not per view (a
 * gateway fills one per roaming IKE_SA).
 */
typedef struct {
	uint16_t port;
	uint16_t natt_port;
	uint32_t families;
	bool kernel_requires_encap;
} fixed_facts_t;

static fixed_facts_t fixed_facts;
static bool fixed_facts_known;

/**
 * The fixed facts (read if not yet known).
 */
static fixed_facts_t get_fixed_facts(void)
{
	fixed_facts_t f;

	if (__atomic_load_n(&fixed_facts_known, __ATOMIC_ACQUIRE))
	{
		return fixed_facts;
	}
	f.port = charon->socket->get_port(charon->socket, FALSE);
	f.natt_port = charon->socket->get_port(charon->socket, TRUE);
	switch (charon->socket->supported_families(charon->socket))
	{
		case SOCKET_FAMILY_IPV4:
			f.families = MOBIKE_FAMILY_V4;
			break;
		case SOCKET_FAMILY_IPV6:
			f.families = MOBIKE_FAMILY_V6;
			break;
		default:
			f.families = MOBIKE_FAMILY_V4 | MOBIKE_FAMILY_V6;
			break;
	}
	f.kernel_requires_encap = (charon->kernel->get_features(charon->kernel) &
							   KERNEL_REQUIRE_UDP_ENCAPSULATION) != 0;
	if (f.port)
	{	/* racing threads store the same values */
		fixed_facts = f;
		__atomic_store_n(&fixed_facts_known, TRUE, __ATOMIC_RELEASE);
	}
	return f;
}

/**
 * Whether UDP encapsulation is forced by config or required by the kernel.
 */
static bool force_encap(ike_cfg_t *ike_cfg, bool kernel_requires_encap)
{
	return (ike_cfg && ike_cfg->force_encap(ike_cfg)) || kernel_requires_encap;
}

/**
 * The kernel's source address towards dst (with src as hint).
 */
static void route_to(host_t *dst, host_t *hint, mobike_addr *out)
{
	host_t *src;

	src = charon->kernel->get_source_addr(charon->kernel, dst, hint);
	mobike_rs_addr_from_host(src, out);
	DESTROY_IF(src);
}

/**
 * Whether a network interface is a tunnel device, as sysfs describes it: a
 * TUN device (kernel-libipsec's, tun_flags exists) or one whose ARPHRD type
 * is a tunnel's. XFRM interfaces have ARPHRD_NONE, VTI ARPHRD_TUNNEL(6).
 */
static bool read_tunnel_iface(const char *name)
{
	char path[64];
	FILE *file;
	int type = -1;

	/* the kernel's names never hold '/', but never build a path from one */
	if (!name[0] || strchr(name, '/') || streq(name, ".") || streq(name, ".."))
	{
		return FALSE;
	}
	snprintf(path, sizeof(path), "/sys/class/net/%s/tun_flags", name);
	if (access(path, F_OK) == 0)
	{
		return TRUE;
	}
	snprintf(path, sizeof(path), "/sys/class/net/%s/type", name);
	file = fopen(path, "r");
	if (!file)
	{
		return FALSE;
	}
	if (fscanf(file, "%d", &type) != 1)
	{
		type = -1;
	}
	fclose(file);
	switch (type)
	{
		case ARPHRD_TUNNEL:		/* IP-in-IP, VTI */
		case ARPHRD_TUNNEL6:	/* ip6tnl, VTI6 */
		case ARPHRD_SIT:
		case ARPHRD_IPGRE:
		case ARPHRD_IP6GRE:
		case ARPHRD_NONE:		/* XFRM interfaces, TUN devices */
			return TRUE;
		default:
			return FALSE;
	}
}

/**
 * What was found out about recently seen interfaces: a gateway asks about
 * the same one or two interfaces for every roaming IKE_SA, and each answer
 * costs system calls (four to sysfs for the type, a socket for the name of
 * an index). An interface replaced under the same name or index is seen as
 * it is after at most IFACE_CACHE_MS.
 */
#define IFACE_CACHE_SIZE 8
#define IFACE_CACHE_MS 1000

typedef struct {
	/** interface index, 0 if looked up by name only */
	uint32_t index;
	char name[IFNAMSIZ];
	bool tunnel;
	uint64_t until_ms;
} iface_entry_t;

static iface_entry_t iface_cache[IFACE_CACHE_SIZE];
static unsigned int iface_cache_next;
static pthread_mutex_t iface_cache_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * Described in header
 */
uint64_t mobike_rs_shim_now_ms(void)
{
	return mobike_rs_shim_now_us() / 1000;
}

/*
 * Described in header
 */
uint64_t mobike_rs_shim_now_us(void)
{
	timeval_t now;

	time_monotonic(&now);
	return (uint64_t)now.tv_sec * 1000000 + now.tv_usec;
}

/**
 * A fresh entry for index (if not 0) or else for name, copied to out.
 */
static bool iface_cache_get(uint32_t index, const char *name,
							iface_entry_t *out)
{
	uint64_t now = mobike_rs_shim_now_ms();
	bool found = FALSE;
	int i;

	pthread_mutex_lock(&iface_cache_lock);
	for (i = 0; i < IFACE_CACHE_SIZE && !found; i++)
	{
		if (iface_cache[i].until_ms > now &&
			(index ? iface_cache[i].index == index
				   : streq(iface_cache[i].name, name)))
		{
			*out = iface_cache[i];
			found = TRUE;
		}
	}
	pthread_mutex_unlock(&iface_cache_lock);
	return found;
}

/**
 * Remember what was found out about one interface, replacing the oldest.
 */
static void iface_cache_put(uint32_t index, const char *name, bool tunnel)
{
	size_t len = min(strlen(name), (size_t)IFNAMSIZ - 1);
	iface_entry_t *e;

	pthread_mutex_lock(&iface_cache_lock);
	e = &iface_cache[iface_cache_next++ % IFACE_CACHE_SIZE];
	e->index = index;
	memcpy(e->name, name, len);
	e->name[len] = '\0';
	e->tunnel = tunnel;
	e->until_ms = mobike_rs_shim_now_ms() + IFACE_CACHE_MS;
	pthread_mutex_unlock(&iface_cache_lock);
}

/**
 * Name and type of interface index (if_indextoname(), read_tunnel_iface(),
 * cached); FALSE if there is no such interface.
 */
static bool iface_by_index(uint32_t index, iface_entry_t *out)
{
	if (iface_cache_get(index, NULL, out))
	{
		return TRUE;
	}
	if (!if_indextoname(index, out->name))
	{
		return FALSE;
	}
	out->tunnel = read_tunnel_iface(out->name);
	iface_cache_put(index, out->name, out->tunnel);
	return TRUE;
}

/**
 * Whether a network interface is a tunnel device (read_tunnel_iface(),
 * cached).
 */
static bool is_tunnel_iface(const char *name)
{
	iface_entry_t e;
	bool tunnel;

	if (strlen(name) >= IFNAMSIZ)
	{
		return read_tunnel_iface(name);
	}
	if (iface_cache_get(0, name, &e))
	{
		return e.tunnel;
	}
	tunnel = read_tunnel_iface(name);
	iface_cache_put(0, name, tunnel);
	return tunnel;
}

/**
 * Describe interface "name" (may be NULL: unknown), a tunnel device or
 * not, for address addr.
 */
static void iface_fact_typed(const mobike_addr *addr, const char *name,
							 bool tunnel, mobike_addr_iface *out)
{
	memset(out, 0, sizeof(*out));
	out->addr = *addr;
	if (!name)
	{
		return;
	}
	memcpy(out->name, name, min(strlen(name), sizeof(out->name)));
	if (tunnel)
	{
		out->flags |= MOBIKE_IFACE_TUNNEL;
	}
	if (!charon->kernel->is_interface_usable(charon->kernel, name))
	{
		out->flags |= MOBIKE_IFACE_IGNORED;
	}
}

/**
 * Describe interface "name" (may be NULL: unknown) for address addr.
 */
static void iface_fact(const mobike_addr *addr, const char *name,
					   mobike_addr_iface *out)
{
	iface_fact_typed(addr, name, name && is_tunnel_iface(name), out);
}

/**
 * The interface the kernel's route towards dst leaves through (from the
 * local address src): our own RTM_GETROUTE, which costs one request where
 * charon's get_nexthop() dumps the routing table (a gateway's holds a
 * route per road warrior). Returns the interface index, 0 if the pair is
 * not routed.
 */
static uint32_t route_iface(const mobike_addr *dst, const mobike_addr *src,
							mobike_addr_iface *out)
{
	const mobike_api *api = mobike_rs_shim_loaded_api();
	iface_entry_t e;
	uint32_t oif = 0;

	if (api)
	{
		oif = mobike_rs_route_oif(api, dst, src);
	}
	if (oif && iface_by_index(oif, &e))
	{
		iface_fact_typed(dst, e.name, e.tunnel, out);
	}
	else
	{
		iface_fact_typed(dst, NULL, FALSE, out);
	}
	return oif;
}

/**
 * Append a traffic selector as an address range unless it is there already
 * or the array is full; returns FALSE if it did not fit.
 */
static bool add_ts(traffic_selector_t *ts, mobike_addr_range *ranges,
				   size_t *len)
{
	mobike_addr_range r;
	chunk_t from, to;
	size_t i;

	memset(&r, 0, sizeof(r));
	from = ts->get_from_address(ts);
	to = ts->get_to_address(ts);
	switch (ts->get_type(ts))
	{
		case TS_IPV4_ADDR_RANGE:
			r.from.family = r.to.family = 4;
			break;
		case TS_IPV6_ADDR_RANGE:
			r.from.family = r.to.family = 6;
			break;
		default:
			return TRUE;
	}
	if (from.len != (r.from.family == 4 ? 4 : 16) || to.len != from.len)
	{
		return TRUE;
	}
	memcpy(r.from.ip, from.ptr, from.len);
	memcpy(r.to.ip, to.ptr, to.len);
	for (i = 0; i < *len; i++)
	{
		if (memeq(&ranges[i], &r, sizeof(r)))
		{
			return TRUE;
		}
	}
	if (*len >= MAX_VIEW_TS)
	{
		return FALSE;
	}
	ranges[(*len)++] = r;
	return TRUE;
}

/**
 * Traffic selectors of the IKE_SA: its CHILD_SAs' and, as the first
 * CHILD_SA is negotiated in the IKE_AUTH exchange that carries the first
 * address list, those its config proposes ("dynamic" ones stay whole
 * ranges, which exclude nothing).
 */
static void fill_ts(ike_sa_t *ike_sa, mobike_rs_view_storage_t *s)
{
	mobike_sa_view *v = &s->view;
	peer_cfg_t *peer_cfg = ike_sa->get_peer_cfg(ike_sa);
	enumerator_t *enumerator, *inner;
	child_sa_t *child_sa;
	child_cfg_t *child_cfg;
	traffic_selector_t *ts;
	linked_list_t *list;
	bool fit = TRUE;
	int local;

	/* no enumerator for a childless IKE_SA (a gateway's many) */
	if (ike_sa->get_child_count(ike_sa))
	{
		enumerator = ike_sa->create_child_sa_enumerator(ike_sa);
		while (enumerator->enumerate(enumerator, &child_sa))
		{
			inner = child_sa->create_ts_enumerator(child_sa, TRUE);
			while (inner->enumerate(inner, &ts))
			{
				fit &= add_ts(ts, s->local_ts, &v->local_ts_len);
			}
			inner->destroy(inner);
			inner = child_sa->create_ts_enumerator(child_sa, FALSE);
			while (inner->enumerate(inner, &ts))
			{
				fit &= add_ts(ts, s->remote_ts, &v->remote_ts_len);
			}
			inner->destroy(inner);
		}
		enumerator->destroy(enumerator);
	}
	if (peer_cfg)
	{
		enumerator = peer_cfg->create_child_cfg_enumerator(peer_cfg);
		while (enumerator->enumerate(enumerator, &child_cfg))
		{
			for (local = 1; local >= 0; local--)
			{
				list = child_cfg->get_traffic_selectors(child_cfg, local,
														NULL, NULL, FALSE);
				inner = list->create_enumerator(list);
				while (inner->enumerate(inner, &ts))
				{
					fit &= local ? add_ts(ts, s->local_ts, &v->local_ts_len)
								 : add_ts(ts, s->remote_ts, &v->remote_ts_len);
				}
				inner->destroy(inner);
				list->destroy_offset(list,
									 offsetof(traffic_selector_t, destroy));
			}
		}
		enumerator->destroy(enumerator);
	}
	v->local_ts = s->local_ts;
	v->remote_ts = s->remote_ts;
	if (!fit)
	{
		DBG2(DBG_IKE, "mobike-rs: only the first %d traffic selectors per "
			 "side considered", MAX_VIEW_TS);
	}
}

/**
 * Our virtual IPs and the peer's on this IKE_SA.
 */
static void fill_vips(ike_sa_t *ike_sa, mobike_rs_view_storage_t *s)
{
	mobike_sa_view *v = &s->view;
	enumerator_t *enumerator;
	host_t *host;

	enumerator = ike_sa->create_virtual_ip_enumerator(ike_sa, TRUE);
	while (v->my_vips_len < MAX_VIEW_VIPS &&
		   enumerator->enumerate(enumerator, &host))
	{
		mobike_rs_addr_from_host(host, &s->my_vips[v->my_vips_len++]);
	}
	enumerator->destroy(enumerator);
	enumerator = ike_sa->create_virtual_ip_enumerator(ike_sa, FALSE);
	while (v->peer_vips_len < MAX_VIEW_VIPS &&
		   enumerator->enumerate(enumerator, &host))
	{
		mobike_rs_addr_from_host(host, &s->peer_vips[v->peer_vips_len++]);
	}
	enumerator->destroy(enumerator);
	v->my_vips = s->my_vips;
	v->peer_vips = s->peer_vips;
}

/**
 * The interface of each local address already in the view.
 */
static void fill_local_ifaces(mobike_rs_view_storage_t *s)
{
	mobike_sa_view *v = &s->view;
	host_t *host;
	char *name;
	size_t i;

	/* asked outside the address enumerator, which holds the kernel
	 * interface's lock */
	for (i = 0; i < v->local_addrs_len; i++)
	{
		name = NULL;
		host = mobike_rs_host_from_addr(&s->locals[i]);
		if (host && !charon->kernel->get_interface(charon->kernel, host, &name))
		{
			name = NULL;
		}
		iface_fact(&s->locals[i], name, &s->local_ifaces[v->local_ifaces_len++]);
		free(name);
		DESTROY_IF(host);
	}
	v->local_ifaces = s->local_ifaces;
}

/**
 * After the kernel's first choice of source per peer address, every other
 * local address from which the kernel routes that peer address, asked per
 * pair so policy routing counts (the core tries them all when probing).
 */
static void add_pair_routes(mobike_rs_view_storage_t *s)
{
	mobike_sa_view *v = &s->view;
	const mobike_api *api = mobike_rs_shim_loaded_api();
	enumerator_t *enumerator;
	host_t *local;
	mobike_addr from, *peer, *first;
	size_t i, peers = v->routes_len;

	if (!api)
	{
		return;
	}
	enumerator = charon->kernel->create_address_enumerator(charon->kernel,
														ADDR_TYPE_REGULAR);
	while (v->routes_len < MAX_VIEW_ROUTES &&
		   enumerator->enumerate(enumerator, &local))
	{
		mobike_rs_addr_from_host(local, &from);
		for (i = 0; i < peers && v->routes_len < MAX_VIEW_ROUTES; i++)
		{
			peer = &s->routes[i].dst;
			first = &s->routes[i].src;
			/* one lookup: whether the pair is routed, and through what */
			if (peer->family && peer->family == from.family &&
				!(first->family == from.family &&
				  memeq(first->ip, from.ip, sizeof(from.ip))) &&
				route_iface(peer, &from, &s->route_ifaces[v->route_ifaces_len]))
			{
				v->route_ifaces_len++;
				s->routes[v->routes_len].dst = *peer;
				s->routes[v->routes_len].src = from;
				v->routes_len++;
			}
		}
	}
	enumerator->destroy(enumerator);
}

/*
 * Described in header
 */
void mobike_rs_shim_fill_view(ike_sa_t *ike_sa, mobike_rs_view_storage_t *s,
							  uint32_t needs)
{
	mobike_sa_view *v = &s->view;
	ike_sa_id_t *id = ike_sa->get_id(ike_sa);
	ike_cfg_t *ike_cfg = ike_sa->get_ike_cfg(ike_sa);
	peer_cfg_t *peer_cfg = ike_sa->get_peer_cfg(ike_sa);
	fixed_facts_t fixed = get_fixed_facts();

	memset(v, 0, sizeof(*v));
	v->facts = MOBIKE_NEED_SA;
	v->now_ms = mobike_rs_shim_now_ms();
	v->unique_id = ike_sa->get_unique_id(ike_sa);
	copy_spi(v->spi_i, id->get_initiator_spi(id));
	copy_spi(v->spi_r, id->get_responder_spi(id));
	mobike_rs_addr_from_host(ike_sa->get_my_host(ike_sa), &v->my_host);
	mobike_rs_addr_from_host(ike_sa->get_other_host(ike_sa), &v->other_host);
	if (ike_cfg)
	{
		v->my_cfg_port = ike_cfg->get_my_port(ike_cfg);
		v->other_cfg_port = ike_cfg->get_other_port(ike_cfg);
	}
	v->socket_port = fixed.port;
	v->socket_natt_port = fixed.natt_port;
	v->families = fixed.families;
	v->flags =
		(ike_sa->has_condition(ike_sa, COND_ORIGINAL_INITIATOR) ?
			MOBIKE_SA_ORIGINAL_INITIATOR : 0) |
		(ike_sa->has_condition(ike_sa, COND_AUTHENTICATED) ?
			MOBIKE_SA_AUTHENTICATED : 0) |
		(!peer_cfg || peer_cfg->use_mobike(peer_cfg) ?
			MOBIKE_SA_MOBIKE_CONFIGURED : 0) |
		(ike_sa->supports_extension(ike_sa, EXT_MOBIKE) ?
			MOBIKE_SA_MOBIKE_SUPPORTED : 0) |
		(ike_sa->has_condition(ike_sa, COND_NAT_HERE) ?
			MOBIKE_SA_NAT_HERE : 0) |
		(ike_sa->has_condition(ike_sa, COND_NAT_THERE) ?
			MOBIKE_SA_NAT_THERE : 0) |
		(force_encap(ike_cfg, fixed.kernel_requires_encap) ?
			MOBIKE_SA_FORCE_ENCAP : 0) |
		(ike_sa->get_child_count(ike_sa) > 0 ? MOBIKE_SA_HAS_CHILD_SAS : 0);

	v->peer_addrs = s->peers;
	v->routes = s->routes;
	v->route_ifaces = s->route_ifaces;
	v->local_addrs = s->locals;
	v->local_ifaces = s->local_ifaces;
	mobike_rs_shim_fill_view_more(ike_sa, s, needs);
}

/**
 * The peer address set of the IKE_SA.
 */
static void fill_peers(ike_sa_t *ike_sa, mobike_rs_view_storage_t *s)
{
	mobike_sa_view *v = &s->view;
	enumerator_t *enumerator;
	host_t *host;
	size_t dropped = 0;

	enumerator = ike_sa->create_peer_address_enumerator(ike_sa);
	while (enumerator->enumerate(enumerator, &host))
	{
		if (v->peer_addrs_len >= MAX_VIEW_ADDRS)
		{
			dropped++;
			continue;
		}
		mobike_rs_addr_from_host(host, &s->peers[v->peer_addrs_len++]);
	}
	enumerator->destroy(enumerator);
	if (dropped)
	{
		DBG1(DBG_IKE, "mobike-rs: only the first %d of %d peer addresses "
			 "considered", MAX_VIEW_ADDRS, (int)(MAX_VIEW_ADDRS + dropped));
	}
}

/*
 * Described in header
 */
void mobike_rs_shim_fill_view_more(ike_sa_t *ike_sa,
								   mobike_rs_view_storage_t *s, uint32_t needs)
{
	mobike_sa_view *v = &s->view;
	enumerator_t *enumerator;
	host_t *host;
	size_t i;

	/* the routes are those towards the peer addresses */
	if ((needs & (MOBIKE_NEED_PEERS | MOBIKE_NEED_ROUTES)) &&
		!(v->facts & MOBIKE_NEED_PEERS))
	{
		fill_peers(ike_sa, s);
		v->facts |= MOBIKE_NEED_PEERS;
	}
	if ((needs & MOBIKE_NEED_ROUTES) && !v->routes_len)
	{
		for (i = 0; i < v->peer_addrs_len; i++)
		{
			host = mobike_rs_host_from_addr(&s->peers[i]);
			if (!host)
			{
				continue;
			}
			s->routes[v->routes_len].dst = s->peers[i];
			route_to(host, NULL, &s->routes[v->routes_len].src);
			if (s->routes[v->routes_len].src.family)
			{
				route_iface(&s->peers[i], &s->routes[v->routes_len].src,
							&s->route_ifaces[v->route_ifaces_len++]);
			}
			v->routes_len++;
			host->destroy(host);
		}
		add_pair_routes(s);
	}
	if ((needs & MOBIKE_NEED_LOCALS) && !v->local_addrs_len)
	{
		enumerator = charon->kernel->create_address_enumerator(charon->kernel,
															ADDR_TYPE_REGULAR);
		while (v->local_addrs_len < MAX_VIEW_ADDRS &&
			   enumerator->enumerate(enumerator, &host))
		{
			mobike_rs_addr_from_host(host, &s->locals[v->local_addrs_len++]);
		}
		enumerator->destroy(enumerator);
		fill_local_ifaces(s);
	}
	if ((needs & MOBIKE_NEED_FILTER) && !v->local_ts)
	{	/* what the core's address filter needs besides interfaces */
		fill_ts(ike_sa, s);
		fill_vips(ike_sa, s);
	}
	v->facts |= needs & (MOBIKE_NEED_ROUTES | MOBIKE_NEED_LOCALS |
						 MOBIKE_NEED_FILTER);
}

/*
 * Described in header
 */
void mobike_rs_shim_fill_route_current(ike_sa_t *ike_sa,
									   mobike_rs_view_storage_t *s)
{
	route_to(ike_sa->get_other_host(ike_sa), ike_sa->get_my_host(ike_sa),
			 &s->view.route_current);
}

/**
 * The steps of a task, as the core's functions take them.
 */
typedef enum {
	STEP_BUILD,
	STEP_PROCESS,
	STEP_TRANSMIT,
} step_t;

/**
 * The basic facts of this task's IKE_SA for one step; the costly ones are
 * gathered when the core asks for them (add_facts()).
 */
static void fill_view(private_mobike_rs_task_t *this,
					  mobike_rs_view_storage_t *s, step_t step)
{
	mobike_rs_shim_fill_view(this->ike_sa, s, 0);
	/* read only when an initiator processes an answer: a gateway's
	 * responder tasks skip walking the task queue */
	if (step == STEP_PROCESS && this->initiator && newer_update_queued(this))
	{
		s->view.flags |= MOBIKE_SA_NEWER_UPDATE_QUEUED;
	}
	if (step == STEP_TRANSMIT)
	{
		mobike_rs_shim_fill_route_current(this->ike_sa, s);
	}
}

/**
 * Gather the facts in needs (MOBIKE_NEED_*) that a step asked for; msg and
 * message are the step's message (NULL for a transmit).
 */
static void add_facts(private_mobike_rs_task_t *this,
					  mobike_rs_view_storage_t *s, step_t step, uint32_t needs,
					  mobike_message *msg, message_t *message)
{
	uint32_t all = needs | s->view.facts;
	host_t *me;
	char *name = NULL;

	if (needs & MOBIKE_NEED_SA)
	{
		fill_view(this, s, step);
	}
	mobike_rs_shim_fill_view_more(this->ike_sa, s, needs);
	/* the routes of all pairs include the message's */
	if (msg && !(all & MOBIKE_NEED_ROUTES) &&
		(needs & MOBIKE_NEED_MESSAGE_ROUTE) && msg->src.family &&
		s->view.route_ifaces_len < MAX_VIEW_ROUTES)
	{
		route_iface(&msg->src, &msg->dst,
					&s->route_ifaces[s->view.route_ifaces_len++]);
	}
	if (msg && !(all & MOBIKE_NEED_LOCALS) &&
		(needs & MOBIKE_NEED_MESSAGE_LOCAL) &&
		s->view.local_ifaces_len < MAX_VIEW_ADDRS)
	{
		me = mobike_rs_host_from_addr(&msg->dst);
		if (me && charon->kernel->get_interface(charon->kernel, me, &name))
		{
			iface_fact(&msg->dst, name,
					   &s->local_ifaces[s->view.local_ifaces_len++]);
			free(name);
		}
		DESTROY_IF(me);
	}
	if (message && (needs & MOBIKE_NEED_ROUTE_SRC))
	{	/* whether the current source address still works */
		route_to(message->get_destination(message),
				 message->get_source(message), &msg->route_src);
	}
	s->view.facts |= needs;
}

/**
 * Run one step of the core on the view in s, gathering the facts it asks
 * for. It asks for all it reads at once: one round for a view with the
 * basic facts, two for one without (the basic facts, then the costly
 * ones); a further request breaks the core's contract.
 */
static mobike_result run_step(private_mobike_rs_task_t *this,
							  mobike_rs_view_storage_t *s, step_t step,
							  mobike_message *msg, message_t *message,
							  mobike_status *status, bool *found)
{
	mobike_result result = MOBIKE_INVALID_PARAMETER;
	uint32_t needs = 0;
	int round;

	for (round = 0; round < 3; round++)
	{
		switch (step)
		{
			case STEP_BUILD:
				result = this->api->task_build(this->core, &s->view, msg,
											   status, &needs);
				break;
			case STEP_PROCESS:
				result = this->api->task_process(this->core, &s->view, msg,
												 status, &needs);
				break;
			case STEP_TRANSMIT:
				result = this->api->task_transmit(this->core, &s->view, found,
												  &needs);
				break;
		}
		if (result != MOBIKE_OK || !needs)
		{
			return result;
		}
		add_facts(this, s, step, needs, msg, message);
	}
	return MOBIKE_INVALID_PARAMETER;
}

/**
 * Notifies of a received message translated without an allocation; an
 * UPDATE_SA_ADDRESSES request carries five.
 */
#define INLINE_NOTIFIES 16

/**
 * The notify payload's type and data, borrowed.
 */
static void copy_notify(payload_t *payload, mobike_notify *out)
{
	notify_payload_t *notify = (notify_payload_t*)payload;
	chunk_t data = notify->get_notification_data(notify);

	out->notify_type = notify->get_notify_type(notify);
	out->data = data.ptr;
	out->len = data.ptr ? data.len : 0;
}

/**
 * Translate a message of ike_sa. The notifies of a received one go into
 * inline (INLINE_NOTIFIES long) or, if there are more, into an allocated
 * array that free_message() frees.
 */
static void fill_message(ike_sa_t *ike_sa, message_t *message,
						 mobike_message *m, bool received,
						 mobike_notify *inline_notifies)
{
	enumerator_t *enumerator;
	payload_t *payload;
	ike_sa_id_t *id;
	mobike_notify *notifies;
	size_t count, len = 0;

	memset(m, 0, sizeof(*m));
	switch (message->get_exchange_type(message))
	{
		case IKE_AUTH:
			m->exchange = MOBIKE_EXCHANGE_IKE_AUTH;
			break;
		case INFORMATIONAL:
			m->exchange = MOBIKE_EXCHANGE_INFORMATIONAL;
			break;
		default:
			m->exchange = MOBIKE_EXCHANGE_OTHER;
			break;
	}
	mobike_rs_addr_from_host(message->get_source(message), &m->src);
	mobike_rs_addr_from_host(message->get_destination(message), &m->dst);
	m->message_id = message->get_message_id(message);
	/* a message being built gets its IKE SA ID only when it is generated
	 * (NAT-D hashes are made of the IKE_SA's SPIs, as in ike_natd) */
	id = message->get_ike_sa_id(message) ?: ike_sa->get_id(ike_sa);
	if (id)
	{
		copy_spi(m->spi_i, id->get_initiator_spi(id));
		copy_spi(m->spi_r, id->get_responder_spi(id));
	}
	if (!received)
	{
		return;
	}
	/* into inline_notifies; a message with more (its size bounds them)
	 * is walked again into an array of its count */
	notifies = inline_notifies;
	enumerator = message->create_payload_enumerator(message);
	while (enumerator->enumerate(enumerator, &payload))
	{
		if (payload->get_type(payload) != PLV2_NOTIFY)
		{
			continue;
		}
		if (len < INLINE_NOTIFIES)
		{
			copy_notify(payload, &notifies[len]);
		}
		len++;
	}
	enumerator->destroy(enumerator);
	if (len > INLINE_NOTIFIES)
	{
		count = len;
		len = 0;
		notifies = calloc(count, sizeof(*notifies));
		if (!notifies)
		{
			return;
		}
		enumerator = message->create_payload_enumerator(message);
		while (len < count && enumerator->enumerate(enumerator, &payload))
		{
			if (payload->get_type(payload) == PLV2_NOTIFY)
			{
				copy_notify(payload, &notifies[len++]);
			}
		}
		enumerator->destroy(enumerator);
	}
	m->notifies = notifies;
	m->notifies_len = len;
}

/**
 * Free what fill_message() allocated.
 */
static void free_message(mobike_message *m, mobike_notify *inline_notifies)
{
	if (m->notifies != inline_notifies)
	{
		free((void*)m->notifies);
	}
}

/**
 * The CHILD_SA rekeyings queued on an IKE_SA.
 */
static u_int queued_child_rekeys(ike_sa_t *ike_sa)
{
	enumerator_t *enumerator;
	task_t *task;
	u_int count = 0;

	enumerator = ike_sa->create_task_enumerator(ike_sa, TASK_QUEUE_QUEUED);
	while (enumerator->enumerate(enumerator, &task))
	{
		if (task->get_type(task) == TASK_CHILD_REKEY)
		{
			count++;
		}
	}
	enumerator->destroy(enumerator);
	return count;
}

/**
 * update_hosts() for the original initiator, with the rekeyings it queues
 * deferred (MOBIKE_ACTION_DEFER_CHILD_REKEYS). charon rekeys each CHILD_SA
 * the kernel cannot update in place (kernel-libipsec cannot). At the move:
 * if it queued one for every installed CHILD_SA, they leave the queue and
 * those CHILD_SAs are remembered; otherwise all stay as charon queued them.
 * At the update after the exchange (its NAT state), what it queues is for
 * the CHILD_SAs remembered, ones the peer is rekeying or has rekeyed, or
 * ones the peer's rekeying created on the new path: it leaves the queue.
 */
static void update_hosts_deferring(private_mobike_rs_task_t *this,
								   host_t *me, host_t *other,
								   update_hosts_flag_t flags)
{
	enumerator_t *enumerator;
	child_sa_t *child_sa;
	task_t *task;
	deferred_rekey_t rekey;
	array_t *installed = NULL;
	u_int before, queued, seen = 0;

	if (!this->deferred)
	{
		installed = array_create(sizeof(deferred_rekey_t), 0);
		enumerator = this->ike_sa->create_child_sa_enumerator(this->ike_sa);
		while (enumerator->enumerate(enumerator, &child_sa))
		{
			if (child_sa->get_state(child_sa) == CHILD_INSTALLED)
			{
				rekey = (deferred_rekey_t){
					.protocol = child_sa->get_protocol(child_sa),
					.spi = child_sa->get_spi(child_sa, TRUE),
				};
				array_insert(installed, ARRAY_TAIL, &rekey);
			}
		}
		enumerator->destroy(enumerator);
	}
	before = queued_child_rekeys(this->ike_sa);

	this->ike_sa->update_hosts(this->ike_sa, me, other, flags);

	queued = queued_child_rekeys(this->ike_sa) - before;
	if (!queued || (installed && queued != (u_int)array_count(installed)))
	{
		array_destroy(installed);
		return;
	}
	/* update_hosts() appended its rekeyings after the ones queued before */
	enumerator = this->ike_sa->create_task_enumerator(this->ike_sa,
													  TASK_QUEUE_QUEUED);
	while (enumerator->enumerate(enumerator, &task))
	{
		if (task->get_type(task) == TASK_CHILD_REKEY && seen++ >= before)
		{
			this->ike_sa->remove_task(this->ike_sa, enumerator);
			task->destroy(task);
		}
	}
	enumerator->destroy(enumerator);
	if (installed)
	{
		this->deferred = installed;
		this->deferred_sa = this->ike_sa->get_unique_id(this->ike_sa);
		DBG1(DBG_IKE, "mobike-rs: the kernel did not update %u CHILD_SA(s) in "
			 "place; rekeying them after this exchange unless the peer "
			 "rekeys them first", queued);
	}
}

/**
 * The deferred rekeyings of a task that ended, for rekey_deferred().
 */
typedef struct {
	uint32_t unique_id;
	array_t *rekeys;
} deferred_job_t;

static void deferred_job_destroy(deferred_job_t *job)
{
	array_destroy(job->rekeys);
	free(job);
}

/**
 * The job a task schedules when it ends with deferred rekeyings: a CHILD_SA
 * still installed (the peer did not rekey it) is rekeyed now.
 */
static job_requeue_t rekey_deferred(deferred_job_t *job)
{
	ike_sa_t *ike_sa;
	child_sa_t *child_sa;
	deferred_rekey_t rekey;
	u_int peers = 0;

	ike_sa = charon->ike_sa_manager->checkout_by_id(charon->ike_sa_manager,
													job->unique_id);
	if (!ike_sa)
	{
		return JOB_REQUEUE_NONE;
	}
	while (array_remove(job->rekeys, ARRAY_HEAD, &rekey))
	{
		child_sa = ike_sa->get_child_sa(ike_sa, rekey.protocol, rekey.spi,
										TRUE);
		if (child_sa && child_sa->get_state(child_sa) == CHILD_INSTALLED &&
			ike_sa->get_state(ike_sa) != IKE_PASSIVE)
		{
			DBG1(DBG_IKE, "mobike-rs: rekeying CHILD_SA %s{%u}: the peer did "
				 "not rekey it after the move", child_sa->get_name(child_sa),
				 child_sa->get_unique_id(child_sa));
			ike_sa->rekey_child_sa(ike_sa, rekey.protocol, rekey.spi);
		}
		else
		{
			peers++;
		}
	}
	if (peers)
	{
		DBG1(DBG_IKE, "mobike-rs: the peer rekeyed %u CHILD_SA(s) after the "
			 "move, not rekeying them again", peers);
	}
	charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
	return JOB_REQUEUE_NONE;
}

/**
 * Whether host is addr (address and port).
 */
static bool host_is(host_t *host, const mobike_addr *addr)
{
	mobike_addr have;

	mobike_rs_addr_from_host(host, &have);
	return have.family && have.family == addr->family &&
		   have.port == addr->port && memeq(have.ip, addr->ip, sizeof(have.ip));
}

/**
 * A host for addr: the message's own destination or source if it is that
 * address (what charon's own MOBIKE passes to update_hosts(), which
 * copies it), else a new one, also stored in *owned for the caller to
 * destroy.
 */
static host_t *host_of(const mobike_addr *addr, message_t *message,
					   host_t **owned)
{
	host_t *host;

	*owned = NULL;
	if (message)
	{
		host = message->get_destination(message);
		if (host && host_is(host, addr))
		{
			return host;
		}
		host = message->get_source(message);
		if (host && host_is(host, addr))
		{
			return host;
		}
	}
	*owned = mobike_rs_host_from_addr(addr);
	return *owned;
}

/**
 * Apply the actions of the last core call, in order.
 */
static void apply_actions(private_mobike_rs_task_t *this, message_t *message,
						  packet_t *packet)
{
	mobike_action a;
	host_t *me, *other, *own_me, *own_other;
	packet_t *copy;
	update_hosts_flag_t flags;

	while (this->api->task_next_action(this->core, &a))
	{
		switch (a.kind)
		{
			case MOBIKE_ACTION_ADD_NOTIFY:
				if (message)
				{
					message->add_notify(message, FALSE, a.value,
									chunk_create((u_char*)a.data, a.len));
				}
				break;
			case MOBIKE_ACTION_SET_SOURCE:
				me = mobike_rs_host_from_addr(&a.a);
				if (message && me)
				{
					message->set_source(message, me);
				}
				else
				{
					DESTROY_IF(me);
				}
				break;
			case MOBIKE_ACTION_CANCEL_EXCHANGE:
				if (message)
				{
					message->set_exchange_type(message, EXCHANGE_TYPE_UNDEFINED);
				}
				break;
			case MOBIKE_ACTION_ENABLE_EXTENSION:
				this->ike_sa->enable_extension(this->ike_sa,
					a.value == MOBIKE_EXTENSION_NATT ? EXT_NATT : EXT_MOBIKE);
				break;
			case MOBIKE_ACTION_SET_CONDITION:
				switch (a.value)
				{
					case MOBIKE_CONDITION_NAT_HERE:
						this->ike_sa->set_condition(this->ike_sa, COND_NAT_HERE,
													a.flag);
						break;
					case MOBIKE_CONDITION_NAT_THERE:
						this->ike_sa->set_condition(this->ike_sa, COND_NAT_THERE,
													a.flag);
						break;
					case MOBIKE_CONDITION_NAT_FAKE:
						this->ike_sa->set_condition(this->ike_sa, COND_NAT_FAKE,
													a.flag);
						break;
				}
				break;
			case MOBIKE_ACTION_CLEAR_PEER_ADDRESSES:
				this->ike_sa->clear_peer_addresses(this->ike_sa);
				break;
			case MOBIKE_ACTION_ADD_PEER_ADDRESS:
				other = mobike_rs_host_from_addr(&a.a);
				if (other)
				{
					this->ike_sa->add_peer_address(this->ike_sa, other);
				}
				break;
			case MOBIKE_ACTION_UPDATE_HOSTS:
				me = host_of(&a.a, message, &own_me);
				other = host_of(&a.b, message, &own_other);
				flags = a.value == MOBIKE_UPDATE_FORCE_CHILDREN ?
							UPDATE_HOSTS_FORCE_CHILDREN : UPDATE_HOSTS_FORCE_ALL;
				if (this->defer_next_update)
				{
					this->defer_next_update = FALSE;
					update_hosts_deferring(this, me, other, flags);
				}
				else
				{
					this->ike_sa->update_hosts(this->ike_sa, me, other, flags);
				}
				DESTROY_IF(own_me);
				DESTROY_IF(own_other);
				break;
			case MOBIKE_ACTION_QUEUE_RETURN_ROUTABILITY_CHECK:
				/* any MOBIKE request of ours carries the check */
				mobike_rs_shim_queue_mobike(this->ike_sa, this->api, FALSE, FALSE);
				break;
			case MOBIKE_ACTION_QUEUE_MOBIKE_AFTER:
				mobike_rs_shim_queue_mobike_after(this->ike_sa, a.value);
				break;
			case MOBIKE_ACTION_DEFER_CHILD_REKEYS:
				this->defer_next_update = TRUE;
				this->defer_ms = a.value;
				break;
			case MOBIKE_ACTION_SEND:
				me = mobike_rs_host_from_addr(&a.a);
				other = mobike_rs_host_from_addr(&a.b);
				if (packet && me && other)
				{
					copy = packet->clone(packet);
					copy->set_source(copy, me);
					copy->set_destination(copy, other);
					charon->sender->send(charon->sender, copy);
				}
				else
				{
					DESTROY_IF(me);
					DESTROY_IF(other);
				}
				break;
			case MOBIKE_ACTION_LOG:
				mobike_rs_shim_log(a.value, (const char*)a.data, a.len);
				break;
		}
	}
}

/**
 * Log a failed core call; a panic disables this task's MOBIKE work.
 */
static bool core_ok(private_mobike_rs_task_t *this, mobike_result result,
					const char *what)
{
	if (result == MOBIKE_OK)
	{
		return TRUE;
	}
	DBG1(DBG_IKE, "mobike-rs: Rust core failed in %s: %s; this MOBIKE task "
		 "is abandoned", what, this->api->result_text(result));
	if (result == MOBIKE_PANIC || result == MOBIKE_POISONED)
	{
		if (!this->failed)
		{
			DBG1(DBG_IKE, "mobike-rs: new MOBIKE tasks use the built-in "
				 "implementation until charon restarts");
		}
		this->failed = TRUE;
	}
	return FALSE;
}

/**
 * Translate the core's status into charon's.
 */
static status_t to_status(mobike_status status)
{
	switch (status)
	{
		case MOBIKE_STATUS_NEED_MORE:
			return NEED_MORE;
		case MOBIKE_STATUS_FAILED:
			return FAILED;
		case MOBIKE_STATUS_SUCCESS:
		default:
			return SUCCESS;
	}
}

/**
 * After build or process: apply the core's actions and answer charon. A
 * failed core call finishes the task without a MOBIKE change, so the
 * IKE_SA stays as it is.
 */
static status_t finish_step(private_mobike_rs_task_t *this, message_t *message,
							mobike_result result, mobike_status status,
							const char *what)
{
	if (!core_ok(this, result, what))
	{
		status = MOBIKE_STATUS_SUCCESS;
	}
	apply_actions(this, message, NULL);
	sync_mirror(this);
	return to_status(status);
}

METHOD(task_t, build, status_t,
	private_mobike_rs_task_t *this, message_t *message)
{
	mobike_rs_view_storage_t s;
	mobike_message m;
	mobike_status status = MOBIKE_STATUS_SUCCESS;
	mobike_result result;

	if (this->failed)
	{
		return SUCCESS;
	}
	fill_message(this->ike_sa, message, &m, FALSE, NULL);
	/* the basic facts when the core asks: an answer is built without */
	memset(&s.view, 0, sizeof(s.view));
	result = run_step(this, &s, STEP_BUILD, &m, message, &status, NULL);
	if (this->initiator)
	{
		this->mid = m.message_id;
		this->has_mid = TRUE;
	}
	return finish_step(this, message, result, status, "build");
}

METHOD(task_t, process, status_t,
	private_mobike_rs_task_t *this, message_t *message)
{
	mobike_rs_view_storage_t s;
	mobike_message m;
	mobike_notify notifies[INLINE_NOTIFIES];
	mobike_status status = MOBIKE_STATUS_SUCCESS;
	mobike_result result;

	if (this->failed)
	{
		return SUCCESS;
	}
	fill_message(this->ike_sa, message, &m, TRUE, notifies);
	fill_view(this, &s, STEP_PROCESS);
	if (m.exchange == MOBIKE_EXCHANGE_INFORMATIONAL)
	{
		add_facts(this, &s, STEP_PROCESS, MOBIKE_GATHER_FOR_INFORMATIONAL, &m,
				  message);
	}
	result = run_step(this, &s, STEP_PROCESS, &m, message, &status, NULL);
	free_message(&m, notifies);
	return finish_step(this, message, result, status, "process");
}

METHOD(ike_mobike_t, transmit, bool,
	private_mobike_rs_task_t *this, packet_t *packet)
{
	mobike_rs_view_storage_t s;
	mobike_result result;
	bool found = FALSE;
	host_t *me, *other;
	packet_t *copy;

	if (!this->failed)
	{
		fill_view(this, &s, STEP_TRANSMIT);
		result = run_step(this, &s, STEP_TRANSMIT, NULL, NULL, NULL, &found);
		if (core_ok(this, result, "transmit"))
		{
			apply_actions(this, NULL, packet);
			sync_mirror(this);
			return found;
		}
	}
	/* without the core, send where the IKE_SA is, as without MOBIKE */
	me = this->ike_sa->get_my_host(this->ike_sa);
	other = this->ike_sa->get_other_host(this->ike_sa);
	copy = packet->clone(packet);
	copy->set_source(copy, me->clone(me));
	copy->set_destination(copy, other->clone(other));
	charon->sender->send(charon->sender, copy);
	return TRUE;
}

METHOD(ike_mobike_t, addresses, void,
	private_mobike_rs_task_t *this)
{
	core_ok(this, this->api->task_addresses(this->core), "addresses");
	sync_mirror(this);
}

METHOD(ike_mobike_t, roam, void,
	private_mobike_rs_task_t *this, bool address)
{
	core_ok(this, this->api->task_roam(this->core, address), "roam");
	sync_mirror(this);
}

METHOD(ike_mobike_t, dpd, void,
	private_mobike_rs_task_t *this)
{
	core_ok(this, this->api->task_dpd(this->core,
				this->ike_sa->has_condition(this->ike_sa, COND_NAT_HERE)), "dpd");
	sync_mirror(this);
}

METHOD(ike_mobike_t, is_probing, bool,
	private_mobike_rs_task_t *this)
{
	return !this->failed && this->api->task_is_probing(this->core);
}

METHOD(ike_mobike_t, enable_probing, void,
	private_mobike_rs_task_t *this)
{
	core_ok(this, this->api->task_enable_probing(this->core), "enable_probing");
	sync_mirror(this);
}

METHOD(task_t, get_type, task_type_t,
	private_mobike_rs_task_t *this)
{
	return TASK_IKE_MOBIKE;
}

METHOD(task_t, migrate, void,
	private_mobike_rs_task_t *this, ike_sa_t *ike_sa)
{
	this->ike_sa = ike_sa;
	core_ok(this, this->api->task_migrate(this->core), "migrate");
	sync_mirror(this);
}

METHOD(task_t, destroy, void,
	private_mobike_rs_task_t *this)
{
	deferred_job_t *job;

	if (this->deferred)
	{	/* the exchange is over (or the IKE_SA is going): the peer's
		 * rekeyings get their head start */
		DBG2(DBG_IKE, "mobike-rs: rekeying %d CHILD_SA(s) in %u ms unless the "
			 "peer rekeys them first", array_count(this->deferred),
			 this->defer_ms);
		INIT(job,
			.unique_id = this->deferred_sa,
			.rekeys = this->deferred,
		);
		lib->scheduler->schedule_job_ms(lib->scheduler, (job_t*)
			callback_job_create((callback_job_cb_t)rekey_deferred, job,
								(callback_job_cleanup_t)deferred_job_destroy,
								NULL), this->defer_ms);
	}
	this->api->task_free(this->core);
	free(this);
}

/*
 * Described in header
 */
bool mobike_rs_shim_kick(ike_sa_t *ike_sa, bool dry_run)
{
	enumerator_t *enumerator;
	task_t *task;
	private_mobike_rs_task_t *ours = NULL;

	enumerator = ike_sa->create_task_enumerator(ike_sa, TASK_QUEUE_ACTIVE);
	while (enumerator->enumerate(enumerator, &task))
	{
		/* only a task of ours knows the message ID it sent */
		if (task->get_type(task) == TASK_IKE_MOBIKE &&
			task->destroy == (void*)_destroy)
		{
			ours = (private_mobike_rs_task_t*)task;
			break;
		}
	}
	enumerator->destroy(enumerator);
	if (!ours || !ours->initiator || !ours->has_mid || ours->failed)
	{
		return FALSE;
	}
	if (!dry_run)
	{
		_enable_probing(ours);
		lib->processor->queue_job(lib->processor, (job_t*)
			retransmit_job_create(ours->mid, ike_sa->get_id(ike_sa)));
	}
	return TRUE;
}

/*
 * Described in header
 */
ike_mobike_t *mobike_rs_shim_builtin_create(ike_sa_t *ike_sa, bool initiator)
{
	static ike_mobike_t *(*builtin)(ike_sa_t*, bool) = NULL;

	if (!builtin)
	{
		builtin = dlsym(RTLD_NEXT, "ike_mobike_create");
	}
	return builtin(ike_sa, initiator);
}

/*
 * Described in header
 */
ike_mobike_t *mobike_rs_shim_ike_mobike_create(ike_sa_t *ike_sa, bool initiator,
											   const mobike_api *api)
{
	private_mobike_rs_task_t *this;
	mobike_task *core;

	if (!mobike_rs_shim_use_rust(api))
	{
		return mobike_rs_shim_builtin_create(ike_sa, initiator);
	}
	core = api->task_new(initiator);
	if (!core)
	{
		DBG1(DBG_IKE, "mobike-rs: Rust core could not create a task, using "
			 "the built-in MOBIKE");
		return mobike_rs_shim_builtin_create(ike_sa, initiator);
	}
	INIT(this,
		.public = {
			.task = {
				.build = _build,
				.process = _process,
				.get_type = _get_type,
				.migrate = _migrate,
				.destroy = _destroy,
			},
			.addresses = _addresses,
			.roam = _roam,
			.dpd = _dpd,
			.transmit = _transmit,
			.is_probing = _is_probing,
			.enable_probing = _enable_probing,
		},
		.ike_sa = ike_sa,
		.initiator = initiator,
		.core = core,
		.api = api,
	);
	DBG2(DBG_IKE, "mobike-rs: Rust core runs the MOBIKE task (%s)",
		 initiator ? "initiator" : "responder");
	return &this->public;
}
