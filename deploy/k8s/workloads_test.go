package k8s

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// requiredKeysAnnotation lists, on each Secret template, the keys the Secret
// must hold.
const requiredKeysAnnotation = "perfleet/required-keys"

// gpuResource is the extended resource the NVIDIA device plugin offers.
const gpuResource corev1.ResourceName = "nvidia.com/gpu"

// workload is a pod-creating object: its name, selector check and template.
type workload struct {
	name     string
	labels   map[string]string
	spec     corev1.PodSpec
	claims   []string // volumeClaimTemplates names
	selected bool     // the selector matches the template labels
}

func workloads(t *testing.T, objs []object) []workload {
	t.Helper()
	var out []workload
	for _, s := range all[appsv1.StatefulSet](objs) {
		w := workload{name: "StatefulSet/" + s.Name, labels: s.Spec.Template.Labels, spec: s.Spec.Template.Spec,
			selected: selects(t, s.Spec.Selector, s.Spec.Template.Labels)}
		for _, c := range s.Spec.VolumeClaimTemplates {
			w.claims = append(w.claims, c.Name)
		}
		out = append(out, w)
	}
	for _, d := range all[appsv1.DaemonSet](objs) {
		out = append(out, workload{name: "DaemonSet/" + d.Name, labels: d.Spec.Template.Labels, spec: d.Spec.Template.Spec,
			selected: selects(t, d.Spec.Selector, d.Spec.Template.Labels)})
	}
	return out
}

func TestServerStatefulSet(t *testing.T) {
	objs := loadObjects(t)
	sets := all[appsv1.StatefulSet](objs)
	if len(sets) != 1 {
		t.Fatalf("want one StatefulSet, have %d", len(sets))
	}
	s := sets[0]
	if s.Spec.Replicas == nil {
		t.Fatalf("StatefulSet %s: no replicas, want 3", s.Name)
	}
	if *s.Spec.Replicas != 3 {
		t.Errorf("StatefulSet %s: replicas %d, want 3", s.Name, *s.Spec.Replicas)
	}
	if !selects(t, s.Spec.Selector, s.Spec.Template.Labels) {
		t.Errorf("StatefulSet %s: selector %v does not match template labels %v", s.Name, s.Spec.Selector, s.Spec.Template.Labels)
	}

	var headless *corev1.Service
	for _, svc := range all[corev1.Service](objs) {
		if svc.Name == s.Spec.ServiceName {
			headless = &svc
		}
	}
	switch {
	case headless == nil:
		t.Fatalf("StatefulSet %s: serviceName %q is not a Service in the manifests", s.Name, s.Spec.ServiceName)
	case headless.Spec.ClusterIP != corev1.ClusterIPNone:
		t.Errorf("Service %s: clusterIP %q, want None (headless)", headless.Name, headless.Spec.ClusterIP)
	case !headless.Spec.PublishNotReadyAddresses:
		t.Errorf("Service %s: publishNotReadyAddresses must be true so coordinators find each other before they are ready", headless.Name)
	}
	if !selects(t, metaSelector(headless.Spec.Selector), s.Spec.Template.Labels) {
		t.Errorf("Service %s: selector %v does not select the StatefulSet's pods", headless.Name, headless.Spec.Selector)
	}
	for _, p := range []struct {
		port  int32
		proto corev1.Protocol
	}{{7233, corev1.ProtocolTCP}, {7234, corev1.ProtocolTCP}, {7235, corev1.ProtocolTCP}, {7235, corev1.ProtocolUDP}, {8443, corev1.ProtocolTCP}, {9090, corev1.ProtocolTCP}} {
		if !slices.ContainsFunc(headless.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Port == p.port && sp.Protocol == p.proto }) {
			t.Errorf("Service %s: no %s port %d", headless.Name, p.proto, p.port)
		}
	}

	pdbs := all[policyv1.PodDisruptionBudget](objs)
	if len(pdbs) != 1 {
		t.Fatalf("want one PodDisruptionBudget, have %d", len(pdbs))
	}
	if pdb := pdbs[0]; !selects(t, pdb.Spec.Selector, s.Spec.Template.Labels) {
		t.Errorf("PodDisruptionBudget %s: selector does not match the StatefulSet's pods", pdb.Name)
	} else if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.MinAvailable != nil {
		t.Errorf("PodDisruptionBudget %s: want maxUnavailable 1 (and no minAvailable)", pdb.Name)
	}

	if aff := s.Spec.Template.Spec.Affinity; aff == nil || aff.PodAntiAffinity == nil ||
		!slices.ContainsFunc(aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution, func(term corev1.PodAffinityTerm) bool {
			return term.TopologyKey == "kubernetes.io/hostname" && selects(t, term.LabelSelector, s.Spec.Template.Labels)
		}) {
		t.Errorf("StatefulSet %s: no required pod anti-affinity across nodes (kubernetes.io/hostname)", s.Name)
	}

	c := s.Spec.Template.Spec.Containers[0]
	args := flagValues(c.Args)
	if got := args["bootstrap-expect"]; got != "3" {
		t.Errorf("StatefulSet %s: --bootstrap-expect %q, want 3", s.Name, got)
	}
	var want []string
	for i := range *s.Spec.Replicas {
		want = append(want, fmt.Sprintf("%s-%d.%s.%s.svc:7233", s.Name, i, headless.Name, namespace))
	}
	if got := strings.Split(args["join"], ","); !slices.Equal(got, want) {
		t.Errorf("StatefulSet %s: --join %v, want the pods' headless DNS names %v", s.Name, got, want)
	}
	if args["node-id"] != "$(POD_NAME)" {
		t.Errorf("StatefulSet %s: --node-id %q, want $(POD_NAME)", s.Name, args["node-id"])
	}
	dataDir := args["data-dir"]
	if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.MountPath == dataDir && slices.ContainsFunc(s.Spec.VolumeClaimTemplates, func(p corev1.PersistentVolumeClaim) bool { return p.Name == m.Name })
	}) {
		t.Errorf("StatefulSet %s: --data-dir %q is not on a volumeClaimTemplate", s.Name, dataDir)
	}
	for _, name := range []string{"tls-ca-file", "tls-cert-file", "tls-key-file", "gossip-key-file", "encryption-keyring-file"} {
		if !mountedFromSecret(c, s.Spec.Template.Spec, args[name]) {
			t.Errorf("StatefulSet %s: --%s %q is not a file of a mounted Secret", s.Name, name, args[name])
		}
	}
	if c.ReadinessProbe == nil || c.LivenessProbe == nil {
		t.Errorf("StatefulSet %s: container %s needs readiness and liveness probes", s.Name, c.Name)
	}
}

