package kafka

import "github.com/twmb/franz-go/pkg/kgo"

// keyPartitioner places records as franz-go's StickyKeyPartitioner with
// its default hasher does, which is where Kafka's Java client puts them:
// a keyed record in murmur2(key) mod the partition count, so that every
// change of a row lands in one partition, in order; a record without a key
// where the sticky partitioner puts it. It only skips the hash in a topic
// of one partition, where every record lands in partition 0 anyway: the
// hash of every key is a cost of each record of the default
// kafka.partitions: 1.
type keyPartitioner struct{ sticky kgo.Partitioner }

func newKeyPartitioner() kgo.Partitioner {
	return keyPartitioner{sticky: kgo.StickyKeyPartitioner(nil)}
}

func (p keyPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	tp := p.sticky.ForTopic(topic)
	// franz-go's sticky partitioner moves records without a key to
	// another partition on a new batch; so does this one.
	nb, _ := tp.(kgo.TopicPartitionerOnNewBatch)
	return &topicKeyPartitioner{TopicPartitioner: tp, onNewBatch: nb}
}

type topicKeyPartitioner struct {
	kgo.TopicPartitioner
	onNewBatch kgo.TopicPartitionerOnNewBatch
}

func (p *topicKeyPartitioner) Partition(r *kgo.Record, n int) int {
	if n == 1 {
		return 0
	}
	return p.TopicPartitioner.Partition(r, n)
}

func (p *topicKeyPartitioner) OnNewBatch() {
	if p.onNewBatch != nil {
		p.onNewBatch.OnNewBatch()
	}
}
