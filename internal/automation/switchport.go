package automation

import (
	"context"
	"fmt"
	"strconv"
)

// RedirectTable is the nftables table switch_port works in. portpatrol adds its chains
// and rules there and never touches another table; the table itself is created by the
// operator (`nft add table inet portpatrol_redirect`), so that enabling the action is a
// deliberate step.
const RedirectTable = "portpatrol_redirect"

// The chains switch_port adds to RedirectTable: NAT hooks for connections made on this
// host and for those arriving.
const (
	redirectOutput     = "portpatrol_output"
	redirectPrerouting = "portpatrol_prerouting"
)

// SwitchPort moves a port's TCP traffic to a backup port on this host with one nftables
// rule (a redirect: DNAT to this host) in RedirectTable; rollback deletes the rule.
type SwitchPort struct {
	Params Params
	// NetNS is a file descriptor of the network namespace to work in; 0 means our own.
	NetNS int
}

var _ Action = (*SwitchPort)(nil)

type switchDetail struct {
	family       string
	port, backup uint16
	comment      string
}

// Plan resolves the ports and the rule's comment.
func (s *SwitchPort) Plan(t Target) (Change, error) {
	d := switchDetail{family: s.Params.Family, port: uint16(s.Params.Port), backup: uint16(s.Params.BackupPort)}
	if d.family == "" {
		d.family = "inet"
	}
	d.comment = fmt.Sprintf("portpatrol switch_port %d->%d", d.port, d.backup)
	p := map[string]string{"family": d.family, "port": strconv.Itoa(int(d.port)), "backup_port": strconv.Itoa(int(d.backup))}
	diff := fmt.Sprintf("add to table %s %s: tcp dport %d redirect to :%d (%q), in chains %s and %s",
		d.family, RedirectTable, d.port, d.backup, d.comment, redirectOutput, redirectPrerouting)
	return Change{Action: "switch_port", Target: t.ID, Params: p, Diff: diff, detail: d}, nil
}

// State says whether the redirect is in place, for drift.
func (s *SwitchPort) State(_ context.Context, c Change) string {
	n, err := s.count(c.detail.(switchDetail))
	if err != nil {
		return "unreadable: " + err.Error()
	}
	return "redirect rules: " + strconv.Itoa(n)
}
