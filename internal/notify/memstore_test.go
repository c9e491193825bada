package notify_test

import (
	"testing"

	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/notify/storetest"
)

func TestMemStore(t *testing.T) {
	storetest.Run(t, func(*testing.T) notify.Store { return &notify.MemStore{} })
}
