package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/liberator-cdc/liberator/config"
	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/mapping"
	"github.com/liberator-cdc/liberator/schema"
)

// IncompatibleChangeError is the error that stops liberator under
// schema.on_incompatible: fail. It wraps the registry's
// *schema.IncompatibleError (errors.As finds it).
type IncompatibleChangeError struct {
	// Table is the table's "schema.table".
	Table string
	// Columns are the columns involved, as the database names them.
	Columns []string
	// Err is the *schema.IncompatibleError.
	Err error
}

func (e *IncompatibleChangeError) Error() string {
	cols := ""
	if len(e.Columns) > 0 {
		cols = " (columns " + strings.Join(e.Columns, ", ") + ")"
	}
	return fmt.Sprintf("table %s changed incompatibly%s: %v; stopped before the change, which is read again at the next start: make the change compatible, change the subject's compatibility level, or set schema.on_incompatible: new_topic", e.Table, cols, e.Err)
}

// Unwrap returns e.Err.
func (e *IncompatibleChangeError) Unwrap() error { return e.Err }

// TableTopics returns the topic each table is published to now, by
// "schema.table": its configured or default topic, or, after an
// incompatible change under schema.on_incompatible: new_topic, the
// versioned topic that replaced it. A table is present once its topic is
// set up: at start when the source describes its tables, when the source
// takes it while running (connectors.Batch.Tables), else at its first
// change. It is safe to call from any goroutine.
func (p *Pipeline) TableTopics() map[string]string {
	p.topicsMu.Lock()
	defer p.topicsMu.Unlock()
	return maps.Clone(p.topics)
}

func (p *Pipeline) setTableTopic(table, topic string) {
	p.topicsMu.Lock()
	defer p.topicsMu.Unlock()
	if p.topics == nil {
		p.topics = map[string]string{}
	}
	p.topics[table] = topic
}

// topicVersions is the versioned-topic state of one table under
// new_topic: the table's base topic and the highest version in use (1 is
// the base topic itself).
type topicVersions struct {
	base    string
	current int
}

func (tv *topicVersions) topic(v int) string {
	if v <= 1 {
		return tv.base
	}
	return tv.base + ".v" + strconv.Itoa(v)
}

// placement is where a table shape is published.
type placement struct {
	topic        string
	codec        *schema.Codec
	keyID, valID int
}

// place decides the topic of a table shape, registers its schemas there and
// returns them. Under fail, that is the base topic or an error. Under
// new_topic, it is the newest versioned topic where the shape's schemas are
// registered already (a restart that reads older changes again sends them
// where they went before), else the current topic if the schemas are
// compatible there, else a new version.
func (r *runner) place(ctx context.Context, t *connectors.Table, v *mapping.View, base string) (placement, error) {
	codecFor := func(topic string) (*schema.Codec, error) {
		c, err := schema.NewCodec(schema.Namespace(topic), v.Table, schema.WithFieldNames(v.Rename))
		if err != nil {
			return nil, fmt.Errorf("map table %s to avro: %w", t.ID(), err)
		}
		return c, nil
	}
	if r.p.cfg.Schema.OnIncompatible != config.OnIncompatibleNewTopic {
		codec, err := codecFor(base)
		if err != nil {
			return placement{}, err
		}
		if err := r.checkPlacement(ctx, base, codec); err != nil {
			return placement{}, r.incompatible(t, v, err)
		}
		return r.register(ctx, t, base, codec)
	}

	tv, err := r.versions(ctx, t, base)
	if err != nil {
		return placement{}, err
	}
	for n := tv.current; n >= 1; n-- {
		topic := tv.topic(n)
		codec, err := codecFor(topic)
		if err != nil {
			return placement{}, err
		}
		ok, err := r.reg.Registered(ctx, topic+"-value", codec.Value)
		if err != nil {
			return placement{}, err
		}
		if ok && r.reg.CheckKey(ctx, topic+"-key", codec.Key) == nil {
			return r.register(ctx, t, topic, codec)
		}
	}
	topic := tv.topic(tv.current)
	codec, err := codecFor(topic)
	if err != nil {
		return placement{}, err
	}
	err = r.checkPlacement(ctx, topic, codec)
	var ie *schema.IncompatibleError
	if errors.As(err, &ie) {
		tv.current++
		next := tv.topic(tv.current)
		change := r.incompatible(t, v, err).(*IncompatibleChangeError)
		r.p.log.Warn("table changed incompatibly; publishing it to a new topic from now on",
			"table", t.ID(), "columns", change.Columns, "old_topic", topic, "topic", next, "reason", ie.Reason)
		if codec, err = codecFor(next); err != nil {
			return placement{}, err
		}
		topic = next
	} else if err != nil {
		return placement{}, err
	}
	return r.register(ctx, t, topic, codec)
}

