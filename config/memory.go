package config

import (
	"fmt"
	"strconv"

	"github.com/dustin/go-humanize"

	"github.com/liberator-cdc/liberator/connectors"
)

// ByteSize is a size in bytes. In YAML it is a number of bytes or a number
// with a unit: 256MB and 1GB are powers of 1000, 256MiB and 1GiB powers of
// 1024 (go-humanize's ParseBytes).
type ByteSize int64

// UnmarshalText implements encoding.TextUnmarshaler, for YAML.
func (b *ByteSize) UnmarshalText(text []byte) error {
	n, err := humanize.ParseBytes(string(text))
	if err != nil || n > 1<<62 {
		return fmt.Errorf("%q is not a size (use a number of bytes, or one with a unit such as 256MB or 1GiB)", text)
	}
	*b = ByteSize(n)
	return nil
}

// String prints the size as written in the config: in MB or GB when it is
// a whole number of them, else in bytes.
func (b ByteSize) String() string {
	switch n := uint64(b); {
	case n >= humanize.GByte && n%humanize.GByte == 0:
		return strconv.FormatUint(n/humanize.GByte, 10) + "GB"
	case n >= humanize.GiByte && n%humanize.GiByte == 0:
		return strconv.FormatUint(n/humanize.GiByte, 10) + "GiB"
	case n >= humanize.MByte && n%humanize.MByte == 0:
		return strconv.FormatUint(n/humanize.MByte, 10) + "MB"
	case n >= humanize.MiByte && n%humanize.MiByte == 0:
		return strconv.FormatUint(n/humanize.MiByte, 10) + "MiB"
	}
	return humanize.Bytes(uint64(b))
}

// Bounds of memory_limit.
const (
	// DefaultMemoryLimit is memory_limit when the config leaves it out.
	DefaultMemoryLimit ByteSize = 256 * humanize.MByte
	// MinMemoryLimit keeps every share of the limit large enough to work.
	MinMemoryLimit ByteSize = 32 * humanize.MByte
)

// Memory is how memory_limit is shared out among the buffers between the
// source and Kafka. The shares add up to about 9/16 of the limit; the rest
// is left for the Go runtime's garbage, the database drivers' and the
// Kafka client's own buffers, and the schemas.
type Memory struct {
	// Limit is memory_limit. It is also the Go runtime's soft memory limit
	// (debug.SetMemoryLimit), unless GOMEMLIMIT is set.
	Limit int64
	// Source is a quarter: the source's decoded changes, in the batches
	// it fills and queues for the pipeline, the batch the pipeline
	// encodes, and what it reads ahead (snapshot rows from the chunk
	// readers, binary log events).
	Source connectors.Memory
	// Producer is a quarter: records the Kafka producer buffers until
	// Kafka acknowledges them (kgo.MaxBufferedBytes). It must hold
	// several of the largest records (kafka.Config.MinBufferedBytes).
	Producer int64
	// Arena is a sixteenth: the pipeline's encoding buffer for the batch
	// at hand. Once produced, its records count against Producer.
	Arena int64
}

// Memory returns the shares of memory_limit.
func (c *Config) Memory() Memory {
	l := int64(c.MemoryLimit)
	return Memory{Limit: l, Source: connectors.Memory(l / 4), Producer: l / 4, Arena: l / 16}
}

// validateMemory checks memory_limit against its minimum and against the
// largest record the producer must buffer.
func (c *Config) validateMemory() error {
	if c.MemoryLimit < MinMemoryLimit {
		return fmt.Errorf("memory_limit: %s is below the minimum of %s (use at least %s; the default is %s)", c.MemoryLimit, MinMemoryLimit, MinMemoryLimit, DefaultMemoryLimit)
	}
	m := c.Memory()
	if need := c.Kafka.MinBufferedBytes(); m.Producer < need {
		return fmt.Errorf("memory_limit: %s leaves the Kafka producer %s, less than the %s it needs to buffer four of the largest records (kafka.max_message_bytes %d); raise memory_limit to at least %s, or lower kafka.max_message_bytes",
			c.MemoryLimit, ByteSize(m.Producer), ByteSize(need), c.Kafka.MaxMessageBytes, ByteSize(4*need))
	}
	return nil
}
