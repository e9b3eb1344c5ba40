"""HTTP API (FastAPI): translates requests into one application call each."""
