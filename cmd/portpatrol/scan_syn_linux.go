//go:build linux

package main

import (
	"io"

	"github.com/portpatrol/portpatrol/internal/probe"
	"github.com/portpatrol/portpatrol/internal/scan"
)

// openSYN opens the raw sockets of scan --syn: the probes' half-open machinery.
func openSYN() (scan.SYNSocket, io.Closer, error) {
	s, err := probe.OpenSYNSocket()
	if err != nil {
		return nil, nil, err
	}
	return s, s, nil
}
