/*
 * events.h — GET /api/v1/jobs/{id}/events: a job's progress as
 * server-sent events (text/event-stream), fed by the task's change
 * notices (px_task_watch):
 *
 *   event: status    data {"status", "position"}   on every change of either
 *   event: progress  data {"step", "steps"}        after each engine step
 *   event: done | failed | cancelled               data = the job's status object
 *
 * then the stream ends. Between changes the connection is suspended (no
 * thread and no polling); the hang-up watcher resumes it when the client
 * goes away, which ends the stream.
 */
#ifndef PX_SERVE_EVENTS_H
#define PX_SERVE_EVENTS_H

#include "serve/task.h"
#include "serve/watch.h"

#include <microhttpd.h>

/*
 * A response streaming the events of task t (job id) on connection c; the
 * stream takes over the caller's reference to t. Returns NULL (the
 * reference is released) when the task has too many followers already or
 * out of memory; *busy says which (1: too many).
 */
struct MHD_Response *px_events_response(struct MHD_Connection *c, px_task *t, const char *id,
                                        px_watch *watch, int *busy);

#endif
