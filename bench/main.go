// Command bench is liberator's benchmark suite (`make bench`). It starts a
// throwaway PostgreSQL and MariaDB (internal/harness), a kfake broker in a
// process of its own (bench/kfakebroker, restarted for every measured phase
// because kfake keeps every record in memory) and an in-process srfake
// registry, and measures the real liberator binary against bare pipelines
// (bench/bare) built from the same libraries without liberator's code, and
// against the raw limit of reading alone.
//
// The snapshot and drain cases compare liberator with, each in the same
// run:
//
//	bare_       the bare pipeline on one goroutine: read, decode, encode
//	            with hamba/avro, produce with franz-go (acks=all,
//	            idempotent)
//	pipelined_  the bare pipeline on two goroutines: read and decode on
//	            one, encode and produce on the other, batches of rows
//	            between them
//	reader_     (drains) the bare reader decoding every column, nothing
//	            encoded or produced
//	raw_        the raw limit, reading without decoding: COPY … TO STDOUT
//	            (FORMAT binary) into io.Discard (snapshot-postgres); the row
//	            packets of a streamed SELECT, counted unparsed
//	            (snapshot-mariadb); pgoutput insert messages, counted
//	            unparsed (drain-postgres); go-mysql's parsed binlog rows,
//	            counted, their values not converted (drain-mariadb)
//
// Liberator and the bare pipelines produce with the same compression
// (KAFKA_COMPRESSION, default none: liberator's default, where franz-go's
// own is snappy). For each of them the case reports the rate
// (<prefix>events_per_s), the process's CPU seconds (<prefix>cpu_s) and
// per million events (<prefix>cpu_s_per_1m), and the database server's CPU
// seconds over the run (<prefix>srv_cpu_s, <prefix>srv_cpu_s_per_1m): for a
// snapshot the whole server's (PostgreSQL's postmaster and all backends,
// MariaDB's mariadbd), for a drain the thread that streams the log (the
// walsender process; the binlog dump thread, found by the TID of
// information_schema.PROCESSLIST; the whole server's over a drain is
// <prefix>srv_all_cpu_s, a check). Liberator's ratios to each are rate over
// rate (ratio_bare, ratio_pipelined, reader_ratio, raw_ratio: above 1
// liberator is faster) and CPU over CPU (cpu_ratio_*: below 1 liberator
// spends less). The broker, a process of its own on the same machine,
// spends CPU too (<prefix>broker_cpu_s, <prefix>broker_cpu_s_per_1m).
// With liberator's, the server's and the broker's CPU per event, the case
// reports the rate at which they would keep every core busy
// (machine_events_per_s: the number of CPUs over their sum) and
// liberator's rate over it (machine_ratio): near 1, only less CPU per event
// in one of the three goes faster. A table under the case's BENCH line
// shows them side by side.
//
// Cases, for each source (postgres, mariadb):
//
//	snapshot-<source>  `liberator snapshot` of ROWS rows, against bare COPY /
//	                   streamed SELECT + hamba/avro + franz-go, and the raw
//	                   read
//	drain-<source>     ROWS inserts written while liberator is stopped, then
//	                   the time until Kafka has acknowledged them all, against
//	                   bare pgoutput / binlog readers (+ encode + produce),
//	                   the decoding reader and the raw read
//	drain-<source>-eos the same drain by liberator with delivery:
//	                   exactly_once, until Kafka has committed the last
//	                   event, and with at_least_once in the same run
//	                   (alo_*); ratio is exactly once's rate over at least
//	                   once's
//	latency-<source>   commit-to-Kafka latency at a steady rate of single-row
//	                   transactions (p50, p99); for PostgreSQL, the raw
//	                   limit of the same writes read by a counting pgoutput
//	                   reader alone: commit to the walsender's send
//	                   (raw_send_p*_ms) and to receipt (raw_p*_ms)
//	bigtxn-<source>    one transaction of ROWS rows: liberator's peak RSS
//	                   and CPU, the time from the statement's start and
//	                   from its commit to the first event acknowledged
//	                   (first_event_s, first_event_after_commit_s) and to
//	                   the last (last_event_s; events_per_s from the
//	                   commit); for PostgreSQL again with
//	                   source.postgres.streaming (stream_*), with the
//	                   server's spilled and streamed bytes (server_*_mb)
//	idle-<source>      liberator's RSS once streaming is up and idle
//	bigrow-<source>    BIGROW_ROWS rows of about 1 MB in one transaction,
//	                   streamed with memory_limit BIGROW_MEMORY_LIMIT:
//	                   throughput in MB/s from the commit, peak RSS, CPU
//	outage-<source>    Kafka cut off while liberator streams, OUTAGE_ROWS
//	                   rows inserted during the cut, then Kafka back: the
//	                   time from its return to the last event acknowledged
//	                   (catch_up_s, events_per_s, cpu_s), to the first
//	                   (first_ack_s: what was left of the retry backoff),
//	                   the rate from first to last (drain_events_per_s), and how long
//	                   liberator took to turn not ready (not_ready_s) and
//	                   ready again (ready_s)
//	failover-<source>  two liberator processes in ha.mode standby while rows
//	                   are inserted; the active one is killed with SIGKILL
//	                   FAILOVER_KILLS times, alternating which dies: the
//	                   time from the kill to the next event Kafka
//	                   acknowledges (failover_s, the median; min_, max_)
//	poll-<source>      query capture (source.capture: query, mode
//	                   incrementing, poll_interval 1s; MariaDB with lag 1s):
//	                   ROWS rows inserted while liberator is stopped, then
//	                   the time until Kafka has them all (events_per_s,
//	                   cpu_s, cpu_s_per_1m_rows); then commit-to-Kafka
//	                   latency at LATENCY_TPS single-row transactions for
//	                   LATENCY_SECONDS (p50_ms, p99_ms)
//	embedded-<source>  `liberator run` on ROWS rows with the embedded broker
//	                   and registry: the time from start until the broker
//	                   has every event (embedded_s, events_per_s, cpu_s of
//	                   liberator and broker together, peak_rss_mb), against
//	                   a separate broker process (separate_s; ratio is
//	                   separate_s over embedded_s); the same with
//	                   kafka.embedded.data_dir (dd_*), and the time for a
//	                   restart from that data dir to open its source at the
//	                   stored position, with no second snapshot (restart_s)
//	many-tables-<source> MANY_TABLES tables of MANY_ROWS rows captured
//	                   through one pattern: snapshot time, RSS, topic and
//	                   subject creation costs, a new table's time to Kafka
//	                   (see bench/manytables.go)
//
// Environment:
//
//	ROWS=N            table size and change count (default 1000000)
//	BENCH=a,b         run only these cases (names as above)
//	RUNS=N            repeat each case N times and report the median (default 1)
//	PROFILE=1         also run snapshot, drain and outbox once with the
//	                  pipeline under the CPU profiler (liberator --cpuprofile)
//	                  and save bench/results/<case>.pprof
//	LATENCY_TPS=N     latency case rate (default 2000)
//	LATENCY_SECONDS=N latency case duration (default 20; the first 2 s are
//	                  not counted)
//	IDLE_SECONDS=N    how long idle-<source> waits before reading RSS (default 10)
//	BIGROW_ROWS=N     rows of the bigrow case (default 2000)
//	BIGROW_MEMORY_LIMIT=S memory_limit of the bigrow case (default 256MB,
//	                  liberator's default)
//	OUTAGE_ROWS=N     rows written during the cut of outage-<source> (default
//	                  100000, at most ROWS)
//	OUTAGE_SECONDS=N  how long outage-<source> keeps Kafka cut (default 30)
//	FAILOVER_KILLS=N  kills of failover-<source> (default 3)
//	FAILOVER_SESSION_TIMEOUT=D ha.session_timeout of failover-<source>
//	                  (default 10s, liberator's; the broker's minimum is 6s)
//	KAFKA_LINGER=D    kafka.linger for liberator and -linger for the bare
//	                  producer (a Go duration; default: liberator's 5ms)
//	KAFKA_COMPRESSION=C kafka.compression for liberator and -compression
//	                  for the bare producers: none (default, liberator's),
//	                  gzip, snappy, lz4 or zstd
//	QUIET_WAIT=N      wait at most N seconds (default 300; 0 does not wait) before each run
//	                  for the machine to be quiet (see waitQuiet)
//	BASELINES=0       run liberator alone in snapshot and drain cases, without
//	                  the bare pipelines and the raw limit (for comparing two
//	                  builds of liberator)
//	BENCH_KEEP=1      keep the scratch directory with configs and logs
//	BENCH_DEBUG=1     print end offsets while waiting for them
//
// Each measurement is printed as one line,
//
//	BENCH <case> events_per_s=… cpu_s_per_1m=… srv_cpu_s_per_1m=… bare_events_per_s=… ratio_bare=… pipelined_events_per_s=… ratio_pipelined=… raw_events_per_s=… raw_ratio=… peak_rss_mb=… compression=none
//
// (fields that do not apply are left out), followed, for a case that
// compares liberator with baselines, by a table of the same figures; all
// of them are written to bench/results/latest.json.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// caseFunc measures one run of a case.
type caseFunc func(ctx context.Context, e *env, s source) (measure, error)

