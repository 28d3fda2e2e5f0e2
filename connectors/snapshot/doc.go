// Package snapshot is the snapshot bookkeeping that every source connector
// shares, whatever its database: which tables are captured and how far
// their snapshot has got (State, recorded in each position), the progress
// reported to operators (Tracker), the key-range chunks of an initial
// snapshot read in parallel and in any order (Frontier), and the
// watermark windows of incremental snapshots read while streaming
// (Manager, Window).
//
// A connector brings only what speaks its database's protocol: the
// queries that read a chunk or find where one ends, the watermarks it
// writes into its log, and a key's text form. Keys travel between the two
// as []string, one value per key column in the source's own text form.
package snapshot
