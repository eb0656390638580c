// Command whoami prints the caller's ARN as the AWS SDK for Go v2 sees it: credentials
// and region from the default chain (the environment, a credential_process profile or
// the container provider), the endpoint from AWS_ENDPOINT_URL. With -lines it keeps one
// client for the whole process and answers once per line read from stdin, so a test can
// watch a long-lived process across a renewal. Any error exits non-zero.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func main() {
	lines := flag.Bool("lines", false, "answer once per line of stdin, with one client")
	flag.Parse()
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fail(err)
	}
	client := sts.NewFromConfig(cfg)
	if !*lines {
		whoami(ctx, client)
		return
	}
	for input := bufio.NewScanner(os.Stdin); input.Scan(); {
		whoami(ctx, client)
	}
}

func whoami(ctx context.Context, client *sts.Client) {
	identity, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		fail(err)
	}
	fmt.Println(*identity.Arn)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "whoami:", err)
	os.Exit(1)
}