var caseKinds = []struct {
	kind string
	run  caseFunc
	// suffix follows the source in the case's name.
	suffix string
}{
	{"snapshot", runSnapshot, ""},
	{"drain", runDrain, ""},
	{"drain", runDrainEOS, "-eos"},
	{"latency", runLatency, ""},
	{"bigtxn", runBigTxn, ""},
	{"idle", runIdle, ""},
	{"bigrow", runBigRow, ""},
	{"outage", runOutage, ""},
	{"outbox", runOutbox, ""},
	{"failover", runFailover, ""},
	{"failover", runFailoverEOS, "-eos"},
	{"poll", runPoll, ""},
	{"embedded", runEmbedded, ""},
	{"many-tables", runManyTables, ""},
}

var sourceNames = []string{"postgres", "mariadb"}

// measure is the outcome of one run of a case.
type measure struct {
	Fields map[string]float64 `json:"fields,omitempty"`
	Notes  map[string]string  `json:"notes,omitempty"`
}

func newMeasure() measure {
	return measure{Fields: map[string]float64{}, Notes: map[string]string{}}
}

// fieldOrder is the order of fields on a BENCH line; others follow sorted.
var fieldOrder = []string{
	"mb_per_s", "events_per_s", "cpu_s_per_1m", "srv_cpu_s_per_1m",
	"bare_events_per_s", "bare_cpu_s_per_1m", "bare_srv_cpu_s_per_1m", "ratio_bare", "cpu_ratio_bare",
	"pipelined_events_per_s", "pipelined_cpu_s_per_1m", "pipelined_srv_cpu_s_per_1m", "ratio_pipelined", "cpu_ratio_pipelined",
	"ratio", "reader_events_per_s", "reader_cpu_s_per_1m", "reader_srv_cpu_s_per_1m", "reader_ratio",
	"raw_events_per_s", "raw_cpu_s_per_1m", "raw_srv_cpu_s_per_1m", "raw_ratio", "cpu_ratio_raw",
	"broker_cpu_s_per_1m", "machine_events_per_s", "machine_ratio",
	"p50_ms", "p99_ms", "hdr_p50_ms", "hdr_p99_ms", "achieved_tx_per_s",
	"cpu_s", "peak_rss_mb", "rss_mb",
}

