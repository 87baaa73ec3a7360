"""Sign-in: the login email and password open a challenge, the second factor (emailed code,
authenticator app or recovery code) closes it and starts a session; signing out ends it."""
