//go:build !linux

package automation

import (
	"context"
	"errors"
)

var errNoNftables = errors.New("switch_port: nftables exists on Linux only")

func (s *SwitchPort) count(switchDetail) (int, error)        { return 0, errNoNftables }
func (s *SwitchPort) PreCheck(context.Context, Change) error { return errNoNftables }
func (s *SwitchPort) Apply(context.Context, Change) error    { return errNoNftables }
func (s *SwitchPort) Verify(context.Context, Change) error   { return errNoNftables }
func (s *SwitchPort) Rollback(context.Context, Change) error { return errNoNftables }
