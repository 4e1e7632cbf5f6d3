"""kafka-python's admin client against annals-broker: CreateTopics with
Kafka's configs, DescribeConfigs, a group's commits listed and deleted
(OffsetFetch, OffsetDelete, DeleteGroups), DescribeCluster and
DescribeLogDirs. Prints one JSON object of what each call answered;
broker/tests/clients.rs checks it. argv[1]: the broker's host:port."""
import json
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

bootstrap = sys.argv[1]
admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
out = {}

configs = {"min.insync.replicas": "1", "max.message.bytes": "1048588", "flush.messages": "1",
           "unclean.leader.election.enable": "false"}
admin.create_topics([NewTopic("adm", 2, 1, topic_configs=configs)])
try:
    admin.create_topics([NewTopic("adm-refused", 1, 1, topic_configs={"min.insync.replicas": "2"})])
    out["refused"] = None
except Exception as e:  # kafka-python raises the topic's error
    out["refused"] = type(e).__name__

described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "adm")], config_filter="all")
entries = {name: c.get("value") for name, c in described["topic"]["adm"].items()}
out["configs"] = {k: entries.get(k) for k in list(configs) + ["retention.ms"]}

producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
for i in range(10):
    producer.send("adm", key=b"k%d" % i, value=b"value %d" % i, partition=i % 2)
producer.flush()
producer.close()

consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id="adm-group", enable_auto_commit=False,
                         auto_offset_reset="earliest")
consumer.assign([TopicPartition("adm", 0), TopicPartition("adm", 1)])
seen, deadline = 0, time.monotonic() + 30
while seen < 10:
    if time.monotonic() > deadline:
        sys.exit("consumed %d of 10 records in 30 s" % seen)
    for records in consumer.poll(timeout_ms=1000).values():
        seen += len(records)
consumer.commit()
consumer.close()

def committed():
    offsets = admin.list_group_offsets({"adm-group": None})
    offsets = offsets.get("adm-group", offsets)
    return sorted([tp.topic, tp.partition, meta.offset] for tp, meta in offsets.items())

out["committed"] = committed()
admin.delete_group_offsets("adm-group", [TopicPartition("adm", 0)])
out["after_offset_delete"] = committed()
out["groups_before"] = sorted(g["group_id"] for g in admin.list_groups())
admin.delete_groups(["adm-group"])
out["groups_after"] = sorted(g["group_id"] for g in admin.list_groups())

cluster = admin.describe_cluster()
out["cluster"] = {"cluster_id": cluster["cluster_id"], "controller_id": cluster["controller_id"],
                  "brokers": [b["broker_id"] for b in cluster["brokers"]]}
sizes = {}
for broker in admin.describe_log_dirs():
    for log_dir in broker["log_dirs"]:
        for topic in log_dir["topics"]:
            for p in topic["partitions"]:
                sizes["%s-%d" % (topic["name"], p["partition_index"])] = p["partition_size"]
out["log_dir_sizes"] = sizes
admin.close()
print(json.dumps(out))
