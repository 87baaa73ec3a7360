"""Sessions after sign-in: started by the second factor, kept by their id's SHA-256, ended by time,
by signing out, or all at once (« se déconnecter partout », a password changed or reset)."""
