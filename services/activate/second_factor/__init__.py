"""The authenticator app (TOTP) and its recovery codes, enrolled and removed from « Mon compte »;
sign-in checks them (`sign_in/handlers.py`)."""
