package awsenv.consumer;

import software.amazon.awssdk.services.sts.StsClient;

/**
 * Prints the caller's ARN as the AWS SDK for Java v2 sees it: credentials and region
 * from the default chains (the environment, a credential_process profile or the
 * container provider), the endpoint from AWS_ENDPOINT_URL. Any error exits non-zero.
 */
public final class Whoami {
    public static void main(String[] args) {
        try (StsClient sts = StsClient.create()) {
            System.out.println(sts.getCallerIdentity().arn());
        }
    }
}
