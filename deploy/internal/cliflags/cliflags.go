// Package cliflags reads the flags that perfleet's commands really define,
// so the deployment tests (Kubernetes manifests, systemd units) can check
// every flag they pass: it builds perfleet and perfleet-agent from the
// module's source and parses their --help output.
package cliflags

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// The main packages of the two commands.
const (
	CoordinatorPackage = "github.com/perfleet/perfleet/coordinator"
	AgentPackage       = "github.com/perfleet/perfleet/agent"
)

// Flag is one flag of a command.
type Flag struct {
	Name string
	// Type is the value type pflag prints in usage ("string", "int",
	// "duration", "stringArray", ...); empty for a boolean flag.
	Type string
}

// Bool reports whether the flag takes no value.
func (f Flag) Bool() bool { return f.Type == "" }

// Set is a command's flags by name (without the leading dashes).
type Set map[string]Flag

// flagLine matches one flag line of pflag's usage output:
//
//	-o, --output string    output format
//	    --insecure         talk plaintext
var flagLine = regexp.MustCompile(`^\s+(?:-[A-Za-z0-9], )?--([a-z0-9][a-z0-9-]*)(?: ([A-Za-z0-9]+))?(?:\s{2,}|$)`)

// ParseHelp reads the flags out of a cobra command's --help output (its own
// and its global flags).
func ParseHelp(help string) Set {
	s := Set{}
	for _, line := range strings.Split(help, "\n") {
		if m := flagLine.FindStringSubmatch(line); m != nil {
			s[m[1]] = Flag{Name: m[1], Type: m[2]}
		}
	}
	return s
}

// ErrNoGo means the go command is not on PATH, so nothing can be built.
var ErrNoGo = errors.New("cliflags: no go command on PATH")

// Binaries are perfleet and perfleet-agent built from this module.
type Binaries struct {
	Perfleet, Agent string
}

// BinDirEnv names a directory holding already built perfleet and
// perfleet-agent binaries (make build's bin/) for Build to use instead of
// building them.
const BinDirEnv = "PERFLEET_BIN_DIR"

// Build builds perfleet and perfleet-agent into dir with the module's
// current source, or returns the binaries in $PERFLEET_BIN_DIR when it is
// set. The binaries are built rather than imported so that a coordinator
// package that does not compile fails only the flag checks, not every test
// of the importing package.
func Build(ctx context.Context, dir string) (Binaries, error) {
	if d := os.Getenv(BinDirEnv); d != "" {
		b := Binaries{Perfleet: filepath.Join(d, "perfleet"), Agent: filepath.Join(d, "perfleet-agent")}
		for _, p := range []string{b.Perfleet, b.Agent} {
			if _, err := os.Stat(p); err != nil {
				return Binaries{}, fmt.Errorf("$%s: %v", BinDirEnv, err)
			}
		}
		return b, nil
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return Binaries{}, ErrNoGo
	}
	// One go build links both in parallel; with -o DIR/ each binary is
	// named after the last element of its package path.
	build := exec.CommandContext(ctx, goCmd, "build", "-ldflags=-s -w", "-o", dir+string(filepath.Separator), CoordinatorPackage, AgentPackage)
	build.Env = os.Environ()
	if os.Getenv("CGO_CFLAGS") == "" {
		// go-nvml's headers use deprecated declarations.
		build.Env = append(build.Env, "CGO_CFLAGS=-Wno-deprecated-declarations")
	}
	if out, err := build.CombinedOutput(); err != nil {
		return Binaries{}, fmt.Errorf("go build %s %s: %v\n%s", CoordinatorPackage, AgentPackage, err, out)
	}
	b := Binaries{Perfleet: filepath.Join(dir, "coordinator"), Agent: filepath.Join(dir, "agent")}
	return b, nil
}

// Help returns the flags a built command lists in its --help output, e.g.
// Help(ctx, b.Perfleet, "server") or Help(ctx, b.Agent).
func Help(ctx context.Context, bin string, subcommand ...string) (Set, error) {
	args := append(append([]string{}, subcommand...), "--help")
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	s := ParseHelp(string(out))
	if len(s) == 0 {
		return nil, fmt.Errorf("%s %s: no flags in:\n%s", filepath.Base(bin), strings.Join(args, " "), out)
	}
	return s, nil
}

// Check returns one error for each argument that is not a flag of s given
// as --name=value, or --name for a boolean flag. Values are not checked.
func (s Set) Check(args []string) []error {
	var errs []error
	for _, a := range args {
		name, _, hasValue := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		switch f, ok := s[name]; {
		case !strings.HasPrefix(a, "--"):
			errs = append(errs, fmt.Errorf("%q is not a --flag (give every value as --flag=value)", a))
		case !ok:
			errs = append(errs, fmt.Errorf("--%s is not a flag of the command", name))
		case !hasValue && !f.Bool():
			errs = append(errs, fmt.Errorf("--%s takes a %s value: give it as --%s=value", name, f.Type, name))
		}
	}
	return errs
}
