package schema

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/liberator-cdc/liberator/connectors"
)

func TestRegisterChecksCompatibility(t *testing.T) {
	ctx := context.Background()
	v1 := valueSchema(t, shape(intCol))
	compatible := valueSchema(t, shape(intCol, nullText))
	incompatible := valueSchema(t, shape(textCol))

	t.Run("an incompatible schema is refused under the default level and not sent", func(t *testing.T) {
		f := newFakeRegistry(t)
		r := newTestRegistry(t, f)
		if _, err := r.Register(ctx, "t-value", v1); err != nil {
			t.Fatal(err)
		}
		_, err := r.Register(ctx, "t-value", incompatible)
		var ie *IncompatibleError
		if !errors.As(err, &ie) || !errors.Is(err, ErrIncompatible) {
			t.Fatalf("Register: %v, want an *IncompatibleError", err)
		}
		got := []any{ie.Subject, ie.Level, ie.Version, ie.Fields}
		if d := cmp.Diff([]any{"t-value", "BACKWARD", 1, []string{"n"}}, got); d != "" {
			t.Errorf("subject, level, version, fields (-want +got):\n%s", d)
		}
		if connectors.IsRetryable(err) {
			t.Error("an incompatible schema is retryable")
		}
		if n := f.count("POST /subjects/t-value/versions"); n != 1 {
			t.Errorf("%d registrations, want 1 (the incompatible schema must not be sent)", n)
		}
	})

	t.Run("a compatible schema is registered as a new version", func(t *testing.T) {
		f := newFakeRegistry(t)
		r := newTestRegistry(t, f)
		first, err := r.Register(ctx, "t-value", v1)
		if err != nil {
			t.Fatal(err)
		}
		second, err := r.Register(ctx, "t-value", compatible)
		if err != nil {
			t.Fatal(err)
		}
		if first == second {
			t.Errorf("both versions have id %d", first)
		}
	})

	t.Run("the subject's own level applies", func(t *testing.T) {
		f := newFakeRegistry(t)
		r := newTestRegistry(t, f)
		if _, err := r.Register(ctx, "t-value", v1); err != nil {
			t.Fatal(err)
		}
		if err := f.SetCompat("t-value", sr.CompatNone); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Register(ctx, "t-value", incompatible); err != nil {
			t.Errorf("Register under NONE: %v", err)
		}
	})

	t.Run("the global level applies to a subject without its own", func(t *testing.T) {
		f := newFakeRegistry(t, srfake.WithGlobalCompat(sr.CompatForward))
		r := newTestRegistry(t, f)
		if _, err := r.Register(ctx, "t-value", valueSchema(t, shape(intCol))); err != nil {
			t.Fatal(err)
		}
		// Widening is BACKWARD compatible but not FORWARD.
		_, err := r.Register(ctx, "t-value", valueSchema(t, shape(bigintCol)))
		var ie *IncompatibleError
		if !errors.As(err, &ie) || ie.Level != "FORWARD" {
			t.Errorf("Register: %v, want incompatible under FORWARD", err)
		}
	})

	t.Run("a transitive level checks every version", func(t *testing.T) {
		f := newFakeRegistry(t, srfake.WithGlobalCompat(sr.CompatBackwardTransitive))
		r := newTestRegistry(t, f)
		for _, s := range []*connectors.Table{shape(column("note", typ(connectors.KindInt64), false, "bigint")), shape()} {
			if _, err := r.Register(ctx, "t-value", valueSchema(t, s)); err != nil {
				t.Fatal(err)
			}
		}
		_, err := r.Register(ctx, "t-value", valueSchema(t, shape(nullText)))
		var ie *IncompatibleError
		if !errors.As(err, &ie) || ie.Version != 1 {
			t.Errorf("Register: %v, want incompatible with version 1", err)
		}
	})

	t.Run("a schema registered already is accepted whatever the latest version", func(t *testing.T) {
		f := newFakeRegistry(t, srfake.WithGlobalCompat(sr.CompatNone))
		r := newTestRegistry(t, f)
		first, err := r.Register(ctx, "t-value", v1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Register(ctx, "t-value", incompatible); err != nil {
			t.Fatal(err)
		}
		if err := f.SetCompat("t-value", sr.CompatFull); err != nil {
			t.Fatal(err)
		}
		// A new client, without the first one's cache, as after a restart.
		again, err := newTestRegistry(t, f).Register(ctx, "t-value", v1)
		if err != nil || again != first {
			t.Errorf("Register of version 1 again = %d, %v; want %d", again, err, first)
		}
	})

	t.Run("Check registers nothing", func(t *testing.T) {
		f := newFakeRegistry(t)
		r := newTestRegistry(t, f)
		if _, err := r.Register(ctx, "t-value", v1); err != nil {
			t.Fatal(err)
		}
		if err := r.Check(ctx, "t-value", compatible); err != nil {
			t.Errorf("Check of a compatible schema: %v", err)
		}
		if err := r.Check(ctx, "t-value", incompatible); !errors.Is(err, ErrIncompatible) {
			t.Errorf("Check of an incompatible schema: %v", err)
		}
		if n := f.count("POST /subjects/t-value/versions"); n != 1 {
			t.Errorf("%d registrations, want 1", n)
		}
	})

	t.Run("a registry that cannot answer is a retryable error", func(t *testing.T) {
		f := newFakeRegistry(t)
		r := newTestRegistry(t, f)
		if _, err := r.Register(ctx, "t-value", v1); err != nil {
			t.Fatal(err)
		}
		f.Intercept(func(w http.ResponseWriter, req *http.Request) bool {
			if req.URL.Path != "/config/t-value" {
				return false
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error_code":50003,"message":"backend unavailable"}`))
			return true
		})
		_, err := r.Register(ctx, "t-value", compatible)
		if !connectors.IsRetryable(err) {
			t.Errorf("Register: %v, want a retryable error", err)
		}
	})
}

func TestRegisterKey(t *testing.T) {
	ctx := context.Background()
	keyOf := func(table *connectors.Table) *Codec {
		c, err := NewCodec("app.public.t", table)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	varchar20 := shape()
	varchar20.Columns[0] = column("id", typ(connectors.KindString), false, "varchar(20)")
	varchar40 := shape()
	varchar40.Columns[0] = column("id", typ(connectors.KindString), false, "varchar(40)")
	composite := shape(column("n", typ(connectors.KindString), false, "text"))
	composite.Columns[0] = varchar20.Columns[0]
	composite.Key = []int{0, 1}

	t.Run("a key that encodes alike keeps the latest id", func(t *testing.T) {
		f := newFakeRegistry(t)
		r := newTestRegistry(t, f)
		first, err := r.RegisterKey(ctx, "t-key", keyOf(varchar20).Key)
		if err != nil {
			t.Fatal(err)
		}
		second, err := r.RegisterKey(ctx, "t-key", keyOf(varchar40).Key)
		if err != nil {
			t.Fatal(err)
		}
		if first != second {
			t.Errorf("ids %d and %d, want one id: the keys' bytes must not change", first, second)
		}
		if n := f.count("POST /subjects/t-key/versions"); n != 1 {
			t.Errorf("%d registrations, want 1", n)
		}
	})

	t.Run("a changed key is incompatible, even when resolution allows it", func(t *testing.T) {
		f := newFakeRegistry(t)
		r := newTestRegistry(t, f)
		if _, err := r.RegisterKey(ctx, "t-key", keyOf(varchar20).Key); err != nil {
			t.Fatal(err)
		}
		_, err := r.RegisterKey(ctx, "t-key", keyOf(composite).Key)
		var ie *IncompatibleError
		if !errors.As(err, &ie) || !cmp.Equal(ie.Fields, []string{"n"}) {
			t.Fatalf("RegisterKey: %v, want incompatible naming field n", err)
		}
		if err := r.CheckKey(ctx, "t-key", keyOf(composite).Key); !errors.Is(err, ErrIncompatible) {
			t.Errorf("CheckKey: %v, want incompatible", err)
		}
	})

	t.Run("under NONE a changed key is registered", func(t *testing.T) {
		f := newFakeRegistry(t, srfake.WithGlobalCompat(sr.CompatNone))
		r := newTestRegistry(t, f)
		if _, err := r.RegisterKey(ctx, "t-key", keyOf(varchar20).Key); err != nil {
			t.Fatal(err)
		}
		if _, err := r.RegisterKey(ctx, "t-key", keyOf(composite).Key); err != nil {
			t.Errorf("RegisterKey: %v", err)
		}
	})
}

func TestSubjects(t *testing.T) {
	ctx := context.Background()
	f := newFakeRegistry(t)
	r := newTestRegistry(t, f)
	for _, s := range []string{"shop.t-key", "shop.t-value", "shop.t.v2-value", "shop.u-value"} {
		if _, err := r.Register(ctx, s, valueSchema(t, shape())); err != nil {
			t.Fatal(err)
		}
	}
	got, err := r.Subjects(ctx, "shop.t.")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"shop.t.v2-value"}, got); d != "" {
		t.Errorf("subjects (-want +got):\n%s", d)
	}
}

// TestRegistryOverTLSWithBasicAuth reaches a registry over HTTPS that
// trusts only its own CA and wants basic authentication.
func TestRegistryOverTLSWithBasicAuth(t *testing.T) {
	ctx := context.Background()
	reg := srfake.NewRegistry(srfake.WithAuth("Basic " + base64.StdEncoding.EncodeToString([]byte("liberator:s3cret"))))
	srv := httptest.NewTLSServer(reg.Handler())
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	r, err := NewRegistry(RegistryConfig{URL: srv.URL, Username: "liberator", Password: "s3cret", TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Register(ctx, "t-value", valueSchema(t, shape(intCol))); err != nil {
		t.Fatalf("Register over TLS: %v", err)
	}
	if _, err := r.Register(ctx, "t-value", valueSchema(t, shape(textCol))); !errors.Is(err, ErrIncompatible) {
		t.Errorf("Register of an incompatible schema over TLS: %v", err)
	}
	untrusting, err := NewRegistry(RegistryConfig{URL: srv.URL, Username: "liberator", Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := untrusting.Register(ctx, "t-value", valueSchema(t, shape(intCol))); err == nil {
		t.Error("Register without the CA succeeded, want a certificate error")
	}
}
