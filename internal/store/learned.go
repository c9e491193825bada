package store

import (
	"encoding/json"
	"time"
)

// Learned is one learned value, such as the set of listeners the host watch expects.
// The zero value is not storable: Namespace, Key and a JSON Value are required.
type Learned struct {
	Namespace string
	Key       string
	Value     json.RawMessage
	UpdatedAt time.Time // set by the store on PutLearned
}
