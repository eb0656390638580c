"""Layer 4, every call to AWS: STS and IAM, IAM Identity Center (SSO and its OIDC
sign-in), and the console's federation endpoint."""
