package server

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/perfleet/perfleet/coordinator/fsm"
	"github.com/perfleet/perfleet/pkg/audit"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/resultstore"
)

// auditCursorFile holds the sequence of the last exported record.
const auditCursorFile = ".cursor"

// setupAuditExport opens the JSON-lines exporter when one is configured.
func (s *Server) setupAuditExport() error {
	if s.cfg.AuditExportDir == "" {
		return nil
	}
	opts := audit.ExporterOptions{Dir: s.cfg.AuditExportDir, MaxBytes: s.cfg.AuditExportMaxBytes,
		OnError: func(err error) { s.log.Warn("audit export", "err", err) }}
	if loc := s.cfg.AuditExportLocation; loc != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		up, err := audit.NewS3Uploader(ctx, loc, resultstore.Options{Region: s.cfg.Region, KMSKeyID: s.cfg.ResultsKMSKeyID})
		if err != nil {
			return fmt.Errorf("audit_export_location: %w", err)
		}
		opts.Uploader = up
	}
	e, err := audit.NewExporter(opts)
	if err != nil {
		return fmt.Errorf("audit_export_dir: %w", err)
	}
	s.audit = e
	return nil
}

// exportAudit appends committed records after the cursor to the export
// files, while this node leads.
func (s *Server) exportAudit(ctx context.Context) {
	cursorPath := filepath.Join(s.cfg.AuditExportDir, auditCursorFile)
	var cursor uint64
	if b, err := os.ReadFile(cursorPath); err == nil {
		cursor, _ = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	}
	for {
		st := s.State()
		watch := st.AuditWatch()
		last := cursor
		err := st.AuditEventsAfter(cursor, func(rec *pb.AuditEvent) bool {
			var ev audit.Event
			if err := json.Unmarshal([]byte(rec.GetJson()), &ev); err != nil {
				s.log.Warn("audit record not exported", "event_id", rec.GetEventId(), "err", err)
			} else if err := s.audit.Write(&ev); err != nil {
				s.log.Warn("audit export write", "err", err)
				return false
			}
			last = rec.GetSequence()
			return true
		})
		if last != cursor {
			if err := s.audit.Sync(); err == nil {
				cursor = last
				_ = os.WriteFile(cursorPath, []byte(strconv.FormatUint(cursor, 10)), 0o600)
			}
		}
		if err != nil {
			s.log.Warn("audit export read", "err", err)
		}
		if ctx.Err() != nil {
			return // after one last pass over what was committed
		}
		select {
		case <-ctx.Done():
		case <-watch:
		case <-st.AbandonCh():
		case <-time.After(5 * time.Second):
		}
	}
}

// pruneAudit applies the audit retention to the replicated records, and
// drops tokens and temporary access keys that expired over an hour ago.
func (s *Server) pruneAudit(ctx context.Context) {
	for _, d := range s.State().ExpiredCredentials(s.Now().Add(-time.Hour)) {
		s.applyBackground(ctx, fsm.ACLCommandType, &pb.ACLCommand{Change: &pb.ACLCommand_Delete_{Delete: d}})
	}
	if s.cfg.AuditRetention <= 0 && s.cfg.AuditMaxRecords == 0 {
		return
	}
	cmd := &pb.PruneAuditEventsCommand{KeepAtMost: s.cfg.AuditMaxRecords}
	if s.cfg.AuditRetention > 0 {
		cmd.Before = timestamppb.New(s.Now().Add(-s.cfg.AuditRetention))
	}
	s.applyBackground(ctx, fsm.PruneAuditEventsType, cmd)
}
