"""The four services of the account-creation flow, one package each."""
