"""What every workflow shares: provisioning steps, progress reporting, activity settings."""
