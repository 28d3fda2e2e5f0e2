package postgres

import (
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/liberator-cdc/liberator/connectors"
)

func TestASlotActiveForAnotherProcessIsSourceBusyAndNotRetried(t *testing.T) {
	refusal := &pgconn.PgError{Code: sqlstateObjectInUse, Message: `replication slot "liberator" is active for PID 4711`}
	err := error(&SlotActiveError{Slot: "liberator", PID: 4711, Waited: time.Minute, Err: refusal})
	if !errors.Is(err, connectors.ErrSourceBusy) {
		t.Errorf("errors.Is(%v, connectors.ErrSourceBusy) = false", err)
	}
	if !errors.Is(err, refusal) {
		t.Errorf("%v does not wrap the server's refusal", err)
	}
	if connectors.IsRetryable(err) {
		t.Errorf("IsRetryable(%v) = true: two pipelines on one slot would take it from each other for ever", err)
	}
}
