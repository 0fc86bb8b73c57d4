package server

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// The tests never run on EC2: keep the AWS SDK's credential chain from
// probing the instance metadata address (an s3:// model size lookup would
// otherwise wait on it).
func init() { _ = os.Setenv("AWS_EC2_METADATA_DISABLED", "true") }

// TestMain fails the package when a test leaves goroutines behind: every
// node a test starts must stop everything it ran.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
