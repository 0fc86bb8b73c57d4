package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/perfleet/perfleet/coordinator/state"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// newSnapshotCmd is `perfleet operator snapshot`: back up the replicated
// state to a file, check a file, and restore a cluster from one.
func newSnapshotCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "snapshot", Short: "Save the cluster's state to a backup file, inspect one, or restore a cluster from one",
		Long: `A backup holds every record of the replicated state (configs, jobs, endpoints,
agents, principals, policies, token and key hashes, secret references, the
audit log) in plain text, followed by a SHA-256 trailer. Keep it as safe as a
server's data directory.

restore replaces the whole cluster's state with the backup's. It is meant for
disaster recovery into a fresh cluster; the file is checked (checksum and every
record) before anything changes.`}
	cmd.AddCommand(
		&cobra.Command{
			Use: "save FILE", Short: "Write a backup of the answering node's state to FILE", Args: args(cobra.ExactArgs(1)),
			RunE: func(c *cobra.Command, a []string) error {
				path := a[0]
				tmp := path + ".part"
				var node string
				var index uint64
				err := g.call(c.Context(), true, func(ctx context.Context, conn *grpc.ClientConn) error {
					f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
					if err != nil {
						return usageError{fmt.Errorf("snapshot save: %w", err)}
					}
					defer f.Close()
					st, err := pb.NewOperatorServiceClient(conn).SnapshotSave(ctx, &pb.SnapshotSaveRequest{})
					if err != nil {
						return err
					}
					for {
						m, err := st.Recv()
						if errors.Is(err, io.EOF) {
							break
						}
						if err != nil {
							return err
						}
						if m.GetNodeId() != "" {
							node, index = m.GetNodeId(), m.GetAppliedIndex()
						}
						if _, err := f.Write(m.GetData()); err != nil {
							return fmt.Errorf("snapshot save: %w", err)
						}
					}
					return f.Sync()
				})
				if err != nil {
					os.Remove(tmp)
					return err
				}
				info, err := checkBackupFile(tmp)
				if err != nil {
					os.Remove(tmp)
					return fmt.Errorf("the saved backup does not check out: %w", err)
				}
				if err := os.Rename(tmp, path); err != nil {
					return err
				}
				fmt.Fprintf(g.out, "saved %s: %d bytes from %s at index %d, state hash %s\n", path, info.Size, node, index, info.Hash)
				return nil
			},
		},
		&cobra.Command{
			Use: "inspect FILE", Short: "Check a backup file and show what it holds (offline)", Args: args(cobra.ExactArgs(1)),
			RunE: func(c *cobra.Command, a []string) error {
				info, err := checkBackupFile(a[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(g.out, "%s: %d bytes of state, hash %s\n", a[0], info.Size, info.Hash)
				printRecords(g, info.Records)
				return nil
			},
		},
		&cobra.Command{
			Use: "restore FILE", Short: "Replace the cluster's state with a backup's (disaster recovery)", Args: args(cobra.ExactArgs(1)),
			RunE: func(c *cobra.Command, a []string) error {
				if _, err := checkBackupFile(a[0]); err != nil {
					return err
				}
				var resp *pb.SnapshotRestoreResponse
				err := g.call(c.Context(), false, func(ctx context.Context, conn *grpc.ClientConn) error {
					f, err := os.Open(a[0])
					if err != nil {
						return usageError{err}
					}
					defer f.Close()
					up, err := pb.NewOperatorServiceClient(conn).SnapshotRestore(ctx)
					if err != nil {
						return err
					}
					resp, err = state.UploadBackup(up, f)
					return err
				})
				if err != nil {
					return err
				}
				if g.output == "json" {
					return g.printJSON(resp)
				}
				fmt.Fprintf(g.out, "restored %d bytes at index %d, state hash %s\n", resp.GetSize(), resp.GetAppliedIndex(), resp.GetHash())
				printRecords(g, resp.GetRecords())
				return nil
			},
		},
	)
	return cmd
}

func checkBackupFile(path string) (state.BackupInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return state.BackupInfo{}, usageError{err}
	}
	defer f.Close()
	info, err := state.CheckBackup(f)
	if err != nil {
		return info, fmt.Errorf("%s: %w", path, err)
	}
	return info, nil
}

func printRecords(g *globals, records map[string]uint64) {
	keys := make([]string, 0, len(records))
	for k := range records {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(g.out, "  %s: %d\n", k, records[k])
	}
}
