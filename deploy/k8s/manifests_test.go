// Package k8s holds perfleet's Kubernetes manifests. Its tests validate them
// offline: every YAML document is decoded strictly (unknown, duplicate or
// wrongly cased fields fail) into the Kubernetes API type of its kind, and the
// relationships between the objects are checked (selectors, Services,
// volumes, Secrets, NetworkPolicies, the flags the containers pass).
package k8s

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// namespace is where every namespaced object must live.
const namespace = "perfleet"

// kustomizationFile lists the other files; it is not a Kubernetes object.
const kustomizationFile = "kustomization.yaml"

// object is one decoded manifest document.
type object struct {
	file string // base name of the YAML file
	kind string
	api  string // apiVersion
	meta *metav1.ObjectMeta
	obj  any // pointer to the k8s.io/api type
}

func (o object) String() string {
	return fmt.Sprintf("%s %s/%s (%s)", o.kind, o.meta.Namespace, o.meta.Name, o.file)
}

// kinds maps each kind the manifests may use to its apiVersion and a
// constructor of its API type.
var kinds = map[string]struct {
	apiVersion string
	namespaced bool
	new        func() (any, *metav1.ObjectMeta)
}{
	"Namespace":           {"v1", false, func() (any, *metav1.ObjectMeta) { o := &corev1.Namespace{}; return o, &o.ObjectMeta }},
	"ServiceAccount":      {"v1", true, func() (any, *metav1.ObjectMeta) { o := &corev1.ServiceAccount{}; return o, &o.ObjectMeta }},
	"Secret":              {"v1", true, func() (any, *metav1.ObjectMeta) { o := &corev1.Secret{}; return o, &o.ObjectMeta }},
	"Service":             {"v1", true, func() (any, *metav1.ObjectMeta) { o := &corev1.Service{}; return o, &o.ObjectMeta }},
	"StatefulSet":         {"apps/v1", true, func() (any, *metav1.ObjectMeta) { o := &appsv1.StatefulSet{}; return o, &o.ObjectMeta }},
	"DaemonSet":           {"apps/v1", true, func() (any, *metav1.ObjectMeta) { o := &appsv1.DaemonSet{}; return o, &o.ObjectMeta }},
	"PodDisruptionBudget": {"policy/v1", true, func() (any, *metav1.ObjectMeta) { o := &policyv1.PodDisruptionBudget{}; return o, &o.ObjectMeta }},
	"NetworkPolicy":       {"networking.k8s.io/v1", true, func() (any, *metav1.ObjectMeta) { o := &networkingv1.NetworkPolicy{}; return o, &o.ObjectMeta }},
}

// manifestFiles returns the YAML files of this directory except the
// kustomization, sorted.
func manifestFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files = slices.DeleteFunc(files, func(f string) bool { return f == kustomizationFile })
	if len(files) == 0 {
		t.Fatal("no manifests found")
	}
	sort.Strings(files)
	return files
}

// splitDocuments splits a YAML stream at its "---" lines and drops documents
// that hold only comments and blank lines.
func splitDocuments(b []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	flush := func() {
		for _, line := range strings.Split(cur.String(), "\n") {
			if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
				docs = append(docs, bytes.Clone(cur.Bytes()))
				break
			}
		}
		cur.Reset()
	}
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if strings.TrimRight(line, " \t\r\n") == "---" {
			flush()
			continue
		}
		cur.WriteString(line)
	}
	flush()
	return docs
}

// loadObjects decodes every document of every manifest strictly into its
// API type and fails the test on anything unknown.
func loadObjects(t *testing.T) []object {
	t.Helper()
	var out []object
	seen := map[string]string{}
	for _, f := range manifestFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs := splitDocuments(b)
		if len(docs) == 0 {
			t.Errorf("%s: no YAML documents", f)
		}
		for i, doc := range docs {
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			k, ok := kinds[tm.Kind]
			if !ok {
				t.Errorf("%s document %d: kind %q is not one the test knows; add it to kinds", f, i, tm.Kind)
				continue
			}
			if tm.APIVersion != k.apiVersion {
				t.Errorf("%s document %d: %s has apiVersion %q, want %q", f, i, tm.Kind, tm.APIVersion, k.apiVersion)
			}
			obj, meta := k.new()
			if err := decodeStrict(doc, obj); err != nil {
				t.Errorf("%s document %d (%s): strict decoding: %v", f, i, tm.Kind, err)
				continue
			}
			o := object{file: f, kind: tm.Kind, api: tm.APIVersion, meta: meta, obj: obj}
			switch {
			case meta.Name == "":
				t.Errorf("%s document %d: %s has no name", f, i, tm.Kind)
			case k.namespaced && meta.Namespace != namespace:
				t.Errorf("%s: namespace %q, want %q", o, meta.Namespace, namespace)
			case !k.namespaced && meta.Namespace != "":
				t.Errorf("%s: cluster-scoped object with a namespace", o)
			}
			key := tm.Kind + "/" + meta.Name
			if prev, dup := seen[key]; dup {
				t.Errorf("%s: defined again (first in %s)", o, prev)
			}
			seen[key] = f
			out = append(out, o)
		}
	}
	return out
}

// all returns the objects of type T.
func all[T any](objs []object) []T {
	var out []T
	for _, o := range objs {
		if v, ok := o.obj.(*T); ok {
			out = append(out, *v)
		}
	}
	return out
}

