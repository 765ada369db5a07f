/*
 * cli_batch.h — `pixserve inpaint --image DIR --mask DIR|FILE --output DIR`:
 * a folder of images through one engine, like `iopaint run`.
 */
#ifndef PX_SERVE_CLI_BATCH_H
#define PX_SERVE_CLI_BATCH_H

/* Whether argv (the arguments after "inpaint") asks for a folder batch
 * (holds --image). */
int px_cli_batch_wanted(int argc, char **argv);

/* argv holds the arguments after "inpaint". Returns the exit status: 0 when
 * every image was inpainted, 1 when some were skipped (listed in the
 * summary) or the engine failed to open, 2 for a usage error. */
int px_cli_batch(int argc, char **argv);

#endif
