# scripts/kafka.sh with a real Apache Kafka broker: start, topics, a group's
# lag, compaction, kill -9 and restart on the same data and port, stop.
add_test(NAME kafka_sh COMMAND bash ${CMAKE_SOURCE_DIR}/tests/kafka_sh_test.sh)
set_tests_properties(kafka_sh PROPERTIES TIMEOUT 300 COST 50 LABELS "kafka;once")
