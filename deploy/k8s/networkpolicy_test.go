package k8s

import (
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// peer is a pod that opens a connection: its namespace, that namespace's
// labels, and its own labels.
type peer struct {
	name      string
	namespace string
	nsLabels  map[string]string
	labels    map[string]string
}

// connection is one flow the policies must allow or deny.
type connection struct {
	from  peer
	to    map[string]string // labels of the destination pod in namespace
	port  int32
	proto corev1.Protocol
	allow bool
}

func (c connection) String() string {
	verb := "denied"
	if c.allow {
		verb = "allowed"
	}
	return fmt.Sprintf("%s -> %v %d/%s should be %s", c.from.name, c.to, c.port, c.proto, verb)
}

// allowed evaluates NetworkPolicy ingress semantics for one connection into
// a pod of namespace: with no policy selecting the pod everything is
// allowed; otherwise a connection is allowed when some selecting policy has
// a rule whose peers and ports both match. ipBlock peers never match a pod
// here, and named ports are not resolved (the manifests use numbers).
func allowed(t *testing.T, policies []networkingv1.NetworkPolicy, c connection) bool {
	t.Helper()
	isolated := false
	for _, p := range policies {
		if p.Namespace != namespace || !selects(t, &p.Spec.PodSelector, c.to) || !hasIngressType(p) {
			continue
		}
		isolated = true
		for _, rule := range p.Spec.Ingress {
			if peersMatch(t, rule.From, c.from) && portsMatch(rule.Ports, c.port, c.proto) {
				return true
			}
		}
	}
	return !isolated
}

func hasIngressType(p networkingv1.NetworkPolicy) bool {
	if len(p.Spec.PolicyTypes) == 0 {
		return true // Ingress is implied
	}
	for _, pt := range p.Spec.PolicyTypes {
		if pt == networkingv1.PolicyTypeIngress {
			return true
		}
	}
	return false
}

func peersMatch(t *testing.T, from []networkingv1.NetworkPolicyPeer, src peer) bool {
	if len(from) == 0 {
		return true
	}
	for _, p := range from {
		switch {
		case p.IPBlock != nil:
		case p.NamespaceSelector == nil:
			if src.namespace == namespace && selects(t, p.PodSelector, src.labels) {
				return true
			}
		case selects(t, p.NamespaceSelector, src.nsLabels):
			if p.PodSelector == nil || selects(t, p.PodSelector, src.labels) {
				return true
			}
		}
	}
	return false
}

func portsMatch(ports []networkingv1.NetworkPolicyPort, port int32, proto corev1.Protocol) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		pp := corev1.ProtocolTCP
		if p.Protocol != nil {
			pp = *p.Protocol
		}
		if pp != proto {
			continue
		}
		if p.Port == nil || (p.Port.StrVal == "" && p.Port.IntVal == port) {
			return true
		}
	}
	return false
}

