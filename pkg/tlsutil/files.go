package tlsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// File modes: private keys are readable by their owner only.
const (
	CertFileMode fs.FileMode = 0o644
	KeyFileMode  fs.FileMode = 0o600
)

// maxCertIndex bounds the search for a free certificate file index.
const maxCertIndex = 10000

// CAFileNames are the file names of a domain's CA certificate and key:
// <domain>-ca.pem and <domain>-ca-key.pem.
func CAFileNames(domain string) (certFile, keyFile string) {
	if domain == "" {
		domain = DefaultDomain
	}
	return domain + "-ca.pem", domain + "-ca-key.pem"
}

// CertFileNames are the file names of the index-th certificate of a role:
// <region>-<role>-<domain>-<index>.pem and <region>-<role>-<domain>-<index>-key.pem.
func CertFileNames(role Role, region, domain string, index int) (certFile, keyFile string) {
	if domain == "" {
		domain = DefaultDomain
	}
	base := fmt.Sprintf("%s-%s-%s-%d", region, role, domain, index)
	return base + ".pem", base + "-key.pem"
}

// WriteCA writes ca into dir under CAFileNames(domain): the certificate with
// mode 0644 and the key with mode 0600. It never overwrites: if either file
// exists it fails with an error wrapping fs.ErrExist.
func WriteCA(dir, domain string, ca *CA) (certPath, keyPath string, err error) {
	certName, keyName := CAFileNames(domain)
	certPath, keyPath = filepath.Join(dir, certName), filepath.Join(dir, keyName)
	if err := writePair(certPath, ca.CertPEM, keyPath, ca.KeyPEM); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

// WriteCert writes an issued certificate and key into dir under
// CertFileNames with the lowest index for which neither file exists, as
// consul tls cert create does: the first server certificate of a region is
// index 0, the next index 1. Modes are 0644 and 0600.
func WriteCert(dir string, role Role, region, domain string, iss *Issued) (certPath, keyPath string, err error) {
	for i := 0; i < maxCertIndex; i++ {
		certName, keyName := CertFileNames(role, region, domain, i)
		certPath, keyPath = filepath.Join(dir, certName), filepath.Join(dir, keyName)
		if exists(certPath) || exists(keyPath) {
			continue
		}
		err := writePair(certPath, iss.CertPEM, keyPath, iss.KeyPEM)
		if errors.Is(err, fs.ErrExist) {
			continue // another writer took this index first
		}
		if err != nil {
			return "", "", err
		}
		return certPath, keyPath, nil
	}
	return "", "", fmt.Errorf("tlsutil: no free file index below %d in %s", maxCertIndex, dir)
}

// writePair creates both files exclusively, the key first, and removes
// what it wrote if anything fails.
func writePair(certPath string, certPEM []byte, keyPath string, keyPEM []byte) error {
	if err := writeExclusive(keyPath, keyPEM, KeyFileMode); err != nil {
		return err
	}
	if err := writeExclusive(certPath, certPEM, CertFileMode); err != nil {
		os.Remove(keyPath)
		return err
	}
	return nil
}

// writeExclusive creates path, failing if it exists, and writes data with
// exactly perm whatever the umask.
func writeExclusive(path string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists: %w", path, fs.ErrExist)
		}
		return err
	}
	err = f.Chmod(perm)
	if _, werr := f.Write(data); err == nil {
		err = werr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
