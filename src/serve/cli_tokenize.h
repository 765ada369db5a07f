/*
 * cli_tokenize.h — `pixserve tokenize`: prints the Z-Image text encoder's
 * token ids for a prompt as JSON (for checking the tokenizer by hand and
 * from scripts).
 */
#ifndef PX_SERVE_CLI_TOKENIZE_H
#define PX_SERVE_CLI_TOKENIZE_H

/* argv holds the arguments after "tokenize". Returns the exit status: 0, 1
 * when the tokenizer or the text failed, 2 for a usage error. */
int px_cli_tokenize(int argc, char **argv);

#endif