func TestNetworkPolicies(t *testing.T) {
	objs := loadObjects(t)
	policies := all[networkingv1.NetworkPolicy](objs)
	server := all[appsv1.StatefulSet](objs)[0].Spec.Template.Labels
	agent := all[appsv1.DaemonSet](objs)[0].Spec.Template.Labels

	denyAll := false
	for _, p := range policies {
		if len(p.Spec.PodSelector.MatchLabels) == 0 && len(p.Spec.PodSelector.MatchExpressions) == 0 &&
			hasIngressType(p) && len(p.Spec.Ingress) == 0 {
			denyAll = true
		}
	}
	if !denyAll {
		t.Error("no default-deny ingress policy (empty podSelector, policyTypes [Ingress], no rules)")
	}

	nsLabels := map[string]string{"kubernetes.io/metadata.name": namespace}
	srv := peer{name: "coordinator", namespace: namespace, nsLabels: nsLabels, labels: server}
	agt := peer{name: "agent", namespace: namespace, nsLabels: nsLabels, labels: agent}
	stranger := peer{name: "unlabelled pod in perfleet", namespace: namespace, nsLabels: nsLabels, labels: map[string]string{"app": "other"}}
	client := peer{name: "client pod", namespace: "apps", nsLabels: map[string]string{"kubernetes.io/metadata.name": "apps"},
		labels: map[string]string{"perfleet/client": "true"}}
	nonClient := peer{name: "unlabelled pod elsewhere", namespace: "apps", nsLabels: client.nsLabels, labels: map[string]string{"app": "web"}}
	prometheus := peer{name: "prometheus", namespace: "monitoring",
		nsLabels: map[string]string{"kubernetes.io/metadata.name": "monitoring", "perfleet/monitoring": "true"},
		labels:   map[string]string{"app.kubernetes.io/name": "prometheus"}}
	otherNS := peer{name: "pod in an unlabelled namespace", namespace: "default",
		nsLabels: map[string]string{"kubernetes.io/metadata.name": "default"}, labels: map[string]string{"app.kubernetes.io/name": "prometheus"}}

	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	var conns []connection
	add := func(from peer, to map[string]string, allow bool, proto corev1.Protocol, ports ...int32) {
		for _, p := range ports {
			conns = append(conns, connection{from: from, to: to, port: p, proto: proto, allow: allow})
		}
	}
	// coordinator <-> coordinator: API, Raft, gossip
	add(srv, server, true, tcp, 7233, 7234, 7235)
	add(srv, server, true, udp, 7235)
	// agents -> coordinators: API and gossip, never Raft or the gateway
	add(agt, server, true, tcp, 7233, 7235)
	add(agt, server, true, udp, 7235)
	add(agt, server, false, tcp, 7234, 8443)
	// gossip into agents, from coordinators and other agents
	add(srv, agent, true, tcp, 7235)
	add(srv, agent, true, udp, 7235)
	add(agt, agent, true, tcp, 7235)
	add(agt, agent, true, udp, 7235)
	// clients -> coordinators: API and gateway only
	add(client, server, true, tcp, 7233, 8443)
	add(client, server, false, tcp, 7234, 7235, 9090)
	add(client, agent, false, tcp, 7235, 9090)
	add(nonClient, server, false, tcp, 7233, 8443)
	add(stranger, server, false, tcp, 7233, 7234, 7235, 8443, 9090)
	add(stranger, agent, false, tcp, 7235, 9090)
	// Prometheus from a namespace labelled for monitoring
	add(prometheus, server, true, tcp, 9090)
	add(prometheus, agent, true, tcp, 9090)
	add(prometheus, server, false, tcp, 7233, 7234)
	add(otherNS, server, false, tcp, 9090)
	add(otherNS, agent, false, tcp, 9090)

	for _, c := range conns {
		if got := allowed(t, policies, c); got != c.allow {
			t.Errorf("%s, is %v", c, got)
		}
	}
}

// TestNetworkPolicyPortsAreServed checks that every port a policy opens is
// a port that a pod it selects declares, so no rule silently opens nothing.
func TestNetworkPolicyPortsAreServed(t *testing.T) {
	objs := loadObjects(t)
	ws := workloads(t, objs)
	for _, p := range all[networkingv1.NetworkPolicy](objs) {
		var selected []workload
		for _, w := range ws {
			if selects(t, &p.Spec.PodSelector, w.labels) {
				selected = append(selected, w)
			}
		}
		if len(selected) == 0 {
			t.Errorf("NetworkPolicy %s selects no workload's pods", p.Name)
			continue
		}
		for _, rule := range p.Spec.Ingress {
			for _, port := range rule.Ports {
				proto := corev1.ProtocolTCP
				if port.Protocol != nil {
					proto = *port.Protocol
				}
				if port.Port == nil || port.Port.StrVal != "" {
					t.Errorf("NetworkPolicy %s: give ports as numbers", p.Name)
					continue
				}
				if !declaresPort(selected, port.Port.IntVal, proto) {
					t.Errorf("NetworkPolicy %s opens %d/%s, which no pod it selects declares", p.Name, port.Port.IntVal, proto)
				}
			}
		}
	}
}

func declaresPort(ws []workload, port int32, proto corev1.Protocol) bool {
	for _, w := range ws {
		for _, c := range w.spec.Containers {
			for _, cp := range c.Ports {
				pp := cp.Protocol
				if pp == "" {
					pp = corev1.ProtocolTCP
				}
				if cp.ContainerPort == port && pp == proto {
					return true
				}
			}
		}
	}
	return false
}
