"""Layer 3, where secrets and sessions are kept: the key stores (keyring, file, pass),
the session cache the agent holds, and the AWS CLI's SSO cache."""
