package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestChatOpsErrorsCarryPosition(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"bad role", "chatops:\n  slack: {signing_secret: s}\n  users:\n    - {user: alice, role: admin, slack: U012AB3CD}\n",
			`bad.yaml:4:27: chatops.users[0].role: "admin" is not a role; want one of viewer, operator, approver`},
		{"slack name instead of ID", "chatops:\n  slack: {signing_secret: s}\n  users:\n    - {user: alice, role: operator, slack: alice}\n",
			`chatops.users[0].slack: "alice" is not a Slack member ID`},
		{"no chat user", "chatops:\n  slack: {signing_secret: s}\n  users:\n    - {user: alice, role: operator}\n",
			"bad.yaml:4:7: chatops.users[0]: names no chat user"},
		{"duplicate", "chatops:\n  mattermost: {tokens: [t]}\n  users:\n    - {user: a, role: viewer, mattermost: x}\n    - {user: b, role: viewer, mattermost: x}\n",
			`bad.yaml:5:43: chatops.users[1].mattermost: "x" is also chatops.users[0]`},
		{"users without a platform", "chatops:\n  users:\n    - {user: a, role: viewer, mattermost: x}\n",
			"chatops.users: no platform is configured"},
		{"both secret forms", "chatops:\n  slack: {signing_secret: s, signing_secret_file: f}\n",
			"chatops.slack.signing_secret_file: give signing_secret or signing_secret_file, not both"},
		{"unknown field", "chatops:\n  slack: {signing_secrets: s}\n", `chatops.slack.signing_secrets: unknown field "signing_secrets"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "bad.yaml")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error\n  %v\nwant one containing\n  %s", err, tt.want)
			}
		})
	}
}

func TestChatOpsSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "slack.secret"), []byte("s3cr3t\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "mm.tokens"), []byte("tok1\n\ntok2\n"), 0o600)
	file := filepath.Join(dir, "portpatrol.yaml")
	os.WriteFile(file, []byte("chatops:\n  slack: {signing_secret_file: slack.secret}\n  mattermost: {tokens: [tok0], token_file: mm.tokens}\n  users:\n    - {user: alice, role: operator, slack: U012AB3CD, mattermost: alice}\n"), 0o600)
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if c.ChatOpsKeys.SlackSigningSecret != "s3cr3t" || !slices.Equal(c.ChatOpsKeys.MattermostTokens, []string{"tok0", "tok1", "tok2"}) {
		t.Errorf("got %+v, want the secret and three tokens", c.ChatOpsKeys)
	}
}

// The configuration shown in docs/chatops.md loads.
func TestChatOpsDocExampleLoads(t *testing.T) {
	md, err := os.ReadFile("../../docs/chatops.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(md)
	i := strings.Index(doc, "```yaml\nchatops:")
	if i < 0 {
		t.Fatal("docs/chatops.md shows no chatops section")
	}
	block := doc[i+len("```yaml\n"):]
	block = block[:strings.Index(block, "```")]
	t.Setenv("SLACK_SIGNING_SECRET", "s")
	t.Setenv("MATTERMOST_SLASH_TOKEN", "t")
	c, err := Parse([]byte(block), "chatops.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.ChatOps.Users) != 3 || c.ChatOpsKeys.SlackSigningSecret != "s" || len(c.ChatOpsKeys.MattermostTokens) != 1 {
		t.Errorf("got %+v, %+v", c.ChatOps, c.ChatOpsKeys)
	}
}
