"""Step 2 (the structure, the person, the features wanted), structures and the SIRENE look-up."""
