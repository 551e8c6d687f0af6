"""fleetctl: the local tools of lambda-fleet (offline plan, local invoke)."""
