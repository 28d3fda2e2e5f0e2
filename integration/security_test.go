package integration

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/liberator-cdc/liberator/internal/harness"
)

// testCA writes a CA and a server certificate for 127.0.0.1 into dir and
// returns the CA file and the server's TLS config.
func testCA(t *testing.T, dir string) (caFile string, server *tls.Config) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "liberator test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	caFile = filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600))
	return caFile, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
}

// TestIntegrationKafkaTLSAndSCRAM streams to a broker that requires TLS and
// SCRAM-SHA-256, reads the events back with liberator tail over the same
// settings, and refuses a wrong password at start.
func TestIntegrationKafkaTLSAndSCRAM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	caFile, serverTLS := testCA(t, dir)
	k := harness.Kafka(t, harness.KafkaClusterOptions(kfake.TLS(serverTLS), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "liberator", "s3cret")))
	reg := harness.Registry(t)
	pg := harness.Postgres(t)
	require.NoError(t, pg.Exec(ctx, "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one'), (2, 'two')"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pw"), []byte("s3cret\n"), 0o600))
	config := func(password string) string {
		return fmt.Sprintf(`
source:
  kind: postgres
  dsn: %s
  tables: [public.t]
kafka:
  brokers: [%s]
  topic_prefix: sec
  tls:
    ca_file: %s
  sasl:
    mechanism: SCRAM-SHA-256
    username: liberator
    password: %s
registry:
  url: %s
http:
  listen: 127.0.0.1:0
`, pg.DSN, k.Brokers[0], caFile, password, reg.URL)
	}

	bad := startDaemon(t, "run", writeConfig(t, config("wrong-password")))
	require.Equal(t, 1, bad.wait(60*time.Second), "a wrong password must fail at start")
	require.False(t, bad.logContains("wrong-password"), "the password reached the log:\n%s", bad.logTail())

	cfg := writeConfig(t, config("${file:"+filepath.Join(dir, "pw")+"}"))
	d := startDaemon(t, "run", cfg)
	conn, err := pgx.Connect(ctx, pg.DSN)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "UPDATE t SET v = 'uno' WHERE id = 1")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var out bytes.Buffer
		cmd := exec.Command(binary, "tail", "--config", cfg, "sec.public.t")
		cmd.Stdout = &out
		return cmd.Run() == nil && strings.Contains(out.String(), `"v":"uno"`) && strings.Contains(out.String(), `"v":"two"`)
	}, 60*time.Second, 100*time.Millisecond, "the events never appeared over TLS and SCRAM")
	require.Equal(t, 0, d.stop(30*time.Second))
}
