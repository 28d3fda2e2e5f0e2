package integration

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// topicRecords reads every record of topic, uncompacted, in offset order
// per partition.
func topicRecords(t *testing.T, ctx context.Context, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	require.NoError(t, err)
	require.NoError(t, ends.Error())
	remaining := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
		}
	})
	var out []*kgo.Record
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err())
		require.NoError(t, fs.Err0())
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			out = append(out, r)
			if end, ok := remaining[r.Partition]; ok && r.Offset+1 >= end {
				delete(remaining, r.Partition)
			}
		}
	}
	return out
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// TestIntegrationReconcileOnRequestTombstonesRowsGoneFromTheTable puts
// ghosts in a topic, rows that the table no longer has and whose
// tombstones the topic lacks, as a gap in the log leaves them; then asks
// the running daemon for a snapshot with reconcile, and checks that the
// ghosts get tombstones while the rows written meanwhile stay.
func TestIntegrationReconcileOnRequestTombstonesRowsGoneFromTheTable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e := newPGEnv(t, ctx, "")
	_, err := e.conn.Exec(ctx, `INSERT INTO items (id, account, name) SELECT g, g, 'row ' || g FROM generate_series(1, 2000) g;
		INSERT INTO accounts (region, num, label) VALUES ('eu', 1, 'one')`)
	require.NoError(t, err)
	d := startDaemon(t, "run", e.cfgPath)
	e.requireConverges(t, ctx)

	// Make ghosts: the live records of ids 10..19 are written again after
	// their rows' deletes reached the topic.
	live := map[string]*kgo.Record{}
	for _, r := range topicRecords(t, ctx, e.kafka.Brokers, "shop.public.items") {
		live[string(r.Key)] = r
		if header(r, "op") == "r" {
			// The LSN the snapshot is consistent with; its progress is
			// for the logs, not for every record.
			require.Regexp(t, `^[0-9A-F]+/[0-9A-F]+$`, header(r, "pos"), "a snapshot read's pos header")
		}
	}
	var ghostKeys []string
	for k, r := range live {
		if r.Value != nil && len(ghostKeys) < 10 {
			ghostKeys = append(ghostKeys, k)
		}
	}
	require.Len(t, ghostKeys, 10)
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kafka.Brokers...))
	require.NoError(t, err)
	defer cl.Close()
	// Delete those rows, wait for their tombstones, then bring the rows
	// back into the topic behind liberator's back.
	var ids []int64
	for _, k := range ghostKeys {
		v, err := e.client.Decode(ctx, []byte(k))
		require.NoError(t, err)
		ids = append(ids, v.(map[string]any)["id"].(int64))
	}
	_, err = e.conn.Exec(ctx, `DELETE FROM items WHERE id = ANY($1)`, ids)
	require.NoError(t, err)
	e.requireConverges(t, ctx)
	for _, k := range ghostKeys {
		r := live[k]
		require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: r.Headers}).FirstErr())
	}

	// Rows written while the reconcile runs must stay.
	_, err = e.conn.Exec(ctx, `INSERT INTO items (id, account, name) SELECT g, g, 'new ' || g FROM generate_series(5001, 5100) g`)
	require.NoError(t, err)
	out, err := exec.CommandContext(ctx, binary, "snapshot", "--config", e.cfgPath, "--admin", d.adminAddr(),
		"--table", "public.items", "--reconcile").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "with reconcile")
	_, err = e.conn.Exec(ctx, `UPDATE items SET name = 'after' WHERE id BETWEEN 100 AND 200`)
	require.NoError(t, err)

	require.Eventually(t, func() bool { return d.logContains("re-snapshot with reconcile done") }, 2*time.Minute, 50*time.Millisecond)
	e.requireConverges(t, ctx)
	var tombstones int
	for _, r := range topicRecords(t, ctx, e.kafka.Brokers, "shop.public.items") {
		if header(r, "reconcile") == "true" {
			require.Nil(t, r.Value, "a reconcile record is a tombstone")
			require.Contains(t, ghostKeys, string(r.Key), "only ghosts are tombstoned")
			tombstones++
		}
	}
	require.Equal(t, len(ghostKeys), tombstones, "each ghost gets one tombstone")
	require.True(t, strings.Contains(d.logTail(), `tombstones=10`), "the log counts the tombstones")
}

// TestIntegrationPositionFoundInAnOffsetsTopicOfThreePartitions pre-creates
// the offsets topic with three partitions: a restart must find the stored
// position and resume, not start over. The pipeline's name, p1, hashes to
// partition 2.
func TestIntegrationPositionFoundInAnOffsetsTopicOfThreePartitions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e := newPGEnv(t, ctx, "name: p1")
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kafka.Brokers...))
	require.NoError(t, err)
	defer cl.Close()
	_, err = kadm.NewClient(cl).CreateTopic(ctx, 3, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, "_liberator_offsets")
	require.NoError(t, err)
	_, err = e.conn.Exec(ctx, `INSERT INTO items (id, account) SELECT g, g FROM generate_series(1, 500) g;
		INSERT INTO accounts (region, num) VALUES ('eu', 1)`)
	require.NoError(t, err)
	d := startDaemon(t, "run", e.cfgPath)
	e.requireConverges(t, ctx)
	require.Equal(t, 0, d.stop(time.Minute))

	// Deleted while liberator is stopped: a restart that does not find its
	// position would snapshot again and never tombstone these.
	_, err = e.conn.Exec(ctx, `DELETE FROM items WHERE id <= 100`)
	require.NoError(t, err)
	d = startDaemon(t, "run", e.cfgPath)
	e.requireConverges(t, ctx)
	require.True(t, d.logContains("resuming stream"), "the restart resumes from the stored position")
}
