/*
 * emit, tail: `sbomd emit` (JSON lines -> events on the input topic) and
 * `sbomd tail` (outcomes on the output topic -> JSON lines); see emit.c.
 */
#ifndef SBOMD_KAFKA_EMIT_H
#define SBOMD_KAFKA_EMIT_H

/* The subcommands; argv[0] is the subcommand's name. Each returns the
 * process exit status its usage text describes (0, 1, or 2 for a usage
 * error). */
int emit_main(int argc, char **argv);
int tail_main(int argc, char **argv);

#endif
