package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// aclCall runs one ACLService call and prints its response: JSON with -o
// json, otherwise what show prints.
func aclCall[T proto.Message](g *globals, cmd *cobra.Command, retry bool, call func(ctx context.Context, c pb.ACLServiceClient) (T, error), show func(T)) error {
	var resp T
	err := g.call(cmd.Context(), retry, func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = call(ctx, pb.NewACLServiceClient(conn))
		return err
	})
	if err != nil {
		return err
	}
	if g.output == "json" {
		return g.printJSON(resp)
	}
	show(resp)
	return nil
}

func (g *globals) principalTable(ps ...*pb.Principal) {
	t := newTable(g.out, "ARN", "TYPE", "ID", "POLICIES", "TAGS", "CREATED")
	for _, p := range ps {
		typ := "user"
		if p.GetType() == pb.PrincipalType_PRINCIPAL_TYPE_ROLE {
			typ = "role"
		}
		t.row(p.GetArn(), typ, p.GetPrincipalId(), strings.Join(p.GetPolicyArns(), ","), tagString(p.GetTags()), ts(p.GetCreated()))
	}
	t.flush()
}

func (g *globals) tokenSecret(ts *pb.TokenSecret, note string) {
	kv(g.out, "AccessorID", ts.GetToken().GetAccessorId(), "Principal", ts.GetToken().GetPrincipalArn(), "SecretID", ts.GetSecret())
	fmt.Fprintln(g.out, note)
}

func newACLCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "acl",
		Short: "Manage principals, tokens, access keys and IAM-style policies",
		Long: `Manage who may call perfleet. Until 'perfleet acl bootstrap' runs every call
is allowed; after it, every call must authenticate (a token, a client
certificate that names a principal, or a SigV4 access key on the JSON
gateway) and is denied unless an attached policy allows it.

Policies are AWS IAM JSON documents: Version, Statement[{Sid, Effect, Action,
NotAction, Resource, NotResource, Condition}], with actions sagemaker:* (the
API operations) and perfleet:* (administration), and condition keys such as
aws:ResourceTag/<k>, aws:RequestTag/<k>, aws:TagKeys, aws:PrincipalTag/<k>,
aws:PrincipalAccount, aws:SourceIp and aws:CurrentTime.`,
		Example: `  perfleet acl bootstrap                       # once: prints the admin token
  export PERFLEET_TOKEN=<SecretID>
  perfleet acl principal create alice --account 111111111111 --tag team=ml
  perfleet acl policy put ml-team --account 111111111111 --document @ml.json
  perfleet acl policy attach arn:aws:iam::111111111111:policy/ml-team arn:aws:iam::111111111111:user/alice
  perfleet acl token create arn:aws:iam::111111111111:user/alice
  perfleet acl role create bench-runner --account 111111111111`,
	}
	cmd.AddCommand(&cobra.Command{
		Use: "bootstrap", Short: "Turn ACLs on and create the first administrator's token (once)", Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			account, _ := cmd.Flags().GetString("account")
			return aclCall(g, cmd, false, func(ctx context.Context, c pb.ACLServiceClient) (*pb.BootstrapResponse, error) {
				return c.Bootstrap(ctx, &pb.BootstrapRequest{AccountId: account})
			}, func(r *pb.BootstrapResponse) {
				g.tokenSecret(r.GetToken(), "ACLs are on. Keep the SecretID safe: it is shown only now and allows everything.\nexport PERFLEET_TOKEN="+r.GetToken().GetSecret())
			})
		},
	})
	cmd.Commands()[0].Flags().String("account", "", "the administrator's 12-digit account (default: the server's default account)")
	cmd.AddCommand(&cobra.Command{
		Use: "whoami", Short: "Show who the CLI calls as", Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return aclCall(g, cmd, true, func(ctx context.Context, c pb.ACLServiceClient) (*pb.WhoAmIResponse, error) {
				return c.WhoAmI(ctx, &pb.WhoAmIRequest{})
			}, func(r *pb.WhoAmIResponse) {
				kv(g.out, "Arn", orDash(r.GetArn()), "Account", r.GetAccountId(), "AuthenticatedBy", r.GetAuthenticatedBy(), "ACLs", fmt.Sprint(r.GetAclEnabled()))
			})
		},
	})
	cmd.AddCommand(newPrincipalCmd(g, "principal", pb.PrincipalType_PRINCIPAL_TYPE_USER), newPrincipalCmd(g, "role", pb.PrincipalType_PRINCIPAL_TYPE_ROLE),
		newTokenCmd(g), newAccessKeyCmd(g), newPolicyCmd(g))
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newPrincipalCmd(g *globals, noun string, typ pb.PrincipalType) *cobra.Command {
	what := "users"
	if typ == pb.PrincipalType_PRINCIPAL_TYPE_ROLE {
		what = "roles (jobs act as a role: --role-arn; callers need perfleet:PassRole on it)"
	}
	cmd := &cobra.Command{Use: noun, Short: "Create, show, list and delete " + what}
	var account, description string
	var tags []string
	create := &cobra.Command{
		Use: "create NAME", Short: "Create a " + noun, Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			tg, err := parseTags(tags)
			if err != nil {
				return usageError{err}
			}
			return aclCall(g, cmd, false, func(ctx context.Context, c pb.ACLServiceClient) (*pb.CreatePrincipalResponse, error) {
				return c.CreatePrincipal(ctx, &pb.CreatePrincipalRequest{AccountId: account, Name: a[0], Type: typ, Tags: tg, Description: description})
			}, func(r *pb.CreatePrincipalResponse) { fmt.Fprintln(g.out, r.GetPrincipal().GetArn()) })
		},
	}
	create.Flags().StringVar(&account, "account", "", "12-digit account (default: the caller's)")
	create.Flags().StringVar(&description, "description", "", "description")
	create.Flags().StringArrayVar(&tags, "tag", nil, "tag as key=value (repeatable)")
	var listAccount string
	list := &cobra.Command{
		Use: "list", Short: "List an account's users and roles", Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return aclCall(g, cmd, true, func(ctx context.Context, c pb.ACLServiceClient) (*pb.ListPrincipalsResponse, error) {
				return c.ListPrincipals(ctx, &pb.ListPrincipalsRequest{AccountId: listAccount})
			}, func(r *pb.ListPrincipalsResponse) { g.principalTable(r.GetPrincipals()...) })
		},
	}
	list.Flags().StringVar(&listAccount, "account", "", "12-digit account (default: the caller's)")
	cmd.AddCommand(create, list,
		&cobra.Command{
			Use: "get ARN", Short: "Show a " + noun, Args: args(cobra.ExactArgs(1)),
			RunE: func(cmd *cobra.Command, a []string) error {
				return aclCall(g, cmd, true, func(ctx context.Context, c pb.ACLServiceClient) (*pb.GetPrincipalResponse, error) {
					return c.GetPrincipal(ctx, &pb.GetPrincipalRequest{Arn: a[0]})
				}, func(r *pb.GetPrincipalResponse) { g.principalTable(r.GetPrincipal()) })
			},
		},
		&cobra.Command{
			Use: "delete ARN", Short: "Delete a " + noun + " and revoke its tokens and keys", Args: args(cobra.ExactArgs(1)),
			RunE: func(cmd *cobra.Command, a []string) error {
				return aclCall(g, cmd, false, func(ctx context.Context, c pb.ACLServiceClient) (*pb.DeletePrincipalResponse, error) {
					return c.DeletePrincipal(ctx, &pb.DeletePrincipalRequest{Arn: a[0]})
				}, func(*pb.DeletePrincipalResponse) { fmt.Fprintf(g.out, "deleted %s\n", a[0]) })
			},
		})
	return cmd
}

func newTokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Create, list and revoke bearer tokens"}
	var description string
	var ttl time.Duration
	create := &cobra.Command{
		Use: "create USER_ARN", Short: "Create a token; its secret is shown once", Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if ttl < 0 {
				return usageError{fmt.Errorf("--ttl must be >= 0")}
			}
			return aclCall(g, cmd, false, func(ctx context.Context, c pb.ACLServiceClient) (*pb.CreateTokenResponse, error) {
				return c.CreateToken(ctx, &pb.CreateTokenRequest{PrincipalArn: a[0], Description: description, TtlSeconds: int64(ttl / time.Second)})
			}, func(r *pb.CreateTokenResponse) {
				g.tokenSecret(r.GetToken(), "The SecretID is shown only now; perfleet keeps only its hash.")
			})
		},
	}
	create.Flags().StringVar(&description, "description", "", "description")
	create.Flags().DurationVar(&ttl, "ttl", 0, "lifetime, e.g. 24h (default: no expiry)")
	cmd.AddCommand(create,
		&cobra.Command{
			Use: "list [USER_ARN]", Short: "List tokens by accessor ID", Args: args(cobra.MaximumNArgs(1)),
			RunE: func(cmd *cobra.Command, a []string) error {
				req := &pb.ListTokensRequest{}
				if len(a) == 1 {
					req.PrincipalArn = a[0]
				}
				return aclCall(g, cmd, true, func(ctx context.Context, c pb.ACLServiceClient) (*pb.ListTokensResponse, error) {
					return c.ListTokens(ctx, req)
				}, func(r *pb.ListTokensResponse) {
					t := newTable(g.out, "ACCESSOR ID", "PRINCIPAL", "DESCRIPTION", "CREATED", "EXPIRES")
					for _, tk := range r.GetTokens() {
						exp := "never"
						if tk.GetExpiration() != nil {
							exp = ts(tk.GetExpiration())
						}
						t.row(tk.GetAccessorId(), tk.GetPrincipalArn(), orDash(tk.GetDescription()), ts(tk.GetCreated()), exp)
					}
					t.flush()
				})
			},
		},
		&cobra.Command{
			Use: "revoke ACCESSOR_ID", Short: "Revoke a token", Args: args(cobra.ExactArgs(1)),
			RunE: func(cmd *cobra.Command, a []string) error {
				return aclCall(g, cmd, false, func(ctx context.Context, c pb.ACLServiceClient) (*pb.RevokeTokenResponse, error) {
					return c.RevokeToken(ctx, &pb.RevokeTokenRequest{AccessorId: a[0]})
				}, func(*pb.RevokeTokenResponse) { fmt.Fprintf(g.out, "revoked %s\n", a[0]) })
			},
		})
	return cmd
}

func newAccessKeyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "access-key", Short: "Create, list and revoke SigV4 access keys for the JSON gateway"}
	var duration time.Duration
	create := &cobra.Command{
		Use: "create USER_ARN", Short: "Create an access key; its secret is shown once", Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return aclCall(g, cmd, false, func(ctx context.Context, c pb.ACLServiceClient) (*pb.CreateAccessKeyResponse, error) {
				return c.CreateAccessKey(ctx, &pb.CreateAccessKeyRequest{PrincipalArn: a[0], DurationSeconds: int64(duration / time.Second)})
			}, func(r *pb.CreateAccessKeyResponse) {
				kv(g.out, "AccessKeyId", r.GetAccessKey().GetAccessKeyId(), "SecretAccessKey", r.GetSecretAccessKey(), "Principal", r.GetAccessKey().GetPrincipalArn())
				if r.GetSessionToken() != "" {
					kv(g.out, "SessionToken", r.GetSessionToken(), "Expiration", ts(r.GetAccessKey().GetExpiration()))
				}
				fmt.Fprintln(g.out, "The secret (and session token) are shown only now.")
			})
		},
	}
	create.Flags().DurationVar(&duration, "duration", 0, "issue temporary credentials valid this long (15m-12h), with a session token")
	cmd.AddCommand(
		create,
		&cobra.Command{
			Use: "list [USER_ARN]", Short: "List access key IDs", Args: args(cobra.MaximumNArgs(1)),
			RunE: func(cmd *cobra.Command, a []string) error {
				req := &pb.ListAccessKeysRequest{}
				if len(a) == 1 {
					req.PrincipalArn = a[0]
				}
				return aclCall(g, cmd, true, func(ctx context.Context, c pb.ACLServiceClient) (*pb.ListAccessKeysResponse, error) {
					return c.ListAccessKeys(ctx, req)
				}, func(r *pb.ListAccessKeysResponse) {
					t := newTable(g.out, "ACCESS KEY ID", "PRINCIPAL", "CREATED")
					for _, k := range r.GetAccessKeys() {
						t.row(k.GetAccessKeyId(), k.GetPrincipalArn(), ts(k.GetCreated()))
					}
					t.flush()
				})
			},
		},
		&cobra.Command{
			Use: "revoke ACCESS_KEY_ID", Short: "Revoke an access key", Args: args(cobra.ExactArgs(1)),
			RunE: func(cmd *cobra.Command, a []string) error {
				return aclCall(g, cmd, false, func(ctx context.Context, c pb.ACLServiceClient) (*pb.RevokeAccessKeyResponse, error) {
					return c.RevokeAccessKey(ctx, &pb.RevokeAccessKeyRequest{AccessKeyId: a[0]})
				}, func(*pb.RevokeAccessKeyResponse) { fmt.Fprintf(g.out, "revoked %s\n", a[0]) })
			},
		})
	return cmd
}

