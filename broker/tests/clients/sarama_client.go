// sarama (Shopify's Go client, Debian's golang-github-shopify-sarama-dev)
// against annals-broker.
//
//	sarama_client HOST:PORT TOPIC PARTITIONS N KEYS
//	sarama_client HOST:PORT TOPIC read
//
// A ClusterAdmin creates TOPIC with PARTITIONS partitions (CreateTopics v2);
// a SyncProducer (Kafka 2.1.0 protocol: Produce v3 with v2 record batches,
// acks=all, the hash partitioner) sends N records over KEYS keys, each with
// headers, in groups of 100 so that batches hold several records; then a
// Consumer reads every partition from OffsetOldest (ListOffsets v1, Fetch v4)
// until it has each acknowledged offset or 60 s pass. With "read" it only
// consumes: every partition of TOPIC, from OffsetOldest up to the high
// watermark it had at the start (fuzz/capture_frames.py uses this to record
// sarama's consumer on records another client wrote).
//
// Prints one JSON object a line, "acked" for each acknowledgement and
// "read" for each record consumed:
//
//	{"event":"acked","partition":2,"offset":17,"key":"key-3","value":"...","headers":[["seq","41"],...]}
//
// A header value sent as nil prints as null. Exits non-zero, with sarama's
// error on stderr, when the broker refuses anything.
//
// Build without the network, against Debian's packaged sources:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o sarama_client sarama_client.go
package main

import (
	"encoding/json"
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/Shopify/sarama"
)

type row struct {
	Event     string      `json:"event"`
	Partition int32       `json:"partition"`
	Offset    int64       `json:"offset"`
	Key       string      `json:"key"`
	Value     string      `json:"value"`
	Headers   [][]*string `json:"headers"`
}

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "sarama_client: %s: %v\n", what, err)
	os.Exit(1)
}

func number(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		fail("argument "+s, err)
	}
	return n
}

