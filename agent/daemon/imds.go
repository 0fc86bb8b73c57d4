package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// FromIMDS reads the instance type and region from the EC2 instance
// metadata service (IMDSv2) with a short timeout. endpoint overrides the
// service address (tests); empty means the SDK's default. It is only called
// when the operator asks for it (--instance-type imds): perfleet never probes
// the metadata address on its own.
func FromIMDS(ctx context.Context, endpoint string, timeout time.Duration) (instanceType, region string, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	opts := imds.Options{}
	if endpoint != "" {
		opts.Endpoint = endpoint
	}
	doc, err := imds.New(opts).GetInstanceIdentityDocument(ctx, &imds.GetInstanceIdentityDocumentInput{})
	if err != nil {
		return "", "", fmt.Errorf("instance metadata service: %w (not on EC2? give --instance-type instead)", err)
	}
	return doc.InstanceType, doc.Region, nil
}
