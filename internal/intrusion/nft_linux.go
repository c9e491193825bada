//go:build linux

package intrusion

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Names in portpatrol's own nftables table.
const (
	TableName   = "portpatrol_bans"
	setV4       = "ban4"
	setV6       = "ban6"
	chainDrop   = "prerouting"
	chainTrack  = "track"
	ctStateNew  = 8 // NF_CT_STATE_BIT(IP_CT_NEW)
	maxTimeoutS = 1 << 31
)

// Table is portpatrol's nftables table, family inet, named portpatrol_bans:
//
//	table inet portpatrol_bans {
//	  set ban4 { type ipv4_addr; flags timeout; }
//	  set ban6 { type ipv6_addr; flags timeout; }
//	  chain prerouting { type filter hook prerouting priority raw; policy accept;
//	    meta nfproto ipv4 ip saddr @ban4 drop
//	    meta nfproto ipv6 ip6 saddr @ban6 drop }
//	  chain track { type filter hook input priority filter; policy accept;
//	    ct state new counter }
//	}
//
// Every element carries its own timeout, so the kernel lifts a ban on time whether
// or not portpatrol still runs. The drop sits in prerouting at raw priority, before
// connection tracking: a banned source makes no conntrack entries, and traffic it
// sends to be forwarded (containers, pods behind this host) is dropped as well. The
// track chain only keeps connection tracking on in the namespace, which the kernel
// otherwise enables only for rulesets that use it. A Table is safe for concurrent use.
type Table struct {
	mu   sync.Mutex
	conn *nftables.Conn
	tab  *nftables.Table
	v4   *nftables.Set
	v6   *nftables.Set
}

// ErrNoNftables reports that nftables cannot be used here (no nf_tables in the
// kernel, or no CAP_NET_ADMIN).
var ErrNoNftables = errors.New("nftables unavailable")

// OpenTable opens (creating it if needed) portpatrol's table in the network
// namespace at path netns ("/run/netns/NAME"), or this process's when netns is "". An
// existing table with its sets and chains is kept with its elements, so bans
// outlive restarts; a table missing any of them is rebuilt empty.
func OpenTable(netns string) (*Table, error) {
	opts := []nftables.ConnOption{nftables.AsLasting()}
	if netns != "" {
		f, err := os.Open(netns)
		if err != nil {
			return nil, fmt.Errorf("%w: network namespace: %v", ErrNoNftables, err)
		}
		defer f.Close() // the lasting socket is made in New, inside the namespace
		opts = append(opts, nftables.WithNetNSFd(int(f.Fd())))
	}
	conn, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: netlink: %v", ErrNoNftables, err)
	}
	t := &Table{conn: conn, tab: &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}}
	t.v4 = &nftables.Set{Table: t.tab, Name: setV4, KeyType: nftables.TypeIPAddr, HasTimeout: true}
	t.v6 = &nftables.Set{Table: t.tab, Name: setV6, KeyType: nftables.TypeIP6Addr, HasTimeout: true}
	if err := t.ensure(); err != nil {
		conn.CloseLasting()
		return nil, err
	}
	return t, nil
}

func (t *Table) ensure() error {
	tables, err := t.conn.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return fmt.Errorf("%w: list tables: %v", ErrNoNftables, err)
	}
	exists := false
	for _, tb := range tables {
		if tb.Name == TableName {
			exists = true
		}
	}
	if exists {
		if t.complete() {
			s4, err4 := t.conn.GetSetByName(t.tab, setV4)
			s6, err6 := t.conn.GetSetByName(t.tab, setV6)
			if err4 == nil && err6 == nil {
				t.v4, t.v6 = s4, s6
				return nil
			}
		}
		t.conn.DelTable(t.tab)
	}
	t.conn.AddTable(t.tab)
	if err := t.conn.AddSet(t.v4, nil); err != nil {
		return fmt.Errorf("add set %s: %w", setV4, err)
	}
	if err := t.conn.AddSet(t.v6, nil); err != nil {
		return fmt.Errorf("add set %s: %w", setV6, err)
	}
	accept := nftables.ChainPolicyAccept
	drop := t.conn.AddChain(&nftables.Chain{Name: chainDrop, Table: t.tab, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRaw, Policy: &accept})
	for _, r := range []struct {
		proto      byte
		off, n     uint32
		set        *nftables.Set
		familyName string
	}{{unix.NFPROTO_IPV4, 12, 4, t.v4, "ipv4"}, {unix.NFPROTO_IPV6, 8, 16, t.v6, "ipv6"}} {
		t.conn.AddRule(&nftables.Rule{Table: t.tab, Chain: drop, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{r.proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: r.off, Len: r.n},
			&expr.Lookup{SourceRegister: 1, SetName: r.set.Name, SetID: r.set.ID},
			&expr.Counter{},
			&expr.Verdict{Kind: expr.VerdictDrop},
		}})
	}
	track := t.conn.AddChain(&nftables.Chain{Name: chainTrack, Table: t.tab, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	t.conn.AddRule(&nftables.Rule{Table: t.tab, Chain: track, Exprs: []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(ctStateNew)},
		&expr.Counter{},
	}})
	if err := t.conn.Flush(); err != nil {
		return fmt.Errorf("%w: create table inet %s: %v", ErrNoNftables, TableName, err)
	}
	return nil
}

