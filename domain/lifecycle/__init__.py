"""The lifecycle: HR events, the identity entity's state, joiners, movers, leavers, and the
holdings ledger read off an identity."""
