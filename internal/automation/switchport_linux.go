package automation

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// natRangeProtoSpecified is NF_NAT_RANGE_PROTO_SPECIFIED: the redirect names a port.
const natRangeProtoSpecified = 0x2

func (s *SwitchPort) conn() (*nftables.Conn, error) {
	if s.NetNS != 0 {
		return nftables.New(nftables.WithNetNSFd(s.NetNS))
	}
	return nftables.New()
}

func tableFamily(f string) nftables.TableFamily {
	if f == "ip" {
		return nftables.TableFamilyIPv4
	}
	return nftables.TableFamilyINet
}

// table finds RedirectTable, with a message a person can act on when it cannot.
func (s *SwitchPort) table(c *nftables.Conn, d switchDetail) (*nftables.Table, error) {
	t, err := c.ListTableOfFamily(RedirectTable, tableFamily(d.family))
	switch {
	case errors.Is(err, os.ErrPermission) || errors.Is(err, unix.EPERM):
		return nil, fmt.Errorf("switch_port: no permission to read nftables (portpatrol needs CAP_NET_ADMIN): %w", err)
	case errors.Is(err, unix.ENOENT) || errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("switch_port: nftables table %s %s does not exist; create it with: nft add table %s %s",
			d.family, RedirectTable, d.family, RedirectTable)
	case err != nil:
		return nil, fmt.Errorf("switch_port: read nftables table %s %s: %w", d.family, RedirectTable, err)
	}
	return t, nil
}

// ours lists the rules of our two chains that carry d's comment.
func (s *SwitchPort) ours(c *nftables.Conn, t *nftables.Table, d switchDetail) ([]*nftables.Rule, error) {
	var out []*nftables.Rule
	for _, name := range []string{redirectOutput, redirectPrerouting} {
		ch, err := c.ListChain(t, name)
		if err != nil {
			continue // not there yet: no rules of ours in it
		}
		rules, err := c.GetRules(t, ch)
		if err != nil {
			return nil, fmt.Errorf("switch_port: list rules of %s: %w", name, err)
		}
		for _, r := range rules {
			if cm, ok := userdata.GetString(r.UserData, userdata.TypeComment); ok && cm == d.comment {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

func (s *SwitchPort) count(d switchDetail) (int, error) {
	c, err := s.conn()
	if err != nil {
		return 0, err
	}
	defer func() { _ = c.CloseLasting() }()
	t, err := s.table(c, d)
	if err != nil {
		return 0, err
	}
	rs, err := s.ours(c, t, d)
	return len(rs), err
}

// PreCheck needs the table, the permission to change it, and no redirect of this port
// already in place.
func (s *SwitchPort) PreCheck(_ context.Context, ch Change) error {
	d := ch.detail.(switchDetail)
	n, err := s.count(d)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("switch_port: port %d is already redirected to %d (%d rule(s) %q in %s)", d.port, d.backup, n, d.comment, RedirectTable)
	}
	return nil
}

// Apply adds the chains (if missing) and the redirect rule in each, in one batch that
// the kernel applies whole or not at all.
func (s *SwitchPort) Apply(_ context.Context, ch Change) error {
	d := ch.detail.(switchDetail)
	c, err := s.conn()
	if err != nil {
		return fmt.Errorf("switch_port: %w", err)
	}
	defer func() { _ = c.CloseLasting() }()
	t, err := s.table(c, d)
	if err != nil {
		return err
	}
	ud := userdata.AppendString(nil, userdata.TypeComment, d.comment)
	for _, hook := range []struct {
		name string
		hook *nftables.ChainHook
	}{{redirectOutput, nftables.ChainHookOutput}, {redirectPrerouting, nftables.ChainHookPrerouting}} {
		chain := c.AddChain(&nftables.Chain{Name: hook.name, Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: hook.hook, Priority: nftables.ChainPriorityNATDest})
		c.AddRule(&nftables.Rule{Table: t, Chain: chain, UserData: ud, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(d.port)},
			&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(d.backup)},
			&expr.Redir{RegisterProtoMin: 1, Flags: natRangeProtoSpecified},
		}})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("switch_port: add the redirect of port %d to %d in %s %s (nothing was changed): %w",
			d.port, d.backup, d.family, RedirectTable, err)
	}
	return nil
}

// Verify checks that both rules are in place.
func (s *SwitchPort) Verify(_ context.Context, ch Change) error {
	d := ch.detail.(switchDetail)
	n, err := s.count(d)
	if err != nil {
		return err
	}
	if n != 2 {
		return fmt.Errorf("switch_port: want 2 rules %q in %s, found %d", d.comment, RedirectTable, n)
	}
	return nil
}

// Rollback deletes every rule carrying this step's comment, in one batch.
func (s *SwitchPort) Rollback(_ context.Context, ch Change) error {
	d := ch.detail.(switchDetail)
	c, err := s.conn()
	if err != nil {
		return fmt.Errorf("switch_port: %w", err)
	}
	defer func() { _ = c.CloseLasting() }()
	t, err := s.table(c, d)
	if err != nil {
		return err
	}
	rs, err := s.ours(c, t, d)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if err := c.DelRule(r); err != nil {
			return fmt.Errorf("switch_port: delete rule %q: %w", d.comment, err)
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("switch_port: delete the redirect of port %d: %w", d.port, err)
	}
	return nil
}
