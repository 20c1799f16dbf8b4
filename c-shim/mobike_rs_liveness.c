/*
 * Polling of CHILD_SA packet counters for the Rust core's detection of
 * silent path failures and changed NAT mappings, and the kernel route
 * lookup per (local, peer) pair. Only translation and I/O here: the core
 * decides.
 */

#include "mobike_rs_liveness.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <linux/netlink.h>

#include <processing/jobs/callback_job.h>
#include <threading/mutex.h>

/** The running poller: the library is preloaded and never unloaded, so
 * this outlives the plugin object; a generation number retires old jobs. */
static struct {
	const mobike_api *api;
	u_int generation;
	bool running;
} poller;

static mutex_t *poller_lock = NULL;

/**
 * Whether any task is active on the IKE_SA (its exchange decides then).
 */
static bool busy(ike_sa_t *ike_sa)
{
	enumerator_t *enumerator;
	task_t *task;
	bool found;

	enumerator = ike_sa->create_task_enumerator(ike_sa, TASK_QUEUE_ACTIVE);
	found = enumerator->enumerate(enumerator, &task);
	enumerator->destroy(enumerator);
	return found;
}

/**
 * One look at an IKE_SA's counters.
 */
static void check_ike_sa(const mobike_api *api, ike_sa_t *ike_sa,
						 uint64_t now_ms)
{
	enumerator_t *enumerator;
	child_sa_t *child_sa;
	uint64_t in = 0, out = 0, bytes, packets, since_ms = 0;
	mobike_liveness_verdict verdict = MOBIKE_LIVENESS_FINE;
	time_t used;
	bool kickable;

	if (ike_sa->get_state(ike_sa) != IKE_ESTABLISHED ||
		!ike_sa->has_condition(ike_sa, COND_ORIGINAL_INITIATOR) ||
		!ike_sa->supports_extension(ike_sa, EXT_MOBIKE))
	{
		return;
	}
	enumerator = ike_sa->create_child_sa_enumerator(ike_sa);
	while (enumerator->enumerate(enumerator, &child_sa))
	{
		if (child_sa->get_state(child_sa) != CHILD_INSTALLED)
		{
			continue;
		}
		packets = 0;
		child_sa->get_usestats(child_sa, TRUE, &used, &bytes, &packets);
		in += packets;
		packets = 0;
		child_sa->get_usestats(child_sa, FALSE, &used, &bytes, &packets);
		out += packets;
	}
	enumerator->destroy(enumerator);
	/* a MOBIKE request of ours can be sent to all paths at once */
	kickable = mobike_rs_shim_kick(ike_sa, TRUE);
	if (api->sa_liveness(ike_sa->get_unique_id(ike_sa), in, out, now_ms,
						 busy(ike_sa), kickable,
						 ike_sa->has_condition(ike_sa, COND_NAT_HERE),
						 &verdict, &since_ms) != MOBIKE_OK)
	{
		return;
	}
	switch (verdict)
	{
		case MOBIKE_LIVENESS_PROBE:
			DBG1(DBG_IKE, "mobike-rs: packets leave but none arrived on %H - %H "
				 "for %llu ms, checking all paths", ike_sa->get_my_host(ike_sa),
				 ike_sa->get_other_host(ike_sa), (unsigned long long)since_ms);
			if (!kickable || !mobike_rs_shim_kick(ike_sa, FALSE))
			{
				mobike_rs_shim_queue_mobike(ike_sa, api, TRUE, TRUE);
			}
			break;
		case MOBIKE_LIVENESS_CHECK_NAT_MAPPING:
			DBG1(DBG_IKE, "mobike-rs: packets stopped arriving on %H - %H "
				 "%llu ms ago, checking the NAT mapping",
				 ike_sa->get_my_host(ike_sa), ike_sa->get_other_host(ike_sa),
				 (unsigned long long)since_ms);
			mobike_rs_shim_queue_mobike(ike_sa, api, FALSE, TRUE);
			break;
		case MOBIKE_LIVENESS_FINE:
			break;
	}
}

static job_requeue_t poll_counters(void *data);

/**
 * Schedule the next poll of this generation.
 */
