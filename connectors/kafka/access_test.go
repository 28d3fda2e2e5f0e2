package kafka

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const haGroup = "liberator-ha-shop"

// aclCluster starts a cluster with SASL and an authorizer: admin is a
// superuser, app has the ACLs given.
func aclCluster(t *testing.T, acls ...kfake.ACL) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser("PLAIN", "admin", "admin"), kfake.User("PLAIN", "app", "app", acls...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// openCheckSink opens a sink on c as SASL user (none when empty).
func openCheckSink(t *testing.T, c *kfake.Cluster, user string, brokers ...string) *Sink {
	t.Helper()
	if len(brokers) == 0 {
		brokers = c.ListenAddrs()
	}
	cfg := Config{Brokers: brokers, TopicPrefix: "shop"}
	if user != "" {
		cfg.SASL = SASLConfig{Mechanism: "PLAIN", Username: user, Password: user}
	}
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// createTopic creates topic with partitions on c, as admin when the
// cluster has SASL.
func createTopic(t *testing.T, c *kfake.Cluster, sasl bool, topic string, partitions int32) {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	if sasl {
		opts = append(opts, kgo.SASL(SASLConfig{Mechanism: "PLAIN", Username: "admin", Password: "admin"}.mechanism()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(context.Background(), partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
}

func allow(res kmsg.ACLResourceType, name string, pattern kmsg.ACLResourcePatternType, op kmsg.ACLOperation) kfake.ACL {
	return kfake.ACL{Resource: res, Name: name, Pattern: pattern, Operation: op, Allow: true}
}

// requireErr fails unless err is nil when want is empty, or an error that
// has every one of want.
func requireErr(t *testing.T, err error, want ...string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("want no error, got %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("want an error with %q, got none", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("the error does not say %q:\n%v", w, err)
		}
	}
}

func TestCheckCoordinationTopic(t *testing.T) {
	ctx := context.Background()
	t.Run("a missing topic that may be created passes", func(t *testing.T) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		requireErr(t, openCheckSink(t, c, "").CheckCoordinationTopic(ctx, "_liberator_ha"))
	})
	t.Run("an existing topic of one partition passes, one of two fails naming ha.topic", func(t *testing.T) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		createTopic(t, c, false, "one", 1)
		createTopic(t, c, false, "two", 2)
		s := openCheckSink(t, c, "")
		requireErr(t, s.CheckCoordinationTopic(ctx, "one"))
		requireErr(t, s.CheckCoordinationTopic(ctx, "two"), "ha.topic", `"two" has 2 partitions`, "must have one")
	})
	t.Run("a missing topic that the principal may not create fails with the grant to make", func(t *testing.T) {
		c := aclCluster(t, allow(kmsg.ACLResourceTypeTopic, "_liberator_ha", kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationDescribe))
		requireErr(t, openCheckSink(t, c, "app").CheckCoordinationTopic(ctx, "_liberator_ha"), "ha.topic", "may not create", "grant CREATE")
	})
	t.Run("an existing topic that the principal may describe but not read fails", func(t *testing.T) {
		c := aclCluster(t, allow(kmsg.ACLResourceTypeTopic, "_liberator_ha", kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationDescribe))
		createTopic(t, c, true, "_liberator_ha", 1)
		requireErr(t, openCheckSink(t, c, "app").CheckCoordinationTopic(ctx, "_liberator_ha"), "ha.topic", "may not read", "grant READ on topic _liberator_ha")
	})
	t.Run("an existing topic that the principal may read passes", func(t *testing.T) {
		c := aclCluster(t, allow(kmsg.ACLResourceTypeTopic, "_liberator_ha", kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationRead))
		createTopic(t, c, true, "_liberator_ha", 1)
		requireErr(t, openCheckSink(t, c, "app").CheckCoordinationTopic(ctx, "_liberator_ha"))
	})
}

func TestCheckGroup(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		acls []kfake.ACL
		want []string
	}{
		{
			name: "a principal with no right on the group may not describe it",
			want: []string{"may not describe consumer group", "grant READ on Group " + haGroup},
		},
		{
			name: "a principal that may only describe the group may not join it",
			acls: []kfake.ACL{allow(kmsg.ACLResourceTypeGroup, haGroup, kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationDescribe)},
			want: []string{"may not join consumer group", "DESCRIBE", "grant READ on Group " + haGroup},
		},
		{
			name: "READ on a prefix of the group is enough",
			acls: []kfake.ACL{allow(kmsg.ACLResourceTypeGroup, "liberator-ha-", kmsg.ACLResourcePatternTypePrefixed, kmsg.ACLOperationRead)},
		},
		{
			name: "ALL on the group is enough",
			acls: []kfake.ACL{allow(kmsg.ACLResourceTypeGroup, haGroup, kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationAll)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := aclCluster(t, tc.acls...)
			_, err := openCheckSink(t, c, "app").CheckGroup(ctx, haGroup)
			requireErr(t, err, tc.want...)
			if errors.Is(err, ErrNotChecked) {
				t.Fatalf("the broker reports the rights, yet the check says it was not made: %v", err)
			}
		})
	}
	t.Run("a superuser may", func(t *testing.T) {
		c := aclCluster(t)
		note, err := openCheckSink(t, c, "admin").CheckGroup(ctx, haGroup)
		requireErr(t, err)
		if !strings.Contains(note, "READ") {
			t.Fatalf("note %q does not say what the check was based on", note)
		}
	})
	t.Run("a principal that may list ACLs is shown the group's in a failure", func(t *testing.T) {
		// kfake's MATCH filter matches the literal name only; Kafka's
		// also matches prefixes and the wildcard.
		c := aclCluster(t, allow(kmsg.ACLResourceTypeCluster, "kafka-cluster", kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationDescribe),
			allow(kmsg.ACLResourceTypeGroup, haGroup, kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationDescribe))
		_, err := openCheckSink(t, c, "app").CheckGroup(ctx, haGroup)
		requireErr(t, err, "may not join", "the ACLs on it: ALLOW User:app DESCRIBE on GROUP "+haGroup+" (LITERAL) from *")
	})
	t.Run("a cluster without an authorizer is not checked, and says why", func(t *testing.T) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Apache Kafka without authorizer.class.name answers so.
		c.ControlKey(int16(kmsg.DescribeACLs), func(req kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			resp := req.(*kmsg.DescribeACLsRequest).ResponseKind().(*kmsg.DescribeACLsResponse)
			resp.ErrorCode = kerr.SecurityDisabled.Code
			return resp, nil, true
		})
		note, err := openCheckSink(t, c, "").CheckGroup(ctx, haGroup)
		requireErr(t, err)
		if !strings.Contains(note, "no authorizer") {
			t.Fatalf("note %q does not say Kafka has no authorizer", note)
		}
	})
	t.Run("a broker that does not report the principal's rights leaves the check undone", func(t *testing.T) {
		c := aclCluster(t, allow(kmsg.ACLResourceTypeGroup, haGroup, kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationRead))
		// A broker before Kafka 2.3 (KIP-430) omits them.
		c.ControlKey(int16(kmsg.DescribeGroups), func(req kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			resp := req.(*kmsg.DescribeGroupsRequest).ResponseKind().(*kmsg.DescribeGroupsResponse)
			for _, g := range req.(*kmsg.DescribeGroupsRequest).Groups {
				sg := kmsg.NewDescribeGroupsResponseGroup()
				sg.Group, sg.State, sg.AuthorizedOperations = g, "Dead", math.MinInt32
				resp.Groups = append(resp.Groups, sg)
			}
			return resp, nil, true
		})
		_, err := openCheckSink(t, c, "app").CheckGroup(ctx, haGroup)
		requireErr(t, err, "not checked", "does not report what the principal may do", "READ on Group "+haGroup)
		if !errors.Is(err, ErrNotChecked) {
			t.Fatalf("the error does not wrap ErrNotChecked: %v", err)
		}
	})
}

func TestCheckSameCluster(t *testing.T) {
	ctx := context.Background()
	newCluster := func(id string) *kfake.Cluster {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ClusterID(id))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	t.Run("one cluster holds the offsets topic and the event topics", func(t *testing.T) {
		c := newCluster("one")
		createTopic(t, c, false, "_liberator_offsets", 1)
		createTopic(t, c, false, "shop.public.items", 3)
		id, err := openCheckSink(t, c, "").CheckSameCluster(ctx, "shop.public.items", "shop.public.missing")
		requireErr(t, err)
		if id != "one" {
			t.Fatalf("cluster ID %q, want one", id)
		}
	})
	t.Run("seed brokers of two clusters fail naming kafka.brokers", func(t *testing.T) {
		a, b := newCluster("one"), newCluster("two")
		s := openCheckSink(t, a, "", a.ListenAddrs()[0], b.ListenAddrs()[0])
		_, err := s.CheckSameCluster(ctx, "shop.public.items")
		requireErr(t, err, "kafka.brokers", "2 clusters", `cluster "one"`, `cluster "two"`, "list the brokers of one cluster")
	})
	t.Run("a seed broker that does not answer while another does is not checked", func(t *testing.T) {
		c := newCluster("one")
		gone, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := gone.Addr().String()
		gone.Close()
		s := openCheckSink(t, c, "", c.ListenAddrs()[0], addr)
		qctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		id, err := s.CheckSameCluster(qctx)
		requireErr(t, err, "not checked", addr, `cluster "one"`)
		if !errors.Is(err, ErrNotChecked) || id != "one" {
			t.Fatalf("CheckSameCluster = %q, %v; want one and a warning", id, err)
		}
	})
}
