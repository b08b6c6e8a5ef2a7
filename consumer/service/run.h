/*
 * run: the `sbomd run` subcommand (the service).
 */
#ifndef SBOMD_SERVICE_RUN_H
#define SBOMD_SERVICE_RUN_H

int run_main(int argc, char **argv);

#endif
