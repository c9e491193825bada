package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/notify"
)

func newNotifyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "notify",
		Example: `  portpatrol notify test noc-slack -c /etc/portpatrol/portpatrol.yaml`,
		Short:   "Work with notification receivers",
		Args:    cobra.NoArgs,
	}
	var cfgPath string
	test := &cobra.Command{
		Use:   "test RECEIVER",
		Short: "Send a test message to a receiver of the config file, at once",
		Long: `Send a test message to one receiver of notify.receivers, directly rather than through
the daemon's outbox, and say whether the provider took it. Use it after adding a
receiver, rotating a secret or changing a chat group's robot.

Exit codes: 0 sent; 2 the provider refused it or could not be reached (its error is
printed); 3 bad input: no such receiver, or a config file that does not load.`,
		Example: `  portpatrol notify test noc-slack -c /etc/portpatrol/portpatrol.yaml
  portpatrol notify test dingtalk-ops -c portpatrol.yaml && echo "the robot works"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfgPath == "" {
				return exitf(exitUnknown, "-c CONFIG is required: the receivers are read from the config file")
			}
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return exitf(exitUnknown, "%v", err)
			}
			name, typ := args[0], ""
			for _, r := range cfg.Notify.Receivers {
				if r.Name == name {
					typ = r.Type
				}
			}
			d, err := notify.New(cfg.Notify, &notify.MemStore{}, nil)
			if err != nil {
				return exitf(exitUnknown, "notify: %v", err)
			}
			if typ == "" {
				// Test names the receivers that are configured.
				return exitf(exitUnknown, "%v", d.Test(cmd.Context(), name))
			}
			if err := d.Test(cmd.Context(), name); err != nil {
				return exitf(exitCritical, "%v", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sent a test message to %s (%s)\n", name, typ)
			return nil
		},
	}
	test.Flags().StringVarP(&cfgPath, "config", "c", "", "configuration file whose notify.receivers to use (required)")
	cmd.AddCommand(test)
	return cmd
}
