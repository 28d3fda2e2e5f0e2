package mysql

import (
	"errors"
	"fmt"

	"github.com/liberator-cdc/liberator/connectors"
)

// startKind is where Open starts.
type startKind int

const (
	// startSnapshot takes the initial snapshot, then streams from where
	// it was taken.
	startSnapshot startKind = iota
	// startResume streams from the stored position, continuing the
	// snapshot it records.
	startResume
	// startAtEnd streams from the end of the binary log: snapshot mode
	// never, with nothing stored.
	startAtEnd
	// startReset streams from the end of the binary log and re-snapshots
	// every table with reconcile: the stored position is a reset.
	startReset
)

// decideStart chooses where Open starts, from the stored position (nil
// when none is stored), the source's flavor, the snapshot mode and whether
// the server has GTIDs. It does no I/O.
func decideStart(from *Position, flavor string, mode connectors.SnapshotMode, gtid bool) (startKind, error) {
	switch {
	case from != nil && from.Flavor != flavor:
		return 0, fmt.Errorf("resume position %s is from a %s server, but source.kind is %s", from, from.Flavor, flavor)
	case from != nil && from.Reset:
		if mode == connectors.SnapshotOnly {
			return 0, errors.New("the stored position is a reset, which re-snapshots while streaming; liberator snapshot does not stream: run the daemon (liberator run)")
		}
		return startReset, nil
	case from != nil:
		if from.File == "" && !gtid {
			return 0, fmt.Errorf("resume position %s has no file and offset, and the server's gtid_mode is not ON", from)
		}
		return startResume, nil
	case mode == connectors.SnapshotNever:
		return startAtEnd, nil
	}
	return startSnapshot, nil
}
