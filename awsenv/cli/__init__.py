"""Layer 8, the command line: the entry point, the parser, and the commands."""
