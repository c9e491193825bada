package config

import (
	"errors"

	"github.com/portpatrol/portpatrol/internal/automation"
)

// resolveAutomation checks the automation section: modes, limits and every playbook's
// trigger, steps, actions, parameters and risk tiers. An unknown parameter name is
// refused by the walker, with its position, before this runs.
func (c *Config) resolveAutomation(at func(path, format string, args ...any)) {
	for _, err := range unjoin(c.Automation.Validate()) {
		var ce *automation.ConfigError
		if errors.As(err, &ce) {
			at("automation."+ce.Field, "%s", ce.Reason)
		} else {
			at("automation", "%v", err)
		}
	}
}