func TestAgentDaemonSet(t *testing.T) {
	objs := loadObjects(t)
	sets := all[appsv1.DaemonSet](objs)
	if len(sets) != 1 {
		t.Fatalf("want one DaemonSet, have %d", len(sets))
	}
	d := sets[0]
	spec := d.Spec.Template.Spec
	if !selects(t, d.Spec.Selector, d.Spec.Template.Labels) {
		t.Errorf("DaemonSet %s: selector does not match template labels", d.Name)
	}
	if spec.NodeSelector["nvidia.com/gpu.present"] != "true" {
		t.Errorf("DaemonSet %s: nodeSelector %v does not pick GPU nodes (nvidia.com/gpu.present)", d.Name, spec.NodeSelector)
	}
	c := spec.Containers[0]
	if q, ok := c.Resources.Limits[gpuResource]; !ok || q.Cmp(resource.MustParse("1")) < 0 {
		t.Errorf("DaemonSet %s: container %s does not request %s", d.Name, c.Name, gpuResource)
	}
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
		return e.Name == "NVIDIA_DRIVER_CAPABILITIES" && strings.Contains(e.Value, "utility")
	}) {
		t.Errorf("DaemonSet %s: NVIDIA_DRIVER_CAPABILITIES must include utility (NVML)", d.Name)
	}

	args := flagValues(c.Args)
	sts := all[appsv1.StatefulSet](objs)[0]
	for _, addr := range strings.Split(args["join"], ",") {
		if !strings.HasPrefix(addr, sts.Name+"-") || !strings.HasSuffix(addr, "."+sts.Spec.ServiceName+"."+namespace+".svc:7235") {
			t.Errorf("DaemonSet %s: --join %q is not a coordinator's gossip address through the headless Service", d.Name, addr)
		}
	}
	for _, name := range []string{"ca-file", "cert-file", "key-file", "gossip-key-file"} {
		if !mountedFromSecret(c, spec, args[name]) {
			t.Errorf("DaemonSet %s: --%s %q is not a file of a mounted Secret", d.Name, name, args[name])
		}
	}
}

func TestClientService(t *testing.T) {
	objs := loadObjects(t)
	sts := all[appsv1.StatefulSet](objs)[0]
	found := false
	for _, svc := range all[corev1.Service](objs) {
		if svc.Name == sts.Spec.ServiceName {
			continue
		}
		found = true
		if !selects(t, metaSelector(svc.Spec.Selector), sts.Spec.Template.Labels) {
			t.Errorf("Service %s does not select the coordinators", svc.Name)
		}
		for _, p := range svc.Spec.Ports {
			if p.Port != 7233 && p.Port != 8443 {
				t.Errorf("client Service %s exposes port %d; only the API (7233) and gateway (8443) are for clients", svc.Name, p.Port)
			}
		}
	}
	if !found {
		t.Error("no client Service for the coordinators")
	}
}

