package embedded

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
)

// serve serves r on a test server and returns a client of it.
func serve(t *testing.T, r *registry) *sr.Client {
	t.Helper()
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	cl, err := sr.NewClient(sr.URLs(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func avroRecord(name string, fields ...string) sr.Schema {
	var fs []string
	for _, f := range fields {
		fs = append(fs, `{"name":"`+f+`","type":"long"}`)
	}
	return sr.Schema{Type: sr.TypeAvro, Schema: `{"type":"record","name":"` + name + `","fields":[` + strings.Join(fs, ",") + `]}`}
}

func register(t *testing.T, cl *sr.Client, subject string, s sr.Schema) int {
	t.Helper()
	id, err := cl.RegisterSchema(context.Background(), subject, s, -1, -1)
	if err != nil {
		t.Fatalf("register %s: %v", subject, err)
	}
	return id
}

func openTestRegistry(t *testing.T, dir string) *registry {
	t.Helper()
	r, err := openRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.close() })
	return r
}

func TestRegistryKeepsSchemaIDsAcrossRestarts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r := openTestRegistry(t, dir)
	cl := serve(t, r)
	schemas := map[string]sr.Schema{
		"shop.customers-key":   avroRecord("Key", "id"),
		"shop.customers-value": avroRecord("Customer", "id", "age"),
		// The same schema under another subject keeps its id.
		"shop.orders-key": avroRecord("Key", "id"),
	}
	ids := map[string]int{}
	for _, subject := range []string{"shop.customers-key", "shop.customers-value", "shop.orders-key"} {
		ids[subject] = register(t, cl, subject, schemas[subject])
	}
	evolved := register(t, cl, "shop.customers-value", avroRecord("Customer", "id", "age", "score"))
	if res := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFull}, "shop.customers-value"); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	_ = r.close()

	r2 := openTestRegistry(t, dir)
	cl2 := serve(t, r2)
	for subject, id := range ids {
		s, err := cl2.SchemaByID(ctx, id)
		if err != nil {
			t.Fatalf("schema %d of %s after the restart: %v", id, subject, err)
		}
		if s.Schema != schemas[subject].Schema {
			t.Errorf("schema %d after the restart is %s, want %s", id, s.Schema, schemas[subject].Schema)
		}
		if got := register(t, cl2, subject, schemas[subject]); got != id {
			t.Errorf("%s registered again after the restart has id %d, want %d", subject, got, id)
		}
	}
	latest, err := cl2.SchemaByVersion(ctx, "shop.customers-value", -1)
	if err != nil || latest.ID != evolved || latest.Version != 2 {
		t.Errorf("latest of shop.customers-value after the restart: id %d version %d (%v), want id %d version 2", latest.ID, latest.Version, err, evolved)
	}
	compat := cl2.Compatibility(ctx, "shop.customers-value")
	if compat[0].Err != nil || compat[0].Level != sr.CompatFull {
		t.Errorf("compatibility of shop.customers-value after the restart: %v (%v), want FULL", compat[0].Level, compat[0].Err)
	}
	// A new schema gets a new id, not one that events may already name.
	if got := register(t, cl2, "shop.items-value", avroRecord("Item", "sku")); got <= evolved {
		t.Errorf("a new schema after the restart has id %d, which is not past %d", got, evolved)
	}
}

func TestRegistryJournalDoesNotGrowWithRegistrationsThatChangeNothing(t *testing.T) {
	dir := t.TempDir()
	r := openTestRegistry(t, dir)
	cl := serve(t, r)
	register(t, cl, "a-value", avroRecord("A", "x"))
	size := journalSize(t, dir)
	for range 3 {
		register(t, cl, "a-value", avroRecord("A", "x"))
		if _, err := cl.CheckCompatibility(context.Background(), "a-value", -1, avroRecord("A", "x", "y")); err != nil {
			t.Fatal(err)
		}
	}
	if got := journalSize(t, dir); got != size {
		t.Errorf("the journal grew from %d to %d bytes with requests that changed nothing", size, got)
	}
}

func journalSize(t *testing.T, dir string) int64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, journalName))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestRegistryDropsALineCutShortByACrash(t *testing.T) {
	dir := t.TempDir()
	r := openTestRegistry(t, dir)
	id := register(t, serve(t, r), "a-value", avroRecord("A", "x"))
	_ = r.close()
	f, err := os.OpenFile(filepath.Join(dir, journalName), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"method":"POST","uri":"/subjects/b-value/vers`); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()

	r2 := openTestRegistry(t, dir)
	cl := serve(t, r2)
	if got := register(t, cl, "a-value", avroRecord("A", "x")); got != id {
		t.Errorf("id after the restart %d, want %d", got, id)
	}
	register(t, cl, "b-value", avroRecord("B", "x"))
	_ = r2.close()
	openTestRegistry(t, dir) // the journal reads whole again
}

func TestRegistryRefusesAJournalThatNoLongerReplays(t *testing.T) {
	dir := t.TempDir()
	r := openTestRegistry(t, dir)
	register(t, serve(t, r), "a-value", avroRecord("A", "x"))
	_ = r.close()
	path := filepath.Join(dir, journalName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), `{\"id\":1}`, `{\"id\":7}`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openRegistry(dir); err == nil || !strings.Contains(err.Error(), "schema ids would change") {
		t.Errorf("openRegistry: %v, want an error saying schema ids would change", err)
	}
}
