"""awsenv: short-lived AWS credentials in the current shell."""

__version__ = "0.1.0"
