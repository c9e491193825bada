//go:build !linux

package main

import (
	"errors"
	"io"

	"github.com/portpatrol/portpatrol/internal/scan"
)

func openSYN() (scan.SYNSocket, io.Closer, error) {
	return nil, nil, errors.New("scan --syn is only available on Linux; scan without --syn connects instead")
}
