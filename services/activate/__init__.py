"""activate: the user accounts. Its top-level modules are the account and the registration's steps 3
and 4 (workspaces, activation links, password and secret question); each use case after activation
is a sub-package with its rules (`domain.py`), handlers, repository (its Redis keys), schemas, API
and pages:

- `sessions/`: the sessions that sign-in starts, their cookie, their end;
- `sign_in/`: the password, then the second factor (emailed code, authenticator app or recovery
  code), signing out;
- `second_factor/`: the authenticator app and its recovery codes, from « Mon compte »;
- `password_reset/`: « Mot de passe oublié »;
- `my_account/`: « Mon compte »: workspaces, password, secret question, contact email, deactivation.

One unit of work (`repository.ActivateUnitOfWork`) holds every repository; one wiring
(`bootstrap.Activate`) every dependency.
"""
