/*
 * Kernel monitor of the mobike-rs plugin: immediate roam triggers.
 *
 * Only translates and applies: datagrams go to the Rust core as bytes, the
 * core's decisions come back as "check charon's address cache", "roam now"
 * or nothing, plus the next deadline.
 */

#include "mobike_rs_kernel.h"
#include "mobike_rs_shim.h"
#include "mobike_rs_liveness.h"

#include <errno.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <daemon.h>
#include <threading/mutex.h>
#include <processing/jobs/callback_job.h>

/** Receive buffer for one datagram */
#define RECV_BUF 65536

/** Most datagrams read per watcher callback (the watcher calls again) */
#define MAX_READS 256

/** Most decisions served in a row without new input */
#define MAX_PUMP 8

/** Socket receive buffer asked for, so bursts are not lost (ENOBUFS) */
#define SOCKET_RCVBUF (1024 * 1024)

typedef struct private_mobike_rs_kernel_t private_mobike_rs_kernel_t;

/**
 * Private data of the kernel monitor.
 */
struct private_mobike_rs_kernel_t {

	/**
	 * Public interface.
	 */
	mobike_rs_kernel_t public;

	/**
	 * The Rust core's function table.
	 */
	const mobike_api *api;

	/**
	 * The core's monitor, used under mutex only.
	 */
	mobike_kernel_monitor *monitor;

	/**
	 * NETLINK_ROUTE socket.
	 */
	int fd;

	/**
	 * Serializes the monitor and the fields below.
	 */
	mutex_t *mutex;

	/**
	 * Set by destroy: scheduled jobs that fire later do nothing.
	 */
	bool stopped;

	/**
	 * Time (µs, monotonic) of the earliest job scheduled, 0 if none.
	 */
	uint64_t scheduled_us;

	/**
	 * The core refused further work (panic), logged once.
	 */
	bool failed;

	/**
	 * References: the plugin's and one per scheduled job.
	 */
	refcount_t ref;

	/**
	 * Receive buffer.
	 */
	u_char *buf;
};


/**
 * Log a refused call once; the monitor stops deciding, charon's own roam
 * events remain.
 */
static void failed(private_mobike_rs_kernel_t *this, mobike_result result)
{
	if (!this->failed)
	{
		this->failed = TRUE;
		mobike_rs_route_cache_changed(FALSE);
		DBG1(DBG_IKE, "mobike-rs: kernel monitor stopped (%s), roam events "
			 "come from charon's kernel interface only",
			 this->api->result_text(result));
	}
}

/**
 * What charon's address cache shows for an address.
 */
static uint32_t cache_view(host_t *host)
{
	enumerator_t *enumerator;
	host_t *vip;
	uint32_t found = MOBIKE_CACHE_NOT_USABLE;

	enumerator = charon->kernel->create_address_enumerator(charon->kernel,
														ADDR_TYPE_VIRTUAL);
	while (enumerator->enumerate(enumerator, &vip))
	{
		if (vip->ip_equals(vip, host))
		{
			found = MOBIKE_CACHE_VIRTUAL;
			break;
		}
	}
	enumerator->destroy(enumerator);
	if (found == MOBIKE_CACHE_NOT_USABLE &&
		charon->kernel->get_interface(charon->kernel, host, NULL))
	{
		found = MOBIKE_CACHE_USABLE;
	}
	return found;
}

/**
 * Apply one decision of the core: check charon's cache, or roam.
 * Called with the mutex held.
 */
static void apply(private_mobike_rs_kernel_t *this, mobike_roam_decision *d,
				  uint64_t now)
{
	uint32_t found[countof(d->checks)];
	mobike_result result;
	host_t *host;
	size_t i, n;

	if (d->kind == MOBIKE_ROAM_CHECK)
	{
		n = min(d->checks_len, countof(d->checks));
		for (i = 0; i < n; i++)
		{
			host = mobike_rs_host_from_addr(&d->checks[i].addr);
			found[i] = host ? cache_view(host) : MOBIKE_CACHE_NOT_USABLE;
			DESTROY_IF(host);
		}
		result = this->api->kernel_monitor_settle(this->monitor, found, n,
												  now, d);
		if (result != MOBIKE_OK)
		{
			failed(this, result);
			return;
		}
		if (d->kind == MOBIKE_ROAM_NONE)
		{
			DBG2(DBG_IKE, "mobike-rs: charon's address cache does not show "
				 "the kernel event yet, checking again");
		}
	}
	if (d->kind == MOBIKE_ROAM_NOW)
	{
		d->ifname[sizeof(d->ifname) - 1] = '\0';
		DBG1(DBG_IKE, "mobike-rs: kernel event on %s, roaming now%s "
			 "(waited %u.%01u ms for charon's address cache)",
			 d->ifname[0] ? d->ifname : "(unknown interface)",
			 d->forced ? ", charon's address cache did not follow in time" : "",
			 d->waited_us / 1000, d->waited_us % 1000 / 100);
		/* queues charon's roam job; never blocks */
		charon->kernel->roam(charon->kernel, d->address);
	}
}

