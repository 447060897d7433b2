"""Tenure's own record of access requests and access changes, kept beyond Temporal's retention."""
