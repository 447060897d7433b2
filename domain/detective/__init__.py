"""Detective controls: findings about access that arose outside Tenure (the orphan sweep)."""