func text(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

func headers(hs []sarama.RecordHeader) [][]*string {
	out := make([][]*string, 0, len(hs))
	for _, h := range hs {
		out = append(out, []*string{text(h.Key), text(h.Value)})
	}
	return out
}

func emit(out *json.Encoder, r row) {
	if err := out.Encode(r); err != nil {
		fail("stdout", err)
	}
}

func main() {
	if len(os.Args) == 4 && os.Args[3] == "read" {
		read(os.Args[1], os.Args[2])
		return
	}
	if len(os.Args) != 6 {
		fmt.Fprintln(os.Stderr, "usage: sarama_client HOST:PORT TOPIC PARTITIONS N KEYS | sarama_client HOST:PORT TOPIC read")
		os.Exit(2)
	}
	brokers, topic := []string{os.Args[1]}, os.Args[2]
	partitions, n, keys := number(os.Args[3]), number(os.Args[4]), number(os.Args[5])
	config := newConfig()

	admin, err := sarama.NewClusterAdmin(brokers, config)
	if err != nil {
		fail("NewClusterAdmin", err)
	}
	detail := &sarama.TopicDetail{NumPartitions: int32(partitions), ReplicationFactor: 1}
	if err := admin.CreateTopic(topic, detail, false); err != nil {
		fail("CreateTopic", err)
	}
	if err := admin.Close(); err != nil {
		fail("ClusterAdmin.Close", err)
	}

	out := json.NewEncoder(os.Stdout)
	producer, err := sarama.NewSyncProducer(brokers, config)
	if err != nil {
		fail("NewSyncProducer", err)
	}
	last := make(map[int32]int64) // the highest acknowledged offset of each partition
	const group = 100
	for first := 0; first < n; first += group {
		var msgs []*sarama.ProducerMessage
		for i := first; i < n && i < first+group; i++ {
			value := fmt.Sprintf("value %d: %s", i, strings.Repeat("s", i%40))
			msgs = append(msgs, &sarama.ProducerMessage{
				Topic: topic,
				Key:   sarama.StringEncoder(fmt.Sprintf("key-%d", i%keys)),
				Value: sarama.StringEncoder(value),
				Headers: []sarama.RecordHeader{
					{Key: []byte("seq"), Value: []byte(strconv.Itoa(i))},
					{Key: []byte("client"), Value: []byte("sarama")},
					{Key: []byte("empty"), Value: []byte{}},
					{Key: []byte("null"), Value: nil},
				},
			})
		}
		if err := producer.SendMessages(msgs); err != nil {
			if errs, ok := err.(sarama.ProducerErrors); ok && len(errs) > 0 {
				fail(fmt.Sprintf("SendMessages (%d of %d failed, first on partition %d)",
					len(errs), len(msgs), errs[0].Msg.Partition), errs[0].Err)
			}
			fail("SendMessages", err)
		}
		for _, m := range msgs {
			key, _ := m.Key.Encode()
			value, _ := m.Value.Encode()
			emit(out, row{"acked", m.Partition, m.Offset, string(key), string(value), headers(m.Headers)})
			if o, seen := last[m.Partition]; !seen || m.Offset > o {
				last[m.Partition] = m.Offset
			}
		}
	}
	if err := producer.Close(); err != nil {
		fail("SyncProducer.Close", err)
	}

	consumer, err := sarama.NewConsumer(brokers, config)
	if err != nil {
		fail("NewConsumer", err)
	}
	consume(consumer, topic, last, out)
}

func newConfig() *sarama.Config {
	// sarama's own log on stderr: the test shows it when this program fails.
	sarama.Logger = log.New(os.Stderr, "[sarama] ", log.Lmicroseconds)
	config := sarama.NewConfig()
	config.ClientID = "annals-sarama-test"
	config.Version = sarama.V2_1_0_0
	config.Producer.Return.Successes = true
	config.Producer.RequiredAcks = sarama.WaitForAll
	config.Producer.Partitioner = sarama.NewHashPartitioner
	config.Producer.Retry.Max = 0 // a refusal is reported, not retried away
	config.Consumer.Return.Errors = true
	return config
}

// read consumes every partition of topic up to the high watermark it has now.
func read(broker, topic string) {
	client, err := sarama.NewClient([]string{broker}, newConfig())
	if err != nil {
		fail("NewClient", err)
	}
	partitions, err := client.Partitions(topic)
	if err != nil {
		fail("Partitions", err)
	}
	last := make(map[int32]int64)
	for _, p := range partitions {
		newest, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			fail(fmt.Sprintf("GetOffset %d", p), err)
		}
		if newest > 0 {
			last[p] = newest - 1
		}
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		fail("NewConsumerFromClient", err)
	}
	consume(consumer, topic, last, json.NewEncoder(os.Stdout))
	if err := client.Close(); err != nil {
		fail("Client.Close", err)
	}
}

// consume reads each partition in last from OffsetOldest through its
// offset there, printing every record, then closes consumer.
func consume(consumer sarama.Consumer, topic string, last map[int32]int64, out *json.Encoder) {
	deadline := time.After(60 * time.Second)
	for p, end := range last {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			fail(fmt.Sprintf("ConsumePartition %d", p), err)
		}
	reading:
		for {
			select {
			case m := <-pc.Messages():
				hs := make([]sarama.RecordHeader, 0, len(m.Headers))
				for _, h := range m.Headers {
					hs = append(hs, *h)
				}
				emit(out, row{"read", m.Partition, m.Offset, string(m.Key), string(m.Value), headers(hs)})
				if m.Offset >= end {
					break reading
				}
			case e := <-pc.Errors():
				fail(fmt.Sprintf("consuming partition %d", p), e.Err)
			case <-deadline:
				fail(fmt.Sprintf("consuming partition %d", p), fmt.Errorf("60 s passed before offset %d", end))
			}
		}
		if err := pc.Close(); err != nil {
			fail(fmt.Sprintf("PartitionConsumer.Close %d", p), err)
		}
	}
	if err := consumer.Close(); err != nil {
		fail("Consumer.Close", err)
	}
}
