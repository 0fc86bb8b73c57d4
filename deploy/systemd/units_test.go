// Package systemd holds perfleet's systemd units and their example
// environment files. Its tests parse the units, check the service settings
// and hardening options, check every flag ExecStart passes against the real
// commands, and run `systemd-analyze verify` where it is installed.
package systemd

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/perfleet/perfleet/deploy/internal/cliflags"
)

// unit is a parsed unit file: section → key → values in order (a key may be
// given several times).
type unit map[string]map[string][]string

// get returns the last value of a key ("" when absent) and whether it is
// set at all.
func (u unit) get(section, key string) (string, bool) {
	v, ok := u[section][key]
	if !ok || len(v) == 0 {
		return "", ok
	}
	return v[len(v)-1], true
}

// parseUnit reads a unit file: [Section] headers, Key=Value lines, # and ;
// comments, and lines continued with a trailing backslash.
func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section, pending := "", ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if pending == "" && (line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";")) {
			continue
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			pending += cont + " "
			continue
		}
		line, pending = pending+line, ""
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			t.Fatalf("%s:%d: not a Key=Value line in a section: %q", path, n, line)
		}
		key = strings.TrimSpace(key)
		u[section][key] = append(u[section][key], strings.TrimSpace(value))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if pending != "" {
		t.Fatalf("%s: ends in a continued line", path)
	}
	return u
}

// parseEnvFile reads an EnvironmentFile: KEY=value lines, # comments, the
// value's surrounding quotes removed.
func parseEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !envName.MatchString(k) {
			t.Fatalf("%s:%d: not a KEY=value line: %q", path, n+1, line)
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		env[k] = v
	}
	return env
}

