"""A group's committed offsets and a topic's watermarks, read from outside
through librdkafka (ctypes): what `kafka-consumer-groups --describe`
shows, on any broker (the mock cluster of `sbomd dev-kafka` too).
Used by tests/service_test.py and the benchmarks in bench/."""
import ctypes


class _TP(ctypes.Structure):
    _fields_ = [("topic", ctypes.c_char_p), ("partition", ctypes.c_int32),
                ("offset", ctypes.c_int64), ("metadata", ctypes.c_void_p),
                ("metadata_size", ctypes.c_size_t), ("opaque", ctypes.c_void_p),
                ("err", ctypes.c_int), ("_private", ctypes.c_void_p)]


class _TPL(ctypes.Structure):
    _fields_ = [("cnt", ctypes.c_int), ("size", ctypes.c_int),
                ("elems", ctypes.POINTER(_TP))]


class KafkaError(RuntimeError):
    pass


class Offsets:
    """Consumer handles that never subscribe: they only ask the broker for
    watermarks and for a group's committed offsets (OffsetFetch)."""

    def __init__(self, brokers, group="sbomd-offsets-observer"):
        L = self.lib = ctypes.CDLL("librdkafka.so.1")
        L.rd_kafka_conf_new.restype = ctypes.c_void_p
        L.rd_kafka_conf_set.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                        ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
        L.rd_kafka_new.restype = ctypes.c_void_p
        L.rd_kafka_new.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p,
                                   ctypes.c_size_t]
        L.rd_kafka_destroy.argtypes = [ctypes.c_void_p]
        L.rd_kafka_topic_partition_list_new.restype = ctypes.POINTER(_TPL)
        L.rd_kafka_topic_partition_list_new.argtypes = [ctypes.c_int]
        L.rd_kafka_topic_partition_list_add.restype = ctypes.POINTER(_TP)
        L.rd_kafka_topic_partition_list_add.argtypes = [ctypes.POINTER(_TPL),
                                                        ctypes.c_char_p, ctypes.c_int32]
        L.rd_kafka_topic_partition_list_destroy.argtypes = [ctypes.POINTER(_TPL)]
        L.rd_kafka_committed.argtypes = [ctypes.c_void_p, ctypes.POINTER(_TPL), ctypes.c_int]
        L.rd_kafka_query_watermark_offsets.argtypes = [
            ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32,
            ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_int64), ctypes.c_int]
        L.rd_kafka_err2str.restype = ctypes.c_char_p
        L.rd_kafka_err2str.argtypes = [ctypes.c_int]
        self.brokers = brokers
        self._groups = {}
        self.rk = self._new(group)

    def _new(self, group):
        L = self.lib
        conf = L.rd_kafka_conf_new()
        eb = ctypes.create_string_buffer(512)
        for k, v in (("bootstrap.servers", self.brokers), ("group.id", group),
                     ("enable.auto.commit", "false"), ("log_level", "3")):
            if L.rd_kafka_conf_set(conf, k.encode(), v.encode(), eb, 512) != 0:
                raise KafkaError(f"librdkafka conf {k}: {eb.value.decode()}")
        rk = L.rd_kafka_new(1, conf, eb, 512)  # RD_KAFKA_CONSUMER
        if not rk:
            raise KafkaError("rd_kafka_new: " + eb.value.decode())
        return rk

    def watermarks(self, topic, nparts):
        """[(low, high)] per partition."""
        out = []
        for p in range(nparts):
            lo, hi = ctypes.c_int64(), ctypes.c_int64()
            r = self.lib.rd_kafka_query_watermark_offsets(
                self.rk, topic.encode(), p, ctypes.byref(lo), ctypes.byref(hi), 10000)
            if r != 0:
                raise KafkaError(f"watermarks {topic}/{p}: {self.lib.rd_kafka_err2str(r).decode()}")
            out.append((lo.value, hi.value))
        return out

    def committed(self, group, topic, nparts):
        """The group's committed offsets (negative: none yet), or None."""
        L = self.lib
        if group not in self._groups:
            self._groups[group] = self._new(group)
        rk = self._groups[group]
        lst = L.rd_kafka_topic_partition_list_new(nparts)
        for p in range(nparts):
            L.rd_kafka_topic_partition_list_add(lst, topic.encode(), p)
        r = L.rd_kafka_committed(rk, lst, 5000)
        offs = None if r != 0 else [lst.contents.elems[i].offset for i in range(nparts)]
        L.rd_kafka_topic_partition_list_destroy(lst)
        return offs

    def lag(self, group, topic, nparts):
        """Per partition: high watermark - committed offset (the whole
        partition when nothing is committed), or None when unknown."""
        offs = self.committed(group, topic, nparts)
        if offs is None:
            return None
        return [hi - (c if c >= 0 else lo) for (lo, hi), c in zip(self.watermarks(topic, nparts), offs)]

    def close(self):
        for rk in self._groups.values():
            self.lib.rd_kafka_destroy(rk)
        self.lib.rd_kafka_destroy(self.rk)
