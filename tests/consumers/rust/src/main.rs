//! Prints the caller's ARN as the AWS SDK for Rust sees it: credentials and region from
//! the default chain (the environment, a credential_process profile or the container
//! provider), the endpoint from AWS_ENDPOINT_URL. Any error exits non-zero.
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_http_client::Builder;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let http = Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let config = aws_config::from_env().http_client(http).load().await;
    let sts = aws_sdk_sts::Client::new(&config);
    match sts.get_caller_identity().send().await {
        Ok(identity) => println!("{}", identity.arn().unwrap_or_default()),
        Err(err) => {
            eprintln!("whoami: {}", aws_sdk_sts::error::DisplayErrorContext(&err));
            std::process::exit(1);
        }
    }
}
