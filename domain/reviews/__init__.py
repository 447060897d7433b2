"""Access reviews (certification campaigns): definitions, items, the pure rules that route,
recommend and decide, and the contracts of the campaign workflows."""
