package server

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/perfleet/perfleet/coordinator/state"
	"github.com/perfleet/perfleet/pkg/atrest"
)

// keySource returns where the node's data keys come from, or nil when
// encryption at rest is off.
func (s *Server) keySource(ctx context.Context) (atrest.KeySource, error) {
	switch {
	case s.cfg.EncryptionKeyringFile != "":
		return atrest.NewFileKeySource(s.cfg.EncryptionKeyringFile), nil
	case s.cfg.EncryptionKMSKeyID != "":
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(s.cfg.Region))
		if err != nil {
			return nil, fmt.Errorf("encryption_kms_key_id: AWS configuration: %w", err)
		}
		client := kms.NewFromConfig(awsCfg, func(o *kms.Options) {
			if s.cfg.EncryptionKMSEndpoint != "" {
				o.BaseEndpoint = aws.String(s.cfg.EncryptionKMSEndpoint)
			}
		})
		return atrest.NewKMSKeySource(client, s.cfg.EncryptionKMSKeyID, filepath.Join(s.cfg.DataDir, "raft", "data-keys.kms.json"),
			map[string]string{"perfleet:node": s.cfg.NodeID}), nil
	}
	return nil, nil
}

// loadKeyring loads the data keys, or returns nil when encryption is off.
func (s *Server) loadKeyring() (*atrest.Keyring, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, err := s.keySource(ctx)
	if err != nil || src == nil {
		return nil, err
	}
	kr, err := src.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("encryption at rest: %w", err)
	}
	s.keyring, s.keySrc = kr, src
	return kr, nil
}

// ReloadKeyring re-reads the data keys (SIGHUP): after a rotation new log
// entries and snapshots are sealed with the new active key. It is a no-op
// without encryption at rest.
func (s *Server) ReloadKeyring() error {
	if s.keySrc == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kr, err := s.keySrc.Load(ctx)
	if err != nil {
		return err
	}
	s.keyring.Replace(kr)
	s.log.Info("encryption keyring reloaded", "active_key", kr.ActiveKeyID(), "keys", len(kr.KeyIDs()))
	return nil
}

// SecretsProtected refuses to store secrets on a node that would write them
// to disk in plain text: a server needs encryption at rest for that, unless
// it is a loopback-only experiment (--insecure-loopback, perfleet dev).
func (s *Server) SecretsProtected() error {
	if s.keyring != nil || s.cfg.InsecureLoopback {
		return nil
	}
	return fmt.Errorf("%w: this server does not encrypt its data at rest, so it will not store secrets; "+
		"start every server with --encryption-keyring-file or --encryption-kms-key-id", state.ErrConflict)
}