static void schedule(u_int generation, uint64_t interval_ms)
{
	lib->scheduler->schedule_job_ms(lib->scheduler, (job_t*)
		callback_job_create(poll_counters, (void*)(uintptr_t)generation, NULL, NULL),
		interval_ms ?: 1000);
}

static job_requeue_t poll_counters(void *data)
{
	u_int generation = (uintptr_t)data;
	const mobike_api *api;
	ike_sa_t *ike_sa;
	uint64_t now;
	uint64_t interval;
	uint32_t ids[256];
	size_t count, i;

	poller_lock->lock(poller_lock);
	if (!poller.running || poller.generation != generation)
	{
		poller_lock->unlock(poller_lock);
		return JOB_REQUEUE_NONE;
	}
	api = poller.api;
	poller_lock->unlock(poller_lock);

	interval = api->liveness_interval_ms();
	if (interval)
	{
		/* only the IKE_SAs the core watches (this host initiated them):
		 * checking out every IKE_SA of a gateway would hold up its
		 * exchanges */
		count = api->liveness_watched(ids, countof(ids));
		now = mobike_rs_shim_now_ms();
		for (i = 0; i < count; i++)
		{
			ike_sa = charon->ike_sa_manager->checkout_by_id(
											charon->ike_sa_manager, ids[i]);
			if (ike_sa)
			{
				check_ike_sa(api, ike_sa, now);
				charon->ike_sa_manager->checkin(charon->ike_sa_manager, ike_sa);
			}
		}
	}
	schedule(generation, interval);
	return JOB_REQUEUE_NONE;
}

/*
 * Described in header
 */
void mobike_rs_liveness_start(const mobike_api *api)
{
	if (!poller_lock)
	{
		poller_lock = mutex_create(MUTEX_TYPE_DEFAULT);
	}
	poller_lock->lock(poller_lock);
	if (!poller.running)
	{
		poller.running = TRUE;
		poller.api = api;
		poller.generation++;
		schedule(poller.generation, api->liveness_interval_ms());
	}
	poller_lock->unlock(poller_lock);
}

/*
 * Described in header
 */
void mobike_rs_liveness_stop(void)
{
	if (poller_lock)
	{
		poller_lock->lock(poller_lock);
		poller.running = FALSE;
		poller_lock->unlock(poller_lock);
	}
}

/*
 * Described in header
 */
/**
 * Each thread keeps one netlink socket for its route lookups (closed when
 * the thread ends): a gateway asks once per roaming IKE_SA, and a socket
 * per lookup cost more than the lookup (allocation, RCU release).
 */
static pthread_key_t route_fd_key;
static pthread_once_t route_fd_once = PTHREAD_ONCE_INIT;

static void route_fd_close(void *value)
{
	close((int)(intptr_t)value - 1);
}

static void route_fd_init(void)
{
	pthread_key_create(&route_fd_key, route_fd_close);
}

/**
 * This thread's netlink socket for route lookups, -1 if none can be had.
 */
