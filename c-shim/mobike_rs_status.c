/*
 * The status socket of the mobike-rs plugin.
 */

#include "mobike_rs_status.h"
#include "mobike_rs_shim.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <daemon.h>
#include <threading/thread.h>

/** Default socket, also the default of the mobike-rs command */
#define STATUS_SOCKET_DEFAULT "unix:///var/run/charon-mobike-rs.sock"

/** Longest request line read */
#define MAX_REQUEST 256

/** A client gets this long (10 ms steps) to send its request line */
#define REQUEST_WAIT_STEPS 200

typedef struct private_mobike_rs_status_t private_mobike_rs_status_t;

/**
 * Private data of the status service.
 */
struct private_mobike_rs_status_t {

	/**
	 * Public interface.
	 */
	mobike_rs_status_t public;

	/**
	 * The Rust core's function table.
	 */
	const mobike_api *api;

	/**
	 * Stream service on the socket.
	 */
	stream_service_t *service;

	/**
	 * Filesystem path of the socket, removed on destroy.
	 */
	char *path;
};

/**
 * Read the request line without letting a silent client hold a thread.
 */
static size_t read_request(stream_t *stream, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;
	int i;

	for (i = 0; i < REQUEST_WAIT_STEPS && got < len; i++)
	{
		n = stream->read(stream, buf + got, len - got, FALSE);
		if (n > 0)
		{
			got += n;
			if (memchr(buf, '\n', got))
			{
				break;
			}
			continue;
		}
		if (n == 0 || (errno != EWOULDBLOCK && errno != EAGAIN))
		{
			break;
		}
		usleep(10000);
	}
	return got;
}

/**
 * Answer one client.
 */
static bool on_accept(private_mobike_rs_status_t *this, stream_t *stream)
{
	mobike_rs_view_storage_t *s;
	mobike_status_doc *doc;
	enumerator_t *enumerator;
	ike_sa_t *ike_sa;
	char request[MAX_REQUEST];
	const uint8_t *answer;
	size_t len, answer_len;
	bool old;

	len = read_request(stream, request, sizeof(request));
	doc = this->api->status_new((uint8_t*)request, len,
								mobike_rs_shim_now_ms());
	if (!doc)
	{
		return FALSE;
	}
	s = malloc_thing(mobike_rs_view_storage_t);
	old = thread_cancelability(FALSE);
	enumerator = charon->controller->create_ike_sa_enumerator(
													charon->controller, TRUE);
	while (enumerator->enumerate(enumerator, &ike_sa))
	{
		mobike_rs_shim_fill_view(ike_sa, s, MOBIKE_NEED_PEERS |
								 MOBIKE_NEED_LOCALS | MOBIKE_NEED_FILTER);
		this->api->status_add(doc, &s->view, ike_sa->get_name(ike_sa));
	}
	enumerator->destroy(enumerator);
	thread_cancelability(old);
	free(s);
	if (this->api->status_finish(doc, &answer, &answer_len) == MOBIKE_OK &&
		!stream->write_all(stream, (void*)answer, answer_len))
	{
		DBG2(DBG_CFG, "mobike-rs: status client went away: %s",
			 strerror(errno));
	}
	this->api->status_free(doc);
	return FALSE;
}

METHOD(mobike_rs_status_t, destroy, void,
	private_mobike_rs_status_t *this)
{
	this->service->destroy(this->service);
	unlink(this->path);
	free(this->path);
	free(this);
}

/*
 * Described in header
 */
mobike_rs_status_t *mobike_rs_status_create(const mobike_api *api)
{
	private_mobike_rs_status_t *this;
	stream_service_t *service;
	char *uri;

	uri = lib->settings->get_str(lib->settings,
						"%s.plugins.mobike-rs.status_socket",
						STATUS_SOCKET_DEFAULT, lib->ns);
	if (!uri || !*uri)
	{
		DBG1(DBG_CFG, "mobike-rs: status socket disabled (status_socket is "
			 "empty)");
		return NULL;
	}
	if (!strpfx(uri, "unix://") || !uri[strlen("unix://")])
	{
		DBG1(DBG_CFG, "mobike-rs: status_socket '%s' is not a unix:// URI, "
			 "status disabled", uri);
		return NULL;
	}
	service = lib->streams->create_service(lib->streams, uri, 3);
	if (!service)
	{
		DBG1(DBG_CFG, "mobike-rs: creating status socket '%s' failed, status "
			 "disabled", uri);
		return NULL;
	}
	INIT(this,
		.public = {
			.destroy = _destroy,
		},
		.api = api,
		.service = service,
		.path = strdup(uri + strlen("unix://")),
	);
	/* the status shows addresses of every peer: root only */
	if (chmod(this->path, S_IRUSR | S_IWUSR) != 0)
	{
		DBG1(DBG_CFG, "mobike-rs: chmod 0600 of '%s' failed: %s, status "
			 "disabled", this->path, strerror(errno));
		destroy(this);
		return NULL;
	}
	service->on_accept(service, (stream_service_cb_t)on_accept, this,
					   JOB_PRIO_CRITICAL, 1);
	DBG1(DBG_CFG, "mobike-rs: serving status on %s", uri);
	return &this->public;
}
