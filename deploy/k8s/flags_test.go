package k8s

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/perfleet/perfleet/deploy/internal/cliflags"
)

// flagValues maps each --name=value argument to its value ("true" for a bare
// --name); other arguments are left out.
func flagValues(args []string) map[string]string {
	m := map[string]string{}
	for _, a := range args {
		if name, ok := strings.CutPrefix(a, "--"); ok {
			k, v, hasValue := strings.Cut(name, "=")
			if !hasValue {
				v = "true"
			}
			m[k] = v
		}
	}
	return m
}

// metaSelector turns a Service's selector map into a label selector.
func metaSelector(m map[string]string) *metav1.LabelSelector {
	if len(m) == 0 {
		return nil
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

// TestContainerFlagsExist checks every argument the containers pass against
// the flags the real commands define: perfleet and perfleet-agent are built
// from this module and asked for --help (skipped with -short).
func TestContainerFlagsExist(t *testing.T) {
	objs := loadObjects(t)
	if testing.Short() {
		t.Skip("-short: not building perfleet and perfleet-agent to check the containers' flags")
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
	server, err := cliflags.Help(ctx, bins.Perfleet, "server")
	if err != nil {
		t.Fatal(err)
	}
	agent, err := cliflags.Help(ctx, bins.Agent)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all[appsv1.StatefulSet](objs) {
		for _, c := range s.Spec.Template.Spec.Containers {
			if len(c.Command) != 0 || len(c.Args) == 0 || c.Args[0] != "server" {
				t.Errorf("StatefulSet %s container %s: want the image's entrypoint (/perfleet) with args starting \"server\", have command %q args %q", s.Name, c.Name, c.Command, c.Args)
				continue
			}
			for _, err := range server.Check(c.Args[1:]) {
				t.Errorf("StatefulSet %s container %s: perfleet server: %v", s.Name, c.Name, err)
			}
		}
	}
	for _, d := range all[appsv1.DaemonSet](objs) {
		for _, c := range d.Spec.Template.Spec.Containers {
			if len(c.Command) != 1 || c.Command[0] != "/perfleet-agent" {
				t.Errorf("DaemonSet %s container %s: command %q, want [/perfleet-agent]", d.Name, c.Name, c.Command)
				continue
			}
			for _, err := range agent.Check(c.Args) {
				t.Errorf("DaemonSet %s container %s: perfleet-agent: %v", d.Name, c.Name, err)
			}
		}
	}
}

func TestFlagValues(t *testing.T) {
	got := flagValues([]string{"server", "--a=1", "--b", "--c=x=y"})
	if len(got) != 3 || got["a"] != "1" || got["b"] != "true" || got["c"] != "x=y" {
		t.Fatalf("flagValues = %v", got)
	}
}
