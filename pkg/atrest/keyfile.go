package atrest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// KeySource yields the keyring that encrypts data at rest.
type KeySource interface {
	// Load returns the current keyring.
	Load(ctx context.Context) (*Keyring, error)
	// Rotate adds a new data key, makes it the active key, keeps the old
	// keys so existing data stays readable, persists the change, and
	// returns the new keyring. Apply it to a keyring in use with
	// Keyring.Replace.
	Rotate(ctx context.Context) (*Keyring, error)
}

// keyFileMode is the only permission a key file may have beyond the owner's.
const keyFileMode fs.FileMode = 0o600

// keyFileEntry is one key in a keyring file.
type keyFileEntry struct {
	ID      string    `json:"id"`
	Key     []byte    `json:"key"` // base64 in JSON
	Created time.Time `json:"created"`
	Active  bool      `json:"active"`
}

// FileKeySource reads data keys from a local keyring file: a JSON list of
// {"id", "key" (base64), "created", "active"} objects with exactly one
// active key. The file must not be readable or writable by group or others
// (mode 0600 or stricter); Load refuses it otherwise.
type FileKeySource struct {
	path string
	mu   sync.Mutex // serialises Rotate within this process
}

var _ KeySource = (*FileKeySource)(nil)

// NewFileKeySource returns a key source for the keyring file at path. Make
// the file with GenerateKeyringFile.
func NewFileKeySource(path string) *FileKeySource { return &FileKeySource{path: path} }

// Path returns the keyring file's path.
func (s *FileKeySource) Path() string { return s.path }

// Load reads the keyring file.
func (s *FileKeySource) Load(context.Context) (*Keyring, error) {
	return LoadKeyringFile(s.path)
}

// Rotate adds a new active key to the keyring file (see RotateFile).
func (s *FileKeySource) Rotate(context.Context) (*Keyring, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return RotateFile(s.path)
}

// GenerateKeyringFile creates a keyring file at path holding one new active
// key, with mode 0600. It refuses to overwrite an existing file.
func GenerateKeyringFile(path string) (*Keyring, error) {
	k := NewDataKey()
	entries := []keyFileEntry{{ID: k.ID, Key: k.Key, Created: k.Created, Active: true}}
	kr, err := keyringFromEntries(path, entries)
	if err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(entries, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFileExclusive(path, append(data, '\n')); err != nil {
		return nil, err
	}
	return kr, nil
}

// LoadKeyringFile reads a keyring file, refusing one whose mode lets group
// or others access it.
func LoadKeyringFile(path string) (*Keyring, error) {
	entries, err := readKeyFile[keyFileEntry](path)
	if err != nil {
		return nil, err
	}
	return keyringFromEntries(path, entries)
}

// RotateFile adds a new key to the keyring file at path and makes it the
// active one, keeping the old keys. The file is replaced atomically. It
// returns the new keyring. Rotations of the same file from several
// processes at once must be serialised by the caller.
func RotateFile(path string) (*Keyring, error) {
	entries, err := readKeyFile[keyFileEntry](path)
	if err != nil {
		return nil, err
	}
	if _, err := keyringFromEntries(path, entries); err != nil {
		return nil, err
	}
	k := NewDataKey()
	for i := range entries {
		entries[i].Active = false
	}
	entries = append(entries, keyFileEntry{ID: k.ID, Key: k.Key, Created: k.Created, Active: true})
	kr, err := keyringFromEntries(path, entries)
	if err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(entries, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, append(data, '\n')); err != nil {
		return nil, err
	}
	return kr, nil
}

func keyringFromEntries(path string, entries []keyFileEntry) (*Keyring, error) {
	keys := make([]DataKey, 0, len(entries))
	active := ""
	for _, e := range entries {
		keys = append(keys, DataKey{ID: e.ID, Key: e.Key, Created: e.Created})
		if e.Active {
			if active != "" {
				return nil, fmt.Errorf("atrest: keyring file %s: keys %q and %q are both active", path, active, e.ID)
			}
			active = e.ID
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("atrest: keyring file %s holds no keys", path)
	}
	if active == "" {
		return nil, fmt.Errorf("atrest: keyring file %s has no active key", path)
	}
	kr, err := NewKeyring(keys, active)
	if err != nil {
		return nil, fmt.Errorf("keyring file %s: %w", path, err)
	}
	return kr, nil
}

// checkKeyFileMode refuses a key file that group or others may access.
func checkKeyFileMode(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("atrest: key file %s is not a regular file (mode %v)", path, fi.Mode())
	}
	if perm := fi.Mode().Perm(); perm&^keyFileMode != 0 {
		return fmt.Errorf("atrest: key file %s has mode %#o, which lets group or others access it; run chmod 600 %s", path, perm, path)
	}
	return nil
}

// readKeyFile checks the file's mode and decodes its JSON list.
func readKeyFile[T any](path string) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("atrest: open key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("atrest: key file %s: %w", path, err)
	}
	if err := checkKeyFileMode(path, fi); err != nil {
		return nil, err
	}
	var entries []T
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&entries); err != nil {
		return nil, fmt.Errorf("atrest: key file %s: %w", path, err)
	}
	return entries, nil
}

// writeTemp writes data to a new 0600 temporary file next to path and syncs
// it, returning its name.
func writeTemp(path string, data []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return "", fmt.Errorf("atrest: write key file: %w", err)
	}
	name := f.Name()
	err = f.Chmod(keyFileMode)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", fmt.Errorf("atrest: write key file %s: %w", path, err)
	}
	return name, nil
}

// writeFileAtomic replaces path with data.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := writeTemp(path, data)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("atrest: replace key file: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// writeFileExclusive creates path with data, failing with an error that
// matches fs.ErrExist if it exists. The file appears complete or not at all.
func writeFileExclusive(path string, data []byte) error {
	tmp, err := writeTemp(path, data)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("atrest: key file %s already exists: %w", path, fs.ErrExist)
		}
		// No hard links here (some network or FUSE file systems):
		// create the file exclusively and write it in place.
		if err := writeNew(path, data); err != nil {
			return err
		}
	}
	return syncDir(filepath.Dir(path))
}

func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, keyFileMode)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("atrest: key file %s already exists: %w", path, fs.ErrExist)
		}
		return fmt.Errorf("atrest: create key file: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("atrest: write key file %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("atrest: sync %s: %w", dir, err)
	}
	return nil
}