// complete reports whether the existing table has both chains with their rules.
func (t *Table) complete() bool {
	chains, err := t.conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return false
	}
	found := 0
	for _, c := range chains {
		if c.Table.Name != TableName || (c.Name != chainDrop && c.Name != chainTrack) {
			continue
		}
		rules, err := t.conn.GetRules(t.tab, c)
		want := 1
		if c.Name == chainDrop {
			want = 2
		}
		if err != nil || len(rules) != want {
			return false
		}
		found++
	}
	return found == 2
}

func (t *Table) setFor(a netip.Addr) (*nftables.Set, []byte) {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return t.v4, b[:]
	}
	b := a.As16()
	return t.v6, b[:]
}

func clampTimeout(d time.Duration) time.Duration {
	if d < time.Millisecond {
		d = time.Millisecond
	}
	if d > maxTimeoutS*time.Second {
		d = maxTimeoutS * time.Second
	}
	return d.Truncate(time.Millisecond)
}

// Ban drops traffic from addr for the given time, replacing any ban of it. The
// comment is shown by nft list (at most 128 bytes are kept).
func (t *Table) Ban(addr netip.Addr, d time.Duration, comment string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	set, key := t.setFor(addr)
	if len(comment) > 128 {
		comment = comment[:128]
	}
	// Replace: delete and add in one batch; without an element to delete the batch
	// fails as a whole, and the add alone is tried.
	el := []nftables.SetElement{{Key: key}}
	if err := t.conn.SetDeleteElements(set, el); err != nil {
		return fmt.Errorf("ban %s: %w", addr, err)
	}
	add := []nftables.SetElement{{Key: key, Timeout: clampTimeout(d), Comment: comment}}
	if err := t.conn.SetAddElements(set, add); err != nil {
		return fmt.Errorf("ban %s: %w", addr, err)
	}
	if err := t.conn.Flush(); err == nil {
		return nil
	}
	if err := t.conn.SetAddElements(set, add); err != nil {
		return fmt.Errorf("ban %s: %w", addr, err)
	}
	if err := t.conn.Flush(); err != nil {
		return fmt.Errorf("ban %s: %w", addr, err)
	}
	return nil
}

// Unban lifts the ban of addr; lifting an absent ban is not an error.
func (t *Table) Unban(addr netip.Addr) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	set, key := t.setFor(addr)
	if err := t.conn.SetDeleteElements(set, []nftables.SetElement{{Key: key}}); err != nil {
		return fmt.Errorf("unban %s: %w", addr, err)
	}
	if err := t.conn.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unban %s: %w", addr, err)
	}
	return nil
}

// KernelBan is a ban as the kernel holds it.
type KernelBan struct {
	Addr    netip.Addr
	Expires time.Duration // time left
	Comment string
}

// List returns the bans in the kernel's sets.
func (t *Table) List() ([]KernelBan, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []KernelBan
	for _, set := range []*nftables.Set{t.v4, t.v6} {
		els, err := t.conn.GetSetElements(set)
		if err != nil {
			return nil, fmt.Errorf("list set %s: %w", set.Name, err)
		}
		for _, e := range els {
			a, ok := netip.AddrFromSlice(e.Key)
			if !ok {
				continue
			}
			out = append(out, KernelBan{Addr: a, Expires: e.Expires, Comment: e.Comment})
		}
	}
	return out, nil
}

// Close closes the netlink connection; the table and its bans stay in the kernel.
func (t *Table) Close() error {
	return t.conn.CloseLasting()
}

// Remove deletes portpatrol's table with every ban in it.
func (t *Table) Remove() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.conn.DelTable(t.tab)
	return t.conn.Flush()
}
