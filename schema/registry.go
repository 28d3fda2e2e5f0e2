package schema

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/internal/redact"
)

// RegistryConfig says how to reach a Confluent-compatible schema registry.
type RegistryConfig struct {
	// URL is the registry's base URL, as "http://localhost:8081". It is
	// required, and must be http or https.
	URL string
	// Username and Password are sent with HTTP basic authentication when
	// Username is not empty.
	Username, Password string
	// TLS, when not nil, configures TLS for an https URL. When nil, an https
	// URL uses the system's roots.
	TLS *tls.Config
}

// Registry registers Avro schemas with a schema registry and decodes
// messages in the Confluent wire format. It caches what it registers and
// fetches, and is safe for concurrent use.
type Registry struct {
	cl *sr.Client

	mu  sync.Mutex
	ids map[registration]*flight[int]
	// schemas holds the parsed schema of each id that Decode has fetched.
	schemas map[int]*flight[avro.Schema]
}

// registration is the cache key of Register.
type registration struct {
	subject string
	// schema is the SHA-256 of the schema's full JSON. hamba's Fingerprint
	// hashes the Parsing Canonical Form, which drops docs and defaults; the
	// registry keeps those, so a change to them is a new schema there.
	schema [32]byte
	// key is set for RegisterKey, whose answer can differ from Register's.
	key bool
}

// flight is one fetch that concurrent callers share: the first caller does
// it and closes done; the others wait for done and read val and err.
type flight[T any] struct {
	done chan struct{}
	val  T
	err  error
}

// NewRegistry returns a Registry for cfg. It only checks and stores cfg: it
// does not contact the registry.
func NewRegistry(cfg RegistryConfig) (*Registry, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("schema registry: url %q is not an http or https URL", redact.URL(cfg.URL))
	}
	opts := []sr.ClientOpt{
		sr.URLs(cfg.URL),
		sr.UserAgent("liberator"),
	}
	if cfg.Username != "" {
		opts = append(opts, sr.BasicAuth(cfg.Username, cfg.Password))
	}
	if cfg.TLS != nil {
		opts = append(opts, sr.DialTLSConfig(cfg.TLS))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("schema registry: create client: %w", err)
	}
	return &Registry{
		cl:      cl,
		ids:     make(map[registration]*flight[int]),
		schemas: make(map[int]*flight[avro.Schema]),
	}, nil
}

// Client returns the underlying franz-go schema registry client.
func (r *Registry) Client() *sr.Client { return r.cl }

// Register registers s under subject and returns the schema's id. The
// registry returns the existing id when s is already registered there.
//
// A schema that is new to the subject is first checked against the
// subject's registered versions under its compatibility level (see Check),
// because a registry may not check (srfake answers every check with
// "compatible"); an incompatible schema is not sent, and the error is an
// *IncompatibleError.
//
// Ids are cached by subject and schema (its full JSON, docs included), so
// the same schema is sent at most once per subject, also when several
// goroutines register it at the same time. Failures are not cached. An
// error that the registry might not repeat (a connection failure, a 5xx or
// 429 status) is marked retryable with connectors.MarkRetryable.
func (r *Registry) Register(ctx context.Context, subject string, s avro.Schema) (int, error) {
	return r.registerAs(ctx, subject, s, false)
}

func (r *Registry) registerAs(ctx context.Context, subject string, s avro.Schema, isKey bool) (int, error) {
	text, err := marshalSchema(s)
	if err != nil {
		return 0, fmt.Errorf("register schema for subject %q: marshal schema: %w", subject, err)
	}
	key := registration{subject: subject, schema: sha256.Sum256(text), key: isKey}
	return shared(ctx, &r.mu, r.ids, key, func() (int, error) {
		return r.register(ctx, subject, s, string(text), isKey)
	})
}

func (r *Registry) register(ctx context.Context, subject string, s avro.Schema, text string, isKey bool) (int, error) {
	id, err := r.decide(ctx, subject, s, text, isKey)
	if err != nil || id > 0 {
		return id, wrapDecision("register schema for subject", subject, err)
	}
	id, err = r.cl.RegisterSchema(ctx, subject, sr.Schema{Schema: text, Type: sr.TypeAvro}, -1, -1)
	if err != nil {
		return 0, markTransient(ctx, fmt.Errorf("register schema for subject %q: %w", subject, err))
	}
	return id, nil
}

