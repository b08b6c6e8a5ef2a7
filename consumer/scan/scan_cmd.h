/*
 * scan_cmd: the `sbomd scan` subcommand (see scan_cmd.c).
 */
#ifndef SBOMD_SCAN_SCAN_CMD_H
#define SBOMD_SCAN_SCAN_CMD_H

int scan_main(int argc, char **argv);

#endif
