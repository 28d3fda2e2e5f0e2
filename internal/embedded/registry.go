package embedded

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// journalName is the registry's file in its directory of the data dir.
const journalName = "requests.jsonl"

// registry is srfake with, when it has a directory, a journal of every
// request that changed it. srfake keeps its schemas in memory and hands
// out ids in the order schemas are first registered, so the same requests
// in the same order give the same ids: at start the journal is replayed
// into a new srfake, and each answer is checked against the recorded one.
// Events already in Kafka name their schemas by these ids, so a replay that
// answers otherwise is an error, never a silent change.
type registry struct {
	reg *srfake.Registry

	// mu serializes the requests that change the registry with their
	// entries in the journal, so that the journal's order is theirs.
	mu sync.Mutex
	f  *os.File
	// seen holds the journaled requests whose repetition changes nothing
	// (a schema registered again under its subject): liberator registers
	// its schemas at every start, and the journal should not grow by that.
	seen map[string]string
}

// entry is one line of the journal: a request that changed the registry,
// and the answer it got.
type entry struct {
	Method string `json:"method"`
	URI    string `json:"uri"`
	Body   string `json:"body,omitempty"`
	Status int    `json:"status"`
	Answer string `json:"answer"`
}

func (e entry) key() string { return e.Method + " " + e.URI + "\n" + e.Body }

// openRegistry returns an in-memory registry, or, with a directory, the
// registry its journal holds.
func openRegistry(dir string) (*registry, error) {
	r := &registry{reg: srfake.NewRegistry(), seen: map[string]string{}}
	if dir == "" {
		return r, nil
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create the registry's directory: %w", err)
	}
	path := filepath.Join(dir, journalName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open the registry's journal: %w", err)
	}
	valid, err := r.replay(f, path)
	if err == nil {
		// A line cut short by a crash was never answered: drop it.
		err = f.Truncate(valid)
	}
	if err == nil {
		_, err = f.Seek(valid, io.SeekStart)
	}
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	r.f = f
	return r, nil
}

// replay applies the journal's entries and returns the length of its
// whole lines.
func (r *registry) replay(f *os.File, path string) (int64, error) {
	br := bufio.NewReader(f)
	var valid int64
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return valid, nil // an unterminated last line was cut short
		}
		if err != nil {
			return 0, fmt.Errorf("read the registry's journal %s: %w", path, err)
		}
		var e entry
		if err := json.Unmarshal(line, &e); err != nil {
			return 0, fmt.Errorf("the registry's journal %s: line %d cannot be read (%w); the schemas and their ids cannot be restored (move the data dir away to start over)", path, n, err)
		}
		status, answer := r.apply(e.Method, e.URI, e.Body)
		if status != e.Status || answer != e.Answer {
			return 0, fmt.Errorf("the registry's journal %s: line %d (%s %s) now answers %d %s where it answered %d %s, so schema ids would change under the events in Kafka (move the data dir away to start over)",
				path, n, e.Method, e.URI, status, strings.TrimSpace(answer), e.Status, strings.TrimSpace(e.Answer))
		}
		r.remember(e)
		valid += int64(len(line))
	}
}

// apply serves one request to srfake and returns its answer.
func (r *registry) apply(method, uri, body string) (int, string) {
	req := httptest.NewRequest(method, uri, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	rec := httptest.NewRecorder()
	r.reg.Handler().ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func (r *registry) remember(e entry) {
	if e.Method == http.MethodDelete {
		// After a delete, a request seen before may change the registry
		// again (a schema registered anew after its version was deleted).
		clear(r.seen)
		return
	}
	r.seen[e.key()] = e.Answer
}

// changes reports whether a request may change the registry: every method
// but GET and HEAD, except the POSTs that only ask (a compatibility check,
// a lookup of a schema under a subject).
func changes(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		return false
	case http.MethodPost:
		p := strings.Trim(req.URL.Path, "/")
		if strings.HasPrefix(p, "compatibility/") {
			return false
		}
		if parts := strings.Split(p, "/"); len(parts) == 2 && parts[0] == "subjects" {
			return false
		}
	}
	return true
}

// maxBody bounds the body of a request that is journaled; srfake takes at
// most 1 MiB.
const maxBody = 8 << 20

func (r *registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if r.f == nil || !changes(req) {
		r.reg.Handler().ServeHTTP(w, req)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxBody))
	if err != nil {
		http.Error(w, "read request: "+err.Error(), http.StatusBadRequest)
		return
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := httptest.NewRecorder()
	r.reg.Handler().ServeHTTP(rec, req)
	if rec.Code/100 == 2 {
		e := entry{Method: req.Method, URI: req.URL.RequestURI(), Body: string(body), Status: rec.Code, Answer: rec.Body.String()}
		if answer, ok := r.seen[e.key()]; !ok || answer != e.Answer {
			if err := r.append(e); err != nil {
				// The answer must not be used unless it survives a restart.
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		r.remember(e)
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// append writes e to the journal and syncs it: the id in the answer is
// written into events only after this.
func (r *registry) append(e entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := r.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write the registry's journal: %w", err)
	}
	if err := r.f.Sync(); err != nil {
		return fmt.Errorf("sync the registry's journal: %w", err)
	}
	return nil
}

func (r *registry) close() error {
	if r.f == nil {
		return nil
	}
	return r.f.Close()
}
