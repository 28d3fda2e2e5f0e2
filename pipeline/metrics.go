package pipeline

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/liberator-cdc/liberator/connectors"
)

// metrics are the pipeline's Prometheus metrics, on a registry of its own.
type metrics struct {
	reg *prometheus.Registry

	events      *prometheus.CounterVec
	bytes       *prometheus.CounterVec
	commitToAck prometheus.Histogram
	errors      *prometheus.CounterVec
	retries     prometheus.Counter
	schemaID    *prometheus.GaugeVec
	ready       prometheus.Gauge
	haActive    prometheus.Gauge
	retrying    prometheus.Gauge
	reconciled  *prometheus.CounterVec
	badRows     *prometheus.CounterVec
}

func newMetrics(p *Pipeline) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liberator_events_total", Help: "Events produced and acknowledged by Kafka, by table and operation (r, c, u, d).",
		}, []string{"table", "op"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liberator_event_bytes_total", Help: "Bytes of keys and values acknowledged by Kafka, by table.",
		}, []string{"table"}),
		commitToAck: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "liberator_commit_to_ack_seconds", Help: "Time from a change's commit in the database to Kafka's acknowledgement of its event (streamed changes only).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liberator_errors_total", Help: "Errors that stopped or restarted the pipeline, by whether they were retried.",
		}, []string{"retryable"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "liberator_retries_total", Help: "Restarts of the pipeline after a retryable error.",
		}),
		schemaID: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "liberator_schema_id", Help: "The registry id of the schema in use, by subject.",
		}, []string{"subject"}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "liberator_ready", Help: "1 while streaming or snapshotting, or standing by (ha.mode standby), else 0.",
		}),
		haActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "liberator_ha_active", Help: "1 while this replica is the active one (always, without ha.mode standby), 0 while it stands by.",
		}),
		retrying: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "liberator_retrying", Help: "1 while the pipeline is failing: waiting to retry after an error (state retrying), or waiting longer than " + stallAfter.String() + " for Kafka to acknowledge what it produced, or Kafka not answering (state stalled); else 0.",
		}),
		reconciled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liberator_reconcile_tombstones_total", Help: "Tombstones produced by re-snapshots with reconcile for keys no longer in their table, by table.",
		}, []string{"table"}),
		badRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liberator_bad_rows_total", Help: "Changes that could not be published (a value the encoder refuses, a record larger than its topic takes), by table and what errors.on_bad_row did: failed, skipped or dead_lettered.",
		}, []string{"table", "action"}),
	}
	m.reg.MustRegister(m.events, m.bytes, m.commitToAck, m.errors, m.retries, m.schemaID, m.ready, m.haActive, m.retrying, m.reconciled, m.badRows,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.haActive.Set(1)
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "liberator_source_lag_bytes", Help: "Log bytes between the position Kafka acknowledged and the end of the database's log; -1 when unknown.",
	}, func() float64 { return float64(p.lag().Bytes) }))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "liberator_source_lag_seconds", Help: "Seconds since the commit of the newest change seen; 0 before the first.",
	}, func() float64 {
		if t := p.lag().LastCommit; !t.IsZero() {
			return time.Since(t).Seconds()
		}
		return 0
	}))
	return m
}

// lag asks the running source, if it reports lag.
func (p *Pipeline) lag() connectors.Lag {
	if lr, ok := p.source.Load().(connectors.LagReporter); ok && lr != nil {
		return lr.Lag()
	}
	return connectors.Lag{Bytes: -1}
}

// tableMetrics are one table's counters, looked up once per table shape so
// that the per-event cost is an atomic add.
type tableMetrics struct {
	events [4]prometheus.Counter // by opIndex
	bytes  prometheus.Counter
}

func (m *metrics) forTable(table string) *tableMetrics {
	tm := &tableMetrics{bytes: m.bytes.WithLabelValues(table)}
	for _, op := range []connectors.Op{connectors.OpRead, connectors.OpCreate, connectors.OpUpdate, connectors.OpDelete} {
		tm.events[opIndex(op)] = m.events.WithLabelValues(table, op.String())
	}
	return tm
}

func opIndex(op connectors.Op) int {
	switch op {
	case connectors.OpRead:
		return 0
	case connectors.OpCreate:
		return 1
	case connectors.OpUpdate:
		return 2
	}
	return 3
}
