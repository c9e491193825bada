//go:build !linux

package intrusion

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// TableName is portpatrol's nftables table.
const TableName = "portpatrol_bans"

// ErrNoNftables reports that nftables cannot be used here: it is Linux's.
var ErrNoNftables = errors.New("nftables unavailable: Linux only")

// ErrNoConntrack reports that conntrack events cannot be read here: they are Linux's.
var ErrNoConntrack = errors.New("conntrack events unavailable: Linux only")

// KernelBan is a ban as the kernel holds it.
type KernelBan struct {
	Addr    netip.Addr
	Expires time.Duration
	Comment string
}

// Table is portpatrol's nftables table; it cannot be opened outside Linux.
type Table struct{}

// OpenTable returns ErrNoNftables outside Linux.
func OpenTable(string) (*Table, error) { return nil, ErrNoNftables }

func (*Table) Ban(netip.Addr, time.Duration, string) error { return ErrNoNftables }
func (*Table) Unban(netip.Addr) error                      { return ErrNoNftables }
func (*Table) List() ([]KernelBan, error)                  { return nil, ErrNoNftables }
func (*Table) Close() error                                { return nil }

// SourceConfig configures a Source.
type SourceConfig struct {
	NetNS      string
	ReadBuffer int
	Now        func() time.Time
}

// Source reads conntrack events; outside Linux it cannot.
type Source struct{ listening chan struct{} }

// NewSource returns a source whose Run fails with ErrNoConntrack.
func NewSource(SourceConfig) *Source { return &Source{listening: make(chan struct{})} }

func (s *Source) Listening() <-chan struct{} { return s.listening }
func (*Source) Events() uint64               { return 0 }
func (*Source) Lost() uint64                 { return 0 }
func (*Source) Resynced() uint64             { return 0 }
func (*Source) Probe() error                 { return ErrNoConntrack }
func (*Source) Run(context.Context, func(time.Time, *Event)) error {
	return ErrNoConntrack
}

// HostAddrsIn returns this process's addresses; other namespaces are Linux's.
func HostAddrsIn(netns string) ([]netip.Addr, error) {
	if netns != "" {
		return nil, errors.New("network namespaces: Linux only")
	}
	return HostAddrs()
}