static job_requeue_t on_deadline(private_mobike_rs_kernel_t *this);

/**
 * Drop a reference, destroying on the last one.
 */
static void release(private_mobike_rs_kernel_t *this)
{
	if (ref_put(&this->ref))
	{
		this->api->kernel_monitor_free(this->monitor);
		this->mutex->destroy(this->mutex);
		free(this->buf);
		free(this);
	}
}

/**
 * Serve due deadlines and schedule a job for the next one.
 * Called with the mutex held.
 */
static void pump(private_mobike_rs_kernel_t *this)
{
	mobike_roam_decision d;
	mobike_result result;
	uint64_t now, next = 0;
	callback_job_t *job;
	timeval_t at;
	int i;

	for (i = 0; i < MAX_PUMP && !this->failed; i++)
	{
		now = mobike_rs_shim_now_us();
		result = this->api->kernel_monitor_deadline(this->monitor, now, &d,
													&next);
		if (result != MOBIKE_OK)
		{
			failed(this, result);
			return;
		}
		if (d.kind == MOBIKE_ROAM_NONE)
		{
			break;
		}
		apply(this, &d, now);
	}
	if (!next || this->failed || this->stopped ||
		(this->scheduled_us && this->scheduled_us <= next))
	{
		return;
	}
	ref_get(&this->ref);
	job = callback_job_create_with_prio((callback_job_cb_t)on_deadline, this,
								(callback_job_cleanup_t)release, NULL,
								JOB_PRIO_CRITICAL);
	this->scheduled_us = next;
	/* the same monotonic clock, to the microsecond: a recheck of charon's
	 * cache is due well within a millisecond */
	at.tv_sec = next / 1000000;
	at.tv_usec = next % 1000000;
	lib->scheduler->schedule_job_tv(lib->scheduler, (job_t*)job, at);
}

/**
 * A scheduled deadline: the end of a coalescing window or a recheck of
 * charon's address cache.
 */
static job_requeue_t on_deadline(private_mobike_rs_kernel_t *this)
{
	this->mutex->lock(this->mutex);
	this->scheduled_us = 0;
	if (!this->stopped)
	{
		pump(this);
	}
	this->mutex->unlock(this->mutex);
	return JOB_REQUEUE_NONE;
}

/**
 * Send the requests the core asks for (its initial link and address dumps).
 * Called with the mutex held.
 */
static void send_requests(private_mobike_rs_kernel_t *this)
{
	struct sockaddr_nl kernel = {
		.nl_family = AF_NETLINK,
	};
	u_char req[256];
	size_t len;

	while (this->api->kernel_monitor_request(this->monitor, req, sizeof(req),
											 &len))
	{
		if (sendto(this->fd, req, len, 0, (struct sockaddr*)&kernel,
				   sizeof(kernel)) != (ssize_t)len)
		{
			DBG1(DBG_IKE, "mobike-rs: kernel monitor: sending a dump request "
				 "failed: %s", strerror(errno));
		}
	}
}

/**
 * Read every pending datagram; never blocks (MSG_DONTWAIT).
 */
