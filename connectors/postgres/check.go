package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/liberator-cdc/liberator/connectors"
)

var _ connectors.Checker = (*Source)(nil)

// Check connects and checks, without changing anything, what Open needs:
// wal_level, free replication slots and WAL senders, the REPLICATION
// privilege, SELECT on each table, a primary key and a usable replica
// identity per table, no partition captured beside its parent, the right
// to create or extend the publication, and that an existing publication
// publishes partitioned tables via their root.
func (s *Source) Check(ctx context.Context) []connectors.Check {
	pgcfg, err := pgx.ParseConfig(s.cfg.DSN)
	if err != nil {
		return []connectors.Check{{Name: "source.dsn parses", Err: err}}
	}
	conn, err := pgx.ConnectConfig(ctx, pgcfg)
	if err != nil {
		return []connectors.Check{{Name: "PostgreSQL is reachable", Err: fmt.Errorf("connect to postgres: %w (check source.dsn, the network, and pg_hba.conf)", err)}}
	}
	defer conn.Close(context.WithoutCancel(ctx))
	out := []connectors.Check{{Name: "PostgreSQL is reachable"}}
	add := func(name string, err error) { out = append(out, connectors.Check{Name: name, Err: err}) }
	out = append(out, checkVersion(ctx, conn))

	var walLevel string
	var maxSlots, usedSlots, maxSenders, usedSenders int
	var slotExists, canReplicate, super bool
	err = conn.QueryRow(ctx, `SELECT current_setting('wal_level'),
		current_setting('max_replication_slots')::int, (SELECT count(*) FROM pg_replication_slots)::int,
		current_setting('max_wal_senders')::int, (SELECT count(*) FROM pg_stat_replication)::int,
		EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1),
		r.rolreplication, r.rolsuper
		FROM pg_roles r WHERE r.rolname = current_user`, s.cfg.Slot).
		Scan(&walLevel, &maxSlots, &usedSlots, &maxSenders, &usedSenders, &slotExists, &canReplicate, &super)
	if err != nil {
		add("server settings are readable", err)
		return out
	}
	add("wal_level is logical", when(walLevel != "logical",
		"wal_level is %s: set wal_level = logical in postgresql.conf (ALTER SYSTEM SET wal_level = logical) and restart the server", walLevel))
	add("a replication slot is free", when(!slotExists && usedSlots >= maxSlots,
		"all %d replication slots are in use: raise max_replication_slots and restart, or drop an unused slot", maxSlots))
	add("a WAL sender is free", when(usedSenders >= maxSenders,
		"all %d WAL senders are in use: raise max_wal_senders and restart", maxSenders))
	add("the user may replicate", when(!canReplicate && !super,
		"the user has no REPLICATION attribute: ALTER ROLE %s WITH REPLICATION", pgx.Identifier{pgcfg.User}.Sanitize()))

	ownsAll := true
	var partitioned []partitionInfo
	for _, t := range s.cfg.Tables {
		tn, _ := parseTableName(t)
		ident := pgx.Identifier{tn.schema, tn.name}.Sanitize()
		_, key, identity, err := newCatalog(conn).withKeys(s.cfg.KeyColumns).describe(ctx, tn)
		if err != nil {
			add("table "+tn.String()+" exists and has a primary key", err)
			continue
		}
		info, err := readPartitionInfo(ctx, conn, tn)
		if err != nil {
			add("the partitions of "+tn.String()+" are readable", err)
			continue
		}
		if info.partitioned {
			partitioned = append(partitioned, info)
		}
		if len(info.ancestors) > 0 {
			add(tn.String()+" is not a partition of a captured table", capturedTwiceProblem(info, s.want))
		}
		var canSelect, owns bool
		if err := conn.QueryRow(ctx, `SELECT has_table_privilege($1, 'SELECT'), pg_has_role(c.relowner, 'USAGE')
			FROM pg_class c WHERE c.oid = $1::regclass`, ident).Scan(&canSelect, &owns); err != nil {
			add("table "+tn.String()+" is readable", err)
			continue
		}
		ownsAll = ownsAll && owns
		add("the user may read "+tn.String(), when(!canSelect, "no SELECT on %s: GRANT SELECT ON %s TO %s", tn, ident, pgx.Identifier{pgcfg.User}.Sanitize()))
		var identErr error
		switch identity {
		case 'n':
			identErr = fmt.Errorf("%s has REPLICA IDENTITY NOTHING, so its updates and deletes cannot be published: ALTER TABLE %s REPLICA IDENTITY DEFAULT", tn, ident)
		case 'i':
			if len(key) > 0 {
				identErr = fmt.Errorf("%s has REPLICA IDENTITY USING INDEX, so a key change is not seen as one: ALTER TABLE %s REPLICA IDENTITY DEFAULT (or FULL)", tn, ident)
			}
		}
		add("the replica identity of "+tn.String()+" carries its key", identErr)
	}

	var pubOwned, viaRoot bool
	err = conn.QueryRow(ctx, `SELECT pg_has_role(pubowner, 'USAGE'), pubviaroot FROM pg_publication WHERE pubname = $1`, s.cfg.Publication).Scan(&pubOwned, &viaRoot)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		add("the publication can be created", when(!ownsAll && !super,
			"publication %q does not exist and the user does not own every table, so it cannot create it: CREATE PUBLICATION %s FOR TABLE ... as the tables' owner", s.cfg.Publication, s.cfg.Publication))
	case err != nil:
		add("the publication is readable", err)
	default:
		add("the user owns the publication", when(!pubOwned && !super,
			"publication %q belongs to another role, so missing tables cannot be added to it: ALTER PUBLICATION %s OWNER TO %s", s.cfg.Publication, s.cfg.Publication, pgx.Identifier{pgcfg.User}.Sanitize()))
		for _, p := range partitioned {
			add("the publication publishes "+p.table.String()+" under its own name", viaRootProblem(s.cfg.Publication, viaRoot, p))
		}
	}

	if slotExists && s.cfg.RetainedWALLimit > 0 {
		var retained int64
		if err := conn.QueryRow(ctx, `SELECT coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint FROM pg_replication_slots WHERE slot_name = $1`, s.cfg.Slot).Scan(&retained); err == nil {
			add("the slot retains less WAL than retained_wal_limit", when(retained > int64(s.cfg.RetainedWALLimit),
				"slot %q retains %s, over source.postgres.retained_wal_limit %s", s.cfg.Slot, ByteSize(retained), s.cfg.RetainedWALLimit))
		}
	}
	return out
}

// when returns an error with the message when bad is true.
func when(bad bool, format string, args ...any) error {
	if !bad {
		return nil
	}
	return fmt.Errorf(format, args...)
}
