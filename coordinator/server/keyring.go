package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/perfleet/perfleet/coordinator/fsm"
	"github.com/perfleet/perfleet/coordinator/state"
	"github.com/perfleet/perfleet/pkg/gossip"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/validate"
)

// The gossip keyring is replicated through Raft (ClusterMeta.gossip_keyring):
// a change is one committed write, every server applies it to its own pool
// and the leader sends it to every connected agent, now and whenever one
// connects. Nodes also keep it in a keyring file, so a node restarted with
// its original --gossip-key still holds the keys in use.

func fingerprint(k []byte) string {
	sum := sha256.Sum256(k)
	return hex.EncodeToString(sum[:8])
}

func keyInfos(kr *pb.GossipKeyring) []*pb.GossipKeyInfo {
	var out []*pb.GossipKeyInfo
	for _, k := range kr.GetKeys() {
		out = append(out, &pb.GossipKeyInfo{Fingerprint: fingerprint(k), Primary: bytes.Equal(k, kr.GetPrimary())})
	}
	return out
}

// currentKeyring is the replicated keyring, or this node's own until the
// first change.
func (s *Server) currentKeyring() (*pb.GossipKeyring, error) {
	if kr := s.State().Meta().GetGossipKeyring(); kr != nil {
		return kr, nil
	}
	primary, all := s.gossip.Keys()
	if primary == nil {
		return nil, fmt.Errorf("%w: %v; start every server and agent with --gossip-key", state.ErrConflict, gossip.ErrNotEncrypted)
	}
	return &pb.GossipKeyring{Primary: primary, Keys: all}, nil
}

// changeKeyring validates a key, applies change to a copy of the keyring
// and commits it.
func (s *Server) changeKeyring(ctx context.Context, b64 string, change func(kr *pb.GossipKeyring, k []byte) error) ([]*pb.GossipKeyInfo, error) {
	k, err := base64.StdEncoding.DecodeString(b64)
	if err == nil {
		err = gossip.CheckKey(k)
	}
	if err != nil {
		return nil, validate.Field("key", fmt.Sprintf("must be base64 of 16, 24 or 32 bytes (openssl rand -base64 32): %v", err))
	}
	cur, err := s.currentKeyring()
	if err != nil {
		return nil, err
	}
	kr := proto.Clone(cur).(*pb.GossipKeyring)
	if err := change(kr, k); err != nil {
		return nil, err
	}
	if _, err := s.Apply(ctx, fsm.SetGossipKeyringType, kr); err != nil {
		return nil, err
	}
	s.applyKeyring()
	return keyInfos(kr), nil
}

func has(kr *pb.GossipKeyring, k []byte) bool {
	for _, x := range kr.GetKeys() {
		if bytes.Equal(x, k) {
			return true
		}
	}
	return false
}

func (o *operator) ListGossipKeys(ctx context.Context, _ *pb.ListGossipKeysRequest) (*pb.ListGossipKeysResponse, error) {
	kr, err := o.s.currentKeyring()
	if err != nil {
		return nil, err
	}
	return &pb.ListGossipKeysResponse{Keys: keyInfos(kr)}, nil
}

func (o *operator) InstallGossipKey(ctx context.Context, req *pb.InstallGossipKeyRequest) (*pb.InstallGossipKeyResponse, error) {
	keys, err := o.s.changeKeyring(ctx, req.GetKey(), func(kr *pb.GossipKeyring, k []byte) error {
		if !has(kr, k) {
			kr.Keys = append(kr.Keys, k)
		}
		return nil
	})
	return &pb.InstallGossipKeyResponse{Keys: keys}, err
}

func (o *operator) UseGossipKey(ctx context.Context, req *pb.UseGossipKeyRequest) (*pb.UseGossipKeyResponse, error) {
	keys, err := o.s.changeKeyring(ctx, req.GetKey(), func(kr *pb.GossipKeyring, k []byte) error {
		if !has(kr, k) {
			return validate.Field("key", "is not installed; install it first (perfleet operator gossip-keyring install)")
		}
		kr.Primary = k
		return nil
	})
	return &pb.UseGossipKeyResponse{Keys: keys}, err
}

func (o *operator) RemoveGossipKey(ctx context.Context, req *pb.RemoveGossipKeyRequest) (*pb.RemoveGossipKeyResponse, error) {
	keys, err := o.s.changeKeyring(ctx, req.GetKey(), func(kr *pb.GossipKeyring, k []byte) error {
		switch {
		case bytes.Equal(kr.GetPrimary(), k):
			return validate.Field("key", "is the key in use; use another key first")
		case !has(kr, k):
			return fmt.Errorf("%w: gossip key %s is not installed", state.ErrNotFound, fingerprint(k))
		}
		var keep [][]byte
		for _, x := range kr.GetKeys() {
			if !bytes.Equal(x, k) {
				keep = append(keep, x)
			}
		}
		kr.Keys = keep
		return nil
	})
	return &pb.RemoveGossipKeyResponse{Keys: keys}, err
}

// applyKeyring makes this node's pool match the replicated keyring and, on
// the leader, sends it to the connected agents when it changed.
func (s *Server) applyKeyring() {
	kr := s.State().Meta().GetGossipKeyring()
	if kr == nil {
		return
	}
	s.keyringMu.Lock()
	defer s.keyringMu.Unlock()
	if proto.Equal(kr, s.appliedKeyring) {
		return
	}
	if err := s.gossip.SetKeys(kr.GetPrimary(), kr.GetKeys()); err != nil {
		s.log.Error("gossip keyring not applied", "err", err)
		return
	}
	s.appliedKeyring = kr
	if s.IsLeader() {
		for _, id := range s.sessions.ids() {
			_ = s.SendToAgent(id, &pb.ConnectResponse{Body: &pb.ConnectResponse_GossipKeyring{GossipKeyring: kr}})
		}
	}
	s.log.Info("gossip keyring applied", "primary", fingerprint(kr.GetPrimary()), "keys", len(kr.GetKeys()))
}

// followKeyring applies replicated keyring changes on this node.
func (s *Server) followKeyring() {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.applyKeyring()
		}
	}
}
