package cliflags

import (
	"strings"
	"testing"
)

const help = `Usage:
  perfleet server [flags]

Flags:
      --bootstrap-expect int     form a new cluster
  -h, --help                     help for server
      --insecure-loopback        serve plaintext
      --label stringArray        label as key=value
      --tls-ca-file string       PEM CA certificate

Global Flags:
  -o, --output string      output format
`

func TestParseHelp(t *testing.T) {
	s := ParseHelp(help)
	want := map[string]string{"bootstrap-expect": "int", "help": "", "insecure-loopback": "", "label": "stringArray", "tls-ca-file": "string", "output": "string"}
	if len(s) != len(want) {
		t.Fatalf("ParseHelp = %v, want %v", s, want)
	}
	for name, typ := range want {
		if f, ok := s[name]; !ok || f.Type != typ {
			t.Errorf("flag %s = %+v, want type %q", name, f, typ)
		}
	}
}

func TestCheck(t *testing.T) {
	s := ParseHelp(help)
	if errs := s.Check([]string{"--bootstrap-expect=3", "--insecure-loopback", "--label=a=b", "--tls-ca-file=/x"}); len(errs) != 0 {
		t.Errorf("valid arguments: %v", errs)
	}
	for arg, want := range map[string]string{
		"--bootstrap-expct=3": "not a flag",
		"--tls-ca-file":       "takes a string value",
		"value":               "not a --flag",
		"-o=json":             "not a --flag",
	} {
		errs := s.Check([]string{arg})
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), want) {
			t.Errorf("Check(%q) = %v, want an error containing %q", arg, errs, want)
		}
	}
}
