"""Access packages and requests: the policy, eligibility, expiry, SoD at request time, and the
approval subject of a request."""
