package integration

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestIntegrationAdminTokenAndRedaction runs the daemon with http.token
// read from a file and passwords in the DSN and the registry URL: a POST
// /snapshot without the token is refused, `liberator snapshot --table`
// sends the config's token and is accepted, read-only endpoints stay open,
// and neither /status nor the log shows a password.
func TestIntegrationAdminTokenAndRedaction(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const dsnPW, regPW, token = "dsn-s3cret-pw", "reg-s3cret-pw", "admin-s3cret-token"
	e := newPGEnv(t, ctx, "snapshot:\n  mode: never\n")
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(token+"\n"), 0o600))
	b, err := os.ReadFile(e.cfgPath)
	require.NoError(t, err)
	cfg := strings.Replace(string(b), "  listen: 127.0.0.1:0\n", "  listen: 127.0.0.1:0\n  token: ${file:"+tokenFile+"}\n", 1)
	// The server trusts local connections and the fake registry takes
	// any credentials: the passwords are there only to be hidden.
	cfg = strings.Replace(cfg, "postgres://postgres@", "postgres://postgres:"+dsnPW+"@", 1)
	cfg = strings.Replace(cfg, "url: http://", "url: http://liberator:"+regPW+"@", 1)
	require.NoError(t, os.WriteFile(e.cfgPath, []byte(cfg), 0o600))

	d := startDaemon(t, "run", e.cfgPath)
	addr := d.adminAddr()
	base := "http://" + addr
	require.Eventually(t, func() bool {
		code, _, err := get(base + "/readyz")
		return err == nil && code == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "/readyz never answered 200:\n%s", d.logTail())

	resp, err := http.Post(base+"/snapshot?table=public.items", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "POST /snapshot without the token")

	out, err := exec.CommandContext(ctx, binary, "snapshot", "--config", e.cfgPath, "--admin", addr, "--table", "public.items").CombinedOutput()
	require.NoError(t, err, "liberator snapshot --table: %s", out)
	require.Contains(t, string(out), "queued")

	code, body, err := get(base + "/status")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "liberator:xxxxx@")
	require.Equal(t, 0, d.stop(30*time.Second))

	logged, err := os.ReadFile(d.log)
	require.NoError(t, err)
	for _, secret := range []string{dsnPW, regPW, token} {
		require.NotContains(t, body, secret, "/status")
		require.NotContains(t, string(logged), secret, "the log")
		require.NotContains(t, string(out), secret, "liberator snapshot's output")
	}
}
