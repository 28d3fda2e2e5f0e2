package admin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/liberator-cdc/liberator/connectors"
)

// fakePipeline is a running pipeline that queues every snapshot request.
type fakePipeline struct {
	mu        sync.Mutex
	requested []connectors.SnapshotRequest
	// standby makes it a standby replica (ha.mode standby).
	standby bool
}

func (f *fakePipeline) State() (string, string) {
	if f.standby {
		return "standby", ""
	}
	return "running", "0/16B3748"
}

func (f *fakePipeline) Role() string {
	if f.standby {
		return "standby"
	}
	return "active"
}

func (*fakePipeline) Lag() connectors.Lag           { return connectors.Lag{} }
func (*fakePipeline) Metrics() *prometheus.Registry { return prometheus.NewRegistry() }
func (*fakePipeline) SnapshotProgress() connectors.SnapshotProgress {
	return connectors.SnapshotProgress{}
}

func (f *fakePipeline) RequestSnapshot(_ context.Context, req connectors.SnapshotRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requested = append(f.requested, req)
	return nil
}

func (f *fakePipeline) requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requested)
}

// serve starts an admin listener on a free loopback port for the test.
func serve(t *testing.T, cfg Config, p Pipeline) string {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	addr, stop, err := Serve(context.Background(), cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return "http://" + addr
}

func do(t *testing.T, method, url, authorization string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestMutatingRequestsNeedTheToken(t *testing.T) {
	const token = "s3cret-admin-token"
	tests := []struct {
		name          string
		authorization string
		code          int
	}{
		{"a request without a token is refused", "", http.StatusUnauthorized},
		{"a request with a wrong token is refused", "Bearer not-the-token", http.StatusUnauthorized},
		{"a request with the token as a prefix is refused", "Bearer " + token + "x", http.StatusUnauthorized},
		{"a request with the token in another scheme is refused", "Basic " + token, http.StatusUnauthorized},
		{"a request with the right token is accepted", "Bearer " + token, http.StatusAccepted},
		{"the scheme is case-insensitive", "bearer " + token, http.StatusAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &fakePipeline{}
			base := serve(t, Config{Token: token}, p)
			code, body := do(t, http.MethodPost, base+"/snapshot?table=shop.customers", tt.authorization)
			if code != tt.code {
				t.Fatalf("POST /snapshot: %d %s, want %d", code, body, tt.code)
			}
			var rep SnapshotRequestReply
			if err := json.Unmarshal([]byte(body), &rep); err != nil {
				t.Fatalf("the answer %q is not JSON: %v", body, err)
			}
			wantRequests := 0
			if tt.code == http.StatusAccepted {
				wantRequests = 1
			} else if rep.Error == "" || strings.Contains(body, token) {
				t.Errorf("refusal %q: want an error that does not echo the token", body)
			}
			if got := p.requests(); got != wantRequests {
				t.Errorf("the pipeline got %d snapshot requests, want %d", got, wantRequests)
			}
		})
	}
}

func TestReadOnlyRequestsNeedNoToken(t *testing.T) {
	base := serve(t, Config{Token: "s3cret-admin-token"}, &fakePipeline{})
	for _, path := range []string{"/healthz", "/readyz", "/status", "/metrics", "/snapshot", "/"} {
		if code, body := do(t, http.MethodGet, base+path, ""); code != http.StatusOK {
			t.Errorf("GET %s without a token: %d %s, want 200", path, code, body)
		}
	}
}

func TestWithoutATokenMutatingRequestsPass(t *testing.T) {
	p := &fakePipeline{}
	base := serve(t, Config{}, p)
	if code, body := do(t, http.MethodPost, base+"/snapshot?table=shop.customers", ""); code != http.StatusAccepted {
		t.Fatalf("POST /snapshot: %d %s, want 202", code, body)
	}
}

func TestRequestSnapshotSendsTheToken(t *testing.T) {
	const token = "s3cret-admin-token"
	p := &fakePipeline{}
	base := serve(t, Config{Token: token}, p)
	addr := strings.TrimPrefix(base, "http://")
	req := connectors.SnapshotRequest{Tables: []string{"shop.customers"}}

	rep, err := RequestSnapshot(context.Background(), addr, "", token, req)
	if err != nil {
		t.Fatalf("with the token: %v", err)
	}
	if d := cmp.Diff([]string{"shop.customers"}, rep.Queued); d != "" {
		t.Errorf("queued (-want +got):\n%s", d)
	}
	_, err = RequestSnapshot(context.Background(), addr, "", "wrong", req)
	if err == nil || !strings.Contains(err.Error(), "http.token") {
		t.Errorf("with a wrong token: error %v, want one that names http.token", err)
	}
	if got := p.requests(); got != 1 {
		t.Errorf("the pipeline got %d snapshot requests, want 1", got)
	}
}

func TestStatusNeverShowsAPassword(t *testing.T) {
	base := serve(t, Config{Endpoints: Endpoints{
		Brokers:  []string{"kafka-0:9092"},
		Registry: "https://liberator:s3cret-pw@registry.example.com:8081",
	}}, &fakePipeline{})
	for _, path := range []string{"/status", "/"} {
		code, body := do(t, http.MethodGet, base+path, "")
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		if strings.Contains(body, "s3cret-pw") {
			t.Errorf("GET %s shows the registry password: %s", path, body)
		}
		if !strings.Contains(body, "liberator:xxxxx@registry.example.com:8081") {
			t.Errorf("GET %s does not show the redacted registry URL: %s", path, body)
		}
	}
}

func TestAStandbyIsReadyAndSaysItIsAStandby(t *testing.T) {
	base := serve(t, Config{}, &fakePipeline{standby: true})
	if code, body := do(t, http.MethodGet, base+"/readyz", ""); code != http.StatusOK {
		t.Errorf("GET /readyz of a standby: %d %s, want 200", code, body)
	}
	code, body := do(t, http.MethodGet, base+"/status", "")
	if code != http.StatusOK {
		t.Fatalf("GET /status: %d %s", code, body)
	}
	var rep StatusReport
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("the answer %q is not JSON: %v", body, err)
	}
	if diff := cmp.Diff([2]string{"standby", "standby"}, [2]string{rep.State, rep.Role}); diff != "" {
		t.Errorf("/status state and role (-want +got):\n%s", diff)
	}
}