// readArg reads @FILE or - (stdin), or returns the text itself.
func readArg(v string) (string, error) {
	switch {
	case v == "-":
		b, err := io.ReadAll(os.Stdin)
		return string(b), err
	case strings.HasPrefix(v, "@"):
		b, err := os.ReadFile(v[1:])
		return string(b), err
	}
	return v, nil
}

func newPolicyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Put, show, list, delete, attach and detach IAM-style policies"}
	var account, document, description string
	put := &cobra.Command{
		Use: "put NAME", Short: "Create or replace a policy", Args: args(cobra.ExactArgs(1)),
		Example: `  perfleet acl policy put readers --document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sagemaker:Describe*","sagemaker:List*"],"Resource":"*"}]}'
  perfleet acl policy put ml-team --account 111111111111 --document @ml-team.json`,
		RunE: func(cmd *cobra.Command, a []string) error {
			if document == "" {
				return usageError{fmt.Errorf("--document is required: the JSON text, @FILE or - for standard input")}
			}
			doc, err := readArg(document)
			if err != nil {
				return usageError{fmt.Errorf("--document: %v", err)}
			}
			return aclCall(g, cmd, false, func(ctx context.Context, c pb.ACLServiceClient) (*pb.PutPolicyResponse, error) {
				return c.PutPolicy(ctx, &pb.PutPolicyRequest{AccountId: account, Name: a[0], Document: doc, Description: description})
			}, func(r *pb.PutPolicyResponse) {
				fmt.Fprintf(g.out, "%s (version %d)\n", r.GetPolicy().GetArn(), r.GetPolicy().GetVersion())
			})
		},
	}
	put.Flags().StringVar(&account, "account", "", "12-digit account (default: the caller's)")
	put.Flags().StringVar(&document, "document", "", "the policy JSON, @FILE, or - for standard input")
	put.Flags().StringVar(&description, "description", "", "description")
	var listAccount string
	list := &cobra.Command{
		Use: "list", Short: "List an account's policies", Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return aclCall(g, cmd, true, func(ctx context.Context, c pb.ACLServiceClient) (*pb.ListPoliciesResponse, error) {
				return c.ListPolicies(ctx, &pb.ListPoliciesRequest{AccountId: listAccount})
			}, func(r *pb.ListPoliciesResponse) {
				t := newTable(g.out, "ARN", "VERSION", "UPDATED", "DESCRIPTION")
				for _, p := range r.GetPolicies() {
					t.row(p.GetArn(), fmt.Sprint(p.GetVersion()), ts(p.GetUpdated()), orDash(p.GetDescription()))
				}
				t.flush()
			})
		},
	}
	list.Flags().StringVar(&listAccount, "account", "", "12-digit account (default: the caller's)")
	attach := func(detach bool) *cobra.Command {
		verb := "attach"
		if detach {
			verb = "detach"
		}
		return &cobra.Command{
			Use: verb + " POLICY_ARN PRINCIPAL_ARN", Short: strings.ToUpper(verb[:1]) + verb[1:] + " a policy to a user or role", Args: args(cobra.ExactArgs(2)),
			RunE: func(cmd *cobra.Command, a []string) error {
				return g.call(cmd.Context(), false, func(ctx context.Context, conn *grpc.ClientConn) error {
					c := pb.NewACLServiceClient(conn)
					var err error
					if detach {
						_, err = c.DetachPolicy(ctx, &pb.DetachPolicyRequest{PolicyArn: a[0], PrincipalArn: a[1]})
					} else {
						_, err = c.AttachPolicy(ctx, &pb.AttachPolicyRequest{PolicyArn: a[0], PrincipalArn: a[1]})
					}
					if err == nil {
						prep := map[bool]string{false: "to", true: "from"}[detach]
						fmt.Fprintf(g.out, "%sed %s %s %s\n", verb, a[0], prep, a[1])
					}
					return err
				})
			},
		}
	}
	cmd.AddCommand(put, list, attach(false), attach(true),
		&cobra.Command{
			Use: "get ARN", Short: "Show a policy and its document", Args: args(cobra.ExactArgs(1)),
			RunE: func(cmd *cobra.Command, a []string) error {
				return aclCall(g, cmd, true, func(ctx context.Context, c pb.ACLServiceClient) (*pb.GetPolicyResponse, error) {
					return c.GetPolicy(ctx, &pb.GetPolicyRequest{Arn: a[0]})
				}, func(r *pb.GetPolicyResponse) {
					p := r.GetPolicy()
					kv(g.out, "Arn", p.GetArn(), "Version", fmt.Sprint(p.GetVersion()), "Updated", ts(p.GetUpdated()), "Description", orDash(p.GetDescription()))
					var v any
					if json.Unmarshal([]byte(p.GetDocument()), &v) == nil {
						b, _ := json.MarshalIndent(v, "", "  ")
						fmt.Fprintln(g.out, string(b))
					} else {
						fmt.Fprintln(g.out, p.GetDocument())
					}
				})
			},
		},
		&cobra.Command{
			Use: "delete ARN", Short: "Delete a policy no principal has attached", Args: args(cobra.ExactArgs(1)),
			RunE: func(cmd *cobra.Command, a []string) error {
				return aclCall(g, cmd, false, func(ctx context.Context, c pb.ACLServiceClient) (*pb.DeletePolicyResponse, error) {
					return c.DeletePolicy(ctx, &pb.DeletePolicyRequest{Arn: a[0]})
				}, func(*pb.DeletePolicyResponse) { fmt.Fprintf(g.out, "deleted %s\n", a[0]) })
			},
		})
	return cmd
}

func newAuditCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Look up the audit log (one CloudTrail-format record per API call)"}
	var account, event, principal, resource, since, until string
	var limit int32
	var all bool
	lookup := &cobra.Command{
		Use: "lookup", Short: "List audit records, newest first", Args: args(cobra.NoArgs),
		Example: `  perfleet audit lookup --event CreateAIBenchmarkJob --since 1h
  perfleet audit lookup --principal arn:aws:iam::111111111111:user/alice -o json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &pb.LookupEventsRequest{AccountId: account, EventName: event, PrincipalArn: principal, ResourceArn: resource, MaxResults: limit}
			for _, tm := range []struct {
				flag, v string
				dst     **timestamppb.Timestamp
			}{{"--since", since, &req.StartTime}, {"--until", until, &req.EndTime}} {
				if tm.v == "" {
					continue
				}
				t, err := parseWhen(tm.v)
				if err != nil {
					return usageError{fmt.Errorf("%s: %v", tm.flag, err)}
				}
				*tm.dst = timestamppb.New(t)
			}
			var events []*pb.AuditEvent
			for {
				var resp *pb.LookupEventsResponse
				err := g.call(cmd.Context(), true, func(ctx context.Context, conn *grpc.ClientConn) (err error) {
					resp, err = pb.NewACLServiceClient(conn).LookupEvents(ctx, req)
					return err
				})
				if err != nil {
					return err
				}
				events = append(events, resp.GetEvents()...)
				if !all || resp.GetNextToken() == "" {
					break
				}
				req.NextToken = resp.GetNextToken()
			}
			if g.output == "json" {
				for _, ev := range events {
					fmt.Fprintln(g.out, ev.GetJson())
				}
				return nil
			}
			t := newTable(g.out, "TIME", "EVENT", "PRINCIPAL", "RESOURCE", "RESULT")
			for _, ev := range events {
				result := "ok"
				if ev.GetErrorCode() != "" {
					result = ev.GetErrorCode()
				}
				t.row(ts(ev.GetEventTime()), ev.GetEventName(), orDash(ev.GetPrincipalArn()), orDash(strings.Join(ev.GetResourceArns(), ",")), result)
			}
			t.flush()
			return nil
		},
	}
	f := lookup.Flags()
	f.StringVar(&account, "account", "", "12-digit account (default: the caller's)")
	f.StringVar(&event, "event", "", "only this operation, e.g. CreateAIBenchmarkJob")
	f.StringVar(&principal, "principal", "", "only calls by this principal ARN")
	f.StringVar(&resource, "resource", "", "only calls on this resource ARN")
	f.StringVar(&since, "since", "", "only records at or after: RFC 3339 time or a duration ago (1h)")
	f.StringVar(&until, "until", "", "only records before: RFC 3339 time or a duration ago")
	f.Int32Var(&limit, "max-results", 50, "records per page (1-1000)")
	f.BoolVar(&all, "all", false, "follow every page")
	cmd.AddCommand(lookup)
	return cmd
}

// parseWhen reads an RFC 3339 time or a duration before now.
func parseWhen(v string) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration", v)
	}
	return t, nil
}

func newSecretCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Store write-only secrets that workloads reference as perfleet:secret/<name>",
		Long: `Store secrets (an API key, a Hugging Face token) that workload configs
reference as perfleet:secret/<name> instead of holding the value. Values are
encrypted with the cluster's state and are never shown again: there is no
get. Only the agents running a job's shard receive them, over mutual TLS.`,
	}
	var account, value, file string
	put := &cobra.Command{
		Use: "put NAME", Short: "Store or replace a secret (from --value-file or standard input)", Args: args(cobra.ExactArgs(1)),
		Example: `  printf %s "$HF_TOKEN" | perfleet secret put hf
  perfleet secret put openai --value-file ./key.txt`,
		RunE: func(cmd *cobra.Command, a []string) error {
			var b []byte
			var err error
			switch {
			case value != "":
				return usageError{fmt.Errorf("--value would leave the secret in your shell history; use --value-file or standard input")}
			case file != "":
				b, err = os.ReadFile(file)
			default:
				b, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
			}
			if err != nil {
				return usageError{err}
			}
			return aclCall(g, cmd, false, func(ctx context.Context, c pb.ACLServiceClient) (*pb.PutSecretResponse, error) {
				return c.PutSecret(ctx, &pb.PutSecretRequest{AccountId: account, Name: a[0], Value: b})
			}, func(r *pb.PutSecretResponse) {
				fmt.Fprintf(g.out, "%s (version %d)\n", r.GetSecret().GetReference(), r.GetSecret().GetVersion())
			})
		},
	}
	put.Flags().StringVar(&account, "account", "", "12-digit account (default: the caller's)")
	put.Flags().StringVar(&file, "value-file", "", "read the value from this file (default: standard input)")
	put.Flags().StringVar(&value, "value", "", "refused: values on the command line leak into history")
	_ = put.Flags().MarkHidden("value")
	var listAccount string
	list := &cobra.Command{
		Use: "list", Short: "List secrets (names and versions, never values)", Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return aclCall(g, cmd, true, func(ctx context.Context, c pb.ACLServiceClient) (*pb.ListSecretsResponse, error) {
				return c.ListSecrets(ctx, &pb.ListSecretsRequest{AccountId: listAccount})
			}, func(r *pb.ListSecretsResponse) {
				t := newTable(g.out, "REFERENCE", "VERSION", "UPDATED")
				for _, s := range r.GetSecrets() {
					t.row(s.GetReference(), fmt.Sprint(s.GetVersion()), ts(s.GetUpdated()))
				}
				t.flush()
			})
		},
	}
	list.Flags().StringVar(&listAccount, "account", "", "12-digit account (default: the caller's)")
	var delAccount string
	del := &cobra.Command{
		Use: "delete NAME", Short: "Delete a secret", Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return aclCall(g, cmd, false, func(ctx context.Context, c pb.ACLServiceClient) (*pb.DeleteSecretResponse, error) {
				return c.DeleteSecret(ctx, &pb.DeleteSecretRequest{AccountId: delAccount, Name: a[0]})
			}, func(*pb.DeleteSecretResponse) { fmt.Fprintf(g.out, "deleted perfleet:secret/%s\n", a[0]) })
		},
	}
	del.Flags().StringVar(&delAccount, "account", "", "12-digit account (default: the caller's)")
	cmd.AddCommand(put, list, del)
	return cmd
}
