package atrest

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGenerateKeyringFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyring.json")
	kr, err := GenerateKeyringFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %#o, want 0600", fi.Mode().Perm())
	}

	// The documented JSON layout.
	raw, _ := os.ReadFile(path)
	var entries []map[string]any
	if err := json.Unmarshal(raw, &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0]["id"] != kr.ActiveKeyID() || entries[0]["active"] != true ||
		entries[0]["key"] == nil || entries[0]["created"] == nil {
		t.Fatalf("file = %s", raw)
	}

	loaded, err := NewFileKeySource(path).Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := kr.Seal([]byte("x"), nil)
	if got, err := loaded.Open(sealed, nil); err != nil || string(got) != "x" {
		t.Fatalf("loaded keyring cannot open: %v", err)
	}

	if _, err := GenerateKeyringFile(path); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second GenerateKeyringFile: %v, want ErrExist", err)
	}
	again, err := LoadKeyringFile(path)
	if err != nil || again.ActiveKeyID() != kr.ActiveKeyID() {
		t.Fatalf("file changed by refused overwrite: %v", err)
	}
}

func TestKeyFileModeRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyring.json")
	if _, err := GenerateKeyringFile(path); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o644} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := NewFileKeySource(path).Load(context.Background())
		if err == nil {
			t.Fatalf("mode %#o accepted", mode)
		}
		if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "0"+strconvOctal(mode)) {
			t.Fatalf("mode %#o: error %q should name the path and mode", mode, msg)
		}
		if _, err := RotateFile(path); err == nil {
			t.Fatalf("RotateFile accepted mode %#o", mode)
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyringFile(path); err != nil {
		t.Fatalf("mode 0400 refused: %v", err)
	}
}

func strconvOctal(m os.FileMode) string {
	const digits = "01234567"
	p := uint32(m.Perm())
	return string([]byte{digits[p>>6&7], digits[p>>3&7], digits[p&7]})
}

func TestRotateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyring.json")
	src := NewFileKeySource(path)
	first, err := GenerateKeyringFile(path)
	if err != nil {
		t.Fatal(err)
	}
	oldID := first.ActiveKeyID()
	sealedOld, _ := first.Seal([]byte("old data"), []byte("aad"))

	rotatedKr, err := src.Rotate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	newID := rotatedKr.ActiveKeyID()
	if newID == oldID {
		t.Fatal("rotation kept the same active key")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode after rotate = %#o", fi.Mode().Perm())
	}

	loaded, err := src.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if loaded.ActiveKeyID() != newID {
		t.Fatalf("reloaded active = %q, want %q", loaded.ActiveKeyID(), newID)
	}
	if ids := loaded.KeyIDs(); len(ids) != 2 || ids[0] != oldID || ids[1] != newID {
		t.Fatalf("key IDs = %v", ids)
	}
	if got, err := loaded.Open(sealedOld, []byte("aad")); err != nil || string(got) != "old data" {
		t.Fatalf("old data after rotation: %q, %v", got, err)
	}
	sealedNew, _ := loaded.Seal([]byte("new"), nil)
	if id, _ := SealedKeyID(sealedNew); id != newID {
		t.Fatalf("new data sealed with %q", id)
	}

	// Only one active key in the file.
	raw, _ := os.ReadFile(path)
	var entries []keyFileEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		t.Fatal(err)
	}
	active := 0
	for _, e := range entries {
		if e.Active {
			active++
		}
	}
	if active != 1 {
		t.Fatalf("%d active keys in file", active)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".keyring.json.tmp*"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
}

func TestLoadKeyringFileInvalid(t *testing.T) {
	dir := t.TempDir()
	k1, k2 := NewDataKey(), NewDataKey()
	cases := map[string]any{
		"no active":  []keyFileEntry{{ID: k1.ID, Key: k1.Key}},
		"two active": []keyFileEntry{{ID: k1.ID, Key: k1.Key, Active: true}, {ID: k2.ID, Key: k2.Key, Active: true}},
		"short key":  []keyFileEntry{{ID: k1.ID, Key: k1.Key[:16], Active: true}},
		"empty":      []keyFileEntry{},
		"not a list": map[string]string{"id": "x"},
	}
	for name, v := range cases {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
		data, _ := json.Marshal(v)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadKeyringFile(path); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
	if _, err := LoadKeyringFile(filepath.Join(dir, "missing.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
