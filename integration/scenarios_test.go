package integration

import (
	"context"
	"testing"
	"time"
)

// scenario is what the scenarios that every source shares need of one
// source: its servers and config, a random workload over its tables, and a
// comparison of its topics with its tables.
type scenario interface {
	// config is the path of the source's config file.
	config() string
	// work makes n random changes.
	work(t *testing.T, n int)
	// requireConverges waits until every topic equals its table.
	requireConverges(t *testing.T)
}

// eachSource runs test once per source, as a subtest named after it, with
// a fresh environment whose workload is seeded with seed.
func eachSource(t *testing.T, timeout time.Duration, seed uint64, test func(t *testing.T, s scenario)) {
	sources := []struct {
		name string
		open func(t *testing.T, ctx context.Context) scenario
	}{
		{"postgres", func(t *testing.T, ctx context.Context) scenario {
			return &pgScenario{ctx: ctx, e: newPGEnv(t, ctx, ""), w: newWorkload(seed)}
		}},
		{"mariadb", func(t *testing.T, ctx context.Context) scenario {
			return &mdbScenario{ctx: ctx, e: newMariaDBEnv(t, ctx), w: newMariaDBWorkload(seed)}
		}},
	}
	for _, src := range sources {
		t.Run(src.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			test(t, src.open(t, ctx))
		})
	}
}

type pgScenario struct {
	ctx context.Context
	e   *pgEnv
	w   *workload
}

func (s *pgScenario) config() string                { return s.e.cfgPath }
func (s *pgScenario) work(t *testing.T, n int)      { s.w.run(t, s.ctx, s.e.conn, n) }
func (s *pgScenario) requireConverges(t *testing.T) { s.e.requireConverges(t, s.ctx) }

type mdbScenario struct {
	ctx context.Context
	e   *mdbEnv
	w   *mdbWorkload
}

func (s *mdbScenario) config() string                { return s.e.cfgPath }
func (s *mdbScenario) work(t *testing.T, n int)      { s.w.run(t, s.e.conn, n) }
func (s *mdbScenario) requireConverges(t *testing.T) { s.e.requireConverges(t, s.ctx) }

// TestIntegrationSnapshotAndStream takes a snapshot of existing rows,
// streams later changes, and stops cleanly on SIGTERM.
func TestIntegrationSnapshotAndStream(t *testing.T) {
	eachSource(t, 3*time.Minute, 1, func(t *testing.T, s scenario) {
		s.work(t, 100)
		d := startDaemon(t, "run", s.config())
		s.requireConverges(t)
		s.work(t, 200)
		s.requireConverges(t)
		if code := d.stop(30 * time.Second); code != 0 {
			t.Fatalf("liberator exited %d after SIGTERM, want 0", code)
		}
	})
}

// TestIntegrationKillAndCompare runs a random workload while liberator is
// killed with SIGKILL part way through and restarted; in the end every
// compacted topic equals its table, row by row and value by value.
func TestIntegrationKillAndCompare(t *testing.T) {
	eachSource(t, 5*time.Minute, 2, func(t *testing.T, s scenario) {
		s.work(t, 200)
		d := startDaemon(t, "run", s.config())
		s.work(t, 300)
		d.kill()
		s.work(t, 200)
		d = startDaemon(t, "run", s.config())
		s.work(t, 300)
		s.requireConverges(t)
		if code := d.stop(30 * time.Second); code != 0 {
			t.Fatalf("liberator exited %d after SIGTERM, want 0", code)
		}
	})
}

// TestIntegrationSnapshotJobThenRun runs `liberator snapshot` (the
// Kubernetes Job) while the tables are being written, a second one that has
// nothing left to do, then `liberator run` with the same config: streaming
// begins where the snapshot ended, so the topics end equal to the tables.
func TestIntegrationSnapshotJobThenRun(t *testing.T) {
	eachSource(t, 3*time.Minute, 3, func(t *testing.T, s scenario) {
		s.work(t, 200)
		job := startDaemon(t, "snapshot", s.config())
		s.work(t, 100) // while the Job runs
		if code := job.wait(60 * time.Second); code != 0 {
			t.Fatalf("liberator snapshot exited %d, want 0", code)
		}
		s.work(t, 100) // between the Job and the daemon

		again := startDaemon(t, "snapshot", s.config())
		if code := again.wait(60 * time.Second); code != 0 {
			t.Fatalf("a second liberator snapshot exited %d, want 0", code)
		}
		if !again.logContains("snapshot already taken") {
			t.Errorf("a second snapshot did not say it had nothing to do:\n%s", again.logTail())
		}

		d := startDaemon(t, "run", s.config())
		s.work(t, 100)
		s.requireConverges(t)
		if code := d.stop(30 * time.Second); code != 0 {
			t.Fatalf("liberator exited %d after SIGTERM, want 0", code)
		}
	})
}