func (m measure) line(name string, extra ...string) string {
	var b strings.Builder
	b.WriteString("BENCH ")
	b.WriteString(name)
	for _, x := range extra {
		b.WriteString(" " + x)
	}
	if r, ok := m.Notes["skipped"]; ok {
		// The reason goes first; the bare figures, if any, follow.
		fmt.Fprintf(&b, " skipped=%q", r)
	}
	keys := make([]string, 0, len(m.Fields))
	for k := range m.Fields {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, c := slices.Index(fieldOrder, keys[i]), slices.Index(fieldOrder, keys[j])
		if a < 0 {
			a = len(fieldOrder)
		}
		if c < 0 {
			c = len(fieldOrder)
		}
		if a != c {
			return a < c
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, formatValue(k, m.Fields[k]))
	}
	notes := make([]string, 0, len(m.Notes))
	for k := range m.Notes {
		notes = append(notes, k)
	}
	sort.Strings(notes)
	for _, k := range notes {
		if k == "skipped" {
			continue
		}
		fmt.Fprintf(&b, " %s=%s", k, m.Notes[k])
	}
	return b.String()
}

func formatValue(k string, v float64) string {
	switch {
	case strings.HasSuffix(k, "_per_s"):
		return strconv.FormatFloat(v, 'f', 0, 64)
	case strings.Contains(k, "ratio") || k == "host_busy_before":
		return strconv.FormatFloat(v, 'f', 3, 64)
	case strings.HasSuffix(k, "_per_1m"):
		return strconv.FormatFloat(v, 'f', 2, 64)
	case strings.HasSuffix(k, "_ms"):
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// tableRows are the rows of a case's table: liberator and what it is
// compared with, by field prefix.
var tableRows = []struct{ label, prefix, ratio, cpuRatio string }{
	{"liberator", "", "", ""},
	{"bare, one goroutine", barePrefix, "ratio_bare", "cpu_ratio_bare"},
	{"bare, pipelined", pipelinedPrefix, "ratio_pipelined", "cpu_ratio_pipelined"},
	{"reader, decoding", readerPrefix, "reader_ratio", "cpu_ratio_reader"},
	{"raw limit", rawPrefix, "raw_ratio", "cpu_ratio_raw"},
}

// table is a case's figures as a table: for liberator and each baseline
// and limit, the rate, CPU seconds per million events (its own and the
// database server's), and liberator's rate and CPU over its. It is empty
// for a case that compares with nothing.
func (m measure) table(name string) string {
	var rows []string
	for _, r := range tableRows {
		if _, ok := m.Fields[r.prefix+"events_per_s"]; !ok {
			continue
		}
		label := r.label
		if r.prefix == rawPrefix && m.Notes["raw"] != "" {
			label += " (" + m.Notes["raw"] + ")"
		}
		cell := func(f string, prec int) string {
			v, ok := m.Fields[f]
			if !ok {
				return "-"
			}
			return strconv.FormatFloat(v, 'f', prec, 64)
		}
		// The ratios are derive's, each run's: over several runs, the
		// median of the ratios, as on the BENCH line.
		rate, cpu := "-", "-"
		if r.ratio != "" {
			rate, cpu = cell(r.ratio, 2), cell(r.cpuRatio, 2)
		}
		rows = append(rows, fmt.Sprintf("  %-40s %10s %10s %12s %12s %12s %11s", label,
			cell(r.prefix+"events_per_s", 0), cell(r.prefix+"cpu_s_per_1m", 2), cell(r.prefix+"srv_cpu_s_per_1m", 2),
			cell(r.prefix+"broker_cpu_s_per_1m", 2), rate, cpu))
	}
	if len(rows) < 2 {
		return ""
	}
	if v, ok := m.Fields["machine_events_per_s"]; ok {
		rows = append(rows, fmt.Sprintf("  %-40s %10.0f %47s %11s", "all cores at liberator's CPU per event", v,
			strconv.FormatFloat(m.Fields["machine_ratio"], 'f', 2, 64), "-"))
	}
	title := name + ", compression " + m.Notes["compression"]
	if w := m.Notes["srv_cpu"]; w != "" {
		title += ", server CPU of the " + strings.ReplaceAll(w, "-", " ")
	}
	head := fmt.Sprintf("  %s\n  %-40s %10s %10s %12s %12s %12s %11s\n  %-40s %10s %10s %12s %12s %12s %11s", title,
		"", "", "", "server", "broker", "lib rate", "lib CPU", "", "events/s", "CPU s/1M", "CPU s/1M", "CPU s/1M", "/ this rate", "/ this CPU")
	return head + "\n" + strings.Join(rows, "\n")
}

// median takes, field by field, the median over the runs. Notes are those of
// the last run.
func median(runs []measure) measure {
	out := newMeasure()
	vals := map[string][]float64{}
	for _, r := range runs {
		for k, v := range r.Fields {
			vals[k] = append(vals[k], v)
		}
		for k, v := range r.Notes {
			out.Notes[k] = v
		}
	}
	for k, vs := range vals {
		sort.Float64s(vs)
		n := len(vs)
		if n%2 == 1 {
			out.Fields[k] = vs[n/2]
		} else {
			out.Fields[k] = (vs[n/2-1] + vs[n/2]) / 2
		}
	}
	return out
}

type caseResult struct {
	Runs   []measure `json:"runs"`
	Median measure   `json:"median"`
}

type report struct {
	Started time.Time `json:"started"`
	Rows    int64     `json:"rows"`
	Runs    int       `json:"runs"`
	CPUs    int       `json:"cpus"`
	Go      string    `json:"go"`
	Commit  string    `json:"commit,omitempty"`
	// Compression is kafka.compression of every run, liberator's and the
	// bare pipelines'.
	Compression string                 `json:"compression"`
	Cases       map[string]*caseResult `json:"cases"`
	Profiles    map[string]string      `json:"profiles,omitempty"`
}

// envInt reads a positive integer.
func envInt(name string, def int64) int64 { return envIntFrom(name, def, 1) }

// envIntFrom reads an integer of at least least.
func envIntFrom(name string, def, least int64) int64 {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(v, "_", ""), 10, 64)
	if err != nil || n < least {
		fmt.Fprintf(os.Stderr, "bench: %s=%q is not an integer of at least %d\n", name, v, least)
		os.Exit(2)
	}
	return n
}

func main() {
	rows := envInt("ROWS", 1_000_000)
	runs := int(envInt("RUNS", 1))
	var selected []string
	all := map[string]bool{}
	for _, s := range sourceNames {
		for _, c := range caseKinds {
			all[c.kind+"-"+s+c.suffix] = true
		}
	}
	if b := os.Getenv("BENCH"); b != "" {
		for _, name := range strings.Split(b, ",") {
			name = strings.TrimSpace(name)
			if !all[name] {
				fmt.Fprintf(os.Stderr, "bench: BENCH names an unknown case %q\n", name)
				os.Exit(2)
			}
			selected = append(selected, name)
		}
	}
	want := func(name string) bool { return len(selected) == 0 || slices.Contains(selected, name) }

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	e, err := newEnv(ctx, rows, os.Getenv("PROFILE") == "1")
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
	defer e.Close()

	rep := &report{Started: time.Now().UTC(), Rows: rows, Runs: runs, CPUs: runtime.NumCPU(), Go: runtime.Version(),
		Commit: e.commit, Compression: e.compression, Cases: map[string]*caseResult{}, Profiles: map[string]string{}}
	fmt.Printf("bench: ROWS=%d RUNS=%d on %d CPUs; Kafka compression %s for liberator and the bare pipelines; liberator %s\n",
		rows, runs, runtime.NumCPU(), e.compression, e.commit)
	failed := false
	for _, sname := range sourceNames {
		var s source
		for _, c := range caseKinds {
			name := c.kind + "-" + sname + c.suffix
			if !want(name) {
				continue
			}
			if s == nil {
				if s, err = e.source(ctx, sname); err != nil {
					fmt.Fprintf(os.Stderr, "bench: start %s: %v\n", sname, err)
					os.Exit(1)
				}
			}
			cr := &caseResult{}
			for i := 1; i <= runs; i++ {
				busy := waitQuiet(ctx)
				m, err := c.run(ctx, e, s)
				if err == nil {
					m.Fields["host_busy_before"] = busy
				}
				if err != nil {
					fmt.Fprintf(os.Stderr, "bench: %s run %d: %v\n", name, i, err)
					failed = true
					if ctx.Err() != nil {
						break
					}
					continue
				}
				cr.Runs = append(cr.Runs, m)
				if runs > 1 {
					fmt.Println(m.line(name, fmt.Sprintf("run=%d", i)))
				}
				if _, skipped := m.Notes["skipped"]; skipped {
					break
				}
			}
			if len(cr.Runs) > 0 {
				cr.Median = median(cr.Runs)
				rep.Cases[name] = cr
				if runs > 1 {
					fmt.Println(cr.Median.line(name, fmt.Sprintf("median_of=%d", len(cr.Runs))))
				} else {
					fmt.Println(cr.Median.line(name))
				}
				if t := cr.Median.table(name); t != "" {
					fmt.Println(t)
				}
			}
			if e.profile && c.suffix == "" && (c.kind == "snapshot" || c.kind == "drain" || c.kind == "outbox") && ctx.Err() == nil {
				waitQuiet(ctx)
				path, m, err := profileCase(ctx, e, s, c.kind, name)
				if err != nil {
					fmt.Fprintf(os.Stderr, "bench: profile %s: %v\n", name, err)
					failed = true
				} else if path != "" {
					rel, _ := filepath.Rel(e.root, path)
					rep.Profiles[name] = rel
					fmt.Println(strings.Replace(m.line(name, "profile="+rel), "BENCH ", "PROFILE ", 1))
				}
			}
			if ctx.Err() != nil {
				break
			}
		}
	}
	out := filepath.Join(e.root, "bench", "results", "latest.json")
	b, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "bench: write results: %v\n", err)
		failed = true
	} else {
		fmt.Printf("bench: results in %s\n", out)
	}
	if failed {
		e.Close()
		os.Exit(1)
	}
}
