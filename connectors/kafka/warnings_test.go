package kafka

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestWarningsPassOnEachWarningOnceAPeriodAndNothingBelow(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(newWarnings(slog.NewTextHandler(&buf, nil))).With("component", "kafka")
	for range 100 {
		log.Warn("unable to open connection to broker")
	}
	log.Info("producing to a new topic for the first time")
	log.Error("another failure")
	out := buf.String()
	if n := strings.Count(out, "unable to open connection"); n != 1 {
		t.Errorf("a repeated warning was logged %d times, want once:\n%s", n, out)
	}
	if strings.Contains(out, "level=INFO") {
		t.Errorf("an info line was logged:\n%s", out)
	}
	if !strings.Contains(out, "another failure") || !strings.Contains(out, "component=kafka") {
		t.Errorf("a new error or the attributes are missing:\n%s", out)
	}
}
