package notify_test

import (
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/portpatrol/portpatrol/internal/notify"
)

// The example of the newer receiver types in docs/alerting.md decodes and builds, one
// receiver of each type.
func TestNewerReceiversDocExample(t *testing.T) {
	md, err := os.ReadFile("../../docs/alerting.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(md)
	i := strings.Index(doc, "Examples of the newer receiver types")
	if i < 0 {
		t.Fatal("docs/alerting.md has no example of the newer receiver types")
	}
	block := doc[i:]
	block = block[strings.Index(block, "```yaml\n")+len("```yaml\n"):]
	block = block[:strings.Index(block, "```")]
	for _, v := range []string{"DISCORD_WEBHOOK_URL", "GOOGLE_CHAT_WEBHOOK_URL", "MATTERMOST_WEBHOOK_URL"} {
		block = strings.ReplaceAll(block, "${"+v+"}", "https://hooks.example.com/x")
	}
	block = strings.ReplaceAll(block, "/etc/portpatrol/teams-workflow-url", "teams.url")
	for _, v := range []string{"NTFY_TOKEN", "PUSHOVER_APP_TOKEN", "PUSHOVER_USER_KEY", "ZULIP_API_KEY"} {
		block = strings.ReplaceAll(block, "${"+v+"}", "secret")
	}
	var cfg struct {
		Notify notify.Config `yaml:"notify"`
	}
	if err := yaml.Unmarshal([]byte(block), &cfg); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/teams.url", []byte("https://prod.westeurope.logic.azure.com/workflows/x?sig=y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Notify.Dir = dir
	d, err := notify.New(cfg.Notify, &notify.MemStore{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(d.Receivers()); got != 7 {
		t.Errorf("got %d receivers, want 7", got)
	}
	types := map[string]bool{}
	for _, r := range cfg.Notify.Receivers {
		types[r.Type] = true
	}
	for _, ty := range []string{"discord", "teams", "googlechat", "mattermost", "ntfy", "pushover", "zulip"} {
		if !types[ty] {
			t.Errorf("the example has no %s receiver", ty)
		}
	}
}
