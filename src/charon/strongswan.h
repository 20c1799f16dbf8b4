/*
 * The strongSwan headers bindgen reads (build.rs) for src/charon/sys.rs,
 * compiled with the configured tree's config.h, so that ME and every other
 * option are those of the charon the library is built for.
 */
#include <library.h>
#include <daemon.h>
#include <sa/ike_sa.h>
#include <sa/task.h>
#include <sa/ikev2/tasks/ike_mobike.h>
#include <encoding/message.h>
#include <encoding/payloads/notify_payload.h>
#include <networking/packet.h>
#include <kernel/kernel_interface.h>
#include <kernel/kernel_listener.h>
#include <plugins/plugin.h>
#include <plugins/plugin_feature.h>
#include <processing/jobs/callback_job.h>
#include <processing/jobs/initiate_tasks_job.h>
#include <processing/jobs/retransmit_job.h>
#include <networking/streams/stream_manager.h>
#include <utils/debug.h>
#include <bus/listeners/listener.h>
#include <threading/thread.h>
