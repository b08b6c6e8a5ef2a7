/*
 * main: subcommand dispatch only.
 */
#include <stdio.h>
#include <string.h>

#include "kafka/devkafka.h"
#include "kafka/emit.h"
#include "scan/scan_cmd.h"
#include "service/run.h"
#include "service/state_cmd.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: sbomd <command> [options]\n"
	    "\n"
	    "commands:\n"
	    "  run         the service: Kafka events in, scans, outcomes out\n"
	    "  scan        write the CycloneDX SBOM of an image or directory\n"
	    "  emit        JSON lines on stdin -> Avro events on the input topic\n"
	    "  tail        outcomes from the output topic -> JSON lines\n"
	    "  state       inspect the durable state (list, show, stats)\n"
	    "  dev-kafka   a local Kafka-protocol broker for tries and tests\n"

	    "  version     print the version\n"
	    "  help        this text\n"
	    "\n"
	    "Run 'sbomd <command> --help' for a command's options.\n");
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("sbomd %s\n", SBOMD_VERSION);
		return 0;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "run") == 0)
		return run_main(argc - 1, argv + 1);
	if (strcmp(cmd, "state") == 0)
		return state_main(argc - 1, argv + 1);
	if (strcmp(cmd, "emit") == 0)
		return emit_main(argc - 1, argv + 1);
	if (strcmp(cmd, "tail") == 0)
		return tail_main(argc - 1, argv + 1);
	if (strcmp(cmd, "dev-kafka") == 0)
		return devkafka_main(argc - 1, argv + 1);
	if (strcmp(cmd, "scan") == 0)
		return scan_main(argc - 1, argv + 1);
	fprintf(stderr, "sbomd: unknown command \"%s\"\n", cmd);
	usage(stderr);
	return 2;
}