static int route_fd(void)
{
	struct timeval timeout = { .tv_usec = 200000 };
	intptr_t value;
	int fd;

	pthread_once(&route_fd_once, route_fd_init);
	value = (intptr_t)pthread_getspecific(route_fd_key);
	if (value)
	{
		return (int)value - 1;
	}
	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
	{
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
	if (pthread_setspecific(route_fd_key, (void*)(intptr_t)(fd + 1)) != 0)
	{
		close(fd);
		return -1;
	}
	return fd;
}

/**
 * Drop this thread's socket after an error (a new one is made next time).
 */
static void route_fd_reset(int fd)
{
	pthread_setspecific(route_fd_key, NULL);
	close(fd);
}

/**
 * Route facts are reused while the kernel monitor has read nothing since
 * and for at most ROUTE_CACHE_TTL_MS: a gateway asks the same question for
 * every IKE_SA that roams from one host at once. Without a running monitor
 * nothing is cached, as nothing would tell a change.
 */
#define ROUTE_CACHE_SIZE 64
#define ROUTE_CACHE_TTL_MS 1000

typedef struct {
	mobike_addr dst, src;
	uint32_t oif;
	uint64_t generation;
	uint64_t at_ms;
	bool valid;
} route_entry_t;

static struct {
	route_entry_t entries[ROUTE_CACHE_SIZE];
	unsigned int next;
	/* bumped for every datagram the monitor reads; 0: no monitor */
	uint64_t generation;
	pthread_mutex_t lock;
} route_cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

/*
 * Described in header
 */
void mobike_rs_route_cache_changed(bool monitored)
{
	pthread_mutex_lock(&route_cache.lock);
	route_cache.generation = monitored ? route_cache.generation + 1 : 0;
	if (!monitored)
	{
		memset(route_cache.entries, 0, sizeof(route_cache.entries));
	}
	pthread_mutex_unlock(&route_cache.lock);
}

static bool same_ip(const mobike_addr *a, const mobike_addr *b)
{
	return a->family == b->family && memeq(a->ip, b->ip, sizeof(a->ip));
}

/**
 * A cached answer for dst from src; *generation gets the generation a new
 * answer is stored under (0: do not store).
 */
static bool route_cache_get(const mobike_addr *dst, const mobike_addr *src,
							uint64_t now, uint32_t *oif, uint64_t *generation)
{
	route_entry_t *e;
	bool found = FALSE;
	int i;

	pthread_mutex_lock(&route_cache.lock);
	*generation = route_cache.generation;
	for (i = 0; *generation && i < ROUTE_CACHE_SIZE && !found; i++)
	{
		e = &route_cache.entries[i];
		if (e->valid && e->generation == *generation &&
			now - e->at_ms < ROUTE_CACHE_TTL_MS &&
			same_ip(&e->dst, dst) && same_ip(&e->src, src))
		{
			*oif = e->oif;
			found = TRUE;
		}
	}
	pthread_mutex_unlock(&route_cache.lock);
	return found;
}

static void route_cache_put(const mobike_addr *dst, const mobike_addr *src,
							uint64_t now, uint32_t oif, uint64_t generation)
{
	route_entry_t *e;

	pthread_mutex_lock(&route_cache.lock);
	/* an answer from before a change the monitor read since is stale */
	if (generation && generation == route_cache.generation)
	{
		e = &route_cache.entries[route_cache.next++ % ROUTE_CACHE_SIZE];
		*e = (route_entry_t){
			.dst = *dst,
			.src = *src,
			.oif = oif,
			.generation = generation,
			.at_ms = now,
			.valid = TRUE,
		};
	}
	pthread_mutex_unlock(&route_cache.lock);
}

/**
 * One RTM_GETROUTE for dst from src; FALSE if no answer came.
 */
static bool route_query(const mobike_api *api, const mobike_addr *d,
						const mobike_addr *s, uint32_t *oif)
{
	static uint32_t seq = 0;
	struct sockaddr_nl addr = { .nl_family = AF_NETLINK };
	uint8_t request[128], answer[4096];
	size_t len = 0;
	ssize_t got;
	uint32_t my_seq;
	bool done = FALSE;
	int fd, i;

	*oif = 0;
	my_seq = __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);
	if (api->route_query_build(d, s, my_seq, request, sizeof(request),
							   &len) != MOBIKE_OK)
	{
		return FALSE;
	}
	fd = route_fd();
	if (fd < 0)
	{
		return FALSE;
	}
	if (sendto(fd, request, len, 0, (struct sockaddr*)&addr,
			   sizeof(addr)) == (ssize_t)len)
	{
		/* bounded: a few datagrams, each wait bounded by the timeout */
		for (i = 0; i < 8 && !done; i++)
		{
			got = recv(fd, answer, sizeof(answer), 0);
			if (got <= 0)
			{
				break;
			}
			if (api->route_query_parse(answer, got, my_seq, &done,
									   oif) != MOBIKE_OK)
			{
				break;
			}
		}
	}
	if (!done)
	{	/* an answer may still come: a fresh socket never reads it */
		route_fd_reset(fd);
		*oif = 0;
	}
	return done;
}

uint32_t mobike_rs_route_oif(const mobike_api *api, const mobike_addr *dst,
							 const mobike_addr *src)
{
	uint64_t now = mobike_rs_shim_now_ms(), generation;
	uint32_t oif = 0;

	if (route_cache_get(dst, src, now, &oif, &generation))
	{
		return oif;
	}
	if (route_query(api, dst, src, &oif))
	{	/* "not routed" is an answer too */
		route_cache_put(dst, src, now, oif, generation);
	}
	return oif;
}
