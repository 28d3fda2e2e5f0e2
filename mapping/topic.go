package mapping

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode/utf8"

	"github.com/liberator-cdc/liberator/connectors"
)

// maxTopicLength is Kafka's longest topic name.
const maxTopicLength = 249

// hashLength is the number of hex digits of a topic's hash suffix.
const hashLength = 8

// defaultTopic is the topic of the table id under prefix, before
// collisions are resolved: <prefix>.<schema>.<table>, where every
// character of the schema and of the table's name outside a-z, A-Z, 0-9,
// _ and - becomes one _ (each Unicode code point, and each byte that is not
// valid UTF-8). The dot is replaced too: it separates the prefix, the
// schema and the table. changed reports whether any character was
// replaced. A name longer than Kafka's 249 characters is cut to 240 and
// given the table's hash suffix (hashSuffix), and counts as changed.
func defaultTopic(prefix, id string) (topic string, changed bool) {
	schema, name, err := connectors.ParseTableName(id, "", false)
	if err != nil {
		// An ID of one part, or none: the whole is the table's name.
		schema, name = "", id
	}
	var b strings.Builder
	b.WriteString(prefix)
	for _, part := range []string{schema, name} {
		if part == "" {
			continue
		}
		b.WriteByte('.')
		for i := 0; i < len(part); {
			c := part[i]
			if validTopicByte(c) {
				b.WriteByte(c)
				i++
				continue
			}
			_, size := utf8.DecodeRuneInString(part[i:])
			b.WriteByte('_')
			changed = true
			i += size
		}
	}
	topic = b.String()
	if len(topic) > maxTopicLength {
		return withSuffix(topic, id), true
	}
	return topic, changed
}

// withSuffix is topic with the hash suffix of the table id, cut first
// where the whole would be longer than Kafka allows.
func withSuffix(topic, id string) string {
	suffix := hashSuffix(id)
	if strings.HasSuffix(topic, suffix) {
		return topic
	}
	return topic[:min(len(topic), maxTopicLength-len(suffix))] + suffix
}

// hashSuffix is the suffix that keeps apart tables whose sanitized topic
// names collide: _ and the first 8 hex digits of the SHA-256 of the
// table's ID ("schema.table", connectors.TableID). It depends on nothing
// else, so it is the same at every start.
func hashSuffix(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "_" + hex.EncodeToString(sum[:])[:hashLength]
}

func validTopicByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// nameTopics names the topic of every captured table: its entry's topic
// when set, else its default topic (defaultTopic). A default topic whose
// name had to be changed, and that another captured table's topic takes as
// well, gets the table's hash suffix (hashSuffix); a table whose name
// needed no change keeps its plain topic.
func (m *Mapping) nameTopics(captured []string) {
	m.topics = map[string]string{}
	changed := map[string]bool{}
	users := map[string][]string{} // topic -> the tables that would take it
	for _, id := range captured {
		if _, ok := m.topics[id]; ok {
			continue
		}
		topic := ""
		if e := m.byID[id]; e != nil && e.Topic != "" {
			topic = e.Topic
		} else {
			topic, changed[id] = defaultTopic(m.prefix, id)
		}
		m.topics[id] = topic
		users[topic] = append(users[topic], id)
	}
	for id, topic := range m.topics {
		if changed[id] && len(users[topic]) > 1 {
			m.topics[id] = withSuffix(topic, id)
		}
	}
}
