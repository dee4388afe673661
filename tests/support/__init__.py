"""Test support: real servers and peers, waiting helpers, the asyncio runner, in-memory fakes."""
