package mysql

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/liberator-cdc/liberator/connectors"
)

var _ connectors.Checker = (*Source)(nil)

// minRetentionSeconds is the shortest binlog retention that check accepts:
// liberator cannot resume after a stop longer than the retention.
const minRetentionSeconds = 24 * 3600

// Check connects and checks, without changing anything, what Open needs:
// log_bin, binlog_format, binlog_row_image, binlog_row_metadata, gtid_mode
// (reported), the REPLICATION SLAVE and REPLICATION CLIENT (MariaDB: BINLOG
// MONITOR) privileges, binlog retention, and each table.
func (s *Source) Check(ctx context.Context) []connectors.Check {
	conn, err := connect(ctx, s.dsn)
	if err != nil {
		return []connectors.Check{{Name: "the server is reachable", Err: fmt.Errorf("connect to %s: %w (check source.dsn and the network)", s.cfg.Flavor, err)}}
	}
	defer conn.Close()
	out := []connectors.Check{{Name: "the server is reachable"}}
	add := func(name string, err error) { out = append(out, connectors.Check{Name: name, Err: err}) }

	vars, err := readVariables(ctx, conn)
	if err != nil {
		add("server variables are readable", err)
		return out
	}
	_, verr := checkVariables(s.cfg.Flavor, s.cfg.ServerID, vars)
	add("log_bin, binlog_format, binlog_row_image and binlog_row_metadata serve row-based capture", verr)
	if s.cfg.Flavor == FlavorMySQL {
		add("gtid_mode is "+orNone(vars["gtid_mode"])+" (positions use GTIDs only when it is ON)", nil)
	}

	rows, err := run(ctx, conn, "SHOW GRANTS FOR CURRENT_USER()")
	if err != nil {
		add("the user's grants are readable", err)
	} else {
		var grants []string
		for _, r := range rows {
			if len(r) > 0 {
				grants = append(grants, strings.ToUpper(r[0]))
			}
		}
		add("the user has REPLICATION SLAVE", missingGrant(grants, "REPLICATION SLAVE", "REPLICATION REPLICA"))
		client := []string{"REPLICATION CLIENT"}
		if s.cfg.Flavor == FlavorMariaDB {
			client = append(client, "BINLOG MONITOR", "SLAVE MONITOR")
		}
		add("the user has "+client[0], missingGrant(grants, client...))
	}

	add("binary logs are kept for at least a day", checkRetention(ctx, conn))

	for _, t := range s.cfg.Tables {
		tn, _ := parseTableName(t)
		ts, err := s.readKeyedTable(ctx, conn, tn)
		if err == nil {
			_, _, err = ts.describe()
		}
		add("table "+t+" exists, is readable and has a primary key", err)
	}
	return out
}

// missingGrant reports an error unless one of the grant lines has one of the
// privileges, or ALL PRIVILEGES ON *.*.
func missingGrant(grants []string, privs ...string) error {
	for _, g := range grants {
		if strings.Contains(g, "ALL PRIVILEGES ON *.*") {
			return nil
		}
		for _, p := range privs {
			if strings.Contains(g, p) {
				return nil
			}
		}
	}
	return fmt.Errorf("the user lacks %s: GRANT %s ON *.* TO the liberator user", privs[0], privs[0])
}

func checkRetention(ctx context.Context, conn *client.Conn) error {
	rows, err := run(ctx, conn, "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('binlog_expire_logs_seconds', 'expire_logs_days')")
	if err != nil {
		return err
	}
	secs := -1.0
	for _, r := range rows {
		if len(r) != 2 {
			continue
		}
		v, err := strconv.ParseFloat(r[1], 64)
		if err != nil || v == 0 {
			continue
		}
		if strings.EqualFold(r[0], "expire_logs_days") {
			v *= 86400
		}
		if secs < 0 || v < secs {
			secs = v
		}
	}
	if secs >= 0 && secs < minRetentionSeconds {
		return fmt.Errorf("binary logs expire after %.0f s: liberator cannot resume after a longer stop; keep them a day or more (binlog_expire_logs_seconds)", secs)
	}
	return nil
}