// selects reports whether a label selector matches a set of labels; a nil
// selector matches nothing.
func selects(t *testing.T, sel *metav1.LabelSelector, lbls map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("label selector %v: %v", sel, err)
	}
	return s.Matches(labels.Set(lbls))
}

func TestManifestsDecodeStrictly(t *testing.T) {
	objs := loadObjects(t)
	count := map[string]int{}
	for _, o := range objs {
		count[o.kind]++
	}
	for kind := range kinds {
		if count[kind] == 0 {
			t.Errorf("no %s in the manifests", kind)
		}
	}
	ns := all[corev1.Namespace](objs)
	if len(ns) != 1 || ns[0].Name != namespace {
		t.Errorf("want exactly the Namespace %q, have %v", namespace, ns)
	}
}

// TestSplitDocuments checks the splitter on the cases the manifests use.
func TestSplitDocuments(t *testing.T) {
	in := "# header only\n---\na: 1\n---\n# c\n\n--- \nb: 2\n# trailing\n"
	got := splitDocuments([]byte(in))
	if len(got) != 2 || !strings.Contains(string(got[0]), "a: 1") || !strings.Contains(string(got[1]), "b: 2") {
		t.Fatalf("splitDocuments = %q", got)
	}
}

func TestStrictDecodingRejectsUnknownFields(t *testing.T) {
	doc := []byte("apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  clusterIp: None\n")
	if err := yaml.UnmarshalStrict(doc, &corev1.Service{}); err != nil {
		// sigs.k8s.io/yaml matches field names case-insensitively, as
		// encoding/json does; if that changes, decodeStrict's second pass
		// is redundant but harmless.
		t.Logf("sigs.k8s.io/yaml alone rejects it: %v", err)
	}
	if err := decodeStrict(doc, &corev1.Service{}); err == nil || !strings.Contains(err.Error(), "clusterIp") {
		t.Fatalf("decodeStrict of a misspelt field (clusterIp) = %v, want an error naming it", err)
	}
	dup := []byte("apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n  name: y\n")
	if err := decodeStrict(dup, &corev1.Service{}); err == nil {
		t.Fatal("a duplicate field decoded without error")
	}
	unknown := []byte("apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  clusterIPs2: []\n")
	if err := decodeStrict(unknown, &corev1.Service{}); err == nil {
		t.Fatal("an unknown field decoded without error")
	}
}

// decodeStrict decodes one YAML document into obj, a pointer to an API
// type, and fails on unknown and duplicate fields. sigs.k8s.io/yaml's
// UnmarshalStrict catches unknown and duplicate fields but, like
// encoding/json, matches names case-insensitively (clusterIp would set
// clusterIP); the API server does not, so a second pass decodes the same
// JSON with sigs.k8s.io/json's case-sensitive strict decoder, as the API
// server's strict field validation does.
func decodeStrict(doc []byte, obj any) error {
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return err
	}
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	fresh := reflect.New(reflect.TypeOf(obj).Elem()).Interface()
	strict, err := kjson.UnmarshalStrict(j, fresh)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// kustomization is the part of a Kustomization the manifests use.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
	} `json:"images"`
}

func TestKustomizationListsEveryFile(t *testing.T) {
	b, err := os.ReadFile(kustomizationFile)
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := decodeStrict(b, &k); err != nil {
		t.Fatalf("%s: %v", kustomizationFile, err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("%s: apiVersion %q kind %q", kustomizationFile, k.APIVersion, k.Kind)
	}
	listed := slices.Clone(k.Resources)
	sort.Strings(listed)
	if want := manifestFiles(t); !slices.Equal(listed, want) {
		t.Errorf("%s resources = %v, want every manifest: %v", kustomizationFile, listed, want)
	}
	images := map[string]bool{}
	for _, o := range loadObjects(t) {
		for _, c := range podSpecOf(o).Containers {
			images[strings.Split(c.Image, ":")[0]] = true
		}
	}
	for _, img := range k.Images {
		if !images[img.Name] {
			t.Errorf("%s: images entry %q matches no container image", kustomizationFile, img.Name)
		}
	}
}

// podSpecOf returns the pod template spec of a workload, or an empty spec.
func podSpecOf(o object) corev1.PodSpec {
	switch w := o.obj.(type) {
	case *appsv1.StatefulSet:
		return w.Spec.Template.Spec
	case *appsv1.DaemonSet:
		return w.Spec.Template.Spec
	}
	return corev1.PodSpec{}
}

// TestKustomizeBuild renders the kustomization with kubectl's built-in
// kustomize, offline, when kubectl is installed, and checks that it yields
// every object, each still decoding strictly.
func TestKustomizeBuild(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed")
	}
	out, err := exec.Command(kubectl, "kustomize", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v\n%s", err, out)
	}
	want := map[string]bool{}
	for _, o := range loadObjects(t) {
		want[o.kind+"/"+o.meta.Name] = true
	}
	got := map[string]bool{}
	for i, doc := range splitDocuments(out) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("rendered document %d: %v", i, err)
		}
		k, ok := kinds[tm.Kind]
		if !ok {
			t.Errorf("rendered document %d: unexpected kind %q", i, tm.Kind)
			continue
		}
		obj, meta := k.new()
		if err := decodeStrict(doc, obj); err != nil {
			t.Errorf("rendered %s: %v", tm.Kind, err)
		}
		got[tm.Kind+"/"+meta.Name] = true
	}
	if !maps.Equal(got, want) {
		t.Errorf("kubectl kustomize rendered %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
}
