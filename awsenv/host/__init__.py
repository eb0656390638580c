"""Layer 2, this machine: the runtime directory, file locks, the terminal, child
processes, the browser."""
