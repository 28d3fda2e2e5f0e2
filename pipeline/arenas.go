package pipeline

import "sync"

// arenaPool keeps the arenas of batches that Kafka is done with, for later
// batches to encode into. An arena holds the keys and values of its
// batch's records until each record's promise has run: franz-go lets go of
// a record then, and the promise lets go of its key and value. A batch's
// arenas come back only once every record of the batch has had its
// outcome (inflight.release), so that nothing in flight is written over.
// Without it a stream allocates every byte it produces afresh, and the
// collector runs and frees it again at that rate.
type arenaPool struct {
	mu   sync.Mutex
	free [][]byte
	// held is the capacity of free, at most max: the arenas waiting are
	// part of the pipeline's arena budget (config.Memory.Arena).
	held, max int
}

func newArenaPool(max int) *arenaPool { return &arenaPool{max: max} }

// get returns an empty arena of at least n bytes' capacity: a kept one if
// one is large enough, a new one otherwise.
func (p *arenaPool) get(n int) []byte {
	p.mu.Lock()
	for i := len(p.free) - 1; i >= 0; i-- {
		if b := p.free[i]; cap(b) >= n {
			p.free[i] = p.free[len(p.free)-1]
			p.free[len(p.free)-1] = nil
			p.free = p.free[:len(p.free)-1]
			p.held -= cap(b)
			p.mu.Unlock()
			return b[:0]
		}
	}
	p.mu.Unlock()
	return make([]byte, 0, n)
}

// put keeps arenas whose every byte is free, as long as what it keeps
// stays within its budget; the rest are left to the collector.
func (p *arenaPool) put(arenas [][]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range arenas {
		if c := cap(b); c > 0 && p.held+c <= p.max {
			p.free = append(p.free, b[:0])
			p.held += c
		}
	}
}
