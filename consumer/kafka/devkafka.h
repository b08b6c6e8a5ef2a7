/*
 * devkafka: the `sbomd dev-kafka` subcommand, a local Kafka-protocol
 * broker on librdkafka's mock cluster, for tries and tests (see
 * devkafka.c).
 */
#ifndef SBOMD_KAFKA_DEVKAFKA_H
#define SBOMD_KAFKA_DEVKAFKA_H

/*
 * Runs the mock cluster until SIGTERM or SIGINT. argv[0] is the
 * subcommand's name. Returns the process exit status: 0 after a clean
 * shutdown, 1 when the cluster or the control FIFO cannot be set up,
 * 2 on a usage error.
 */
int devkafka_main(int argc, char **argv);

#endif