// TestPodSpecs checks every container of every workload: image, resources,
// security context, volumes, Secrets and named ports.
func TestPodSpecs(t *testing.T) {
	objs := loadObjects(t)
	secrets := map[string][]string{}
	for _, s := range all[corev1.Secret](objs) {
		if len(s.Data) > 0 || len(s.StringData) > 0 {
			t.Errorf("Secret %s holds data: the manifests carry templates only, never key material", s.Name)
		}
		keys := s.Annotations[requiredKeysAnnotation]
		if keys == "" {
			t.Errorf("Secret %s: no %s annotation", s.Name, requiredKeysAnnotation)
		}
		secrets[s.Name] = strings.Split(keys, ",")
	}
	accounts := map[string]bool{}
	for _, sa := range all[corev1.ServiceAccount](objs) {
		accounts[sa.Name] = true
	}
	ws := workloads(t, objs)
	if len(ws) == 0 {
		t.Fatal("no workloads")
	}
	for _, w := range ws {
		if !w.selected {
			t.Errorf("%s: selector does not match the template labels", w.name)
		}
		if !accounts[w.spec.ServiceAccountName] {
			t.Errorf("%s: serviceAccountName %q is not a ServiceAccount in the manifests", w.name, w.spec.ServiceAccountName)
		}
		volumes := map[string]corev1.Volume{}
		for _, v := range w.spec.Volumes {
			volumes[v.Name] = v
			if v.Secret == nil {
				continue
			}
			keys, ok := secrets[v.Secret.SecretName]
			if !ok {
				t.Errorf("%s: volume %s uses Secret %q, which the manifests do not define", w.name, v.Name, v.Secret.SecretName)
			}
			if len(v.Secret.Items) == 0 {
				t.Errorf("%s: volume %s mounts Secret %s without items; list the keys", w.name, v.Name, v.Secret.SecretName)
			}
			for _, it := range v.Secret.Items {
				if !slices.Contains(keys, it.Key) {
					t.Errorf("%s: volume %s mounts key %q, not one of Secret %s's %s %v", w.name, v.Name, it.Key, v.Secret.SecretName, requiredKeysAnnotation, keys)
				}
			}
		}
		for _, c := range append(slices.Clone(w.spec.InitContainers), w.spec.Containers...) {
			where := fmt.Sprintf("%s container %s", w.name, c.Name)
			checkContainer(t, where, c, w.spec.SecurityContext)
			for _, m := range c.VolumeMounts {
				if _, ok := volumes[m.Name]; !ok && !slices.Contains(w.claims, m.Name) {
					t.Errorf("%s: volumeMount %q names no volume or volumeClaimTemplate", where, m.Name)
				}
				if m.SubPath != "" {
					t.Errorf("%s: volumeMount %q uses subPath; Secret updates would never reach it", where, m.Name)
				}
			}
		}
	}
}

func checkContainer(t *testing.T, where string, c corev1.Container, pod *corev1.PodSecurityContext) {
	t.Helper()
	if c.Image == "" {
		t.Errorf("%s: no image", where)
	}
	if len(c.Resources.Requests) == 0 || len(c.Resources.Limits) == 0 {
		t.Errorf("%s: needs resource requests and limits", where)
	}
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
		t.Errorf("%s: no memory limit", where)
	}
	sc := c.SecurityContext
	if sc == nil {
		t.Errorf("%s: no securityContext", where)
		return
	}
	nonRoot := sc.RunAsNonRoot
	if nonRoot == nil && pod != nil {
		nonRoot = pod.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot {
		t.Errorf("%s: runAsNonRoot must be true", where)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: readOnlyRootFilesystem must be true", where)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: allowPrivilegeEscalation must be false", where)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("%s: privileged", where)
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		t.Errorf("%s: capabilities must drop ALL and add none", where)
	}
	ports := map[string]bool{}
	for _, p := range c.Ports {
		ports[p.Name] = true
	}
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil {
			continue
		}
		if p.TCPSocket != nil && p.TCPSocket.Port.StrVal != "" && !ports[p.TCPSocket.Port.StrVal] {
			t.Errorf("%s: %s probe names port %q, which the container does not declare", where, name, p.TCPSocket.Port.StrVal)
		}
	}
}

// mountedFromSecret reports whether path is a file that a Secret volume
// mounted into c provides.
func mountedFromSecret(c corev1.Container, spec corev1.PodSpec, path string) bool {
	for _, m := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !ok {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.Secret != nil &&
				slices.ContainsFunc(v.Secret.Items, func(it corev1.KeyToPath) bool { return it.Path == rel }) {
				return true
			}
		}
	}
	return false
}
