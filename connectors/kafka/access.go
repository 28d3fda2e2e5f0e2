package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The checks of `liberator check` that ask Kafka what the principal may
// do: the coordination topic and consumer group of ha.mode standby, and
// the single cluster that exactly_once's transactions need.

// ErrNotChecked is wrapped by the error of a check that Kafka gave no way
// to make (a broker that does not report a principal's rights, or a
// cluster ID). Such a check is a warning, not a failure.
var ErrNotChecked = errors.New("not checked")

// CheckCoordinationTopic checks ha.topic, the coordination topic of
// ha.mode standby: it exists with one partition that the principal may
// read, or the principal may create it.
func (s *Sink) CheckCoordinationTopic(ctx context.Context, topic string) error {
	md, err := s.adm.Metadata(kadm.WithAuthorizedOps(ctx), topic)
	if err != nil {
		return fmt.Errorf("ha.topic: describe coordination topic %q: %w", topic, err)
	}
	td, ok := md.Topics[topic]
	switch {
	case !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition):
		resp, err := s.adm.ValidateCreateTopics(ctx, 1, s.cfg.ReplicationFactor, nil, topic)
		if err != nil {
			return fmt.Errorf("ha.topic: validate creating coordination topic %q: %w", topic, err)
		}
		r, err := resp.On(topic, nil)
		if err == nil {
			err = r.Err
		}
		if err != nil {
			return fmt.Errorf("ha.topic: coordination topic %q does not exist, and the principal may not create it: %w %s (grant CREATE on the cluster or on topic %s, or create it with one partition)", topic, err, r.ErrMessage, topic)
		}
		return nil
	case errors.Is(td.Err, kerr.TopicAuthorizationFailed):
		return fmt.Errorf("ha.topic: the principal may not describe coordination topic %q: %w (grant DESCRIBE and READ on topic %s)", topic, td.Err, topic)
	case td.Err != nil:
		return fmt.Errorf("ha.topic: describe coordination topic %q: %w", topic, td.Err)
	}
	if n := len(td.Partitions); n != 1 {
		return fmt.Errorf("ha.topic: coordination topic %q has %d partitions, and must have one (the replica given partition 0 is active): delete it, and liberator creates it again, or set ha.topic to a new topic", topic, n)
	}
	if ops := td.AuthorizedOperations; len(ops) > 0 && !allows(ops, kmsg.ACLOperationRead) {
		return fmt.Errorf("ha.topic: the principal may not read coordination topic %q, which every replica subscribes to: grant READ on topic %s", topic, topic)
	}
	return nil
}

// CheckGroup checks that the principal may use consumer group group (ha
// mode standby joins it): it may describe it and join it, which takes
// READ on the group. The group need not exist. On a cluster without an
// authorizer any principal may; where the broker does not report what the
// principal may do on the group (KIP-430), the error wraps ErrNotChecked.
// note says what the check was based on.
func (s *Sink) CheckGroup(ctx context.Context, group string) (note string, err error) {
	acls, authorizer, aclErr := s.describeACLs(ctx, kadm.NewACLs().Groups(group))
	if !authorizer {
		return "Kafka has no authorizer, so any principal may", nil
	}
	dgs, err := s.adm.DescribeGroups(ctx, group)
	if err != nil && !errors.Is(err, kerr.GroupAuthorizationFailed) {
		return "", fmt.Errorf("describe consumer group %q: %w", group, err)
	}
	dg, ok := dgs[group]
	if err == nil && ok {
		err = dg.Err
	}
	grant := fmt.Sprintf("grant READ on Group %s (the group of ha.mode standby; READ implies DESCRIBE)", group)
	switch {
	case errors.Is(err, kerr.GroupAuthorizationFailed):
		// Named alone: kadm wraps it in a list of shard errors.
		return "", fmt.Errorf("the principal may not describe consumer group %q: %w: %s%s", group, kerr.GroupAuthorizationFailed, grant, aclsOn(acls))
	case err != nil && !errors.Is(err, kerr.GroupIDNotFound):
		return "", fmt.Errorf("describe consumer group %q: %w", group, err)
	case len(dg.AuthorizedOperations) == 0:
		why := "the broker does not report what the principal may do on it (KIP-430, Kafka 2.3)"
		if aclErr != nil {
			why += ", and the ACLs cannot be listed: " + aclErr.Error()
		}
		return "", fmt.Errorf("%w: consumer group %q: %s; make sure the principal has READ on Group %s%s", ErrNotChecked, group, why, group, aclsOn(acls))
	case !allows(dg.AuthorizedOperations, kmsg.ACLOperationRead):
		return "", fmt.Errorf("the principal may not join consumer group %q (its rights on it: %s): %s%s", group, opNames(dg.AuthorizedOperations), grant, aclsOn(acls))
	}
	return "the broker reports READ for this principal", nil
}

