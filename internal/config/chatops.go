package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ChatOps configures commands from chat (see docs/chatops.md). The zero value switches
// it off: the endpoints /api/v1/chatops/slack and /api/v1/chatops/mattermost answer 404
// until their platform's secret is set.
type ChatOps struct {
	Slack      ChatOpsSlack      `yaml:"slack"`
	Mattermost ChatOpsMattermost `yaml:"mattermost"`
	// Users map chat users to portpatrol users and roles; a chat user not listed
	// may only read (status, who).
	Users []ChatOpsUser `yaml:"users"`
}

// ChatOpsSlack is the Slack app whose slash command and buttons are answered.
type ChatOpsSlack struct {
	// SigningSecret is the app's signing secret (Basic Information → App
	// Credentials), inline (prefer ${ENV}) or in signing_secret_file.
	SigningSecret     string `yaml:"signing_secret"`
	SigningSecretFile string `yaml:"signing_secret_file"`
}

// ChatOpsMattermost is the Mattermost slash command answered.
type ChatOpsMattermost struct {
	// Tokens are the slash commands' tokens, inline (prefer ${ENV}) or one per line
	// in token_file.
	Tokens    []string `yaml:"tokens"`
	TokenFile string   `yaml:"token_file"`
}

// ChatOpsUser is one person: their portpatrol user name, role, and chat IDs.
type ChatOpsUser struct {
	// User is the portpatrol user recorded as having acted.
	User string `yaml:"user"`
	// Role is viewer (read only), operator (ack, resolve, silence) or approver
	// (also approve and deny remediation plans).
	Role string `yaml:"role"`
	// Slack is the Slack member ID (U…), which a rename does not change.
	Slack string `yaml:"slack"`
	// Mattermost is the Mattermost user ID or user name.
	Mattermost string `yaml:"mattermost"`
}

// ChatOpsKeys are chatops' secrets, read from the inline fields or the files.
type ChatOpsKeys struct {
	SlackSigningSecret string
	MattermostTokens   []string
}

// ChatOpsRoles are the roles a chat user may have.
var ChatOpsRoles = []string{"viewer", "operator", "approver"}

// resolveChatOps checks the chatops section and reads its secrets into ChatOpsKeys.
func (c *Config) resolveChatOps(at func(path, format string, args ...any)) {
	s := c.Source.ChatOps
	read := func(path, file string) string {
		if !filepath.IsAbs(file) && c.File != "" {
			file = filepath.Join(filepath.Dir(c.File), file)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			at(path, "%v", err)
			return ""
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			at(path, "%s is empty", file)
		}
		return v
	}
	k := ChatOpsKeys{SlackSigningSecret: s.Slack.SigningSecret}
	if s.Slack.SigningSecretFile != "" {
		if s.Slack.SigningSecret != "" {
			at("chatops.slack.signing_secret_file", "give signing_secret or signing_secret_file, not both")
		}
		k.SlackSigningSecret = read("chatops.slack.signing_secret_file", s.Slack.SigningSecretFile)
	}
	for i, t := range s.Mattermost.Tokens {
		if strings.TrimSpace(t) == "" {
			at(fmt.Sprintf("chatops.mattermost.tokens[%d]", i), "empty")
			continue
		}
		k.MattermostTokens = append(k.MattermostTokens, t)
	}
	if s.Mattermost.TokenFile != "" {
		for _, line := range strings.Split(read("chatops.mattermost.token_file", s.Mattermost.TokenFile), "\n") {
			if t := strings.TrimSpace(line); t != "" {
				k.MattermostTokens = append(k.MattermostTokens, t)
			}
		}
	}
	c.ChatOpsKeys = k
	on := k.SlackSigningSecret != "" || len(k.MattermostTokens) > 0
	if len(s.Users) > 0 && !on {
		at("chatops.users", "no platform is configured: set chatops.slack.signing_secret or chatops.mattermost.tokens")
	}
	slackSeen, mmSeen := map[string]int{}, map[string]int{}
	for i, u := range s.Users {
		p := fmt.Sprintf("chatops.users[%d]", i)
		if u.User == "" {
			at(p+".user", "empty; give the portpatrol user name this person acts as")
		}
		switch u.Role {
		case "viewer", "operator", "approver":
		case "":
			at(p+".role", "empty; want one of %s", strings.Join(ChatOpsRoles, ", "))
		default:
			at(p+".role", "%q is not a role; want one of %s", u.Role, strings.Join(ChatOpsRoles, ", "))
		}
		if u.Slack == "" && u.Mattermost == "" {
			at(p, "names no chat user; give slack (a member ID such as U012AB3CD) or mattermost")
		}
		if u.Slack != "" {
			if !slackID(u.Slack) {
				at(p+".slack", "%q is not a Slack member ID (U… or W…, upper-case letters and digits); names change, IDs do not", u.Slack)
			}
			if j, dup := slackSeen[u.Slack]; dup {
				at(p+".slack", "%q is also chatops.users[%d]", u.Slack, j)
			}
			slackSeen[u.Slack] = i
		}
		if u.Mattermost != "" {
			if j, dup := mmSeen[u.Mattermost]; dup {
				at(p+".mattermost", "%q is also chatops.users[%d]", u.Mattermost, j)
			}
			mmSeen[u.Mattermost] = i
		}
	}
}

func slackID(s string) bool {
	if len(s) < 3 || (s[0] != 'U' && s[0] != 'W') {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
