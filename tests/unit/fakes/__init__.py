"""In-memory units of work, one per service: the same handlers run on dicts instead of Redis."""
