package integration

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var adminRE = regexp.MustCompile(`msg="admin listener started" addr=(\S+)`)

// adminAddr waits for the daemon to log its admin listener's address.
func (d *daemon) adminAddr() string {
	d.t.Helper()
	var addr string
	require.Eventually(d.t, func() bool {
		b, _ := os.ReadFile(d.log)
		if m := adminRE.FindSubmatch(b); m != nil {
			addr = string(m[1])
			return true
		}
		return false
	}, 30*time.Second, 20*time.Millisecond, "liberator never logged its admin address:\n%s", d.logTail())
	return addr
}

func get(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestIntegrationAdminEndpointsAnswer scrapes /healthz, /readyz, /metrics,
// /status and the status page of a streaming daemon.
func TestIntegrationAdminEndpointsAnswer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := newPGEnv(t, ctx, "")
	w := newWorkload(4)
	w.run(t, ctx, e.conn, 50)
	d := startDaemon(t, "run", e.cfgPath)
	base := "http://" + d.adminAddr()
	w.run(t, ctx, e.conn, 50)
	e.requireConverges(t, ctx)

	require.Eventually(t, func() bool {
		code, _, err := get(base + "/readyz")
		return err == nil && code == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "/readyz never answered 200")
	code, body, err := get(base + "/healthz")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, body)

	code, body, err = get(base + "/metrics")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	for _, want := range []string{
		`liberator_events_total{op="r",table="public.items"}`,
		`liberator_events_total{op="c",table="public.items"}`,
		`liberator_events_total{op="d",table="public.items"}`,
		`liberator_event_bytes_total{table="public.accounts"}`,
		`liberator_commit_to_ack_seconds_bucket`,
		`liberator_source_lag_bytes`,
		`liberator_source_lag_seconds`,
		`liberator_schema_id{subject="shop.public.items-value"}`,
		`liberator_ready 1`,
		`liberator_retries_total 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
	code, body, err = get(base + "/status")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"state":"running"`)
	code, body, err = get(base + "/")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "public.items")
	require.Equal(t, 0, d.stop(30*time.Second))
}

// TestIntegrationSIGTERMMidStreamLosesNothing stops liberator with SIGTERM
// while a workload runs, expects exit code 0 within the drain bound, and
// finds nothing lost after a restart.
func TestIntegrationSIGTERMMidStreamLosesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := newPGEnv(t, ctx, "")
	w := newWorkload(5)
	w.run(t, ctx, e.conn, 50)

	d := startDaemon(t, "run", e.cfgPath)
	var wg sync.WaitGroup
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 400 {
			if werr = w.step(ctx, e.conn); werr != nil {
				return
			}
		}
	}()
	base := "http://" + d.adminAddr()
	require.Eventually(t, func() bool {
		_, body, err := get(base + "/metrics")
		return err == nil && strings.Contains(body, `liberator_events_total{op="u",table="public.items"}`)
	}, 30*time.Second, 10*time.Millisecond, "no update streamed")
	if code := d.stop(30 * time.Second); code != 0 {
		t.Fatalf("liberator exited %d after SIGTERM, want 0", code)
	}
	wg.Wait()
	require.NoError(t, werr)
	d = startDaemon(t, "run", e.cfgPath)
	e.requireConverges(t, ctx)
	require.Equal(t, 0, d.stop(30*time.Second))
}

// TestIntegrationKafkaOutageLosesNothing closes every connection to Kafka
// for a while in the middle of a workload; liberator keeps retrying, and once
// Kafka answers again the topics converge to the tables.
func TestIntegrationKafkaOutageLosesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := newPGEnv(t, ctx, "")
	w := newWorkload(6)
	w.run(t, ctx, e.conn, 50)
	d := startDaemon(t, "run", e.cfgPath)
	e.requireConverges(t, ctx)

	var down atomic.Bool
	var refused atomic.Int64
	e.kafka.Cluster.Control(func(kmsg.Request) (kmsg.Response, error, bool) {
		e.kafka.Cluster.KeepControl()
		if down.Load() {
			refused.Add(1)
			return nil, errors.New("outage"), true
		}
		return nil, nil, false
	})
	down.Store(true)
	w.run(t, ctx, e.conn, 200)
	require.Eventually(t, func() bool { return refused.Load() >= 3 }, 30*time.Second, 20*time.Millisecond, "liberator did not try Kafka during the outage")
	require.False(t, d.exited(), "liberator exited during a Kafka outage:\n%s", d.logTail())
	down.Store(false)
	w.run(t, ctx, e.conn, 100)
	e.requireConverges(t, ctx)
	require.Equal(t, 0, d.stop(30*time.Second))
}

// TestIntegrationHeartbeatsAdvanceAnIdleSlot writes only to another
// database of the cluster; heartbeats keep the slot's confirmed LSN moving
// past that WAL, so the slot does not retain it.
func TestIntegrationHeartbeatsAdvanceAnIdleSlot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := newPGEnv(t, ctx, "", "    heartbeat_interval: 200ms")
	d := startDaemon(t, "run", e.cfgPath)
	d.adminAddr()
	otherDSN, err := e.pg.CreateDatabase("other")
	require.NoError(t, err)
	other, err := pgx.Connect(ctx, otherDSN)
	require.NoError(t, err)
	defer other.Close(ctx)
	_, err = other.Exec(ctx, "CREATE TABLE noise (id int, pad text); INSERT INTO noise SELECT g, repeat('x', 500) FROM generate_series(1, 20000) g")
	require.NoError(t, err)
	var end string
	require.NoError(t, other.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&end))
	target, err := pglogrepl.ParseLSN(end)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var confirmed string
		if err := e.conn.QueryRow(ctx, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 'liberator'").Scan(&confirmed); err != nil {
			return false
		}
		lsn, err := pglogrepl.ParseLSN(confirmed)
		return err == nil && lsn >= target
	}, 60*time.Second, 100*time.Millisecond, "the slot's confirmed LSN never passed %s", target)
	require.Equal(t, 0, d.stop(30*time.Second))
}
