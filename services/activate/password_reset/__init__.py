"""« Mot de passe oublié »: a link emailed to the login address, the secret question, a new password."""
