package server

import "os"

// The tests never run on EC2: keep the AWS SDK's credential chain from
// probing the instance metadata address (an s3:// model size lookup would
// otherwise wait on it).
func init() { _ = os.Setenv("AWS_EC2_METADATA_DISABLED", "true") }
