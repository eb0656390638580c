"""`python -m awsenv.agent`: the agent process that store/agentclient.py starts."""
from .server import main

main()