// checkPlacement checks that codec's key and value schemas may be
// registered under topic's subjects, before either is.
func (r *runner) checkPlacement(ctx context.Context, topic string, codec *schema.Codec) error {
	if err := r.reg.CheckKey(ctx, topic+"-key", codec.Key); err != nil {
		return fmt.Errorf("check key schema: %w", err)
	}
	if err := r.reg.Check(ctx, topic+"-value", codec.Value); err != nil {
		return fmt.Errorf("check value schema: %w", err)
	}
	return nil
}

// register creates topic if needed and registers codec's schemas there.
func (r *runner) register(ctx context.Context, t *connectors.Table, topic string, codec *schema.Codec) (placement, error) {
	if err := r.sink.EnsureTopic(ctx, topic); err != nil {
		return placement{}, err
	}
	keyID, err := r.reg.RegisterKey(ctx, topic+"-key", codec.Key)
	if err != nil {
		return placement{}, fmt.Errorf("register key schema of table %s: %w", t.ID(), err)
	}
	valID, err := r.reg.Register(ctx, topic+"-value", codec.Value)
	if err != nil {
		return placement{}, fmt.Errorf("register value schema of table %s: %w", t.ID(), err)
	}
	return placement{topic: topic, codec: codec, keyID: keyID, valID: valID}, nil
}

// incompatible wraps err, which holds a *schema.IncompatibleError, with
// the table and the columns behind its fields. Any other error is
// returned as it is.
func (r *runner) incompatible(t *connectors.Table, v *mapping.View, err error) error {
	var ie *schema.IncompatibleError
	if !errors.As(err, &ie) {
		return err
	}
	var cols []string
	for _, f := range ie.Fields {
		col, ok := v.Columns[f]
		if !ok {
			col = f // a field of an older version, named as the column was
		}
		if !slices.Contains(cols, col) {
			cols = append(cols, col)
		}
	}
	return &IncompatibleChangeError{Table: t.ID(), Columns: cols, Err: err}
}

// versionedSubject matches the subjects of a versioned topic.
var versionedSubject = regexp.MustCompile(`^(.*)\.v([0-9]+)-(?:key|value)$`)

// versions returns the versioned-topic state of a table, reading the
// registry's subjects the first time, so that a restart goes on with the
// highest version in use.
func (r *runner) versions(ctx context.Context, t *connectors.Table, base string) (*topicVersions, error) {
	r.versionsMu.Lock()
	defer r.versionsMu.Unlock()
	if tv := r.topicVersions[t.ID()]; tv != nil {
		return tv, nil
	}
	subjects, err := r.reg.Subjects(ctx, base+".v")
	if err != nil {
		return nil, err
	}
	tv := &topicVersions{base: base, current: 1}
	for _, s := range subjects {
		m := versionedSubject.FindStringSubmatch(s)
		if m == nil || m[1] != base {
			continue
		}
		if n, err := strconv.Atoi(m[2]); err == nil && n > tv.current {
			tv.current = n
		}
	}
	if r.topicVersions == nil {
		r.topicVersions = map[string]*topicVersions{}
	}
	r.topicVersions[t.ID()] = tv
	return tv, nil
}

// topicState is kept by the pipeline across restarts of the run loop.
type topicState struct {
	topicsMu sync.Mutex
	topics   map[string]string // table -> current topic
}
