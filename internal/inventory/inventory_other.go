//go:build !linux

package inventory

import "context"

const supported = false

func (i *Inventory) dump(ctx context.Context, reqs []dumpReq, fn func(*Socket)) error {
	return ErrUnsupported
}

func (i *Inventory) locate(ctx context.Context, inodes []uint64) (map[uint64]fdRef, error) {
	return nil, ErrUnsupported
}
