package schema

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/liberator-cdc/liberator/connectors"
)

// fakeRegistry is srfake served by httptest, counting requests by method
// and path.
type fakeRegistry struct {
	*srfake.Registry
	srv *httptest.Server

	mu       sync.Mutex
	requests map[string]int
}

func newFakeRegistry(t *testing.T, opts ...srfake.Option) *fakeRegistry {
	t.Helper()
	f := &fakeRegistry{Registry: srfake.NewRegistry(opts...), requests: map[string]int{}}
	handler := f.Handler()
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests[r.Method+" "+r.URL.Path]++
		f.mu.Unlock()
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeRegistry) count(request string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[request]
}

func newTestRegistry(t *testing.T, f *fakeRegistry) *Registry {
	t.Helper()
	r, err := NewRegistry(RegistryConfig{URL: f.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRegister(t *testing.T) {
	ctx := context.Background()
	c, err := NewCodec("app.public.orders", benchTable())
	if err != nil {
		t.Fatal(err)
	}

	t.Run("registering a schema twice sends it once and returns one id", func(t *testing.T) {
		f := newFakeRegistry(t)
		r := newTestRegistry(t, f)
		first, err := r.Register(ctx, "orders-value", c.Value)
		if err != nil {
			t.Fatal(err)
		}
		second, err := r.Register(ctx, "orders-value", c.Value)
		if err != nil {
			t.Fatal(err)
		}
		if first != second {
			t.Errorf("ids %d and %d differ", first, second)
		}
		if n := f.count("POST /subjects/orders-value/versions"); n != 1 {
			t.Errorf("%d register requests, want 1", n)
		}
	})

	t.Run("concurrent registrations of one schema send it once", func(t *testing.T) {
		f := newFakeRegistry(t)
		r := newTestRegistry(t, f)
		ids := make([]int, 16)
		var wg sync.WaitGroup
		for i := range ids {
			wg.Go(func() {
				id, err := r.Register(ctx, "orders-value", c.Value)
				if err != nil {
					t.Error(err)
				}
				ids[i] = id
			})
		}
		wg.Wait()
		for _, id := range ids {
			if id != ids[0] {
				t.Errorf("ids %v differ", ids)
				break
			}
		}
		if n := f.count("POST /subjects/orders-value/versions"); n != 1 {
			t.Errorf("%d register requests, want 1", n)
		}
	})

	t.Run("a schema parsed from the same JSON hits the cache", func(t *testing.T) {
		f := newFakeRegistry(t)
		r := newTestRegistry(t, f)
		text, err := json.Marshal(c.Key)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := avro.ParseWithCache(string(text), "", &avro.SchemaCache{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []avro.Schema{c.Key, parsed} {
			if _, err := r.Register(ctx, "orders-key", s); err != nil {
				t.Fatal(err)
			}
		}
		if n := f.count("POST /subjects/orders-key/versions"); n != 1 {
			t.Errorf("%d register requests, want 1", n)
		}
	})

	t.Run("the key and the value get their own ids", func(t *testing.T) {
		f := newFakeRegistry(t)
		r := newTestRegistry(t, f)
		key, err := r.Register(ctx, "orders-key", c.Key)
		if err != nil {
			t.Fatal(err)
		}
		value, err := r.Register(ctx, "orders-value", c.Value)
		if err != nil {
			t.Fatal(err)
		}
		if key == value {
			t.Errorf("key and value share id %d", key)
		}
	})

	t.Run("a server error names the subject, is retryable and is not cached", func(t *testing.T) {
		f := newFakeRegistry(t)
		r := newTestRegistry(t, f)
		var fail atomic.Bool
		fail.Store(true)
		f.Intercept(func(w http.ResponseWriter, req *http.Request) bool {
			if !fail.Load() {
				return false
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error_code":50003,"message":"backend unavailable"}`))
			return true
		})
		_, err := r.Register(ctx, "orders-value", c.Value)
		if err == nil {
			t.Fatal("Register succeeded, want an error")
		}
		if diff := cmp.Diff(`register schema for subject "orders-value": look up schema: backend unavailable`, err.Error()); diff != "" {
			t.Errorf("error (-want +got):\n%s", diff)
		}
		if !connectors.IsRetryable(err) {
			t.Errorf("error %v is not retryable", err)
		}
		fail.Store(false)
		if _, err := r.Register(ctx, "orders-value", c.Value); err != nil {
			t.Errorf("Register after the failure: %v", err)
		}
	})

	t.Run("a rejected schema is not retryable", func(t *testing.T) {
		f := newFakeRegistry(t)
		r := newTestRegistry(t, f)
		f.Intercept(func(w http.ResponseWriter, req *http.Request) bool {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"error_code":409,"message":"incompatible schema"}`))
			return true
		})
		_, err := r.Register(ctx, "orders-value", c.Value)
		if err == nil {
			t.Fatal("Register succeeded, want an error")
		}
		if connectors.IsRetryable(err) {
			t.Errorf("error %v is retryable", err)
		}
	})

	t.Run("basic authentication is sent when a username is set", func(t *testing.T) {
		f := newFakeRegistry(t, srfake.WithAuth("Basic "+base64.StdEncoding.EncodeToString([]byte("liberator:s3cret"))))
		r, err := NewRegistry(RegistryConfig{URL: f.srv.URL, Username: "liberator", Password: "s3cret"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Register(ctx, "orders-value", c.Value); err != nil {
			t.Fatal(err)
		}
		if _, err := newTestRegistry(t, f).Register(ctx, "orders-value", c.Value); err == nil {
			t.Error("Register without credentials succeeded, want an error")
		}
	})
}

func TestNewRegistryErrors(t *testing.T) {
	tests := []struct {
		name, url, want string
	}{
		{"an empty url is an error", "", `schema registry: url "" is not an http or https URL`},
		{"a url without a scheme is an error", "localhost:8081", `schema registry: url "localhost:8081" is not an http or https URL`},
		{"a url with another scheme is an error", "ftp://registry", `schema registry: url "ftp://registry" is not an http or https URL`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRegistry(RegistryConfig{URL: tt.url})
			if err == nil {
				t.Fatal("NewRegistry succeeded, want an error")
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	ctx := context.Background()
	c, err := NewCodec(Namespace("app.public.every_kind"), everyKindTable())
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeRegistry(t)
	r := newTestRegistry(t, f)
	keyID, err := r.Register(ctx, "every_kind-key", c.Key)
	if err != nil {
		t.Fatal(err)
	}
	valueID, err := r.Register(ctx, "every_kind-value", c.Value)
	if err != nil {
		t.Fatal(err)
	}
	row := []any{
		int64(1), int32(-2), true, nil, int32(3), int32(-3), int64(4), nil, float32(0.5), float32(0), 6.25, nil,
		"-7.20", "12345678901234567890123456789012345678", "s", nil, "123e4567-e89b-12d3-a456-426614174000", nil, `{"a":1}`, nil,
		[]byte("hi"), nil, int32(-1), int32(19000), int64(1700000000123456), nil, int64(-1), int64(0), int64(45296789012), nil,
		[]any{"1.500", nil, "-0.001"}, []any{"x", nil},
	}
	key, err := c.AppendKey(AppendHeader(nil, keyID), row)
	if err != nil {
		t.Fatal(err)
	}
	value, err := c.AppendValue(AppendHeader(nil, valueID), row)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		wire []byte
		want string
	}{
		{"a key decodes to its JSON form", key, `{"id":1,"tenant":-2}`},
		{"a value decodes to its JSON form", value, `{` +
			`"day":"1969-12-31","day_n":"2022-01-08",` +
			`"dec":"-7.20","dec_n":"12345678901234567890123456789012345678","decs":["1.500",null,"-0.001"],` +
			`"doc":"{\"a\":1}","doc_n":null,` +
			`"f32":0.5,"f32_n":0,"f64":6.25,"f64_n":null,` +
			`"flag":true,"flag_n":null,"i32":3,"i32_n":-3,"i64":4,"i64_n":null,"id":1,` +
			`"lts":"1969-12-31T23:59:59.999999","lts_n":"1970-01-01T00:00:00",` +
			`"raw":"aGk=","raw_n":null,"str":"s","str_n":null,"tags_n":["x",null],"tenant":-2,` +
			`"tod":"12:34:56.789012","tod_n":null,` +
			`"ts":"2023-11-14T22:13:20.123456Z","ts_n":null,` +
			`"uuid":"123e4567-e89b-12d3-a456-426614174000","uuid_n":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, s, err := r.DecodeWithSchema(ctx, tt.wire)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(ToJSON(s, v))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("decoded JSON (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("schemas are fetched once per id", func(t *testing.T) {
		for range 3 {
			if _, err := r.Decode(ctx, value); err != nil {
				t.Fatal(err)
			}
		}
		if n := f.count("GET /schemas/ids/" + strconv.Itoa(valueID)); n != 1 {
			t.Errorf("%d schema requests, want 1", n)
		}
	})
}

func TestDecodeErrors(t *testing.T) {
	ctx := context.Background()
	f := newFakeRegistry(t)
	r := newTestRegistry(t, f)
	f.SeedSchema("proto-value", 1, 50, sr.Schema{Schema: `syntax = "proto3"; message M { int32 a = 1; }`, Type: sr.TypeProtobuf})
	f.SeedSchema("short-value", 1, 51, sr.Schema{Schema: `{"type":"record","name":"R","fields":[{"name":"s","type":"string"}]}`})

	tests := []struct {
		name      string
		wire      []byte
		want      string
		retryable bool
	}{
		{"a message shorter than the header is an error", []byte{0, 0, 1}, `decode message: 3 bytes is shorter than the 5-byte header`, false},
		{"a wrong magic byte is an error", []byte{1, 0, 0, 0, 1, 0}, `decode message: magic byte is 0x01, want 0x00`, false},
		{"an unknown schema id is an error", AppendHeader(nil, 999), `decode message: fetch schema 999: schema not found`, false},
		{"a schema that is not Avro is an error", AppendHeader(nil, 50), `decode message: fetch schema 50: schema type is PROTOBUF, not Avro`, false},
		{"a body shorter than its schema is an error", append(AppendHeader(nil, 51), 10, 'a'), `decode message with schema 51: `, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Decode(ctx, tt.wire)
			if err == nil {
				t.Fatal("Decode succeeded, want an error")
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error %q does not start with %q", err, tt.want)
			}
			if got := connectors.IsRetryable(err); got != tt.retryable {
				t.Errorf("IsRetryable = %v, want %v", got, tt.retryable)
			}
		})
	}
}