// SchemaByID returns the Avro schema the registry holds under id, parsed.
// Schemas are cached by id, as the registry never changes them.
func (r *Registry) SchemaByID(ctx context.Context, id int) (avro.Schema, error) {
	return shared(ctx, &r.mu, r.schemas, id, func() (avro.Schema, error) {
		ss, err := r.cl.SchemaByID(ctx, id)
		if err != nil {
			return nil, markTransient(ctx, fmt.Errorf("fetch schema %d: %w", id, err))
		}
		if ss.Type != sr.TypeAvro {
			return nil, fmt.Errorf("fetch schema %d: schema type is %s, not Avro", id, ss.Type)
		}
		if len(ss.References) > 0 {
			return nil, fmt.Errorf("fetch schema %d: schema has %d references, which are not supported", id, len(ss.References))
		}
		// A cache of its own per schema: hamba's default cache is global,
		// and two versions of one record name must not meet there.
		s, err := avro.ParseWithCache(ss.Schema, "", &avro.SchemaCache{})
		if err != nil {
			return nil, fmt.Errorf("fetch schema %d: parse schema: %w", id, err)
		}
		return s, nil
	})
}

// Decode decodes a message in the Confluent wire format (see AppendHeader):
// it checks the magic byte, fetches the writer's schema by id, and decodes
// the body generically with hamba/avro: a record is a map[string]any, a
// decimal a *big.Rat, a timestamp a time.Time. Use DecodeWithSchema and
// ToJSON to print the result.
func (r *Registry) Decode(ctx context.Context, wire []byte) (any, error) {
	v, _, err := r.DecodeWithSchema(ctx, wire)
	return v, err
}

// DecodeWithSchema is Decode that also returns the writer's schema, which
// ToJSON needs.
func (r *Registry) DecodeWithSchema(ctx context.Context, wire []byte) (any, avro.Schema, error) {
	if len(wire) < 5 {
		return nil, nil, fmt.Errorf("decode message: %d bytes is shorter than the 5-byte header", len(wire))
	}
	if wire[0] != 0 {
		return nil, nil, fmt.Errorf("decode message: magic byte is 0x%02x, want 0x00", wire[0])
	}
	id := int(binary.BigEndian.Uint32(wire[1:5]))
	s, err := r.SchemaByID(ctx, id)
	if err != nil {
		return nil, nil, fmt.Errorf("decode message: %w", err)
	}
	var v any
	if err := avro.Unmarshal(s, wire[5:], &v); err != nil {
		return nil, nil, fmt.Errorf("decode message with schema %d: %w", id, err)
	}
	return v, s, nil
}

// shared returns the cached result for key, or runs fetch once for all the
// callers that ask for key at the same time. A failed fetch is forgotten,
// and a caller that waited on it tries again itself, so that one caller's
// cancelled context does not fail the others.
func shared[K comparable, T any](ctx context.Context, mu *sync.Mutex, cache map[K]*flight[T], key K, fetch func() (T, error)) (T, error) {
	for {
		mu.Lock()
		f, ok := cache[key]
		if !ok {
			f = &flight[T]{done: make(chan struct{})}
			cache[key] = f
			mu.Unlock()
			f.val, f.err = fetch()
			if f.err != nil {
				mu.Lock()
				delete(cache, key)
				mu.Unlock()
			}
			close(f.done)
			return f.val, f.err
		}
		mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		}
		if f.err == nil {
			return f.val, nil
		}
	}
}

// markTransient marks err retryable when the registry might not repeat it:
// a failure to connect, or a 5xx or 429 status. A cancelled ctx is not
// transient.
func markTransient(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return err
	}
	var re *sr.ResponseError
	if errors.As(err, &re) {
		if re.StatusCode >= http.StatusInternalServerError || re.StatusCode == http.StatusTooManyRequests {
			return connectors.MarkRetryable(err)
		}
		return err
	}
	return connectors.MarkRetryable(err)
}
