"""Layer 5, the policy: which call makes a profile's credentials, from the cache or
not, and when and how to ask for an MFA code."""
