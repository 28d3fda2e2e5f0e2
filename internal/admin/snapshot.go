package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/pipeline"
)

// SnapshotRequestReply is the JSON answer of POST /snapshot.
type SnapshotRequestReply struct {
	// Queued are the tables queued for an incremental snapshot.
	Queued []string `json:"queued,omitempty"`
	// Error says why the request was refused.
	Error string `json:"error,omitempty"`
}

// registerSnapshotAdmin adds the snapshot endpoints to the admin listener:
//
//	POST /snapshot?table=T[&table=U]  queue incremental snapshots of the
//	     [&reconcile=true]            tables (with reconcile: read again
//	                                  from the first row, then tombstone
//	                                  the keys gone from the table): 202,
//	                                  400 if refused, 503 if the source is
//	                                  not open
//	GET  /snapshot                    snapshot progress as JSON
func registerSnapshots(mux *http.ServeMux, p Pipeline, log *slog.Logger) {
	mux.HandleFunc("POST /snapshot", func(w http.ResponseWriter, r *http.Request) {
		reply := func(code int, rep SnapshotRequestReply) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(rep)
		}
		tables := r.URL.Query()["table"]
		if len(tables) == 0 {
			reply(http.StatusBadRequest, SnapshotRequestReply{Error: "name at least one table: POST /snapshot?table=schema.table"})
			return
		}
		req := connectors.SnapshotRequest{Tables: tables, Reconcile: r.URL.Query().Get("reconcile") == "true"}
		if err := p.RequestSnapshot(r.Context(), req); err != nil {
			code := http.StatusInternalServerError
			switch {
			case errors.Is(err, connectors.ErrSnapshotRefused):
				code = http.StatusBadRequest
			case errors.Is(err, pipeline.ErrNotOpen):
				code = http.StatusServiceUnavailable
			case errors.Is(err, pipeline.ErrNoSnapshots):
				code = http.StatusNotImplemented
			}
			reply(code, SnapshotRequestReply{Error: err.Error()})
			return
		}
		log.Info("incremental snapshot requested through the admin listener", "tables", tables, "reconcile", req.Reconcile)
		reply(http.StatusAccepted, SnapshotRequestReply{Queued: tables})
	})
	mux.HandleFunc("GET /snapshot", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(p.SnapshotProgress())
	})
}

// RequestSnapshot asks the running daemon to snapshot tables while it
// streams, through its admin listener at admin (host:port; empty means
// listen, its http.listen), sending token (its http.token) when it is not
// empty. It returns the daemon's refusal as an error.
func RequestSnapshot(ctx context.Context, listen, admin, token string, req connectors.SnapshotRequest) (SnapshotRequestReply, error) {
	if admin == "" {
		if listen == "off" {
			return SnapshotRequestReply{}, errors.New("http.listen is off: the running daemon cannot be asked (pass --admin host:port)")
		}
		admin = listen
	}
	if strings.HasPrefix(admin, "0.0.0.0:") || strings.HasPrefix(admin, ":") {
		admin = "127.0.0.1:" + admin[strings.LastIndex(admin, ":")+1:]
	}
	q := url.Values{"table": req.Tables}
	if req.Reconcile {
		q.Set("reconcile", "true")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+admin+"/snapshot?"+q.Encode(), nil)
	if err != nil {
		return SnapshotRequestReply{}, err
	}
	if token != "" {
		hreq.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		return SnapshotRequestReply{}, fmt.Errorf("ask the daemon at %s (is liberator run with this config running?): %w", admin, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return SnapshotRequestReply{}, fmt.Errorf("read the answer of %s: %w", admin, err)
	}
	var rep SnapshotRequestReply
	if err := json.Unmarshal(body, &rep); err != nil {
		return SnapshotRequestReply{}, fmt.Errorf("the answer of %s is not a snapshot reply (%s): %q", admin, resp.Status, body)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return rep, fmt.Errorf("the daemon refused: %s (http.token in this config must be the daemon's)", rep.Error)
	}
	if resp.StatusCode != http.StatusAccepted {
		return rep, fmt.Errorf("the daemon refused: %s", rep.Error)
	}
	return rep, nil
}
