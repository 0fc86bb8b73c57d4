package state

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// A backup file (`perfleet operator snapshot save`) is a state snapshot
// stream followed by a trailer line, "sha256 <hex of the stream>\n", so a
// truncated or altered file is refused before anything is restored.
const (
	backupTrailerPrefix = "sha256 "
	backupTrailerLen    = len(backupTrailerPrefix) + 64 + 1
)

// ErrBadBackup is returned for a backup file that is truncated, altered or
// not a backup.
var ErrBadBackup = errors.New("bad backup file")

// WriteBackup writes the snapshot and its trailer to w and returns the
// bytes written.
func (sn *Snapshot) WriteBackup(w io.Writer) (int64, error) {
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(w, h)}
	if err := sn.Persist(cw); err != nil {
		return cw.n, err
	}
	n, err := fmt.Fprintf(w, "%s%s\n", backupTrailerPrefix, hex.EncodeToString(h.Sum(nil)))
	return cw.n + int64(n), err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// BackupInfo describes a checked backup file.
type BackupInfo struct {
	// Size is the length of the state stream (the file less its trailer).
	Size int64
	// Hash is the hash of the state the backup holds (as Store.Hash).
	Hash string
	// Records counts records per table.
	Records map[string]uint64
}

// CheckBackup verifies a backup file: its trailer checksum, then every
// record, by decoding it into a store that is then discarded. It returns
// what the backup holds; the state stream is f's first info.Size bytes.
func CheckBackup(f *os.File) (BackupInfo, error) {
	st, err := f.Stat()
	if err != nil {
		return BackupInfo{}, err
	}
	size := st.Size() - int64(backupTrailerLen)
	if size <= int64(len(snapshotHeader)) {
		return BackupInfo{}, fmt.Errorf("%w: %d bytes is too short", ErrBadBackup, st.Size())
	}
	trailer := make([]byte, backupTrailerLen)
	if _, err := f.ReadAt(trailer, size); err != nil {
		return BackupInfo{}, fmt.Errorf("%w: read trailer: %v", ErrBadBackup, err)
	}
	want, ok := parseTrailer(trailer)
	if !ok {
		return BackupInfo{}, fmt.Errorf("%w: no checksum trailer (truncated, or not a perfleet backup)", ErrBadBackup)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, size)); err != nil {
		return BackupInfo{}, err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return BackupInfo{}, fmt.Errorf("%w: checksum %s does not match the trailer's %s", ErrBadBackup, got[:12], want[:12])
	}
	s, err := Restore(io.NewSectionReader(f, 0, size))
	if err != nil {
		return BackupInfo{}, fmt.Errorf("%w: %v", ErrBadBackup, err)
	}
	defer s.Abandon()
	return BackupInfo{Size: size, Hash: s.Hash(), Records: s.Counts()}, nil
}

func parseTrailer(b []byte) (string, bool) {
	if len(b) != backupTrailerLen || string(b[:len(backupTrailerPrefix)]) != backupTrailerPrefix || b[len(b)-1] != '\n' {
		return "", false
	}
	hexSum := string(b[len(backupTrailerPrefix) : len(b)-1])
	if _, err := hex.DecodeString(hexSum); err != nil {
		return "", false
	}
	return hexSum, true
}

// RestoreUpload is the client side of a SnapshotRestore call.
type RestoreUpload interface {
	Send(*pb.SnapshotRestoreRequest) error
	CloseAndRecv() (*pb.SnapshotRestoreResponse, error)
}

// UploadBackup sends a backup file on a SnapshotRestore call in messages of
// at most 1 MiB and returns the server's answer. When a send fails, the
// answer (CloseAndRecv) carries the server's reason.
func UploadBackup(up RestoreUpload, r io.Reader) (*pb.SnapshotRestoreResponse, error) {
	buf := make([]byte, 1<<20)
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			if err := up.Send(&pb.SnapshotRestoreRequest{Data: buf[:n]}); err != nil {
				break
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return nil, rerr
		}
	}
	return up.CloseAndRecv()
}
