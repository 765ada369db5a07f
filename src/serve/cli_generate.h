/*
 * cli_generate.h — `pixserve generate`: one Z-Image text-to-image run from
 * the command line (model directory or component files in, an image file
 * out), printing the seed used and the per-stage timings.
 */
#ifndef PX_SERVE_CLI_GENERATE_H
#define PX_SERVE_CLI_GENERATE_H

/* argv holds the arguments after "generate". Returns the exit status: 0, 1
 * when the model or the generation failed, 2 for a usage error. */
int px_cli_generate(int argc, char **argv);

#endif
