//go:build !linux

package main

import (
	"errors"
	"time"
)

// connectFloor is measured on Linux only, where the check makes raw syscalls.
func connectFloor(addrs []string, rate int, warmup, duration time.Duration) (time.Duration, int64, int64, error) {
	return 0, 0, 0, errors.New("the kernel's connect floor is measured on Linux only")
}
