"""Layer 1, the model: errors, credentials, settings, the AWS config files and their
profiles, the session cache's keys. No network, no key store, no terminal."""