static bool on_read(private_mobike_rs_kernel_t *this, int fd,
					watcher_event_t event)
{
	mobike_roam_decision d;
	mobike_result result;
	ssize_t len;
	uint64_t now;
	bool keep;
	int i;

	this->mutex->lock(this->mutex);
	for (i = 0; i < MAX_READS && !this->stopped && !this->failed; i++)
	{
		len = recv(fd, this->buf, RECV_BUF, MSG_DONTWAIT);
		now = mobike_rs_shim_now_us();
		if (len < 0)
		{
			if (errno == EINTR)
			{
				continue;
			}
			if (errno != ENOBUFS)
			{
				break;	/* EAGAIN: all read */
			}
			/* lost datagrams may have told a change too */
			mobike_rs_route_cache_changed(TRUE);
			result = this->api->kernel_monitor_lost(this->monitor, now, &d);
		}
		else
		{
			/* any change of links, addresses, routes or rules may change
			 * a route; the decisions below see fresh answers */
			mobike_rs_route_cache_changed(TRUE);
			result = this->api->kernel_monitor_read(this->monitor, this->buf,
													len, now, &d);
		}
		if (result != MOBIKE_OK)
		{
			failed(this, result);
			break;
		}
		apply(this, &d, now);
	}
	if (!this->stopped && !this->failed)
	{
		send_requests(this);
		pump(this);
	}
	keep = !this->failed;
	this->mutex->unlock(this->mutex);
	/* a monitor that stopped reading leaves the watcher, or the pending
	 * datagrams would wake it forever */
	return keep;
}

METHOD(mobike_rs_kernel_t, destroy, void,
	private_mobike_rs_kernel_t *this)
{
	this->mutex->lock(this->mutex);
	this->stopped = TRUE;
	mobike_rs_route_cache_changed(FALSE);
	this->mutex->unlock(this->mutex);
	/* waits until a running callback returned */
	lib->watcher->remove(lib->watcher, this->fd);
	close(this->fd);
	release(this);
}

/*
 * Described in header
 */
mobike_rs_kernel_t *mobike_rs_kernel_create(const mobike_api *api)
{
	private_mobike_rs_kernel_t *this;
	struct sockaddr_nl addr = {
		.nl_family = AF_NETLINK,
		/* rules only for the route cache (policy routing changes routes) */
		.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR |
					 RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE |
					 (1 << (RTNLGRP_IPV4_RULE - 1)) |
					 (1 << (RTNLGRP_IPV6_RULE - 1)),
	};
	char *mode, *ignored, ignore[512];
	int fd, rcvbuf = SOCKET_RCVBUF, table;
	mobike_kernel_monitor *monitor;

	if (!lib->settings->get_bool(lib->settings,
						"%s.plugins.mobike-rs.fast_roam", TRUE, lib->ns))
	{
		DBG1(DBG_CFG, "mobike-rs: fast_roam disabled, roam events come from "
			 "charon's kernel interface only");
		return NULL;
	}
	mode = lib->settings->get_str(lib->settings,
								  "%s.plugins.mobike-rs.mode", "rust", lib->ns);
	if (!streq(mode, "rust"))
	{	/* builtin is the rollback: charon's behaviour, unchanged */
		return NULL;
	}
	/* charon's tunnel devices (kernel-libipsec's TUN) and the interfaces it
	 * ignores never trigger */
	ignored = lib->settings->get_str(lib->settings, "%s.interfaces_ignore",
									 "", lib->ns);
	snprintf(ignore, sizeof(ignore), "ipsec*%s%s", *ignored ? "," : "",
			 ignored);
	table = lib->settings->get_int(lib->settings, "%s.routing_table", 220,
								   lib->ns);
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK,
				NETLINK_ROUTE);
	if (fd < 0)
	{
		DBG1(DBG_CFG, "mobike-rs: kernel monitor: socket: %s, fast_roam "
			 "disabled", strerror(errno));
		return NULL;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(fd, (struct sockaddr*)&addr, sizeof(addr)) != 0)
	{
		DBG1(DBG_CFG, "mobike-rs: kernel monitor: bind: %s, fast_roam "
			 "disabled", strerror(errno));
		close(fd);
		return NULL;
	}
	monitor = api->kernel_monitor_new(ignore, table < 0 ? 0 : table);
	if (!monitor)
	{
		close(fd);
		return NULL;
	}
	INIT(this,
		.public = {
			.destroy = _destroy,
		},
		.api = api,
		.monitor = monitor,
		.fd = fd,
		.mutex = mutex_create(MUTEX_TYPE_DEFAULT),
		.ref = 1,
		.buf = malloc(RECV_BUF),
	);
	this->mutex->lock(this->mutex);
	mobike_rs_route_cache_changed(TRUE);
	send_requests(this);
	this->mutex->unlock(this->mutex);
	lib->watcher->add(lib->watcher, fd, WATCHER_READ, (watcher_cb_t)on_read,
					  this);
	DBG1(DBG_CFG, "mobike-rs: fast_roam: roaming on the first kernel event "
		 "(links, addresses, routes), ignoring %s", ignore);
	return &this->public;
}
