package gossip

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrNotEncrypted is returned by keyring changes on a pool started without
// a key: memberlist cannot turn encryption on in a running pool.
var ErrNotEncrypted = errors.New("gossip is not encrypted on this node (started without a gossip key); encryption cannot be turned on while running")

// CheckKey validates a gossip key's length.
func CheckKey(k []byte) error {
	if n := len(k); n != 16 && n != 24 && n != 32 {
		return fmt.Errorf("a gossip key must be 16, 24 or 32 bytes (AES-128/192/256), got %d", n)
	}
	return nil
}

// Keys returns the primary key, which encrypts what this node sends, and
// every installed key, which it accepts; nil when not encrypted.
func (p *Pool) Keys() (primary []byte, all [][]byte) {
	if p.keyring == nil {
		return nil, nil
	}
	return p.keyring.GetPrimaryKey(), p.keyring.GetKeys()
}

// InstallKey adds a key this node accepts; it does not yet send with it.
func (p *Pool) InstallKey(k []byte) error {
	return p.change(k, func() error { return p.keyring.AddKey(k) })
}

// UseKey makes an installed key the primary one.
func (p *Pool) UseKey(k []byte) error {
	return p.change(k, func() error { return p.keyring.UseKey(k) })
}

// RemoveKey removes a key that is not the primary one; nodes that hold only
// that key can no longer talk to this one.
func (p *Pool) RemoveKey(k []byte) error {
	return p.change(k, func() error {
		if bytes.Equal(p.keyring.GetPrimaryKey(), k) {
			return errors.New("the primary gossip key cannot be removed; use another key first")
		}
		return p.keyring.RemoveKey(k)
	})
}

// SetKeys makes the keyring hold exactly these keys with primary in use:
// what a node applies when the cluster's replicated keyring changes. The
// new keys are installed before the primary changes and old ones removed
// last, so the node never stops understanding its peers mid-change.
func (p *Pool) SetKeys(primary []byte, all [][]byte) error {
	if p.keyring == nil {
		return ErrNotEncrypted
	}
	p.keyMu.Lock()
	defer p.keyMu.Unlock()
	for _, k := range all {
		if err := CheckKey(k); err != nil {
			return err
		}
		if err := p.keyring.AddKey(k); err != nil {
			return err
		}
	}
	if err := p.keyring.UseKey(primary); err != nil {
		return err
	}
	for _, have := range p.keyring.GetKeys() {
		keep := false
		for _, k := range all {
			keep = keep || bytes.Equal(have, k)
		}
		if !keep {
			if err := p.keyring.RemoveKey(have); err != nil {
				return err
			}
		}
	}
	return p.saveLocked()
}

func (p *Pool) change(k []byte, f func() error) error {
	if p.keyring == nil {
		return ErrNotEncrypted
	}
	if err := CheckKey(k); err != nil {
		return err
	}
	p.keyMu.Lock()
	defer p.keyMu.Unlock()
	if err := f(); err != nil {
		return err
	}
	return p.saveLocked()
}

// keyringDoc is the keyring file: base64 keys, the primary first.
type keyringDoc struct {
	Keys []string `json:"keys"`
}

func (p *Pool) saveLocked() error {
	if p.keyringFile == "" {
		return nil
	}
	primary, all := p.keyring.GetPrimaryKey(), p.keyring.GetKeys()
	doc := keyringDoc{Keys: []string{base64.StdEncoding.EncodeToString(primary)}}
	for _, k := range all {
		if !bytes.Equal(k, primary) {
			doc.Keys = append(doc.Keys, base64.StdEncoding.EncodeToString(k))
		}
	}
	b, _ := json.Marshal(doc)
	tmp, err := os.CreateTemp(filepath.Dir(p.keyringFile), ".gossip-keyring-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p.keyringFile)
}

// loadKeyring reads a keyring file; a missing file is no keys.
func loadKeyring(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("gossip keyring %s: %w", path, err)
	}
	var doc keyringDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("gossip keyring %s: %w", path, err)
	}
	var keys [][]byte
	for i, s := range doc.Keys {
		k, err := base64.StdEncoding.DecodeString(s)
		if err == nil {
			err = CheckKey(k)
		}
		if err != nil {
			return nil, fmt.Errorf("gossip keyring %s: keys[%d]: %v", path, i, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}
