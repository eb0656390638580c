// Prints the caller's ARN as the JavaScript SDK v3 sees it: credentials come from the
// default chain (here the container provider, AWS_CONTAINER_CREDENTIALS_FULL_URI).
import { STSClient, GetCallerIdentityCommand } from "@aws-sdk/client-sts";

const client = new STSClient({ region: process.env.AWS_REGION || "us-east-1" });
const identity = await client.send(new GetCallerIdentityCommand({}));
console.log(identity.Arn);
