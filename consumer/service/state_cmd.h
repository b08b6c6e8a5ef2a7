/*
 * state_cmd: the `sbomd state` subcommand (list, show, stats of the
 * durable state, read-only).
 */
#ifndef SBOMD_SERVICE_STATE_CMD_H
#define SBOMD_SERVICE_STATE_CMD_H

int state_main(int argc, char **argv);

#endif
