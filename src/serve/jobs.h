/*
 * jobs.h — the table behind the async jobs API: ids for tasks, kept until a
 * time-to-live after they end, then forgotten (404).
 *
 * The table owns one reference to each task it holds. Ids are unguessable
 * ("j-" and 16 hex digits) because results are served without
 * authentication, like /outputs.
 */
#ifndef PX_SERVE_JOBS_H
#define PX_SERVE_JOBS_H

#include "serve/task.h"

#include <stdint.h>

#define PX_JOB_ID_MAX 24

typedef struct px_jobs px_jobs;
typedef struct px_jobs_entry px_jobs_entry;

/* A table keeping ended jobs ttl_ms and at most max_jobs jobs at once.
 * Never NULL (aborts on OOM). */
px_jobs *px_jobs_create(int64_t ttl_ms, int max_jobs);

/* Drops every job (their tasks should have ended: drain the tasks first). */
void px_jobs_destroy(px_jobs *j);

/* Reserves an entry and writes its id into id[PX_JOB_ID_MAX]. NULL when
 * max_jobs jobs are still kept (after expiring old ones). */
px_jobs_entry *px_jobs_reserve(px_jobs *j, char *id);

/* The task's done callback for entries (pass the entry as done_arg): stamps
 * the end time from which the TTL runs. */
void px_jobs_on_done(px_task *t, void *entry);

/* Gives the entry its task (the table takes over the caller's reference). */
void px_jobs_attach(px_jobs *j, px_jobs_entry *e, px_task *t);

/* Releases a reserved entry whose task could not be started. */
void px_jobs_abandon(px_jobs *j, px_jobs_entry *e);

/* The task of a job id with a new reference (caller unrefs), or NULL if the
 * id is unknown or expired. */
px_task *px_jobs_get(px_jobs *j, const char *id);

/* Jobs currently kept. */
int px_jobs_count(px_jobs *j);

#endif
