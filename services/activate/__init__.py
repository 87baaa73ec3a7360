"""Steps 3 and 4: user accounts, workspaces, activation links, passwords and secret questions."""
