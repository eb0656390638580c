"""Layer 6, the agent's process: its socket server, the broker that renews sessions
ahead of need, and the loopback credential endpoint. `python -m awsenv.agent` runs it."""