// CheckSameCluster checks that the seed brokers of kafka.brokers are all
// of one cluster, and that the partitions of the offsets topic and of the
// given event topics that exist are led by its brokers: one transaction
// (delivery: exactly_once) then spans the events and their position. It
// returns the cluster's ID. A cluster that reports no ID (Kafka before
// 0.10.1), and a seed broker that does not answer while others do, are
// not checked: the error wraps ErrNotChecked.
func (s *Sink) CheckSameCluster(ctx context.Context, topics ...string) (string, error) {
	bySeed := map[string][]string{} // cluster ID -> seed brokers
	var silent []string             // seed brokers that did not answer
	for i, b := range s.cl.SeedBrokers() {
		req := kmsg.NewPtrMetadataRequest()
		req.Topics = []kmsg.MetadataRequestTopic{} // no topic, not all of them
		resp, err := b.Request(ctx, req)
		seed := fmt.Sprint(i)
		if i < len(s.cfg.Brokers) {
			seed = s.cfg.Brokers[i]
		}
		if err != nil {
			silent = append(silent, fmt.Sprintf("%s (%v)", seed, err))
			continue
		}
		id := ""
		if p := resp.(*kmsg.MetadataResponse).ClusterID; p != nil {
			id = *p
		}
		bySeed[id] = append(bySeed[id], seed)
	}
	if len(bySeed) == 0 {
		return "", fmt.Errorf("kafka.brokers: no seed broker told its cluster ID: %s", strings.Join(silent, "; "))
	}
	if len(bySeed) > 1 {
		var parts []string
		for id, seeds := range bySeed {
			parts = append(parts, fmt.Sprintf("%s in cluster %q", strings.Join(seeds, ", "), id))
		}
		sort.Strings(parts)
		return "", fmt.Errorf("kafka.brokers: the seed brokers belong to %d clusters (%s); a transaction spans one cluster, which must hold the offsets topic and every event topic: list the brokers of one cluster only", len(bySeed), strings.Join(parts, "; "))
	}
	md, err := s.adm.Metadata(ctx, append([]string{s.cfg.OffsetsTopic}, topics...)...)
	if err != nil {
		return "", fmt.Errorf("describe the offsets topic and the event topics: %w", err)
	}
	if _, ok := bySeed[md.Cluster]; !ok {
		return "", fmt.Errorf("kafka.brokers: the seed brokers are of cluster %q, but the cluster's metadata names %q: list the brokers of one cluster only", keys(bySeed)[0], md.Cluster)
	}
	if md.Cluster == "" {
		return "", fmt.Errorf("%w: the brokers report no cluster ID (Kafka before 0.10.1); make sure kafka.brokers lists the brokers of one cluster", ErrNotChecked)
	}
	brokers := map[int32]bool{}
	for _, b := range md.Brokers {
		brokers[b.NodeID] = true
	}
	for _, topic := range md.Topics.Names() {
		td := md.Topics[topic]
		if td.Err != nil {
			// Not created yet: liberator creates it on this cluster.
			continue
		}
		for _, p := range td.Partitions.Sorted() {
			if p.Leader >= 0 && !brokers[p.Leader] {
				key := "kafka.topic_prefix, mapping.<table>.topic"
				if topic == s.cfg.OffsetsTopic {
					key = "kafka.offsets_topic"
				}
				return "", fmt.Errorf("%s: partition %d of topic %q is led by broker %d, which is not a broker of cluster %q: point %s at a topic of that cluster", key, p.Partition, topic, p.Leader, md.Cluster, key)
			}
		}
	}
	if len(silent) > 0 {
		return md.Cluster, fmt.Errorf("%w for seed brokers that did not answer: %s; make sure each is a broker of cluster %q", ErrNotChecked, strings.Join(silent, "; "), md.Cluster)
	}
	return md.Cluster, nil
}

// describeACLs lists the ACLs that match b's resources, of any principal,
// host, operation and permission. authorizer is false only when Kafka
// says it has no authorizer (SECURITY_DISABLED); err is why the ACLs
// could not be listed (the principal may lack DESCRIBE on the cluster).
func (s *Sink) describeACLs(ctx context.Context, b *kadm.ACLBuilder) (acls kadm.DescribedACLs, authorizer bool, err error) {
	b = b.ResourcePatternType(kadm.ACLPatternMatch).Allow().AllowHosts().Deny().DenyHosts().Operations()
	res, err := s.adm.DescribeACLs(ctx, b)
	if err == nil {
		for _, r := range res {
			if r.Err != nil && err == nil {
				err = r.Err
			}
			acls = append(acls, r.Described...)
		}
	}
	if errors.Is(err, kerr.SecurityDisabled) {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, fmt.Errorf("describe ACLs: %w", err)
	}
	return acls, true, nil
}

// aclsOn lists acls for an error message.
func aclsOn(acls kadm.DescribedACLs) string {
	if len(acls) == 0 {
		return ""
	}
	var lines []string
	for _, a := range acls {
		lines = append(lines, fmt.Sprintf("%s %s %s on %s %s (%s) from %s",
			strings.ToUpper(a.Permission.String()), a.Principal, a.Operation, a.Type, a.Name, a.Pattern, a.Host))
	}
	slices.Sort(lines)
	lines = slices.Compact(lines)
	return "; the ACLs on it: " + strings.Join(lines, "; ")
}

// allows reports whether ops grant op (ALL grants everything).
func allows(ops []kadm.ACLOperation, op kmsg.ACLOperation) bool {
	return slices.Contains(ops, op) || slices.Contains(ops, kmsg.ACLOperationAll)
}

func opNames(ops []kadm.ACLOperation) string {
	var names []string
	for _, o := range ops {
		names = append(names, o.String())
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func keys(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