var (
	envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// envRef matches ${NAME} inside a word and $NAME as a whole word.
	envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|^\$([A-Za-z_][A-Za-z0-9_]*)$`)
)

// expandExec turns an ExecStart line into its argument list the way systemd
// does: split at whitespace, ${NAME} replaced inside a word, a word that is
// just $NAME replaced by the value split at whitespace. It also returns the
// variables referenced. (The units use no quoting.)
func expandExec(line string, env map[string]string) (args, refs []string) {
	for _, w := range strings.Fields(line) {
		if m := envRef.FindStringSubmatch(w); m != nil && m[2] != "" {
			refs = append(refs, m[2])
			args = append(args, strings.Fields(env[m[2]])...)
			continue
		}
		args = append(args, envRef.ReplaceAllStringFunc(w, func(ref string) string {
			name := envRef.FindStringSubmatch(ref)[1]
			refs = append(refs, name)
			return env[name]
		}))
	}
	return args, refs
}

// spec is what one unit must have.
type spec struct {
	file, envFile string
	binary        string   // ExecStart's program
	subcommand    []string // ExecStart's arguments before the flags
	stateDir      string
	want          map[string]string // [Service] key → required last value
}

// hardening is required of both units.
var hardening = map[string]string{
	"User":                    "perfleet",
	"Restart":                 "on-failure",
	"ExecReload":              "/bin/kill -HUP $MAINPID",
	"NoNewPrivileges":         "yes",
	"CapabilityBoundingSet":   "",
	"AmbientCapabilities":     "",
	"ProtectSystem":           "strict",
	"ProtectHome":             "yes",
	"PrivateTmp":              "yes",
	"ProtectKernelTunables":   "yes",
	"ProtectKernelModules":    "yes",
	"ProtectKernelLogs":       "yes",
	"ProtectControlGroups":    "yes",
	"RestrictNamespaces":      "yes",
	"RestrictSUIDSGID":        "yes",
	"RestrictRealtime":        "yes",
	"LockPersonality":         "yes",
	"SystemCallArchitectures": "native",
}

var specs = []spec{
	{
		file: "perfleet-server.service", envFile: "server.env",
		binary: "/usr/local/bin/perfleet", subcommand: []string{"server"}, stateDir: "perfleet",
		want: map[string]string{"PrivateDevices": "yes", "MemoryDenyWriteExecute": "yes"},
	},
	{
		file: "perfleet-agent.service", envFile: "agent.env",
		binary: "/usr/local/bin/perfleet-agent", stateDir: "perfleet-agent",
		// NVML and the model servers need /dev/nvidia*.
		want: map[string]string{"PrivateDevices": "no", "DevicePolicy": "closed"},
	},
}

func TestUnits(t *testing.T) {
	for _, s := range specs {
		t.Run(s.file, func(t *testing.T) {
			u := parseUnit(t, s.file)
			svc := u["Service"]
			if svc == nil {
				t.Fatal("no [Service] section")
			}
			for key, want := range mergeMaps(hardening, s.want) {
				if got, ok := u.get("Service", key); !ok || got != want {
					t.Errorf("[Service] %s=%q (set: %v), want %q", key, got, ok, want)
				}
			}
			if got, _ := u.get("Service", "EnvironmentFile"); got != "/etc/perfleet/"+s.envFile {
				t.Errorf("EnvironmentFile=%q, want /etc/perfleet/%s (a leading - would hide a missing file)", got, s.envFile)
			}
			if got, _ := u.get("Service", "StateDirectory"); got != s.stateDir {
				t.Errorf("StateDirectory=%q, want %q", got, s.stateDir)
			}
			if rw := strings.Fields(strings.Join(svc["ReadWritePaths"], " ")); !slices.Contains(rw, "/var/lib/"+s.stateDir) {
				t.Errorf("ReadWritePaths %v does not name the state directory /var/lib/%s", rw, s.stateDir)
			}
			if got, _ := u.get("Service", "LimitNOFILE"); got == "" {
				t.Error("no LimitNOFILE")
			} else if n, err := strconv.Atoi(got); err != nil || n < 65536 {
				t.Errorf("LimitNOFILE=%s, want at least 65536", got)
			}
			families := strings.Fields(strings.Join(svc["RestrictAddressFamilies"], " "))
			if len(families) == 0 || strings.HasPrefix(families[0], "~") {
				t.Errorf("RestrictAddressFamilies=%v, want an allow list", families)
			}
			for _, f := range families {
				if !slices.Contains([]string{"AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"}, f) {
					t.Errorf("RestrictAddressFamilies allows %s", f)
				}
			}
			if len(svc["SystemCallFilter"]) == 0 {
				t.Error("no SystemCallFilter")
			}
			if got, _ := u.get("Install", "WantedBy"); got != "multi-user.target" {
				t.Errorf("[Install] WantedBy=%q, want multi-user.target", got)
			}
			if after, _ := u.get("Unit", "After"); !strings.Contains(after, "network-online.target") {
				t.Errorf("[Unit] After=%q lacks network-online.target", after)
			}
		})
	}
}

func TestAgentUnitAllowsNVIDIADevices(t *testing.T) {
	u := parseUnit(t, "perfleet-agent.service")
	allow := u["Service"]["DeviceAllow"]
	for _, want := range []string{"char-nvidia-frontend rw", "char-nvidia-uvm rw"} {
		if !slices.Contains(allow, want) {
			t.Errorf("DeviceAllow %q lacks %q", allow, want)
		}
	}
	if _, set := u.get("Service", "MemoryDenyWriteExecute"); set {
		t.Error("MemoryDenyWriteExecute breaks the JIT compilers of the model servers the agent starts")
	}
}

// TestExecStartUsesEnvFile checks that every variable ExecStart uses is set
// in the example environment file and every PERFLEET_ setting there is used.
func TestExecStartUsesEnvFile(t *testing.T) {
	for _, s := range specs {
		u := parseUnit(t, s.file)
		env := parseEnvFile(t, s.envFile)
		exec, _ := u.get("Service", "ExecStart")
		_, refs := expandExec(exec, env)
		for _, r := range refs {
			if _, ok := env[r]; !ok {
				t.Errorf("%s: ExecStart uses $%s, which %s does not set", s.file, r, s.envFile)
			}
		}
		for k := range env {
			if strings.HasPrefix(k, "PERFLEET_") && !slices.Contains(refs, k) {
				t.Errorf("%s: sets %s, which %s's ExecStart does not use", s.envFile, k, s.file)
			}
		}
	}
}

func TestExpandExec(t *testing.T) {
	env := map[string]string{"A": "10.0.0.1", "EXTRA": "--x=1  --y", "EMPTY": ""}
	args, refs := expandExec("/bin/p server --addr=${A}:7233 $EXTRA $EMPTY --z=${A}${A}", env)
	want := []string{"/bin/p", "server", "--addr=10.0.0.1:7233", "--x=1", "--y", "--z=10.0.0.110.0.0.1"}
	if !slices.Equal(args, want) {
		t.Errorf("args = %q, want %q", args, want)
	}
	if !slices.Equal(refs, []string{"A", "EXTRA", "EMPTY", "A", "A"}) {
		t.Errorf("refs = %q", refs)
	}
}

// TestExecStartFlagsExist expands ExecStart with the example environment
// and checks every flag against the real command (built for the purpose;
// skipped with -short).
func TestExecStartFlagsExist(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: not building perfleet and perfleet-agent")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bins, err := cliflags.Build(ctx, t.TempDir())
	if errors.Is(err, cliflags.ErrNoGo) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	built := map[string]string{"/usr/local/bin/perfleet": bins.Perfleet, "/usr/local/bin/perfleet-agent": bins.Agent}
	for _, s := range specs {
		u := parseUnit(t, s.file)
		line, _ := u.get("Service", "ExecStart")
		args, _ := expandExec(line, parseEnvFile(t, s.envFile))
		if len(args) < 1+len(s.subcommand) || args[0] != s.binary || !slices.Equal(args[1:1+len(s.subcommand)], s.subcommand) {
			t.Errorf("%s: ExecStart %q, want %s %v followed by flags", s.file, args, s.binary, s.subcommand)
			continue
		}
		flags, err := cliflags.Help(ctx, built[s.binary], s.subcommand...)
		if err != nil {
			t.Fatal(err)
		}
		for _, err := range flags.Check(args[1+len(s.subcommand):]) {
			t.Errorf("%s: %v", s.file, err)
		}
	}
}

// TestSystemdAnalyzeVerify runs `systemd-analyze verify` on the units, with
// ExecStart pointed at /bin/true (verify requires an executable there), and
// fails on any complaint: verify reports unknown keys and bad values as
// warnings with exit status 0.
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	dir := t.TempDir()
	var paths []string
	for _, s := range specs {
		b, err := os.ReadFile(s.file)
		if err != nil {
			t.Fatal(err)
		}
		b = []byte(strings.Replace(string(b), "ExecStart="+s.binary+" ", "ExecStart=/bin/true ", 1))
		p := filepath.Join(dir, s.file)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out, err := exec.Command(analyze, append([]string{"verify"}, paths...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	// The exposure score of `systemd-analyze security` (0 best, 10 worst),
	// where this systemd supports --offline.
	exposure := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)
	for _, p := range paths {
		out, err := exec.Command(analyze, "security", "--offline=true", "--no-pager", p).CombinedOutput()
		m := exposure.FindSubmatch(out)
		if err != nil || m == nil {
			t.Logf("systemd-analyze security --offline not available: %v", err)
			return
		}
		if score, _ := strconv.ParseFloat(string(m[1]), 64); score > 3.0 {
			t.Errorf("%s: systemd-analyze security exposure %.1f, want at most 3.0", filepath.Base(p), score)
		}
	}
}

func mergeMaps(a, b map[string]string) map[string]string {
	m := map[string]string{}
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}
