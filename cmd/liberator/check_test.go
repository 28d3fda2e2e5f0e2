package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/liberator-cdc/liberator/config"
	"github.com/liberator-cdc/liberator/connectors/kafka"
)

// standbyConfig is a config of ha.mode standby and delivery exactly_once
// on brokers, as SASL user (none when empty).
func standbyConfig(brokers []string, user string) *config.Config {
	cfg := &config.Config{
		Name:     "orders",
		Source:   config.SourceConfig{Kind: "postgres", Tables: []string{"public.items"}},
		Kafka:    kafka.Config{Brokers: brokers, TopicPrefix: "shop"},
		Delivery: config.DeliveryExactlyOnce,
		HA:       config.HAConfig{Mode: config.HAStandby},
	}
	if user != "" {
		cfg.Kafka.SASL = kafka.SASLConfig{Mechanism: "PLAIN", Username: user, Password: user}
	}
	cfg.Defaults()
	return cfg
}

// kafkaChecks runs the Kafka checks of cfg and returns what check prints.
func kafkaChecks(t *testing.T, cfg *config.Config) string {
	t.Helper()
	var out bytes.Buffer
	printChecks(&out, checkKafka(context.Background(), cfg, slog.New(slog.DiscardHandler)))
	return out.String()
}

func requireLines(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("check does not print %q:\n%s", w, out)
		}
	}
}

func TestCheckUnderStandbyAndExactlyOnce(t *testing.T) {
	t.Run("a cluster that allows everything passes every check", func(t *testing.T) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		requireLines(t, kafkaChecks(t, standbyConfig(c.ListenAddrs(), "")),
			"ok    the coordination topic _liberator_ha (ha.topic) has one partition or can be created\n",
			"ok    the principal may use consumer group liberator-ha-orders (ha.mode: standby): the broker reports READ for this principal\n",
			"ok    the principal may use transactions (delivery: exactly_once)\n",
			"ok    the offsets topic and the event topics are on the same cluster (cluster ID kfake)\n")
	})
	t.Run("a coordination topic of two partitions fails, naming ha.topic", func(t *testing.T) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 2, 1, nil, "_liberator_ha"); err != nil {
			t.Fatal(err)
		}
		requireLines(t, kafkaChecks(t, standbyConfig(c.ListenAddrs(), "")),
			"FAIL  the coordination topic _liberator_ha (ha.topic) has one partition or can be created\n      ha.topic: coordination topic \"_liberator_ha\" has 2 partitions")
	})
	t.Run("a principal without rights on the group fails with the grant to make", func(t *testing.T) {
		all := func(res kmsg.ACLResourceType, name string) kfake.ACL {
			return kfake.ACL{Resource: res, Name: name, Pattern: kmsg.ACLResourcePatternTypePrefixed, Operation: kmsg.ACLOperationAll, Allow: true}
		}
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.EnableACLs(),
			kfake.Superuser("PLAIN", "admin", "admin"),
			kfake.User("PLAIN", "app", "app", all(kmsg.ACLResourceTypeTopic, "_liberator"), all(kmsg.ACLResourceTypeTopic, "shop."),
				all(kmsg.ACLResourceTypeTransactionalId, "liberator-orders"),
				kfake.ACL{Resource: kmsg.ACLResourceTypeCluster, Name: "kafka-cluster", Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationIdempotentWrite, Allow: true},
				kfake.ACL{Resource: kmsg.ACLResourceTypeCluster, Name: "kafka-cluster", Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationCreate, Allow: true}))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		requireLines(t, kafkaChecks(t, standbyConfig(c.ListenAddrs(), "app")),
			"ok    the coordination topic _liberator_ha (ha.topic) has one partition or can be created\n",
			"FAIL  the principal may use consumer group liberator-ha-orders (ha.mode: standby)\n      the principal may not describe consumer group \"liberator-ha-orders\"",
			"grant READ on Group liberator-ha-orders",
			"ok    the principal may use transactions (delivery: exactly_once)\n",
			"ok    the offsets topic and the event topics are on the same cluster (cluster ID kfake)\n")
	})
}
