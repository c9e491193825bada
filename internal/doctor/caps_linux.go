//go:build linux

package doctor

import "golang.org/x/sys/unix"

// hasBindCap reports whether this process has CAP_NET_BIND_SERVICE in its effective set.
func hasBindCap() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[0].Effective&(1<<unix.CAP_NET_BIND_SERVICE) != 0
}
