"""Code every service uses: settings, events and their bus, HTTP conventions, Celery app."""
