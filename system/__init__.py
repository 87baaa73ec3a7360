"""The whole system on one machine: the one-origin gateway and the process launcher."""
