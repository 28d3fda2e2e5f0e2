// Command kfakebroker runs a one-broker kfake cluster on a loopback port
// until SIGTERM or SIGINT. The benchmark runs it as its own process, so that
// the broker's CPU and memory are not counted in the benchmark's, and
// restarts it between runs because kfake keeps every record in memory.
//
//	kfakebroker -port 9092
//
// It prints "listening 127.0.0.1:PORT" once the broker accepts connections.
// SIGUSR1 cuts the broker off: every connection is closed and new ones are
// accepted only to be closed, until SIGUSR2 lets them through again (an
// outage, for the outage-<source> cases).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/liberator-cdc/liberator/internal/harness"
)

func main() {
	port := flag.Int("port", 0, "loopback port to listen on (0: any free port)")
	flag.Parse()

	// Catch the signal before the broker exists, so that a SIGTERM sent
	// right after start-up is not lost to the default handler.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)

	outage := make(chan os.Signal, 1)
	signal.Notify(outage, syscall.SIGUSR1, syscall.SIGUSR2)

	cut := harness.NewCutter()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(*port), kfake.ListenFn(cut.Listen))
	if err != nil {
		fmt.Fprintf(os.Stderr, "kfakebroker: start cluster: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("listening %s\n", c.ListenAddrs()[0])
	for {
		select {
		case s := <-outage:
			if s == syscall.SIGUSR1 {
				cut.Cut()
			} else {
				cut.Restore()
			}
			fmt.Fprintf(os.Stderr, "kfakebroker: %s: cut %v\n", s, cut.IsCut())
		case <-sig:
			c.Close()
			return
		}
	}
}
