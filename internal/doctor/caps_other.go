//go:build !linux

package doctor

import "os"

// hasBindCap reports whether this process may bind privileged ports: elsewhere, root.
func hasBindCap() bool { return os.Geteuid() == 0 }
