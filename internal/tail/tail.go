// Package tail prints a topic's events as JSON lines, decoded with the
// schema registry: liberator tail.
package tail

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/liberator-cdc/liberator/config"
	"github.com/liberator-cdc/liberator/internal/admin"
	"github.com/liberator-cdc/liberator/schema"
)

// Options configures Tail.
type Options struct {
	// Topic to read, from the beginning.
	Topic string
	// Follow keeps reading new events; otherwise Tail stops at the end
	// offsets it found when it started.
	Follow bool
}

// tailEvent is one printed line.
type tailEvent struct {
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Key       any               `json:"key"`
	Value     any               `json:"value"`
	Headers   map[string]string `json:"headers,omitempty"`
}

// Tail prints a topic's events as JSON lines, decoded with the registry
// (a key or value not in the wire format as its text).
// With an embedded broker or registry it asks the running daemon's admin
// listener where they are.
func Tail(ctx context.Context, cfg *config.Config, opts Options, w io.Writer) error {
	brokers, registry := cfg.Kafka.Brokers, cfg.Registry.URL
	if (len(brokers) == 1 && brokers[0] == config.Embedded) || registry == config.Embedded {
		ep, err := fetchEndpoints(ctx, cfg.HTTP.Listen)
		if err != nil {
			return fmt.Errorf("find the embedded broker of the running daemon: %w", err)
		}
		brokers, registry = ep.Brokers, ep.Registry
	}
	reg, err := cfg.NewRegistry(registry)
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	kcfg := cfg.Kafka
	kcfg.Brokers = brokers
	copts, err := kcfg.ClientOptions()
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(append(copts, kgo.ConsumeTopics(opts.Topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return fmt.Errorf("kafka.brokers: %w", err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, opts.Topic)
	if err != nil {
		return fmt.Errorf("read topic %q: %w", opts.Topic, err)
	}
	if err := ends.Error(); err != nil {
		return fmt.Errorf("read topic %q: %w", opts.Topic, err)
	}
	remaining := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
		}
	})
	enc := json.NewEncoder(w)
	for opts.Follow || len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err := fs.Err0(); err != nil {
			return fmt.Errorf("read topic %q: %w", opts.Topic, err)
		}
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			ev := tailEvent{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Headers: map[string]string{}}
			if ev.Key, err = decodeJSON(ctx, reg, r.Key); err != nil {
				return fmt.Errorf("decode key at %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
			}
			if ev.Value, err = decodeJSON(ctx, reg, r.Value); err != nil {
				return fmt.Errorf("decode value at %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
			}
			for _, h := range r.Headers {
				ev.Headers[h.Key] = string(h.Value)
			}
			if err := enc.Encode(ev); err != nil {
				return err
			}
			if end, ok := remaining[r.Partition]; ok && r.Offset+1 >= end {
				delete(remaining, r.Partition)
			}
		}
	}
	return nil
}

// decodeJSON decodes a key or value in the Confluent wire format with its
// schema. One that is not, as an outbox event's key (the aggregate id as
// plain text), is printed as its text.
func decodeJSON(ctx context.Context, reg *schema.Registry, b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	if (len(b) < 5 || b[0] != 0) && utf8.Valid(b) {
		return string(b), nil
	}
	v, s, err := reg.DecodeWithSchema(ctx, b)
	if err != nil {
		return nil, err
	}
	return schema.ToJSON(s, v), nil
}

func fetchEndpoints(ctx context.Context, listen string) (admin.Endpoints, error) {
	if listen == "off" {
		return admin.Endpoints{}, fmt.Errorf("http.listen is off")
	}
	host := listen
	if strings.HasPrefix(host, "0.0.0.0:") || strings.HasPrefix(host, ":") {
		host = "127.0.0.1:" + host[strings.LastIndex(host, ":")+1:]
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/status", nil)
	if err != nil {
		return admin.Endpoints{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return admin.Endpoints{}, fmt.Errorf("is liberator run with this config running? %w", err)
	}
	defer resp.Body.Close()
	var st struct {
		Endpoints admin.Endpoints `json:"endpoints"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return admin.Endpoints{}, fmt.Errorf("read %s/status: %w", host, err)
	}
	return st.Endpoints, nil
}
