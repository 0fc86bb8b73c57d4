package gossip

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

func startPool(t *testing.T, name string, key []byte, file string) *Pool {
	t.Helper()
	p, err := Start(Config{Name: name, BindAddr: "127.0.0.1:0", Key: key, KeyringFile: file, Fast: true,
		Meta: &pb.GossipMeta{Role: "agent"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

func alive(p *Pool, name string) bool {
	for _, m := range p.Members() {
		if m.Name == name && m.State == StateAlive {
			return true
		}
	}
	return false
}

// TestKeyRotationLocksOutOldKeys rotates a 3-node pool from key A to key B
// and checks that a node holding only A, or no key, cannot join afterwards
// while a node with B can; the keyring file carries B across a restart.
func TestKeyRotationLocksOutOldKeys(t *testing.T) {
	a, b := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	dir := t.TempDir()
	var pools []*Pool
	for i, n := range []string{"n0", "n1", "n2"} {
		p := startPool(t, n, a, filepath.Join(dir, n+".json"))
		if i > 0 {
			if _, err := p.Join([]string{pools[0].Addr()}); err != nil {
				t.Fatal(err)
			}
		}
		pools = append(pools, p)
	}
	for _, step := range []func(*Pool) error{
		func(p *Pool) error { return p.InstallKey(b) },
		func(p *Pool) error { return p.UseKey(b) },
		func(p *Pool) error { return p.RemoveKey(a) },
	} {
		for _, p := range pools {
			if err := step(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := pools[0].RemoveKey(b); err == nil {
		t.Fatal("removing the primary key must be refused")
	}
	if primary, all := pools[1].Keys(); !bytes.Equal(primary, b) || len(all) != 1 {
		t.Fatalf("keys after rotation: %x %d", primary, len(all))
	}
	stale := startPool(t, "stale", a, "")
	_, _ = stale.Join([]string{pools[0].Addr()})
	none := startPool(t, "none", nil, "")
	_, _ = none.Join([]string{pools[0].Addr()})
	fresh := startPool(t, "fresh", b, "")
	if _, err := fresh.Join([]string{pools[0].Addr()}); err != nil {
		t.Fatalf("a node with the new key must join: %v", err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for !alive(pools[0], "fresh") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !alive(pools[0], "fresh") {
		t.Fatal("the node with the new key never appeared")
	}
	time.Sleep(time.Second)
	for _, n := range []string{"stale", "none"} {
		if alive(pools[0], n) || alive(pools[2], n) {
			t.Errorf("%s joined after the rotation", n)
		}
	}
	if err := none.InstallKey(b); err != ErrNotEncrypted {
		t.Errorf("a pool without encryption: got %v, want ErrNotEncrypted", err)
	}
	// n1 restarts with its original --gossip-key A, but its keyring file
	// holds B, so it rejoins.
	_ = pools[1].Shutdown()
	again := startPool(t, "n1b", a, filepath.Join(dir, "n1.json"))
	if _, err := again.Join([]string{pools[0].Addr()}); err != nil {
		t.Fatalf("restart from the keyring file: %v", err)
	}
}
