"""Adapters: the outside world (PostgreSQL, password hashing, token signing, logging,
settings), each implementing a port of the application layer."""
