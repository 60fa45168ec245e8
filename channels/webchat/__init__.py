"""The customer web chat channel: a page with no login, live over SSE, fed through ingest."""
