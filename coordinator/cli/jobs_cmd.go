package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// defaultRole is the role jobs act as when --role-arn is not given; with ACLs
// off it is not checked.
const defaultRole = "arn:aws:iam::000000000000:role/perfleet"

func defaultOutputLocation() string {
	wd, err := os.Getwd()
	if err != nil {
		wd = os.TempDir()
	}
	return "file://" + filepath.Join(wd, "perfleet-results")
}

// jobCommon holds the flags both job kinds take on create.
type jobCommon struct {
	workload, output, role, token string
	tags                          []string
}

func (j *jobCommon) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&j.workload, "workload-config", "", "workload config name or ARN (required)")
	f.StringVar(&j.output, "output-location", defaultOutputLocation(), "where results go: s3://bucket/prefix or file:///absolute/path")
	f.StringVar(&j.role, "role-arn", defaultRole, "IAM-style role the job acts as")
	f.StringArrayVar(&j.tags, "tag", nil, "tag as key=value (repeatable)")
	f.StringVar(&j.token, "client-token", "", "idempotency token (default: a fresh one, reused on retries)")
}

// jobOps are the four calls shared by both job kinds, bound to one kind.
type jobOps struct {
	noun     string
	describe func(ctx context.Context, c pb.InferenceOptimizationClient, name string) (proto.Message, error)
	show     func(g *globals, m proto.Message)
	list     func(ctx context.Context, c pb.InferenceOptimizationClient, lf *listFlags, size int32, token string) (proto.Message, []jobRow, string, error)
	stop     func(ctx context.Context, c pb.InferenceOptimizationClient, name string) (string, error)
	remove   func(ctx context.Context, c pb.InferenceOptimizationClient, name string) (string, error)
}

type jobRow struct{ name, status, created, ended, extra string }

func (o jobOps) commands(g *globals, extraHeader string) []*cobra.Command {
	describe := &cobra.Command{
		Use: "describe NAME", Short: "Show a " + o.noun + " and its status", Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			var m proto.Message
			err := g.call(cmd.Context(), true, func(ctx context.Context, c *grpc.ClientConn) (err error) {
				m, err = o.describe(ctx, pb.NewInferenceOptimizationClient(c), a[0])
				return err
			})
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(m)
			}
			o.show(g, m)
			return nil
		},
	}
	var lf listFlags
	list := &cobra.Command{
		Use: "list", Short: "List " + o.noun + "s", Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var rows []jobRow
			var pages []proto.Message
			next := ""
			err := lf.pages(func(size int32, token string) (string, error) {
				err := g.call(cmd.Context(), true, func(ctx context.Context, c *grpc.ClientConn) error {
					m, r, n, err := o.list(ctx, pb.NewInferenceOptimizationClient(c), &lf, size, token)
					if err == nil {
						pages, rows, next = append(pages, m), append(rows, r...), n
					}
					return err
				})
				return next, err
			})
			if err != nil {
				return err
			}
			if g.output == "json" {
				for _, p := range pages {
					if err := g.printJSON(p); err != nil {
						return err
					}
				}
				return nil
			}
			t := newTable(g.out, "NAME", "STATUS", "CREATED", "ENDED", extraHeader)
			for _, r := range rows {
				t.row(r.name, r.status, r.created, r.ended, r.extra)
			}
			t.flush()
			lf.more(g, next)
			return nil
		},
	}
	lf.register(list, true)
	stop := &cobra.Command{
		Use: "stop NAME", Short: "Stop a " + o.noun + " (no-op when it already ended)", Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			var arn string
			err := g.call(cmd.Context(), true, func(ctx context.Context, c *grpc.ClientConn) (err error) {
				arn, err = o.stop(ctx, pb.NewInferenceOptimizationClient(c), a[0])
				return err
			})
			if err == nil {
				fmt.Fprintln(g.out, "stopping "+arn)
			}
			return err
		},
	}
	remove := &cobra.Command{
		Use: "delete NAME", Short: "Delete a " + o.noun + " that has ended", Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			var arn string
			err := g.call(cmd.Context(), false, func(ctx context.Context, c *grpc.ClientConn) (err error) {
				arn, err = o.remove(ctx, pb.NewInferenceOptimizationClient(c), a[0])
				return err
			})
			if err == nil {
				fmt.Fprintln(g.out, "deleted "+arn)
			}
			return err
		},
	}
	return []*cobra.Command{describe, list, stop, remove}
}

// createJob sends a create with the CLI's retry policy and prints the ARN.
func createJob[T proto.Message](g *globals, cmd *cobra.Command, do func(ctx context.Context, c pb.InferenceOptimizationClient) (T, error), arn func(T) string) error {
	var resp T
	err := g.call(cmd.Context(), true, func(ctx context.Context, c *grpc.ClientConn) (err error) {
		resp, err = do(ctx, pb.NewInferenceOptimizationClient(c))
		return err
	})
	if err != nil {
		return err
	}
	return g.printARN(resp, arn(resp))
}

func requireFlag(name, value string) error {
	if strings.TrimSpace(value) == "" {
		return usageError{fmt.Errorf("--%s is required", name)}
	}
	return nil
}
