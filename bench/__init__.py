"""`make bench` (`python -m bench`): how fast the system is on this machine, and against what.

Each benchmark measures the project and, in the same run, a baseline that bounds it (the
argon2 hashing a flow needs, a bare redis-py loop, plain smtplib, a trivial Flask endpoint),
then prints the ratio, the target and PASS or MISS. `docs/benchmarks.md` gets the results.
Every loop is bounded in count and in time; every server listens on 127.0.0.1 only.
"""
