// Package ha chooses the active one of several replicas that run the same
// config (ha.mode standby), through Kafka's group membership: every
// replica joins the consumer group liberator-ha-<name> on a coordination
// topic of one partition, and the member the group coordinator gives
// partition 0 to is active. Nothing is ever written to the topic; the
// group is the lease. A member that stops heartbeating is dropped by the
// coordinator after the session timeout, and the partition goes to a
// standby.
//
// The package knows Kafka's groups and nothing of the pipeline: Run calls
// the function it is given while this replica is active, and cancels its
// context when the partition is revoked or lost.
package ha

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Config is what an election needs.
type Config struct {
	// ClientOptions connect to the brokers (TLS, SASL); see
	// kafka.Config.ClientOptions.
	ClientOptions []kgo.Opt
	// Topic is the coordination topic. It is created, with one
	// partition, if missing.
	Topic string
	// Group is the consumer group: one per pipeline name.
	Group string
	// SessionTimeout is the group session timeout; heartbeats go every
	// tenth of it.
	SessionTimeout time.Duration
	// StopTimeout bounds how long the active function may take to return
	// once its context is cancelled (the pipeline's drain). The rebalance
	// timeout is set above it, so that a standby is not given the
	// partition while the active one still drains.
	StopTimeout time.Duration
	// Log is where the election logs; nil means slog.Default().
	Log *slog.Logger
	// OnRole, if not nil, is called with true when this replica becomes
	// active and false when it becomes standby again (and once with
	// false at the start).
	OnRole func(active bool)
}

// GroupName is the consumer group of the pipeline called name.
func GroupName(name string) string { return "liberator-ha-" + name }

// Run takes part in the election until ctx ends or active returns an
// error. Each time this replica is given partition 0 of the topic it calls
// active with a context that is cancelled when the partition is revoked
// (a rebalance) or lost (the session expired: Kafka did not hear from this
// replica for the session timeout); it waits for active to return before
// it gives the partition up. An error of active ends Run with that error;
// active returning nil while it is still active (a snapshot-only run, say)
// ends Run with nil. Run leaves the group on its way out, so that a
// standby takes over at once rather than after the session timeout.
func Run(ctx context.Context, cfg Config, active func(context.Context) error) error {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.OnRole == nil {
		cfg.OnRole = func(bool) {}
	}
	if err := ensureTopic(ctx, cfg); err != nil {
		return err
	}
	e := &election{cfg: cfg, parent: ctx, active: active, ended: make(chan error, 1)}
	cfg.OnRole(false)
	opts := append([]kgo.Opt{
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.HeartbeatInterval(max(cfg.SessionTimeout/10, 100*time.Millisecond)),
		kgo.RebalanceTimeout(cfg.StopTimeout + cfg.SessionTimeout),
		// Sticky: a standby that joins does not take the partition from
		// the active replica.
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			if e.owns(m) {
				e.start()
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			if e.owns(m) {
				cfg.Log.Info("ha: the coordination partition was revoked; becoming standby")
				e.stop()
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			if e.owns(m) {
				cfg.Log.Warn("ha: the coordination partition was lost (Kafka did not hear from this replica within ha.session_timeout); stopping at once and becoming standby")
				e.stop()
			}
		}),
	}, cfg.ClientOptions...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("ha: join group %q: %w", cfg.Group, err)
	}
	cfg.Log.Info("ha: standby; waiting to be given the coordination partition", "group", cfg.Group, "topic", cfg.Topic, "session_timeout", cfg.SessionTimeout)
	// The group is managed while the client polls; the topic holds no
	// records, so a poll only waits.
	pollCtx, stopPoll := context.WithCancel(ctx)
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		var last string
		for pollCtx.Err() == nil {
			fs := cl.PollFetches(pollCtx)
			if fs.IsClientClosed() {
				return
			}
			// A group this replica cannot join (no ACL for the group or
			// the topic, say) shows here, not as a role change.
			for _, fe := range fs.Errors() {
				if pollCtx.Err() == nil && fe.Err.Error() != last {
					last = fe.Err.Error()
					cfg.Log.Warn("ha: the coordination group reports an error", "group", cfg.Group, "topic", fe.Topic, "error", fe.Err)
				}
			}
		}
	}()
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-e.ended:
	}
	stopPoll()
	<-polled
	e.stop()
	if runErr == nil {
		// A term cut short by ctx may have ended with an error of its
		// drain, which is Run's error as it is without ha.
		select {
		case runErr = <-e.ended:
		default:
		}
	}
	// Close leaves the group: the coordinator rebalances at once.
	cl.Close()
	return runErr
}

type election struct {
	cfg    Config
	parent context.Context
	active func(context.Context) error
	ended  chan error // the first error (or nil end) of active

	mu     sync.Mutex
	cancel context.CancelFunc // of the running term, nil while standby
	done   chan struct{}
}

// owns reports whether the partitions of m include partition 0 of the
// coordination topic.
func (e *election) owns(m map[string][]int32) bool {
	for _, p := range m[e.cfg.Topic] {
		if p == 0 {
			return true
		}
	}
	return false
}

// start begins a term: active runs until stop.
func (e *election) start() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cancel != nil || e.parent.Err() != nil {
		return
	}
	ctx, cancel := context.WithCancel(e.parent)
	done := make(chan struct{})
	e.cancel, e.done = cancel, done
	e.cfg.Log.Info("ha: given the coordination partition; active")
	e.cfg.OnRole(true)
	go func() {
		defer close(done)
		err := e.active(ctx)
		if ctx.Err() != nil && e.parent.Err() == nil {
			// Stopped by stop: the replica goes on as a standby.
			if err != nil {
				e.cfg.Log.Warn("ha: the active run ended with an error as it stopped", "error", err)
			}
			return
		}
		select {
		case e.ended <- err:
		default:
		}
	}()
}

// stop ends the running term, if any, and waits for active to return.
func (e *election) stop() {
	e.mu.Lock()
	cancel, done := e.cancel, e.done
	e.cancel, e.done = nil, nil
	e.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
	e.cfg.OnRole(false)
}

// ensureTopic creates the coordination topic with one partition if it is
// missing.
func ensureTopic(ctx context.Context, cfg Config) error {
	cl, err := kgo.NewClient(cfg.ClientOptions...)
	if err != nil {
		return fmt.Errorf("ha: create topic %q: %w", cfg.Topic, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopic(ctx, 1, -1, nil, cfg.Topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("ha: create coordination topic %q (ha.topic; the principal needs CREATE on it, or create it with one partition): %w", cfg.Topic, err)
	}
	return nil
}
