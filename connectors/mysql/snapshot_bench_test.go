package mysql

import (
	"context"
	"errors"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/internal/harness"
)

// BenchmarkIntegrationSnapshotRead reads a table of the benchmark's rows
// (bench/mariadb.go) through an initial snapshot, nothing encoded or
// produced, and reports this process's CPU seconds per million rows.
func BenchmarkIntegrationSnapshotRead(b *testing.B) {
	const rows = 200_000
	m := harness.MariaDB(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	conn, err := m.Connect(ctx)
	require.NoError(b, err)
	defer conn.Close()
	for _, q := range []string{
		"CREATE DATABASE bench",
		`CREATE TABLE bench.t (id BIGINT PRIMARY KEY, account INT NOT NULL, name TEXT, amount DECIMAL(12,2), note TEXT, created TIMESTAMP(6) NULL DEFAULT NULL, flag BOOLEAN)`,
		`INSERT INTO bench.t SELECT seq, seq % 10000, CONCAT('item ', seq, ' ', LEFT(MD5(seq), 16)),
		  ((seq * 7919) % 10000000) / 100.0,
		  CONCAT(MD5(seq), MD5(seq + 1), MD5(seq + 2), LEFT(MD5(seq + 3), 24)),
		  TIMESTAMP('2024-01-01 00:00:00') + INTERVAL seq SECOND + INTERVAL (seq % 1000000) MICROSECOND,
		  seq % 2 = 0
		FROM bench.seq_1_to_200000`,
	} {
		_, err := conn.Execute(q)
		require.NoError(b, err)
	}
	var cpu time.Duration
	b.ResetTimer()
	for range b.N {
		src, err := New(Config{Flavor: FlavorMariaDB, DSN: m.DSN, Tables: []string{"bench.t"}, Snapshot: connectors.SnapshotOnly})
		require.NoError(b, err)
		require.NoError(b, src.Open(ctx, nil))
		before := processCPU()
		n := 0
		for {
			batch, err := src.Read(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(b, err)
			n += len(batch.Changes)
		}
		cpu += processCPU() - before
		require.NoError(b, src.Close(ctx))
		require.Equal(b, rows, n)
	}
	b.ReportMetric(cpu.Seconds()*1e6/float64(rows*b.N), "cpu_s/1M_rows")
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
