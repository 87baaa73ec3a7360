"""« Mon compte »: what the signed-in holder of an active account changes (workspaces, password,
secret question, contact email) and its deactivation."""
