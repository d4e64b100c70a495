"""The orchestrator owns conversations and messages. It imports no provider SDK."""
