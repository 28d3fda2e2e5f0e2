// Package integration runs liberator end to end against real PostgreSQL and
// MariaDB servers, an in-process Kafka (kfake) and a schema registry
// (srfake), and checks the topics against the tables.
package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binary is the liberator binary under test, built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "liberator-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "liberator")
	cmd := exec.Command("go", "build", "-o", binary, "github.com/liberator-cdc/liberator/cmd/liberator")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "build liberator: %v\n%s", err, out.String())
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
